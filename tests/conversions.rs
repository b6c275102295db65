//! Conversions between Rust values and `Val` (issue 17 item 1): `From`/`TryFrom` for scalars,
//! the `as_*` accessors, and `IntoVal`/`FromVal` for arrays and objects, which must leave no
//! handle behind, also when they fail.

use std::collections::{BTreeMap, HashMap};

use stoffel_vm::{ApiError, ConvertError, Val, Vm, VmError};

#[test]
fn every_scalar_converts_into_a_val_of_its_kind() {
    assert_eq!(Val::from(-5i8), Val::I8(-5));
    assert_eq!(Val::from(-5i16), Val::I16(-5));
    assert_eq!(Val::from(-5i32), Val::I32(-5));
    assert_eq!(Val::from(-5i64), Val::I64(-5));
    assert_eq!(Val::from(5u8), Val::U8(5));
    assert_eq!(Val::from(5u16), Val::U16(5));
    assert_eq!(Val::from(5u32), Val::U32(5));
    assert_eq!(Val::from(u64::MAX), Val::U64(u64::MAX));
    assert_eq!(Val::from(1.5f32), Val::Float(1.5));
    assert_eq!(Val::from(0.1f64), Val::Float(0.1));
    assert_eq!(Val::from(true), Val::Bool(true));
    assert_eq!(Val::from("hi"), Val::String("hi".into()));
    assert_eq!(Val::from(String::from("hi")), Val::String("hi".into()));
    assert_eq!(Val::from(()), Val::Unit);
    assert_eq!(Val::from(Some(3i64)), Val::I64(3));
    assert_eq!(Val::from(None::<i64>), Val::Unit);
}

#[test]
fn integers_convert_back_from_any_width_that_fits() {
    assert_eq!(i64::try_from(Val::I64(-7)), Ok(-7));
    assert_eq!(i64::try_from(&Val::U8(200)), Ok(200));
    assert_eq!(u8::try_from(Val::I64(255)), Ok(255));
    assert_eq!(i8::try_from(&Val::I32(-128)), Ok(-128));
    assert_eq!(u64::try_from(Val::U64(u64::MAX)), Ok(u64::MAX));
    assert_eq!(
        u8::try_from(Val::I64(256)),
        Err(ConvertError::OutOfRange {
            expected: "u8",
            got: "int64",
            value: "256".into()
        })
    );
    assert_eq!(
        i64::try_from(Val::U64(u64::MAX)).unwrap_err().to_string(),
        "expected i64, got uint64 18446744073709551615, which does not fit"
    );
    assert_eq!(
        u32::try_from(Val::I32(-1)).unwrap_err().to_string(),
        "expected u32, got int32 -1, which does not fit"
    );
}

