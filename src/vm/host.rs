//! Host functions: registering them, and calling them outside the arena.
//!
//! When bytecode calls a host function the interpreter's step ends with the call pending
//! ([`Step::HostCall`](crate::interp::Step)); [`Vm::call_host`] converts the arguments to
//! [`Val`]s (heap values get handles that live for the call), calls the host with
//! `&mut Vm` (so it may execute code on the same VM), and delivers the result into the
//! caller's r0.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use super::Vm;
use super::send::{HostFn, MaybeSendSync, host_fn};
use super::val::{val_to_value, value_to_val};
use crate::Val;
use crate::error::{HostError, VmError};
use crate::interp::code::Binding;
use crate::interp::{ExternalError, RuntimeError, RuntimeErrorKind};
use crate::value::Value;

pub(super) struct HostEntry {
    pub(super) name: Rc<str>,
    pub(super) function: HostFn,
}

impl Vm {
    /// Registers a host function under `name`, replacing any function of that name
    /// (bytecode, builtin or host), as StoffelVM does. The closure may keep state and may
    /// call back into the VM it gets.
    ///
    /// Handles: the arguments' handles are the VM's, released after the call (retain one
    /// to keep it). A heap value the closure returns is **handed over**: the VM takes its
    /// reference, so return a fresh value (or an argument) and do not release it; to return
    /// a value the host keeps as well, retain it first. [`Vm::register_fn`] does this for
    /// typed closures.
    ///
    /// Calling back (re-entry) nests: each level costs about 0.9 KiB of native stack in a
    /// release build on x86-64 (see [`MAX_REENTRY`](crate::MAX_REENTRY)) plus the closure's
    /// own frame. A nested execution is refused with a limit error
    /// ([`ApiError::StackExhausted`](crate::ApiError::StackExhausted) or
    /// [`ApiError::TooDeeplyNested`](crate::ApiError::TooDeeplyNested)) when
    /// [`STACK_RESERVE`](crate::STACK_RESERVE) bytes of stack would not be left or 200
    /// executions are running, never overflowing the stack. Passing a nested failure on
    /// with `?` (or [`HostError::caused_by`]) keeps the message short however deep: the
    /// innermost error and the number of nested executions it came through.
    ///
    /// With the `send` feature the closure must be `Send + Sync` (see
    /// [`MaybeSendSync`](crate::MaybeSendSync)); state shared with the host is then an `Arc`
    /// of an atomic or a `Mutex`, as here, or the VM's user data ([`Vm::set_user_data`]).
    ///
    /// ```
    /// # use std::sync::{Arc, atomic::{AtomicU32, Ordering::Relaxed}};
    /// # use stoffel_vm::{HostError, Val, Vm};
    /// let mut vm = Vm::new();
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let counter = calls.clone();
    /// vm.register_function("twice", move |_vm, args| {
    ///     counter.fetch_add(1, Relaxed);
    ///     match args {
    ///         [Val::I64(n)] => Ok(Val::I64(n * 2)),
    ///         _ => Err(HostError::from("twice: expected one int64")),
    ///     }
    /// });
    /// vm.load_assembly(".function main\n LDI r1, 21\n PUSHARG r1\n CALL twice\n RET r0\n").unwrap();
    /// assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
    /// assert_eq!(calls.load(Relaxed), 1);
    /// ```
    pub fn register_function<F>(&mut self, name: &str, function: F)
    where
        F: Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + MaybeSendSync + 'static,
    {
        let slot = self.code.slot(name);
        let entry = HostEntry {
            name: Rc::from(name),
            function: host_fn(function),
        };
        match self.code.bindings[slot as usize] {
            Binding::Host(i) => self.hosts[i as usize] = entry,
            _ => {
                self.hosts.push(entry);
                self.code.bindings[slot as usize] = Binding::Host(self.hosts.len() as u32 - 1);
            }
        }
    }

