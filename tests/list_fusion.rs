//! `len` and `append`, the list builtins the StoffelLang compiler emits, run as fused ops
//! (`PUSHARG a; CALL len`, `PUSHARG a; PUSHARG v; CALL append`) exactly as the plain calls
//! they replace. A traced execution runs one instruction per step and so never fuses: every
//! program here runs both ways and must give the same result or error (kind, function and
//! instruction), the same output and the same instruction count, also under instruction
//! limits that stop it inside a fused sequence, with the names rebound to host functions,
//! with other arguments pending, and under a memory limit.

use std::sync::{Arc, Mutex};

use stoffel_vm::{Output, RuntimeErrorKind, Val, Vm, VmError};

const LISTS: &str = r#"
.function main(n) registers 8
    MOV r7, r0
    CALL create_array
    MOV r1, r0          ; xs
    LDI r2, 0           ; i
    LDI r3, 1
grow:
    CMP r2, r7
    JMPEQ grown
    PUSHARG r1
    PUSHARG r2
    CALL append
    MOV r6, r0          ; append's result
    ADD r2, r2, r3
    JMP grow
grown:
    LDI r4, 0           ; sum
    LDI r2, 0
sum:
    PUSHARG r1
    CALL len
    MOV r5, r0
    CMP r2, r5
    JMPEQ done
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    ADD r4, r4, r0
    ADD r2, r2, r3
    JMP sum
done:
    PUSHARG r4
    PUSHARG r5
    PUSHARG r6
    CALL print
    RET r4

.function text_len(s) registers 2
    PUSHARG r0          ; 0
    CALL len            ; 1
    RET r0              ; 2

.function len_of_int registers 2
    LDI r1, 5           ; 0
    PUSHARG r1          ; 1
    CALL len            ; 2
    RET r0              ; 3

.function len_of_object registers 2
    CALL create_object  ; 0
    MOV r1, r0          ; 1
    PUSHARG r1          ; 2
    CALL len            ; 3
    RET r0              ; 4

.function append_to_string registers 3
    LDI r1, "abc"       ; 0
    LDI r2, 1           ; 1
    PUSHARG r1          ; 2
    PUSHARG r2          ; 3
    CALL append         ; 4
    RET r0              ; 5

.function len_of_two registers 3
    CALL create_array   ; 0
    MOV r1, r0          ; 1
    LDI r2, "abc"       ; 2
    PUSHARG r1          ; 3: pending when the fused len below runs
    PUSHARG r2          ; 4
    CALL len            ; 5
    RET r0              ; 6

.function append_two registers 5
    CALL create_array
    MOV r1, r0
    LDI r2, 7
    LDI r3, 8
    PUSHARG r1          ; append(xs, 7, 8): the fused append(7, 8) runs unfused
    PUSHARG r2
    PUSHARG r3
    CALL append
    PUSHARG r1
    CALL len
    MOV r4, r0
    PUSHARG r1
    CALL print
    RET r4

.function append_nothing registers 2
    CALL create_array   ; 0
    MOV r1, r0          ; 1
    PUSHARG r1          ; 2
    CALL append         ; 3
    RET r0              ; 4

.function fill(xs) registers 4
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
again:
    PUSHARG r1          ; 3
    PUSHARG r2          ; 4
    CALL append         ; 5
    ADD r2, r2, r3
    JMP again
"#;

/// What one run did: its result or error (kind, function, instruction), what it printed,
/// the instructions it ran.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: String,
    stdout: String,
    instructions: u64,
}

/// A VM with [`LISTS`] loaded, output captured; `traced` runs one instruction per step.
fn vm(traced: bool) -> (Vm, Arc<Mutex<String>>) {
    let mut vm = Vm::new();
    let stdout = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stdout);
    vm.set_output(Output::Callback(Box::new(move |text: &str| {
        sink.lock().unwrap().push_str(text)
    })));
    if traced {
        vm.set_trace(Some(Box::new(|_: &str| {})));
    }
    vm.load_assembly(LISTS).expect("the program assembles");
    (vm, stdout)
}

