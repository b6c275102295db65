//! Destruction: the hand-over between `stoffel_destroy_vm` and the thread that owns a VM
//! (see the module documentation of [`super`]), and the loop that destroys VMs, queued ones
//! included.

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use super::shells::put_back;
use super::{CVm, GATE, GateCache, left_by_jump, registry, resolve, stack_position, thread_token};
use crate::ffi::error::{
    STOFFEL_ERROR_INVALID_VM, STOFFEL_ERROR_REENTRANCY, STOFFEL_OK, drop_payload, set_thread_error,
};
use crate::ffi::process::{heavy_fence, light_fence};
use crate::ffi::types::VMHandle;

/// Lets go of a shell this thread owns (the outermost call on it has returned). If the shell
/// was doomed meanwhile (by `stoffel_destroy_vm` on another thread), destroys its VM first.
///
/// The hand-over with [`destroy_vm`] is a Dekker pair: here the store of the owner, then the
/// load of `doomed`; there the store of `doomed`, then the load of the owner (a claim).
/// Either side may see the other's store, never neither: the heavy fence there makes the
/// light one here (a compiler fence) enough.
#[inline(always)]
pub(super) fn release(cvm: &CVm) {
    cvm.owner.store(0, Ordering::Release);
    light_fence();
    if cvm.doomed.load(Ordering::Relaxed) {
        take_doomed(cvm);
    }
}

/// The rare end of [`release`]: the shell is doomed; take it back and destroy the VM, unless
/// someone else owns it by now (then they will).
#[cold]
#[inline(never)]
fn take_doomed(cvm: &CVm) {
    let Some(me) = thread_token() else { return };
    if cvm
        .owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        if cvm.doomed.load(Ordering::Relaxed) {
            destroy(cvm);
        } else {
            // Destroyed by someone else meanwhile (and perhaps refilled): let go again.
            release(cvm);
        }
    }
}

/// Destroys the VM in a shell this thread owns, which is no longer registered (no call on it
/// is running), then empties the shell, releases it and keeps it for reuse. Called while this
/// thread is already destroying a VM (from a finalizer), it queues the shell for that
/// destroy's loop instead, so that finalizer → destroy chains take no stack.
fn destroy(cvm: &CVm) {
    let ptr = cvm as *const CVm as *mut CVm;
    let here = stack_position();
    let first = GATE.try_with(|gate| {
        // Deeper than the loop's frame: called from a finalizer it runs. (Not deeper: the loop
        // was left by a `longjmp` out of a finalizer; this destroy takes over its queue.)
        if gate.destroying.get() && here < gate.destroy_frame.get() {
            cvm.next_doomed.set(gate.queue.get());
            gate.queue.set(ptr);
            false
        } else {
            gate.destroying.set(true);
            gate.destroy_frame.set(here);
            true
        }
    });
    match first {
        Ok(false) => {}
        Ok(true) => {
            destroy_one(cvm);
            while let Some(next) = GATE.try_with(pop_queue).ok().flatten() {
                // SAFETY: queued shells are shells (never freed) this thread owns.
                destroy_one(unsafe { &*next });
            }
            let _ = GATE.try_with(|gate| gate.destroying.set(false));
        }
        // No thread-local (never happens, see `GateCache`): destroy right here.
        Err(_) => destroy_one(cvm),
    }
}

fn pop_queue(gate: &GateCache) -> Option<*mut CVm> {
    let head = gate.queue.get();
    if head.is_null() {
        return None;
    }
    // SAFETY: a queued shell, owned by this thread.
    gate.queue.set(unsafe { (*head).next_doomed.get() });
    Some(head)
}

