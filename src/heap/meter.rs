//! The byte meter: what the VM's heap values and interpreter stacks hold, for the memory
//! limit, the GC statistics and collector pacing; and fallible growth of buffers.
//!
//! Every heap value carries an [`Account`]: it adds the value's estimated size to the VM's
//! [`Meter`] when created or grown and subtracts it when the collector drops the value. The
//! interpreter reports its stacks' capacity ([`Meter::set_stack_bytes`]). The memory limit
//! compares [`Meter::in_use`] (both) with its limit.
//!
//! gc-arena paces collection by the *number* of `Gc` allocations and cannot see memory held
//! outside `Gc` boxes (a long string's bytes, an array's element buffer, a field map). The
//! meter therefore also wakes the collector ([`Meter::pace`]): after buffers worth half the
//! heap (at least [`PACE_MIN_BYTES`]) were allocated since it last did, it adds allocation
//! debt equal to one collection cycle's worth of `Gc`s, so big strings and arrays make the
//! collector run sooner without making it run more than once per such burst.
//!
//! Growth whose size a program controls goes through [`grow_capacity`] and `try_reserve`:
//! it fails with an [`AllocError`] when the memory limit's room is too small or the system
//! refuses, never with an abort.

use std::cell::Cell;
use std::rc::Rc;

use gc_arena::metrics::Metrics;
use gc_arena::static_collect;

/// Fixed per-allocation overhead we charge for a `Gc` box (header plus allocator slack).
pub(crate) const GC_OVERHEAD: usize = 32;

/// Buffer bytes allocated between two wake-ups of the collector, at least (see
/// [`Meter::pace`]).
const PACE_MIN_BYTES: usize = 8 << 20;

/// Why memory could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// The memory limit leaves less room than this many bytes, which the allocation needs.
    Limit(usize),
    /// The system refused an allocation of this many bytes.
    System(usize),
}

#[derive(Default)]
struct MeterState {
    /// Bytes of live (not yet collected) heap values.
    heap: Cell<usize>,
    /// Bytes of the interpreter's stacks (their capacity).
    stacks: Cell<usize>,
    /// Bytes of the handle table (its capacity), as the VM reports them.
    handles: Cell<usize>,
    /// Buffer bytes allocated since the collector was last woken for them.
    paced: Cell<usize>,
    /// `paced` at which to wake it next (0: [`PACE_MIN_BYTES`]).
    pace_at: Cell<usize>,
    /// The arena's metrics, whose allocation debt [`Meter::pace`] raises.
    metrics: Option<Metrics>,
}

/// Estimated bytes of live heap values and of the interpreter stacks, shared by a VM and
/// every value's [`Account`].
#[derive(Clone, Default)]
pub struct Meter(Rc<MeterState>);

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("heap", &self.bytes())
            .field("stacks", &self.stack_bytes())
            .finish()
    }
}

impl Meter {
    /// A meter that wakes the collector of the arena with these `metrics` (see
    /// [`Meter::pace`]).
    pub fn new(metrics: Metrics) -> Meter {
        Meter(Rc::new(MeterState {
            metrics: Some(metrics),
            ..MeterState::default()
        }))
    }

    /// Bytes currently accounted to live heap values.
    pub fn bytes(&self) -> usize {
        self.0.heap.get()
    }

    /// Bytes the interpreter's stacks hold, as last reported.
    pub fn stack_bytes(&self) -> usize {
        self.0.stacks.get()
    }

    /// Re-states the interpreter stacks' bytes.
    #[inline]
    pub fn set_stack_bytes(&self, bytes: usize) {
        self.0.stacks.set(bytes);
    }

    /// Adds `bytes` to the stacks' bytes (a stack grew).
    #[inline]
    pub fn add_stack_bytes(&self, bytes: usize) {
        self.0.stacks.set(self.0.stacks.get().saturating_add(bytes));
    }

    /// Re-states the handle table's bytes (its capacity), after it grew or shrank. Growth
    /// the program drives should be admitted first: `Limits::room(meter.in_use())` is what
    /// may be added.
    #[inline]
    pub fn set_handle_bytes(&self, bytes: usize) {
        self.0.handles.set(bytes);
    }

