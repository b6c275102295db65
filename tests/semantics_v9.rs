//! The execution semantics of the current StoffelVM (monorepo `Stoffel-Labs/stoffel`, whose
//! compiler emits STFL v9), on hand-written programs: checked integer arithmetic, Float × I64,
//! bitwise ops and shifts on every integer width, CMP across numeric kinds, a callee falling
//! off its end, and the changed builtins (`print`/`to_string` formats, `type`,
//! `create_array`, `get_field`, `set_field`, `array_length`).
//!
//! Expected values and error texts follow the current VM's source
//! (`runtime_value_ops/{arithmetic,bitwise,compare}.rs`, `vm_state/execution.rs`,
//! `standard_library.rs`); stoffel-vm's runtime errors put them after
//! "runtime error in function 'F' at instruction N: ", and builtin messages after
//! "BUILTIN: ".

mod common;

use common::{run, vm_with};
use stoffel_vm::{Val, VmError};

/// Runs `main`, which must succeed: its result and what it printed.
#[track_caller]
fn ok(src: &str) -> (Val, String) {
    match run(src) {
        (Ok(v), out) => (v, out),
        (Err(e), _) => panic!("unexpected error: {e}\n{src}"),
    }
}

/// Runs `main`, which must fail: the error's text.
#[track_caller]
fn fails(src: &str) -> String {
    match run(src).0 {
        Err(e @ VmError::Runtime(_)) => e.to_string(),
        other => panic!("expected a runtime error, got {other:?}\n{src}"),
    }
}

/// A `main` that applies `op` to two constants and returns the result.
fn binop(op: &str, a: &str, b: &str) -> String {
    format!(".function main\n    LDI r1, {a}\n    LDI r2, {b}\n    {op} r3, r1, r2\n    RET r3\n")
}

/// The error text of `binop(op, a, b)`, which fails at instruction 2.
#[track_caller]
fn binop_error(op: &str, a: &str, b: &str) -> String {
    let text = fails(&binop(op, a, b));
    let prefix = "runtime error in function 'main' at instruction 2: ";
    match text.strip_prefix(prefix) {
        Some(rest) => rest.to_owned(),
        None => panic!("{op} {a}, {b}: unexpected error {text}"),
    }
}

#[track_caller]
fn binop_value(op: &str, a: &str, b: &str) -> Val {
    ok(&binop(op, a, b)).0
}

// ---------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------

#[test]
fn integer_overflow_is_an_error_in_every_width() {
    for (op, a, b) in [
        ("ADD", "9223372036854775807", "1"),
        ("ADD", "127i8", "1i8"),
        ("ADD", "255u8", "1u8"),
        ("ADD", "18446744073709551615u64", "1u64"),
        ("SUB", "-9223372036854775808", "1"),
        ("SUB", "3u8", "5u8"),
        ("SUB", "0u64", "1u64"),
        ("SUB", "-32768i16", "1i16"),
        ("MUL", "4294967296", "4294967296"),
        ("MUL", "65536i32", "32768i32"),
        ("MUL", "65536u32", "65536u32"),
    ] {
        assert_eq!(
            binop_error(op, a, b),
            format!("Integer overflow in {op} operation"),
            "{op} {a}, {b}"
        );
    }
    // In range: exact results.
    assert_eq!(binop_value("SUB", "5u8", "5u8"), Val::U8(0));
    assert_eq!(binop_value("ADD", "254u8", "1u8"), Val::U8(255));
    assert_eq!(binop_value("MUL", "-64i8", "2i8"), Val::I8(-128));
    assert_eq!(
        binop_value("MUL", "65535u32", "65537u32"),
        Val::U32(u32::MAX)
    );
}

#[test]
fn overflow_in_a_loop_is_reported_at_the_add() {
    // ADD followed by CMP and a jump runs as one fused op; its overflow is still an error at
    // the ADD, after 62 doublings.
    let text = fails(
        ".function main
    LDI r1, 1
    LDI r2, 0
loop:
    ADD r1, r1, r1
    CMP r1, r2
    JMPGT loop
    RET r1
",
    );
    assert_eq!(
        text,
        "runtime error in function 'main' at instruction 2: Integer overflow in ADD operation"
    );
}

