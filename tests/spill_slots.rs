//! NOP, LDS and STS (STFL v9) run as the current StoffelVM runs them: each frame has its own
//! spill slots, empty when the frame is pushed; an unwritten slot reads Unit; a frame's slots
//! survive the calls it makes; the slots hold heap values the collector must keep; and a
//! large slot number is paid for under the memory limit.

use stoffel_vm::program::MAX_SPILL_SLOTS;
use stoffel_vm::{Val, Vm, VmError};

fn run(source: &str, entry: &str, args: &[Val]) -> Result<Val, VmError> {
    let mut vm = Vm::new();
    vm.set_instruction_limit(Some(10_000_000));
    vm.load_assembly(source)?;
    vm.call::<Val>(entry, args)
}

#[test]
fn an_unwritten_slot_reads_unit_and_a_written_one_its_value() {
    let source = "
.function main
    LDS r0, 3
    RET r0
.function stored
    LDI r1, 7
    STS 2, r1
    LDI r1, 8
    LDS r2, 2
    RET r2
.function below
    LDI r1, 7
    STS 2, r1
    LDS r2, 1
    RET r2
";
    assert_eq!(run(source, "main", &[]).unwrap(), Val::Unit);
    assert_eq!(run(source, "stored", &[]).unwrap(), Val::I64(7));
    assert_eq!(run(source, "below", &[]).unwrap(), Val::Unit);
}

#[test]
fn slots_survive_calls_and_each_frame_has_its_own() {
    let source = "
.function main
    LDI r1, 42
    STS 0, r1
    CALL callee
    LDS r2, 0            ; ours is untouched by the callee's STS 0
    RET r2
.function seen_by_callee
    LDI r1, 42
    STS 0, r1
    CALL callee          ; r0 := what the callee read from its own slot 0
    RET r0
.function callee
    LDS r1, 0            ; a new frame starts with no slots
    LDI r2, 99
    STS 0, r2
    STS 9, r2
    RET r1
";
    assert_eq!(run(source, "main", &[]).unwrap(), Val::I64(42));
    assert_eq!(run(source, "seen_by_callee", &[]).unwrap(), Val::Unit);
}

#[test]
fn recursion_keeps_one_set_of_slots_per_frame() {
    // sum(n) = n + sum(n - 1), with n kept only in slot 5 across the recursive call.
    let source = "
.function sum(n)
    STS 5, r0
    LDI r1, 0
    CMP r0, r1
    JMPEQ base
    LDI r1, 1
    SUB r1, r0, r1
    LDI r0, ()           ; n now lives only in the slot
    PUSHARG r1
    CALL sum
    LDS r2, 5
    ADD r0, r0, r2
    RET r0
base:
    RET r1
";
    assert_eq!(
        run(source, "sum", &[Val::I64(100)]).unwrap(),
        Val::I64(5050)
    );
}

#[test]
fn nop_does_nothing_and_slots_do_not_count_for_the_frame() {
    let source = "
.function main
    NOP
    LDI r1, 5
    NOP
    STS 4000, r1
    LDS r2, 4000
    RET r2
";
    let program = stoffel_vm::asm::assemble(source).unwrap();
    assert_eq!(program.functions()[0].frame_size(), 3);
    assert_eq!(run(source, "main", &[]).unwrap(), Val::I64(5));
}

#[test]
fn spilled_heap_values_survive_collections() {
    // The object lives only in slot 1 while a loop allocates enough garbage to collect.
    let source = "
.function main
    CALL create_object
    MOV r7, r0
    LDI r1, \"k\"
    LDI r2, 123
    PUSHARG r7
    PUSHARG r1
    PUSHARG r2
    CALL set_field
    STS 1, r7
    LDI r0, ()
    LDI r7, ()
    LDI r3, 0
    LDI r4, 200000
    LDI r5, 1
loop:
    CALL create_object
    ADD r3, r3, r5
    CMP r3, r4
    JMPLT loop
    LDS r6, 1
    PUSHARG r6
    PUSHARG r1
    CALL get_field
    RET r0
";
    let mut vm = Vm::new();
    vm.load_assembly(source).unwrap();
    assert_eq!(vm.call::<Val>("main", &[]).unwrap(), Val::I64(123));
    assert!(vm.gc_stats().collections > 0, "{:?}", vm.gc_stats());
}

#[test]
fn the_highest_slot_is_charged_to_the_memory_limit() {
    let top = MAX_SPILL_SLOTS - 1;
    let source = format!(
        ".function main\n LDI r1, 1\n STS {top}, r1\n LDS r0, {top}\n RET r0\n.function ok\n LDI r0, 2\n RET r0\n"
    );
    // Without a limit it works (1 MiB of slots).
    assert_eq!(run(&source, "main", &[]).unwrap(), Val::I64(1));
    // Under a 256 KiB limit it is a clean limit error, and the VM stays usable.
    let mut vm = Vm::new();
    vm.load_assembly(&source).unwrap();
    vm.set_memory_limit(Some(256 * 1024));
    let err = vm.call::<Val>("main", &[]).unwrap_err();
    assert!(err.is_limit(), "{err}");
    assert_eq!(vm.call::<Val>("ok", &[]).unwrap(), Val::I64(2));
    // The stacks gave the slots back.
    assert!(
        vm.gc_stats().stack_bytes < 256 * 1024,
        "{:?}",
        vm.gc_stats()
    );
    // A slot past the limit does not load.
    let err = Vm::new()
        .load_assembly(&format!(".function main\n LDS r0, {MAX_SPILL_SLOTS}\n"))
        .unwrap_err();
    assert!(err.to_string().contains("spill slot"), "{err}");
}

#[test]
fn slots_are_freed_when_an_activation_fails() {
    // Each failing run fills a megabyte of slots; were they kept, the fifth run would pass
    // the 4 MiB limit and fail on memory instead of the division.
    let source = "
.function main
    LDI r1, 5
    STS 10, r1
    CALL fail
.function fail
    LDI r1, 1
    STS 60000, r1
    LDI r2, 0
    DIV r0, r1, r2
.function probe
    LDS r0, 10
    RET r0
";
    let mut vm = Vm::new();
    vm.load_assembly(source).unwrap();
    vm.set_memory_limit(Some(4 * 1024 * 1024));
    for run in 0..20 {
        let err = vm.call::<Val>("main", &[]).unwrap_err();
        assert!(!err.is_limit(), "run {run}: {err}");
        assert!(
            err.to_string().contains("Division by zero"),
            "run {run}: {err}"
        );
    }
    assert_eq!(vm.call::<Val>("probe", &[]).unwrap(), Val::Unit);
}
