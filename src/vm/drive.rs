//! Execution: starting an activation and driving the interpreter in steps.
//!
//! [`Vm::drive`] alternates: run the interpreter for a bounded slice of fuel inside
//! `mutate`, then (outside it) pay the collector's debt, settle the memory limit and make
//! any host call the step stopped at. Host functions may re-enter: a nested execution pushes
//! its own activation on the same interpreter stacks, up to [`MAX_REENTRY`] levels.

use std::cell::Cell;
use std::rc::Rc;

use super::Vm;
use super::val::{val_to_value, vals_to_values, value_to_val};
use crate::Val;
use crate::error::{ApiError, VmError};
use crate::interp::builtins::Builtin;
use crate::interp::code::Binding;
use crate::interp::{self, RuntimeErrorKind, Step};
use crate::limits::{MAX_REENTRY, settle_memory};
use crate::value::Value;

/// Keeps the re-entry depth right even if a host function panics through `execute`.
pub(super) struct NestGuard(Rc<Cell<u32>>);

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
    pub fn execute(&mut self, name: &str, args: &[Val]) -> Result<Val, VmError> {
        self.run_named(name, args, true)
    }

    /// Like [`Vm::execute`], but a bytecode function must get exactly its parameter count,
    /// also when that is more than zero and `args` is empty (StoffelVM's
    /// `execute_with_args`).
    pub fn call(&mut self, name: &str, args: &[Val]) -> Result<Val, VmError> {
        self.run_named(name, args, false)
    }

    pub(super) fn run_named(
        &mut self,
        name: &str,
        args: &[Val],
        lenient: bool,
    ) -> Result<Val, VmError> {
        match self.code.lookup(name) {
            Binding::Unbound => Err(ApiError::FunctionNotFound(name.to_owned()).into()),
            Binding::Host(h) => {
                let _guard = self.enter()?;
                self.call_host_directly(h, name, args)
            }
            Binding::Function(f) => {
                let _guard = self.enter()?;
                let code = &self.code;
                let rt = &mut self.rt;
                let begun = self.arena.mutate_root(|mc, root| -> Result<(), VmError> {
                    // The usual few arguments convert into a stack buffer, not a Vec.
                    let mut buffer = [Value::Unit; 8];
                    let owned;
                    let values: &[Value<'_>] = if args.len() <= buffer.len() {
                        for (slot, a) in buffer.iter_mut().zip(args) {
                            *slot = val_to_value(mc, &rt.meter, &root.handles, a)?;
                        }
                        &buffer[..args.len()]
                    } else {
                        owned = vals_to_values(mc, &rt.meter, &root.handles, args)?;
                        &owned
                    };
                    root.interp.begin_function(code, rt, f, values, lenient)?;
                    Ok(())
                });
                if let Err(e) = begun {
                    return self.begin_failed(e, f, args, lenient);
                }
                self.drive()
            }
            Binding::Builtin(b) => {
                let _guard = self.enter()?;
                self.run_builtin(b, args)
            }
        }
    }

    /// Starting bytecode function `f` failed with `e`. The activation's stacks are admitted
    /// by the memory limit: refused, it gets one collection and one retry (the memory
    /// protocol of `crate::limits`).
    #[cold]
    #[inline(never)]
    fn begin_failed(
        &mut self,
        e: VmError,
        f: u32,
        args: &[Val],
        lenient: bool,
    ) -> Result<Val, VmError> {
        let e = match e {
            VmError::Runtime(r) if r.kind.is_memory() => {
                self.collect_all();
                match self.begin_function(f, args, lenient) {
                    Ok(()) => return self.drive(),
                    Err(e) => e,
                }
            }
            e => e,
        };
        self.after_failure(&e);
        Err(e)
    }

    /// Starts an activation of bytecode function `f` with `args`: the retry after a
    /// collection. `run_named` has the same code inline: calling this from there instead
    /// costs host → VM calls 5% (`host_calls` in the benchmark).
    fn begin_function(&mut self, f: u32, args: &[Val], lenient: bool) -> Result<(), VmError> {
        let code = &self.code;
        let rt = &mut self.rt;
        self.arena.mutate_root(|mc, root| -> Result<(), VmError> {
            // The usual few arguments convert into a stack buffer, not a Vec.
            let mut buffer = [Value::Unit; 8];
            let owned;
            let values: &[Value<'_>] = if args.len() <= buffer.len() {
                for (slot, a) in buffer.iter_mut().zip(args) {
                    *slot = val_to_value(mc, &rt.meter, &root.handles, a)?;
                }
                &buffer[..args.len()]
            } else {
                owned = vals_to_values(mc, &rt.meter, &root.handles, args)?;
                &owned
            };
            root.interp.begin_function(code, rt, f, values, lenient)?;
            Ok(())
        })
    }

    pub(super) fn enter(&mut self) -> Result<NestGuard, VmError> {
        let depth = self.nesting.get();
        if depth >= MAX_REENTRY {
            return Err(ApiError::TooDeeplyNested.into());
        }
        if depth == 0 {
            // A top-level execution: fresh budget, and no state left by a host panic.
            self.fuel.refill(self.rt.limits.instructions);
            if self.arena.mutate(|_, root| root.interp.activation_count()) > 0 {
                self.arena.mutate_root(|_, root| root.interp.reset());
            }
        }
        self.nesting.set(depth + 1);
        Ok(NestGuard(self.nesting.clone()))
    }

    pub(super) fn run_builtin(&mut self, b: Builtin, args: &[Val]) -> Result<Val, VmError> {
        let code = &self.code;
        let rt = &mut self.rt;
        let finished = self
            .arena
            .mutate_root(|mc, root| -> Result<bool, VmError> {
                let values = vals_to_values(mc, &rt.meter, &root.handles, args)?;
                Ok(root.interp.begin_builtin(mc, code, rt, b, &values)?)
            })?;
        if finished {
            self.arena
                .mutate_root(|_, root| value_to_val(root.interp.take_result(), &mut root.handles))
        } else {
            self.drive()
        }
    }

    /// Runs the current activation to its end.
    pub(super) fn drive(&mut self) -> Result<Val, VmError> {
        loop {
            let budget = match self.fuel.slice(self.trace.is_some()) {
                Ok(budget) => budget,
                Err(e) => return Err(self.fail_activation(e.into())),
            };
            if self.trace.is_some() {
                self.trace_next();
            }
            let code = &self.code;
            let rt = &mut self.rt;
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
            self.fuel.burn(used);
            self.instructions += u64::from(used);
            match step {
                Step::Yield => {
                    self.collect_debt();
                    let limit = self.rt.limits.memory;
                    let waiting = self.arena.mutate(|_, root| root.interp.waiting_bytes()) > 0;
                    if let Err(e) =
                        settle_memory(limit, waiting, self, Vm::used_bytes, Vm::collect_all)
                    {
                        return Err(self.fail_activation(e.into()));
                    }
                }
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
                Step::Error(e) => {
                    let e = VmError::from(*e);
                    self.after_failure(&e);
                    self.collect_debt();
                    return Err(e);
                }
                Step::HostCall { host, slot } => self.call_host(host, slot)?,
            }
        }
    }

    pub(super) fn trace_next(&mut self) {
        let Some((func, ip)) = self.arena.mutate(|_, root| root.interp.position()) else {
            return;
        };
        let f = &self.code.functions[func as usize];
        let text = match f.code.get(ip as usize) {
            Some(ins) => self.describe(ins),
            None => "(end of function)".to_owned(),
        };
        let line = format!("{}[{}]: {}", f.name, ip, text);
        if let Some(sink) = self.trace.as_mut() {
            sink(&line);
        }
    }

    /// A linked instruction in assembly-like text (calls by name, constants by value).
    pub(super) fn describe(&self, ins: &crate::program::Instruction) -> String {
        use crate::program::Instruction as I;
        match *ins {
            I::Ldi { dst, constant } => {
                let c = self.arena.mutate(|_, root| {
                    root.constants
                        .get(constant as usize)
                        .map(|v| v.debug_string())
                        .unwrap_or_default()
                });
                format!("LDI r{dst}, {c}")
            }
            I::Call { callee } => format!("CALL {}", self.code.names[callee as usize]),
            other => {
                let regs: Vec<String> = other.registers().map(|r| format!("r{r}")).collect();
                match other.label() {
                    Some(target) => format!("{} @{target}", other.mnemonic()),
                    None => match other {
                        I::Ld { dst, offset } => format!("LD r{dst}, [sp+{offset}]"),
                        _ => format!("{} {}", other.mnemonic(), regs.join(", ")),
                    },
                }
            }
        }
    }

    /// Heap plus stacks plus what a waiting step needs: what the memory limit compares.
    pub(super) fn used_bytes(&self) -> usize {
        let waiting = self.arena.mutate(|_, root| root.interp.waiting_bytes());
        self.rt.meter.in_use().saturating_add(waiting)
    }

    /// Fails the running activation (at its current instruction) with `kind`.
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
        let top_level = self.arena.mutate_root(|_, root| {
            root.interp.shrink_stacks(meter);
            root.interp.activation_count() == 0
        });
        if top_level && matches!(e, VmError::Runtime(r) if r.kind.is_memory()) {
            self.collect_all();
        }
    }

    /// Instructions this VM has executed in its lifetime (for measurements).
    pub fn instructions_executed(&self) -> u64 {
        self.instructions
    }
}