#[test]
fn division_errors() {
    assert_eq!(
        binop_error("DIV", "-9223372036854775808", "-1"),
        "Integer overflow in DIV operation"
    );
    assert_eq!(
        binop_error("MOD", "-128i8", "-1i8"),
        "Integer overflow in MOD operation"
    );
    assert_eq!(binop_error("DIV", "7u16", "0u16"), "Division by zero");
    assert_eq!(binop_error("MOD", "7", "0"), "Modulo by zero");
    assert_eq!(binop_error("DIV", "1.5", "0"), "Division by zero");
    assert_eq!(binop_error("DIV", "1", "0.0"), "Division by zero");
    assert_eq!(binop_error("MOD", "1.5", "0"), "Modulo by zero");
    assert_eq!(binop_error("MOD", "2", "-0.0"), "Modulo by zero");
    assert_eq!(binop_value("DIV", "-7", "2"), Val::I64(-3));
    assert_eq!(binop_value("MOD", "-7", "2"), Val::I64(-1));
}

#[test]
fn float_mixes_with_i64_only() {
    assert_eq!(binop_value("ADD", "1.5", "2"), Val::Float(3.5));
    assert_eq!(binop_value("ADD", "2", "1.5"), Val::Float(3.5));
    assert_eq!(binop_value("SUB", "2", "0.5"), Val::Float(1.5));
    assert_eq!(binop_value("MUL", "0.5", "-3"), Val::Float(-1.5));
    assert_eq!(binop_value("DIV", "7", "2.0"), Val::Float(3.5));
    assert_eq!(binop_value("MOD", "7", "2.5"), Val::Float(2.0));
    assert_eq!(binop_value("MOD", "-7.5", "2"), Val::Float(-1.5));
    assert_eq!(
        binop_error("ADD", "1.5", "2i32"),
        "Type error in ADD operation: cannot apply to float and int32"
    );
    assert_eq!(
        binop_error("MUL", "3u8", "1.5"),
        "Type error in MUL operation: cannot apply to uint8 and float"
    );
}

#[test]
fn strings_concatenate_and_nothing_else() {
    assert_eq!(binop_value("ADD", "\"ab\"", "\"cd\""), Val::from("abcd"));
    assert_eq!(
        binop_error("SUB", "\"ab\"", "\"cd\""),
        "Type error in SUB operation: cannot apply to string and string"
    );
    assert_eq!(
        binop_error("ADD", "\"ab\"", "1"),
        "Type error in ADD operation: cannot apply to string and int64"
    );
}

// ---------------------------------------------------------------------------------------------
// Bitwise and shifts
// ---------------------------------------------------------------------------------------------

#[test]
fn bitwise_ops_on_every_width_and_bool() {
    assert_eq!(
        binop_value("AND", "18446744073709551615u64", "255u64"),
        Val::U64(255)
    );
    assert_eq!(binop_value("OR", "-128i8", "1i8"), Val::I8(-127));
    assert_eq!(binop_value("XOR", "65535u16", "255u16"), Val::U16(65280));
    assert_eq!(binop_value("AND", "12i32", "10i32"), Val::I32(8));
    assert_eq!(binop_value("AND", "true", "false"), Val::Bool(false));
    assert_eq!(binop_value("OR", "true", "false"), Val::Bool(true));
    assert_eq!(binop_value("XOR", "true", "true"), Val::Bool(false));
    assert_eq!(
        binop_error("AND", "1u8", "1u16"),
        "Type error in AND operation: cannot apply to uint8 and uint16"
    );
    let (v, _) = ok(".function main\n    LDI r1, 0u32\n    NOT r2, r1\n    RET r2\n");
    assert_eq!(v, Val::U32(u32::MAX));
    let (v, _) = ok(".function main\n    LDI r1, 5i16\n    NOT r2, r1\n    RET r2\n");
    assert_eq!(v, Val::I16(-6));
}

