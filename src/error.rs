//! The errors of the embedding API: [`VmError`] (everything a VM call can fail with),
//! [`ApiError`] (misuse of the API) and [`HostError`] (a host function's failure).
//!
//! Each front end and the interpreter keep their own error types ([`LoadError`],
//! [`AsmError`], [`RuntimeError`], [`HandleError`]); `VmError` wraps them unchanged.

use std::borrow::Cow;
use std::fmt;

use crate::asm::AsmError;
use crate::handles::HandleError;
use crate::interp::{ExternalError, RuntimeError, RuntimeErrorKind};
use crate::limits::{MAX_REENTRY, STACK_RESERVE};
use crate::stfl::{LoadError, LoadErrorKind};

/// A host function failed: its own message and, when it failed because an execution it
/// started on the VM failed, that execution's error (the *cause*).
///
/// The VM turns it into a [`RuntimeErrorKind::Host`] error at the call. A cause keeps the
/// message of failures through nested executions bounded: a host function that passes on
/// a nested error (`vm.execute(..)?`, or [`HostError::caused_by`]) at every level of a chain
/// of re-entries gives a message that names the innermost error and how many nested
/// executions it came through, whatever the depth, instead of wrapping each level's message
/// in the next.
///
/// ```
/// use stoffel_vm::{HostError, Vm};
/// let plain = HostError::new("disk on fire");
/// assert_eq!(plain.message(), "disk on fire");
/// let mut vm = Vm::new();
/// let failed = vm.execute("missing", &[]).unwrap_err();
/// let passed_on = HostError::caused_by("lookup failed", failed.clone());
/// assert_eq!(passed_on.message(), "lookup failed: function 'missing' not found");
/// assert_eq!(passed_on.cause(), Some(&failed));
/// assert_eq!(HostError::from(failed).message(), "function 'missing' not found");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HostError {
    /// The host's own words; empty when it only passes on `cause`.
    context: String,
    /// The failed nested execution's error.
    cause: Option<Box<VmError>>,
    /// The host's own error value ([`HostError::external`]).
    external: Option<ExternalError>,
}

impl HostError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> HostError {
        HostError {
            context: message.into(),
            cause: None,
            external: None,
        }
    }

    /// A failure that is the host's own error value: its `Display` is the message, and the
    /// value itself travels with the VM's error, so the embedder gets it back typed
    /// ([`VmError::host_error`]).
    ///
    /// ```
    /// use stoffel_vm::{HostError, Vm};
    /// #[derive(Debug, PartialEq)]
    /// struct Overdrawn(i64);
    /// impl std::fmt::Display for Overdrawn {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "overdrawn by {}", self.0)
    ///     }
    /// }
    /// impl std::error::Error for Overdrawn {}
    ///
    /// let mut vm = Vm::new();
    /// vm.register_function("withdraw", |_, _| Err(HostError::external(Overdrawn(5))));
    /// let err = vm.execute("withdraw", &[]).unwrap_err();
    /// assert_eq!(err.host_error::<Overdrawn>(), Some(&Overdrawn(5)));
    /// assert!(err.to_string().ends_with("overdrawn by 5"), "{err}");
    /// ```
    pub fn external(error: impl std::error::Error + Send + Sync + 'static) -> HostError {
        HostError {
            context: error.to_string(),
            cause: None,
            external: Some(ExternalError::new(error)),
        }
    }

    /// The host's own error value, if it failed with one ([`HostError::external`]).
    pub fn external_error(&self) -> Option<&ExternalError> {
        self.external.as_ref()
    }

    /// A failure described by `message`, caused by `cause`: the error of an execution the
    /// host function started on the VM. `HostError::from(cause)` is the same without a
    /// message of its own.
    pub fn caused_by(message: impl Into<String>, cause: VmError) -> HostError {
        HostError {
            context: message.into(),
            cause: Some(Box::new(cause)),
            external: None,
        }
    }

    /// The full message: the host's own words, then `": "` and the cause if there is one.
    pub fn message(&self) -> Cow<'_, str> {
        match (&self.cause, self.context.is_empty()) {
            (None, _) => Cow::Borrowed(&self.context),
            (Some(cause), true) => Cow::Owned(cause.to_string()),
            (Some(cause), false) => Cow::Owned(format!("{}: {cause}", self.context)),
        }
    }

    /// The host's own words, without the cause (empty when it only passes on a cause).
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The error of the nested execution this failure passes on, if any.
    pub fn cause(&self) -> Option<&VmError> {
        self.cause.as_deref()
    }

    /// The host's own words, the cause and the host's error value.
    pub(crate) fn into_parts(self) -> (String, Option<VmError>, Option<ExternalError>) {
        (self.context, self.cause.map(|c| *c), self.external)
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (&self.cause, &self.external) {
            (Some(cause), _) => Some(&**cause),
            (None, Some(external)) => Some(external.get()),
            (None, None) => None,
        }
    }
}

