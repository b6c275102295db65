//! Every builtin, on its happy paths and each of its error paths, through the public API.
//! Expected values come from the VM's binding semantics (vm-behaviour) and
//! the original StoffelVM's rules (reference semantics) §4-§5.

mod common;

use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::{Output, RuntimeErrorKind, Val, Vm, VmError};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

use common::{assert_error, run, runtime_error, vm_with};

/// Runs `main` of `src`, which must succeed; returns what it printed.
fn printed(src: &str) -> String {
    let (result, out) = run(src);
    if let Err(e) = result {
        panic!("unexpected error: {e}\n{src}");
    }
    out
}

/// Asserts that builtin `builtin` rejected its arguments, in `function` at `instruction`.
#[track_caller]
fn assert_builtin_error(
    result: Result<Val, VmError>,
    function: &str,
    instruction: usize,
    builtin: &str,
) {
    let e = runtime_error(result);
    assert_eq!(
        (e.function.as_str(), e.instruction),
        (function, instruction),
        "error was: {e}"
    );
    match &e.kind {
        RuntimeErrorKind::Builtin {
            builtin: b,
            message,
        } => {
            assert_eq!(*b, builtin, "error was: {e}");
            assert!(!message.is_empty());
        }
        other => panic!("expected a {builtin} error, got {other:?}"),
    }
}

/// A program whose `f(a)` calls builtin `name` with its parameter and returns the result.
fn call1(name: &str) -> String {
    format!(".function f(a)\n    PUSHARG r0\n    CALL {name}\n    RET r0\n")
}

/// A program whose `f(a, b)` calls builtin `name` with both parameters.
fn call2(name: &str) -> String {
    format!(".function f(a, b)\n    PUSHARG r0\n    PUSHARG r1\n    CALL {name}\n    RET r0\n")
}

/// A program whose `f(a, b, c)` calls builtin `name` with all three parameters.
fn call3(name: &str) -> String {
    format!(
        ".function f(a, b, c)\n    PUSHARG r0\n    PUSHARG r1\n    PUSHARG r2\n    CALL {name}\n    RET r0\n"
    )
}

