//! C API: VM life cycle, loading, execution, limits, garbage collection, output, errors.

use std::ffi::{CString, c_char, c_int, c_void};

use super::convert::{make_value, read_scalar, read_value_into, write_value};
use super::error::{
    Failure, STOFFEL_END, STOFFEL_ERROR_ARGUMENT, STOFFEL_ERROR_EXECUTE,
    STOFFEL_ERROR_EXECUTE_WITH_ARGS, STOFFEL_ERROR_INTERRUPTED, STOFFEL_ERROR_INVALID_FUNCTION,
    STOFFEL_ERROR_INVALID_HANDLE, STOFFEL_ERROR_INVALID_VM, STOFFEL_ERROR_LIMIT,
    STOFFEL_ERROR_NULL, STOFFEL_ERROR_PANIC, STOFFEL_ERROR_PARSE, STOFFEL_ERROR_REENTRANCY,
    STOFFEL_ERROR_RESULT, STOFFEL_ERROR_RESULT_WITH_ARGS, STOFFEL_ERROR_STATE, STOFFEL_ERROR_TYPE,
    STOFFEL_ERROR_UTF8, STOFFEL_OK, STOFFEL_SUSPENDED, guard, set_thread_error,
    set_thread_error_static,
};
use super::foreign::CBound;
use super::gate::{self, CVm, ShellRef, stack_position, with_vm};
use super::process;
use super::strings::{out_of_memory, read_name, to_c_string_lossy};
use super::types::{
    StoffelGcStats, StoffelPrintCallback, StoffelValue, StoffelValueData, StoffelValueType,
    VMHandle,
};
use crate::{Output, Scalar, Val, Vm, VmError};

/// Most arguments `stoffel_execute_with_args` and `stoffel_call_closure` accept.
pub const STOFFEL_MAX_ARGS: c_int = 1024;

/// Creates a VM with the builtins registered and default limits (call depth 10000, no
/// instruction or memory limit), printing to stdout. Returns NULL if memory is short (the
/// allocator has no room for a few VMs, checked before one is built; the thread's last error
/// says "out of memory") or an internal error occurred. Destroy it with `stoffel_destroy_vm`.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_create_vm() -> VMHandle {
    let mut handle: VMHandle = std::ptr::null_mut();
    guard("stoffel_create_vm", || {
        process::setup();
        // Building a VM takes many small allocations, each of which would abort the process
        // if it failed: check there is room first.
        if !process::room_for_vm() {
            set_thread_error_static(c"stoffel_create_vm: out of memory");
            return STOFFEL_ERROR_LIMIT;
        }
        match CVm::install(Vm::new()) {
            Some(new) => {
                handle = new;
                STOFFEL_OK
            }
            None => {
                set_thread_error_static(c"stoffel_create_vm: out of memory");
                STOFFEL_ERROR_LIMIT
            }
        }
    });
    handle
}

/// Destroys a VM: runs the finalizers of its foreign objects, frees everything it owns and
/// invalidates its value ids. The handle is dead when this returns, always: if another thread
/// is inside a call on the VM, that thread destroys it when its call returns (finalizers then
/// run there); called from inside a callback of the same VM, destruction waits until the
/// outermost call on the VM returns. NULL, an unknown or an already destroyed handle is
/// ignored (the thread's last error says so). A finalizer may destroy other VMs: those
/// destroys run after the current one, in the same loop, never nested.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_destroy_vm(handle: VMHandle) {
    guard("stoffel_destroy_vm", || {
        if handle.is_null() {
            set_thread_error("stoffel_destroy_vm: NULL VM handle (ignored)");
            return STOFFEL_OK;
        }
        gate::destroy_vm(handle)
    });
}

