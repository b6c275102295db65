//! The short host → VM call: a bytecode function called from C with a few scalar arguments
//! (`stoffel_call_function`, `stoffel_execute_with_args`), the C API's usual call.
//!
//! The general path ([`Vm::drive_with`]) starts the function in one `mutate`, runs the
//! interpreter in another, converts the result in a third, and runs under its own
//! `catch_unwind`. Most such calls finish within one step of the interpreter, so here one
//! `mutate` starts the frame (the arguments straight into its registers), runs one budgeted
//! step and, when the function returned a scalar, takes the result out. The collector's
//! debt is paid after it, as after any step. Anything else falls back to the general path
//! at the point it was reached, so every limit, error and message is the general path's:
//! - a call that cannot start without a check failing or a stack growing (arity, depth,
//!   memory limit), an instruction limit already spent, a trace, an interrupt: the general
//!   path from the start;
//! - a step that did not finish (budget spent, a host function called): that step's
//!   settlement, then the general driver from there;
//! - an error: the general path's failure handling;
//! - a non-scalar result: converted as the general path converts it.
//!
//! No `catch_unwind` of its own while it runs only the interpreter: the C gate's catches a
//! panic (an internal error), and the next top-level call drops the activation it left
//! ([`Vm::enter`]), as after any host panic. The fallbacks that call host functions run
//! under the driver's.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::Vm;
use super::drive::{Scalar, Start, StartArgs};
use super::val::value_to_val;
use crate::Val;
use crate::error::VmError;
use crate::interp::code::Binding;
use crate::interp::{self, RuntimeError, Step};
use crate::value::Value;

/// Most arguments the short call takes (more go through the general path).
const MAX_SHORT_ARGS: usize = 8;

/// How the short call's one `mutate` ended.
enum Short {
    /// It could not start without the general path's checks: nothing changed.
    NotStarted,
    /// The function returned this scalar (already taken out of the interpreter).
    Value(Val),
    /// The function returned a value that needs a handle or a copy; it is in the interpreter.
    Done,
    /// The step ended before the function returned.
    Yield,
    HostCall(u32, u32),
    Error(Box<RuntimeError>),
}

impl Vm {
    /// Calls the bytecode function bound to slot `slot` with scalar arguments, as
    /// [`Vm::call_slot_vals`] would with the same values as [`Val`]s; `None` (nothing done)
    /// unless the slot is bound to a bytecode function and nothing runs (a nested call takes
    /// the `Val` path).
    /// The error is boxed: a `Result` holding a whole [`VmError`] is copied at each level it
    /// is handed through, on every call. `stack_vouched`: the caller has found far more
    /// than [`crate::STACK_RESERVE`] bytes of native stack left (the C gate, which reads
    /// the thread's stack bounds anyway), so the re-entry gate need not measure it again.
    #[inline]
    pub(crate) fn call_slot_scalars(
        &mut self,
        slot: u32,
        args: &[Scalar],
        stack_vouched: bool,
    ) -> Option<Result<Val, Box<VmError>>> {
        let Some(&Binding::Function(f)) = self.code.bindings.get(slot as usize) else {
            return None;
        };
        if self.nesting.get() != 0 {
            return None;
        }
        // Errors are boxed where they arise, so the usual result is handed back small.
        Some(match self.enter_inline(stack_vouched) {
            Ok(_guard) => self.short_call(f, args),
            Err(refused) => Err(self.scalar_call_failed(refused.into())),
        })
    }

    #[cold]
    #[inline(never)]
    fn scalar_call_failed(&mut self, e: VmError) -> Box<VmError> {
        Box::new(if self.interrupt.is_set() {
            self.interrupted_failure(e)
        } else {
            e
        })
    }

