//! stoffel-vm: an embeddable, garbage-collected, register-based VM for StoffelVM bytecode.
//!
//! Embed it with [`Vm`]: load bytecode ([`Vm::load_bytecode`], an STFL file from the
//! StoffelLang compiler) or text assembly ([`Vm::load_assembly`]), register host functions,
//! set limits, and [`Vm::execute`]. Values cross as [`Val`]; heap values as [`Handle`]s the
//! VM owns. The C API is [`ffi`] (header `include/stoffel_vm.h`).
//!
//! Data flows one way: bytes ([`stfl`]) or text ([`asm`]) → a validated [`program::Program`]
//! → linked into a [`Vm`] → run by the interpreter on values in a gc-arena heap → out to the
//! host only as owned values or handles. The README's "Architecture" section maps every
//! module.

#![warn(missing_docs)]
// `unsafe` lives in the C API only; everywhere else the compiler refuses it.
#![deny(unsafe_code)]

pub mod asm;
#[allow(unsafe_code)]
pub mod ffi;
pub mod program;
pub mod stfl;

mod error;
mod handles;
mod heap;
mod interp;
mod limits;
mod value;
mod vm;

pub use error::{ApiError, ConvertError, HostError, VmError};
#[doc(hidden)]
pub use handles::__advance_handle_counter_for_tests;
pub use handles::{Handle, HandleError, MAX_LIVE_HANDLES};
pub use interp::{ExternalError, Output, RuntimeError, RuntimeErrorKind};
pub use limits::{DEFAULT_MAX_DEPTH, MAX_REENTRY, STACK_RESERVE};
pub use value::Kind;
pub use vm::{
    Args, FromVal, Func, GcStats, HostArg, HostFn, HostReturn, IntoArgs, IntoHostFn, IntoVal,
    Rooted, TraceSink, Val, Vm,
};

/// The README's Rust code, compiled and run as a doctest so the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
