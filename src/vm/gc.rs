//! Garbage collection: collector pacing, paying allocation debt between steps, full
//! collections and the figures hosts read ([`GcStats`]).
//!
//! The collector only runs outside `mutate`, so the driver calls [`Vm::collect_debt`] after
//! every step, and every API path that may allocate without stepping the interpreter calls
//! it once its result is safe (held by a handle, or converted out of the arena): a builtin
//! that finishes at once (executed by name or through the heap API), a host function, host
//! or executed by name, and a foreign object. A collection that finishes marking hands dead
//! foreign objects to [`Vm::finalize`](super::foreign).

use gc_arena::arena::CollectionPhase;

use super::Vm;
use super::foreign::dead_foreigns;

/// Collector pacing: gc-arena's defaults with the collector doing more work per allocated
/// byte (every work factor × 0.6) and sleeping a little longer between cycles (0.75 of the
/// remembered heap instead of 0.5). Measured on binary trees of depth 20 (a large live heap
/// plus garbage): peak RSS 1.21 GiB → 0.61 GiB at the same time (±0.3 s of 5.9 s); the
/// small-heap workloads did not change.
pub(super) const PACING: gc_arena::metrics::Pacing = {
    let d = gc_arena::metrics::Pacing::DEFAULT;
    gc_arena::metrics::Pacing {
        sleep_factor: 0.75,
        min_sleep: d.min_sleep,
        mark_factor: d.mark_factor * 0.6,
        trace_factor: d.trace_factor * 0.6,
        keep_factor: d.keep_factor * 0.6,
        drop_factor: d.drop_factor * 0.6,
        free_factor: d.free_factor * 0.6,
    }
};

/// Collector and heap figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcStats {
    /// Estimated bytes of live heap values (strings, objects, arrays, closures, …).
    pub heap_bytes: usize,
    /// Bytes of the interpreter's stacks.
    pub stack_bytes: usize,
    /// `Gc` allocations the collector tracks.
    pub gc_objects: usize,
    /// Live handles.
    pub live_handles: usize,
    /// Foreign objects whose data is still held (not yet finalized).
    pub foreign_objects: usize,
    /// Collection cycles completed (counted when marking finishes).
    pub collections: u64,
}

impl Vm {
    /// Pays the collector's allocation debt (incremental work), finalizing dead foreign objects.
    /// Everything the VM holds must be rooted (in the arena root or by a handle). Without
    /// debt this is one comparison, so the paths that may allocate call it unconditionally.
    #[inline]
    pub(super) fn collect_debt(&mut self) {
        if self.arena.metrics().allocation_debt() <= 0.0 {
            return;
        }
        self.pay_debt();
    }

    #[inline(never)]
    fn pay_debt(&mut self) {
        if self.arena.collection_phase() == CollectionPhase::Sweeping {
            self.arena.cycle_debt();
            return;
        }
        let dead = self
            .arena
            .mark_debt()
            .map(|marked| marked.finalize(|fc, root| dead_foreigns(fc, root.foreigns)));
        let Some(dead) = dead else { return };
        self.collections += 1;
        // Into sweeping now. Finalization edits the weak list, which makes it gray again, and
        // marking may have paid all the debt: either way the next call would otherwise find
        // this cycle still marking and finalize it (and count it) a second time.
        if let Some(marked) = self.arena.finish_marking() {
            marked.start_sweeping();
        }
        if !dead.is_empty() {
            self.shorten_sleep(dead.len());
        }
        self.arena.cycle_debt();
        self.finalize(dead);
    }

    /// Takes `dead` foreign objects, found dead by this cycle's finalization, out of the
    /// collector's next sleep.
    ///
    /// A dead foreign object was reachable through the weak list, so this cycle's sweep drops
    /// it but keeps its allocation (the weak reference needed it until finalization), and
    /// gc-arena counts it as *remembered*; the next cycle frees it. The sleep before the next
    /// cycle is `sleep_factor` × remembered, so garbage counted as remembered lengthens it: a
    /// host making and releasing foreign objects in a loop made each cycle about 7% longer
    /// than the last (0.75 sleep + the next sweep's share > 1), and heap and RSS grew
    /// without bound (measured: 1M objects made, 160 000 still held after 53 cycles).
    ///
    /// The excess sleep becomes debt now: the sweep does that much more work (fewer
    /// allocations happen during it), and what the sweep cannot absorb is carried into the
    /// next sleep (gc-arena keeps a cycle's unpaid debt), so the next cycle starts as if the
    /// dead objects had not been remembered. At most 0.75 units of work per dead foreign
    /// object, less than its allocation's own debt; the sweep stays incremental.
    fn shorten_sleep(&mut self, dead: usize) {
        // Live `Gc`s now: what the sweep remembers, or (before the sweep) an upper bound of
        // it, so the excess is at most what the dead objects added.
        let remembered = self.arena.metrics().total_gc_count();
        let sleep =
            |count: usize| (count as f64 * PACING.sleep_factor).max(PACING.min_sleep as f64);
        let excess = sleep(remembered) - sleep(remembered.saturating_sub(dead));
        self.arena.metrics().adjust_debt(excess);
    }

    /// Runs a whole collection now (finishing any cycle in progress first). Dropped
    /// [`Rooted`](crate::Rooted)s are released first, so what they held is collected.
    pub fn collect_all(&mut self) {
        if self.drops.has_pending() {
            self.release_dropped();
        }
        if self.arena.collection_phase() == CollectionPhase::Sweeping {
            self.arena.finish_cycle();
        }
        let dead = match self.arena.finish_marking() {
            Some(marked) => marked.finalize(|fc, root| dead_foreigns(fc, root.foreigns)),
            None => Vec::new(),
        };
        self.collections += 1;
        self.arena.finish_cycle();
        if !dead.is_empty() {
            // After the sweep: added before, its work would absorb the debt.
            self.shorten_sleep(dead.len());
        }
        self.finalize(dead);
    }

    /// Heap and collector figures.
    pub fn gc_stats(&self) -> GcStats {
        let (stack_bytes, live_handles) = self
            .arena
            .mutate(|_, root| (root.interp.stack_bytes(), root.handles.live()));
        GcStats {
            heap_bytes: self.rt.meter.bytes(),
            stack_bytes,
            gc_objects: self.arena.metrics().total_gc_count(),
            // Ids of dropped `Rooted`s are as good as released (at the next call).
            live_handles: live_handles.saturating_sub(self.drops.len()),
            foreign_objects: self.foreign_data.len(),
            collections: self.collections,
        }
    }
}
