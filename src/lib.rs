//! stoffel-vm: an embeddable, garbage-collected, register-based VM for StoffelVM bytecode.

pub mod asm;
pub mod program;
pub mod stfl;
