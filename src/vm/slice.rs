//! Time-sliced execution: [`Vm::start`], [`Vm::resume`], [`Vm::cancel`] and the
//! [`Future`] adapter [`Vm::run_async`].
//!
//! A slice is a smaller instruction budget: [`Fuel`](crate::limits::Fuel) holds back the
//! rest of the limit, so the step loop meets the slice's end where it meets the limit, on
//! its cold path, and the ordinary execution path pays nothing for slicing. There the
//! execution is kept instead of failed: its activation stays on the interpreter stacks (in
//! the arena root, so the collector traces it between slices as between steps) and
//! [`Suspended`] keeps what the budget and the last step left.
//!
//! While one is suspended, the VM runs other calls as top-level executions on top of it (the
//! re-entry gate keeps the suspended activation as its floor), so they neither see nor disturb
//! it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Vm;
use super::drive::{Start, StartArgs};
use crate::Val;
use crate::error::{ApiError, VmError};
use crate::interp::code::Binding;

/// How a slice of an execution ended ([`Vm::start`], [`Vm::resume`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The execution finished with this result (heap values are new handles the caller
    /// owns, as from [`Vm::execute`]).
    Done(Val),
    /// The slice's fuel ran out: the execution is suspended; [`Vm::resume`] continues it,
    /// [`Vm::cancel`] drops it.
    Suspended,
}

impl Progress {
    /// The result, if the execution finished.
    pub fn done(self) -> Option<Val> {
        match self {
            Progress::Done(v) => Some(v),
            Progress::Suspended => None,
        }
    }

    /// Whether the execution is suspended.
    pub fn is_suspended(&self) -> bool {
        matches!(self, Progress::Suspended)
    }
}

/// A suspended execution: what it needs to go on besides its activation.
#[derive(Debug)]
struct Suspended {
    /// Activations on the interpreter stacks, the suspended one the top one.
    activations: usize,
    /// The instruction limit it started with, and the units left of it.
    limit: Option<u64>,
    remaining: u64,
    /// What its last step left for the next (see [`crate::interp::Interp::park`]).
    parked: (usize, bool),
}

/// The VM's slicing state.
#[derive(Debug, Default)]
pub(super) struct Slicing {
    suspended: Option<Suspended>,
    /// The running slice suspended (read once it returns).
    just_suspended: bool,
}

impl Slicing {
    /// Activations that belong to the suspended execution (0 if none): the gate leaves them.
    #[inline]
    pub(super) fn floor(&self) -> usize {
        self.suspended.as_ref().map_or(0, |s| s.activations)
    }
}

