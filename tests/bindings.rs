//! Runs the foreign-language examples for real against the shared library this test build
//! produced (`target/<profile>/libstoffel_vm.so`, built by the same `cargo test`):
//!
//! - `examples/python_ctypes.py` with `python3`;
//! - `examples/go/` with `go run .` (cgo), pointed at this profile's library through
//!   `CGO_LDFLAGS`.
//!
//! Both examples check their own results and exit non-zero on any mismatch; these tests also
//! look for their closing line. A missing `python3` fails. A missing `go` fails too, unless
//! `STOFFEL_SKIP_GO=1` is set, so a machine without the toolchain is never silently green.

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Longest a single example may run (a first `go run` compiles the Go runtime's cgo parts).
const TIMEOUT: Duration = Duration::from_secs(600);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shared library cargo built for this profile (it builds every crate type of the lib
/// before the tests that depend on it).
fn shared_library() -> PathBuf {
    let name = format!(
        "{}stoffel_vm{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = common::lib_dir().join(name);
    assert!(
        path.is_file(),
        "{} does not exist; it should have been built by this `cargo test` (crate-type \
         cdylib in Cargo.toml)",
        path.display()
    );
    path
}

fn conformance_program() -> PathBuf {
    repo().join("tests/conformance/fibonacci_recursive.stflb")
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Asserts a zero exit, no FAIL line, and every line of `expected` in stdout.
    fn assert_passed(&self, what: &str, expected: &[&str]) {
        assert!(self.status.success(), "{what} failed\n{}", self.describe());
        assert!(
            !self.stdout.lines().any(|l| l.starts_with("FAIL")),
            "{what} reported a failure\n{}",
            self.describe()
        );
        for line in expected {
            assert!(
                self.stdout.contains(line),
                "{what}: stdout lacks {line:?}\n{}",
                self.describe()
            );
        }
    }
}

/// Runs `command` to completion (killing it after [`TIMEOUT`]) and collects its output.
fn run(mut command: Command, what: &str) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({command:?}): {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {TIMEOUT:?}; stdout so far:\n{}",
                out_reader.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Whether `program` can be started (`program version_flag` runs).
fn available(program: &str, version_flag: &str) -> Result<String, String> {
    match Command::new(program).arg(version_flag).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        Ok(o) => Err(format!(
            "`{program} {version_flag}` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("`{program}` cannot be run: {e}")),
    }
}

/// `dir` first, then the current value of the path-list variable `var`.
fn prepend_path(var: &str, dir: &Path) -> OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(old) = std::env::var_os(var) {
        paths.extend(std::env::split_paths(&old));
    }
    std::env::join_paths(paths).expect("a joinable path list")
}

/// A flag for `CGO_*FLAGS`, quoted if it contains white space (cgo splits those variables).
fn cgo_flag(flag: String) -> String {
    if flag.contains(char::is_whitespace) {
        format!("'{flag}'")
    } else {
        flag
    }
}

// ----- Python -----

/// The seed document's ctypes definitions, which the example must use exactly as written.
const SEED_CTYPES: &[&str] = &[
    r#"class StoffelValueType(ctypes.c_int):
    UNIT = 0
    INT = 1
    FLOAT = 2
    BOOL = 3
    STRING = 4
    OBJECT = 5
    ARRAY = 6
    FOREIGN = 7
    CLOSURE = 8

class StoffelValueData(Union):
    _fields_ = [
        ("int_val", c_int64),
        ("float_val", ctypes.c_double),
        ("bool_val", ctypes.c_int),
        ("string_val", c_char_p),
        ("object_id", ctypes.c_size_t),
        ("array_id", ctypes.c_size_t),
        ("foreign_id", ctypes.c_size_t),
        ("closure_id", ctypes.c_size_t),
    ]

class StoffelValue(Structure):
    _fields_ = [
        ("value_type", StoffelValueType),
        ("data", StoffelValueData),
    ]
"#,
    r#"lib.stoffel_create_vm.restype = c_void_p
lib.stoffel_destroy_vm.argtypes = [c_void_p]
lib.stoffel_execute.argtypes = [c_void_p, c_char_p, POINTER(StoffelValue)]
lib.stoffel_execute.restype = c_int
"#,
    "from ctypes import c_void_p, c_char_p, c_int, c_int64, Structure, Union, POINTER\n",
];

fn python_example() -> PathBuf {
    repo().join("examples/python_ctypes.py")
}

fn python() -> Command {
    if let Err(e) = available("python3", "--version") {
        panic!("python3 is needed to run examples/python_ctypes.py: {e}");
    }
    let mut command = Command::new("python3");
    command
        .current_dir(repo())
        .env_remove("STOFFEL_VM_LIB")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

const PYTHON_CHECKS: &[&str] = &[
    "add_via_python(40, 2) = 42 (VM code -> CALL py_add -> Python)",
    "banner() = 'StoffelVM says hi' (freed with stoffel_free_string)",
    "a second stoffel_free_string is ignored: stoffel_free_string:",
    "greet('ctypes') = 'Hello, ctypes!'",
    "main() of fibonacci_recursive.stflb = 55",
    "unknown function -> -3: function 'no_such_function' not found",
    "releasing it twice -> -6",
    "finalizer ran once with the pointer",
    "captured print: ['printed by VM code\\n']",
    "sliced sum3(1, 20, 300) = 321 in",
    "resume with nothing suspended -> -13: no execution is suspended on this VM",
    "live handles 0, foreign objects 0",
    "ok    stoffel_destroy_vm",
    "a destroyed VM handle -> -10",
    "all Python ctypes checks passed",
];

#[test]
fn python_example_uses_the_seed_ctypes_definitions_as_written() {
    let text = std::fs::read_to_string(python_example()).expect("examples/python_ctypes.py");
    for block in SEED_CTYPES {
        assert!(
            text.contains(block),
            "examples/python_ctypes.py must contain, exactly:\n{block}"
        );
    }
}

#[test]
fn python_ctypes_example_runs() {
    let lib = shared_library();
    let mut command = python();
    command
        .arg(python_example())
        .arg(&lib)
        .arg(conformance_program());
    let result = run(command, "examples/python_ctypes.py");
    result.assert_passed("examples/python_ctypes.py", PYTHON_CHECKS);
    assert!(
        result.stdout.contains(&format!("from {}", lib.display())),
        "the example did not load {}\n{}",
        lib.display(),
        result.describe()
    );
}

#[test]
fn python_ctypes_example_finds_the_library_through_the_environment() {
    let lib = shared_library();
    let mut command = python();
    command.arg(python_example()).env("STOFFEL_VM_LIB", &lib);
    let result = run(command, "examples/python_ctypes.py (STOFFEL_VM_LIB)");
    result.assert_passed(
        "examples/python_ctypes.py (STOFFEL_VM_LIB)",
        &["all Python ctypes checks passed"],
    );
    assert!(
        result.stdout.contains(&format!("from {}", lib.display())),
        "{}",
        result.describe()
    );
}

// ----- Go -----

#[test]
fn go_cgo_example_runs() {
    let version = match available("go", "version") {
        Ok(v) => v,
        Err(e) if std::env::var("STOFFEL_SKIP_GO").as_deref() == Ok("1") => {
            eprintln!("SKIPPED (STOFFEL_SKIP_GO=1): the Go example was not run: {e}");
            return;
        }
        Err(e) => panic!(
            "the Go toolchain is needed to run examples/go ({e}); install it (e.g. \
             `apt-get install golang-go`) or set STOFFEL_SKIP_GO=1 to skip this test"
        ),
    };
    eprintln!("using {version}");

    let lib_dir = common::lib_dir();
    shared_library();
    // Go's caches go under target/, so the test writes nothing to $HOME (which may be
    // read-only) and later runs reuse the compiled cgo runtime.
    let go_home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let ldflags = [
        format!("-L{}", lib_dir.display()),
        format!("-Wl,-rpath,{}", lib_dir.display()),
    ]
    .map(cgo_flag)
    .join(" ");
    let cflags = cgo_flag(format!("-I{}", repo().join("include").display()));

    let mut command = Command::new("go");
    command
        .args(["run", "."])
        .arg(conformance_program())
        .current_dir(repo().join("examples/go"))
        .env("CGO_ENABLED", "1")
        // cgo puts these before the #cgo flags of main.go, so this profile's library wins
        // over target/release, at link time and (rpath) at run time.
        .env("CGO_LDFLAGS", ldflags)
        .env("CGO_CFLAGS", cflags)
        .env("LD_LIBRARY_PATH", prepend_path("LD_LIBRARY_PATH", &lib_dir))
        .env("GOCACHE", go_home.join("cache"))
        .env("GOPATH", go_home.join("path"))
        .env("GOMODCACHE", go_home.join("path/pkg/mod"))
        .env("GOENV", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on");
    let result = run(command, "go run . (examples/go)");
    result.assert_passed(
        "examples/go",
        &[
            "main() = 55",
            "double_it(21) = 42 (VM code -> CALL goDouble -> Go)",
            "check_double(55, 110) = \"goDouble agrees\" (freed with stoffel_free_string)",
            "C function 'goDouble' returned error code -1",
            "goDouble was called 3 times by VM code",
            "ok    stoffel_destroy_vm",
            "all Go checks passed",
        ],
    );
}
