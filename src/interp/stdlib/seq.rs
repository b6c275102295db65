//! Builtins that make or compare whole arrays: `range`, `array_concat`, `array_repeat`,
//! `array_equals`, and `get_or_create_array_field` (the compiler's nested-list writes).

use gc_arena::Mutation;

use super::{
    Args, EQUAL_DEPTH, arrays_equal, elements, fail, int_value, new_array, new_array_with, spend,
};
use crate::interp::{Runtime, RuntimeErrorKind};
use crate::value::Value;

/// Values built per piece when an array is filled (a stack buffer, no allocation).
const PIECE: usize = 256;

/// `range(start, stop[, step])`: Python's range as an array of I64 (stop exclusive).
pub(super) fn range<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(2, "at least 2 arguments: start and stop")?;
    a.at_most(3, "3 arguments: start, stop, and step")?;
    let start = a.i64(0, "range start")?;
    let stop = a.i64(1, "range stop")?;
    let step = if a.args.len() == 3 {
        a.i64(2, "range step")?
    } else {
        1
    };
    if step == 0 {
        return Err(fail(a.b, "range step argument must not be zero"));
    }
    let (first, last, by) = (i128::from(start), i128::from(stop), i128::from(step));
    let count = if by > 0 {
        if first >= last {
            0
        } else {
            (last - first - 1) / by + 1
        }
    } else if first <= last {
        0
    } else {
        (first - last - 1) / -by + 1
    };
    // At most 2^64 - 1.
    let count = count as u64;
    spend(rt, count)?;
    new_array_with(mc, rt, count, |push| {
        let mut next = first;
        let mut left = count;
        let mut piece = [Value::Unit; PIECE];
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            for slot in &mut piece[..n] {
                // Every value lies between start and stop, so fits an i64.
                *slot = Value::I64(next as i64);
                next += by;
            }
            push(&piece[..n]);
            left -= n as u64;
        }
    })
}

/// `array_concat(left, right)`: a new array of both arrays' elements.
pub(super) fn array_concat<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: left array and right array")?;
    let left = a.array(0, "First argument")?;
    let right = a.array(1, "Second argument")?;
    let (l, r) = (left.borrow().length(), right.borrow().length());
    let Some(total) = l.checked_add(r) else {
        return Err(fail(a.b, "array_concat result length is too large"));
    };
    let left = elements(rt, left)?;
    let right = elements(rt, right)?;
    new_array_with(mc, rt, total, |push| {
        push(&left);
        push(&right);
    })
}

/// `array_repeat(array, count)`: the elements `count` times over (none for a count ≤ 0).
pub(super) fn array_repeat<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: array and count")?;
    let count = a.i64(1, "repeat count")?.max(0) as u64;
    let array = a.array(0, "First argument")?;
    let Some(total) = array.borrow().length().checked_mul(count) else {
        return Err(fail(a.b, "array_repeat result length is too large"));
    };
    spend(rt, total)?;
    let values = elements(rt, array)?;
    if values.is_empty() {
        return new_array(mc, rt, &[]);
    }
    new_array_with(mc, rt, total, |push| {
        for _ in 0..count {
            push(&values);
        }
    })
}

/// `array_equals(left, right)`: element by element (nested arrays too, 64 levels deep).
pub(super) fn array_equals<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: left array and right array")?;
    let left = a.array(0, "First argument")?;
    let right = a.array(1, "Second argument")?;
    Ok(Value::Bool(arrays_equal(rt, left, right, EQUAL_DEPTH)?))
}

/// `get_or_create_array_field(container, key)`: the object or array under `key`; a new
/// empty array stored there if the field is missing or Unit; an error for any other value.
/// On an array a negative integer key counts from the end.
pub(super) fn get_or_create_array_field<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(2, "at least 2 arguments: object and key")?;
    let key = a.get(1);
    let current = match a.get(0) {
        Value::Object(o) => o.borrow().get(key),
        Value::Array(arr) => {
            let key = array_key(&a, key, arr.borrow().length())?;
            arr.borrow().get(key)
        }
        _ => return Err(fail(a.b, "Expected object or array")),
    };
    match current {
        Value::Object(_) | Value::Array(_) => return Ok(current),
        Value::Unit => {}
        _ => {
            return Err(fail(
                a.b,
                "Cannot autovivify nested list through a non-list value",
            ));
        }
    }
    let inner = new_array(mc, rt, &[])?;
    match a.get(0) {
        Value::Object(o) => o
            .borrow_mut(mc)
            .try_set(key, inner, rt.room())
            .map_err(|e| rt.alloc_error(e))?,
        Value::Array(arr) => {
            let key = array_key(&a, key, arr.borrow().length())?;
            arr.borrow_mut(mc)
                .try_set(key, inner, rt.room())
                .map_err(|e| rt.alloc_error(e))?
        }
        _ => 0,
    };
    Ok(inner)
}

/// An array key as StoffelVM resolves it: a negative integer of any kind counts from the
/// end (an I64 index then); anything else is used as it is.
fn array_key<'gc>(
    a: &Args<'_, 'gc>,
    key: Value<'gc>,
    len: u64,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let Some(index) = int_value(key) else {
        return Ok(key);
    };
    if index >= 0 {
        return Ok(key);
    }
    let resolved = index + i128::from(len);
    if resolved < 0 {
        return Err(fail(
            a.b,
            format!("array index {index} out of range (length {len})"),
        ));
    }
    Ok(Value::I64(resolved as i64))
}
