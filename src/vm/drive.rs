//! Execution: starting an activation and driving the interpreter in steps.
//!
//! [`Vm::drive`] alternates: run the interpreter for a bounded slice of fuel inside
//! `mutate`, then (outside it) pay the collector's debt, settle the memory limit and make
//! any host call the step stopped at. Host functions may re-enter: a nested execution pushes
//! its own activation on the same interpreter stacks.
//!
//! [`Vm::enter`] is the re-entry gate every execution and heap call passes: at most
//! [`MAX_REENTRY`] executions at once, and only while [`STACK_RESERVE`] bytes of the
//! thread's native stack are left (read from the thread's real stack bounds), so deep
//! re-entry is a limit error, never a stack overflow.
//!
//! Native stack per level of re-entry: the frames that stay live while a nested
//! execution's host function runs are `run_nested` (with the driver loop and `call_host`
//! inlined into it, about 0.7 KiB in a release build) and the host function's own. The
//! interpreter (`run_steps`, ~2.6 KiB with the dispatch loop inlined) returns at each host
//! call of a nested execution, and the cold paths run out of line. A top-level execution
//! keeps the fastest shape instead: `run_steps` makes its host calls itself, and its big
//! frame is on the stack once. (`run_steps` is the only caller of the interpreter and of
//! `Interp::begin_function`, so both are inlined into it; a second caller would stop that
//! and cost every top-level call.)

use std::any::Any;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::Vm;
use super::val::{val_to_value, vals_to_values, value_to_val};
use crate::Val;
use crate::asm::{self, OperandNames};
use crate::error::{ApiError, VmError};
use crate::interp::builtins::Builtin;
use crate::interp::code::Binding;
use crate::interp::{self, RuntimeError, RuntimeErrorKind, Step};
use crate::limits::{MAX_REENTRY, OutOfFuel, STACK_RESERVE, check_stack, settle_memory};
use crate::value::Value;

/// Keeps the re-entry depth right even if a host function panics through `execute`.
pub(super) struct NestGuard(super::send::Depth);

impl Drop for NestGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl Vm {
    /// Runs `name` (a bytecode function, builtin or host function) with `args`. A bytecode
    /// function needs exactly its parameter count, or no arguments (parameters are then
    /// Unit, as StoffelVM's `execute`). Heap values in the result are new handles the caller
    /// owns.
    ///
    /// From a host function this is a nested execution (re-entry), refused with a limit
    /// error ([`VmError::is_limit`]) when [`MAX_REENTRY`] executions are running or less than
    /// [`STACK_RESERVE`] bytes of native stack are left.
    pub fn execute(&mut self, name: &str, args: &[Val]) -> Result<Val, VmError> {
        self.run_named(name, args, true)
    }

    pub(super) fn run_named(
        &mut self,
        name: &str,
        args: &[Val],
        lenient: bool,
    ) -> Result<Val, VmError> {
        let binding = self.code.lookup(name);
        self.run_resolved(binding, name, args, lenient)
    }

    /// Runs what a name was found bound to (`name` is for messages).
    #[inline(always)]
    pub(super) fn run_resolved(
        &mut self,
        binding: Binding,
        name: &str,
        args: &[Val],
        lenient: bool,
    ) -> Result<Val, VmError> {
        if self.nesting.get() == 0 {
            let result = self.run_binding(binding, name, args, lenient, true);
            match result {
                Err(e) if self.interrupt.is_set() => Err(self.interrupted_failure(e)),
                result => result,
            }
        } else {
            self.run_nested(binding, name, args, lenient)
        }
    }

    /// An execution started by a host function (a re-entry): the small-frame variant, and
    /// its failure is remembered for [`Vm::nested_error`] and for bounded messages.
    #[inline(never)]
    fn run_nested(
        &mut self,
        binding: Binding,
        name: &str,
        args: &[Val],
        lenient: bool,
    ) -> Result<Val, VmError> {
        let result = self.run_binding(binding, name, args, lenient, false);
        if let Err(e) = &result {
            self.note_nested_failure(e);
        }
        result
    }