/// Loads STFL bytecode, versions 0 to 9 (`len` bytes at `bytecode`). Loading adds to what is loaded (a
/// function with an existing name replaces it); a failed load changes nothing.
/// Returns 0, `STOFFEL_ERROR_NULL` (-1), `STOFFEL_ERROR_PARSE` (-2: the bytes do not decode,
/// there is no memory for what they promise, or the program needs an MPC engine) or `STOFFEL_ERROR_INVALID_FUNCTION` (-3: a
/// function jumps to an unknown label or beyond its code, or loads a constant the pool lacks);
/// the message names the byte offset, function and instruction.
///
/// # Safety
/// `bytecode` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_load_bytecode(
    handle: VMHandle,
    bytecode: *const u8,
    len: usize,
) -> c_int {
    with_vm(handle, "stoffel_load_bytecode", |vm, _| {
        if bytecode.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "bytecode is NULL"));
        }
        // SAFETY: the caller guarantees `len` readable bytes at `bytecode`.
        let bytes = unsafe { std::slice::from_raw_parts(bytecode, len) };
        vm.load_bytecode(bytes).map_err(|e| match &e {
            // StoffelVM decodes the bytes (-2), then converts and registers each function
            // (-3): a function that decodes but does not hold together gets its -3.
            VmError::Load(load) if load.kind.is_invalid_function() => {
                Failure::new(STOFFEL_ERROR_INVALID_FUNCTION, e.to_string())
            }
            _ => Failure::from_vm(e, STOFFEL_ERROR_PARSE),
        })?;
        Ok(STOFFEL_OK)
    })
}

/// Assembles and loads text assembly (the syntax of the README). Returns 0,
/// `STOFFEL_ERROR_NULL`, `STOFFEL_ERROR_UTF8` or `STOFFEL_ERROR_PARSE` (the message has line
/// and column).
///
/// # Safety
/// `source` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_load_assembly(handle: VMHandle, source: *const c_char) -> c_int {
    with_vm(handle, "stoffel_load_assembly", |vm, _| {
        // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
        let text = unsafe { read_name(source, "source") }?;
        vm.load_assembly(text)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_PARSE))?;
        Ok(STOFFEL_OK)
    })
}

/// Runs `function_name` (a bytecode function, builtin or registered C function) with no
/// arguments (a bytecode function's parameters are then UNIT) and writes its result to
/// `*result`. A STRING result is a copy to free with `stoffel_free_string`; an
/// OBJECT/ARRAY/FOREIGN/CLOSURE result is a new id owned by the caller (release it with
/// `stoffel_release_value`). Returns 0, `STOFFEL_ERROR_NULL` (-1), `STOFFEL_ERROR_UTF8` (-2),
/// `STOFFEL_ERROR_EXECUTE` (-3: unknown function or runtime error), `STOFFEL_ERROR_RESULT`
/// (-4: the result cannot be represented in C) or `STOFFEL_ERROR_LIMIT`; `*result` is written
/// only on success.
///
/// # Safety
/// `function_name` must be NULL or NUL-terminated; `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_execute(
    handle: VMHandle,
    function_name: *const c_char,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_execute", |vm, _| {
        // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
        let name = unsafe { read_name(function_name, "function name") }?;
        if result.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
        }
        room_for_name(name)?;
        let value = vm
            .execute(name, &[])
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_EXECUTE))?;
        deliver(vm, &value, result, STOFFEL_ERROR_RESULT)
    })
}