#[test]
fn shifts_on_every_width_with_checked_amounts() {
    assert_eq!(binop_value("SHL", "1u8", "7u8"), Val::U8(128));
    assert_eq!(binop_value("SHL", "3u8", "7u8"), Val::U8(128));
    assert_eq!(binop_value("SHR", "-128i8", "7i8"), Val::I8(-1));
    assert_eq!(binop_value("SHR", "-9", "1"), Val::I64(-5));
    assert_eq!(binop_value("SHR", "128u8", "7u8"), Val::U8(1));
    assert_eq!(binop_value("SHL", "1", "63"), Val::I64(i64::MIN));
    assert_eq!(
        binop_error("SHL", "1u8", "8u8"),
        "Shift amount 8 out of range in SHL operation"
    );
    assert_eq!(
        binop_error("SHR", "1", "64"),
        "Shift amount 64 out of range in SHR operation"
    );
    assert_eq!(
        binop_error("SHR", "1i16", "-1i16"),
        "Invalid shift amount -1 in SHR operation"
    );
    assert_eq!(
        binop_error("SHL", "1", "4294967296"),
        "Invalid shift amount 4294967296 in SHL operation"
    );
    assert_eq!(
        binop_error("SHL", "1u64", "18446744073709551615u64"),
        "Shift amount 4294967295 out of range in SHL operation"
    );
    assert_eq!(
        binop_error("SHL", "1", "1i32"),
        "Type error in SHL operation: cannot apply to int64 and int32"
    );
}

// ---------------------------------------------------------------------------------------------
// CMP
// ---------------------------------------------------------------------------------------------

/// A `main` that returns -1, 0 or 1 from `CMP a, b` and the jumps.
fn cmp(a: &str, b: &str) -> String {
    format!(
        ".function main
    LDI r1, {a}
    LDI r2, {b}
    CMP r1, r2
    JMPLT less
    JMPGT greater
    LDI r3, 0
    RET r3
less:
    LDI r3, -1
    RET r3
greater:
    LDI r3, 1
    RET r3
"
    )
}

#[test]
fn cmp_compares_any_two_numbers_by_value() {
    for (a, b, expected) in [
        ("10i8", "10i16", 0),
        ("100i32", "100", 0),
        ("200u16", "200u32", 0),
        ("-1i8", "18446744073709551615u64", -1),
        ("18446744073709551615u64", "-1", 1),
        ("2", "2.5", -1),
        ("3u8", "2.5", 1),
        ("-2.5", "-2i32", -1),
        ("2.0", "2u64", 0),
        ("9223372036854775807", "9223372036854775808.0", -1),
        ("\"abc\"", "\"abd\"", -1),
        ("true", "false", 1),
    ] {
        assert_eq!(ok(&cmp(a, b)).0, Val::I64(expected), "CMP {a}, {b}");
    }
}

