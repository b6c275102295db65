//! The STFL v1 binary format, in both directions: [`load`] turns the bytes a StoffelLang
//! compiler writes into a validated [`Program`], and [`write()`] turns a [`Program`] back into
//! bytes.
//!
//! The loader accepts everything the reference StoffelVM loader accepts (version 0 or 1,
//! labels in any order, duplicate label names with the later entry winning, duplicate
//! function names, empty names, parent flags other than 0/1, trailing bytes), and rejects what
//! the reference silently mangles (unknown jump labels, constant indices out of range, label
//! targets past the code, registers above the frame limit). Every error carries the byte
//! offset it concerns, plus the function and instruction when known. Nothing is allocated
//! from a count before checking that the bytes left could hold that many elements, and no
//! input can make it panic. Loading is a pure function of the bytes.
//!
//! The writer is deterministic: constants, functions, labels and callees are written in the
//! [`Program`]'s own (canonical) order, so `load(write(p)) == p` for every program `p`.
//!
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
