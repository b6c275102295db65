//! Why a program (or its format metadata) is not valid.

use super::{MAX_FRAME_SIZE, MAX_SPILL_SLOTS};

/// Why a program is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// An `LDI` names a constant the pool does not have.
    #[error(
        "function '{function}', instruction {instruction}: constant index {index} is out of range (the pool has {len})"
    )]
    ConstantOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The bad index.
        index: u32,
        /// Pool size.
        len: usize,
    },
    /// A jump's label index does not name a label of the function.
    #[error(
        "function '{function}', instruction {instruction}: label index {index} is out of range"
    )]
    LabelOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The bad index.
        index: u32,
    },
    /// A `CALL`'s callee index does not name an entry of the callee table.
    #[error(
        "function '{function}', instruction {instruction}: callee index {index} is out of range"
    )]
    CalleeOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The bad index.
        index: u32,
    },
    /// A label points beyond the end of the code.
    #[error(
        "function '{function}': label '{label}' targets instruction {target}, beyond the code ({len} instructions)"
    )]
    LabelBeyondCode {
        /// Function name.
        function: String,
        /// Label name.
        label: String,
        /// Its target.
        target: u32,
        /// Code length.
        len: usize,
    },
    /// Two labels of one function share a name.
    #[error("function '{function}': label '{label}' is defined twice")]
    DuplicateLabel {
        /// Function name.
        function: String,
        /// Label name.
        label: String,
    },
    /// A register index is at or above [`MAX_FRAME_SIZE`].
    #[error("function '{function}', instruction {instruction}: register r{register} is above the frame limit (r{})", MAX_FRAME_SIZE - 1)]
    RegisterOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The register.
        register: u32,
    },
    /// An LDS or STS names a spill slot at or above [`MAX_SPILL_SLOTS`].
    #[error("function '{function}', instruction {instruction}: spill slot {slot} is above the limit ({})", MAX_SPILL_SLOTS - 1)]
    SlotOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The slot.
        slot: u32,
    },
    /// The function's type metadata does not have one type per parameter.
    #[error(
        "function '{function}' declares {params} parameter name(s) but {types} parameter type(s)"
    )]
    TypeCountMismatch {
        /// Function name.
        function: String,
        /// Parameter count.
        params: usize,
        /// Parameter types given.
        types: usize,
    },
    /// A type of the function's metadata cannot be stored (zero width, too deep).
    #[error("function '{function}': {problem}")]
    InvalidType {
        /// Function name.
        function: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The declared register count or the parameter count exceeds [`MAX_FRAME_SIZE`].
    #[error(
        "function '{function}': frame of {size} registers is above the limit of {MAX_FRAME_SIZE}"
    )]
    FrameTooLarge {
        /// Function name.
        function: String,
        /// The requested size.
        size: u32,
    },
}

impl ProgramError {
    /// The instruction index the error is about, if it is about one.
    pub fn instruction(&self) -> Option<usize> {
        match self {
            ProgramError::ConstantOutOfRange { instruction, .. }
            | ProgramError::LabelOutOfRange { instruction, .. }
            | ProgramError::CalleeOutOfRange { instruction, .. }
            | ProgramError::RegisterOutOfRange { instruction, .. }
            | ProgramError::SlotOutOfRange { instruction, .. } => Some(*instruction),
            _ => None,
        }
    }

    /// The name of the function the error is about.
    pub fn function(&self) -> &str {
        match self {
            ProgramError::ConstantOutOfRange { function, .. }
            | ProgramError::LabelOutOfRange { function, .. }
            | ProgramError::CalleeOutOfRange { function, .. }
            | ProgramError::LabelBeyondCode { function, .. }
            | ProgramError::DuplicateLabel { function, .. }
            | ProgramError::RegisterOutOfRange { function, .. }
            | ProgramError::FrameTooLarge { function, .. }
            | ProgramError::SlotOutOfRange { function, .. }
            | ProgramError::TypeCountMismatch { function, .. }
            | ProgramError::InvalidType { function, .. } => function,
        }
    }
}

/// Why a program's format version and manifest do not go together ([`Program::with_format`]).
///
/// [`Program::with_format`]: super::Program::with_format
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The version is above [`FORMAT_VERSION`](super::FORMAT_VERSION).
    #[error("unsupported STFL version {0} (only 0 to {max} are supported)", max = super::FORMAT_VERSION)]
    UnsupportedVersion(u16),
    /// The program holds something the version cannot encode.
    #[error("{what} needs STFL version {needs} or later, but the program is version {version}")]
    NeedsVersion {
        /// What cannot be encoded ("type metadata of function 'f'", "the MPC curve", …).
        what: String,
        /// The lowest version that can.
        needs: u16,
        /// The program's version.
        version: u16,
    },
    /// A client IO schema holds a share type the original VM refuses.
    #[error("client #{client}: {direction} #{index}: {problem}")]
    InvalidShareType {
        /// Index of the client schema.
        client: usize,
        /// "input" or "output".
        direction: &'static str,
        /// Index of the share type in its list.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
}
