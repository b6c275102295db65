//! Conversions between Rust values and [`Val`].
//!
//! Two layers, as mlua and rhai have them:
//! - numbers, booleans, strings, `()` and `Option` convert on their own: `From<T> for Val`,
//!   `TryFrom<Val>` / `TryFrom<&Val>` (whose [`ConvertError`] names the kind wanted and the
//!   kind found) and the `Val::as_*` accessors;
//! - arrays and objects need the VM that holds them: [`IntoVal`] builds them from `Vec`,
//!   slices, tuples and string-keyed maps, [`FromVal`] reads them back.
//!
//! Ownership follows the names: `into_val` consumes what it is given (a [`Val`] with a handle
//! moved into an array is released once the array holds it), `from_val` reads a borrowed
//! value and returns things the caller owns (a `Val` read out of an array is a new
//! reference).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use super::{Val, Vm};
use crate::error::{ConvertError, VmError};

fn wrong_kind(expected: &'static str, got: &Val) -> ConvertError {
    ConvertError::WrongKind {
        expected,
        got: got.kind().type_name(),
    }
}

macro_rules! from_scalar {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Val {
            fn from(v: $t) -> Val {
                Val::$variant(v)
            }
        }
    )*};
}

from_scalar!(
    i64 => I64, i32 => I32, i16 => I16, i8 => I8,
    u64 => U64, u32 => U32, u16 => U16, u8 => U8,
    f64 => Float, bool => Bool, String => String,
);

impl From<f32> for Val {
    fn from(v: f32) -> Val {
        Val::Float(f64::from(v))
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::String(v.to_owned())
    }
}

impl From<()> for Val {
    fn from(_: ()) -> Val {
        Val::Unit
    }
}

/// `None` is Unit.
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Unit, Into::into)
    }
}

impl Val {
    /// The integer of any width, as `i128` (which holds every one).
    fn integer(&self) -> Option<i128> {
        Some(match *self {
            Val::I64(x) => x.into(),
            Val::I32(x) => x.into(),
            Val::I16(x) => x.into(),
            Val::I8(x) => x.into(),
            Val::U64(x) => x.into(),
            Val::U32(x) => x.into(),
            Val::U16(x) => x.into(),
            Val::U8(x) => x.into(),
            _ => return None,
        })
    }

    /// An integer of any width that fits in `T`.
    fn integer_as<T: TryFrom<i128>>(&self, expected: &'static str) -> Result<T, ConvertError> {
        let n = self.integer().ok_or_else(|| wrong_kind(expected, self))?;
        T::try_from(n).map_err(|_| ConvertError::OutOfRange {
            expected,
            got: self.kind().type_name(),
            value: n.to_string(),
        })
    }

    /// The integer, of any width, if it fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.integer_as("i64").ok()
    }

    /// The integer, of any width, if it fits in a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.integer_as("u64").ok()
    }

    /// The float (integers are not converted: `as_i64` reads those).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::Float(x) => Some(x),
            _ => None,
        }
    }

    /// The boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The string's text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is `()`.
    pub fn is_unit(&self) -> bool {
        matches!(self, Val::Unit)
    }
}

macro_rules! try_from_integer {
    ($($t:ty),*) => {$(
        /// Any integer kind whose value fits.
        impl TryFrom<&Val> for $t {
            type Error = ConvertError;
            fn try_from(v: &Val) -> Result<$t, ConvertError> {
                v.integer_as(stringify!($t))
            }
        }
        impl TryFrom<Val> for $t {
            type Error = ConvertError;
            fn try_from(v: Val) -> Result<$t, ConvertError> {
                <$t>::try_from(&v)
            }
        }
    )*};
}

try_from_integer!(i64, i32, i16, i8, u64, u32, u16, u8);

macro_rules! try_from_other {
    ($($t:ty, $expected:literal, |$v:ident| $body:expr);* $(;)?) => {$(
        impl TryFrom<&Val> for $t {
            type Error = ConvertError;
            fn try_from($v: &Val) -> Result<$t, ConvertError> {
                $body.ok_or_else(|| wrong_kind($expected, $v))
            }
        }
    )*};
}

try_from_other!(
    f64, "float", |v| v.as_f64();
    // Rounds to the nearest f32, as `as` does.
    f32, "float", |v| v.as_f64().map(|x| x as f32);
    bool, "boolean", |v| v.as_bool();
    String, "string", |v| v.as_str().map(str::to_owned);
    (), "nil", |v| v.is_unit().then_some(());
);

impl TryFrom<Val> for f64 {
    type Error = ConvertError;
    fn try_from(v: Val) -> Result<f64, ConvertError> {
        f64::try_from(&v)
    }
}

impl TryFrom<Val> for f32 {
    type Error = ConvertError;
    fn try_from(v: Val) -> Result<f32, ConvertError> {
        f32::try_from(&v)
    }
}

impl TryFrom<Val> for bool {
    type Error = ConvertError;
    fn try_from(v: Val) -> Result<bool, ConvertError> {
        bool::try_from(&v)
    }
}