/// Prints `args` with one `print` call.
fn print_vals(args: &[Val]) -> String {
    let params: Vec<String> = (0..args.len()).map(|i| format!("p{i}")).collect();
    let pushes: String = (0..args.len())
        .map(|i| format!("    PUSHARG r{i}\n"))
        .collect();
    let src = if args.is_empty() {
        ".function f\n    CALL print\n    RET r0\n".to_owned()
    } else {
        format!(
            ".function f({})\n{pushes}    CALL print\n    RET r0\n",
            params.join(", ")
        )
    };
    let (mut vm, out) = vm_with(&src);
    assert_eq!(vm.execute("f", args), Ok(Val::Unit), "print returns ()");
    out.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// print
// ---------------------------------------------------------------------------------------------

#[test]
fn print_without_arguments_prints_an_empty_line() {
    assert_eq!(print_vals(&[]), "\n");
}

#[test]
fn print_joins_arguments_with_one_space() {
    assert_eq!(
        print_vals(&[Val::from("a"), Val::I64(1), Val::I32(2), Val::Bool(true)]),
        "a 1 2i32 true\n"
    );
    assert_eq!(print_vals(&[Val::from(""), Val::from("")]), " \n");
    assert_eq!(print_vals(&[Val::Unit, Val::Unit, Val::Unit]), "() () ()\n");
}

#[test]
fn print_writes_strings_raw() {
    assert_eq!(print_vals(&[Val::from("Hello, world!")]), "Hello, world!\n");
    assert_eq!(
        print_vals(&[Val::from("say \"hi\"\tback\nnext")]),
        "say \"hi\"\tback\nnext\n"
    );
    assert_eq!(print_vals(&[Val::from("héllo ✓")]), "héllo ✓\n");
}

#[test]
fn print_integer_formats() {
    let cases = [
        (Val::I64(42), "42"),
        (Val::I64(-7), "-7"),
        (Val::I64(i64::MIN), "-9223372036854775808"),
        (Val::I32(42), "42i32"),
        (Val::I32(-42), "-42i32"),
        (Val::I16(42), "42i16"),
        (Val::I8(-128), "-128i8"),
        (Val::U8(42), "42u8"),
        (Val::U16(42), "42u16"),
        (Val::U32(42), "42u32"),
        (Val::U64(u64::MAX), "18446744073709551615u64"),
        (Val::Bool(true), "true"),
        (Val::Bool(false), "false"),
        (Val::Unit, "()"),
    ];
    for (v, text) in cases {
        assert_eq!(
            print_vals(std::slice::from_ref(&v)),
            format!("{text}\n"),
            "{v:?}"
        );
    }
}

#[test]
fn print_float_formats() {
    let hundred_digits = format!("1{}f64", "0".repeat(300));
    let cases: Vec<(f64, &str)> = vec![
        (1.5, "1.5f64"),
        (2.0, "2f64"),
        (-2.0, "-2f64"),
        (0.0, "0f64"),
        (-0.0, "-0f64"),
        (0.1, "0.1f64"),
        (1e-7, "0.0000001f64"),
        (1e300, hundred_digits.as_str()),
        (f64::NAN, "NaNf64"),
        (f64::INFINITY, "inff64"),
        (f64::NEG_INFINITY, "-inff64"),
    ];
    for (x, text) in cases {
        assert_eq!(print_vals(&[Val::Float(x)]), format!("{text}\n"), "{x}");
    }
    // The same through LDI constants.
    assert_eq!(
        printed(
            "
.function main
    LDI r1, 2.0
    LDI r2, 1.5
    LDI r3, -0.0
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL print
"
        ),
        "2f64 1.5f64 -0f64\n"
    );
}

#[test]
fn print_objects_and_arrays_by_id_counting_from_one() {
    let out = printed(
        "
.function main
    CALL create_object
    MOV r1, r0
    CALL create_array
    MOV r2, r0
    CALL create_object
    MOV r3, r0
    LDI r4, 10
    PUSHARG r4
    CALL create_array
    MOV r4, r0
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    PUSHARG r4
    CALL print
    PUSHARG r2
    PUSHARG r2
    CALL array_push
    PUSHARG r2
    CALL print
",
    );
    // Containers print their contents (the current StoffelVM's format); the ids show in a
    // cycle (these were `Object(1) Array(2) …` before).
    assert_eq!(out, "{} [] {} []\n[Array(2) <cycle>]\n");
}

#[test]
fn heap_ids_are_per_vm_and_shared_with_the_rust_api() {
    // An array holding itself prints its id (the cycle marker).
    let src = "
.function f(a)
    CALL create_array
    MOV r1, r0
    PUSHARG r1
    PUSHARG r1
    CALL array_push
    PUSHARG r1
    CALL print
";
    let (mut vm, out) = vm_with(src);
    let o = vm.create_object().unwrap();
    vm.set_field(&o, &Val::from("me"), &o).unwrap();
    assert_eq!(vm.display(&o).unwrap(), "{me: Object(1) <cycle>}");
    vm.execute("f", &[Val::Unit]).unwrap();
    let a = vm.create_array().unwrap();
    vm.array_push(&a, &a).unwrap();
    assert_eq!(vm.display(&a).unwrap(), "[Array(3) <cycle>]");
    assert_eq!(out.lock().unwrap().as_str(), "[Array(2) <cycle>]\n");
    // A new VM counts from 1 again.
    let (mut vm2, out2) = vm_with(src);
    vm2.execute("f", &[Val::Unit]).unwrap();
    assert_eq!(out2.lock().unwrap().as_str(), "[Array(1) <cycle>]\n");
}

#[test]
fn print_foreign_objects_with_their_own_counter() {
    let (mut vm, out) = vm_with(&call1("print"));
    vm.create_object().unwrap();
    vm.create_array().unwrap();
    let f1 = vm.create_foreign(Box::new(5u32)).unwrap();
    let f2 = vm.create_foreign(Box::new("x")).unwrap();
    vm.execute("f", &[f1]).unwrap();
    vm.execute("f", &[f2]).unwrap();
    assert_eq!(out.lock().unwrap().as_str(), "Foreign(1)\nForeign(2)\n");
}

// Containers show their contents, nested strings raw (the current StoffelVM; this printed
// `Object(1) Alice` before).
#[test]
fn print_shows_container_contents_with_nested_strings_raw() {
    let out = printed(
        "
.function main
    CALL create_object
    MOV r1, r0
    LDI r2, \"name\"
    LDI r3, \"Alice\"
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL set_field
    PUSHARG r1
    PUSHARG r3
    CALL print
",
    );
    assert_eq!(out, "{name: Alice} Alice\n");
}

#[test]
fn strings_are_quoted_only_in_debug_contexts() {
    // CMP errors use the debug format: strings quoted, no escaping.
    let (mut vm, out) = vm_with(
        "
.function f(a, b)
    MOV r2, r0
    PUSHARG r0
    PUSHARG r1
    CALL print
    CMP r2, r1
    RET r0
",
    );
    let e = runtime_error(vm.execute("f", &[Val::from("a\"b"), Val::I64(1)]));
    assert_eq!(out.lock().unwrap().as_str(), "a\"b 1\n");
    assert_eq!(
        (e.function.as_str(), e.instruction, e.kind),
        (
            "f",
            4,
            RuntimeErrorKind::Compare {
                left: "\"a\"b\"".into(),
                right: "1".into()
            }
        )
    );
    assert_eq!(vm.display(&Val::from("raw")).unwrap(), "raw");
}

#[test]
fn print_returns_unit_in_r0() {
    let (result, out) = run("
.function main
    LDI r0, 5
    PUSHARG r0
    CALL print
    RET r0
");
    assert_eq!(result, Ok(Val::Unit));
    assert_eq!(out, "5\n");
}

#[test]
fn print_called_directly_from_the_host() {
    let (mut vm, out) = vm_with("");
    assert_eq!(
        vm.execute("print", &[Val::from("x"), Val::U8(1)]),
        Ok(Val::Unit)
    );
    assert_eq!(out.lock().unwrap().as_str(), "x 1u8\n");
}

#[test]
fn print_to_a_writer_and_a_failing_writer() {
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut vm = Vm::new();
    vm.load_assembly(&call1("print")).unwrap();
    let buf = Arc::new(Mutex::new(Vec::new()));
    vm.set_output(Output::Writer(Box::new(Shared(buf.clone()))));
    vm.execute("f", &[Val::I64(3)]).unwrap();
    assert_eq!(buf.lock().unwrap().as_slice(), b"3\n");
    vm.set_output(Output::Writer(Box::new(Broken)));
    let e = runtime_error(vm.execute("f", &[Val::I64(3)]));
    assert_eq!((e.function.as_str(), e.instruction), ("f", 1));
    assert!(matches!(e.kind, RuntimeErrorKind::Output(_)), "{e}");
}

// ---------------------------------------------------------------------------------------------
// type
// ---------------------------------------------------------------------------------------------

#[test]
fn type_names_every_kind_and_prints_nothing() {
    let (mut vm, out) = vm_with(&call1("type"));
    let cases = [
        (Val::I64(1), "int64"),
        (Val::I32(1), "int32"),
        (Val::I16(1), "int16"),
        (Val::I8(1), "int8"),
        (Val::U8(1), "uint8"),
        (Val::U16(1), "uint16"),
        (Val::U32(1), "uint32"),
        (Val::U64(1), "uint64"),
        (Val::Float(1.0), "float"),
        (Val::Bool(false), "boolean"),
        (Val::from("s"), "string"),
        (Val::Unit, "nil"),
    ];
    for (v, name) in cases {
        assert_eq!(
            vm.execute("f", std::slice::from_ref(&v)),
            Ok(Val::from(name)),
            "{v:?}"
        );
    }
    let o = vm.create_object().unwrap();
    assert_eq!(vm.execute("f", &[o]), Ok(Val::from("object")));
    let a = vm.create_array().unwrap();
    assert_eq!(vm.execute("f", &[a]), Ok(Val::from("array")));
    let fo = vm.create_foreign(Box::new(1u8)).unwrap();
    assert_eq!(vm.execute("f", &[fo]), Ok(Val::from("cffi_function")));
    vm.load_assembly(
        ".function mk\n    LDI r1, \"f\"\n    PUSHARG r1\n    CALL create_closure\n    RET r0\n",
    )
    .unwrap();
    let c = vm.execute("mk", &[]).unwrap();
    assert!(matches!(c, Val::Closure(_)));
    assert_eq!(vm.execute("f", &[c]), Ok(Val::from("function")));
    assert_eq!(out.lock().unwrap().as_str(), "");
}

#[test]
fn type_with_the_wrong_argument_count_is_an_error_and_prints_nothing() {
    let (result, out) = run("
.function main
    CALL type
    RET r0
");
    assert_builtin_error(result, "main", 0, "type");
    assert_eq!(out, "");
    let (result, out) = run("
.function main
    LDI r1, 1
    PUSHARG r1
    PUSHARG r1
    CALL type
    RET r0
");
    assert_builtin_error(result, "main", 3, "type");
    assert_eq!(out, "");
    let (mut vm, _) = vm_with("");
    assert_builtin_error(vm.execute("type", &[]), "type", 0, "type");
    assert_eq!(vm.execute("type", &[Val::I8(0)]), Ok(Val::from("int8")));
}

// ---------------------------------------------------------------------------------------------
// create_object / create_array
// ---------------------------------------------------------------------------------------------

#[test]
fn create_object_returns_a_new_empty_object_and_ignores_arguments() {
    let (mut vm, out) = vm_with(
        "
.function main
    LDI r1, 5
    PUSHARG r1
    PUSHARG r1
    CALL create_object
    MOV r2, r0
    CALL create_object
    PUSHARG r2
    PUSHARG r0
    CALL print
    RET r2
",
    );
    let o = vm.execute("main", &[]).unwrap();
    assert!(matches!(o, Val::Object(_)));
    assert_eq!(out.lock().unwrap().as_str(), "{} {}\n");
    assert_eq!(vm.get_field(&o, &Val::from("x")), Ok(Val::Unit));
    assert_eq!(vm.get_field(&o, &Val::I64(0)), Ok(Val::Unit));
}

#[test]
fn create_array_with_and_without_a_capacity_hint() {
    let (mut vm, _) = vm_with(
        "
.function plain
    CALL create_array
    RET r0
.function hinted(n)
    PUSHARG r0
    CALL create_array
    RET r0
",
    );
    let a = vm.execute("plain", &[]).unwrap();
    assert!(matches!(a, Val::Array(_)));
    assert_eq!(vm.array_length(&a), Ok(0));
    for hint in [Val::I64(0), Val::I64(10), Val::I64(100_000)] {
        let a = vm.execute("hinted", &[hint]).unwrap();
        assert!(matches!(a, Val::Array(_)));
        // A hint is capacity, not length: index 0 is out of range (an error since the
        // current StoffelVM; it read Unit before).
        assert_eq!(vm.array_length(&a), Ok(0));
        assert!(vm.get_field(&a, &Val::I64(0)).is_err());
    }
}

// The capacity may be any non-negative integer; anything else is an error (the current
// StoffelVM; a non-I64 hint was ignored before).
#[test]
fn create_array_takes_a_capacity_of_any_integer_kind() {
    let (mut vm, _) = vm_with(&call1("create_array"));
    for hint in [Val::I32(5), Val::U8(3), Val::U64(u64::MAX), Val::I8(0)] {
        let a = vm.execute("f", std::slice::from_ref(&hint)).unwrap();
        assert!(matches!(a, Val::Array(_)), "{hint:?}");
        assert_eq!(vm.array_length(&a), Ok(0));
    }
    for hint in [
        Val::from("x"),
        Val::I32(-5),
        Val::Float(1.0),
        Val::Unit,
        Val::Bool(true),
    ] {
        assert_builtin_error(
            vm.execute("f", std::slice::from_ref(&hint)),
            "f",
            1,
            "create_array",
        );
    }
}

#[test]
fn create_array_with_a_negative_capacity_is_an_error() {
    let (mut vm, _) = vm_with(&call1("create_array"));
    assert_builtin_error(vm.execute("f", &[Val::I64(-1)]), "f", 1, "create_array");
    assert_builtin_error(
        vm.execute("f", &[Val::I64(i64::MIN)]),
        "f",
        1,
        "create_array",
    );
    // Still usable.
    assert!(matches!(vm.execute("f", &[Val::I64(1)]), Ok(Val::Array(_))));
}

#[test]
fn create_array_with_a_huge_hint_does_not_allocate_it() {
    let (mut vm, _) = vm_with(&call1("create_array"));
    let a = vm.execute("f", &[Val::I64(i64::MAX)]).unwrap();
    assert_eq!(vm.array_length(&a), Ok(0));
    assert!(vm.gc_stats().heap_bytes < 16 << 20, "{:?}", vm.gc_stats());
}

// ---------------------------------------------------------------------------------------------
// get_field / set_field on objects
// ---------------------------------------------------------------------------------------------

const FIELDS: &str = "
.function get(o, k)
    PUSHARG r0
    PUSHARG r1
    CALL get_field
    RET r0
.function set(o, k, v)
    PUSHARG r0
    PUSHARG r1
    PUSHARG r2
    CALL set_field
    RET r0
";

#[test]
fn object_fields_set_get_and_overwrite() {
    let (mut vm, _) = vm_with(FIELDS);
    let o = vm.create_object().unwrap();
    let k = Val::from("name");
    assert_eq!(vm.execute("get", &[o.clone(), k.clone()]), Ok(Val::Unit));
    // set_field returns Unit.
    assert_eq!(
        vm.execute("set", &[o.clone(), k.clone(), Val::from("Alice")]),
        Ok(Val::Unit)
    );
    assert_eq!(
        vm.execute("get", &[o.clone(), k.clone()]),
        Ok(Val::from("Alice"))
    );
    vm.execute("set", &[o.clone(), k.clone(), Val::I32(3)])
        .unwrap();
    assert_eq!(vm.execute("get", &[o.clone(), k]), Ok(Val::I32(3)));
    // Another object is separate.
    let o2 = vm.create_object().unwrap();
    assert_eq!(vm.execute("get", &[o2, Val::from("name")]), Ok(Val::Unit));
}

#[test]
fn object_keys_may_be_any_value_and_kinds_are_distinct() {
    let (mut vm, _) = vm_with(FIELDS);
    let o = vm.create_object().unwrap();
    let k1 = vm.create_object().unwrap();
    let k2 = vm.create_object().unwrap();
    let arr = vm.create_array().unwrap();
    let keys = vec![
        Val::I64(1),
        Val::I32(1),
        Val::I16(1),
        Val::I8(1),
        Val::U8(1),
        Val::U16(1),
        Val::U32(1),
        Val::U64(1),
        Val::from("1"),
        Val::Float(1.0),
        Val::Bool(true),
        Val::Unit,
        k1.clone(),
        k2.clone(),
        arr.clone(),
    ];
    for (i, k) in keys.iter().enumerate() {
        vm.set_field(&o, k, &Val::I64(i as i64 * 10)).unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            vm.execute("get", &[o.clone(), k.clone()]),
            Ok(Val::I64(i as i64 * 10)),
            "{k:?}"
        );
    }
    // Missing keys of every kind read Unit.
    for k in [
        Val::I64(2),
        Val::I32(2),
        Val::from("2"),
        Val::Bool(false),
        Val::Float(2.0),
    ] {
        assert_eq!(
            vm.execute("get", &[o.clone(), k.clone()]),
            Ok(Val::Unit),
            "{k:?}"
        );
    }
    // Heap keys are by identity, strings by content.
    let k3 = vm.create_object().unwrap();
    assert_eq!(vm.execute("get", &[o.clone(), k3]), Ok(Val::Unit));
    assert_eq!(
        vm.execute("get", &[o.clone(), Val::String("1".to_owned())]),
        Ok(Val::I64(80))
    );
}

#[test]
fn float_keys_nan_equals_nan_and_negative_zero_equals_zero() {
    let (mut vm, _) = vm_with(FIELDS);
    let o = vm.create_object().unwrap();
    vm.execute("set", &[o.clone(), Val::Float(f64::NAN), Val::from("nan")])
        .unwrap();
    for nan in [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::from_bits(0x7ff0_0000_0000_0001),
    ] {
        assert_eq!(
            vm.execute("get", &[o.clone(), Val::Float(nan)]),
            Ok(Val::from("nan"))
        );
    }
    vm.execute("set", &[o.clone(), Val::Float(-0.0), Val::from("zero")])
        .unwrap();
    assert_eq!(
        vm.execute("get", &[o.clone(), Val::Float(0.0)]),
        Ok(Val::from("zero"))
    );
    vm.execute("set", &[o.clone(), Val::Float(0.0), Val::from("zero2")])
        .unwrap();
    assert_eq!(
        vm.execute("get", &[o.clone(), Val::Float(-0.0)]),
        Ok(Val::from("zero2"))
    );
    // Float 0.0 is not I64 0.
    assert_eq!(vm.execute("get", &[o.clone(), Val::I64(0)]), Ok(Val::Unit));
}

#[test]
fn get_field_with_fewer_than_two_arguments_is_an_error() {
    let (result, _) = run("
.function main
    CALL create_object
    PUSHARG r0
    CALL get_field
    RET r0
");
    assert_builtin_error(result, "main", 2, "get_field");
    let (result, _) = run("
.function main
    CALL get_field
    RET r0
");
    assert_builtin_error(result, "main", 0, "get_field");
}

#[test]
fn get_field_ignores_extra_arguments() {
    let (mut vm, _) = vm_with(&call3("get_field"));
    let o = vm.create_object().unwrap();
    vm.set_field(&o, &Val::from("k"), &Val::I64(9)).unwrap();
    assert_eq!(
        vm.execute("f", &[o, Val::from("k"), Val::from("extra")]),
        Ok(Val::I64(9))
    );
}

// Strings are indexable now (the current StoffelVM); other non-containers still read Unit.
#[test]
fn get_field_on_a_non_container_is_unit() {
    let (mut vm, _) = vm_with(FIELDS);
    for target in [Val::I64(5), Val::Unit, Val::Bool(true), Val::Float(1.0)] {
        assert_eq!(
            vm.execute("get", &[target.clone(), Val::I64(0)]),
            Ok(Val::Unit),
            "{target:?}"
        );
    }
    let fo = vm.create_foreign(Box::new(())).unwrap();
    assert_eq!(vm.execute("get", &[fo, Val::I64(0)]), Ok(Val::Unit));
}

#[test]
fn set_field_with_fewer_than_three_arguments_is_an_error() {
    let (mut vm, _) = vm_with(&call2("set_field"));
    let o = vm.create_object().unwrap();
    assert_builtin_error(
        vm.execute("f", &[o.clone(), Val::from("k")]),
        "f",
        2,
        "set_field",
    );
    // Nothing was written.
    assert_eq!(vm.get_field(&o, &Val::from("k")), Ok(Val::Unit));
    let (result, _) = run("
.function main
    CALL set_field
    RET r0
");
    assert_builtin_error(result, "main", 0, "set_field");
}

#[test]
fn set_field_ignores_extra_arguments() {
    let (mut vm, _) = vm_with(
        "
.function f(o)
    LDI r1, \"k\"
    LDI r2, 1
    LDI r3, 2
    PUSHARG r0
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL set_field
    RET r0
",
    );
    let o = vm.create_object().unwrap();
    assert_eq!(vm.execute("f", std::slice::from_ref(&o)), Ok(Val::Unit));
    assert_eq!(vm.get_field(&o, &Val::from("k")), Ok(Val::I64(1)));
}

#[test]
fn set_field_on_a_non_container_is_an_error() {
    let (mut vm, _) = vm_with(FIELDS);
    for target in [Val::I64(5), Val::from("str"), Val::Unit] {
        assert_builtin_error(
            vm.execute("set", &[target, Val::I64(0), Val::I64(1)]),
            "set",
            3,
            "set_field",
        );
    }
    let fo = vm.create_foreign(Box::new(())).unwrap();
    assert_builtin_error(
        vm.execute("set", &[fo, Val::I64(0), Val::I64(1)]),
        "set",
        3,
        "set_field",
    );
}

// ---------------------------------------------------------------------------------------------
// Arrays through get_field / set_field
// ---------------------------------------------------------------------------------------------

#[test]
fn array_indices_set_the_length_and_holes_read_unit() {
    let (mut vm, _) = vm_with(FIELDS);
    let a = vm.create_array().unwrap();
    vm.execute("set", &[a.clone(), Val::I64(0), Val::from("a")])
        .unwrap();
    assert_eq!(vm.array_length(&a), Ok(1));
    vm.execute("set", &[a.clone(), Val::I64(5), Val::from("f")])
        .unwrap();
    assert_eq!(vm.array_length(&a), Ok(6));
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(0)]),
        Ok(Val::from("a"))
    );
    for hole in 1..5 {
        assert_eq!(
            vm.execute("get", &[a.clone(), Val::I64(hole)]),
            Ok(Val::Unit)
        );
    }
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(5)]),
        Ok(Val::from("f"))
    );
    // Beyond the length: an error (the current StoffelVM; it read Unit before).
    assert_builtin_error(
        vm.execute("get", &[a.clone(), Val::I64(6)]),
        "get",
        2,
        "get_field",
    );
    assert_builtin_error(
        vm.execute("get", &[a.clone(), Val::I64(1000)]),
        "get",
        2,
        "get_field",
    );
    // Writing a lower index never shrinks the length.
    vm.execute("set", &[a.clone(), Val::I64(2), Val::from("c")])
        .unwrap();
    assert_eq!(vm.array_length(&a), Ok(6));
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(2)]),
        Ok(Val::from("c"))
    );
    // Overwrite.
    vm.execute("set", &[a.clone(), Val::I64(5), Val::from("F")])
        .unwrap();
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(5)]),
        Ok(Val::from("F"))
    );
    assert_eq!(vm.array_length(&a), Ok(6));
}

