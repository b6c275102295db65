//! Loops whose only non-simple ops are the fused `get_field`, `set_field`, `array_push`,
//! `append`, `array_length` and `len` run in the inner loop (`interp/fast.rs`), which runs
//! those builtins' common cases (a field or element read, a write or push that needs no
//! memory, a length) itself and hands every other case back to the general loop before
//! running it. Each program here leaves the inner loop at such an op in another way: a value
//! of another kind mid-loop, a missing field, an index out of range, an array that must grow,
//! the memory limit, an argument already pending, the name rebound to a host function. A
//! plain run must agree with a traced one (which runs one instruction per step and never
//! fuses) on the result or error (kind, function, instruction) and on the instructions run,
//! without a limit and under every instruction limit up to the total.

use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

/// Pushes 0..n twice (`array_push`, then `append`: the array grows as it fills), then sums
/// it by index up to and including its length (`array_length`, `get_field`): the last read
/// is out of range, unless `main` stops one short.
const ARRAYS: &str = r#"
.function main(n, past) registers 10
    MOV r8, r0
    MOV r9, r1
    CALL create_array
    MOV r1, r0          ; xs
    LDI r2, 0           ; i
    LDI r3, 1
grow:
    CMP r2, r8
    JMPEQ grown
    PUSHARG r1
    PUSHARG r2
    CALL array_push
    MOV r6, r0          ; array_push's result: the new length
    PUSHARG r1
    PUSHARG r2
    CALL append
    ADD r2, r2, r3
    JMP grow
grown:
    LDI r4, 0           ; sum
    LDI r2, 0
sum:
    PUSHARG r1
    CALL array_length
    MOV r5, r0
    ADD r5, r5, r9      ; one past the end when `past` is 1
    CMP r2, r5
    JMPEQ done
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    ADD r4, r4, r0
    ADD r2, r2, r3
    JMP sum
done:
    ADD r4, r4, r6
    RET r4
"#;

/// Writes an existing field and a new one each round (in place while the object has inline
/// room, then growing), reads a missing field (Unit) and the existing one, with `len` of a
/// list read each round.
const OBJECTS: &str = r#"
.function main(n) registers 10
    MOV r8, r0
    CALL create_object
    MOV r1, r0          ; o
    CALL create_array
    MOV r9, r0          ; an empty list
    LDI r2, 0           ; i
    LDI r3, 1
    LDI r4, 0           ; sum
    LDI r7, "x"
    LDI r6, "missing"
top:
    CMP r2, r8
    JMPEQ done
    PUSHARG r1
    PUSHARG r7
    PUSHARG r2
    CALL set_field
    PUSHARG r1
    PUSHARG r2
    PUSHARG r2
    CALL set_field
    PUSHARG r1
    PUSHARG r6
    CALL get_field
    MOV r5, r0
    PUSHARG r1
    PUSHARG r7
    CALL get_field
    ADD r4, r4, r0
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    ADD r4, r4, r0
    PUSHARG r9
    CALL len
    ADD r4, r4, r0
    ADD r2, r2, r3
    JMP top
done:
    PUSHARG r5
    CALL type
    MOV r5, r0
    PUSHARG r4
    PUSHARG r5
    CALL print
    RET r4
"#;

/// The value read and measured changes kind mid-loop: an array, then a string (`get_field`
/// makes a one-character string, `array_length` counts characters), then an integer
/// (`get_field` gives Unit, `array_length` fails).
const KINDS: &str = r#"
.function main registers 10
    CALL create_array
    MOV r1, r0
    LDI r2, 0
    PUSHARG r1
    PUSHARG r2
    CALL append
    LDI r5, "text"
    LDI r6, 7
    LDI r3, 1
    LDI r8, 0           ; round
    LDI r9, 0           ; sum of lengths
top:
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    MOV r7, r0
    PUSHARG r1
    CALL array_length
    ADD r9, r9, r0
    ADD r8, r8, r3
    LDI r0, 3
    CMP r8, r0
    JMPNEQ keep
    MOV r1, r5
