//! The current StoffelVM's standard library beyond the original twelve builtins: list
//! operations (`lists`, `seq`), `assert` and `slice` (`text`), byte arrays and hashes
//! (`bytes`), `LocalStorage.*` against a host-configured directory (`storage`, `codec`), and
//! the refusal of MPC builtins (`mpc`).
//!
//! Argument rules, results and messages follow the current StoffelVM (`standard_library.rs`
//! and `mpc_builtins/` of the monorepo); a message is the original's text after the
//! builtin's name (the [`RuntimeErrorKind::Builtin`] prefix names it). Work that grows with
//! the input is charged to the instruction budget ([`spend`]) and refused up front when it
//! cannot fit; memory goes through the limit-checked heap API.

mod bytes;
mod codec;
mod lists;
pub(crate) mod mpc;
mod seq;
mod storage;
mod text;

use gc_arena::Mutation;

use super::builtins::Builtin;
use super::{Runtime, RuntimeErrorKind, kind_name};
use crate::heap::{AllocError, Array, ArrayRef};
use crate::value::{Key, Value};

pub(crate) use mpc::unbound_call;

/// Runs standard-library builtin `b` on `args`.
pub(crate) fn call<'gc>(
    b: Builtin,
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    args: &[Value<'gc>],
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let a = Args { b, args };
    match b {
        Builtin::Len => lists::len(rt, a),
        Builtin::Append => lists::append(mc, rt, a),
        Builtin::Extend => lists::extend(mc, rt, a),
        Builtin::Copy => lists::copy(mc, rt, a),
        Builtin::Count => lists::count(rt, a),
        Builtin::Index => lists::index(rt, a),
        Builtin::Pop => lists::pop(mc, rt, a),
        Builtin::Remove => lists::remove(mc, rt, a),
        Builtin::Insert => lists::insert(mc, rt, a),
        Builtin::Clear => lists::clear(mc, rt, a),
        Builtin::Reverse => lists::reverse(mc, rt, a),
        Builtin::Sort => lists::sort(mc, rt, a),
        Builtin::Delete => lists::delete(mc, rt, a),
        Builtin::Contains => lists::contains(rt, a),
        Builtin::ArrayConcat => seq::array_concat(mc, rt, a),
        Builtin::ArrayRepeat => seq::array_repeat(mc, rt, a),
        Builtin::ArrayEquals => seq::array_equals(rt, a),
        Builtin::GetOrCreateArrayField => seq::get_or_create_array_field(mc, rt, a),
        Builtin::Range => seq::range(mc, rt, a),
        Builtin::Slice => text::slice(mc, rt, a),
        Builtin::Assert => text::assert(a),
        Builtin::BytesFromString => bytes::from_string(mc, rt, a),
        Builtin::BytesConcat => bytes::concat(mc, rt, a),
        Builtin::CryptoSha256 => bytes::sha256(mc, rt, a),
        Builtin::CryptoSha512 => bytes::sha512(mc, rt, a),
        Builtin::StorageStore => storage::store(rt, a),
        Builtin::StorageLoad | Builtin::StorageRetrieve => storage::load(mc, rt, a),
        Builtin::StorageDelete => storage::delete(rt, a),
        Builtin::StorageExists => storage::exists(rt, a),
        _ => Err(RuntimeErrorKind::Internal("not a standard-library builtin")),
    }
}

/// A builtin's error with the original's message.
pub(crate) fn fail(b: Builtin, message: impl Into<String>) -> RuntimeErrorKind {
    RuntimeErrorKind::Builtin {
        builtin: b.name(),
        message: message.into(),
    }
}

/// A builtin's arguments, with the original's checks and messages.
#[derive(Clone, Copy)]
pub(crate) struct Args<'a, 'gc> {
    b: Builtin,
    args: &'a [Value<'gc>],
}