fn destroy_one(cvm: &CVm) {
    // The VM's interrupt flag goes with it (a shell lives for good: anything it kept of a
    // destroyed VM would pin that VM's memory in pieces).
    cvm.forget_interrupt();
    // SAFETY: owned by this thread and idle, so no reference into the VM exists.
    let vm = unsafe { (*cvm.vm.get()).take() };
    // Dropping runs foreign finalizers; a finalizer that calls the API with this handle gets
    // `STOFFEL_ERROR_INVALID_VM` (the token is gone from the shell and the registry). A
    // panic in there is caught here, so the loop goes on.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(vm))) {
        drop_payload(payload);
    }
    cvm.depth.set(0);
    cvm.lent.set(std::ptr::null_mut());
    cvm.callback_frame.set(0);
    cvm.abandoned.set(false);
    cvm.memory_limit.set(0);
    if let Ok(mut slot) = cvm.last_error.try_borrow_mut() {
        *slot = None;
    }
    cvm.failures.set(0);
    cvm.next_doomed.set(std::ptr::null_mut());
    cvm.token.store(0, Ordering::Relaxed);
    cvm.doomed.store(false, Ordering::Relaxed);
    // Unregistered with token 0: nobody can doom it again, so a plain release.
    cvm.owner.store(0, Ordering::Release);
    put_back(cvm);
}

/// `stoffel_destroy_vm` of a non-NULL handle. The handle is dead when this returns, and the
/// VM destroyed: now if it is idle; by the other thread, when its current call returns, if
/// another thread is inside a call on it; by the outermost call's return if this thread is
/// (from inside a callback). A VM whose callback was left by a `longjmp` is destroyed now.
pub(crate) fn destroy_vm(handle: VMHandle) -> c_int {
    let Some(me) = thread_token() else {
        set_thread_error("stoffel_destroy_vm: no thread state (ignored)");
        return STOFFEL_ERROR_REENTRANCY;
    };
    // Locked from the check until the VM is unregistered and doomed or claimed (as in
    // `with_vm`), so no other thread can free it or start a call on it in between.
    let mut live = registry();
    let Some(ptr) = resolve(&live, handle) else {
        drop(live);
        set_thread_error("stoffel_destroy_vm: invalid VM handle");
        return STOFFEL_ERROR_INVALID_VM;
    };
    // SAFETY: registered, so it points to a shell (never freed) holding this VM; only its
    // atomics and, once owned, its cells are touched here.
    let cvm = unsafe { &*ptr };
    live.remove(&(handle as usize));
    cvm.token.store(0, Ordering::Relaxed);
    match cvm
        .owner
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => {
            // Claimed and idle: destroy after releasing the lock (the finalizers that run
            // may call the API, which takes the lock).
            drop(live);
            destroy(cvm);
        }
        Err(owner) if owner == me => {
            if cvm.abandoned.get() || left_by_jump(cvm, stack_position()) {
                // The call on it was abandoned by a non-local exit: nothing will return to
                // finish it, so destroy it now (what the skipped frames held leaks).
                drop(live);
                destroy(cvm);
            } else {
                // Inside a call on this VM: the outermost call's release destroys it.
                cvm.doomed.store(true, Ordering::Relaxed);
            }
        }
        Err(_) => {
            cvm.doomed.store(true, Ordering::Relaxed);
            drop(live);
            hand_over(cvm, me);
        }
    }
    STOFFEL_OK
}

/// The destroying side of the hand-over (see [`release`]): `doomed` is set; after the heavy
/// fence, either the shell is free (take it and destroy the VM) or its owner will see
/// `doomed` when it lets go.
#[cold]
fn hand_over(cvm: &CVm, me: u64) {
    let fenced = heavy_fence();
    loop {
        match cvm
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                if cvm.doomed.load(Ordering::Relaxed) {
                    destroy(cvm);
                } else {
                    release(cvm);
                }
                return;
            }
            Err(_) if fenced => return,
            // Without the fence (it failed), wait for the owner to let go, unless it has
            // destroyed the VM already.
            Err(_) => {
                if !cvm.doomed.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::yield_now();
            }
        }
    }
}
