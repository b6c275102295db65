//! Typed calls (issue 17 item 2): `Vm::call::<R>(name, args)` with tuple arguments and a
//! converted result, and `Func`, a name looked up once and called many times.

use stoffel_vm::{ApiError, Val, Vm, VmError};

const PROGRAM: &str = r#"
.function add(a, b) registers 3
    ADD r2, r0, r1
    RET r2

.function sum(items) registers 6
    MOV r4, r0
    PUSHARG r4
    CALL array_length
    MOV r1, r0
    LDI r2, 0
    LDI r3, 0
    LDI r5, 1
loop:
    CMP r3, r1
    JMPEQ done
    PUSHARG r4
    PUSHARG r3
    CALL get_field
    ADD r2, r2, r0
    ADD r3, r3, r5
    JMP loop
done:
    RET r2

.function greet(name) registers 2
    LDI r1, "hello "
    ADD r1, r1, r0
    RET r1
"#;

fn vm() -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm
}

#[test]
fn tuples_in_typed_results_out() {
    let mut vm = vm();
    assert_eq!(vm.call::<i64>("add", (2i64, 40i64)).unwrap(), 42);
    assert_eq!(
        vm.call::<String>("greet", ("world",)).unwrap(),
        "hello world"
    );
    // A Vec becomes an array for the call, and the call releases it.
    assert_eq!(vm.call::<i64>("sum", (vec![1i64, 2, 3, 4],)).unwrap(), 10);
    assert_eq!(vm.gc_stats().live_handles, 0);
    // Builtins and host functions too.
    vm.register_function("host_double", |_, args| {
        Ok(Val::I64(args[0].as_i64().unwrap_or(0) * 2))
    });
    assert_eq!(vm.call::<i64>("host_double", (21i64,)).unwrap(), 42);
    let array: Vec<i64> = vm.call("create_array", ()).unwrap();
    assert!(array.is_empty());
    assert_eq!(
        vm.gc_stats().live_handles,
        0,
        "the result was converted and released"
    );
}

#[test]
fn val_slices_stay_the_callers() {
    let mut vm = vm();
    let items = vm.to_val(vec![5i64, 6]).unwrap();
    assert_eq!(
        vm.call::<i64>("sum", std::slice::from_ref(&items)).unwrap(),
        11
    );
    assert_eq!(vm.call::<i64>("sum", &vec![items.clone()]).unwrap(), 11);
    assert!(
        vm.check(&items).is_ok(),
        "a borrowed argument keeps its handle"
    );
    // A `Val` result is a reference the caller owns.
    let same: Val = vm.call("copy", std::slice::from_ref(&items)).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 2);
    vm.release(&same).unwrap();
    vm.release(&items).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn integers_keep_their_rust_width() {
    // A Rust integer literal is an i32, which is StoffelVM's int32: mixing it with int64 is
    // a type error in the program, as it would be in StoffelLang.
    let mut vm = vm();
    assert_eq!(vm.call::<i64>("add", (2i32, 40i32)).unwrap(), 42);
    assert_eq!(vm.call::<Val>("add", (2i32, 40i32)).unwrap(), Val::I32(42));
    assert!(vm.call::<i64>("add", (2i64, 40i32)).is_err());
}

#[test]
fn wrong_kinds_and_arities_are_errors() {
    let mut vm = vm();
    assert_eq!(
        vm.call::<bool>("add", (1i64, 2i64))
            .unwrap_err()
            .to_string(),
        "expected boolean, got int64"
    );
    // Strict arity, as `execute_with_args`.
    assert!(vm.call::<Val>("add", ()).is_err());
    assert!(vm.call::<Val>("add", (1i64,)).is_err());
    assert!(matches!(
        vm.call::<Val>("nope", ()),
        Err(VmError::Api(ApiError::FunctionNotFound(_)))
    ));
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn a_func_is_looked_up_once_and_follows_its_name() {
    let mut vm = vm();
    let add = vm.function("add").unwrap();
    assert_eq!(add.name(), "add");
    for i in 0..100i64 {
        assert_eq!(vm.call_func::<i64>(&add, (i, 1i64)).unwrap(), i + 1);
    }
    // Reloading the name rebinds it; the Func calls the new definition, as bytecode would.
    vm.load_assembly(".function add(a, b) registers 3\n    MUL r2, r0, r1\n    RET r2\n")
        .unwrap();
    assert_eq!(vm.call_func::<i64>(&add, (6i64, 7i64)).unwrap(), 42);
    assert!(matches!(
        vm.function("missing"),
        Err(VmError::Api(ApiError::FunctionNotFound(_)))
    ));
}

#[test]
fn a_func_of_another_vm_is_refused() {
    let mut a = vm();
    let mut b = vm();
    let add = a.function("add").unwrap();
    let err = b.call_func::<i64>(&add, (1i64, 2i64)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function handle 'add' belongs to another VM"
    );
    assert_eq!(a.call_func::<i64>(&add, (1i64, 2i64)).unwrap(), 3);
}

/// A `Func` as two numbers and back (what the C API's `StoffelFunction` carries): the same
/// function on its own VM; refused on another VM and for numbers no `Func` was made of.
/// `call_func_vals` calls it with `Val`s the caller keeps.
#[test]
fn func_parts_round_trip_only_on_their_vm() {
    let mut a = vm();
    let mut b = vm();
    let add = a.function("add").unwrap();
    let (serial, slot) = add.to_parts();
    assert_ne!(serial, 0);
    let back = a.func_from_parts(serial, slot).unwrap();
    assert_eq!(back.name(), "add");
    let args = [Val::I64(40), Val::I64(2)];
    assert_eq!(a.call_func_vals(&back, &args).unwrap(), Val::I64(42));
    assert_eq!(
        args,
        [Val::I64(40), Val::I64(2)],
        "the caller keeps its arguments"
    );
    // Another VM: its own lookup of the same name has the same slot, another serial.
    let (b_serial, b_slot) = b.function("add").unwrap().to_parts();
    assert_eq!(b_slot, slot);
    assert_ne!(b_serial, serial);
    for (on_b, parts) in [
        (true, (serial, slot)),
        (false, (b_serial, slot)),
        (false, (0, 0)),
        (false, (serial, u64::from(u32::MAX) + 1)),
        (false, (serial, u64::MAX)),
    ] {
        let vm = if on_b { &b } else { &a };
        assert!(
            matches!(
                vm.func_from_parts(parts.0, parts.1),
                Err(VmError::Api(ApiError::InvalidFunc))
            ),
            "{parts:?}"
        );
    }
    // `call_func_vals` refuses another VM's `Func` as `call_func` does.
    assert!(matches!(
        b.call_func_vals(&add, &args),
        Err(VmError::Api(ApiError::ForeignFunc(_)))
    ));
    // Arity is checked as for calls by name.
    assert!(a.call_func_vals(&add, &[Val::I64(1)]).is_err());
}
