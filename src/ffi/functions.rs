//! C API: function handles, a function looked up once and called many times
//! (`stoffel_lookup_function`, `stoffel_call_function`). A `StoffelFunction` is the Rust
//! [`crate::Func`] as plain data ([`crate::Func::to_parts`]); each call checks it as
//! [`crate::Vm::func_from_parts`] does (without making a `Func`), refusing another VM's or a
//! made-up one, so a stale or forged handle is an error code, never another function.

use std::ffi::{c_char, c_int};

use super::error::{
    Failure, STOFFEL_ERROR_EXECUTE_WITH_ARGS, STOFFEL_ERROR_INVALID_FUNCTION, STOFFEL_ERROR_NULL,
    STOFFEL_OK,
};
use super::gate::with_vm;
use super::strings::read_name;
use super::types::{StoffelFunction, StoffelValue, VMHandle};
use super::vm::{call_slot, room_for_name};

/// Looks `function_name` up once (a bytecode function, builtin or registered C function) and
/// writes a handle for `stoffel_call_function` to `*out`. The handle follows the name: after
/// a later load or registration redefines it, calls reach the new definition. Returns 0,
/// `STOFFEL_ERROR_NULL` (-1: NULL name or `out`), `STOFFEL_ERROR_UTF8` (-2),
/// `STOFFEL_ERROR_INVALID_FUNCTION` (-3: nothing is bound to the name now) or
/// `STOFFEL_ERROR_LIMIT` (a name too long to copy); `*out` is written only on success.
///
/// # Safety
/// `function_name` must be NULL or NUL-terminated; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_lookup_function(
    handle: VMHandle,
    function_name: *const c_char,
    out: *mut StoffelFunction,
) -> c_int {
    with_vm(handle, "stoffel_lookup_function", |vm, _| {
        // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
        let name = unsafe { read_name(function_name, "function name") }?;
        if out.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "out is NULL"));
        }
        room_for_name(name)?;
        let func = vm
            .function(name)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_INVALID_FUNCTION))?;
        let (vm, slot) = func.to_parts();
        // SAFETY: non-NULL (checked) and writable by the caller's guarantee.
        unsafe { out.write(StoffelFunction { vm, slot }) };
        Ok(STOFFEL_OK)
    })
}

/// Calls a function looked up with `stoffel_lookup_function` on the same VM, as
/// `stoffel_execute_with_args` calls a name: the same arguments (0..=1024; for a bytecode
/// function exactly its parameter count), result ownership and codes, plus
/// `STOFFEL_ERROR_INVALID_HANDLE` (-6) for a handle of another VM or one no lookup wrote.
/// Returns 0, `STOFFEL_ERROR_NULL` (-1: NULL pointer or bad count), `STOFFEL_ERROR_UTF8`
/// (-2), `STOFFEL_ERROR_ARGUMENT` (-3), `STOFFEL_ERROR_EXECUTE_WITH_ARGS` (-4: arity or
/// runtime error), `STOFFEL_ERROR_RESULT_WITH_ARGS` (-5), `STOFFEL_ERROR_INVALID_HANDLE`
/// (-6: the function handle, or a stale, forged or foreign id among the arguments),
/// `STOFFEL_ERROR_LIMIT` or `STOFFEL_ERROR_INTERRUPTED`; `*result` is written only on
/// success.
///
/// # Safety
/// `args` NULL or `arg_count` readable values; `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_call_function(
    handle: VMHandle,
    function: StoffelFunction,
    args: *const StoffelValue,
    arg_count: c_int,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_call_function", |vm, cvm| {
        if result.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
        }
        let slot = vm
            .check_func_parts(function.vm, function.slot)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS))?;
        // SAFETY: the pointers as this function's caller guarantees them (`result` is
        // checked again there: free, and it keeps one body for both calls).
        unsafe { call_slot(vm, cvm, slot, args, arg_count, result) }
    })
}
