//! Typed calls: [`Vm::call`] converts its arguments with [`IntoArgs`] and its result with
//! [`FromVal`], and a [`Func`] is a name looked up once and called many times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::convert::{FromVal, IntoVal};
use super::{Val, Vm};
use crate::error::{ApiError, VmError};
use crate::interp::code::Binding;

/// The arguments of a call: a slice of [`Val`]s the caller keeps, or a tuple of Rust values
/// ([`IntoVal`]) converted for the call, whose converted heap values (an array made from a
/// `Vec`, …) the call releases when it returns.
pub trait IntoArgs {
    /// The values, and whether the call owns them (then it releases them).
    fn into_args(self, vm: &mut Vm) -> Result<Args, VmError>;
}

/// Converted call arguments (see [`IntoArgs`]).
pub struct Args {
    vals: Vec<Val>,
    owned: bool,
}

impl Args {
    /// Arguments the caller keeps.
    pub fn borrowed(vals: &[Val]) -> Args {
        Args {
            vals: vals.to_vec(),
            owned: false,
        }
    }

    /// Arguments the call releases when it returns.
    pub fn owned(vals: Vec<Val>) -> Args {
        Args { vals, owned: true }
    }
}

impl IntoArgs for &[Val] {
    fn into_args(self, _vm: &mut Vm) -> Result<Args, VmError> {
        Ok(Args::borrowed(self))
    }
}

impl<const N: usize> IntoArgs for &[Val; N] {
    fn into_args(self, _vm: &mut Vm) -> Result<Args, VmError> {
        Ok(Args::borrowed(self))
    }
}

impl IntoArgs for &Vec<Val> {
    fn into_args(self, _vm: &mut Vm) -> Result<Args, VmError> {
        Ok(Args::borrowed(self))
    }
}

/// No arguments.
impl IntoArgs for () {
    fn into_args(self, _vm: &mut Vm) -> Result<Args, VmError> {
        Ok(Args::owned(Vec::new()))
    }
}

macro_rules! tuple_args {
    ($($t:ident $i:tt),+) => {
        /// Each element converted with [`IntoVal`]; the call releases what it made.
        impl<$($t: IntoVal),+> IntoArgs for ($($t,)+) {
            fn into_args(self, vm: &mut Vm) -> Result<Args, VmError> {
                let mut vals = Vec::new();
                $(
                    match self.$i.into_val(vm) {
                        Ok(v) => vals.push(v),
                        Err(e) => {
                            vm.release_all(&vals);
                            return Err(e);
                        }
                    }
                )+
                Ok(Args::owned(vals))
            }
        }
    };
}

