//! The 64 compiled STFL v9 programs of `tests/conformance-v9/` (real StoffelLang compiler
//! output, see its README): every one loads, load → write → load is the identity, and the
//! writer gives back the very bytes for the files already in canonical form, and every one
//! gives `expected.tsv`'s output and result (what the current StoffelVM gave), run through
//! the Rust API and through `stoffel-run FILE main --print-result`.

mod common;

use common::Case;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::{Output, Vm, stfl};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-v9")
}

/// Every `.stflb` of the folder, by name (sorted).
fn files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir())
        .expect("tests/conformance-v9")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("stflb"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("readable"))
        })
        .collect();
    files.sort();
    files
}

/// The files the writer reproduces byte for byte. The compiler writes labels in hash-map
/// order; a `Program` keeps them sorted by target (its canonical form), so a file is
/// reproduced exactly when each of its functions' labels already come in that order (and
/// its constant pool in first-use order, without duplicates): the modules with at most
/// one label per function, and a few with labels that happened to come out sorted.
const CANONICAL: [&str; 23] = [
    "examples__language_mpc_schemas__main",
    "examples__local_closure_counter__main",
    "examples__local_dynamic_workflow__main",
    "stdlib__std__avss",
    "stdlib__std__core",
    "stdlib__std__mpc",
    "stdlib__std__protocols",
    "tests__stfl__imports__alias__main_alias",
    "tests__stfl__imports__chain__base",
    "tests__stfl__imports__chain__main_chain",
    "tests__stfl__imports__diamond__left",
    "tests__stfl__imports__diamond__main_diamond",
    "tests__stfl__imports__diamond__shared",
    "tests__stfl__imports__main_with_import",
    "tests__stfl__imports__multi__helpers",
    "tests__stfl__imports__multi__main_multi",
    "tests__stfl__imports__nested__level1__mid",
    "tests__stfl__imports__nested__main_nested",
    "tests__stfl__imports__relative__provider__main",
    "tests__stfl__nested_generics_test",
    "tests__stfl__secret_usage_valid",
    "tests__stfl__valid_basics",
    "tests__stfl__valid_slice_syntax",
];

#[test]
fn load_write_load_is_the_identity_on_every_v9_program() {
    let files = files();
    assert_eq!(files.len(), 64, "the 64 v9 programs");
    let canonical: BTreeSet<&str> = CANONICAL.into_iter().collect();
    for (name, bytes) in &files {
        let (program, info) = stfl::load_with_info(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((info.version, info.trailing_bytes), (9, 0), "{name}");
        assert!(program.function("main").is_some(), "{name}");
        let written = stfl::write(&program).unwrap();
        assert_eq!(
            stfl::load(&written).unwrap(),
            program,
            "{name}: load(write(p)) == p"
        );
        assert_eq!(
            stfl::write(&stfl::load(&written).unwrap()).unwrap(),
            written,
            "{name}: the writer's output is a fixed point"
        );
        if canonical.contains(name.as_str()) {
            assert_eq!(&written, bytes, "{name}: written back byte for byte");
        } else {
            // The same records in another order: same length, same bytes as a multiset.
            assert_ne!(&written, bytes, "{name} is canonical: add it to CANONICAL");
            assert_eq!(written.len(), bytes.len(), "{name}");
            let (mut a, mut b) = (written.clone(), bytes.clone());
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "{name}: only the order differs");
        }
    }
}

fn cases() -> Vec<Case> {
    common::expected_cases(&dir())
}

