//! The errors of both directions: [`LoadError`] (with its [`LoadErrorKind`]) for bytes the
//! loader rejects, and [`WriteError`] for programs the writer cannot encode.

use std::fmt;

use crate::program::ProgramError;

/// Why a file could not be loaded, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// Byte offset in the file of the field, instruction or record the error is about.
    pub offset: usize,
    /// Index (in file order) of the function record the error is in, if it is in one.
    pub function_index: Option<usize>,
    /// Name of that function, once it has been read.
    pub function: Option<String>,
    /// Index of the instruction within the function, when the error is about one.
    pub instruction: Option<usize>,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

/// What is wrong with a file that [`load`](super::load) rejects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadErrorKind {
    /// The file does not start with `STFL`.
    #[error("not an STFL file (bad magic)")]
    BadMagic,
    /// The version field is above [`VERSION`](super::VERSION).
    #[error("unsupported STFL version {0} (only 0 to {max} are supported)", max = super::VERSION)]
    UnsupportedVersion(u16),
    /// The file ends inside a fixed-width field. The error's offset is where the field starts.
    #[error("truncated: {what} needs {needed} bytes, only {available} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the file at the field.
        available: usize,
        /// The field being read.
        what: &'static str,
    },
    /// A string is not valid UTF-8. The error's offset is that of the first invalid byte.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The string being read.
        what: &'static str,
    },
    /// A constant's tag byte is not one of 0..=11.
    #[error("unknown constant tag {0}")]
    UnknownConstantTag(u8),
    /// An instruction's opcode byte is not one of 0x00..=0x19.
    #[error("unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    /// A count or length promises more elements or bytes than the rest of the file could
    /// hold, even at the smallest encoding of each element. This is also how a length prefix
    /// that runs past the end of the file is reported. The error's offset is the count's.
    #[error("{what} {count} is more than the {remaining} remaining bytes can hold")]
    CountTooLarge {
        /// The count or length field.
        what: &'static str,
        /// Its value.
        count: u64,
        /// Bytes left after the field.
        remaining: usize,
    },
    /// A jump names a label its function does not define. The error's offset is the jump's.
    #[error("jump to unknown label '{}'", shorten(name))]
    UnknownLabel {
        /// The label name.
        name: String,
    },
    /// The system refused the memory for `what` (this many bytes): a file's counts are
    /// checked against its size, but a large file can still need more than there is. The
    /// error's offset is the count's.
    #[error("out of memory: could not allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// What the memory was for.
        what: &'static str,
        /// Bytes requested.
        bytes: usize,
    },
    /// A function record's parent flag is neither 0 nor 1 (an error from version 5 on).
    #[error("invalid parent presence flag {0}")]
    InvalidParentFlag(u8),
    /// A function record (v5+) has a different number of parameter types than parameters.
    /// The error's offset is the type count's.
    #[error("{params} parameter name(s) but {types} parameter type(s)")]
    TypeCountMismatch {
        /// Parameter names.
        params: usize,
        /// Parameter types.
        types: usize,
    },
    /// A function type's tag is not one of 0..=14.
    #[error("unknown function type tag {0}")]
    UnknownTypeTag(u8),
    /// A function type cannot be stored: a bit width of 0, or nesting deeper than
    /// [`MAX_TYPE_DEPTH`](crate::program::MAX_TYPE_DEPTH).
    #[error("invalid function type: {0}")]
    InvalidType(&'static str),
    /// The manifest's MPC backend byte is not 0 or 1.
    #[error("unknown MPC backend tag {0} in the manifest")]
    UnknownBackend(u8),
    /// The manifest's MPC curve byte is not one of 0..=5.
    #[error("unknown MPC curve tag {0} in the manifest")]
    UnknownCurve(u8),
    /// A client schema's share type tag is not one of 0..=2.
    #[error("unknown share type tag {0} in the manifest")]
    UnknownShareTypeTag(u8),
    /// A client schema's share type is one the original VM refuses (a bit length of 0, a
    /// fixed point with as many fractional bits as bits).
    #[error("invalid share type in the manifest: {0}")]
    InvalidShareType(&'static str),
    /// The version cannot hold what the file decodes to (never for a well-formed reader;
    /// reported rather than assumed).
    #[error("{0}")]
    Format(Box<crate::program::FormatError>),
    /// The file decodes but the program is not valid (constant index out of range, label
    /// beyond the code, register above the frame limit, frame too large). The error's offset
    /// is that of the instruction, label entry or field concerned.
    #[error("{0}")]
    Invalid(Box<ProgramError>),
}

impl LoadErrorKind {
    /// Whether the bytes decoded but a function does not hold together (a jump to an unknown
    /// label or beyond the code, a constant index out of range, ...), as opposed to bytes that
    /// do not decode. StoffelVM's C API tells the two apart (-3 and -2), so ours does too.
    pub fn is_invalid_function(&self) -> bool {
        matches!(
            self,
            LoadErrorKind::UnknownLabel { .. } | LoadErrorKind::Invalid(_)
        )
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte 0x{:04x}", self.offset)?;
        // A program error names its function and instruction itself.
        let invalid = matches!(self.kind, LoadErrorKind::Invalid(_));
        let mut parts: Vec<String> = Vec::new();
        match (self.function_index, &self.function) {
            (Some(index), Some(name)) if !invalid => {
                parts.push(format!("function #{index} '{}'", shorten(name)))
            }
            (Some(index), _) => parts.push(format!("function #{index}")),
            (None, Some(name)) if !invalid => parts.push(format!("function '{}'", shorten(name))),
            (None, _) => {}
        }
        if let (Some(instruction), false) = (self.instruction, invalid) {
            parts.push(format!("instruction {instruction}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// A name as shown in messages: escaped, and cut short if very long.
fn shorten(name: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = name
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Why a [`Program`] cannot be written as STFL: some length or count does not fit its
/// field. The loader never produces such a program, but a hand-built one can.
///
/// [`Program`]: crate::program::Program
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A length or count is above what its field can hold.
    #[error("{}{what} is {len}, above the STFL limit of {max}", location(*function))]
    TooLong {
        /// Index of the function concerned, if any.
        function: Option<usize>,
        /// The length or count.
        what: &'static str,
        /// Its value.
        len: usize,
        /// The field's maximum.
        max: u64,
    },
    /// An instruction refers to a label or callee the program does not have. A [`Program`]
    /// built by [`Program::new`] never does; this is reported instead of panicking.
    ///
    /// [`Program`]: crate::program::Program
    /// [`Program::new`]: crate::program::Program::new
    #[error("{}instruction {instruction} refers to a missing {what}", location(Some(*function)))]
    DanglingIndex {
        /// Index of the function.
        function: usize,
        /// Index of the instruction.
        instruction: usize,
        /// "label" or "callee".
        what: &'static str,
    },
}

fn location(function: Option<usize>) -> String {
    function.map_or_else(String::new, |i| format!("function #{i}: "))
}
