//! Heap values in the gc-arena arena: strings, objects, arrays, closures with their upvalue
//! cells, and foreign objects, plus the byte meter that makes memory visible.
//!
//! gc-arena paces collection by the *number* of `Gc` allocations, and cannot see memory held
//! inside a `Gc` (a string's bytes, an array's element buffer). Every heap value therefore
//! carries an [`Account`]: it adds its estimated size to the VM's [`Meter`] when created or
//! grown, and subtracts it when the collector drops the value. The memory limit and the GC
//! statistics read the meter; collection pacing does not (it counts `Gc` allocations).

use std::cell::Cell;
use std::rc::Rc;

use arrayvec::ArrayString;
use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, GcWeak, Mutation, static_collect};
use indexmap::IndexMap;

use crate::value::{Key, Value};

/// Fixed per-allocation overhead we charge for a `Gc` box (header plus allocator slack).
const GC_OVERHEAD: usize = 32;

/// Estimated bytes of live heap values, shared by a VM and every value's [`Account`].
#[derive(Clone, Default, Debug)]
pub struct Meter(Rc<Cell<usize>>);

impl Meter {
    /// Bytes currently accounted to live heap values.
    pub fn bytes(&self) -> usize {
        self.0.get()
    }

    fn add(&self, n: usize) {
        self.0.set(self.0.get().saturating_add(n));
    }

    fn sub(&self, n: usize) {
        self.0.set(self.0.get().saturating_sub(n));
    }
}

/// One heap value's share of the [`Meter`]; returns it when dropped.
pub struct Account {
    bytes: Cell<usize>,
    meter: Meter,
}

static_collect!(Account);

impl Account {
    /// Charges `bytes` to `meter`.
    pub fn new(meter: &Meter, bytes: usize) -> Account {
        meter.add(bytes);
        Account {
            bytes: Cell::new(bytes),
            meter: meter.clone(),
        }
    }

