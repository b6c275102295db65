//! Handles: the only way a heap value leaves the arena.
//!
//! A [`Handle`] is a 64-bit id naming an entry of one VM's handle table, which lives in the
//! arena root so the collector sees every handled value as reachable.
//!
//! Ids come from one process-wide 64-bit counter that only grows, so no id is ever issued
//! twice in the process, by any VM. A VM takes [`ID_BLOCK`] ids from the counter at a time
//! (one atomic operation per block, not per handle) and issues them in order. The table maps
//! the ids it issued and has not yet released to their values; any other id, released, never
//! issued, or issued by another VM, is simply absent and is refused, with nothing changed.
//! The counter never wraps: the last block is cut short at `u64::MAX`, which is never issued,
//! and from then on issuing fails with [`HandleError::IdsExhausted`] (2^64 ids at a billion a
//! second last 584 years).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

use gc_arena::Collect;

use crate::heap::Meter;
use crate::value::Value;

/// Most handles that can be live at once in one VM.
pub const MAX_LIVE_HANDLES: usize = (1 << 24) - 1;

/// Ids a VM takes from the process-wide counter at a time.
const ID_BLOCK: u64 = 1 << 10;

/// The smallest id no VM has taken yet. Only grows (`fetch_update` with a checked bound, and
/// the test hook's `fetch_max`); at `u64::MAX` every id has been taken.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Takes the next block of ids, `start..end`: at most [`ID_BLOCK`] of them, never `u64::MAX`.
/// `None` once every id is taken; the counter then stays at `u64::MAX`.
fn take_block() -> Option<(u64, u64)> {
    NEXT_ID
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
            (next < u64::MAX).then(|| next.saturating_add(ID_BLOCK))
        })
        .ok()
        .map(|start| (start, start.saturating_add(ID_BLOCK)))
}

/// Test hook, not part of the API: moves the process-wide id counter forward to `to` (never
/// back, so it cannot make an id repeat; it only brings exhaustion nearer). VMs finish the
/// block of ids they already hold first.
#[doc(hidden)]
pub fn __advance_handle_counter_for_tests(to: u64) {
    NEXT_ID.fetch_max(to, Ordering::Relaxed);
}

/// An id naming a rooted heap value of one VM. Ids are plain numbers: copying one does not
/// retain the value; see [`crate::Vm::release`] and [`crate::Vm::retain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(NonZeroU64);

impl Handle {
    /// The raw id (what the C API calls `object_id`, `array_id`, …).
    pub fn id(self) -> u64 {
        self.0.get()
    }

    /// A handle from a raw id; `None` for 0, which is never issued. Whether it names anything
    /// is checked on use.
    pub fn from_id(id: u64) -> Option<Handle> {
        NonZeroU64::new(id).map(Handle)
    }
}

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The id names nothing in this VM: it was released, never issued, or issued by another
    /// VM (ids are unique in the process, so these are the only cases, and they cannot be
    /// told apart without keeping every dead id).
    #[error("handle {0} is not live in this VM (released, never issued, or issued by another VM)")]
    NotLive(u64),
    /// The VM already holds [`MAX_LIVE_HANDLES`] handles.
    #[error("too many live handles (limit {MAX_LIVE_HANDLES})")]
    Full,
    /// The process has taken every id below `u64::MAX`; ids are never reused.
    #[error("no handle ids left: this process has used every id up to 2^64 - 2")]
    IdsExhausted,
    /// Retain count overflow.
    #[error("handle {0} retained too many times")]
    TooManyRetains(u64),
}

#[derive(Collect)]
#[collect(no_drop)]
struct Entry<'gc> {
    refs: u32,
    value: Value<'gc>,
}

/// Hashes ids with one folded 64×64→128-bit multiply: sequential ids spread over both the
/// low bits (the bucket) and the top bits (the tag byte) the table uses. Ids are not chosen by
/// whoever inserts them, so no keyed hash is needed; a forged id only costs one lookup.
#[derive(Clone, Copy, Default)]
struct IdHash;

