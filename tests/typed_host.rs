//! Host functions from typed closures (issue 17 item 2): argument checking with generated
//! messages, conversions both ways, and the closure's own error value kept as the error's
//! typed source.

use std::collections::BTreeMap;

use stoffel_vm::{HostError, RuntimeErrorKind, Val, Vm, VmError};

#[derive(Debug, PartialEq)]
struct Insufficient {
    short_by: i64,
}

impl std::fmt::Display for Insufficient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "insufficient funds: short by {}", self.short_by)
    }
}

impl std::error::Error for Insufficient {}

fn message(e: VmError) -> String {
    match e {
        VmError::Runtime(r) => match r.kind {
            RuntimeErrorKind::Host { message, .. } => message,
            other => panic!("expected a host failure, got {other:?}"),
        },
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

#[test]
fn arguments_and_results_convert() {
    let mut vm = Vm::new();
    vm.register_fn("add", |a: i64, b: i64| a + b);
    vm.register_fn("shout", |s: String| s.to_uppercase());
    vm.register_fn("total", |xs: Vec<u8>| {
        xs.iter().map(|&x| i64::from(x)).sum::<i64>()
    });
    vm.register_fn("keys", |m: BTreeMap<String, f64>| {
        m.into_keys().collect::<Vec<_>>()
    });
    vm.register_fn("maybe", |x: Option<i64>| x.map(|v| v * 10));
    vm.register_fn("nothing", || ());
    assert_eq!(vm.call::<i64>("add", (40i64, 2i64)).unwrap(), 42);
    assert_eq!(vm.call::<String>("shout", ("hi",)).unwrap(), "HI");
    assert_eq!(vm.call::<i64>("total", (vec![1u8, 2, 250],)).unwrap(), 253);
    let map = BTreeMap::from([("b".to_owned(), 1.0), ("a".to_owned(), 2.0)]);
    assert_eq!(vm.call::<Vec<String>>("keys", (map,)).unwrap(), ["a", "b"]);
    assert_eq!(vm.call::<Option<i64>>("maybe", (Val::Unit,)).unwrap(), None);
    assert_eq!(vm.call::<Option<i64>>("maybe", (4i64,)).unwrap(), Some(40));
    assert_eq!(vm.call::<()>("nothing", ()).unwrap(), ());
    assert_eq!(
        vm.gc_stats().live_handles,
        0,
        "conversions leave no handle behind"
    );
}

#[test]
fn bytecode_calls_typed_host_functions() {
    let mut vm = Vm::new();
    vm.register_fn("scale", |x: i64, by: i64| x * by);
    vm.load_assembly(
        ".function main registers 3\n    LDI r1, 6\n    LDI r2, 7\n    PUSHARG r1\n    PUSHARG r2\n    CALL scale\n    RET r0\n",
    )
    .unwrap();
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
}

#[test]
fn wrong_arguments_get_generated_messages() {
    let mut vm = Vm::new();
    vm.register_fn("add", |a: i64, b: i64| a + b);
    vm.register_fn("one", |s: String| s);
    assert_eq!(
        message(vm.call::<Val>("add", (1i64,)).unwrap_err()),
        "expects 2 arguments, got 1"
    );
    assert_eq!(
        message(vm.call::<Val>("one", ()).unwrap_err()),
        "expects 1 argument, got 0"
    );
    assert_eq!(
        message(vm.call::<Val>("add", (1i64, "x")).unwrap_err()),
        "argument 2: expected i64, got string"
    );
    assert_eq!(
        message(vm.call::<Val>("add", (u64::MAX, 1i64)).unwrap_err()),
        "argument 1: expected i64, got uint64 18446744073709551615, which does not fit"
    );
    // Integers of other widths that fit are accepted.
    assert_eq!(vm.call::<i64>("add", (1u8, 2i32)).unwrap(), 3);
}

#[test]
fn the_closures_error_value_comes_back_typed() {
    let mut vm = Vm::new();
    vm.register_fn("withdraw", |balance: i64, amount: i64| {
        if amount > balance {
            Err(Insufficient {
                short_by: amount - balance,
            })
        } else {
            Ok(balance - amount)
        }
    });
    assert_eq!(vm.call::<i64>("withdraw", (10i64, 3i64)).unwrap(), 7);
    let err = vm.call::<i64>("withdraw", (10i64, 15i64)).unwrap_err();
    assert_eq!(
        err.host_error::<Insufficient>(),
        Some(&Insufficient { short_by: 5 })
    );
    assert!(err.host_error::<std::fmt::Error>().is_none());
    assert_eq!(message(err), "insufficient funds: short by 5");

    // Through bytecode too: the error of the call that failed inside the program.
    vm.load_assembly(
        ".function main registers 3\n    LDI r1, 1\n    LDI r2, 2\n    PUSHARG r1\n    PUSHARG r2\n    CALL withdraw\n    RET r0\n",
    )
    .unwrap();
    let err = vm.execute("main", &[]).unwrap_err();
    assert_eq!(
        err.host_error::<Insufficient>(),
        Some(&Insufficient { short_by: 1 })
    );
}

#[test]
fn a_host_error_is_passed_on_as_it_is() {
    let mut vm = Vm::new();
    vm.register_fn("fail", || -> Result<i64, HostError> {
        Err(HostError::new("plain"))
    });
    let err = vm.call::<i64>("fail", ()).unwrap_err();
    assert_eq!(message(err.clone()), "plain");
    assert!(
        err.host_error::<HostError>().is_none(),
        "not wrapped as an external value"
    );
}

#[test]
fn val_parameters_are_the_arguments_themselves() {
    let mut vm = Vm::new();
    vm.register_fn("first_field", |obj: Val| obj);
    let obj = vm.create_object().unwrap();
    vm.set_field(&obj, &Val::from("k"), &Val::I64(1)).unwrap();
    // Returned as is: the VM keeps one reference for the result and the caller keeps its own.
    let back: Val = vm.call("first_field", std::slice::from_ref(&obj)).unwrap();
    assert_eq!(vm.get_field(&back, &Val::from("k")).unwrap(), Val::I64(1));
    vm.release(&back).unwrap();
    vm.release(&obj).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}
