//! The limits a host puts on a VM, and how each one is enforced.
//!
//! Three limits turn runaway code into a clean runtime error that leaves the VM usable:
//!
//! - **Instructions** ([`Fuel`]): a top-level execution gets a budget; the driver hands the
//!   interpreter slices of it ([`Fuel::slice`]) and charges what each step ran. Nested
//!   executions started by host functions draw from the same budget.
//! - **Call depth**: frames live at once, across nested executions ([`Limits::check_depth`]).
//! - **Memory**: heap bytes plus interpreter stacks (the register stack past its fixed
//!   4096-register window, frames, pending arguments), as the heap's byte meter counts them.
//!   Every growth is admitted *when it happens*, not after a step, so usage passes the limit
//!   by at most one allocation (when an estimate is short), never by what a step could
//!   allocate. An allocation the
//!   limit refuses does not fail at once, because the heap still holds garbage the
//!   collector has not freed and the collector only runs between steps. The protocol,
//!   decided here and nowhere else:
//!   1. the interpreter asks [`Limits::admit`] (a fixed size) or [`Limits::room`] (growth,
//!      sized to what is left) before it allocates; a refusal records the request's size
//!      ([`Limits::refuse`]);
//!   2. the interpreter ends its step *before* the refused instruction (uncharged) and
//!      reserves the refused size ([`Limits::take_refused`]);
//!   3. the driver settles the step ([`settle_memory`]): a step that waits for memory gets a
//!      full collection, and fails only if live bytes plus the reservation still pass the
//!      limit;
//!   4. the next step retries the instruction once; a second refusal is the error.
//!
//!   The same holds for the interpreter's stacks: a `PUSHARG` or a call whose stack growth
//!   the limit refuses waits for one collection and retries; refused again (the live heap
//!   plus the stacks really are that big) it is the error. When an activation ends with an
//!   error, and when a top-level execution ends, the stacks give back what they grew past a
//!   small baseline, so a limit error leaves the VM as usable as before. An activation's
//!   *first* frame is admitted the same way by the driver (collect once, retry once).
//!
//!   Growth whose size a program controls also uses fallible reservation (`try_reserve`):
//!   when the system refuses memory, with or without a limit, the instruction waits for a
//!   collection and retries once like a refusal, then fails with an "out of memory" error
//!   that counts as a limit error. It never aborts the process.
//!
//! Re-entry (host functions executing code on the VM that called them) has two bounds:
//! [`MAX_REENTRY`] executions at once, and [`STACK_RESERVE`] bytes of native stack left
//! ([`check_stack`]) for each execution that starts.
//!
//! This module knows nothing of the interpreter or the heap: it works on byte counts and
//! returns [`Exceeded`], which the interpreter turns into its runtime error kinds.

use std::cell::Cell;

/// Frames that may be live at once unless the host sets another depth.
pub const DEFAULT_MAX_DEPTH: usize = 10_000;

/// Levels of host functions re-entering the same VM (a host function that executes code
/// that calls a host function that executes code, …): at most this many executions run on
/// one VM at once. A second bound beside [`STACK_RESERVE`], which comes first on threads
/// with small stacks.
///
/// Each level costs native stack. Measured on x86-64 Linux: about 0.9 KiB per level for a
/// Rust host function that calls [`Vm::execute`](crate::Vm::execute) (release build; 1.2
/// KiB unoptimised) and about 1.9 KiB for a C callback that calls `stoffel_execute` through
/// the C library, plus what the host function's own frames hold, plus about 3 KiB once for
/// the top-level execution. So 200 levels take about 180 KiB (Rust) or 380 KiB (C), and a
/// thread with a 128 KiB stack allows about 100 Rust or 48 C levels before
/// [`STACK_RESERVE`] refuses the next one.
pub const MAX_REENTRY: u32 = 200;

/// Bytes of native stack that must be left on the calling thread for an execution to start
/// (any execution or heap call on a VM, the outermost one included); with less, the call is
/// refused with [`ApiError::StackExhausted`](crate::ApiError::StackExhausted), a limit
/// error, and the VM stays usable.
///
/// The reserve covers the execution's own frames (the interpreter, builtins, the collector,
/// error messages: under 8 KiB) with room for the frames of the host functions it calls
/// until they re-enter (the next check) or return. A host function that needs more than
/// about 24 KiB of stack for itself should not be re-entered near the end of a small stack.
/// The stack left is read from the thread's real stack bounds (the `stacker` crate); where
/// they cannot be read, only [`MAX_REENTRY`] applies.
pub const STACK_RESERVE: usize = 32 * 1024;

