//! What the `send` feature changes: the bounds on what a VM holds for the host, the pointer
//! type the VM shares its host functions and depth counter through, and `Vm: Send`.
//!
//! Without the feature every item here is the thread-bound form (no bound, `Rc`, `Cell`), so
//! nothing changes for users; with it each is the `Send` form, and [`Vm`] is `Send`.

#[cfg(not(feature = "send"))]
use std::cell::Cell;
#[cfg(not(feature = "send"))]
use std::rc::Rc;
#[cfg(feature = "send")]
use std::sync::Arc;
#[cfg(feature = "send")]
use std::sync::atomic::{AtomicU32, Ordering};

use super::Vm;
use crate::Val;
use crate::error::HostError;

/// `Send` with the `send` feature, any type without it: the bound on data a VM keeps for the
/// host (user data, [`Vm::set_user_data`]).
#[cfg(feature = "send")]
pub trait MaybeSend: Send {}
#[cfg(feature = "send")]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` with the `send` feature, any type without it: the bound on data a VM keeps for the
/// host (user data, [`Vm::set_user_data`]).
#[cfg(not(feature = "send"))]
pub trait MaybeSend {}
#[cfg(not(feature = "send"))]
impl<T: ?Sized> MaybeSend for T {}

/// `Send + Sync` with the `send` feature, any type without it: the bound on host functions.
///
/// `Sync` as well as `Send`, because a host function gets `&mut Vm`: it can
/// `std::mem::replace` the VM and hand it to another thread while its own call still runs,
/// and that thread may then call the same closure, so one closure may be called from two
/// threads at once (Wasmtime's host functions are `Send + Sync` for the same reason).
#[cfg(feature = "send")]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(feature = "send")]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` with the `send` feature, any type without it: the bound on host functions.
#[cfg(not(feature = "send"))]
pub trait MaybeSendSync {}
#[cfg(not(feature = "send"))]
impl<T: ?Sized> MaybeSendSync for T {}

/// A foreign object's data ([`Vm::create_foreign`]): `Send` with the `send` feature.
#[cfg(feature = "send")]
pub type ForeignData = Box<dyn std::any::Any + Send>;
/// A foreign object's data ([`Vm::create_foreign`]): `Send` with the `send` feature.
#[cfg(not(feature = "send"))]
pub type ForeignData = Box<dyn std::any::Any>;

/// Receives one line per executed instruction (see [`Vm::set_trace`]); `Send` with the
/// `send` feature.
#[cfg(feature = "send")]
pub type TraceSink = Box<dyn FnMut(&str) + Send>;
/// Receives one line per executed instruction (see [`Vm::set_trace`]); `Send` with the
/// `send` feature.
#[cfg(not(feature = "send"))]
pub type TraceSink = Box<dyn FnMut(&str)>;

/// A host function: called with the VM (to re-enter it or use its heap) and the arguments;
/// `Send + Sync` with the `send` feature (see [`MaybeSendSync`]).
///
/// Handles in the arguments are valid during the call (retain one to keep it). A handle in
/// the returned value is handed over to the VM, which releases it once it has the value: a
/// host returns a fresh object without leaking it, and returning an argument is fine; to
/// return a value the host also keeps, retain it first.
///
/// The VM keeps it behind a shared pointer so that a running call keeps its closure alive
/// if the host re-registers the name meanwhile: an `Rc`, or an `Arc` with the `send`
/// feature (the running call's clone and the VM may then be on two threads).
#[cfg(feature = "send")]
pub type HostFn = Arc<dyn Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + Send + Sync>;
/// A host function: called with the VM (to re-enter it or use its heap) and the arguments;
/// `Send + Sync` with the `send` feature (see [`MaybeSendSync`]).
///
/// Handles in the arguments are valid during the call (retain one to keep it). A handle in
/// the returned value is handed over to the VM, which releases it once it has the value: a
/// host returns a fresh object without leaking it, and returning an argument is fine; to
/// return a value the host also keeps, retain it first.
///
/// The VM keeps it behind a shared pointer so that a running call keeps its closure alive
/// if the host re-registers the name meanwhile: an `Rc`, or an `Arc` with the `send`
/// feature (the running call's clone and the VM may then be on two threads).
#[cfg(not(feature = "send"))]
pub type HostFn = Rc<dyn Fn(&mut Vm, &[Val]) -> Result<Val, HostError>>;

