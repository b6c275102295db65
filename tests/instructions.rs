//! Every instruction, on its happy paths and each of its error paths, through the public API
//! (`Vm::load_assembly` + `Vm::execute`). Expected values come from
//! the VM's binding semantics and the original StoffelVM's rules §1-§4.

mod common;

use stoffel_vm::ApiError;
use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

use common::{assert_error, run, runtime_error, vm_with};

/// Runs `main` of `src`, which must succeed.
fn ok(src: &str) -> Val {
    match run(src).0 {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}\n{src}"),
    }
}

/// Runs `main` of `src`, which must fail with `kind` in `function` at `instruction`.
#[track_caller]
fn assert_main_error(src: &str, function: &str, instruction: usize, kind: RuntimeErrorKind) {
    assert_error(run(src).0, function, instruction, kind);
}

/// Applies a three-register instruction (`ADD`, `SHL`, …) to two values passed as arguments.
/// An error is at function `f`, instruction 0.
fn binop(op: &str, a: Val, b: Val) -> Result<Val, VmError> {
    let mut vm = Vm::new();
    vm.load_assembly(&format!(
        ".function f(a, b)\n    {op} r2, r0, r1\n    RET r2\n"
    ))
    .unwrap();
    vm.execute("f", &[a, b])
}

#[track_caller]
fn assert_binop(op: &str, a: Val, b: Val, expected: Val) {
    let got = binop(op, a.clone(), b.clone());
    assert_eq!(got, Ok(expected), "{op} {a:?}, {b:?}");
}

#[track_caller]
fn assert_binop_error(op: &str, a: Val, b: Val, kind: RuntimeErrorKind) {
    let got = binop(op, a.clone(), b.clone());
    let e = runtime_error(got);
    assert_eq!(
        (e.function.as_str(), e.instruction, &e.kind),
        ("f", 0, &kind),
        "{op} {a:?}, {b:?}: {e}"
    );
}

fn type_error(op: &'static str, a: &Val, b: &Val) -> RuntimeErrorKind {
    RuntimeErrorKind::Type {
        op,
        left: a.kind(),
        right: Some(b.kind()),
    }
}

/// A float result, compared by bits.
#[track_caller]
fn assert_float(v: Result<Val, VmError>, expected: f64) {
    match v {
        Ok(Val::Float(x)) => assert_eq!(x.to_bits(), expected.to_bits(), "{x} vs {expected}"),
        other => panic!("expected Float({expected}), got {other:?}"),
    }
}

/// One value of every integer kind, built from an i8 (so it fits every signed kind).
fn int_of(kind: &str, v: i64) -> Val {
    match kind {
        "i64" => Val::I64(v),
        "i32" => Val::I32(v as i32),
        "i16" => Val::I16(v as i16),
        "i8" => Val::I8(v as i8),
        "u8" => Val::U8(v as u8),
        "u16" => Val::U16(v as u16),
        "u32" => Val::U32(v as u32),
        "u64" => Val::U64(v as u64),
        _ => unreachable!(),
    }
}

const INT_KINDS: [&str; 8] = ["i64", "i32", "i16", "i8", "u8", "u16", "u32", "u64"];
const SIGNED: [&str; 4] = ["i64", "i32", "i16", "i8"];
const UNSIGNED: [&str; 4] = ["u8", "u16", "u32", "u64"];

fn signed_min(kind: &str) -> Val {
    match kind {
        "i64" => Val::I64(i64::MIN),
        "i32" => Val::I32(i32::MIN),
        "i16" => Val::I16(i16::MIN),
        "i8" => Val::I8(i8::MIN),
        _ => unreachable!(),
    }
}

fn signed_max(kind: &str) -> Val {
    match kind {
        "i64" => Val::I64(i64::MAX),
        "i32" => Val::I32(i32::MAX),
        "i16" => Val::I16(i16::MAX),
        "i8" => Val::I8(i8::MAX),
        _ => unreachable!(),
    }
}

