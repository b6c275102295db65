//! Process-wide concerns: the one-time setup at the first VM, the two fences of the gate's
//! destroy hand-over, `fork()` handlers, and the memory checks for allocations whose size the
//! caller chooses.
//!
//! Fork: the handlers take every lock of the library (and stdout's, which `print` uses) before
//! `fork()` and let go of them after it, in the parent and in the child, so a child never
//! inherits a lock held by a thread that does not exist in it. A VM that another parent thread
//! was inside a call on stays owned by that (absent) thread in the child: unusable there
//! (`STOFFEL_ERROR_REENTRANCY`), and destroying it there frees nothing.

use std::cell::UnsafeCell;
use std::io::StdoutLock;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering, compiler_fence, fence};

use super::gate::{self, GateLocks};
use super::strings::{self, StringLocks};

/// Whether the light fence may be a compiler fence: the heavy one is `membarrier`.
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

/// Setup: 0 not started, 1 under way, 2 done.
static SETUP: AtomicU8 = AtomicU8::new(0);
/// The process that started the setup (to tell a child forked in the middle of it).
static SETUP_PID: AtomicU32 = AtomicU32::new(0);

/// Registers the process for `membarrier` and installs the fork handlers, once, before any VM
/// exists: when the library is loaded (see `SETUP_AT_LOAD`) and, should that not have run,
/// at the first `stoffel_create_vm`. Not a `std::sync::Once`: a child forked while another
/// thread was inside a `Once` would wait for that thread forever.
#[inline]
pub(crate) fn setup() {
    if SETUP.load(Ordering::Acquire) != 2 {
        setup_now();
    }
}

#[cold]
#[inline(never)]
fn setup_now() {
    loop {
        match SETUP.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                SETUP_PID.store(std::process::id(), Ordering::Relaxed);
                ASYMMETRIC.store(register_membarrier(), Ordering::Relaxed);
                register_fork_handlers();
                SETUP.store(2, Ordering::Release);
                return;
            }
            Err(2) => return,
            // Under way on another thread: wait for it (every VM must see the same
            // `ASYMMETRIC`), unless that thread is in the parent of this forked process.
            Err(_) => {
                if SETUP_PID.load(Ordering::Relaxed) != std::process::id() {
                    let _ = SETUP.compare_exchange(1, 0, Ordering::Relaxed, Ordering::Relaxed);
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// Runs the setup when the library is loaded, before any thread can call it.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static SETUP_AT_LOAD: extern "C" fn() = setup_at_load;

#[cfg(target_os = "linux")]
extern "C" fn setup_at_load() {
    let _ = catch_unwind(setup);
}

/// The cheap half of the gate's store/load pair (see `gate::release`): between a store and a
/// load on the thread releasing a VM, on every call.
#[inline(always)]
pub(crate) fn light_fence() {
    if ASYMMETRIC.load(Ordering::Relaxed) {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The expensive half (a `membarrier`: every running thread of the process executes a full
/// memory barrier), for `stoffel_destroy_vm` of a VM in use by another thread. Returns false
/// if the barrier failed (the caller must then wait for the other thread).
pub(crate) fn heavy_fence() -> bool {
    fence(Ordering::SeqCst);
    if !ASYMMETRIC.load(Ordering::Relaxed) {
        return true;
    }
    let ok = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    fence(Ordering::SeqCst);
    ok
}

#[cfg(target_os = "linux")]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
#[cfg(target_os = "linux")]
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

#[cfg(target_os = "linux")]
fn membarrier(command: libc::c_int) -> bool {
    // SAFETY: membarrier(2) takes a command and two integer arguments and touches no memory
    // of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, command, 0, 0) == 0 }
}

#[cfg(target_os = "linux")]
fn register_membarrier() -> bool {
    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
        && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
}

#[cfg(not(target_os = "linux"))]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: i32 = 0;

#[cfg(not(target_os = "linux"))]
fn membarrier(_command: i32) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn register_membarrier() -> bool {
    false
}

/// Everything held across `fork()`.
struct Held {
    _stdout: StdoutLock<'static>,
    _strings: StringLocks,
    _gate: GateLocks,
}

struct HeldSlot(UnsafeCell<Option<Held>>);

// SAFETY: touched only by the fork handlers, which the C library runs on the forking thread,
// one `fork()` at a time (glibc holds its atfork lock from the prepare handlers until the
// parent's or child's handlers have run).
unsafe impl Sync for HeldSlot {}

static HELD: HeldSlot = HeldSlot(UnsafeCell::new(None));

#[cfg(unix)]
fn register_fork_handlers() {
    // SAFETY: three `extern "C"` functions of this library that never unwind.
    unsafe {
        libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
    }
}

#[cfg(not(unix))]
fn register_fork_handlers() {}

/// Takes the locks: stdout's first (a host thread may hold it while calling the API), then
/// the strings' and the gate's (no code path holds one of those while taking another).
extern "C" fn before_fork() {
    let _ = catch_unwind(|| {
        let held = Held {
            _stdout: std::io::stdout().lock(),
            _strings: strings::fork_lock(),
            _gate: gate::fork_locks(),
        };
        // SAFETY: see `HeldSlot`.
        unsafe { *HELD.0.get() = Some(held) };
    });
}

/// Lets go of them: in the parent, and in the child (where the forking thread, the one that
/// took them, is the only thread).
extern "C" fn after_fork() {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see `HeldSlot`.
        drop(unsafe { (*HELD.0.get()).take() });
    }));
}

/// Whether the allocator has room for a new VM, checked before `stoffel_create_vm` builds
/// one: a VM takes under 1 KiB when created, in some 8 allocations of at most 0.5 KiB (its
/// builtins' names are shared by every VM), any of which would abort the process if it
/// failed. The check allocates 4 pieces of 2 KiB (the room of about ten VMs, in pieces larger
/// than any of those) and frees them again; it was 16 pieces when a VM took 4 KiB in 60
/// allocations, and each piece costs a `malloc` and a `free` on every creation. Pieces, not
/// one block: after many VMs come and go, the free memory is in pieces too, which serve a
/// new VM as well. Only a check: another thread may take the memory in between.
pub(crate) fn room_for_vm() -> bool {
    const PIECES: usize = 4;
    const PIECE: usize = 2048;
    let mut held: [Vec<u8>; PIECES] = std::array::from_fn(|_| Vec::new());
    for piece in &mut held {
        if piece.try_reserve_exact(PIECE).is_err() {
            return false;
        }
        // Keeps the allocation from being optimised away.
        std::hint::black_box(piece.as_ptr());
    }
    true
}

/// Whether `bytes` can be allocated right now: allocates them and frees them again. Only a
/// check: another thread may take the memory in between.
pub(crate) fn room_for(bytes: usize) -> bool {
    let mut probe: Vec<u8> = Vec::new();
    let ok = probe.try_reserve_exact(bytes).is_ok();
    // Keeps the allocation from being optimised away.
    std::hint::black_box(probe.as_ptr());
    ok
}

/// The calling thread's stack: its lowest address and its end.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn thread_stack() -> Option<(usize, usize)> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut base: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` is initialised by pthread_getattr_np (checked) before it is read, and
    // destroyed after; `base` and `size` are plain out-parameters.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let found = libc::pthread_attr_getstack(attr.as_ptr(), &mut base, &mut size) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        found.then(|| (base as usize, (base as usize).saturating_add(size)))
    }
}

/// Not known on this platform: no position is on it.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn thread_stack() -> Option<(usize, usize)> {
    None
}