    /// Re-states this value's size after it grew or shrank; returns the growth in bytes.
    pub fn resize(&self, bytes: usize) -> usize {
        let old = self.bytes.replace(bytes);
        if bytes >= old {
            self.meter.add(bytes - old);
            bytes - old
        } else {
            self.meter.sub(old - bytes);
            0
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.meter.sub(self.bytes.get());
    }
}

/// An immutable string.
#[derive(Collect)]
#[collect(require_static)]
pub struct Str {
    text: Text,
    /// A hash of the text, computed the first time the string is used as a key (0: not yet).
    /// Keys with different hashes differ, so most key comparisons skip comparing text.
    hash: Cell<u64>,
    _account: Account,
}

/// The longest text kept inside the string itself.
const SHORT_TEXT: usize = 48;

/// A string's text: short texts (names, keys, most strings a program builds) inside the
/// string, so such a string is one allocation; longer ones in a buffer of their own.
enum Text {
    Short(ArrayString<SHORT_TEXT>),
    Long(Box<str>),
}

impl Str {
    /// Allocates a string holding a copy of `text`.
    pub fn alloc_copy<'gc>(mc: &Mutation<'gc>, meter: &Meter, text: &str) -> Gc<'gc, Str> {
        match ArrayString::from(text) {
            Ok(short) => Self::with_text(mc, meter, Text::Short(short)),
            Err(_) => Self::with_text(mc, meter, Text::Long(Box::from(text))),
        }
    }

    /// Allocates `a` followed by `b`.
    pub fn concat<'gc>(mc: &Mutation<'gc>, meter: &Meter, a: &str, b: &str) -> Gc<'gc, Str> {
        let mut short = ArrayString::new();
        if short.try_push_str(a).is_ok() && short.try_push_str(b).is_ok() {
            return Self::with_text(mc, meter, Text::Short(short));
        }
        let mut long = String::with_capacity(a.len().saturating_add(b.len()));
        long.push_str(a);
        long.push_str(b);
        Self::with_text(mc, meter, Text::Long(long.into_boxed_str()))
    }

    fn with_text<'gc>(mc: &Mutation<'gc>, meter: &Meter, text: Text) -> Gc<'gc, Str> {
        let buffer = match &text {
            Text::Short(_) => 0,
            Text::Long(t) => t.len(),
        };
        let bytes = GC_OVERHEAD + std::mem::size_of::<Str>() + buffer;
        Gc::new(
            mc,
            Str {
                text,
                hash: Cell::new(0),
                _account: Account::new(meter, bytes),
            },
        )
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.text {
            Text::Short(t) => t.as_str(),
            Text::Long(t) => t,
        }
    }

    /// A hash of the text (64-bit FNV-1a, never 0), computed once. Equal texts have equal
    /// hashes.
    pub fn text_hash(&self) -> u64 {
        let cached = self.hash.get();
        if cached != 0 {
            return cached;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in self.as_str().as_bytes() {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let h = h | 1;
        self.hash.set(h);
        h
    }

    /// Whether two strings have the same text: same string, or same hash and same bytes.
    #[inline]
    pub fn same_text(&self, other: &Str) -> bool {
        std::ptr::eq(self, other)
            || (self.as_str().len() == other.as_str().len()
                && self.text_hash() == other.text_hash()
                && self.as_str() == other.as_str())
    }
}

/// Estimated bytes an index map of `capacity` entries holds outside its `Gc` box.
fn map_bytes(capacity: usize) -> usize {
    capacity * (std::mem::size_of::<(Key<'_>, Value<'_>)>() + 16)
}

/// An object's fields, in insertion order: a short list searched from the front while small
/// (most objects have a handful of fields, and comparing a few keys, strings by pointer
/// first, is cheaper than hashing one), an index map once it grows past 8 fields. Up to 4
/// fields live inside the object itself.
#[derive(Collect)]
#[collect(no_drop)]
pub enum Fields<'gc> {
    /// Up to 4 entries inside the object itself (one allocation for a small object): the
    /// first `len` are the fields, the rest Unit.
    Inline {
        /// How many entries are fields.
        len: u8,
        /// The entries.
        entries: [(Key<'gc>, Value<'gc>); INLINE_FIELDS],
    },
    /// 5 to 8 entries.
    Small(Vec<(Key<'gc>, Value<'gc>)>),
    /// More.
    Map(Box<IndexMap<Key<'gc>, Value<'gc>>>),
}

/// Where `key` is in a field list. A field name is usually the very string constant every
/// access uses, so identical strings are looked for first, by pointer; then keys are
/// compared by value (equal text in another string, numbers, ...).
#[inline(always)]
fn find_key<'gc>(list: &[(Key<'gc>, Value<'gc>)], key: &Key<'gc>) -> Option<usize> {
    if let Value::String(name) = key.0
        && let Some(i) = list
            .iter()
            .position(|(k, _)| matches!(k.0, Value::String(s) if Gc::ptr_eq(s, name)))
    {
        return Some(i);
    }
    list.iter().position(|(k, _)| k == key)
}

/// The most fields kept inside an object.
const INLINE_FIELDS: usize = 4;

/// The most fields kept in a list before an object switches to a hash map.
const SMALL_FIELDS: usize = 8;

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields::Inline {
            len: 0,
            entries: [(Key(Value::Unit), Value::Unit); INLINE_FIELDS],
        }
    }
}

