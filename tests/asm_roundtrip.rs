//! `assemble(disassemble(p)) == p` for programs with awkward content, and for every compiled
//! conformance program (loaded from STFL).

use std::path::PathBuf;

use stoffel_vm::asm::{assemble, disassemble, looks_like_assembly};
use stoffel_vm::program::{Constant, FunctionParts, Instruction, Label, MAX_FRAME_SIZE, Program};

fn assert_round_trip(program: &Program) {
    let text = disassemble(program);
    match assemble(&text) {
        Ok(back) => assert_eq!(&back, program, "round trip changed the program:\n{text}"),
        Err(e) => panic!("disassembly does not assemble: {e}\n{text}"),
    }
    assert_eq!(
        disassemble(&assemble(&text).expect("reassembles")),
        text,
        "disassembly is not a fixed point"
    );
}

fn awkward_names() -> Vec<String> {
    [
        "",
        " ",
        "a b",
        "a:",
        "a::b",
        "::",
        "x;y",
        "LDI",
        "r1",
        "registers",
        "true",
        "()",
        ".function",
        ".upvalues",
        "\"quoted\"",
        "back\\slash",
        "new\nline",
        "tab\there",
        "cr\rhere",
        "nul\0here",
        "bell\u{7}del\u{7f}nel\u{85}",
        "ls\u{2028}ps\u{2029}",
        "\u{feff}bom",
        "é",
        "中文",
        "😀",
        "1abc",
        "-1",
        "f64:0x0",
        "ok_name.with:colons$",
        "[sp+0]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn every_constant() -> Vec<Constant> {
    use Constant::*;
    vec![
        Unit,
        I64(0),
        I64(i64::MIN),
        I64(i64::MAX),
        I64(-1),
        I32(i32::MIN),
        I32(i32::MAX),
        I16(i16::MIN),
        I16(i16::MAX),
        I8(i8::MIN),
        I8(i8::MAX),
        U8(0),
        U8(u8::MAX),
        U16(u16::MAX),
        U32(u32::MAX),
        U64(u64::MAX),
        U64(0),
        Float(0.0),
        Float(-0.0),
        Float(1.5),
        Float(-1.5),
        Float(0.1),
        Float(1e300),
        Float(-1e300),
        Float(1e-7),
        Float(1e16),
        Float(123456789.0),
        Float(f64::MAX),
        Float(f64::MIN),
        Float(f64::MIN_POSITIVE),
        Float(f64::from_bits(1)),
        Float(f64::from_bits(0x000f_ffff_ffff_ffff)),
        Float(f64::INFINITY),
        Float(f64::NEG_INFINITY),
        Float(f64::NAN),
        Float(f64::from_bits(0x7ff8_0000_dead_beef)),
        Float(f64::from_bits(0x7ff0_0000_0000_0001)),
        Float(f64::from_bits(0xfff8_0000_0000_0000)),
        Float(f64::from_bits(0xffff_ffff_ffff_ffff)),
        Bool(true),
        Bool(false),
        String("".into()),
        String(" ".into()),
        String("Hello, world!".into()),
        String("\"\\\n\t\r\0".into()),
        String("controls \u{1}\u{1f}\u{7f}\u{80}\u{85}\u{9f} end".into()),
        String("; not a comment".into()),
        String("unicode é 中文 😀 \u{2028} \u{feff} \u{10ffff}".into()),
        String("\\u{41}".into()),
    ]
}

/// A program with every kind of awkward content the format allows.
fn nasty_program() -> Program {
    let constants = every_constant();
    let names = awkward_names();
    let callees = names.clone();
    let mut functions = Vec::new();

    // One function per awkward name, with awkward params, upvalues, parent and labels.
    for (i, name) in names.iter().enumerate() {
        let mut code = vec![
            Instruction::Ld { dst: 1, offset: 0 },
            Instruction::Ld { dst: 2, offset: -1 },
            Instruction::Ld {
                dst: 3,
                offset: i32::MIN,
            },
            Instruction::Ld {
                dst: 3,
                offset: i32::MAX,
            },
            Instruction::Call { callee: i as u32 },
            Instruction::Jmp { label: 0 },
            Instruction::JmpEq { label: 1 },
            Instruction::JmpNeq { label: 2 },
            Instruction::JmpLt { label: 3 },
            Instruction::JmpGt { label: 4 },
        ];
        for c in 0..constants.len() as u32 {
            code.push(Instruction::Ldi {
                dst: c % 7,
                constant: (c + i as u32) % constants.len() as u32,
            });
        }
        let labels = vec![
            // Several labels at one index, an end label, a start label, awkward names.
            Label {
                name: name.clone(),
                target: 3,
            },
            Label {
                name: format!("{name}#2"),
                target: 3,
            },
            Label {
                name: format!("{name}#end"),
                target: code.len() as u32,
            },
            Label {
                name: format!("{name}:end:"),
                target: code.len() as u32,
            },
            Label {
                name: format!("{name}#start"),
                target: 0,
            },
        ];
        functions.push(FunctionParts {
            name: name.clone(),
            register_count: (i % 3) as u16,
            params: vec![name.clone(), String::new(), name.clone()],
            upvalues: if i % 2 == 0 {
                vec![name.clone(), "plain".to_owned(), String::new()]
            } else {
                Vec::new()
            },
            parent: if i % 3 == 0 { None } else { Some(name.clone()) },
            types: None,
            labels,
            code,
        });
    }

    // Every instruction kind, including the highest register.
    let top = MAX_FRAME_SIZE - 1;
    functions.push(FunctionParts {
        name: "main".to_owned(),
        register_count: 0,
        params: Vec::new(),
        upvalues: Vec::new(),
        parent: None,
        types: None,
        labels: vec![Label {
            name: "loop".to_owned(),
            target: 1,
        }],
        code: vec![
            Instruction::Ld {
                dst: top,
                offset: 0,
            },
            Instruction::Ldi {
                dst: 0,
                constant: 0,
            },
            Instruction::Mov { dst: 1, src: top },
            Instruction::Add { dst: 1, a: 2, b: 3 },
            Instruction::Sub { dst: 4, a: 5, b: 6 },
            Instruction::Mul { dst: 7, a: 8, b: 9 },
            Instruction::Div {
                dst: 10,
                a: 11,
                b: 12,
            },
            Instruction::Mod {
                dst: 13,
                a: 14,
                b: 15,
            },
            Instruction::And {
                dst: 16,
                a: 17,
                b: 18,
            },
            Instruction::Or {
                dst: 19,
                a: 20,
                b: 21,
            },
            Instruction::Xor {
                dst: 22,
                a: 23,
                b: 24,
            },
            Instruction::Not { dst: 25, src: 26 },
            Instruction::Shl {
                dst: 27,
                src: 28,
                amount: 29,
            },
            Instruction::Shr {
                dst: 30,
                src: 31,
                amount: 32,
            },
            Instruction::Cmp { a: 33, b: 34 },
            Instruction::Jmp { label: 0 },
            Instruction::JmpEq { label: 0 },
            Instruction::JmpNeq { label: 0 },
            Instruction::JmpLt { label: 0 },
            Instruction::JmpGt { label: 0 },
            Instruction::PushArg { src: 35 },
            Instruction::Call { callee: 0 },
            Instruction::Ret { src: 36 },
        ],
    });
    // A second function with the same name, an empty function, and a big declared count.
    functions.push(FunctionParts {
        name: "main".to_owned(),
        register_count: MAX_FRAME_SIZE as u16,
        ..FunctionParts::default()
    });
    functions.push(FunctionParts::default());
    functions.push(FunctionParts {
        name: "only_end_label".to_owned(),
        labels: vec![Label {
            name: "end".to_owned(),
            target: 0,
        }],
        ..FunctionParts::default()
    });

    match Program::new(constants, functions, callees) {
        Ok(program) => program,
        Err((index, e)) => panic!("test program is invalid (function {index}): {e}"),
    }
}

#[test]
fn nasty_program_round_trips() {
    let program = nasty_program();
    // Sanity: the pool really holds every constant (they are all used).
    assert_eq!(program.constants().len(), every_constant().len());
    assert_round_trip(&program);
}

#[test]
fn each_constant_round_trips_alone() {
    for constant in every_constant() {
        let program = Program::new(
            vec![constant.clone()],
            vec![FunctionParts {
                name: "main".to_owned(),
                code: vec![Instruction::Ldi {
                    dst: 0,
                    constant: 0,
                }],
                ..FunctionParts::default()
            }],
            Vec::new(),
        )
        .expect("valid");
        let text = disassemble(&program);
        assert!(
            text.contains(&format!("LDI r0, {constant}")),
            "{constant:?} printed as:\n{text}"
        );
        assert_round_trip(&program);
        let back = assemble(&text).expect("assembles");
        // Bits, not just value equality (NaN payloads, -0.0).
        match (&back.constants()[0], &constant) {
            (Constant::Float(a), Constant::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            (a, b) => assert_eq!(a, b),
        }
    }
}

#[test]
fn each_awkward_name_round_trips_in_every_position() {
    for name in awkward_names() {
        let program = Program::new(
            Vec::new(),
            vec![FunctionParts {
                name: name.clone(),
                register_count: 1,
                params: vec![name.clone()],
                upvalues: vec![name.clone()],
                parent: Some(name.clone()),
                types: None,
                labels: vec![Label {
                    name: name.clone(),
                    target: 1,
                }],
                code: vec![
                    Instruction::Jmp { label: 0 },
                    Instruction::Call { callee: 0 },
                ],
            }],
            vec![name.clone()],
        )
        .expect("valid");
        assert_round_trip(&program);
    }
}

#[test]
fn disassembly_format_is_as_documented() {
    let source = r#"
.function "utils math"(a, "b c") registers 3
.upvalues x, "y z"
.parent outer
start:
    LDI r1, -5i8
    LD r2, [sp-1]
    LD r2, [sp+2]
    JMP "odd label"
"odd label":
    CALL "x y"
end:
two:
"#;
    let program = assemble(source).expect("assembles");
    let expected = r#".function "utils math"(a, "b c") registers 3
.upvalues x, "y z"
.parent outer
start:
    LDI r1, -5i8
    LD r2, [sp-1]
    LD r2, [sp+2]
    JMP "odd label"
"odd label":
    CALL "x y"
end:
two:
"#;
    assert_eq!(disassemble(&program), expected);
    assert_round_trip(&program);
}

#[test]
fn hand_written_awkward_source_round_trips() {
    let source = "\u{feff}; leading BOM and comment\r\n\
        .FUNCTION \"\" ( \"\" , a , a ) REGISTERS 0 ; duplicate params are allowed\r\n\
        .PARENT \"\"\n\
        .Upvalues\n\
        a: b:c: \"\" : ldi R1, 0x7FFFFFFFFFFFFFFF\n\
        \tLdI r2, -0x8000000000000000 ; i64::MIN\n\
        \tldi r3, f64:0X7FF8000000000001\n\
        \tldi r3, F64:0x1\n\
        \tldi r4, \"\\u{1F600}\\u{0}\"\n\
        \tldi r5, ( )\n\
        \tld r6, [ SP + - 3 ]\n\
        \tld r6, [sp]\n\
        \tjmpeq b:c\n\
        \tjmpneq \"\"\n\
        \tcall a:b:c\n\
        end :\n\
        .function main\n\
        .function last(x)\n";
    let program = assemble(source).expect("assembles");
    let f = &program.functions()[0];
    assert_eq!(f.name, "");
    assert_eq!(f.params, ["", "a", "a"]);
    assert_eq!(f.parent.as_deref(), Some(""));
    assert!(f.upvalues.is_empty());
    assert_eq!(f.register_count, 0);
    assert_eq!(f.frame_size(), 7);
    let names: Vec<&str> = f.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["", "a", "b:c", "end"]);
    assert_eq!(f.labels[3].target as usize, f.code.len());
    assert_eq!(program.callees(), ["a:b:c"]);
    assert_eq!(f.code[6], Instruction::Ld { dst: 6, offset: -3 });
    assert_eq!(f.code[7], Instruction::Ld { dst: 6, offset: 0 });
    assert!(program.constants().contains(&Constant::I64(i64::MAX)));
    assert!(program.constants().contains(&Constant::I64(i64::MIN)));
    assert!(
        program
            .constants()
            .contains(&Constant::String("😀\0".into()))
    );
    assert!(
        program
            .constants()
            .iter()
            .any(|c| matches!(c, Constant::Float(v) if v.to_bits() == 0x7ff8_0000_0000_0001))
    );
    // Omitted register counts: highest register + 1, at least the parameter count.
    assert_eq!(program.functions()[1].register_count, 0);
    assert_eq!(program.functions()[2].register_count, 1);
    assert_round_trip(&program);
}

#[test]
fn canonical_pools_make_equivalent_sources_equal() {
    // Different spellings of the same constants and names, repeated: one canonical program.
    let a = assemble(".function f\n LDI r1, 0x10\n LDI r2, 16\n CALL g\n CALL g\n").unwrap();
    let b =
        assemble(".function f registers 3\nLDI r1, 16\nLDI r2, 16i64\ncall \"g\"\nCALL g").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.constants(), [Constant::I64(16)]);
    assert_eq!(a.callees(), ["g"]);
}

