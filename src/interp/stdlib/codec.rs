//! The byte format `LocalStorage` keeps values in: StoffelVM's persistent value codec
//! (`STFLVAL1`), so a stored value has the same bytes as in the original's store.
//!
//! After the 8-byte magic, a value is a tag byte and its payload, integers little-endian,
//! lengths as u64: Unit 0; I64 1, I32 2, I16 3, I8 4, U8 5, U16 6, U32 7, U64 8 (their
//! bytes); Float 9 (the f64 bits); Bool 10 (0 or 1); String 11 (length, UTF-8 bytes);
//! Object 13 (entry count, then key and value of each field); Array 14 (length, entry count,
//! then key and value of each element `0..length` and of each other key). Tag 12 is an MPC
//! share, which needs an engine. Closures and foreign objects cannot be stored; neither can
//! a value that contains itself.
//!
//! Limits (the original's, checked on both sides here): 16 MiB per value, 65,536 entries per
//! object or array; and (stoffel-vm's, for the native stack) 256 levels of nesting.

use gc_arena::{Gc, Mutation};

use super::{new_array, spend};
use crate::heap::{Object, Str};
use crate::interp::{Runtime, RuntimeErrorKind, kind_name};
use crate::value::Value;

const MAGIC: &[u8; 8] = b"STFLVAL1";
/// The largest encoded value (the original's `MAX_PERSISTENT_VALUE_BYTES`).
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// The most entries of one object or array.
const MAX_ENTRIES: u64 = 65_536;
/// The deepest nesting of objects and arrays.
const MAX_DEPTH: usize = 256;

const TAG_UNIT: u8 = 0;
const TAG_I64: u8 = 1;
const TAG_I32: u8 = 2;
const TAG_I16: u8 = 3;
const TAG_I8: u8 = 4;
const TAG_U8: u8 = 5;
const TAG_U16: u8 = 6;
const TAG_U32: u8 = 7;
const TAG_U64: u8 = 8;
const TAG_FLOAT: u8 = 9;
const TAG_BOOL: u8 = 10;
const TAG_STRING: u8 = 11;
const TAG_SHARE: u8 = 12;
const TAG_OBJECT: u8 = 13;
const TAG_ARRAY: u8 = 14;

/// Why a value could not be stored or loaded (the original's texts), or a runtime failure
/// (the instruction or memory limit) to pass on as it is.
pub(super) enum CodecError {
    Message(String),
    Runtime(RuntimeErrorKind),
}

impl From<RuntimeErrorKind> for CodecError {
    fn from(e: RuntimeErrorKind) -> Self {
        CodecError::Runtime(e)
    }
}

fn invalid(reason: impl std::fmt::Display) -> CodecError {
    CodecError::Message(format!("invalid persistent value data: {reason}"))
}

fn limit(label: &str, count: u64, limit: u64) -> CodecError {
    CodecError::Message(format!(
        "{label} count {count} exceeds supported limit {limit}"
    ))
}

/// Encodes `value`.
pub(super) fn encode(rt: &mut Runtime, value: Value<'_>) -> Result<Vec<u8>, CodecError> {
    let mut e = Encoder {
        out: Vec::new(),
        active: Vec::new(),
    };
    e.out.extend_from_slice(MAGIC);
    e.value(rt, value)?;
    Ok(e.out)
}

struct Encoder {
    out: Vec<u8>,
    /// The objects and arrays being written (by address), to refuse cycles.
    active: Vec<usize>,
}

