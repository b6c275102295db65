//! Byte arrays (an array of U8, as StoffelVM represents `bytes`): `Bytes.from_string`,
//! `Bytes.concat`, and the hashes `Crypto.sha256` / `Crypto.sha512`, whose results are byte
//! arrays too.

use gc_arena::Mutation;
use sha2::{Digest, Sha256, Sha512};

use super::{Args, fail, new_array_with, spend};
use crate::heap::AllocError;
use crate::interp::{Runtime, RuntimeErrorKind};
use crate::value::Value;

/// The bytes of a byte array: "Expected byte array" for anything else, "Expected U8 at
/// index i" for an element that is not a U8 (a hole included).
pub(super) fn read_bytes(
    a: &Args<'_, '_>,
    rt: &mut Runtime,
    v: Value<'_>,
) -> Result<Vec<u8>, RuntimeErrorKind> {
    let Value::Array(array) = v else {
        return Err(fail(a.b, "Expected byte array"));
    };
    let array = array.borrow();
    let n = array.length();
    spend(rt, n)?;
    let len = usize::try_from(n).unwrap_or(usize::MAX);
    rt.check_alloc(len)?;
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| rt.alloc_error(AllocError::System(len)))?;
    for i in 0..n {
        match array.get(Value::I64(i as i64)) {
            Value::U8(b) => out.push(b),
            _ => return Err(fail(a.b, format!("Expected U8 at index {i}"))),
        }
    }
    Ok(out)
}

/// A new byte array holding `bytes`.
pub(super) fn byte_array<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    bytes: &[u8],
) -> Result<Value<'gc>, RuntimeErrorKind> {
    spend(rt, bytes.len() as u64)?;
    new_array_with(mc, rt, bytes.len() as u64, |push| {
        for chunk in bytes.chunks(256) {
            let mut piece = [Value::Unit; 256];
            for (slot, &b) in piece.iter_mut().zip(chunk) {
                *slot = Value::U8(b);
            }
            push(&piece[..chunk.len()]);
        }
    })
}

/// `Bytes.from_string(text)`: the UTF-8 bytes of a string.
pub(super) fn from_string<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: string")?;
    let Value::String(s) = a.get(0) else {
        return Err(fail(a.b, "Argument must be a string"));
    };
    byte_array(mc, rt, s.as_str().as_bytes())
}

/// `Bytes.concat(a, b)`: a new byte array, `a` then `b` (further arguments are ignored).
pub(super) fn concat<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.at_least(2, "2 arguments: a, b")?;
    let mut left = read_bytes(&a, rt, a.get(0))?;
    let right = read_bytes(&a, rt, a.get(1))?;
    left.try_reserve_exact(right.len())
        .map_err(|_| rt.alloc_error(AllocError::System(right.len())))?;
    left.extend_from_slice(&right);
    byte_array(mc, rt, &left)
}

/// `Crypto.sha256(data)`: the 32-byte SHA-256 digest of a byte array.
pub(super) fn sha256<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: data (byte array)")?;
    let data = read_bytes(&a, rt, a.get(0))?;
    byte_array(mc, rt, &Sha256::digest(&data))
}

/// `Crypto.sha512(data)`: the 64-byte SHA-512 digest of a byte array.
pub(super) fn sha512<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: data (byte array)")?;
    let data = read_bytes(&a, rt, a.get(0))?;
    byte_array(mc, rt, &Sha512::digest(&data))
}
