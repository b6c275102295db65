//! C API: time-sliced execution (`stoffel_execute_start`, `stoffel_resume`,
//! `stoffel_cancel`), over [`crate::Vm::start`], [`crate::Vm::resume`] and
//! [`crate::Vm::cancel`].

use std::ffi::{c_char, c_int};

use super::convert::write_value;
use super::error::{
    Failure, STOFFEL_ERROR_EXECUTE_WITH_ARGS, STOFFEL_ERROR_NULL, STOFFEL_ERROR_RESULT_WITH_ARGS,
    STOFFEL_ERROR_STATE, STOFFEL_OK, STOFFEL_SUSPENDED,
};
use super::gate::with_vm;
use super::types::{StoffelValue, StoffelValueData, StoffelValueType, VMHandle};
use super::vm::{ArgBuffer, call_inputs, deliver};
use crate::{ApiError, Progress, Vm, VmError};

/// Starts `function_name` with `arg_count` arguments (exactly its parameter count, as
/// `stoffel_execute_with_args`) and runs it for at most `fuel` instructions. Returns
/// `STOFFEL_OK` when it finished (`*result` as from `stoffel_execute_with_args`) or
/// `STOFFEL_SUSPENDED` (2) when the fuel ran out first: the execution is kept, between two of
/// its instructions, with `*result` UNIT; continue it with `stoffel_resume` or drop it with
/// `stoffel_cancel`. A sliced run gives exactly the results of an uninterrupted one.
///
/// - Fuel 0 starts the function (its name and arguments are checked) without running an
///   instruction: `STOFFEL_SUSPENDED`. A registered C function or builtin runs to its end.
/// - A slice ends only between instructions of the execution's own frames: a C function it
///   calls runs to its end, and what that callback executes on the VM is not sliced.
/// - The instruction limit (the one set when it starts) counts the whole execution over all
///   its slices; reaching it is `STOFFEL_ERROR_LIMIT`.
/// - One suspended execution per VM: starting another while one is suspended is
///   `STOFFEL_ERROR_STATE`, and so is calling this, `stoffel_resume` or `stoffel_cancel` from
///   inside a callback. Every other call works while it is suspended, as its own execution,
///   without disturbing it; destroying the VM drops it.
/// - An error (`STOFFEL_ERROR_EXECUTE_WITH_ARGS`, `STOFFEL_ERROR_LIMIT`,
///   `STOFFEL_ERROR_INTERRUPTED`, ...) ends the execution: nothing stays suspended.
///
/// Other returns as `stoffel_execute_with_args` (NULL pointers, bad names, bad arguments).
///
/// # Safety
/// `function_name` NULL or NUL-terminated; `args` NULL or `arg_count` readable values;
/// `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_execute_start(
    handle: VMHandle,
    function_name: *const c_char,
    args: *const StoffelValue,
    arg_count: c_int,
    fuel: u64,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_execute_start", |vm, cvm| {
        let mut buffer = ArgBuffer::new();
        // SAFETY: the pointers as this function's caller guarantees them.
        let (name, values) =
            unsafe { call_inputs(vm, cvm, &mut buffer, function_name, args, arg_count, result) }?;
        let progress = vm.start(name, values, fuel);
        report(vm, progress, result)
    })
}

/// Continues the suspended execution for at most `fuel` more instructions (fuel 0 runs
/// nothing). Returns as `stoffel_execute_start`: `STOFFEL_OK` with the result,
/// `STOFFEL_SUSPENDED` (`*result` UNIT) or an error, which ends the execution.
/// `STOFFEL_ERROR_STATE` when no execution is suspended (the message says so) or when called
/// from a callback; `STOFFEL_ERROR_NULL` for a NULL `result`.
///
/// # Safety
/// `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_resume(
    handle: VMHandle,
    fuel: u64,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_resume", |vm, _| {
        if result.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
        }
        let progress = vm.resume(fuel);
        report(vm, progress, result)
    })
}

/// Drops the suspended execution (its frames, and the values only they held, become
/// garbage). Returns `STOFFEL_OK`, or `STOFFEL_ERROR_STATE` when no execution is suspended or
/// when called from a callback.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_cancel(handle: VMHandle) -> c_int {
    with_vm(handle, "stoffel_cancel", |vm, _| match vm.cancel() {
        Ok(true) => Ok(STOFFEL_OK),
        Ok(false) => Err(Failure::new(
            STOFFEL_ERROR_STATE,
            "no execution is suspended on this VM",
        )),
        Err(e) => Err(failure(e)),
    })
}

/// Writes a slice's outcome to `out` and returns its code.
fn report(
    vm: &mut Vm,
    progress: Result<Progress, VmError>,
    out: *mut StoffelValue,
) -> Result<c_int, Failure> {
    match progress {
        Ok(Progress::Done(ref value)) => deliver(vm, value, out, STOFFEL_ERROR_RESULT_WITH_ARGS),
        Ok(Progress::Suspended) => {
            let unit = StoffelValue {
                value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
                data: StoffelValueData { int_val: 0 },
            };
            // SAFETY: callers check `out` is non-NULL; the C caller guarantees it is writable.
            unsafe { write_value(out, unit) };
            Ok(STOFFEL_SUSPENDED)
        }
        Err(e) => Err(failure(e)),
    }
}

/// The code of a failed start, resume or cancel.
fn failure(e: VmError) -> Failure {
    match e {
        VmError::Api(
            ApiError::AlreadySuspended | ApiError::NothingSuspended | ApiError::SliceInCall,
        ) => Failure::new(STOFFEL_ERROR_STATE, e.to_string()),
        e => Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS),
    }
}
