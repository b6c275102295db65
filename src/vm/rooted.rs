//! [`Rooted`]: a value that releases its handle by itself, and identity comparison.
//!
//! A `Rooted` owns one reference to a heap value's handle. Dropping the last clone cannot
//! reach the VM (it may be borrowed elsewhere, or gone), so the drop queues the id and the
//! VM releases queued ids at its next execution or heap call (Wasmtime's `OwnedRooted`
//! works the same way). Clones share the one reference, so cloning needs no VM either.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::convert::{FromVal, IntoVal};
use super::{Val, Vm};
use crate::error::VmError;
use crate::handles::Handle;
use crate::value::Key;

/// Ids whose [`Rooted`] was dropped, waiting for the VM to release them.
#[derive(Default)]
pub(super) struct DropQueue {
    pending: AtomicBool,
    ids: Mutex<Vec<Handle>>,
}

impl DropQueue {
    fn push(&self, handle: Handle) {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
        self.pending.store(true, Ordering::Release);
    }

    /// Whether ids wait (one relaxed load: checked on every execution).
    #[inline(always)]
    pub(super) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    pub(super) fn take(&self) -> Vec<Handle> {
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(super) fn len(&self) -> usize {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A value that keeps its heap value alive while any clone of it lives, and releases its
/// handle when the last clone is dropped: no [`Vm::release`] to forget. Use it wherever a
/// `&Val` is wanted (it dereferences to its [`Val`]).
///
/// ```
/// # use stoffel_vm::{Rooted, Val, Vm};
/// let mut vm = Vm::new();
/// for i in 0..1000i64 {
///     let obj: Rooted = vm.call("create_object", ()).unwrap();
///     vm.set(&obj, "i", i).unwrap();
///     let copy = obj.clone(); // shares the reference
///     assert_eq!(vm.get::<i64>(&copy, "i").unwrap(), i);
/// } // dropped: released at the VM's next call
/// assert_eq!(vm.gc_stats().live_handles, 0);
/// ```
#[derive(Clone)]
pub struct Rooted {
    inner: Arc<RootedInner>,
}

struct RootedInner {
    val: Val,
    drops: Arc<DropQueue>,
}

impl Drop for RootedInner {
    fn drop(&mut self) {
        if let Some(h) = self.val.handle() {
            self.drops.push(h);
        }
    }
}

impl Rooted {
    /// The value (valid while this `Rooted` lives).
    pub fn val(&self) -> &Val {
        &self.inner.val
    }
}

impl Deref for Rooted {
    type Target = Val;

    fn deref(&self) -> &Val {
        &self.inner.val
    }
}

impl std::fmt::Debug for Rooted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Rooted").field(&self.inner.val).finish()
    }
}

/// A new reference, owned by the `Rooted`.
impl FromVal for Rooted {
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Rooted, VmError> {
        vm.retain(value)?;
        Ok(vm.root(value.clone()))
    }
}

/// A new reference for the receiver; the `Rooted` keeps its own.
impl IntoVal for Rooted {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        vm.retain(&self)?;
        Ok(self.inner.val.clone())
    }
}

/// A new reference for the receiver.
impl IntoVal for &Rooted {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        vm.retain(self)?;
        Ok(self.inner.val.clone())
    }
}

impl Vm {
    /// Takes over `value`'s reference: the returned [`Rooted`] releases it when its last
    /// clone is dropped. Scalars are wrapped as they are.
    pub fn root(&mut self, value: Val) -> Rooted {
        Rooted {
            inner: Arc::new(RootedInner {
                val: value,
                drops: self.drops.clone(),
            }),
        }
    }

    /// Whether `a` and `b` are the same value: the same object, array, closure or foreign
    /// object for heap values (two ids of one object are the same), equal kind and value
    /// for the rest (strings by text). Stale or foreign ids are an error.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// let obj = vm.create_object().unwrap();
    /// vm.set_field(&obj, &Val::from("self"), &obj).unwrap();
    /// let again = vm.get_field(&obj, &Val::from("self")).unwrap();
    /// assert_ne!(obj, again, "another id…");
    /// assert!(vm.same(&obj, &again).unwrap(), "…of the same object");
    /// let other = vm.create_object().unwrap();
    /// assert!(!vm.same(&obj, &other).unwrap());
    /// assert!(vm.same(&Val::from("a"), &Val::from("a")).unwrap());
    /// assert!(!vm.same(&Val::I64(1), &Val::I32(1)).unwrap());
    /// ```
    pub fn same(&self, a: &Val, b: &Val) -> Result<bool, VmError> {
        match (a.handle(), b.handle()) {
            (Some(x), Some(y)) => self.arena.mutate(|_, root| {
                let x = root.handles.get(x)?;
                let y = root.handles.get(y)?;
                Ok(Key(x) == Key(y))
            }),
            (None, None) => Ok(a == b),
            (Some(h), None) | (None, Some(h)) => self
                .arena
                .mutate(|_, root| root.handles.get(h).map(|_| false).map_err(Into::into)),
        }
    }

    /// Releases the ids of dropped [`Rooted`]s.
    #[cold]
    #[inline(never)]
    pub(super) fn release_dropped(&mut self) {
        let ids = self.drops.take();
        self.arena.mutate_root(|_, root| {
            for h in ids {
                // Released by hand too, or the VM was reset: nothing more to do.
                let _ = root.handles.release(h);
            }
        });
    }
}