tuple_args!(A 0);
tuple_args!(A 0, B 1);
tuple_args!(A 0, B 1, C 2);
tuple_args!(A 0, B 1, C 2, D 3);
tuple_args!(A 0, B 1, C 2, D 3, E 4);
tuple_args!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_args!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_args!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Gives each VM a serial, so a [`Func`] is refused by every VM but the one that made it.
static NEXT_VM_SERIAL: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_vm_serial() -> u64 {
    NEXT_VM_SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// A function name looked up once ([`Vm::function`]): calling it skips the name lookup.
/// It still follows the name, as calls from bytecode do: if a later load or registration
/// rebinds the name, the `Func` calls the new definition.
#[derive(Clone, Debug)]
pub struct Func {
    slot: u32,
    /// Its own copy (an `Arc`, not the VM's `Rc`: a `Func` may go where the VM does not).
    name: Arc<str>,
    vm: u64,
}

impl Func {
    /// The name it was looked up by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The two numbers this `Func` is made of: its VM's serial (unique in the process, never
    /// 0) and its name's slot. For bindings that hand a `Func` to another language as plain
    /// data (the C API's `StoffelFunction`); [`Vm::func_from_parts`] turns them back.
    pub fn to_parts(&self) -> (u64, u64) {
        (self.vm, u64::from(self.slot))
    }
}

impl Vm {
    /// Calls `name` (a bytecode function, builtin or host function) with `args` converted by
    /// [`IntoArgs`], and converts the result to `R` ([`FromVal`]; `Val` keeps it as it is).
    /// A bytecode function must get exactly its parameter count (StoffelVM's
    /// `execute_with_args`; [`Vm::execute`] also runs one with no arguments).
    ///
    /// Each Rust integer type is the StoffelVM kind of its width (`i64` is `int64`, `u8` is
    /// `uint8`), so write integer literals as `2i64`: a bare `2` is an `i32`, and StoffelLang
    /// code adding it to an `int64` fails with a type error.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// vm.load_assembly(".function add(a, b) registers 3\n    ADD r2, r0, r1\n    RET r2\n").unwrap();
    /// let sum: i64 = vm.call("add", (2i64, 3i64)).unwrap();
    /// assert_eq!(sum, 5);
    /// // A slice of `Val`s works too (the caller keeps them), and `Val` takes any result.
    /// assert_eq!(vm.call::<Val>("add", &[Val::I64(1), Val::I64(1)]).unwrap(), Val::I64(2));
    /// // A result of another kind is an error naming both kinds.
    /// let err = vm.call::<String>("add", (2i64, 3i64)).unwrap_err();
    /// assert_eq!(err.to_string(), "expected string, got int64");
    /// ```
    pub fn call<R: FromVal>(&mut self, name: &str, args: impl IntoArgs) -> Result<R, VmError> {
        let binding = self.code.lookup(name);
        self.call_binding(binding, name, args)
    }

    /// Looks `name` up once, for calling many times with [`Vm::call_func`]. Fails when
    /// nothing is bound to the name now.
    ///
    /// ```
    /// # use stoffel_vm::Vm;
    /// let mut vm = Vm::new();
    /// vm.load_assembly(".function twice(x) registers 2\n    ADD r1, r0, r0\n    RET r1\n").unwrap();
    /// let twice = vm.function("twice").unwrap();
    /// let total: i64 = (0..10i64).map(|i| vm.call_func::<i64>(&twice, (i,)).unwrap()).sum();
    /// assert_eq!(total, 90);
    /// assert!(vm.function("missing").is_err());
    /// ```
    pub fn function(&mut self, name: &str) -> Result<Func, VmError> {
        let slot = self
            .code
            .find_slot(name)
            .filter(|&s| self.code.bindings[s as usize] != Binding::Unbound)
            .ok_or_else(|| ApiError::FunctionNotFound(name.to_owned()))?;
        Ok(Func {
            slot,
            name: Arc::from(&self.code.names[slot as usize]),
            vm: self.serial,
        })
    }

    /// Calls a [`Func`] as [`Vm::call`] calls a name. A `Func` of another VM is refused.
    pub fn call_func<R: FromVal>(
        &mut self,
        func: &Func,
        args: impl IntoArgs,
    ) -> Result<R, VmError> {
        if func.vm != self.serial {
            return Err(ApiError::ForeignFunc(func.name.to_string()).into());
        }
        let binding = self.code.bindings[func.slot as usize];
        let name = func.name.clone();
        self.call_binding(binding, &name, args)
    }

    /// The [`Func`] that [`Func::to_parts`] gave `(vm, slot)` for, checked: parts of another
    /// VM's `Func`, or numbers no `Func` of this VM was made of, are refused
    /// ([`ApiError::InvalidFunc`]), so stale or forged parts never reach another function.
    /// (A name's slot never changes, so parts stay valid for the VM's life.)
    pub fn func_from_parts(&self, vm: u64, slot: u64) -> Result<Func, VmError> {
        let slot = self.check_func_parts(vm, slot)?;
        Ok(Func {
            slot,
            name: Arc::from(&self.code.names[slot as usize]),
            vm,
        })
    }

    /// This VM's serial (unique in the process, never 0).
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The slot of `name`, if any code or host has mentioned it (a name's slot never
    /// changes; [`Vm::call_slot_vals`] calls what it is bound to at the time).
    pub(crate) fn slot_of(&self, name: &str) -> Option<u32> {
        self.code.find_slot(name)
    }

    /// The slot of valid [`Func`] parts (see [`Vm::func_from_parts`]).
    pub(crate) fn check_func_parts(&self, vm: u64, slot: u64) -> Result<u32, VmError> {
        let valid = vm == self.serial && slot < self.code.names.len() as u64;
        match u32::try_from(slot) {
            Ok(slot) if valid => Ok(slot),
            _ => Err(ApiError::InvalidFunc.into()),
        }
    }

    /// Calls the function of slot `slot` (checked by [`Vm::check_func_parts`]): the C API's
    /// `stoffel_call_function`, without making a [`Func`] (whose name is its own copy).
    pub(crate) fn call_slot_vals(&mut self, slot: u32, args: &[Val]) -> Result<Val, VmError> {
        let binding = self.code.bindings[slot as usize];
        match binding {
            // The name is not used on these paths (their messages name the function
            // themselves): no copy of it.
            Binding::Function(_) | Binding::Builtin(_) => {
                self.run_resolved(binding, "", args, false)
            }
            Binding::Host(_) | Binding::Unbound => {
                let name = self.code.names[slot as usize].to_owned();
                self.run_resolved(binding, &name, args, false)
            }
        }
    }

    /// [`Vm::call_func`] for arguments the caller keeps and a [`Val`] result: no conversion,
    /// no copy of the arguments (the C API's `stoffel_call_function` path; see
    /// [`Vm::call_vals`]).
    pub fn call_func_vals(&mut self, func: &Func, args: &[Val]) -> Result<Val, VmError> {
        if func.vm != self.serial {
            return Err(ApiError::ForeignFunc(func.name.to_string()).into());
        }
        let binding = self.code.bindings[func.slot as usize];
        self.run_resolved(binding, &func.name, args, false)
    }

    /// `get_field` with a Rust key and result: `vm.get::<i64>(&obj, "count")`. Missing keys
    /// read as Unit (so ask for an `Option<T>` when a key may be missing).
    ///
    /// ```
    /// # use stoffel_vm::Vm;
    /// let mut vm = Vm::new();
    /// let obj = vm.create_object().unwrap();
    /// vm.set(&obj, "name", "ada").unwrap();
    /// vm.set(&obj, "langs", vec!["en", "fr"]).unwrap();
    /// assert_eq!(vm.get::<String>(&obj, "name").unwrap(), "ada");
    /// assert_eq!(vm.get::<Vec<String>>(&obj, "langs").unwrap(), ["en", "fr"]);
    /// assert_eq!(vm.get::<Option<i64>>(&obj, "age").unwrap(), None);
    /// vm.release(&obj).unwrap();
    /// assert_eq!(vm.gc_stats().live_handles, 0);
    /// ```
    pub fn get<T: FromVal>(&mut self, container: &Val, key: impl Into<Val>) -> Result<T, VmError> {
        let value = self.get_field(container, &key.into())?;
        let converted = T::from_val(&value, self);
        self.release(&value)?;
        converted
    }

    /// `set_field` with a Rust key and value ([`IntoVal`]: the value is moved in, so a `Val`
    /// given here is released once the container holds it).
    pub fn set(
        &mut self,
        container: &Val,
        key: impl Into<Val>,
        value: impl IntoVal,
    ) -> Result<(), VmError> {
        let value = value.into_val(self)?;
        let stored = self.set_field(container, &key.into(), &value);
        let released = self.release(&value);
        stored.and(released)
    }

    /// [`Vm::call`] for arguments the caller keeps and a [`Val`] result: no conversion, no
    /// copy of the arguments (the C API's `stoffel_execute_with_args` path).
    pub fn call_vals(&mut self, name: &str, args: &[Val]) -> Result<Val, VmError> {
        self.run_named(name, args, false)
    }

    fn call_binding<R: FromVal>(
        &mut self,
        binding: Binding,
        name: &str,
        args: impl IntoArgs,
    ) -> Result<R, VmError> {
        let Args { vals, owned } = args.into_args(self)?;
        let result = self.run_resolved(binding, name, &vals, false);
        if owned {
            self.release_all(&vals);
        }
        let value = result?;
        let converted = R::from_val(&value, self);
        // `R` holds its own reference where it keeps a heap value (`Val` retains).
        self.release(&value)?;
        converted
    }
}
