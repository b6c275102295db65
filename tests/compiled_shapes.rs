//! Fused ops are exact on real compiler output. The interpreter runs some instruction
//! sequences as one op (compare-and-branch pairs, builtin calls with their arguments, and the
//! StoffelLang compiler's eight-instruction condition shape); a traced execution runs one
//! instruction per step and so never fuses. For every program of `tests/conformance-v9/`, a
//! plain run and a traced run must agree on the result, the output, the number of
//! instructions executed, and, under every instruction limit up to 300 and just below the
//! total, on where the limit stopped the program.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{Case, expected_cases};
use stoffel_vm::{Output, Vm};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-v9")
}

/// What one run did: its result (or error message), its output, the instructions it ran.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: String,
    stdout: String,
    instructions: u64,
}

fn run(bytes: &[u8], entry: &str, traced: bool, limit: Option<u64>) -> Outcome {
    let mut vm = Vm::new();
    // Shared through a mutex so the test builds with the `send` feature too.
    let stdout = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stdout);
    vm.set_output(Output::Callback(Box::new(move |text: &str| {
        sink.lock().unwrap().push_str(text)
    })));
    if traced {
        vm.set_trace(Some(Box::new(|_: &str| {})));
    }
    vm.set_instruction_limit(limit);
    vm.load_bytecode(bytes).expect("the program loads");
    let before = vm.instructions_executed();
    let result = match vm.execute(entry, &[]) {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("error {e}"),
    };
    let instructions = vm.instructions_executed() - before;
    let stdout = stdout.lock().unwrap().clone();
    Outcome {
        result,
        stdout,
        instructions,
    }
}

fn cases() -> Vec<(Case, Vec<u8>)> {
    let cases: Vec<(Case, Vec<u8>)> = expected_cases(&dir())
        .into_iter()
        .map(|case| {
            let bytes = std::fs::read(dir().join(format!("{}.stflb", case.name)))
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            (case, bytes)
        })
        .collect();
    assert!(cases.len() >= 60, "only {} programs", cases.len());
    cases
}

#[test]
fn plain_and_traced_runs_agree_on_every_compiled_program() {
    let mut total = 0;
    for (case, bytes) in cases() {
        let plain = run(&bytes, &case.entry, false, None);
        let traced = run(&bytes, &case.entry, true, None);
        assert_eq!(plain, traced, "{}", case.name);
        total += plain.instructions;
    }
    assert!(total > 10_000, "the programs ran only {total} instructions");
}

#[test]
fn instruction_limits_stop_fused_and_single_steps_at_the_same_place() {
    let mut limited = 0;
    for (case, bytes) in cases() {
        let all = run(&bytes, &case.entry, false, None).instructions;
        let mut limits: Vec<u64> = (1..=all.min(300)).collect();
        limits.extend([all.saturating_sub(2), all.saturating_sub(1), all]);
        limits.retain(|&l| l > 0);
        limits.dedup();
        for limit in limits {
            let plain = run(&bytes, &case.entry, false, Some(limit));
            let traced = run(&bytes, &case.entry, true, Some(limit));
            assert_eq!(plain, traced, "{} with limit {limit}", case.name);
            if limit < all {
                assert!(
                    plain.result.contains("instruction limit"),
                    "{} with limit {limit} of {all}: {}",
                    case.name,
                    plain.result
                );
                limited += 1;
            } else {
                assert!(!plain.result.contains("instruction limit"), "{}", case.name);
            }
        }
    }
    assert!(limited > 5_000, "only {limited} limited runs");
}

