//! Handles: the only way a heap value leaves the arena.
//!
//! A [`Handle`] is a 64-bit id naming a slot of the VM's handle table, which lives in the arena
//! root so the collector sees every handled value as reachable. An id packs the slot index,
//! the slot's generation and a per-VM tag, and is never 0. Releasing a handle bumps its slot's
//! generation, so the old id is rejected from then on instead of naming whatever reuses the
//! slot; a slot whose generation would wrap is retired, so no id is ever issued twice by one
//! VM. An id made by another VM carries another tag and is rejected too.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, Ordering};

use gc_arena::Collect;

use crate::value::Value;

const SLOT_BITS: u32 = 24;
const GENERATION_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;
/// Most handles that can be live at once in one VM.
pub const MAX_LIVE_HANDLES: usize = (1 << SLOT_BITS) - 1;

/// An id naming a rooted heap value of one VM. Ids are plain numbers: copying one does not
/// retain the value; see [`crate::Vm::release`] and [`crate::Vm::retain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(NonZeroU64);

impl Handle {
    /// The raw id (what the C API calls `object_id`, `array_id`, …).
    pub fn id(self) -> u64 {
        self.0.get()
    }

    /// A handle from a raw id; `None` for 0. Whether it names anything is checked on use.
    pub fn from_id(id: u64) -> Option<Handle> {
        NonZeroU64::new(id).map(Handle)
    }

    fn slot(self) -> usize {
        (self.0.get() & SLOT_MASK) as usize
    }

    fn generation(self) -> u32 {
        ((self.0.get() >> SLOT_BITS) & GENERATION_MASK) as u32
    }

    fn tag(self) -> u16 {
        (self.0.get() >> (SLOT_BITS + GENERATION_BITS)) as u16
    }
}

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The id was made by another VM.
    #[error("handle {0:#x} belongs to another VM")]
    OtherVm(u64),
    /// The id names no live handle (released, or never issued).
    #[error("handle {0:#x} is stale or unknown")]
    Stale(u64),
    /// The table is full.
    #[error("too many live handles (limit {MAX_LIVE_HANDLES})")]
    Full,
    /// Retain count overflow.
    #[error("handle {0:#x} retained too many times")]
    TooManyRetains(u64),
}

#[derive(Collect)]
#[collect(no_drop)]
struct Slot<'gc> {
    generation: u32,
    refs: u32,
    value: Option<Value<'gc>>,
}

/// The handle table of one VM.
#[derive(Collect)]
#[collect(no_drop)]
pub struct HandleTable<'gc> {
    slots: Vec<Slot<'gc>>,
    free: Vec<u32>,
    live: usize,
    tag: u16,
}

static NEXT_TAG: AtomicU32 = AtomicU32::new(1);

impl<'gc> HandleTable<'gc> {
    /// An empty table with a tag distinct from the last 65 535 VMs' tags.
    pub fn new() -> HandleTable<'gc> {
        let mut tag = 0;
        while tag == 0 {
            tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed) as u16;
        }
        HandleTable {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            tag,
        }
    }

    /// Handles currently live.
    pub fn live(&self) -> usize {
        self.live
    }

    fn make(&self, slot: usize, generation: u32) -> Handle {
        let raw = (u64::from(self.tag) << (SLOT_BITS + GENERATION_BITS))
            | (u64::from(generation) << SLOT_BITS)
            | slot as u64;
        // generation ≥ 1, so raw ≠ 0.
        Handle(NonZeroU64::new(raw).unwrap_or(NonZeroU64::MIN))
    }

    /// Roots `value` under a new handle with one reference.
    pub fn insert(&mut self, value: Value<'gc>) -> Result<Handle, HandleError> {
        let slot = match self.free.pop() {
            Some(s) => s as usize,
            None => {
                if self.slots.len() >= MAX_LIVE_HANDLES {
                    return Err(HandleError::Full);
                }
                self.slots.push(Slot {
                    generation: 1,
                    refs: 0,
                    value: None,
                });
                self.slots.len() - 1
            }
        };
        let entry = &mut self.slots[slot];
        entry.refs = 1;
        entry.value = Some(value);
        let generation = entry.generation;
        self.live += 1;
        Ok(self.make(slot, generation))
    }

    fn entry(&self, handle: Handle) -> Result<&Slot<'gc>, HandleError> {
        if handle.tag() != self.tag {
            return Err(HandleError::OtherVm(handle.id()));
        }
        match self.slots.get(handle.slot()) {
            Some(s) if s.generation == handle.generation() && s.value.is_some() => Ok(s),
            _ => Err(HandleError::Stale(handle.id())),
        }
    }

    /// The value a handle names.
    pub fn get(&self, handle: Handle) -> Result<Value<'gc>, HandleError> {
        self.entry(handle)?
            .value
            .ok_or(HandleError::Stale(handle.id()))
    }

    /// Adds a reference: the handle then needs one more release.
    pub fn retain(&mut self, handle: Handle) -> Result<(), HandleError> {
        self.entry(handle)?;
        let entry = &mut self.slots[handle.slot()];
        entry.refs = entry
            .refs
            .checked_add(1)
            .ok_or(HandleError::TooManyRetains(handle.id()))?;
        Ok(())
    }

    /// Drops a reference; at zero the value is unrooted and the id dies for good.
    pub fn release(&mut self, handle: Handle) -> Result<(), HandleError> {
        self.entry(handle)?;
        let slot = handle.slot();
        let entry = &mut self.slots[slot];
        entry.refs -= 1;
        if entry.refs == 0 {
            entry.value = None;
            self.live -= 1;
            if u64::from(entry.generation) < GENERATION_MASK {
                entry.generation += 1;
                self.free.push(slot as u32);
            }
            // Otherwise the slot is retired: its ids could only repeat.
        }
        Ok(())
    }
}

impl Default for HandleTable<'_> {
    fn default() -> Self {
        Self::new()
    }
}