    /// Runs `binding`; `top` for a top-level execution (see [`Vm::drive`]).
    #[inline(always)]
    fn run_binding(
        &mut self,
        binding: Binding,
        name: &str,
        args: &[Val],
        lenient: bool,
        top: bool,
    ) -> Result<Val, VmError> {
        match binding {
            Binding::Unbound => Err(not_found(name)),
            Binding::Host(h) => {
                let _guard = self.enter()?;
                self.call_host_directly(h, name, args)
            }
            Binding::Function(f) => {
                let _guard = self.enter()?;
                // The arguments are converted in `run_steps`: their buffer is gone before a
                // host function of a nested execution runs.
                let args = StartArgs::Vals(args);
                self.drive_with(top, Some(Start { f, args, lenient }))
            }
            Binding::Builtin(b) => {
                let _guard = self.enter()?;
                self.run_builtin(b, args)
            }
        }
    }

    /// Starts bytecode function `start.f`. The error is boxed to keep the caller's frame small.
    #[inline(always)]
    fn begin_function(&mut self, start: Start<'_>) -> Result<(), Box<VmError>> {
        let Start { f, args, lenient } = start;
        let code = &self.code;
        let rt = &mut self.rt;
        self.arena
            .mutate_root(|mc, root| -> Result<(), Box<VmError>> {
                // The usual few arguments convert into a stack buffer, not a Vec.
                let mut buffer = [Value::Unit; 8];
                let owned;
                let values: &[Value<'_>] = match args {
                    StartArgs::Scalars(args) if args.len() <= buffer.len() => {
                        for (slot, a) in buffer.iter_mut().zip(args) {
                            *slot = a.value();
                        }
                        &buffer[..args.len()]
                    }
                    StartArgs::Scalars(args) => {
                        owned = args.iter().map(|a| a.value()).collect::<Vec<_>>();
                        &owned
                    }
                    StartArgs::Vals(args) if args.len() <= buffer.len() => {
                        for (slot, a) in buffer.iter_mut().zip(args) {
                            *slot =
                                val_to_value(mc, &rt.meter, &root.handles, a).map_err(Box::new)?;
                        }
                        &buffer[..args.len()]
                    }
                    StartArgs::Vals(args) => {
                        owned =
                            vals_to_values(mc, &rt.meter, &root.handles, args).map_err(Box::new)?;
                        &owned
                    }
                };
                match root.interp.begin_function(code, rt, f, values, lenient) {
                    Ok(()) => Ok(()),
                    Err(e) => Err(Box::new(VmError::from(e))),
                }
            })
    }

    /// The re-entry gate: every execution and heap call starts here. Refuses (a limit
    /// error) when [`MAX_REENTRY`] executions are running or less than [`STACK_RESERVE`]
    /// bytes of native stack are left; a top-level call gets a fresh instruction budget.
    #[inline(never)]
    pub(super) fn enter(&mut self) -> Result<NestGuard, Refused> {
        self.enter_inline(false)
    }

    /// [`Vm::enter`], inlined into the short call (`quick.rs`), where its result would
    /// otherwise be returned through memory. `stack_vouched`: the caller (the C gate) has
    /// found far more than [`STACK_RESERVE`] bytes of native stack left, so the stack check
    /// would pass.
    #[inline(always)]
    pub(super) fn enter_inline(&mut self, stack_vouched: bool) -> Result<NestGuard, Refused> {
        let depth = self.nesting.get();
        if depth >= MAX_REENTRY {
            return Err(Refused::TooDeep);
        }
        if !stack_vouched && let Err(remaining) = check_stack() {
            return Err(Refused::Stack { depth, remaining });
        }
        if depth == 0 {
            // A top-level execution: fresh budget, no interrupt from while nothing ran, and no
            // state left by a host panic (above a suspended execution, which stays).
            self.fuel.refill(self.rt.limits.instructions);
            self.interrupt.clear();
            let floor = self.slice.floor();
            if self.arena.mutate(|_, root| root.interp.activation_count()) > floor {
                self.drop_stale(floor);
            }
        }
        if self.drops.has_pending() {
            self.release_dropped();
        }
        self.nesting.set(depth + 1);
        Ok(NestGuard(self.nesting.clone()))
    }