#[test]
fn empty_source_is_an_empty_program() {
    let program = assemble("").expect("assembles");
    assert!(program.functions().is_empty());
    assert_eq!(disassemble(&program), "");
    assert_round_trip(&program);
    assert_eq!(assemble("; only a comment\n\n   \n"), Ok(program));
}

#[test]
fn looks_like_assembly_detects_stfl_and_text() {
    assert!(looks_like_assembly(b""));
    assert!(looks_like_assembly(b".function main\n"));
    assert!(looks_like_assembly("; é\n".as_bytes()));
    assert!(!looks_like_assembly(b"STFL\x01\x00"));
    assert!(!looks_like_assembly(b"STFL"));
    assert!(!looks_like_assembly(b"\xff\xfe not utf-8"));
    assert!(looks_like_assembly(b"STF"));
}

fn stflb_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/asm");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data/asm")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("stflb"))
        .collect();
    files.sort();
    files
}

#[test]
fn conformance_programs_round_trip_through_assembly() {
    let files = stflb_files();
    assert!(
        files.len() >= 20,
        "expected the conformance binaries, found {}",
        files.len()
    );
    for path in files {
        let bytes = std::fs::read(&path).expect("readable");
        assert!(!looks_like_assembly(&bytes), "{}", path.display());
        let program = stoffel_vm::stfl::load(&bytes)
            .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
        assert!(program.function("main").is_some(), "{}", path.display());
        assert_round_trip(&program);
    }
}

