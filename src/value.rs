//! Values as the interpreter sees them, and their text forms.
//!
//! [`Value`] is small (16 bytes) and `Copy`: numbers and booleans inline, everything else a
//! `Gc` pointer into the VM's arena (see [`crate::heap`]). [`Key`] gives values the equality
//! and hashing object fields use. The `print` text format and the `type` names live here too,
//! because every layer that shows a value to a person uses them.

use std::hash::{Hash, Hasher};

use gc_arena::{Collect, Gc};

use crate::heap::{ArrayRef, ClosureRef, ForeignRef, ObjectRef, Str};

/// A value inside the arena. Heap kinds compare by identity; strings by content.
#[derive(Clone, Copy, Collect, Default)]
#[collect(no_drop)]
pub enum Value<'gc> {
    /// `()`; every register starts as Unit.
    #[default]
    Unit,
    /// A boolean.
    Bool(bool),
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
    /// A 64-bit float, bits carried exactly.
    Float(f64),
    /// An immutable string.
    String(Gc<'gc, Str>),
    /// An object (a map from keys to values).
    Object(ObjectRef<'gc>),
    /// An array (dense indices plus a side map).
    Array(ArrayRef<'gc>),
    /// A closure: a function and its captured cells.
    Closure(ClosureRef<'gc>),
    /// A host object.
    Foreign(ForeignRef<'gc>),
}

/// The kind of a value, for messages and type checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `()`.
    Unit,
    /// Boolean.
    Bool,
    /// i64.
    I64,
    /// i32.
    I32,
    /// i16.
    I16,
    /// i8.
    I8,
    /// u8.
    U8,
    /// u16.
    U16,
    /// u32.
    U32,
    /// u64.
    U64,
    /// f64.
    Float,
    /// String.
    String,
    /// Object.
    Object,
    /// Array.
    Array,
    /// Closure.
    Closure,
    /// Foreign object.
    Foreign,
}

impl Kind {
    /// The name the `type` builtin gives this kind (StoffelVM's names).
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Unit => "nil",
            Kind::Bool => "boolean",
            Kind::I64 => "int64",
            Kind::I32 => "int32",
            Kind::I16 => "int16",
            Kind::I8 => "int8",
            Kind::U8 => "uint8",
            Kind::U16 => "uint16",
            Kind::U32 => "uint32",
            Kind::U64 => "uint64",
            Kind::Float => "float",
            Kind::String => "string",
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::Closure => "function",
            Kind::Foreign => "cffi_function",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}

impl<'gc> Value<'gc> {
    /// This value's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Unit => Kind::Unit,
            Value::Bool(_) => Kind::Bool,
            Value::I64(_) => Kind::I64,
            Value::I32(_) => Kind::I32,
            Value::I16(_) => Kind::I16,
            Value::I8(_) => Kind::I8,
            Value::U8(_) => Kind::U8,
            Value::U16(_) => Kind::U16,
            Value::U32(_) => Kind::U32,
            Value::U64(_) => Kind::U64,
            Value::Float(_) => Kind::Float,
            Value::String(_) => Kind::String,
            Value::Object(_) => Kind::Object,
            Value::Array(_) => Kind::Array,
            Value::Closure(_) => Kind::Closure,
            Value::Foreign(_) => Kind::Foreign,
        }
    }

    /// Appends StoffelVM's debug format: strings quoted (no escaping, as the original).
    /// Generic so that `print`'s formatter can also measure the text without building it.
    pub fn write_debug<W: std::fmt::Write>(&self, out: &mut W) {
        // Writing to a String (or a byte counter) cannot fail.
        let _ = match self {
            Value::Unit => write!(out, "()"),
            Value::Bool(b) => write!(out, "{b}"),
            Value::I64(v) => write!(out, "{v}"),
            Value::I32(v) => write!(out, "{v}i32"),
            Value::I16(v) => write!(out, "{v}i16"),
            Value::I8(v) => write!(out, "{v}i8"),
            Value::U8(v) => write!(out, "{v}u8"),
            Value::U16(v) => write!(out, "{v}u16"),
            Value::U32(v) => write!(out, "{v}u32"),
            Value::U64(v) => write!(out, "{v}u64"),
            Value::Float(v) => write!(out, "{v}f64"),
            Value::String(s) => write!(out, "\"{}\"", s.as_str()),
            Value::Object(o) => write!(out, "Object({})", o.borrow().id),
            Value::Array(a) => write!(out, "Array({})", a.borrow().id),
            Value::Closure(c) => write!(out, "Function({})", c.function_name.as_str()),
            Value::Foreign(f) => write!(out, "Foreign({})", f.id),
        };
    }

    /// The debug text as a new string.
    pub fn debug_string(&self) -> String {
        let mut s = String::new();
        self.write_debug(&mut s);
        s
    }

    /// The debug text for an error message: a string's or closure name's text is cut after
    /// [`SHORT_TEXT`] characters (with `…`), so a message never copies a huge string.
    pub fn short_debug_string(&self) -> String {
        let short = |text: &str| -> String {
            match text.char_indices().nth(SHORT_TEXT) {
                Some((end, _)) => format!("{}…", &text[..end]),
                None => text.to_owned(),
            }
        };
        match self {
            Value::String(s) => format!("\"{}\"", short(s.as_str())),
            Value::Closure(c) => format!("Function({})", short(c.function_name.as_str())),
            other => other.debug_string(),
        }
    }
}

/// The characters of a string an error message quotes, at most.
const SHORT_TEXT: usize = 64;

/// A value used as an object field or array side-map key.
///
/// Kinds are distinct (`1`, `1i32` and `"1"` are three keys); floats are normalised so every
/// NaN is one key and -0.0 equals 0.0; strings compare by content; heap values by identity.
#[derive(Clone, Copy, Collect)]
#[collect(no_drop)]
pub struct Key<'gc>(pub Value<'gc>);