impl Vm {
    /// Starts `name` with `args` and runs it for at most `fuel` instructions. It either
    /// finishes ([`Progress::Done`]) or is kept, suspended between two of its instructions
    /// ([`Progress::Suspended`]), for [`Vm::resume`], which continues it exactly: the results
    /// are those of an uninterrupted run. Arguments as [`Vm::call`]: exactly the parameter
    /// count. A name bound to a host function or builtin runs to its end at once.
    ///
    /// - **Fuel** counts as the instruction limit does; with `fuel` 0 the function is started
    ///   (its name and arguments checked) but runs no instruction: `Suspended`.
    /// - **Where a slice ends**: only between instructions of the execution's own frames. A
    ///   host function it calls runs to its end, and executions that host function starts
    ///   are not sliced (if the slice runs out inside one, it runs on; the slice then ends
    ///   right after the host function returns).
    /// - **The instruction limit** ([`Vm::set_instruction_limit`], the one in force at
    ///   `start`) counts the whole execution across all its slices.
    /// - **Errors** end it: nothing is suspended after an `Err`. An interrupt
    ///   ([`Vm::interrupt_handle`]) fails the running slice; one that arrives while the
    ///   execution is suspended is ignored.
    /// - **Meanwhile** one execution may be suspended per VM: `start` then fails with
    ///   [`ApiError::AlreadySuspended`]. Every other call works: executions and heap calls
    ///   run as top-level executions of their own (with their own instruction budget) on top
    ///   of the suspended one, which they do not see or change; collections keep its values
    ///   alive. Dropping the VM drops it.
    /// - Only as a top-level call: from a host function it is [`ApiError::SliceInCall`]
    ///   (the same for `resume` and `cancel`).
    ///
    /// ```
    /// # use stoffel_vm::{Progress, Val, Vm};
    /// let mut vm = Vm::new();
    /// vm.load_assembly(
    ///     ".function count(n)
    ///         LDI r1, 0
    ///         LDI r2, 1
    ///      top:
    ///         CMP r1, r0
    ///         JMPEQ done
    ///         ADD r1, r1, r2
    ///         JMP top
    ///      done:
    ///         RET r1
    ///     ",
    /// )
    /// .unwrap();
    /// let mut slices = 1;
    /// let mut progress = vm.start("count", &[Val::I64(1000)], 100).unwrap();
    /// while progress == Progress::Suspended {
    ///     // ... the host does other work here, other VM calls included ...
    ///     progress = vm.resume(100).unwrap();
    ///     slices += 1;
    /// }
    /// assert_eq!(progress, Progress::Done(Val::I64(1000)));
    /// assert!(slices > 40, "{slices}");
    /// ```
    pub fn start(&mut self, name: &str, args: &[Val], fuel: u64) -> Result<Progress, VmError> {
        self.check_top_level()?;
        if self.slice.suspended.is_some() {
            return Err(ApiError::AlreadySuspended.into());
        }
        let f = match self.code.lookup(name) {
            Binding::Function(f) => f,
            other => {
                return self
                    .run_resolved(other, name, args, false)
                    .map(Progress::Done);
            }
        };
        let guard = self.enter()?;
        let total = self.fuel.total();
        self.fuel
            .begin_slice(self.rt.limits.instructions, total, fuel);
        let start = Start {
            f,
            args: StartArgs::Vals(args),
            lenient: false,
        };
        let result = self.drive_with(true, Some(start));
        drop(guard);
        self.slice_ended(result)
    }

    /// Continues the suspended execution for at most `fuel` more instructions (see
    /// [`Vm::start`]); fuel 0 runs nothing. Fails with [`ApiError::NothingSuspended`] when
    /// no execution is suspended.
    pub fn resume(&mut self, fuel: u64) -> Result<Progress, VmError> {
        self.check_top_level()?;
        if self.slice.suspended.is_none() {
            return Err(ApiError::NothingSuspended.into());
        }
        // Through the gate first: it drops what a panic left above the suspended execution
        // (and may refuse, leaving it suspended).
        let guard = self.enter()?;
        let Some(s) = self.slice.suspended.take() else {
            return Err(ApiError::NothingSuspended.into());
        };
        debug_assert_eq!(
            self.arena.mutate(|_, root| root.interp.activation_count()),
            s.activations
        );
        self.arena
            .mutate_root(|_, root| root.interp.unpark(s.parked));
        self.fuel.begin_slice(s.limit, s.remaining, fuel);
        let result = self.drive_with(true, None);
        drop(guard);
        self.slice_ended(result)
    }

    /// Drops the suspended execution (its frames and the values only they held); `Ok(false)`
    /// if none was suspended. Not from a host function ([`ApiError::SliceInCall`]).
    pub fn cancel(&mut self) -> Result<bool, VmError> {
        self.check_top_level()?;
        let Some(s) = self.slice.suspended.take() else {
            return Ok(false);
        };
        let code = &self.code;
        let meter = &self.rt.meter;
        self.arena.mutate_root(|_, root| {
            while root.interp.activation_count() >= s.activations
                && root.interp.activation_count() > 0
            {
                let _ = root
                    .interp
                    .fail_host_call(code, crate::RuntimeErrorKind::Internal("cancelled"));
            }
            root.interp.shrink_stacks(meter);
        });
        self.collect_debt();
        Ok(true)
    }

    /// Whether an execution is suspended ([`Vm::start`]).
    pub fn is_suspended(&self) -> bool {
        self.slice.suspended.is_some()
    }

