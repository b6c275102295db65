//! C API: strings, value ids (release / retain), heap access and closures.

use std::ffi::{c_char, c_int};

use super::convert::{make_value, read_value, write_value};
use super::error::{
    Failure, STOFFEL_END, STOFFEL_ERROR_ARGUMENT, STOFFEL_ERROR_EXECUTE_WITH_ARGS,
    STOFFEL_ERROR_LIMIT, STOFFEL_ERROR_NULL, STOFFEL_ERROR_RESULT_WITH_ARGS, STOFFEL_ERROR_TYPE,
    STOFFEL_OK, guard, set_thread_error,
};
use super::gate::{ShellRef, with_vm};
use super::strings::{give_string, read_name, take_back_string};
use super::types::{StoffelValue, StoffelValueData, StoffelValueType, VMHandle};
use super::vm::{ArgBuffer, deliver};
use crate::Val;

/// Makes a STRING value holding a copy of `str`, to be freed with `stoffel_free_string`.
/// Returns 0, `STOFFEL_ERROR_NULL`, `STOFFEL_ERROR_UTF8` or `STOFFEL_ERROR_LIMIT` (out of
/// memory for the copy).
///
/// # Safety
/// `str` must be NULL or NUL-terminated; `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_create_string(
    handle: VMHandle,
    str: *const c_char,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_create_string", |_, _| {
        // SAFETY: NULL or NUL-terminated, by the caller's guarantee.
        let text = unsafe { read_name(str, "str") }?;
        if result.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"));
        }
        let value = StoffelValue {
            value_type: StoffelValueType::STOFFEL_VALUE_STRING,
            data: StoffelValueData {
                string_val: give_string(text)?,
            },
        };
        // SAFETY: non-NULL and writable by the caller's guarantee.
        unsafe { write_value(result, value) };
        Ok(STOFFEL_OK)
    })
}

/// Frees a string the VM returned (a STRING result or `stoffel_create_string`). NULL is a
/// no-op; a pointer the VM did not hand out, or one already freed, is ignored (and noted in
/// the thread's last error) instead of corrupting the heap. Freeing twice is still a bug:
/// once the VM has handed out a new string at the same address, a second free frees that one.
#[unsafe(no_mangle)]
pub extern "C" fn stoffel_free_string(str: *mut c_char) {
    guard("stoffel_free_string", || {
        if !str.is_null() && !take_back_string(str) {
            set_thread_error(
                "stoffel_free_string: pointer was not returned by the VM (or already freed)",
            );
        }
        STOFFEL_OK
    });
}

/// Releases the caller's reference to an OBJECT / ARRAY / FOREIGN / CLOSURE id; when no
/// reference is left the value may be collected and the id is dead for good. Values of
/// other types need no release (strings are freed with `stoffel_free_string`). Returns 0,
/// `STOFFEL_ERROR_NULL`, `STOFFEL_ERROR_TYPE` or `STOFFEL_ERROR_INVALID_HANDLE` (a released,
/// forged or other VM's id; releasing twice is this error, not a crash).
///
/// # Safety
/// `value` must be NULL or point to a readable `StoffelValue`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_release_value(
    handle: VMHandle,
    value: *const StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_release_value", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked first).
        let v = unsafe { read_one(value, "value", cvm) }?;
        vm.release(&v)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        Ok(STOFFEL_OK)
    })
}

/// Adds a reference to an id: it then needs one more `stoffel_release_value`. Use it to keep
/// an id received as a callback argument after the callback returns.
///
/// # Safety
/// `value` must be NULL or point to a readable `StoffelValue`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_retain_value(
    handle: VMHandle,
    value: *const StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_retain_value", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked first).
        let v = unsafe { read_one(value, "value", cvm) }?;
        vm.retain(&v)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        Ok(STOFFEL_OK)
    })
}

/// Whether `a` and `b` are the same value: for objects, arrays, closures and foreign objects
/// the same heap value (two ids of one object are the same, `*same` = 1), otherwise equal
/// kind and value (strings by content). Writes 1 or 0 to `*same`. Returns 0,
/// `STOFFEL_ERROR_NULL` or `STOFFEL_ERROR_INVALID_HANDLE` (a stale or forged id: an error, not
/// "different").
///
/// # Safety
/// `a` and `b` must be NULL or point to readable `StoffelValue`s; `same` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_same_value(
    handle: VMHandle,
    a: *const StoffelValue,
    b: *const StoffelValue,
    same: *mut c_int,
) -> c_int {
    with_vm(handle, "stoffel_same_value", |vm, cvm| {
        if same.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "same is NULL"));
        }
        // SAFETY: readable by the caller's guarantee (NULL is checked first).
        let a = unsafe { read_one(a, "a", cvm) }?;
        // SAFETY: as above.
        let b = unsafe { read_one(b, "b", cvm) }?;
        let result = vm
            .same(&a, &b)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        // SAFETY: `same` is not NULL (checked above) and writable by the caller's guarantee.
        unsafe { same.write(c_int::from(result)) };
        Ok(STOFFEL_OK)
    })
}