fn run_on(vm: &mut Vm, stdout: &Mutex<String>, entry: &str, args: &[Val]) -> Outcome {
    let before = vm.instructions_executed();
    let result = match vm.execute(entry, args) {
        Ok(v) => format!("ok {v:?}"),
        Err(VmError::Runtime(e)) => {
            format!("error {:?} in {} at {}", e.kind, e.function, e.instruction)
        }
        Err(e) => format!("other error {e}"),
    };
    Outcome {
        result,
        stdout: std::mem::take(&mut *stdout.lock().unwrap()),
        instructions: vm.instructions_executed() - before,
    }
}

/// Runs `entry` plain (fused) and traced (unfused) under `limit`; asserts they agree.
fn both(entry: &str, args: &[Val], limit: Option<u64>) -> Outcome {
    let runs: Vec<Outcome> = [false, true]
        .into_iter()
        .map(|traced| {
            let (mut vm, stdout) = vm(traced);
            vm.set_instruction_limit(limit);
            run_on(&mut vm, &stdout, entry, args)
        })
        .collect();
    let [plain, traced] = <[Outcome; 2]>::try_from(runs).expect("two runs");
    assert_eq!(plain, traced, "{entry} {args:?} with limit {limit:?}");
    plain
}

/// Every instruction limit from 1 to the whole run, plain and traced alike.
fn every_limit(entry: &str, args: &[Val]) {
    let all = both(entry, args, None).instructions;
    assert!(all > 0);
    for limit in 1..=all {
        let limited = both(entry, args, Some(limit));
        assert_eq!(
            limited.result.contains("FuelExhausted"),
            limit < all,
            "{entry} with limit {limit} of {all}: {}",
            limited.result
        );
    }
}

#[test]
fn len_and_append_give_the_plain_calls_results_and_counts() {
    for n in [0i64, 1, 2, 3, 10, 100] {
        let outcome = both("main", &[Val::I64(n)], None);
        assert_eq!(
            outcome.result,
            format!("ok {:?}", Val::I64(n * (n - 1) / 2))
        );
        // `append` gives Unit (its result is printed last), `len` the length.
        assert_eq!(outcome.stdout, format!("{} {n} ()\n", n * (n - 1) / 2));
        // Every instruction of the fused sequences counts: 5 to start, 8 per append round
        // and 2 to leave, 2, 11 per sum round and 5 to leave, 5 at the end.
        let n = n as u64;
        assert_eq!(outcome.instructions, 5 + 8 * n + 2 + 2 + 11 * n + 5 + 5);
    }
}

#[test]
fn instruction_limits_inside_the_fused_sequences_stop_where_the_plain_calls_do() {
    every_limit("main", &[Val::I64(3)]);
    every_limit("append_two", &[]);
    every_limit("len_of_two", &[]);
}

#[test]
fn len_of_a_string_counts_characters_and_charges_their_bytes() {
    for text in ["", "abc", "héllo wörld"] {
        let outcome = both("text_len", &[Val::from(text)], None);
        assert_eq!(
            outcome.result,
            format!("ok {:?}", Val::I64(text.chars().count() as i64))
        );
        assert_eq!(outcome.instructions, 3);
    }
    // A long string costs instruction budget beyond the free work: the same either way, and
    // a limit that cannot pay for it stops the program at the same place either way.
    let long: String = "äbc".repeat(20_000);
    let outcome = both("text_len", &[Val::from(long.as_str())], None);
    assert_eq!(outcome.result, format!("ok {:?}", Val::I64(60_000)));
    assert!(outcome.instructions > 3 + 1000, "{outcome:?}");
    let all = outcome.instructions;
    for limit in [1, 2, 3, 4, 100, all / 2, all - 1, all] {
        let limited = both("text_len", &[Val::from(long.as_str())], Some(limit));
        assert_eq!(limited.result.contains("FuelExhausted"), limit < all);
    }
}

#[test]
fn wrong_kinds_fail_with_the_plain_calls_errors_at_the_call() {
    let error = |builtin: &'static str, message: &str, function: &str, at: usize| {
        let kind = RuntimeErrorKind::Builtin {
            builtin,
            message: message.into(),
        };
        format!("error {kind:?} in {function} at {at}")
    };
    let cases = [
        (
            "len_of_int",
            error(
                "len",
                "First argument must be an array or string",
                "len_of_int",
                2,
            ),
        ),
        (
            "len_of_object",
            error(
                "len",
                "First argument must be an array or string",
                "len_of_object",
                3,
            ),
        ),
        (
            "append_to_string",
            error(
                "append",
                "First argument must be an array",
                "append_to_string",
                4,
            ),
        ),
        (
            "len_of_two",
            error("len", "expects 1 argument: array", "len_of_two", 5),
        ),
        (
            "append_nothing",
            error(
                "append",
                "expects at least 2 arguments: array and value",
                "append_nothing",
                3,
            ),
        ),
    ];
    for (entry, expected) in cases {
        assert_eq!(both(entry, &[], None).result, expected, "{entry}");
    }
}