impl From<&str> for HostError {
    fn from(s: &str) -> Self {
        HostError::new(s)
    }
}

impl From<String> for HostError {
    fn from(s: String) -> Self {
        HostError::new(s)
    }
}

/// The error of a nested execution, passed on as the cause (so `vm.execute(..)?` works in a
/// host function).
impl From<VmError> for HostError {
    fn from(e: VmError) -> Self {
        HostError {
            context: String::new(),
            cause: Some(Box::new(e)),
            external: None,
        }
    }
}

/// A [`Val`](crate::Val) was not of the kind a conversion wanted, or its number did not fit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    /// The value is of another kind.
    #[error("expected {expected}, got {got}")]
    WrongKind {
        /// The Rust type or StoffelVM kind wanted.
        expected: &'static str,
        /// The StoffelVM kind found ([`Kind::type_name`](crate::Kind::type_name)).
        got: &'static str,
    },
    /// An integer of the right family that the target type cannot hold.
    #[error("expected {expected}, got {got} {value}, which does not fit")]
    OutOfRange {
        /// The Rust type wanted.
        expected: &'static str,
        /// The StoffelVM kind found.
        got: &'static str,
        /// The value, as text.
        value: String,
    },
    /// An array of the wrong length for a tuple.
    #[error("expected an array of {expected} elements, got {got}")]
    WrongLength {
        /// The tuple's arity.
        expected: usize,
        /// The array's length.
        got: usize,
    },
}

impl From<ConvertError> for VmError {
    fn from(e: ConvertError) -> VmError {
        VmError::Api(ApiError::Convert(e))
    }
}