    /// A top-level call of bytecode function `f` (the re-entry gate passed): the short
    /// call where it applies (see the module's comment), else the general path.
    #[inline(always)]
    fn short_call(&mut self, f: u32, args: &[Scalar]) -> Result<Val, Box<VmError>> {
        let budget = match self.fuel.slice(false) {
            Ok(budget)
                if self.trace.is_none()
                    && !self.interrupt.is_set()
                    && args.len() <= MAX_SHORT_ARGS =>
            {
                budget
            }
            _ => return self.general_call(f, args),
        };
        let code = &self.code;
        let rt = &mut self.rt;
        // A builtin's work may not run past what the budget has left (as `run_steps`).
        rt.work_cap = self.fuel.total();
        let mut used = 0;
        let short = self.arena.mutate_root(
            #[inline(always)]
            |mc, root| {
                let arg = |i: usize| args.get(i).map_or(Value::Unit, |a| a.value());
                if !root.interp.begin_short(code, rt, f, args.len(), arg) {
                    return Short::NotStarted;
                }
                let step = interp::run(
                    mc,
                    &mut root.interp,
                    &root.constants,
                    code,
                    rt,
                    budget,
                    &mut used,
                );
                match step {
                    Step::Done => {
                        if root.interp.activation_count() == 0 {
                            // A top-level execution ended: stacks back to their baseline.
                            root.interp.shrink_stacks(&rt.meter);
                        }
                        match scalar_val(root.interp.result) {
                            Some(v) => {
                                root.interp.result = Value::Unit;
                                Short::Value(v)
                            }
                            None => Short::Done,
                        }
                    }
                    Step::Yield => Short::Yield,
                    Step::HostCall { host, slot } => Short::HostCall(host, slot),
                    Step::Error(e) => Short::Error(e),
                }
            },
        );
        self.rt.work_cap = u64::MAX;
        self.fuel.burn(used);
        self.instructions += u64::from(used);
        match short {
            Short::Value(v) => {
                self.collect_debt();
                Ok(v)
            }
            Short::NotStarted => self.general_call(f, args),
            Short::Done => self.short_result(),
            Short::Error(e) => Err(self.short_failed(e)),
            Short::Yield => self.short_continue(None),
            Short::HostCall(host, slot) => self.short_continue(Some((host, slot))),
        }
    }

    /// The general path of a call that the short one does not take.
    #[cold]
    #[inline(never)]
    fn general_call(&mut self, f: u32, args: &[Scalar]) -> Result<Val, Box<VmError>> {
        let args = StartArgs::Scalars(args);
        self.drive_with(
            true,
            Some(Start {
                f,
                args,
                lenient: false,
            }),
        )
        .map_err(|e| self.scalar_call_failed(e))
    }

    /// The short call's step failed: the driver's failure path.
    #[cold]
    #[inline(never)]
    #[allow(clippy::boxed_local)]
    fn short_failed(&mut self, e: Box<RuntimeError>) -> Box<VmError> {
        let e = self.step_failed(e);
        self.scalar_call_failed(e)
    }

    /// A non-scalar result, converted as `run_steps` converts it: after the collector's
    /// debt is paid (the result is rooted in the interpreter meanwhile).
    #[cold]
    #[inline(never)]
    fn short_result(&mut self) -> Result<Val, Box<VmError>> {
        self.collect_debt();
        self.arena
            .mutate_root(|_, root| value_to_val(root.interp.take_result(), &mut root.handles))
            .map_err(|e| self.scalar_call_failed(e))
    }

    /// The short call's step ended before the function returned: settle the step as
    /// `run_steps` does (make the host call it stopped at, or collect and check the memory
    /// limit), then drive the activation on. A panic unwinds the activation, as in
    /// [`Vm::drive_with`].
    #[cold]
    #[inline(never)]
    fn short_continue(&mut self, host_call: Option<(u32, u32)>) -> Result<Val, Box<VmError>> {
        let below = self
            .arena
            .mutate(|_, root| root.interp.activation_count())
            .saturating_sub(1);
        let settled = catch_unwind(AssertUnwindSafe(|| match host_call {
            Some((host, slot)) => self.call_host::<false>(host, slot),
            None => self.settle_step(),
        }));
        let result = match settled {
            Ok(Ok(())) => self.drive_with(true, None),
            Ok(Err(e)) => Err(*e),
            Err(payload) => self.abandon(below, payload),
        };
        result.map_err(|e| self.scalar_call_failed(e))
    }
}

/// A result that needs neither a handle nor a copy, as [`value_to_val`] converts it (an
/// integer inline, the other kinds out of line).
#[inline(always)]
fn scalar_val(v: Value<'_>) -> Option<Val> {
    match v {
        Value::I64(x) => Some(Val::I64(x)),
        other => other_scalar_val(other),
    }
}

#[inline(never)]
fn other_scalar_val(v: Value<'_>) -> Option<Val> {
    Some(match v {
        Value::I64(x) => Val::I64(x),
        Value::Unit => Val::Unit,
        Value::Bool(b) => Val::Bool(b),
        Value::Float(x) => Val::Float(x),
        Value::I32(x) => Val::I32(x),
        Value::I16(x) => Val::I16(x),
        Value::I8(x) => Val::I8(x),
        Value::U8(x) => Val::U8(x),
        Value::U16(x) => Val::U16(x),
        Value::U32(x) => Val::U32(x),
        Value::U64(x) => Val::U64(x),
        _ => return None,
    })
}
