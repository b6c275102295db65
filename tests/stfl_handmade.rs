//! STFL v1 loader and writer on hand-built byte files: every rejection class with its kind and
//! byte offset, the reference's lenient cases, and the writer's exact encoding and limits. The
//! files are built with the small byte builder below, never with `stfl::write`.

use stoffel_vm::program::{
    Constant, FunctionParts, Instruction, Label, MAX_FRAME_SIZE, Program, ProgramError,
};
use stoffel_vm::stfl::{self, LoadError, LoadErrorKind, LoadInfo, WriteError};

/// A little-endian byte builder.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn at(&self) -> usize {
        self.0.len()
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    /// u16 length + bytes.
    fn name(&mut self, v: &[u8]) -> &mut Self {
        self.u16(v.len() as u16).raw(v)
    }
    fn header(&mut self, version: u16) -> &mut Self {
        self.raw(b"STFL").u16(version)
    }
}

// Constant encodings.
fn c_i64(v: i64) -> Vec<u8> {
    let mut b = vec![1];
    b.extend_from_slice(&v.to_le_bytes());
    b
}
fn c_str(v: &[u8]) -> Vec<u8> {
    let mut b = vec![11];
    b.extend_from_slice(&(v.len() as u32).to_le_bytes());
    b.extend_from_slice(v);
    b
}

// Instruction encodings.
fn op(opcode: u8, regs: &[u32]) -> Vec<u8> {
    let mut b = vec![opcode];
    for r in regs {
        b.extend_from_slice(&r.to_le_bytes());
    }
    b
}
fn ldi(dst: u32, constant: u32) -> Vec<u8> {
    op(0x01, &[dst, constant])
}
fn mov(dst: u32, src: u32) -> Vec<u8> {
    op(0x02, &[dst, src])
}
fn ret(src: u32) -> Vec<u8> {
    op(0x12, &[src])
}
fn named(opcode: u8, name: &[u8]) -> Vec<u8> {
    let mut b = vec![opcode];
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(name);
    b
}
fn jmp(name: &str) -> Vec<u8> {
    named(0x0E, name.as_bytes())
}
fn call(name: &str) -> Vec<u8> {
    named(0x11, name.as_bytes())
}

/// Byte offsets of the parts of a file built by [`file`].
#[derive(Debug, Default)]
struct Offsets {
    constants: Vec<usize>,
    function: usize,
    register_count: usize,
    labels: Vec<usize>,
    code: Vec<usize>,
    end: usize,
}

/// A description of a one-function file ("main", no params/upvalues/parent).
struct File<'a> {
    constants: &'a [Vec<u8>],
    register_count: u16,
    labels: &'a [(&'a [u8], u32)],
    code: &'a [Vec<u8>],
}

impl Default for File<'_> {
    fn default() -> Self {
        File {
            constants: &[],
            register_count: 4,
            labels: &[],
            code: &[],
        }
    }
}

fn file(f: File<'_>) -> (Vec<u8>, Offsets) {
    let mut b = Bytes::default();
    let mut o = Offsets::default();
    b.header(1).u32(f.constants.len() as u32);
    for c in f.constants {
        o.constants.push(b.at());
        b.raw(c);
    }
    b.u32(1);
    o.function = b.at();
    b.name(b"main");
    o.register_count = b.at();
    b.u16(f.register_count).u16(0).u16(0).u8(0);
    b.u16(f.labels.len() as u16);
    for (name, target) in f.labels {
        o.labels.push(b.at());
        b.name(name).u32(*target);
    }
    b.u32(f.code.len() as u32);
    for ins in f.code {
        o.code.push(b.at());
        b.raw(ins);
    }
    o.end = b.at();
    (b.0, o)
}

fn load_err(bytes: &[u8]) -> LoadError {
    match stfl::load(bytes) {
        Ok(p) => panic!("loaded, expected an error: {p:?}"),
        Err(e) => e,
    }
}

/// Checks that a whole file loads, then round-trips through the writer.
fn load_ok(bytes: &[u8]) -> (Program, LoadInfo) {
    let (program, info) = stfl::load_with_info(bytes).unwrap_or_else(|e| panic!("{e}"));
    let written = stfl::write(&program).unwrap();
    assert_eq!(stfl::load(&written).unwrap(), program);
    (program, info)
}

// ---------------------------------------------------------------- header