fn unsigned_max(kind: &str) -> Val {
    match kind {
        "u8" => Val::U8(u8::MAX),
        "u16" => Val::U16(u16::MAX),
        "u32" => Val::U32(u32::MAX),
        "u64" => Val::U64(u64::MAX),
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------------
// LD
// ---------------------------------------------------------------------------------------------

#[test]
fn ld_offset_zero_is_last_pushed_and_minus_one_the_one_before() {
    let v = ok("
.function main
    LDI r1, 1
    LDI r2, 2
    LDI r3, 3
    PUSHARG r1
    PUSHARG r2
    PUSHARG r3
    LD r4, [sp+0]      ; 3
    LD r5, [sp-1]      ; 2
    LD r6, [sp+-2]     ; 1
    LDI r7, 100
    MUL r4, r4, r7
    LDI r7, 10
    MUL r5, r5, r7
    ADD r4, r4, r5
    ADD r4, r4, r6
    RET r4
");
    assert_eq!(v, Val::I64(321));
}

#[test]
fn ld_does_not_pop() {
    let v = ok("
.function main
    LDI r1, 5
    PUSHARG r1
    LD r2, [sp+0]
    LD r3, [sp+0]
    ADD r2, r2, r3
    RET r2
");
    assert_eq!(v, Val::I64(10));
}

#[test]
fn ld_positive_offset_is_out_of_bounds() {
    assert_main_error(
        "
.function main
    LDI r1, 1
    PUSHARG r1
    PUSHARG r1
    LD r2, [sp+1]
    RET r2
",
        "main",
        3,
        RuntimeErrorKind::StackOutOfBounds { offset: 1, len: 2 },
    );
}

#[test]
fn ld_below_the_stack_is_out_of_bounds() {
    assert_main_error(
        "
.function main
    LDI r1, 1
    PUSHARG r1
    PUSHARG r1
    LD r2, [sp-1]
    LD r2, [sp-2]
    RET r2
",
        "main",
        4,
        RuntimeErrorKind::StackOutOfBounds { offset: -2, len: 2 },
    );
}

#[test]
fn ld_on_an_empty_stack_is_out_of_bounds() {
    assert_main_error(
        "
.function main
    LD r1, [sp+0]
    RET r1
",
        "main",
        0,
        RuntimeErrorKind::StackOutOfBounds { offset: 0, len: 0 },
    );
}

#[test]
fn ld_sees_only_values_pushed_since_the_last_call() {
    // CALL consumes everything pushed so far.
    assert_main_error(
        "
.function id(x)
    RET r0
.function main
    LDI r1, 1
    PUSHARG r1
    CALL id
    LD r2, [sp+0]
    RET r2
",
        "main",
        3,
        RuntimeErrorKind::StackOutOfBounds { offset: 0, len: 0 },
    );
    // Values pushed after the call are visible, and only those.
    let v = ok("
.function id(x)
    RET r0
.function main
    LDI r1, 1
    LDI r2, 2
    PUSHARG r1
    CALL id
    PUSHARG r2
    LD r3, [sp+0]
    RET r3
");
    assert_eq!(v, Val::I64(2));
    assert_main_error(
        "
.function id(x)
    RET r0
.function main
    LDI r1, 1
    LDI r2, 2
    PUSHARG r1
    CALL id
    PUSHARG r2
    LD r3, [sp-1]
    RET r3
",
        "main",
        5,
        RuntimeErrorKind::StackOutOfBounds { offset: -1, len: 1 },
    );
}

#[test]
fn ld_in_a_callee_does_not_see_the_callers_stack() {
    // The caller's pushed values became the callee's arguments (registers); the callee's own
    // pending stack starts empty.
    assert_main_error(
        "
.function peek(x)
    LD r1, [sp+0]
    RET r1
.function main
    LDI r1, 1
    PUSHARG r1
    CALL peek
    RET r0
",
        "peek",
        0,
        RuntimeErrorKind::StackOutOfBounds { offset: 0, len: 0 },
    );
}

#[test]
fn ld_after_a_builtin_call_sees_an_empty_stack() {
    let (result, out) = run("
.function main
    LDI r1, 1
    PUSHARG r1
    PUSHARG r1
    CALL print
    LD r2, [sp+0]
    RET r2
");
    assert_eq!(out, "1 1\n");
    assert_error(
        result,
        "main",
        4,
        RuntimeErrorKind::StackOutOfBounds { offset: 0, len: 0 },
    );
}

// ---------------------------------------------------------------------------------------------
// LDI, MOV, registers
// ---------------------------------------------------------------------------------------------

#[test]
fn ldi_loads_every_constant_kind() {
    let cases: Vec<(&str, Val)> = vec![
        ("42", Val::I64(42)),
        ("-42", Val::I64(-42)),
        ("9223372036854775807", Val::I64(i64::MAX)),
        ("-9223372036854775808", Val::I64(i64::MIN)),
        ("7i64", Val::I64(7)),
        ("-7i32", Val::I32(-7)),
        ("2147483647i32", Val::I32(i32::MAX)),
        ("-32768i16", Val::I16(i16::MIN)),
        ("-128i8", Val::I8(-128)),
        ("255u8", Val::U8(255)),
        ("65535u16", Val::U16(65535)),
        ("4294967295u32", Val::U32(u32::MAX)),
        ("18446744073709551615u64", Val::U64(u64::MAX)),
        ("0x1F", Val::I64(31)),
        ("true", Val::Bool(true)),
        ("false", Val::Bool(false)),
        ("\"hello\"", Val::String("hello".into())),
        ("\"\"", Val::String(String::new())),
        (
            "\"tab\\tq\\\"\\u{e9}\"",
            Val::String("tab\tq\"\u{e9}".into()),
        ),
        ("()", Val::Unit),
    ];
    for (literal, expected) in cases {
        let src = format!(".function main\n    LDI r1, {literal}\n    RET r1\n");
        assert_eq!(ok(&src), expected, "LDI {literal}");
    }
}

#[test]
fn ldi_floats_keep_their_bits() {
    let cases: Vec<(&str, f64)> = vec![
        ("1.5", 1.5),
        ("2.0", 2.0),
        ("-0.0", -0.0),
        ("1e300", 1e300),
        ("f64:0x7ff0000000000000", f64::INFINITY),
        ("f64:0xfff0000000000000", f64::NEG_INFINITY),
        (
            "f64:0x7ff8000000000001",
            f64::from_bits(0x7ff8_0000_0000_0001),
        ),
    ];
    for (literal, expected) in cases {
        let src = format!(".function main\n    LDI r1, {literal}\n    RET r1\n");
        assert_float(run(&src).0, expected);
    }
}

#[test]
fn ldi_overwrites_a_register_of_another_kind() {
    let v = ok("
.function main
    LDI r1, \"s\"
    LDI r1, 3u8
    RET r1
");
    assert_eq!(v, Val::U8(3));
}

#[test]
fn mov_copies_and_leaves_the_source() {
    let v = ok("
.function main
    LDI r1, 7i16
    MOV r2, r1
    LDI r1, 1i16
    SUB r3, r2, r1
    RET r3
");
    assert_eq!(v, Val::I16(6));
}

#[test]
fn registers_at_and_above_16_are_ordinary() {
    let v = ok("
.function main
    LDI r1, \"x\"
    MOV r20, r1
    MOV r2, r20
    LDI r17, 5
    LDI r18, 6
    ADD r16, r17, r18
    PUSHARG r2
    PUSHARG r16
    CALL print
    RET r16
");
    assert_eq!(v, Val::I64(11));
}

#[test]
fn registers_start_as_unit_and_under_declared_frames_still_work() {
    let v = ok("
.function main registers 1
    LDI r5, 3
    MOV r0, r7
    RET r0
");
    assert_eq!(v, Val::Unit);
    let v = ok("
.function main registers 1
    LDI r5, 3
    RET r5
");
    assert_eq!(v, Val::I64(3));
}

// ---------------------------------------------------------------------------------------------
// ADD / SUB / MUL on integers
// ---------------------------------------------------------------------------------------------

#[test]
fn add_sub_mul_basic_for_every_int_kind() {
    for k in INT_KINDS {
        assert_binop("ADD", int_of(k, 40), int_of(k, 2), int_of(k, 42));
        assert_binop("SUB", int_of(k, 50), int_of(k, 8), int_of(k, 42));
        assert_binop("MUL", int_of(k, 6), int_of(k, 7), int_of(k, 42));
    }
    for k in SIGNED {
        assert_binop("ADD", int_of(k, -5), int_of(k, 3), int_of(k, -2));
        assert_binop("SUB", int_of(k, 3), int_of(k, 5), int_of(k, -2));
        assert_binop("MUL", int_of(k, -6), int_of(k, 7), int_of(k, -42));
        assert_binop("MUL", int_of(k, -6), int_of(k, -7), int_of(k, 42));
    }
}

fn overflow(op: &'static str) -> RuntimeErrorKind {
    RuntimeErrorKind::Overflow { op }
}

// Integer ADD/SUB/MUL are checked, as the current StoffelVM: an overflow is an error
// (these tests asserted wrapping, and saturation of unsigned SUB, before).
#[test]
fn add_overflow_is_an_error_for_every_int_kind() {
    for k in SIGNED {
        assert_binop_error("ADD", signed_max(k), int_of(k, 1), overflow("ADD"));
        assert_binop_error("ADD", signed_min(k), int_of(k, -1), overflow("ADD"));
        assert_binop("ADD", signed_max(k), int_of(k, 0), signed_max(k));
        assert_binop("ADD", signed_min(k), int_of(k, 1), {
            match signed_min(k) {
                Val::I64(m) => Val::I64(m + 1),
                Val::I32(m) => Val::I32(m + 1),
                Val::I16(m) => Val::I16(m + 1),
                Val::I8(m) => Val::I8(m + 1),
                _ => unreachable!(),
            }
        });
    }
    for k in UNSIGNED {
        assert_binop_error("ADD", unsigned_max(k), int_of(k, 1), overflow("ADD"));
        assert_binop_error("ADD", unsigned_max(k), unsigned_max(k), overflow("ADD"));
        assert_binop("ADD", unsigned_max(k), int_of(k, 0), unsigned_max(k));
    }
}

#[test]
fn signed_sub_overflow_is_an_error() {
    for k in SIGNED {
        assert_binop_error("SUB", signed_min(k), int_of(k, 1), overflow("SUB"));
        assert_binop_error("SUB", signed_max(k), int_of(k, -1), overflow("SUB"));
        assert_binop("SUB", signed_min(k), int_of(k, 0), signed_min(k));
    }
}

#[test]
fn unsigned_sub_below_zero_is_an_error() {
    for k in UNSIGNED {
        assert_binop_error("SUB", int_of(k, 3), int_of(k, 5), overflow("SUB"));
        assert_binop_error("SUB", int_of(k, 0), int_of(k, 1), overflow("SUB"));
        assert_binop_error("SUB", int_of(k, 0), unsigned_max(k), overflow("SUB"));
        assert_binop("SUB", int_of(k, 5), int_of(k, 5), int_of(k, 0));
        assert_binop("SUB", unsigned_max(k), int_of(k, 0), unsigned_max(k));
    }
}

#[test]
fn mul_overflow_is_an_error_for_every_int_kind() {
    for (a, b) in [
        (Val::I64(i64::MAX), Val::I64(2)),
        (Val::I64(i64::MIN), Val::I64(-1)),
        (Val::I32(i32::MAX), Val::I32(2)),
        (Val::I16(i16::MAX), Val::I16(2)),
        (Val::I8(64), Val::I8(2)),
        (Val::U8(16), Val::U8(16)),
        (Val::U16(256), Val::U16(257)),
        (Val::U32(1 << 16), Val::U32(1 << 16)),
        (Val::U64(u64::MAX), Val::U64(2)),
    ] {
        assert_binop_error("MUL", a, b, overflow("MUL"));
    }
    // Just inside the range.
    assert_binop("MUL", Val::I8(-64), Val::I8(2), Val::I8(-128));
    assert_binop("MUL", Val::U8(15), Val::U8(17), Val::U8(255));
    assert_binop("MUL", Val::I64(i64::MIN), Val::I64(1), Val::I64(i64::MIN));
}

#[test]
fn arithmetic_with_the_same_register_twice() {
    let v = ok("
.function main
    LDI r1, 21
    ADD r1, r1, r1
    RET r1
");
    assert_eq!(v, Val::I64(42));
}

// ---------------------------------------------------------------------------------------------
// DIV / MOD on integers
// ---------------------------------------------------------------------------------------------

#[test]
fn div_truncates_toward_zero_for_every_int_kind() {
    for k in INT_KINDS {
        assert_binop("DIV", int_of(k, 7), int_of(k, 2), int_of(k, 3));
        assert_binop("DIV", int_of(k, 42), int_of(k, 1), int_of(k, 42));
        assert_binop("DIV", int_of(k, 0), int_of(k, 9), int_of(k, 0));
    }
    for k in SIGNED {
        assert_binop("DIV", int_of(k, -7), int_of(k, 2), int_of(k, -3));
        assert_binop("DIV", int_of(k, 7), int_of(k, -2), int_of(k, -3));
        assert_binop("DIV", int_of(k, -7), int_of(k, -2), int_of(k, 3));
        assert_binop("DIV", signed_min(k), int_of(k, 1), signed_min(k));
    }
    for k in UNSIGNED {
        assert_binop("DIV", unsigned_max(k), unsigned_max(k), int_of(k, 1));
    }
    assert_binop("DIV", Val::U8(200), Val::U8(3), Val::U8(66));
    assert_binop(
        "DIV",
        Val::U64(u64::MAX),
        Val::U64(2),
        Val::U64(u64::MAX / 2),
    );
}

#[test]
fn div_by_zero_is_an_error_for_every_int_kind() {
    for k in INT_KINDS {
        assert_binop_error(
            "DIV",
            int_of(k, 7),
            int_of(k, 0),
            RuntimeErrorKind::DivisionByZero,
        );
        assert_binop_error(
            "DIV",
            int_of(k, 0),
            int_of(k, 0),
            RuntimeErrorKind::DivisionByZero,
        );
    }
}

#[test]
fn signed_min_div_minus_one_is_an_overflow_error() {
    for k in SIGNED {
        assert_binop_error("DIV", signed_min(k), int_of(k, -1), overflow("DIV"));
    }
}

#[test]
fn mod_takes_the_sign_of_the_dividend() {
    for k in SIGNED {
        assert_binop("MOD", int_of(k, 7), int_of(k, 3), int_of(k, 1));
        assert_binop("MOD", int_of(k, -7), int_of(k, 3), int_of(k, -1));
        assert_binop("MOD", int_of(k, 7), int_of(k, -3), int_of(k, 1));
        assert_binop("MOD", int_of(k, -7), int_of(k, -3), int_of(k, -1));
        assert_binop("MOD", int_of(k, -6), int_of(k, 3), int_of(k, 0));
        assert_binop("MOD", signed_min(k), int_of(k, 1), int_of(k, 0));
        assert_binop("MOD", signed_max(k), signed_min(k), signed_max(k));
    }
    for k in UNSIGNED {
        assert_binop("MOD", int_of(k, 7), int_of(k, 3), int_of(k, 1));
        assert_binop("MOD", int_of(k, 2), int_of(k, 5), int_of(k, 2));
        assert_binop("MOD", unsigned_max(k), unsigned_max(k), int_of(k, 0));
    }
    assert_binop("MOD", Val::U8(255), Val::U8(16), Val::U8(15));
}

#[test]
fn mod_by_zero_is_an_error_for_every_int_kind() {
    for k in INT_KINDS {
        assert_binop_error(
            "MOD",
            int_of(k, 7),
            int_of(k, 0),
            RuntimeErrorKind::ModuloByZero,
        );
    }
}

#[test]
fn signed_min_mod_minus_one_is_an_overflow_error() {
    for k in SIGNED {
        assert_binop_error("MOD", signed_min(k), int_of(k, -1), overflow("MOD"));
    }
    // Other negative divisors of MIN are fine.
    assert_binop("MOD", Val::I64(i64::MIN), Val::I64(-2), Val::I64(0));
    assert_binop("MOD", Val::I8(-128), Val::I8(-3), Val::I8(-2));
}

// ---------------------------------------------------------------------------------------------
// Arithmetic type errors
// ---------------------------------------------------------------------------------------------

#[test]
fn mixed_int_kinds_are_type_errors() {
    let pairs = [
        (Val::I64(1), Val::I32(1)),
        (Val::I32(1), Val::I64(1)),
        (Val::I16(1), Val::I8(1)),
        (Val::U8(1), Val::I8(1)),
        (Val::U8(1), Val::U16(1)),
        (Val::U32(1), Val::U64(1)),
        (Val::I64(1), Val::U64(1)),
    ];
    for op in ["ADD", "SUB", "MUL", "DIV", "MOD"] {
        for (a, b) in &pairs {
            assert_binop_error(op, a.clone(), b.clone(), type_error(op, a, b));
        }
    }
}

#[test]
fn bool_unit_and_string_operands_are_type_errors() {
    let pairs = [
        (Val::Bool(true), Val::Bool(false)),
        (Val::Unit, Val::Unit),
        (Val::I64(1), Val::Unit),
        (Val::Bool(true), Val::I64(1)),
        (Val::String("a".into()), Val::I64(1)),
        (Val::I64(1), Val::String("a".into())),
    ];
    for op in ["ADD", "SUB", "MUL", "DIV", "MOD"] {
        for (a, b) in &pairs {
            assert_binop_error(op, a.clone(), b.clone(), type_error(op, a, b));
        }
    }
    // Strings only concatenate: no SUB/MUL/DIV/MOD.
    let (a, b) = (Val::String("a".into()), Val::String("b".into()));
    for op in ["SUB", "MUL", "DIV", "MOD"] {
        assert_binop_error(op, a.clone(), b.clone(), type_error(op, &a, &b));
    }
}

#[test]
fn heap_operands_are_type_errors() {
    let mut vm = Vm::new();
    vm.load_assembly(".function f(a, b)\n    ADD r2, r0, r1\n    RET r2\n")
        .unwrap();
    let o = vm.create_object().unwrap();
    let a = vm.create_array().unwrap();
    let e = runtime_error(vm.execute("f", &[o.clone(), a.clone()]));
    assert_eq!(e.kind, type_error("ADD", &o, &a));
    assert_eq!((e.function.as_str(), e.instruction), ("f", 0));
    let e = runtime_error(vm.execute("f", &[o.clone(), o.clone()]));
    assert_eq!(e.kind, type_error("ADD", &o, &o));
}

#[test]
fn type_error_is_reported_at_the_failing_instruction() {
    assert_main_error(
        "
.function main
    LDI r1, 1
    LDI r2, 1i32
    ADD r3, r1, r1
    ADD r3, r1, r2
    RET r3
",
        "main",
        3,
        RuntimeErrorKind::Type {
            op: "ADD",
            left: stoffel_vm::Kind::I64,
            right: Some(stoffel_vm::Kind::I32),
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Floats
// ---------------------------------------------------------------------------------------------

#[test]
fn div_float_cases_give_floats() {
    assert_float(binop("DIV", Val::Float(7.0), Val::Float(2.0)), 3.5);
    assert_float(binop("DIV", Val::Float(7.0), Val::I64(2)), 3.5);
    assert_float(binop("DIV", Val::I64(7), Val::Float(2.0)), 3.5);
    assert_float(binop("DIV", Val::I64(1), Val::Float(-4.0)), -0.25);
    assert_float(binop("DIV", Val::Float(-0.0), Val::Float(5.0)), -0.0);
}

#[test]
fn div_by_float_zero_is_an_error() {
    for (a, b) in [
        (Val::Float(1.0), Val::Float(0.0)),
        (Val::Float(1.0), Val::Float(-0.0)),
        (Val::Float(0.0), Val::Float(0.0)),
        (Val::I64(1), Val::Float(0.0)),
        (Val::Float(1.0), Val::I64(0)),
    ] {
        assert_binop_error("DIV", a, b, RuntimeErrorKind::DivisionByZero);
    }
}

#[test]
fn div_float_with_other_int_kinds_is_a_type_error() {
    for (a, b) in [
        (Val::Float(1.0), Val::I32(2)),
        (Val::U8(1), Val::Float(2.0)),
        (Val::Float(1.0), Val::Bool(true)),
    ] {
        let kind = type_error("DIV", &a, &b);
        assert_binop_error("DIV", a, b, kind);
    }
}

#[test]
fn float_add_sub_mul_mod() {
    assert_float(binop("ADD", Val::Float(1.5), Val::Float(2.25)), 3.75);
    assert_float(binop("SUB", Val::Float(1.5), Val::Float(2.25)), -0.75);
    assert_float(binop("MUL", Val::Float(1.5), Val::Float(-2.0)), -3.0);
    assert_float(binop("MOD", Val::Float(7.5), Val::Float(2.0)), 1.5);
    assert_float(binop("MOD", Val::Float(-7.5), Val::Float(2.0)), -1.5);
    assert_float(
        binop("ADD", Val::Float(f64::INFINITY), Val::Float(1.0)),
        f64::INFINITY,
    );
    match binop("SUB", Val::Float(f64::INFINITY), Val::Float(f64::INFINITY)) {
        Ok(Val::Float(x)) => assert!(x.is_nan()),
        other => panic!("expected NaN, got {other:?}"),
    }
}

#[test]
fn float_mod_by_zero_is_an_error() {
    assert_binop_error(
        "MOD",
        Val::Float(1.0),
        Val::Float(0.0),
        RuntimeErrorKind::ModuloByZero,
    );
}

// Float mixes with I64 in every arithmetic op, as the current StoffelVM (this asserted a
// type error outside DIV before).
#[test]
fn float_mixes_with_i64_in_every_arithmetic_op() {
    assert_float(binop("ADD", Val::Float(1.5), Val::I64(2)), 3.5);
    assert_float(binop("ADD", Val::I64(2), Val::Float(1.5)), 3.5);
    assert_float(binop("SUB", Val::Float(1.5), Val::I64(2)), -0.5);
    assert_float(binop("SUB", Val::I64(2), Val::Float(1.5)), 0.5);
    assert_float(binop("MUL", Val::Float(1.5), Val::I64(-2)), -3.0);
    assert_float(binop("MUL", Val::I64(3), Val::Float(0.5)), 1.5);
    assert_float(binop("MOD", Val::Float(7.5), Val::I64(2)), 1.5);
    assert_float(binop("MOD", Val::I64(7), Val::Float(2.5)), 2.0);
    assert_binop_error(
        "MOD",
        Val::Float(1.0),
        Val::I64(0),
        RuntimeErrorKind::ModuloByZero,
    );
    // Only I64 mixes: other integer kinds stay type errors.
    for op in ["ADD", "SUB", "MUL", "MOD"] {
        for (a, b) in [
            (Val::Float(1.0), Val::I32(1)),
            (Val::U64(1), Val::Float(1.0)),
        ] {
            let kind = type_error(op, &a, &b);
            assert_binop_error(op, a, b, kind);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// String concatenation
// ---------------------------------------------------------------------------------------------

#[test]
fn add_concatenates_strings() {
    assert_binop(
        "ADD",
        Val::from("foo"),
        Val::from("bar"),
        Val::from("foobar"),
    );
    assert_binop("ADD", Val::from(""), Val::from(""), Val::from(""));
    assert_binop("ADD", Val::from("é"), Val::from("ß"), Val::from("éß"));
    let v = ok("
.function main
    LDI r1, \"a\"
    LDI r2, \"b\"
    ADD r3, r1, r2
    ADD r3, r3, r3
    RET r3
");
    assert_eq!(v, Val::from("abab"));
}

#[test]
fn concatenation_works_across_the_short_string_size() {
    // Strings up to 48 bytes are stored inside the string object, longer ones apart; every
    // length around the boundary, with 2-byte characters that cannot be split, and the
    // results compare equal to the same text built in one piece.
    for (a, b) in [
        ("a".repeat(47), "b".to_owned()),
        ("a".repeat(48), String::new()),
        ("a".repeat(48), "b".to_owned()),
        ("é".repeat(23), "ß".to_owned()),
        ("é".repeat(24), "ß".to_owned()),
        ("x".repeat(100), "y".repeat(100)),
        (String::new(), "z".repeat(49)),
    ] {
        let joined = format!("{a}{b}");
        assert_binop(
            "ADD",
            Val::from(a.as_str()),
            Val::from(b.as_str()),
            Val::from(joined.as_str()),
        );
        let (mut vm, _) = vm_with(
            "
.function same(a, b, whole) registers 5
    ADD r3, r0, r1
    LDI r4, 0
    CMP r3, r2
    JMPNEQ differ
    LDI r4, 1
differ:
    RET r4
",
        );
        let args = [
            Val::from(a.as_str()),
            Val::from(b.as_str()),
            Val::from(joined.as_str()),
        ];
        assert_eq!(vm.execute("same", &args), Ok(Val::I64(1)), "{joined}");
    }
}

// ---------------------------------------------------------------------------------------------
// AND / OR / XOR / NOT
// ---------------------------------------------------------------------------------------------

#[test]
fn bitwise_on_i64() {
    assert_binop("AND", Val::I64(0b1100), Val::I64(0b1010), Val::I64(0b1000));
    assert_binop("OR", Val::I64(0b1100), Val::I64(0b1010), Val::I64(0b1110));
    assert_binop("XOR", Val::I64(0b1100), Val::I64(0b1010), Val::I64(0b0110));
    assert_binop("AND", Val::I64(-1), Val::I64(12345), Val::I64(12345));
    assert_binop(
        "OR",
        Val::I64(i64::MIN),
        Val::I64(1),
        Val::I64(i64::MIN + 1),
    );
    assert_binop("XOR", Val::I64(-1), Val::I64(0), Val::I64(-1));
}

#[test]
fn logical_on_bool() {
    for a in [false, true] {
        for b in [false, true] {
            assert_binop("AND", Val::Bool(a), Val::Bool(b), Val::Bool(a && b));
            assert_binop("OR", Val::Bool(a), Val::Bool(b), Val::Bool(a || b));
            assert_binop("XOR", Val::Bool(a), Val::Bool(b), Val::Bool(a ^ b));
        }
    }
}

// AND/OR/XOR/NOT work on every integer kind, as the current StoffelVM (this asserted a type
// error for I32, U8 and U64 before).
#[test]
fn bitwise_on_every_int_kind() {
    for k in INT_KINDS {
        assert_binop("AND", int_of(k, 12), int_of(k, 10), int_of(k, 8));
        assert_binop("OR", int_of(k, 12), int_of(k, 10), int_of(k, 14));
        assert_binop("XOR", int_of(k, 12), int_of(k, 10), int_of(k, 6));
    }
    assert_binop(
        "AND",
        Val::U64(u64::MAX),
        Val::U64(1 << 63),
        Val::U64(1 << 63),
    );
    assert_binop("XOR", Val::I8(-1), Val::I8(0x0f), Val::I8(-16));
}

#[test]
fn bitwise_on_mixed_or_non_int_kinds_is_a_type_error() {
    let pairs = [
        (Val::I32(1), Val::I64(1)),
        (Val::U8(1), Val::I8(1)),
        (Val::I64(1), Val::Bool(true)),
        (Val::Bool(true), Val::I64(1)),
        (Val::Float(1.0), Val::Float(1.0)),
        (Val::Unit, Val::Unit),
        (Val::from("a"), Val::from("b")),
    ];
    for op in ["AND", "OR", "XOR"] {
        for (a, b) in &pairs {
            assert_binop_error(op, a.clone(), b.clone(), type_error(op, a, b));
        }
    }
}

fn not(v: Val) -> Result<Val, VmError> {
    let mut vm = Vm::new();
    vm.load_assembly(".function f(a)\n    NOT r1, r0\n    RET r1\n")
        .unwrap();
    vm.execute("f", &[v])
}

#[test]
fn not_on_every_int_kind_and_bool() {
    assert_eq!(not(Val::I32(0)), Ok(Val::I32(-1)));
    assert_eq!(not(Val::U8(0x0f)), Ok(Val::U8(0xf0)));
    assert_eq!(not(Val::U64(0)), Ok(Val::U64(u64::MAX)));
    assert_eq!(not(Val::I8(i8::MIN)), Ok(Val::I8(i8::MAX)));
    assert_eq!(not(Val::I64(0)), Ok(Val::I64(-1)));
    assert_eq!(not(Val::I64(5)), Ok(Val::I64(-6)));
    assert_eq!(not(Val::I64(i64::MIN)), Ok(Val::I64(i64::MAX)));
    assert_eq!(not(Val::Bool(true)), Ok(Val::Bool(false)));
    assert_eq!(not(Val::Bool(false)), Ok(Val::Bool(true)));
}

#[test]
fn not_on_other_kinds_is_a_type_error() {
    for v in [Val::Float(1.0), Val::Unit, Val::from("x")] {
        let kind = RuntimeErrorKind::Type {
            op: "NOT",
            left: v.kind(),
            right: None,
        };
        assert_error(not(v), "f", 0, kind);
    }
}

// ---------------------------------------------------------------------------------------------
// SHL / SHR
// ---------------------------------------------------------------------------------------------

#[test]
fn shl_shifts_left_by_a_register() {
    assert_binop("SHL", Val::I64(1), Val::I64(3), Val::I64(8));
    assert_binop("SHL", Val::I64(-1), Val::I64(4), Val::I64(-16));
    assert_binop("SHL", Val::I64(1), Val::I64(63), Val::I64(i64::MIN));
    assert_binop("SHL", Val::I64(3), Val::I64(63), Val::I64(i64::MIN));
    assert_binop("SHL", Val::I64(5), Val::I64(0), Val::I64(5));
}

// A shift amount outside 0..bits is an error, as the current StoffelVM (this asserted
// masking to the low 6 bits before).
#[test]
fn shift_amount_outside_the_width_is_an_error() {
    for op in ["SHL", "SHR"] {
        let out_of_range = |amount| RuntimeErrorKind::ShiftOutOfRange { op, amount };
        let invalid = |amount| RuntimeErrorKind::InvalidShift { op, amount };
        assert_binop_error(op, Val::I64(1), Val::I64(64), out_of_range(64));
        assert_binop_error(op, Val::I64(1), Val::I64(65), out_of_range(65));
        assert_binop_error(op, Val::I64(1), Val::I64(-1), invalid(-1));
        assert_binop_error(op, Val::I64(1), Val::I64(1 << 32), invalid(1 << 32));
        assert_binop_error(op, Val::I64(1), Val::I64(i64::MIN), invalid(i64::MIN));
        assert_binop_error(op, Val::I32(1), Val::I32(32), out_of_range(32));
        assert_binop_error(op, Val::I8(1), Val::I8(-3), invalid(-3));
        assert_binop_error(op, Val::U8(1), Val::U8(8), out_of_range(8));
        assert_binop_error(op, Val::U64(1), Val::U64(64), out_of_range(64));
        // A U64 amount past i64::MAX is reported with the amount u32::MAX.
        assert_binop_error(op, Val::U64(1), Val::U64(u64::MAX), out_of_range(u32::MAX));
    }
}

#[test]
fn shifts_on_every_int_kind() {
    for k in INT_KINDS {
        assert_binop("SHL", int_of(k, 3), int_of(k, 2), int_of(k, 12));
        assert_binop("SHR", int_of(k, 12), int_of(k, 2), int_of(k, 3));
    }
    // Bits shifted out are lost (no overflow check), SHR is arithmetic on signed kinds.
    assert_binop("SHL", Val::U8(0x81), Val::U8(1), Val::U8(2));
    assert_binop("SHL", Val::I8(0x41), Val::I8(1), Val::I8(-126));
    assert_binop("SHR", Val::I8(-128), Val::I8(7), Val::I8(-1));
    assert_binop("SHR", Val::U8(128), Val::U8(7), Val::U8(1));
    assert_binop("SHR", Val::I32(-8), Val::I32(1), Val::I32(-4));
    assert_binop("SHL", Val::U64(1), Val::U64(63), Val::U64(1 << 63));
}

#[test]
fn shr_is_arithmetic() {
    assert_binop("SHR", Val::I64(16), Val::I64(2), Val::I64(4));
    assert_binop("SHR", Val::I64(-16), Val::I64(2), Val::I64(-4));
    assert_binop("SHR", Val::I64(-1), Val::I64(63), Val::I64(-1));
    assert_binop("SHR", Val::I64(i64::MIN), Val::I64(63), Val::I64(-1));
    assert_binop("SHR", Val::I64(-7), Val::I64(1), Val::I64(-4));
    assert_binop("SHR", Val::I64(i64::MAX), Val::I64(62), Val::I64(1));
}

#[test]
fn shifts_on_other_kinds_are_type_errors() {
    let pairs = [
        (Val::I32(1), Val::I64(1)),
        (Val::I64(1), Val::I32(1)),
        (Val::U64(1), Val::I64(1)),
        (Val::Bool(true), Val::I64(1)),
        (Val::I64(1), Val::Unit),
    ];
    for op in ["SHL", "SHR"] {
        for (a, b) in &pairs {
            assert_binop_error(op, a.clone(), b.clone(), type_error(op, a, b));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CMP and the conditional jumps
// ---------------------------------------------------------------------------------------------

/// Returns -1, 0 or 1 from CMP through JMPLT / JMPGT (each taken and not taken).
const CMP_PROBE: &str = "
.function probe(a, b)
    CMP r0, r1
    JMPLT less
    JMPGT greater
    LDI r2, 0
    RET r2
less:
    LDI r2, -1
    RET r2
greater:
    LDI r2, 1
    RET r2

.function eq(a, b)
    CMP r0, r1
    JMPEQ yes
    LDI r2, false
    RET r2
yes:
    LDI r2, true
    RET r2

.function neq(a, b)
    CMP r0, r1
    JMPNEQ yes
    LDI r2, false
    RET r2
yes:
    LDI r2, true
    RET r2
";

fn probe_vm() -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(CMP_PROBE).unwrap();
    vm
}

fn cmp(a: Val, b: Val) -> Result<Val, VmError> {
    probe_vm().execute("probe", &[a, b])
}

#[track_caller]
fn assert_cmp(a: Val, b: Val, expected: i64) {
    let mut vm = probe_vm();
    assert_eq!(
        vm.execute("probe", &[a.clone(), b.clone()]),
        Ok(Val::I64(expected)),
        "CMP {a:?}, {b:?}"
    );
    assert_eq!(
        vm.execute("eq", &[a.clone(), b.clone()]),
        Ok(Val::Bool(expected == 0)),
        "JMPEQ after CMP {a:?}, {b:?}"
    );
    assert_eq!(
        vm.execute("neq", &[a.clone(), b.clone()]),
        Ok(Val::Bool(expected != 0)),
        "JMPNEQ after CMP {a:?}, {b:?}"
    );
}

#[track_caller]
fn assert_cmp_error(a: Val, b: Val, left: &str, right: &str) {
    assert_error(
        cmp(a, b),
        "probe",
        0,
        RuntimeErrorKind::Compare {
            left: left.into(),
            right: right.into(),
        },
    );
}

#[test]
fn cmp_every_int_kind_numerically() {
    for k in INT_KINDS {
        assert_cmp(int_of(k, 1), int_of(k, 2), -1);
        assert_cmp(int_of(k, 2), int_of(k, 2), 0);
        assert_cmp(int_of(k, 3), int_of(k, 2), 1);
    }
    for k in SIGNED {
        assert_cmp(int_of(k, -1), int_of(k, 1), -1);
        assert_cmp(int_of(k, 1), int_of(k, -1), 1);
        assert_cmp(signed_min(k), signed_max(k), -1);
        assert_cmp(signed_max(k), signed_min(k), 1);
    }
    // Unsigned kinds compare as unsigned (not as their two's-complement bits).
    for k in UNSIGNED {
        assert_cmp(unsigned_max(k), int_of(k, 0), 1);
        assert_cmp(int_of(k, 0), unsigned_max(k), -1);
    }
    assert_cmp(Val::U8(200), Val::U8(100), 1);
    assert_cmp(Val::U64(1 << 63), Val::U64(1), 1);
}

#[test]
fn cmp_strings_by_bytes() {
    assert_cmp(Val::from("a"), Val::from("b"), -1);
    assert_cmp(Val::from("abc"), Val::from("abc"), 0);
    assert_cmp(Val::from("abd"), Val::from("abc"), 1);
    assert_cmp(Val::from("ab"), Val::from("abc"), -1);
    assert_cmp(Val::from(""), Val::from("a"), -1);
    assert_cmp(Val::from(""), Val::from(""), 0);
    // Byte order: 'B' (0x42) < 'a' (0x61); 'é' (0xC3 0xA9) > 'z' (0x7A).
    assert_cmp(Val::from("B"), Val::from("a"), -1);
    assert_cmp(Val::from("é"), Val::from("z"), 1);
    assert_cmp(Val::from("\u{ffff}"), Val::from("\u{10000}"), -1);
}

#[test]
fn cmp_bools_false_before_true() {
    assert_cmp(Val::Bool(false), Val::Bool(true), -1);
    assert_cmp(Val::Bool(true), Val::Bool(false), 1);
    assert_cmp(Val::Bool(true), Val::Bool(true), 0);
    assert_cmp(Val::Bool(false), Val::Bool(false), 0);
}

#[test]
fn cmp_floats_numerically() {
    assert_cmp(Val::Float(1.5), Val::Float(2.5), -1);
    assert_cmp(Val::Float(2.5), Val::Float(1.5), 1);
    assert_cmp(Val::Float(2.5), Val::Float(2.5), 0);
    assert_cmp(Val::Float(-0.0), Val::Float(0.0), 0);
    assert_cmp(Val::Float(f64::NEG_INFINITY), Val::Float(-1e308), -1);
    assert_cmp(Val::Float(f64::INFINITY), Val::Float(f64::INFINITY), 0);
}

#[test]
fn cmp_with_nan_is_an_error() {
    assert_cmp_error(Val::Float(f64::NAN), Val::Float(1.0), "NaNf64", "1f64");
    assert_cmp_error(Val::Float(1.5), Val::Float(f64::NAN), "1.5f64", "NaNf64");
    assert_cmp_error(
        Val::Float(f64::NAN),
        Val::Float(f64::NAN),
        "NaNf64",
        "NaNf64",
    );
}

// Any two numbers compare by value, as the current StoffelVM (this asserted an error for
// mixed kinds before); other mixes stay errors naming both values.
#[test]
fn cmp_of_mixed_numeric_kinds_compares_values() {
    assert_cmp(Val::I64(1), Val::I32(1), 0);
    assert_cmp(Val::U8(1), Val::I8(1), 0);
    assert_cmp(Val::I8(-1), Val::U64(u64::MAX), -1);
    assert_cmp(Val::U64(u64::MAX), Val::I64(-1), 1);
    assert_cmp(Val::I64(2), Val::Float(2.0), 0);
    assert_cmp(Val::I64(2), Val::Float(2.5), -1);
    assert_cmp(Val::Float(-2.5), Val::I32(-2), -1);
    assert_cmp(Val::U64(u64::MAX), Val::Float(1.8446744073709552e19), -1);
    assert_cmp(Val::I64(i64::MIN), Val::Float(i64::MIN as f64), 0);
    assert_cmp(Val::I64(i64::MAX), Val::Float(i64::MAX as f64), -1); // 2^63;
    assert_cmp(Val::U16(7), Val::Float(f64::NEG_INFINITY), 1);
    assert_cmp_error(Val::I64(1), Val::Float(f64::NAN), "1", "NaNf64");
}

#[test]
fn cmp_of_other_mixed_kinds_is_an_error_naming_both_values() {
    assert_cmp_error(Val::I64(1), Val::Bool(true), "1", "true");
    assert_cmp_error(Val::from("a"), Val::I64(1), "\"a\"", "1");
    assert_cmp_error(Val::Unit, Val::I64(0), "()", "0");
}

#[test]
fn cmp_of_unit_and_heap_values_is_an_error_even_for_the_same_kind() {
    assert_cmp_error(Val::Unit, Val::Unit, "()", "()");
    let mut vm = probe_vm();
    let o1 = vm.create_object().unwrap();
    let o2 = vm.create_object().unwrap();
    let a = vm.create_array().unwrap();
    let e = runtime_error(vm.execute("probe", &[o1.clone(), o2]));
    assert_eq!(
        (e.function.as_str(), e.instruction, e.kind),
        (
            "probe",
            0,
            RuntimeErrorKind::Compare {
                left: "Object(1)".into(),
                right: "Object(2)".into()
            }
        )
    );
    let e = runtime_error(vm.execute("probe", &[o1.clone(), o1]));
    assert!(matches!(e.kind, RuntimeErrorKind::Compare { .. }), "{e}");
    let e = runtime_error(vm.execute("probe", &[a.clone(), a]));
    assert_eq!(
        e.kind,
        RuntimeErrorKind::Compare {
            left: "Array(3)".into(),
            right: "Array(3)".into()
        }
    );
}

#[test]
fn cmp_error_is_reported_at_the_cmp_instruction() {
    assert_main_error(
        "
.function main
    LDI r1, 1
    LDI r2, true
    CMP r1, r1
    CMP r1, r2
    RET r1
",
        "main",
        3,
        RuntimeErrorKind::Compare {
            left: "1".into(),
            right: "true".into(),
        },
    );
}

#[test]
fn jmp_always_jumps_forward_and_backward() {
    // Sum 1..=10 with a backward jump.
    let v = ok("
.function main
    LDI r1, 0          ; sum
    LDI r2, 1          ; i
    LDI r3, 10
    LDI r4, 1
loop:
    CMP r2, r3
    JMPGT done
    ADD r1, r1, r2
    ADD r2, r2, r4
    JMP loop
done:
    RET r1
");
    assert_eq!(v, Val::I64(55));
    let v = ok("
.function main
    LDI r1, 1
    JMP skip
    LDI r1, 2
skip:
    RET r1
");
    assert_eq!(v, Val::I64(1));
}

#[test]
fn jump_to_a_label_at_the_end_falls_off_the_entry() {
    let v = ok("
.function main
    LDI r0, 7
    JMP end
    LDI r0, 8
end:
");
    assert_eq!(v, Val::I64(7));
}

#[test]
fn conditional_jumps_taken_and_not_taken() {
    // Each of JMPEQ/JMPNEQ/JMPLT/JMPGT after CMP of (1,2), (2,2), (3,2).
    let src = "
.function test(a, b)
    LDI r2, 0
    LDI r3, 1000
    LDI r4, 100
    LDI r5, 10
    LDI r6, 1
    CMP r0, r1
    JMPEQ e
    JMP e_done
e:  ADD r2, r2, r3
e_done:
    JMPNEQ n
    JMP n_done
n:  ADD r2, r2, r4
n_done:
    JMPLT l
    JMP l_done
l:  ADD r2, r2, r5
l_done:
    JMPGT g
    JMP g_done
g:  ADD r2, r2, r6
g_done:
    RET r2
";
    let mut vm = Vm::new();
    vm.load_assembly(src).unwrap();
    let t = |vm: &mut Vm, a, b| vm.execute("test", &[Val::I64(a), Val::I64(b)]);
    assert_eq!(t(&mut vm, 1, 2), Ok(Val::I64(110)));
    assert_eq!(t(&mut vm, 2, 2), Ok(Val::I64(1000)));
    assert_eq!(t(&mut vm, 3, 2), Ok(Val::I64(101)));
}

#[test]
fn jumps_test_only_the_flag_not_the_registers() {
    // The operands change after CMP; the flag does not.
    let v = ok("
.function main
    LDI r1, 1
    LDI r2, 2
    CMP r1, r2
    LDI r1, 5
    JMPLT yes
    LDI r3, false
    RET r3
yes:
    LDI r3, true
    RET r3
");
    assert_eq!(v, Val::Bool(true));
}

#[test]
fn jmpeq_before_any_cmp_in_a_new_frame_is_taken() {
    let v = ok("
.function main
    JMPEQ yes
    LDI r1, false
    RET r1
yes:
    LDI r1, true
    RET r1
");
    assert_eq!(v, Val::Bool(true));
    // A callee's flag starts at 0 even though the caller's is -1.
    let v = ok("
.function callee
    JMPEQ yes
    JMPLT lt
    LDI r1, \"other\"
    RET r1
lt:
    LDI r1, \"inherited\"
    RET r1
yes:
    LDI r1, \"fresh\"
    RET r1
.function main
    LDI r1, 1
    LDI r2, 2
    CMP r1, r2
    CALL callee
    RET r0
");
    assert_eq!(v, Val::from("fresh"));
    // JMPNEQ / JMPLT / JMPGT are not taken on a fresh flag.
    let v = ok("
.function main
    JMPNEQ bad
    JMPLT bad
    JMPGT bad
    LDI r1, true
    RET r1
bad:
    LDI r1, false
    RET r1
");
    assert_eq!(v, Val::Bool(true));
}

#[test]
fn the_callers_flag_survives_a_call() {
    let v = ok("
.function callee
    LDI r1, 9
    LDI r2, 1
    CMP r1, r2
    RET r1
.function main
    LDI r1, 1
    LDI r2, 2
    CMP r1, r2          ; flag -1
    CALL callee         ; callee sets its own flag to +1
    JMPLT yes
    LDI r3, false
    RET r3
yes:
    LDI r3, true
    RET r3
");
    assert_eq!(v, Val::Bool(true));
    // Also across builtin and host calls.
    let (mut vm, out) = vm_with(
        "
.function main
    LDI r1, 1
    LDI r2, 2
    CMP r2, r1          ; flag +1
    PUSHARG r1
    CALL print
    CALL host
    JMPGT yes
    LDI r3, false
    RET r3
yes:
    LDI r3, true
    RET r3
",
    );
    vm.register_function("host", |_, _| Ok(Val::Unit));
    assert_eq!(vm.execute("main", &[]), Ok(Val::Bool(true)));
    assert_eq!(out.lock().unwrap().as_str(), "1\n");
}

// ---------------------------------------------------------------------------------------------
// CALL / RET / PUSHARG
// ---------------------------------------------------------------------------------------------

#[test]
fn call_bytecode_function_and_ret_into_callers_r0() {
    let v = ok("
.function add(a, b)
    ADD r2, r0, r1
    RET r2
.function main
    LDI r0, 99
    LDI r1, 40
    LDI r2, 2
    PUSHARG r1
    PUSHARG r2
    CALL add
    MOV r3, r0
    ADD r3, r3, r1      ; the caller's other registers are intact
    RET r3
");
    assert_eq!(v, Val::I64(82));
}

#[test]
fn pusharg_accumulates_in_order() {
    let v = ok("
.function digits(a, b, c)
    LDI r3, 100
    MUL r0, r0, r3
    LDI r3, 10
    MUL r1, r1, r3
    ADD r0, r0, r1
    ADD r0, r0, r2
    RET r0
.function main
    LDI r1, 1
    PUSHARG r1
    LDI r1, 2
    PUSHARG r1          ; a copy is pushed: changing r1 later does not matter
    LDI r1, 3
    PUSHARG r1
    LDI r1, 4
    CALL digits
    RET r0
");
    assert_eq!(v, Val::I64(123));
}

#[test]
fn call_clears_the_pushed_arguments() {
    let v = ok("
.function one(a)
    RET r0
.function main
    LDI r1, 1
    LDI r2, 2
    PUSHARG r1
    CALL one
    PUSHARG r2
    CALL one            ; only r2: arity 1 matches
    RET r0
");
    assert_eq!(v, Val::I64(2));
}

#[test]
fn call_with_wrong_arity_is_an_error() {
    assert_main_error(
        "
.function add(a, b)
    ADD r2, r0, r1
    RET r2
.function main
    LDI r1, 1
    PUSHARG r1
    CALL add
    RET r0
",
        "main",
        2,
        RuntimeErrorKind::Arity {
            function: "add".into(),
            expected: 2,
            got: 1,
        },
    );
    assert_main_error(
        "
.function none
    RET r0
.function main
    LDI r1, 1
    PUSHARG r1
    PUSHARG r1
    PUSHARG r1
    CALL none
    RET r0
",
        "main",
        4,
        RuntimeErrorKind::Arity {
            function: "none".into(),
            expected: 0,
            got: 3,
        },
    );
}

#[test]
fn call_a_builtin() {
    let v = ok("
.function main
    LDI r1, 5u8
    PUSHARG r1
    CALL type
    RET r0
");
    assert_eq!(v, Val::from("uint8"));
}

#[test]
fn call_a_host_function() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 20
    LDI r2, 1
    PUSHARG r1
    PUSHARG r2
    CALL host_add
    MOV r3, r0
    PUSHARG r3
    PUSHARG r3
    CALL host_add
    RET r0
",
    );
    vm.register_function("host_add", |_, args| match args {
        [Val::I64(a), Val::I64(b)] => Ok(Val::I64(a + b)),
        other => Err(format!("bad args {other:?}").into()),
    });
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(42)));
}

#[test]
fn a_failing_host_function_is_a_runtime_error_at_the_call() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 1
    PUSHARG r1
    CALL fails
    RET r0
",
    );
    vm.register_function("fails", |_, _| Err("nope".into()));
    assert_error(
        vm.execute("main", &[]),
        "main",
        2,
        RuntimeErrorKind::Host {
            function: "fails".into(),
            message: "nope".into(),
            external: None,
        },
    );
    // Still usable.
    vm.register_function("fails", |_, args| Ok(args[0].clone()));
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(1)));
}

#[test]
fn call_to_an_unknown_name_fails_until_a_host_registers_it() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 1
    PUSHARG r1
    CALL later
    RET r0
",
    );
    assert_error(
        vm.execute("main", &[]),
        "main",
        2,
        RuntimeErrorKind::FunctionNotFound("later".into()),
    );
    vm.register_function("later", |_, args| match args {
        [Val::I64(x)] => Ok(Val::I64(x + 41)),
        _ => Err("bad".into()),
    });
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(42)));
}

#[test]
fn call_to_an_unknown_name_works_once_bytecode_defines_it() {
    let (mut vm, _) = vm_with(
        "
.function main
    CALL later
    RET r0
",
    );
    assert_error(
        vm.execute("main", &[]),
        "main",
        0,
        RuntimeErrorKind::FunctionNotFound("later".into()),
    );
    vm.load_assembly(".function later\n    LDI r0, \"here\"\n    RET r0\n")
        .unwrap();
    assert_eq!(vm.execute("main", &[]), Ok(Val::from("here")));
}

#[test]
fn a_later_definition_replaces_an_earlier_one() {
    let (mut vm, _) = vm_with(
        "
.function f
    LDI r0, 1
    RET r0
.function main
    CALL f
    RET r0
",
    );
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(1)));
    vm.load_assembly(".function f\n    LDI r0, 2\n    RET r0\n")
        .unwrap();
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(2)));
    vm.register_function("f", |_, _| Ok(Val::I64(3)));
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(3)));
    vm.load_assembly(".function f\n    LDI r0, 4\n    RET r0\n")
        .unwrap();
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(4)));
}

// A callee falling off its end hands its own r0 to the caller, as the current StoffelVM
// (this asserted Unit before).
#[test]
fn falling_off_a_callee_returns_its_r0_and_the_caller_continues() {
    let (result, out) = run("
.function callee
    LDI r0, 55          ; falling off hands r0 to the caller
.function main
    LDI r0, 1
    CALL callee
    MOV r1, r0
    PUSHARG r1
    CALL print
    LDI r2, 9
    RET r2
");
    assert_eq!(result, Ok(Val::I64(9)));
    assert_eq!(out, "55\n");
}

#[test]
fn falling_off_the_entry_returns_its_r0() {
    assert_eq!(ok(".function main\n    LDI r0, 42\n"), Val::I64(42));
    assert_eq!(
        ok(".function main\n    LDI r1, 42\n    MOV r0, r1\n    LDI r1, 0\n"),
        Val::I64(42)
    );
    assert_eq!(ok(".function main\n    LDI r1, 42\n"), Val::Unit);
    assert_eq!(ok(".function main\n"), Val::Unit);
    // r0 after a call to print is print's Unit.
    let (result, out) = run("
.function main
    LDI r0, 5
    PUSHARG r0
    CALL print
");
    assert_eq!(result, Ok(Val::Unit));
    assert_eq!(out, "5\n");
}

#[test]
fn ret_from_the_middle_of_the_entry() {
    let (result, out) = run("
.function main
    LDI r1, 1
    RET r1
    PUSHARG r1
    CALL print
");
    assert_eq!(result, Ok(Val::I64(1)));
    assert_eq!(out, "");
}

#[test]
fn execute_with_arguments_and_without() {
    let (mut vm, _) = vm_with(
        "
.function f(a, b)
    MOV r2, r1
    RET r0
",
    );
    assert_eq!(
        vm.execute("f", &[Val::I64(1), Val::I64(2)]),
        Ok(Val::I64(1))
    );
    // No arguments: the parameters are Unit.
    assert_eq!(vm.execute("f", &[]), Ok(Val::Unit));
    // Any other count is an arity error.
    assert_error(
        vm.execute("f", &[Val::I64(1)]),
        "f",
        0,
        RuntimeErrorKind::Arity {
            function: "f".into(),
            expected: 2,
            got: 1,
        },
    );
    assert_eq!(
        vm.execute("g", &[]),
        Err(VmError::Api(ApiError::FunctionNotFound("g".into())))
    );
}

#[test]
fn recursion() {
    let src = "
.function fib(n)
    MOV r1, r0
    LDI r2, 2
    CMP r1, r2
    JMPLT small
    LDI r2, 1
    SUB r3, r1, r2
    PUSHARG r3
    CALL fib
    MOV r3, r0
    LDI r2, 2
    SUB r2, r1, r2
    PUSHARG r2
    CALL fib
    ADD r3, r3, r0
    RET r3
small:
    RET r1

.function fact(n)
    LDI r1, 1
    CMP r0, r1
    JMPGT rec
    RET r1
rec:
    MOV r2, r0
    SUB r3, r0, r1
    PUSHARG r3
    CALL fact
    MUL r0, r0, r2
    RET r0
";
    let (mut vm, _) = vm_with(src);
    assert_eq!(vm.execute("fib", &[Val::I64(20)]), Ok(Val::I64(6765)));
    assert_eq!(vm.execute("fib", &[Val::I64(0)]), Ok(Val::I64(0)));
    assert_eq!(
        vm.execute("fact", &[Val::I64(20)]),
        Ok(Val::I64(2_432_902_008_176_640_000))
    );
}

/// `depth(n)` recurses n levels and returns n: frames live at the deepest point = n + 1.
const DEPTH: &str = "
.function depth(n)
    LDI r1, 0
    CMP r0, r1
    JMPEQ base
    MOV r2, r0
    LDI r1, 1
    SUB r3, r0, r1
    PUSHARG r3
    CALL depth           ; instruction 7
    ADD r0, r0, r1
    RET r0
base:
    RET r1
";

#[test]
fn deep_recursion_hits_the_default_depth_limit_cleanly() {
    let (mut vm, _) = vm_with(DEPTH);
    assert_error(
        vm.execute("depth", &[Val::I64(1_000_000)]),
        "depth",
        7,
        RuntimeErrorKind::DepthExceeded(10_000),
    );
    // 10 000 frames are allowed: depth(9_999) uses exactly that many.
    assert_eq!(vm.execute("depth", &[Val::I64(9_999)]), Ok(Val::I64(9_999)));
    assert_error(
        vm.execute("depth", &[Val::I64(10_000)]),
        "depth",
        7,
        RuntimeErrorKind::DepthExceeded(10_000),
    );
}

#[test]
fn max_call_depth_is_configurable() {
    let (mut vm, _) = vm_with(DEPTH);
    vm.set_max_call_depth(5);
    assert_eq!(vm.execute("depth", &[Val::I64(4)]), Ok(Val::I64(4)));
    assert_error(
        vm.execute("depth", &[Val::I64(5)]),
        "depth",
        7,
        RuntimeErrorKind::DepthExceeded(5),
    );
    // Deeper than the default, iteratively: no Rust stack overflow.
    vm.set_max_call_depth(200_001);
    assert_eq!(
        vm.execute("depth", &[Val::I64(200_000)]),
        Ok(Val::I64(200_000))
    );
}

#[test]
fn instruction_limit_stops_an_infinite_loop() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 0           ; 0 + 0 forever (doubling 1 would overflow)
loop:
    ADD r1, r1, r1
    JMP loop
.function short
    LDI r1, 1
    LDI r2, 2
    LDI r3, 3
    RET r3
",
    );
    vm.set_instruction_limit(Some(1000));
    let e = runtime_error(vm.execute("main", &[]));
    assert_eq!(e.function, "main");
    assert_eq!(e.kind, RuntimeErrorKind::FuelExhausted(1000));
    // The budget is per top-level execution.
    assert_eq!(vm.execute("short", &[]), Ok(Val::I64(3)));
    assert_eq!(vm.execute("short", &[]), Ok(Val::I64(3)));
    vm.set_instruction_limit(Some(4));
    assert_eq!(vm.execute("short", &[]), Ok(Val::I64(3)));
    vm.set_instruction_limit(None);
    assert_eq!(vm.execute("short", &[]), Ok(Val::I64(3)));
}

#[test]
fn compare_and_branch_pairs_count_as_two_instructions() {
    // The interpreter runs CMP + JMPLT as one fused op; budgets and limits must still see
    // two instructions, and a limit or step boundary between them must split the pair.
    let (mut vm, _) = vm_with(
        "
.function count(n) registers 4
    LDI r1, 0           ; 0
    LDI r2, 1           ; 1
loop:
    ADD r1, r1, r2      ; 2
    CMP r1, r0          ; 3
    JMPLT loop          ; 4
    RET r1              ; 5
",
    );
    // 5000 iterations: 2 + 3 * 5000 + 1 instructions. The interpreter's step of 4096
    // instructions ends right after a CMP (4096 = 2 + 3 * 1364 + 2).
    let before = vm.instructions_executed();
    assert_eq!(
        vm.execute("count", &[Val::I64(5000)]).unwrap(),
        Val::I64(5000)
    );
    assert_eq!(vm.instructions_executed() - before, 2 + 3 * 5000 + 1);
    // A limit that allows the CMP of the 11th iteration but not its jump.
    vm.set_instruction_limit(Some(2 + 3 * 10 + 2));
    assert_error(
        vm.execute("count", &[Val::I64(5000)]),
        "count",
        4,
        RuntimeErrorKind::FuelExhausted(2 + 3 * 10 + 2),
    );
    // One more: the jump ran and went back to the ADD, which did not.
    vm.set_instruction_limit(Some(2 + 3 * 11));
    assert_error(
        vm.execute("count", &[Val::I64(5000)]),
        "count",
        2,
        RuntimeErrorKind::FuelExhausted(2 + 3 * 11),
    );
    // The ADD, CMP and JMPLT also run as one op: a limit may fall after the ADD too.
    vm.set_instruction_limit(Some(2 + 3 * 10 + 1));
    assert_error(
        vm.execute("count", &[Val::I64(5000)]),
        "count",
        3,
        RuntimeErrorKind::FuelExhausted(2 + 3 * 10 + 1),
    );
}

#[test]
fn add_compare_and_branch_loops_take_any_operands() {
    // ADD; CMP; JMPLT runs as one op only for two integers; a float or string counter, or
    // a failing compare after the addition, must behave as the three instructions do.
    let (mut vm, _) = vm_with(
        "
.function count(start, step, limit) registers 6
    MOV r3, r0          ; 0
    MOV r4, r1          ; 1
    MOV r5, r2          ; 2
loop:
    ADD r3, r3, r4      ; 3
    CMP r3, r5          ; 4
    JMPLT loop          ; 5
    RET r3              ; 6
",
    );
    let count = |vm: &mut stoffel_vm::Vm, args: &[Val]| vm.execute("count", args);
    assert_eq!(
        count(&mut vm, &[Val::I64(0), Val::I64(3), Val::I64(10)]),
        Ok(Val::I64(12))
    );
    assert_eq!(
        count(
            &mut vm,
            &[Val::Float(0.0), Val::Float(0.5), Val::Float(2.0)]
        ),
        Ok(Val::Float(2.0))
    );
    // Strings concatenate, and "a" < "aa" < "aaa" < "b".
    assert_eq!(
        count(
            &mut vm,
            &[Val::from("a"), Val::from("a"), Val::from("aaaa")]
        ),
        Ok(Val::from("aaaa"))
    );
    // The addition is fine, the compare is not: the error names the CMP.
    let error = runtime_error(count(
        &mut vm,
        &[Val::I64(0), Val::I64(1), Val::from("ten")],
    ));
    assert_eq!((error.function.as_str(), error.instruction), ("count", 4));
    assert!(
        matches!(error.kind, RuntimeErrorKind::Compare { .. }),
        "{error}"
    );
    // The addition fails: the error names the ADD.
    let error = runtime_error(count(
        &mut vm,
        &[Val::I64(0), Val::Bool(true), Val::I64(10)],
    ));
    assert_eq!((error.function.as_str(), error.instruction), ("count", 3));
    assert!(
        matches!(error.kind, RuntimeErrorKind::Type { .. }),
        "{error}"
    );
    // Every instruction is counted: 3 + 3 per iteration + RET.
    let before = vm.instructions_executed();
    count(&mut vm, &[Val::I64(0), Val::I64(1), Val::I64(100)]).unwrap();
    assert_eq!(vm.instructions_executed() - before, 3 + 3 * 100 + 1);
}

#[test]
fn fuel_error_names_the_instruction_that_did_not_run() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 0           ; 0 (0 + 0 forever: doubling 1 would overflow)
loop:
    ADD r1, r1, r1      ; 1
    JMP loop            ; 2
.function short
    LDI r1, 1           ; 0
    LDI r2, 2           ; 1
    LDI r3, 3           ; 2
    RET r3              ; 3
",
    );
    vm.set_instruction_limit(Some(3));
    assert_error(
        vm.execute("short", &[]),
        "short",
        3,
        RuntimeErrorKind::FuelExhausted(3),
    );
    vm.set_instruction_limit(Some(1));
    assert_error(
        vm.execute("short", &[]),
        "short",
        1,
        RuntimeErrorKind::FuelExhausted(1),
    );
    // 0, 1, 2 ran; the JMP went back to 1, which did not run.
    vm.set_instruction_limit(Some(3));
    assert_error(
        vm.execute("main", &[]),
        "main",
        1,
        RuntimeErrorKind::FuelExhausted(3),
    );
    // 0, 1, 2, 1 ran: the JMP at 2 is next.
    vm.set_instruction_limit(Some(4));
    assert_error(
        vm.execute("main", &[]),
        "main",
        2,
        RuntimeErrorKind::FuelExhausted(4),
    );
    // More than one interpreter step.
    vm.set_instruction_limit(Some(10_002));
    assert_error(
        vm.execute("main", &[]),
        "main",
        2,
        RuntimeErrorKind::FuelExhausted(10_002),
    );
}

#[test]
fn fuel_counts_instructions_in_callees() {
    let (mut vm, _) = vm_with(
        "
.function callee
    LDI r1, 1           ; 0
    LDI r1, 2           ; 1
    RET r1              ; 2
.function main
    CALL callee         ; 0
    RET r0              ; 1
",
    );
    vm.set_instruction_limit(Some(5));
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(2)));
    vm.set_instruction_limit(Some(3));
    assert_error(
        vm.execute("main", &[]),
        "callee",
        2,
        RuntimeErrorKind::FuelExhausted(3),
    );
}

#[test]
fn callee_upvalues_are_captured_by_name_at_call_time() {
    let src = "
.function show
.upvalues x
    LDI r1, \"x\"
    PUSHARG r1
    CALL get_upvalue
    RET r0
.function main(x)
    CALL show
    RET r0
.function missing
.upvalues nope
    RET r0
.function call_missing
    LDI r1, 1
    CALL missing
    RET r0
";
    let (mut vm, _) = vm_with(src);
    assert_eq!(vm.execute("main", &[Val::I64(7)]), Ok(Val::I64(7)));
    assert_error(
        vm.execute("call_missing", &[]),
        "call_missing",
        1,
        RuntimeErrorKind::UpvalueNotFound("nope".into()),
    );
}

// ---------------------------------------------------------------------------------------------
// Reuse after errors, fresh frames
// ---------------------------------------------------------------------------------------------

const REUSE: &str = "
.function boom(n)
    LDI r1, 0
    DIV r2, r0, r1       ; 1
    RET r2
.function middle(n)
    LDI r1, 5
    PUSHARG r1
    PUSHARG r1
    LDI r2, 1
    CMP r1, r2           ; flag +1, pending stack has 2 values
    PUSHARG r0
    CALL boom            ; arity 1 but 3 pushed: fails here (instruction 6)
    RET r0
.function deep(n)
    PUSHARG r0
    CALL boom
    RET r0
.function main
    LDI r1, \"start\"
    PUSHARG r1
    CALL print
    LDI r1, 3
    PUSHARG r1
    CALL deep
    RET r0
.function fresh
    JMPEQ flag_ok        ; flag must start at 0
    LDI r0, \"stale flag\"
    RET r0
flag_ok:
    LDI r1, 40
    LDI r2, 2
    PUSHARG r1
    PUSHARG r2
    LD r3, [sp-1]        ; 40: only this execution's values are visible
    LD r4, [sp+0]
    ADD r0, r3, r4
    LD r5, [sp-2]        ; out of range: exactly two values pending
    RET r0
.function good
    LDI r1, 6
    LDI r2, 7
    MUL r0, r1, r2
    RET r0
";

#[test]
fn the_vm_is_reusable_after_every_kind_of_error() {
    let (mut vm, out) = vm_with(REUSE);
    assert_error(
        vm.execute("main", &[]),
        "boom",
        1,
        RuntimeErrorKind::DivisionByZero,
    );
    assert_eq!(vm.execute("good", &[]), Ok(Val::I64(42)));
    // The same execution again starts from the beginning.
    assert_error(
        vm.execute("main", &[]),
        "boom",
        1,
        RuntimeErrorKind::DivisionByZero,
    );
    assert_eq!(out.lock().unwrap().as_str(), "start\nstart\n");
    assert_error(
        vm.execute("middle", &[Val::I64(1)]),
        "middle",
        6,
        RuntimeErrorKind::Arity {
            function: "boom".into(),
            expected: 1,
            got: 3,
        },
    );
    assert_error(
        vm.execute("fresh", &[]),
        "fresh",
        10,
        RuntimeErrorKind::StackOutOfBounds { offset: -2, len: 2 },
    );
    assert_eq!(vm.execute("good", &[]), Ok(Val::I64(42)));
    // Depth, fuel and API errors too.
    vm.load_assembly(DEPTH).unwrap();
    assert!(vm.execute("depth", &[Val::I64(100_000)]).is_err());
    assert_eq!(vm.execute("good", &[]), Ok(Val::I64(42)));
    vm.set_instruction_limit(Some(10));
    assert!(vm.execute("depth", &[Val::I64(100)]).is_err());
    vm.set_instruction_limit(None);
    assert_eq!(vm.execute("good", &[]), Ok(Val::I64(42)));
    assert!(vm.execute("nonexistent", &[]).is_err());
    assert!(vm.execute("good", &[Val::I64(1)]).is_err());
    assert_eq!(vm.execute("good", &[]), Ok(Val::I64(42)));
    assert_eq!(vm.execute("depth", &[Val::I64(50)]), Ok(Val::I64(50)));
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn each_execution_starts_with_fresh_frames() {
    let (mut vm, _) = vm_with(REUSE);
    // Leave state behind with an error deep in a call (flag set, values pending).
    assert!(vm.execute("middle", &[Val::I64(1)]).is_err());
    // fresh: flag 0, no pending values from before; fails only at its own LD [sp-2].
    assert_error(
        vm.execute("fresh", &[]),
        "fresh",
        10,
        RuntimeErrorKind::StackOutOfBounds { offset: -2, len: 2 },
    );
    // And after a successful RET in the middle of a function nothing resumes.
    let (mut vm, out) = vm_with(
        "
.function main
    LDI r1, 1
    RET r1
    PUSHARG r1
    CALL print
.function other
    LDI r0, 2
",
    );
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(1)));
    assert_eq!(vm.execute("other", &[]), Ok(Val::I64(2)));
    assert_eq!(vm.execute("other", &[]), Ok(Val::I64(2)));
    assert_eq!(out.lock().unwrap().as_str(), "");
}

#[test]
fn a_host_function_can_re_enter_the_vm() {
    let (mut vm, _) = vm_with(
        "
.function square(x)
    MUL r0, r0, r0
    RET r0
.function main
    LDI r1, 3
    PUSHARG r1
    CALL host
    LDI r1, 1
    ADD r0, r0, r1
    RET r0
",
    );
    vm.register_function("host", |vm, args| {
        let v = vm.execute("square", args)?;
        Ok(vm.execute("square", &[v])?)
    });
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(82)));
}

// ---------------------------------------------------------------------------------------------
// Memory limit
// ---------------------------------------------------------------------------------------------

#[test]
fn memory_limit_stops_runaway_allocation_at_the_allocating_instruction() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, \"x\"         ; 0
loop:
    ADD r1, r1, r1      ; 1: doubles until the limit refuses it
    JMP loop            ; 2
.function good
    LDI r1, \"a\"
    ADD r1, r1, r1
    RET r1
",
    );
    vm.set_memory_limit(Some(1 << 20));
    assert_error(
        vm.execute("main", &[]),
        "main",
        1,
        RuntimeErrorKind::MemoryLimit(1 << 20),
    );
    assert_eq!(vm.execute("good", &[]), Ok(Val::from("aa")));
    vm.set_memory_limit(None);
    assert_eq!(vm.execute("good", &[]), Ok(Val::from("aa")));
}

#[test]
fn memory_limit_stops_a_growing_array() {
    let (mut vm, _) = vm_with(
        "
.function main
    CALL create_array
    MOV r1, r0
loop:
    PUSHARG r1
    PUSHARG r1
    CALL array_push
    JMP loop
",
    );
    vm.set_memory_limit(Some(1 << 20));
    let e = runtime_error(vm.execute("main", &[]));
    assert_eq!(
        (e.function.as_str(), &e.kind),
        ("main", &RuntimeErrorKind::MemoryLimit(1 << 20)),
        "{e}"
    );
    assert!(e.instruction <= 5, "{e}");
    // The array is garbage now; the VM is usable and the heap is reclaimed.
    vm.collect_all();
    assert!(vm.gc_stats().heap_bytes < 1 << 20);
    vm.load_assembly(".function g\n    LDI r0, 1\n").unwrap();
    assert_eq!(vm.execute("g", &[]), Ok(Val::I64(1)));
}

#[test]
fn garbage_does_not_count_against_the_memory_limit() {
    // Each iteration makes a 4 KiB string that is garbage at once: 80 MB allocated in all,
    // far more than the limit, but almost none of it live at any time.
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 0
    LDI r2, 1
    LDI r3, 20000
    LDI r4, \"0123456789012345678901234567890123456789012345678901234567890123\"
    ADD r4, r4, r4
    ADD r4, r4, r4
    ADD r4, r4, r4
    ADD r4, r4, r4
    ADD r4, r4, r4      ; 2 KiB
loop:
    ADD r5, r4, r4      ; 4 KiB, dropped on the next iteration
    ADD r1, r1, r2
    CMP r1, r3
    JMPLT loop
    RET r1
",
    );
    vm.set_memory_limit(Some(1 << 20));
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(20000)));
}

#[test]
fn garbage_objects_do_not_count_against_the_memory_limit() {
    let (mut vm, _) = vm_with(
        "
.function main
    LDI r1, 0
    LDI r2, 1
    LDI r3, 50000
loop:
    CALL create_object  ; garbage at once
    ADD r1, r1, r2
    CMP r1, r3
    JMPLT loop
    RET r1
",
    );
    vm.set_memory_limit(Some(48 * 1024));
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(50000)));
}