/// Checks that a long name (a function's, from C) can be copied a few times: the VM copies it
/// into its tables or, for a function it does not know, into the error message, and those
/// copies abort the process if the allocator fails. Names up to 4 KiB are not checked.
#[inline]
pub(crate) fn room_for_name(name: &str) -> Result<(), Failure> {
    if name.len() > 4096 {
        return room_for_long_name(name);
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn room_for_long_name(name: &str) -> Result<(), Failure> {
    let bytes = name.len().saturating_mul(4);
    if !process::room_for(bytes) {
        return Err(out_of_memory("copies of the name", Some(bytes)));
    }
    Ok(())
}

/// Writes `value` to `out`, or releases it and fails with `code` if C cannot represent it.
/// Inlined for the usual INT result; every other kind is written out of line.
#[inline(always)]
pub(crate) fn deliver(
    vm: &mut Vm,
    value: &Val,
    out: *mut StoffelValue,
    code: c_int,
) -> Result<c_int, Failure> {
    if let Val::I64(x) = *value {
        let c = StoffelValue {
            value_type: StoffelValueType::STOFFEL_VALUE_INT,
            data: StoffelValueData { int_val: x },
        };
        // SAFETY: callers check `out` is non-NULL; the C caller guarantees it is writable.
        unsafe { write_value(out, c) };
        return Ok(STOFFEL_OK);
    }
    deliver_other(vm, value, out, code)
}

/// [`deliver`] for every kind but INT.
#[inline(never)]
fn deliver_other(
    vm: &mut Vm,
    value: &Val,
    out: *mut StoffelValue,
    code: c_int,
) -> Result<c_int, Failure> {
    match make_value(value) {
        Ok(c) => {
            // SAFETY: callers check `out` is non-NULL; the C caller guarantees it is writable.
            unsafe { write_value(out, c) };
            Ok(STOFFEL_OK)
        }
        Err(f) => {
            let _ = vm.release(value);
            // Out of memory stays a limit failure; anything else is the caller's code.
            let code = if f.code == STOFFEL_ERROR_LIMIT {
                STOFFEL_ERROR_LIMIT
            } else {
                code
            };
            Err(Failure::new(code, f.message))
        }
    }
}

/// Room for call arguments read from C: up to 4 on the caller's stack (the usual case, read
/// in place: no allocation, no move), more in a vector.
pub(crate) struct ArgBuffer {
    few: [Val; 4],
    many: Vec<Val>,
}

impl ArgBuffer {
    pub(crate) fn new() -> ArgBuffer {
        ArgBuffer {
            few: std::array::from_fn(|_| Val::Unit),
            many: Vec::new(),
        }
    }

    /// Reads `count` C values as call arguments (count 0..=`STOFFEL_MAX_ARGS`; `args` may
    /// be NULL only when count is 0), for the VM of `cvm` (see [`ShellRef::string_cap`]).
    ///
    /// # Safety
    /// `args` must point to `count` readable values (or be NULL).
    pub(crate) unsafe fn read(
        &mut self,
        args: *const StoffelValue,
        count: c_int,
        cvm: ShellRef,
    ) -> Result<&[Val], Failure> {
        if !(0..=STOFFEL_MAX_ARGS).contains(&count) {
            return Err(Failure::new(
                STOFFEL_ERROR_NULL,
                format!("arg_count {count} is outside 0..={STOFFEL_MAX_ARGS}"),
            ));
        }
        if count > 0 && args.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "args is NULL"));
        }
        let failed = |i: usize, f: Failure| {
            // Id 0 is a forged id like any other: keep its code; and a limit's.
            let code = match f.code {
                STOFFEL_ERROR_INVALID_HANDLE => STOFFEL_ERROR_INVALID_HANDLE,
                STOFFEL_ERROR_LIMIT => STOFFEL_ERROR_LIMIT,
                _ => STOFFEL_ERROR_ARGUMENT,
            };
            Failure::new(code, format!("argument {i}: {}", f.message))
        };
        let count = count as usize;
        let slots: &mut [Val] = if count <= self.few.len() {
            &mut self.few[..count]
        } else {
            self.many
                .try_reserve_exact(count)
                .map_err(|_| out_of_memory("the arguments", Some(count * size_of::<Val>())))?;
            self.many.resize(count, Val::Unit);
            &mut self.many
        };
        let cap = cvm.string_cap();
        for (i, slot) in slots.iter_mut().enumerate() {
            // Into the slot itself: a value returned and then stored would be copied whole
            // right after being written (see `read_value_into`).
            // SAFETY: `i < count` and the caller guarantees `count` readable values.
            if let Err(f) = unsafe { read_value_into(args.add(i), slot, cap) } {
                return Err(failed(i, f));
            }
        }
        Ok(slots)
    }
}

/// Checks the ids among call arguments: a C function gets the ids as they are, so they are
/// checked before the call (bytecode functions and builtins would refuse them too).
#[inline(always)]
pub(crate) fn check_arg_ids(vm: &Vm, values: &[Val]) -> Result<(), Failure> {
    for (i, v) in values.iter().enumerate() {
        if v.handle().is_some() {
            vm.check(v).map_err(|e| {
                let f = Failure::from_vm(e, STOFFEL_ERROR_ARGUMENT);
                Failure::new(f.code, format!("argument {i}: {}", f.message))
            })?;
        }
    }
    Ok(())
}

