//! The memory limit covers everything a program grows (heap values, the register stack and
//! frames, pending arguments, strings being built), is checked when the growth happens, and
//! a limit error leaves the VM healthy: stacks shrink back, the heap garbage is collected,
//! and the next execution runs normally. Big buffers outside `Gc` boxes make the collector
//! run sooner.
//!
//! The peak-RSS check of the deep-recursion case is in `memory_limit_rss.rs` (its own
//! process); the no-limit, no-abort cases run the CLI in `memory_oom.rs`.

mod common;

use common::SyncCell;
use std::sync::Arc;

use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

const MIB: usize = 1 << 20;

/// Programs every test loads: the runaway ones, and `spin(n)`, a loop of 3n + 4
/// instructions that allocates nothing.
const PROGRAMS: &str = r#"
.function deep
    CALL deep
    RET r0
.function big_frames
    CALL big_frame
    RET r0
.function big_frame registers 4096
    CALL big_frame
    RET r0
.function pushes
    LDI r1, 1
loop:
    PUSHARG r1
    JMP loop
.function doubling
    LDI r1, "x"
grow:
    ADD r1, r1, r1
    JMP grow
.function index_doubling
    CALL create_array
    MOV r1, r0
    LDI r2, 1
    LDI r3, 2
grow:
    PUSHARG r1
    PUSHARG r2
    PUSHARG r2
    CALL set_field
    MUL r2, r2, r3
    JMP grow
.function fill(a)
    MOV r2, r0
    LDI r1, 7
loop:
    PUSHARG r2
    PUSHARG r1
    CALL array_push
    JMP loop
.function fields(o)
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
loop:
    PUSHARG r1
    PUSHARG r2
    PUSHARG r2
    CALL set_field
    ADD r2, r2, r3
    JMP loop
.function spin(n)
    LDI r1, 0
    LDI r2, 1
loop:
    ADD r1, r1, r2
    CMP r1, r0
    JMPLT loop
    RET r1
"#;

fn vm_with_limit(limit: usize) -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAMS).unwrap();
    vm.set_memory_limit(Some(limit));
    vm
}

fn runtime_kind(result: Result<Val, VmError>) -> RuntimeErrorKind {
    match result {
        Err(e @ VmError::Runtime(_)) => {
            assert!(e.is_limit(), "{e}");
            let VmError::Runtime(r) = e else {
                unreachable!()
            };
            r.kind
        }
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

/// After a limit error: the stacks are back to their baseline, the heap holds what it held
/// before, and a 10M-instruction loop that allocates nothing runs on the same VM.
fn assert_healthy(vm: &mut Vm, heap_before: usize, what: &str) {
    let stats = vm.gc_stats();
    assert!(
        stats.stack_bytes <= 160 << 10,
        "{what}: stacks not given back: {stats:?}"
    );
    assert!(
        stats.heap_bytes <= heap_before + (64 << 10),
        "{what}: heap not given back (before: {heap_before}): {stats:?}"
    );
    let before = vm.instructions_executed();
    let n = 3_400_000;
    assert_eq!(
        vm.execute("spin", &[Val::I64(n)]).unwrap(),
        Val::I64(n),
        "{what}"
    );
    assert!(vm.instructions_executed() - before >= 10_000_000);
}

#[test]
fn recursion_through_big_frames_stops_at_the_limit_and_leaves_the_vm_healthy() {
    let mut vm = vm_with_limit(MIB);
    let heap = vm.gc_stats().heap_bytes;
    let kind = runtime_kind(vm.execute("big_frames", &[]));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(MIB));
    // Checked at every frame: about 1 MiB of 64 KiB frames, not 4096 instructions' worth
    // (256 MiB).
    assert!(
        vm.instructions_executed() < 40,
        "{} instructions ran",
        vm.instructions_executed()
    );
    assert_healthy(&mut vm, heap, "big frames");
    // And again: the VM does not degrade.
    let kind = runtime_kind(vm.execute("big_frames", &[]));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(MIB));
    assert_healthy(&mut vm, heap, "big frames, again");
}

