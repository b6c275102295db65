//! The C types of the API: the VM handle, values crossing the boundary, callback signatures
//! and GC figures. All `#[repr(C)]` (or plain C types); cbindgen writes them into
//! `include/stoffel_vm.h`, and `tests/abi.rs` pins their layout.

use std::ffi::{c_char, c_int, c_void};

/// An opaque pointer to a VM, from `stoffel_create_vm`.
pub type VMHandle = *mut c_void;

/// The kind of a `StoffelValue`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoffelValueType {
    /// `()`; `data.int_val` is 0.
    STOFFEL_VALUE_UNIT = 0,
    /// Any VM integer, widened to `int64_t` (`data.int_val`).
    STOFFEL_VALUE_INT = 1,
    /// A double (`data.float_val`).
    STOFFEL_VALUE_FLOAT = 2,
    /// A boolean (`data.bool_val`: 0 is false, any other value true; the VM writes 0 or 1).
    STOFFEL_VALUE_BOOL = 3,
    /// A NUL-terminated UTF-8 string (`data.string_val`).
    STOFFEL_VALUE_STRING = 4,
    /// An object handle id (`data.object_id`).
    STOFFEL_VALUE_OBJECT = 5,
    /// An array handle id (`data.array_id`).
    STOFFEL_VALUE_ARRAY = 6,
    /// A foreign object handle id (`data.foreign_id`).
    STOFFEL_VALUE_FOREIGN = 7,
    /// A closure handle id (`data.closure_id`).
    STOFFEL_VALUE_CLOSURE = 8,
}

/// The payload of a `StoffelValue`; which member is meaningful depends on `value_type`.
/// The VM always writes all 8 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub union StoffelValueData {
    /// `STOFFEL_VALUE_INT` (and 0 for `STOFFEL_VALUE_UNIT`).
    pub int_val: i64,
    /// `STOFFEL_VALUE_FLOAT`.
    pub float_val: f64,
    /// `STOFFEL_VALUE_BOOL`: 0 false, non-zero true.
    pub bool_val: c_int,
    /// `STOFFEL_VALUE_STRING`.
    pub string_val: *const c_char,
    /// `STOFFEL_VALUE_OBJECT`.
    pub object_id: usize,
    /// `STOFFEL_VALUE_ARRAY`.
    pub array_id: usize,
    /// `STOFFEL_VALUE_FOREIGN`.
    pub foreign_id: usize,
    /// `STOFFEL_VALUE_CLOSURE`.
    pub closure_id: usize,
}

/// A value crossing the C boundary (16 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StoffelValue {
    /// Which member of `data` is meaningful.
    pub value_type: StoffelValueType,
    /// The payload.
    pub data: StoffelValueData,
}

/// A C function callable from VM code. `args` holds `arg_count` values, valid during the call
/// (ids in it die when the call returns unless retained; strings in it are freed by the VM).
/// Write the result to `*result` (preset to UNIT) and return 0, or return non-zero to fail the
/// execution (the error message names the function and the code). An id written to `*result`
/// is handed over to the VM, which releases it after reading: return fresh objects freely,
/// return an argument as is, and retain an id you keep before returning it. A STRING result is
/// copied; it must stay valid until the callback returns.
///
/// Every callback (this one, `CForeignFunctionEx`, `StoffelFinalizer`,
/// `StoffelPrintCallback`) must return normally: no `longjmp` out of it, no C++ exception
/// escaping it (catch everything and return an error code), no `pthread_exit`. An escaping
/// C++ exception aborts the process; a `longjmp` out leaves the VM stuck in the abandoned call
/// (see "Callbacks must return" in include/README.md).
pub type CForeignFunction = Option<
    unsafe extern "C" fn(
        args: *const StoffelValue,
        arg_count: c_int,
        result: *mut StoffelValue,
    ) -> c_int,
>;

/// Like `CForeignFunction`, with the calling VM (usable for re-entrant calls during the
/// callback) and the `user_data` given at registration. Must return normally (see
/// `CForeignFunction`).
pub type CForeignFunctionEx = Option<
    unsafe extern "C" fn(
        vm: VMHandle,
        user_data: *mut c_void,
        args: *const StoffelValue,
        arg_count: c_int,
        result: *mut StoffelValue,
    ) -> c_int,
>;

/// Runs once with the object pointer when a foreign object is collected or its VM destroyed.
/// Must return normally (see `CForeignFunction`); it may destroy other VMs (such destroys run
/// one after another, after the current one, so chains of them take no stack).
pub type StoffelFinalizer = Option<unsafe extern "C" fn(object: *mut c_void)>;

/// Receives each piece of text `print` writes (a line, newline included) and the `user_data`
/// given to `stoffel_set_print_callback`. The text is valid during the call. Must return
/// normally (see `CForeignFunction`).
pub type StoffelPrintCallback =
    Option<unsafe extern "C" fn(text: *const c_char, user_data: *mut c_void)>;

/// A function looked up once by `stoffel_lookup_function`, for calling many times with
/// `stoffel_call_function` (no name to read and look up per call). Plain data: copy it
/// freely, no need to free it. It stays valid as long as its VM lives and follows its name:
/// after a later load or registration redefines the name, it calls the new definition (as
/// calls by name and calls from bytecode do). Used with another VM, or made up (an all-zero
/// one is never valid), it is refused with `STOFFEL_ERROR_INVALID_HANDLE`. The fields are
/// the library's; do not rely on their meaning.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoffelFunction {
    /// The VM it belongs to (a number unique in the process, never 0; not the `VMHandle`).
    pub vm: u64,
    /// The function's name, as an index into the VM's table of names.
    pub slot: u64,
}

/// Figures from `stoffel_gc_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StoffelGcStats {
    /// Estimated bytes of live heap values.
    pub heap_bytes: usize,
    /// Bytes of the interpreter's stacks.
    pub stack_bytes: usize,
    /// Garbage-collected allocations alive.
    pub gc_objects: usize,
    /// Handles (ids) currently held by the host.
    pub live_handles: usize,
    /// Foreign objects not yet finalized.
    pub foreign_objects: usize,
    /// Collection cycles completed.
    pub collections: u64,
}
