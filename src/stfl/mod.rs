//! The STFL binary format (versions 0 to 9), in both directions: [`load`] turns the bytes a
//! StoffelLang compiler writes into a validated [`Program`], and [`write()`] turns a
//! [`Program`] back into bytes.
//!
//! Versions: 0 and 1 are the original layout; 2 adds a manifest after the function table
//! (client IO schemas), 3 an MPC backend byte and 4 an MPC curve byte at its start, 5 the
//! parameter and result types of every function record, 8 a preprocessing demand at the
//! manifest's end. Function type tags 13 and 14 (fixed point; "v6", "v7") and the opcodes
//! NOP (0x17), LDS (0x18) and STS (0x19, "v9") decode in every version, as in the original
//! reader.
//!
//! The loader accepts everything the reference StoffelVM loader accepts (labels in any
//! order, duplicate label names with the later entry winning, duplicate function names,
//! empty names, trailing bytes, and in versions 0 to 4 parent flags other than 0/1), and
//! rejects what the reference silently mangles (unknown jump labels, constant indices out of
//! range, label targets past the code, registers above the frame limit). From version 5 a
//! parent flag other than 0/1 is an error, as in the current original. Every error carries
//! the byte offset it concerns, plus the function and instruction when known. Nothing is
//! allocated from a count before checking that the bytes left could hold that many
//! elements, recursive types nest at most [`MAX_TYPE_DEPTH`] deep, and no input can make it
//! panic. Loading is a pure function of the bytes.
//!
//! The writer writes the program's own version ([`Program::version`]: what it was read as;
//! 9 for assembled programs) and is deterministic: constants, functions, labels and callees
//! are written in the [`Program`]'s own (canonical) order, so `load(write(p)) == p` for
//! every program `p`.
//!
//! [`MAX_TYPE_DEPTH`]: crate::program::MAX_TYPE_DEPTH
//! [`Program::version`]: crate::program::Program::version
//! [`Program`]: crate::program::Program

mod error;
mod loader;
mod writer;

pub use error::{LoadError, LoadErrorKind, WriteError};
pub use loader::{LoadInfo, load, load_with_info};
pub use writer::write;

/// The four bytes every STFL file starts with.
pub const MAGIC: [u8; 4] = *b"STFL";

/// The newest version: what [`write()`] emits for a program built by the assembler or
/// [`Program::new`](crate::program::Program::new). [`load`] accepts this and every lower
/// version; [`write()`] writes each program in the version it was read as.
pub const VERSION: u16 = crate::program::FORMAT_VERSION;
