//! The VM gate: what a `VMHandle` names, and how a call gets the `&mut Vm` behind it.
//!
//! A handle is a token that the registry of live VMs maps to a [`CVm`] shell; shells are
//! never freed. Every call passes the gate ([`with_vm`]): the calling thread claims the
//! shell's atomic owner (or finds it already owns it, inside a C callback, and takes the VM
//! the callback was lent). Everything that reads or changes a shell's state is in this file;
//! the extern files use only the functions and methods below:
//! - [`with_vm`]: run a call's body with the VM, recording its failure;
//! - [`CVm::install`] and [`CVm::handle`]: a new VM's shell and its handle;
//! - [`destroy_vm`] and [`last_error`]: `stoffel_destroy_vm` and `stoffel_last_error`, which
//!   work on a VM that is in use and so cannot go through `with_vm`;
//! - [`ShellRef`] (what `with_vm` hands a call's body): a C callback's loan of the VM
//!   ([`ShellRef::lend`]) and the failures recorded during it.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::{CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use super::error::{
    FfiResult, STOFFEL_ERROR_INVALID_VM, STOFFEL_ERROR_PANIC, STOFFEL_ERROR_REENTRANCY, STOFFEL_OK,
    guard, set_thread_error, thread_error,
};
use super::hash::AddressMap;
use super::strings::to_c_string_lossy;
use super::types::VMHandle;
use crate::Vm;

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

/// The state behind a `VMHandle`: a shell that is never freed. When its VM is destroyed the
/// shell is emptied and kept for the next `stoffel_create_vm`, so a pointer to a shell stays
/// valid forever and the gate can check a cached one without taking the registry's lock.
/// There are never more shells than VMs were alive at once (an empty one is under 1 KiB).
pub struct CVm {
    /// The `VMHandle` C holds for this VM, 0 while the shell is empty. Written only by the
    /// thread that owns the shell (`owner`), before it releases it.
    token: AtomicUsize,
    /// The VM; `None` while the shell is empty.
    vm: UnsafeCell<Option<Vm>>,
    /// The thread currently inside a call on this VM (0 when idle).
    owner: AtomicU64,
    /// How many calls on this VM are in progress (re-entrant calls nest).
    depth: Cell<u32>,
    /// While a C callback runs: the `&mut Vm` it was called with, lent to re-entrant calls.
    lent: Cell<*mut Vm>,
    last_error: RefCell<Option<CString>>,
    /// Failures recorded so far (lets a callback wrapper tell whether one happened inside).
    failures: Cell<u64>,
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
                token: AtomicUsize::new(0),
                vm: UnsafeCell::new(None),
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

/// The shell of the VM a call is running on, as [`with_vm`] hands it to the call's body: for
/// a host function to keep and lend the VM to its C callback. A plain pointer (shells are
/// never freed, so it is always valid), not a `&'static CVm`: handing the body a reference
/// changed the machine code of every `extern "C"` function (registers, stack slots), and
/// this keeps it as it was.
#[derive(Clone, Copy)]
pub(crate) struct ShellRef(*mut CVm);

impl ShellRef {
    #[inline]
    fn get(self) -> &'static CVm {
        // SAFETY: made only by `with_vm`, from the address of a shell, and shells are never
        // freed.
        unsafe { &*self.0 }
    }

    /// Runs `call` (a C callback, from a host function called with `vm`) with the VM's handle,
    /// and with `vm` lent to re-entrant calls on this VM from inside it (see [`with_vm`]); then
    /// takes the loan back. Only for the thread that owns the shell, inside a call on it.
    #[inline]
    pub(crate) fn lend<R>(self, vm: &mut Vm, call: impl FnOnce(VMHandle) -> R) -> R {
        let cvm = self.get();
        let previous = cvm.lent.replace(vm as *mut Vm);
        let result = call(cvm.handle());
        cvm.lent.set(previous);
        result
    }

    /// How many failures have been recorded on this VM (for [`ShellRef::failure_since`]).
    #[inline]
    pub(crate) fn failure_count(self) -> u64 {
        self.get().failures.get()
    }

