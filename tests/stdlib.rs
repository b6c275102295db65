//! The current StoffelVM's standard library beyond the original twelve builtins (list
//! operations, `slice`, `assert`, bytes and hashes, `LocalStorage.*`) and the refusal of MPC
//! builtins. Expected values and messages are those of the current StoffelVM's source
//! (`standard_library.rs`, `mpc_builtins/bytes.rs`, `crypto.rs`, `storage/value_codec.rs`
//! of the monorepo): results Python's, messages the original's text after the builtin's name.

mod common;

use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

use common::{runtime_error, vm_with};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A new array of `items` (through the host API).
fn arr(vm: &mut Vm, items: &[Val]) -> Val {
    let a = vm.create_array().unwrap();
    for v in items {
        vm.array_push(&a, v).unwrap();
    }
    a
}

/// Elements `0..length` of array `a`.
fn items(vm: &mut Vm, a: &Val) -> Vec<Val> {
    let n = vm.array_length(a).unwrap();
    (0..n)
        .map(|i| vm.get_field(a, &Val::I64(i)).unwrap())
        .collect()
}

fn ints(xs: &[i64]) -> Vec<Val> {
    xs.iter().map(|&x| Val::I64(x)).collect()
}

fn s(text: &str) -> Val {
    Val::String(text.to_owned())
}

/// Calls builtin `name` from the host.
fn call(vm: &mut Vm, name: &str, args: &[Val]) -> Result<Val, VmError> {
    vm.call::<Val>(name, args)
}

/// The message of builtin `name`'s error in `result` (panics on anything else).
#[track_caller]
fn message(result: Result<Val, VmError>, name: &str) -> String {
    let e = runtime_error(result);
    match e.kind {
        RuntimeErrorKind::Builtin { builtin, message } => {
            assert_eq!(builtin, name, "error was: {message}");
            message
        }
        other => panic!("expected a {name} error, got {other:?}"),
    }
}

/// Asserts builtin `name` fails on `args` with exactly `expected`.
#[track_caller]
fn fails(vm: &mut Vm, name: &str, args: &[Val], expected: &str) {
    assert_eq!(message(call(vm, name, args), name), expected);
}

/// A byte array of `bytes`.
fn byte_arr(vm: &mut Vm, bytes: &[u8]) -> Val {
    let vals: Vec<Val> = bytes.iter().map(|&b| Val::U8(b)).collect();
    arr(vm, &vals)
}

/// The bytes of byte array `a`.
fn bytes_of(vm: &mut Vm, a: &Val) -> Vec<u8> {
    items(vm, a)
        .into_iter()
        .map(|v| match v {
            Val::U8(b) => b,
            other => panic!("not a byte: {other:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// len, append, extend, copy
// ---------------------------------------------------------------------------------------------

#[test]
fn len_counts_array_elements_and_string_characters() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 3]));
    assert_eq!(call(&mut vm, "len", &[a]).unwrap(), Val::I64(3));
    // Characters, not bytes.
    assert_eq!(call(&mut vm, "len", &[s("héllo")]).unwrap(), Val::I64(5));
    assert_eq!(call(&mut vm, "len", &[s("")]).unwrap(), Val::I64(0));
    // An array written far past its end has that length (holes count).
    let sparse = vm.create_array().unwrap();
    vm.set_field(&sparse, &Val::I64(1000), &Val::Bool(true))
        .unwrap();
    assert_eq!(call(&mut vm, "len", &[sparse]).unwrap(), Val::I64(1001));
}

#[test]
fn len_argument_rules() {
    let mut vm = Vm::new();
    fails(&mut vm, "len", &[], "expects 1 argument: array");
    fails(
        &mut vm,
        "len",
        &[s("a"), s("b")],
        "expects 1 argument: array",
    );
    let o = vm.create_object().unwrap();
    fails(
        &mut vm,
        "len",
        &[o],
        "First argument must be an array or string",
    );
    fails(
        &mut vm,
        "len",
        &[Val::I64(3)],
        "First argument must be an array or string",
    );
}

#[test]
fn append_pushes_every_value_and_returns_unit() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1]));
    let r = call(&mut vm, "append", &[a.clone(), Val::I64(2), s("x")]).unwrap();
    assert_eq!(r, Val::Unit);
    assert_eq!(items(&mut vm, &a), vec![Val::I64(1), Val::I64(2), s("x")]);
    fails(
        &mut vm,
        "append",
        &[a],
        "expects at least 2 arguments: array and value",
    );
    fails(
        &mut vm,
        "append",
        &[Val::I64(1), Val::I64(2)],
        "First argument must be an array",
    );
}

#[test]
fn extend_appends_the_elements_of_another_array_or_itself() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2]));
    let b = arr(&mut vm, &ints(&[3]));
    assert_eq!(
        call(&mut vm, "extend", &[a.clone(), b.clone()]).unwrap(),
        Val::Unit
    );
    assert_eq!(items(&mut vm, &a), ints(&[1, 2, 3]));
    call(&mut vm, "extend", &[a.clone(), a.clone()]).unwrap();
    assert_eq!(items(&mut vm, &a), ints(&[1, 2, 3, 1, 2, 3]));
    fails(
        &mut vm,
        "extend",
        std::slice::from_ref(&a),
        "expects 2 arguments: array and values",
    );
    fails(
        &mut vm,
        "extend",
        &[a, Val::I64(1)],
        "Second argument must be an array",
    );
}

#[test]
fn copy_is_a_new_array_of_the_elements_only() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2]));
    vm.set_field(&a, &s("name"), &s("kept out")).unwrap();
    let c = call(&mut vm, "copy", std::slice::from_ref(&a)).unwrap();
    assert_ne!(c, a);
    assert_eq!(items(&mut vm, &c), ints(&[1, 2]));
    assert_eq!(vm.get_field(&c, &s("name")).unwrap(), Val::Unit);
    // The copy is independent.
    call(&mut vm, "append", &[c.clone(), Val::I64(3)]).unwrap();
    assert_eq!(vm.array_length(&a).unwrap(), 2);
    fails(&mut vm, "copy", &[], "expects 1 argument: array");
}

// ---------------------------------------------------------------------------------------------
// count, index, contains: list equality
// ---------------------------------------------------------------------------------------------

#[test]
fn count_uses_list_equality() {
    let mut vm = Vm::new();
    let inner1 = arr(&mut vm, &ints(&[1, 2]));
    let inner2 = arr(&mut vm, &ints(&[1, 2]));
    let needle = arr(&mut vm, &ints(&[1, 2]));
    let a = arr(
        &mut vm,
        &[
            Val::I64(1),
            Val::I32(1),
            Val::I64(1),
            inner1,
            inner2,
            Val::Float(f64::NAN),
            Val::Float(-0.0),
        ],
    );
    // Kinds are distinct: 1 and 1i32 differ.
    assert_eq!(
        call(&mut vm, "count", &[a.clone(), Val::I64(1)]).unwrap(),
        Val::I64(2)
    );
    // Arrays compare element by element.
    assert_eq!(
        call(&mut vm, "count", &[a.clone(), needle]).unwrap(),
        Val::I64(2)
    );
    // NaN equals NaN, -0.0 equals 0.0 (the original's float equality).
    assert_eq!(
        call(&mut vm, "count", &[a.clone(), Val::Float(f64::NAN)]).unwrap(),
        Val::I64(1)
    );
    assert_eq!(
        call(&mut vm, "count", &[a.clone(), Val::Float(0.0)]).unwrap(),
        Val::I64(1)
    );
    assert_eq!(
        call(&mut vm, "count", &[a.clone(), s("1")]).unwrap(),
        Val::I64(0)
    );
    fails(
        &mut vm,
        "count",
        &[a],
        "expects 2 arguments: array and value",
    );
}