    /// Makes the host call the interpreter stopped at, and delivers its result.
    ///
    /// This frame is live while the host function runs (and re-enters), so argument
    /// conversion, delivery of non-integer results and failures run in functions of their
    /// own that are not inlined. Always inlined, as it is on the hot path of VM -> host
    /// calls; `_HOT` only makes a separate copy (with its own closures, each called from one
    /// place and so inlined) for that path, `Vm::run_steps`.
    #[inline(always)]
    pub(super) fn call_host<const _HOT: bool>(
        &mut self,
        host: u32,
        slot: u32,
    ) -> Result<(), Box<VmError>> {
        let args = self.host_call_args::<_HOT>(slot)?;
        // The closure is kept alive by this clone if the host re-registers the name during
        // the call. Its name is not cloned (it cannot change: only a registration under the
        // same name replaces the entry); a failure reads it again.
        let function = self.hosts[host as usize].function.clone();
        // Nested failures are tracked per host call (see `Vm::nested_error`).
        let outer = self.nested_failure.take();
        let result = match catch_unwind(AssertUnwindSafe(|| function(self, &args))) {
            Ok(result) => result,
            Err(payload) => self.host_panicked(&args, outer, payload),
        };
        let inner = std::mem::replace(&mut self.nested_failure, outer);
        let delivered = match result {
            // An integer goes straight to the register: through `val_to_value` and `?` it
            // is built in a returned `Result` and copied whole, and that made VM -> C
            // callbacks 10% slower (measured).
            Ok(Val::I64(x)) => {
                self.arena
                    .mutate_root(|_, root| root.interp.deliver(Value::I64(x)));
                Ok(())
            }
            Ok(v) => self.deliver_host_result(v, &args),
            Err(e) => Err(e),
        };
        // Argument handles live for the call only (unless the host retained them). Released
        // after the result is read: returning an argument is allowed.
        self.release_all(&args);
        let mut args = args;
        args.clear();
        self.host_args = args;
        // Bytecode that calls host functions more often than every step's budget never
        // yields, so the driver would not pay for what host calls allocate (a string result,
        // objects the host made): pay here, the result is in the caller's register.
        self.collect_debt();
        match delivered {
            Ok(()) => Ok(()),
            Err(e) => Err(Box::new(self.host_failed(host, e, inner))),
        }
    }

    /// A host function panicked: its argument handles are released (as when it returns) and
    /// the panic goes on; the execution that called it unwinds its activation on the way
    /// (see `Vm::drive_with`).
    #[cold]
    #[inline(never)]
    fn host_panicked(
        &mut self,
        args: &[Val],
        outer: Option<Box<NestedFailure>>,
        payload: Box<dyn Any + Send>,
    ) -> ! {
        self.nested_failure = outer;
        self.release_all(args);
        resume_unwind(payload)
    }

    /// The pending host call's arguments as `Val`s (in the reused `host_args` vector). On
    /// failure the activation has failed; the error is boxed to keep the caller's frame
    /// small.
    #[inline(always)]
    fn host_call_args<const _HOT: bool>(&mut self, slot: u32) -> Result<Vec<Val>, Box<VmError>> {
        let mut out = std::mem::take(&mut self.host_args);
        out.clear();
        let converted = self.arena.mutate_root(|_, root| {
            for &v in root.interp.host_args() {
                out.push(value_to_val(v, &mut root.handles)?);
            }
            Ok::<_, VmError>(out)
        });
        converted.map_err(|e| Box::new(self.host_args_failed(slot, e)))
    }

    #[cold]
    #[inline(never)]
    fn host_args_failed(&mut self, slot: u32, e: VmError) -> VmError {
        let function = self.code.names[slot as usize].to_string();
        self.fail_activation(RuntimeErrorKind::Host {
            function,
            message: e.to_string(),
            external: None,
        })
    }

