//! The VM gate: what a `VMHandle` names, and how a call gets the `&mut Vm` behind it.
//!
//! A handle is a token that the registry of live VMs maps to a [`CVm`] shell; shells are
//! never freed. Every call passes the gate ([`with_vm`]): the calling thread claims the
//! shell's atomic owner (or finds it already owns it, inside a C callback, and takes the VM
//! the callback was lent). Everything that reads or changes a shell's state is in this module
//! (this file, `shells.rs`: where shells come from, and `destroy.rs`: destruction); the extern
//! files use only the functions and methods below:
//! - [`with_vm`]: run a call's body with the VM, recording its failure;
//! - [`CVm::install`]: a new VM's shell, and its handle;
//! - [`destroy_vm`] and [`last_error`]: `stoffel_destroy_vm` and `stoffel_last_error`, which
//!   work on a VM that is in use and so cannot go through `with_vm`;
//! - [`ShellRef`] (what `with_vm` hands a call's body): a C callback's loan of the VM
//!   ([`ShellRef::lend`]), the failures recorded during it, the VM's memory limit.
//!
//! Destruction. `stoffel_destroy_vm` always destroys: it unregisters the handle at once and
//! "dooms" the shell; whoever owns a doomed shell destroys its VM before releasing it. An
//! idle VM is destroyed by the caller; a VM that another thread is inside a call on (a long
//! execution or a quick `stoffel_gc_stats`) is destroyed by that thread when its call
//! returns; a VM this thread is inside a call on, when the outermost call returns. The
//! releasing side of that hand-over is on every call's path, so it is a plain store and a
//! load or two (see `destroy::release` and `process::light_fence`); the destroying side pays
//! for the memory barrier (`process::heavy_fence`).
//!
//! Destroys asked for while this thread destroys a VM (a finalizer destroying another VM) are
//! queued and run by the outermost destroy's loop, so chains of them use no stack.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::HashMap;
use std::ffi::{CString, c_char, c_int};
use std::hash::BuildHasherDefault;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::error::{
    FfiResult, STOFFEL_ERROR_INVALID_VM, STOFFEL_ERROR_NULL, STOFFEL_ERROR_PANIC,
    STOFFEL_ERROR_REENTRANCY, STOFFEL_OK, drop_payload, guard, set_thread_error, thread_error,
};
use super::hash::AddressMap;
use super::process::thread_stack;
use super::strings::to_c_string_lossy;
use super::types::VMHandle;
use crate::{STACK_RESERVE, Vm};

mod destroy;
mod shells;

pub(crate) use destroy::destroy_vm;
use destroy::release;
use shells::{Shells, new_shell, put_back, reuse_shell, shells};

/// This thread's gate state, in one thread-local (each access to a thread-local costs a call
/// in a shared library). It needs no destructor, so it is there for the whole life of the
/// thread, including its exit (TLS and pthread-key destructors, `atexit` handlers).
struct GateCache {
    /// This thread's token (0 until first asked for).
    me: Cell<u64>,
    /// The last VM this thread claimed through the registry: (token, shell address). Lets
    /// the gate skip the registry's lock on the next call with the same handle.
    last_vm: Cell<(usize, usize)>,
    /// This thread is in `destroy::destroy`'s loop: destroys asked for meanwhile are queued.
    destroying: Cell<bool>,
    /// The loop's stack position (see `destroy::destroy`).
    destroy_frame: Cell<usize>,
    /// Shells waiting for that loop, linked through [`CVm::next_doomed`].
    queue: Cell<*mut CVm>,
    /// This thread's stack (lowest address, end), (0, 0) until first asked for.
    stack: Cell<(usize, usize)>,
}

/// Native stack the gate requires left, beyond the VM's own [`STACK_RESERVE`], before it
/// vouches for the stack to the VM (see [`CVm::stack_vouched`]): the VM measures a few
/// frames deeper, from bounds it reads its own way.
const VOUCH_MARGIN: usize = 16 << 10;