/// Reads one value argument, refusing NULL.
///
/// # Safety
/// `p` must be NULL or point to a readable `StoffelValue`.
unsafe fn read_one(p: *const StoffelValue, what: &str, cvm: ShellRef) -> Result<Val, Failure> {
    if p.is_null() {
        return Err(Failure::new(STOFFEL_ERROR_NULL, format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and readable by the caller's guarantee.
    unsafe { read_value(p, cvm.string_cap()) }
}

fn need_out(out: *const StoffelValue) -> Result<(), Failure> {
    if out.is_null() {
        Err(Failure::new(STOFFEL_ERROR_NULL, "result is NULL"))
    } else {
        Ok(())
    }
}

/// Creates an empty object; `*result` gets its id (owned by the caller).
///
/// # Safety
/// `result` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_create_object(
    handle: VMHandle,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_create_object", |vm, _| {
        need_out(result)?;
        let v = vm
            .create_object()
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS))?;
        deliver(vm, &v, result, STOFFEL_ERROR_RESULT_WITH_ARGS)
    })
}

/// Creates an empty array; `*result` gets its id (owned by the caller).
///
/// # Safety
/// `result` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_create_array(
    handle: VMHandle,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_create_array", |vm, _| {
        need_out(result)?;
        let v = vm
            .create_array()
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS))?;
        deliver(vm, &v, result, STOFFEL_ERROR_RESULT_WITH_ARGS)
    })
}

/// `get_field(container, key)`, as the builtin: the value stored under `key` in an object or
/// array (UNIT for a missing object key or if `container` is neither; an error for an array
/// index not below the length), or a string's character at an index (negative indices count
/// from the end). A STRING result is a copy to free; an id result is a new id owned by the
/// caller.
///
/// # Safety
/// `container` and `key` must be NULL or readable; `result` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_get_field(
    handle: VMHandle,
    container: *const StoffelValue,
    key: *const StoffelValue,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_get_field", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked).
        let (c, k) = unsafe {
            (
                read_one(container, "container", cvm)?,
                read_one(key, "key", cvm)?,
            )
        };
        need_out(result)?;
        let v = vm
            .get_field(&c, &k)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        deliver(vm, &v, result, STOFFEL_ERROR_RESULT_WITH_ARGS)
    })
}

/// Walks an object's fields in insertion order, as Lua's `lua_next`: with a UNIT `key`,
/// writes the first field's key and value to `*next_key` and `*value`; with a field's key,
/// the field after it. Returns 0, or `STOFFEL_END` (1, leaving both outputs UNIT) after the
/// last field. Keys and values are as `stoffel_get_field` gives them (a STRING is a copy to
/// free, an id a new id the caller owns). Errors: `STOFFEL_ERROR_NULL`,
/// `STOFFEL_ERROR_TYPE` (`object` is not an object), `STOFFEL_ERROR_ARGUMENT` (`key` is not
/// a field of it), `STOFFEL_ERROR_INVALID_HANDLE`, `STOFFEL_ERROR_RESULT_WITH_ARGS` (a key or
/// value with no C form; nothing is written), `STOFFEL_ERROR_LIMIT`.
///
/// # Safety
/// `object` and `key` must be NULL or readable; `next_key` and `value` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_object_next(
    handle: VMHandle,
    object: *const StoffelValue,
    key: *const StoffelValue,
    next_key: *mut StoffelValue,
    value: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_object_next", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked).
        let (o, k) = unsafe { (read_one(object, "object", cvm)?, read_one(key, "key", cvm)?) };
        need_out(next_key)?;
        need_out(value)?;
        if !matches!(o, Val::Object(_)) {
            return Err(Failure::new(
                STOFFEL_ERROR_TYPE,
                format!(
                    "stoffel_object_next: expected an object, got {}",
                    o.kind().type_name()
                ),
            ));
        }
        let next = vm.next_field(&o, &k).map_err(|e| match e {
            crate::VmError::Api(crate::ApiError::NotAField) => {
                Failure::new(STOFFEL_ERROR_ARGUMENT, e.to_string())
            }
            e => Failure::from_vm(e, STOFFEL_ERROR_TYPE),
        })?;
        let Some((k, v)) = next else {
            let unit = StoffelValue {
                value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
                data: StoffelValueData { int_val: 0 },
            };
            // SAFETY: both checked non-NULL; writable by the caller's guarantee.
            unsafe {
                write_value(next_key, unit);
                write_value(value, unit);
            }
            return Ok(STOFFEL_END);
        };
        let converted = make_value(&k).and_then(|ck| match make_value(&v) {
            Ok(cv) => Ok((ck, cv)),
            Err(f) => {
                forget_c_value(&ck);
                Err(f)
            }
        });
        match converted {
            Ok((ck, cv)) => {
                // SAFETY: both checked non-NULL; writable by the caller's guarantee.
                unsafe {
                    write_value(next_key, ck);
                    write_value(value, cv);
                }
                Ok(STOFFEL_OK)
            }
            Err(f) => {
                let _ = vm.release(&k);
                let _ = vm.release(&v);
                let code = if f.code == STOFFEL_ERROR_LIMIT {
                    STOFFEL_ERROR_LIMIT
                } else {
                    STOFFEL_ERROR_RESULT_WITH_ARGS
                };
                Err(Failure::new(code, f.message))
            }
        }
    })
}

