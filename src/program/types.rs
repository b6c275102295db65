//! Function type metadata (STFL v5+): what the compiler declared for each parameter and the
//! result. The VM never uses it to execute; it is kept so that files round-trip and tools can
//! show it.

use std::fmt;

/// How deeply a [`FunctionType`] may nest (`list<list<…>>`). Real types nest a few levels;
/// the cap keeps a hostile file from exhausting the native stack of the recursive reader,
/// writer, printer and `Drop`.
pub const MAX_TYPE_DEPTH: usize = 64;

/// A declared type, as the StoffelLang compiler records it. The STFL tag of each variant is
/// given in brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FunctionType {
    /// \[0\] An integer of `bits` bits (never 0).
    Int {
        /// Signed (`int64`) or unsigned (`uint64`).
        signed: bool,
        /// Width in bits, 1..=255.
        bits: u8,
    },
    /// \[1\] `float`.
    Float,
    /// \[2\] `string`.
    String,
    /// \[3\] `bool`.
    Bool,
    /// \[4\] `nil`.
    Nil,
    /// \[5\] `void` (a function that returns nothing).
    Void,
    /// \[6\] A secret (MPC-shared) value of the inner type.
    Secret(Box<FunctionType>),
    /// \[7\] A list of the inner type.
    List(Box<FunctionType>),
    /// \[8\] A dictionary from the first type to the second.
    Dict(Box<FunctionType>, Box<FunctionType>),
    /// \[9\] An object type by name.
    Object(String),
    /// \[10\] A generic type applied to parameters.
    Generic(String, Vec<FunctionType>),
    /// \[11\] A type variable.
    TypeVar(String),
    /// \[12\] Not known (also what a pre-v5 file implies for every parameter and result).
    Unknown,
    /// \[13\] (64 bits) or \[14\] (other widths): a fixed-point number of `bits` bits (never 0).
    Fixed {
        /// Width in bits, 1..=255.
        bits: u8,
    },
}

impl FunctionType {
    /// The STFL tag byte this type is written with (13 for `Fixed { bits: 64 }`, as the
    /// original writer does; 14 for other widths).
    pub fn tag(&self) -> u8 {
        match self {
            FunctionType::Int { .. } => 0,
            FunctionType::Float => 1,
            FunctionType::String => 2,
            FunctionType::Bool => 3,
            FunctionType::Nil => 4,
            FunctionType::Void => 5,
            FunctionType::Secret(_) => 6,
            FunctionType::List(_) => 7,
            FunctionType::Dict(..) => 8,
            FunctionType::Object(_) => 9,
            FunctionType::Generic(..) => 10,
            FunctionType::TypeVar(_) => 11,
            FunctionType::Unknown => 12,
            FunctionType::Fixed { bits: 64 } => 13,
            FunctionType::Fixed { .. } => 14,
        }
    }

    /// The types directly inside this one.
    pub fn children(&self) -> Vec<&FunctionType> {
        match self {
            FunctionType::Secret(t) | FunctionType::List(t) => vec![t],
            FunctionType::Dict(k, v) => vec![k, v],
            FunctionType::Generic(_, params) => params.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Why this type cannot be stored (a zero width, nesting deeper than
    /// [`MAX_TYPE_DEPTH`]), if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        self.problem_at(1)
    }

    fn problem_at(&self, depth: usize) -> Option<&'static str> {
        if depth > MAX_TYPE_DEPTH {
            return Some("type nests too deeply");
        }
        match self {
            FunctionType::Int { bits: 0, .. } => Some("integer type has a bit width of 0"),
            FunctionType::Fixed { bits: 0 } => Some("fixed-point type has a bit width of 0"),
            _ => self
                .children()
                .into_iter()
                .find_map(|t| t.problem_at(depth + 1)),
        }
    }
}

/// The declared types of one function: one per parameter, and the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionTypes {
    /// One type per parameter, in order (as many as the function has parameters).
    pub params: Vec<FunctionType>,
    /// The result type.
    pub ret: FunctionType,
}

impl FunctionTypes {
    /// Whether every type is [`FunctionType::Unknown`]: such metadata says nothing, and a
    /// [`Program`](super::Program) keeps it as no metadata at all (the canonical form).
    pub fn is_unknown(&self) -> bool {
        self.ret == FunctionType::Unknown && self.params.iter().all(|t| *t == FunctionType::Unknown)
    }
}

/// Writes a name bare when it is a plain identifier, quoted with escapes otherwise (the
/// assembler's name syntax).
fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '$'))
        && !name.ends_with(':');
    if plain {
        f.write_str(name)
    } else {
        write!(f, "{}", super::Constant::String(name.into()))
    }
}

impl fmt::Display for FunctionType {
    /// The assembly spelling (see [`crate::asm`]): `int64`, `uint8`, `fix<32>`, `float`,
    /// `string`, `bool`, `nil`, `void`, `unknown`, `secret<T>`, `list<T>`, `dict<K, V>`,
    /// `object<Name>`, `generic<Name, T…>`, `var<Name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionType::Int { signed, bits } => {
                write!(f, "{}int{bits}", if *signed { "" } else { "u" })
            }
            FunctionType::Float => f.write_str("float"),
            FunctionType::String => f.write_str("string"),
            FunctionType::Bool => f.write_str("bool"),
            FunctionType::Nil => f.write_str("nil"),
            FunctionType::Void => f.write_str("void"),
            FunctionType::Unknown => f.write_str("unknown"),
            FunctionType::Fixed { bits } => write!(f, "fix<{bits}>"),
            FunctionType::Secret(t) => write!(f, "secret<{t}>"),
            FunctionType::List(t) => write!(f, "list<{t}>"),
            FunctionType::Dict(k, v) => write!(f, "dict<{k}, {v}>"),
            FunctionType::Object(name) => {
                f.write_str("object<")?;
                write_name(f, name)?;
                f.write_str(">")
            }
            FunctionType::TypeVar(name) => {
                f.write_str("var<")?;
                write_name(f, name)?;
                f.write_str(">")
            }
            FunctionType::Generic(name, params) => {
                f.write_str("generic<")?;
                write_name(f, name)?;
                for p in params {
                    write!(f, ", {p}")?;
                }
                f.write_str(">")
            }
        }
    }
}