impl GateCache {
    /// Whether a call at stack position `here` has far more than [`STACK_RESERVE`] bytes of
    /// native stack left, judged from this thread's known stack bounds (false where they are
    /// not known, or `here` is on another stack: the VM then measures for itself).
    #[inline(always)]
    fn stack_room(&self, here: usize) -> bool {
        let (low, high) = self.stack.get();
        here < high && here.wrapping_sub(low) > STACK_RESERVE + VOUCH_MARGIN && here > low
    }
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
            destroying: Cell::new(false),
            destroy_frame: Cell::new(0),
            queue: Cell::new(std::ptr::null_mut()),
            stack: Cell::new((0, 0)),
        }
    };
}

/// Identifies the calling thread for the VM gate (never 0). `None` only if the thread-local
/// were gone, which it never is (it has no destructor); a call then fails cleanly.
fn thread_token() -> Option<u64> {
    GATE.try_with(GateCache::me).ok()
}

/// The state behind a `VMHandle`: a shell that is never freed. When its VM is destroyed the
/// shell is emptied and kept for the next `stoffel_create_vm`, so a pointer to a shell stays
/// valid forever and the gate can check a cached one without taking the registry's lock.
/// There are never more shells than VMs were alive at once (an empty one is under 1 KiB).
pub struct CVm {
    /// The `VMHandle` C holds for this VM, 0 while the shell is empty or doomed. Set by the
    /// thread that owns the shell (`owner`) before it registers the VM; zeroed, under the
    /// registry's lock, by the `stoffel_destroy_vm` that unregisters it.
    token: AtomicUsize,
    /// The thread currently inside a call on this VM (0 when idle).
    owner: AtomicU64,
    /// `stoffel_destroy_vm` was called while someone owned the shell: the handle is gone from
    /// the registry, and whoever owns the shell next destroys the VM (see [`destroy::release`]).
    doomed: AtomicBool,
    /// The VM; `None` while the shell is empty.
    vm: UnsafeCell<Option<Vm>>,
    /// How many calls on this VM are in progress (re-entrant calls nest).
    depth: Cell<u32>,
    /// While a C callback runs: the `&mut Vm` it was called with, lent to re-entrant calls.
    lent: Cell<*mut Vm>,
    /// While a C callback runs: an address in the frame that called it. Every call made from
    /// inside the callback runs deeper in the stack; a call on this thread from above it means
    /// the callback was left without returning (a `longjmp` out of it).
    callback_frame: Cell<usize>,
    /// A callback was left by a non-local exit: the VM is stuck in the abandoned call, and
    /// only `stoffel_destroy_vm` works on it.
    abandoned: Cell<bool>,
    /// The memory limit set through `stoffel_set_memory_limit` (0: none).
    memory_limit: Cell<usize>,
    last_error: RefCell<Option<CString>>,
    /// Failures recorded so far (lets a callback wrapper tell whether one happened inside).
    failures: Cell<u64>,
    /// The next shell in this thread's destroy queue (see [`GateCache::queue`]).
    next_doomed: Cell<*mut CVm>,
    /// The VM's interrupt handle, for `stoffel_interrupt` from any thread: set when a VM is
    /// installed, before its handle is registered, and read under the registry's lock.
    interrupt: Mutex<Option<crate::InterruptHandle>>,
    /// The last name a call by name found a slot for (see [`ShellRef::cached_slot`]).
    name_cache: RefCell<NameCache>,
    /// Set by the outermost call on the shell (see [`ShellRef::stack_vouched`]).
    stack_vouched: Cell<bool>,
}

/// A function name and its slot in the VM of serial `serial` (a name's slot never changes).
/// A host calling the same function by name again and again finds it here without measuring
/// the name, checking its UTF-8 or hashing it.
struct NameCache {
    /// 0 (no VM has it) while nothing is cached.
    serial: u64,
    slot: u32,
    /// The name's bytes and its NUL (capacity kept: replacing the name allocates only when
    /// a longer one comes).
    name: Vec<u8>,
}