#[test]
fn array_non_index_keys_go_to_a_side_map() {
    let (mut vm, _) = vm_with(FIELDS);
    let a = vm.create_array().unwrap();
    vm.execute("set", &[a.clone(), Val::I64(1), Val::from("index")])
        .unwrap();
    let side = [
        Val::from("x"),
        Val::from("1"),
        Val::I32(1),
        Val::I32(7),
        Val::U64(1),
        Val::Float(1.0),
        Val::Bool(true),
        Val::Unit,
    ];
    for (i, k) in side.iter().enumerate() {
        vm.execute("set", &[a.clone(), k.clone(), Val::I64(100 + i as i64)])
            .unwrap();
        assert_eq!(vm.array_length(&a), Ok(2), "{k:?} changed the length");
    }
    for (i, k) in side.iter().enumerate() {
        assert_eq!(
            vm.execute("get", &[a.clone(), k.clone()]),
            Ok(Val::I64(100 + i as i64)),
            "{k:?}"
        );
    }
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(1)]),
        Ok(Val::from("index"))
    );
    // A hole below the length reads Unit; an unwritten index of another integer kind is
    // out of range, as the current StoffelVM (both read Unit before).
    assert_eq!(vm.execute("get", &[a.clone(), Val::I64(0)]), Ok(Val::Unit));
    assert_builtin_error(
        vm.execute("get", &[a.clone(), Val::I32(0)]),
        "get",
        2,
        "get_field",
    );
    // Negative indices count from the end (they were side-map keys before).
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(-1)]),
        Ok(Val::from("index"))
    );
}