    /// Runs `name` with `args` as a [`Future`]: each poll runs up to `every` instructions
    /// (at least 1) as a slice ([`Vm::start`], [`Vm::resume`]), then wakes its waker and
    /// returns `Pending` if the execution is not done, so an executor can run other tasks
    /// between slices. No runtime is needed; any executor works. The future holds the VM
    /// mutably until it is done; dropped before, it cancels the execution.
    ///
    /// ```
    /// # use std::future::Future;
    /// # use std::pin::pin;
    /// # use std::sync::Arc;
    /// # use std::task::{Context, Poll, Wake, Waker};
    /// # use stoffel_vm::{Val, Vm};
    /// struct Nop;
    /// impl Wake for Nop {
    ///     fn wake(self: Arc<Self>) {}
    /// }
    /// let mut vm = Vm::new();
    /// vm.load_assembly(".function spin(n)\n LDI r1, 1\ntop:\n SUB r0, r0, r1\n LDI r2, 0\n CMP r0, r2\n JMPNEQ top\n RET r0\n").unwrap();
    /// let waker = Waker::from(Arc::new(Nop));
    /// let mut cx = Context::from_waker(&waker);
    /// let mut future = pin!(vm.run_async("spin", &[Val::I64(500)], 100));
    /// let mut polls = 1;
    /// let result = loop {
    ///     match future.as_mut().poll(&mut cx) {
    ///         Poll::Ready(result) => break result,
    ///         Poll::Pending => polls += 1,
    ///     }
    /// };
    /// assert_eq!(result.unwrap(), Val::I64(0));
    /// assert!(polls > 10, "{polls}");
    /// ```
    pub fn run_async<'vm>(&'vm mut self, name: &str, args: &[Val], every: u64) -> RunAsync<'vm> {
        RunAsync {
            vm: self,
            call: Some((name.to_owned(), args.to_vec())),
            every: every.max(1),
            running: false,
        }
    }

    /// Start, resume and cancel work on the top-level execution only.
    fn check_top_level(&self) -> Result<(), VmError> {
        if self.nesting.get() != 0 {
            return Err(ApiError::SliceInCall.into());
        }
        Ok(())
    }

    /// A slice returned `result`: whether it suspended (the result is a placeholder then).
    fn slice_ended(&mut self, result: Result<Val, VmError>) -> Result<Progress, VmError> {
        if std::mem::take(&mut self.slice.just_suspended) {
            return Ok(Progress::Suspended);
        }
        match result {
            Ok(v) => Ok(Progress::Done(v)),
            Err(e) if self.interrupt.is_set() => Err(self.interrupted_failure(e)),
            Err(e) => Err(e),
        }
    }

    /// The running slice is spent (called by the step loop, between two instructions).
    #[cold]
    #[inline(never)]
    pub(super) fn suspend_slice(&mut self) {
        let (limit, remaining) = self.fuel.suspend();
        let (activations, parked) = self
            .arena
            .mutate_root(|_, root| (root.interp.activation_count(), root.interp.park()));
        self.slice.suspended = Some(Suspended {
            activations,
            limit,
            remaining,
            parked,
        });
        self.slice.just_suspended = true;
    }
}

/// An execution run as a [`Future`] ([`Vm::run_async`]).
#[must_use = "a future does nothing unless polled"]
pub struct RunAsync<'vm> {
    vm: &'vm mut Vm,
    /// The name and arguments, until the first poll starts it.
    call: Option<(String, Vec<Val>)>,
    every: u64,
    /// Started and suspended.
    running: bool,
}

impl Future for RunAsync<'_> {
    type Output = Result<Val, VmError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let progress = match this.call.take() {
            Some((name, args)) => this.vm.start(&name, &args, this.every),
            None if this.running => this.vm.resume(this.every),
            None => Err(ApiError::NothingSuspended.into()),
        };
        this.running = matches!(progress, Ok(Progress::Suspended));
        match progress {
            Ok(Progress::Suspended) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Ok(Progress::Done(v)) => Poll::Ready(Ok(v)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for RunAsync<'_> {
    fn drop(&mut self) {
        if self.running {
            let _ = self.vm.cancel();
        }
    }
}
