//! STFL versions 2 to 9 on hand-built byte files: each version's layout (manifest from v2,
//! backend byte v3, curve byte v4, parameter/result types v5, FunctionType tags 13/14,
//! preprocessing demand v8, NOP/LDS/STS), every new rejection with its kind and offset,
//! truncation inside every new field, the writer writing what was read, and
//! `Program::with_format`'s checks. Files are built with the byte builder below, never with
//! `stfl::write`.

use std::collections::BTreeSet;

use stoffel_vm::program::{
    ClientIo, FormatError, FunctionParts, FunctionType, FunctionTypes, Instruction,
    MAX_SPILL_SLOTS, MAX_TYPE_DEPTH, Manifest, MpcBackend, MpcCurve, PreprocessingDemand, Program,
    ProgramError, ShareType,
};
use stoffel_vm::stfl::{self, LoadError, LoadErrorKind};

#[derive(Default, Clone)]
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
    fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    fn name(&mut self, v: &str) -> &mut Self {
        self.u16(v.len() as u16).raw(v.as_bytes())
    }
}

/// Where the new fields of a file built by [`file`] are.
#[derive(Debug, Default)]
struct Offsets {
    type_count: usize,
    first_type: usize,
    parent_flag: usize,
    code: Vec<usize>,
    manifest: usize,
    backend: usize,
    curve: usize,
    first_share: usize,
}

const LONG_PARAM: &str = "a_parameter_with_a_name_long_enough";

/// One function `main(LONG_PARAM)` plus the fields the version has.
struct Spec {
    version: u16,
    /// Raw v5+ type section: type count, parameter types, result type.
    types: Vec<u8>,
    parent_flag: u8,
    code: Vec<Vec<u8>>,
    backend: u8,
    curve: u8,
    /// Raw share types of client 7's inputs (count given separately).
    inputs: (u32, Vec<u8>),
    demand_dynamic: u8,
}

/// `int64` for `a`, `bool` as the result.
fn typical_types() -> Vec<u8> {
    let mut b = Bytes::default();
    b.u16(1).u8(0).u8(1).u8(64).u8(3);
    b.0
}

fn secret_int(bits: u32) -> Vec<u8> {
    let mut b = Bytes::default();
    b.u8(0).u32(bits);
    b.0
}

impl Spec {
    fn new(version: u16) -> Spec {
        Spec {
            version,
            types: typical_types(),
            parent_flag: 0,
            code: vec![vec![0x12, 0, 0, 0, 0]],
            backend: 1,
            curve: 1,
            inputs: (1, secret_int(64)),
            demand_dynamic: 1,
        }
    }
}

fn file(s: &Spec) -> (Vec<u8>, Offsets) {
    let mut b = Bytes::default();
    let mut o = Offsets::default();
    b.raw(b"STFL").u16(s.version).u32(0).u32(1);
    // A long parameter name: a file cut inside the type metadata still has the bytes the
    // function count promises, so the cut is reported by the type reader itself.
    b.name("main").u16(2).u16(1).name(LONG_PARAM);
    if s.version >= 5 {
        o.type_count = b.at();
        o.first_type = b.at() + 2;
        b.raw(&s.types);
    }
    b.u16(0);
    o.parent_flag = b.at();
    b.u8(s.parent_flag);
    if s.parent_flag == 1 {
        b.name("outer");
    }
    b.u16(0).u32(s.code.len() as u32);
    for ins in &s.code {
        o.code.push(b.at());
        b.raw(ins);
    }
    o.manifest = b.at();
    if s.version >= 2 {
        if s.version >= 3 {
            o.backend = b.at();
            b.u8(s.backend);
        }
        if s.version >= 4 {
            o.curve = b.at();
            b.u8(s.curve);
        }
        b.u32(1).u64(7).u32(s.inputs.0);
        o.first_share = b.at();
        b.raw(&s.inputs.1);
        // One output: fixed<64, 16>.
        b.u32(1).u8(1).u32(64).u32(16);
        if s.version >= 8 {
            b.u64(1).u64(2).u64(3).u64(4).u8(s.demand_dynamic);
        }
    }
    (b.0, o)
}

