//! `slice` (Python's slices of strings and arrays) and `assert`.

use gc_arena::Mutation;

use super::{Args, fail, new_array_with, spend, to_index};
use crate::heap::{AllocError, Str};
use crate::interp::builtins::Builtin;
use crate::interp::{Runtime, RuntimeErrorKind, kind_name};
use crate::value::Value;

/// `assert(condition[, message])`: Unit when the condition is true; false is an error with
/// the message (a string; "assertion failed" otherwise); a condition that is not a Bool is
/// an error.
pub(super) fn assert<'gc>(a: Args<'_, 'gc>) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(1, "1 or 2 arguments: condition and optional message")?;
    match a.get(0) {
        Value::Bool(true) => Ok(Value::Unit),
        Value::Bool(false) => Err(match a.args.get(1) {
            Some(Value::String(m)) => {
                let text = m.as_str();
                let mut message = String::new();
                if message.try_reserve_exact(text.len()).is_err() {
                    return Err(RuntimeErrorKind::OutOfMemory(text.len()));
                }
                message.push_str(text);
                fail(a.b, message)
            }
            _ => fail(a.b, "assertion failed"),
        }),
        other => Err(fail(
            a.b,
            format!(
                "assert condition must be a bool, found {}",
                kind_name(other)
            ),
        )),
    }
}

/// The positions a slice takes: `count` of them, from `first` by `step`.
struct Plan {
    first: i128,
    step: i128,
    count: u64,
}

impl Plan {
    fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).map(|k| (self.first + i128::from(k) * self.step) as usize)
    }
}

/// Unit and `i64::MAX` stand for an omitted bound (what the compiler passes for `a[i:]`).
fn omitted(v: Value<'_>) -> bool {
    matches!(v, Value::Unit | Value::I64(i64::MAX))
}

/// Python's slice of a sequence of `len` items.
fn plan(
    b: Builtin,
    start: Value<'_>,
    stop: Value<'_>,
    step: Value<'_>,
    len: u64,
) -> Result<Plan, RuntimeErrorKind> {
    let step = to_index(b, step, "slice step")?;
    if step == 0 {
        return Err(fail(b, "slice step cannot be zero"));
    }
    let len = i128::from(len);
    let bound = |v: Value<'_>, name: &str, default: i128| -> Result<i128, RuntimeErrorKind> {
        if omitted(v) {
            return Ok(default);
        }
        let raw = to_index(b, v, name)?;
        Ok(if raw < 0 { raw + len } else { raw })
    };
    let (first, count) = if step > 0 {
        let first = bound(start, "slice start", 0)?.clamp(0, len);
        let stop = bound(stop, "slice stop", len)?.clamp(0, len);
        let count = if first < stop {
            (stop - first - 1) / step + 1
        } else {
            0
        };
        (first, count)
    } else {
        let first = bound(start, "slice start", len - 1)?.clamp(-1, len - 1);
        let stop = bound(stop, "slice stop", -1)?.clamp(-1, len - 1);
        let count = if first > stop {
            (first - stop - 1) / -step + 1
        } else {
            0
        };
        (first, count)
    };
    Ok(Plan {
        first,
        step,
        count: count as u64,
    })
}

/// `slice(value, start, stop[, step])`: a new string or array (see [`plan`]).
pub(super) fn slice<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(3, "at least 3 arguments: value, start, and stop")?;
    a.at_most(4, "4 arguments: value, start, stop, and step")?;
    let step = if a.args.len() == 4 {
        a.get(3)
    } else {
        Value::I64(1)
    };
    let (start, stop) = (a.get(1), a.get(2));
    match a.get(0) {
        Value::String(text) => {
            let text = text.as_str();
            spend(rt, text.len() as u64 / 16)?;
            let len = text.chars().count();
            let plan = plan(a.b, start, stop, step, len as u64)?;
            spend(rt, plan.count)?;
            let chars_bytes = len.saturating_mul(4);
            rt.check_alloc(chars_bytes.saturating_add(text.len()))?;
            let mut chars = Vec::new();
            chars
                .try_reserve_exact(len)
                .map_err(|_| rt.alloc_error(AllocError::System(chars_bytes)))?;
            chars.extend(text.chars());
            let mut out = String::new();
            out.try_reserve_exact(text.len())
                .map_err(|_| rt.alloc_error(AllocError::System(text.len())))?;
            out.extend(plan.positions().map(|i| chars[i]));
            rt.check_alloc(Str::charge(out.len()))?;
            let s = Str::try_alloc_copy(mc, &rt.meter, &out).map_err(|e| rt.alloc_error(e))?;
            Ok(Value::String(s))
        }
        Value::Array(array) => {
            let len = array.borrow().length();
            let plan = plan(a.b, start, stop, step, len)?;
            spend(rt, plan.count)?;
            let source = array.borrow();
            new_array_with(mc, rt, plan.count, |push| {
                let mut piece = [Value::Unit; 256];
                let mut n = 0;
                for i in plan.positions() {
                    piece[n] = source.get(Value::I64(i as i64));
                    n += 1;
                    if n == piece.len() {
                        push(&piece);
                        n = 0;
                    }
                }
                push(&piece[..n]);
            })
        }
        other => Err(fail(
            a.b,
            format!(
                "slice requires a list or string, found {}",
                kind_name(other)
            ),
        )),
    }
}
