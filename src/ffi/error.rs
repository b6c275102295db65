//! Errors: the return codes of the C API, [`Failure`] (a code and a message), the thread's
//! last error (for calls that have no usable VM) and [`guard`], which turns a panic in an
//! `extern "C"` body into `STOFFEL_ERROR_PANIC`.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::strings::to_c_string_lossy;
use crate::{ApiError, VmError};

/// Success.
pub const STOFFEL_OK: c_int = 0;
/// `stoffel_object_next`: there is no field after the key (a success: the walk is over).
pub const STOFFEL_END: c_int = 1;
/// `stoffel_execute_start` / `stoffel_resume`: the slice's fuel ran out before the execution
/// finished; it is suspended (a success: continue it with `stoffel_resume`).
pub const STOFFEL_SUSPENDED: c_int = 2;
/// A required pointer was NULL (the VM handle included, as in StoffelVM), or an argument was
/// out of range (a negative or huge count).
pub const STOFFEL_ERROR_NULL: c_int = -1;
/// A name or string was not valid UTF-8.
pub const STOFFEL_ERROR_UTF8: c_int = -2;
/// `stoffel_load_bytecode` / `stoffel_load_assembly`: the code could not be loaded (for
/// bytecode: the bytes do not decode; see also `STOFFEL_ERROR_INVALID_FUNCTION`).
pub const STOFFEL_ERROR_PARSE: c_int = -2;
/// `stoffel_register_foreign_object(_ex)`: the object could not be registered (StoffelVM's
/// code for it; running out of room is `STOFFEL_ERROR_LIMIT`).
pub const STOFFEL_ERROR_REGISTER_OBJECT: c_int = -2;
/// `stoffel_load_bytecode`: the bytes decode, but a function is invalid (a jump to an unknown
/// label or beyond its code, a constant index out of range, ...): StoffelVM's "function
/// registration failed".
pub const STOFFEL_ERROR_INVALID_FUNCTION: c_int = -3;
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
/// A value id is stale (released), forged, of another VM, or of the wrong kind; or a
/// `StoffelFunction` is another VM's or made up.
pub const STOFFEL_ERROR_INVALID_HANDLE: c_int = -6;
/// A value has the wrong type for the call (e.g. not an array), or a bad type tag.
pub const STOFFEL_ERROR_TYPE: c_int = -7;
/// An instruction, depth or memory limit was exceeded, or the allocator refused memory for
/// something whose size the caller chose (a long string or name; "out of memory" in the
/// message). The VM stays usable.
pub const STOFFEL_ERROR_LIMIT: c_int = -8;
/// The VM is busy: called from a print callback or finalizer, or from another thread
/// while in use.
pub const STOFFEL_ERROR_REENTRANCY: c_int = -9;
/// The VM handle is destroyed or not a VM (a NULL handle is `STOFFEL_ERROR_NULL`).
pub const STOFFEL_ERROR_INVALID_VM: c_int = -10;
/// An internal error (a caught panic); the message says where. Please report it.
pub const STOFFEL_ERROR_PANIC: c_int = -11;
/// The execution was stopped by `stoffel_interrupt`. The VM stays usable.
pub const STOFFEL_ERROR_INTERRUPTED: c_int = -12;
/// The call does not fit the VM's time-sliced execution: `stoffel_resume` or `stoffel_cancel`
/// with no execution suspended, `stoffel_execute_start` while one is, or any of the three
/// from inside a callback. Nothing changed.
pub const STOFFEL_ERROR_STATE: c_int = -13;

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
            // Before the handle arm: a full handle table or spent ids are limits, not bad ids.
            _ if e.is_limit() => STOFFEL_ERROR_LIMIT,
            VmError::Runtime(r) if r.kind == crate::RuntimeErrorKind::Interrupted => {
                STOFFEL_ERROR_INTERRUPTED
            }
            VmError::Api(ApiError::Handle(_)) => STOFFEL_ERROR_INVALID_HANDLE,
            VmError::Api(ApiError::WrongKind { .. }) => STOFFEL_ERROR_INVALID_HANDLE,
            // A function handle of another VM, or a made-up one.
            VmError::Api(ApiError::InvalidFunc | ApiError::ForeignFunc(_)) => {
                STOFFEL_ERROR_INVALID_HANDLE
            }
            VmError::Runtime(_) => exec_code,
            VmError::Api(_) => exec_code,
        };
        Failure::new(code, vm_error_message(&e))
    }
}

/// The message C gets for a VM error: its text, then, for a failure inside calls, the call
/// chain (`backtrace (innermost first):` and one line per entry).
pub(crate) fn vm_error_message(e: &VmError) -> String {
    let mut message = e.to_string();
    if let VmError::Runtime(r) = e
        && r.backtrace.len() > 1
    {
        message.push_str("\nbacktrace (innermost first):\n");
        message.push_str(&r.backtrace_text());
    }
    message
}

/// What the body of a call returns: a return code, or the failure to record.
pub(crate) type FfiResult = Result<c_int, Failure>;

/// This thread's last error: a message made for it, or a static one (which needs no
/// allocation: what an out-of-memory failure records).
enum ThreadMessage {
    Owned(CString),
    Static(&'static CStr),
}

thread_local! {
    /// The last error of a call that had no usable VM (NULL or invalid handle). Touched only
    /// through `try_with` and `try_borrow*`: a call made while the thread exits (from a TLS
    /// destructor, a pthread-key destructor or an `atexit` handler) may find it destroyed.
    static THREAD_ERROR: RefCell<Option<ThreadMessage>> = const { RefCell::new(None) };
}

/// What `stoffel_last_error` returns for this thread once its error slot is gone: a call made
/// during the thread's (or the process's) exit, after the thread-local storage was destroyed.
const SLOT_GONE: &CStr =
    c"(no message: this thread is exiting and its last-error slot has been destroyed)";

fn store_thread_error(message: ThreadMessage) {
    // Neither can fail in a way that matters: the slot gone (the thread is exiting) or
    // borrowed (never, nothing keeps a borrow) just drops the message.
    let _ = THREAD_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(message);
        }
    });
}

/// Records `message` as this thread's last error (for a call that had no usable VM).
pub(crate) fn set_thread_error(message: &str) {
    store_thread_error(ThreadMessage::Owned(to_c_string_lossy(message)));
}

/// Records a static message as this thread's last error, without allocating.
pub(crate) fn set_thread_error_static(message: &'static CStr) {
    store_thread_error(ThreadMessage::Static(message));
}

/// This thread's last error, NULL if there is none; valid until the next one is recorded.
/// Once the thread's slot is gone (the thread is exiting), a static message saying so.
pub(crate) fn thread_error() -> *const c_char {
    THREAD_ERROR
        .try_with(|slot| {
            slot.try_borrow().map_or(std::ptr::null(), |m| match &*m {
                None => std::ptr::null(),
                Some(ThreadMessage::Owned(s)) => s.as_ptr(),
                Some(ThreadMessage::Static(s)) => s.as_ptr(),
            })
        })
        .unwrap_or(SLOT_GONE.as_ptr())
}

/// Runs `body` with panics caught; a panic becomes `STOFFEL_ERROR_PANIC`. Nothing after the
/// catch can panic: the message is recorded through `try_with` (see [`THREAD_ERROR`]), and
/// the panic's payload is dropped inside a catch of its own (a payload whose `Drop` panics is
/// leaked instead).
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
            drop_payload(payload);
            STOFFEL_ERROR_PANIC
        }
    }
}

/// Drops a caught panic's payload; if that panics too, the second payload is leaked.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}