/// Wraps a registered closure as a [`HostFn`].
pub(super) fn host_fn<F>(function: F) -> HostFn
where
    F: Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + MaybeSendSync + 'static,
{
    #[cfg(feature = "send")]
    return Arc::new(function);
    #[cfg(not(feature = "send"))]
    return Rc::new(function);
}

/// The number of running executions, shared with the guards that count them down (a guard
/// outlives a host call, during which the VM may have moved to another thread: atomic with
/// the `send` feature).
#[derive(Clone, Default)]
pub(super) struct Depth(
    #[cfg(feature = "send")] Arc<AtomicU32>,
    #[cfg(not(feature = "send"))] Rc<Cell<u32>>,
);

impl Depth {
    /// The count (one relaxed load with the `send` feature).
    #[inline(always)]
    pub(super) fn get(&self) -> u32 {
        #[cfg(feature = "send")]
        return self.0.load(Ordering::Relaxed);
        #[cfg(not(feature = "send"))]
        return self.0.get();
    }

    /// Sets the count. Only the thread that has the VM counts, so a load and a store do.
    #[inline(always)]
    pub(super) fn set(&self, depth: u32) {
        #[cfg(feature = "send")]
        self.0.store(depth, Ordering::Relaxed);
        #[cfg(not(feature = "send"))]
        self.0.set(depth);
    }
}

// SAFETY: a `Vm` is not `Send` automatically because of what it holds that is thread-bound,
// and each of those is sound to move with the whole VM:
// - The gc-arena `Arena` (raw `Gc` pointers, `Cell`s, an `Rc` for its metrics): moving it
//   moves every object it owns along with it; `Gc` pointers cannot escape `Arena::mutate`
//   (their `'gc` brand), so no pointer into the arena exists outside the VM, and gc-arena
//   keeps no thread-local or global state. What the objects hold is `Send` or owned by the
//   VM: numbers, strings, ids of foreign data (the data itself is in the VM's table and
//   `Send` by `ForeignData`), and `Account`s sharing the VM's `Meter`.
// - The `Rc`s and `Cell`s outside the arena (the `Meter` the heap values' `Account`s share,
//   the linked code's `Rc<str>` names and `Rc<Program>`s, its lookup cache): every clone of
//   each is reachable only from inside this VM, so no reference count or cell is ever
//   touched from two threads: a `Vm` is used by one thread at a time (`&mut self`; it is
//   never `Sync`). Nothing the VM hands out shares one: names leave it as `String`s or
//   `Arc<str>` (`Func`), values as `Val`s (ids), errors own their data, `Rooted` and
//   `InterruptHandle` share `Arc`s of atomics and mutexes. tests/thread_rules.rs asserts
//   that every type a user can hold apart from the VM is `Send` (so it cannot share a
//   non-atomic count with the VM). The stack of a running call is the one place clones live
//   outside the VM while a host function (which has `&mut Vm`, and so could move the VM to
//   another thread meanwhile) runs: those are the host function (`HostFn`, an `Arc` of a
//   `Send + Sync` closure here) and the depth guard (`Depth`, an `Arc<AtomicU32>` here).
// - What the host gave it: host functions are `Send + Sync`, foreign data, user data,
//   output writers and callbacks and the trace sink `Send` (the bounds and types above and
//   `Output`'s), and the C API's callbacks and objects are wrapped as `Send + Sync` by the
//   C contract (a VM is used from one thread at a time, its user data going with it).
// - Per-thread state: none is cached in the VM. The native stack bound (`check_stack`) is
//   read on the running thread at each execution; the C API's thread-locals (src/ffi) are
//   its gate's and last error's, keyed by thread, not VM state.
#[cfg(feature = "send")]
#[allow(unsafe_code)]
unsafe impl Send for Vm {}