impl Encoder {
    fn put(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        if self.out.len() + bytes.len() > MAX_BYTES {
            return Err(limit(
                "persistent value byte",
                (self.out.len() + bytes.len()) as u64,
                MAX_BYTES as u64,
            ));
        }
        self.out
            .try_reserve(bytes.len())
            .map_err(|_| CodecError::Runtime(RuntimeErrorKind::OutOfMemory(bytes.len())))?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn u64(&mut self, n: u64) -> Result<(), CodecError> {
        self.put(&n.to_le_bytes())
    }

    fn tagged(&mut self, tag: u8, bytes: &[u8]) -> Result<(), CodecError> {
        self.put(&[tag])?;
        self.put(bytes)
    }

    fn value(&mut self, rt: &mut Runtime, v: Value<'_>) -> Result<(), CodecError> {
        spend(rt, 1)?;
        match v {
            Value::Unit => self.put(&[TAG_UNIT]),
            Value::I64(x) => self.tagged(TAG_I64, &x.to_le_bytes()),
            Value::I32(x) => self.tagged(TAG_I32, &x.to_le_bytes()),
            Value::I16(x) => self.tagged(TAG_I16, &x.to_le_bytes()),
            Value::I8(x) => self.tagged(TAG_I8, &x.to_le_bytes()),
            Value::U8(x) => self.tagged(TAG_U8, &[x]),
            Value::U16(x) => self.tagged(TAG_U16, &x.to_le_bytes()),
            Value::U32(x) => self.tagged(TAG_U32, &x.to_le_bytes()),
            Value::U64(x) => self.tagged(TAG_U64, &x.to_le_bytes()),
            Value::Float(x) => self.tagged(TAG_FLOAT, &x.to_bits().to_le_bytes()),
            Value::Bool(x) => self.tagged(TAG_BOOL, &[u8::from(x)]),
            Value::String(s) => {
                spend(rt, s.as_str().len() as u64 / 16)?;
                self.put(&[TAG_STRING])?;
                self.u64(s.as_str().len() as u64)?;
                self.put(s.as_str().as_bytes())
            }
            Value::Object(o) => {
                let ptr = Gc::as_ptr(o) as usize;
                self.enter(ptr, "object", o.borrow().id)?;
                let object = o.borrow();
                let count = object.fields.len() as u64;
                if count > MAX_ENTRIES {
                    return Err(limit("object entry", count, MAX_ENTRIES));
                }
                self.put(&[TAG_OBJECT])?;
                self.u64(count)?;
                for (key, value) in object.fields.entries() {
                    self.value(rt, key)?;
                    self.value(rt, value)?;
                }
                self.active.pop();
                Ok(())
            }
            Value::Array(a) => {
                let ptr = Gc::as_ptr(a) as usize;
                self.enter(ptr, "array", a.borrow().id)?;
                let array = a.borrow();
                let len = array.length();
                let entries = len.saturating_add(array.other_entries().count() as u64);
                if entries > MAX_ENTRIES {
                    return Err(limit("array entry", entries, MAX_ENTRIES));
                }
                self.put(&[TAG_ARRAY])?;
                self.u64(len)?;
                self.u64(entries)?;
                for i in 0..len {
                    let key = Value::I64(i as i64);
                    self.value(rt, key)?;
                    self.value(rt, array.get(key))?;
                }
                for (key, value) in array.other_entries() {
                    self.value(rt, key)?;
                    self.value(rt, value)?;
                }
                self.active.pop();
                Ok(())
            }
            Value::Closure(_) | Value::Foreign(_) => Err(CodecError::Message(format!(
                "cannot persist {} values",
                kind_name(v)
            ))),
        }
    }

    /// Starts writing the object or array at `ptr`: refuses a cycle and too deep a nesting.
    fn enter(&mut self, ptr: usize, kind: &str, id: u64) -> Result<(), CodecError> {
        if self.active.contains(&ptr) {
            return Err(CodecError::Message(format!(
                "cannot persist cyclic {kind} value with id {id}"
            )));
        }
        if self.active.len() >= MAX_DEPTH {
            return Err(CodecError::Message(format!(
                "cannot persist a value nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.active.push(ptr);
        Ok(())
    }
}

/// Decodes a stored value into new heap values.
pub(super) fn decode<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    bytes: &[u8],
) -> Result<Value<'gc>, CodecError> {
    if bytes.len() > MAX_BYTES {
        return Err(limit(
            "persistent value byte",
            bytes.len() as u64,
            MAX_BYTES as u64,
        ));
    }
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(invalid("unknown persistent value format"));
    }
    let value = r.value(mc, rt, 0)?;
    if r.at != bytes.len() {
        return Err(CodecError::Message(
            "persistent value contains trailing bytes".to_owned(),
        ));
    }
    Ok(value)
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], CodecError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(invalid(format!(
                "expected {n} bytes at offset {}, but input ended",
                self.at
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn count(&mut self, label: &str) -> Result<u64, CodecError> {
        let n = self.u64()?;
        if n > MAX_ENTRIES {
            return Err(limit(label, n, MAX_ENTRIES));
        }
        Ok(n)
    }

    fn value<'gc>(
        &mut self,
        mc: &Mutation<'gc>,
        rt: &mut Runtime,
        depth: usize,
    ) -> Result<Value<'gc>, CodecError> {
        spend(rt, 1)?;
        let [tag] = self.array()?;
        Ok(match tag {
            TAG_UNIT => Value::Unit,
            TAG_I64 => Value::I64(i64::from_le_bytes(self.array()?)),
            TAG_I32 => Value::I32(i32::from_le_bytes(self.array()?)),
            TAG_I16 => Value::I16(i16::from_le_bytes(self.array()?)),
            TAG_I8 => Value::I8(i8::from_le_bytes(self.array()?)),
            TAG_U8 => Value::U8(u8::from_le_bytes(self.array()?)),
            TAG_U16 => Value::U16(u16::from_le_bytes(self.array()?)),
            TAG_U32 => Value::U32(u32::from_le_bytes(self.array()?)),
            TAG_U64 => Value::U64(u64::from_le_bytes(self.array()?)),
            TAG_FLOAT => Value::Float(f64::from_bits(self.u64()?)),
            TAG_BOOL => match self.array()? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                [b] => return Err(invalid(format!("invalid boolean byte {b}"))),
            },
            TAG_STRING => {
                let len = self.u64()?;
                let bytes = self.take(usize::try_from(len).unwrap_or(usize::MAX))?;
                let text = std::str::from_utf8(bytes).map_err(invalid)?;
                spend(rt, text.len() as u64 / 16)?;
                rt.check_alloc(Str::charge(text.len()))?;
                let s = Str::try_alloc_copy(mc, &rt.meter, text).map_err(|e| rt.alloc_error(e))?;
                Value::String(s)
            }
            TAG_SHARE => {
                return Err(CodecError::Message(
                    "cannot persist or load share values without MPC persistence context"
                        .to_owned(),
                ));
            }
            TAG_OBJECT | TAG_ARRAY if depth >= MAX_DEPTH => {
                return Err(invalid(format!(
                    "values nested deeper than {MAX_DEPTH} levels"
                )));
            }
            TAG_OBJECT => {
                rt.check_alloc(64)?;
                let id = rt.heap_id();
                let object = Object::alloc(mc, &rt.meter, id);
                for _ in 0..self.count("object entry")? {
                    let key = self.value(mc, rt, depth + 1)?;
                    let value = self.value(mc, rt, depth + 1)?;
                    object
                        .borrow_mut(mc)
                        .try_set(key, value, rt.room())
                        .map_err(|e| rt.alloc_error(e))?;
                }
                Value::Object(object)
            }
            TAG_ARRAY => {
                // The length: every element is an entry of its own, so it needs no check.
                self.count("array")?;
                let array = new_array(mc, rt, &[])?;
                let Value::Array(a) = array else {
                    return Err(invalid("array"));
                };
                for _ in 0..self.count("array entry")? {
                    let key = self.value(mc, rt, depth + 1)?;
                    let value = self.value(mc, rt, depth + 1)?;
                    a.borrow_mut(mc)
                        .try_set(key, value, rt.room())
                        .map_err(|e| rt.alloc_error(e))?;
                }
                array
            }
            tag => return Err(invalid(format!("unknown value tag {tag}"))),
        })
    }
}