struct IdHasher(u64);

const HASH_MULTIPLIER: u64 = 0xa076_1d64_78bd_642f;

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write_u64(&mut self, id: u64) {
        let product = u128::from(id ^ self.0) * u128::from(HASH_MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this keeps the hasher total anyway.
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The handle table of one VM: its live ids and their values, with reference counts.
#[derive(Collect)]
#[collect(no_drop)]
pub struct HandleTable<'gc> {
    entries: HashMap<u64, Entry<'gc>, IdHash>,
    /// Where the table reports its size (it counts against the memory limit).
    #[collect(require_static)]
    meter: Meter,
    /// The next id of this VM's current block; `next == end` when it needs a new block.
    next: u64,
    end: u64,
}

impl<'gc> HandleTable<'gc> {
    /// An empty table. It takes ids from the process-wide counter when it first needs them.
    pub fn new(meter: Meter) -> HandleTable<'gc> {
        HandleTable {
            entries: HashMap::with_hasher(IdHash),
            meter,
            next: 0,
            end: 0,
        }
    }

    /// Handles currently live.
    pub fn live(&self) -> usize {
        self.entries.len()
    }

    /// Roots `value` under a new handle with one reference.
    pub fn insert(&mut self, value: Value<'gc>) -> Result<Handle, HandleError> {
        self.insert_within(value, MAX_LIVE_HANDLES)
    }

    /// [`HandleTable::insert`] with a cap on live handles (a small one in tests). A refusal
    /// changes nothing.
    fn insert_within(&mut self, value: Value<'gc>, cap: usize) -> Result<Handle, HandleError> {
        if self.entries.len() >= cap {
            return Err(HandleError::Full);
        }
        if self.next == self.end {
            (self.next, self.end) = take_block().ok_or(HandleError::IdsExhausted)?;
        }
        // The counter starts at 1, so no id is 0.
        let handle = Handle(NonZeroU64::new(self.next).ok_or(HandleError::IdsExhausted)?);
        // `next < end <= u64::MAX`.
        self.next += 1;
        // Ids are unique in the process, so this id is not in the table yet.
        let capacity = self.entries.capacity();
        self.entries.insert(handle.id(), Entry { refs: 1, value });
        if self.entries.capacity() != capacity {
            self.report_size();
        }
        Ok(handle)
    }

    /// The value a handle names.
    #[inline]
    pub fn get(&self, handle: Handle) -> Result<Value<'gc>, HandleError> {
        match self.entries.get(&handle.id()) {
            Some(entry) => Ok(entry.value),
            None => Err(HandleError::NotLive(handle.id())),
        }
    }

    /// Adds a reference: the handle then needs one more release.
    pub fn retain(&mut self, handle: Handle) -> Result<(), HandleError> {
        let id = handle.id();
        let entry = self.entries.get_mut(&id).ok_or(HandleError::NotLive(id))?;
        entry.refs = entry
            .refs
            .checked_add(1)
            .ok_or(HandleError::TooManyRetains(id))?;
        Ok(())
    }

    /// Drops a reference; at zero the value is unrooted and the id dies for good.
    pub fn release(&mut self, handle: Handle) -> Result<(), HandleError> {
        let id = handle.id();
        let entry = self.entries.get_mut(&id).ok_or(HandleError::NotLive(id))?;
        entry.refs -= 1;
        if entry.refs == 0 {
            self.entries.remove(&id);
            // Give back the memory of a burst of handles once most are gone (amortised: the
            // table must lose half its entries again before the next shrink).
            let capacity = self.entries.capacity();
            if capacity > 64 && self.entries.len() < capacity / 4 {
                self.entries.shrink_to(self.entries.len() * 2);
                self.report_size();
            }
        }
        Ok(())
    }
}