keep:
    LDI r0, 6
    CMP r8, r0
    JMPNEQ next
    MOV r1, r6
next:
    JMP top
"#;

/// `set_field` and `get_field` on a value that is an object, then an array (a key that is
/// not an index: the write allocates), then a string (`set_field` fails).
const WRITES: &str = r#"
.function main registers 10
    CALL create_object
    MOV r1, r0
    CALL create_array
    MOV r4, r0
    LDI r5, "text"
    LDI r2, "k"
    LDI r3, 1
    LDI r8, 0
    LDI r9, 0
top:
    PUSHARG r1
    PUSHARG r2
    PUSHARG r8
    CALL set_field
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    ADD r9, r9, r0
    ADD r8, r8, r3
    LDI r0, 3
    CMP r8, r0
    JMPNEQ keep
    MOV r1, r4
keep:
    LDI r0, 6
    CMP r8, r0
    JMPNEQ next
    MOV r1, r5
next:
    JMP top
"#;

/// An argument pushed before each fused op in the loop: `get_field(xs, i, 1)` and
/// `array_push(xs, xs_len_before, i)`: the fused ops run unfused, their builtins take all
/// arguments.
const PENDING: &str = r#"
.function main(n) registers 8
    MOV r7, r0
    CALL create_array
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
    LDI r4, 0
fill:
    PUSHARG r1
    PUSHARG r2
    CALL append
    ADD r2, r2, r3
    CMP r2, r7
    JMPEQ filled
    JMP fill
filled:
    LDI r2, 0
sum:
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL get_field
    ADD r4, r4, r0
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL array_push
    ADD r2, r2, r3
    CMP r2, r7
    JMPEQ done
    JMP sum
done:
    PUSHARG r1
    CALL len
    ADD r4, r4, r0
    RET r4
"#;

/// Appends forever: stops at the memory limit (at the `append`).
const FILL: &str = r#"
.function main registers 4
    CALL create_array
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
again:
    PUSHARG r1
    PUSHARG r2
    CALL append
    ADD r2, r2, r3
    JMP again
"#;

/// Makes an object each round, writes and reads a field of it; with `extra` 1, a PUSHARG
/// before every `create_object` leaves an argument pending at it.
const NEW_OBJECTS: &str = r#"
.function main(n, extra) registers 10
    MOV r8, r0
    MOV r9, r1
    LDI r2, 0
    LDI r3, 1
    LDI r4, 0           ; sum
    LDI r7, "k"
top:
    CMP r2, r8
    JMPEQ done
    CMP r9, r3
    JMPEQ with_extra
make:
    CALL create_object
    MOV r1, r0
    PUSHARG r1
    PUSHARG r7
    PUSHARG r2
    CALL set_field
    PUSHARG r1
    PUSHARG r7
    CALL get_field
    ADD r4, r4, r0
    ADD r2, r2, r3
    JMP top
with_extra:
    PUSHARG r2
    JMP make
done:
    RET r4
"#;

/// One run's result or error (kind, function, instruction) and instructions run.
fn run(
    source: &str,
    args: &[Val],
    setup: &dyn Fn(&mut Vm),
    traced: bool,
    limit: Option<u64>,
    memory: Option<usize>,
) -> (String, u64) {
    let mut vm = Vm::new();
    vm.set_output(stoffel_vm::Output::Callback(Box::new(|_: &str| {})));
    if traced {
        vm.set_trace(Some(Box::new(|_: &str| {})));
    }
    vm.load_assembly(source).expect("the program assembles");
    setup(&mut vm);
    vm.set_instruction_limit(limit);
    vm.set_memory_limit(memory);
    let before = vm.instructions_executed();
    let result = match vm.execute("main", args) {
        Ok(v) => format!("ok {v:?}"),
        Err(VmError::Runtime(e)) => {
            format!("error {:?} in {} at {}", e.kind, e.function, e.instruction)
        }
        Err(e) => format!("other error {e}"),
    };
    (result, vm.instructions_executed() - before)
}

