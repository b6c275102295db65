//! Arbitrary text to the assembler: whatever assembles must disassemble and reassemble to the
//! same program, and run under limits.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use stoffel_vm::{Vm, asm};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(program) = asm::assemble(text) else {
        return;
    };
    let listing = asm::disassemble(&program);
    let again = asm::assemble(&listing).expect("disassembly must assemble");
    assert_eq!(again, program, "disassemble/assemble must round-trip");
    let mut vm = Vm::new();
    vm.load_program(program.clone())
        .expect("a valid program loads");
    common::run_all(&mut vm, &program);
});