    /// Drops the activations above the `floor` ones (left by a host panic).
    #[cold]
    #[inline(never)]
    fn drop_stale(&mut self, floor: usize) {
        let code = &self.code;
        self.arena.mutate_root(|_, root| {
            if floor == 0 {
                root.interp.reset();
            }
            while root.interp.activation_count() > floor {
                let _ = root
                    .interp
                    .fail_host_call(code, RuntimeErrorKind::Internal("abandoned"));
            }
        });
    }

    #[inline(never)]
    pub(super) fn run_builtin(&mut self, b: Builtin, args: &[Val]) -> Result<Val, VmError> {
        // A panicking print callback unwinds the builtin's activation (see `drive_with`).
        let below = self.arena.mutate(|_, root| root.interp.activation_count());
        let finished = match catch_unwind(AssertUnwindSafe(|| self.begin_builtin(b, args))) {
            Ok(finished) => finished,
            Err(payload) => self.abandon(below, payload),
        };
        if let Ok(false) = finished {
            // A closure call: it runs on in `drive`, which pays the collector as it steps.
            return self.drive();
        }
        // Finished at once (the usual case: `create_object` by name, the heap API): pay for
        // what the builtin and its string arguments allocated, also when it failed. The
        // result is rooted in the interpreter meanwhile.
        self.collect_debt();
        if let Err(e) = finished {
            self.after_failure(&e);
            return Err(e);
        }
        self.builtin_result()
    }

    /// Starts builtin `b`; true if it finished at once (`call_closure` of a bytecode
    /// closure does not: its code runs in [`Vm::drive`]).
    #[inline(never)]
    fn begin_builtin(&mut self, b: Builtin, args: &[Val]) -> Result<bool, VmError> {
        let code = &self.code;
        let rt = &mut self.rt;
        self.arena.mutate_root(|mc, root| -> Result<bool, VmError> {
            let values = vals_to_values(mc, &rt.meter, &root.handles, args)?;
            Ok(root.interp.begin_builtin(mc, code, rt, b, &values)?)
        })
    }

    #[inline(never)]
    fn builtin_result(&mut self) -> Result<Val, VmError> {
        self.arena
            .mutate_root(|_, root| value_to_val(root.interp.take_result(), &mut root.handles))
    }

    /// Runs the current activation to its end.
    ///
    /// The interpreter runs in [`Vm::run_steps`], whose frame is large (~2.6 KiB: the
    /// dispatch loop is inlined into it). In a top-level execution it also makes the host
    /// calls, as fast as can be, and its frame is on the stack once. In a nested execution
    /// it returns at each host call, which is then made from the caller's frame (this one,
    /// or `run_nested`, into which this is inlined): only that frame stays live while the
    /// host function runs, and it is what each level of re-entry costs.
    #[inline(never)]
    pub(super) fn drive(&mut self) -> Result<Val, VmError> {
        self.drive_with(self.nesting.get() <= 1, None)
    }

    /// [`Vm::drive`], for a top-level execution if `top`, first starting a bytecode
    /// function if `start` says so.
    #[inline(always)]
    pub(super) fn drive_with(
        &mut self,
        top: bool,
        start: Option<Start<'_>>,
    ) -> Result<Val, VmError> {
        // The activations below this execution's own: a panic (a host function's or a print
        // callback's) unwinds down to them, so no caller can resume the abandoned execution.
        let below = self
            .arena
            .mutate(|_, root| root.interp.activation_count())
            .saturating_sub(usize::from(start.is_none()));
        match catch_unwind(AssertUnwindSafe(|| self.drive_steps(top, start))) {
            Ok(result) => result,
            Err(payload) => self.abandon(below, payload),
        }
    }

