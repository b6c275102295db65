//! The Python-shaped list builtins: `len`, `append`, `extend`, `copy`, `count`, `index`,
//! `pop`, `remove`, `insert`, `clear`, `reverse`, `sort`, `delete`, `contains`.
//!
//! As in StoffelVM, the ones that reorder or shrink a list rebuild its elements: the length
//! becomes the new element count and every non-negative index key goes (other keys stay).

use std::cmp::Ordering;

use gc_arena::Mutation;

use super::{
    Args, EQUAL_DEPTH, elements, fail, int_value, new_array, replace_elements, spend, to_index,
    values_equal,
};
use crate::heap::AllocError;
use crate::interp::{Runtime, RuntimeErrorKind, kind_name};
use crate::value::{Key, Value};

/// `len(value)`: an array's length or a string's character count.
pub(super) fn len<'gc>(rt: &mut Runtime, a: Args<'_, 'gc>) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: array")?;
    let n = match a.get(0) {
        Value::String(s) => {
            spend(rt, s.as_str().len() as u64 / 16)?;
            s.as_str().chars().count() as u64
        }
        Value::Array(arr) => arr.borrow().length(),
        _ => return Err(fail(a.b, "First argument must be an array or string")),
    };
    match i64::try_from(n) {
        Ok(n) => Ok(Value::I64(n)),
        Err(_) => Err(fail(
            a.b,
            format!("array length {n} exceeds VM integer range"),
        )),
    }
}

/// Appends `values` to `array`.
fn push<'gc>(
    mc: &Mutation<'gc>,
    rt: &Runtime,
    array: crate::heap::ArrayRef<'gc>,
    values: &[Value<'gc>],
) -> Result<(), RuntimeErrorKind> {
    let mut array = array.borrow_mut(mc);
    // One value with room for it (the common `append`): no limit check needed.
    if let [v] = values
        && array.push_in_place(*v).is_some()
    {
        return Ok(());
    }
    array
        .try_extend(values, rt.room())
        .map_err(|e| rt.alloc_error(e))?;
    Ok(())
}

/// `append(array, values…)`: Unit.
pub(super) fn append<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(2, "at least 2 arguments: array and value")?;
    let array = a.array(0, "First argument")?;
    push(mc, rt, array, &a.args[1..])?;
    Ok(Value::Unit)
}

/// `extend(array, values)`: appends the elements of `values` (itself allowed); Unit.
pub(super) fn extend<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: array and values")?;
    let array = a.array(0, "First argument")?;
    let values = a.array(1, "Second argument")?;
    let values = elements(rt, values)?;
    push(mc, rt, array, &values)?;
    Ok(Value::Unit)
}

/// `copy(array)`: a new array of the elements (other keys are not copied).
pub(super) fn copy<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: array")?;
    let values = elements(rt, a.array(0, "First argument")?)?;
    new_array(mc, rt, &values)
}

/// `count(array, value)`: how many elements equal `value`.
pub(super) fn count<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: array and value")?;
    let values = elements(rt, a.array(0, "First argument")?)?;
    let needle = a.get(1);
    let mut n = 0i64;
    for v in values {
        if values_equal(rt, v, needle, EQUAL_DEPTH)? {
            n += 1;
        }
    }
    Ok(Value::I64(n))
}

/// Python's search bounds: a negative bound counts from the end, then both are clamped to
/// the list; the stop is at least the start.
fn search_bounds(
    a: &Args<'_, '_>,
    start: Option<Value<'_>>,
    stop: Option<Value<'_>>,
    len: u64,
) -> Result<(u64, u64), RuntimeErrorKind> {
    let len_i = i128::from(len);
    let bound = |v: Option<Value<'_>>, default: i128| -> Result<u64, RuntimeErrorKind> {
        let raw = match v {
            Some(v) => to_index(a.b, v, "index bound")?,
            None => default,
        };
        let n = if raw < 0 { raw + len_i } else { raw };
        Ok(n.clamp(0, len_i) as u64)
    };
    let start = bound(start, 0)?;
    let stop = bound(stop, len_i)?;
    Ok((start, stop.max(start)))
}