impl<'gc> Fields<'gc> {
    /// The value under `key`.
    pub fn get(&self, key: &Key<'gc>) -> Option<Value<'gc>> {
        let found = |list: &[(Key<'gc>, Value<'gc>)]| find_key(list, key).map(|i| list[i].1);
        match self {
            Fields::Inline { len, entries } => found(&entries[..*len as usize]),
            Fields::Small(list) => found(list),
            Fields::Map(map) => map.get(key).copied(),
        }
    }

    /// Sets `key`, keeping its position when it exists.
    pub fn insert(&mut self, key: Key<'gc>, value: Value<'gc>) {
        let entries: &mut [(Key<'gc>, Value<'gc>)] = match self {
            Fields::Inline { len, entries } => &mut entries[..*len as usize],
            Fields::Small(list) => list,
            Fields::Map(map) => {
                map.insert(key, value);
                return;
            }
        };
        if let Some(i) = find_key(entries, &key) {
            entries[i].1 = value;
            return;
        }
        // A new key: append, moving to the next form when this one is full.
        match self {
            Fields::Inline { len, entries } if (*len as usize) < INLINE_FIELDS => {
                entries[*len as usize] = (key, value);
                *len += 1;
            }
            Fields::Inline { entries, .. } => {
                let mut list = Vec::with_capacity(SMALL_FIELDS);
                list.extend_from_slice(entries);
                list.push((key, value));
                *self = Fields::Small(list);
            }
            Fields::Small(list) if list.len() < SMALL_FIELDS => list.push((key, value)),
            Fields::Small(list) => {
                let mut map: IndexMap<Key<'gc>, Value<'gc>> =
                    IndexMap::with_capacity(SMALL_FIELDS * 2);
                map.extend(list.drain(..));
                map.insert(key, value);
                *self = Fields::Map(Box::new(map));
            }
            Fields::Map(map) => {
                map.insert(key, value);
            }
        }
    }

    /// Bytes held outside the object itself.
    fn bytes(&self) -> usize {
        match self {
            Fields::Inline { .. } => 0,
            Fields::Small(list) => list.capacity() * std::mem::size_of::<(Key<'_>, Value<'_>)>(),
            Fields::Map(map) => {
                std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>() + map_bytes(map.capacity())
            }
        }
    }
}

/// An object: fields keyed by value.
#[derive(Collect)]
#[collect(no_drop)]
pub struct Object<'gc> {
    /// The id `print` shows (`Object(3)`); objects and arrays share one counter per VM.
    pub id: u64,
    /// The fields.
    pub fields: Fields<'gc>,
    account: Account,
}

/// A pointer to an object.
pub type ObjectRef<'gc> = Gc<'gc, RefLock<Object<'gc>>>;

