//! Foreign objects: host data owned by the VM, finalized exactly once.
//!
//! The heap holds only a small [`Foreign`] with an id; the data lives outside the arena in
//! the VM's table, so dropping it (its finalizer) never runs while the arena is borrowed. A
//! weak list tells, when marking finishes, which foreign objects died; their data is dropped
//! right after the collector leaves the arena ([`Vm::finalize`]), or when the VM drops.
//!
//! Order: finalizers run newest first (reverse registration order), both for the objects one
//! collection finds dead and for those still held when the VM drops, so an object registered
//! after another (and possibly depending on it) is finalized before it.

use std::any::Any;

use gc_arena::{Gc, GcWeak};

use super::Vm;
use super::send::{ForeignData, MaybeSend};
use crate::Val;
use crate::error::{ApiError, VmError};
use crate::handles::HandleError;
use crate::heap::{Foreign, ForeignList};
use crate::value::Value;

impl Vm {
    /// Wraps host data as a foreign object. `data` is dropped (its `Drop` is the finalizer)
    /// exactly once: after the collector finds the object unreachable, or when the VM drops.
    /// With the `send` feature it must be `Send` ([`ForeignData`]): it moves with the VM.
    ///
    /// ```
    /// # use stoffel_vm::Vm;
    /// let mut vm = Vm::new();
    /// let file = vm.create_foreign(Box::new(String::from("log.txt"))).unwrap();
    /// let data = vm.foreign_data(&file).unwrap();
    /// assert_eq!(data.downcast_ref::<String>().unwrap(), "log.txt");
    /// vm.release(&file).unwrap();
    /// vm.collect_all(); // the String is dropped here
    /// assert_eq!(vm.gc_stats().foreign_objects, 0);
    /// ```
    pub fn create_foreign(&mut self, data: ForeignData) -> Result<Val, VmError> {
        let id = self.next_foreign_id;
        self.next_foreign_id += 1;
        let meter = &self.rt.meter;
        let handle = self.arena.mutate_root(|mc, root| {
            let f = Foreign::alloc(mc, meter, id);
            root.foreigns.borrow_mut(mc).push((Gc::downgrade(f), id));
            root.handles.insert(Value::Foreign(f))
        })?;
        self.foreign_data.insert(id, data);
        // Hosts register foreign objects in loops with no execution: pay the collector
        // here (the new object is held by its handle; dead ones are finalized).
        self.collect_debt();
        Ok(Val::Foreign(handle))
    }

    /// The data of a foreign object.
    pub fn foreign_data(&self, value: &Val) -> Result<&dyn Any, VmError> {
        let id = self.foreign_id(value)?;
        // Data is dropped only after its object became unreachable, which a live handle
        // prevents; a missing entry would mean the handle died meanwhile.
        self.foreign_data
            .get(&id)
            .map(|b| -> &dyn Any { &**b })
            .ok_or_else(|| dead_foreign(value))
    }

    /// The data of a foreign object, to change in place.
    ///
    /// ```
    /// # use stoffel_vm::Vm;
    /// let mut vm = Vm::new();
    /// let counter = vm.create_foreign(Box::new(0u32)).unwrap();
    /// *vm.foreign_data_mut(&counter).unwrap().downcast_mut::<u32>().unwrap() += 1;
    /// assert_eq!(vm.foreign_data(&counter).unwrap().downcast_ref::<u32>(), Some(&1));
    /// ```
    pub fn foreign_data_mut(&mut self, value: &Val) -> Result<&mut dyn Any, VmError> {
        let id = self.foreign_id(value)?;
        self.foreign_data
            .get_mut(&id)
            .map(|b| -> &mut dyn Any { &mut **b })
            .ok_or_else(|| dead_foreign(value))
    }

    /// Sets the VM's user data of type `T` (one value per type), returning the previous one:
    /// state host functions reach through the `&mut Vm` they get. With the `send` feature
    /// `T` must be `Send` ([`MaybeSend`]): it moves with the VM.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// struct Calls(u32);
    /// let mut vm = Vm::new();
    /// vm.set_user_data(Calls(0));
    /// vm.register_function("tick", |vm, _| {
    ///     vm.user_data_mut::<Calls>().unwrap().0 += 1;
    ///     Ok(Val::Unit)
    /// });
    /// vm.execute("tick", &[]).unwrap();
    /// assert_eq!(vm.user_data::<Calls>().unwrap().0, 1);
    /// ```
    pub fn set_user_data<T: Any + MaybeSend>(&mut self, data: T) -> Option<T> {
        self.user_data
            .insert(std::any::TypeId::of::<T>(), Box::new(data))
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }

    /// The VM's user data of type `T`, if set.
    pub fn user_data<T: Any>(&self) -> Option<&T> {
        self.user_data
            .get(&std::any::TypeId::of::<T>())
            .and_then(|b| b.downcast_ref())
    }

    /// The VM's user data of type `T`, to change in place.
    pub fn user_data_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.user_data
            .get_mut(&std::any::TypeId::of::<T>())
            .and_then(|b| b.downcast_mut())
    }

    /// Removes and returns the VM's user data of type `T`.
    pub fn take_user_data<T: Any>(&mut self) -> Option<T> {
        self.user_data
            .remove(&std::any::TypeId::of::<T>())
            .and_then(|b| b.downcast().ok().map(|b| *b))
    }

    /// The foreign id behind a FOREIGN value's handle.
    fn foreign_id(&self, value: &Val) -> Result<u64, VmError> {
        self.arena.mutate(|_, root| match value {
            Val::Foreign(h) => match root.handles.get(*h)? {
                Value::Foreign(f) => Ok(f.id),
                other => Err(VmError::from(ApiError::WrongKind {
                    expected: "foreign object",
                    got: other.kind().type_name(),
                })),
            },
            other => Err(ApiError::WrongKind {
                expected: "foreign object",
                got: other.kind().type_name(),
            }
            .into()),
        })
    }

    /// Drops the data of dead foreign objects (`dead` in registration order), newest first:
    /// the order a host can rely on, the same as at [`Vm`]'s drop.
    pub(super) fn finalize(&mut self, dead: Vec<u64>) {
        for id in dead.into_iter().rev() {
            // Dropping the data runs its finalizer, here, outside the arena.
            drop(self.foreign_data.remove(&id));
        }
    }

    /// Drops every foreign object's data, newest first (ids grow with registration).
    fn finalize_all(&mut self) {
        while let Some((_, data)) = self.foreign_data.pop_last() {
            drop(data);
        }
    }
}

impl Drop for Vm {
    /// Finalizes the foreign objects still held, in reverse registration order, before the
    /// heap goes away (a later object may depend on an earlier one, as C hosts' objects do).
    fn drop(&mut self) {
        self.finalize_all();
    }
}

/// Finds foreign objects the marking phase left unreachable and forgets them; returns their ids.
pub(super) fn dead_foreigns<'gc>(
    fc: &gc_arena::Finalization<'gc>,
    list: ForeignList<'gc>,
) -> Vec<u64> {
    let mut dead = Vec::new();
    list.borrow_mut(fc)
        .retain(|(weak, id): &(GcWeak<'gc, Foreign>, u64)| {
            if weak.is_dead(fc) {
                dead.push(*id);
                false
            } else {
                true
            }
        });
    dead
}

/// The error for a foreign value whose data is gone (its handle died meanwhile).
fn dead_foreign(value: &Val) -> VmError {
    let handle = value.handle().map_or(0, |h| h.id());
    ApiError::Handle(HandleError::NotLive(handle)).into()
}
