//! The C API (`include/stoffel_vm.h`, generated from this module by cbindgen).
//!
//! This module holds all of the crate's `unsafe`. It knows the VM only through the crate's
//! root re-exports ([`crate::Vm`], [`crate::Val`], ...). The `extern "C"` functions are split
//! by area: [`vm`] (life cycle, loading, execution, limits, GC, output), [`slices`]
//! (time-sliced execution), [`values`] (strings, handles, heap access), [`foreign`] (C
//! functions and foreign objects) and [`functions`] (function handles looked up once,
//! called many times). What they share
//! has one file per area: `types.rs` (the `#[repr(C)]` types and callback signatures),
//! `error.rs` (return codes, `Failure`, the thread's last error, the panic
//! guard), `gate.rs` (VM shells, the registry, the claim protocol, destruction),
//! `process.rs` (one-time setup, fork handlers, the fences of destruction, memory checks),
//! `strings.rs` (strings handed to C, names read from C), `convert.rs` (`StoffelValue` ⇄
//! `Val`) and `hash.rs` (the registries' hasher).
//!
//! How the hard parts are solved, once, here:
//! - **Handles.** A `VMHandle` is an opaque token, never reused, that the registry of live VMs
//!   maps to a [`CVm`] shell, so a destroyed or forged `VMHandle` is an error code (never a
//!   dangling pointer, never another VM). Shells are never freed (an empty one is reused), so
//!   each thread caches the shell it used last and the gate checks the shell's token instead
//!   of locking the registry on every call. All of it is in `gate.rs`, the only file that
//!   touches a shell's state. Heap values reach C as handle ids (see [`crate::Handle`]),
//!   never as pointers.
//! - **Re-entry and threads.** Every call passes the VM's gate (`gate.rs`): an atomic owner
//!   (the calling thread) so that a VM used from two threads at once gets an error instead of
//!   a data race. While a C callback runs, the VM lends the callback the `&mut Vm` it was
//!   called with; a call from inside the callback uses that loan, so re-entrant
//!   `stoffel_execute`, heap access and GC work. Anywhere else the VM is busy (a print
//!   callback, a finalizer), a call gets `STOFFEL_ERROR_REENTRANCY`.
//! - **Destruction.** `stoffel_destroy_vm` always destroys: the handle is dead at once, and
//!   the VM is destroyed by whoever owns it (the caller, or the thread inside a call on it, as
//!   that call returns: `gate.rs`). Destroys asked for by finalizers during a destroy are
//!   queued for the outermost destroy's loop (no recursion).
//! - **Panics and exit.** Every `extern "C"` body runs inside `catch_unwind` (`error.rs`); a
//!   panic becomes `STOFFEL_ERROR_PANIC` with a message. Nothing after the catch can panic,
//!   and thread-locals are reached only through `try_with`, so calls made while a thread or
//!   the process exits (TLS destructors, `atexit`) get error codes, never an abort.
//! - **fork and memory.** Fork handlers hold the library's locks across `fork()`
//!   (`process.rs`). Copies whose size the caller chooses (strings, names, argument arrays)
//!   are fallible, and `stoffel_create_vm` checks for room first: out of memory is an error
//!   code, not an abort.
//! - **Strings.** Strings given to C are registered (`strings.rs`); `stoffel_free_string`
//!   frees only registered strings, so a double free or a foreign pointer is a no-op, never
//!   heap damage.

// cbindgen reads the modules in this order: the return codes (error.rs) come first in the
// header, then `STOFFEL_MAX_ARGS` (vm.rs); the functions of foreign.rs, functions.rs,
// slices.rs, values.rs, vm.rs.
mod convert;
mod error;
mod gate;
mod hash;
mod process;
mod strings;
mod types;

pub mod foreign;
pub mod functions;
pub mod slices;
pub mod values;
pub mod vm;

pub use error::{
    STOFFEL_END, STOFFEL_ERROR_ARGUMENT, STOFFEL_ERROR_EXECUTE, STOFFEL_ERROR_EXECUTE_WITH_ARGS,
    STOFFEL_ERROR_INTERRUPTED, STOFFEL_ERROR_INVALID_FUNCTION, STOFFEL_ERROR_INVALID_HANDLE,
    STOFFEL_ERROR_INVALID_VM, STOFFEL_ERROR_LIMIT, STOFFEL_ERROR_NULL, STOFFEL_ERROR_PANIC,
    STOFFEL_ERROR_PARSE, STOFFEL_ERROR_REENTRANCY, STOFFEL_ERROR_REGISTER_OBJECT,
    STOFFEL_ERROR_RESULT, STOFFEL_ERROR_RESULT_WITH_ARGS, STOFFEL_ERROR_STATE, STOFFEL_ERROR_TYPE,
    STOFFEL_ERROR_UTF8, STOFFEL_OK, STOFFEL_SUSPENDED,
};
pub use gate::CVm;
pub use types::{
    CForeignFunction, CForeignFunctionEx, StoffelFinalizer, StoffelFunction, StoffelGcStats,
    StoffelPrintCallback, StoffelValue, StoffelValueData, StoffelValueType, VMHandle,
};
