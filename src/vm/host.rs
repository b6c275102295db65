//! Host functions: registering them, and calling them outside the arena.
//!
//! When bytecode calls a host function the interpreter's step ends with the call pending
//! ([`Step::HostCall`](crate::interp::Step)); [`Vm::call_host`] converts the arguments to
//! [`Val`]s (heap values get handles that live for the call), calls the host with
//! `&mut Vm` (so it may execute code on the same VM), and delivers the result into the
//! caller's r0.

use std::rc::Rc;

use super::Vm;
use super::val::{val_to_value, value_to_val};
use crate::Val;
use crate::error::{HostError, VmError};
use crate::interp::code::Binding;
use crate::interp::{RuntimeError, RuntimeErrorKind};
use crate::value::Value;

/// A host function: called with the VM (to re-enter it or use its heap) and the arguments.
///
/// Handles in the arguments are valid during the call (retain one to keep it). A handle in
/// the returned value is handed over to the VM, which releases it once it has the value: a
/// host returns a fresh object without leaking it, and returning an argument is fine; to
/// return a value the host also keeps, retain it first.
pub type HostFn = Rc<dyn Fn(&mut Vm, &[Val]) -> Result<Val, HostError>>;

pub(super) struct HostEntry {
    pub(super) name: Rc<str>,
    pub(super) function: HostFn,
}

impl Vm {
    /// Registers a host function under `name`, replacing any function of that name
    /// (bytecode, builtin or host), as StoffelVM does. The closure may keep state and may
    /// call back into the VM it gets.
    ///
    /// ```
    /// # use std::cell::Cell; use std::rc::Rc;
    /// # use stoffel_vm::{HostError, Val, Vm};
    /// let mut vm = Vm::new();
    /// let calls = Rc::new(Cell::new(0));
    /// let counter = calls.clone();
    /// vm.register_function("twice", move |_vm, args| {
    ///     counter.set(counter.get() + 1);
    ///     match args {
    ///         [Val::I64(n)] => Ok(Val::I64(n * 2)),
    ///         _ => Err(HostError::from("twice: expected one int64")),
    ///     }
    /// });
    /// vm.load_assembly(".function main\n LDI r1, 21\n PUSHARG r1\n CALL twice\n RET r0\n").unwrap();
    /// assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
    /// assert_eq!(calls.get(), 1);
    /// ```
    pub fn register_function<F>(&mut self, name: &str, function: F)
    where
        F: Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + 'static,
    {
        let slot = self.code.slot(name);
        let entry = HostEntry {
            name: Rc::from(name),
            function: Rc::new(function),
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
    pub(super) fn call_host(&mut self, host: u32, slot: u32) -> Result<(), VmError> {
        let mut out = std::mem::take(&mut self.host_args);
        out.clear();
        let args = self.arena.mutate_root(|_, root| {
            for &v in root.interp.host_args() {
                out.push(value_to_val(v, &mut root.handles)?);
            }
            Ok::<_, VmError>(out)
        });
        let args = match args {
            Ok(a) => a,
            Err(e) => {
                return Err(self.fail_activation(RuntimeErrorKind::Host {
                    function: self.code.names[slot as usize].to_string(),
                    message: e.to_string(),
                }));
            }
        };
        let entry = &self.hosts[host as usize];
        let (function, name) = (entry.function.clone(), entry.name.clone());
        let result = function(self, &args);
        let delivered = match result {
            Ok(v) => {
                let meter = &self.rt.meter;
                self.arena
                    .mutate_root(|mc, root| {
                        // An integer goes straight to the register: through `val_to_value`
                        // and `?` it is built in a returned `Result` and copied whole, and
                        // that made VM -> C callbacks 10% slower (measured).
                        let value = match v {
                            Val::I64(x) => Value::I64(x),
                            ref other => val_to_value(mc, meter, &root.handles, other)?,
                        };
                        root.interp.deliver(value);
                        // The host handed its result's handle over (see `HostFn`); an
                        // argument returned as is goes with the arguments below (once: a
                        // reference the host retained stays the host's).
                        if let Some(h) = v.handle()
                            && !args.iter().any(|a| a.handle() == Some(h))
                        {
                            let _ = root.handles.release(h);
                        }
                        Ok::<(), VmError>(())
                    })
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.0),
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
            Err(message) => Err(self.fail_activation(RuntimeErrorKind::Host {
                function: name.to_string(),
                message,
            })),
        }
    }

    /// A host function executed by name: it gets its own argument handles and hands its
    /// result over, exactly as when bytecode calls it; the caller gets a new handle.
    pub(super) fn call_host_directly(
        &mut self,
        host: u32,
        name: &str,
        args: &[Val],
    ) -> Result<Val, VmError> {
        let function = self.hosts[host as usize].function.clone();
        let meter = &self.rt.meter;
        let own_args = self.arena.mutate_root(|mc, root| {
            args.iter()
                .map(|a| {
                    let v = val_to_value(mc, meter, &root.handles, a)?;
                    value_to_val(v, &mut root.handles)
                })
                .collect::<Result<Vec<Val>, VmError>>()
        })?;
        let result = function(self, &own_args);
        let meter = &self.rt.meter;
        let out = match result {
            Ok(v) => self.arena.mutate_root(|mc, root| {
                let value = val_to_value(mc, meter, &root.handles, &v)?;
                // As in `call_host`: an argument returned as is goes with the arguments.
                if let Some(h) = v.handle()
                    && !own_args.iter().any(|a| a.handle() == Some(h))
                {
                    let _ = root.handles.release(h);
                }
                value_to_val(value, &mut root.handles)
            }),
            Err(e) => Err(RuntimeError {
                function: name.to_owned(),
                instruction: 0,
                kind: RuntimeErrorKind::Host {
                    function: name.to_owned(),
                    message: e.0,
                },
            }
            .into()),
        };
        self.release_all(&own_args);
        // Executed by name, no driver runs: pay for the argument strings, what the host
        // allocated and its result here (the result is held by its new handle).
        self.collect_debt();
        out
    }
}
