//! Shells: the free list, and slabs of new ones (see [`super::CVm`]).

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use super::CVm;

/// Empty shells, and where new ones come from.
pub(super) struct Shells {
    /// Addresses of empty shells. Its capacity is kept at least `total`, so that putting a
    /// shell back (after a destroy) never allocates.
    free: Vec<usize>,
    /// Shells made so far.
    total: usize,
    /// The slab new shells are taken from (the address of its first shell), and how many of
    /// its shells are not taken yet. Shells come in slabs of [`SLAB`], never freed: one
    /// allocation per shell, made between a VM's allocations and kept for good, would leave
    /// the memory of destroyed VMs in small pieces.
    slab: usize,
    slab_left: usize,
    /// The address of every slab (they are never freed; listed so that leak checkers see
    /// them as reachable).
    slabs: Vec<usize>,
}

/// Shells per slab.
const SLAB: usize = 64;

pub(super) fn shells() -> MutexGuard<'static, Shells> {
    SHELLS.lock().unwrap_or_else(|p| p.into_inner())
}

static SHELLS: Mutex<Shells> = Mutex::new(Shells {
    free: Vec::new(),
    total: 0,
    slab: 0,
    slab_left: 0,
    slabs: Vec::new(),
});

/// Puts an empty shell (owned by nobody) on the free list. Never allocates: the list has room
/// for every shell.
pub(super) fn put_back(shell: &CVm) {
    shells().free.push(shell as *const CVm as usize);
}

/// A free shell, claimed for this thread.
pub(super) fn reuse_shell(me: u64) -> Option<&'static CVm> {
    let mut shells = shells();
    // A thread with a stale cached handle may hold a free shell for a moment (see `claim`):
    // skip those.
    let at = shells.free.iter().rposition(|&address| {
        // SAFETY: addresses on the free list are of shells, never freed.
        let shell = unsafe { &*(address as *const CVm) };
        shell
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })?;
    let address = shells.free.swap_remove(at);
    // SAFETY: as above.
    Some(unsafe { &*(address as *const CVm) })
}

/// A new shell, owned by this thread; `None` if memory for it cannot be had.
pub(super) fn new_shell(me: u64) -> Option<&'static CVm> {
    let mut shells = shells();
    let room = shells.total + 1 - shells.free.len();
    shells.free.try_reserve(room).ok()?;
    if shells.slab_left == 0 {
        shells.slabs.try_reserve(1).ok()?;
        let layout = std::alloc::Layout::array::<CVm>(SLAB).ok()?;
        // SAFETY: the layout is not zero-sized.
        let slab = unsafe { std::alloc::alloc(layout) };
        if slab.is_null() {
            return None;
        }
        shells.slab = slab as usize;
        shells.slab_left = SLAB;
        shells.slabs.push(slab as usize);
    }
    // SAFETY: the slab has room for `SLAB` shells and `slab_left` of them, at the end, are
    // not taken yet; the one taken is written before it is used, and never freed.
    let shell = unsafe {
        let at = (shells.slab as *mut CVm).add(SLAB - shells.slab_left);
        at.write(CVm::empty(me));
        &*at
    };
    shells.slab_left -= 1;
    shells.total += 1;
    Some(shell)
}