impl CVm {
    fn empty(owner: u64) -> CVm {
        CVm {
            token: AtomicUsize::new(0),
            owner: AtomicU64::new(owner),
            doomed: AtomicBool::new(false),
            vm: UnsafeCell::new(None),
            depth: Cell::new(0),
            lent: Cell::new(std::ptr::null_mut()),
            callback_frame: Cell::new(0),
            abandoned: Cell::new(false),
            memory_limit: Cell::new(0),
            last_error: RefCell::new(None),
            failures: Cell::new(0),
            next_doomed: Cell::new(std::ptr::null_mut()),
            interrupt: Mutex::new(None),
            name_cache: RefCell::new(NameCache {
                serial: 0,
                slot: 0,
                name: Vec::new(),
            }),
            stack_vouched: Cell::new(false),
        }
    }

    /// Drops the shell's copy of its VM's interrupt handle (when the VM leaves the shell).
    fn forget_interrupt(&self) {
        *self.interrupt.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Puts `vm` in a shell under a new token and registers it: a free shell if there is one,
    /// else a new one; returns its handle. `None` if the memory for a new shell or for the
    /// registry to grow cannot be had (the VM is dropped).
    pub(crate) fn install(vm: Vm) -> Option<VMHandle> {
        let me = thread_token()?;
        let shell = match reuse_shell(me) {
            Some(shell) => shell,
            None => new_shell(me)?,
        };
        *shell.interrupt.lock().unwrap_or_else(|p| p.into_inner()) = Some(vm.interrupt_handle());
        // SAFETY: this thread owns the empty shell, so nothing else reads or writes its VM.
        unsafe { *shell.vm.get() = Some(vm) };
        let token = new_token();
        shell.token.store(token, Ordering::Relaxed);
        let mut live = registry();
        if live.try_reserve(1).is_err() {
            drop(live);
            shell.token.store(0, Ordering::Relaxed);
            shell.forget_interrupt();
            // SAFETY: owned by this thread, and never registered.
            let vm = unsafe { (*shell.vm.get()).take() };
            shell.owner.store(0, Ordering::Release);
            put_back(shell);
            drop(vm);
            return None;
        }
        // Not registered yet, so nobody can have doomed it: a plain release.
        shell.owner.store(0, Ordering::Release);
        live.insert(token, shell as *const CVm as usize);
        Some(token as VMHandle)
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

    /// The VM's handle (for a host function to hand its callbacks: the shell's token is
    /// zeroed when the VM is doomed, and a callback still running must get its VM's handle).
    #[inline]
    pub(crate) fn handle(self) -> VMHandle {
        self.get().handle()
    }

    /// Runs `call` (a C callback, from a host function called with `vm`) with `vm` lent to
    /// re-entrant calls on this VM from inside it (see [`with_vm`]); then takes the loan back.
    /// `frame` is an address in the caller's stack frame (see [`CVm::callback_frame`]). Only
    /// for the thread that owns the shell, inside a call on it.
    #[inline]
    pub(crate) fn lend<R>(self, vm: &mut Vm, frame: usize, call: impl FnOnce() -> R) -> R {
        let cvm = self.get();
        let previous = cvm.lent.replace(vm as *mut Vm);
        let previous_frame = cvm.callback_frame.replace(frame);
        let result = call();
        cvm.callback_frame.set(previous_frame);
        cvm.lent.set(previous);
        result
    }

    /// Runs `call` (a print callback) with `frame` marked as its caller's frame, so that a
    /// non-local exit from it is noticed (as in [`ShellRef::lend`]; the VM is not lent).
    pub(crate) fn mark_callback<R>(self, frame: usize, call: impl FnOnce() -> R) -> R {
        let cvm = self.get();
        let previous_frame = cvm.callback_frame.replace(frame);
        let result = call();
        cvm.callback_frame.set(previous_frame);
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

    /// Notes the memory limit set on the VM (0: none), for [`ShellRef::string_cap`].
    pub(crate) fn note_memory_limit(self, bytes: usize) {
        self.get().memory_limit.set(bytes);
    }

    /// The slot that [`ShellRef::remember_slot`] noted for `name` on the VM of serial
    /// `serial`, if `name` is that name: compared in place, byte by byte up to the cached
    /// name's NUL (so a name that was read once is not measured, UTF-8 checked or hashed
    /// again).
    ///
    /// # Safety
    /// `name` must be non-NULL and NUL-terminated.
    #[inline]
    pub(crate) unsafe fn cached_slot(self, name: *const c_char, serial: u64) -> Option<u32> {
        let cache = self.get().name_cache.try_borrow().ok()?;
        if cache.serial != serial {
            return None;
        }
        for (i, &byte) in cache.name.iter().enumerate() {
            // SAFETY: the bytes of `name` up to its NUL are readable. The loop stops at the
            // first difference, and the cached name's only NUL is its last byte, so it reads
            // no further than `name`'s NUL.
            if unsafe { name.add(i).cast::<u8>().read() } != byte {
                return None;
            }
        }
        Some(cache.slot)
    }

    /// Notes that `name` (read from C: no NUL inside) has slot `slot` in the VM of serial
    /// `serial`, for [`ShellRef::cached_slot`]. Names over 4 KiB are not kept.
    pub(crate) fn remember_slot(self, name: &str, serial: u64, slot: u32) {
        if name.len() > 4096 {
            return;
        }
        if let Ok(mut cache) = self.get().name_cache.try_borrow_mut() {
            cache.name.clear();
            cache.name.extend_from_slice(name.as_bytes());
            cache.name.push(0);
            cache.serial = serial;
            cache.slot = slot;
        }
    }

    /// Whether the outermost call running on the VM found far more native stack left than
    /// the VM reserves (see [`GateCache::stack_room`]): the VM's re-entry gate may skip its
    /// own measurement (and the thread-local it reads). False inside callbacks.
    #[inline]
    pub(crate) fn stack_vouched(self) -> bool {
        let cvm = self.get();
        cvm.stack_vouched.get() && cvm.depth.get() == 1
    }

    /// The longest string the VM could take in: its memory limit, or no cap without one. A
    /// longer string argument is refused before it is copied.
    #[inline]
    pub(crate) fn string_cap(self) -> usize {
        match self.get().memory_limit.get() {
            0 => usize::MAX,
            limit => limit,
        }
    }
}

/// An address in the caller's stack frame (inlined: in the frame of the function using it).
#[inline(always)]
pub(crate) fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// How a call got through the gate.
enum Claim {
    /// This thread took the idle VM; whether the call has far more native stack left than
    /// the VM reserves ([`GateCache::stack_room`]).
    Owned(*mut CVm, bool),
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
/// Inlined into every call's gate (its result would otherwise come back through memory);
/// the registry's path is out of line.
#[inline(always)]
fn claim(handle: VMHandle) -> Result<Claim, Refusal> {
    GATE.try_with(|gate| claim_with(handle, gate))
        .unwrap_or(Err(Refusal::Busy))
}

#[inline(always)]
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
                // ...and again once owned: the shell may have been emptied and refilled, or
                // doomed, between the check and the claim.
                Ok(_) if shell.token.load(Ordering::Relaxed) == token => {
                    let room = gate.stack_room(stack_position());
                    return Ok(Claim::Owned(cached as *mut CVm, room));
                }
                Ok(_) => release(shell),
                // This thread owns it, so the token read above is current.
                Err(owner) if owner == me => return Ok(Claim::Reentered(cached as *mut CVm)),
                Err(_) => return Err(Refusal::Busy),
            }
        }
    }
    claim_registered(handle, gate, me)
}