/// The condition shape in assembly, with what it leaves behind read afterwards: the Bool
/// register (`ret` = `b`), the `false` register (`ret` = `f`) and the compare flag (a branch
/// on it right after). Same answers plain and traced, on both paths.
#[test]
fn the_condition_shape_leaves_its_registers_and_flag_as_the_instructions_would() {
    let shape = |ret: &str| {
        format!(
            ".function main(x, y) registers 5
    CMP r0, r1
    JMPLT t
    LDI r2, false
    JMP e
t:
    LDI r2, true
e:
    LDI r3, false
    CMP r2, r3
    JMPEQ no
    JMPGT yes_flag
    LDI r4, \"flag after the true path is not 'greater'\"
    RET r4
yes_flag:
    RET {ret}
no:
    JMPEQ no_flag
    LDI r4, \"flag after the false path is not 'equal'\"
    RET r4
no_flag:
    RET {ret}
"
        )
    };
    for (ret, expect_true, expect_false) in [
        ("r2", "Bool(true)", "Bool(false)"),
        ("r3", "Bool(false)", "Bool(false)"),
    ] {
        for traced in [false, true] {
            for (x, y, expected) in [
                (1, 2, expect_true),
                (2, 1, expect_false),
                (3, 3, expect_false),
            ] {
                let mut vm = Vm::new();
                if traced {
                    vm.set_trace(Some(Box::new(|_: &str| {})));
                }
                vm.load_assembly(&shape(ret)).unwrap();
                let v = vm.execute("main", &[x.into(), (y as i64).into()]).unwrap();
                assert_eq!(
                    format!("{v:?}"),
                    expected,
                    "{ret} x={x} y={y} traced={traced}"
                );
            }
        }
    }
}

/// The compiler's statement pairs (`LDI k, n; ADD t, a, k`, `MOV x, t; LDI t, ()`,
/// `LDI t, (); JMP l`) run as one op only when both instructions surely succeed. Where the
/// arithmetic fails (overflow, `MOD` by a non-positive constant, a non-integer operand) or
/// the limit falls between the two, the plain run must report what the traced one does.
#[test]
fn statement_pairs_fail_and_stop_where_their_instructions_would() {
    let program = |constant: &str, op: &str, start: &str| {
        format!(
            ".function main registers 4
    LDI r1, {start}
    LDI r2, 0
top:
    LDI r3, {constant}
    {op} r3, r1, r3
    MOV r1, r3
    LDI r3, ()
    LDI r3, 1
    ADD r3, r2, r3
    MOV r2, r3
    LDI r3, 3
    CMP r2, r3
    JMPEQ done
    LDI r3, ()
    JMP top
done:
    RET r1
"
        )
    };
    let cases = [
        ("1", "ADD", "9223372036854775805"),
        ("2", "MUL", "4611686018427387903"),
        ("1", "SUB", "-9223372036854775807"),
        ("0", "MOD", "10"),
        ("-3", "MOD", "10"),
        ("5", "MOD", "\"text\""),
        ("7", "ADD", "\"text\""),
        ("7", "ADD", "40"),
        ("1000003", "MOD", "123456789"),
    ];
    let mut errors = 0;
    for (constant, op, start) in cases {
        let source = program(constant, op, start);
        let run = |traced: bool, limit: Option<u64>| {
            let mut vm = Vm::new();
            if traced {
                vm.set_trace(Some(Box::new(|_: &str| {})));
            }
            vm.set_instruction_limit(limit);
            vm.load_assembly(&source).unwrap();
            let result = match vm.execute("main", &[]) {
                Ok(v) => format!("ok {v:?}"),
                Err(e) => format!("error {e}"),
            };
            (result, vm.instructions_executed())
        };
        let (plain, all) = run(false, None);
        assert_eq!(
            (plain.clone(), all),
            run(true, None),
            "{op} {constant} {start}"
        );
        if plain.starts_with("error") {
            errors += 1;
        }
        for limit in 1..=all {
            assert_eq!(
                run(false, Some(limit)),
                run(true, Some(limit)),
                "{op} {constant} {start} with limit {limit}"
            );
        }
    }
    assert!(errors >= 6, "only {errors} of the cases failed");
}

