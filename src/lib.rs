//! stoffel-vm: an embeddable, garbage-collected, register-based VM for StoffelVM bytecode.
//!
//! Data flows one way: bytes ([`stfl`]) or text ([`asm`]) → a validated [`program::Program`]
//! → linked into a [`Vm`] ([`interp::code`]) → run by the interpreter ([`interp`]) on
//! values in a gc-arena heap ([`value`], [`heap`]) → out to the host only as owned values or
//! [`handles`].

#![warn(missing_docs)]

pub mod asm;
pub mod ffi;
pub mod handles;
pub mod heap;
pub mod interp;
pub mod limits;
pub mod program;
pub mod stfl;
pub mod value;
pub mod vm;

pub use handles::{Handle, HandleError};
pub use interp::{ErrorKind, Output, RuntimeError};
pub use vm::{ApiError, GcStats, HostError, HostFn, TraceSink, Val, Vm, VmError};