    /// A panic went through this execution: unwinds its activation (as an error would) and
    /// lets the panic go on to the host.
    #[cold]
    #[inline(never)]
    pub(super) fn abandon(&mut self, below: usize, payload: Box<dyn Any + Send>) -> ! {
        let code = &self.code;
        self.arena.mutate_root(|_, root| {
            while root.interp.activation_count() > below {
                let _ = root
                    .interp
                    .fail_host_call(code, RuntimeErrorKind::Internal("panicked"));
            }
        });
        let meter = &self.rt.meter;
        self.arena
            .mutate_root(|_, root| root.interp.shrink_stacks(meter));
        resume_unwind(payload)
    }

    #[inline(always)]
    fn drive_steps(&mut self, top: bool, mut start: Option<Start<'_>>) -> Result<Val, VmError> {
        if top {
            return self.run_steps(true, start, &mut None);
        }
        let mut pending = None;
        let result = loop {
            let result = self.run_steps(false, start.take(), &mut pending);
            match pending.take() {
                Some((host, slot)) => {
                    if let Err(e) = self.call_host::<false>(host, slot) {
                        break Err(*e);
                    }
                }
                None => break result,
            }
        };
        // Inside a time slice, a nested execution may have run on borrowed units.
        self.fuel.give_back();
        result
    }

    /// Starts a bytecode function if `start` says so, then runs interpreter steps until
    /// the activation ends, or (unless `top`) until it calls a host function: then the
    /// call is left in `pending` for the caller to make (and the result is a placeholder),
    /// or (a time slice, `top`) until its slice is spent: then it is suspended (see
    /// `slice.rs`; the result is a placeholder too).
    /// The one place that starts functions and runs the interpreter, so both are inlined
    /// into it.
    #[inline(never)]
    fn run_steps(
        &mut self,
        top: bool,
        start: Option<Start<'_>>,
        pending: &mut Option<(u32, u32)>,
    ) -> Result<Val, VmError> {
        if let Some(start) = start
            && let Err(e) = self.begin_function(start)
        {
            self.begin_failed(e, start)?;
        }
        loop {
            let budget = match self.fuel.slice(self.trace.is_some()) {
                Ok(_) if self.interrupt.is_set() => {
                    return Err(self.fail_activation(RuntimeErrorKind::Interrupted));
                }
                Ok(budget) => budget,
                Err(e) => match self.fuel.ran_out(top) {
                    OutOfFuel::Lent => continue,
                    OutOfFuel::Suspend => {
                        self.suspend_slice();
                        return Ok(Val::Unit);
                    }
                    OutOfFuel::Exhausted => return Err(self.fail_activation(e.into())),
                },
            };
            if self.trace.is_some() {
                self.trace_next();
            }
            let code = &self.code;
            let rt = &mut self.rt;
            // A builtin's work may not run past what the budget has left.
            rt.work_cap = self.fuel.total();
            let mut used = 0;
            let step = self.arena.mutate_root(
                #[inline(always)]
                |mc, root| {
                    interp::run(
                        mc,
                        &mut root.interp,
                        &root.constants,
                        code,
                        rt,
                        budget,
                        &mut used,
                    )
                },
            );
            self.rt.work_cap = u64::MAX;
            self.fuel.burn(used);
            self.instructions += u64::from(used);
            let settled = match step {
                Step::Yield => self.settle_step(),
                Step::Done => {
                    // Collect first (the result is rooted in the interpreter meanwhile), so
                    // the result is converted straight into the return value.
                    self.collect_debt();
                    let meter = &self.rt.meter;
                    return self.arena.mutate_root(|_, root| {
                        if root.interp.activation_count() == 0 {
                            // A top-level execution ended: stacks back to their baseline.
                            root.interp.shrink_stacks(meter);
                        }
                        value_to_val(root.interp.take_result(), &mut root.handles)
                    });
                }
                Step::Error(e) => return Err(self.step_failed(e)),
                Step::HostCall { host, slot } if top => self.call_host::<true>(host, slot),
                Step::HostCall { host, slot } => {
                    *pending = Some((host, slot));
                    return Ok(Val::Unit);
                }
            };
            if let Err(e) = settled {
                return Err(*e);
            }
        }
    }

