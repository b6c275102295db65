//! The C API (`include/stoffel_vm.h`, generated from this module by cbindgen).
//!
//! This module holds all of the crate's `unsafe`. It knows the VM only through
//! [`crate::vm::Vm`]; the files split it by area: [`vm`] (life cycle, loading,
//! execution, limits, GC, output), [`values`] (strings, handles, heap access)
//! and [`foreign`] (C functions and foreign objects).
//!
//! How the hard parts are solved, once, here:
//! - **Handles.** A `VMHandle` is an opaque token, never reused, that the registry of live VMs
//!   maps to a [`CVm`] shell, so a destroyed or forged `VMHandle` is an error code (never a
//!   dangling pointer, never another VM). Shells are never freed (an empty one is reused), so
//!   each thread caches the shell it used last and the gate checks the shell's token instead
//!   of locking the registry on every call. Heap values reach C as handle ids (see
//!   [`crate::handles`]), never as pointers.
//! - **Re-entry and threads.** Every call passes the VM's gate: an atomic owner (the calling
//!   thread) so that a VM used from two threads at once gets an error instead of a data race.
//!   While a C callback runs, the VM lends the callback the `&mut Vm` it was called with; a
//!   call from inside the callback uses that loan, so re-entrant `stoffel_execute`, heap access
//!   and GC work. Anywhere else the VM is busy (a print callback, a finalizer), a call gets
//!   `STOFFEL_ERROR_REENTRANCY`.
//! - **Panics.** Every `extern "C"` body runs inside `catch_unwind`; a panic becomes
//!   `STOFFEL_ERROR_PANIC` with a message.
//! - **Strings.** Strings given to C are registered; `stoffel_free_string` frees only
//!   registered strings, so a double free or a foreign pointer is a no-op, never heap damage.

pub mod foreign;
pub mod values;
pub mod vm;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::handles::Handle;
use crate::vm::{ApiError, Val, Vm, VmError};

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
pub type CForeignFunction = Option<
    unsafe extern "C" fn(
        args: *const StoffelValue,
        arg_count: c_int,
        result: *mut StoffelValue,
    ) -> c_int,
>;

/// Like `CForeignFunction`, with the calling VM (usable for re-entrant calls during the
/// callback) and the `user_data` given at registration.
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
pub type StoffelFinalizer = Option<unsafe extern "C" fn(object: *mut c_void)>;

/// Receives each piece of text `print` writes (a line, newline included) and the `user_data`
/// given to `stoffel_set_print_callback`. The text is valid during the call.
pub type StoffelPrintCallback =
    Option<unsafe extern "C" fn(text: *const c_char, user_data: *mut c_void)>;

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
    code: c_int,
    message: String,
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

pub(crate) type FfiResult = Result<c_int, Failure>;

/// Identifies the calling thread for the VM gate (0 is "nobody").
fn thread_token() -> u64 {
    GATE.with(GateCache::me)
}

/// This thread's gate state, in one thread-local (each access to a thread-local costs a call
/// in a shared library).
struct GateCache {
    /// This thread's token (0 until first asked for).
    me: Cell<u64>,
    /// The last VM this thread claimed through the registry: (token, shell address). Lets
    /// the gate skip the registry's lock on the next call with the same handle.
    last_vm: Cell<(usize, usize)>,
}

impl GateCache {
    fn me(&self) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        match self.me.get() {
            0 => {
                let me = NEXT.fetch_add(1, Ordering::Relaxed);
                self.me.set(me);
                me
            }
            me => me,
        }
    }
}

thread_local! {
    static GATE: GateCache = const {
        GateCache {
            me: Cell::new(0),
            last_vm: Cell::new((0, 0)),
        }
    };
}