#[test]
fn index_searches_python_bounds() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[5, 6, 5, 7]));
    let idx = |vm: &mut Vm, args: &[Val]| call(vm, "index", args);
    assert_eq!(
        idx(&mut vm, &[a.clone(), Val::I64(5)]).unwrap(),
        Val::I64(0)
    );
    assert_eq!(
        idx(&mut vm, &[a.clone(), Val::I64(5), Val::I64(1)]).unwrap(),
        Val::I64(2)
    );
    // A negative bound counts from the end.
    assert_eq!(
        idx(&mut vm, &[a.clone(), Val::I64(5), Val::I64(-2)]).unwrap(),
        Val::I64(2)
    );
    // Bounds of any integer kind; out of range they clamp.
    assert_eq!(
        idx(&mut vm, &[a.clone(), Val::I64(7), Val::U8(0), Val::I64(99)]).unwrap(),
        Val::I64(3)
    );
    fails(
        &mut vm,
        "index",
        &[a.clone(), Val::I64(7), Val::I64(0), Val::I64(3)],
        "value is not in list",
    );
    fails(
        &mut vm,
        "index",
        &[a.clone(), Val::I64(9)],
        "value is not in list",
    );
    fails(
        &mut vm,
        "index",
        &[a.clone(), Val::I64(5), Val::Unit],
        "index bound must be an integer, found nil",
    );
    fails(
        &mut vm,
        "index",
        std::slice::from_ref(&a),
        "expects at least 2 arguments: array and value",
    );
    fails(
        &mut vm,
        "index",
        &[a, Val::I64(5), Val::I64(0), Val::I64(1), Val::I64(2)],
        "expects at most 4 arguments: array, value, start, and stop",
    );
}

#[test]
fn contains_on_strings_arrays_and_objects() {
    let mut vm = Vm::new();
    let t = Val::Bool(true);
    let f = Val::Bool(false);
    assert_eq!(
        call(&mut vm, "contains", &[s("hello"), s("ell")]).unwrap(),
        t
    );
    assert_eq!(call(&mut vm, "contains", &[s("hello"), s("")]).unwrap(), t);
    assert_eq!(call(&mut vm, "contains", &[s("hello"), s("x")]).unwrap(), f);
    fails(
        &mut vm,
        "contains",
        &[s("hello"), Val::I64(1)],
        "'in' on a string requires a string operand",
    );
    let a = arr(&mut vm, &[Val::I64(1), s("b")]);
    assert_eq!(call(&mut vm, "contains", &[a.clone(), s("b")]).unwrap(), t);
    assert_eq!(
        call(&mut vm, "contains", &[a.clone(), Val::I32(1)]).unwrap(),
        f
    );
    // An object: whether the key is present (even with a Unit value).
    let o = vm.create_object().unwrap();
    vm.set_field(&o, &s("k"), &Val::Unit).unwrap();
    assert_eq!(call(&mut vm, "contains", &[o.clone(), s("k")]).unwrap(), t);
    assert_eq!(call(&mut vm, "contains", &[o, s("v")]).unwrap(), f);
    fails(
        &mut vm,
        "contains",
        &[Val::I64(3), Val::I64(3)],
        "'in' requires a list, dict, or string container, found int64",
    );
    fails(
        &mut vm,
        "contains",
        &[a],
        "expects 2 arguments: container and value",
    );
}

// ---------------------------------------------------------------------------------------------
// pop, remove, insert, delete, clear, reverse
// ---------------------------------------------------------------------------------------------

#[test]
fn pop_removes_and_returns_an_element() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 3, 4]));
    assert_eq!(
        call(&mut vm, "pop", std::slice::from_ref(&a)).unwrap(),
        Val::I64(4)
    );
    assert_eq!(
        call(&mut vm, "pop", &[a.clone(), Val::I64(0)]).unwrap(),
        Val::I64(1)
    );
    assert_eq!(
        call(&mut vm, "pop", &[a.clone(), Val::I64(-1)]).unwrap(),
        Val::I64(3)
    );
    assert_eq!(items(&mut vm, &a), ints(&[2]));
    fails(
        &mut vm,
        "pop",
        &[a.clone(), Val::I64(1)],
        "list index out of range",
    );
    fails(
        &mut vm,
        "pop",
        &[a.clone(), s("0")],
        "index must be an integer",
    );
    fails(
        &mut vm,
        "pop",
        &[a.clone(), Val::U64(u64::MAX)],
        "index exceeds i64 range",
    );
    call(&mut vm, "pop", std::slice::from_ref(&a)).unwrap();
    // Empty: that error comes first, whatever the index.
    fails(&mut vm, "pop", &[a.clone(), s("x")], "pop from empty list");
    fails(&mut vm, "pop", &[], "expects at least 1 argument: array");
    fails(
        &mut vm,
        "pop",
        &[a, Val::I64(0), Val::I64(0)],
        "expects at most 2 arguments: array and optional index",
    );
}

#[test]
fn rebuilding_an_array_drops_index_keys_and_keeps_others() {
    // StoffelVM's list operations rebuild the elements: the length shrinks, far indices go,
    // string keys stay.
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 3]));
    vm.set_field(&a, &s("tag"), &s("kept")).unwrap();
    call(&mut vm, "pop", std::slice::from_ref(&a)).unwrap();
    assert_eq!(vm.array_length(&a).unwrap(), 2);
    assert_eq!(vm.get_field(&a, &s("tag")).unwrap(), s("kept"));
    // A negative index counts from the end (it is not a key of its own).
    assert_eq!(vm.get_field(&a, &Val::I64(-1)).unwrap(), Val::I64(2));
    // A far index: part of the length (holes read as Unit), dropped by the rebuild.
    vm.set_field(&a, &Val::I64(1 << 40), &Val::I64(9)).unwrap();
    assert_eq!(vm.array_length(&a).unwrap(), (1 << 40) + 1);
    call(&mut vm, "clear", std::slice::from_ref(&a)).unwrap();
    assert_eq!(vm.array_length(&a).unwrap(), 0);
    // Reading past the end is an error (the current semantics): the far index is gone.
    assert!(vm.get_field(&a, &Val::I64(1 << 40)).is_err());
    assert_eq!(vm.get_field(&a, &s("tag")).unwrap(), s("kept"));
    // Appending after a rebuild starts at the new length.
    call(&mut vm, "append", &[a.clone(), Val::I64(7)]).unwrap();
    assert_eq!(items(&mut vm, &a), ints(&[7]));
}

#[test]
fn remove_takes_the_first_equal_element() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 1]));
    assert_eq!(
        call(&mut vm, "remove", &[a.clone(), Val::I64(1)]).unwrap(),
        Val::Unit
    );
    assert_eq!(items(&mut vm, &a), ints(&[2, 1]));
    fails(
        &mut vm,
        "remove",
        &[a.clone(), Val::I64(5)],
        "value is not in list",
    );
    fails(
        &mut vm,
        "remove",
        &[a],
        "expects 2 arguments: array and value",
    );
}

#[test]
fn insert_clamps_like_python() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 3]));
    let ins = |vm: &mut Vm, a: &Val, i: Val, v: i64| {
        assert_eq!(
            call(vm, "insert", &[a.clone(), i, Val::I64(v)]).unwrap(),
            Val::Unit
        )
    };
    ins(&mut vm, &a, Val::I64(1), 10);
    assert_eq!(items(&mut vm, &a), ints(&[1, 10, 2, 3]));
    ins(&mut vm, &a, Val::I64(-1), 20);
    assert_eq!(items(&mut vm, &a), ints(&[1, 10, 2, 20, 3]));
    ins(&mut vm, &a, Val::I64(99), 30);
    ins(&mut vm, &a, Val::I64(-99), 40);
    assert_eq!(items(&mut vm, &a), ints(&[40, 1, 10, 2, 20, 3, 30]));
    fails(
        &mut vm,
        "insert",
        &[a.clone(), Val::Float(1.0), Val::I64(0)],
        "index must be an integer",
    );
    fails(
        &mut vm,
        "insert",
        &[Val::I64(0), Val::Float(1.0), Val::I64(0)],
        "First argument must be an array",
    );
    fails(
        &mut vm,
        "insert",
        &[a],
        "expects 3 arguments: array, index, and value",
    );
}