/// [`claim`] through the registry: the first call with a handle on this thread, or after
/// calls with another one.
#[inline(never)]
fn claim_registered(handle: VMHandle, gate: &GateCache, me: u64) -> Result<Claim, Refusal> {
    let token = handle as usize;
    // The registry stays locked until this thread owns the VM (or has been refused), so
    // `stoffel_destroy_vm` on another thread cannot unregister it between the check and the
    // claim: it takes the same lock.
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
            // The thread's stack bounds, read once per thread (this is the path of a
            // thread's first call with a handle).
            if gate.stack.get().1 == 0
                && let Some(bounds) = thread_stack()
            {
                gate.stack.set(bounds);
            }
            Ok(Claim::Owned(cvm_ptr, gate.stack_room(stack_position())))
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
        // StoffelVM's code for a NULL handle; a dead or unknown one has a code of its own.
        if handle.is_null() {
            set_thread_error(&format!("{name}: NULL VM handle"));
            return STOFFEL_ERROR_NULL;
        }
        let (cvm_ptr, owned) = match claim(handle) {
            Ok(Claim::Owned(p, room)) => {
                // SAFETY: a shell (never freed), now owned by this thread.
                unsafe { &*p }.stack_vouched.set(room);
                (p, true)
            }
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
                    release(cvm);
                    set_thread_error(&format!("{name}: invalid VM handle"));
                    return STOFFEL_ERROR_INVALID_VM;
                }
            }
        } else {
            match reenter(cvm, name, stack_position()) {
                Some(lent) => lent,
                None => return STOFFEL_ERROR_REENTRANCY,
            }
        };
        let depth = cvm.depth.get();
        cvm.depth.set(depth + 1);
        // SAFETY: `vm_ptr` is either the VM itself, taken by the first (outermost) call on
        // this thread while no other reference to it exists, or the `&mut Vm` lent by the C
        // callback wrapper, whose owner does not touch it until the callback returns (the
        // loan is taken out of `lent`, so no second call can use it at the same time).
        let result = catch_unwind(AssertUnwindSafe(|| {
            f(unsafe { &mut *vm_ptr }, ShellRef(cvm_ptr))
        }));
        // Restored, not decremented: a nested call left by a non-local exit does not
        // unbalance it for good.
        cvm.depth.set(depth);
        if depth != 0 {
            cvm.lent.set(vm_ptr);
        }
        let code = match result {
            Ok(Ok(code)) => code,
            Ok(Err(failure)) => {
                cvm.record_failure(to_c_string_lossy(&failure.message));
                failure.code
            }
            Err(payload) => {
                drop_payload(payload);
                cvm.record_failure(to_c_string_lossy(&format!(
                    "{name}: internal error (panic)"
                )));
                STOFFEL_ERROR_PANIC
            }
        };
        if depth == 0 {
            release(cvm);
        }
        code
    })
}