#[test]
fn bad_magic_is_rejected_at_offset_0() {
    let (mut bytes, _) = file(File::default());
    bytes[3] = b'X';
    let err = load_err(&bytes);
    assert_eq!((err.offset, &err.kind), (0, &LoadErrorKind::BadMagic));
    assert_eq!(err.function_index, None);
    assert_eq!(err.to_string(), "byte 0x0000: not an STFL file (bad magic)");
    // A short file that is not a prefix of the magic is bad magic too; a prefix is truncated.
    assert_eq!(load_err(b"SX").kind, LoadErrorKind::BadMagic);
    assert_eq!(load_err(b"\x7fELF\x02\x01").kind, LoadErrorKind::BadMagic);
    for prefix in [&b""[..], b"S", b"STF"] {
        let err = load_err(prefix);
        assert_eq!(err.offset, 0);
        assert!(matches!(
            err.kind,
            LoadErrorKind::Truncated {
                what: "magic",
                needed: 4,
                ..
            }
        ));
    }
}

#[test]
fn versions_above_9_are_rejected_at_offset_4() {
    for version in [10u16, 0x0100, u16::MAX] {
        let mut b = Bytes::default();
        b.header(version).u32(0).u32(0);
        let err = load_err(&b.0);
        assert_eq!(err.offset, 4);
        assert_eq!(err.kind, LoadErrorKind::UnsupportedVersion(version));
    }
    let err = load_err(b"STFL\x02");
    assert_eq!(err.offset, 4);
    assert!(matches!(
        err.kind,
        LoadErrorKind::Truncated {
            what: "version",
            needed: 2,
            available: 1
        }
    ));
}

#[test]
fn version_0_is_accepted_and_reported() {
    let (mut bytes, _) = file(File {
        code: &[ret(0)],
        ..File::default()
    });
    bytes[4] = 0;
    let (program, info) = load_ok(&bytes);
    assert_eq!(
        info,
        LoadInfo {
            version: 0,
            trailing_bytes: 0
        }
    );
    assert_eq!(program.functions()[0].code, [Instruction::Ret { src: 0 }]);
}

#[test]
fn the_smallest_file_is_an_empty_program() {
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(0);
    let (program, info) = load_ok(&b.0);
    assert!(program.functions().is_empty() && program.constants().is_empty());
    assert_eq!(info.trailing_bytes, 0);
    assert_eq!(
        stfl::write(&program).unwrap(),
        b.0,
        "the writer emits the same 14 bytes"
    );
}

#[test]
fn trailing_bytes_are_accepted_and_counted() {
    let (mut bytes, _) = file(File {
        code: &[ret(0)],
        ..File::default()
    });
    let (plain, _) = load_ok(&bytes);
    bytes.extend_from_slice(b"\xFFjunk\x00");
    let (program, info) = load_ok(&bytes);
    assert_eq!(
        info,
        LoadInfo {
            version: 1,
            trailing_bytes: 6
        }
    );
    assert_eq!(program, plain);
}

// ---------------------------------------------------------------- constants

#[test]
fn every_constant_kind_decodes() {
    let mut b = Bytes::default();
    b.header(1).u32(15);
    b.u8(0);
    b.u8(1).raw(&(-2i64).to_le_bytes());
    b.u8(2).raw(&(-3i32).to_le_bytes());
    b.u8(3).raw(&(-4i16).to_le_bytes());
    b.u8(4).raw(&(-5i8).to_le_bytes());
    b.u8(5).u8(250);
    b.u8(6).u16(60_000);
    b.u8(7).u32(4_000_000_000);
    b.u8(8).raw(&u64::MAX.to_le_bytes());
    b.u8(9).raw(&0x7FF8_0000_0000_0001u64.to_le_bytes()); // a NaN with a payload
    b.u8(9).raw(&(-0.0f64).to_bits().to_le_bytes());
    b.u8(10).u8(0);
    b.u8(10).u8(0x7F); // any non-zero byte is true
    b.raw(&c_str("héllo".as_bytes()));
    b.raw(&c_str(b""));
    b.u32(1)
        .name(b"main")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(0)
        .u32(15);
    for i in 0..15 {
        b.raw(&ldi(0, i));
    }
    let (program, _) = load_ok(&b.0);
    let c = program.constants();
    assert_eq!(
        &c[..9],
        &[
            Constant::Unit,
            Constant::I64(-2),
            Constant::I32(-3),
            Constant::I16(-4),
            Constant::I8(-5),
            Constant::U8(250),
            Constant::U16(60_000),
            Constant::U32(4_000_000_000),
            Constant::U64(u64::MAX),
        ]
    );
    assert!(matches!(c[9], Constant::Float(f) if f.to_bits() == 0x7FF8_0000_0000_0001));
    assert!(matches!(c[10], Constant::Float(f) if f.to_bits() == (-0.0f64).to_bits()));
    assert_eq!(
        &c[11..],
        &[
            Constant::Bool(false),
            Constant::Bool(true),
            Constant::String("héllo".into()),
            Constant::String("".into()),
        ]
    );
}

