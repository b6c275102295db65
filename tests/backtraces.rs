//! Backtraces (issue 16 item 3): a runtime error names its call chain, innermost first, with
//! the host function between the frames of a nested execution; deep chains keep their ends;
//! `stoffel-run` prints the chain, also for the conformance programs that fail.

use stoffel_vm::{BACKTRACE_ENDS, HostError, RuntimeError, TraceEntry, Val, Vm, VmError};

fn frame(function: &str, instruction: usize) -> TraceEntry {
    TraceEntry::Frame {
        function: function.to_owned(),
        instruction,
    }
}

fn runtime(e: VmError) -> RuntimeError {
    match e {
        VmError::Runtime(r) => r,
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

const CHAIN: &str = "
.function main registers 2
    LDI r1, 5
    PUSHARG r1
    CALL mid
    RET r0

.function mid(x) registers 2
    PUSHARG r0
    CALL leaf
    RET r0

.function leaf(x) registers 3
    LDI r1, 0
    DIV r2, r0, r1
    RET r2

.function via_host registers 1
    CALL host
    RET r0
";

#[test]
fn the_chain_is_named_innermost_first_at_each_call() {
    let mut vm = Vm::new();
    vm.load_assembly(CHAIN).unwrap();
    let e = runtime(vm.execute("main", &[]).unwrap_err());
    assert_eq!((e.function.as_str(), e.instruction), ("leaf", 1));
    assert_eq!(
        e.backtrace,
        [frame("leaf", 1), frame("mid", 1), frame("main", 2)]
    );
    assert_eq!(
        e.backtrace_text(),
        "  at leaf, instruction 1\n  at mid, instruction 1\n  at main, instruction 2\n"
    );
}

#[test]
fn a_host_function_between_frames_is_named() {
    let mut vm = Vm::new();
    vm.load_assembly(CHAIN).unwrap();
    // The host function runs `mid` (a nested execution) and passes its failure on.
    vm.register_function("host", |vm, _| {
        vm.execute("mid", &[Val::I64(1)])
            .map_err(|e| HostError::caused_by("mid failed", e))
    });
    let e = runtime(vm.execute("via_host", &[]).unwrap_err());
    assert_eq!(
        e.backtrace,
        [
            frame("leaf", 1),
            frame("mid", 1),
            TraceEntry::Host {
                function: Some("host".to_owned())
            },
            frame("via_host", 0),
        ]
    );
}

#[test]
fn a_deep_chain_keeps_its_ends_and_counts_the_rest() {
    let mut vm = Vm::new();
    vm.load_assembly(
        ".function down(n) registers 3\n    LDI r1, 1\n    SUB r2, r0, r1\n    PUSHARG r2\n    CALL down\n    RET r0\n",
    )
    .unwrap();
    vm.set_max_call_depth(1000);
    let e = runtime(vm.execute("down", &[Val::I64(1_000_000)]).unwrap_err());
    assert_eq!(
        e.backtrace.len(),
        2 * BACKTRACE_ENDS + 1,
        "{:?}",
        e.backtrace
    );
    assert_eq!(
        e.backtrace[BACKTRACE_ENDS],
        TraceEntry::Omitted(1000 - 2 * BACKTRACE_ENDS)
    );
    assert!(
        e.backtrace
            .iter()
            .filter(|t| matches!(t, TraceEntry::Frame { .. }))
            .all(|t| *t == frame("down", 3)),
        "{:?}",
        e.backtrace
    );
}

#[test]
fn stoffel_run_prints_the_chain_of_a_failing_conformance_program() {
    // knapsack_greedy (real compiler output) fails three calls deep.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stoffel-run"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/knapsack_greedy.stflb"
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("in function 'select' at instruction 0")),
        "{stderr}"
    );
    assert_eq!(
        lines.get(1),
        Some(&"backtrace (innermost first):"),
        "{stderr}"
    );
    assert_eq!(
        lines.get(2),
        Some(&"  at select, instruction 0"),
        "{stderr}"
    );
    assert!(
        lines
            .get(3)
            .is_some_and(|l| l.starts_with("  at greedy_knapsack, instruction ")),
        "{stderr}"
    );
    assert!(
        lines
            .get(4)
            .is_some_and(|l| l.starts_with("  at main, instruction ")),
        "{stderr}"
    );
}