#[test]
fn an_argument_pending_before_the_sequence_goes_to_the_builtin() {
    let outcome = both("append_two", &[], None);
    assert_eq!(outcome.result, format!("ok {:?}", Val::I64(2)));
    assert_eq!(outcome.stdout, "[7, 8]\n");
}

#[test]
fn rebound_names_go_to_the_host_functions() {
    for traced in [false, true] {
        let (mut vm, stdout) = vm(traced);
        let plain = run_on(&mut vm, &stdout, "main", &[Val::I64(4)]);
        assert_eq!(plain.result, format!("ok {:?}", Val::I64(6)));
        // After loading, `len` says 2 whatever it is given and `append` returns its
        // argument count: the sum loop stops after two elements.
        vm.register_function("len", |_, args| Ok(Val::I64(args.len() as i64 + 1)));
        vm.register_function("append", |_, args| Ok(Val::I64(10 * args.len() as i64)));
        let rebound = run_on(&mut vm, &stdout, "main", &[Val::I64(4)]);
        // Nothing was appended: the host's append does not; get_field of a missing index
        // below the host's `len` is an error at the get_field.
        assert!(rebound.result.contains("get_field"), "{rebound:?}");
        let text = run_on(&mut vm, &stdout, "text_len", &[Val::from("abcdef")]);
        assert_eq!(text.result, format!("ok {:?}", Val::I64(2)));
        let two = run_on(&mut vm, &stdout, "append_two", &[]);
        assert_eq!(two.result, format!("ok {:?}", Val::I64(2)));
        assert_eq!(two.stdout, "[]\n");
        vm.register_function("len", |_, _| {
            Err(stoffel_vm::HostError::new("len is not here"))
        });
        let failed = run_on(&mut vm, &stdout, "len_of_int", &[]);
        assert!(
            failed.result.contains("len is not here") && failed.result.ends_with("at 2"),
            "{failed:?}"
        );
    }
    // The same, compared run for run.
    let runs: Vec<Vec<Outcome>> = [false, true]
        .into_iter()
        .map(|traced| {
            let (mut vm, stdout) = vm(traced);
            vm.register_function("len", |_, args| Ok(Val::I64(args.len() as i64 + 1)));
            vm.register_function("append", |_, args| Ok(Val::I64(10 * args.len() as i64)));
            let three = [Val::I64(3)];
            [
                ("main", &three[..]),
                ("append_two", &[]),
                ("len_of_two", &[]),
                ("append_nothing", &[]),
            ]
            .into_iter()
            .map(|(entry, args)| run_on(&mut vm, &stdout, entry, args))
            .collect()
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn appending_stops_at_the_memory_limit_at_the_call_either_way() {
    let limit = 1 << 20;
    let mut lengths = Vec::new();
    for traced in [false, true] {
        let (mut vm, stdout) = vm(traced);
        vm.set_memory_limit(Some(limit));
        let array = vm.create_array().unwrap();
        let outcome = run_on(&mut vm, &stdout, "fill", std::slice::from_ref(&array));
        assert_eq!(
            outcome.result,
            format!(
                "error {:?} in fill at 5",
                RuntimeErrorKind::MemoryLimit(limit)
            )
        );
        let length = vm.array_length(&array).unwrap();
        lengths.push((length, outcome.instructions));
        // The array grew until the limit, and the VM is usable afterwards.
        assert!(length as usize * 16 > limit / 4, "only {length} elements");
        vm.release(&array).unwrap();
        vm.collect_all();
        let again = run_on(&mut vm, &stdout, "main", &[Val::I64(5)]);
        assert_eq!(again.result, format!("ok {:?}", Val::I64(10)));
    }
    assert_eq!(lengths[0], lengths[1]);
}