#[test]
fn fused_builtin_calls_wait_for_the_collector_and_fail_at_their_call() {
    // create_array(4) and set_field run as fused ops; garbage arrays must not make them
    // fail under a tight limit (the step ends, the collector runs, the op is retried whole)
    // and a live, growing object must fail at its CALL.
    let (mut vm, _) = vm_with(
        "
.function garbage
    LDI r1, 0
    LDI r2, 1
    LDI r3, 50000
    LDI r4, 4
loop:
    PUSHARG r4          ; 4
    CALL create_array   ; 5: garbage after the next iteration
    MOV r5, r0          ; 6
    PUSHARG r5          ; 7
    PUSHARG r1          ; 8
    PUSHARG r1          ; 9
    CALL set_field      ; 10
    ADD r1, r1, r2
    CMP r1, r3
    JMPLT loop
    RET r1

.function growing
    CALL create_object  ; 0
    MOV r1, r0          ; 1
    LDI r2, 0           ; 2
    LDI r3, 1           ; 3
loop:
    PUSHARG r1          ; 4
    PUSHARG r2          ; 5
    PUSHARG r2          ; 6
    CALL set_field      ; 7
    ADD r2, r2, r3      ; 8
    JMP loop            ; 9
",
    );
    vm.set_memory_limit(Some(64 * 1024));
    assert_eq!(vm.execute("garbage", &[]), Ok(Val::I64(50000)));
    assert_error(
        vm.execute("growing", &[]),
        "growing",
        7,
        RuntimeErrorKind::MemoryLimit(64 * 1024),
    );
}

