//! Arrays and objects across their storage forms (arrays: up to two elements inline, then a
//! part of their own; objects: up to four fields inline, a list up to eight, then a map):
//! what a program sees must not depend on the form. The expected output is what the VM
//! printed before the compact forms (commit 142a91a), and follows the builtins' rules.

mod common;

use common::{run, runtime_error};

const ARRAYS: &str = r#"
.function main registers 12
    LDI r1, 7
    LDI r2, 8
    LDI r3, 9
    LDI r4, 1
    LDI r5, -1
    LDI r6, "k"
    LDI r8, 200
    LDI r9, 0
    CALL create_array
    MOV r7, r0
    PUSHARG r7
    PUSHARG r4
    PUSHARG r2
    CALL set_field
    PUSHARG r7
    CALL print
    PUSHARG r7
    CALL array_length
    PUSHARG r0
    CALL print
    PUSHARG r7
    PUSHARG r3
    CALL array_push
    PUSHARG r0
    PUSHARG r7
    CALL print
    PUSHARG r7
    PUSHARG r5
    PUSHARG r1
    CALL set_field
    PUSHARG r7
    PUSHARG r6
    PUSHARG r1
    CALL set_field
    PUSHARG r7
    CALL print
    PUSHARG r7
    PUSHARG r6
    CALL get_field
    PUSHARG r0
    CALL print
    PUSHARG r7
    PUSHARG r8
    PUSHARG r3
    CALL set_field
    PUSHARG r7
    CALL array_length
    PUSHARG r0
    CALL print
    PUSHARG r7
    PUSHARG r8
    CALL get_field
    PUSHARG r0
    CALL print
    PUSHARG r7
    PUSHARG r5
    CALL get_field
    PUSHARG r0
    CALL print
    ; a small array with a string key only
    CALL create_array
    MOV r10, r0
    PUSHARG r10
    PUSHARG r6
    PUSHARG r2
    CALL set_field
    PUSHARG r10
    CALL print
    PUSHARG r10
    CALL array_length
    PUSHARG r0
    CALL print
    PUSHARG r10
    PUSHARG r1
    CALL array_push
    PUSHARG r10
    PUSHARG r9
    CALL get_field
    PUSHARG r0
    CALL print
    ; pairs: push two, overwrite, read back, reverse, pop
    CALL create_array
    MOV r11, r0
    PUSHARG r11
    PUSHARG r1
    PUSHARG r2
    CALL array_push
    PUSHARG r11
    PUSHARG r9
    PUSHARG r3
    CALL set_field
    PUSHARG r11
    CALL print
    PUSHARG r11
    CALL reverse
    PUSHARG r11
    CALL print
    PUSHARG r11
    CALL pop
    PUSHARG r0
    PUSHARG r11
    CALL print
    PUSHARG r11
    PUSHARG r7
    CALL extend
    PUSHARG r11
    CALL print
    PUSHARG r11
    CALL clear
    PUSHARG r11
    CALL print
    PUSHARG r11
    PUSHARG r5
    CALL get_field
    RET r0
"#;

const OBJECTS: &str = r#"
.function main registers 14
    CALL create_object
    MOV r1, r0
    LDI r2, "a"
    LDI r3, "b"
    LDI r4, "c"
    LDI r5, "d"
    LDI r6, "e"
    LDI r7, 1
    LDI r8, 2
    LDI r9, 0
    LDI r13, "_"
    ; fields "a" .. "e" through to_string-made keys (other strings than the constants)
    PUSHARG r1
    PUSHARG r2
    PUSHARG r7
    CALL set_field
    PUSHARG r1
    PUSHARG r3
    PUSHARG r7
    CALL set_field
    PUSHARG r1
    PUSHARG r4
    PUSHARG r7
    CALL set_field
    PUSHARG r1
    PUSHARG r5
    PUSHARG r7
    CALL set_field
    PUSHARG r1
    CALL print
    PUSHARG r1
    PUSHARG r6
    PUSHARG r7
    CALL set_field
    PUSHARG r1
    PUSHARG r9
    PUSHARG r8
    CALL set_field
    PUSHARG r1
    PUSHARG r7
    PUSHARG r8
    CALL set_field
    PUSHARG r1
    PUSHARG r13
    PUSHARG r8
    CALL set_field
    PUSHARG r1
    CALL print
    PUSHARG r1
    PUSHARG r8
    PUSHARG r2
    CALL set_field
    PUSHARG r1
    CALL print
    ; "c" made at run time: same key as the constant
    LDI r12, ""
    ADD r10, r12, r4
    PUSHARG r1
    PUSHARG r10
    PUSHARG r9
    CALL set_field
    PUSHARG r1
    PUSHARG r10
    CALL get_field
    PUSHARG r0
    CALL print
    PUSHARG r1
    CALL print
    PUSHARG r1
    PUSHARG r3
    CALL get_field
    PUSHARG r0
    CALL print
    PUSHARG r1
    LDI r11, "zz"
    PUSHARG r11
    CALL get_field
    PUSHARG r0
    CALL print
    PUSHARG r1
    CALL len
    RET r0
"#;

#[test]
fn arrays_behave_the_same_in_every_form() {
    let (result, printed) = run(ARRAYS);
    let expected = [
        "[(), 8]",
        "2",
        "3 [(), 8, 9]",
        "[(), 8, 7]",
        "7",
        "201",
        "9",
        "9",
        "[]",
        "0",
        "7",
        "[9, 8]",
        "[8, 9]",
        "9 [8]",
        "[8, (), 8, 7, (), (), (), (), (), (), (), (), (), (), (), (), ...(186 more)]",
        "[]",
    ];
    assert_eq!(printed.lines().collect::<Vec<_>>(), expected);
    let e = runtime_error(result);
    assert_eq!((e.function.as_str(), e.instruction), ("main", 111), "{e}");
    assert!(
        e.to_string()
            .contains("get_field: array index -1 out of range (length 0)"),
        "{e}"
    );
}

#[test]
fn objects_behave_the_same_in_every_form() {
    let (result, printed) = run(OBJECTS);
    let expected = [
        "{a: 1, b: 1, c: 1, d: 1}",
        "{a: 1, b: 1, c: 1, d: 1, e: 1, 0: 2, 1: 2, _: 2}",
        "{a: 1, b: 1, c: 1, d: 1, e: 1, 0: 2, 1: 2, _: 2, 2: a}",
        "0",
        "{a: 1, b: 1, c: 0, d: 1, e: 1, 0: 2, 1: 2, _: 2, 2: a}",
        "1",
        "()",
    ];
    assert_eq!(printed.lines().collect::<Vec<_>>(), expected);
    let e = runtime_error(result);
    assert_eq!((e.function.as_str(), e.instruction), ("main", 78), "{e}");
    assert!(
        e.to_string()
            .contains("len: First argument must be an array or string"),
        "{e}"
    );
}
