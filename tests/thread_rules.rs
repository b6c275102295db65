//! The thread rules of the public types, checked at compile time in every build (with and
//! without the `send` feature).
//!
//! `unsafe impl Send for Vm` (feature `send`, src/vm/send.rs) is sound only if nothing a user
//! holds apart from the VM shares a non-atomic reference count (an `Rc`) or a `Cell` with
//! it: the user's copy could then be touched on one thread while the VM runs on another.
//! Every such type being `Send` rules that out, since a type holding an `Rc` is not `Send`.
//! And a `Vm` is never `Sync`: it is used by one thread at a time.

use stoffel_vm::asm::AsmError;
use stoffel_vm::program::{FormatError, Program, ProgramError};
use stoffel_vm::stfl::{LoadError, LoadErrorKind, WriteError};
use stoffel_vm::{
    ApiError, ConvertError, ExternalError, Func, GcStats, Handle, HandleError, HostError,
    InterruptHandle, Kind, Rooted, RuntimeError, RuntimeErrorKind, TraceEntry, Val, Vm, VmError,
};

fn send_and_sync<T: Send + Sync>() {}

/// What a user can keep apart from the VM is `Send + Sync`: values and handles, function
/// handles, statistics, programs, and every error and its parts.
#[test]
fn what_users_hold_apart_from_the_vm_is_send_and_sync() {
    send_and_sync::<Val>();
    send_and_sync::<Handle>();
    send_and_sync::<Rooted>();
    send_and_sync::<Func>();
    send_and_sync::<Kind>();
    send_and_sync::<GcStats>();
    send_and_sync::<Program>();
    send_and_sync::<InterruptHandle>();
    send_and_sync::<VmError>();
    send_and_sync::<RuntimeError>();
    send_and_sync::<RuntimeErrorKind>();
    send_and_sync::<TraceEntry>();
    send_and_sync::<ExternalError>();
    send_and_sync::<ApiError>();
    send_and_sync::<HostError>();
    send_and_sync::<ConvertError>();
    send_and_sync::<HandleError>();
    send_and_sync::<LoadError>();
    send_and_sync::<LoadErrorKind>();
    send_and_sync::<WriteError>();
    send_and_sync::<AsmError>();
    send_and_sync::<ProgramError>();
    send_and_sync::<FormatError>();
}

/// Resolves to one `method` if `T` is not `Sync`, and is ambiguous (a compile error) if it is.
trait AmbiguousIfSync<A> {
    fn method() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
struct IsSync;
impl<T: ?Sized + Sync> AmbiguousIfSync<IsSync> for T {}

/// A `Vm` is never `Sync`, with or without the `send` feature: two threads never use one at
/// once. (This compiles only while `Vm` is not `Sync`.)
#[test]
fn a_vm_is_never_sync() {
    <Vm as AmbiguousIfSync<_>>::method();
}
