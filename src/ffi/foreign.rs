//! C API: C functions callable from VM code, and foreign objects with finalizers.

use std::ffi::{CString, c_char, c_int, c_void};

use super::convert::{make_value, read_value, write_value};
use super::error::{
    Failure, STOFFEL_ERROR_LIMIT, STOFFEL_ERROR_NULL, STOFFEL_ERROR_REGISTER_OBJECT,
    STOFFEL_ERROR_TYPE, STOFFEL_OK, vm_error_message,
};
use super::gate::{ShellRef, with_vm};
use super::strings::{read_name, try_c_string};
use super::types::{
    CForeignFunction, CForeignFunctionEx, StoffelFinalizer, StoffelValue, StoffelValueData,
    StoffelValueType, VMHandle,
};
use super::vm::room_for_name;
use crate::{HostError, Val, Vm};

/// What a C host registered with a VM (a callback's closure with its function pointer and
/// `void*` user data, a foreign object's pointer and finalizer), made `Send + Sync` so that
/// the VM can be (with the `send` feature).
pub(super) struct CBound<T>(T);

impl<T> CBound<T> {
    pub(super) fn new(inner: T) -> CBound<T> {
        CBound(inner)
    }

    /// The wrapped value. (A method, so that a closure using it captures the whole wrapper,
    /// not its field.)
    pub(super) fn get(&self) -> &T {
        &self.0
    }

    /// The wrapped value, to change or call mutably (a method, as [`CBound::get`]).
    pub(super) fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

// SAFETY: the C contract (include/README.md, "Threads"): a VM is used from one thread at a
// time, may move between threads between calls (finalizers then run on the thread that
// destroys it), and callbacks run on the thread that called into the VM; what the host
// registered goes with its VM. The gate (`gate::with_vm`) lets one thread at a time into a
// C VM, and Rust code never gets a C VM's `Vm` to move elsewhere, so a wrapped value is used
// and dropped by one thread at a time, never by two at once.
unsafe impl<T> Send for CBound<T> {}
// SAFETY: as above: never used by two threads at once.
unsafe impl<T> Sync for CBound<T> {}

/// The data of a foreign object registered from C: the host's pointer and its finalizer.
/// Dropping it (exactly once: when the VM collects the object or is destroyed) runs the
/// finalizer, always outside the arena.
struct CForeign {
    object: *mut c_void,
    finalizer: StoffelFinalizer,
}

// SAFETY: as for `CBound`: the object goes with its VM, which one thread at a time uses, and
// its finalizer runs on the thread that collects or destroys the VM (the C contract).
unsafe impl Send for CForeign {}

impl Drop for CForeign {
    fn drop(&mut self) {
        if let Some(f) = self.finalizer {
            // SAFETY: the host registered `f` for this pointer and asked for exactly one call.
            unsafe { f(self.object) };
        }
    }
}

/// Calls into C for one host call; the closures below adapt the two callback shapes.
type Invoke = dyn Fn(VMHandle, *const StoffelValue, c_int, *mut StoffelValue) -> c_int;

/// A host function that converts the arguments, lends the VM to the callback (so it may call
/// back into it), runs `invoke`, and converts the result.
fn host_function(
    cvm: ShellRef,
    name: &str,
    invoke: Box<Invoke>,
) -> impl Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + Send + Sync + 'static {
    let name: Box<str> = Box::from(name);
    // The C argument array, reused from call to call (a nested call of the same function
    // finds it taken and uses a fresh one).
    let scratch: std::cell::Cell<Vec<StoffelValue>> = std::cell::Cell::new(Vec::new());
    // The VM's handle, for the callback (a VM keeps its handle for life; the shell's copy is
    // zeroed as soon as destruction is asked for, while a callback may still be running).
    let handle = cvm.handle();
    let call = CBound::new(move |vm: &mut Vm, args: &[Val]| {
        // Strings for the callback are owned here and freed when it returns.
        let mut strings: Vec<CString> = Vec::new();
        let mut values = scratch.take();
        values.clear();
        for (i, arg) in args.iter().enumerate() {
            let value = match arg {
                Val::String(s) => {
                    let c = try_c_string(s, "a string argument").map_err(|f| {
                        HostError::new(if f.code == STOFFEL_ERROR_LIMIT {
                            format!("argument {i} of C function '{name}': {}", f.message)
                        } else {
                            format!("argument {i} of C function '{name}' contains a NUL byte")
                        })
                    })?;
                    let v = StoffelValue {
                        value_type: StoffelValueType::STOFFEL_VALUE_STRING,
                        data: StoffelValueData {
                            string_val: c.as_ptr(),
                        },
                    };
                    strings.push(c);
                    v
                }
                other => make_value(other).map_err(|f| {
                    HostError::new(format!(
                        "argument {i} of C function '{name}': {}",
                        f.message
                    ))
                })?,
            };
            values.push(value);
        }
        if values.is_empty() {
            // Never hand C a dangling pointer, even with arg_count 0.
            values.push(unit());
        }
        let mut result = unit();
        // `cvm` is the shell that owns this VM (and so this closure). Copied out of the
        // closure so that it stays in a register across the callback (the machine code is
        // then the same as before `ShellRef`).
        let cvm = cvm;
        let failures_before = cvm.failure_count();
        // `result` is in this frame, above the callback's: its address marks the frame (see
        // `ShellRef::lend`).
        let frame = std::ptr::addr_of!(result) as usize;
        let code = cvm.lend(vm, frame, || {
            invoke(handle, values.as_ptr(), args.len() as c_int, &mut result)
        });
        scratch.set(values);
        if code != 0 {
            discard_failed_result(vm, &result, args, cvm.string_cap());
            let message = format!("C function '{name}' returned error code {code}");
            return Err(
                match (vm.nested_error(), cvm.failure_since(failures_before)) {
                    // Its last error was a failed nested execution: passed on as the cause, so a
                    // failure through many levels names the innermost error and the depth.
                    (Some(e), Some(last)) if last == vm_error_message(e) => {
                        HostError::caused_by(message, e.clone())
                    }
                    (_, Some(last)) => HostError::new(format!(
                        "{message} (last error inside the callback: {last})"
                    )),
                    (_, None) => HostError::new(message),
                },
            );
        }
        let invalid = |message: String| {
            HostError::new(format!(
                "C function '{name}' returned an invalid result: {message}"
            ))
        };
        // An integer, the usual result, read field by field and returned at once (no whole-
        // value copies of fresh stores: see `read_value_into`).
        // SAFETY: `result` is our own initialised value; the tag is read as a plain int (any
        // bits allowed) and `int_val` is plain data.
        let int_tag = StoffelValueType::STOFFEL_VALUE_INT as c_int;
        if unsafe { std::ptr::addr_of!(result.value_type).cast::<c_int>().read() } == int_tag {
            // SAFETY: as above.
            return Ok(Val::I64(unsafe { result.data.int_val }));
        }
        // SAFETY: `result` is our own initialised value; C wrote (at most) a value into it,
        // and a STRING it wrote must point to a NUL-terminated string: its own, or one of
        // the argument strings, which is why `strings` is dropped only after this copy.
        let value =
            unsafe { read_value(&result, cvm.string_cap()) }.map_err(|f| invalid(f.message))?;
        drop(strings);
        // An id must name a live value of this VM (also when the C function was executed
        // by name, where no conversion into the VM would check it).
        if value.handle().is_some() {
            vm.check(&value).map_err(|e| invalid(e.to_string()))?;
        }
        Ok(value)
    });
    move |vm: &mut Vm, args: &[Val]| (call.get())(vm, args)
}