fn load_err(bytes: &[u8]) -> LoadError {
    match stfl::load(bytes) {
        Ok(p) => panic!("loaded, expected an error: {p:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------- each version's layout

#[test]
fn every_version_loads_its_layout_and_is_written_back_byte_for_byte() {
    for version in 0..=9u16 {
        let spec = Spec::new(version);
        let (bytes, _) = file(&spec);
        let (program, info) =
            stfl::load_with_info(&bytes).unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!((info.version, info.trailing_bytes), (version, 0));
        assert_eq!(program.version(), version);
        let f = &program.functions()[0];
        if version >= 5 {
            assert_eq!(
                f.types,
                Some(FunctionTypes {
                    params: vec![FunctionType::Int {
                        signed: true,
                        bits: 64
                    }],
                    ret: FunctionType::Bool,
                }),
                "v{version}"
            );
        } else {
            assert_eq!(f.types, None, "v{version}");
        }
        let manifest = program.manifest();
        if version < 2 {
            assert_eq!(manifest, None, "v{version}: no manifest before v2");
        } else {
            let m = manifest.expect("a manifest");
            let expected = Manifest {
                backend: if version >= 3 {
                    MpcBackend::Avss
                } else {
                    MpcBackend::HoneyBadger
                },
                curve: if version >= 4 {
                    MpcCurve::Bn254
                } else {
                    MpcCurve::Bls12_381
                },
                clients: vec![ClientIo {
                    client_slot: 7,
                    inputs: vec![ShareType::SecretInt { bit_length: 64 }],
                    outputs: vec![ShareType::SecretFixedPoint {
                        total_bits: 64,
                        fractional_bits: 16,
                    }],
                }],
                demand: if version >= 8 {
                    PreprocessingDemand {
                        triples: 1,
                        randoms: 2,
                        prandbits: 3,
                        prandints: 4,
                        dynamic: true,
                    }
                } else {
                    PreprocessingDemand::default()
                },
            };
            assert_eq!(m, &expected, "v{version}");
        }
        // The writer writes the version that was read, field for field.
        assert_eq!(stfl::write(&program).unwrap(), bytes, "v{version}");
    }
}

#[test]
fn a_default_manifest_and_unknown_types_are_kept_as_none_and_written_back() {
    // What the compiler writes for a program without MPC: the 39-byte zero manifest, and
    // (here) all-unknown types.
    let mut b = Bytes::default();
    b.raw(b"STFL").u16(9).u32(0).u32(1);
    b.name("main").u16(1).u16(1).name("x").u16(1).u8(12).u8(12);
    b.u16(0).u8(0).u16(0).u32(0);
    b.u8(0).u8(0).u32(0).raw(&[0; 32]).u8(0);
    let program = stfl::load(&b.0).unwrap();
    assert_eq!(program.manifest(), None);
    assert_eq!(program.functions()[0].types, None);
    assert_eq!(stfl::write(&program).unwrap(), b.0);
}

#[test]
fn function_type_tags_13_and_14_load_in_every_version_with_types() {
    for version in 5..=9u16 {
        let mut spec = Spec::new(version);
        let mut t = Bytes::default();
        // a: fix64 (13), result: fix<32> (14, 32).
        t.u16(1).u8(13).u8(14).u8(32);
        spec.types = t.0;
        let (bytes, _) = file(&spec);
        let program = stfl::load(&bytes).unwrap_or_else(|e| panic!("v{version}: {e}"));
        let types = program.functions()[0].types.clone().unwrap();
        assert_eq!(types.params, [FunctionType::Fixed { bits: 64 }]);
        assert_eq!(types.ret, FunctionType::Fixed { bits: 32 });
        assert_eq!(stfl::write(&program).unwrap(), bytes);
    }
    // Tag 14 with 64 bits is the same type; the writer spells it 13, as the original does.
    let mut spec = Spec::new(9);
    let mut t = Bytes::default();
    t.u16(1).u8(14).u8(64).u8(12);
    spec.types = t.0;
    let (bytes, _) = file(&spec);
    let program = stfl::load(&bytes).unwrap();
    let written = stfl::write(&program).unwrap();
    assert_eq!(written.len(), bytes.len() - 1);
    assert_eq!(stfl::load(&written).unwrap(), program);
}

#[test]
fn every_function_type_round_trips() {
    use FunctionType::*;
    let every = vec![
        Int {
            signed: false,
            bits: 8,
        },
        Float,
        String,
        Bool,
        Nil,
        Void,
        Secret(Box::new(Int {
            signed: true,
            bits: 64,
        })),
        List(Box::new(List(Box::new(Fixed { bits: 64 })))),
        Dict(Box::new(String), Box::new(Fixed { bits: 7 })),
        Object("Point 3d".into()),
        Generic("Pair".into(), vec![TypeVar("T".into()), Unknown]),
        Generic("Empty".into(), vec![]),
        TypeVar("U".into()),
        Unknown,
    ];
    let params: Vec<std::string::String> = (0..every.len()).map(|i| format!("p{i}")).collect();
    let program = Program::new(
        vec![],
        vec![FunctionParts {
            name: "f".into(),
            params,
            types: Some(FunctionTypes {
                params: every.clone(),
                ret: Void,
            }),
            ..FunctionParts::default()
        }],
        vec![],
    )
    .unwrap();
    let bytes = stfl::write(&program).unwrap();
    assert_eq!(&bytes[4..6], &[9, 0], "Program::new gives version 9");
    let back = stfl::load(&bytes).unwrap();
    assert_eq!(back, program);
    assert_eq!(back.functions()[0].types.as_ref().unwrap().params, every);
    // The assembler reads back what the disassembler prints.
    let text = stoffel_vm::asm::disassemble(&program);
    assert_eq!(stoffel_vm::asm::assemble(&text), Ok(program), "{text}");
}

#[test]
fn nop_lds_and_sts_decode_in_every_version() {
    for version in [0u16, 1, 5, 9] {
        let mut spec = Spec::new(version);
        let mut lds = vec![0x18];
        lds.extend_from_slice(&5u32.to_le_bytes());
        lds.extend_from_slice(&0u32.to_le_bytes()); // slot 0
        let mut sts = vec![0x19];
        sts.extend_from_slice(&9u32.to_le_bytes()); // slot 9
        sts.extend_from_slice(&6u32.to_le_bytes()); // r6
        spec.code = vec![vec![0x17], lds, sts, vec![0x12, 0, 0, 0, 0]];
        let (bytes, _) = file(&spec);
        let program = stfl::load(&bytes).unwrap_or_else(|e| panic!("v{version}: {e}"));
        let f = &program.functions()[0];
        assert_eq!(
            f.code[..3],
            [
                Instruction::Nop,
                Instruction::Lds { dst: 5, slot: 0 },
                Instruction::Sts { slot: 9, src: 6 }
            ]
        );
        // Registers count for the frame (r6), slots do not (slot 9).
        assert_eq!(f.frame_size(), 7);
        assert_eq!(stfl::write(&program).unwrap(), bytes);
    }
}

#[test]
fn a_function_of_nops_loads_however_short_each_instruction_is() {
    // NOP is one byte: the count check before allocating must not assume longer
    // instructions (the stfl_roundtrip fuzz target found a written program refused).
    let mut spec = Spec::new(9);
    spec.code = vec![vec![0x17]; 40];
    spec.code.push(vec![0x12, 0, 0, 0, 0]);
    let (bytes, _) = file(&spec);
    let program = stfl::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(program.functions()[0].code.len(), 41);
    assert_eq!(stfl::write(&program).unwrap(), bytes);
}

// ---------------------------------------------------------------- rejections

#[test]
fn a_parent_flag_other_than_0_or_1_is_an_error_from_version_5() {
    for version in 0..=9u16 {
        let mut spec = Spec::new(version);
        spec.parent_flag = 2;
        let (bytes, o) = file(&spec);
        if version >= 5 {
            let err = load_err(&bytes);
            assert_eq!(err.kind, LoadErrorKind::InvalidParentFlag(2), "v{version}");
            assert_eq!(err.offset, o.parent_flag);
            assert_eq!(err.function.as_deref(), Some("main"));
            assert!(err.to_string().contains("invalid parent presence flag 2"));
        } else {
            // Older readers took it as "no parent"; so do we for those versions.
            let program = stfl::load(&bytes).unwrap_or_else(|e| panic!("v{version}: {e}"));
            assert_eq!(program.functions()[0].parent, None);
        }
    }
    let mut spec = Spec::new(9);
    spec.parent_flag = 1;
    let program = stfl::load(&file(&spec).0).unwrap();
    assert_eq!(program.functions()[0].parent.as_deref(), Some("outer"));
}

#[test]
fn the_parameter_type_count_must_equal_the_parameter_count() {
    for count in [0u16, 2, 0xFFFF] {
        let mut spec = Spec::new(5);
        let mut t = Bytes::default();
        t.u16(count).u8(12).u8(12).u8(12);
        spec.types = t.0;
        let (bytes, o) = file(&spec);
        let err = load_err(&bytes);
        assert_eq!(
            err.kind,
            LoadErrorKind::TypeCountMismatch {
                params: 1,
                types: count as usize
            }
        );
        assert_eq!(err.offset, o.type_count);
        assert_eq!(err.function_index, Some(0));
    }
    // Program::new checks the same for hand-built programs.
    let err = Program::new(
        vec![],
        vec![FunctionParts {
            name: "f".into(),
            params: vec!["a".into(), "b".into()],
            types: Some(FunctionTypes {
                params: vec![FunctionType::Bool],
                ret: FunctionType::Void,
            }),
            ..FunctionParts::default()
        }],
        vec![],
    )
    .unwrap_err();
    assert!(matches!(
        err,
        (
            0,
            ProgramError::TypeCountMismatch {
                params: 2,
                types: 1,
                ..
            }
        )
    ));
}

/// A v9 file whose parameter type is the raw bytes `ty` (result `unknown`).
fn with_param_type(ty: &[u8]) -> (Vec<u8>, Offsets) {
    let mut spec = Spec::new(9);
    let mut t = Bytes::default();
    t.u16(1).raw(ty).u8(12);
    spec.types = t.0;
    file(&spec)
}

#[test]
fn bad_function_types_are_rejected_at_the_type() {
    for tag in [15u8, 0x80, 0xFF] {
        let (bytes, o) = with_param_type(&[tag]);
        let err = load_err(&bytes);
        assert_eq!(err.kind, LoadErrorKind::UnknownTypeTag(tag));
        assert_eq!(err.offset, o.first_type);
    }
    let (bytes, o) = with_param_type(&[14, 0]);
    let err = load_err(&bytes);
    assert_eq!(
        err.kind,
        LoadErrorKind::InvalidType("fixed-point type has a bit width of 0")
    );
    assert_eq!(err.offset, o.first_type);
    for signed in [0u8, 1] {
        let (bytes, o) = with_param_type(&[0, signed, 0]);
        let err = load_err(&bytes);
        assert_eq!(
            err.kind,
            LoadErrorKind::InvalidType("integer type has a bit width of 0")
        );
        assert_eq!(err.offset, o.first_type);
    }
    // A zero width nested inside a list is found too, at the inner type.
    let (bytes, o) = with_param_type(&[7, 7, 14, 0]);
    assert_eq!(load_err(&bytes).offset, o.first_type + 2);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let ok: Vec<u8> = std::iter::repeat_n(6u8, MAX_TYPE_DEPTH - 1)
        .chain([12])
        .collect();
    let (bytes, _) = with_param_type(&ok);
    let program = stfl::load(&bytes).unwrap();
    assert_eq!(stfl::write(&program).unwrap(), bytes);
    for depth in [MAX_TYPE_DEPTH, 100_000] {
        let deep: Vec<u8> = std::iter::repeat_n(6u8, depth).chain([12]).collect();
        let (bytes, o) = with_param_type(&deep);
        let err = load_err(&bytes);
        assert_eq!(
            err.kind,
            LoadErrorKind::InvalidType("type nests too deeply")
        );
        assert_eq!(err.offset, o.first_type + MAX_TYPE_DEPTH);
    }
}

#[test]
fn bad_share_types_and_manifest_tags_are_rejected() {
    let cases: Vec<(Vec<u8>, LoadErrorKind)> = vec![
        (
            secret_int(0),
            LoadErrorKind::InvalidShareType("bit_length must be a positive integer"),
        ),
        (
            {
                let mut b = Bytes::default();
                b.u8(2).u32(0);
                b.0
            },
            LoadErrorKind::InvalidShareType("bit_length must be a positive integer"),
        ),
        (
            {
                let mut b = Bytes::default();
                b.u8(1).u32(0).u32(0);
                b.0
            },
            LoadErrorKind::InvalidShareType("total_bits must be a positive integer"),
        ),
        (
            {
                let mut b = Bytes::default();
                b.u8(1).u32(16).u32(16);
                b.0
            },
            LoadErrorKind::InvalidShareType("frac_bits must be less than total_bits"),
        ),
        (
            {
                let mut b = Bytes::default();
                b.u8(3).u32(64);
                b.0
            },
            LoadErrorKind::UnknownShareTypeTag(3),
        ),
    ];
    for (share, kind) in cases {
        let mut spec = Spec::new(9);
        spec.inputs = (1, share);
        let (bytes, o) = file(&spec);
        let err = load_err(&bytes);
        assert_eq!(err.kind, kind);
        assert_eq!(err.offset, o.first_share);
        assert_eq!(err.function, None, "manifest errors are not in a function");
    }
    let mut spec = Spec::new(3);
    spec.backend = 2;
    let (bytes, o) = file(&spec);
    let err = load_err(&bytes);
    assert_eq!(
        (err.kind, err.offset),
        (LoadErrorKind::UnknownBackend(2), o.backend)
    );
    let mut spec = Spec::new(4);
    spec.curve = 6;
    let (bytes, o) = file(&spec);
    let err = load_err(&bytes);
    assert_eq!(
        (err.kind, err.offset),
        (LoadErrorKind::UnknownCurve(6), o.curve)
    );
    // Counts are checked against the bytes left before anything is allocated.
    let mut spec = Spec::new(9);
    spec.inputs = (u32::MAX, vec![]);
    let err = load_err(&file(&spec).0);
    assert!(
        matches!(
            err.kind,
            LoadErrorKind::CountTooLarge {
                what: "client input count",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_dynamic_flag_is_any_non_zero_byte() {
    let mut spec = Spec::new(8);
    spec.demand_dynamic = 7;
    let (bytes, _) = file(&spec);
    let program = stfl::load(&bytes).unwrap();
    assert!(program.manifest().unwrap().demand.dynamic);
    // Written back canonically as 1: the only byte that differs.
    let written = stfl::write(&program).unwrap();
    assert_eq!(written.len(), bytes.len());
    assert_eq!(written.last(), Some(&1));
    assert_eq!(stfl::load(&written).unwrap(), program);
}

#[test]
fn a_spill_slot_above_the_limit_is_rejected_at_the_instruction() {
    let mut spec = Spec::new(9);
    let mut sts = vec![0x19];
    sts.extend_from_slice(&MAX_SPILL_SLOTS.to_le_bytes());
    sts.extend_from_slice(&0u32.to_le_bytes());
    spec.code = vec![vec![0x17], sts];
    let (bytes, o) = file(&spec);
    let err = load_err(&bytes);
    assert_eq!(err.offset, o.code[1]);
    assert_eq!(err.instruction, Some(1));
    assert!(
        matches!(&err.kind, LoadErrorKind::Invalid(e) if matches!(**e, ProgramError::SlotOutOfRange { slot, .. } if slot == MAX_SPILL_SLOTS)),
        "{err}"
    );
}

#[test]
fn every_truncation_inside_the_new_fields_is_a_clean_error() {
    let mut spec = Spec::new(9);
    let mut lds = vec![0x18];
    lds.extend_from_slice(&1u32.to_le_bytes());
    lds.extend_from_slice(&2u32.to_le_bytes());
    let mut sts = vec![0x19];
    sts.extend_from_slice(&2u32.to_le_bytes());
    sts.extend_from_slice(&1u32.to_le_bytes());
    spec.code = vec![lds, sts];
    let mut t = Bytes::default();
    // a: dict<object<"P">, generic<"G", var<"T">>>, result: fix<16>.
    t.u16(1)
        .u8(8)
        .u8(9)
        .name("P")
        .u8(10)
        .name("G")
        .u16(1)
        .u8(11)
        .name("T");
    t.u8(14).u8(16);
    spec.types = t.0;
    spec.parent_flag = 1;
    let (bytes, _) = file(&spec);
    let program = stfl::load(&bytes).unwrap();
    assert_eq!(stfl::write(&program).unwrap(), bytes);
    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    for len in 0..bytes.len() {
        let err = load_err(&bytes[..len]);
        assert!(err.offset <= len, "prefix {len}: {err}");
        match err.kind {
            LoadErrorKind::Truncated { what, .. } | LoadErrorKind::CountTooLarge { what, .. } => {
                seen.insert(what);
            }
            other => panic!("prefix {len}: unexpected {other:?}"),
        }
    }
    // A cut inside a client's slot or a share type's first field leaves less than the count
    // before it promises, so that count reports it (checked before anything is allocated).
    for field in [
        "parameter type count",
        "function type tag",
        "object type name length",
        "generic parameter count",
        "type variable name length",
        "fixed-point type bit width",
        "spill slot",
        "register operand",
        "MPC backend",
        "MPC curve",
        "client count",
        "client input count",
        "client output count",
        "fixed-point fractional bits",
        "preprocessing triples",
        "preprocessing prandints",
        "preprocessing dynamic flag",
    ] {
        assert!(
            seen.contains(field),
            "no truncation reported in {field}: {seen:?}"
        );
    }
}

// ---------------------------------------------------------------- with_format

#[test]
fn with_format_refuses_what_the_version_cannot_hold() {
    let typed = Program::new(
        vec![],
        vec![FunctionParts {
            name: "f".into(),
            types: Some(FunctionTypes {
                params: vec![],
                ret: FunctionType::Bool,
            }),
            ..FunctionParts::default()
        }],
        vec![],
    )
    .unwrap();
    assert_eq!(typed.version(), 9);
    assert!(matches!(
        typed.clone().with_format(4, None),
        Err(FormatError::NeedsVersion {
            needs: 5,
            version: 4,
            ..
        })
    ));
    assert_eq!(
        typed.clone().with_format(10, None),
        Err(FormatError::UnsupportedVersion(10))
    );
    let plain = Program::new(vec![], vec![], vec![]).unwrap();
    let needs = |m: Manifest, version| match plain.clone().with_format(version, Some(m)) {
        Err(FormatError::NeedsVersion { needs, .. }) => needs,
        other => panic!("{other:?}"),
    };
    let curve = Manifest {
        curve: MpcCurve::Secp256r1,
        ..Manifest::default()
    };
    assert_eq!(needs(curve.clone(), 3), 4);
    assert_eq!(
        needs(
            Manifest {
                backend: MpcBackend::Avss,
                ..Manifest::default()
            },
            2
        ),
        3
    );
    let demand = Manifest {
        demand: PreprocessingDemand {
            dynamic: true,
            ..PreprocessingDemand::default()
        },
        ..Manifest::default()
    };
    assert_eq!(needs(demand, 7), 8);
    assert_eq!(
        needs(
            Manifest {
                clients: vec![ClientIo::default()],
                ..Manifest::default()
            },
            1
        ),
        2
    );
    // A default manifest is no manifest, in every version.
    let p = plain
        .clone()
        .with_format(1, Some(Manifest::default()))
        .unwrap();
    assert_eq!(p.manifest(), None);
    // Share types the original refuses are refused here too.
    let bad = Manifest {
        clients: vec![ClientIo {
            client_slot: 0,
            inputs: vec![],
            outputs: vec![ShareType::SecretUInt { bit_length: 0 }],
        }],
        ..Manifest::default()
    };
    assert!(matches!(
        plain.clone().with_format(9, Some(bad)),
        Err(FormatError::InvalidShareType {
            direction: "output",
            ..
        })
    ));
    // What fits is written in that version and read back equal.
    let p = plain.with_format(4, Some(curve)).unwrap();
    let bytes = stfl::write(&p).unwrap();
    assert_eq!(&bytes[4..6], &[4, 0]);
    assert_eq!(stfl::load(&bytes).unwrap(), p);
}

#[test]
fn duplicate_functions_load_in_every_version_and_the_later_wins() {
    // Kept behaviour (the current original refuses conflicting duplicates): see CHANGELOG.
    for version in [1u16, 9] {
        let mut b = Bytes::default();
        b.raw(b"STFL").u16(version).u32(2);
        b.u8(1).u64(1).u8(1).u64(2);
        b.u32(2);
        for constant in [0u32, 1] {
            b.name("main").u16(1).u16(0);
            if version >= 5 {
                b.u16(0).u8(12);
            }
            b.u16(0).u8(0).u16(0).u32(2);
            b.u8(0x01).u32(0).u32(constant).u8(0x12).u32(0);
        }
        if version >= 2 {
            b.raw(&[0; 39]);
        }
        let program = stfl::load(&b.0).unwrap();
        assert_eq!(program.functions().len(), 2);
        let mut vm = stoffel_vm::Vm::new();
        vm.load_program(program).unwrap();
        assert_eq!(vm.execute("main", &[]).unwrap(), stoffel_vm::Val::I64(2));
    }
}
