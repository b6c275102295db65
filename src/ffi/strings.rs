//! Strings across the boundary: the registry of strings handed to C (so that
//! `stoffel_free_string` frees only what the VM gave out), C strings of messages, and names
//! read from C.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::hash::BuildHasherDefault;
use std::sync::{Mutex, MutexGuard};

use super::error::{
    Failure, STOFFEL_ERROR_LIMIT, STOFFEL_ERROR_NULL, STOFFEL_ERROR_RESULT, STOFFEL_ERROR_UTF8,
};
use super::hash::AddressMap;

/// The strings handed to C and not yet freed, by address.
fn string_registry() -> MutexGuard<'static, AddressMap<CString>> {
    STRINGS.lock().unwrap_or_else(|p| p.into_inner())
}

static STRINGS: Mutex<AddressMap<CString>> =
    Mutex::new(HashMap::with_hasher(BuildHasherDefault::new()));

/// The strings' lock, held by the fork handlers in `process.rs` across `fork()`.
pub(crate) struct StringLocks {
    _strings: MutexGuard<'static, AddressMap<CString>>,
}

pub(crate) fn fork_lock() -> StringLocks {
    StringLocks {
        _strings: string_registry(),
    }
}

/// The failure of an allocation the allocator refused (the process is out of memory, or at
/// its `ulimit -v`): `STOFFEL_ERROR_LIMIT`, and the call changes nothing.
#[cold]
pub(crate) fn out_of_memory(what: &str, bytes: Option<usize>) -> Failure {
    let message = match bytes {
        Some(n) => format!("out of memory: cannot allocate {n} bytes for {what}"),
        None => format!("out of memory: cannot allocate memory for {what}"),
    };
    Failure::new(STOFFEL_ERROR_LIMIT, message)
}

/// A copy of `text`, or the allocator's refusal (for copies whose size the caller chooses).
pub(crate) fn try_copy(text: &str, what: &str) -> Result<String, Failure> {
    let mut copy = String::new();
    copy.try_reserve_exact(text.len())
        .map_err(|_| out_of_memory(what, Some(text.len())))?;
    copy.push_str(text);
    Ok(copy)
}

/// A C string of `text`, or the allocator's refusal (`STOFFEL_ERROR_LIMIT`), or
/// `STOFFEL_ERROR_RESULT` if the text holds a NUL.
pub(crate) fn try_c_string(text: &str, what: &str) -> Result<CString, Failure> {
    let mut bytes: Vec<u8> = Vec::new();
    let size = text.len().saturating_add(1);
    bytes
        .try_reserve_exact(size)
        .map_err(|_| out_of_memory(what, Some(size)))?;
    bytes.extend_from_slice(text.as_bytes());
    // With the room for the NUL reserved, this neither allocates nor (no NUL inside) fails.
    CString::new(bytes).map_err(|_| {
        Failure::new(
            STOFFEL_ERROR_RESULT,
            "string contains a NUL byte and cannot be returned to C",
        )
    })
}

/// Hands a copy of `text` to C, to be freed with `stoffel_free_string`. Fails (changing
/// nothing) if the text holds a NUL or memory for the copy cannot be had.
pub(crate) fn give_string(text: &str) -> Result<*const c_char, Failure> {
    let c = try_c_string(text, "a string handed to C")?;
    let ptr = c.as_ptr();
    let mut strings = string_registry();
    strings
        .try_reserve(1)
        .map_err(|_| out_of_memory("the string registry", None))?;
    strings.insert(ptr as usize, c);
    Ok(ptr)
}

/// Frees a string from [`give_string`]; returns false for a pointer the VM did not hand out.
pub(crate) fn take_back_string(ptr: *const c_char) -> bool {
    string_registry().remove(&(ptr as usize)).is_some()
}

/// A C string of `text`, with any NUL replaced so the whole message survives.
pub(crate) fn to_c_string_lossy(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

/// Reads a NUL-terminated UTF-8 name.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
/// Inlined, with the failures out of line: a returned `Result<&str, _>` would be written to
/// memory and copied whole right after (see `read_value_into` in convert.rs), on every call
/// by name.
#[inline]
pub(crate) unsafe fn read_name<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(name_failure(what, None));
    }
    // SAFETY: non-NULL, NUL-terminated by the caller's guarantee.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    // Validated, then made a `&str` from the pointer and length at hand: `from_utf8` hands
    // its `&str` back through memory, and copying it right away stalls (see convert.rs).
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(name_failure(what, Some(e)));
    }
    // SAFETY: `bytes` was just checked to be UTF-8.
    Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// The failure of [`read_name`]: NULL (`None`) or not UTF-8.
#[cold]
#[inline(never)]
fn name_failure(what: &str, utf8: Option<std::str::Utf8Error>) -> Failure {
    match utf8 {
        None => Failure::new(STOFFEL_ERROR_NULL, format!("{what} is NULL")),
        Some(e) => Failure::new(STOFFEL_ERROR_UTF8, format!("{what} is not UTF-8: {e}")),
    }
}