/// Runs one case; `Err` says how it differed.
fn run_case(case: &Case) -> Result<(), String> {
    let bytes = std::fs::read(dir().join(format!("{}.stflb", case.name))).unwrap();
    let mut vm = Vm::new();
    vm.set_instruction_limit(Some(50_000_000));
    // `examples/local_storage` needs a store, as the current VM's run had one.
    let store = fresh_store(&case.name);
    vm.set_local_storage(Some(store.clone()));
    let captured = Arc::new(Mutex::new(String::new()));
    let sink = captured.clone();
    vm.set_output(Output::Callback(Box::new(move |s| {
        sink.lock().unwrap().push_str(s)
    })));
    vm.load_bytecode(&bytes)
        .map_err(|e| format!("load failed: {e}"))?;
    let outcome = vm.execute(&case.entry, &[]);
    let _ = std::fs::remove_dir_all(&store);
    let stdout = captured.lock().unwrap().clone();
    if stdout != case.stdout {
        return Err(format!(
            "stdout {stdout:?}, expected {:?} ({outcome:?})",
            case.stdout
        ));
    }
    match (outcome, case.result.as_str()) {
        (Err(_), "<error>") => Ok(()),
        (Ok(v), "<error>") => Err(format!("expected an error, got {v:?}")),
        (Err(e), expected) => Err(format!("expected {expected}, got error {e}")),
        (Ok(v), expected) => match vm.display(&v) {
            Ok(shown) if shown == expected => Ok(()),
            shown => Err(format!("result {shown:?}, expected {expected}")),
        },
    }
}

/// A fresh, empty directory for one program's local store.
fn fresh_store(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "stoffel-conformance-v9-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

/// Runs one case as a user of the toolchain does: `stoffel-run FILE ENTRY --print-result`
/// (with `--local-store`, as the current VM's run had a store); `Err` says how it differed.
fn run_case_cli(case: &Case) -> Result<(), String> {
    let file = dir().join(format!("{}.stflb", case.name));
    let store = fresh_store(&format!("cli-{}", case.name));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stoffel-run"))
        .arg(&file)
        .arg(&case.entry)
        .arg("--print-result")
        .arg("--local-store")
        .arg(&store)
        .output()
        .map_err(|e| format!("cannot run stoffel-run: {e}"))?;
    let _ = std::fs::remove_dir_all(&store);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    let (expected_code, expected_stdout) = match case.result.as_str() {
        "<error>" => (Some(1), case.stdout.clone()),
        result => (Some(0), format!("{}{result}\n", case.stdout)),
    };
    if code != expected_code || stdout != expected_stdout {
        return Err(format!(
            "expected exit {expected_code:?} and stdout {expected_stdout:?}; got exit {code:?}, stdout {stdout:?}, stderr {stderr:?}"
        ));
    }
    Ok(())
}

#[test]
fn every_v9_program_gives_the_expected_output_and_result_through_stoffel_run() {
    let cases = cases();
    assert_eq!(cases.len(), 64, "expected.tsv rows");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case_cli(case)
                .err()
                .map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} programs differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_v9_program_gives_the_expected_output_and_result() {
    let cases = cases();
    assert_eq!(cases.len(), 64, "expected.tsv rows");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run_case(case).err().map(|e| format!("{}: {e}", case.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} programs differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
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

#[test]
fn mutated_v9_programs_never_panic_and_what_loads_round_trips() {
    // Bytes that matter in v9 files: type tags 0, 12, 13, 14, 15; opcodes 0x17..0x1A;
    // parent flags 1, 2; version bytes 4, 5, 8, 9, 10.
    let interesting = [
        0u8, 1, 2, 4, 5, 8, 9, 10, 12, 13, 14, 15, 0x17, 0x18, 0x19, 0x1A, 0xFF,
    ];
    let files = files();
    let mut rng = Rng(0x5EED_0009_F00D_CAFE);
    let (mut loaded, mut rejected) = (0usize, 0usize);
    for case in 0..4000 {
        let (name, original) = &files[rng.below(files.len())];
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = interesting[rng.below(interesting.len())],
                2 => bytes.truncate(at.max(6)),
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        match stfl::load_with_info(&bytes) {
            Ok((program, info)) => {
                loaded += 1;
                assert!(info.version <= 9, "case {case} ({name})");
                let written = stfl::write(&program).unwrap();
                let back = stfl::load(&written)
                    .unwrap_or_else(|e| panic!("case {case} ({name}): reload: {e}"));
                assert_eq!(back, program, "case {case} ({name})");
            }
            Err(err) => {
                rejected += 1;
                assert!(err.offset <= bytes.len(), "case {case} ({name}): {err}");
                assert!(!err.to_string().is_empty());
            }
        }
    }
    assert!(loaded > 200, "only {loaded} mutants loaded");
    assert!(rejected > 200, "only {rejected} mutants were rejected");
}