/// Whether the calling thread has [`STACK_RESERVE`] bytes of stack left: `Err(left)` if not.
///
/// Every execution and heap call asks, so the common case is a few instructions: the stack
/// left is the current stack position minus the thread's stack bound, both cached per thread
/// ([`KnownStack`]). Only a position outside the part of the stack already confirmed by
/// `stacker` (the first call on a thread, a call made higher up the stack than any before it,
/// or one running on another stack the host switched to) asks `stacker`, which reads the
/// thread's real stack bounds.
#[inline]
pub(crate) fn check_stack() -> Result<(), usize> {
    let here = stack_position();
    let known = KNOWN_STACK.get();
    let left = if here > known.low && here <= known.high {
        Some(here - known.low)
    } else {
        confirm_stack(here)
    };
    match left {
        Some(left) if left < STACK_RESERVE => Err(left),
        _ => Ok(()),
    }
}

/// The part of the calling thread's stack whose bound `stacker` confirmed: positions from
/// `low` (the stack's end, where it overflows) up to `high` (the highest position a check
/// confirmed) are on that stack, so the stack left at such a position is `position - low`.
/// Nothing else could be there (mappings do not overlap), so a thread that switches to
/// another stack (a coroutine, `stacker::grow`) misses and asks again. Empty at first
/// (`low` = `high` = 0); per thread, so a new thread never sees another's bounds.
#[derive(Clone, Copy)]
struct KnownStack {
    low: usize,
    high: usize,
}

thread_local! {
    static KNOWN_STACK: Cell<KnownStack> = const { Cell::new(KnownStack { low: 0, high: 0 }) };
}

/// An address in the caller's frame: the stack position, within a few hundred bytes (the
/// reserve is 32 KiB).
#[inline(always)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The slow path of [`check_stack`]: asks `stacker` for the stack left at `here` and widens
/// (or, on another stack, replaces) the confirmed part. `None` where the bounds cannot be
/// read (then only [`MAX_REENTRY`] applies, and every call asks again).
#[cold]
#[inline(never)]
fn confirm_stack(here: usize) -> Option<usize> {
    // `stacker` measures from its own frame, a fixed distance below this one: the bound is
    // taken from this frame's position (the same on every call, so repeated confirmations of
    // one stack agree on `low`), a little above the real one.
    let mine = stack_position();
    let left = stacker::remaining_stack()?;
    let low = mine.saturating_sub(left);
    if low == 0 || here <= low {
        return Some(left);
    }
    let known = KNOWN_STACK.get();
    let high = if known.low == low {
        known.high.max(here)
    } else {
        here
    };
    KNOWN_STACK.set(KnownStack { low, high });
    Some(here - low)
}

/// Instructions per interpreter step: the most that run between two chances to collect.
pub(crate) const STEP_INSTRUCTIONS: u32 = 4096;

/// A limit that was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// The instruction budget (the limit) ran out.
    Instructions(u64),
    /// Too many frames (the limit).
    Depth(usize),
    /// The memory limit, in bytes.
    Memory(usize),
}

/// A VM's limits.
#[derive(Debug)]
pub(crate) struct Limits {
    /// Instructions per top-level execution (`None`: unlimited).
    pub instructions: Option<u64>,
    /// Frames that may be live at once (at least 1).
    pub max_depth: usize,
    /// Bytes of heap values plus interpreter stacks (`None`: unlimited).
    pub memory: Option<usize>,
    /// The size of the last allocation [`Limits::admit`] refused.
    refused: Cell<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            instructions: None,
            max_depth: DEFAULT_MAX_DEPTH,
            memory: None,
            refused: Cell::new(0),
        }
    }
}

impl Limits {
    /// Fails if one more frame would pass the depth limit.
    #[inline(always)]
    pub fn check_depth(&self, frames: usize) -> Result<(), Exceeded> {
        if frames >= self.max_depth {
            Err(Exceeded::Depth(self.max_depth))
        } else {
            Ok(())
        }
    }

