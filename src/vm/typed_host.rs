//! Host functions from typed closures: [`Vm::register_fn`] takes a closure such as
//! `|a: i64, s: String| -> Result<i64, E>`, checks the argument count and kinds, converts
//! the arguments ([`HostArg`]) and the result ([`HostReturn`]), and keeps the closure's
//! error value typed ([`HostError::external`]).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use super::convert::IntoVal;
use super::send::MaybeSendSync;
use super::{Val, Vm};
use crate::error::{HostError, VmError};

/// A parameter type of a typed host function: read from the call's argument.
///
/// A `Val` parameter is the argument itself, whose handle the VM owns and releases after
/// the call; retain it ([`Vm::retain`]) to keep it. Scalars, strings, `Option`s and
/// vectors or string-keyed maps of those are copies.
pub trait HostArg: Sized {
    /// Converts argument `arg`.
    fn from_arg(arg: &Val, vm: &mut Vm) -> Result<Self, VmError>;
}

macro_rules! plain_host_args {
    ($($t:ty),*) => {$(
        impl HostArg for $t {
            fn from_arg(arg: &Val, _vm: &mut Vm) -> Result<$t, VmError> {
                Ok(<$t>::try_from(arg)?)
            }
        }
        /// An array's elements, copied.
        impl HostArg for Vec<$t> {
            fn from_arg(arg: &Val, vm: &mut Vm) -> Result<Vec<$t>, VmError> {
                vm.from_val(arg)
            }
        }
        /// An object with string keys, copied.
        impl HostArg for HashMap<String, $t> {
            fn from_arg(arg: &Val, vm: &mut Vm) -> Result<Self, VmError> {
                vm.from_val(arg)
            }
        }
        /// An object with string keys, copied.
        impl HostArg for BTreeMap<String, $t> {
            fn from_arg(arg: &Val, vm: &mut Vm) -> Result<Self, VmError> {
                vm.from_val(arg)
            }
        }
    )*};
}

plain_host_args!(
    i64,
    i32,
    i16,
    i8,
    u64,
    u32,
    u16,
    u8,
    f64,
    f32,
    bool,
    String,
    ()
);

/// The argument itself (see [`HostArg`]).
impl HostArg for Val {
    fn from_arg(arg: &Val, _vm: &mut Vm) -> Result<Val, VmError> {
        Ok(arg.clone())
    }
}

/// Unit is `None`.
impl<T: HostArg> HostArg for Option<T> {
    fn from_arg(arg: &Val, vm: &mut Vm) -> Result<Option<T>, VmError> {
        match arg {
            Val::Unit => Ok(None),
            other => T::from_arg(other, vm).map(Some),
        }
    }
}

/// What a typed host function returns: a value ([`IntoVal`], handed over to the VM) or a
/// `Result` of one, whose error may be any `std::error::Error + Send + Sync` (kept typed, see
/// [`HostError::external`]; a [`HostError`] is passed on as it is).
pub trait HostReturn {
    /// The value for the VM, or the failure.
    fn into_result(self, vm: &mut Vm) -> Result<Val, HostError>;
}

impl<T: IntoVal, E: std::error::Error + Send + Sync + 'static> HostReturn for Result<T, E> {
    fn into_result(self, vm: &mut Vm) -> Result<Val, HostError> {
        match self {
            Ok(v) => v.into_val(vm).map_err(HostError::from),
            Err(e) => Err(into_host_error(e)),
        }
    }
}

macro_rules! plain_host_returns {
    ($($t:ty),*) => {$(
        impl HostReturn for $t {
            fn into_result(self, vm: &mut Vm) -> Result<Val, HostError> {
                self.into_val(vm).map_err(HostError::from)
            }
        }
    )*};
}

plain_host_returns!(
    i64,
    i32,
    i16,
    i8,
    u64,
    u32,
    u16,
    u8,
    f64,
    f32,
    bool,
    String,
    (),
    Val
);

impl<T: IntoVal> HostReturn for Vec<T> {
    fn into_result(self, vm: &mut Vm) -> Result<Val, HostError> {
        self.into_val(vm).map_err(HostError::from)
    }
}

impl<T: IntoVal> HostReturn for Option<T> {
    fn into_result(self, vm: &mut Vm) -> Result<Val, HostError> {
        self.into_val(vm).map_err(HostError::from)
    }
}

