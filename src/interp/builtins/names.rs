//! The builtins' names: the [`Builtin`] enum, each one's name in bytecode, and the order
//! the VM's tables index them by.

/// The builtins every VM starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// `print(args…)`.
    Print,
    /// `type(v)`.
    Type,
    /// `create_object()`.
    CreateObject,
    /// `create_array([capacity])`.
    CreateArray,
    /// `get_field(container, key)`.
    GetField,
    /// `set_field(container, key, value)`.
    SetField,
    /// `array_length(array)`.
    ArrayLength,
    /// `array_push(array, values…)`.
    ArrayPush,
    /// `create_closure(function_name, upvalue_names…)`.
    CreateClosure,
    /// `call_closure(closure, args…)`.
    CallClosure,
    /// `get_upvalue(name)`.
    GetUpvalue,
    /// `set_upvalue(name, value)`.
    SetUpvalue,
    // The current StoffelVM's further builtins (bodies in `stdlib`).
    /// `len(array_or_string)`.
    Len,
    /// `append(array, values…)`.
    Append,
    /// `assert(condition[, message])`.
    Assert,
    /// `slice(value, start, stop[, step])`.
    Slice,
    /// `get_or_create_array_field(container, key)`.
    GetOrCreateArrayField,
    /// `contains(container, value)`.
    Contains,
    /// `range(start, stop[, step])`.
    Range,
    /// `array_concat(left, right)`.
    ArrayConcat,
    /// `array_repeat(array, count)`.
    ArrayRepeat,
    /// `array_equals(left, right)`.
    ArrayEquals,
    /// `extend(array, values)`.
    Extend,
    /// `copy(array)`.
    Copy,
    /// `count(array, value)`.
    Count,
    /// `index(array, value[, start[, stop]])`.
    Index,
    /// `pop(array[, index])`.
    Pop,
    /// `remove(array, value)`.
    Remove,
    /// `insert(array, index, value)`.
    Insert,
    /// `clear(array)`.
    Clear,
    /// `reverse(array)`.
    Reverse,
    /// `sort(array)`.
    Sort,
    /// `delete(array, index)`.
    Delete,
    /// `Bytes.from_string(text)`.
    BytesFromString,
    /// `Bytes.concat(a, b)`.
    BytesConcat,
    /// `Crypto.sha256(bytes)`.
    CryptoSha256,
    /// `Crypto.sha512(bytes)`.
    CryptoSha512,
    /// `LocalStorage.store(key, value)`.
    StorageStore,
    /// `LocalStorage.load(key)`.
    StorageLoad,
    /// `LocalStorage.retrieve(key)`.
    StorageRetrieve,
    /// `LocalStorage.delete(key)`.
    StorageDelete,
    /// `LocalStorage.exists(key)`.
    StorageExists,
    /// `to_string(v)`: the text `print` writes for `v`.
    ToString,
}

impl Builtin {
    /// Every builtin, in registration order.
    pub const ALL: [Builtin; 43] = [
        Builtin::Print,
        Builtin::Type,
        Builtin::CreateObject,
        Builtin::CreateArray,
        Builtin::GetField,
        Builtin::SetField,
        Builtin::ArrayLength,
        Builtin::ArrayPush,
        Builtin::CreateClosure,
        Builtin::CallClosure,
        Builtin::GetUpvalue,
        Builtin::SetUpvalue,
        Builtin::Len,
        Builtin::Append,
        Builtin::Assert,
        Builtin::Slice,
        Builtin::GetOrCreateArrayField,
        Builtin::Contains,
        Builtin::Range,
        Builtin::ArrayConcat,
        Builtin::ArrayRepeat,
        Builtin::ArrayEquals,
        Builtin::Extend,
        Builtin::Copy,
        Builtin::Count,
        Builtin::Index,
        Builtin::Pop,
        Builtin::Remove,
        Builtin::Insert,
        Builtin::Clear,
        Builtin::Reverse,
        Builtin::Sort,
        Builtin::Delete,
        Builtin::BytesFromString,
        Builtin::BytesConcat,
        Builtin::CryptoSha256,
        Builtin::CryptoSha512,
        Builtin::StorageStore,
        Builtin::StorageLoad,
        Builtin::StorageRetrieve,
        Builtin::StorageDelete,
        Builtin::StorageExists,
        Builtin::ToString,
    ];

    /// The name bytecode calls it by.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Print => "print",
            Builtin::Type => "type",
            Builtin::CreateObject => "create_object",
            Builtin::CreateArray => "create_array",
            Builtin::GetField => "get_field",
            Builtin::SetField => "set_field",
            Builtin::ArrayLength => "array_length",
            Builtin::ArrayPush => "array_push",
            Builtin::CreateClosure => "create_closure",
            Builtin::CallClosure => "call_closure",
            Builtin::GetUpvalue => "get_upvalue",
            Builtin::SetUpvalue => "set_upvalue",
            Builtin::Len => "len",
            Builtin::Append => "append",
            Builtin::Assert => "assert",
            Builtin::Slice => "slice",
            Builtin::GetOrCreateArrayField => "get_or_create_array_field",
            Builtin::Contains => "contains",
            Builtin::Range => "range",
            Builtin::ArrayConcat => "array_concat",
            Builtin::ArrayRepeat => "array_repeat",
            Builtin::ArrayEquals => "array_equals",
            Builtin::Extend => "extend",
            Builtin::Copy => "copy",
            Builtin::Count => "count",
            Builtin::Index => "index",
            Builtin::Pop => "pop",
            Builtin::Remove => "remove",
            Builtin::Insert => "insert",
            Builtin::Clear => "clear",
            Builtin::Reverse => "reverse",
            Builtin::Sort => "sort",
            Builtin::Delete => "delete",
            Builtin::BytesFromString => "Bytes.from_string",
            Builtin::BytesConcat => "Bytes.concat",
            Builtin::CryptoSha256 => "Crypto.sha256",
            Builtin::CryptoSha512 => "Crypto.sha512",
            Builtin::StorageStore => "LocalStorage.store",
            Builtin::StorageLoad => "LocalStorage.load",
            Builtin::StorageRetrieve => "LocalStorage.retrieve",
            Builtin::StorageDelete => "LocalStorage.delete",
            Builtin::StorageExists => "LocalStorage.exists",
            Builtin::ToString => "to_string",
        }
    }
}

// `Builtin as usize` indexes tables in `Builtin::ALL` order.
const _: () = {
    let mut i = 0;
    while i < Builtin::ALL.len() {
        assert!(Builtin::ALL[i] as usize == i);
        i += 1;
    }
};
