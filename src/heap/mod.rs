//! Heap values in the gc-arena arena: strings, objects, arrays, closures with their upvalue
//! cells, and foreign objects; the byte meter that makes memory visible ([`meter`]).
//!
//! Every heap value carries an [`Account`] of its estimated size (see [`meter`]). Operations
//! whose growth a program controls (string concatenation, writing an array index or an
//! object field, pushing) have fallible forms (`try_…`) that take the room the memory limit
//! still allows and reserve with `try_reserve`: a refusal is an [`AllocError`], never an
//! abort.

mod array;
mod meter;

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use arrayvec::ArrayString;
use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, GcWeak, Mutation};
use indexmap::IndexMap;

use crate::value::{Key, Value};

pub use array::{Array, ArrayRef};
use meter::GC_OVERHEAD;
pub use meter::{Account, AllocError, Meter, reserve_vec, reserve_vec_with};

/// An immutable string.
#[derive(Collect)]
#[collect(require_static)]
pub struct Str {
    text: Text,
    /// A keyed hash of the text ([`Str::text_hash`]), computed the first time the string is
    /// used as a key (0: not yet). Keys with different hashes differ, so most key
    /// comparisons skip comparing text.
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

    /// Allocates a copy of `text`, failing instead of aborting when the system has no
    /// memory for it.
    pub fn try_alloc_copy<'gc>(
        mc: &Mutation<'gc>,
        meter: &Meter,
        text: &str,
    ) -> Result<Gc<'gc, Str>, AllocError> {
        Self::try_concat(mc, meter, text, "")
    }

    /// Allocates `a` followed by `b`, failing instead of aborting when the system has no
    /// memory for it. (The caller checks the memory limit: the string's bytes, which
    /// [`Str::charge`] estimates.)
    #[inline(always)]
    pub fn try_concat<'gc>(
        mc: &Mutation<'gc>,
        meter: &Meter,
        a: &str,
        b: &str,
    ) -> Result<Gc<'gc, Str>, AllocError> {
        let mut short = ArrayString::new();
        if short.try_push_str(a).is_ok() && short.try_push_str(b).is_ok() {
            return Ok(Self::with_text(mc, meter, Text::Short(short)));
        }
        Self::try_long(mc, meter, a, b)
    }

    fn try_long<'gc>(
        mc: &Mutation<'gc>,
        meter: &Meter,
        a: &str,
        b: &str,
    ) -> Result<Gc<'gc, Str>, AllocError> {
        let len = a.len().saturating_add(b.len());
        let mut long = String::new();
        long.try_reserve_exact(len)
            .map_err(|_| AllocError::System(len))?;
        long.push_str(a);
        long.push_str(b);
        meter.pace(len);
        Ok(Self::with_text(
            mc,
            meter,
            Text::Long(long.into_boxed_str()),
        ))
    }

    /// Bytes a string of `len` bytes is charged: what the memory limit is asked for before
    /// one is made.
    pub fn charge(len: usize) -> usize {
        let buffer = if len <= SHORT_TEXT { 0 } else { len };
        (GC_OVERHEAD + std::mem::size_of::<Str>()).saturating_add(buffer)
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

    /// A hash of the text (never 0), computed once: SipHash-1-3 under this process's random
    /// key ([`text_key`]). Equal texts have equal hashes; a program cannot choose texts
    /// whose hashes collide, as it could with an unkeyed hash (object fields with one hash
    /// share one probe chain: issue 18, hash flooding).
    pub fn text_hash(&self) -> u64 {
        let cached = self.hash.get();
        if cached != 0 {
            return cached;
        }
        let h = text_key().hash_one(self.as_str()) | 1;
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

/// The key of every string's [`Str::text_hash`]: random, chosen once per process (strings
/// cache their hash, so it must not change while they live; one key for every VM of the
/// process lets nothing depend on which VM made a string). Nothing shows it to a program:
/// fields iterate in insertion order, not hash order.
fn text_key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

/// Estimated bytes an index map of `capacity` entries holds outside its `Gc` box.
fn map_bytes(capacity: usize) -> usize {
    capacity.saturating_mul(std::mem::size_of::<(Key<'_>, Value<'_>)>() + 16)
}

/// Makes room in `map` for `key` if it is new and the map is full: the map roughly doubles,
/// which must fit in `room` bytes and be granted by the system.
fn try_reserve_entry<'gc>(
    map: &mut IndexMap<Key<'gc>, Value<'gc>>,
    key: &Key<'gc>,
    room: usize,
) -> Result<(), AllocError> {
    let cap = map.capacity();
    if map.len() < cap || map.contains_key(key) {
        return Ok(());
    }
    let bytes = map_bytes(cap.saturating_mul(2).max(4)) - map_bytes(cap);
    if bytes > room {
        return Err(AllocError::Limit(bytes));
    }
    map.try_reserve(1).map_err(|_| AllocError::System(bytes))?;
    // What the map really grew by is what the meter will count: it must fit too (else the
    // limit would be passed after the fact, noticed only at the next step's end).
    let grown = map_bytes(map.capacity()).saturating_sub(map_bytes(cap));
    if grown > room {
        map.shrink_to(cap);
        return Err(AllocError::Limit(grown));
    }
    Ok(())
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
    #[inline(always)]
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

    /// Makes room for `key` if it is new and the current form is full (moving to the next
    /// form), so that [`Fields::insert`] then allocates nothing. Fails if the growth would
    /// pass `room` bytes or the system refuses it.
    fn try_reserve_for(&mut self, key: &Key<'gc>, room: usize) -> Result<(), AllocError> {
        const ENTRY: usize = std::mem::size_of::<(Key<'_>, Value<'_>)>();
        match self {
            Fields::Inline { len, entries } => {
                let entries = &entries[..*len as usize];
                if entries.len() < INLINE_FIELDS || find_key(entries, key).is_some() {
                    return Ok(());
                }
                let bytes = SMALL_FIELDS * ENTRY;
                if bytes > room {
                    return Err(AllocError::Limit(bytes));
                }
                let mut list = Vec::new();
                list.try_reserve_exact(SMALL_FIELDS)
                    .map_err(|_| AllocError::System(bytes))?;
                list.extend_from_slice(entries);
                *self = Fields::Small(list);
            }
            Fields::Small(list) => {
                if list.len() < SMALL_FIELDS || find_key(list, key).is_some() {
                    return Ok(());
                }
                let bytes = std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>()
                    + map_bytes(2 * SMALL_FIELDS);
                if bytes > room {
                    return Err(AllocError::Limit(bytes));
                }
                let mut map: IndexMap<Key<'gc>, Value<'gc>> = IndexMap::new();
                map.try_reserve(2 * SMALL_FIELDS)
                    .map_err(|_| AllocError::System(bytes))?;
                // The map may have taken more than asked: the object's size (what the meter
                // counts) follows its real capacity, so that is what must fit.
                let grown = (std::mem::size_of::<IndexMap<Key<'_>, Value<'_>>>()
                    + map_bytes(map.capacity()))
                .saturating_sub(list.capacity() * ENTRY);
                if grown > room {
                    return Err(AllocError::Limit(grown));
                }
                map.extend(list.drain(..));
                *self = Fields::Map(Box::new(map));
            }
            Fields::Map(map) => try_reserve_entry(map, key, room)?,
        }
        Ok(())
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        match self {
            Fields::Inline { len, .. } => *len as usize,
            Fields::Small(list) => list.len(),
            Fields::Map(map) => map.len(),
        }
    }

    /// The fields (key, value) in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = (Value<'gc>, Value<'gc>)> + '_ {
        let (list, map): (&[(Key<'gc>, Value<'gc>)], _) = match self {
            Fields::Inline { len, entries } => (&entries[..*len as usize], None),
            Fields::Small(list) => (list, None),
            Fields::Map(map) => (&[][..], Some(map)),
        };
        list.iter().map(|(k, v)| (k.0, *v)).chain(
            map.into_iter()
                .flat_map(|m| m.iter().map(|(k, v)| (k.0, *v))),
        )
    }

    /// The field after the one under `key` (the first for `None`), in insertion order:
    /// `Ok(None)` after the last, `Err(())` when `key` is not a field. Constant time for a
    /// large object, so walking all fields this way is linear.
    #[allow(clippy::result_unit_err)]
    pub fn next_after(
        &self,
        key: Option<&Key<'gc>>,
    ) -> Result<Option<(Value<'gc>, Value<'gc>)>, ()> {
        let at = |list: &[(Key<'gc>, Value<'gc>)]| -> Result<Option<(Value<'gc>, Value<'gc>)>, ()> {
            let next = match key {
                None => 0,
                Some(key) => find_key(list, key).ok_or(())? + 1,
            };
            Ok(list.get(next).map(|(k, v)| (k.0, *v)))
        };
        match self {
            Fields::Inline { len, entries } => at(&entries[..*len as usize]),
            Fields::Small(list) => at(list),
            Fields::Map(map) => {
                let next = match key {
                    None => 0,
                    Some(key) => map.get_index_of(key).ok_or(())? + 1,
                };
                Ok(map.get_index(next).map(|(k, v)| (k.0, *v)))
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

impl Object<'_> {
    /// The bytes a new object counts for: what making one must be admitted for.
    pub const CHARGE: usize = GC_OVERHEAD + std::mem::size_of::<RefLock<Object<'static>>>();
}

impl<'gc> Object<'gc> {
    /// Allocates an empty object.
    pub fn alloc(mc: &Mutation<'gc>, meter: &Meter, id: u64) -> ObjectRef<'gc> {
        let bytes = Object::CHARGE;
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
    #[inline(always)]
    pub fn get(&self, key: Value<'gc>) -> Value<'gc> {
        self.fields.get(&Key(key)).unwrap_or(Value::Unit)
    }

    /// Sets a field if its growth fits in `room` bytes and the system grants it; returns
    /// the bytes the object grew by.
    pub fn try_set(
        &mut self,
        key: Value<'gc>,
        value: Value<'gc>,
        room: usize,
    ) -> Result<usize, AllocError> {
        if self.set_in_place(key, value) {
            return Ok(0);
        }
        self.fields.try_reserve_for(&Key(key), room)?;
        Ok(self.set(key, value))
    }

    /// Sets a field when that needs no memory: the key exists, or the object keeps fewer
    /// than [`INLINE_FIELDS`] fields inside itself. Returns whether it did (the object's
    /// size is then unchanged: no growth to admit or account). One search, where
    /// [`Object::try_set`]'s general path searches twice.
    #[inline(always)]
    pub fn set_in_place(&mut self, key: Value<'gc>, value: Value<'gc>) -> bool {
        let key = Key(key);
        match &mut self.fields {
            Fields::Inline { len, entries } => {
                let n = *len as usize;
                if let Some(i) = find_key(&entries[..n], &key) {
                    entries[i].1 = value;
                    return true;
                }
                if n < INLINE_FIELDS {
                    entries[n] = (key, value);
                    *len += 1;
                    return true;
                }
                false
            }
            Fields::Small(list) => match find_key(list, &key) {
                Some(i) => {
                    list[i].1 = value;
                    true
                }
                None => false,
            },
            Fields::Map(map) => match map.get_mut(&key) {
                Some(slot) => {
                    *slot = value;
                    true
                }
                None => false,
            },
        }
    }

    /// Sets a field; returns the bytes the object grew by.
    pub fn set(&mut self, key: Value<'gc>, value: Value<'gc>) -> usize {
        self.fields.insert(Key(key), value);
        self.account
            .resize(GC_OVERHEAD + std::mem::size_of::<RefLock<Object<'_>>>() + self.fields.bytes())
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

/// An environment's cells, by name: up to two inside the environment itself (most closures
/// capture one or two variables, and this saves an allocation per closure), a short vector
/// searched from the back up to [`SMALL_CELLS`], and past that a map keyed by the name's text
/// (with the process's random key, so a program cannot make names collide), so a name lookup
/// costs the same however many cells a closure has. Capturing a name twice keeps the later
/// cell, as a search from the back would find it.
#[derive(Collect)]
#[collect(no_drop)]
pub enum Cells<'gc> {
    /// Filled from the front.
    Inline([Option<Upvalue<'gc>>; 2]),
    /// Three to [`SMALL_CELLS`].
    Small(Vec<Upvalue<'gc>>),
    /// More.
    Map(Box<IndexMap<Key<'gc>, Upvalue<'gc>>>),
}

/// The most cells kept in a list; more go into a map.
const SMALL_CELLS: usize = 8;

impl<'gc> Cells<'gc> {
    /// No cells, with room for `n` (inline when `n` ≤ 2); fails instead of aborting when
    /// the system has no memory.
    pub fn try_with_capacity(n: usize) -> Result<Cells<'gc>, AllocError> {
        let failed = || AllocError::System(n.saturating_mul(std::mem::size_of::<Upvalue<'_>>()));
        if n <= 2 {
            Ok(Cells::Inline([None, None]))
        } else if n <= SMALL_CELLS {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| failed())?;
            Ok(Cells::Small(v))
        } else {
            let mut map = IndexMap::new();
            map.try_reserve_exact(n).map_err(|_| failed())?;
            Ok(Cells::Map(Box::new(map)))
        }
    }

    /// Adds a cell; a cell of the same name is replaced (lookups found the newer one anyway).
    pub fn push(&mut self, upvalue: Upvalue<'gc>) {
        match self {
            Cells::Inline(items) => {
                if let Some(free) = items.iter_mut().find(|u| u.is_none()) {
                    *free = Some(upvalue);
                } else {
                    let mut all: Vec<Upvalue<'gc>> = items.iter().flatten().copied().collect();
                    all.push(upvalue);
                    *self = Cells::Small(all);
                }
            }
            Cells::Small(v) if v.len() < SMALL_CELLS => v.push(upvalue),
            Cells::Small(v) => {
                let mut map: IndexMap<Key<'gc>, Upvalue<'gc>> =
                    IndexMap::with_capacity(SMALL_CELLS * 2);
                for u in v.drain(..).chain(std::iter::once(upvalue)) {
                    map.insert(Key(Value::String(u.name)), u);
                }
                *self = Cells::Map(Box::new(map));
            }
            Cells::Map(map) => {
                map.insert(Key(Value::String(upvalue.name)), upvalue);
            }
        }
    }

    /// The cell called `name` (the most recently captured one of that name). Adds the cells
    /// it compared (1 for a map lookup) to `examined`, which callers charge to the
    /// instruction budget.
    #[inline(always)]
    pub fn find(&self, name: Gc<'gc, Str>, examined: &mut u64) -> Option<Upvalue<'gc>> {
        // The common case (one or two cells) inline in the fused upvalue ops.
        if let Cells::Inline(items) = self {
            let mut compared: u64 = 0;
            for u in items.iter().rev().flatten() {
                compared += 1;
                if Gc::ptr_eq(u.name, name) || u.name.same_text(&name) {
                    *examined = examined.saturating_add(compared);
                    return Some(*u);
                }
            }
            *examined = examined.saturating_add(compared);
            return None;
        }
        self.find_listed(name, examined)
    }

    /// [`Cells::find`] past the inline cells.
    #[inline(never)]
    fn find_listed(&self, name: Gc<'gc, Str>, examined: &mut u64) -> Option<Upvalue<'gc>> {
        let same = |u: &Upvalue<'gc>| Gc::ptr_eq(u.name, name) || u.name.same_text(&name);
        let mut compared: u64 = 0;
        let found = match self {
            Cells::Inline(items) => items.iter().rev().flatten().find(|u| {
                compared += 1;
                same(u)
            }),
            Cells::Small(v) => v.iter().rev().find(|u| {
                compared += 1;
                same(u)
            }),
            Cells::Map(map) => {
                compared = 1;
                map.get(&Key(Value::String(name)))
            }
        };
        *examined = examined.saturating_add(compared);
        found.copied()
    }

    fn len(&self) -> usize {
        match self {
            Cells::Inline(items) => items.iter().flatten().count(),
            Cells::Small(v) => v.len(),
            Cells::Map(map) => map.len(),
        }
    }

    fn buffer_bytes(&self) -> usize {
        match self {
            Cells::Inline(_) => 0,
            Cells::Small(v) => v.capacity() * std::mem::size_of::<Upvalue<'_>>(),
            Cells::Map(map) => {
                std::mem::size_of::<IndexMap<Key<'_>, Upvalue<'_>>>()
                    + map
                        .capacity()
                        .saturating_mul(std::mem::size_of::<(Key<'_>, Upvalue<'_>)>() + 16)
            }
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
