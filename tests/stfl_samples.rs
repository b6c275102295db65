//! STFL v1 loader and writer against real compiler output (tests/data/stfl/*.stflb): decoding,
//! round trips, truncation at every byte and pseudo-random mutations.

use stoffel_vm::program::{Constant, Instruction, Program};
use stoffel_vm::stfl::{self, LoadErrorKind};

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stfl")
}

fn sample(name: &str) -> Vec<u8> {
    let path = data_dir().join(format!("{name}.stflb"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every sample, by file stem, in name order.
fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(data_dir())
        .expect("tests/data/stfl exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "stflb"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 25,
        "expected the 25 conformance samples, found {}",
        out.len()
    );
    out
}

#[test]
fn every_sample_loads_without_trailing_bytes() {
    for (name, bytes) in samples() {
        let (program, info) =
            stfl::load_with_info(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.version, 1, "{name}");
        assert_eq!(info.trailing_bytes, 0, "{name}");
        assert!(!program.functions().is_empty(), "{name}");
        assert_eq!(
            program.functions()[0].name,
            "main",
            "{name}: the entry is written first"
        );
        assert!(program.function("main").is_some(), "{name}");
    }
}

#[test]
fn shipped_fizzbuzz_decodes_as_in_the_annotated_hexdump() {
    let bytes = sample("shipped_fizzbuzz");
    assert_eq!(bytes.len(), 1826);
    let program = stfl::load(&bytes).unwrap();
    let functions = program.functions();
    assert_eq!(functions.len(), 2);
    assert!(functions.iter().all(|f| f.name == "main"));
    assert_eq!(
        functions[0], functions[1],
        "byte-identical bodies decode identically"
    );

    let main = &functions[0];
    assert_eq!(main.register_count, 7);
    assert!(main.params.is_empty() && main.upvalues.is_empty() && main.parent.is_none());
    assert_eq!(main.labels.len(), 14);
    assert_eq!(main.code.len(), 63);

    let constant = |ins: &Instruction| match *ins {
        Instruction::Ldi { constant, .. } => program.constants()[constant as usize].clone(),
        other => panic!("not an LDI: {other:?}"),
    };
    // 0: LDI r3, c0 (I64 0); 1: LDI r1, I64 1; 2: LDI r4, I64 100; 3: MOV r5, r1; 4: CMP r5, r4.
    assert!(matches!(main.code[0], Instruction::Ldi { dst: 3, .. }));
    assert_eq!(constant(&main.code[0]), Constant::I64(0));
    assert!(matches!(main.code[1], Instruction::Ldi { dst: 1, .. }));
    assert_eq!(constant(&main.code[1]), Constant::I64(1));
    assert_eq!(constant(&main.code[2]), Constant::I64(100));
    assert_eq!(main.code[3], Instruction::Mov { dst: 5, src: 1 });
    assert_eq!(main.code[4], Instruction::Cmp { a: 5, b: 4 });
    // 5: JMPGT for_end_4, which labels instruction 61 (LDI r1, Unit).
    let Instruction::JmpGt { label } = main.code[5] else {
        panic!("instruction 5 is {:?}", main.code[5]);
    };
    assert_eq!(main.labels[label as usize].name, "for_end_4");
    assert_eq!(main.label_target(label), 61);
    assert_eq!(constant(&main.code[6]), Constant::I64(15));
    assert_eq!(main.code[7], Instruction::Mod { dst: 2, a: 5, b: 1 });
    assert_eq!(constant(&main.code[61]), Constant::Unit);
    assert_eq!(main.code[62], Instruction::Ret { src: 3 });

    // The first label entry in the file: else_48 -> 54.
    let else_48 = main.labels.iter().find(|l| l.name == "else_48").unwrap();
    assert_eq!(else_48.target, 54);
    // Labels come out sorted by target (the canonical order), whatever the file order.
    assert!(main.labels.windows(2).all(|w| w[0].target <= w[1].target));

    // All ten constants are used, and the pool is in order of first use.
    assert_eq!(program.constants().len(), 10);
    assert!(program.constants().contains(&Constant::Bool(false)));
    assert!(program.constants().contains(&Constant::Bool(true)));
    assert!(program.callees().is_empty());
}

#[test]
fn factorial_decodes_completely() {
    use Instruction::*;
    let program = stfl::load(&sample("factorial")).unwrap();
    assert_eq!(
        program.constants(),
        &[Constant::I64(5), Constant::I64(1), Constant::Unit]
    );
    let [main] = program.functions() else {
        panic!("expected one function");
    };
    assert_eq!(main.name, "main");
    assert_eq!(main.register_count, 5);
    let names: Vec<(&str, u32)> = main
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.target))
        .collect();
    assert_eq!(names, [("for_start_4", 4), ("for_end_4", 12)]);
    assert_eq!(
        main.code,
        [
            Ldi {
                dst: 2,
                constant: 0
            },
            Ldi {
                dst: 3,
                constant: 1
            },
            Ldi {
                dst: 1,
                constant: 1
            },
            Mov { dst: 4, src: 1 },
            Cmp { a: 4, b: 2 },
            JmpGt { label: 1 },
            Mul { dst: 1, a: 3, b: 4 },
            Mov { dst: 3, src: 1 },
            Ldi {
                dst: 1,
                constant: 1
            },
            Add { dst: 4, a: 4, b: 1 },
            Mov { dst: 1, src: 2 },
            Jmp { label: 0 },
            Ldi {
                dst: 1,
                constant: 2
            },
        ]
    );
}