#[test]
fn frames_count_against_the_limit_without_a_depth_limit() {
    let mut vm = vm_with_limit(MIB);
    vm.set_max_call_depth(usize::MAX);
    let heap = vm.gc_stats().heap_bytes;
    let kind = runtime_kind(vm.execute("deep", &[]));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(MIB));
    assert_healthy(&mut vm, heap, "deep recursion");
}

#[test]
fn pending_arguments_count_against_the_limit_when_they_grow() {
    let mut vm = vm_with_limit(MIB);
    let heap = vm.gc_stats().heap_bytes;
    let e = vm.execute("pushes", &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("memory limit of 1048576 bytes exceeded"),
        "{e}"
    );
    let kind = runtime_kind(Err(e));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(MIB));
    // At most 1 MiB of 16-byte arguments were pushed (two instructions each).
    let ran = vm.instructions_executed();
    assert!(ran <= 2 * (MIB as u64 / 16) + 2, "{ran} instructions ran");
    assert!(ran >= MIB as u64 / 16, "{ran} instructions ran");
    assert_healthy(&mut vm, heap, "pushes");
}

#[test]
fn string_doubling_stops_at_the_limit_and_gives_the_memory_back() {
    let mut vm = vm_with_limit(64 * MIB);
    let heap = vm.gc_stats().heap_bytes;
    let kind = runtime_kind(vm.execute("doubling", &[]));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(64 * MIB));
    assert_healthy(&mut vm, heap, "string doubling");
    // Strings can still be built.
    vm.load_assembly(
        ".function hello\n LDI r1, \"hel\"\n LDI r2, \"lo\"\n ADD r3, r1, r2\n RET r3\n",
    )
    .unwrap();
    assert_eq!(vm.execute("hello", &[]).unwrap(), Val::from("hello"));
}

#[test]
fn array_growth_by_index_stops_at_the_limit_and_gives_the_memory_back() {
    let mut vm = vm_with_limit(64 * MIB);
    let heap = vm.gc_stats().heap_bytes;
    let kind = runtime_kind(vm.execute("index_doubling", &[]));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(64 * MIB));
    assert_healthy(&mut vm, heap, "array index doubling");
}

#[test]
fn a_growing_array_never_passes_the_limit() {
    // The array belongs to the host, so it survives the error and its size can be seen.
    let limit = 8 * MIB;
    let mut vm = vm_with_limit(limit);
    let array = vm.create_array().unwrap();
    let kind = runtime_kind(vm.execute("fill", std::slice::from_ref(&array)));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(limit));
    vm.collect_all();
    let stats = vm.gc_stats();
    // The buffer grew by doubling while there was room, then only as far as the limit
    // allowed: it never passed it.
    assert!(stats.heap_bytes + stats.stack_bytes <= limit, "{stats:?}");
    let length = vm.array_length(&array).unwrap() as usize;
    assert!(
        length * 16 > limit / 2,
        "only {length} elements were pushed"
    );
    vm.release(&array).unwrap();
    vm.collect_all();
    let heap = vm.gc_stats().heap_bytes;
    assert_healthy(&mut vm, heap, "array push");
}

#[test]
fn object_fields_never_pass_the_limit() {
    let limit = 8 * MIB;
    let mut vm = vm_with_limit(limit);
    let object = vm.create_object().unwrap();
    let kind = runtime_kind(vm.execute("fields", std::slice::from_ref(&object)));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(limit));
    vm.collect_all();
    let stats = vm.gc_stats();
    assert!(stats.heap_bytes + stats.stack_bytes <= limit, "{stats:?}");
    let last = vm.get_field(&object, &Val::I64(1000)).unwrap();
    assert_eq!(last, Val::I64(1000), "fields were set until the limit");
    vm.release(&object).unwrap();
    vm.collect_all();
    let heap = vm.gc_stats().heap_bytes;
    assert_healthy(&mut vm, heap, "object fields");
}