/// A call on a VM this thread is already inside a call on: it takes the VM a running C
/// callback lent, if any. `here` is a position in the calling frame (see
/// [`CVm::callback_frame`]).
#[inline]
fn reenter(cvm: &CVm, name: &str, here: usize) -> Option<*mut Vm> {
    if cvm.abandoned.get() || left_by_jump(cvm, here) {
        return abandoned_failure(cvm, name);
    }
    // Re-entry on this thread: only a running C callback may lend the VM.
    let lent = cvm.lent.replace(std::ptr::null_mut());
    if lent.is_null() {
        let message = format!(
            "{name}: the VM is busy (called from a print callback, a finalizer, or while the \
             VM is not waiting for a callback)"
        );
        cvm.record_failure(to_c_string_lossy(&message));
        return None;
    }
    Some(lent)
}

#[cold]
#[inline(never)]
fn abandoned_failure(cvm: &CVm, name: &str) -> Option<*mut Vm> {
    cvm.abandoned.set(true);
    cvm.record_failure(to_c_string_lossy(&format!(
        "{name}: a callback of this VM was left without returning (longjmp); the VM is stuck \
         in that call and only stoffel_destroy_vm works on it"
    )));
    None
}

/// Whether a call at stack position `here`, on the thread that owns the shell, comes from
/// above the frame of the callback running on it: that callback was left without returning.
/// Only when both positions are on the thread's own stack: a host that runs callbacks on
/// stacks of its own (fibers, coroutines) may call from anywhere.
#[inline]
fn left_by_jump(cvm: &CVm, here: usize) -> bool {
    let frame = cvm.callback_frame.get();
    frame != 0 && here > frame && on_thread_stack(frame, here)
}

#[cold]
#[inline(never)]
fn on_thread_stack(low: usize, high: usize) -> bool {
    let bounds = GATE
        .try_with(|gate| {
            if gate.stack.get().1 == 0
                && let Some(bounds) = thread_stack()
            {
                gate.stack.set(bounds);
            }
            gate.stack.get()
        })
        .unwrap_or((0, 0));
    bounds.0 <= low && high < bounds.1
}