// ---------------------------------------------------------------------------------------------
// Host functions re-entering the VM
// ---------------------------------------------------------------------------------------------

#[test]
fn a_nested_error_does_not_disturb_the_outer_execution() {
    let (mut vm, out) = vm_with(
        "
.function boom
    LDI r1, 0
    DIV r1, r1, r1
    RET r1
.function main
    LDI r1, 1
    LDI r2, 2
    CMP r1, r2
    PUSHARG r1
    PUSHARG r1
    CALL swallow        ; 5
    PUSHARG r1
    LD r3, [sp+0]       ; the outer pending stack is intact
    PUSHARG r0
    CALL print
    JMPLT yes           ; and so is the flag
    RET r1
yes:
    RET r3
.function propagate
    CALL fail_through   ; 0
    RET r0
",
    );
    vm.register_function("swallow", |vm, _| match vm.execute("boom", &[]) {
        Err(VmError::Runtime(e)) => Ok(Val::from(format!("{} {}", e.function, e.instruction))),
        other => Err(format!("unexpected {other:?}").into()),
    });
    vm.register_function("fail_through", |vm, _| Ok(vm.execute("boom", &[])?));
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(1)));
    assert_eq!(out.lock().unwrap().as_str(), "1 boom 1\n");
    let e = runtime_error(vm.execute("propagate", &[]));
    assert_eq!(
        (e.function.as_str(), e.instruction),
        ("propagate", 0),
        "{e}"
    );
    assert!(
        matches!(&e.kind, RuntimeErrorKind::Host { function, .. } if function == "fail_through"),
        "{e}"
    );
    assert_eq!(vm.execute("main", &[]), Ok(Val::I64(1)));
}
