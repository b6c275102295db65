//! The issue-12 case, measured in its own process so the peak RSS is this workload's: with a
//! 1 MiB memory limit, recursion through 4096-register frames stops with a limit error while
//! the process's peak RSS stays under 48 MiB (the limit used to be checked every 4096
//! instructions, after the register stack had reached 256 MiB), and then a 10-million-
//! instruction loop that allocates nothing succeeds on the same VM (the stacks used to keep
//! those 256 MiB, so every later long execution failed).
//!
//! This file holds a single test so the process's peak RSS is this workload's alone.

use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

const PROGRAM: &str = r#"
.function main
    CALL deep
    RET r0
.function deep registers 4096
    CALL deep
    RET r0
.function spin(n)
    LDI r1, 0
    LDI r2, 1
loop:
    ADD r1, r1, r2
    CMP r1, r0
    JMPLT loop
    RET r1
"#;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_1_mib_limit_holds_for_4096_register_frames_and_the_vm_recovers() {
    const LIMIT: usize = 1 << 20;
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.set_memory_limit(Some(LIMIT));
    vm.set_max_call_depth(1_000_000);
    match vm.execute("main", &[]) {
        Err(VmError::Runtime(e)) => assert_eq!(e.kind, RuntimeErrorKind::MemoryLimit(LIMIT)),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    let peak = peak_rss_kib();
    let stats = vm.gc_stats();
    eprintln!("after the limit error: peak RSS {peak} KiB; {stats:?}");
    assert!(peak < 48 * 1024, "peak RSS {peak} KiB is over 48 MiB");
    assert!(stats.stack_bytes <= 160 << 10, "stacks kept: {stats:?}");

    let before = vm.instructions_executed();
    let n = 3_400_000;
    assert_eq!(vm.execute("spin", &[Val::I64(n)]).unwrap(), Val::I64(n));
    let ran = vm.instructions_executed() - before;
    eprintln!(
        "then {ran} instructions ran; peak RSS {} KiB",
        peak_rss_kib()
    );
    assert!(ran >= 10_000_000, "{ran}");
}