#[test]
fn delete_removes_by_index() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 3]));
    assert_eq!(
        call(&mut vm, "delete", &[a.clone(), Val::I64(-3)]).unwrap(),
        Val::Unit
    );
    assert_eq!(items(&mut vm, &a), ints(&[2, 3]));
    fails(
        &mut vm,
        "delete",
        &[a.clone(), Val::I64(2)],
        "list index out of range",
    );
    fails(
        &mut vm,
        "delete",
        &[a.clone(), Val::I64(-3)],
        "list index out of range",
    );
    fails(
        &mut vm,
        "delete",
        &[a.clone(), s("1")],
        "index must be an integer",
    );
    fails(
        &mut vm,
        "delete",
        &[a],
        "expects 2 arguments: array and index",
    );
}

#[test]
fn clear_and_reverse_work_in_place() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2, 3]));
    assert_eq!(
        call(&mut vm, "reverse", std::slice::from_ref(&a)).unwrap(),
        Val::Unit
    );
    assert_eq!(items(&mut vm, &a), ints(&[3, 2, 1]));
    assert_eq!(
        call(&mut vm, "clear", std::slice::from_ref(&a)).unwrap(),
        Val::Unit
    );
    assert_eq!(items(&mut vm, &a), vec![]);
    fails(
        &mut vm,
        "reverse",
        &[a.clone(), a.clone()],
        "expects 1 argument: array",
    );
    fails(
        &mut vm,
        "clear",
        &[s("x")],
        "First argument must be an array",
    );
}

// ---------------------------------------------------------------------------------------------
// sort
// ---------------------------------------------------------------------------------------------

#[test]
fn sort_orders_numbers_of_every_kind_by_value() {
    let mut vm = Vm::new();
    let a = arr(
        &mut vm,
        &[
            Val::U64(u64::MAX),
            Val::I64(-5),
            Val::U8(3),
            Val::I32(2),
            Val::I64(i64::MIN),
        ],
    );
    assert_eq!(
        call(&mut vm, "sort", std::slice::from_ref(&a)).unwrap(),
        Val::Unit
    );
    assert_eq!(
        items(&mut vm, &a),
        vec![
            Val::I64(i64::MIN),
            Val::I64(-5),
            Val::I32(2),
            Val::U8(3),
            Val::U64(u64::MAX)
        ]
    );
    // Integers with floats compare as floats; equal values keep their order (stable).
    let b = arr(
        &mut vm,
        &[Val::Float(2.5), Val::I64(2), Val::Float(2.0), Val::I64(-1)],
    );
    call(&mut vm, "sort", std::slice::from_ref(&b)).unwrap();
    assert_eq!(
        items(&mut vm, &b),
        vec![Val::I64(-1), Val::I64(2), Val::Float(2.0), Val::Float(2.5)]
    );
}

#[test]
fn sort_strings_booleans_and_stability() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &[s("b"), s("B"), s("a"), s("ab")]);
    call(&mut vm, "sort", std::slice::from_ref(&a)).unwrap();
    // By bytes: upper case first.
    assert_eq!(items(&mut vm, &a), vec![s("B"), s("a"), s("ab"), s("b")]);
    let b = arr(&mut vm, &[Val::Bool(true), Val::Bool(false)]);
    call(&mut vm, "sort", std::slice::from_ref(&b)).unwrap();
    assert_eq!(items(&mut vm, &b), vec![Val::Bool(false), Val::Bool(true)]);
    // -0.0 and 0.0 are equal: their order stays.
    let c = arr(
        &mut vm,
        &[Val::Float(0.0), Val::Float(-0.0), Val::Float(-1.0)],
    );
    call(&mut vm, "sort", std::slice::from_ref(&c)).unwrap();
    let sorted: Vec<u64> = items(&mut vm, &c)
        .into_iter()
        .map(|v| match v {
            Val::Float(f) => f.to_bits(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sorted,
        vec![(-1.0f64).to_bits(), 0.0f64.to_bits(), (-0.0f64).to_bits()]
    );
}

#[test]
fn sort_errors_name_the_pair_the_insertion_sort_compares() {
    let mut vm = Vm::new();
    // The original's insertion sort compares each element with the one before it.
    let a = arr(&mut vm, &[Val::I64(1), s("a")]);
    fails(
        &mut vm,
        "sort",
        std::slice::from_ref(&a),
        "list sort does not support comparing string and int64",
    );
    // A failed sort leaves the list as it was.
    assert_eq!(items(&mut vm, &a), vec![Val::I64(1), s("a")]);
    let b = arr(&mut vm, &[Val::Float(1.0), Val::Float(f64::NAN)]);
    fails(
        &mut vm,
        "sort",
        &[b],
        "list sort does not support NaN values",
    );
    let o = vm.create_object().unwrap();
    let c = arr(&mut vm, &[o.clone(), o]);
    fails(
        &mut vm,
        "sort",
        &[c],
        "list sort does not support comparing object and object",
    );
    // One element, or none: nothing is compared.
    let d = arr(&mut vm, &[Val::Float(f64::NAN)]);
    assert_eq!(call(&mut vm, "sort", &[d]).unwrap(), Val::Unit);
    fails(&mut vm, "sort", &[], "expects 1 argument: array");
}

// ---------------------------------------------------------------------------------------------
// range, array_concat, array_repeat, array_equals, get_or_create_array_field
// ---------------------------------------------------------------------------------------------

#[test]
fn range_is_pythons() {
    let mut vm = Vm::new();
    let r = |vm: &mut Vm, args: &[i64]| {
        let v = call(vm, "range", &ints(args)).unwrap();
        items(vm, &v)
    };
    assert_eq!(r(&mut vm, &[2, 5]), ints(&[2, 3, 4]));
    assert_eq!(r(&mut vm, &[0, 10, 3]), ints(&[0, 3, 6, 9]));
    assert_eq!(r(&mut vm, &[5, 0, -2]), ints(&[5, 3, 1]));
    assert_eq!(r(&mut vm, &[5, 5]), ints(&[]));
    assert_eq!(r(&mut vm, &[5, 0]), ints(&[]));
    // Near the ends of i64 (the original's loop fails after the last value; see README).
    assert_eq!(
        r(&mut vm, &[i64::MAX - 5, i64::MAX, 4]),
        ints(&[i64::MAX - 5, i64::MAX - 1])
    );
    assert_eq!(
        r(&mut vm, &[i64::MIN, i64::MIN + 2]),
        ints(&[i64::MIN, i64::MIN + 1])
    );
    // Any integer kind.
    let v = call(&mut vm, "range", &[Val::U8(1), Val::I32(3)]).unwrap();
    assert_eq!(items(&mut vm, &v), ints(&[1, 2]));
    fails(
        &mut vm,
        "range",
        &ints(&[0, 5, 0]),
        "range step argument must not be zero",
    );
    fails(
        &mut vm,
        "range",
        &ints(&[0]),
        "expects at least 2 arguments: start and stop",
    );
    fails(
        &mut vm,
        "range",
        &ints(&[0, 1, 1, 1]),
        "expects at most 3 arguments: start, stop, and step",
    );
    fails(
        &mut vm,
        "range",
        &[s("0"), Val::I64(1)],
        "range start must be an integer",
    );
    fails(
        &mut vm,
        "range",
        &[Val::I64(0), Val::U64(u64::MAX)],
        "range stop exceeds i64 range",
    );
}

#[test]
fn huge_ranges_and_repeats_are_refused_cleanly() {
    let mut vm = Vm::new();
    vm.set_memory_limit(Some(64 << 20));
    for (name, args) in [
        ("range", ints(&[0, 1 << 40])),
        ("range", ints(&[i64::MIN, i64::MAX])),
    ] {
        let e = runtime_error(call(&mut vm, name, &args));
        assert!(e.kind.to_string().contains("memory limit"), "{e}");
    }
    let a = arr(&mut vm, &ints(&[1, 2]));
    let e = runtime_error(call(
        &mut vm,
        "array_repeat",
        &[a.clone(), Val::I64(1 << 40)],
    ));
    assert!(e.kind.to_string().contains("memory limit"), "{e}");
    // The result's length overflowing (3 × (2^63 - 1)) is the original's own error.
    let three = arr(&mut vm, &ints(&[1, 2, 3]));
    fails(
        &mut vm,
        "array_repeat",
        &[three, Val::I64(i64::MAX)],
        "array_repeat result length is too large",
    );
    // The VM stays usable.
    let v = call(&mut vm, "range", &ints(&[0, 3])).unwrap();
    assert_eq!(items(&mut vm, &v), ints(&[0, 1, 2]));
    // Without a memory limit the system's refusal is an error too, never an abort.
    let mut free = Vm::new();
    let e = runtime_error(call(&mut free, "range", &ints(&[i64::MIN, i64::MAX])));
    assert!(matches!(e.kind, RuntimeErrorKind::OutOfMemory(_)), "{e}");
}

#[test]
fn array_concat_repeat_and_equals() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[1, 2]));
    let b = arr(&mut vm, &ints(&[3]));
    let c = call(&mut vm, "array_concat", &[a.clone(), b.clone()]).unwrap();
    assert_eq!(items(&mut vm, &c), ints(&[1, 2, 3]));
    fails(
        &mut vm,
        "array_concat",
        &[a.clone(), Val::I64(1)],
        "Second argument must be an array",
    );
    fails(
        &mut vm,
        "array_concat",
        std::slice::from_ref(&a),
        "expects 2 arguments: left array and right array",
    );
    let r = call(&mut vm, "array_repeat", &[a.clone(), Val::I64(3)]).unwrap();
    assert_eq!(items(&mut vm, &r), ints(&[1, 2, 1, 2, 1, 2]));
    let r = call(&mut vm, "array_repeat", &[a.clone(), Val::I64(-4)]).unwrap();
    assert_eq!(items(&mut vm, &r), vec![]);
    // The count is converted before the array is checked.
    fails(
        &mut vm,
        "array_repeat",
        &[Val::I64(1), s("3")],
        "repeat count must be an integer",
    );
    fails(
        &mut vm,
        "array_repeat",
        &[Val::I64(1), Val::I64(3)],
        "First argument must be an array",
    );
    let a2 = arr(&mut vm, &ints(&[1, 2]));
    let t = Val::Bool(true);
    assert_eq!(
        call(&mut vm, "array_equals", &[a.clone(), a2.clone()]).unwrap(),
        t
    );
    assert_eq!(
        call(&mut vm, "array_equals", &[a.clone(), b.clone()]).unwrap(),
        Val::Bool(false)
    );
    // Nested arrays compare by elements; 1 and 1i32 differ.
    let n1 = arr(&mut vm, std::slice::from_ref(&a));
    let n2 = arr(&mut vm, &[a2]);
    assert_eq!(call(&mut vm, "array_equals", &[n1, n2]).unwrap(), t);
    let i32s = arr(&mut vm, &[Val::I32(1), Val::I32(2)]);
    assert_eq!(
        call(&mut vm, "array_equals", &[a.clone(), i32s]).unwrap(),
        Val::Bool(false)
    );
    fails(
        &mut vm,
        "array_equals",
        &[a, s("x")],
        "Second argument must be an array",
    );
}