/// `index(array, value[, start[, stop]])`: the first index in the bounds whose element
/// equals `value`.
pub(super) fn index<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(2, "at least 2 arguments: array and value")?;
    a.at_most(4, "4 arguments: array, value, start, and stop")?;
    let array = a.array(0, "First argument")?;
    let needle = a.get(1);
    let values = elements(rt, array)?;
    let start = (a.args.len() >= 3).then(|| a.get(2));
    let stop = (a.args.len() >= 4).then(|| a.get(3));
    let (start, stop) = search_bounds(&a, start, stop, values.len() as u64)?;
    for i in start..stop {
        if values_equal(rt, values[i as usize], needle, EQUAL_DEPTH)? {
            return Ok(Value::I64(i as i64));
        }
    }
    Err(fail(a.b, "value is not in list"))
}

/// An existing element's index: a negative one counts from the end.
fn existing_index(a: &Args<'_, '_>, index: i64, len: usize) -> Result<usize, RuntimeErrorKind> {
    let len = len as i128;
    let i = i128::from(index);
    let i = if i < 0 { len + i } else { i };
    if i < 0 || i >= len {
        return Err(fail(a.b, "list index out of range"));
    }
    Ok(i as usize)
}

/// Removes the element at `index` of `values` and writes the rest back; returns it.
fn take_at<'gc>(
    mc: &Mutation<'gc>,
    rt: &Runtime,
    array: crate::heap::ArrayRef<'gc>,
    mut values: Vec<Value<'gc>>,
    index: usize,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let v = values.remove(index);
    replace_elements(mc, rt, array, &values)?;
    Ok(v)
}

/// `pop(array[, index])`: removes and returns the element (the last by default).
pub(super) fn pop<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(1, "at least 1 argument: array")?;
    a.at_most(2, "2 arguments: array and optional index")?;
    let array = a.array(0, "First argument")?;
    let len = array.borrow().length();
    if len == 0 {
        return Err(fail(a.b, "pop from empty list"));
    }
    let values = elements(rt, array)?;
    let index = if a.args.len() == 2 {
        existing_index(&a, a.i64(1, "index")?, values.len())?
    } else {
        values.len() - 1
    };
    take_at(mc, rt, array, values, index)
}

/// `remove(array, value)`: removes the first element equal to `value`; Unit.
pub(super) fn remove<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: array and value")?;
    let array = a.array(0, "First argument")?;
    let values = elements(rt, array)?;
    for i in 0..values.len() {
        if values_equal(rt, values[i], a.get(1), EQUAL_DEPTH)? {
            take_at(mc, rt, array, values, i)?;
            return Ok(Value::Unit);
        }
    }
    Err(fail(a.b, "value is not in list"))
}

/// `insert(array, index, value)`: Python's insert (a negative index counts from the end,
/// out-of-range indices clamp to the ends); Unit.
pub(super) fn insert<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(3, "3 arguments: array, index, and value")?;
    let array = a.array(0, "First argument")?;
    let raw = a.i64(1, "index")?;
    let mut values = elements(rt, array)?;
    values
        .try_reserve(1)
        .map_err(|_| rt.alloc_error(AllocError::System(std::mem::size_of::<Value<'_>>())))?;
    let len = values.len() as i128;
    let i = i128::from(raw);
    let i = if i < 0 { len + i } else { i }.clamp(0, len) as usize;
    values.insert(i, a.get(2));
    replace_elements(mc, rt, array, &values)?;
    Ok(Value::Unit)
}

/// `clear(array)`: no elements left; Unit.
pub(super) fn clear<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: array")?;
    let array = a.array(0, "First argument")?;
    replace_elements(mc, rt, array, &[])?;
    Ok(Value::Unit)
}

/// `reverse(array)`: in place; Unit.
pub(super) fn reverse<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: array")?;
    let array = a.array(0, "First argument")?;
    let mut values = elements(rt, array)?;
    values.reverse();
    replace_elements(mc, rt, array, &values)?;
    Ok(Value::Unit)
}

/// `delete(array, index)`: removes the element at `index` (negative from the end); Unit.
pub(super) fn delete<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: array and index")?;
    let array = a.array(0, "First argument")?;
    let raw = a.i64(1, "index")?;
    let len = array.borrow().length();
    existing_index(&a, raw, usize::try_from(len).unwrap_or(usize::MAX))?;
    let values = elements(rt, array)?;
    let i = existing_index(&a, raw, values.len())?;
    take_at(mc, rt, array, values, i)?;
    Ok(Value::Unit)
}