#[test]
fn a_printed_line_counts_while_it_is_built() {
    // 4096 arguments that are the same 64 KiB string: the line would be 256 MiB.
    let mut vm = vm_with_limit(16 * MIB);
    vm.load_assembly(
        r#"
.function wide(s)
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
    LDI r4, 4096
loop:
    PUSHARG r1
    ADD r2, r2, r3
    CMP r2, r4
    JMPLT loop
    CALL print
"#,
    )
    .unwrap();
    let printed = Arc::new(SyncCell::new(0usize));
    let sink = printed.clone();
    vm.set_output(stoffel_vm::Output::Callback(Box::new(move |s| {
        sink.set(sink.get() + s.len())
    })));
    let s = Val::from("z".repeat(64 << 10));
    let kind = runtime_kind(vm.execute("wide", &[s]));
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(16 * MIB));
    assert_eq!(printed.get(), 0);
    let heap = vm.gc_stats().heap_bytes;
    assert_healthy(&mut vm, heap, "print");
}

#[test]
fn stacks_and_heap_are_reported_separately() {
    // A host function at the bottom of 100 frames of 4096 registers looks at the figures.
    let mut vm = Vm::new();
    vm.load_assembly(
        r#"
.function down(n)
    LDI r1, 0
    LDI r2, 1
    CMP r0, r1
    JMPEQ bottom
    SUB r3, r0, r2
    PUSHARG r3
    CALL down
    RET r0
bottom:
    CALL probe
    RET r0
.function wide(n) registers 4096
    PUSHARG r0
    CALL down
    RET r0
"#,
    )
    .unwrap();
    let seen = Arc::new(SyncCell::new((0usize, 0usize)));
    let probe = seen.clone();
    vm.register_function("probe", move |vm, _| {
        let stats = vm.gc_stats();
        probe.set((stats.heap_bytes, stats.stack_bytes));
        Ok(Val::Unit)
    });
    // `down` frames are small; `wide` is one big frame at the top.
    vm.execute("wide", &[Val::I64(100)]).unwrap();
    let (heap, stack) = seen.get();
    assert!(heap < 256 << 10, "heap {heap}");
    assert!(stack >= 64 << 10, "stack {stack}");
    // Back to the baseline once the execution is over.
    assert!(
        vm.gc_stats().stack_bytes <= 160 << 10,
        "{:?}",
        vm.gc_stats()
    );
}

#[test]
fn big_garbage_strings_make_the_collector_run_sooner() {
    // 300 strings of 1 MiB, each garbage at once, one per step (a busy inner loop), no
    // memory limit: gc-arena alone counts 300 allocations (it would sleep through them);
    // the buffer bytes wake it.
    let mut vm = Vm::new();
    vm.load_assembly(
        r#"
.function churn
    LDI r1, "x"
    LDI r2, 0
    LDI r3, 20
    LDI r4, 1
build:
    ADD r1, r1, r1
    ADD r2, r2, r4
    CMP r2, r3
    JMPLT build
    LDI r2, 0
    LDI r3, 300
    LDI r5, "y"
    LDI r8, 1500
churn:
    ADD r6, r1, r5
    CALL probe
    LDI r7, 0
busy:
    ADD r7, r7, r4
    CMP r7, r8
    JMPLT busy
    ADD r2, r2, r4
    CMP r2, r3
    JMPLT churn
    RET r2
"#,
    )
    .unwrap();
    let peak = Arc::new(SyncCell::new(0usize));
    let probe = peak.clone();
    vm.register_function("probe", move |vm, _| {
        probe.set(probe.get().max(vm.gc_stats().heap_bytes));
        Ok(Val::Unit)
    });
    assert_eq!(vm.execute("churn", &[]).unwrap(), Val::I64(300));
    let stats = vm.gc_stats();
    eprintln!("peak heap {} KiB; {stats:?}", peak.get() >> 10);
    assert!(stats.collections > 3, "{stats:?}");
    assert!(
        peak.get() < 64 * MIB,
        "peak heap {} MiB: garbage strings were not collected",
        peak.get() / MIB
    );
}

