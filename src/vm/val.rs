//! [`Val`]: a value outside the arena, and the conversions between it and the interpreter's
//! [`Value`].
//!
//! Numbers, booleans and strings cross by value; heap values cross as [`Handle`]s of the VM's
//! handle table. Integers convert inline (the host-call paths convert a few per call); the
//! other kinds out of line.

use gc_arena::Mutation;

use crate::error::{ApiError, VmError};
use crate::handles::{Handle, HandleTable};
use crate::heap::{Meter, Str};
use crate::value::{Kind, Value};

/// A value outside the arena: numbers and strings by value, heap values by handle.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// `()`.
    Unit,
    /// A boolean.
    Bool(bool),
    /// i64.
    I64(i64),
    /// i32.
    I32(i32),
    /// i16.
    I16(i16),
    /// i8.
    I8(i8),
    /// u8.
    U8(u8),
    /// u16.
    U16(u16),
    /// u32.
    U32(u32),
    /// u64.
    U64(u64),
    /// f64.
    Float(f64),
    /// A string (a copy).
    String(String),
    /// An object.
    Object(Handle),
    /// An array.
    Array(Handle),
    /// A closure.
    Closure(Handle),
    /// A foreign object.
    Foreign(Handle),
}

impl Val {
    /// The handle, for heap values.
    pub fn handle(&self) -> Option<Handle> {
        match self {
            Val::Object(h) | Val::Array(h) | Val::Closure(h) | Val::Foreign(h) => Some(*h),
            _ => None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Val::Unit => Kind::Unit,
            Val::Bool(_) => Kind::Bool,
            Val::I64(_) => Kind::I64,
            Val::I32(_) => Kind::I32,
            Val::I16(_) => Kind::I16,
            Val::I8(_) => Kind::I8,
            Val::U8(_) => Kind::U8,
            Val::U16(_) => Kind::U16,
            Val::U32(_) => Kind::U32,
            Val::U64(_) => Kind::U64,
            Val::Float(_) => Kind::Float,
            Val::String(_) => Kind::String,
            Val::Object(_) => Kind::Object,
            Val::Array(_) => Kind::Array,
            Val::Closure(_) => Kind::Closure,
            Val::Foreign(_) => Kind::Foreign,
        }
    }
}

/// A value for the host: heap values get a new handle (one reference).
#[inline]
pub(super) fn value_to_val<'gc>(
    v: Value<'gc>,
    handles: &mut HandleTable<'gc>,
) -> Result<Val, VmError> {
    // Integers inline: the host-call paths convert a few of them per call.
    match v {
        Value::I64(x) => Ok(Val::I64(x)),
        other => other_value_to_val(other, handles),
    }
}

#[inline(never)]
pub(super) fn other_value_to_val<'gc>(
    v: Value<'gc>,
    handles: &mut HandleTable<'gc>,
) -> Result<Val, VmError> {
    Ok(match v {
        Value::Unit => Val::Unit,
        Value::Bool(b) => Val::Bool(b),
        Value::I64(x) => Val::I64(x),
        Value::I32(x) => Val::I32(x),
        Value::I16(x) => Val::I16(x),
        Value::I8(x) => Val::I8(x),
        Value::U8(x) => Val::U8(x),
        Value::U16(x) => Val::U16(x),
        Value::U32(x) => Val::U32(x),
        Value::U64(x) => Val::U64(x),
        Value::Float(x) => Val::Float(x),
        Value::String(s) => Val::String(s.as_str().to_owned()),
        Value::Object(_) => Val::Object(handles.insert(v)?),
        Value::Array(_) => Val::Array(handles.insert(v)?),
        Value::Closure(_) => Val::Closure(handles.insert(v)?),
        Value::Foreign(_) => Val::Foreign(handles.insert(v)?),
    })
}

/// A host value in the arena: handles must be live and of the kind the `Val` says.
#[inline]
pub(super) fn val_to_value<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    handles: &HandleTable<'gc>,
    v: &Val,
) -> Result<Value<'gc>, VmError> {
    match v {
        Val::I64(x) => Ok(Value::I64(*x)),
        other => other_val_to_value(mc, meter, handles, other),
    }
}

#[inline(never)]
pub(super) fn other_val_to_value<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    handles: &HandleTable<'gc>,
    v: &Val,
) -> Result<Value<'gc>, VmError> {
    Ok(match v {
        Val::Unit => Value::Unit,
        Val::Bool(b) => Value::Bool(*b),
        Val::I64(x) => Value::I64(*x),
        Val::I32(x) => Value::I32(*x),
        Val::I16(x) => Value::I16(*x),
        Val::I8(x) => Value::I8(*x),
        Val::U8(x) => Value::U8(*x),
        Val::U16(x) => Value::U16(*x),
        Val::U32(x) => Value::U32(*x),
        Val::U64(x) => Value::U64(*x),
        Val::Float(x) => Value::Float(*x),
        Val::String(s) => Value::String(Str::alloc_copy(mc, meter, s)),
        Val::Object(h) | Val::Array(h) | Val::Closure(h) | Val::Foreign(h) => {
            let value = handles.get(*h)?;
            if value.kind() != v.kind() {
                return Err(ApiError::WrongKind {
                    expected: v.kind().type_name(),
                    got: value.kind().type_name(),
                }
                .into());
            }
            value
        }
    })
}

pub(super) fn vals_to_values<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    handles: &HandleTable<'gc>,
    vals: &[Val],
) -> Result<Vec<Value<'gc>>, VmError> {
    vals.iter()
        .map(|v| val_to_value(mc, meter, handles, v))
        .collect()
}