/// Runs `source` plain and traced, without a limit and under every instruction limit up to
/// the total; asserts they agree and returns the unlimited run.
fn agree(source: &str, args: &[Val], setup: &dyn Fn(&mut Vm)) -> (String, u64) {
    let whole = run(source, args, setup, false, None, None);
    assert_eq!(
        whole,
        run(source, args, setup, true, None, None),
        "{source} {args:?}"
    );
    let (_, all) = whole;
    assert!(all > 20, "{source} ran only {all} instructions");
    for limit in 1..=all {
        let plain = run(source, args, setup, false, Some(limit), None);
        assert_eq!(
            plain,
            run(source, args, setup, true, Some(limit), None),
            "{source} {args:?} with limit {limit}"
        );
        assert_eq!(
            plain.0.contains("FuelExhausted"),
            limit < all,
            "{source} {args:?} with limit {limit} of {all}: {}",
            plain.0
        );
    }
    whole
}

fn none(_: &mut Vm) {}

fn builtin_error(builtin: &'static str, message: &str, at: usize) -> String {
    let kind = RuntimeErrorKind::Builtin {
        builtin,
        message: message.into(),
    };
    format!("error {kind:?} in main at {at}")
}

#[test]
fn arrays_that_grow_and_an_index_past_the_end() {
    for n in [1i64, 2, 5, 40] {
        let (result, _) = agree(ARRAYS, &[Val::I64(n), Val::I64(0)], &none);
        // Each i twice, plus the length array_push returned last.
        let sum = n * (n - 1) + 2 * n - 1;
        assert_eq!(result, format!("ok {:?}", Val::I64(sum)), "n = {n}");
    }
    let (result, _) = agree(ARRAYS, &[Val::I64(6), Val::I64(1)], &none);
    assert_eq!(
        result,
        builtin_error("get_field", "array index 12 out of range (length 12)", 27)
    );
}

#[test]
fn objects_written_in_place_and_grown_with_missing_fields() {
    let (result, _) = agree(OBJECTS, &[Val::I64(12)], &none);
    // x = i and field i = i: 2 * (0 + … + 11); the list stays empty.
    assert_eq!(result, format!("ok {:?}", Val::I64(132)));
}

#[test]
fn values_of_other_kinds_mid_loop() {
    let (result, _) = agree(KINDS, &[], &none);
    assert_eq!(
        result,
        builtin_error(
            "array_length",
            "First argument must be an array or string",
            16
        )
    );
    let (result, _) = agree(WRITES, &[], &none);
    assert_eq!(
        result,
        builtin_error("set_field", "Expected object or array", 12)
    );
}

#[test]
fn arguments_already_pending() {
    let (result, _) = agree(PENDING, &[Val::I64(7)], &none);
    // get_field(xs, i, 1) reads xs[i] (0 + … + 6); array_push(xs, i, 1) pushes two each
    // round: the length ends at 7 + 14.
    assert_eq!(result, format!("ok {:?}", Val::I64(21 + 21)));
}

#[test]
fn names_rebound_to_host_functions() {
    let rebind = |vm: &mut Vm| {
        // `array_length` says 3 whatever it is given, `get_field` gives its argument count,
        // `len` 10, `set_field` fails from the third call on.
        vm.register_function("array_length", |_, _| Ok(Val::I64(3)));
        vm.register_function("get_field", |_, args| Ok(Val::I64(args.len() as i64)));
        vm.register_function("len", |_, _| Ok(Val::I64(10)));
        let calls = std::sync::atomic::AtomicU32::new(0);
        vm.register_function("set_field", move |_, _| {
            if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 2 {
                Err(stoffel_vm::HostError::new("no more writes"))
            } else {
                Ok(Val::Unit)
            }
        });
    };
    let (result, _) = agree(ARRAYS, &[Val::I64(5), Val::I64(0)], &rebind);
    // The sum loop reads three elements, each as 2 (the argument count), plus the length
    // the last array_push returned (9).
    assert_eq!(result, format!("ok {:?}", Val::I64(15)));
    let (result, _) = agree(OBJECTS, &[Val::I64(4)], &rebind);
    assert!(result.contains("no more writes"), "{result}");
}