/// `contains(container, value)`: a substring of a string, an element of an array (list
/// equality), a key of an object.
pub(super) fn contains<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: container and value")?;
    let needle = a.get(1);
    match a.get(0) {
        Value::String(haystack) => {
            let Value::String(needle) = needle else {
                return Err(fail(a.b, "'in' on a string requires a string operand"));
            };
            spend(rt, haystack.as_str().len() as u64 / 16)?;
            Ok(Value::Bool(haystack.as_str().contains(needle.as_str())))
        }
        Value::Array(array) => {
            let values = elements(rt, array)?;
            for v in values {
                if values_equal(rt, v, needle, EQUAL_DEPTH)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        Value::Object(o) => Ok(Value::Bool(o.borrow().fields.get(&Key(needle)).is_some())),
        other => Err(fail(
            a.b,
            format!(
                "'in' requires a list, dict, or string container, found {}",
                kind_name(other)
            ),
        )),
    }
}

/// `sort(array)`: ascending, stable. Numbers of every kind compare by value (a float with
/// an integer as floats), strings by bytes, booleans false first; anything else, or a NaN
/// met in a comparison, is an error.
pub(super) fn sort<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: array")?;
    let array = a.array(0, "First argument")?;
    let mut values = elements(rt, array)?;
    sort_values(&a, rt, &mut values)?;
    replace_elements(mc, rt, array, &values)?;
    Ok(Value::Unit)
}

/// How a value takes part in sorting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Int,
    Float,
    Nan,
    Text,
    Bool,
    Other,
}

fn class(v: Value<'_>) -> Class {
    match v {
        Value::I64(_)
        | Value::I32(_)
        | Value::I16(_)
        | Value::I8(_)
        | Value::U64(_)
        | Value::U32(_)
        | Value::U16(_)
        | Value::U8(_) => Class::Int,
        Value::Float(f) if f.is_nan() => Class::Nan,
        Value::Float(_) => Class::Float,
        Value::String(_) => Class::Text,
        Value::Bool(_) => Class::Bool,
        _ => Class::Other,
    }
}

/// StoffelVM's sort comparison of two values.
fn compare(a: &Args<'_, '_>, x: Value<'_>, y: Value<'_>) -> Result<Ordering, RuntimeErrorKind> {
    if let (Some(i), Some(j)) = (int_value(x), int_value(y)) {
        return Ok(i.cmp(&j));
    }
    let number = |v: Value<'_>| match v {
        Value::Float(f) => Some(f),
        other => int_value(other).map(|i| i as f64),
    };
    if let (Some(p), Some(q)) = (number(x), number(y)) {
        return p
            .partial_cmp(&q)
            .ok_or_else(|| fail(a.b, "list sort does not support NaN values"));
    }
    match (x, y) {
        (Value::String(s), Value::String(t)) => Ok(s.as_str().cmp(t.as_str())),
        (Value::Bool(s), Value::Bool(t)) => Ok(s.cmp(&t)),
        _ => Err(fail(
            a.b,
            format!(
                "list sort does not support comparing {} and {}",
                kind_name(x),
                kind_name(y)
            ),
        )),
    }
}

/// Sorts as StoffelVM's insertion sort does. Where the comparison is a total order (all
/// integers, all non-NaN floats, all strings or all booleans) any stable sort gives the same
/// result, so an O(n log n) one runs; otherwise (mixed integers and floats, NaN, kinds that
/// do not compare) the insertion sort itself runs, so the result and the first error are
/// exactly the original's, each comparison charged to the instruction budget.
fn sort_values(
    a: &Args<'_, '_>,
    rt: &mut Runtime,
    values: &mut [Value<'_>],
) -> Result<(), RuntimeErrorKind> {
    let n = values.len() as u64;
    let first = values.first().map(|&v| class(v));
    let uniform = first.is_some_and(|c| {
        matches!(c, Class::Int | Class::Float | Class::Text | Class::Bool)
            && values.iter().all(|&v| class(v) == c)
    });
    if uniform || n < 2 {
        // n log2 n comparisons, charged before they are made.
        spend(rt, n.saturating_mul(u64::from(64 - n.leading_zeros())))?;
        // The stable sort's buffer (half the values) is admitted like the values were.
        rt.check_alloc(values.len() / 2 * std::mem::size_of::<Value<'_>>())?;
        // Cannot fail: the values are of one class with a total order.
        values.sort_by(|&x, &y| compare(a, x, y).unwrap_or(Ordering::Equal));
        return Ok(());
    }
    for i in 1..values.len() {
        let mut j = i;
        while j > 0 {
            spend(rt, 1)?;
            if compare(a, values[j], values[j - 1])? != Ordering::Less {
                break;
            }
            values.swap(j, j - 1);
            j -= 1;
        }
    }
    Ok(())
}