/// What a call by name with arguments reads (`stoffel_execute_with_args`,
/// `stoffel_execute_start`): the name, a non-NULL `result`, and the arguments, read into
/// `buffer` with their ids checked.
///
/// # Safety
/// `function_name` NULL or NUL-terminated; `args` NULL or `arg_count` readable values.
#[inline(always)]
pub(crate) unsafe fn call_inputs<'a>(
    vm: &Vm,
    cvm: ShellRef,
    buffer: &'a mut ArgBuffer,
    function_name: *const c_char,
    args: *const StoffelValue,
    arg_count: c_int,
    result: *mut StoffelValue,
) -> Result<(&'a str, &'a [Val]), Failure> {
    // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
    let name = unsafe { read_name(function_name, "function name") }?;
    if result.is_null() {
        return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
    }
    room_for_name(name)?;
    // SAFETY: the caller guarantees `arg_count` readable values at `args`.
    let values = unsafe { buffer.read(args, arg_count, cvm) }?;
    check_arg_ids(vm, values)?;
    Ok((name, values))
}

/// Calls what slot `slot` (a slot of `vm`) is bound to with `arg_count` arguments read from
/// `args`, writing the result to `*result`: `stoffel_call_function`, and
/// `stoffel_execute_with_args` once the name is known (the checks after the name, in the
/// same order, with the same codes).
///
/// # Safety
/// `args` NULL or `arg_count` readable values; `result` NULL or writable.
#[inline(always)]
pub(crate) unsafe fn call_slot(
    vm: &mut Vm,
    cvm: ShellRef,
    slot: u32,
    args: *const StoffelValue,
    arg_count: c_int,
    result: *mut StoffelValue,
) -> Result<c_int, Failure> {
    if result.is_null() {
        return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
    }
    // The usual call: a few numbers for a bytecode function, read straight into scalars
    // (nothing to check, convert or drop). Anything else takes the general path, which
    // reads every kind and reports bad arguments.
    let mut few = [Scalar::Unit; 8];
    // SAFETY: the caller guarantees `arg_count` readable values at `args`.
    if let Some(scalars) = unsafe { read_scalars(args, arg_count, &mut few) }
        && let Some(outcome) = vm.call_slot_scalars(slot, scalars, cvm.stack_vouched())
    {
        return match outcome {
            Ok(ref value) => deliver(vm, value, result, STOFFEL_ERROR_RESULT_WITH_ARGS),
            Err(e) => Err(Failure::from_vm(*e, STOFFEL_ERROR_EXECUTE_WITH_ARGS)),
        };
    }
    let mut buffer = ArgBuffer::new();
    // SAFETY: the caller guarantees `arg_count` readable values at `args`.
    let values = unsafe { buffer.read(args, arg_count, cvm) }?;
    check_arg_ids(vm, values)?;
    // Delivered from where the call put it (moving it out first would copy it whole).
    match vm.call_slot_vals(slot, values) {
        Ok(ref value) => deliver(vm, value, result, STOFFEL_ERROR_RESULT_WITH_ARGS),
        Err(e) => Err(Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS)),
    }
}

/// Reads `count` C values into `out` if every one is UNIT, INT, FLOAT or BOOL and there are
/// at most 8 of them (what [`read_value`](super::convert::read_value) would read them as,
/// and it cannot fail for these); `None` for anything else, `args` NULL included.
///
/// # Safety
/// `args` must point to `count` readable values (or be NULL).
#[inline(always)]
unsafe fn read_scalars(
    args: *const StoffelValue,
    count: c_int,
    out: &mut [Scalar; 8],
) -> Option<&[Scalar]> {
    let count = usize::try_from(count).ok().filter(|&n| n <= out.len())?;
    if count > 0 && args.is_null() {
        return None;
    }
    for (i, slot) in out[..count].iter_mut().enumerate() {
        // SAFETY: `i < count`, and the caller guarantees `count` readable values at `args`.
        *slot = unsafe { read_scalar(args.add(i)) }?;
    }
    Some(&out[..count])
}

