//! Values across the boundary: a C [`StoffelValue`] read into a [`Val`] (never trusting its
//! type tag) and a [`Val`] made into a [`StoffelValue`] (strings become registered copies).
//! The integer paths are the hot ones (host calls) and are tuned: see [`read_value_into`].

use std::ffi::{CStr, c_int};

use super::error::{
    Failure, STOFFEL_ERROR_INVALID_HANDLE, STOFFEL_ERROR_LIMIT, STOFFEL_ERROR_NULL,
    STOFFEL_ERROR_RESULT, STOFFEL_ERROR_TYPE, STOFFEL_ERROR_UTF8,
};
use super::strings::{give_string, try_copy};
use super::types::{StoffelValue, StoffelValueData, StoffelValueType};
use crate::{Handle, Scalar, Val};

/// Reads a C value without trusting it: the type tag is read as a plain int, so a tag
/// outside 0..8 is an error rather than an invalid enum. A STRING is copied: one longer than
/// `cap` bytes (the VM's memory limit: it could never fit) is refused before, with
/// `STOFFEL_ERROR_LIMIT`, and so is one the allocator has no room for.
///
/// # Safety
/// `p` must point to 16 readable bytes laid out as a `StoffelValue`; a STRING's
/// `string_val` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn read_value(p: *const StoffelValue, cap: usize) -> Result<Val, Failure> {
    let mut value = Val::Unit;
    // SAFETY: the caller's guarantee is passed on unchanged.
    unsafe { read_value_into(p, &mut value, cap) }?;
    Ok(value)
}

/// [`read_value`] into `slot`, for the hot paths. Integers and floats are read field by field
/// and written into the slot directly: a call's arguments were usually written by C just
/// before, member by member, and a whole-value copy of such fresh stores (a returned value
/// copied into place) stalls the CPU, which cannot forward them to the wider load.
///
/// # Safety
/// As for [`read_value`].
#[inline]
pub(crate) unsafe fn read_value_into(
    p: *const StoffelValue,
    slot: &mut Val,
    cap: usize,
) -> Result<(), Failure> {
    // SAFETY: the caller guarantees `p` is readable; `value_type` is read through a `c_int`
    // pointer (same size and alignment as the enum), so any bit pattern is allowed.
    let tag = unsafe { std::ptr::addr_of!((*p).value_type).cast::<c_int>().read() };
    match tag {
        // SAFETY: as above; `int_val` is plain data, valid for any bits.
        1 => *slot = Val::I64(unsafe { std::ptr::addr_of!((*p).data.int_val).read() }),
        // SAFETY: as above; `float_val` is plain data, valid for any bits.
        2 => *slot = Val::Float(unsafe { std::ptr::addr_of!((*p).data.float_val).read() }),
        // SAFETY: the caller's guarantee is passed on unchanged.
        _ => *slot = unsafe { read_other_value(p, tag, cap) }?,
    }
    Ok(())
}

/// The value at `p` as a [`Scalar`] if it is a UNIT, INT, FLOAT or BOOL (as [`read_value`]
/// reads it), `None` for any other tag.
///
/// # Safety
/// `p` must point to 16 readable bytes laid out as a `StoffelValue`.
#[inline(always)]
pub(crate) unsafe fn read_scalar(p: *const StoffelValue) -> Option<Scalar> {
    // SAFETY: the caller guarantees `p` is readable; the tag is read as a plain int (any bit
    // pattern is allowed), and each member read is plain data, valid for any bits.
    unsafe {
        let tag = std::ptr::addr_of!((*p).value_type).cast::<c_int>().read();
        Some(match tag {
            1 => Scalar::I64(std::ptr::addr_of!((*p).data.int_val).read()),
            2 => Scalar::Float(std::ptr::addr_of!((*p).data.float_val).read()),
            0 => Scalar::Unit,
            3 => Scalar::Bool(std::ptr::addr_of!((*p).data.bool_val).read() != 0),
            _ => return None,
        })
    }
}