/// A `HostError` as it is; any other error as the host's own value.
fn into_host_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> HostError {
    let mut slot = Some(e);
    if let Some(host) = (&mut slot as &mut dyn Any).downcast_mut::<Option<HostError>>() {
        return host.take().unwrap_or_else(|| HostError::new(""));
    }
    match slot {
        Some(e) => HostError::external(e),
        None => HostError::new(""),
    }
}

fn check_arity(expected: usize, args: &[Val]) -> Result<(), HostError> {
    if args.len() == expected {
        return Ok(());
    }
    let plural = if expected == 1 { "" } else { "s" };
    Err(HostError::new(format!(
        "expects {expected} argument{plural}, got {}",
        args.len()
    )))
}

fn argument<T: HostArg>(args: &[Val], i: usize, vm: &mut Vm) -> Result<T, HostError> {
    T::from_arg(&args[i], vm).map_err(|e| HostError::new(format!("argument {}: {e}", i + 1)))
}

/// A closure usable as a typed host function: `Fn(A, B, …) -> R` with up to 6 parameters of
/// [`HostArg`] types and an `R` of a [`HostReturn`] type. `Marker` only tells the
/// implementations apart.
pub trait IntoHostFn<Marker>: MaybeSendSync + 'static {
    /// The host function: checks and converts, then calls the closure.
    fn into_host_fn(
        self,
    ) -> impl Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + MaybeSendSync + 'static;
}

macro_rules! host_fn_arity {
    ($n:literal $(, $a:ident $i:tt)*) => {
        impl<F, R, $($a,)*> IntoHostFn<(R, $($a,)*)> for F
        where
            F: Fn($($a),*) -> R + MaybeSendSync + 'static,
            R: HostReturn,
            $($a: HostArg,)*
        {
            #[allow(unused_variables)]
            fn into_host_fn(
                self,
            ) -> impl Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + MaybeSendSync + 'static {
                move |vm: &mut Vm, args: &[Val]| {
                    check_arity($n, args)?;
                    $(let $a: $a = argument(args, $i, vm)?;)*
                    (self)($($a),*).into_result(vm)
                }
            }
        }
    };
}

#[allow(non_snake_case)]
mod arities {
    use super::*;
    host_fn_arity!(0);
    host_fn_arity!(1, A 0);
    host_fn_arity!(2, A 0, B 1);
    host_fn_arity!(3, A 0, B 1, C 2);
    host_fn_arity!(4, A 0, B 1, C 2, D 3);
    host_fn_arity!(5, A 0, B 1, C 2, D 3, E 4);
    host_fn_arity!(6, A 0, B 1, C 2, D 3, E 4, G 5);
}

impl Vm {
    /// Registers a typed host function under `name` (see [`Vm::register_function`] for
    /// names, replacement and re-entry): the VM checks the argument count and converts each
    /// argument to the closure's parameter type, failing the call with a message that names
    /// the argument ("argument 2: expected i64, got string"); the result is converted back,
    /// and an error value is kept typed for [`VmError::host_error`]. With the `send` feature
    /// the closure must be `Send + Sync`, as for [`Vm::register_function`].
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// vm.register_fn("repeat", |s: String, n: i64| s.repeat(n.max(0) as usize));
    /// vm.register_fn("checked_div", |a: i64, b: i64| {
    ///     a.checked_div(b).ok_or(std::fmt::Error) // any std::error::Error
    /// });
    /// assert_eq!(vm.call::<String>("repeat", ("ab", 3i64)).unwrap(), "ababab");
    /// assert_eq!(vm.call::<i64>("checked_div", (7i64, 2i64)).unwrap(), 3);
    /// let err = vm.call::<Val>("checked_div", (7i64, 0i64)).unwrap_err();
    /// assert!(err.host_error::<std::fmt::Error>().is_some());
    /// let err = vm.call::<Val>("repeat", (1i64, 2i64)).unwrap_err();
    /// assert!(err.to_string().ends_with("argument 1: expected string, got int64"), "{err}");
    /// ```
    pub fn register_fn<M>(&mut self, name: &str, function: impl IntoHostFn<M>) {
        self.register_function(name, function.into_host_fn());
    }
}
