//! Constant-pool entries and their assembly spelling.

use std::fmt;

/// A constant-pool entry. The pool is shared by every function of a program.
#[derive(Clone, Debug)]
pub enum Constant {
    /// The unit value `()`.
    Unit,
    /// A 64-bit signed integer.
    I64(i64),
    /// A 32-bit signed integer.
    I32(i32),
    /// A 16-bit signed integer.
    I16(i16),
    /// An 8-bit signed integer.
    I8(i8),
    /// An 8-bit unsigned integer.
    U8(u8),
    /// A 16-bit unsigned integer.
    U16(u16),
    /// A 32-bit unsigned integer.
    U32(u32),
    /// A 64-bit unsigned integer.
    U64(u64),
    /// A 64-bit float; its bits are carried exactly (NaN payloads and -0.0 included).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An immutable UTF-8 string.
    String(Box<str>),
}

impl PartialEq for Constant {
    /// Constants are equal when they have the same kind and the same bits, so a float constant
    /// round-trips exactly (NaN equals itself, 0.0 and -0.0 differ).
    fn eq(&self, other: &Self) -> bool {
        use Constant::*;
        match (self, other) {
            (Unit, Unit) => true,
            (I64(a), I64(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (I8(a), I8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Bool(a), Bool(b)) => a == b,
            (String(a), String(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Constant {}

impl std::hash::Hash for Constant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        use Constant::*;
        std::mem::discriminant(self).hash(state);
        match self {
            Unit => {}
            I64(v) => v.hash(state),
            I32(v) => v.hash(state),
            I16(v) => v.hash(state),
            I8(v) => v.hash(state),
            U8(v) => v.hash(state),
            U16(v) => v.hash(state),
            U32(v) => v.hash(state),
            U64(v) => v.hash(state),
            Float(v) => v.to_bits().hash(state),
            Bool(v) => v.hash(state),
            String(v) => v.hash(state),
        }
    }
}

impl fmt::Display for Constant {
    /// The assembly spelling of a constant (see [`crate::asm`]): `42`, `7i32`, `3u8`, `1.5`,
    /// `true`, `()`, `"text"` with escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constant::Unit => write!(f, "()"),
            Constant::I64(v) => write!(f, "{v}"),
            Constant::I32(v) => write!(f, "{v}i32"),
            Constant::I16(v) => write!(f, "{v}i16"),
            Constant::I8(v) => write!(f, "{v}i8"),
            Constant::U8(v) => write!(f, "{v}u8"),
            Constant::U16(v) => write!(f, "{v}u16"),
            Constant::U32(v) => write!(f, "{v}u32"),
            Constant::U64(v) => write!(f, "{v}u64"),
            Constant::Float(v) => {
                if v.is_finite() {
                    // `{:?}` always keeps a decimal point or exponent, so it reads back as a float.
                    write!(f, "{v:?}")
                } else {
                    write!(f, "f64:0x{:016x}", v.to_bits())
                }
            }
            Constant::Bool(v) => write!(f, "{v}"),
            Constant::String(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        '\0' => f.write_str("\\0")?,
                        c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
        }
    }
}