impl<'gc> Object<'gc> {
    /// Allocates an empty object.
    pub fn alloc(mc: &Mutation<'gc>, meter: &Meter, id: u64) -> ObjectRef<'gc> {
        let bytes = GC_OVERHEAD + std::mem::size_of::<RefLock<Object<'_>>>();
        Gc::new(
            mc,
            RefLock::new(Object {
                id,
                fields: Fields::default(),
                account: Account::new(meter, bytes),
            }),
        )
    }

    /// The value under `key`, or Unit.
    pub fn get(&self, key: Value<'gc>) -> Value<'gc> {
        self.fields.get(&Key(key)).unwrap_or(Value::Unit)
    }

    /// Sets a field; returns the bytes the object grew by.
    pub fn set(&mut self, key: Value<'gc>, value: Value<'gc>) -> usize {
        self.fields.insert(Key(key), value);
        self.account
            .resize(GC_OVERHEAD + std::mem::size_of::<RefLock<Object<'_>>>() + self.fields.bytes())
    }
}

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
    fn with_capacity(capacity: usize) -> Dense<'gc> {
        if capacity <= INLINE_ELEMENTS {
            Dense::Inline {
                len: 0,
                items: [Value::Unit; INLINE_ELEMENTS],
            }
        } else {
            Dense::Heap(Vec::with_capacity(capacity))
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
    /// One more than the largest non-negative I64 index ever written; never shrinks.
    length: u64,
    account: Account,
}

/// A pointer to an array.
pub type ArrayRef<'gc> = Gc<'gc, RefLock<Array<'gc>>>;

impl<'gc> Array<'gc> {
    /// Allocates an empty array with room for `capacity` elements (capped by the caller).
    pub fn alloc(mc: &Mutation<'gc>, meter: &Meter, id: u64, capacity: usize) -> ArrayRef<'gc> {
        let dense = Dense::with_capacity(capacity);
        let bytes = GC_OVERHEAD + std::mem::size_of::<RefLock<Array<'_>>>() + dense.buffer_bytes();
        Gc::new(
            mc,
            RefLock::new(Array {
                id,
                dense,
                sparse: None,
                length: 0,
                account: Account::new(meter, bytes),
            }),
        )
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

    /// Bytes that writing `key` could add, for limit checks before the write.
    pub fn growth_for(&self, key: Value<'gc>) -> usize {
        match key {
            Value::I64(i) if i >= 0 && self.is_dense_index(i as u64) => {
                ((i as u64 + 1).saturating_sub(self.dense.len() as u64) as usize)
                    .saturating_mul(std::mem::size_of::<Value<'_>>())
            }
            _ => std::mem::size_of::<(Key<'_>, Value<'_>)>() + 16,
        }
    }

    fn is_dense_index(&self, i: u64) -> bool {
        i < (self.dense.len() as u64)
            .saturating_mul(2)
            .saturating_add(DENSE_SLACK)
    }

    fn sparse_map(&mut self) -> &mut IndexMap<Key<'gc>, Value<'gc>> {
        self.sparse.get_or_insert_with(Box::default)
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
        self.account.resize(
            GC_OVERHEAD
                + std::mem::size_of::<RefLock<Array<'_>>>()
                + self.dense.buffer_bytes()
                + self.sparse.as_ref().map_or(0, |m| {
                    std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>() + map_bytes(m.capacity())
                }),
        )
    }
}

/// A captured variable: its name and the shared cell holding its value.
#[derive(Clone, Copy, Collect)]
#[collect(no_drop)]
pub struct Upvalue<'gc> {
    /// The variable's name.
    pub name: Gc<'gc, Str>,
    /// The cell; `set_upvalue` writes it, every closure sharing it sees the change.
    pub cell: Gc<'gc, RefLock<Value<'gc>>>,
}

/// An environment's cells, in capture order: up to two inside the environment itself (most
/// closures capture one or two variables, and this saves an allocation per closure), a vector
/// past that.
#[derive(Collect)]
#[collect(no_drop)]
pub enum Cells<'gc> {
    /// Filled from the front.
    Inline([Option<Upvalue<'gc>>; 2]),
    /// More than two.
    Heap(Vec<Upvalue<'gc>>),
}

impl<'gc> Cells<'gc> {
    /// No cells, with room for `n` (inline when `n` ≤ 2).
    pub fn with_capacity(n: usize) -> Cells<'gc> {
        if n <= 2 {
            Cells::Inline([None, None])
        } else {
            Cells::Heap(Vec::with_capacity(n))
        }
    }

    /// Appends a cell.
    pub fn push(&mut self, upvalue: Upvalue<'gc>) {
        match self {
            Cells::Inline(items) => {
                if let Some(free) = items.iter_mut().find(|u| u.is_none()) {
                    *free = Some(upvalue);
                } else {
                    let mut all: Vec<Upvalue<'gc>> = items.iter().flatten().copied().collect();
                    all.push(upvalue);
                    *self = Cells::Heap(all);
                }
            }
            Cells::Heap(v) => v.push(upvalue),
        }
    }

    /// The last cell (the most recently captured) that `matches`.
    pub fn find_last(
        &self,
        mut matches: impl FnMut(&Upvalue<'gc>) -> bool,
    ) -> Option<&Upvalue<'gc>> {
        match self {
            Cells::Inline(items) => items.iter().rev().flatten().find(|u| matches(u)),
            Cells::Heap(v) => v.iter().rev().find(|u| matches(u)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Cells::Inline(items) => items.iter().flatten().count(),
            Cells::Heap(v) => v.len(),
        }
    }

    fn buffer_bytes(&self) -> usize {
        match self {
            Cells::Inline(_) => 0,
            Cells::Heap(v) => v.capacity() * std::mem::size_of::<Upvalue<'_>>(),
        }
    }
}

/// The cells of a frame entered by a plain `CALL` of a function that declares upvalues.
#[derive(Collect)]
#[collect(no_drop)]
pub struct EnvData<'gc> {
    /// The cells, searched last entry first.
    pub cells: Cells<'gc>,
    account: Account,
}

/// The cells a frame can reach with `get_upvalue` / `set_upvalue`: a closure's own (a frame
/// running a closure points at the closure, so a closure is one allocation, not two), or
/// those captured for a plain call.
#[derive(Clone, Copy, Collect)]
#[collect(no_drop)]
pub enum Env<'gc> {
    /// The closure the frame runs.
    Closure(ClosureRef<'gc>),
    /// Captured at a `CALL`.
    Captured(Gc<'gc, EnvData<'gc>>),
}

impl<'gc> Env<'gc> {
    /// The cells.
    pub fn cells(self) -> &'gc Cells<'gc> {
        match self {
            Env::Closure(c) => &Gc::as_ref(c).cells,
            Env::Captured(e) => &Gc::as_ref(e).cells,
        }
    }
}

/// A closure: the name of the function to run and the cells it captured.
#[derive(Collect)]
#[collect(no_drop)]
pub struct Closure<'gc> {
    /// The function name (late-bound when called, as every call in StoffelVM): the string
    /// `create_closure` was given, shared, not copied.
    pub function_name: Gc<'gc, Str>,
    /// The global name slot of the function, resolved when the closure was made.
    pub slot: u32,
    /// Captured cells, searched last entry first.
    pub cells: Cells<'gc>,
    #[collect(require_static)]
    _account: Account,
}

/// A pointer to a closure.
pub type ClosureRef<'gc> = Gc<'gc, Closure<'gc>>;

/// Bytes the cells' own boxes take (the cells are `Gc` boxes of their own, possibly shared;
/// the closure or environment that captured them pays for them).
fn cell_bytes(cells: &Cells<'_>) -> usize {
    cells.buffer_bytes() + cells.len() * (GC_OVERHEAD + std::mem::size_of::<RefLock<Value<'_>>>())
}

impl<'gc> Closure<'gc> {
    /// Allocates a closure.
    pub fn alloc(
        mc: &Mutation<'gc>,
        meter: &Meter,
        function_name: Gc<'gc, Str>,
        slot: u32,
        cells: Cells<'gc>,
    ) -> ClosureRef<'gc> {
        let bytes = GC_OVERHEAD + std::mem::size_of::<Closure<'_>>() + cell_bytes(&cells);
        Gc::new(
            mc,
            Closure {
                function_name,
                slot,
                cells,
                _account: Account::new(meter, bytes),
            },
        )
    }
}

/// Allocates the environment of a plain call.
pub fn alloc_env<'gc>(mc: &Mutation<'gc>, meter: &Meter, cells: Cells<'gc>) -> Env<'gc> {
    let bytes = GC_OVERHEAD + std::mem::size_of::<EnvData<'_>>() + cell_bytes(&cells);
    Env::Captured(Gc::new(
        mc,
        EnvData {
            cells,
            account: Account::new(meter, bytes),
        },
    ))
}

/// A host object. The arena holds only its id; the host's data and finalizer live in the
/// VM's foreign table, so a finalizer never runs while the arena is borrowed.
#[derive(Collect)]
#[collect(require_static)]
pub struct Foreign {
    /// The id `print` shows (`Foreign(1)`); its own counter per VM.
    pub id: u64,
    _account: Account,
}

/// A pointer to a foreign object.
pub type ForeignRef<'gc> = Gc<'gc, Foreign>;

impl Foreign {
    /// Allocates a foreign object with this id.
    pub fn alloc<'gc>(mc: &Mutation<'gc>, meter: &Meter, id: u64) -> ForeignRef<'gc> {
        let bytes = GC_OVERHEAD + std::mem::size_of::<Foreign>();
        Gc::new(
            mc,
            Foreign {
                id,
                _account: Account::new(meter, bytes),
            },
        )
    }
}

/// Weak references to every foreign object, so the collector's finalization pass can tell
/// which ones died.
pub type ForeignList<'gc> = Gc<'gc, RefLock<Vec<(GcWeak<'gc, Foreign>, u64)>>>;