    /// The last failure's message, if any failure happened after `since` failures.
    pub(crate) fn failure_since(self, since: u64) -> Option<String> {
        self.get().failure_since(since)
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

/// Runs `f` with the VM behind `handle`, through the gate. Errors set the VM's (or, without a
/// VM, the thread's) last error.
pub(crate) fn with_vm(
    handle: VMHandle,
    name: &str,
    f: impl FnOnce(&mut Vm, ShellRef) -> FfiResult,
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
        let result = catch_unwind(AssertUnwindSafe(|| {
            f(unsafe { &mut *vm_ptr }, ShellRef(cvm_ptr))
        }));
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
    fn failure_since(&self, since: u64) -> Option<String> {
        if self.failures.get() == since {
            return None;
        }
        self.last_error
            .borrow()
            .as_ref()
            .map(|m| m.to_string_lossy().into_owned())
    }
}

/// Live VMs: handle token → `CVm` box address. A `VMHandle` is a token, not the address, and
/// tokens are never reused, so a destroyed VM's handle can never reach a VM created later
/// (an address could be reused by the allocator).
fn registry() -> MutexGuard<'static, AddressMap<usize>> {
    static LIVE: LazyLock<Mutex<AddressMap<usize>>> = LazyLock::new(Mutex::default);
    // A panic while the lock is held cannot leave the map half-updated: recover it.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new handle token: odd-looking, never 0, never reused in this process.
fn new_token() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    (NEXT.fetch_add(1, Ordering::Relaxed) << 4) | 0x5
}

/// The `CVm` a handle names, if it is live.
fn resolve(live: &AddressMap<usize>, handle: VMHandle) -> Option<*mut CVm> {
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

/// `stoffel_destroy_vm` of a non-NULL handle: destroys an idle VM now; called from inside a
/// call on the VM, unregisters it and leaves the destruction to the outermost call's return
/// (see [`with_vm`]). A VM in use by another thread is refused.
pub(crate) fn destroy_vm(handle: VMHandle) -> c_int {
    // Locked from the check until the VM is claimed and unregistered (as in `with_vm`),
    // so no other thread can free it or start a call on it in between.
    let mut live = registry();
    let Some(ptr) = resolve(&live, handle) else {
        drop(live);
        set_thread_error("stoffel_destroy_vm: invalid VM handle");
        return STOFFEL_ERROR_INVALID_VM;
    };
    // SAFETY: registered, so it points to a shell (never freed) holding this VM; only its
    // atomic owner and, once owned, its cells are touched here.
    let cvm = unsafe { &*ptr };
    let me = thread_token();
    match cvm
        .owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => {
            // Claimed and idle: destroy after releasing the lock (the finalizers that run
            // may call the API, which takes the lock).
            drop(live);
            destroy(ptr);
            STOFFEL_OK
        }
        Err(owner) if owner == me => {
            // Inside a call on this VM: finish when the outermost call returns; until
            // then the handle is unregistered and the gate refuses new calls.
            cvm.destroy_pending.set(true);
            live.remove(&(handle as usize));
            STOFFEL_OK
        }
        Err(_) => {
            set_thread_error("stoffel_destroy_vm: the VM is in use by another thread");
            STOFFEL_ERROR_REENTRANCY
        }
    }
}

/// `stoffel_last_error`: the last failure's message on the VM behind `handle` or, for NULL, an
/// invalid handle or a VM another thread is using, this thread's last error; NULL if none.
/// Not through `with_vm`: asking must not record a failure of its own (that would replace the
/// very message asked for), and it must work on a VM this thread is using (from a print
/// callback or a finalizer).
pub(crate) fn last_error(handle: VMHandle) -> *const c_char {
    let live = registry();
    let Some(ptr) = resolve(&live, handle) else {
        return thread_error();
    };
    // SAFETY: registered, so it points to a shell (never freed), and the registry lock
    // (held until this function returns) keeps another thread from emptying it. Only the
    // atomic owner and `last_error` are touched, and `last_error` only by the owning thread.
    let cvm = unsafe { &*ptr };
    let vm_error = || {
        cvm.last_error
            .borrow()
            .as_ref()
            .map_or(std::ptr::null(), |s| s.as_ptr())
    };
    let me = thread_token();
    match cvm
        .owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => {
            let m = vm_error();
            cvm.owner.store(0, Ordering::Release);
            m
        }
        // This thread is inside a call on the VM (a callback, print callback, finalizer).
        Err(owner) if owner == me => vm_error(),
        // Busy on another thread: its messages are not ours to read.
        Err(_) => thread_error(),
    }
}
