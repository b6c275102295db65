//! An instruction limit bounds CPU time (issue 18, item 3): the name lookups of
//! `create_closure` (every parameter and cell of every live frame) and of `get_upvalue` (every
//! cell of the running closure) are charged to the instruction budget in proportion to the
//! names they compare, so a program cannot make one instruction do unbounded work; and the
//! lookups are indexed (parameter names at link time, cells by name), so a capture or an
//! upvalue access costs a constant per frame.
//!
//! Times are compared with a plain program measured in the same test (same stack, same
//! instruction count), never with absolute thresholds.

use std::time::{Duration, Instant};

use stoffel_vm::{RuntimeErrorKind, Vm, VmError};

const FUEL: u64 = 1_000_000;
const FRAMES: usize = 9_000;
const PARAMS: usize = 100;

/// `outer(target)` calls `deep` with 100 parameters, 9,000 frames deep; the innermost
/// level runs `body` forever (registers r100..r103 are free for it).
fn deep_program(body: &str) -> String {
    let params: Vec<String> = (0..PARAMS).map(|i| format!("p{i}")).collect();
    let pushes = |regs: std::ops::Range<usize>| {
        regs.map(|r| format!("    PUSHARG r{r}\n"))
            .collect::<String>()
    };
    format!(
        r#"
.function outer(target) registers {regs}
    LDI r1, {levels}
{outer_pushes}    CALL deep
    RET r0

.function deep({params}) registers {regs}
    LDI r100, 1
    CMP r0, r100          ; r0: levels still to go
    JMPEQ bottom
    SUB r0, r0, r100
{deep_pushes}    CALL deep
    RET r0
bottom:
{body}
"#,
        regs = PARAMS + 4,
        levels = FRAMES - 1,
        outer_pushes = pushes(1..PARAMS + 1),
        params = params.join(", "),
        deep_pushes = pushes(0..PARAMS),
    )
}

/// Runs `entry` with the instruction limit; returns how long it took and how it ended.
fn timed(source: &str, entry: &str) -> (Duration, VmError) {
    let mut vm = Vm::new();
    vm.load_assembly(source).expect("assembles");
    vm.set_instruction_limit(Some(FUEL));
    let start = Instant::now();
    let result = vm.execute(entry, &[]);
    let elapsed = start.elapsed();
    (elapsed, result.expect_err("runs until the fuel is gone"))
}

fn assert_fuel_exhausted(e: VmError) {
    match e {
        VmError::Runtime(r) => assert_eq!(r.kind, RuntimeErrorKind::FuelExhausted(FUEL)),
        other => panic!("expected the instruction limit, got {other:?}"),
    }
}

/// The fastest of three runs (the machine may be busy).
fn best_of_three(source: &str, entry: &str) -> Duration {
    (0..3)
        .map(|_| {
            let (t, e) = timed(source, entry);
            assert_fuel_exhausted(e);
            t
        })
        .min()
        .unwrap()
}

#[test]
fn create_closure_over_9000_frames_of_100_parameters_is_bounded_by_the_fuel() {
    // The baseline: the same stack, then a plain loop.
    let plain = deep_program("loop:\n    JMP loop");
    // `target` is a parameter of the bottom frame only: each lookup passes every parameter
    // of the 9,000 frames above it.
    let lookups = deep_program(
        r#"    LDI r100, "deep"
    LDI r101, "target"
loop:
    PUSHARG r100
    PUSHARG r101
    CALL create_closure
    JMP loop"#,
    );
    let baseline = best_of_three(&plain, "outer");
    let (elapsed, e) = timed(&lookups, "outer");
    assert_fuel_exhausted(e);
    assert!(
        elapsed < baseline * 20,
        "1M instructions of create_closure took {elapsed:?}; the plain program {baseline:?}"
    );
}

/// `outer(target, other)`: a closure of `inner` capturing `target` and then `other` 50,000
/// times, called.
const FIFTY_THOUSAND_CELLS: &str = r#"
.function outer(target, other) registers 8
    LDI r2, "inner"
    LDI r3, "target"
    LDI r4, "other"
    LDI r5, 0
    LDI r6, 1
    LDI r7, 50000
    PUSHARG r2
    PUSHARG r3
fill:
    PUSHARG r4
    ADD r5, r5, r6
    CMP r5, r7
    JMPLT fill
    CALL create_closure
    PUSHARG r0
    CALL call_closure
    RET r0
"#;