impl HandleTable<'_> {
    /// Tells the meter the table's size: its buckets (an entry and a control byte each).
    fn report_size(&self) {
        let per_entry = std::mem::size_of::<(u64, Entry<'_>)>() + 1;
        self.meter
            .set_handle_bytes(self.entries.capacity().saturating_mul(per_entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HandleTable<'static> {
        HandleTable::new(Meter::default())
    }

    #[test]
    fn the_retain_count_stops_at_its_maximum_and_changes_nothing() {
        let mut t = table();
        let h = t.insert(Value::I64(7)).unwrap();
        t.entries.get_mut(&h.id()).unwrap().refs = u32::MAX - 1;
        t.retain(h).unwrap();
        assert_eq!(t.retain(h), Err(HandleError::TooManyRetains(h.id())));
        assert_eq!(t.entries[&h.id()].refs, u32::MAX);
        assert!(matches!(t.get(h), Ok(Value::I64(7))));
        // Every reference can still be released, and the last release kills the id.
        t.entries.get_mut(&h.id()).unwrap().refs = 2;
        t.release(h).unwrap();
        t.release(h).unwrap();
        assert_eq!(t.get(h).err(), Some(HandleError::NotLive(h.id())));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_full_table_refuses_and_changes_nothing() {
        let mut t = table();
        let a = t.insert_within(Value::I64(1), 2).unwrap();
        let b = t.insert_within(Value::I64(2), 2).unwrap();
        assert_eq!(
            t.insert_within(Value::I64(3), 2),
            Err(HandleError::Full),
            "the cap holds"
        );
        assert_eq!(t.live(), 2);
        assert!(matches!(t.get(a), Ok(Value::I64(1))));
        assert!(matches!(t.get(b), Ok(Value::I64(2))));
        // A refused insert took no id: the next one follows `b`.
        t.release(a).unwrap();
        let c = t.insert_within(Value::I64(3), 2).unwrap();
        assert_eq!(c.id(), b.id() + 1);
    }

    #[test]
    fn ids_of_one_table_are_consecutive_within_a_block_and_unique_across_blocks() {
        let mut t = table();
        let mut u = table();
        let mut seen = std::collections::HashSet::new();
        let mut last = 0;
        for i in 0..3 * ID_BLOCK {
            let h = t.insert(Value::I64(i as i64)).unwrap();
            let other = u.insert(Value::I64(-1)).unwrap();
            assert!(seen.insert(h.id()) && seen.insert(other.id()));
            assert!(h.id() > last, "ids of one table increase");
            last = h.id();
            assert_eq!(u.get(h).err(), Some(HandleError::NotLive(h.id())));
            assert_eq!(t.get(other).err(), Some(HandleError::NotLive(other.id())));
            u.release(other).unwrap();
        }
        assert_eq!(t.live(), 3 * ID_BLOCK as usize);
        assert_eq!(u.live(), 0);
    }

    #[test]
    fn the_table_shrinks_after_a_burst() {
        let mut t = table();
        let hs: Vec<Handle> = (0..10_000)
            .map(|i| t.insert(Value::I64(i)).unwrap())
            .collect();
        let big = t.entries.capacity();
        for h in &hs[1..] {
            t.release(*h).unwrap();
        }
        assert!(
            t.entries.capacity() <= 64,
            "{} of {big}",
            t.entries.capacity()
        );
        assert!(matches!(t.get(hs[0]), Ok(Value::I64(0))));
    }

    #[test]
    fn the_hash_spreads_sequential_ids() {
        // Bucket bits (low) and tag bits (top 7) of 4096 consecutive ids both take many values.
        let hash = |id: u64| IdHash.hash_one(id);
        let low: std::collections::HashSet<u64> = (1..=4096).map(|i| hash(i) & 1023).collect();
        let top: std::collections::HashSet<u64> = (1..=4096).map(|i| hash(i) >> 57).collect();
        assert!(low.len() > 600, "{}", low.len());
        assert_eq!(top.len(), 128);
    }
}