/// Runs `function_name` with `arg_count` arguments (0..=1024; for a bytecode function exactly
/// its parameter count). STRING arguments are copied (the caller keeps ownership); ids must be
/// live ids of this VM. Result ownership as for `stoffel_execute`. Returns 0,
/// `STOFFEL_ERROR_NULL` (-1: NULL pointer or bad count), `STOFFEL_ERROR_UTF8` (-2),
/// `STOFFEL_ERROR_ARGUMENT` (-3: an argument cannot be converted), `STOFFEL_ERROR_EXECUTE_WITH_ARGS`
/// (-4: unknown function, arity or runtime error), `STOFFEL_ERROR_RESULT_WITH_ARGS` (-5),
/// `STOFFEL_ERROR_INVALID_HANDLE` (-6: a stale, forged or foreign id) or `STOFFEL_ERROR_LIMIT`
/// (also: a STRING argument longer than the VM's memory limit, or one the allocator has no room
/// to copy).
///
/// # Safety
/// `function_name` NULL or NUL-terminated; `args` NULL or `arg_count` readable values;
/// `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_execute_with_args(
    handle: VMHandle,
    function_name: *const c_char,
    args: *const StoffelValue,
    arg_count: c_int,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_execute_with_args", |vm, cvm| {
        // The name called last time: its slot, without reading the name again. What follows
        // is what the full path does after the name: the same checks in the same order.
        if !function_name.is_null()
            // SAFETY: non-NULL, and NUL-terminated by the caller's guarantee.
            && let Some(slot) = unsafe { cvm.cached_slot(function_name, vm.serial()) }
        {
            // SAFETY: the pointers as this function's caller guarantees them.
            return unsafe { call_slot(vm, cvm, slot, args, arg_count, result) };
        }
        let mut buffer = ArgBuffer::new();
        // SAFETY: the pointers as this function's caller guarantees them.
        let (name, values) =
            unsafe { call_inputs(vm, cvm, &mut buffer, function_name, args, arg_count, result) }?;
        if let Some(slot) = vm.slot_of(name) {
            cvm.remember_slot(name, vm.serial(), slot);
        }
        // Delivered from where `call` put it (moving it out first would copy it whole).
        match vm.call_vals(name, values) {
            Ok(ref value) => deliver(vm, value, result, STOFFEL_ERROR_RESULT_WITH_ARGS),
            Err(e) => Err(Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS)),
        }
    })
}

/// The message of the last failed call on `vm` (or, for NULL or an invalid handle, of the last
/// failed call on this thread that had no usable VM); NULL if there was none. The string is
/// owned by the VM (or thread) and valid until the next failing call (or the VM's
/// destruction); do not free it. Called while the thread exits (from a TLS or pthread-key
/// destructor, or an `atexit` handler), after the thread's message slot is gone, it returns a
/// static message saying so.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_last_error(handle: VMHandle) -> *const c_char {
    let mut message: *const c_char = std::ptr::null();
    guard("stoffel_last_error", || {
        // Not through `with_vm` (see `gate::last_error`).
        message = gate::last_error(handle);
        STOFFEL_OK
    });
    message
}

/// Copies the message `stoffel_last_error(handle)` would return into `buffer` (at most
/// `size` bytes, NUL included; truncated at a UTF-8 character boundary if it does not fit),
/// for hosts that keep messages beyond the next call or hand them to another thread. Returns
/// the message's full length in bytes without the NUL (so a return ≥ `size` means it was
/// truncated), 0 with an empty `buffer` when there is no message, or `STOFFEL_ERROR_NULL`
/// for a NULL `buffer` with a non-zero `size`. `buffer` may be NULL with `size` 0 to ask for
/// the length.
///
/// # Safety
/// `buffer` must be NULL or point to `size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_last_error_copy(
    handle: VMHandle,
    buffer: *mut c_char,
    size: usize,
) -> isize {
    let mut length: isize = 0;
    let code = guard("stoffel_last_error_copy", || {
        if buffer.is_null() && size != 0 {
            return STOFFEL_ERROR_NULL;
        }
        let message = gate::last_error(handle);
        let bytes: &[u8] = if message.is_null() {
            &[]
        } else {
            // SAFETY: `last_error` returns NULL or a NUL-terminated string that stays valid
            // until the next failing call on this VM or thread, which cannot happen while
            // this call runs on it.
            unsafe { std::ffi::CStr::from_ptr(message) }.to_bytes()
        };
        length = isize::try_from(bytes.len()).unwrap_or(isize::MAX);
        if size == 0 {
            return STOFFEL_OK;
        }
        let mut n = bytes.len().min(size - 1);
        // Not in the middle of a UTF-8 character.
        while n > 0 && n < bytes.len() && (bytes[n] & 0xC0) == 0x80 {
            n -= 1;
        }
        // SAFETY: `buffer` is not NULL (checked above, `size` > 0) and has `size` writable
        // bytes by the caller's guarantee; `n` + 1 ≤ `size`; the regions cannot overlap (the
        // message is ours).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), n);
            buffer.add(n).write(0);
        }
        STOFFEL_OK
    });
    if code == STOFFEL_OK {
        length
    } else {
        code as isize
    }
}