/// A callback that failed may still have written an id to `*result` (a fresh object it
/// meant to return): the VM takes it over as it would a result, and so releases it. An id of
/// one of the arguments, or anything that is not a live id of this VM, is left alone.
fn discard_failed_result(vm: &mut Vm, result: &StoffelValue, args: &[Val], string_cap: usize) {
    // SAFETY: `result` is our own initialised value; C wrote (at most) a value into it.
    // Strings are not read: only the tag and an id matter here, and a STRING's pointer may
    // already dangle.
    let tag = unsafe { std::ptr::addr_of!(result.value_type).cast::<c_int>().read() };
    if tag == StoffelValueType::STOFFEL_VALUE_STRING as c_int {
        return;
    }
    // SAFETY: as above; a non-string value is plain data.
    let Ok(value) = (unsafe { read_value(result, string_cap) }) else {
        return;
    };
    if let Some(h) = value.handle()
        && !args.iter().any(|a| a.handle() == Some(h))
        && vm.check(&value).is_ok()
    {
        let _ = vm.release(&value);
    }
}

fn unit() -> StoffelValue {
    StoffelValue {
        value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
        data: StoffelValueData { int_val: 0 },
    }
}

/// Registers C function `func` under `name`, replacing any function of that name (bytecode,
/// builtin or C) as StoffelVM does. VM code calls it with `CALL name`; hosts may execute it by
/// name. During the call, `args` (and STRING pointers in it) are valid; ids in `args` are valid
/// until the callback returns unless retained with `stoffel_retain_value`. The callback must
/// return normally (see `CForeignFunction`). Returns 0, `STOFFEL_ERROR_NULL` (NULL name or
/// function), `STOFFEL_ERROR_UTF8` or `STOFFEL_ERROR_LIMIT` (no memory to copy a long name).
///
/// # Safety
/// `name` must be NULL or NUL-terminated; `func` must be safe to call with the documented
/// arguments for as long as the VM lives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_register_foreign_function(
    handle: VMHandle,
    name: *const c_char,
    func: CForeignFunction,
) -> c_int {
    with_vm(handle, "stoffel_register_foreign_function", |vm, cvm| {
        // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
        let name = unsafe { read_name(name, "name") }?;
        room_for_name(name)?;
        let Some(f) = func else {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "function pointer is NULL"));
        };
        let invoke = Box::new(move |_vm: VMHandle, args, count, result| {
            // SAFETY: the host registered `f` with this signature; the pointers are valid
            // for the call (see `host_function`).
            unsafe { f(args, count, result) }
        });
        vm.register_function(name, host_function(cvm, name, invoke));
        Ok(STOFFEL_OK)
    })
}

