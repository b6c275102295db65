//! Execution: starting an activation and driving the interpreter in steps.
//!
//! [`Vm::drive`] alternates: run the interpreter for a bounded slice of fuel inside
//! `mutate`, then (outside it) pay the collector's debt, settle the memory limit and make
//! any host call the step stopped at. Host functions may re-enter: a nested execution pushes
//! its own activation on the same interpreter stacks, up to [`MAX_REENTRY`] levels.

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use super::Vm;
use super::val::{val_to_value, vals_to_values, value_to_val};
use crate::Val;
use crate::asm::{self, OperandNames};
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
                })?;
                self.drive()
            }
            Binding::Builtin(b) => {
                let _guard = self.enter()?;
                self.run_builtin(b, args)
            }
        }
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
        let finished = self.arena.mutate_root(|mc, root| -> Result<bool, VmError> {
            let values = vals_to_values(mc, &rt.meter, &root.handles, args)?;
            Ok(root.interp.begin_builtin(mc, code, rt, b, &values)?)
        });
        if let Ok(false) = finished {
            // A closure call: it runs on in `drive`, which pays the collector as it steps.
            return self.drive();
        }
        // Finished at once (the usual case: `create_object` by name, the heap API): pay for
        // what the builtin and its string arguments allocated, also when it failed. The
        // result is rooted in the interpreter meanwhile.
        self.collect_debt();
        finished?;
        self.arena
            .mutate_root(|_, root| value_to_val(root.interp.take_result(), &mut root.handles))
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
            let step = self.arena.mutate_root(|mc, root| {
                interp::run(
                    mc,
                    &mut root.interp,
                    &root.constants,
                    code,
                    rt,
                    budget,
                    &mut used,
                )
            });
            self.fuel.burn(used);
            self.instructions += u64::from(used);
            match step {
                Step::Yield => {
                    self.collect_debt();
                    let limit = self.rt.limits.memory;
                    if let Err(e) = settle_memory(limit, self, Vm::used_bytes, Vm::collect_all) {
                        return Err(self.fail_activation(e.into()));
                    }
                }
                Step::Done => {
                    // Collect first (the result is rooted in the interpreter meanwhile), so
                    // the result is converted straight into the return value.
                    self.collect_debt();
                    return self.arena.mutate_root(|_, root| {
                        value_to_val(root.interp.take_result(), &mut root.handles)
                    });
                }
                Step::Error(e) => {
                    self.collect_debt();
                    return Err((*e).into());
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
            Some(ins) => asm::instruction_text(ins, &LinkedNames(self)),
            None => "(end of function)".to_owned(),
        };
        let line = format!("{}[{}]: {}", f.name, ip, text);
        if let Some(sink) = self.trace.as_mut() {
            sink(&line);
        }
    }

    pub(super) fn used_bytes(&self) -> usize {
        self.rt.meter.bytes() + self.arena.mutate(|_, root| root.interp.stack_bytes())
    }

    /// Fails the running activation (at its current instruction) with `kind`.
    pub(super) fn fail_activation(&mut self, kind: RuntimeErrorKind) -> VmError {
        let code = &self.code;
        self.arena
            .mutate_root(|_, root| root.interp.fail_host_call(code, kind))
            .into()
    }

    /// Instructions this VM has executed in its lifetime (for measurements).
    pub fn instructions_executed(&self) -> u64 {
        self.instructions
    }
}

/// How linked code's operands read in a trace: callees by the name of their slot, constants
/// by value, jump targets as instruction indices (`@12`).
struct LinkedNames<'a>(&'a Vm);

impl OperandNames for LinkedNames<'_> {
    fn callee(&self, index: u32) -> Cow<'_, str> {
        match self.0.code.names.get(index as usize) {
            Some(name) => Cow::Borrowed(&**name),
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
        Cow::Owned(format!("@{target}"))
    }
}
