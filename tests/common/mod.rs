//! Helpers shared by the test files. Each test file uses only some of them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::{Output, RuntimeError, RuntimeErrorKind, Val, Vm, VmError};

/// A VM with `src` loaded and `print` captured into a string.
pub fn vm_with(src: &str) -> (Vm, Arc<Mutex<String>>) {
    let mut vm = Vm::new();
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    vm.set_output(Output::Callback(Box::new(move |s: &str| {
        sink.lock().unwrap().push_str(s)
    })));
    if let Err(e) = vm.load_assembly(src) {
        panic!("test program does not assemble: {e}\n{src}");
    }
    (vm, out)
}

/// The runtime error in `result` (panics on anything else).
pub fn runtime_error(result: Result<Val, VmError>) -> RuntimeError {
    match result {
        Err(VmError::Runtime(e)) => e,
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

/// Asserts that `result` is a runtime error in `function` at `instruction` of `kind`.
#[track_caller]
pub fn assert_error(
    result: Result<Val, VmError>,
    function: &str,
    instruction: usize,
    kind: RuntimeErrorKind,
) {
    let e = runtime_error(result);
    assert_eq!(
        (e.function.as_str(), e.instruction, &e.kind),
        (function, instruction, &kind),
        "error was: {e}"
    );
}

/// Runs `main` of `src`: the result and everything printed.
pub fn run(src: &str) -> (Result<Val, VmError>, String) {
    let (mut vm, out) = vm_with(src);
    let result = vm.execute("main", &[]);
    let printed = out.lock().unwrap().clone();
    (result, printed)
}

/// The directory of the `libstoffel_vm.so` cargo built for this test run. A test binary is
/// `target/<profile>/deps/<name>-<hash>`; building the tests builds the crate's cdylib into
/// that same `deps` directory (only `cargo build` copies it up to `target/<profile>`, so the
/// copy there may be stale or missing). Falls back to `target/<profile>`.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    let profile = deps
        .parent()
        .expect("test binary is in target/<profile>/deps");
    for dir in [deps, profile] {
        if dir.join("libstoffel_vm.so").is_file() {
            return dir.to_path_buf();
        }
    }
    panic!(
        "libstoffel_vm.so not found in {} or {}: the crate must build a cdylib",
        deps.display(),
        profile.display()
    );
}

/// Compiles `tests/c/<name>.c` with gcc (`-std=c99 -Wall -Wextra -Werror -O2 -g`) against the
/// library this test run built, runs it and returns its output. Runs without cargo's
/// LD_LIBRARY_PATH, which lists `target/<profile>` (refreshed only by `cargo build`, so
/// possibly stale) before the rpath to the fresh library.
pub fn build_and_run_c(name: &str) -> std::process::Output {
    use std::process::Command;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    let dir = std::env::temp_dir().join(format!("stoffel_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(name);
    let built = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-g", "-I"])
        .arg(root.join("include"))
        .arg(root.join(format!("tests/c/{name}.c")))
        .arg("-L")
        .arg(&lib)
        .arg("-lstoffel_vm")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("cannot run gcc");
    assert!(
        built.status.success(),
        "gcc failed on tests/c/{name}.c:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// One row of a conformance `expected.tsv`: a program, its entry, and what it must print and
/// return (`<error>` for a runtime error).
pub struct Case {
    pub name: String,
    pub entry: String,
    pub stdout: String,
    pub result: String,
}

/// `expected.tsv`'s escapes (`\n`, `\t`, `\\`).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                other => panic!("bad escape {other:?} in expected.tsv"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The rows of `dir/expected.tsv` (columns name, entry, expected_stdout, expected_result, …).
pub fn expected_cases(dir: &std::path::Path) -> Vec<Case> {
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(
        &header[..4],
        ["name", "entry", "expected_stdout", "expected_result"]
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Case {
                name: cols[0].to_owned(),
                entry: cols[1].to_owned(),
                stdout: unescape(cols[2]),
                result: cols[3].to_owned(),
            }
        })
        .collect()
}

/// A `Cell` that is `Sync`: state a test shares with host functions and callbacks, which
/// must be `Send` (host functions `Send + Sync`) when the crate is built with the `send`
/// feature, so the tests compile either way.
#[derive(Debug, Default)]
pub struct SyncCell<T>(std::sync::Mutex<T>);

impl<T: Copy> SyncCell<T> {
    pub fn new(value: T) -> SyncCell<T> {
        SyncCell(std::sync::Mutex::new(value))
    }

    pub fn get(&self) -> T {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, value: T) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }

    pub fn replace(&self, value: T) -> T {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()),
            value,
        )
    }
}