/// Like `stoffel_register_foreign_function`, but the callback also receives the VM (which it
/// may call re-entrantly: execute, heap access, GC) and `user_data`.
///
/// # Safety
/// As `stoffel_register_foreign_function`; `user_data` is passed through untouched.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_register_foreign_function_ex(
    handle: VMHandle,
    name: *const c_char,
    func: CForeignFunctionEx,
    user_data: *mut c_void,
) -> c_int {
    with_vm(handle, "stoffel_register_foreign_function_ex", |vm, cvm| {
        // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
        let name = unsafe { read_name(name, "name") }?;
        room_for_name(name)?;
        let Some(f) = func else {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "function pointer is NULL"));
        };
        let invoke = Box::new(move |vm_handle: VMHandle, args, count, result| {
            // SAFETY: as in `stoffel_register_foreign_function`.
            unsafe { f(vm_handle, user_data, args, count, result) }
        });
        vm.register_function(name, host_function(cvm, name, invoke));
        Ok(STOFFEL_OK)
    })
}

fn register_object(
    vm: &mut Vm,
    object: *mut c_void,
    finalizer: StoffelFinalizer,
    result: *mut StoffelValue,
) -> Result<c_int, Failure> {
    if object.is_null() {
        return Err(Failure::new(STOFFEL_ERROR_NULL, "object is NULL"));
    }
    if result.is_null() {
        return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
    }
    // StoffelVM returns -2 when registering fails; running out of room stays a limit.
    let v = vm
        .create_foreign(Box::new(CForeign { object, finalizer }))
        .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_REGISTER_OBJECT))?;
    let c = make_value(&v).map_err(|f| {
        let _ = vm.release(&v);
        let code = if f.code == STOFFEL_ERROR_LIMIT {
            STOFFEL_ERROR_LIMIT
        } else {
            STOFFEL_ERROR_REGISTER_OBJECT
        };
        Failure::new(code, f.message)
    })?;
    // SAFETY: non-NULL and writable by the caller's guarantee.
    unsafe { write_value(result, c) };
    Ok(STOFFEL_OK)
}

/// Wraps a host pointer as a FOREIGN value; `*result` gets its id (owned by the caller). The
/// VM never dereferences the pointer. Returns 0, `STOFFEL_ERROR_NULL` (NULL handle, object or
/// result) or `STOFFEL_ERROR_LIMIT` (no room for it; any other failure to register it would be
/// `STOFFEL_ERROR_REGISTER_OBJECT`, -2, as in StoffelVM).
///
/// # Safety
/// `result` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_register_foreign_object(
    handle: VMHandle,
    object: *mut c_void,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_register_foreign_object", |vm, _| {
        register_object(vm, object, None, result)
    })
}

/// Like `stoffel_register_foreign_object`, with a finalizer (may be NULL) that runs exactly
/// once with `object`: after the collector finds the value unreachable (during a later call
/// on the VM, never while it is mid-operation) or at `stoffel_destroy_vm`. The finalizer must
/// not call into this VM (such calls fail cleanly) and must return normally; it may destroy
/// other VMs.
///
/// # Safety
/// `result` must be NULL or writable; `finalizer` must be safe to call once with `object`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_register_foreign_object_ex(
    handle: VMHandle,
    object: *mut c_void,
    finalizer: StoffelFinalizer,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_register_foreign_object_ex", |vm, _| {
        register_object(vm, object, finalizer, result)
    })
}

/// Writes the pointer a FOREIGN value wraps to `*object`. Returns 0, `STOFFEL_ERROR_NULL`,
/// `STOFFEL_ERROR_TYPE` (not a foreign value registered from C) or
/// `STOFFEL_ERROR_INVALID_HANDLE`.
///
/// # Safety
/// `value` must be NULL or readable; `object` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_get_foreign_object(
    handle: VMHandle,
    value: *const StoffelValue,
    object: *mut *mut c_void,
) -> c_int {
    with_vm(handle, "stoffel_get_foreign_object", |vm, cvm| {
        if value.is_null() || object.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "value or object is NULL"));
        }
        // SAFETY: non-NULL and readable by the caller's guarantee.
        let v = unsafe { read_value(value, cvm.string_cap()) }?;
        if !matches!(v, Val::Foreign(_)) {
            return Err(Failure::new(
                STOFFEL_ERROR_TYPE,
                format!("expected a FOREIGN value, got {}", v.kind()),
            ));
        }
        let data = vm
            .foreign_data(&v)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        let Some(c) = data.downcast_ref::<CForeign>() else {
            return Err(Failure::new(
                STOFFEL_ERROR_TYPE,
                "this foreign object was not registered through the C API",
            ));
        };
        // SAFETY: non-NULL and writable by the caller's guarantee.
        unsafe { object.write(c.object) };
        Ok(STOFFEL_OK)
    })
}