/// Every memory limit from 1 KiB to 64 KiB (by 512 bytes) and some larger ones: the fused
/// ops stop where the traced run does. (Until the fused ops ran only when the pending stack
/// had room for their arguments, a run whose pending stack had never grown needed it to
/// grow at the first refusal and stopped earlier, at the PUSHARG: at 16 KiB, after 4,094
/// instructions instead of 4,961.)
#[test]
fn the_memory_limit_stops_a_growing_array_at_the_same_place() {
    let tight = (2..=128).map(|half_kib| half_kib << 9);
    for memory in tight.chain([256 << 10, 1 << 20]) {
        let plain = run(FILL, &[], &none, false, None, Some(memory));
        assert_eq!(
            plain,
            run(FILL, &[], &none, true, None, Some(memory)),
            "memory limit {memory}"
        );
        assert!(plain.0.contains("MemoryLimit"), "{memory}: {}", plain.0);
        if memory >= 16 << 10 {
            let expected = format!(
                "error {:?} in main at 6",
                RuntimeErrorKind::MemoryLimit(memory)
            );
            assert_eq!(plain.0, expected);
        }
        for (source, args) in [
            (ARRAYS, vec![Val::I64(300), Val::I64(0)]),
            (OBJECTS, vec![Val::I64(40)]),
        ] {
            assert_eq!(
                run(source, &args, &none, false, None, Some(memory)),
                run(source, &args, &none, true, None, Some(memory)),
                "{source} {args:?} with memory limit {memory}"
            );
        }
    }
    // A memory limit and an instruction limit together, at every 13th instruction.
    let memory = 24 << 10;
    let args = [Val::I64(1000), Val::I64(0)];
    let (result, all) = run(ARRAYS, &args, &none, false, None, Some(memory));
    assert!(result.contains("MemoryLimit"), "{result}");
    for limit in (1..=all).step_by(13).chain([all - 1, all]) {
        assert_eq!(
            run(ARRAYS, &args, &none, false, Some(limit), Some(memory)),
            run(ARRAYS, &args, &none, true, Some(limit), Some(memory)),
            "with limit {limit}"
        );
    }
}

/// `create_object` in a loop: made in the inner loop while the name means the builtin and
/// nothing is pending; rebound to a host function (which gives an integer from its third
/// call on, so `set_field` then fails), or with an argument pending, it goes the general
/// way. Plain and traced runs agree under every instruction limit, and under every memory
/// limit from 1 KiB to 32 KiB.
#[test]
fn objects_made_in_a_loop() {
    let (result, _) = agree(NEW_OBJECTS, &[Val::I64(6), Val::I64(0)], &none);
    assert_eq!(result, format!("ok {:?}", Val::I64(15)));
    let (result, _) = agree(NEW_OBJECTS, &[Val::I64(4), Val::I64(1)], &none);
    assert_eq!(result, format!("ok {:?}", Val::I64(6)));
    let rebind = |vm: &mut Vm| {
        let calls = std::sync::atomic::AtomicU32::new(0);
        vm.register_function("create_object", move |vm, _| {
            if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 2 {
                Ok(Val::I64(7))
            } else {
                vm.create_object()
                    .map_err(|e| stoffel_vm::HostError::new(e.to_string()))
            }
        });
    };
    let (result, _) = agree(NEW_OBJECTS, &[Val::I64(5), Val::I64(0)], &rebind);
    assert!(result.contains("Expected object or array"), "{result}");
    let args = [Val::I64(400), Val::I64(0)];
    for memory in (2..=64).map(|half_kib| half_kib << 9) {
        assert_eq!(
            run(NEW_OBJECTS, &args, &none, false, None, Some(memory)),
            run(NEW_OBJECTS, &args, &none, true, None, Some(memory)),
            "memory limit {memory}"
        );
    }
}