    /// Step 1 of the memory protocol: may `request` more bytes be allocated on top of
    /// `in_use`? A refusal remembers `request` for [`Limits::take_refused`].
    #[inline]
    pub fn admit(&self, in_use: usize, request: usize) -> Result<(), Exceeded> {
        match self.memory {
            Some(limit) if in_use.saturating_add(request) > limit => {
                self.refused.set(request);
                Err(Exceeded::Memory(limit))
            }
            _ => Ok(()),
        }
    }

    /// Step 1 for growth: how many more bytes may be allocated on top of `in_use`
    /// (`usize::MAX` without a limit). A caller whose growth does not fit calls
    /// [`Limits::refuse`].
    #[inline]
    pub fn room(&self, in_use: usize) -> usize {
        match self.memory {
            Some(limit) => limit.saturating_sub(in_use),
            None => usize::MAX,
        }
    }

    /// Records a refused request of `request` bytes (growth that did not fit in
    /// [`Limits::room`]) and returns the limit error.
    pub fn refuse(&self, request: usize) -> Exceeded {
        self.refused.set(request);
        Exceeded::Memory(self.memory.unwrap_or(usize::MAX))
    }

    /// Step 2: the size of the refused request, to reserve while the step waits for the
    /// collector (at least 1, so a waiting step is never mistaken for a running one).
    pub fn take_refused(&self) -> usize {
        self.refused.replace(0).max(1)
    }
}

/// Step 3 of the memory protocol, after a step: `in_use` measures `vm`'s heap plus stacks
/// plus any reservation; `collect_all` runs a full collection. A step that is `waiting` for
/// memory (one of its instructions was refused) always gets a collection before its retry;
/// otherwise one runs only when usage is over `limit`. Fails if usage is over `limit` even
/// after collecting.
pub(crate) fn settle_memory<V>(
    limit: Option<usize>,
    waiting: bool,
    vm: &mut V,
    in_use: impl Fn(&V) -> usize,
    collect_all: impl FnOnce(&mut V),
) -> Result<(), Exceeded> {
    let over = |vm: &V| limit.is_some_and(|limit| in_use(vm) > limit);
    if !waiting && !over(vm) {
        return Ok(());
    }
    collect_all(vm);
    match limit {
        Some(limit) if over(vm) => Err(Exceeded::Memory(limit)),
        _ => Ok(()),
    }
}

/// The instruction budget of the running top-level execution.
///
/// A time slice ([`Fuel::begin_slice`]) holds back what the limit allows beyond the slice
/// (`held`), so the step loop sees the slice's end as the budget running out, with no check
/// of its own on the hot path. Only then (the cold path, [`Fuel::ran_out`]) does it matter
/// whether a slice runs: the sliced execution suspends; a nested execution (a host function's,
/// inside the slice) is never suspended and borrows the held units, and gives what it did not
/// use back when it ends ([`Fuel::give_back`]), so the sliced execution suspends at its next
/// instruction.
#[derive(Debug)]
pub(crate) struct Fuel {
    left: u64,
    limit: Option<u64>,
    /// Units of the limit held back beyond the slice (0 when no slice runs).
    held: u64,
    /// A slice runs.
    sliced: bool,
    /// The slice is used up and a nested execution runs on the held units.
    lent: bool,
}

impl Default for Fuel {
    fn default() -> Self {
        Fuel {
            left: u64::MAX,
            limit: None,
            held: 0,
            sliced: false,
            lent: false,
        }
    }
}

/// What the budget running out means ([`Fuel::ran_out`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutOfFuel {
    /// The instruction limit is spent: the execution fails.
    Exhausted,
    /// The slice of the sliced execution is spent: it suspends.
    Suspend,
    /// The slice is spent inside a nested execution, which runs on (see [`Fuel`]).
    Lent,
}

impl Fuel {
    /// A fresh budget for a top-level execution (no slice).
    pub fn refill(&mut self, limit: Option<u64>) {
        *self = Fuel {
            left: limit.unwrap_or(u64::MAX),
            limit,
            ..Fuel::default()
        };
    }