#[test]
fn array_equals_stops_at_64_levels() {
    // Two distinct chains of single-element arrays: equal to 64 levels, then unequal
    // because the comparison gives up (the original's depth bound).
    let mut vm = Vm::new();
    let chain = |vm: &mut Vm, depth: usize| {
        let mut v = arr(vm, &[]);
        for _ in 0..depth {
            v = arr(vm, &[v]);
        }
        v
    };
    let (a, b) = (chain(&mut vm, 63), chain(&mut vm, 63));
    assert_eq!(
        call(&mut vm, "array_equals", &[a, b]).unwrap(),
        Val::Bool(true)
    );
    let (a, b) = (chain(&mut vm, 64), chain(&mut vm, 64));
    assert_eq!(
        call(&mut vm, "array_equals", &[a, b]).unwrap(),
        Val::Bool(false)
    );
}

#[test]
fn get_or_create_array_field_autovivifies() {
    let mut vm = Vm::new();
    let o = vm.create_object().unwrap();
    let inner = call(&mut vm, "get_or_create_array_field", &[o.clone(), s("xs")]).unwrap();
    assert!(matches!(inner, Val::Array(_)));
    // The same array the second time.
    let again = call(&mut vm, "get_or_create_array_field", &[o.clone(), s("xs")]).unwrap();
    assert_eq!(vm.array_length(&again).unwrap(), 0);
    call(&mut vm, "append", &[inner, Val::I64(1)]).unwrap();
    assert_eq!(vm.array_length(&again).unwrap(), 1);
    // On an array: a negative index counts from the end; a missing index is created.
    let a = arr(&mut vm, &[Val::Unit, Val::I64(5)]);
    let first = call(
        &mut vm,
        "get_or_create_array_field",
        &[a.clone(), Val::I64(-2)],
    )
    .unwrap();
    call(&mut vm, "append", &[first, Val::I64(8)]).unwrap();
    let stored = vm.get_field(&a, &Val::I64(0)).unwrap();
    assert_eq!(items(&mut vm, &stored), ints(&[8]));
    call(
        &mut vm,
        "get_or_create_array_field",
        &[a.clone(), Val::I64(3)],
    )
    .unwrap();
    assert_eq!(vm.array_length(&a).unwrap(), 4);
    fails(
        &mut vm,
        "get_or_create_array_field",
        &[a.clone(), Val::I64(1)],
        "Cannot autovivify nested list through a non-list value",
    );
    fails(
        &mut vm,
        "get_or_create_array_field",
        &[a.clone(), Val::I32(-9)],
        "array index -9 out of range (length 4)",
    );
    fails(
        &mut vm,
        "get_or_create_array_field",
        &[s("x"), Val::I64(0)],
        "Expected object or array",
    );
    fails(
        &mut vm,
        "get_or_create_array_field",
        &[a],
        "expects at least 2 arguments: object and key",
    );
}

// ---------------------------------------------------------------------------------------------
// slice, assert
// ---------------------------------------------------------------------------------------------

#[test]
fn slice_strings_like_python() {
    let mut vm = Vm::new();
    let sl = |vm: &mut Vm, args: &[Val]| {
        let mut all = vec![s("héllo, world")];
        all.extend_from_slice(args);
        call(vm, "slice", &all).unwrap()
    };
    assert_eq!(sl(&mut vm, &[Val::I64(0), Val::I64(5)]), s("héllo"));
    assert_eq!(sl(&mut vm, &[Val::I64(-5), Val::Unit]), s("world"));
    // i64::MAX stands for an omitted bound too (even as a start).
    assert_eq!(sl(&mut vm, &[Val::I64(i64::MAX), Val::I64(2)]), s("hé"));
    assert_eq!(
        sl(&mut vm, &[Val::Unit, Val::Unit, Val::I64(-1)]),
        s("dlrow ,olléh")
    );
    assert_eq!(
        sl(&mut vm, &[Val::I64(1), Val::I64(9), Val::I64(3)]),
        s("éow")
    );
    assert_eq!(sl(&mut vm, &[Val::I64(8), Val::I64(2)]), s(""));
    assert_eq!(
        sl(&mut vm, &[Val::I64(-100), Val::I64(100)]),
        s("héllo, world")
    );
}