#[test]
fn a_wrong_kind_names_what_was_expected_and_what_was_found() {
    let cases: Vec<(ConvertError, &str)> = vec![
        (
            i64::try_from(Val::from("7")).unwrap_err(),
            "expected i64, got string",
        ),
        (
            f64::try_from(Val::I64(1)).unwrap_err(),
            "expected float, got int64",
        ),
        (
            bool::try_from(&Val::Unit).unwrap_err(),
            "expected boolean, got nil",
        ),
        (
            String::try_from(Val::Bool(true)).unwrap_err(),
            "expected string, got boolean",
        ),
        (
            <()>::try_from(Val::I64(0)).unwrap_err(),
            "expected nil, got int64",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
    assert_eq!(f32::try_from(Val::Float(2.5)), Ok(2.5f32));
    assert_eq!(String::try_from(Val::from("x")), Ok("x".to_owned()));
    assert_eq!(Option::<i64>::try_from(&Val::Unit), Ok(None));
    assert_eq!(Option::<i64>::try_from(&Val::I16(4)), Ok(Some(4)));
    assert!(Option::<i64>::try_from(&Val::Bool(false)).is_err());
}

#[test]
fn accessors_read_without_matching() {
    assert_eq!(Val::I32(-3).as_i64(), Some(-3));
    assert_eq!(Val::I32(-3).as_u64(), None);
    assert_eq!(Val::U64(u64::MAX).as_i64(), None);
    assert_eq!(Val::U64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(Val::Float(2.0).as_f64(), Some(2.0));
    assert_eq!(Val::I64(2).as_f64(), None);
    assert_eq!(Val::Bool(true).as_bool(), Some(true));
    assert_eq!(Val::from("s").as_str(), Some("s"));
    assert_eq!(Val::I64(1).as_str(), None);
    assert!(Val::Unit.is_unit());
    assert!(!Val::I64(0).is_unit());
}

#[test]
fn vectors_tuples_and_maps_round_trip_through_the_vm_without_leaking_handles() {
    let mut vm = Vm::new();
    let array = vm.to_val(vec![1i64, 2, 3]).unwrap();
    assert_eq!(vm.array_length(&array).unwrap(), 3);
    assert_eq!(vm.from_val::<Vec<i64>>(&array).unwrap(), [1, 2, 3]);
    vm.release(&array).unwrap();

    let nested = vm.to_val(vec![vec!["a"], vec!["b", "c"]]).unwrap();
    assert_eq!(
        vm.from_val::<Vec<Vec<String>>>(&nested).unwrap(),
        [vec!["a".to_owned()], vec!["b".to_owned(), "c".to_owned()]]
    );
    vm.release(&nested).unwrap();

    let tuple = vm.to_val((7i64, "seven", true, Some(0.5f64))).unwrap();
    let back: (i64, String, bool, Option<f64>) = vm.from_val(&tuple).unwrap();
    assert_eq!(back, (7, "seven".to_owned(), true, Some(0.5)));
    vm.release(&tuple).unwrap();

    let map: HashMap<String, Vec<u8>> =
        HashMap::from([("x".to_owned(), vec![1]), ("y".to_owned(), vec![2, 3])]);
    let object = vm.to_val(map.clone()).unwrap();
    assert_eq!(
        vm.from_val::<HashMap<String, Vec<u8>>>(&object).unwrap(),
        map
    );
    vm.release(&object).unwrap();

    let ordered = BTreeMap::from([("b".to_owned(), 2i64), ("a".to_owned(), 1)]);
    let object = vm.to_val(ordered.clone()).unwrap();
    assert_eq!(
        vm.fields(&object).unwrap(),
        [(Val::from("a"), Val::I64(1)), (Val::from("b"), Val::I64(2))],
        "a BTreeMap's fields are set in key order"
    );
    assert_eq!(
        vm.from_val::<BTreeMap<String, i64>>(&object).unwrap(),
        ordered
    );
    vm.release(&object).unwrap();

    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn vals_moved_into_a_container_are_owned_by_it() {
    let mut vm = Vm::new();
    let inner = vm.create_object().unwrap();
    vm.set_field(&inner, &Val::from("k"), &Val::I64(9)).unwrap();
    // `into_val` consumes: the array now holds the object, and the moved handle is released.
    let array = vm.to_val(vec![inner.clone(), Val::I64(1)]).unwrap();
    assert!(vm.check(&inner).is_err(), "the moved handle was released");
    assert_eq!(vm.gc_stats().live_handles, 1);
    // Read back as `Val`s: new references the caller owns.
    let items: Vec<Val> = vm.from_val(&array).unwrap();
    assert_eq!(
        vm.get_field(&items[0], &Val::from("k")).unwrap(),
        Val::I64(9)
    );
    assert_eq!(items[1], Val::I64(1));
    for v in items.iter().chain([&array]) {
        vm.release(v).unwrap();
    }
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn a_script_result_reads_as_rust_types() {
    let mut vm = Vm::new();
    vm.load_assembly(
        r#"
.function pairs registers 4
    LDI r1, 3
    PUSHARG r1
    CALL create_array
    MOV r2, r0
    LDI r3, "one"
    PUSHARG r2
    PUSHARG r3
    CALL array_push
    LDI r3, "two"
    PUSHARG r2
    PUSHARG r3
    CALL array_push
    RET r2
"#,
    )
    .unwrap();
    let result = vm.execute("pairs", &[]).unwrap();
    let names: Vec<String> = vm.from_val(&result).unwrap();
    assert_eq!(names, ["one", "two"]);
    let pair: (String, String) = vm.from_val(&result).unwrap();
    assert_eq!(pair, ("one".to_owned(), "two".to_owned()));
    vm.release(&result).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn failed_conversions_name_the_problem_and_release_what_they_made() {
    let mut vm = Vm::new();
    let mixed = vm.to_val((1i64, "two", vec![3i64])).unwrap();
    let wrong_element = vm.from_val::<Vec<i64>>(&mixed).unwrap_err();
    assert_eq!(wrong_element.to_string(), "expected i64, got string");
    assert!(matches!(
        wrong_element,
        VmError::Api(ApiError::Convert(ConvertError::WrongKind { .. }))
    ));
    let wrong_length = vm.from_val::<(i64, String)>(&mixed).unwrap_err();
    assert_eq!(
        wrong_length.to_string(),
        "expected an array of 2 elements, got 3"
    );
    let not_an_object = vm.from_val::<HashMap<String, i64>>(&mixed).unwrap_err();
    assert_eq!(not_an_object.to_string(), "expected object, got array");
    assert_eq!(
        vm.from_val::<Vec<i64>>(&Val::I64(1))
            .unwrap_err()
            .to_string(),
        "expected array, got int64"
    );

    let object = vm.create_object().unwrap();
    vm.set_field(&object, &Val::I64(1), &Val::I64(2)).unwrap();
    vm.set_field(&object, &Val::from("s"), &mixed).unwrap();
    assert_eq!(
        vm.from_val::<BTreeMap<String, Val>>(&object)
            .unwrap_err()
            .to_string(),
        "expected an object with string keys, got int64"
    );
    // Only the two values the test made are live: nothing the failed conversions read stayed.
    assert_eq!(vm.gc_stats().live_handles, 2);
    vm.release(&object).unwrap();
    vm.release(&mixed).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn get_and_set_take_rust_keys_and_values() {
    let mut vm = Vm::new();
    let obj = vm.create_object().unwrap();
    vm.set(&obj, "n", 5i64).unwrap();
    vm.set(&obj, "xs", vec![1.5f64, 2.5]).unwrap();
    vm.set(&obj, 7i64, "seven").unwrap();
    assert_eq!(vm.get::<i64>(&obj, "n").unwrap(), 5);
    assert_eq!(vm.get::<Vec<f64>>(&obj, "xs").unwrap(), [1.5, 2.5]);
    assert_eq!(vm.get::<String>(&obj, 7i64).unwrap(), "seven");
    assert_eq!(vm.get::<Option<bool>>(&obj, "missing").unwrap(), None);
    assert_eq!(
        vm.get::<bool>(&obj, "n").unwrap_err().to_string(),
        "expected boolean, got int64"
    );
    let keys: Vec<Val> = vm
        .fields(&obj)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            vm.release(&v).unwrap();
            k
        })
        .collect();
    assert_eq!(keys, [Val::from("n"), Val::from("xs"), Val::I64(7)]);
    vm.release(&obj).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}
