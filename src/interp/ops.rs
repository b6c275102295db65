//! Arithmetic, bitwise and compare semantics (the slow, general paths; the dispatch loop
//! inlines the I64 cases).

use crate::value::Value;

use super::RuntimeErrorKind;

/// A binary arithmetic or bitwise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// ADD
    Add,
    /// SUB
    Sub,
    /// MUL
    Mul,
    /// DIV
    Div,
    /// MOD
    Mod,
    /// AND
    And,
    /// OR
    Or,
    /// XOR
    Xor,
    /// SHL
    Shl,
    /// SHR
    Shr,
}

impl BinOp {
    /// The mnemonic, for messages.
    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "ADD",
            BinOp::Sub => "SUB",
            BinOp::Mul => "MUL",
            BinOp::Div => "DIV",
            BinOp::Mod => "MOD",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Xor => "XOR",
            BinOp::Shl => "SHL",
            BinOp::Shr => "SHR",
        }
    }
}

fn type_error(op: BinOp, a: Value<'_>, b: Value<'_>) -> RuntimeErrorKind {
    RuntimeErrorKind::Type {
        op: op.name(),
        left: a.kind(),
        right: Some(b.kind()),
    }
}

macro_rules! same_int_kind {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $signed:expr, |$ux:ident, $uy:ident| $unsigned:expr) => {
        match ($a, $b) {
            (Value::I64($x), Value::I64($y)) => Some(($signed).map(Value::I64)),
            (Value::I32($x), Value::I32($y)) => Some(($signed).map(Value::I32)),
            (Value::I16($x), Value::I16($y)) => Some(($signed).map(Value::I16)),
            (Value::I8($x), Value::I8($y)) => Some(($signed).map(Value::I8)),
            (Value::U8($ux), Value::U8($uy)) => Some(($unsigned).map(Value::U8)),
            (Value::U16($ux), Value::U16($uy)) => Some(($unsigned).map(Value::U16)),
            (Value::U32($ux), Value::U32($uy)) => Some(($unsigned).map(Value::U32)),
            (Value::U64($ux), Value::U64($uy)) => Some(($unsigned).map(Value::U64)),
            _ => None,
        }
    };
}

/// Integer division or remainder with the VM's error rules: a zero divisor and signed
/// `MIN / -1` are errors (never a wrapped result, never a crash).
macro_rules! checked_divmod {
    ($x:expr, $y:expr, $method:ident, $zero:expr) => {
        if $y == 0 {
            Err($zero)
        } else {
            $x.$method($y).ok_or(RuntimeErrorKind::Overflow)
        }
    };
}

/// Applies a binary operation that is not an I64 fast path. String concatenation is handled
/// by the caller (it allocates); here `ADD` of two strings reports a type error.
#[cold]
#[inline(never)]
pub fn binary<'gc>(
    op: BinOp,
    a: Value<'gc>,
    b: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let result = match op {
        BinOp::Add => same_int_kind!(a, b, |x, y| Ok(x.wrapping_add(y)), |x, y| Ok(
            x.wrapping_add(y)
        ))
        .or_else(|| float_pair(a, b).map(|(x, y)| Ok(Value::Float(x + y)))),
        BinOp::Sub => same_int_kind!(a, b, |x, y| Ok(x.wrapping_sub(y)), |x, y| Ok(
            x.saturating_sub(y)
        ))
        .or_else(|| float_pair(a, b).map(|(x, y)| Ok(Value::Float(x - y)))),
        BinOp::Mul => same_int_kind!(a, b, |x, y| Ok(x.wrapping_mul(y)), |x, y| Ok(
            x.wrapping_mul(y)
        ))
        .or_else(|| float_pair(a, b).map(|(x, y)| Ok(Value::Float(x * y)))),
        BinOp::Div => same_int_kind!(
            a,
            b,
            |x, y| checked_divmod!(x, y, checked_div, RuntimeErrorKind::DivisionByZero),
            |x, y| checked_divmod!(x, y, checked_div, RuntimeErrorKind::DivisionByZero)
        )
        .or_else(|| float_division(a, b)),
        BinOp::Mod => same_int_kind!(
            a,
            b,
            |x, y| checked_divmod!(x, y, checked_rem, RuntimeErrorKind::ModuloByZero),
            |x, y| checked_divmod!(x, y, checked_rem, RuntimeErrorKind::ModuloByZero)
        )
        .or_else(|| {
            float_pair(a, b).map(|(x, y)| {
                if y == 0.0 {
                    Err(RuntimeErrorKind::ModuloByZero)
                } else {
                    Ok(Value::Float(x % y))
                }
            })
        }),
        BinOp::And => match (a, b) {
            (Value::I64(x), Value::I64(y)) => Some(Ok(Value::I64(x & y))),
            (Value::Bool(x), Value::Bool(y)) => Some(Ok(Value::Bool(x && y))),
            _ => None,
        },
        BinOp::Or => match (a, b) {
            (Value::I64(x), Value::I64(y)) => Some(Ok(Value::I64(x | y))),
            (Value::Bool(x), Value::Bool(y)) => Some(Ok(Value::Bool(x || y))),
            _ => None,
        },
        BinOp::Xor => match (a, b) {
            (Value::I64(x), Value::I64(y)) => Some(Ok(Value::I64(x ^ y))),
            (Value::Bool(x), Value::Bool(y)) => Some(Ok(Value::Bool(x ^ y))),
            _ => None,
        },
        BinOp::Shl => match (a, b) {
            // The amount's low 6 bits, as a release build of StoffelVM.
            (Value::I64(x), Value::I64(n)) => Some(Ok(Value::I64(x.wrapping_shl(n as u32)))),
            _ => None,
        },
        BinOp::Shr => match (a, b) {
            (Value::I64(x), Value::I64(n)) => Some(Ok(Value::I64(x.wrapping_shr(n as u32)))),
            _ => None,
        },
    };
    result.unwrap_or_else(|| Err(type_error(op, a, b)))
}

