//! Every class of assembly error reports the right line and column and names the problem.

use stoffel_vm::asm::{AsmError, assemble};

/// Assembles `source`, expecting an error at `line`:`column` whose message contains every
/// one of `needles`.
#[track_caller]
fn expect_error(source: &str, line: usize, column: usize, needles: &[&str]) -> AsmError {
    let error = match assemble(source) {
        Ok(program) => panic!("expected an error, got {program:?}\nsource:\n{source}"),
        Err(e) => e,
    };
    assert_eq!(
        (error.line, error.column),
        (line, column),
        "wrong position for: {error}\nsource:\n{source}"
    );
    for needle in needles {
        assert!(
            error.message.contains(needle),
            "message {:?} does not mention {needle:?}",
            error.message
        );
    }
    assert_eq!(
        error.to_string(),
        format!("line {line}, column {column}: {}", error.message)
    );
    error
}

/// Wraps body lines in a `.function main` (line 1), so body line i is line i + 1.
fn in_main(body: &str) -> String {
    format!(".function main\n{body}\n")
}

#[test]
fn unknown_mnemonic() {
    expect_error(&in_main("    FOO r1"), 2, 5, &["unknown mnemonic", "FOO"]);
    expect_error(&in_main("\tPUSH r1"), 2, 2, &["unknown mnemonic", "PUSH"]);
    expect_error(
        &in_main("start: JUMP start"),
        2,
        8,
        &["unknown mnemonic", "JUMP"],
    );
}

#[test]
fn wrong_operand_count() {
    expect_error(
        &in_main("    ADD r1, r2"),
        2,
        5,
        &["ADD takes 3 operands", "found 2"],
    );
    expect_error(
        &in_main("    RET"),
        2,
        5,
        &["RET takes 1 operand", "found 0"],
    );
    expect_error(
        &in_main("    RET r1, r2"),
        2,
        13,
        &["RET takes 1 operand", "found 2"],
    );
    expect_error(
        &in_main("    CALL"),
        2,
        5,
        &["CALL takes 1 operand", "function name"],
    );
    expect_error(
        &in_main("    JMP a, b"),
        2,
        12,
        &["JMP takes 1 operand", "label"],
    );
}

#[test]
fn wrong_operand_kind() {
    expect_error(
        &in_main("    MOV r1, 5"),
        2,
        13,
        &["expected a register", "5"],
    );
    expect_error(
        &in_main("    LDI r1, r2"),
        2,
        13,
        &["expected a constant", "'r2'"],
    );
    expect_error(
        &in_main("    LDI r1, nope"),
        2,
        13,
        &["expected a constant", "'nope'"],
    );
    expect_error(&in_main("    LDI 1, 1"), 2, 9, &["expected a register"]);
    expect_error(&in_main("    JMP 5"), 2, 9, &["expected a label"]);
    expect_error(
        &in_main("    CALL ()"),
        2,
        10,
        &["expected a function name"],
    );
    expect_error(&in_main("    LD r1, r2"), 2, 12, &["expected a stack slot"]);
    expect_error(
        &in_main("    LDI r1, [sp+0]"),
        2,
        13,
        &["expected a constant"],
    );
}

#[test]
fn malformed_operands() {
    expect_error(&in_main("    ADD r1 r2, r3"), 2, 12, &["expected ','"]);
    expect_error(
        &in_main("    ADD r1, , r3"),
        2,
        13,
        &["expected an operand"],
    );
    expect_error(&in_main("    ADD r1, r2,"), 2, 16, &["expected an operand"]);
    expect_error(&in_main("    LDI r1, ( x"), 2, 13, &["()"]);
    expect_error(&in_main("    LD r1, [sp*1]"), 2, 12, &["stack slot"]);
    expect_error(&in_main("    LD r1, [fp+1]"), 2, 12, &["stack slot"]);
    expect_error(&in_main("    LD r1, [sp+1"), 2, 12, &["stack slot"]);
    expect_error(
        &in_main("    LD r1, [sp+2147483648]"),
        2,
        12,
        &["out of range"],
    );
    expect_error(
        &in_main("    LDI r1, @"),
        2,
        13,
        &["expected an operand", "'@'"],
    );
}

