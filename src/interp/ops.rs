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

/// Applies `$e` (a `Result` over the operands `$x`, `$y`) when both operands are integers
/// of the same width; `None` otherwise. Integers never widen implicitly, as in StoffelVM.
macro_rules! same_int_kind {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $e:expr) => {
        match ($a, $b) {
            (Value::I64($x), Value::I64($y)) => Some(($e).map(Value::I64)),
            (Value::I32($x), Value::I32($y)) => Some(($e).map(Value::I32)),
            (Value::I16($x), Value::I16($y)) => Some(($e).map(Value::I16)),
            (Value::I8($x), Value::I8($y)) => Some(($e).map(Value::I8)),
            (Value::U8($x), Value::U8($y)) => Some(($e).map(Value::U8)),
            (Value::U16($x), Value::U16($y)) => Some(($e).map(Value::U16)),
            (Value::U32($x), Value::U32($y)) => Some(($e).map(Value::U32)),
            (Value::U64($x), Value::U64($y)) => Some(($e).map(Value::U64)),
            _ => None,
        }
    };
}

/// Checked `+ - *`: an overflow (unsigned SUB below 0 included) is an error, as in the
/// current StoffelVM.
macro_rules! checked {
    ($x:ident . $method:ident ($y:ident), $op:expr) => {
        $x.$method($y)
            .ok_or(RuntimeErrorKind::Overflow { op: $op.name() })
    };
}

/// Integer division or remainder: a zero divisor and signed `MIN / -1`, `MIN % -1` are
/// errors (never a wrapped result, never a crash).
macro_rules! checked_divmod {
    ($x:expr, $y:expr, $method:ident, $zero:expr, $op:expr) => {
        if $y == 0 {
            Err($zero)
        } else {
            $x.$method($y)
                .ok_or(RuntimeErrorKind::Overflow { op: $op.name() })
        }
    };
}

/// Shifts `$x` by `$amount` (an i64) with the current StoffelVM's checks: a negative amount
/// or one past `u32` is "invalid", one of at least the width "out of range". SHR is
/// arithmetic on signed kinds (Rust's `>>`).
macro_rules! checked_shift {
    ($x:expr, $amount:expr, $method:ident, $op:expr) => {{
        let amount: i64 = $amount;
        match u32::try_from(amount) {
            Err(_) => Err(RuntimeErrorKind::InvalidShift {
                op: $op.name(),
                amount,
            }),
            Ok(n) => $x.$method(n).ok_or(RuntimeErrorKind::ShiftOutOfRange {
                op: $op.name(),
                amount: n,
            }),
        }
    }};
}

/// Applies a binary operation that is not an I64 fast path (or an I64 case the fast path
/// leaves to it: overflow, a zero divisor, a shift amount out of range). String
/// concatenation is handled by the caller (it allocates); here `ADD` of two strings
/// reports a type error.
#[cold]
#[inline(never)]
pub fn binary<'gc>(
    op: BinOp,
    a: Value<'gc>,
    b: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let result = match op {
        BinOp::Add => same_int_kind!(a, b, |x, y| checked!(x.checked_add(y), op))
            .or_else(|| float_operands(a, b).map(|(x, y)| Ok(Value::Float(x + y)))),
        BinOp::Sub => same_int_kind!(a, b, |x, y| checked!(x.checked_sub(y), op))
            .or_else(|| float_operands(a, b).map(|(x, y)| Ok(Value::Float(x - y)))),
        BinOp::Mul => same_int_kind!(a, b, |x, y| checked!(x.checked_mul(y), op))
            .or_else(|| float_operands(a, b).map(|(x, y)| Ok(Value::Float(x * y)))),
        BinOp::Div => same_int_kind!(a, b, |x, y| checked_divmod!(
            x,
            y,
            checked_div,
            RuntimeErrorKind::DivisionByZero,
            op
        ))
        .or_else(|| {
            float_operands(a, b).map(|(x, y)| {
                if y == 0.0 {
                    Err(RuntimeErrorKind::DivisionByZero)
                } else {
                    Ok(Value::Float(x / y))
                }
            })
        }),
        BinOp::Mod => same_int_kind!(a, b, |x, y| checked_divmod!(
            x,
            y,
            checked_rem,
            RuntimeErrorKind::ModuloByZero,
            op
        ))
        .or_else(|| {
            float_operands(a, b).map(|(x, y)| {
                if y == 0.0 {
                    Err(RuntimeErrorKind::ModuloByZero)
                } else {
                    Ok(Value::Float(x % y))
                }
            })
        }),
        BinOp::And => match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => Some(Ok(Value::Bool(x && y))),
            _ => same_int_kind!(a, b, |x, y| Ok::<_, RuntimeErrorKind>(x & y)),
        },
        BinOp::Or => match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => Some(Ok(Value::Bool(x || y))),
            _ => same_int_kind!(a, b, |x, y| Ok::<_, RuntimeErrorKind>(x | y)),
        },
        BinOp::Xor => match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => Some(Ok(Value::Bool(x ^ y))),
            _ => same_int_kind!(a, b, |x, y| Ok::<_, RuntimeErrorKind>(x ^ y)),
        },
        BinOp::Shl => shift(a, b, op),
        BinOp::Shr => shift(a, b, op),
    };
    result.unwrap_or_else(|| Err(type_error(op, a, b)))
}