#[test]
fn slice_arrays_and_argument_rules() {
    let mut vm = Vm::new();
    let a = arr(&mut vm, &ints(&[0, 1, 2, 3, 4, 5]));
    let sl = |vm: &mut Vm, args: &[Val]| {
        let v = call(vm, "slice", args).unwrap();
        items(vm, &v)
    };
    assert_eq!(
        sl(&mut vm, &[a.clone(), Val::I64(1), Val::I64(4)]),
        ints(&[1, 2, 3])
    );
    assert_eq!(
        sl(&mut vm, &[a.clone(), Val::Unit, Val::Unit, Val::I64(2)]),
        ints(&[0, 2, 4])
    );
    assert_eq!(
        sl(
            &mut vm,
            &[a.clone(), Val::I64(4), Val::I64(0), Val::I64(-2)]
        ),
        ints(&[4, 2])
    );
    assert_eq!(
        sl(&mut vm, &[a.clone(), Val::I64(-1), Val::Unit, Val::I64(-4)]),
        ints(&[5, 1])
    );
    assert_eq!(
        sl(
            &mut vm,
            &[a.clone(), Val::Unit, Val::Unit, Val::I64(i64::MIN)]
        ),
        ints(&[5])
    );
    fails(
        &mut vm,
        "slice",
        &[a.clone(), Val::I64(0), Val::I64(1), Val::I64(0)],
        "slice step cannot be zero",
    );
    fails(
        &mut vm,
        "slice",
        &[a.clone(), Val::I64(0), Val::I64(1), Val::Unit],
        "slice step must be an integer, found nil",
    );
    fails(
        &mut vm,
        "slice",
        &[a.clone(), s("0"), Val::I64(1)],
        "slice start must be an integer, found string",
    );
    fails(
        &mut vm,
        "slice",
        &[a.clone(), Val::I64(0), Val::Float(1.0)],
        "slice stop must be an integer, found float",
    );
    fails(
        &mut vm,
        "slice",
        &[Val::I64(5), Val::I64(0), Val::I64(1)],
        "slice requires a list or string, found int64",
    );
    fails(
        &mut vm,
        "slice",
        &[a.clone(), Val::I64(0)],
        "expects at least 3 arguments: value, start, and stop",
    );
    fails(
        &mut vm,
        "slice",
        &[a, Val::I64(0), Val::I64(1), Val::I64(1), Val::I64(1)],
        "expects at most 4 arguments: value, start, stop, and step",
    );
}

#[test]
fn assert_passes_or_fails_with_the_message() {
    let mut vm = Vm::new();
    assert_eq!(
        call(&mut vm, "assert", &[Val::Bool(true)]).unwrap(),
        Val::Unit
    );
    assert_eq!(
        call(
            &mut vm,
            "assert",
            &[Val::Bool(true), s("unused"), Val::I64(1)]
        )
        .unwrap(),
        Val::Unit
    );
    fails(&mut vm, "assert", &[Val::Bool(false)], "assertion failed");
    fails(
        &mut vm,
        "assert",
        &[Val::Bool(false), s("x must be positive")],
        "x must be positive",
    );
    // A message that is not a string is ignored.
    fails(
        &mut vm,
        "assert",
        &[Val::Bool(false), Val::I64(3)],
        "assertion failed",
    );
    fails(
        &mut vm,
        "assert",
        &[Val::I64(1)],
        "assert condition must be a bool, found int64",
    );
    fails(
        &mut vm,
        "assert",
        &[],
        "expects 1 or 2 arguments: condition and optional message",
    );
}

// ---------------------------------------------------------------------------------------------
// Bytes and hashes
// ---------------------------------------------------------------------------------------------

#[test]
fn bytes_from_string_and_concat() {
    let mut vm = Vm::new();
    let b = call(&mut vm, "Bytes.from_string", &[s("hé")]).unwrap();
    assert_eq!(bytes_of(&mut vm, &b), "hé".as_bytes());
    let c = byte_arr(&mut vm, &[1, 2]);
    let joined = call(
        &mut vm,
        "Bytes.concat",
        &[b.clone(), c.clone(), Val::I64(0)],
    )
    .unwrap();
    assert_eq!(bytes_of(&mut vm, &joined), [b'h', 0xc3, 0xa9, 1, 2]);
    fails(
        &mut vm,
        "Bytes.from_string",
        &[Val::I64(1)],
        "Argument must be a string",
    );
    fails(
        &mut vm,
        "Bytes.from_string",
        &[],
        "expects 1 argument: string",
    );
    fails(
        &mut vm,
        "Bytes.concat",
        std::slice::from_ref(&b),
        "expects 2 arguments: a, b",
    );
    fails(
        &mut vm,
        "Bytes.concat",
        &[b.clone(), s("x")],
        "Expected byte array",
    );
    let mixed = arr(&mut vm, &[Val::U8(1), Val::I64(2)]);
    fails(
        &mut vm,
        "Bytes.concat",
        &[b, mixed],
        "Expected U8 at index 1",
    );
}

#[test]
fn sha256_and_sha512_digests() {
    let mut vm = Vm::new();
    let abc = call(&mut vm, "Bytes.from_string", &[s("abc")]).unwrap();
    let h = call(&mut vm, "Crypto.sha256", std::slice::from_ref(&abc)).unwrap();
    let hex: String = bytes_of(&mut vm, &h)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // FIPS 180-2, appendix B.1.
    assert_eq!(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let empty = byte_arr(&mut vm, &[]);
    let h = call(&mut vm, "Crypto.sha256", &[empty]).unwrap();
    let hex: String = bytes_of(&mut vm, &h)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let h = call(&mut vm, "Crypto.sha512", &[abc]).unwrap();
    let bytes = bytes_of(&mut vm, &h);
    assert_eq!(bytes.len(), 64);
    assert_eq!(&bytes[..4], &[0xdd, 0xaf, 0x35, 0xa1]);
    fails(&mut vm, "Crypto.sha256", &[s("abc")], "Expected byte array");
    fails(
        &mut vm,
        "Crypto.sha256",
        &[],
        "expects 1 argument: data (byte array)",
    );
}

// ---------------------------------------------------------------------------------------------
// From bytecode: the CALL path, and the MPC refusal
// ---------------------------------------------------------------------------------------------

#[test]
fn builtins_run_from_bytecode() {
    let (mut vm, out) = vm_with(
        r#"
.function main registers 6
    LDI r1, 1
    LDI r2, 6
    LDI r3, 2
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL range            ; [1, 3, 5]
    MOV r4, r0
    PUSHARG r4
    LDI r5, 7
    PUSHARG r5
    CALL append           ; [1, 3, 5, 7]
    PUSHARG r4
    CALL reverse
    PUSHARG r4
    LDI r5, 5
    PUSHARG r5
    CALL index            ; 5 is at 1 now
    MOV r5, r0
    PUSHARG r4
    CALL len
    ADD r0, r0, r5
    RET r0                ; 4 + 1
"#,
    );
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(5));
    assert_eq!(out.lock().unwrap().as_str(), "");
}

#[test]
fn a_failing_builtin_names_function_and_instruction() {
    let (mut vm, _) = vm_with(
        r#"
.function main registers 2
    LDI r1, false
    PUSHARG r1
    LDI r1, "balance must stay positive"
    PUSHARG r1
    CALL assert
    RET r0
"#,
    );
    let e = runtime_error(vm.execute("main", &[]));
    assert_eq!((e.function.as_str(), e.instruction), ("main", 4));
    assert_eq!(
        e.to_string(),
        "runtime error in function 'main' at instruction 4: assert: balance must stay positive"
    );
}