impl TryFrom<Val> for () {
    type Error = ConvertError;
    fn try_from(v: Val) -> Result<(), ConvertError> {
        <()>::try_from(&v)
    }
}

/// Takes the string without copying it.
impl TryFrom<Val> for String {
    type Error = ConvertError;
    fn try_from(v: Val) -> Result<String, ConvertError> {
        match v {
            Val::String(s) => Ok(s),
            other => Err(wrong_kind("string", &other)),
        }
    }
}

/// Unit is `None`; anything else converts as `T`.
impl<'a, T: TryFrom<&'a Val, Error = ConvertError>> TryFrom<&'a Val> for Option<T> {
    type Error = ConvertError;
    fn try_from(v: &'a Val) -> Result<Option<T>, ConvertError> {
        match v {
            Val::Unit => Ok(None),
            other => T::try_from(other).map(Some),
        }
    }
}

/// A Rust value the VM can hold: scalars as themselves, sequences as a new array, string-keyed
/// maps as a new object. The result is the caller's (release it, or hand it to the VM).
pub trait IntoVal {
    /// Converts, allocating in `vm` where needed.
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError>;
}

/// A Rust value read from a VM value: scalars by kind (integers of any width that fit),
/// arrays into sequences, objects into string-keyed maps.
pub trait FromVal: Sized {
    /// Converts `value`, which stays the caller's.
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Self, VmError>;
}

macro_rules! scalar_conversions {
    ($($t:ty),*) => {$(
        impl IntoVal for $t {
            fn into_val(self, _vm: &mut Vm) -> Result<Val, VmError> {
                Ok(Val::from(self))
            }
        }
        impl FromVal for $t {
            fn from_val(value: &Val, _vm: &mut Vm) -> Result<$t, VmError> {
                Ok(<$t>::try_from(value)?)
            }
        }
    )*};
}

scalar_conversions!(
    i64,
    i32,
    i16,
    i8,
    u64,
    u32,
    u16,
    u8,
    f64,
    f32,
    bool,
    String,
    ()
);

impl IntoVal for &str {
    fn into_val(self, _vm: &mut Vm) -> Result<Val, VmError> {
        Ok(Val::from(self))
    }
}

/// Passes the value (and its handle's reference) through.
impl IntoVal for Val {
    fn into_val(self, _vm: &mut Vm) -> Result<Val, VmError> {
        Ok(self)
    }
}

/// A new reference to the same value: a heap value's handle is retained, so the result needs
/// its own [`Vm::release`].
impl FromVal for Val {
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Val, VmError> {
        vm.retain(value)?;
        Ok(value.clone())
    }
}

impl<T: IntoVal> IntoVal for Option<T> {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        self.map_or(Ok(Val::Unit), |v| v.into_val(vm))
    }
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Option<T>, VmError> {
        match value {
            Val::Unit => Ok(None),
            other => T::from_val(other, vm).map(Some),
        }
    }
}

/// Converts `item` and stores it with `store`, releasing the converted value's reference
/// once the container holds it (also when storing failed).
fn store_into<T: IntoVal>(
    vm: &mut Vm,
    item: T,
    store: impl FnOnce(&mut Vm, &Val) -> Result<(), VmError>,
) -> Result<(), VmError> {
    let v = item.into_val(vm)?;
    let stored = store(vm, &v);
    let released = vm.release(&v);
    stored.and(released)
}

/// A new array from `items`; the array is released if an element fails to convert.
fn array_from<T: IntoVal>(vm: &mut Vm, items: impl IntoIterator<Item = T>) -> Result<Val, VmError> {
    let array = vm.create_array()?;
    for item in items {
        if let Err(e) = store_into(vm, item, |vm, v| vm.array_push(&array, v).map(|_| ())) {
            let _ = vm.release(&array);
            return Err(e);
        }
    }
    Ok(array)
}

