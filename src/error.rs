//! The errors of the embedding API: [`VmError`] (everything a VM call can fail with),
//! [`ApiError`] (misuse of the API) and [`HostError`] (a host function's failure).
//!
//! Each front end and the interpreter keep their own error types ([`LoadError`],
//! [`AsmError`], [`RuntimeError`], [`HandleError`]); `VmError` wraps them unchanged.

use crate::asm::AsmError;
use crate::handles::HandleError;
use crate::interp::{RuntimeError, RuntimeErrorKind};
use crate::limits::MAX_REENTRY;
use crate::stfl::{LoadError, LoadErrorKind};

/// A host function failed; the message becomes part of the runtime error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

impl From<&str> for HostError {
    fn from(s: &str) -> Self {
        HostError(s.to_owned())
    }
}

impl From<String> for HostError {
    fn from(s: String) -> Self {
        HostError(s)
    }
}

impl From<VmError> for HostError {
    fn from(e: VmError) -> Self {
        HostError(e.to_string())
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
    /// Host functions re-entered the VM too deeply.
    #[error("host functions re-entered the VM more than {MAX_REENTRY} levels deep")]
    TooDeeplyNested,
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
    /// Whether this is a limit the host set (instructions, call depth, memory) or the
    /// system refusing memory, rather than a fault of the code or of the call.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            VmError::Runtime(RuntimeError {
                kind: RuntimeErrorKind::FuelExhausted(_)
                    | RuntimeErrorKind::DepthExceeded(_)
                    | RuntimeErrorKind::MemoryLimit(_)
                    | RuntimeErrorKind::OutOfMemory(_),
                ..
            }) | VmError::Api(ApiError::OutOfMemory(_))
                | VmError::Load(LoadError {
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