#[test]
fn shipped_import_sample_keeps_duplicate_mains_and_call_names() {
    let program = stfl::load(&sample("shipped_imports_main_with_import")).unwrap();
    let names: Vec<&str> = program
        .functions()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "main",
            "utils.math.add",
            "utils.math.square",
            "main",
            "utils.math.multiply"
        ]
    );
    assert_eq!(program.callees(), ["add", "multiply"]);
    assert_eq!(program.constants(), &[Constant::I64(5), Constant::I64(3)]);
    // `function` finds the last "main", the one registration would leave in place.
    let last = program.function("main").unwrap();
    assert!(std::ptr::eq(last, &program.functions()[3]));
}

#[test]
fn valid_basics_has_strings_and_float_bits() {
    let program = stfl::load(&sample("valid_basics")).unwrap();
    let c = program.constants();
    assert!(c.contains(&Constant::String("Hello, Stoffel!".into())));
    assert!(c.contains(&Constant::String("assigned now".into())));
    // `123.456` comes out of the compiler as the integer 1234560 reinterpreted as f64 bits;
    // the loader carries the bits exactly.
    assert!(
        c.iter()
            .any(|c| matches!(c, Constant::Float(f) if f.to_bits() == 1_234_560))
    );
}

fn round_trip(name: &str, program: &Program) {
    let written = stfl::write(program).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        stfl::write(program).unwrap(),
        written,
        "{name}: write is deterministic"
    );
    let (reloaded, info) =
        stfl::load_with_info(&written).unwrap_or_else(|e| panic!("{name}: reload: {e}"));
    assert_eq!(
        info,
        stfl::LoadInfo {
            version: 1,
            trailing_bytes: 0
        },
        "{name}"
    );
    assert_eq!(&reloaded, program, "{name}: load(write(p)) == p");
    assert_eq!(
        stfl::write(&reloaded).unwrap(),
        written,
        "{name}: write(load(write(p))) == write(p)"
    );
}

#[test]
fn every_sample_round_trips() {
    for (name, bytes) in samples() {
        let program = stfl::load(&bytes).unwrap();
        round_trip(&name, &program);
        // The writer's output is a real v1 file with the same magic and version.
        let written = stfl::write(&program).unwrap();
        assert_eq!(&written[..6], b"STFL\x01\x00", "{name}");
        // It is never longer: the pool can only shrink (deduplication, unused entries).
        assert!(written.len() <= bytes.len(), "{name}");
    }
}

