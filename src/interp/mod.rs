//! The interpreter: frames on one register stack, the dispatch loop, call/return, limits and
//! runtime errors.
//!
//! All interpreter state ([`Interp`]) lives in the arena root, so the loop can stop after a
//! bounded number of instructions ([`run`] returns [`Step::Yield`]) and the collector can run
//! between steps, like piccolo's stepping executor. A call to a host function also ends the
//! step ([`Step::HostCall`]): the driver in [`crate::vm`] makes the call outside the arena,
//! then hands the result back with [`Interp::deliver`]. A host function may therefore execute
//! code on the same VM: the nested execution pushes its own [`Activation`] on the same stacks.
//!
//! Calling convention (StoffelVM's): `PUSHARG` appends to the current frame's pending
//! arguments; `CALL` hands all of them to the callee (argument i in register i) and clears
//! them; the callee's `RET` value, or a builtin's or host function's result, lands in the
//! caller's r0. The arguments stay on the pending stack below the callee's own pending area
//! for as long as the callee runs: they are its parameters' values at call time, which
//! `create_closure` captures by name.
//!
//! Files: `stack` (the state), `call` (call and return: frames pushed and popped), `dispatch` (the general loop), `fast` (the inner loop of simple ops), `lower` (instructions
//! to the loop's 8-byte ops, with fusion),
//! `ops` (arithmetic, comparison), `builtins` (every
//! builtin: names, bodies, fused forms), `stdlib` (the bodies of the current StoffelVM's
//! further builtins: lists, slices, bytes, hashes, local storage, the MPC refusal), `format`
//! (the text `print` and `to_string` make), `code` (functions linked against the VM's name
//! table), `error`. Limits come from
//! [`crate::limits`].

pub mod builtins;
mod call;
pub mod code;
mod dispatch;
mod error;
mod fast;
pub(crate) mod format;
mod lower;
mod ops;
mod stack;
mod stdlib;

use crate::heap::{AllocError, Meter};
use crate::limits::Limits;
use crate::value::Value;

pub use dispatch::run;
pub use error::{BACKTRACE_ENDS, ExternalError, RuntimeError, RuntimeErrorKind, TraceEntry};
pub(crate) use lower::{Op, WINDOW, lower};
pub use ops::BinOp;
pub use stack::{Interp, Step};
pub(crate) use stdlib::mpc::is_mpc_name;

/// Where `print` writes. With the `send` feature the writer and the callback must be `Send`,
/// as they move with the VM.
pub enum Output {
    /// The process's standard output.
    Stdout,
    /// Any writer.
    #[cfg(not(feature = "send"))]
    Writer(Box<dyn std::io::Write>),
    /// Any writer.
    #[cfg(feature = "send")]
    Writer(Box<dyn std::io::Write + Send>),
    /// A function called with each printed line (newline included).
    #[cfg(not(feature = "send"))]
    Callback(Box<dyn FnMut(&str)>),
    /// A function called with each printed line (newline included).
    #[cfg(feature = "send")]
    Callback(Box<dyn FnMut(&str) + Send>),
}

impl Output {
    /// Writes one piece of text.
    pub fn write_text(&mut self, text: &str) -> std::io::Result<()> {
        match self {
            Output::Stdout => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()
            }
            Output::Writer(w) => {
                w.write_all(text.as_bytes())?;
                w.flush()
            }
            Output::Callback(f) => {
                f(text);
                Ok(())
            }
        }
    }
}

/// State the interpreter needs that is not in the arena.
pub struct Runtime {
    /// Bytes of live heap values and of the interpreter's stacks.
    pub meter: Meter,
    /// Where `print` writes.
    pub output: Output,
    /// The next object/array id (`Object(n)`), starting at 1.
    pub next_heap_id: u64,
    /// Depth and memory limits (and the instruction limit the driver reads).
    pub(crate) limits: Limits,
    /// Names the running instruction's lookups compared (`create_closure`, a call that
    /// captures upvalues, `get_upvalue`, `set_upvalue`): charged to the instruction budget
    /// past [`FREE_WORK`] ([`Runtime::charge_work`]).
    pub(crate) work: u64,
    /// Work charged that the step's budget could not cover: the step reports it as used, so
    /// the instruction limit pays for it.
    pub(crate) overrun: u64,
    /// The instruction budget left when the running step began (`u64::MAX` without a limit
    /// and outside the interpreter): a builtin whose work passes it stops at once.
    pub(crate) work_cap: u64,
    /// The directory `LocalStorage.*` keeps values in (`None`: not configured).
    pub(crate) local_storage: Option<std::path::PathBuf>,
}

/// Names one instruction may compare in its lookups for the price of the instruction. Past
/// that, every name compared (a frame, a parameter or a cell examined) costs one more unit
/// of the instruction budget, so the limit bounds CPU time however deep the stack or large
/// the closure (issue 18, item 3).
pub(crate) const FREE_WORK: u64 = 64;

impl Runtime {
    /// Fresh runtime state with default limits.
    pub fn new(meter: Meter) -> Runtime {
        Runtime {
            meter,
            output: Output::Stdout,
            next_heap_id: 1,
            limits: Limits::default(),
            work: 0,
            overrun: 0,
            work_cap: u64::MAX,
            local_storage: None,
        }
    }

    /// Takes the work the last instruction did and returns what it costs of the `left`
    /// budget; what `left` cannot cover goes on [`Runtime::overrun`].
    #[inline(always)]
    pub(crate) fn charge_work(&mut self, left: u32) -> u32 {
        let work = std::mem::take(&mut self.work);
        if work <= FREE_WORK {
            return 0;
        }
        self.charge_extra(work - FREE_WORK, left)
    }

    #[cold]
    #[inline(never)]
    fn charge_extra(&mut self, extra: u64, left: u32) -> u32 {
        let paid = extra.min(u64::from(left));
        self.overrun = self.overrun.saturating_add(extra - paid);
        paid as u32
    }

    /// Takes the next object/array id.
    pub fn heap_id(&mut self) -> u64 {
        let id = self.next_heap_id;
        self.next_heap_id += 1;
        id
    }

    /// Fails if allocating `bytes` more would pass the memory limit (heap plus stacks).
    #[inline]
    pub fn check_alloc(&self, bytes: usize) -> Result<(), RuntimeErrorKind> {
        Ok(self.limits.admit(self.meter.in_use(), bytes)?)
    }

    /// Bytes the memory limit still allows (`usize::MAX` without one), for growth.
    #[inline]
    pub fn room(&self) -> usize {
        self.limits.room(self.meter.in_use())
    }

    /// The runtime error for memory that could not be had: a limit refusal (recorded for
    /// the memory protocol) or the system's.
    #[cold]
    pub fn alloc_error(&self, e: AllocError) -> RuntimeErrorKind {
        match e {
            AllocError::Limit(bytes) => self.limits.refuse(bytes).into(),
            AllocError::System(bytes) => {
                // A wait for this reserves nothing against the limit (not a stale refusal).
                self.limits.take_refused();
                RuntimeErrorKind::OutOfMemory(bytes)
            }
        }
    }
}

/// The kind name used in messages about builtin arguments.
pub(crate) fn kind_name(v: Value<'_>) -> &'static str {
    v.kind().type_name()
}