#[test]
fn cmp_errors_name_both_values() {
    let error = |a: &str, b: &str| fails(&cmp(a, b));
    let at = "runtime error in function 'main' at instruction 2: ";
    assert_eq!(error("1", "()"), format!("{at}Cannot compare 1 and ()"));
    assert_eq!(error("true", "1"), format!("{at}Cannot compare true and 1"));
    assert_eq!(
        error("\"a\"", "1u8"),
        format!("{at}Cannot compare \"a\" and 1u8")
    );
    // A NaN operand, passed in from the host.
    let (mut vm, _) = vm_with(".function f(a, b)\n    CMP r0, r1\n    RET r0\n");
    let text = match vm.execute("f", &[Val::Float(f64::NAN), Val::I64(1)]) {
        Err(e) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(
        text,
        "runtime error in function 'f' at instruction 0: Cannot compare NaNf64 and 1"
    );
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

#[test]
fn a_callee_falling_off_its_end_hands_its_r0_to_the_caller() {
    let (v, out) = ok("
.function inner(x)
    LDI r1, 10
    ADD r0, r0, r1
.function outer(x)
    PUSHARG r0
    CALL inner
    LDI r1, 100
    ADD r0, r0, r1
.function main
    LDI r1, 1
    PUSHARG r1
    CALL outer
    PUSHARG r0
    CALL print
    LDI r2, 7
    MOV r0, r2
");
    assert_eq!(out, "111\n");
    // The entry's own fall-off still returns its r0.
    assert_eq!(v, Val::I64(7));
}

// ---------------------------------------------------------------------------------------------
// print and to_string
// ---------------------------------------------------------------------------------------------

/// What `main` prints.
#[track_caller]
fn printed(src: &str) -> String {
    ok(src).1
}

#[test]
fn print_shows_arrays_with_at_most_16_elements() {
    let out = printed(
        "
.function main
    CALL create_array
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
    LDI r4, 20
loop:
    PUSHARG r1
    PUSHARG r2
    CALL array_push
    ADD r2, r2, r3
    CMP r2, r4
    JMPLT loop
    PUSHARG r1
    CALL print
    CALL create_array
    PUSHARG r0
    CALL print
",
    );
    assert_eq!(
        out,
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, ...(4 more)]\n[]\n"
    );
}

#[test]
fn print_shows_nested_values_raw_holes_as_unit_and_debug_text_for_scalars() {
    let out = printed(
        "
.function main
    CALL create_array
    MOV r1, r0
    LDI r2, \"a b\"
    LDI r3, 1.5
    LDI r4, 7u8
    LDI r5, 5
    LDI r6, true
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    PUSHARG r4
    CALL array_push
    PUSHARG r1
    PUSHARG r5
    PUSHARG r6
    CALL set_field
    PUSHARG r2
    PUSHARG r1
    PUSHARG r2
    CALL print
",
    );
    assert_eq!(out, "a b [a b, 1.5f64, 7u8, (), (), true] a b\n");
}

#[test]
fn print_stops_at_three_levels_of_nesting() {
    // [[[[1]]]] and {a: {a: {a: {a: 1}}}}.
    let out = printed(
        "
.function main
    LDI r5, 1
    LDI r6, \"a\"
    LDI r7, 0
    MOV r1, r5
    MOV r2, r5
loop:
    CALL create_array
    MOV r3, r0
    PUSHARG r3
    PUSHARG r1
    CALL array_push
    MOV r1, r3
    CALL create_object
    MOV r4, r0
    PUSHARG r4
    PUSHARG r6
    PUSHARG r2
    CALL set_field
    MOV r2, r4
    ADD r7, r7, r5
    LDI r8, 4
    CMP r7, r8
    JMPLT loop
    PUSHARG r1
    PUSHARG r2
    CALL print
",
    );
    assert_eq!(out, "[[[[...1 elements]]]] {a: {a: {a: {...1 fields}}}}\n");
}

#[test]
fn print_shows_objects_in_insertion_order_with_at_most_16_fields() {
    let out = printed(
        "
.function main
    CALL create_object
    MOV r1, r0
    LDI r2, 0
    LDI r3, 1
    LDI r4, 18
loop:
    PUSHARG r1
    PUSHARG r2
    PUSHARG r2
    CALL set_field
    ADD r2, r2, r3
    CMP r2, r4
    JMPLT loop
    PUSHARG r1
    CALL print
    CALL create_object
    MOV r5, r0
    LDI r6, \"zeta\"
    LDI r7, 1i32
    LDI r8, ()
    PUSHARG r5
    PUSHARG r6
    PUSHARG r6
    CALL set_field
    PUSHARG r5
    PUSHARG r7
    PUSHARG r8
    CALL set_field
    PUSHARG r5
    PUSHARG r6
    PUSHARG r3
    CALL set_field
    PUSHARG r5
    CALL print
",
    );
    assert_eq!(
        out,
        "{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 10: 10, 11: 11, \
         12: 12, 13: 13, 14: 14, 15: 15, ...(2 more)}\n{zeta: 1, 1i32: ()}\n"
    );
}

#[test]
fn print_marks_cycles_with_the_id() {
    let out = printed(
        "
.function main
    CALL create_object
    MOV r1, r0
    CALL create_array
    MOV r2, r0
    LDI r3, \"list\"
    PUSHARG r1
    PUSHARG r3
    PUSHARG r2
    CALL set_field
    PUSHARG r2
    PUSHARG r1
    PUSHARG r2
    CALL array_push
    PUSHARG r1
    PUSHARG r2
    CALL print
",
    );
    // The object (id 1) holds the array (id 2), which holds the object and itself.
    assert_eq!(
        out,
        "{list: [Object(1) <cycle>, Array(2) <cycle>]} [{list: Array(2) <cycle>}, Array(2) <cycle>]\n"
    );
}

#[test]
fn to_string_is_prints_text_as_a_string() {
    let (v, out) = ok("
.function main
    CALL create_array
    MOV r1, r0
    LDI r2, \"x\"
    LDI r3, 2u16
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    CALL array_push
    PUSHARG r1
    CALL to_string
    MOV r4, r0
    PUSHARG r3
    CALL to_string
    MOV r5, r0
    PUSHARG r2
    CALL to_string
    MOV r6, r0
    PUSHARG r4
    PUSHARG r5
    PUSHARG r6
    CALL print
    PUSHARG r4
    CALL type
    RET r0
");
    assert_eq!(out, "[x, 2u16] 2u16 x\n");
    assert_eq!(v, Val::from("string"));
    for args in ["", "PUSHARG r1\n    PUSHARG r1\n    "] {
        let text = fails(&format!(
            ".function main\n    LDI r1, 1\n    {args}CALL to_string\n    RET r0\n"
        ));
        assert!(text.ends_with(": to_string: expects 1 argument"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// type, create_array, get_field, set_field, array_length
// ---------------------------------------------------------------------------------------------

#[test]
fn type_takes_exactly_one_argument_and_prints_nothing() {
    let (v, out) = ok("
.function main
    LDI r1, 1u8
    PUSHARG r1
    CALL type
    RET r0
");
    assert_eq!((v, out.as_str()), (Val::from("uint8"), ""));
    for args in ["", "PUSHARG r1\n    PUSHARG r1\n    "] {
        let text = fails(&format!(
            ".function main\n    LDI r1, 1\n    {args}CALL type\n    RET r0\n"
        ));
        assert!(text.ends_with(": type: expects 1 argument"), "{text}");
    }
}

#[test]
fn create_array_capacity_is_any_non_negative_integer() {
    let (v, _) = ok("
.function main
    LDI r1, 8i32
    PUSHARG r1
    CALL create_array
    PUSHARG r0
    CALL array_length
    RET r0
");
    assert_eq!(v, Val::I64(0));
    for capacity in ["-1", "-1i8", "1.0", "\"3\""] {
        let text = fails(&format!(
            ".function main\n    LDI r1, {capacity}\n    PUSHARG r1\n    CALL create_array\n    RET r0\n"
        ));
        assert_eq!(
            text,
            "runtime error in function 'main' at instruction 2: create_array: array capacity \
             must be a non-negative integer",
            "{capacity}"
        );
    }
}

/// `get_field(target, key)` on a string constant.
fn string_index(text: &str, key: &str) -> String {
    format!(
        ".function main\n    LDI r1, \"{text}\"\n    LDI r2, {key}\n    PUSHARG r1\n    PUSHARG r2\n    CALL get_field\n    RET r0\n"
    )
}

#[test]
fn get_field_indexes_strings_by_character() {
    assert_eq!(ok(&string_index("héllo", "1")).0, Val::from("é"));
    assert_eq!(ok(&string_index("héllo", "-1")).0, Val::from("o"));
    assert_eq!(ok(&string_index("héllo", "-5")).0, Val::from("h"));
    assert_eq!(ok(&string_index("héllo", "2u8")).0, Val::from("l"));
    let at = "runtime error in function 'main' at instruction 4: get_field: ";
    assert_eq!(
        fails(&string_index("héllo", "5")),
        format!("{at}string index 5 out of range (length 5)")
    );
    assert_eq!(
        fails(&string_index("héllo", "-6")),
        format!("{at}string index -6 out of range (length 5)")
    );
    assert_eq!(
        fails(&string_index("héllo", "\"len\"")),
        format!("{at}string index must be an integer, found string")
    );
}

/// A `main` that builds the array [10, 20, 30] in r1, then runs `body`.
fn with_array(body: &str) -> String {
    format!(
        ".function main
    CALL create_array
    MOV r1, r0
    LDI r2, 10
    LDI r3, 20
    LDI r4, 30
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    PUSHARG r4
    CALL array_push
{body}"
    )
}

#[test]
fn get_field_on_arrays_counts_negative_indices_from_the_end_and_errs_past_the_length() {
    let get = |key: &str| {
        with_array(&format!(
            "    LDI r5, {key}\n    PUSHARG r1\n    PUSHARG r5\n    CALL get_field\n    RET r0\n"
        ))
    };
    assert_eq!(ok(&get("0")).0, Val::I64(10));
    assert_eq!(ok(&get("-1")).0, Val::I64(30));
    assert_eq!(ok(&get("-3")).0, Val::I64(10));
    assert_eq!(ok(&get("-1i8")).0, Val::I64(30));
    // A key that is not an integer is looked up as a field: missing, Unit.
    assert_eq!(ok(&get("\"x\"")).0, Val::Unit);
    let at = "runtime error in function 'main' at instruction 13: get_field: ";
    assert_eq!(
        fails(&get("3")),
        format!("{at}array index 3 out of range (length 3)")
    );
    assert_eq!(
        fails(&get("-4")),
        format!("{at}array index -4 out of range (length 3)")
    );
}

#[test]
fn get_field_on_objects_and_other_values_reads_unit_when_missing() {
    let (v, out) = ok("
.function main
    CALL create_object
    LDI r1, \"missing\"
    PUSHARG r0
    PUSHARG r1
    CALL get_field
    MOV r2, r0
    LDI r3, 5
    PUSHARG r3
    PUSHARG r1
    CALL get_field
    MOV r4, r0
    PUSHARG r2
    PUSHARG r4
    CALL print
    RET r4
");
    assert_eq!((v, out.as_str()), (Val::Unit, "() ()\n"));
}

#[test]
fn set_field_counts_negative_indices_from_the_end_and_needs_a_table() {
    let (_, out) = ok(&with_array(
        "    LDI r5, -1\n    LDI r6, \"last\"\n    PUSHARG r1\n    PUSHARG r5\n    PUSHARG r6\n    CALL set_field\n    PUSHARG r1\n    CALL print\n",
    ));
    assert_eq!(out, "[10, 20, last]\n");
    assert_eq!(
        fails(&with_array(
            "    LDI r5, -4\n    PUSHARG r1\n    PUSHARG r5\n    PUSHARG r5\n    CALL set_field\n"
        )),
        "runtime error in function 'main' at instruction 14: set_field: array index -4 out \
         of range (length 3)"
    );
    assert_eq!(
        fails(
            ".function main\n    LDI r1, \"s\"\n    PUSHARG r1\n    PUSHARG r1\n    PUSHARG r1\n    CALL set_field\n"
        ),
        "runtime error in function 'main' at instruction 4: set_field: Expected object or array"
    );
}

#[test]
fn array_length_takes_one_array_or_string() {
    let len = |setup: &str| {
        format!(".function main\n    {setup}\n    PUSHARG r1\n    CALL array_length\n    RET r0\n")
    };
    assert_eq!(ok(&len("LDI r1, \"héllo\"")).0, Val::I64(5));
    assert_eq!(ok(&len("LDI r1, \"\"")).0, Val::I64(0));
    assert_eq!(
        fails(&len("CALL create_object\n    MOV r1, r0")),
        "runtime error in function 'main' at instruction 3: array_length: First argument \
         must be an array or string"
    );
    assert_eq!(
        fails(
            ".function main\n    LDI r1, \"ab\"\n    PUSHARG r1\n    PUSHARG r1\n    CALL array_length\n"
        ),
        "runtime error in function 'main' at instruction 3: array_length: expects 1 argument: array"
    );
}

#[test]
fn closure_builtins_use_the_current_messages() {
    let at = "runtime error in function 'main' at instruction";
    assert_eq!(
        fails(
            ".function main\n    LDI r1, \"x\"\n    PUSHARG r1\n    PUSHARG r1\n    CALL get_upvalue\n"
        ),
        format!("{at} 3: get_upvalue: expects 1 argument: name")
    );
    assert_eq!(
        fails(".function main\n    LDI r1, \"x\"\n    PUSHARG r1\n    CALL get_upvalue\n"),
        format!("{at} 2: get_upvalue: Upvalue 'x' not found")
    );
    assert_eq!(
        fails(
            ".function main\n    LDI r1, \"f\"\n    LDI r2, 5\n    PUSHARG r1\n    PUSHARG r2\n    CALL create_closure\n"
        ),
        format!("{at} 4: create_closure: Upvalue names must be strings")
    );
    assert_eq!(
        fails(".function main\n    LDI r1, 5\n    PUSHARG r1\n    CALL call_closure\n"),
        format!("{at} 2: call_closure: First argument must be a closure, but got int64")
    );
}