#[test]
fn mpc_builtins_are_refused_as_needing_an_engine() {
    for name in [
        "Share.open",
        "Share.from_clear_int",
        "Mpc.party_id",
        "ClientStore.take_share",
        "ClientStore.get_number_clients",
        "Rbc.broadcast",
        "Avss.get_commitment",
        "MpcOutput.send_to_client",
        "Field.add",
        "Crypto.hash_to_field",
        "Crypto.point_to_sec1",
    ] {
        let (mut vm, _) = vm_with(&format!(
            ".function main registers 2\n    LDI r1, 7\n    PUSHARG r1\n    CALL {name}\n    RET r0\n"
        ));
        let e = runtime_error(vm.execute("main", &[]));
        assert_eq!(e.kind, RuntimeErrorKind::NeedsMpc(name.to_owned()));
        assert_eq!(e.instruction, 2);
        assert_eq!(
            e.kind.to_string(),
            format!(
                "'{name}' is an MPC operation: this program needs an MPC engine, which stoffel-vm does not provide"
            )
        );
    }
    // Other unknown names are still "not found"; a host may define an MPC name.
    let (mut vm, _) = vm_with(".function main\n    CALL Shares.open\n    RET r0\n");
    assert_eq!(
        runtime_error(vm.execute("main", &[])).kind,
        RuntimeErrorKind::FunctionNotFound("Shares.open".to_owned())
    );
    let (mut vm, _) = vm_with(".function main\n    CALL Mpc.party_id\n    RET r0\n");
    // Executed by name from the host: the same refusal.
    let e = runtime_error(vm.execute("Share.open", &[]));
    assert_eq!(e.kind, RuntimeErrorKind::NeedsMpc("Share.open".to_owned()));
    assert!(matches!(
        vm.execute("Shares.open", &[]),
        Err(VmError::Api(stoffel_vm::ApiError::FunctionNotFound(_)))
    ));
    vm.register_function("Mpc.party_id", |_, _| Ok(Val::I64(3)));
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(3));
}

// ---------------------------------------------------------------------------------------------
// Bounded cost: work that grows with the input is charged to the instruction limit
// ---------------------------------------------------------------------------------------------

const FUEL: u64 = 1_000_000;

/// Runs `main` of `src` under the instruction limit: how long it took and how it ended.
fn timed(src: &str) -> (std::time::Duration, Result<Val, VmError>) {
    let (mut vm, _) = vm_with(src);
    vm.set_instruction_limit(Some(FUEL));
    let start = std::time::Instant::now();
    let result = vm.execute("main", &[]);
    (start.elapsed(), result)
}

#[track_caller]
fn assert_out_of_fuel(result: Result<Val, VmError>) {
    assert_eq!(
        runtime_error(result).kind,
        RuntimeErrorKind::FuelExhausted(FUEL)
    );
}

/// The fastest of three runs of a plain loop that uses up the same limit.
fn baseline() -> std::time::Duration {
    (0..3)
        .map(|_| {
            let (t, r) = timed(".function main\nspin:\n    JMP spin\n");
            assert_out_of_fuel(r);
            t
        })
        .min()
        .unwrap()
}

#[test]
fn huge_ranges_and_repeats_are_refused_by_the_instruction_limit_up_front() {
    // No memory limit: without the charge these would allocate 16 GB.
    for body in [
        "    LDI r1, 0\n    LDI r2, 1000000000\n    PUSHARG r1\n    PUSHARG r2\n    CALL range\n",
        "    LDI r1, 1\n    PUSHARG r1\n    CALL create_array\n    MOV r3, r0\n    PUSHARG r3\n    PUSHARG r1\n    CALL append\n    LDI r2, 1000000000\n    PUSHARG r3\n    PUSHARG r2\n    CALL array_repeat\n",
    ] {
        let (_, result) = timed(&format!(".function main registers 4\n{body}    RET r0\n"));
        assert_out_of_fuel(result);
    }
}

#[test]
fn sorts_and_comparisons_stop_at_the_instruction_limit() {
    let base = baseline();
    // A descending list of 30,000 integers behind a float: the original's insertion sort
    // (which mixed kinds need) makes 4.5e8 comparisons.
    let sort = r#"
.function main registers 5
    LDI r1, 30000
    LDI r2, 0
    LDI r3, -1
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL range
    MOV r4, r0
    PUSHARG r4
    LDI r1, 0
    PUSHARG r1
    LDI r1, 0.5
    PUSHARG r1
    CALL insert
    PUSHARG r4
    CALL sort
    RET r0
"#;
    // Two distinct 40-level towers x = [x', x'], y = [y', y']: 2^40 element comparisons.
    let equals = r#"
.function tower registers 6
    LDI r1, 0
    LDI r4, 1
    PUSHARG r1
    CALL create_array
    MOV r2, r0
    LDI r3, 40
grow:
    PUSHARG r1
    CALL create_array
    MOV r5, r0
    PUSHARG r5
    PUSHARG r2
    PUSHARG r2
    CALL append
    MOV r2, r5
    SUB r3, r3, r4
    CMP r3, r1
    JMPGT grow
    RET r2

.function main registers 3
    CALL tower
    MOV r1, r0
    CALL tower
    MOV r2, r0
    PUSHARG r1
    PUSHARG r2
    CALL array_equals
    RET r0
"#;
    for src in [sort, equals] {
        // The fastest of three, like the baseline: one run can lose its CPU on a busy
        // machine, and the bound is about work done, not scheduling.
        let mut elapsed = std::time::Duration::MAX;
        for _ in 0..3 {
            let (t, result) = timed(src);
            assert_out_of_fuel(result);
            elapsed = elapsed.min(t);
        }
        assert!(
            elapsed < base * 50,
            "stopped after {elapsed:?}; a plain loop under the same limit: {base:?}"
        );
    }
}

#[test]
fn holes_of_a_sparse_array_are_work_too() {
    // One element written at 2^40: copying, slicing, searching or sorting it would read
    // 2^40 holes. Each is refused by the instruction limit before any work.
    for (name, extra) in [
        ("copy", ""),
        ("reverse", ""),
        ("sort", ""),
        ("count", "    PUSHARG r1\n"),
        ("contains", "    PUSHARG r1\n"),
        ("slice", "    PUSHARG r1\n    PUSHARG r4\n"),
    ] {
        let src = format!(
            ".function main registers 5\n    LDI r1, 0\n    PUSHARG r1\n    CALL create_array\n    MOV r2, r0\n    LDI r3, 1099511627776\n    LDI r4, ()\n    PUSHARG r2\n    PUSHARG r3\n    PUSHARG r1\n    CALL set_field\n    PUSHARG r2\n{extra}    CALL {name}\n    RET r0\n"
        );
        let (_, result) = timed(&src);
        assert_out_of_fuel(result);
    }
}

#[test]
fn small_builtin_work_costs_one_instruction() {
    let (mut vm, _) = vm_with(
        r#"
.function main registers 4
    LDI r1, 10
    LDI r2, 0
    LDI r3, -1
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL range
    MOV r1, r0
    PUSHARG r1
    CALL sort
    PUSHARG r1
    CALL len
    RET r0
"#,
    );
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(10));
    assert_eq!(vm.instructions_executed(), 13);
}

// ---------------------------------------------------------------------------------------------
// LocalStorage
// ---------------------------------------------------------------------------------------------

/// A fresh directory path under the system's temporary directory (not created), removed
/// when dropped.
struct TempStore(std::path::PathBuf);