    /// Starts a slice of `slice` units out of `total` units the limit still allows (counted
    /// against `limit`, the limit the execution started with).
    pub fn begin_slice(&mut self, limit: Option<u64>, total: u64, slice: u64) {
        let left = slice.min(total);
        *self = Fuel {
            left,
            limit,
            held: total - left,
            sliced: true,
            lent: false,
        };
    }

    /// Ends a slice at its suspension: the units the limit still allows and the limit, for
    /// the next [`Fuel::begin_slice`].
    pub fn suspend(&mut self) -> (Option<u64>, u64) {
        let kept = (self.limit, self.total());
        self.refill(self.limit);
        kept
    }

    /// How many instructions the next step may run: at most [`STEP_INSTRUCTIONS`] (one when
    /// `single_step`), never more than is left. Fails when nothing is left.
    pub fn slice(&self, single_step: bool) -> Result<u32, Exceeded> {
        if self.left == 0 {
            return Err(Exceeded::Instructions(self.limit.unwrap_or(u64::MAX)));
        }
        let most = if single_step { 1 } else { STEP_INSTRUCTIONS };
        Ok(most.min(self.left.min(u64::from(u32::MAX)) as u32))
    }

    /// [`Fuel::slice`] failed: what that means, for the sliced execution itself (`top`) or a
    /// nested one. A nested execution borrows the held units.
    #[cold]
    pub fn ran_out(&mut self, top: bool) -> OutOfFuel {
        if !self.sliced || self.held == 0 {
            OutOfFuel::Exhausted
        } else if top {
            OutOfFuel::Suspend
        } else {
            self.left = std::mem::take(&mut self.held);
            self.lent = true;
            OutOfFuel::Lent
        }
    }

    /// A nested execution ended: if it ran on borrowed units, the rest is held again, so the
    /// execution below finds its slice spent.
    #[inline]
    pub fn give_back(&mut self) {
        if self.lent {
            self.held = std::mem::take(&mut self.left);
            self.lent = false;
        }
    }

    /// The units the limit still allows, held ones included (`u64::MAX` without a limit): what
    /// a builtin's work may use.
    pub fn total(&self) -> u64 {
        self.left.saturating_add(self.held)
    }

    /// Charges `used` units: instructions, plus the extra units of lookups charged in
    /// proportion to their work (which may pass the last slice: the rest comes out of the
    /// held units; the budget saturates at 0).
    #[inline]
    pub fn burn(&mut self, used: u32) {
        match self.left.checked_sub(u64::from(used)) {
            Some(rest) => self.left = rest,
            None => self.overdraw(used),
        }
    }