/// Asks the execution running on `vm` to stop: it fails at its next check (within 4,096
/// instructions, or when a C callback it called returns) with `STOFFEL_ERROR_INTERRUPTED`,
/// and the VM stays usable. The one function that may be called from **any thread at any
/// time**, also while another thread is inside a call on `vm` (a watchdog); not from a signal
/// handler (it takes a lock). An interrupt that arrives while nothing runs is ignored: each
/// top-level execution starts uninterrupted. Returns 0, `STOFFEL_ERROR_NULL` or
/// `STOFFEL_ERROR_INVALID_VM` (destroyed or unknown handle).
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_interrupt(handle: VMHandle) -> c_int {
    guard("stoffel_interrupt", || gate::interrupt(handle))
}

/// The name of return code `code`, e.g. `"STOFFEL_ERROR_LIMIT"`, for logs. Codes that several
/// names share (StoffelVM's codes differ by function) give every name, e.g. -2 is
/// `"STOFFEL_ERROR_UTF8 | STOFFEL_ERROR_PARSE | STOFFEL_ERROR_REGISTER_OBJECT"`; a code that is
/// none of ours gives `"unknown return code"`. The string is static: never NULL, never freed.
/// Safe to call from any thread at any time.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_error_name(code: c_int) -> *const c_char {
    let name: &'static std::ffi::CStr = match code {
        STOFFEL_OK => c"STOFFEL_OK",
        STOFFEL_END => c"STOFFEL_END",
        STOFFEL_SUSPENDED => c"STOFFEL_SUSPENDED",
        STOFFEL_ERROR_STATE => c"STOFFEL_ERROR_STATE",
        STOFFEL_ERROR_NULL => c"STOFFEL_ERROR_NULL",
        STOFFEL_ERROR_UTF8 => {
            c"STOFFEL_ERROR_UTF8 | STOFFEL_ERROR_PARSE | STOFFEL_ERROR_REGISTER_OBJECT"
        }
        STOFFEL_ERROR_EXECUTE => {
            c"STOFFEL_ERROR_EXECUTE | STOFFEL_ERROR_ARGUMENT | STOFFEL_ERROR_INVALID_FUNCTION"
        }
        STOFFEL_ERROR_RESULT => c"STOFFEL_ERROR_RESULT | STOFFEL_ERROR_EXECUTE_WITH_ARGS",
        STOFFEL_ERROR_RESULT_WITH_ARGS => c"STOFFEL_ERROR_RESULT_WITH_ARGS",
        STOFFEL_ERROR_INVALID_HANDLE => c"STOFFEL_ERROR_INVALID_HANDLE",
        STOFFEL_ERROR_TYPE => c"STOFFEL_ERROR_TYPE",
        STOFFEL_ERROR_LIMIT => c"STOFFEL_ERROR_LIMIT",
        STOFFEL_ERROR_REENTRANCY => c"STOFFEL_ERROR_REENTRANCY",
        STOFFEL_ERROR_INVALID_VM => c"STOFFEL_ERROR_INVALID_VM",
        STOFFEL_ERROR_PANIC => c"STOFFEL_ERROR_PANIC",
        STOFFEL_ERROR_INTERRUPTED => c"STOFFEL_ERROR_INTERRUPTED",
        _ => c"unknown return code",
    };
    name.as_ptr()
}

/// Instructions one top-level execution may run; 0 means unlimited (the default). Exceeding
/// it fails the execution with `STOFFEL_ERROR_LIMIT`.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_set_instruction_limit(handle: VMHandle, limit: u64) -> c_int {
    with_vm(handle, "stoffel_set_instruction_limit", |vm, _| {
        vm.set_instruction_limit((limit != 0).then_some(limit));
        Ok(STOFFEL_OK)
    })
}

/// Frames that may be live at once (default 10000; at least 1). Deeper recursion fails with
/// `STOFFEL_ERROR_LIMIT`; frames live on the heap, never on the C stack.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_set_max_call_depth(handle: VMHandle, depth: u32) -> c_int {
    with_vm(handle, "stoffel_set_max_call_depth", |vm, _| {
        if depth == 0 {
            return Err(Failure::new(
                STOFFEL_ERROR_NULL,
                "the call depth must be at least 1",
            ));
        }
        vm.set_max_call_depth(depth as usize);
        Ok(STOFFEL_OK)
    })
}