impl TempStore {
    fn new(name: &str) -> TempStore {
        let dir = std::env::temp_dir().join(format!(
            "stoffel_stdlib_{name}_{}_{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempStore(dir)
    }

    /// The names of the files in the directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert!(e.file_type().unwrap().is_file(), "{:?}", e.path());
                e.file_name().into_string().unwrap()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vm_with_store(store: &TempStore) -> Vm {
    let mut vm = Vm::new();
    vm.set_local_storage(Some(store.0.clone()));
    vm
}

#[test]
fn local_storage_without_a_store_is_not_configured() {
    let mut vm = Vm::new();
    for (name, args) in [
        ("LocalStorage.store", vec![s("k"), Val::I64(1)]),
        ("LocalStorage.load", vec![s("k")]),
        ("LocalStorage.retrieve", vec![s("k")]),
        ("LocalStorage.delete", vec![s("k")]),
        ("LocalStorage.exists", vec![s("k")]),
    ] {
        fails(&mut vm, name, &args, "Local storage is not configured");
    }
    // The arity and the key are checked first.
    fails(
        &mut vm,
        "LocalStorage.store",
        &[s("k")],
        "expects 2 arguments: key and value",
    );
    fails(&mut vm, "LocalStorage.load", &[], "expects 1 argument: key");
    fails(
        &mut vm,
        "LocalStorage.exists",
        &[Val::I64(1)],
        "Expected byte array",
    );
    // Set, then cleared again.
    let store = TempStore::new("cleared");
    vm.set_local_storage(Some(store.0.clone()));
    assert_eq!(
        call(&mut vm, "LocalStorage.exists", &[s("k")]).unwrap(),
        Val::Bool(false)
    );
    vm.set_local_storage(None);
    fails(
        &mut vm,
        "LocalStorage.exists",
        &[s("k")],
        "Local storage is not configured",
    );
}

#[test]
fn local_storage_lifecycle() {
    let store = TempStore::new("lifecycle");
    let mut vm = vm_with_store(&store);
    let key = s("examples:local-storage:job-cursor");
    let t = Val::Bool(true);
    let f = Val::Bool(false);
    assert_eq!(
        call(&mut vm, "LocalStorage.exists", std::slice::from_ref(&key)).unwrap(),
        f
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.load", std::slice::from_ref(&key)).unwrap(),
        Val::Unit
    );
    assert_eq!(
        call(
            &mut vm,
            "LocalStorage.store",
            &[key.clone(), s("phase:ingested")]
        )
        .unwrap(),
        t
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.exists", std::slice::from_ref(&key)).unwrap(),
        t
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.load", std::slice::from_ref(&key)).unwrap(),
        s("phase:ingested")
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.retrieve", std::slice::from_ref(&key)).unwrap(),
        s("phase:ingested")
    );
    // Overwritten.
    call(&mut vm, "LocalStorage.store", &[key.clone(), Val::I64(3)]).unwrap();
    assert_eq!(
        call(&mut vm, "LocalStorage.load", std::slice::from_ref(&key)).unwrap(),
        Val::I64(3)
    );
    // Another VM on the same directory sees it (it persists).
    let mut other = vm_with_store(&store);
    assert_eq!(
        call(&mut other, "LocalStorage.load", std::slice::from_ref(&key)).unwrap(),
        Val::I64(3)
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.delete", std::slice::from_ref(&key)).unwrap(),
        t
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.delete", std::slice::from_ref(&key)).unwrap(),
        f
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.exists", std::slice::from_ref(&key)).unwrap(),
        f
    );
    assert_eq!(
        call(&mut vm, "LocalStorage.retrieve", &[key]).unwrap(),
        Val::Unit
    );
    assert_eq!(store.files(), Vec::<String>::new());
}

#[test]
fn local_storage_keeps_every_value_kind() {
    let store = TempStore::new("kinds");
    let mut vm = vm_with_store(&store);
    let nan = f64::from_bits(0x7ff8_0000_0000_0123);
    for v in [
        Val::Unit,
        Val::Bool(true),
        Val::I64(i64::MIN),
        Val::I32(-7),
        Val::I16(300),
        Val::I8(-1),
        Val::U8(255),
        Val::U16(65535),
        Val::U32(7),
        Val::U64(u64::MAX),
        Val::Float(-0.0),
        Val::Float(nan),
        s(""),
        s("héllo"),
    ] {
        call(&mut vm, "LocalStorage.store", &[s("v"), v.clone()]).unwrap();
        let back = call(&mut vm, "LocalStorage.load", &[s("v")]).unwrap();
        match (&v, &back) {
            // Bits exactly (NaN payload, the sign of zero).
            (Val::Float(a), Val::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            _ => assert_eq!(back, v),
        }
    }
    // Nested containers: an object holding an array with a hole, a string key and a
    // nested object.
    let inner = vm.create_object().unwrap();
    vm.set_field(&inner, &s("deep"), &Val::I32(5)).unwrap();
    let list = arr(&mut vm, &[Val::I64(1), Val::Unit, inner]);
    vm.set_field(&list, &s("tag"), &s("t")).unwrap();
    let o = vm.create_object().unwrap();
    vm.set_field(&o, &s("list"), &list).unwrap();
    vm.set_field(&o, &Val::I64(2), &Val::Bool(false)).unwrap();
    call(&mut vm, "LocalStorage.store", &[s("tree"), o.clone()]).unwrap();
    let back = call(&mut vm, "LocalStorage.load", &[s("tree")]).unwrap();
    assert!(matches!(back, Val::Object(_)));
    let list2 = vm.get_field(&back, &s("list")).unwrap();
    assert_eq!(vm.array_length(&list2).unwrap(), 3);
    assert_eq!(vm.get_field(&list2, &Val::I64(0)).unwrap(), Val::I64(1));
    assert_eq!(vm.get_field(&list2, &Val::I64(1)).unwrap(), Val::Unit);
    assert_eq!(vm.get_field(&list2, &s("tag")).unwrap(), s("t"));
    let inner2 = vm.get_field(&list2, &Val::I64(2)).unwrap();
    assert_eq!(vm.get_field(&inner2, &s("deep")).unwrap(), Val::I32(5));
    assert_eq!(vm.get_field(&back, &Val::I64(2)).unwrap(), Val::Bool(false));
    // A new copy, not the stored object.
    vm.set_field(&inner2, &s("deep"), &Val::I32(6)).unwrap();
    let inner1 = vm.get_field(&list, &Val::I64(2)).unwrap();
    assert_eq!(vm.get_field(&inner1, &s("deep")).unwrap(), Val::I32(5));
}

#[test]
fn local_storage_files_hold_the_originals_value_encoding() {
    let store = TempStore::new("format");
    let mut vm = vm_with_store(&store);
    call(&mut vm, "LocalStorage.store", &[s("answer"), Val::I64(42)]).unwrap();
    let a = arr(&mut vm, &[Val::U8(7), s("ab")]);
    call(&mut vm, "LocalStorage.store", &[s("list"), a]).unwrap();
    assert_eq!(store.files(), vec!["answer.stflval", "list.stflval"]);
    let mut expected = b"STFLVAL1".to_vec();
    expected.push(1);
    expected.extend_from_slice(&42i64.to_le_bytes());
    assert_eq!(
        std::fs::read(store.0.join("answer.stflval")).unwrap(),
        expected
    );
    // Array: tag 14, length, entry count, then key/value pairs.
    let mut expected = b"STFLVAL1".to_vec();
    expected.push(14);
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.push(1);
    expected.extend_from_slice(&0i64.to_le_bytes());
    expected.extend_from_slice(&[5, 7]);
    expected.push(1);
    expected.extend_from_slice(&1i64.to_le_bytes());
    expected.push(11);
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.extend_from_slice(b"ab");
    assert_eq!(
        std::fs::read(store.0.join("list.stflval")).unwrap(),
        expected
    );
    // A file written by someone else is read back (here: a U16 under key "x").
    let mut bytes = b"STFLVAL1".to_vec();
    bytes.push(6);
    bytes.extend_from_slice(&513u16.to_le_bytes());
    std::fs::write(store.0.join("x.stflval"), &bytes).unwrap();
    assert_eq!(
        call(&mut vm, "LocalStorage.load", &[s("x")]).unwrap(),
        Val::U16(513)
    );
}

#[test]
fn local_storage_keys_never_leave_the_directory() {
    let store = TempStore::new("keys");
    let outside = store.0.with_file_name(format!(
        "{}_outside",
        store.0.file_name().unwrap().to_str().unwrap()
    ));
    let mut vm = vm_with_store(&store);
    let keys = [
        "../escape",
        "/etc/passwd",
        "..",
        ".",
        "",
        "a/b",
        "A",
        "a",
        "%41",
        "C:\\x",
        "\u{0}nul",
    ];
    for (i, key) in keys.iter().enumerate() {
        call(&mut vm, "LocalStorage.store", &[s(key), Val::I64(i as i64)]).unwrap();
    }
    // Each key its own file, all inside the directory (`files` checks they are files).
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            call(&mut vm, "LocalStorage.load", &[s(key)]).unwrap(),
            Val::I64(i as i64),
            "{key:?}"
        );
    }
    let files = store.files();
    assert_eq!(files.len(), keys.len());
    assert!(
        files.contains(&"%2E.%2Fescape.stflval".to_owned()),
        "{files:?}"
    );
    assert!(files.contains(&"%41.stflval".to_owned()), "{files:?}");
    assert!(files.contains(&"%2541.stflval".to_owned()), "{files:?}");
    assert!(!outside.exists());
    assert!(!store.0.parent().unwrap().join("escape.stflval").exists());
    // A byte-array key is the same key as the string of its bytes.
    let bytes = byte_arr(&mut vm, b"a/b");
    assert_eq!(
        call(&mut vm, "LocalStorage.load", &[bytes]).unwrap(),
        Val::I64(5)
    );
    let bad = arr(&mut vm, &[Val::I64(1)]);
    fails(
        &mut vm,
        "LocalStorage.load",
        &[bad],
        "Expected U8 at index 0",
    );
    // A key too long for a file name.
    let long = "k".repeat(300);
    let m = message(
        call(&mut vm, "LocalStorage.store", &[s(&long), Val::I64(1)]),
        "LocalStorage.store",
    );
    assert!(
        m.starts_with("Local storage store value failed: the key is too long"),
        "{m}"
    );
}

#[test]
fn local_storage_refuses_what_it_cannot_store_or_read() {
    let store = TempStore::new("refusals");
    let mut vm = vm_with_store(&store);
    let a = arr(&mut vm, &ints(&[1]));
    vm.array_push(&a, &a).unwrap();
    let m = message(
        call(&mut vm, "LocalStorage.store", &[s("c"), a]),
        "LocalStorage.store",
    );
    assert!(
        m.starts_with(
            "Local storage store value failed: cannot persist cyclic array value with id "
        ),
        "{m}"
    );
    let closure = {
        let (mut v2, _) = vm_with(
            ".function g\n    RET r0\n.function mk registers 2\n    LDI r1, \"g\"\n    PUSHARG r1\n    CALL create_closure\n    RET r0\n",
        );
        v2.set_local_storage(Some(store.0.clone()));
        let c = v2.execute("mk", &[]).unwrap();
        fails(
            &mut v2,
            "LocalStorage.store",
            &[s("f"), c.clone()],
            "Local storage store value failed: cannot persist function values",
        );
        c
    };
    drop(closure);
    // Nothing was written for the failures.
    assert!(!store.0.join("c.stflval").exists());
    assert!(!store.0.join("f.stflval").exists());
    // Corrupt files are load errors.
    std::fs::create_dir_all(&store.0).unwrap();
    for (bytes, expected) in [
        (
            b"NOTMAGIC".to_vec(),
            "invalid persistent value data: unknown persistent value format",
        ),
        (
            b"STFLVAL1\x01\x02".to_vec(),
            "invalid persistent value data: expected 8 bytes at offset 9, but input ended",
        ),
        (
            b"STFLVAL1\x00\x00".to_vec(),
            "persistent value contains trailing bytes",
        ),
        (
            b"STFLVAL1\x0a\x02".to_vec(),
            "invalid persistent value data: invalid boolean byte 2",
        ),
        (
            b"STFLVAL1\x63".to_vec(),
            "invalid persistent value data: unknown value tag 99",
        ),
        (
            b"STFLVAL1\x0c".to_vec(),
            "cannot persist or load share values without MPC persistence context",
        ),
        (
            [b"STFLVAL1\x0d".as_slice(), &u64::MAX.to_le_bytes()].concat(),
            "object entry count 18446744073709551615 exceeds supported limit 65536",
        ),
    ] {
        std::fs::write(store.0.join("bad.stflval"), &bytes).unwrap();
        fails(
            &mut vm,
            "LocalStorage.load",
            &[s("bad")],
            &format!("Local storage load value failed: {expected}"),
        );
    }
    // Deep nesting is refused, not a stack overflow.
    let mut deep = b"STFLVAL1".to_vec();
    for _ in 0..100_000 {
        deep.push(14);
        deep.extend_from_slice(&1u64.to_le_bytes());
        deep.extend_from_slice(&1u64.to_le_bytes());
        deep.push(0);
    }
    std::fs::write(store.0.join("bad.stflval"), &deep).unwrap();
    let m = message(
        call(&mut vm, "LocalStorage.load", &[s("bad")]),
        "LocalStorage.load",
    );
    assert!(m.contains("nested deeper than 256 levels"), "{m}");
}

#[test]
fn local_storage_from_bytecode_matches_the_originals_example() {
    // The monorepo's examples/local_storage program, by hand: 20 + 1 + 100 + 1000.
    let store = TempStore::new("example");
    let src = r#"
.function main registers 4
    LDI r1, "examples:local-storage:job-cursor"
    LDI r2, 0
    PUSHARG r1
    CALL LocalStorage.exists
    LDI r3, true
    CMP r0, r3
    JMPEQ resume
    PUSHARG r1
    LDI r3, "phase:ingested"
    PUSHARG r3
    CALL LocalStorage.store
    LDI r3, 20
    ADD r2, r2, r3
    JMP after
resume:
    PUSHARG r1
    CALL LocalStorage.load
    LDI r3, 10
    ADD r2, r2, r3
after:
    PUSHARG r1
    CALL LocalStorage.retrieve
    PUSHARG r1
    CALL LocalStorage.exists
    LDI r3, true
    CMP r0, r3
    JMPNEQ deleted
    LDI r3, 1
    ADD r2, r2, r3
deleted:
    PUSHARG r1
    CALL LocalStorage.delete
    LDI r3, 100
    ADD r2, r2, r3
    PUSHARG r1
    CALL LocalStorage.exists
    LDI r3, false
    CMP r0, r3
    JMPNEQ done
    LDI r3, 1000
    ADD r2, r2, r3
done:
    RET r2
"#;
    let (mut vm, _) = vm_with(src);
    vm.set_local_storage(Some(store.0.clone()));
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(1121));
    let (mut unconfigured, _) = vm_with(src);
    let e = runtime_error(unconfigured.execute("main", &[]));
    assert_eq!(
        e.to_string(),
        "runtime error in function 'main' at instruction 3: LocalStorage.exists: Local storage is not configured"
    );
}

#[test]
fn c_api_sets_and_clears_the_local_store() {
    let out = common::build_and_run_c("local_storage");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "local_storage exited with {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("local_storage: all "), "{stdout}");
}