#[test]
fn bad_register() {
    expect_error(
        &in_main("    MOV rx, r1"),
        2,
        9,
        &["expected a register", "'rx'"],
    );
    expect_error(&in_main("    MOV r1, r-1"), 2, 14, &["expected ','"]);
    expect_error(
        &in_main("    MOV r1, r"),
        2,
        13,
        &["expected a register", "'r'"],
    );
    expect_error(
        &in_main("    MOV r1, r4096"),
        2,
        13,
        &["r4096", "above the frame limit", "r4095"],
    );
    expect_error(
        &in_main("    RET r99999999999999999999999"),
        2,
        9,
        &["above the frame limit"],
    );
    assert!(assemble(&in_main("    MOV r4095, R0")).is_ok());
}

#[test]
fn integer_literal_out_of_range() {
    expect_error(
        &in_main("    LDI r1, 256u8"),
        2,
        13,
        &["256u8", "out of range", "u8"],
    );
    expect_error(
        &in_main("    LDI r1, -129i8"),
        2,
        13,
        &["out of range", "i8"],
    );
    expect_error(
        &in_main("    LDI r1, -1u64"),
        2,
        13,
        &["out of range", "u64"],
    );
    expect_error(
        &in_main("    LDI r1, 9223372036854775808"),
        2,
        13,
        &["out of range", "i64"],
    );
    expect_error(
        &in_main("    LDI r1, 0xFFi8"),
        2,
        13,
        &["out of range", "i8"],
    );
    expect_error(
        &in_main("    LDI r1, 99999999999999999999999999999999999999999999u64"),
        2,
        13,
        &["out of range", "u64"],
    );
    expect_error(
        &in_main("    LDI r1, 5i7"),
        2,
        13,
        &["unknown suffix", "i7"],
    );
    expect_error(&in_main("    LDI r1, 0x"), 2, 13, &["invalid number"]);
    expect_error(
        &in_main("    LDI r1, 12abc"),
        2,
        13,
        &["unknown suffix", "abc"],
    );
    // The edges are accepted.
    assert!(
        assemble(&in_main(
            "LDI r1, -128i8\nLDI r1, 255u8\nLDI r1, -9223372036854775808"
        ))
        .is_ok()
    );
}

#[test]
fn bad_float_literal() {
    expect_error(
        &in_main("    LDI r1, 1e999"),
        2,
        13,
        &["out of range", "f64:0x"],
    );
    expect_error(&in_main("    LDI r1, 1.2.3"), 2, 13, &["invalid float"]);
    expect_error(&in_main("    LDI r1, 1e"), 2, 13, &["invalid float"]);
    expect_error(&in_main("    LDI r1, f64:0x"), 2, 13, &["float bits"]);
    expect_error(
        &in_main("    LDI r1, f64:0x12345678901234567"),
        2,
        13,
        &["float bits"],
    );
    expect_error(&in_main("    LDI r1, f64:0xZZ"), 2, 13, &["float bits"]);
}