thread_local! {
    /// The last error of a call that had no usable VM (NULL or invalid handle).
    static THREAD_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// The state behind a `VMHandle`: a shell that is never freed. When its VM is destroyed the
/// shell is emptied and kept for the next `stoffel_create_vm`, so a pointer to a shell stays
/// valid forever and the gate can check a cached one without taking the registry's lock.
/// There are never more shells than VMs were alive at once (an empty one is under 1 KiB).
pub struct CVm {
    /// The `VMHandle` C holds for this VM, 0 while the shell is empty. Written only by the
    /// thread that owns the shell (`owner`), before it releases it.
    pub(crate) token: std::sync::atomic::AtomicUsize,
    /// The VM; `None` while the shell is empty.
    vm: std::cell::UnsafeCell<Option<Vm>>,
    /// The thread currently inside a call on this VM (0 when idle).
    owner: AtomicU64,
    /// How many calls on this VM are in progress (re-entrant calls nest).
    depth: Cell<u32>,
    /// While a C callback runs: the `&mut Vm` it was called with, lent to re-entrant calls.
    lent: Cell<*mut Vm>,
    last_error: RefCell<Option<CString>>,
    /// Failures recorded so far (lets a callback wrapper tell whether one happened inside).
    pub(crate) failures: Cell<u64>,
    /// `stoffel_destroy_vm` was called while the VM was in use; destroy when it is idle.
    destroy_pending: Cell<bool>,
}

impl CVm {
    /// A shell for `vm` under a new token, owned by nobody: a free one if there is one, else
    /// a new (leaked) one.
    pub(crate) fn install(vm: Vm) -> &'static CVm {
        let me = thread_token();
        let reused = free_shells().pop().and_then(|address| {
            // SAFETY: addresses on the free list are of leaked shells, never freed.
            let shell: &'static CVm = unsafe { &*(address as *const CVm) };
            // A thread with a stale cached handle may hold it for a moment (see `claim`):
            // then keep it for later and take a new one.
            match shell
                .owner
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => Some(shell),
                Err(_) => {
                    free_shells().push(address);
                    None
                }
            }
        });
        let shell = reused.unwrap_or_else(|| {
            Box::leak(Box::new(CVm {
                token: std::sync::atomic::AtomicUsize::new(0),
                vm: std::cell::UnsafeCell::new(None),
                owner: AtomicU64::new(me),
                depth: Cell::new(0),
                lent: Cell::new(std::ptr::null_mut()),
                last_error: RefCell::new(None),
                failures: Cell::new(0),
                destroy_pending: Cell::new(false),
            }))
        });
        // SAFETY: this thread owns the empty shell, so nothing else reads or writes its VM.
        unsafe { *shell.vm.get() = Some(vm) };
        let token = new_token();
        shell.token.store(token, Ordering::Relaxed);
        shell.owner.store(0, Ordering::Release);
        registry().insert(token, shell as *const CVm as usize);
        shell
    }

    /// The handle C holds for this VM.
    pub(crate) fn handle(&self) -> VMHandle {
        self.token.load(Ordering::Relaxed) as VMHandle
    }
}

/// Empty shells (addresses of leaked `CVm`s), for [`CVm::install`].
fn free_shells() -> MutexGuard<'static, Vec<usize>> {
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    FREE.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a call got through the gate.
enum Claim {
    /// This thread took the idle VM.
    Owned(*mut CVm),
    /// This thread already owns the VM (a call from inside a call on it).
    Reentered(*mut CVm),
}

/// Why a call did not get through the gate.
enum Refusal {
    /// No live VM has this handle.
    Invalid,
    /// Another thread is using the VM.
    Busy,
}

/// Takes the VM behind `handle` for this thread, or finds this thread already owns it.
fn claim(handle: VMHandle) -> Result<Claim, Refusal> {
    GATE.with(|gate| claim_with(handle, gate))
}

fn claim_with(handle: VMHandle, gate: &GateCache) -> Result<Claim, Refusal> {
    let me = gate.me();
    let token = handle as usize;
    let (cached_token, cached) = gate.last_vm.get();
    if token != 0 && cached_token == token {
        // SAFETY: `cached` is the address of a shell, and shells are never freed.
        let shell = unsafe { &*(cached as *const CVm) };
        // The token is checked before touching the owner, so a stale handle does not hold
        // (and make busy) a shell that now has another VM in it...
        if shell.token.load(Ordering::Acquire) == token {
            match shell
                .owner
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                // ...and again once owned: the shell may have been emptied and refilled
                // between the check and the claim (owning it, this thread sees the last token
                // written, as that was written before the owner was released).
                Ok(_) if shell.token.load(Ordering::Relaxed) == token => {
                    return Ok(Claim::Owned(cached as *mut CVm));
                }
                Ok(_) => shell.owner.store(0, Ordering::Release),
                // This thread owns it, so the token read above is current; a VM whose
                // destruction is pending takes no new calls.
                Err(owner) if owner == me => {
                    return if shell.destroy_pending.get() {
                        Err(Refusal::Invalid)
                    } else {
                        Ok(Claim::Reentered(cached as *mut CVm))
                    };
                }
                Err(_) => return Err(Refusal::Busy),
            }
        }
    }
    // The registry stays locked until this thread owns the VM (or has been refused), so
    // `stoffel_destroy_vm` on another thread cannot empty it between the check and the
    // claim: it takes the same lock and empties only a VM nobody owns.
    let live = registry();
    let cvm_ptr = resolve(&live, handle).ok_or(Refusal::Invalid)?;
    // SAFETY: registered, so a shell holding this VM; only its atomic owner is touched.
    let cvm = unsafe { &*cvm_ptr };
    match cvm
        .owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => {
            gate.last_vm.set((token, cvm_ptr as usize));
            Ok(Claim::Owned(cvm_ptr))
        }
        Err(owner) if owner == me => Ok(Claim::Reentered(cvm_ptr)),
        Err(_) => Err(Refusal::Busy),
    }
}

