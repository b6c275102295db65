//! Generated *valid* programs: written to STFL, loaded through the C API's
//! `stoffel_load_bytecode`, then every function runs under limits.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use stoffel_vm::ffi::vm::{stoffel_create_vm, stoffel_destroy_vm, stoffel_load_bytecode};
use stoffel_vm::{Vm, stfl};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(program) = common::valid_program(&mut u) else {
        return;
    };
    let bytes = stfl::write(&program).expect("valid programs can be written");
    assert_eq!(
        stfl::load(&bytes).as_ref(),
        Ok(&program),
        "write/load must round-trip"
    );

    // Through the C entry point …
    let vm = stoffel_create_vm();
    // SAFETY: `bytes` is a live buffer of `bytes.len()` bytes.
    let code = unsafe { stoffel_load_bytecode(vm, bytes.as_ptr(), bytes.len()) };
    assert_eq!(code, 0, "a written program must load");
    stoffel_destroy_vm(vm);

    // … and run through the Rust API, which the C API wraps.
    let mut vm = Vm::new();
    vm.load_bytecode(&bytes).expect("loads");
    common::run_all(&mut vm, &program);
});