/// The elements of an array, each a value the caller owns.
fn array_elements(value: &Val, vm: &mut Vm) -> Result<Vec<Val>, VmError> {
    if !matches!(value, Val::Array(_)) {
        return Err(wrong_kind("array", value).into());
    }
    let len = vm.array_length(value)?;
    let mut out = Vec::new();
    for i in 0..len {
        match vm.get_field(value, &Val::I64(i)) {
            Ok(v) => out.push(v),
            Err(e) => {
                release_each(vm, &out);
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn release_each(vm: &mut Vm, vals: &[Val]) {
    for v in vals {
        // Values this module made: each holds one reference of its own.
        let _ = vm.release(v);
    }
}

/// Converts each element, releasing the element values (converted ones hold their own).
fn convert_each<T: FromVal>(vm: &mut Vm, elements: Vec<Val>) -> Result<Vec<T>, VmError> {
    let converted: Result<Vec<T>, VmError> = elements.iter().map(|e| T::from_val(e, vm)).collect();
    release_each(vm, &elements);
    converted
}

/// A new array.
impl<T: IntoVal> IntoVal for Vec<T> {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        array_from(vm, self)
    }
}

/// A new array of copies.
impl<T: IntoVal + Clone> IntoVal for &[T] {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        array_from(vm, self.iter().cloned())
    }
}

impl<T: FromVal> FromVal for Vec<T> {
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Vec<T>, VmError> {
        let elements = array_elements(value, vm)?;
        convert_each(vm, elements)
    }
}

/// A new object with one field per entry, in the map's iteration order.
fn object_from<V: IntoVal>(
    vm: &mut Vm,
    entries: impl IntoIterator<Item = (String, V)>,
) -> Result<Val, VmError> {
    let object = vm.create_object()?;
    for (key, item) in entries {
        let key = Val::String(key);
        if let Err(e) = store_into(vm, item, |vm, v| vm.set_field(&object, &key, v)) {
            let _ = vm.release(&object);
            return Err(e);
        }
    }
    Ok(object)
}

/// The fields of an object whose keys are all strings, each value owned by the caller.
fn string_fields(value: &Val, vm: &mut Vm) -> Result<Vec<(String, Val)>, VmError> {
    let entries = vm.fields(value)?;
    let mut out = Vec::with_capacity(entries.len());
    let mut failure = None;
    for (key, v) in entries {
        match (key, &failure) {
            (Val::String(k), None) => out.push((k, v)),
            (key, _) => {
                failure.get_or_insert_with(|| wrong_kind("an object with string keys", &key));
                release_each(vm, &[key, v]);
            }
        }
    }
    match failure {
        None => Ok(out),
        Some(e) => {
            for (_, v) in &out {
                let _ = vm.release(v);
            }
            Err(e.into())
        }
    }
}

fn map_from_object<T: FromVal, M: FromIterator<(String, T)>>(
    value: &Val,
    vm: &mut Vm,
) -> Result<M, VmError> {
    let fields = string_fields(value, vm)?;
    let (keys, values): (Vec<String>, Vec<Val>) = fields.into_iter().unzip();
    let converted = convert_each(vm, values)?;
    Ok(keys.into_iter().zip(converted).collect())
}

impl<V: IntoVal, S: BuildHasher> IntoVal for HashMap<String, V, S> {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        object_from(vm, self)
    }
}

impl<V: IntoVal> IntoVal for BTreeMap<String, V> {
    fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
        object_from(vm, self)
    }
}

impl<T: FromVal, S: BuildHasher + Default> FromVal for HashMap<String, T, S> {
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Self, VmError> {
        map_from_object(value, vm)
    }
}

impl<T: FromVal> FromVal for BTreeMap<String, T> {
    fn from_val(value: &Val, vm: &mut Vm) -> Result<Self, VmError> {
        map_from_object(value, vm)
    }
}

macro_rules! tuple_conversions {
    ($len:literal: $($t:ident $i:tt),+) => {
        /// A new array of the elements.
        impl<$($t: IntoVal),+> IntoVal for ($($t,)+) {
            fn into_val(self, vm: &mut Vm) -> Result<Val, VmError> {
                let array = vm.create_array()?;
                $(
                    if let Err(e) = store_into(vm, self.$i, |vm, v| {
                        vm.array_push(&array, v).map(|_| ())
                    }) {
                        let _ = vm.release(&array);
                        return Err(e);
                    }
                )+
                Ok(array)
            }
        }

        /// An array of exactly the tuple's length.
        impl<$($t: FromVal),+> FromVal for ($($t,)+) {
            fn from_val(value: &Val, vm: &mut Vm) -> Result<Self, VmError> {
                let elements = array_elements(value, vm)?;
                if elements.len() != $len {
                    let got = elements.len();
                    release_each(vm, &elements);
                    return Err(ConvertError::WrongLength { expected: $len, got }.into());
                }
                let converted = (|| Ok::<_, VmError>(($($t::from_val(&elements[$i], vm)?,)+)))();
                release_each(vm, &elements);
                converted
            }
        }
    };
}

tuple_conversions!(1: A 0);
tuple_conversions!(2: A 0, B 1);
tuple_conversions!(3: A 0, B 1, C 2);
tuple_conversions!(4: A 0, B 1, C 2, D 3);
tuple_conversions!(5: A 0, B 1, C 2, D 3, E 4);
tuple_conversions!(6: A 0, B 1, C 2, D 3, E 4, F 5);

impl Vm {
    /// Converts a Rust value into a VM value ([`IntoVal`]): `vm.to_val(vec![1, 2])` is a new
    /// array the caller owns.
    pub fn to_val<T: IntoVal>(&mut self, value: T) -> Result<Val, VmError> {
        value.into_val(self)
    }

    /// Reads a VM value as a Rust value ([`FromVal`]): `vm.from_val::<Vec<i64>>(&array)`.
    pub fn from_val<T: FromVal>(&mut self, value: &Val) -> Result<T, VmError> {
        T::from_val(value, self)
    }
}
