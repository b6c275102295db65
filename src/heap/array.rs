//! Arrays: dense elements where indices are packed, a side map where they are far apart.

use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, Mutation};
use indexmap::IndexMap;

use super::{Account, AllocError, GC_OVERHEAD, Meter, map_bytes, reserve_vec, try_reserve_entry};
use crate::value::{Key, Value};

/// How far past the dense part an index may be and still extend it (instead of going to the
/// side map). Keeps `a[10^12] = x` from allocating terabytes while `a[len] = x` stays dense.
const DENSE_SLACK: u64 = 64;

/// Elements an array keeps inside its own allocation before it needs a buffer.
const INLINE_ELEMENTS: usize = 2;

/// An array's dense part: up to [`INLINE_ELEMENTS`] values stored in the array itself (tree
/// nodes, pairs and empty arrays then cost one allocation, not two), a vector past that.
#[derive(Collect)]
#[collect(no_drop)]
enum Dense<'gc> {
    /// The first `len` items are the elements; the rest are Unit.
    Inline {
        len: u8,
        items: [Value<'gc>; INLINE_ELEMENTS],
    },
    Heap(Vec<Value<'gc>>),
}

impl<'gc> Dense<'gc> {
    fn empty() -> Dense<'gc> {
        Dense::Inline {
            len: 0,
            items: [Value::Unit; INLINE_ELEMENTS],
        }
    }

    fn as_slice(&self) -> &[Value<'gc>] {
        match self {
            Dense::Inline { len, items } => &items[..*len as usize],
            Dense::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Value<'gc>] {
        match self {
            Dense::Inline { len, items } => &mut items[..*len as usize],
            Dense::Heap(v) => v,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Elements it holds without allocating.
    #[inline]
    fn capacity(&self) -> usize {
        match self {
            Dense::Inline { .. } => INLINE_ELEMENTS,
            Dense::Heap(v) => v.capacity(),
        }
    }

    /// Bytes of the buffer outside the array (none while inline).
    fn buffer_bytes(&self) -> usize {
        match self {
            Dense::Inline { .. } => 0,
            Dense::Heap(v) => v.capacity() * std::mem::size_of::<Value<'_>>(),
        }
    }

    /// Grows to `new_len` elements with Unit (never shrinks).
    fn grow_to(&mut self, new_len: usize) {
        match self {
            Dense::Inline { len, .. } if new_len <= INLINE_ELEMENTS => {
                // Slots past `len` are Unit already.
                *len = (*len).max(new_len as u8);
            }
            Dense::Inline { len, items } => {
                let mut v = Vec::with_capacity(new_len.max(2 * INLINE_ELEMENTS));
                v.extend_from_slice(&items[..*len as usize]);
                v.resize(new_len, Value::Unit);
                *self = Dense::Heap(v);
            }
            Dense::Heap(v) => {
                if new_len > v.len() {
                    v.resize(new_len, Value::Unit);
                }
            }
        }
    }

    /// Makes room for `need` elements (moving to a buffer past the inline ones), so that
    /// growing to `need` allocates nothing. Fails if the growth would pass `room` bytes or
    /// the system refuses it.
    #[inline]
    fn try_reserve(&mut self, need: usize, room: usize) -> Result<(), AllocError> {
        match self {
            Dense::Inline { .. } if need <= INLINE_ELEMENTS => Ok(()),
            Dense::Heap(v) if need <= v.capacity() => Ok(()),
            Dense::Inline { len, items } => {
                let mut v = Vec::new();
                reserve_vec(&mut v, need.max(2 * INLINE_ELEMENTS), room)?;
                v.extend_from_slice(&items[..*len as usize]);
                *self = Dense::Heap(v);
                Ok(())
            }
            Dense::Heap(v) => reserve_vec(v, need, room).map(|_| ()),
        }
    }

    fn push(&mut self, value: Value<'gc>) {
        let n = self.len();
        self.grow_to(n + 1);
        self.as_mut_slice()[n] = value;
    }
}

/// An array: non-negative `I64` indices, dense where they are packed, in a side map where
/// they are far apart; any other key behaves like an object field.
#[derive(Collect)]
#[collect(no_drop)]
pub struct Array<'gc> {
    /// The id `print` shows (`Array(2)`).
    pub id: u64,
    dense: Dense<'gc>,
    /// Non-index keys and far-away indices; boxed and absent until needed, so the common
    /// array (dense only) stays small.
    sparse: Option<Box<IndexMap<Key<'gc>, Value<'gc>>>>,
    /// One more than the largest non-negative I64 index written; shrinks only when the
    /// elements are replaced whole ([`Array::try_replace_elements`]).
    length: u64,
    account: Account,
}

/// A pointer to an array.
pub type ArrayRef<'gc> = Gc<'gc, RefLock<Array<'gc>>>;

impl<'gc> Array<'gc> {
    /// Allocates an empty array with room for `capacity` elements (capped by the caller);
    /// fails instead of aborting when the system has no memory for the buffer.
    pub fn try_alloc(
        mc: &Mutation<'gc>,
        meter: &Meter,
        id: u64,
        capacity: usize,
    ) -> Result<ArrayRef<'gc>, AllocError> {
        let mut dense = Dense::empty();
        dense.try_reserve(capacity, usize::MAX)?;
        if let Dense::Heap(v) = &dense {
            meter.pace(v.capacity() * std::mem::size_of::<Value<'_>>());
        }
        let bytes = GC_OVERHEAD + std::mem::size_of::<RefLock<Array<'_>>>() + dense.buffer_bytes();
        Ok(Gc::new(
            mc,
            RefLock::new(Array {
                id,
                dense,
                sparse: None,
                length: 0,
                account: Account::new(meter, bytes),
            }),
        ))
    }

    /// The length as StoffelVM reports it (a length ≥ 2^63 wraps negative, as the original).
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The value under `key`, or Unit (holes read as Unit).
    pub fn get(&self, key: Value<'gc>) -> Value<'gc> {
        if let Value::I64(i) = key
            && i >= 0
            && let Some(&v) = self.dense.as_slice().get(i as usize)
        {
            return v;
        }
        self.sparse
            .as_ref()
            .and_then(|m| m.get(&Key(key)).copied())
            .unwrap_or(Value::Unit)
    }

    /// The value under `key` if it was written: an index inside the dense part (holes
    /// there included, as Unit) or a key in the side map. `None` for anything else.
    #[inline]
    pub fn find(&self, key: Value<'gc>) -> Option<Value<'gc>> {
        if let Value::I64(i) = key
            && i >= 0
            && let Some(&v) = self.dense.as_slice().get(i as usize)
        {
            return Some(v);
        }
        self.sparse.as_ref().and_then(|m| m.get(&Key(key)).copied())
    }

    fn is_dense_index(&self, i: u64) -> bool {
        i < (self.dense.len() as u64)
            .saturating_mul(2)
            .saturating_add(DENSE_SLACK)
    }

    fn sparse_map(&mut self) -> &mut IndexMap<Key<'gc>, Value<'gc>> {
        self.sparse.get_or_insert_with(Box::default)
    }

    /// Writes `key` if its growth fits in `room` bytes and the system grants it; returns
    /// the bytes the array grew by.
    #[inline]
    pub fn try_set(
        &mut self,
        key: Value<'gc>,
        value: Value<'gc>,
        room: usize,
    ) -> Result<usize, AllocError> {
        if let Value::I64(i) = key
            && i >= 0
            && (i as u64) < self.dense.capacity() as u64
            && self.is_dense_index(i as u64)
        {
            // Within the dense part's capacity: no allocation.
            return Ok(self.set(key, value));
        }
        self.try_set_growing(key, value, room)
    }

    #[inline(never)]
    fn try_set_growing(
        &mut self,
        key: Value<'gc>,
        value: Value<'gc>,
        room: usize,
    ) -> Result<usize, AllocError> {
        match key {
            Value::I64(i) if i >= 0 && (i as u64) < self.dense.len() as u64 => {}
            Value::I64(i) if i >= 0 && self.is_dense_index(i as u64) => {
                self.dense.try_reserve(i as usize + 1, room)?;
            }
            _ => {
                let boxed = if self.sparse.is_none() {
                    std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>()
                } else {
                    0
                };
                if boxed > room {
                    return Err(AllocError::Limit(boxed));
                }
                try_reserve_entry(self.sparse_map(), &Key(key), room - boxed)?;
            }
        }
        Ok(self.set(key, value))
    }

    /// The elements at indices `0..length` (holes read as Unit) appended to `out`. The
    /// caller has checked that `length` elements may be allocated (a sparse array can be
    /// very long).
    pub fn elements_into(&self, out: &mut Vec<Value<'gc>>) {
        let dense = self.dense.as_slice();
        out.extend_from_slice(&dense[..dense.len().min(self.length as usize)]);
        for i in dense.len() as u64..self.length {
            out.push(self.get(Value::I64(i as i64)));
        }
    }

    /// The keys that are not element indices (strings, negative or non-I64 integers, …) with
    /// their values, in insertion order.
    pub fn other_entries(&self) -> impl Iterator<Item = (Value<'gc>, Value<'gc>)> + '_ {
        self.sparse
            .iter()
            .flat_map(|m| m.iter())
            .filter(|(k, _)| !matches!(k.0, Value::I64(i) if i >= 0))
            .map(|(k, v)| (k.0, *v))
    }

    /// Appends `values` at indices `length…` if the growth fits in `room` bytes and the
    /// system grants it (nothing changes otherwise); returns the bytes the array grew by.
    pub fn try_extend(&mut self, values: &[Value<'gc>], room: usize) -> Result<usize, AllocError> {
        let start = self.length;
        if start
            .checked_add(values.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(AllocError::Limit(usize::MAX));
        }
        if start != self.dense.len() as u64 {
            // Past a sparse gap the values go to the side map: room for all of them first,
            // so that a refusal changes nothing.
            let map = self.sparse_map();
            let cap = map.capacity();
            let want = map.len().saturating_add(values.len());
            if want > cap {
                let bytes = map_bytes(want) - map_bytes(cap);
                if bytes > room {
                    return Err(AllocError::Limit(bytes));
                }
                map.try_reserve(want - map.len())
                    .map_err(|_| AllocError::System(bytes))?;
            }
            for (i, &v) in values.iter().enumerate() {
                self.set(Value::I64((start + i as u64) as i64), v);
            }
            return Ok(self.resize_account());
        }
        // Every index key is below `length`, which the dense part covers: none is overwritten.
        let need = self.dense.len() + values.len();
        self.dense.try_reserve(need, room)?;
        for &v in values {
            self.dense.push(v);
        }
        self.length = need as u64;
        Ok(self.resize_account())
    }

    /// Makes the elements exactly `values` (length `values.len()`, as StoffelVM's list
    /// operations that rebuild an array: every non-negative index key goes, other keys stay)
    /// if the growth fits in `room` bytes and the system grants it (nothing changes
    /// otherwise); returns the bytes the array grew by.
    pub fn try_replace_elements(
        &mut self,
        values: &[Value<'gc>],
        room: usize,
    ) -> Result<usize, AllocError> {
        match &mut self.dense {
            Dense::Heap(v) if values.len() <= v.capacity() => v.clear(),
            _ if values.len() <= INLINE_ELEMENTS => self.dense = Dense::empty(),
            _ => {
                let mut v = Vec::new();
                reserve_vec(&mut v, values.len(), room)?;
                self.dense = Dense::Heap(v);
            }
        }
        for &v in values {
            self.dense.push(v);
        }
        if let Some(sparse) = self.sparse.as_mut() {
            sparse.retain(|k, _| !matches!(k.0, Value::I64(i) if i >= 0));
        }
        self.length = values.len() as u64;
        Ok(self.resize_account())
    }

    /// Brings the account up to date with the buffers; returns the bytes it grew by.
    fn resize_account(&mut self) -> usize {
        self.account.resize(
            GC_OVERHEAD
                + std::mem::size_of::<RefLock<Array<'_>>>()
                + self.dense.buffer_bytes()
                + self.sparse.as_ref().map_or(0, |m| {
                    std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>() + map_bytes(m.capacity())
                }),
        )
    }

    /// Writes `key`; returns the bytes the array grew by.
    pub fn set(&mut self, key: Value<'gc>, value: Value<'gc>) -> usize {
        match key {
            Value::I64(i) if i >= 0 => {
                let index = i as u64;
                self.length = self.length.max(index + 1);
                if index < self.dense.len() as u64 {
                    self.dense.as_mut_slice()[index as usize] = value;
                } else if self.is_dense_index(index) {
                    let old_len = self.dense.len();
                    self.dense.grow_to(index as usize);
                    if let Some(sparse) = self.sparse.as_mut().filter(|m| !m.is_empty()) {
                        // Indices that were far away may now fall inside the dense part.
                        for j in old_len..index as usize {
                            if let Some(v) = sparse.swap_remove(&Key(Value::I64(j as i64))) {
                                self.dense.as_mut_slice()[j] = v;
                            }
                        }
                        sparse.swap_remove(&Key(key));
                    }
                    self.dense.push(value);
                } else {
                    self.sparse_map().insert(Key(key), value);
                }
            }
            _ => {
                self.sparse_map().insert(Key(key), value);
            }
        }
        self.resize_account()
    }
}