#[test]
fn a_huge_array_index_does_not_allocate() {
    let (mut vm, _) = vm_with(FIELDS);
    let a = vm.create_array().unwrap();
    let before = vm.gc_stats().heap_bytes;
    let huge = 1_000_000_000_000i64;
    vm.execute("set", &[a.clone(), Val::I64(huge), Val::from("far")])
        .unwrap();
    let after = vm.gc_stats().heap_bytes;
    assert!(
        after - before < 64 * 1024,
        "heap grew from {before} to {after} bytes"
    );
    assert_eq!(vm.array_length(&a), Ok(huge + 1));
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(huge)]),
        Ok(Val::from("far"))
    );
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(huge - 1)]),
        Ok(Val::Unit)
    );
    assert_eq!(vm.execute("get", &[a.clone(), Val::I64(0)]), Ok(Val::Unit));
    // Small indices still work and do not change the length.
    vm.execute("set", &[a.clone(), Val::I64(0), Val::from("near")])
        .unwrap();
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(0)]),
        Ok(Val::from("near"))
    );
    assert_eq!(vm.array_length(&a), Ok(huge + 1));
    // A push goes after the far element.
    assert_eq!(vm.array_push(&a, &Val::from("next")), Ok(huge + 2));
    assert_eq!(
        vm.execute("get", &[a.clone(), Val::I64(huge + 1)]),
        Ok(Val::from("next"))
    );
    assert!(vm.gc_stats().heap_bytes - before < 64 * 1024);
}

#[test]
fn far_elements_stay_readable_when_the_array_fills_up_to_them() {
    let (mut vm, _) = vm_with(FIELDS);
    let a = vm.create_array().unwrap();
    vm.set_field(&a, &Val::I64(100), &Val::from("hundred"))
        .unwrap();
    vm.set_field(&a, &Val::I64(300), &Val::from("three hundred"))
        .unwrap();
    for i in 0..100 {
        vm.set_field(&a, &Val::I64(i), &Val::I64(i)).unwrap();
    }
    assert_eq!(vm.get_field(&a, &Val::I64(100)), Ok(Val::from("hundred")));
    vm.set_field(&a, &Val::I64(100), &Val::from("hundred!"))
        .unwrap();
    assert_eq!(vm.get_field(&a, &Val::I64(100)), Ok(Val::from("hundred!")));
    vm.set_field(&a, &Val::I64(101), &Val::Unit).unwrap();
    assert_eq!(vm.get_field(&a, &Val::I64(100)), Ok(Val::from("hundred!")));
    vm.set_field(&a, &Val::I64(100), &Val::from("hundred"))
        .unwrap();
    vm.set_field(&a, &Val::I64(250), &Val::from("x")).unwrap();
    assert_eq!(vm.array_length(&a), Ok(301));
    for i in 0..100 {
        assert_eq!(vm.get_field(&a, &Val::I64(i)), Ok(Val::I64(i)));
    }
    assert_eq!(vm.get_field(&a, &Val::I64(100)), Ok(Val::from("hundred")));
    assert_eq!(vm.get_field(&a, &Val::I64(101)), Ok(Val::Unit));
    assert_eq!(vm.get_field(&a, &Val::I64(250)), Ok(Val::from("x")));
    assert_eq!(
        vm.get_field(&a, &Val::I64(300)),
        Ok(Val::from("three hundred"))
    );
    vm.set_field(&a, &Val::I64(100), &Val::from("changed"))
        .unwrap();
    assert_eq!(vm.get_field(&a, &Val::I64(100)), Ok(Val::from("changed")));
    assert_eq!(vm.array_length(&a), Ok(301));
}