fn float_key_bits(f: f64) -> u64 {
    if f.is_nan() {
        f64::NAN.to_bits()
    } else if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

impl PartialEq for Key<'_> {
    /// Strings (field names) and I64s (indices) inline; the rest out of line.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self.0, other.0) {
            (Value::String(a), Value::String(b)) => a.same_text(&b),
            (Value::I64(a), Value::I64(b)) => a == b,
            (a, b) => key_eq_slow(a, b),
        }
    }
}

/// Key equality for the kinds [`Key::eq`] does not handle inline.
#[inline(never)]
fn key_eq_slow<'gc>(a: Value<'gc>, b: Value<'gc>) -> bool {
    match (a, b) {
        (Value::Unit, Value::Unit) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::I64(a), Value::I64(b)) => a == b,
        (Value::I32(a), Value::I32(b)) => a == b,
        (Value::I16(a), Value::I16(b)) => a == b,
        (Value::I8(a), Value::I8(b)) => a == b,
        (Value::U8(a), Value::U8(b)) => a == b,
        (Value::U16(a), Value::U16(b)) => a == b,
        (Value::U32(a), Value::U32(b)) => a == b,
        (Value::U64(a), Value::U64(b)) => a == b,
        (Value::Float(a), Value::Float(b)) => float_key_bits(a) == float_key_bits(b),
        (Value::String(a), Value::String(b)) => a.same_text(&b),
        (Value::Object(a), Value::Object(b)) => Gc::ptr_eq(a, b),
        (Value::Array(a), Value::Array(b)) => Gc::ptr_eq(a, b),
        (Value::Closure(a), Value::Closure(b)) => Gc::ptr_eq(a, b),
        (Value::Foreign(a), Value::Foreign(b)) => Gc::ptr_eq(a, b),
        _ => false,
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.kind().hash(state);
        match self.0 {
            Value::Unit => {}
            Value::Bool(b) => b.hash(state),
            Value::I64(v) => v.hash(state),
            Value::I32(v) => v.hash(state),
            Value::I16(v) => v.hash(state),
            Value::I8(v) => v.hash(state),
            Value::U8(v) => v.hash(state),
            Value::U16(v) => v.hash(state),
            Value::U32(v) => v.hash(state),
            Value::U64(v) => v.hash(state),
            Value::Float(f) => float_key_bits(f).hash(state),
            Value::String(s) => s.text_hash().hash(state),
            Value::Object(o) => Gc::as_ptr(o).hash(state),
            Value::Array(a) => Gc::as_ptr(a).hash(state),
            Value::Closure(c) => Gc::as_ptr(c).hash(state),
            Value::Foreign(f) => Gc::as_ptr(f).hash(state),
        }
    }
}