fn set_thread_error(message: &str) {
    let c = to_c_string_lossy(message);
    THREAD_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// A C string of `text`, with any NUL replaced so the whole message survives.
pub(crate) fn to_c_string_lossy(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
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

/// Runs `f` with the VM behind `handle`, through the gate. Errors set the VM's (or, without a
/// VM, the thread's) last error.
pub(crate) fn with_vm(
    handle: VMHandle,
    name: &str,
    f: impl FnOnce(&mut Vm, *mut CVm) -> FfiResult,
) -> c_int {
    guard(name, || {
        let (cvm_ptr, owned) = match claim(handle) {
            Ok(Claim::Owned(p)) => (p, true),
            Ok(Claim::Reentered(p)) => (p, false),
            Err(Refusal::Invalid) => {
                set_thread_error(&format!("{name}: invalid VM handle"));
                return STOFFEL_ERROR_INVALID_VM;
            }
            Err(Refusal::Busy) => {
                set_thread_error(&format!("{name}: the VM is in use by another thread"));
                return STOFFEL_ERROR_REENTRANCY;
            }
        };
        // SAFETY: a shell (never freed), and this thread owns it: only this thread touches
        // its cells.
        let cvm = unsafe { &*cvm_ptr };
        let vm_ptr: *mut Vm = if owned {
            // SAFETY: owned by this thread and idle (depth 0): no reference into the VM
            // exists. A claimed shell holds a VM (the token matched).
            match unsafe { (*cvm.vm.get()).as_mut() } {
                Some(vm) => vm,
                None => {
                    cvm.owner.store(0, Ordering::Release);
                    set_thread_error(&format!("{name}: invalid VM handle"));
                    return STOFFEL_ERROR_INVALID_VM;
                }
            }
        } else {
            // Re-entry on this thread: only a running C callback may lend the VM.
            let lent = cvm.lent.replace(std::ptr::null_mut());
            if lent.is_null() {
                let message = format!(
                    "{name}: the VM is busy (called from a print callback, a finalizer, or \
                     while the VM is not waiting for a callback)"
                );
                cvm.record_failure(to_c_string_lossy(&message));
                return STOFFEL_ERROR_REENTRANCY;
            }
            lent
        };
        let outermost = cvm.depth.get() == 0;
        cvm.depth.set(cvm.depth.get() + 1);
        // SAFETY: `vm_ptr` is either the VM itself, taken by the first (outermost) call on
        // this thread while no other reference to it exists, or the `&mut Vm` lent by the C
        // callback wrapper, whose owner does not touch it until the callback returns (the
        // loan is taken out of `lent`, so no second call can use it at the same time).
        let result = catch_unwind(AssertUnwindSafe(|| f(unsafe { &mut *vm_ptr }, cvm_ptr)));
        cvm.depth.set(cvm.depth.get() - 1);
        if !outermost {
            cvm.lent.set(vm_ptr);
        }
        let code = match result {
            Ok(Ok(code)) => code,
            Ok(Err(failure)) => {
                cvm.record_failure(to_c_string_lossy(&failure.message));
                failure.code
            }
            Err(_) => {
                cvm.record_failure(to_c_string_lossy(&format!(
                    "{name}: internal error (panic)"
                )));
                STOFFEL_ERROR_PANIC
            }
        };
        if outermost {
            if cvm.destroy_pending.get() {
                destroy(cvm_ptr);
            } else {
                cvm.owner.store(0, Ordering::Release);
            }
        }
        code
    })
}

impl CVm {
    fn record_failure(&self, message: CString) {
        *self.last_error.borrow_mut() = Some(message);
        self.failures.set(self.failures.get() + 1);
    }

    /// The last failure's message, if any failure happened after `since` failures.
    pub(crate) fn failure_since(&self, since: u64) -> Option<String> {
        if self.failures.get() == since {
            return None;
        }
        self.last_error
            .borrow()
            .as_ref()
            .map(|m| m.to_string_lossy().into_owned())
    }
}

/// A map keyed by numbers the library makes itself (handle tokens, string addresses): no
/// caller chooses them, so a multiplicative hash is enough and SipHash's cost is not needed
/// on every call.
pub(crate) type AddressMap<V> = HashMap<usize, V, BuildHasherDefault<AddressHasher>>;

/// Fibonacci hashing of one `usize` (see [`AddressMap`]).
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Live VMs: handle token → `CVm` box address. A `VMHandle` is a token, not the address, and
/// tokens are never reused, so a destroyed VM's handle can never reach a VM created later
/// (an address could be reused by the allocator).
pub(crate) fn registry() -> MutexGuard<'static, AddressMap<usize>> {
    static LIVE: LazyLock<Mutex<AddressMap<usize>>> = LazyLock::new(Mutex::default);
    // A panic while the lock is held cannot leave the map half-updated: recover it.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new handle token: odd-looking, never 0, never reused in this process.
pub(crate) fn new_token() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    (NEXT.fetch_add(1, Ordering::Relaxed) << 4) | 0x5
}

/// The `CVm` a handle names, if it is live.
pub(crate) fn resolve(live: &AddressMap<usize>, handle: VMHandle) -> Option<*mut CVm> {
    live.get(&(handle as usize)).map(|&p| p as *mut CVm)
}

/// Destroys the VM in a shell this thread owns (idle: no call on it is running), then
/// empties the shell, releases it and keeps it for reuse.
fn destroy(cvm_ptr: *mut CVm) {
    // SAFETY: a shell (never freed), owned by this thread.
    let cvm = unsafe { &*cvm_ptr };
    let token = cvm.token.swap(0, Ordering::Relaxed);
    registry().remove(&token);
    // SAFETY: owned by this thread and idle, so no reference into the VM exists. Dropping
    // runs foreign finalizers; a finalizer that calls the API with this handle now gets
    // `STOFFEL_ERROR_INVALID_VM` (the token is gone from the shell and the registry).
    drop(unsafe { (*cvm.vm.get()).take() });
    cvm.depth.set(0);
    cvm.lent.set(std::ptr::null_mut());
    *cvm.last_error.borrow_mut() = None;
    cvm.failures.set(0);
    cvm.destroy_pending.set(false);
    cvm.owner.store(0, Ordering::Release);
    free_shells().push(cvm_ptr as usize);
}

// ----- strings handed to C -----

fn string_registry() -> MutexGuard<'static, AddressMap<CString>> {
    static STRINGS: LazyLock<Mutex<AddressMap<CString>>> = LazyLock::new(Mutex::default);
    STRINGS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands a copy of `text` to C, to be freed with `stoffel_free_string`.
pub(crate) fn give_string(text: &str) -> Result<*const c_char, Failure> {
    let c = CString::new(text).map_err(|_| {
        Failure::new(
            STOFFEL_ERROR_RESULT,
            "string contains a NUL byte and cannot be returned to C",
        )
    })?;
    let ptr = c.as_ptr();
    string_registry().insert(ptr as usize, c);
    Ok(ptr)
}

/// Frees a string from [`give_string`]; returns false for a pointer the VM did not hand out.
pub(crate) fn take_back_string(ptr: *const c_char) -> bool {
    string_registry().remove(&(ptr as usize)).is_some()
}

// ----- value conversion -----

/// Reads a C value without trusting it: the type tag is read as a plain int, so a tag
/// outside 0..8 is an error rather than an invalid enum.
///
/// # Safety
/// `p` must point to 16 readable bytes laid out as a `StoffelValue`; a STRING's
/// `string_val` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn read_value(p: *const StoffelValue) -> Result<Val, Failure> {
    let mut value = Val::Unit;
    // SAFETY: the caller's guarantee is passed on unchanged.
    unsafe { read_value_into(p, &mut value) }?;
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
        _ => *slot = unsafe { read_other_value(p, tag) }?,
    }
    Ok(())
}