#[test]
fn get_upvalue_over_a_closure_of_50000_cells_is_bounded_by_the_fuel() {
    // A closure capturing `target` and then `other` 50,000 times; the closure looks up
    // `target`, its first cell, so each lookup passes all the others.
    let outer = FIFTY_THOUSAND_CELLS;
    let program = |body: &str| {
        format!(
            r#"{outer}
.function inner registers 4
    LDI r1, "target"
    LDI r2, 5
spin:
{body}
    JMP spin
"#
        )
    };
    let plain = program("    MOV r3, r2");
    let lookups = program("    PUSHARG r1\n    CALL get_upvalue");
    let writes = program("    PUSHARG r1\n    PUSHARG r2\n    CALL set_upvalue");
    let baseline = best_of_three(&plain, "outer");
    for source in [lookups, writes] {
        let (elapsed, e) = timed(&source, "outer");
        assert_fuel_exhausted(e);
        assert!(
            elapsed < baseline * 20,
            "1M instructions of upvalue access took {elapsed:?}; the plain program {baseline:?}"
        );
    }
}

#[test]
fn small_lookups_cost_one_instruction() {
    // Ordinary programs are charged exactly as before: one per instruction.
    let mut vm = Vm::new();
    vm.load_assembly(
        r#"
.function make(count) registers 3
    LDI r1, "get"
    LDI r2, "count"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    PUSHARG r0
    CALL call_closure
    RET r0

.function get registers 2
    LDI r1, "count"
    PUSHARG r1
    CALL get_upvalue
    RET r0
"#,
    )
    .expect("assembles");
    let v = vm
        .execute("make", &[stoffel_vm::Val::I64(7)])
        .expect("runs");
    assert_eq!(v, stoffel_vm::Val::I64(7));
    assert_eq!(vm.instructions_executed(), 12);
}

/// Instructions charged for `entry` of `source` run to its end, with no limit.
fn charged(source: &str, entry: &str, args: &[stoffel_vm::Val]) -> u64 {
    let mut vm = Vm::new();
    vm.load_assembly(source).expect("assembles");
    vm.execute(entry, args).expect("runs");
    vm.instructions_executed()
}

#[test]
fn capturing_the_last_of_100_parameters_costs_a_constant() {
    // Parameter names are indexed when a function is linked: finding the 100th parameter of
    // the running frame is one lookup, not 100 comparisons.
    let params: Vec<String> = (0..PARAMS).map(|i| format!("p{i}")).collect();
    let program = |body: &str| {
        format!(
            r#"
.function run({params}) registers {regs}
    LDI r100, "run"
    LDI r101, "p99"
    LDI r102, 0
    LDI r103, 1
    LDI r104, 1000
loop:
{body}
    ADD r102, r102, r103
    CMP r102, r104
    JMPLT loop
    RET r102
"#,
            params = params.join(", "),
            regs = PARAMS + 5,
        )
    };
    let plain = charged(
        &program("    PUSHARG r100\n    PUSHARG r101\n    MOV r0, r0"),
        "run",
        &[],
    );
    let captures = charged(
        &program("    PUSHARG r100\n    PUSHARG r101\n    CALL create_closure"),
        "run",
        &[],
    );
    // Each of the 1,000 captures is charged its instruction plus the frame and the indexed
    // lookup; a scan of the parameters would add 100 per capture.
    assert!(
        captures <= plain + 1000 * 3,
        "1,000 captures were charged {captures} instructions; the same loop without them {plain}"
    );
}

#[test]
fn upvalue_access_in_a_closure_of_50000_cells_costs_a_constant() {
    // Cells are kept by name: reading the first of 50,001 cells is one lookup.
    let outer = FIFTY_THOUSAND_CELLS;
    let program = |body: &str| {
        format!(
            r#"{outer}
.function inner registers 8
    LDI r1, "target"
    LDI r2, 5
    LDI r4, 0
    LDI r5, 1
    LDI r6, 1000
spin:
{body}
    ADD r4, r4, r5
    CMP r4, r6
    JMPLT spin
    RET r4
"#
        )
    };
    let plain = charged(&program("    MOV r3, r2\n    MOV r3, r2"), "outer", &[]);
    let reads = charged(
        &program("    PUSHARG r1\n    CALL get_upvalue"),
        "outer",
        &[],
    );
    let writes = charged(
        &program("    PUSHARG r1\n    PUSHARG r2\n    CALL set_upvalue"),
        "outer",
        &[],
    );
    for (what, n, extra_instructions) in [("reads", reads, 0), ("writes", writes, 1000)] {
        assert!(
            n <= plain + extra_instructions + 1000 * 2,
            "1,000 {what} were charged {n} instructions; the same loop without them {plain}"
        );
    }
}