impl CVm {
    fn record_failure(&self, message: CString) {
        if let Ok(mut slot) = self.last_error.try_borrow_mut() {
            *slot = Some(message);
        }
        self.failures.set(self.failures.get() + 1);
    }

    /// The last failure's message, if any failure happened after `since` failures.
    fn failure_since(&self, since: u64) -> Option<String> {
        if self.failures.get() == since {
            return None;
        }
        self.last_error
            .try_borrow()
            .ok()?
            .as_ref()
            .map(|m| m.to_string_lossy().into_owned())
    }
}

/// Live VMs: handle token → `CVm` box address. A `VMHandle` is a token, not the address, and
/// tokens are never reused, so a destroyed VM's handle can never reach a VM created later
/// (an address could be reused by the allocator). A handle is registered exactly while its VM
/// is alive and nobody has asked to destroy it; deciding to destroy takes this lock.
fn registry() -> MutexGuard<'static, AddressMap<usize>> {
    // A panic while the lock is held cannot leave the map half-updated: recover it.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

static LIVE: Mutex<AddressMap<usize>> = Mutex::new(HashMap::with_hasher(BuildHasherDefault::new()));

/// The gate's locks, held by the fork handlers in `process.rs` across `fork()`.
pub(crate) struct GateLocks {
    _live: MutexGuard<'static, AddressMap<usize>>,
    _shells: MutexGuard<'static, Shells>,
}

/// Takes the gate's locks (in this order: the only place that holds more than one).
pub(crate) fn fork_locks() -> GateLocks {
    GateLocks {
        _live: registry(),
        _shells: shells(),
    }
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

/// `stoffel_interrupt`: asks the execution running on the VM behind `handle` to stop. Not
/// through `with_vm`: it must work while another thread (or this one, in a callback) is inside
/// a call on the VM. It touches only the registry and the shell's interrupt handle, each
/// under its lock, held for a few instructions.
pub(crate) fn interrupt(handle: VMHandle) -> c_int {
    if handle.is_null() {
        set_thread_error("stoffel_interrupt: NULL VM handle");
        return STOFFEL_ERROR_NULL;
    }
    let live = registry();
    let Some(ptr) = resolve(&live, handle) else {
        drop(live);
        set_thread_error("stoffel_interrupt: invalid VM handle");
        return STOFFEL_ERROR_INVALID_VM;
    };
    // SAFETY: registered, so it points to a shell (never freed) holding this handle's VM, and
    // the registry lock (held until the handle is copied out) keeps it registered.
    let cvm = unsafe { &*ptr };
    let handle = cvm
        .interrupt
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    drop(live);
    if let Some(handle) = handle {
        handle.interrupt();
    }
    STOFFEL_OK
}

/// `stoffel_last_error`: the last failure's message on the VM behind `handle` or, for NULL, an
/// invalid handle or a VM another thread is using, this thread's last error; NULL if none.
/// Not through `with_vm`: asking must not record a failure of its own (that would replace the
/// very message asked for), and it must work on a VM this thread is using (from a print
/// callback or a finalizer).
pub(crate) fn last_error(handle: VMHandle) -> *const c_char {
    let Some(me) = thread_token() else {
        return thread_error();
    };
    let live = registry();
    let Some(ptr) = resolve(&live, handle) else {
        drop(live);
        return thread_error();
    };
    // SAFETY: registered, so it points to a shell (never freed), and the registry lock
    // (held until this function returns) keeps another thread from unregistering it. Only
    // the atomic owner and `last_error` are touched, and `last_error` only by the owning
    // thread.
    let cvm = unsafe { &*ptr };
    let vm_error = || {
        cvm.last_error.try_borrow().map_or(std::ptr::null(), |m| {
            m.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
        })
    };
    match cvm
        .owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => {
            let m = vm_error();
            // Registered, so not doomed, and nobody can doom it while the lock is held: a
            // plain release.
            cvm.owner.store(0, Ordering::Release);
            m
        }
        // This thread is inside a call on the VM (a callback, print callback, finalizer).
        Err(owner) if owner == me => vm_error(),
        // Busy on another thread: its messages are not ours to read.
        Err(_) => thread_error(),
    }
}