#[test]
fn bad_escape() {
    expect_error(
        &in_main(r#"    LDI r1, "ab\qc""#),
        2,
        16,
        &["unknown escape", "\\q"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "\u{110000}""#),
        2,
        14,
        &["unicode escape"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "\u{d800}""#),
        2,
        14,
        &["not a Unicode scalar value"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "\u{}""#),
        2,
        14,
        &["unicode escape"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "\u{1234567}""#),
        2,
        14,
        &["unicode escape"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "\u41""#),
        2,
        14,
        &["unicode escape"],
    );
    expect_error(&in_main(r#"    CALL "a\x""#), 2, 12, &["unknown escape"]);
    // Columns count characters, not bytes.
    expect_error(
        &in_main("    LDI r1, \"éé\\q\""),
        2,
        16,
        &["unknown escape"],
    );
}

#[test]
fn unterminated_string() {
    expect_error(
        &in_main(r#"    LDI r1, "abc"#),
        2,
        13,
        &["unterminated string"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "abc\""#),
        2,
        13,
        &["unterminated string"],
    );
    expect_error(
        &in_main(r#"    LDI r1, "abc\"#),
        2,
        13,
        &["unterminated string"],
    );
    expect_error(".function \"main\n", 1, 11, &["unterminated string"]);
    expect_error(&in_main("\"label"), 2, 1, &["unterminated string"]);
}

#[test]
fn unknown_label() {
    expect_error(
        &in_main("    JMP nowhere"),
        2,
        9,
        &["unknown label", "nowhere", "main"],
    );
    // Labels belong to one function.
    expect_error(
        ".function a\nthere:\n    RET r0\n.function b\n    JMPEQ there\n",
        5,
        11,
        &["unknown label", "there", "function b"],
    );
    expect_error(
        &in_main("    JMP \"odd one\""),
        2,
        9,
        &["unknown label", "\"odd one\""],
    );
}

#[test]
fn duplicate_label() {
    expect_error(
        &in_main("a:\n    RET r0\n  a:"),
        4,
        3,
        &["duplicate label", "a", "main", "line 2"],
    );
    expect_error(&in_main("x: \"x\": RET r0"), 2, 4, &["duplicate label"]);
    // The same name in two functions is fine.
    assert!(assemble(".function f\na:\n.function g\na:\n").is_ok());
}

#[test]
fn code_before_any_function() {
    expect_error("    RET r0\n", 1, 5, &["before any .function"]);
    expect_error(
        "; comment\nstart:\n",
        2,
        1,
        &["label", "start", "before any .function"],
    );
    expect_error(
        ".upvalues x\n",
        1,
        1,
        &[".upvalues", "before any .function"],
    );
    expect_error(".parent x\n", 1, 1, &[".parent", "before any .function"]);
}

#[test]
fn header_directives_must_come_first() {
    expect_error(
        ".function f\n    RET r0\n.upvalues x\n",
        3,
        1,
        &[".upvalues", "directly after '.function'"],
    );
    expect_error(
        ".function f\nstart:\n  .parent g\n",
        3,
        3,
        &[".parent", "directly after '.function'"],
    );
    expect_error(
        ".function f\n.upvalues x\n.upvalues y\n",
        3,
        1,
        &["duplicate '.upvalues'"],
    );
    expect_error(
        ".function f\n.parent x\n.parent y\n",
        3,
        1,
        &["duplicate '.parent'"],
    );
    expect_error(
        ".function f\n.parent x y\n",
        2,
        11,
        &["expected end of line"],
    );
    expect_error(".function f\n.parent\n", 2, 8, &["expected the parent"]);
    expect_error(
        ".function f\nstart: .parent x\n",
        2,
        8,
        &["directive", "own line"],
    );
    // Either order, blank lines and comments in between are fine.
    let program = assemble(".function f\n\n; c\n.parent p\n.upvalues a, a, \"b c\"\nRET r0\n")
        .expect("assembles");
    let f = &program.functions()[0];
    assert_eq!(f.parent.as_deref(), Some("p"));
    assert_eq!(f.upvalues, ["a", "a", "b c"]);
}

#[test]
fn malformed_function_directive() {
    expect_error(".function\n", 1, 10, &["expected a function name"]);
    expect_error(".function 5\n", 1, 11, &["expected a function name"]);
    expect_error(".function f(a b)\n", 1, 15, &["expected ',' or ')'"]);
    expect_error(".function f(a,)\n", 1, 15, &["expected a parameter name"]);
    expect_error(".function f(a\n", 1, 14, &["expected ',' or ')'"]);
    expect_error(".function f regs 3\n", 1, 13, &["'regs'", "registers N"]);
    expect_error(".function f registers\n", 1, 22, &["register count"]);
    expect_error(".function f registers x\n", 1, 23, &["register count"]);
    expect_error(".function f registers -1\n", 1, 23, &["register count"]);
    expect_error(
        ".function f registers 4097\n",
        1,
        23,
        &["4097", "above the frame limit"],
    );
    expect_error(
        ".function f registers 70000\n",
        1,
        23,
        &["70000", "above the frame limit"],
    );
    expect_error(
        ".function f registers 3 4\n",
        1,
        25,
        &["expected end of line"],
    );
    expect_error(".func f\n", 1, 1, &["unknown directive", ".func"]);
    expect_error(".\n", 1, 1, &["unknown directive"]);
    // Duplicate parameter names are allowed.
    let program = assemble(".function f(a, a) registers 4096\n").expect("assembles");
    assert_eq!(program.functions()[0].params, ["a", "a"]);
}

#[test]
fn too_many_parameters() {
    let params: Vec<String> = (0..4097).map(|i| format!("p{i}")).collect();
    let source = format!(".function f({})\n", params.join(","));
    // Column of the 4097th parameter.
    let column =
        ".function f(".len() + params[..4096].iter().map(|p| p.len() + 1).sum::<usize>() + 1;
    expect_error(&source, 1, column, &["more than 4096 parameters"]);
    let ok = format!(".function f({})\n", params[..4096].join(","));
    let program = assemble(&ok).expect("4096 parameters fit");
    assert_eq!(program.functions()[0].register_count, 4096);
}

#[test]
fn stray_text() {
    expect_error(
        &in_main("    RET r0 ; ok\n  \"lonely\""),
        3,
        3,
        &["label definition"],
    );
    expect_error(
        &in_main("  ?"),
        2,
        3,
        &["expected a label, directive or instruction"],
    );
    expect_error(
        &in_main("  5: RET r0"),
        2,
        3,
        &["expected a label, directive or instruction"],
    );
    expect_error(
        &in_main("    RET r0 x"),
        2,
        12,
        &["expected ',' or end of line"],
    );
}

#[test]
fn errors_point_at_the_right_line_with_crlf_and_tabs() {
    let source = ".function main\r\n\tLDI r1, 1\r\n\r\n\tLDI r1, 300u8\r\n";
    expect_error(source, 4, 10, &["out of range"]);
}

#[test]
fn type_metadata_and_manifest_errors() {
    expect_error(".function f(a: int0)\n", 1, 16, &["bit width"]);
    expect_error(".function f(a: fix<0>)\n", 1, 16, &["bit width"]);
    expect_error(
        ".function f(a: integer)\n",
        1,
        16,
        &["unknown type", "integer"],
    );
    expect_error(".function f(a: list<int64)\n", 1, 26, &["expected '>'"]);
    expect_error(".function f(a) -> \n", 1, 19, &["expected a type"]);
    expect_error(".function f(a) - int64\n", 1, 17, &["expected '->'"]);
    let deep = format!(
        ".function f -> {}int64{}\n",
        "list<".repeat(70),
        ">".repeat(70)
    );
    expect_error(&deep, 1, 16 + 5 * 64, &["nests deeper"]);
    expect_error(
        ".function main\n.version 9\n",
        2,
        1,
        &["before the first .function"],
    );
    expect_error(".version 10\n", 1, 10, &["unsupported STFL version 10"]);
    expect_error(".version 1\n.version 1\n", 2, 1, &["duplicate '.version'"]);
    expect_error(".backend tendermint\n", 1, 10, &["MPC backend"]);
    expect_error(".curve p256\n", 1, 8, &["MPC curve"]);
    expect_error(
        ".client 1 inputs(int<0>) outputs()\n",
        1,
        18,
        &["bit_length"],
    );
    expect_error(
        ".client 1 inputs(fixed<8, 8>) outputs()\n",
        1,
        18,
        &["frac_bits"],
    );
    expect_error(".client 1 outputs()\n", 1, 11, &["expected 'inputs"]);
    expect_error(
        ".demand triples 1 triples 2\n",
        1,
        19,
        &["duplicate 'triples'"],
    );
    expect_error(".demand dynamic yes\n", 1, 17, &["true or false"]);
    expect_error(".demand tuples 3\n", 1, 9, &["expected triples"]);
    // What the version cannot hold is reported at the .version line.
    expect_error(
        ".version 4\n.function f(a: int64)\n",
        1,
        1,
        &["type metadata of function 'f'", "version 5"],
    );
    expect_error(
        ".version 3\n.curve bn254\n",
        1,
        1,
        &["manifest", "version 4"],
    );
    expect_error(".demand randoms 1\n.version 7\n", 2, 1, &["version 8"]);
    // Spill slots are numbers; a slot past the limit is the program check's error.
    expect_error(&in_main("    LDS r1, r2"), 2, 13, &["spill slot"]);
    expect_error(&in_main("    STS -1, r2"), 2, 9, &["spill slot"]);
    expect_error(&in_main("    NOP r1"), 2, 9, &["NOP takes 0 operands"]);
    expect_error(&in_main("    STS 65536, r2"), 2, 5, &["spill slot 65536"]);
}