    /// Delivers a host function's (non-integer) result into the caller's r0.
    #[inline(never)]
    fn deliver_host_result(&mut self, v: Val, args: &[Val]) -> Result<(), HostError> {
        let meter = &self.rt.meter;
        self.arena
            .mutate_root(|mc, root| {
                let value = val_to_value(mc, meter, &root.handles, &v)?;
                root.interp.deliver(value);
                // The host handed its result's handle over (see `HostFn`); an argument
                // returned as is goes with the arguments (released once: a reference the
                // host retained stays the host's).
                if let Some(h) = v.handle()
                    && !args.iter().any(|a| a.handle() == Some(h))
                {
                    let _ = root.handles.release(h);
                }
                Ok::<(), VmError>(())
            })
            .map_err(|e| HostError::new(e.to_string()))
    }

    /// Fails the running activation with host function `host`'s failure `e`; `inner` is the
    /// last nested failure during the call.
    #[cold]
    #[inline(never)]
    fn host_failed(
        &mut self,
        host: u32,
        e: HostError,
        inner: Option<Box<NestedFailure>>,
    ) -> VmError {
        let (message, chain, external) = failure_message(e, inner);
        let function = self
            .hosts
            .get(host as usize)
            .map_or_else(String::new, |entry| entry.name.to_string());
        let mut error = self.fail_activation(RuntimeErrorKind::Host {
            function,
            message,
            external,
        });
        whole_chain(&mut error, &chain);
        self.note_chain(&error, chain);
        error
    }

    /// A host function executed by name: it gets its own argument handles and hands its
    /// result over, exactly as when bytecode calls it; the caller gets a new handle.
    #[inline(never)]
    pub(super) fn call_host_directly(
        &mut self,
        host: u32,
        name: &str,
        args: &[Val],
    ) -> Result<Val, VmError> {
        let function = self.hosts[host as usize].function.clone();
        let own_args = self.own_args(args)?;
        let outer = self.nested_failure.take();
        let result = match catch_unwind(AssertUnwindSafe(|| function(self, &own_args))) {
            Ok(result) => result,
            Err(payload) => self.host_panicked(&own_args, outer, payload),
        };
        let inner = std::mem::replace(&mut self.nested_failure, outer);
        let out = match result {
            Ok(v) => self.hand_over(v, &own_args),
            Err(e) => Err(self.host_failed_directly(name, e, inner)),
        };
        self.release_all(&own_args);
        // Executed by name, no driver runs: pay for the argument strings, what the host
        // allocated and its result here (the result is held by its new handle).
        self.collect_debt();
        out
    }

    /// Copies of `args` with handles of their own (released after the call).
    #[inline(never)]
    fn own_args(&mut self, args: &[Val]) -> Result<Vec<Val>, VmError> {
        let meter = &self.rt.meter;
        self.arena.mutate_root(|mc, root| {
            args.iter()
                .map(|a| {
                    let v = val_to_value(mc, meter, &root.handles, a)?;
                    value_to_val(v, &mut root.handles)
                })
                .collect::<Result<Vec<Val>, VmError>>()
        })
    }

    /// A host function's result, handed over to the caller with a handle of its own.
    #[inline(never)]
    fn hand_over(&mut self, v: Val, args: &[Val]) -> Result<Val, VmError> {
        let meter = &self.rt.meter;
        self.arena.mutate_root(|mc, root| {
            let value = val_to_value(mc, meter, &root.handles, &v)?;
            // As in `call_host`: an argument returned as is goes with the arguments.
            if let Some(h) = v.handle()
                && !args.iter().any(|a| a.handle() == Some(h))
            {
                let _ = root.handles.release(h);
            }
            value_to_val(value, &mut root.handles)
        })
    }

    #[cold]
    #[inline(never)]
    fn host_failed_directly(
        &mut self,
        name: &str,
        e: HostError,
        inner: Option<Box<NestedFailure>>,
    ) -> VmError {
        let (message, chain, external) = failure_message(e, inner);
        let mut error: VmError = RuntimeError::new(
            name,
            0,
            RuntimeErrorKind::Host {
                function: name.to_owned(),
                message,
                external,
            },
        )
        .into();
        whole_chain(&mut error, &chain);
        self.note_chain(&error, chain);
        error
    }