    /// After a step that used up its slice: collect, and settle the memory limit.
    #[inline(never)]
    pub(super) fn settle_step(&mut self) -> Result<(), Box<VmError>> {
        self.collect_debt();
        let limit = self.rt.limits.memory;
        let waiting = self.arena.mutate(|_, root| root.interp.waiting_bytes()) > 0;
        match settle_memory(limit, waiting, self, Vm::used_bytes, Vm::collect_all) {
            Ok(()) => Ok(()),
            Err(e) => Err(Box::new(self.fail_activation(e.into()))),
        }
    }

    /// The interpreter failed (taking the error boxed, as it comes, keeps it out of the
    /// caller's frame).
    #[cold]
    #[inline(never)]
    #[allow(clippy::boxed_local)]
    pub(super) fn step_failed(&mut self, e: Box<RuntimeError>) -> VmError {
        let e = VmError::from(*e);
        self.after_failure(&e);
        self.collect_debt();
        e
    }

    /// Starting bytecode function `start` failed with `e`. The activation's stacks are
    /// admitted by the memory limit: refused, it gets one collection and one retry (the
    /// memory protocol of `crate::limits`); any other failure gives back what the stacks
    /// grew. `Ok` when the retry started it.
    #[cold]
    #[inline(never)]
    #[allow(clippy::boxed_local)]
    fn begin_failed(&mut self, e: Box<VmError>, start: Start<'_>) -> Result<(), VmError> {
        let e = match *e {
            VmError::Runtime(r) if r.kind.is_memory() => {
                self.collect_all();
                match self.begin_function(start) {
                    Ok(()) => return Ok(()),
                    Err(e) => *e,
                }
            }
            e => e,
        };
        self.after_failure(&e);
        Err(e)
    }

    #[inline(never)]
    pub(super) fn trace_next(&mut self) {
        let Some((func, ip)) = self.arena.mutate(|_, root| root.interp.position()) else {
            return;
        };
        let f = &self.code.functions[func as usize];
        let text = match f.code.get(ip as usize) {
            Some(ins) => asm::instruction_text(ins, &LinkedNames(self, func)),
            None => "(end of function)".to_owned(),
        };
        let line = format!("{}[{}]: {}", f.name, ip, text);
        if let Some(sink) = self.trace.as_mut() {
            sink(&line);
        }
    }

    /// Heap plus stacks plus what a waiting step needs: what the memory limit compares.
    pub(super) fn used_bytes(&self) -> usize {
        let waiting = self.arena.mutate(|_, root| root.interp.waiting_bytes());
        self.rt.meter.in_use().saturating_add(waiting)
    }

    /// Fails the running activation (at its current instruction) with `kind`.
    #[cold]
    #[inline(never)]
    pub(super) fn fail_activation(&mut self, kind: RuntimeErrorKind) -> VmError {
        let code = &self.code;
        let e = self
            .arena
            .mutate_root(|_, root| root.interp.fail_host_call(code, kind))
            .into();
        self.after_failure(&e);
        e
    }

