//! Arbitrary bytes to `stoffel_load_bytecode`; whatever loads is run, function by function,
//! under instruction, depth and memory limits through `stoffel_execute_with_args`.
#![no_main]

use std::ffi::CString;

use libfuzzer_sys::fuzz_target;
use stoffel_vm::ffi::values::{stoffel_free_string, stoffel_release_value};
use stoffel_vm::ffi::vm::{
    stoffel_create_vm, stoffel_destroy_vm, stoffel_execute_with_args, stoffel_last_error,
    stoffel_load_bytecode, stoffel_set_instruction_limit, stoffel_set_max_call_depth,
    stoffel_set_memory_limit,
};
use stoffel_vm::ffi::{StoffelValue, StoffelValueData, StoffelValueType};
use stoffel_vm::stfl;

fuzz_target!(|data: &[u8]| {
    let vm = stoffel_create_vm();
    stoffel_set_instruction_limit(vm, 20_000);
    stoffel_set_max_call_depth(vm, 64);
    stoffel_set_memory_limit(vm, 16 << 20);
    // SAFETY: `data` is a live buffer of `data.len()` bytes.
    let code = unsafe { stoffel_load_bytecode(vm, data.as_ptr(), data.len()) };
    let parsed = stfl::load(data);
    // The VM refuses what parses but declares MPC clients (it has no MPC engine).
    let loadable = parsed
        .as_ref()
        .is_ok_and(|p| p.manifest().is_none_or(|m| m.clients.is_empty()));
    assert_eq!(
        code == 0,
        loadable,
        "the C loader and the Rust loader must agree"
    );
    if code != 0 {
        assert!(
            !stoffel_last_error(vm).is_null(),
            "a failed load must leave a message"
        );
    }
    if let (true, Ok(program)) = (loadable, parsed) {
        let arg = StoffelValue {
            value_type: StoffelValueType::STOFFEL_VALUE_INT,
            data: StoffelValueData { int_val: 2 },
        };
        let args = [arg, arg, arg];
        for f in program.functions() {
            let Ok(name) = CString::new(f.name.as_str()) else {
                continue;
            };
            for n in [0, f.params.len().min(3)] {
                let mut out = StoffelValue {
                    value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
                    data: StoffelValueData { int_val: 0 },
                };
                // SAFETY: valid name, `n` ≤ 3 readable args, writable result.
                let rc = unsafe {
                    stoffel_execute_with_args(vm, name.as_ptr(), args.as_ptr(), n as i32, &mut out)
                };
                if rc != 0 {
                    assert!(!stoffel_last_error(vm).is_null());
                    continue;
                }
                // SAFETY: `out` was written by the VM; reading the tag as the enum is fine.
                match out.value_type {
                    StoffelValueType::STOFFEL_VALUE_STRING => {
                        // SAFETY: a STRING result carries a string the VM handed out.
                        stoffel_free_string(unsafe { out.data.string_val } as *mut _)
                    }
                    _ => {
                        // SAFETY: `out` is a valid value.
                        unsafe { stoffel_release_value(vm, &out) };
                    }
                }
            }
        }
    }
    stoffel_destroy_vm(vm);
});