    /// Remembers that `error` passes on `chain` (the innermost error and the nested
    /// executions it came through), so that a host function that passes `error` on in turn
    /// is reported with the innermost error and one level more, not with `error` wrapped.
    fn note_chain(&mut self, error: &VmError, chain: Option<(VmError, u32)>) {
        if let Some((innermost, levels)) = chain {
            self.nested_failure = Some(Box::new(NestedFailure {
                error: error.clone(),
                innermost: Some(innermost),
                levels,
            }));
        }
    }

    /// A nested execution (one started while another runs, i.e. by a host function) failed
    /// with `e`: remember it for [`Vm::nested_error`], unless it is the error `note_chain`
    /// already recorded (with its chain).
    #[cold]
    #[inline(never)]
    pub(super) fn note_nested_failure(&mut self, e: &VmError) {
        if self.nested_failure.as_ref().is_some_and(|r| r.error == *e) {
            return;
        }
        self.nested_failure = Some(Box::new(NestedFailure {
            error: e.clone(),
            innermost: None,
            levels: 0,
        }));
    }

    /// Inside a host function: the error of the last execution it started on this VM
    /// ([`Vm::execute`], [`Vm::call`]) that failed, if any; `None` outside host functions.
    ///
    /// For hosts that report a failure without the error itself (a C callback returns a
    /// code): passing this error on with [`HostError::caused_by`] (or `HostError::from`)
    /// keeps the message of a failure through many nested executions short (it names the
    /// innermost error and the number of levels) instead of wrapping every level's message.
    pub fn nested_error(&self) -> Option<&VmError> {
        if self.nesting.get() == 0 {
            return None;
        }
        self.nested_failure.as_ref().map(|r| &r.error)
    }
}

/// A failed nested execution (see [`Vm::nested_error`]).
#[derive(Debug)]
pub(super) struct NestedFailure {
    /// The error the execution returned.
    error: VmError,
    /// When `error` is a host function's failure that passed on a nested error: the
    /// innermost error of that chain.
    innermost: Option<VmError>,
    /// How many nested executions `innermost` came through (0 without one).
    levels: u32,
}

/// The message of host failure `e` and, if it passes on a nested error, the chain it
/// continues: (innermost error, nested executions it came through). `inner` is the last
/// nested failure during the host call. A cause that continues a chain is replaced by the
/// chain's innermost error, so the message stays bounded however deep the chain is.
fn failure_message(
    e: HostError,
    inner: Option<Box<NestedFailure>>,
) -> (String, Option<(VmError, u32)>, Option<ExternalError>) {
    let (mut message, cause, external) = e.into_parts();
    let Some(cause) = cause else {
        return (message, None, external);
    };
    let (innermost, levels) = match inner {
        Some(r) if r.error == cause => match r.innermost {
            Some(innermost) => (innermost, r.levels + 1),
            None => (cause, 1),
        },
        _ => (cause, 1),
    };
    use std::fmt::Write;
    if !message.is_empty() {
        message.push_str(": ");
    }
    let _ = write!(message, "{innermost}");
    if levels > 1 {
        let _ = write!(message, " (innermost error of {levels} nested executions)");
    }
    (message, Some((innermost, levels)), external)
}

/// A host function failed because a nested execution did: the innermost error's backtrace
/// runs from the innermost frame through every host boundary to the outermost frame, so the
/// failure reported here carries that whole chain.
fn whole_chain(error: &mut VmError, chain: &Option<(VmError, u32)>) {
    if let (VmError::Runtime(outer), Some((VmError::Runtime(inner), _))) = (error, chain)
        && !inner.backtrace.is_empty()
    {
        outer.backtrace = inner.backtrace.clone();
    }
}