/// Loops made only of simple ops run in the inner loop (`interp/fast.rs`), which hands every
/// op it does not run on its fast path back to the general loop before running it. Each
/// program here leaves the inner loop in another way: a value that turns into a float or a
/// string in the middle of the loop, an overflow, a `MOD` by zero, a nested loop, a `CALL`
/// right after the loop, falling off the end. A plain run must agree with a traced one
/// (which never uses the inner loop) on the result or error and on the instructions run,
/// without a limit and under every limit up to the total.
#[test]
fn simple_loops_hand_back_to_the_general_loop_exactly() {
    let programs = [
        // i counts up; at i = 3 the step becomes a float, so the ADD leaves the inner loop.
        ".function main registers 6
    LDI r1, 0
    LDI r2, 1
    LDI r3, 6
top:
    LDI r4, 3
    CMP r1, r4
    JMPNEQ same
    LDI r2, 0.5
same:
    ADD r1, r1, r2
    CMP r1, r3
    JMPGT done
    JMP top
done:
    RET r1
",
        // A string grows in the loop: ADD of strings is not the inner loop's.
        ".function main registers 5
    LDI r1, \"\"
    LDI r2, \"ab\"
    LDI r3, 0
    LDI r4, 1
top:
    ADD r1, r1, r2
    ADD r3, r3, r4
    LDI r0, 4
    CMP r3, r0
    JMPEQ done
    JMP top
done:
    RET r1
",
        // Multiplication overflows after a few rounds (an error at the MUL).
        ".function main registers 4
    LDI r1, 3
top:
    MOV r2, r1
    LDI r3, ()
    LDI r3, 3
    MUL r1, r2, r3
    JMP top
",
        // MOD by a register that reaches zero.
        ".function main registers 5
    LDI r1, 100
    LDI r2, 3
top:
    LDI r4, 1
    SUB r2, r2, r4
    MOD r3, r1, r2
    JMP top
",
        // MOD by a negative register (the inner loop takes only positive divisors).
        ".function main registers 6
    LDI r1, 100
    LDI r2, 7
    LDI r0, 0
    LDI r5, -6
top:
    LDI r4, 3
    SUB r2, r2, r4
    MOD r3, r1, r2
    ADD r0, r0, r3
    CMP r2, r5
    JMPLT done
    JMP top
done:
    RET r0
",
        // Nested loops (each `JMP` back is a loop of simple ops), then a call after them,
        // then the end of the function.
        ".function inc(x) registers 2
    LDI r1, 1
    ADD r0, r0, r1
    RET r0

.function main registers 7
    LDI r1, 0
    LDI r2, 0
outer:
    LDI r3, 0
inner:
    LDI r4, 1
    ADD r3, r3, r4
    ADD r1, r1, r3
    LDI r5, 4
    CMP r3, r5
    JMPEQ inner_done
    JMP inner
inner_done:
    LDI r4, 1
    ADD r2, r2, r4
    CMP r2, r5
    JMPEQ outer_done
    JMP outer
outer_done:
    PUSHARG r1
    CALL inc
    MOV r6, r0
    LDI r0, 0
    ADD r0, r0, r6
",
    ];
    for source in programs {
        let run = |traced: bool, limit: Option<u64>| {
            let mut vm = Vm::new();
            if traced {
                vm.set_trace(Some(Box::new(|_: &str| {})));
            }
            vm.set_instruction_limit(limit);
            vm.load_assembly(source).unwrap();
            let result = match vm.execute("main", &[]) {
                Ok(v) => format!("ok {v:?}"),
                Err(e) => format!("error {e}"),
            };
            (result, vm.instructions_executed())
        };
        let (plain, all) = run(false, None);
        assert_eq!((plain.clone(), all), run(true, None), "{source}");
        assert!(all > 10, "{source} ran only {all} instructions");
        for limit in 1..=all {
            assert_eq!(
                run(false, Some(limit)),
                run(true, Some(limit)),
                "{source} with limit {limit}"
            );
        }
    }
}
