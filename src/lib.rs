//! stoffel-vm: an embeddable, garbage-collected, register-based VM for StoffelVM bytecode.
//!
//! # Quick start
//!
//! ```
//! use stoffel_vm::{Rooted, Vm, VmError};
//!
//! fn main() -> Result<(), VmError> {
//!     let mut vm = Vm::new();
//!     // A compiled `.stflb` from the StoffelLang compiler: `vm.load_bytecode(&bytes)?`.
//!     vm.load_assembly(
//!         ".function greet(name)
//!              PUSHARG r0
//!              CALL shout          ; a host function
//!              RET r0",
//!     )?;
//!     vm.register_fn("shout", |s: String| format!("{}!", s.to_uppercase()));
//!     vm.set_instruction_limit(Some(1_000_000)); // a runaway program is an error, not a hang
//!     assert_eq!(vm.call::<String>("greet", ("ada",))?, "ADA!");
//!
//!     // Heap values come back as handles; a `Rooted` releases its handle when dropped.
//!     let list: Rooted = vm.call("range", (0i64, 5i64))?;
//!     assert_eq!(vm.from_val::<Vec<i64>>(&list)?, [0, 1, 2, 3, 4]);
//!     Ok(())
//! }
//! ```
//!
//! # The pieces
//!
//! [`Vm`] loads bytecode ([`Vm::load_bytecode`]: STFL versions 0 to 9) or text assembly
//! ([`Vm::load_assembly`], see [`asm`]), registers host functions ([`Vm::register_fn`] for
//! typed closures, [`Vm::register_function`] for `&[Val]` ones), sets limits (instructions,
//! call depth, memory) and runs code ([`Vm::call`], [`Vm::execute`]). Values cross as [`Val`]:
//! numbers and strings by value, objects, arrays, closures and foreign objects as [`Handle`]s
//! of the VM's handle table, which keep them alive until released ([`Vm::release`], or a
//! [`Rooted`]). [`IntoVal`] / [`FromVal`] convert Rust values, including vectors, tuples and
//! maps. Errors are [`VmError`]s; every failure leaves the VM usable. The C API is [`ffi`]
//! (header `include/stoffel_vm.h`, guide `include/README.md`).
//!
//! # Threads
//!
//! - By default a [`Vm`] is not `Send`: it stays on the thread that made it, and so its host
//!   functions, foreign data and user data may hold `Rc`s, `Cell`s and other thread-bound
//!   state. Run one VM per thread, or one per task on a thread that owns it.
//! - With the cargo feature **`send`**, `Vm` is `Send` (the model of mlua's `send` feature and
//!   Wasmtime's `Store<T: Send>`): a VM moves to another thread with everything in it, its
//!   handles stay valid there, and `Rooted`s may be dropped on any thread. In exchange, what
//!   the VM holds for the host must be able to move too: host functions
//!   ([`Vm::register_fn`], [`Vm::register_function`]) must be `Send + Sync` (`Sync` because
//!   a host function has `&mut Vm` and could move the VM elsewhere while its own call runs),
//!   foreign data ([`ForeignData`]), user data ([`Vm::set_user_data`]), [`Output`] writers
//!   and callbacks and [`TraceSink`]s `Send`. [`MaybeSend`] and [`MaybeSendSync`] name
//!   these bounds, which are empty without the feature. The feature is opt-in because of
//!   them.
//! - A `Vm` is never `Sync`: one thread uses it at a time (`&mut self`).
//! - Everything else is `Send + Sync` in both builds: [`Val`], [`Handle`], [`Rooted`],
//!   [`Func`], every error type, and [`InterruptHandle`], whose `interrupt()` stops a running
//!   execution from any other thread.
//! - The C API lets a VM move between threads (one thread at a time; a second thread gets
//!   `STOFFEL_ERROR_REENTRANCY`), with or without the feature, because C callbacks carry no
//!   Rust thread rules.
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
pub use interp::{
    BACKTRACE_ENDS, ExternalError, Output, RuntimeError, RuntimeErrorKind, TraceEntry,
};
pub use limits::{DEFAULT_MAX_DEPTH, MAX_REENTRY, STACK_RESERVE};
pub use value::Kind;
/// For the C API's scalar call path.
pub(crate) use vm::Scalar;
pub use vm::{
    Args, ForeignData, FromVal, Func, GcStats, HostArg, HostFn, HostReturn, InterruptHandle,
    IntoArgs, IntoHostFn, IntoVal, MaybeSend, MaybeSendSync, Progress, Rooted, RunAsync, TraceSink,
    Val, Vm,
};

/// The README's Rust code, compiled and run as a doctest so the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