#[test]
fn array_length_at_the_top_of_i64_wraps_as_the_reference() {
    let (mut vm, _) = vm_with(FIELDS);
    let a = vm.create_array().unwrap();
    vm.set_field(&a, &Val::I64(i64::MAX), &Val::I64(1)).unwrap();
    assert_eq!(vm.array_length(&a), Ok(i64::MIN));
    assert_eq!(vm.get_field(&a, &Val::I64(i64::MAX)), Ok(Val::I64(1)));
    // No index is left to push to.
    let e = runtime_error(vm.array_push(&a, &Val::I64(2)).map(Val::I64));
    assert!(
        matches!(
            e.kind,
            RuntimeErrorKind::Builtin {
                builtin: "array_push",
                ..
            }
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// array_length / array_push
// ---------------------------------------------------------------------------------------------

#[test]
fn array_length_of_a_non_array_is_an_error() {
    let (mut vm, _) = vm_with(&call1("array_length"));
    let o = vm.create_object().unwrap();
    for v in [o, Val::I64(3), Val::Unit] {
        assert_builtin_error(vm.execute("f", &[v]), "f", 1, "array_length");
    }
    // A string gives its character count (the current StoffelVM; an error before).
    assert_eq!(vm.execute("f", &[Val::from("héllo")]), Ok(Val::I64(5)));
    let (result, _) = run("
.function main
    CALL array_length
    RET r0
");
    assert_builtin_error(result, "main", 0, "array_length");
}

#[test]
fn array_push_appends_every_value_and_returns_the_new_length() {
    let (mut vm, out) = vm_with(
        "
.function main
    CALL create_array
    MOV r1, r0
    LDI r2, 10
    LDI r3, \"twenty\"
    LDI r4, 30u8
    PUSHARG r1
    PUSHARG r2
    CALL array_push         ; 1
    MOV r5, r0
    PUSHARG r1
    PUSHARG r3
    PUSHARG r4
    PUSHARG r1
    CALL array_push         ; 4
    MOV r6, r0
    PUSHARG r1
    CALL array_length
    MOV r7, r0
    PUSHARG r5
    PUSHARG r6
    PUSHARG r7
    CALL print
    RET r1
",
    );
    let a = vm.execute("main", &[]).unwrap();
    assert_eq!(out.lock().unwrap().as_str(), "1 4 4\n");
    assert_eq!(vm.get_field(&a, &Val::I64(0)), Ok(Val::I64(10)));
    assert_eq!(vm.get_field(&a, &Val::I64(1)), Ok(Val::from("twenty")));
    assert_eq!(vm.get_field(&a, &Val::I64(2)), Ok(Val::U8(30)));
    // The array itself was pushed into itself.
    let inner = vm.get_field(&a, &Val::I64(3)).unwrap();
    assert_eq!(
        vm.display(&inner).unwrap(),
        "[10, twenty, 30u8, Array(1) <cycle>]"
    );
    // Pushing after holes appends at the length.
    vm.set_field(&a, &Val::I64(9), &Val::Unit).unwrap();
    assert_eq!(vm.array_push(&a, &Val::Bool(true)), Ok(11));
    assert_eq!(vm.get_field(&a, &Val::I64(10)), Ok(Val::Bool(true)));
}

#[test]
fn array_push_errors() {
    let (mut vm, _) = vm_with(&call1("array_push"));
    let a = vm.create_array().unwrap();
    // Only the array: fewer than 2 arguments.
    assert_builtin_error(
        vm.execute("f", std::slice::from_ref(&a)),
        "f",
        1,
        "array_push",
    );
    assert_eq!(vm.array_length(&a), Ok(0));
    let (mut vm, _) = vm_with(&call2("array_push"));
    let o = vm.create_object().unwrap();
    for target in [o, Val::I64(1), Val::from("s"), Val::Unit] {
        assert_builtin_error(
            vm.execute("f", &[target, Val::I64(1)]),
            "f",
            2,
            "array_push",
        );
    }
    let (result, _) = run("
.function main
    CALL array_push
    RET r0
");
    assert_builtin_error(result, "main", 0, "array_push");
}

// ---------------------------------------------------------------------------------------------
// Closures
// ---------------------------------------------------------------------------------------------

const COUNTER: &str = "
.function make_counter(count)
    LDI r1, \"increment\"
    LDI r2, \"count\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0

.function increment(step)
    MOV r1, r0
    LDI r2, \"count\"
    PUSHARG r2
    CALL get_upvalue
    ADD r3, r0, r1
    PUSHARG r2
    PUSHARG r3
    CALL set_upvalue
    RET r3

.function main
    LDI r1, 10
    PUSHARG r1
    CALL make_counter
    MOV r1, r0
    LDI r2, 5
    PUSHARG r1
    PUSHARG r2
    CALL call_closure
    PUSHARG r0
    CALL print
    LDI r2, 7
    PUSHARG r1
    PUSHARG r2
    CALL call_closure
    MOV r3, r0
    PUSHARG r3
    CALL print
    PUSHARG r1
    CALL print
    PUSHARG r1
    CALL type
    RET r0
";

#[test]
fn counter_closure_keeps_its_captured_count() {
    let (result, out) = run(COUNTER);
    assert_eq!(out, "15\n22\nFunction(increment)\n");
    assert_eq!(result, Ok(Val::from("function")));
}

#[test]
fn counter_closure_through_the_rust_api() {
    let (mut vm, _) = vm_with(COUNTER);
    let c = vm.execute("make_counter", &[Val::I64(10)]).unwrap();
    assert!(matches!(c, Val::Closure(_)));
    assert_eq!(vm.display(&c).unwrap(), "Function(increment)");
    assert_eq!(vm.call_closure(&c, &[Val::I64(5)]), Ok(Val::I64(15)));
    assert_eq!(vm.call_closure(&c, &[Val::I64(7)]), Ok(Val::I64(22)));
    // Counters made separately have separate cells.
    let d = vm.execute("make_counter", &[Val::I64(100)]).unwrap();
    assert_eq!(vm.call_closure(&d, &[Val::I64(1)]), Ok(Val::I64(101)));
    assert_eq!(vm.call_closure(&c, &[Val::I64(1)]), Ok(Val::I64(23)));
    // A copy of the closure stored in a container shares the cell.
    let arr = vm.create_array().unwrap();
    vm.array_push(&arr, &c).unwrap();
    let copy = vm.get_field(&arr, &Val::I64(0)).unwrap();
    assert_eq!(vm.call_closure(&copy, &[Val::I64(2)]), Ok(Val::I64(25)));
    assert_eq!(vm.call_closure(&c, &[Val::I64(0)]), Ok(Val::I64(25)));
}

#[test]
fn a_parameter_is_captured_with_its_value_at_call_time() {
    let v = {
        let (mut vm, _) = vm_with(
            "
.function get
    LDI r1, \"x\"
    PUSHARG r1
    CALL get_upvalue
    RET r0
.function make(x)
    LDI r0, 99          ; overwriting the parameter's register does not change x
    LDI r1, \"get\"
    LDI r2, \"x\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    PUSHARG r0
    CALL call_closure
    RET r0
",
        );
        vm.execute("make", &[Val::from("captured")])
    };
    assert_eq!(v, Ok(Val::from("captured")));
}

#[test]
fn capture_looks_through_the_callers_frames() {
    // `mk` has no parameter `x`: the name is found in its caller's frame (dynamic scope).
    let (mut vm, _) = vm_with(
        "
.function get
    LDI r1, \"x\"
    PUSHARG r1
    CALL get_upvalue
    RET r0
.function mk
    LDI r1, \"get\"
    LDI r2, \"x\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0
.function outer(x)
    CALL mk
    MOV r1, r0
    PUSHARG r1
    CALL call_closure
    RET r0
.function shadow(x)
    LDI r1, \"inner\"
    PUSHARG r1
    CALL outer          ; the innermost x wins
    RET r0
",
    );
    assert_eq!(vm.execute("outer", &[Val::I64(4)]), Ok(Val::I64(4)));
    assert_eq!(
        vm.execute("shadow", &[Val::from("outer")]),
        Ok(Val::from("inner"))
    );
}

#[test]
fn capturing_an_enclosing_closures_upvalue_shares_its_cell() {
    let (mut vm, out) = vm_with(
        "
.function make(count)
    LDI r1, \"outer\"
    LDI r2, \"count\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0

.function outer
    LDI r1, \"inner\"
    LDI r2, \"count\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure     ; captures outer's cell for count
    MOV r3, r0
    LDI r4, 5
    PUSHARG r3
    PUSHARG r4
    CALL call_closure       ; inner adds 5 to the shared cell
    LDI r2, \"count\"
    PUSHARG r2
    CALL get_upvalue        ; outer sees it
    RET r0

.function inner(step)
    MOV r1, r0
    LDI r2, \"count\"
    PUSHARG r2
    CALL get_upvalue
    ADD r3, r0, r1
    PUSHARG r2
    PUSHARG r3
    CALL set_upvalue
    RET r3

.function main
    LDI r1, 10
    PUSHARG r1
    CALL make
    MOV r1, r0
    PUSHARG r1
    CALL call_closure       ; 15
    PUSHARG r0
    CALL print
    PUSHARG r1
    CALL call_closure       ; 20: the cell kept the change
    RET r0
",
    );
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(20)));
    assert_eq!(out.lock().unwrap().as_str(), "15\n");
}

#[test]
fn create_closure_with_an_unknown_upvalue_is_an_error() {
    let (result, _) = run("
.function main
    LDI r1, \"f\"
    LDI r2, \"nope\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0
");
    assert_builtin_error(result, "main", 4, "create_closure");
}

#[test]
fn create_closure_argument_errors() {
    let (result, _) = run("
.function main
    CALL create_closure
    RET r0
");
    assert_builtin_error(result, "main", 0, "create_closure");
    let (mut vm, _) = vm_with(&call2("create_closure"));
    assert_builtin_error(
        vm.execute("f", &[Val::I64(1), Val::from("a")]),
        "f",
        2,
        "create_closure",
    );
    // A later argument that is not a string (a is a parameter, so "a" would be found).
    assert_builtin_error(
        vm.execute("f", &[Val::from("f"), Val::I64(1)]),
        "f",
        2,
        "create_closure",
    );
    // With names that resolve it works (the function name is not checked).
    let c = vm.execute("f", &[Val::from("whatever"), Val::from("a")]);
    assert!(matches!(c, Ok(Val::Closure(_))), "{c:?}");
}

#[test]
fn get_and_set_upvalue_with_unknown_names_are_errors() {
    let (mut vm, _) = vm_with(
        "
.function reader
    LDI r1, \"missing\"
    PUSHARG r1
    CALL get_upvalue
    RET r0
.function writer
    LDI r1, \"missing\"
    LDI r2, 1
    PUSHARG r1
    PUSHARG r2
    CALL set_upvalue
    RET r0
.function closure_of(name, x)
    PUSHARG r0
    LDI r2, \"x\"
    PUSHARG r2
    CALL create_closure
    RET r0
",
    );
    let r = vm
        .execute("closure_of", &[Val::from("reader"), Val::I64(1)])
        .unwrap();
    assert_builtin_error(vm.call_closure(&r, &[]), "reader", 2, "get_upvalue");
    let w = vm
        .execute("closure_of", &[Val::from("writer"), Val::I64(1)])
        .unwrap();
    assert_builtin_error(vm.call_closure(&w, &[]), "writer", 4, "set_upvalue");
    // Outside any closure there are no upvalues at all.
    assert_builtin_error(vm.execute("reader", &[]), "reader", 2, "get_upvalue");
    assert_builtin_error(vm.execute("writer", &[]), "writer", 4, "set_upvalue");
}

#[test]
fn get_and_set_upvalue_argument_errors() {
    let (mut vm, _) = vm_with(&format!(
        "{}{}",
        call1("get_upvalue"),
        ".function s(a)\n    PUSHARG r0\n    CALL set_upvalue\n    RET r0\n\
         .function s2(a, b)\n    PUSHARG r0\n    PUSHARG r1\n    CALL set_upvalue\n    RET r0\n\
         .function g0\n    CALL get_upvalue\n    RET r0\n"
    ));
    assert_builtin_error(vm.execute("f", &[Val::I64(1)]), "f", 1, "get_upvalue");
    assert_builtin_error(vm.execute("g0", &[]), "g0", 0, "get_upvalue");
    assert_builtin_error(vm.execute("s", &[Val::from("x")]), "s", 1, "set_upvalue");
    assert_builtin_error(
        vm.execute("s2", &[Val::I64(1), Val::I64(2)]),
        "s2",
        2,
        "set_upvalue",
    );
}

const CALLER: &str = "
.function call_with(c, x)
    PUSHARG r0
    PUSHARG r1
    CALL call_closure
    RET r0
.function call0(c)
    PUSHARG r0
    CALL call_closure
    RET r0
.function closure(name)
    PUSHARG r0
    CALL create_closure
    RET r0
.function add1(x)
    LDI r1, 1
    ADD r0, r0, r1
    RET r0
.function falls(x)
    LDI r0, 5
";

#[test]
fn call_closure_passes_arguments_and_returns_into_r0() {
    let (mut vm, _) = vm_with(CALLER);
    let c = vm.execute("closure", &[Val::from("add1")]).unwrap();
    assert_eq!(
        vm.execute("call_with", &[c.clone(), Val::I64(41)]),
        Ok(Val::I64(42))
    );
    // Falling off the closure's function hands its r0 to the caller (the current
    // StoffelVM's rule; it was Unit before), which continues.
    let f = vm.execute("closure", &[Val::from("falls")]).unwrap();
    assert_eq!(vm.execute("call_with", &[f, Val::I64(1)]), Ok(Val::I64(5)));
}

#[test]
fn call_closure_with_a_non_closure_is_an_error() {
    let (mut vm, _) = vm_with(CALLER);
    let o = vm.create_object().unwrap();
    for v in [Val::from("add1"), Val::I64(1), Val::Unit, o] {
        assert_builtin_error(vm.execute("call0", &[v]), "call0", 1, "call_closure");
    }
    let (result, _) = run("
.function main
    CALL call_closure
    RET r0
");
    assert_builtin_error(result, "main", 0, "call_closure");
}

#[test]
fn call_closure_with_the_wrong_arity_is_an_error() {
    let (mut vm, _) = vm_with(CALLER);
    let c = vm.execute("closure", &[Val::from("add1")]).unwrap();
    assert_error(
        vm.execute("call0", std::slice::from_ref(&c)),
        "call0",
        1,
        RuntimeErrorKind::Arity {
            function: "add1".into(),
            expected: 1,
            got: 0,
        },
    );
    assert_eq!(vm.execute("call_with", &[c, Val::I64(1)]), Ok(Val::I64(2)));
}

#[test]
fn call_closure_target_must_be_a_bytecode_function() {
    let (mut vm, out) = vm_with(CALLER);
    let p = vm.execute("closure", &[Val::from("print")]).unwrap();
    assert_eq!(vm.display(&p).unwrap(), "Function(print)");
    assert_builtin_error(
        vm.execute("call_with", &[p, Val::I64(1)]),
        "call_with",
        2,
        "call_closure",
    );
    assert_eq!(out.lock().unwrap().as_str(), "");
    vm.register_function("hosted", |_, _| Ok(Val::I64(1)));
    let h = vm.execute("closure", &[Val::from("hosted")]).unwrap();
    assert_builtin_error(
        vm.execute("call_with", &[h, Val::I64(1)]),
        "call_with",
        2,
        "call_closure",
    );
}

#[test]
fn call_closure_of_a_missing_function_fails_until_it_is_defined() {
    let (mut vm, _) = vm_with(CALLER);
    let c = vm.execute("closure", &[Val::from("later")]).unwrap();
    assert_error(
        vm.execute("call_with", &[c.clone(), Val::I64(1)]),
        "call_with",
        2,
        RuntimeErrorKind::FunctionNotFound("later".into()),
    );
    vm.load_assembly(".function later(x)\n    ADD r0, r0, r0\n    RET r0\n")
        .unwrap();
    assert_eq!(
        vm.execute("call_with", &[c, Val::I64(21)]),
        Ok(Val::I64(42))
    );
}

#[test]
fn call_closure_errors_through_the_rust_api() {
    let (mut vm, _) = vm_with(CALLER);
    assert_builtin_error(
        vm.call_closure(&Val::I64(1), &[]),
        "call_closure",
        0,
        "call_closure",
    );
    let c = vm.execute("closure", &[Val::from("add1")]).unwrap();
    assert_error(
        vm.call_closure(&c, &[]),
        "call_closure",
        0,
        RuntimeErrorKind::Arity {
            function: "add1".into(),
            expected: 1,
            got: 0,
        },
    );
    assert_eq!(vm.call_closure(&c, &[Val::I64(1)]), Ok(Val::I64(2)));
}

#[test]
fn closure_errors_inside_the_closure_name_its_function() {
    let (mut vm, _) = vm_with(&format!(
        "{CALLER}
.function bad(x)
    LDI r1, 0
    DIV r0, r0, r1
    RET r0
"
    ));
    let c = vm.execute("closure", &[Val::from("bad")]).unwrap();
    assert_error(
        vm.execute("call_with", &[c.clone(), Val::I64(1)]),
        "bad",
        1,
        RuntimeErrorKind::DivisionByZero,
    );
    assert_error(
        vm.call_closure(&c, &[Val::I64(1)]),
        "bad",
        1,
        RuntimeErrorKind::DivisionByZero,
    );
    // Reusable afterwards.
    let a = vm.execute("closure", &[Val::from("add1")]).unwrap();
    assert_eq!(vm.call_closure(&a, &[Val::I64(1)]), Ok(Val::I64(2)));
}

// ---------------------------------------------------------------------------------------------
// Builtins are ordinary names
// ---------------------------------------------------------------------------------------------

#[test]
fn builtins_can_be_replaced_by_host_and_bytecode_functions() {
    let (mut vm, out) = vm_with(
        "
.function main
    LDI r1, 5
    PUSHARG r1
    CALL print
    PUSHARG r1
    CALL type
    RET r0
",
    );
    assert_eq!(vm.execute("main", &[]), Ok(Val::from("int64")));
    assert_eq!(out.lock().unwrap().as_str(), "5\n");
    vm.register_function("print", |_, args| Ok(Val::I64(args.len() as i64)));
    vm.load_assembly(".function type(x)\n    LDI r0, \"mine\"\n    RET r0\n")
        .unwrap();
    assert_eq!(vm.execute("main", &[]), Ok(Val::from("mine")));
    assert_eq!(out.lock().unwrap().as_str(), "5\n");
}

#[test]
fn closure_recursion_hits_the_depth_limit() {
    let (mut vm, _) = vm_with(
        "
.function rec(c)
    PUSHARG r0
    PUSHARG r0
    CALL call_closure     ; 2
    RET r0
.function start
    LDI r1, \"rec\"
    PUSHARG r1
    CALL create_closure
    MOV r1, r0
    PUSHARG r1
    PUSHARG r1
    CALL call_closure
    RET r0
",
    );
    assert_error(
        vm.execute("start", &[]),
        "rec",
        2,
        RuntimeErrorKind::DepthExceeded(10_000),
    );
    vm.set_max_call_depth(50);
    assert_error(
        vm.execute("start", &[]),
        "rec",
        2,
        RuntimeErrorKind::DepthExceeded(50),
    );
}

#[test]
fn a_closure_called_from_the_host_is_the_entry() {
    // Falling off the end of the entry returns its r0, as for `execute`.
    let (mut vm, _) = vm_with(CALLER);
    let f = vm.execute("closure", &[Val::from("falls")]).unwrap();
    assert_eq!(vm.call_closure(&f, &[Val::I64(1)]), Ok(Val::I64(5)));
}

#[test]
fn set_upvalue_returns_unit() {
    let (mut vm, out) = vm_with(
        "
.function setter(v)
    LDI r1, \"v\"
    LDI r2, 8
    PUSHARG r1
    PUSHARG r2
    CALL set_upvalue
    MOV r3, r0
    PUSHARG r1
    CALL get_upvalue
    PUSHARG r3
    PUSHARG r0
    CALL print
    RET r0
.function make(v)
    LDI r1, \"setter\"
    LDI r2, \"v\"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0
",
    );
    let c = vm.execute("make", &[Val::I64(1)]).unwrap();
    assert_eq!(vm.call_closure(&c, &[Val::I64(0)]), Ok(Val::Unit));
    assert_eq!(out.lock().unwrap().as_str(), "() 8\n");
}

#[test]
fn objects_with_many_fields_keep_every_field_and_overwrite_in_place() {
    // Objects keep up to eight fields in a list and switch to a hash map after that; both
    // forms and the switch must read, overwrite and add fields alike.
    let (mut vm, _) = vm_with(
        r#"
.function fill(n) registers 9
    MOV r8, r0          ; n (every CALL overwrites r0)
    CALL create_object
    MOV r1, r0          ; o
    LDI r2, 0           ; i
    LDI r3, 1
fill:
    CMP r2, r8
    JMPEQ check
    ADD r4, r2, r2      ; o[i] = 2i
    PUSHARG r1
    PUSHARG r2
    PUSHARG r4
    CALL set_field
    ADD r2, r2, r3
    JMP fill
check:
    LDI r5, "name"      ; a string key after the integer ones
    PUSHARG r1
    PUSHARG r5
    PUSHARG r5
    CALL set_field
    LDI r6, 3           ; overwrite o[3] = 100
    LDI r7, 100
    PUSHARG r1
    PUSHARG r6
    PUSHARG r7
    CALL set_field
    LDI r2, 0           ; r4 = sum of o[i]
    LDI r4, 0
sum:
    CMP r2, r8
    JMPEQ done
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    ADD r4, r4, r0
    ADD r2, r2, r3
    JMP sum
done:
    PUSHARG r1
    PUSHARG r5
    CALL get_field
    MOV r7, r0
    PUSHARG r1
    PUSHARG r7
    PUSHARG r4
    CALL set_field      ; o["name"] (looked up by an equal string) = the sum
    PUSHARG r1
    PUSHARG r5
    CALL get_field
    RET r0
"#,
    );
    for n in [1i64, 7, 8, 9, 40] {
        // sum of 2i for i < n, with o[3] = 100 instead of 6 when n > 3 (o[3] is new when
        // n <= 3: then it is not summed).
        let sum: i64 = (0..n).map(|i| if i == 3 { 100 } else { 2 * i }).sum();
        assert_eq!(
            vm.execute("fill", &[Val::I64(n)]).unwrap(),
            Val::I64(sum),
            "n = {n}"
        );
    }
}

#[test]
fn small_arrays_grow_past_their_inline_elements() {
    // Arrays keep two elements inside themselves and move to a buffer when they grow; a hole
    // left by a write past the end reads as ().
    let (mut vm, _) = vm_with(
        r#"
.function grow(capacity, n) registers 8
    MOV r6, r1          ; n (every CALL overwrites r0)
    PUSHARG r0
    CALL create_array
    MOV r1, r0          ; a
    LDI r2, 0           ; i
    LDI r3, 1
push:
    CMP r2, r6
    JMPEQ hole
    ADD r4, r2, r2
    ADD r4, r4, r3      ; 2i + 1
    PUSHARG r1
    PUSHARG r4
    CALL array_push
    ADD r2, r2, r3
    JMP push
hole:
    ADD r5, r6, r3      ; a[n + 1] = 7: a[n] stays a hole
    LDI r4, 7
    PUSHARG r1
    PUSHARG r5
    PUSHARG r4
    CALL set_field
    LDI r2, 0           ; r4 = sum of a[i] for i < n, then + a[n + 1]
    LDI r4, 0
sum:
    CMP r2, r6
    JMPEQ done
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    ADD r4, r4, r0
    ADD r2, r2, r3
    JMP sum
done:
    PUSHARG r1
    PUSHARG r5
    CALL get_field
    ADD r4, r4, r0
    PUSHARG r1
    PUSHARG r6
    CALL get_field      ; the hole: ()
    PUSHARG r0
    CALL type
    LDI r7, "nil"
    CMP r0, r7
    JMPNEQ bad
    PUSHARG r1
    CALL array_length   ; n + 2
    LDI r7, 100
    MUL r4, r4, r7
    ADD r4, r4, r0      ; 100 * sum + length
    RET r4
bad:
    RET r0
"#,
    );
    for capacity in [0i64, 2, 5] {
        for n in [0i64, 1, 2, 3, 9] {
            let sum = n * n + 7; // 1 + 3 + … + (2n - 1) = n², plus a[n + 1] = 7
            assert_eq!(
                vm.execute("grow", &[Val::I64(capacity), Val::I64(n)])
                    .unwrap(),
                Val::I64(100 * sum + n + 2),
                "capacity {capacity}, n {n}"
            );
        }
    }
}

/// A program whose builtin calls the interpreter runs as fused ops (PUSHARGs + CALL).
const FIELD_CALLS: &str = r#"
.function fields registers 6
    CALL create_object  ; 0
    MOV r1, r0          ; 1
    LDI r2, "k"         ; 2
    LDI r3, 41          ; 3
    PUSHARG r1          ; 4
    PUSHARG r2          ; 5
    PUSHARG r3          ; 6
    CALL set_field      ; 7
    PUSHARG r1          ; 8
    PUSHARG r2          ; 9
    CALL get_field      ; 10
    LDI r4, 1           ; 11
    ADD r0, r0, r4      ; 12
    RET r0              ; 13

.function extra_argument registers 6
    CALL create_object
    MOV r1, r0
    LDI r2, "k"
    LDI r3, 41
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL set_field
    LDI r5, 7
    PUSHARG r5          ; get_field(7, o, "k"): the container is 7, so ()
    PUSHARG r1
    PUSHARG r2
    CALL get_field
    RET r0
"#;

#[test]
fn fused_builtin_calls_behave_as_the_calls_they_replace() {
    let (mut vm, _) = vm_with(FIELD_CALLS);
    assert_eq!(vm.execute("fields", &[]).unwrap(), Val::I64(42));
    // An argument pushed before the sequence goes to the builtin, as with plain calls.
    assert_eq!(vm.execute("extra_argument", &[]).unwrap(), Val::Unit);
    // Every instruction counts: 14 ran.
    let before = vm.instructions_executed();
    vm.execute("fields", &[]).unwrap();
    assert_eq!(vm.instructions_executed() - before, 14);
    // A limit inside a sequence stops at the right instruction.
    for (limit, next) in [(5, 5), (6, 6), (7, 7), (9, 9), (10, 10)] {
        vm.set_instruction_limit(Some(limit));
        assert_error(
            vm.execute("fields", &[]),
            "fields",
            next,
            RuntimeErrorKind::FuelExhausted(limit),
        );
    }
}

#[test]
fn fused_builtin_calls_follow_a_rebound_name() {
    let (mut vm, _) = vm_with(FIELD_CALLS);
    assert_eq!(vm.execute("fields", &[]).unwrap(), Val::I64(42));
    // A host function takes the name over after the code was loaded: the calls go to it.
    vm.register_function("get_field", |_, args| Ok(Val::I64(100 * args.len() as i64)));
    assert_eq!(vm.execute("fields", &[]).unwrap(), Val::I64(201));
    vm.register_function("set_field", |_, _| {
        Err(stoffel_vm::HostError::new("set_field is read-only here"))
    });
    assert_error(
        vm.execute("fields", &[]),
        "fields",
        7,
        RuntimeErrorKind::Host {
            function: "set_field".into(),
            message: "set_field is read-only here".into(),
            external: None,
        },
    );
}

#[test]
fn upvalues_are_found_by_a_name_string_made_at_run_time() {
    // The name a closure is made with and the name get_upvalue/set_upvalue are given are
    // usually the same constant; a different string with the same text must work too.
    let (mut vm, _) = vm_with(
        r#"
.function make(count) registers 3
    LDI r1, "bump"
    LDI r2, "count"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0

.function bump(step) registers 5
.parent make
    MOV r1, r0
    LDI r2, "cou"
    LDI r3, "nt"
    ADD r2, r2, r3      ; "count", a new string
    PUSHARG r2
    CALL get_upvalue
    ADD r4, r0, r1
    PUSHARG r2
    PUSHARG r4
    CALL set_upvalue
    LDI r3, "count"     ; the constant again
    PUSHARG r3
    CALL get_upvalue
    RET r0

.function main registers 4
    LDI r1, 40
    PUSHARG r1
    CALL make
    MOV r2, r0
    LDI r3, 2
    PUSHARG r2
    PUSHARG r3
    CALL call_closure
    RET r0
"#,
    );
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
}

#[test]
fn closures_capture_more_than_two_variables() {
    // Environments keep two cells inline and move to a vector for more; the most recent
    // capture of a name wins, as before.
    let (mut vm, _) = vm_with(
        r#"
.function make(a, b, c) registers 5
    LDI r3, "sum"
    PUSHARG r3
    LDI r3, "a"
    PUSHARG r3
    LDI r3, "b"
    PUSHARG r3
    LDI r3, "c"
    PUSHARG r3
    LDI r3, "a"
    PUSHARG r3          ; "a" twice: one cell each, the later one is found
    CALL create_closure
    RET r0

.function sum(x) registers 6
.parent make
    MOV r5, r0
    LDI r1, "c"
    PUSHARG r1
    PUSHARG r5
    CALL set_upvalue    ; c = x
    LDI r1, "a"
    PUSHARG r1
    CALL get_upvalue
    MOV r2, r0
    LDI r1, "b"
    PUSHARG r1
    CALL get_upvalue
    ADD r2, r2, r0
    LDI r1, "c"
    PUSHARG r1
    CALL get_upvalue
    ADD r2, r2, r0
    RET r2              ; a + b + x

.function main registers 6
    LDI r1, 1
    LDI r2, 20
    LDI r3, 300
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL make
    MOV r4, r0
    LDI r5, 4000
    PUSHARG r4
    PUSHARG r5
    CALL call_closure
    RET r0
"#,
    );
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(4021));
}

#[test]
fn string_keys_match_by_text_not_by_identity() {
    // Keys are compared by hash and text: a string built at run time finds a field set with
    // a constant, and a different text of the same length does not.
    let (mut vm, _) = vm_with(
        r#"
.function lookup(extra) registers 9
    MOV r8, r0
    CALL create_object
    MOV r1, r0
    LDI r2, 0           ; add `extra` filler fields (pushes the object past its list form)
    LDI r3, 1
fill:
    CMP r2, r8
    JMPEQ set
    PUSHARG r1
    PUSHARG r2
    PUSHARG r2
    CALL set_field
    ADD r2, r2, r3
    JMP fill
set:
    LDI r4, "ab"
    LDI r5, 7
    PUSHARG r1
    PUSHARG r4
    PUSHARG r5
    CALL set_field      ; o["ab"] = 7
    LDI r6, "a"
    LDI r7, "b"
    ADD r6, r6, r7      ; "ab", a new string
    PUSHARG r1
    PUSHARG r6
    CALL get_field      ; 7
    MOV r5, r0
    ADD r6, r7, r6      ; "bab"
    LDI r7, "ba"
    PUSHARG r1
    PUSHARG r7
    CALL get_field      ; ()
    PUSHARG r0
    CALL type
    LDI r7, "nil"
    CMP r0, r7
    JMPNEQ wrong
    RET r5
wrong:
    LDI r0, -1
    RET r0
"#,
    );
    for extra in [0i64, 3, 20] {
        assert_eq!(
            vm.execute("lookup", &[Val::I64(extra)]).unwrap(),
            Val::I64(7),
            "extra {extra}"
        );
    }
}