impl<'gc> Args<'_, 'gc> {
    /// Exactly `n` arguments, else "expects {expectation}".
    fn exact(&self, n: usize, expectation: &str) -> Result<(), RuntimeErrorKind> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(fail(self.b, format!("expects {expectation}")))
        }
    }

    /// At least `n` arguments, else "expects {expectation}".
    fn at_least(&self, n: usize, expectation: &str) -> Result<(), RuntimeErrorKind> {
        if self.args.len() >= n {
            Ok(())
        } else {
            Err(fail(self.b, format!("expects {expectation}")))
        }
    }

    /// At most `n` arguments, else "expects at most {expectation}".
    fn at_most(&self, n: usize, expectation: &str) -> Result<(), RuntimeErrorKind> {
        if self.args.len() <= n {
            Ok(())
        } else {
            Err(fail(self.b, format!("expects at most {expectation}")))
        }
    }

    /// Argument `i` (the arity was checked).
    fn get(&self, i: usize) -> Value<'gc> {
        self.args.get(i).copied().unwrap_or_default()
    }

    /// Argument `i` as an array, else "{what} must be an array".
    fn array(&self, i: usize, what: &str) -> Result<ArrayRef<'gc>, RuntimeErrorKind> {
        match self.get(i) {
            Value::Array(a) => Ok(a),
            _ => Err(fail(self.b, format!("{what} must be an array"))),
        }
    }

    /// Argument `i` as an i64 ([`to_i64`]).
    fn i64(&self, i: usize, name: &str) -> Result<i64, RuntimeErrorKind> {
        to_i64(self.get(i)).map_err(|e| fail(self.b, e.message(name)))
    }
}

/// Why an integer conversion failed.
enum IntError {
    NotInteger,
    TooLarge,
}

impl IntError {
    fn message(&self, name: &str) -> String {
        match self {
            IntError::NotInteger => format!("{name} must be an integer"),
            IntError::TooLarge => format!("{name} exceeds i64 range"),
        }
    }
}

