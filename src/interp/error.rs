//! Runtime errors: what went wrong ([`RuntimeErrorKind`]) and where ([`RuntimeError`]:
//! function and instruction index).

use crate::limits::Exceeded;
use crate::value::Kind;
use std::sync::Arc;

/// What went wrong, without where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeErrorKind {
    /// Operand kinds an operation does not accept (StoffelVM's "Type error in ADD
    /// operation", with the kinds added).
    #[error("Type error in {op} operation: {}", match right { Some(r) => format!("cannot apply to {left} and {r}"), None => format!("cannot apply to {left}") })]
    Type {
        /// The operation.
        op: &'static str,
        /// Left (or only) operand kind.
        left: Kind,
        /// Right operand kind.
        right: Option<Kind>,
    },
    /// Integer or float division by zero.
    #[error("Division by zero")]
    DivisionByZero,
    /// Integer or float modulo by zero.
    #[error("Modulo by zero")]
    ModuloByZero,
    /// An integer result out of its kind's range: ADD, SUB, MUL overflow (unsigned SUB
    /// below 0 included), signed `MIN / -1` and `MIN % -1`.
    #[error("Integer overflow in {op} operation")]
    Overflow {
        /// The operation.
        op: &'static str,
    },
    /// A shift amount that is negative or does not fit in 32 bits.
    #[error("Invalid shift amount {amount} in {op} operation")]
    InvalidShift {
        /// SHL or SHR.
        op: &'static str,
        /// The amount.
        amount: i64,
    },
    /// A shift amount of at least the operand's width.
    #[error("Shift amount {amount} out of range in {op} operation")]
    ShiftOutOfRange {
        /// SHL or SHR.
        op: &'static str,
        /// The amount.
        amount: u32,
    },
    /// CMP of values that have no order (or a NaN).
    #[error("Cannot compare {left} and {right}")]
    Compare {
        /// Debug text of the left value.
        left: String,
        /// Debug text of the right value.
        right: String,
    },
    /// A call to a name nothing defines.
    #[error("function '{0}' not found")]
    FunctionNotFound(String),
    /// A call of an MPC builtin (`Share.open`, `Mpc.party_id`, …) that nothing defines: the
    /// program needs an MPC engine.
    #[error(
        "'{0}' is an MPC operation: this program needs an MPC engine, which stoffel-vm does not provide"
    )]
    NeedsMpc(String),
    /// A bytecode function called with the wrong number of arguments.
    #[error("function '{function}' expects {expected} arguments but got {got}")]
    Arity {
        /// The callee.
        function: String,
        /// Its parameter count.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// `LD` outside the pending-argument stack.
    #[error("stack address [sp{offset:+}] out of bounds (pending arguments: {len})")]
    StackOutOfBounds {
        /// The offset.
        offset: i32,
        /// How many values were pending.
        len: usize,
    },
    /// Too many frames.
    #[error("maximum call depth of {0} frames exceeded")]
    DepthExceeded(usize),
    /// The instruction budget ran out.
    #[error("instruction limit of {0} exhausted")]
    FuelExhausted(u64),
    /// The memory limit (heap values plus interpreter stacks) would be passed.
    #[error("memory limit of {0} bytes exceeded")]
    MemoryLimit(usize),
    /// The system refused memory the program needed (an allocation of this many bytes),
    /// with or without a limit. Counted as a limit: the VM stays usable.
    #[error("out of memory: could not allocate {0} bytes")]
    OutOfMemory(usize),
    /// A dynamically scoped variable was not found.
    #[error("could not find upvalue '{0}'")]
    UpvalueNotFound(String),
    /// A builtin rejected its arguments.
    #[error("{builtin}: {message}")]
    Builtin {
        /// The builtin's name.
        builtin: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A host function failed.
    #[error("host function '{function}' failed: {message}")]
    Host {
        /// Its name.
        function: String,
        /// Its message.
        message: String,
        /// The host's own error value, when it failed with one
        /// ([`HostError::external`](crate::HostError::external)): downcast it with
        /// [`ExternalError::downcast_ref`].
        external: Option<ExternalError>,
    },
    /// `print` could not write its output.
    #[error("print failed: {0}")]
    Output(String),
    /// The host interrupted the execution ([`InterruptHandle`](crate::InterruptHandle),
    /// `stoffel_interrupt`).
    #[error("execution interrupted by the host")]
    Interrupted,
    /// A broken interpreter invariant: a bug in this crate, reported instead of a panic.
    #[error("internal interpreter error: {0}")]
    Internal(&'static str),
}

/// A host function's own error value, kept (shared) through the VM's error so the embedder
/// can downcast it. Two are equal when they are the same value.
#[derive(Clone)]
pub struct ExternalError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl ExternalError {
    /// Wraps `error`.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> ExternalError {
        ExternalError(Arc::new(error))
    }

    /// The error as its own type, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    /// The error as a trait object.
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl PartialEq for ExternalError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for ExternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for ExternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl RuntimeErrorKind {
    /// Whether this is the memory limit or the system refusing memory.
    pub fn is_memory(&self) -> bool {
        matches!(
            self,
            RuntimeErrorKind::MemoryLimit(_) | RuntimeErrorKind::OutOfMemory(_)
        )
    }
}

impl From<Exceeded> for RuntimeErrorKind {
    fn from(e: Exceeded) -> Self {
        match e {
            Exceeded::Instructions(limit) => RuntimeErrorKind::FuelExhausted(limit),
            Exceeded::Depth(limit) => RuntimeErrorKind::DepthExceeded(limit),
            Exceeded::Memory(limit) => RuntimeErrorKind::MemoryLimit(limit),
        }
    }
}

/// A runtime error: what went wrong, in which function, at which instruction, and the call
/// chain that led there ([`RuntimeError::backtrace`]; its text is
/// [`RuntimeError::backtrace_text`], not part of `Display`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("runtime error in function '{function}' at instruction {instruction}: {kind}")]
pub struct RuntimeError {
    /// The function that was running.
    pub function: String,
    /// The index of the failing instruction in that function.
    pub instruction: usize,
    /// What went wrong.
    pub kind: RuntimeErrorKind,
    /// The call chain, innermost first: the failing frame, its caller at its CALL, … with
    /// the host function between the frames of a nested execution and the host function
    /// that started it. Deep chains keep their first and last [`BACKTRACE_ENDS`] entries
    /// around one [`TraceEntry::Omitted`]. Empty for failures outside any frame (a host
    /// call by name, an argument refused at entry).
    ///
    /// ```
    /// use stoffel_vm::{TraceEntry, Vm, VmError};
    /// let mut vm = Vm::new();
    /// vm.load_assembly(
    ///     ".function outer\n CALL inner\n RET r0\n\
    ///      .function inner registers 3\n LDI r1, 1\n LDI r2, 0\n DIV r0, r1, r2\n RET r0\n",
    /// )
    /// .unwrap();
    /// let Err(VmError::Runtime(e)) = vm.execute("outer", &[]) else { panic!() };
    /// let frame = |f: &str, i| TraceEntry::Frame { function: f.into(), instruction: i };
    /// assert_eq!(e.backtrace, [frame("inner", 2), frame("outer", 0)]);
    /// assert_eq!(e.backtrace_text(), "  at inner, instruction 2\n  at outer, instruction 0\n");
    /// ```
    pub backtrace: Vec<TraceEntry>,
}

/// Entries kept at each end of a long backtrace.
pub const BACKTRACE_ENDS: usize = 16;

/// One entry of a [`RuntimeError::backtrace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEntry {
    /// A bytecode frame, at the instruction that failed (innermost) or its CALL (callers).
    Frame {
        /// The function.
        function: String,
        /// The instruction index.
        instruction: usize,
    },
    /// A host function (or C callback) that started the frames above it (a nested
    /// execution); `None` when the host call did not come from bytecode's CALL.
    Host {
        /// The host function's name.
        function: Option<String>,
    },
    /// Entries left out of a deep chain.
    Omitted(usize),
}

impl RuntimeError {
    /// An error with no backtrace.
    pub fn new(function: impl Into<String>, instruction: usize, kind: RuntimeErrorKind) -> Self {
        RuntimeError {
            function: function.into(),
            instruction,
            kind,
            backtrace: Vec::new(),
        }
    }

    /// The backtrace as text, one entry per line (`  at f, instruction 3`, `  in host
    /// function 'cb'`, `  ... 9,968 entries left out ...`); empty when there is none.
    pub fn backtrace_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for entry in &self.backtrace {
            let _ = match entry {
                TraceEntry::Frame {
                    function,
                    instruction,
                } => writeln!(out, "  at {function}, instruction {instruction}"),
                TraceEntry::Host { function: Some(f) } => writeln!(out, "  in host function '{f}'"),
                TraceEntry::Host { function: None } => writeln!(out, "  in a host call"),
                TraceEntry::Omitted(n) => writeln!(out, "  ... {n} entries left out ..."),
            };
        }
        out
    }
}