    /// After an activation failed with `e` (and was unwound): the stacks give back what
    /// they grew, and when that ended a top-level execution on memory, a full collection
    /// gives back the heap garbage it left, so the next execution starts as the last one
    /// did.
    fn after_failure(&mut self, e: &VmError) {
        let meter = &self.rt.meter;
        let floor = self.slice.floor();
        let top_level = self.arena.mutate_root(|_, root| {
            root.interp.shrink_stacks(meter);
            root.interp.activation_count() <= floor
        });
        if top_level && matches!(e, VmError::Runtime(r) if r.kind.is_memory()) {
            self.collect_all();
        }
    }

    /// Instructions this VM has executed in its lifetime, counted as the instruction limit
    /// counts them: a closure or upvalue lookup that examines many frames or cells counts as
    /// more than one (for measurements).
    pub fn instructions_executed(&self) -> u64 {
        self.instructions
    }
}

/// How linked code's operands read in a trace: callees by the name of their slot, constants
/// by value, jump targets as instruction indices (`@12`).
/// Operand names in linked code: callees from the name table, constants from the VM's
/// table, jump targets by the source's label name (`@N` if none).
struct LinkedNames<'a>(&'a Vm, u32);

impl OperandNames for LinkedNames<'_> {
    fn callee(&self, index: u32) -> Cow<'_, str> {
        match self.0.code.names.get(index as usize) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("<slot {index}>")),
        }
    }

    fn constant(&self, index: u32) -> Cow<'_, str> {
        Cow::Owned(self.0.arena.mutate(|_, root| {
            root.constants
                .get(index as usize)
                .map(|v| v.debug_string())
                .unwrap_or_default()
        }))
    }

    fn label(&self, target: u32) -> Cow<'_, str> {
        let code = &self.0.code;
        match code
            .functions
            .get(self.1 as usize)
            .and_then(|f| f.label_at(code, target))
        {
            Some(name) => Cow::Owned(asm::label_text(name)),
            None => Cow::Owned(format!("@{target}")),
        }
    }
}

#[cold]
#[inline(never)]
fn not_found(name: &str) -> VmError {
    // An MPC builtin's name says so, as a call from bytecode does.
    if interp::is_mpc_name(name) {
        return RuntimeError::new(name, 0, RuntimeErrorKind::NeedsMpc(name.to_owned())).into();
    }
    ApiError::FunctionNotFound(name.to_owned()).into()
}

/// A bytecode function to start, with its arguments (see [`Vm::execute`] and
/// [`Vm::call`] for `lenient`).
#[derive(Clone, Copy)]
pub(super) struct Start<'a> {
    pub(super) f: u32,
    pub(super) args: StartArgs<'a>,
    pub(super) lenient: bool,
}

/// The arguments of a [`Start`]: values of the embedding API, or plain scalars (the C API's
/// usual call: no heap value, nothing to convert or drop).
#[derive(Clone, Copy)]
pub(super) enum StartArgs<'a> {
    Vals(&'a [Val]),
    Scalars(&'a [Scalar]),
}

/// An argument that is a plain number, boolean or unit: what [`Vm::call_slot_scalars`]
/// takes (the C API reads such arguments straight into these).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scalar {
    Unit,
    Bool(bool),
    I64(i64),
    Float(f64),
}

impl Scalar {
    #[inline(always)]
    pub(super) fn value<'gc>(self) -> Value<'gc> {
        match self {
            Scalar::Unit => Value::Unit,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::I64(i) => Value::I64(i),
            Scalar::Float(x) => Value::Float(x),
        }
    }
}

/// Why [`Vm::enter`] refused (small, so the gate's result costs no stack; the error is
/// built on the cold path).
pub(super) enum Refused {
    TooDeep,
    Stack { depth: u32, remaining: usize },
}

impl From<Refused> for VmError {
    #[cold]
    #[inline(never)]
    fn from(r: Refused) -> VmError {
        match r {
            Refused::TooDeep => ApiError::TooDeeplyNested.into(),
            Refused::Stack { depth, remaining } => {
                debug_assert!(remaining < STACK_RESERVE);
                ApiError::StackExhausted { depth, remaining }.into()
            }
        }
    }
}
