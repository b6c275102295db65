//! Interrupts: a [`InterruptHandle`] stops the VM's running execution from any thread.
//!
//! The handle sets a flag the VM reads between interpreter steps (at most every 4,096
//! instructions, and at every host call), where it already checks the instruction budget, so
//! an uninterrupted program pays one relaxed load per step. A top-level execution clears the
//! flag when it starts: an interrupt that arrives while nothing runs is ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Vm;
use crate::error::VmError;
use crate::interp::{RuntimeError, RuntimeErrorKind};

/// Stops the running execution of one [`Vm`] from any thread: it fails at its next check
/// (within 4,096 instructions, or when a host function it called returns) with
/// [`RuntimeErrorKind::Interrupted`], and the VM stays usable. Calling it while nothing runs
/// does nothing. `Send + Sync + Clone`; it may outlive the VM.
///
/// An interrupt that arrives before the execution starts is ignored, so a watchdog repeats
/// it until the execution has returned:
///
/// ```
/// # use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// # use std::time::Duration;
/// # use stoffel_vm::{RuntimeErrorKind, Vm, VmError};
/// let mut vm = Vm::new();
/// vm.load_assembly(".function spin\ntop:\n    JMP top\n").unwrap();
/// let (stop, done) = (vm.interrupt_handle(), Arc::new(AtomicBool::new(false)));
/// let finished = done.clone();
/// let watchdog = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     while !finished.load(Ordering::Relaxed) {
///         stop.interrupt();
///         std::thread::sleep(Duration::from_millis(10));
///     }
/// });
/// let err = vm.execute("spin", &[]).unwrap_err();
/// done.store(true, Ordering::Relaxed);
/// watchdog.join().unwrap();
/// assert!(matches!(err, VmError::Runtime(ref e) if e.kind == RuntimeErrorKind::Interrupted));
/// ```
#[derive(Clone, Debug)]
pub struct InterruptHandle(Arc<AtomicBool>);

impl InterruptHandle {
    /// Asks the running execution to stop.
    pub fn interrupt(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The VM's side of the flag.
#[derive(Default)]
pub(super) struct InterruptFlag(Arc<AtomicBool>);

impl InterruptFlag {
    /// Whether an interrupt was asked for (one relaxed load).
    #[inline(always)]
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Forgets an interrupt asked for while nothing ran.
    #[inline(always)]
    pub(super) fn clear(&self) {
        if self.is_set() {
            self.0.store(false, Ordering::Relaxed);
        }
    }
}

impl Vm {
    /// A handle that interrupts this VM's running execution from any thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle(self.interrupt.0.clone())
    }

    /// A top-level execution that failed while an interrupt was asked for failed because of
    /// it (a host function that got the interrupted nested execution's error passed it on
    /// in its own words): reported as the interrupt, where it stopped.
    #[cold]
    #[inline(never)]
    pub(super) fn interrupted_failure(&self, e: VmError) -> VmError {
        match e {
            VmError::Runtime(RuntimeError {
                function,
                instruction,
                backtrace,
                ..
            }) => RuntimeError {
                function,
                instruction,
                kind: RuntimeErrorKind::Interrupted,
                backtrace,
            }
            .into(),
            other => other,
        }
    }
}