/// The handle table counts against the memory limit: a host holding 100,000 ids (all to the
/// same object, so the heap does not grow) pushes usage over a 1 MiB limit, and code that
/// allocates is refused; releasing them gives the room back.
#[test]
fn held_handles_count_against_the_limit() {
    let mut vm = Vm::new();
    vm.load_assembly(".function make registers 2\n CALL create_object\n MOV r1, r0\n RET r1\n")
        .unwrap();
    let outer = vm.create_object().unwrap();
    let inner = vm.create_object().unwrap();
    vm.set_field(&outer, &Val::from("inner"), &inner).unwrap();
    vm.set_memory_limit(Some(1 << 20));
    let held: Vec<Val> = (0..100_000)
        .map(|_| vm.get_field(&outer, &Val::from("inner")).unwrap())
        .collect();
    let e = vm.execute("make", &[]).unwrap_err();
    assert!(e.is_limit(), "{e}");
    for v in &held {
        vm.release(v).unwrap();
    }
    assert!(vm.execute("make", &[]).is_ok());
}

/// Programs that make their own containers and grow them until the limit stops them (with
/// `fields` and `fill` from [`PROGRAMS`]).
const GROWERS: &str = r#"
.function new_object_fields
    CALL create_object
    PUSHARG r0
    CALL fields
    RET r0
.function new_array_pushes
    CALL create_array
    PUSHARG r0
    CALL fill
    RET r0
.function counter(count)
    LDI r1, "step"
    LDI r2, "count"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0
.function step(by)
.parent counter
    RET r0
.function closures_kept
    CALL create_array
    MOV r1, r0
    LDI r2, 0
loop:
    PUSHARG r2
    CALL counter
    PUSHARG r1
    PUSHARG r0
    CALL array_push
    JMP loop
.function strings_and_objects
    LDI r1, "ab"
    LDI r3, 1
loop:
    ADD r1, r1, r1
    CALL create_object
    MOV r2, r0
    PUSHARG r2
    PUSHARG r1
    PUSHARG r3
    CALL set_field
    JMP loop
"#;

/// One run to the limit: its error (kind, function, instruction) and the instructions run.
fn run_to_limit(name: &str, limit: usize, traced: bool) -> (String, u64) {
    let mut vm = Vm::new();
    if traced {
        vm.set_trace(Some(Box::new(|_: &str| {})));
    }
    vm.load_assembly(PROGRAMS).unwrap();
    vm.load_assembly(GROWERS).unwrap();
    vm.set_memory_limit(Some(limit));
    let before = vm.instructions_executed();
    let outcome = match vm.execute(name, &[]) {
        Err(VmError::Runtime(e)) => format!("{:?} in {} at {}", e.kind, e.function, e.instruction),
        other => format!("{other:?}"),
    };
    (outcome, vm.instructions_executed() - before)
}

/// However little memory a VM is given, a program stops at the same instruction, after the
/// same number of instructions, whether it runs in steps of thousands of instructions or one
/// at a time (traced): every growth is admitted against the limit as it happens, by the
/// bytes the meter will count for it. (An object's field map once took more capacity than
/// its admission asked for; the limit was then passed unnoticed until the end of a step,
/// which comes after every instruction only when traced: at 2 KiB, traced runs stopped
/// after 209 instructions, plain ones after 748.)
#[test]
fn every_small_limit_stops_plain_and_traced_runs_alike() {
    for name in [
        "new_object_fields",
        "new_array_pushes",
        "strings_and_objects",
        "closures_kept",
    ] {
        for limit in (2..=160).map(|half_kib| half_kib << 9) {
            let plain = run_to_limit(name, limit, false);
            assert!(
                plain.0.starts_with("MemoryLimit"),
                "{name} at {limit}: {plain:?}"
            );
            assert_eq!(plain, run_to_limit(name, limit, true), "{name} at {limit}");
        }
    }
}