/// Bytes of heap values and interpreter stacks above which an execution fails with
/// `STOFFEL_ERROR_LIMIT` (after a full collection); 0 means unlimited (the default). A STRING
/// argument longer than the limit is refused with `STOFFEL_ERROR_LIMIT` before it is copied.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_set_memory_limit(handle: VMHandle, bytes: usize) -> c_int {
    with_vm(handle, "stoffel_set_memory_limit", |vm, cvm| {
        vm.set_memory_limit((bytes != 0).then_some(bytes));
        cvm.note_memory_limit(bytes);
        Ok(STOFFEL_OK)
    })
}

/// The directory `LocalStorage.store/load/retrieve/delete/exists` keep values in (one file
/// per key, the directory created when first stored to); NULL removes the store, and those
/// builtins then fail ("Local storage is not configured", the default). Returns 0,
/// `STOFFEL_ERROR_UTF8` (the path is not UTF-8) or `STOFFEL_ERROR_INVALID_VM`.
///
/// # Safety
/// `dir` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_set_local_storage(handle: VMHandle, dir: *const c_char) -> c_int {
    with_vm(handle, "stoffel_set_local_storage", |vm, _| {
        if dir.is_null() {
            vm.set_local_storage(None);
            return Ok(STOFFEL_OK);
        }
        // SAFETY: non-NULL and NUL-terminated, by the caller's guarantee.
        let path = unsafe { read_name(dir, "directory") }?;
        vm.set_local_storage(Some(std::path::PathBuf::from(path)));
        Ok(STOFFEL_OK)
    })
}

/// Runs a full garbage collection now, then the finalizers of foreign objects it freed.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_gc_collect(handle: VMHandle) -> c_int {
    with_vm(handle, "stoffel_gc_collect", |vm, _| {
        vm.collect_all();
        Ok(STOFFEL_OK)
    })
}

/// Writes heap and collector figures to `*stats`.
///
/// # Safety
/// `stats` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_gc_stats(handle: VMHandle, stats: *mut StoffelGcStats) -> c_int {
    with_vm(handle, "stoffel_gc_stats", |vm, _| {
        if stats.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "stats is NULL"));
        }
        let s = vm.gc_stats();
        let out = StoffelGcStats {
            heap_bytes: s.heap_bytes,
            stack_bytes: s.stack_bytes,
            gc_objects: s.gc_objects,
            live_handles: s.live_handles,
            foreign_objects: s.foreign_objects,
            collections: s.collections,
        };
        // SAFETY: non-NULL and writable by the caller's guarantee.
        unsafe { stats.write(out) };
        Ok(STOFFEL_OK)
    })
}

/// Sends `print` output to `callback(text, user_data)` instead of stdout; NULL restores
/// stdout. `text` is one printed line with its newline, valid during the call (a NUL inside
/// printed text arrives as U+FFFD). The callback must not call into this VM (such calls get
/// `STOFFEL_ERROR_REENTRANCY`), and must return normally (see `CForeignFunction`).
///
/// # Safety
/// `callback` must be safe to call with a text pointer and `user_data` while the VM lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_set_print_callback(
    handle: VMHandle,
    callback: StoffelPrintCallback,
    user_data: *mut c_void,
) -> c_int {
    with_vm(handle, "stoffel_set_print_callback", |vm, cvm| {
        match callback {
            None => vm.set_output(Output::Stdout),
            Some(f) => {
                let mut print = CBound::new(move |text: &str| {
                    let c: CString = to_c_string_lossy(text);
                    // Marked, so that a `longjmp` out of the callback is noticed (see
                    // `gate::left_by_jump`).
                    cvm.mark_callback(stack_position(), || {
                        // SAFETY: the host registered `f` as a function with this signature;
                        // the text pointer is valid for the duration of the call.
                        unsafe { f(c.as_ptr(), user_data) };
                    });
                });
                vm.set_output(Output::Callback(Box::new(move |text: &str| {
                    (print.get_mut())(text)
                })))
            }
        }
        Ok(STOFFEL_OK)
    })
}

/// The library version (e.g. "0.1.0"), a static string.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
