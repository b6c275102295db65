//! Errors: the return codes of the C API, [`Failure`] (a code and a message), the thread's
//! last error (for calls that have no usable VM) and [`guard`], which turns a panic in an
//! `extern "C"` body into `STOFFEL_ERROR_PANIC`.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::strings::to_c_string_lossy;
use crate::{ApiError, VmError};

/// Success.
pub const STOFFEL_OK: c_int = 0;
/// A required pointer was NULL, or an argument was out of range (a negative or huge count).
pub const STOFFEL_ERROR_NULL: c_int = -1;
/// A name or string was not valid UTF-8.
pub const STOFFEL_ERROR_UTF8: c_int = -2;
/// `stoffel_load_bytecode` / `stoffel_load_assembly`: the code could not be loaded.
pub const STOFFEL_ERROR_PARSE: c_int = -2;
/// `stoffel_execute`: the execution failed (unknown function, runtime error).
pub const STOFFEL_ERROR_EXECUTE: c_int = -3;
/// `stoffel_execute`: the result cannot be represented in C (a u64 above INT64_MAX, a
/// string containing NUL).
pub const STOFFEL_ERROR_RESULT: c_int = -4;
/// `stoffel_execute_with_args`: an argument could not be converted (CLOSURE is fine with an
/// id; a NULL or non-UTF-8 string, a type tag outside 0..8 are not).
pub const STOFFEL_ERROR_ARGUMENT: c_int = -3;
/// `stoffel_execute_with_args` (and the other calls that run code): the execution failed.
pub const STOFFEL_ERROR_EXECUTE_WITH_ARGS: c_int = -4;
/// `stoffel_execute_with_args`: the result cannot be represented in C.
pub const STOFFEL_ERROR_RESULT_WITH_ARGS: c_int = -5;
/// A value id is stale (released), forged, of another VM, or of the wrong kind.
pub const STOFFEL_ERROR_INVALID_HANDLE: c_int = -6;
/// A value has the wrong type for the call (e.g. not an array), or a bad type tag.
pub const STOFFEL_ERROR_TYPE: c_int = -7;
/// An instruction, depth or memory limit was exceeded (the VM stays usable).
pub const STOFFEL_ERROR_LIMIT: c_int = -8;
/// The VM is busy: called from a print callback or finalizer, or from another thread
/// while in use.
pub const STOFFEL_ERROR_REENTRANCY: c_int = -9;
/// The VM handle is NULL, destroyed or not a VM.
pub const STOFFEL_ERROR_INVALID_VM: c_int = -10;
/// An internal error (a caught panic); the message says where. Please report it.
pub const STOFFEL_ERROR_PANIC: c_int = -11;

/// A failed call: its code and message.
pub(crate) struct Failure {
    pub(super) code: c_int,
    pub(super) message: String,
}

impl Failure {
    pub(crate) fn new(code: c_int, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A VM error, with `exec_code` used for failures of running code.
    pub(crate) fn from_vm(e: VmError, exec_code: c_int) -> Failure {
        let code = match &e {
            VmError::Load(_) | VmError::Assembly(_) => STOFFEL_ERROR_PARSE,
            VmError::Api(ApiError::Handle(_)) => STOFFEL_ERROR_INVALID_HANDLE,
            VmError::Api(ApiError::WrongKind { .. }) => STOFFEL_ERROR_INVALID_HANDLE,
            _ if e.is_limit() => STOFFEL_ERROR_LIMIT,
            VmError::Runtime(_) => exec_code,
            VmError::Api(_) => exec_code,
        };
        Failure::new(code, e.to_string())
    }
}

/// What the body of a call returns: a return code, or the failure to record.
pub(crate) type FfiResult = Result<c_int, Failure>;

thread_local! {
    /// The last error of a call that had no usable VM (NULL or invalid handle).
    static THREAD_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as this thread's last error (for a call that had no usable VM).
pub(crate) fn set_thread_error(message: &str) {
    let c = to_c_string_lossy(message);
    THREAD_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// This thread's last error, NULL if there is none; valid until the next one is recorded.
pub(crate) fn thread_error() -> *const c_char {
    THREAD_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |s| s.as_ptr()))
}

/// Runs `body` with panics caught; a panic becomes `STOFFEL_ERROR_PANIC`.
pub(crate) fn guard(name: &str, body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            set_thread_error(&format!("{name}: internal error (panic): {what}"));
            STOFFEL_ERROR_PANIC
        }
    }
}