#[test]
fn unknown_constant_tags_are_rejected_at_the_tag() {
    for tag in [12u8, 0x80, 0xFF] {
        let (bytes, o) = file(File {
            constants: &[c_i64(7), vec![tag, 0, 0]],
            ..File::default()
        });
        let err = load_err(&bytes);
        assert_eq!(err.kind, LoadErrorKind::UnknownConstantTag(tag));
        assert_eq!(err.offset, o.constants[1]);
        assert_eq!(err.offset, 10 + 9);
        assert_eq!(err.function_index, None);
        assert_eq!(
            err.to_string(),
            format!("byte 0x0013: unknown constant tag {tag}")
        );
    }
}

#[test]
fn an_unused_constant_pool_entry_is_still_checked() {
    // The writer drops unused constants, but the loader still decodes and checks them.
    let (bytes, o) = file(File {
        constants: &[c_str(b"ok\xC3\x28")],
        code: &[ret(0)],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(
        err.kind,
        LoadErrorKind::InvalidUtf8 {
            what: "string constant"
        }
    );
    assert_eq!(
        err.offset,
        o.constants[0] + 1 + 4 + 2,
        "offset of the first invalid byte"
    );
}

// ---------------------------------------------------------------- UTF-8

#[test]
fn invalid_utf8_is_rejected_at_the_bad_byte_everywhere() {
    let bad: &[u8] = b"a\xFFb";

    // Function name.
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(1);
    let at = b.at();
    b.name(bad).u16(0).u16(0).u16(0).u8(0).u16(0).u32(0);
    let err = load_err(&b.0);
    assert_eq!(
        err.kind,
        LoadErrorKind::InvalidUtf8 {
            what: "function name"
        }
    );
    assert_eq!(
        (err.offset, err.function_index, err.function.as_deref()),
        (at + 3, Some(0), None)
    );

    // Parameter, upvalue and parent names.
    for (what, params, upvalues, parent) in [
        ("parameter name", bad, &b"u"[..], &b"p"[..]),
        ("upvalue name", &b"x"[..], bad, &b"p"[..]),
        ("parent name", &b"x"[..], &b"u"[..], bad),
    ] {
        let mut b = Bytes::default();
        b.header(1).u32(0).u32(1).name(b"f").u16(0);
        b.u16(1);
        let params_at = b.at();
        b.name(params).u16(1);
        let upvalues_at = b.at();
        b.name(upvalues).u8(1);
        let parent_at = b.at();
        b.name(parent).u16(0).u32(0);
        let err = load_err(&b.0);
        let expected = match what {
            "parameter name" => params_at,
            "upvalue name" => upvalues_at,
            _ => parent_at,
        } + 3;
        assert_eq!(err.kind, LoadErrorKind::InvalidUtf8 { what });
        assert_eq!(err.offset, expected, "{what}");
        assert_eq!(err.function.as_deref(), Some("f"));
    }

    // Label name.
    let (bytes, o) = file(File {
        labels: &[(b"ok", 0), (bad, 0)],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(err.kind, LoadErrorKind::InvalidUtf8 { what: "label name" });
    assert_eq!(err.offset, o.labels[1] + 3);
    assert_eq!(
        (err.function.as_deref(), err.instruction),
        (Some("main"), None)
    );

    // Jump label and call target.
    for (opcode, what) in [
        (0x0E, "jump label"),
        (0x16, "jump label"),
        (0x11, "call target"),
    ] {
        let (bytes, o) = file(File {
            code: &[ret(0), named(opcode, b"\xC0\x80")],
            ..File::default()
        });
        let err = load_err(&bytes);
        assert_eq!(err.kind, LoadErrorKind::InvalidUtf8 { what });
        assert_eq!(err.offset, o.code[1] + 3);
        assert_eq!(
            (err.function.as_deref(), err.instruction),
            (Some("main"), Some(1))
        );
    }

    // String constant, with the bad byte after valid multi-byte text.
    let (bytes, o) = file(File {
        constants: &[c_str("€€".as_bytes()), c_str(b"\xE2\x82")],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(
        err.kind,
        LoadErrorKind::InvalidUtf8 {
            what: "string constant"
        }
    );
    assert_eq!(err.offset, o.constants[1] + 5);
}

// ---------------------------------------------------------------- instructions

#[test]
fn every_opcode_decodes_to_its_instruction() {
    use Instruction::*;
    let mut code = vec![op(0x00, &[1]), ldi(2, 0), mov(3, 4)];
    code[0].extend_from_slice(&(-2i32).to_le_bytes());
    for opcode in 0x03..=0x0A {
        code.push(op(opcode, &[5, 6, 7]));
    }
    code.push(op(0x0B, &[8, 9]));
    code.push(op(0x0C, &[10, 11, 12]));
    code.push(op(0x0D, &[13, 14, 15]));
    for opcode in [0x0E, 0x0F, 0x10, 0x15, 0x16] {
        code.push(named(opcode, b"top"));
    }
    code.push(call("print"));
    code.push(ret(16));
    code.push(op(0x13, &[17]));
    code.push(op(0x14, &[18, 19]));
    let (bytes, _) = file(File {
        constants: &[c_i64(1)],
        labels: &[(b"top", 0)],
        code: &code,
        ..File::default()
    });
    let (program, _) = load_ok(&bytes);
    let f = &program.functions()[0];
    assert_eq!(
        f.code,
        [
            Ld { dst: 1, offset: -2 },
            Ldi {
                dst: 2,
                constant: 0
            },
            Mov { dst: 3, src: 4 },
            Add { dst: 5, a: 6, b: 7 },
            Sub { dst: 5, a: 6, b: 7 },
            Mul { dst: 5, a: 6, b: 7 },
            Div { dst: 5, a: 6, b: 7 },
            Mod { dst: 5, a: 6, b: 7 },
            And { dst: 5, a: 6, b: 7 },
            Or { dst: 5, a: 6, b: 7 },
            Xor { dst: 5, a: 6, b: 7 },
            Not { dst: 8, src: 9 },
            Shl {
                dst: 10,
                src: 11,
                amount: 12
            },
            Shr {
                dst: 13,
                src: 14,
                amount: 15
            },
            Jmp { label: 0 },
            JmpEq { label: 0 },
            JmpNeq { label: 0 },
            JmpLt { label: 0 },
            JmpGt { label: 0 },
            Call { callee: 0 },
            Ret { src: 16 },
            PushArg { src: 17 },
            Cmp { a: 18, b: 19 },
        ]
    );
    assert_eq!(program.callees(), ["print"]);
    assert_eq!(f.frame_size(), 20);
    // Each instruction's opcode byte is what the writer emits back.
    for (ins, encoded) in f.code.iter().zip(&code) {
        assert_eq!(ins.opcode(), encoded[0]);
    }
}

#[test]
fn unknown_opcodes_are_rejected_at_the_instruction() {
    // 0x17..=0x19 are NOP, LDS and STS (decoded in every version, as the original does).
    for opcode in [0x1Au8, 0x2A, 0xFF] {
        let (bytes, o) = file(File {
            code: &[
                ret(0),
                ret(0),
                ret(0),
                ret(0),
                ret(0),
                op(opcode, &[1, 2, 3]),
            ],
            ..File::default()
        });
        let err = load_err(&bytes);
        assert_eq!(err.kind, LoadErrorKind::UnknownOpcode(opcode));
        assert_eq!(err.offset, o.code[5]);
        assert_eq!(err.function_index, Some(0));
        assert_eq!(err.function.as_deref(), Some("main"));
        assert_eq!(err.instruction, Some(5));
        assert_eq!(
            err.to_string(),
            format!(
                "byte 0x{:04x} (function #0 'main', instruction 5): unknown opcode 0x{opcode:02x}",
                o.code[5]
            )
        );
    }
}

#[test]
fn ldi_constant_index_out_of_range_is_rejected_at_the_instruction() {
    let (bytes, o) = file(File {
        constants: &[c_i64(1), c_i64(2)],
        code: &[ldi(1, 1), ldi(1, 2)],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(err.offset, o.code[1]);
    assert_eq!((err.function_index, err.instruction), (Some(0), Some(1)));
    assert_eq!(
        err.kind,
        LoadErrorKind::Invalid(Box::new(ProgramError::ConstantOutOfRange {
            function: "main".into(),
            instruction: 1,
            index: 2,
            len: 2,
        }))
    );
    // The message names the place once.
    assert_eq!(
        err.to_string(),
        format!(
            "byte 0x{:04x} (function #0): function 'main', instruction 1: constant index 2 is out of range (the pool has 2)",
            o.code[1]
        )
    );
}

#[test]
fn a_jump_to_an_unknown_label_is_rejected_at_the_jump() {
    let (bytes, o) = file(File {
        labels: &[(b"here", 1)],
        code: &[jmp("here"), jmp("there"), ret(0)],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(
        err.kind,
        LoadErrorKind::UnknownLabel {
            name: "there".into()
        }
    );
    assert_eq!(err.offset, o.code[1]);
    assert_eq!(
        (err.function.as_deref(), err.instruction),
        (Some("main"), Some(1))
    );
    // Labels are per function: another function's label does not count.
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(2);
    b.name(b"a")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(1)
        .name(b"L")
        .u32(0)
        .u32(0);
    let second = b.at();
    b.name(b"b").u16(1).u16(0).u16(0).u8(0).u16(0).u32(1);
    let jump_at = b.at();
    b.raw(&jmp("L"));
    let err = load_err(&b.0);
    assert!(second < jump_at);
    assert_eq!(err.kind, LoadErrorKind::UnknownLabel { name: "L".into() });
    assert_eq!(
        (err.offset, err.function_index, err.instruction),
        (jump_at, Some(1), Some(0))
    );
}

#[test]
fn a_label_beyond_the_code_is_rejected_at_the_label_entry() {
    let (bytes, o) = file(File {
        labels: &[(b"end", 2), (b"past", 3)],
        code: &[ret(0), ret(0)],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(err.offset, o.labels[1]);
    assert_eq!((err.function_index, err.instruction), (Some(0), None));
    assert_eq!(
        err.kind,
        LoadErrorKind::Invalid(Box::new(ProgramError::LabelBeyondCode {
            function: "main".into(),
            label: "past".into(),
            target: 3,
            len: 2,
        }))
    );
    // A target equal to the instruction count (the end of the function) is accepted.
    let (bytes, _) = file(File {
        labels: &[(b"end", 2)],
        code: &[jmp("end"), ret(0)],
        ..File::default()
    });
    let (program, _) = load_ok(&bytes);
    assert_eq!(program.functions()[0].label_target(0), 2);
}

#[test]
fn registers_above_the_frame_limit_are_rejected_at_the_instruction() {
    let limit = MAX_FRAME_SIZE;
    let (bytes, o) = file(File {
        code: &[mov(limit - 1, 0), op(0x03, &[1, limit, 2])],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(err.offset, o.code[1]);
    assert_eq!(err.instruction, Some(1));
    assert_eq!(
        err.kind,
        LoadErrorKind::Invalid(Box::new(ProgramError::RegisterOutOfRange {
            function: "main".into(),
            instruction: 1,
            register: limit,
        }))
    );
    // The highest allowed register loads, and sizes the frame.
    let (bytes, _) = file(File {
        code: &[mov(limit - 1, 0)],
        ..File::default()
    });
    let (program, _) = load_ok(&bytes);
    assert_eq!(program.functions()[0].frame_size(), limit);
    // u32::MAX registers do not overflow anything.
    let (bytes, o) = file(File {
        code: &[ret(u32::MAX)],
        ..File::default()
    });
    assert_eq!(load_err(&bytes).offset, o.code[0]);
}

#[test]
fn oversized_frames_are_rejected_at_the_field_responsible() {
    let (bytes, o) = file(File {
        register_count: 5000,
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(err.offset, o.register_count);
    assert!(matches!(
        err.kind,
        LoadErrorKind::Invalid(e) if matches!(*e, ProgramError::FrameTooLarge { size: 5000, .. })
    ));

    // 4097 (empty) parameter names: the parameter count is at fault.
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(1).name(b"f").u16(2);
    let params_at = b.at();
    b.u16(4097);
    for _ in 0..4097 {
        b.name(b"");
    }
    b.u16(0).u8(0).u16(0).u32(0);
    let err = load_err(&b.0);
    assert_eq!(err.offset, params_at);
    assert!(matches!(
        err.kind,
        LoadErrorKind::Invalid(e) if matches!(*e, ProgramError::FrameTooLarge { size: 4097, .. })
    ));
}

// ---------------------------------------------------------------- counts

#[test]
fn a_14_byte_file_claiming_u32_max_constants_fails_fast() {
    let bytes = b"STFL\x01\x00\xFF\xFF\xFF\xFF\x00\x00\x00\x00";
    assert_eq!(bytes.len(), 14);
    let err = load_err(bytes);
    assert_eq!(err.offset, 6);
    assert_eq!(
        err.kind,
        LoadErrorKind::CountTooLarge {
            what: "constant count",
            count: u64::from(u32::MAX),
            remaining: 4
        }
    );
    assert_eq!(
        err.to_string(),
        "byte 0x0006: constant count 4294967295 is more than the 4 remaining bytes can hold"
    );
}

#[test]
fn huge_counts_and_lengths_fail_fast_at_the_count() {
    // Function count: each record takes at least 15 bytes.
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(2).raw(&[0; 29]);
    let err = load_err(&b.0);
    assert_eq!(err.offset, 10);
    assert_eq!(
        err.kind,
        LoadErrorKind::CountTooLarge {
            what: "function count",
            count: 2,
            remaining: 29
        }
    );
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(u32::MAX);
    assert!(matches!(
        load_err(&b.0).kind,
        LoadErrorKind::CountTooLarge {
            what: "function count",
            ..
        }
    ));

    // String constant length.
    let mut b = Bytes::default();
    b.header(1).u32(1).u8(11).u32(u32::MAX).raw(b"abc");
    let err = load_err(&b.0);
    assert_eq!(err.offset, 11);
    assert_eq!(
        err.kind,
        LoadErrorKind::CountTooLarge {
            what: "string constant length",
            count: u64::from(u32::MAX),
            remaining: 3
        }
    );

    // Label count: 6 bytes each at least.
    let mut b = Bytes::default();
    b.header(1)
        .u32(0)
        .u32(1)
        .name(b"f")
        .u16(0)
        .u16(0)
        .u16(0)
        .u8(0);
    let labels_at = b.at();
    b.u16(u16::MAX).u32(0);
    let err = load_err(&b.0);
    assert_eq!(err.offset, labels_at);
    assert_eq!(
        err.kind,
        LoadErrorKind::CountTooLarge {
            what: "label count",
            count: 65535,
            remaining: 4
        }
    );
    assert_eq!(err.function.as_deref(), Some("f"));

    // Instruction count: 3 bytes each at least (a jump or CALL with an empty name).
    let mut b = Bytes::default();
    b.header(1)
        .u32(0)
        .u32(1)
        .name(b"f")
        .u16(0)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(0);
    let code_at = b.at();
    b.u32(u32::MAX).raw(&ret(0));
    let err = load_err(&b.0);
    assert_eq!(err.offset, code_at);
    assert_eq!(
        err.kind,
        LoadErrorKind::CountTooLarge {
            what: "instruction count",
            count: u64::from(u32::MAX),
            remaining: 5
        }
    );

    // Parameter count and a name length running past the end.
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(1).name(b"f").u16(0);
    let params_at = b.at();
    b.u16(60_000).raw(&[0; 13]);
    let err = load_err(&b.0);
    assert_eq!(
        (err.offset, &err.kind),
        (
            params_at,
            &LoadErrorKind::CountTooLarge {
                what: "parameter count",
                count: 60_000,
                remaining: 13
            }
        )
    );
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(1).u16(u16::MAX).raw(&[0; 13]);
    let err = load_err(&b.0);
    assert_eq!(
        (err.offset, &err.kind),
        (
            14,
            &LoadErrorKind::CountTooLarge {
                what: "function name length",
                count: 65535,
                remaining: 13
            }
        )
    );
}

#[test]
fn counts_that_exactly_fit_are_accepted() {
    // Three empty-named jumps of 3 bytes each fill exactly the bytes promised.
    let (bytes, o) = file(File {
        labels: &[(b"", 0)],
        code: &[jmp(""), jmp(""), jmp("")],
        ..File::default()
    });
    assert_eq!(o.end, bytes.len());
    let (program, _) = load_ok(&bytes);
    assert_eq!(program.functions()[0].code.len(), 3);
    // Constant count = the number of remaining bytes, all Unit, and then no room for the
    // function count: rejected as truncation, not as a count problem.
    let mut b = Bytes::default();
    b.header(1).u32(4).raw(&[0; 4]);
    let err = load_err(&b.0);
    assert_eq!(err.offset, 14);
    assert!(matches!(
        err.kind,
        LoadErrorKind::Truncated {
            what: "function count",
            needed: 4,
            available: 0
        }
    ));
}

// ---------------------------------------------------------------- lenient cases

#[test]
fn parent_flags_other_than_1_mean_no_parent_and_read_nothing_more() {
    for flag in [0u8, 2, 0xFF] {
        let mut b = Bytes::default();
        b.header(1)
            .u32(0)
            .u32(1)
            .name(b"f")
            .u16(1)
            .u16(0)
            .u16(0)
            .u8(flag)
            .u16(0)
            .u32(1)
            .raw(&ret(0));
        let (program, _) = load_ok(&b.0);
        assert_eq!(program.functions()[0].parent, None, "flag {flag}");
        assert_eq!(program.functions()[0].code, [Instruction::Ret { src: 0 }]);
    }
    let mut b = Bytes::default();
    b.header(1)
        .u32(0)
        .u32(1)
        .name(b"f")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(1)
        .name(b"outer")
        .u16(0)
        .u32(0);
    let (program, _) = load_ok(&b.0);
    assert_eq!(program.functions()[0].parent.as_deref(), Some("outer"));
}

#[test]
fn duplicate_labels_let_the_later_entry_win() {
    let (bytes, _) = file(File {
        labels: &[(b"L", 0), (b"M", 1), (b"L", 2)],
        code: &[jmp("L"), ret(0), ret(1)],
        ..File::default()
    });
    let (program, _) = load_ok(&bytes);
    let f = &program.functions()[0];
    assert_eq!(
        f.labels,
        [
            Label {
                name: "M".into(),
                target: 1
            },
            Label {
                name: "L".into(),
                target: 2
            }
        ]
    );
    let Instruction::Jmp { label } = f.code[0] else {
        panic!("{:?}", f.code[0])
    };
    assert_eq!(
        f.label_target(label),
        2,
        "the jump goes to the later target"
    );

    // The earlier entry may even be out of range: only the later one counts.
    let (bytes, _) = file(File {
        labels: &[(b"L", 99), (b"L", 1)],
        code: &[jmp("L")],
        ..File::default()
    });
    let (program, _) = load_ok(&bytes);
    assert_eq!(
        program.functions()[0].labels,
        [Label {
            name: "L".into(),
            target: 1
        }]
    );

    // ... and an out-of-range later entry is reported at the later entry.
    let (bytes, o) = file(File {
        labels: &[(b"L", 0), (b"L", 5)],
        code: &[jmp("L")],
        ..File::default()
    });
    let err = load_err(&bytes);
    assert_eq!(err.offset, o.labels[1]);
    assert!(matches!(
        err.kind,
        LoadErrorKind::Invalid(e) if matches!(*e, ProgramError::LabelBeyondCode { target: 5, .. })
    ));
}

#[test]
fn empty_names_and_duplicate_functions_are_kept() {
    let mut b = Bytes::default();
    b.header(1).u32(1).raw(&c_i64(1)).u32(3);
    b.name(b"main")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(0)
        .u32(1)
        .raw(&ldi(0, 0));
    b.name(b"")
        .u16(0)
        .u16(1)
        .name(b"")
        .u16(1)
        .name(b"")
        .u8(1)
        .name(b"")
        .u16(1)
        .name(b"")
        .u32(0)
        .u32(2);
    b.raw(&jmp("")).raw(&call(""));
    b.name(b"main")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(0)
        .u32(1)
        .raw(&call("main"));
    let (program, _) = load_ok(&b.0);
    let names: Vec<&str> = program
        .functions()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["main", "", "main"]);
    let empty = &program.functions()[1];
    assert_eq!(
        (empty.params.as_slice(), empty.upvalues.as_slice()),
        (&[String::new()][..], &[String::new()][..])
    );
    assert_eq!(empty.parent.as_deref(), Some(""));
    assert_eq!(program.callees(), ["", "main"]);
    assert_eq!(
        program.function("main").unwrap().code,
        [Instruction::Call { callee: 1 }]
    );
}

#[test]
fn call_names_share_one_table_across_functions() {
    let mut b = Bytes::default();
    b.header(1).u32(0).u32(2);
    b.name(b"a")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(0)
        .u32(3)
        .raw(&call("x"))
        .raw(&call("y"))
        .raw(&call("x"));
    b.name(b"b")
        .u16(1)
        .u16(0)
        .u16(0)
        .u8(0)
        .u16(0)
        .u32(2)
        .raw(&call("y"))
        .raw(&call("z"));
    let (program, _) = load_ok(&b.0);
    assert_eq!(program.callees(), ["x", "y", "z"]);
    let callee = |f: usize, i: usize| match program.functions()[f].code[i] {
        Instruction::Call { callee } => program.callees()[callee as usize].as_str(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        [
            callee(0, 0),
            callee(0, 1),
            callee(0, 2),
            callee(1, 0),
            callee(1, 1)
        ],
        ["x", "y", "x", "y", "z"]
    );
}

// ---------------------------------------------------------------- writer

fn program(constants: Vec<Constant>, functions: Vec<FunctionParts>, callees: &[&str]) -> Program {
    Program::new(
        constants,
        functions,
        callees.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap_or_else(|(i, e)| panic!("function {i}: {e}"))
}

#[test]
fn the_writer_emits_the_exact_v1_encoding() {
    use Instruction::*;
    let p = program(
        vec![
            Constant::String("hi".into()),
            Constant::Bool(true),
            Constant::I64(-1),
        ],
        vec![FunctionParts {
            name: "f".into(),
            register_count: 3,
            params: vec!["a".into()],
            upvalues: vec!["u".into()],
            parent: Some("p".into()),
            types: None,
            labels: vec![
                Label {
                    name: "z".into(),
                    target: 0,
                },
                Label {
                    name: "end".into(),
                    target: 4,
                },
            ],
            code: vec![
                Ldi {
                    dst: 1,
                    constant: 2,
                },
                Ld { dst: 2, offset: -1 },
                JmpLt { label: 1 },
                Call { callee: 0 },
            ],
        }],
        &["g"],
    )
    // A program built by Program::new is version 9; this test pins the v1 encoding.
    .with_format(1, None)
    .unwrap();
    let mut b = Bytes::default();
    // Only the used constant remains; the labels come sorted by target.
    b.header(1).u32(1).raw(&c_i64(-1)).u32(1);
    b.name(b"f")
        .u16(3)
        .u16(1)
        .name(b"a")
        .u16(1)
        .name(b"u")
        .u8(1)
        .name(b"p");
    b.u16(2).name(b"z").u32(0).name(b"end").u32(4);
    b.u32(4).raw(&ldi(1, 0));
    b.u8(0x00).u32(2).raw(&(-1i32).to_le_bytes());
    b.raw(&named(0x15, b"end")).raw(&call("g"));
    assert_eq!(stfl::write(&p).unwrap(), b.0);
    assert_eq!(stfl::load(&b.0).unwrap(), p);
}

#[test]
fn the_writer_refuses_lengths_the_format_cannot_hold() {
    let long = "x".repeat(usize::from(u16::MAX) + 1);
    let base = FunctionParts {
        name: "f".into(),
        ..FunctionParts::default()
    };

    let p = program(
        vec![],
        vec![
            base.clone(),
            FunctionParts {
                name: long.clone(),
                ..base.clone()
            },
        ],
        &[],
    );
    let err = stfl::write(&p).unwrap_err();
    assert_eq!(
        err,
        WriteError::TooLong {
            function: Some(1),
            what: "function name",
            len: 65536,
            max: 65535
        }
    );
    assert_eq!(
        err.to_string(),
        "function #1: function name is 65536, above the STFL limit of 65535"
    );

    let p = program(
        vec![],
        vec![FunctionParts {
            upvalues: vec![String::new(); 65536],
            ..base.clone()
        }],
        &[],
    );
    assert!(matches!(
        stfl::write(&p),
        Err(WriteError::TooLong {
            what: "upvalue count",
            len: 65536,
            ..
        })
    ));

    let labels = (0..65536)
        .map(|i| Label {
            name: i.to_string(),
            target: 0,
        })
        .collect();
    let p = program(
        vec![],
        vec![FunctionParts {
            labels,
            ..base.clone()
        }],
        &[],
    );
    assert!(matches!(
        stfl::write(&p),
        Err(WriteError::TooLong {
            what: "label count",
            len: 65536,
            ..
        })
    ));

    let p = program(
        vec![],
        vec![FunctionParts {
            code: vec![Instruction::Call { callee: 0 }],
            ..base.clone()
        }],
        &[&long],
    );
    assert!(matches!(
        stfl::write(&p),
        Err(WriteError::TooLong {
            what: "call target",
            ..
        })
    ));

    // Exactly at the limit is fine and round-trips.
    let name = "y".repeat(usize::from(u16::MAX));
    let p = program(vec![], vec![FunctionParts { name, ..base }], &[]);
    let bytes = stfl::write(&p).unwrap();
    assert_eq!(stfl::load(&bytes).unwrap(), p);
}