    #[cold]
    fn overdraw(&mut self, used: u32) {
        let beyond = u64::from(used) - self.left;
        self.left = 0;
        self.held = self.held.saturating_sub(beyond);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_slices_never_pass_the_budget() {
        let mut fuel = Fuel::default();
        fuel.refill(Some(5000));
        assert_eq!(fuel.slice(false), Ok(STEP_INSTRUCTIONS));
        assert_eq!(fuel.slice(true), Ok(1));
        fuel.burn(STEP_INSTRUCTIONS);
        assert_eq!(fuel.slice(false), Ok(5000 - STEP_INSTRUCTIONS));
        fuel.burn(5000 - STEP_INSTRUCTIONS);
        assert_eq!(fuel.slice(false), Err(Exceeded::Instructions(5000)));
        fuel.refill(None);
        assert_eq!(fuel.slice(false), Ok(STEP_INSTRUCTIONS));
    }

    #[test]
    fn slices_hold_back_the_rest_of_the_limit() {
        let mut fuel = Fuel::default();
        fuel.begin_slice(Some(100), 100, 10);
        assert_eq!(fuel.slice(false), Ok(10));
        fuel.burn(10);
        assert!(fuel.slice(false).is_err());
        assert_eq!(fuel.total(), 90);
        // A nested execution borrows the rest, then gives back what it left.
        assert_eq!(fuel.ran_out(false), OutOfFuel::Lent);
        assert_eq!(fuel.slice(false), Ok(90));
        fuel.burn(30);
        fuel.give_back();
        assert!(fuel.slice(false).is_err());
        assert_eq!(fuel.ran_out(true), OutOfFuel::Suspend);
        assert_eq!(fuel.suspend(), (Some(100), 60));
        // The last slice may be cut short by the limit; then the limit is the error.
        fuel.begin_slice(Some(100), 60, 1000);
        assert_eq!(fuel.slice(false), Ok(60));
        fuel.burn(70);
        assert_eq!(fuel.total(), 0);
        assert_eq!(fuel.ran_out(true), OutOfFuel::Exhausted);
        // Without a slice, running out is always the limit.
        fuel.refill(Some(5));
        fuel.burn(5);
        assert_eq!(fuel.ran_out(true), OutOfFuel::Exhausted);
        // Giving back without a loan changes nothing.
        fuel.begin_slice(None, u64::MAX, 7);
        fuel.give_back();
        assert_eq!(fuel.slice(false), Ok(7));
    }

    #[test]
    fn memory_protocol_collects_before_failing() {
        let limits = Limits {
            memory: Some(100),
            ..Limits::default()
        };
        assert_eq!(limits.admit(60, 40), Ok(()));
        assert_eq!(limits.admit(60, 41), Err(Exceeded::Memory(100)));
        assert_eq!(limits.take_refused(), 41);
        assert_eq!(limits.take_refused(), 1, "a reservation is never 0");
        // Growth: the room left, and a refusal of what did not fit.
        assert_eq!(limits.room(30), 70);
        assert_eq!(limits.room(130), 0);
        assert_eq!(limits.refuse(80), Exceeded::Memory(100));
        assert_eq!(limits.take_refused(), 80);
        assert_eq!(Limits::default().room(usize::MAX), usize::MAX);

        // (bytes in use, collections so far, bytes a collection leaves)
        let settle = |heap: &mut (usize, u32, usize)| {
            settle_memory(
                limits.memory,
                false,
                heap,
                |h| h.0,
                |h| {
                    h.1 += 1;
                    h.0 = h.2;
                },
            )
        };
        // Over the limit, but the collection frees enough: no error, one collection.
        let mut heap = (150, 0, 90);
        assert_eq!(settle(&mut heap), Ok(()));
        assert_eq!(heap.1, 1);
        // Under the limit: no collection at all.
        assert_eq!(settle(&mut heap), Ok(()));
        assert_eq!(heap.1, 1);
        // Still over after collecting: the error.
        let mut heap = (150, 0, 120);
        assert_eq!(settle(&mut heap), Err(Exceeded::Memory(100)));
        assert_eq!(heap.1, 1);
        // No limit: nothing to do.
        assert_eq!(
            settle_memory(None, false, &mut heap, |h| h.0, |_| unreachable!()),
            Ok(())
        );
        // A step waiting for memory (refused, or the system refused) always gets a
        // collection first, with or without a limit.
        let mut heap = (50, 0, 10);
        assert_eq!(
            settle_memory(None, true, &mut heap, |h| h.0, |h| h.1 += 1),
            Ok(())
        );
        assert_eq!(heap.1, 1);
        assert_eq!(
            settle_memory(Some(100), true, &mut heap, |h| h.0, |h| h.1 += 1),
            Ok(())
        );
        assert_eq!(heap.1, 2);
    }

    /// The per-thread cache of the stack bound answers as `stacker` does: on a new thread,
    /// on a small stack the thread switched to after its own stack was cached, and back.
    #[test]
    fn stack_checks_follow_the_stack_in_use() {
        assert_eq!(check_stack(), Ok(()));
        let on_small = stacker::grow(16 * 1024, check_stack);
        let left = on_small.expect_err("a 16 KiB stack has less than the reserve left");
        assert!(left < 16 * 1024, "{left}");
        assert_eq!(check_stack(), Ok(()), "back on the thread's own stack");
        let small_thread = std::thread::Builder::new()
            .stack_size(24 * 1024)
            .spawn(check_stack)
            .unwrap()
            .join()
            .unwrap();
        assert!(small_thread.is_err(), "{small_thread:?}");
    }

    #[test]
    fn depth_counts_frames_already_live() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        assert_eq!(limits.check_depth(2), Ok(()));
        assert_eq!(limits.check_depth(3), Err(Exceeded::Depth(3)));
    }
}