/// Any integer kind as an i64 (a u64 above `i64::MAX` does not fit).
fn to_i64(v: Value<'_>) -> Result<i64, IntError> {
    Ok(match v {
        Value::I64(x) => x,
        Value::I32(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U64(x) => i64::try_from(x).map_err(|_| IntError::TooLarge)?,
        Value::U32(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::U8(x) => x.into(),
        _ => return Err(IntError::NotInteger),
    })
}

/// An integer of any kind, exactly.
fn int_value(v: Value<'_>) -> Option<i128> {
    Some(match v {
        Value::I64(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U64(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::U8(x) => x.into(),
        _ => return None,
    })
}

/// Any integer kind as an i128, else "{name} must be an integer, found {kind}".
fn to_index(b: Builtin, v: Value<'_>, name: &str) -> Result<i128, RuntimeErrorKind> {
    int_value(v).ok_or_else(|| {
        fail(
            b,
            format!("{name} must be an integer, found {}", kind_name(v)),
        )
    })
}

/// Charges `units` of work to the running instruction (the instruction budget pays for it
/// past [`super::FREE_WORK`]); fails with the instruction limit as soon as the work passes
/// what the budget has left, so a builtin never runs long past the limit.
pub(crate) fn spend(rt: &mut Runtime, units: u64) -> Result<(), RuntimeErrorKind> {
    rt.work = rt.work.saturating_add(units);
    if rt.work > rt.work_cap.saturating_add(super::FREE_WORK) {
        return Err(RuntimeErrorKind::FuelExhausted(
            rt.limits.instructions.unwrap_or(u64::MAX),
        ));
    }
    Ok(())
}

/// Bytes `n` values take.
fn value_bytes(n: u64) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(std::mem::size_of::<Value<'_>>())
}

/// An empty vector with room for `n` values, admitted by the memory limit.
fn value_vec<'gc>(rt: &Runtime, n: u64) -> Result<Vec<Value<'gc>>, RuntimeErrorKind> {
    let bytes = value_bytes(n);
    rt.check_alloc(bytes)?;
    let mut v = Vec::new();
    v.try_reserve_exact(usize::try_from(n).unwrap_or(usize::MAX))
        .map_err(|_| rt.alloc_error(AllocError::System(bytes)))?;
    Ok(v)
}

/// The elements of `a` (indices `0..length`, holes as Unit), charged one unit each.
fn elements<'gc>(rt: &mut Runtime, a: ArrayRef<'gc>) -> Result<Vec<Value<'gc>>, RuntimeErrorKind> {
    let array = a.borrow();
    let n = array.length();
    spend(rt, n)?;
    let mut out = value_vec(rt, n)?;
    array.elements_into(&mut out);
    Ok(out)
}

/// A new array of `n` elements, which `fill` appends (in pieces) through the callback it is
/// given. The memory limit admits the whole array first.
fn new_array_with<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    n: u64,
    fill: impl FnOnce(&mut dyn FnMut(&[Value<'gc>])),
) -> Result<Value<'gc>, RuntimeErrorKind> {
    rt.check_alloc(value_bytes(n).saturating_add(64))?;
    if n > i64::MAX as u64 {
        return Err(rt.alloc_error(AllocError::System(value_bytes(n))));
    }
    let capacity = usize::try_from(n).unwrap_or(usize::MAX);
    let array = Array::try_alloc(mc, &rt.meter, rt.next_heap_id, capacity)
        .map_err(|e| rt.alloc_error(e))?;
    rt.heap_id();
    {
        let mut a = array.borrow_mut(mc);
        // The capacity is reserved: appending allocates nothing, so cannot fail.
        fill(&mut |values| {
            let _ = a.try_extend(values, usize::MAX);
        });
    }
    Ok(Value::Array(array))
}

/// A new array holding `values`.
fn new_array<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    values: &[Value<'gc>],
) -> Result<Value<'gc>, RuntimeErrorKind> {
    new_array_with(mc, rt, values.len() as u64, |push| push(values))
}

/// Replaces the elements of `a` with `values` (StoffelVM's rebuild: non-index keys stay).
fn replace_elements<'gc>(
    mc: &Mutation<'gc>,
    rt: &Runtime,
    a: ArrayRef<'gc>,
    values: &[Value<'gc>],
) -> Result<(), RuntimeErrorKind> {
    a.borrow_mut(mc)
        .try_replace_elements(values, rt.room())
        .map_err(|e| rt.alloc_error(e))?;
    Ok(())
}

/// How deep `values_equal` compares nested arrays (the original's bound).
const EQUAL_DEPTH: usize = 64;

/// The equality the list builtins use (`count`, `index`, `remove`, `contains`,
/// `array_equals`): arrays element by element, `depth` levels deep (an array met below that
/// is unequal unless it is the same array); everything else as object keys compare (kinds
/// distinct, strings by content, NaN equal to NaN, heap values by identity). Each element
/// compared costs one unit of work.
///
/// The one place list equality is defined: a shared value-equality helper can replace it.
pub(crate) fn values_equal<'gc>(
    rt: &mut Runtime,
    a: Value<'gc>,
    b: Value<'gc>,
    depth: usize,
) -> Result<bool, RuntimeErrorKind> {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => arrays_equal(rt, x, y, depth),
        _ => Ok(Key(a) == Key(b)),
    }
}

fn arrays_equal<'gc>(
    rt: &mut Runtime,
    x: ArrayRef<'gc>,
    y: ArrayRef<'gc>,
    depth: usize,
) -> Result<bool, RuntimeErrorKind> {
    if gc_arena::Gc::ptr_eq(x, y) {
        return Ok(true);
    }
    if depth == 0 {
        return Ok(false);
    }
    let (xa, ya) = (x.borrow(), y.borrow());
    if xa.length() != ya.length() {
        return Ok(false);
    }
    for i in 0..xa.length() {
        spend(rt, 1)?;
        let key = Value::I64(i as i64);
        if !values_equal(rt, xa.get(key), ya.get(key), depth - 1)? {
            return Ok(false);
        }
    }
    Ok(true)
}
