//! STFL writer/loader identities: generated programs → write → load → write gives identical
//! bytes; and raw bytes that load → write → load give the same program.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use stoffel_vm::stfl;

fuzz_target!(|data: &[u8]| {
    if let Ok(program) = stfl::load(data) {
        let bytes = stfl::write(&program).expect("loaded programs can be written");
        assert_eq!(stfl::load(&bytes).as_ref(), Ok(&program));
    }
    let mut u = Unstructured::new(data);
    if let Ok(program) = common::valid_program(&mut u) {
        let first = stfl::write(&program).expect("writes");
        let loaded = stfl::load(&first).expect("loads");
        assert_eq!(loaded, program);
        let second = stfl::write(&loaded).expect("writes");
        assert_eq!(first, second, "the writer must be deterministic");
    }
});