#[test]
fn every_mnemonic_assembles_to_its_instruction() {
    use stoffel_vm::program::MNEMONICS;
    for mnemonic in MNEMONICS {
        let operands = match mnemonic {
            "LD" => "r1, [sp-1]",
            "LDI" => "r1, 7",
            "MOV" | "NOT" | "CMP" => "r1, r2",
            "JMP" | "JMPEQ" | "JMPNEQ" | "JMPLT" | "JMPGT" => "here",
            "CALL" => "somewhere",
            "RET" | "PUSHARG" => "r3",
            "NOP" => "",
            "LDS" => "r1, 7",
            "STS" => "7, r1",
            _ => "r1, r2, r3",
        };
        let line = |m: &str| format!("{m} {operands}").trim_end().to_owned();
        for spelling in [mnemonic.to_owned(), mnemonic.to_lowercase()] {
            let source = format!(".function f\nhere: {}\n", line(&spelling));
            let program = assemble(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
            let code = &program.functions()[0].code;
            assert_eq!(code.len(), 1);
            assert_eq!(code[0].mnemonic(), mnemonic);
            assert_eq!(
                disassemble(&program),
                format!(
                    ".function f registers {}\nhere:\n    {}\n",
                    program.functions()[0].register_count,
                    line(mnemonic)
                )
            );
        }
    }
}

#[test]
fn every_v9_program_round_trips_through_assembly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-v9");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/conformance-v9") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("stflb") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("readable");
        let program = stoffel_vm::stfl::load(&bytes)
            .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
        assert_eq!(program.version(), 9, "{}", path.display());
        assert_round_trip(&program);
        count += 1;
    }
    assert_eq!(count, 64, "the 64 v9 programs");
}