/// [`read_value`] for every tag but INT and FLOAT.
///
/// # Safety
/// As for [`read_value`].
#[inline(never)]
unsafe fn read_other_value(p: *const StoffelValue, tag: c_int) -> Result<Val, Failure> {
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
            let text = bytes.to_str().map_err(|e| {
                Failure::new(
                    STOFFEL_ERROR_UTF8,
                    format!("string value is not UTF-8: {e}"),
                )
            })?;
            Val::String(text.to_owned())
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

/// Reads a NUL-terminated UTF-8 name.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
/// Inlined, with the failures out of line: a returned `Result<&str, _>` would be written to
/// memory and copied whole right after (see `read_value_into`), on every call by name.
#[inline]
pub(crate) unsafe fn read_name<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(name_failure(what, None));
    }
    // SAFETY: non-NULL, NUL-terminated by the caller's guarantee.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    // Validated, then made a `&str` from the pointer and length at hand: `from_utf8` hands
    // its `&str` back through memory, and copying it right away stalls (see `read_value_into`).
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

/// Writes a result value to `out` (checked non-NULL by the caller).
///
/// # Safety
/// `out` must be valid for a 16-byte write.
pub(crate) unsafe fn write_value(out: *mut StoffelValue, v: StoffelValue) {
    // SAFETY: guaranteed by the caller.
    unsafe { out.write(v) }
}