    /// The handle table's bytes, as last reported.
    #[allow(dead_code)]
    pub fn handle_bytes(&self) -> usize {
        self.0.handles.get()
    }

    /// Heap plus stacks plus the handle table: what the memory limit compares.
    #[inline]
    pub fn in_use(&self) -> usize {
        self.0
            .heap
            .get()
            .saturating_add(self.0.stacks.get())
            .saturating_add(self.0.handles.get())
    }

    pub(super) fn add(&self, n: usize) {
        self.0.heap.set(self.0.heap.get().saturating_add(n));
    }

    pub(super) fn sub(&self, n: usize) {
        self.0.heap.set(self.0.heap.get().saturating_sub(n));
    }

    /// Tells collector pacing that `bytes` of buffers outside `Gc` boxes were allocated.
    /// Once buffers worth half the heap (at least [`PACE_MIN_BYTES`]) have been allocated
    /// since the last wake-up, adds one cycle's worth of allocation debt (the live `Gc`
    /// count plus gc-arena's minimum sleep): enough to start a collection and see it
    /// through, bounded, so one huge allocation cannot keep the collector cycling.
    #[inline]
    pub fn pace(&self, bytes: usize) {
        let paced = self.0.paced.get().saturating_add(bytes);
        let at = self.0.pace_at.get().max(PACE_MIN_BYTES);
        if paced < at {
            self.0.paced.set(paced);
        } else {
            self.wake_collector();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_collector(&self) {
        self.0.paced.set(0);
        self.0.pace_at.set(self.bytes() / 2);
        if let Some(metrics) = &self.0.metrics {
            let min_sleep = gc_arena::metrics::Pacing::DEFAULT.min_sleep;
            metrics.adjust_debt((metrics.total_gc_count() + min_sleep) as f64);
        }
    }
}

/// One heap value's share of the [`Meter`]; returns it when dropped.
pub struct Account {
    bytes: Cell<usize>,
    meter: Meter,
}

static_collect!(Account);

impl Account {
    /// Charges `bytes` to `meter`.
    pub fn new(meter: &Meter, bytes: usize) -> Account {
        meter.add(bytes);
        Account {
            bytes: Cell::new(bytes),
            meter: meter.clone(),
        }
    }

    /// Re-states this value's size after it grew or shrank; returns the growth in bytes.
    /// Growth is buffer memory, so it also counts for collector pacing.
    pub fn resize(&self, bytes: usize) -> usize {
        let old = self.bytes.replace(bytes);
        if bytes > old {
            self.meter.add(bytes - old);
            self.meter.pace(bytes - old);
            bytes - old
        } else {
            self.meter.sub(old - bytes);
            0
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.meter.sub(self.bytes.get());
    }
}

/// The capacity to give a buffer of `cap` elements of `elem` bytes that must hold `need`:
/// double it (at least 4) when `room` (bytes the memory limit still allows) has space, else
/// as much as `room` allows, at least `need`. `Err` is the bytes needed when even `need`
/// does not fit. `free` elements are not counted against the limit (the register window).
pub fn grow_capacity(
    cap: usize,
    need: usize,
    elem: usize,
    free: usize,
    room: usize,
) -> Result<usize, usize> {
    if need <= cap {
        return Ok(cap);
    }
    let counted = |n: usize| n.saturating_sub(free).saturating_mul(elem.max(1));
    let needed = counted(need).saturating_sub(counted(cap));
    if needed > room {
        return Err(needed.max(1));
    }
    let preferred = need.max(cap.saturating_mul(2)).max(4);
    if counted(preferred).saturating_sub(counted(cap)) <= room {
        return Ok(preferred);
    }
    let affordable = cap
        .max(free)
        .saturating_add(room / elem.max(1))
        .min(preferred);
    Ok(affordable.max(need))
}

/// Reserves room for `vec` to hold `need` elements, with [`grow_capacity`]'s policy; returns
/// the bytes its buffer grew by.
#[inline]
pub fn reserve_vec<T>(vec: &mut Vec<T>, need: usize, room: usize) -> Result<usize, AllocError> {
    reserve_vec_with(vec, need, 0, room)
}

/// [`reserve_vec`] where the first `free` elements do not count against `room` (nor in the
/// bytes it returns).
#[inline]
pub fn reserve_vec_with<T>(
    vec: &mut Vec<T>,
    need: usize,
    free: usize,
    room: usize,
) -> Result<usize, AllocError> {
    if need <= vec.capacity() {
        return Ok(0);
    }
    grow_vec(vec, need, free, room)
}

#[cold]
#[inline(never)]
fn grow_vec<T>(
    vec: &mut Vec<T>,
    need: usize,
    free: usize,
    room: usize,
) -> Result<usize, AllocError> {
    let elem = std::mem::size_of::<T>();
    let cap = vec.capacity();
    let new_cap = grow_capacity(cap, need, elem, free, room).map_err(AllocError::Limit)?;
    if new_cap <= cap {
        return Ok(0);
    }
    vec.try_reserve_exact(new_cap - vec.len())
        .map_err(|_| AllocError::System((new_cap - cap).saturating_mul(elem)))?;
    let counted = |n: usize| n.saturating_sub(free).saturating_mul(elem);
    Ok(counted(vec.capacity()).saturating_sub(counted(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_doubles_when_there_is_room_and_stops_at_the_limit() {
        // Plenty of room: doubling (at least 4).
        assert_eq!(grow_capacity(0, 1, 16, 0, usize::MAX), Ok(4));
        assert_eq!(grow_capacity(8, 9, 16, 0, usize::MAX), Ok(16));
        assert_eq!(grow_capacity(8, 100, 16, 0, usize::MAX), Ok(100));
        assert_eq!(grow_capacity(8, 8, 16, 0, 0), Ok(8), "no growth needed");
        // Room for less than a doubling: as much as the room allows.
        assert_eq!(grow_capacity(8, 9, 16, 0, 4 * 16), Ok(12));
        assert_eq!(grow_capacity(8, 9, 16, 0, 16), Ok(9));
        // Not even the need fits: the bytes it needs.
        assert_eq!(grow_capacity(8, 10, 16, 0, 16), Err(32));
        // Free elements are not counted.
        assert_eq!(grow_capacity(0, 4096, 16, 4096, 0), Ok(4096));
        assert_eq!(grow_capacity(4096, 4097, 16, 4096, 0), Err(16));
        assert_eq!(grow_capacity(4096, 4097, 16, 4096, 160), Ok(4106));
        // Sizes past the address space: an error, never an overflow.
        assert_eq!(
            grow_capacity(1, usize::MAX, 16, 0, usize::MAX),
            Ok(usize::MAX)
        );
        let mut v: Vec<u64> = Vec::new();
        assert!(matches!(
            reserve_vec(&mut v, usize::MAX / 4, usize::MAX),
            Err(AllocError::System(_))
        ));
        assert_eq!(reserve_vec(&mut v, 3, usize::MAX), Ok(32));
        assert_eq!(v.capacity(), 4);
    }

    #[test]
    fn in_use_adds_heap_stacks_and_handles() {
        let meter = Meter::default();
        let _value = Account::new(&meter, 100);
        meter.set_stack_bytes(20);
        meter.add_stack_bytes(5);
        meter.set_handle_bytes(3);
        assert_eq!(
            (meter.bytes(), meter.stack_bytes(), meter.handle_bytes()),
            (100, 25, 3)
        );
        assert_eq!(meter.in_use(), 128);
    }

    #[test]
    fn pacing_wakes_the_collector_once_per_burst() {
        let meter = Meter::default();
        meter.pace(PACE_MIN_BYTES - 1);
        assert_eq!(meter.0.paced.get(), PACE_MIN_BYTES - 1);
        meter.pace(1);
        assert_eq!(meter.0.paced.get(), 0, "woken");
        let _big = Account::new(&meter, 64 << 20);
        meter.pace(PACE_MIN_BYTES);
        // The next wake-up waits for half the heap.
        assert_eq!(meter.0.paced.get(), 0);
        assert_eq!(meter.0.pace_at.get(), 32 << 20);
        meter.pace(16 << 20);
        assert_eq!(meter.0.paced.get(), 16 << 20);
    }
}