fn float_pair(a: Value<'_>, b: Value<'_>) -> Option<(f64, f64)> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Some((x, y)),
        _ => None,
    }
}

/// DIV's float cases, as StoffelVM: Float/Float, Float/I64 and I64/Float give a Float; a
/// zero divisor is an error.
fn float_division<'gc>(
    a: Value<'gc>,
    b: Value<'gc>,
) -> Option<Result<Value<'gc>, RuntimeErrorKind>> {
    let (x, y) = match (a, b) {
        (Value::Float(x), Value::Float(y)) => (x, y),
        (Value::Float(x), Value::I64(y)) => (x, y as f64),
        (Value::I64(x), Value::Float(y)) => (x as f64, y),
        _ => return None,
    };
    Some(if y == 0.0 {
        Err(RuntimeErrorKind::DivisionByZero)
    } else {
        Ok(Value::Float(x / y))
    })
}

/// NOT: bitwise on I64, logical on Bool.
pub fn not<'gc>(a: Value<'gc>) -> Result<Value<'gc>, RuntimeErrorKind> {
    match a {
        Value::I64(x) => Ok(Value::I64(!x)),
        Value::Bool(x) => Ok(Value::Bool(!x)),
        other => Err(RuntimeErrorKind::Type {
            op: "NOT",
            left: other.kind(),
            right: None,
        }),
    }
}

/// CMP: -1, 0 or +1 for same-kind integers, strings (bytes), booleans and floats; anything
/// else (and NaN) is an error naming both values.
#[cold]
#[inline(never)]
pub fn compare(a: Value<'_>, b: Value<'_>) -> Result<i8, RuntimeErrorKind> {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (a, b) {
        (Value::I64(x), Value::I64(y)) => Some(x.cmp(&y)),
        (Value::I32(x), Value::I32(y)) => Some(x.cmp(&y)),
        (Value::I16(x), Value::I16(y)) => Some(x.cmp(&y)),
        (Value::I8(x), Value::I8(y)) => Some(x.cmp(&y)),
        (Value::U8(x), Value::U8(y)) => Some(x.cmp(&y)),
        (Value::U16(x), Value::U16(y)) => Some(x.cmp(&y)),
        (Value::U32(x), Value::U32(y)) => Some(x.cmp(&y)),
        (Value::U64(x), Value::U64(y)) => Some(x.cmp(&y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(&y)),
        (Value::String(x), Value::String(y)) => {
            Some(x.as_str().as_bytes().cmp(y.as_str().as_bytes()))
        }
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(&y),
        _ => None,
    };
    match ordering {
        Some(o) => Ok(o as i8),
        None => Err(RuntimeErrorKind::Compare {
            left: a.short_debug_string(),
            right: b.short_debug_string(),
        }),
    }
}