#[test]
fn every_prefix_of_every_sample_is_rejected_sensibly() {
    for (name, bytes) in samples() {
        let full = stfl::load(&bytes).unwrap();
        let mut last_function = None;
        for len in 0..bytes.len() {
            let prefix = &bytes[..len];
            let err = match stfl::load(prefix) {
                Ok(_) => panic!("{name}: prefix of {len} bytes loaded"),
                Err(err) => err,
            };
            assert!(err.offset <= len, "{name}[..{len}]: {err}");
            match &err.kind {
                LoadErrorKind::Truncated {
                    needed, available, ..
                } => {
                    assert_eq!(*available, len - err.offset, "{name}[..{len}]: {err}");
                    assert!(needed > available, "{name}[..{len}]: {err}");
                }
                LoadErrorKind::CountTooLarge { remaining, .. } => {
                    assert!(err.offset < len, "{name}[..{len}]: {err}");
                    assert!(*remaining < len - err.offset, "{name}[..{len}]: {err}");
                }
                other => panic!("{name}[..{len}]: unexpected kind {other:?} ({err})"),
            }
            // Once the cut is inside the function records, every error says which record and
            // the record index never goes down as the prefix grows.
            match (last_function, err.function_index) {
                (Some(last), Some(now)) => assert!(now >= last, "{name}[..{len}]: {err}"),
                (Some(_), None) => panic!("{name}[..{len}]: lost the function: {err}"),
                _ => {}
            }
            last_function = err.function_index.or(last_function);
            if let Some(index) = err.function_index {
                let function = &full.functions()[index];
                if let Some(name_seen) = &err.function {
                    assert_eq!(name_seen, &function.name);
                }
                if let Some(i) = err.instruction {
                    assert!(i < function.code.len(), "{name}[..{len}]: {err}");
                }
            }
            assert!(
                err.to_string()
                    .starts_with(&format!("byte 0x{:04x}", err.offset))
            );
        }
    }
}

#[test]
fn truncation_inside_an_instruction_names_the_function_and_instruction() {
    let bytes = sample("shipped_fizzbuzz");
    // The last instruction of the first function, RET r3, starts at 0x03B5 (see the annotated
    // hexdump); cut the file inside its register operand.
    assert_eq!(bytes[0x03B5], 0x12);
    let err = stfl::load(&bytes[..0x03B5 + 3]).unwrap_err();
    assert_eq!(err.offset, 0x03B5 + 1, "{err}");
    assert_eq!(err.function_index, Some(0));
    assert_eq!(err.function.as_deref(), Some("main"));
    assert_eq!(err.instruction, Some(62));
    assert!(matches!(
        err.kind,
        LoadErrorKind::Truncated {
            needed: 4,
            available: 2,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "byte 0x03b6 (function #0 'main', instruction 62): truncated: register operand needs 4 bytes, only 2 left"
    );
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let interesting = [
        0x00, 0x01, 0x02, 0x0B, 0x0C, 0x16, 0x17, 0x7F, 0x80, 0xFE, 0xFF,
    ];
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len());
        match rng.below(7) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes[at] = interesting[rng.below(interesting.len())],
            3 => bytes.insert(at, rng.next() as u8),
            4 => {
                if bytes.len() > 1 {
                    bytes.remove(at);
                }
            }
            5 => {
                // Duplicate a short run (repeats labels, instructions, constants).
                let len = 1 + rng.below(16);
                let end = (at + len).min(bytes.len());
                let run: Vec<u8> = bytes[at..end].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, run);
            }
            _ => {
                // Append junk: trailing bytes must be accepted and counted.
                for _ in 0..rng.below(5) {
                    bytes.push(rng.next() as u8);
                }
            }
        }
    }
}

#[test]
fn random_mutations_never_panic_and_what_loads_round_trips() {
    let samples = samples();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut loaded, mut rejected) = (0usize, 0usize);
    for case in 0..6000 {
        let (name, original) = &samples[rng.below(samples.len())];
        let mut bytes = original.clone();
        mutate(&mut rng, &mut bytes);
        match stfl::load_with_info(&bytes) {
            Ok((program, info)) => {
                loaded += 1;
                assert!(info.version <= 1);
                assert!(info.trailing_bytes <= bytes.len());
                round_trip(&format!("case {case} ({name})"), &program);
            }
            Err(err) => {
                rejected += 1;
                assert!(err.offset <= bytes.len(), "case {case} ({name}): {err}");
                assert!(!err.to_string().is_empty());
            }
        }
    }
    // Both outcomes are exercised.
    assert!(loaded > 300, "only {loaded} mutants loaded");
    assert!(rejected > 300, "only {rejected} mutants were rejected");
}