/// Frees the string a C value made by `make_value` carries, if any (one not handed out).
fn forget_c_value(v: &StoffelValue) {
    if v.value_type == StoffelValueType::STOFFEL_VALUE_STRING {
        // SAFETY: a STRING from `make_value` holds the `string_val` member.
        take_back_string(unsafe { v.data.string_val });
    }
}

/// `set_field(container, key, value)` on an object or array (an INT key ≥ 0 is an array index).
/// Returns 0, `STOFFEL_ERROR_TYPE` (not an object or array), `STOFFEL_ERROR_INVALID_HANDLE`, …
///
/// # Safety
/// `container`, `key` and `value` must be NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_set_field(
    handle: VMHandle,
    container: *const StoffelValue,
    key: *const StoffelValue,
    value: *const StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_set_field", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked).
        let (c, k, v) = unsafe {
            (
                read_one(container, "container", cvm)?,
                read_one(key, "key", cvm)?,
                read_one(value, "value", cvm)?,
            )
        };
        vm.set_field(&c, &k, &v)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        Ok(STOFFEL_OK)
    })
}

/// Writes an array's length (largest index written + 1) to `*length`.
///
/// # Safety
/// `array` must be NULL or readable; `length` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_array_length(
    handle: VMHandle,
    array: *const StoffelValue,
    length: *mut usize,
) -> c_int {
    with_vm(handle, "stoffel_array_length", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked).
        let a = unsafe { read_one(array, "array", cvm) }?;
        if length.is_null() {
            return Err(Failure::new(STOFFEL_ERROR_NULL, "length is NULL"));
        }
        let n = vm
            .array_length(&a)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        // SAFETY: non-NULL and writable by the caller's guarantee.
        unsafe { length.write(n as u64 as usize) };
        Ok(STOFFEL_OK)
    })
}

/// Appends `value` to an array.
///
/// # Safety
/// `array` and `value` must be NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_array_push(
    handle: VMHandle,
    array: *const StoffelValue,
    value: *const StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_array_push", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked).
        let (a, v) = unsafe {
            (
                read_one(array, "array", cvm)?,
                read_one(value, "value", cvm)?,
            )
        };
        vm.array_push(&a, &v)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_TYPE))?;
        Ok(STOFFEL_OK)
    })
}

/// Calls a closure with `arg_count` arguments (as `stoffel_execute_with_args`, same codes):
/// a bad type tag in `closure` is `STOFFEL_ERROR_TYPE`, one in `args`
/// `STOFFEL_ERROR_ARGUMENT`; a value that is not a closure fails as the `call_closure`
/// builtin does (`STOFFEL_ERROR_EXECUTE_WITH_ARGS`, "First argument must be a closure").
///
/// # Safety
/// `closure` NULL or readable; `args` NULL or `arg_count` readable values; `result` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stoffel_call_closure(
    handle: VMHandle,
    closure: *const StoffelValue,
    args: *const StoffelValue,
    arg_count: c_int,
    result: *mut StoffelValue,
) -> c_int {
    with_vm(handle, "stoffel_call_closure", |vm, cvm| {
        // SAFETY: readable by the caller's guarantee (NULL is checked).
        let c = unsafe { read_one(closure, "closure", cvm) }?;
        need_out(result)?;
        let mut buffer = ArgBuffer::new();
        // SAFETY: the caller guarantees `arg_count` readable values at `args`.
        let values = unsafe { buffer.read(args, arg_count, cvm) }?;
        let v = vm
            .call_closure(&c, values)
            .map_err(|e| Failure::from_vm(e, STOFFEL_ERROR_EXECUTE_WITH_ARGS))?;
        deliver(vm, &v, result, STOFFEL_ERROR_RESULT_WITH_ARGS)
    })
}