/// [`read_value`] for every tag but INT and FLOAT.
///
/// # Safety
/// As for [`read_value`].
#[inline(never)]
unsafe fn read_other_value(p: *const StoffelValue, tag: c_int, cap: usize) -> Result<Val, Failure> {
    // SAFETY: as above; every member of the union is plain data, valid for any bits.
    let data = unsafe { std::ptr::addr_of!((*p).data).read() };
    // SAFETY: every member of the union is plain data (integers, a double, a pointer) valid
    // for any bit pattern, and `data` is an initialised copy; the four id members are the
    // same `size_t` at the same offset, so `object_id` reads any of them.
    let (int_val, float_val, bool_val, string_val, id) = unsafe {
        (
            data.int_val,
            data.float_val,
            data.bool_val,
            data.string_val,
            data.object_id,
        )
    };
    let handle = || {
        Handle::from_id(id as u64)
            .ok_or_else(|| Failure::new(STOFFEL_ERROR_INVALID_HANDLE, "value id 0 names nothing"))
    };
    Ok(match tag {
        0 => Val::Unit,
        1 => Val::I64(int_val),
        2 => Val::Float(float_val),
        3 => Val::Bool(bool_val != 0),
        4 => {
            if string_val.is_null() {
                return Err(Failure::new(
                    STOFFEL_ERROR_NULL,
                    "string value with a NULL pointer",
                ));
            }
            // SAFETY: the caller guarantees a non-NULL string_val is NUL-terminated.
            let bytes = unsafe { CStr::from_ptr(string_val) };
            let length = bytes.count_bytes();
            if length > cap {
                return Err(Failure::new(
                    STOFFEL_ERROR_LIMIT,
                    format!(
                        "a string of {length} bytes cannot fit in the VM's memory limit of \
                         {cap} bytes"
                    ),
                ));
            }
            let text = bytes.to_str().map_err(|e| {
                Failure::new(
                    STOFFEL_ERROR_UTF8,
                    format!("string value is not UTF-8: {e}"),
                )
            })?;
            Val::String(try_copy(text, "a string value")?)
        }
        5 => Val::Object(handle()?),
        6 => Val::Array(handle()?),
        7 => Val::Foreign(handle()?),
        8 => Val::Closure(handle()?),
        other => {
            return Err(Failure::new(
                STOFFEL_ERROR_TYPE,
                format!("value type tag {other} is not one of 0..8"),
            ));
        }
    })
}

/// Converts a VM value for C. Strings become registered copies (see [`give_string`]); the
/// whole union is written.
#[inline]
pub(crate) fn make_value(v: &Val) -> Result<StoffelValue, Failure> {
    match v {
        Val::I64(x) => Ok(StoffelValue {
            value_type: StoffelValueType::STOFFEL_VALUE_INT,
            data: StoffelValueData { int_val: *x },
        }),
        other => make_other_value(other),
    }
}

/// [`make_value`] for every kind but I64.
#[inline(never)]
fn make_other_value(v: &Val) -> Result<StoffelValue, Failure> {
    use StoffelValueType as T;
    let int = |t: T, i: i64| StoffelValue {
        value_type: t,
        data: StoffelValueData { int_val: i },
    };
    let id = |t: T, h: Handle| StoffelValue {
        value_type: t,
        data: StoffelValueData {
            object_id: h.id() as usize,
        },
    };
    Ok(match v {
        Val::Unit => int(T::STOFFEL_VALUE_UNIT, 0),
        Val::Bool(b) => {
            // All 8 bytes zeroed, then the C `int` member set (right on any endianness).
            let mut data = StoffelValueData { int_val: 0 };
            data.bool_val = c_int::from(*b);
            StoffelValue {
                value_type: T::STOFFEL_VALUE_BOOL,
                data,
            }
        }
        Val::I64(x) => int(T::STOFFEL_VALUE_INT, *x),
        Val::I32(x) => int(T::STOFFEL_VALUE_INT, i64::from(*x)),
        Val::I16(x) => int(T::STOFFEL_VALUE_INT, i64::from(*x)),
        Val::I8(x) => int(T::STOFFEL_VALUE_INT, i64::from(*x)),
        Val::U8(x) => int(T::STOFFEL_VALUE_INT, i64::from(*x)),
        Val::U16(x) => int(T::STOFFEL_VALUE_INT, i64::from(*x)),
        Val::U32(x) => int(T::STOFFEL_VALUE_INT, i64::from(*x)),
        Val::U64(x) => match i64::try_from(*x) {
            Ok(i) => int(T::STOFFEL_VALUE_INT, i),
            Err(_) => {
                return Err(Failure::new(
                    STOFFEL_ERROR_RESULT,
                    format!("{x}u64 does not fit in int64_t"),
                ));
            }
        },
        Val::Float(f) => StoffelValue {
            value_type: T::STOFFEL_VALUE_FLOAT,
            data: StoffelValueData { float_val: *f },
        },
        Val::String(s) => StoffelValue {
            value_type: T::STOFFEL_VALUE_STRING,
            data: StoffelValueData {
                string_val: give_string(s)?,
            },
        },
        Val::Object(h) => id(T::STOFFEL_VALUE_OBJECT, *h),
        Val::Array(h) => id(T::STOFFEL_VALUE_ARRAY, *h),
        Val::Foreign(h) => id(T::STOFFEL_VALUE_FOREIGN, *h),
        Val::Closure(h) => id(T::STOFFEL_VALUE_CLOSURE, *h),
    })
}

/// Writes a result value to `out` (checked non-NULL by the caller).
///
/// # Safety
/// `out` must be valid for a 16-byte write.
pub(crate) unsafe fn write_value(out: *mut StoffelValue, v: StoffelValue) {
    // SAFETY: guaranteed by the caller.
    unsafe { out.write(v) }
}
