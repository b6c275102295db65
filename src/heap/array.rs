//! Arrays: up to two elements inside the array itself; past that, or with keys that are not
//! element indices, a separately allocated part with dense elements where indices are packed
//! and a side map where they are far apart.
//!
//! Most arrays a program makes are small (tree nodes, pairs, empty leaves), so the common
//! array is one allocation of 80 bytes with the allocator's header (`binary_trees` keeps
//! millions alive: its peak memory is mostly arrays). The inline form carries no byte
//! account of its own, only the meter it is charged to ([`ArrayCharge`]): its size is fixed.

use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, Mutation};
use indexmap::IndexMap;

use super::{Account, AllocError, GC_OVERHEAD, Meter, map_bytes, reserve_vec, try_reserve_entry};
use crate::value::{Key, Value};

/// How far past the dense part an index may be and still extend it (instead of going to the
/// side map). Keeps `a[10^12] = x` from allocating terabytes while `a[len] = x` stays dense.
const DENSE_SLACK: u64 = 64;

/// Where the elements are.
#[derive(Collect)]
#[collect(no_drop)]
enum Body<'gc> {
    /// No elements, no other keys.
    Empty,
    /// One element (index 0), no other keys.
    One(Value<'gc>),
    /// Two elements, no other keys.
    Two([Value<'gc>; 2]),
    /// Anything else.
    Spilled(Box<Spilled<'gc>>),
}

/// An array past the inline forms: dense elements, far-away indices and other keys.
#[derive(Collect)]
#[collect(no_drop)]
struct Spilled<'gc> {
    dense: Vec<Value<'gc>>,
    /// Non-index keys and far-away indices; boxed and absent until needed.
    sparse: Option<Box<IndexMap<Key<'gc>, Value<'gc>>>>,
    /// One more than the largest non-negative I64 index written; shrinks only when the
    /// elements are replaced whole ([`Array::try_replace_elements`]).
    length: u64,
    /// This part's bytes (its box and buffers).
    #[collect(require_static)]
    account: Account,
}

/// An array's share of the meter for its fixed size (the inline form's whole size): no byte
/// count of its own, half an [`Account`].
struct ArrayCharge(Meter);

gc_arena::static_collect!(ArrayCharge);

/// Bytes an array is charged before any buffer.
const ARRAY_BYTES: usize = GC_OVERHEAD + std::mem::size_of::<RefLock<Array<'static>>>();

impl Drop for ArrayCharge {
    fn drop(&mut self) {
        self.0.sub(ARRAY_BYTES);
    }
}

/// An array: non-negative `I64` indices, dense where they are packed, in a side map where
/// they are far apart; any other key behaves like an object field.
#[derive(Collect)]
#[collect(no_drop)]
pub struct Array<'gc> {
    /// The id `print` shows (`Array(2)`).
    pub id: u64,
    body: Body<'gc>,
    charge: ArrayCharge,
}

/// A pointer to an array.
pub type ArrayRef<'gc> = Gc<'gc, RefLock<Array<'gc>>>;

impl<'gc> Spilled<'gc> {
    /// A part with `dense` as its elements; its bytes are charged to `meter` (and paced).
    fn new(meter: &Meter, dense: Vec<Value<'gc>>) -> (Box<Spilled<'gc>>, usize) {
        let spilled = Box::new(Spilled {
            length: dense.len() as u64,
            dense,
            sparse: None,
            account: Account::new(meter, 0),
        });
        let grown = spilled.account.resize(spilled.bytes());
        (spilled, grown)
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Spilled<'_>>()
            + self.dense.capacity() * std::mem::size_of::<Value<'_>>()
            + self.sparse.as_ref().map_or(0, |m| {
                std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>() + map_bytes(m.capacity())
            })
    }

    /// Brings the account up to date with the buffers; returns the bytes it grew by.
    fn resize_account(&mut self) -> usize {
        self.account.resize(self.bytes())
    }

    fn is_dense_index(&self, i: u64) -> bool {
        i < (self.dense.len() as u64)
            .saturating_mul(2)
            .saturating_add(DENSE_SLACK)
    }

    fn sparse_map(&mut self) -> &mut IndexMap<Key<'gc>, Value<'gc>> {
        self.sparse.get_or_insert_with(Box::default)
    }

    #[inline(always)]
    fn find(&self, key: Value<'gc>) -> Option<Value<'gc>> {
        if let Value::I64(i) = key
            && i >= 0
            && let Some(&v) = self.dense.get(i as usize)
        {
            return Some(v);
        }
        self.sparse.as_ref().and_then(|m| m.get(&Key(key)).copied())
    }

    #[inline]
    fn try_set(
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
            // Within the dense part's capacity: no allocation, the size is unchanged.
            self.put(key, value);
            return Ok(0);
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
                reserve_vec(&mut self.dense, i as usize + 1, room)?;
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
        self.put(key, value);
        Ok(self.resize_account())
    }

    /// Writes `key` (room was made for it; the account is the caller's to update).
    fn put(&mut self, key: Value<'gc>, value: Value<'gc>) {
        match key {
            Value::I64(i) if i >= 0 => {
                let index = i as u64;
                self.length = self.length.max(index + 1);
                if index < self.dense.len() as u64 {
                    self.dense[index as usize] = value;
                } else if self.is_dense_index(index) {
                    let old_len = self.dense.len();
                    self.dense.resize(index as usize, Value::Unit);
                    if let Some(sparse) = self.sparse.as_mut().filter(|m| !m.is_empty()) {
                        // Indices that were far away may now fall inside the dense part.
                        for j in old_len..index as usize {
                            if let Some(v) = sparse.swap_remove(&Key(Value::I64(j as i64))) {
                                self.dense[j] = v;
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
    }

    fn try_extend(&mut self, values: &[Value<'gc>], room: usize) -> Result<usize, AllocError> {
        let start = self.length;
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
                self.put(Value::I64((start + i as u64) as i64), v);
            }
            return Ok(self.resize_account());
        }
        // Every index key is below `length`, which the dense part covers: none is overwritten.
        let need = self.dense.len() + values.len();
        reserve_vec(&mut self.dense, need, room)?;
        self.dense.extend_from_slice(values);
        self.length = need as u64;
        Ok(self.resize_account())
    }

    fn try_replace_elements(
        &mut self,
        values: &[Value<'gc>],
        room: usize,
    ) -> Result<usize, AllocError> {
        if values.len() <= self.dense.capacity() {
            self.dense.clear();
        } else {
            let mut v = Vec::new();
            reserve_vec(&mut v, values.len(), room)?;
            self.dense = v;
        }
        self.dense.extend_from_slice(values);
        if let Some(sparse) = self.sparse.as_mut() {
            sparse.retain(|k, _| !matches!(k.0, Value::I64(i) if i >= 0));
        }
        self.length = values.len() as u64;
        Ok(self.resize_account())
    }
}

/// The inline form holding exactly `values` (at most two).
fn inline_body<'gc>(values: &[Value<'gc>]) -> Option<Body<'gc>> {
    match *values {
        [] => Some(Body::Empty),
        [a] => Some(Body::One(a)),
        [a, b] => Some(Body::Two([a, b])),
        _ => None,
    }
}

impl Array<'_> {
    /// The bytes an array made by [`Array::try_alloc`] with `capacity` counts for: what
    /// making it must be admitted for, so that the memory limit holds as it is made.
    pub fn charge(capacity: usize) -> usize {
        if capacity <= 2 {
            ARRAY_BYTES
        } else {
            // `reserve_vec` grows an empty buffer to at least 4 elements.
            let elements = capacity
                .max(4)
                .saturating_mul(std::mem::size_of::<Value<'_>>());
            (ARRAY_BYTES + std::mem::size_of::<Spilled<'_>>()).saturating_add(elements)
        }
    }
}

impl<'gc> Array<'gc> {
    /// Allocates an empty array with room for `capacity` elements (capped by the caller);
    /// fails instead of aborting when the system has no memory for the buffer.
    pub fn try_alloc(
        mc: &Mutation<'gc>,
        meter: &Meter,
        id: u64,
        capacity: usize,
    ) -> Result<ArrayRef<'gc>, AllocError> {
        let body = if capacity <= 2 {
            Body::Empty
        } else {
            let mut dense = Vec::new();
            reserve_vec(&mut dense, capacity, usize::MAX)?;
            Body::Spilled(Spilled::new(meter, dense).0)
        };
        meter.add(ARRAY_BYTES);
        Ok(Gc::new(
            mc,
            RefLock::new(Array {
                id,
                body,
                charge: ArrayCharge(meter.clone()),
            }),
        ))
    }

    /// The elements at indices below the dense part's end (holes as Unit).
    #[inline(always)]
    fn dense(&self) -> &[Value<'gc>] {
        match &self.body {
            Body::Empty => &[],
            Body::One(v) => std::slice::from_ref(v),
            Body::Two(pair) => pair,
            Body::Spilled(s) => &s.dense,
        }
    }

    /// The length as StoffelVM reports it (a length ≥ 2^63 wraps negative, as the original).
    #[inline]
    pub fn length(&self) -> u64 {
        match &self.body {
            Body::Empty => 0,
            Body::One(_) => 1,
            Body::Two(_) => 2,
            Body::Spilled(s) => s.length,
        }
    }

    /// The value under `key`, or Unit (holes read as Unit).
    pub fn get(&self, key: Value<'gc>) -> Value<'gc> {
        self.find(key).unwrap_or(Value::Unit)
    }

    /// The value under `key` if it was written: an index inside the dense part (holes
    /// there included, as Unit) or a key in the side map. `None` for anything else.
    #[inline]
    pub fn find(&self, key: Value<'gc>) -> Option<Value<'gc>> {
        match &self.body {
            Body::Spilled(s) => s.find(key),
            _ => match key {
                Value::I64(i) if i >= 0 => self.dense().get(i as usize).copied(),
                _ => None,
            },
        }
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
        if let Body::Spilled(s) = &mut self.body {
            return s.try_set(key, value, room);
        }
        if let Value::I64(i) = key {
            match (&mut self.body, i) {
                (Body::Empty, 0) => self.body = Body::One(value),
                (Body::Empty, 1) => self.body = Body::Two([Value::Unit, value]),
                (Body::One(v), 0) => *v = value,
                (Body::One(v), 1) => self.body = Body::Two([*v, value]),
                (Body::Two(pair), 0 | 1) => pair[i as usize] = value,
                _ => return self.try_set_spilling(key, value, room),
            }
            return Ok(0);
        }
        self.try_set_spilling(key, value, room)
    }

    /// Appends `value` at index `length` when that needs no memory (the array keeps its
    /// size); returns the new length, or `None` when the general way must do it.
    #[inline(always)]
    pub fn push_in_place(&mut self, value: Value<'gc>) -> Option<u64> {
        match &mut self.body {
            Body::Empty => self.body = Body::One(value),
            Body::One(v) => self.body = Body::Two([*v, value]),
            Body::Spilled(s)
                if s.length == s.dense.len() as u64
                    && s.dense.len() < s.dense.capacity()
                    && s.sparse.as_ref().is_none_or(|m| m.is_empty()) =>
            {
                s.dense.push(value);
                s.length += 1;
            }
            _ => return None,
        }
        Some(self.length())
    }

    /// [`Array::try_set`] on an inline array that must spill first: an index past the
    /// inline elements, or a key that is not an index.
    #[inline(never)]
    fn try_set_spilling(
        &mut self,
        key: Value<'gc>,
        value: Value<'gc>,
        room: usize,
    ) -> Result<usize, AllocError> {
        let len = self.dense().len();
        let need = match key {
            Value::I64(i) if i >= 0 && (i as u64) < len as u64 * 2 + DENSE_SLACK => i as usize + 1,
            _ => len,
        };
        let (spilled, grown) = self.try_spill(need, room)?;
        Ok(grown + spilled.try_set(key, value, room.saturating_sub(grown))?)
    }

    /// Moves an inline array's elements to a part of its own with room for `need` elements
    /// (the part's box and buffer must fit in `room`); returns it and the bytes charged.
    fn try_spill(
        &mut self,
        need: usize,
        room: usize,
    ) -> Result<(&mut Spilled<'gc>, usize), AllocError> {
        let mut grown = 0;
        if !matches!(self.body, Body::Spilled(_)) {
            let boxed = std::mem::size_of::<Spilled<'_>>();
            if boxed > room {
                return Err(AllocError::Limit(boxed));
            }
            let current = self.dense();
            let mut dense = Vec::new();
            reserve_vec(&mut dense, need.max(current.len()), room - boxed)?;
            dense.extend_from_slice(current);
            let (spilled, charged) = Spilled::new(&self.charge.0, dense);
            self.body = Body::Spilled(spilled);
            grown = charged;
        }
        match &mut self.body {
            Body::Spilled(s) => Ok((s, grown)),
            // Not reached: the body was just spilled.
            _ => Err(AllocError::Limit(0)),
        }
    }

    /// The elements at indices `0..length` (holes read as Unit) appended to `out`. The
    /// caller has checked that `length` elements may be allocated (a sparse array can be
    /// very long).
    pub fn elements_into(&self, out: &mut Vec<Value<'gc>>) {
        let dense = self.dense();
        let length = self.length();
        out.extend_from_slice(&dense[..dense.len().min(length as usize)]);
        for i in dense.len() as u64..length {
            out.push(self.get(Value::I64(i as i64)));
        }
    }

    /// The keys that are not element indices (strings, negative or non-I64 integers, …) with
    /// their values, in insertion order.
    pub fn other_entries(&self) -> impl Iterator<Item = (Value<'gc>, Value<'gc>)> + '_ {
        let sparse = match &self.body {
            Body::Spilled(s) => s.sparse.as_deref(),
            _ => None,
        };
        sparse
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(k, _)| !matches!(k.0, Value::I64(i) if i >= 0))
            .map(|(k, v)| (k.0, *v))
    }

    /// Appends `values` at indices `length…` if the growth fits in `room` bytes and the
    /// system grants it (nothing changes otherwise); returns the bytes the array grew by.
    pub fn try_extend(&mut self, values: &[Value<'gc>], room: usize) -> Result<usize, AllocError> {
        let start = self.length();
        let Some(end) = start
            .checked_add(values.len() as u64)
            .filter(|&end| end <= i64::MAX as u64)
        else {
            return Err(AllocError::Limit(usize::MAX));
        };
        if !matches!(self.body, Body::Spilled(_)) && end <= 2 {
            let mut all = [Value::Unit; 2];
            let current = self.dense();
            all[..current.len()].copy_from_slice(current);
            all[current.len()..end as usize].copy_from_slice(values);
            if let Some(body) = inline_body(&all[..end as usize]) {
                self.body = body;
            }
            return Ok(0);
        }
        let (spilled, grown) = self.try_spill(end as usize, room)?;
        Ok(grown + spilled.try_extend(values, room.saturating_sub(grown))?)
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
        if !matches!(self.body, Body::Spilled(_))
            && let Some(body) = inline_body(values)
        {
            self.body = body;
            return Ok(0);
        }
        let (spilled, grown) = self.try_spill(values.len(), room)?;
        Ok(grown + spilled.try_replace_elements(values, room.saturating_sub(grown))?)
    }
}
