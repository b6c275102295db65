//! One long execution that allocates 3 million objects and 3 million arrays, keeping none,
//! must stay within a small, fixed amount of memory: the collector runs *during* the
//! execution (the interpreter leaves the arena every few thousand instructions).
//!
//! This file holds a single test so the process's peak RSS is this workload's alone.

use stoffel_vm::{Val, Vm};

const PROGRAM: &str = r#"
.function main
    LDI r1, 0
    LDI r2, 3000000
    LDI r3, 1
    LDI r5, "field"
loop:
    CMP r1, r2
    JMPEQ done
    CALL create_object
    MOV r4, r0
    PUSHARG r4
    PUSHARG r5
    PUSHARG r1
    CALL set_field
    CALL create_array
    MOV r6, r0
    PUSHARG r6
    PUSHARG r1
    PUSHARG r4
    CALL array_push
    ADD r1, r1, r3
    JMP loop
done:
    RET r1
"#;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn six_million_short_lived_allocations_stay_under_64_mib() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    let before = vm.gc_stats();
    let result = vm.execute("main", &[]).unwrap();
    assert_eq!(result, Val::I64(3_000_000));
    let after = vm.gc_stats();
    let peak = peak_rss_kib();
    eprintln!("peak RSS {peak} KiB; stats before {before:?} after {after:?}");
    assert!(
        after.collections > 10,
        "the collector should have run many cycles during the execution: {after:?}"
    );
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB is over 64 MiB: garbage is not being collected during execution"
    );
    vm.collect_all();
    let collected = vm.gc_stats();
    assert!(
        collected.heap_bytes < 64 * 1024,
        "after a full collection nothing the program made should remain: {collected:?}"
    );
}