/// A misuse of the embedding API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// No function, builtin or host function has this name.
    #[error("function '{0}' not found")]
    FunctionNotFound(String),
    /// A bad handle.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// A handle of the wrong kind (an array id passed as an object, …).
    #[error("expected {expected}, got {got}")]
    WrongKind {
        /// What was needed.
        expected: &'static str,
        /// What was given.
        got: &'static str,
    },
    /// Host functions re-entered the VM too deeply: [`MAX_REENTRY`] executions were
    /// running. A limit ([`VmError::is_limit`]).
    #[error("host functions re-entered the VM more than {MAX_REENTRY} levels deep")]
    TooDeeplyNested,
    /// Less than [`STACK_RESERVE`] bytes of the thread's native stack were left, so an
    /// execution (or heap call) was refused before it could overflow the stack. A limit
    /// ([`VmError::is_limit`]); `depth` is how many executions were already running (0: a
    /// top-level call on a thread with a very small stack).
    #[error(
        "not enough native stack to run: {remaining} bytes left, {STACK_RESERVE} needed \
         ({depth} executions running)"
    )]
    StackExhausted {
        /// Executions running on this VM when the call was refused.
        depth: u32,
        /// Bytes of native stack that were left.
        remaining: usize,
    },
    /// A value could not be converted to the Rust type asked for ([`crate::FromVal`],
    /// `TryFrom<Val>`).
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The program declares client inputs or outputs in its manifest (STFL v2+): it needs an
    /// MPC engine, which stoffel-vm does not provide. Nothing was loaded.
    #[error(
        "this program needs an MPC engine, which stoffel-vm does not provide: its manifest \
         declares inputs or outputs for {clients} MPC client(s)"
    )]
    NeedsMpc {
        /// Clients the manifest declares.
        clients: usize,
    },
    /// [`Vm::next_field`](crate::Vm::next_field): the key to continue from is not a field of
    /// the object.
    #[error("the key is not a field of the object")]
    NotAField,
    /// A [`crate::Func`] was called on a VM other than the one that looked it up.
    #[error("function handle '{0}' belongs to another VM")]
    ForeignFunc(String),
    /// [`Vm::func_from_parts`](crate::Vm::func_from_parts): the numbers are not a function
    /// handle of this VM (another VM's, or never made by a lookup).
    #[error("not a function handle of this VM (another VM's, or not made by a lookup)")]
    InvalidFunc,
    /// [`Vm::start`](crate::Vm::start) while an execution is suspended: one per VM at a time
    /// (resume or cancel it first).
    #[error("an execution is already suspended on this VM (resume or cancel it first)")]
    AlreadySuspended,
    /// [`Vm::resume`](crate::Vm::resume) with no execution suspended (it finished, failed or
    /// was cancelled, or none was started).
    #[error("no execution is suspended on this VM")]
    NothingSuspended,
    /// Start, resume or cancel of a time-sliced execution from inside an execution (a host
    /// function): they work on the top-level execution only.
    #[error(
        "time-sliced executions are started, resumed and cancelled only outside executions, not from a host function"
    )]
    SliceInCall,
    /// The program has more constants than the VM can address.
    #[error("too many constants loaded")]
    TooManyConstants,
    /// The system refused memory a load needed (an allocation of this many bytes); nothing
    /// was loaded. Counted as a limit.
    #[error("out of memory: could not allocate {0} bytes")]
    OutOfMemory(usize),
}

/// Everything that can go wrong in a VM call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VmError {
    /// Bytecode could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Assembly could not be assembled.
    #[error(transparent)]
    Assembly(#[from] AsmError),
    /// Code failed while running.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The API was misused.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl VmError {
    /// The error value a host function failed with ([`HostError::external`]), if this is
    /// such a failure and the value is an `E`.
    pub fn host_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            VmError::Runtime(RuntimeError {
                kind:
                    RuntimeErrorKind::Host {
                        external: Some(external),
                        ..
                    },
                ..
            }) => external.downcast_ref(),
            _ => None,
        }
    }

    /// Whether this is a limit (instructions, call depth, memory, re-entry depth, native
    /// stack, live handles, handle ids, retains of one handle) or the system refusing memory,
    /// rather than a fault of the code or of the call. The C API reports these as
    /// `STOFFEL_ERROR_LIMIT`.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            VmError::Runtime(RuntimeError {
                kind: RuntimeErrorKind::FuelExhausted(_)
                    | RuntimeErrorKind::DepthExceeded(_)
                    | RuntimeErrorKind::MemoryLimit(_)
                    | RuntimeErrorKind::OutOfMemory(_),
                ..
            }) | VmError::Api(
                ApiError::TooDeeplyNested
                    | ApiError::StackExhausted { .. }
                    | ApiError::OutOfMemory(_)
                    | ApiError::Handle(
                        HandleError::Full
                            | HandleError::IdsExhausted
                            | HandleError::TooManyRetains(_)
                    )
            ) | VmError::Load(LoadError {
                kind: LoadErrorKind::OutOfMemory { .. },
                ..
            })
        )
    }
}

impl From<HandleError> for VmError {
    fn from(e: HandleError) -> Self {
        VmError::Api(ApiError::Handle(e))
    }
}