/// SHL or SHR: both operands of the same integer kind. A U64 amount past `i64::MAX` is "out
/// of range" with the amount shown as `u32::MAX`, as the current StoffelVM reports it.
fn shift<'gc>(
    a: Value<'gc>,
    b: Value<'gc>,
    op: BinOp,
) -> Option<Result<Value<'gc>, RuntimeErrorKind>> {
    macro_rules! by {
        ($x:expr, $n:expr) => {
            if op == BinOp::Shl {
                checked_shift!($x, $n, checked_shl, op)
            } else {
                checked_shift!($x, $n, checked_shr, op)
            }
        };
    }
    Some(match (a, b) {
        (Value::I64(x), Value::I64(n)) => by!(x, n).map(Value::I64),
        (Value::I32(x), Value::I32(n)) => by!(x, i64::from(n)).map(Value::I32),
        (Value::I16(x), Value::I16(n)) => by!(x, i64::from(n)).map(Value::I16),
        (Value::I8(x), Value::I8(n)) => by!(x, i64::from(n)).map(Value::I8),
        (Value::U8(x), Value::U8(n)) => by!(x, i64::from(n)).map(Value::U8),
        (Value::U16(x), Value::U16(n)) => by!(x, i64::from(n)).map(Value::U16),
        (Value::U32(x), Value::U32(n)) => by!(x, i64::from(n)).map(Value::U32),
        (Value::U64(x), Value::U64(n)) => match i64::try_from(n) {
            Ok(n) => by!(x, n).map(Value::U64),
            Err(_) => Err(RuntimeErrorKind::ShiftOutOfRange {
                op: op.name(),
                amount: u32::MAX,
            }),
        },
        _ => return None,
    })
}

/// The float cases of ADD, SUB, MUL, DIV and MOD: Float × Float, Float × I64 and
/// I64 × Float (the I64 converted to f64), all giving a Float.
fn float_operands(a: Value<'_>, b: Value<'_>) -> Option<(f64, f64)> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Some((x, y)),
        (Value::Float(x), Value::I64(y)) => Some((x, y as f64)),
        (Value::I64(x), Value::Float(y)) => Some((x as f64, y)),
        _ => None,
    }
}

/// NOT: bitwise on every integer kind, logical on Bool.
pub fn not<'gc>(a: Value<'gc>) -> Result<Value<'gc>, RuntimeErrorKind> {
    Ok(match a {
        Value::I64(x) => Value::I64(!x),
        Value::I32(x) => Value::I32(!x),
        Value::I16(x) => Value::I16(!x),
        Value::I8(x) => Value::I8(!x),
        Value::U8(x) => Value::U8(!x),
        Value::U16(x) => Value::U16(!x),
        Value::U32(x) => Value::U32(!x),
        Value::U64(x) => Value::U64(!x),
        Value::Bool(x) => Value::Bool(!x),
        other => {
            return Err(RuntimeErrorKind::Type {
                op: "NOT",
                left: other.kind(),
                right: None,
            });
        }
    })
}

/// A number for CMP: every integer kind fits in an i128.
#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

fn number(v: Value<'_>) -> Option<Number> {
    Some(match v {
        Value::I64(x) => Number::Int(x.into()),
        Value::I32(x) => Number::Int(x.into()),
        Value::I16(x) => Number::Int(x.into()),
        Value::I8(x) => Number::Int(x.into()),
        Value::U8(x) => Number::Int(x.into()),
        Value::U16(x) => Number::Int(x.into()),
        Value::U32(x) => Number::Int(x.into()),
        Value::U64(x) => Number::Int(x.into()),
        Value::Float(x) => Number::Float(x),
        _ => return None,
    })
}

/// An integer (any kind's range, so within `[-2^63, 2^64)`) against a float, exactly: no
/// rounding of either side. `None` for NaN.
fn compare_int_float(i: i128, f: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    if f.is_nan() {
        return None;
    }
    // 2^64 and -2^63 are exact in f64; every integer operand lies in between.
    if f >= 18_446_744_073_709_551_616.0 {
        return Some(Ordering::Less);
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    // Both exact: the integral part is within i128, the fraction is `f - trunc(f)`.
    let whole = f.trunc();
    Some(i.cmp(&(whole as i128)).then_with(|| {
        let fraction = f - whole;
        if fraction > 0.0 {
            Ordering::Less
        } else if fraction < 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

/// CMP: -1, 0 or +1. Any two numbers compare by value (signed, unsigned and float mixed, as
/// the current StoffelVM), strings by bytes, booleans `false < true`; anything else, and a
/// NaN operand, is an error naming both values.
#[cold]
#[inline(never)]
pub fn compare(a: Value<'_>, b: Value<'_>) -> Result<i8, RuntimeErrorKind> {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (number(a), number(b)) {
        (Some(Number::Int(x)), Some(Number::Int(y))) => Some(x.cmp(&y)),
        (Some(Number::Float(x)), Some(Number::Float(y))) => x.partial_cmp(&y),
        (Some(Number::Int(x)), Some(Number::Float(y))) => compare_int_float(x, y),
        (Some(Number::Float(x)), Some(Number::Int(y))) => {
            compare_int_float(y, x).map(Ordering::reverse)
        }
        _ => match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(&y)),
            (Value::String(x), Value::String(y)) => {
                Some(x.as_str().as_bytes().cmp(y.as_str().as_bytes()))
            }
            _ => None,
        },
    };
    match ordering {
        Some(o) => Ok(o as i8),
        None => Err(RuntimeErrorKind::Compare {
            left: a.short_debug_string(),
            right: b.short_debug_string(),
        }),
    }
}
