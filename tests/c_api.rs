//! The C API, tested from C: each test compiles a C program (`examples/c_ffi_example.c` or
//! `tests/c/*.c`) with gcc against the `libstoffel_vm.so` cargo built for this test run,
//! runs it and checks its exit status and output. The C programs check every result
//! themselves (`tests/c/check.h`: a failed check prints where and exits 1), so a passing
//! test means every check in the program held.
//!
//! The example and the smaller programs also run under valgrind (memcheck): no errors and no
//! definitely lost memory. Where valgrind is not installed those runs are skipped with a
//! notice (CI installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Timing-sensitive tests (the soak and cost figures) run alone: they take this lock for
/// writing, every other test in this file for reading.
static TIMING: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|p| p.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    TIMING.write().unwrap_or_else(|p| p.into_inner())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory for one test's binaries, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("stoffel_c_api_{}_{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `source` (relative to the crate root, or absolute) with `compiler` and `flags`,
/// linking `libstoffel_vm`; panics with the compiler's output if it fails.
fn build_with(
    compiler: &str,
    flags: &[&str],
    source: &Path,
    scratch: &Scratch,
    extra: &[&str],
) -> PathBuf {
    let lib = common::lib_dir();
    let source = root().join(source);
    let stem = source.file_stem().unwrap().to_string_lossy().into_owned();
    let out = scratch.0.join(format!("{stem}-{compiler}"));
    let output = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg(&source)
        .arg("-L")
        .arg(&lib)
        .arg("-lstoffel_vm")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(extra)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} failed on {}:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// `gcc -std=c99 -Wall -Wextra -Werror -I include <src> -L <lib> -lstoffel_vm -Wl,-rpath,<lib>`.
fn build_c(source: &str, scratch: &Scratch, extra: &[&str]) -> PathBuf {
    build_with(
        "gcc",
        &["-std=c99", "-Wall", "-Wextra", "-Werror", "-g"],
        Path::new(source),
        scratch,
        extra,
    )
}

/// Runs a built program from the crate root; returns its output.
fn run(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        // Cargo's LD_LIBRARY_PATH puts `target/<profile>` (refreshed only by `cargo build`)
        // before the rpath to the library this test run built: run without it.
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

/// Asserts exit status 0 and returns stdout.
fn success(exe: &Path, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} exited with {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        exe.display(),
        output.status
    );
    stdout
}

fn run_ok(exe: &Path, args: &[&str]) -> String {
    let output = run(exe, args);
    success(exe, &output)
}

fn valgrind_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        Command::new("valgrind")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Runs `exe` under memcheck: no errors, no definite leaks (exit status 0 of the program
/// and of valgrind). Returns the program's stdout and valgrind's summary lines, or `None`
/// (with a printed notice) when valgrind is not installed.
fn valgrind(exe: &Path, args: &[&str]) -> Option<(String, String)> {
    if !valgrind_available() {
        println!(
            "NOTICE: valgrind is not installed; skipping the memcheck run of {}",
            exe.display()
        );
        return None;
    }
    let output = Command::new("valgrind")
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
        ])
        .arg(exe)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run valgrind");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "valgrind run of {} failed ({:?})\n--- stdout ---\n{stdout}\n--- valgrind ---\n{stderr}",
        exe.display(),
        output.status
    );
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors"),
        "valgrind reported errors:\n{stderr}"
    );
    assert!(
        stderr.contains("definitely lost: 0 bytes")
            || stderr.contains("All heap blocks were freed"),
        "valgrind reported definitely lost memory:\n{stderr}"
    );
    let summary: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("ERROR SUMMARY")
                || l.contains("definitely lost")
                || l.contains("in use at exit")
                || l.contains("total heap usage")
        })
        .collect();
    println!("valgrind {}:\n{}", exe.display(), summary.join("\n"));
    Some((stdout, summary.join("\n")))
}

/// Asserts that `lines` appear in `stdout` as whole lines, in this order.
fn assert_lines_in_order(stdout: &str, lines: &[&str]) {
    let mut rest = stdout.lines();
    for want in lines {
        assert!(
            rest.any(|l| l == *want),
            "missing line (or out of order): {want:?}\n--- stdout ---\n{stdout}"
        );
    }
}

/// A line of `stdout` starting with `prefix`.
fn line_with<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}\n--- stdout ---\n{stdout}"))
}

/// The number after `key=` in `line`.
fn figure(line: &str, key: &str) -> f64 {
    let start = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + key.len()
        + 1;
    let text: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    text.parse()
        .unwrap_or_else(|_| panic!("bad number for {key} in {line:?}"))
}

const EXAMPLE: &str = "examples/c_ffi_example.c";
const FIB: &str = "tests/conformance/fibonacci_recursive.stflb";

/// Every line the example prints, in order.
const EXAMPLE_OUTPUT: &[&str] = &[
    "StoffelVM 0.1.0",
    "Result: 42",
    "bytecode main() = 55",
    "add(2, 40) = 42",
    "[vm print] hello, C caller",
    "greeting() returned \"Greetings from StoffelVM\"",
    "created string \"made by stoffel_create_string\"",
    "person.name = Alice",
    "numbers has 3 elements, numbers[1] = 20",
    "make_point(3, 4).y = 4",
    "host_log called from VM code: n is 7",
    "report(7) = 71",
    "use_ex(5) = 115 (the callback ran add(5 * 3, 100) inside the VM)",
    "counter(5) = 15",
    "counter(7) = 22",
    "foreign object 'config' used 1 time(s)",
    "collecting while the holder object still references temp-file...",
    "releasing the holder and collecting...",
    "finalizer: releasing resource 'temp-file'",
    "after gc: 1 foreign object(s) alive, 1 live handle(s)",
    "add(2, 40) after the errors = 42",
    "destroying the VM...",
    "finalizer: releasing resource 'config'",
    "done",
];

fn check_example_output(stdout: &str) {
    assert_lines_in_order(stdout, EXAMPLE_OUTPUT);
    // Error lines: the code exactly, and the gist of the message.
    for (prefix, gist) in [
        (
            "executing no_such_function: code -3, message: ",
            "function 'no_such_function' not found",
        ),
        (
            "double(\"twenty-one\"): code -4, message: ",
            "C function 'double' returned error code -1",
        ),
        (
            "loading bad assembly: code -2, message: ",
            "line 2, column 5: unknown mnemonic 'FROB'",
        ),
        (
            "releasing an id twice: code -6, message: ",
            "is not live in this VM",
        ),
    ] {
        let line = line_with(stdout, prefix);
        assert!(line.contains(gist), "{line:?} does not contain {gist:?}");
    }
    // The finalizer of `config` runs at destroy, not before.
    let destroy = stdout.find("destroying the VM...").unwrap();
    let config = stdout.find("releasing resource 'config'").unwrap();
    assert!(config > destroy, "{stdout}");
}

/// The user's example builds warning-free and prints what it promises: the seed's
/// `Result: 42`, the bytecode's 55, and every section's line.
#[test]
fn example_builds_with_werror_and_runs() {
    let _lock = shared();
    let scratch = Scratch::new("example");
    let exe = build_c(EXAMPLE, &scratch, &[]);
    // Default path (relative to the crate root) and an explicit argv[1].
    check_example_output(&run_ok(&exe, &[]));
    let path = root().join(FIB);
    check_example_output(&run_ok(&exe, &[path.to_str().unwrap()]));
    // A missing file is reported, not a crash.
    let missing = run(&exe, &["/nonexistent/file.stflb"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

/// The example under valgrind: no invalid accesses, no definitely lost memory.
#[test]
fn example_is_valgrind_clean() {
    let _lock = shared();
    let scratch = Scratch::new("example_vg");
    let exe = build_c(EXAMPLE, &scratch, &[]);
    if let Some((stdout, _)) = valgrind(&exe, &[FIB]) {
        check_example_output(&stdout);
    }
}

/// The header is valid C++11 (extern "C", no C-only constructs) and pedantic C99; a C++
/// program calls through it.
#[test]
fn header_compiles_as_cpp_and_pedantic_c() {
    let _lock = shared();
    let scratch = Scratch::new("header");
    let cpp = scratch.0.join("header_check.cpp");
    std::fs::write(
        &cpp,
        r#"#include "stoffel_vm.h"
#include <cstdio>
#include <cstring>
static_assert(sizeof(StoffelValue) == 16, "StoffelValue is 16 bytes");
static_assert(sizeof(StoffelValueData) == 8, "StoffelValueData is 8 bytes");
static int twice(const StoffelValue *args, int n, StoffelValue *result) {
    if (n != 1 || args[0].value_type != STOFFEL_VALUE_INT) return 1;
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = args[0].data.int_val * 2;
    return 0;
}
int main() {
    VMHandle vm = stoffel_create_vm();
    if (vm == nullptr) return 1;
    if (stoffel_register_foreign_function(vm, "twice", twice) != STOFFEL_OK) return 2;
    StoffelValue arg;
    arg.value_type = STOFFEL_VALUE_INT;
    arg.data.int_val = 21;
    StoffelValue result;
    if (stoffel_execute_with_args(vm, "twice", &arg, 1, &result) != STOFFEL_OK) return 3;
    StoffelGcStats stats;
    if (stoffel_gc_stats(vm, &stats) != STOFFEL_OK) return 4;
    std::printf("C++: twice(21) = %lld, version %s\n", (long long)result.data.int_val,
                stoffel_version());
    stoffel_destroy_vm(vm);
    return 0;
}
"#,
    )
    .unwrap();
    let exe = build_with(
        "g++",
        &[
            "-x",
            "c++",
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ],
        &cpp,
        &scratch,
        &[],
    );
    assert_eq!(run_ok(&exe, &[]), "C++: twice(21) = 42, version 0.1.0\n");

    let c = scratch.0.join("header_check.c");
    std::fs::write(
        &c,
        "#include \"stoffel_vm.h\"\n\
         typedef char value_is_16_bytes[sizeof(StoffelValue) == 16 ? 1 : -1];\n\
         int main(void) { value_is_16_bytes ok; (void)ok; return stoffel_version() ? 0 : 1; }\n",
    )
    .unwrap();
    let exe = build_with(
        "gcc",
        &[
            "-std=c99",
            "-pedantic-errors",
            "-Wall",
            "-Wextra",
            "-Werror",
        ],
        &c,
        &scratch,
        &[],
    );
    run_ok(&exe, &[]);
}

/// Every function with bad input: NULL / destroyed / forged VM handles, NULL pointers, bad
/// counts, bad type tags, odd booleans, invalid UTF-8, stale / released / forged / other-VM /
/// zero ids, double release, freeing strings the VM never gave out (and twice), NULL function
/// pointers; results C cannot represent; limits; parse errors. Each gets its documented code
/// and a message, and the VM works afterwards. Also under valgrind.
#[test]
fn bad_input_to_every_function() {
    let _lock = shared();
    let scratch = Scratch::new("bad_input");
    let exe = build_c("tests/c/bad_input.c", &scratch, &[]);
    let stdout = run_ok(&exe, &[]);
    let done = line_with(&stdout, "bad_input: all ");
    assert!(figure(done, "checks") >= 300.0, "{done}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert!(vg.contains("bad_input: all "), "{vg}");
    }
}

/// C callbacks: a non-zero return fails the execution with a message naming the function and
/// the code; string arguments arrive intact and are freed by the VM; a callback may return
/// every value type; argument ids die when the callback returns unless retained. Under
/// valgrind too (strings given to callbacks do not leak).
#[test]
fn callbacks() {
    let _lock = shared();
    let scratch = Scratch::new("callbacks");
    let exe = build_c("tests/c/callbacks.c", &scratch, &[]);
    let stdout = run_ok(&exe, &[]);
    assert!(stdout.contains("callbacks: all "), "{stdout}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert!(vg.contains("callbacks: all "), "{vg}");
    }
}

/// Re-entry: `_ex` callbacks execute code, use the heap and collect garbage on the VM that
/// called them (nested and runaway re-entry too); print callbacks and finalizers that call
/// in get STOFFEL_ERROR_REENTRANCY; finalizers run exactly once; destroying a VM from inside
/// its own callback is deferred and safe. Under valgrind too.
#[test]
fn reentry() {
    let _lock = shared();
    let scratch = Scratch::new("reentry");
    let exe = build_c("tests/c/reentry.c", &scratch, &[]);
    let stdout = run_ok(&exe, &[]);
    assert!(stdout.contains("reentry: all "), "{stdout}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert!(vg.contains("reentry: all "), "{vg}");
    }
}

/// Re-entry against the native stack: on threads with 128, 256 and 512 KiB stacks a C
/// callback re-enters its VM until `stoffel_execute` refuses with `STOFFEL_ERROR_LIMIT`
/// (the stack left decides, not only the 200-level count); no crash, and the VM works
/// afterwards.
#[test]
fn reentry_on_small_stacks() {
    let _lock = shared();
    let scratch = Scratch::new("reentry_stack");
    let exe = build_c("tests/c/reentry_stack.c", &scratch, &["-lpthread"]);
    let stdout = run_ok(&exe, &["stacks"]);
    assert!(stdout.contains("reentry_stack stacks: all "), "{stdout}");
    assert!(stdout.contains("128 KiB stack: "), "{stdout}");
}

/// A failure passed on by C callbacks through 200 nested executions: the top-level error
/// names the innermost error and the number of levels in under 1 KiB. Needs the callback
/// wrapper in `src/ffi` to pass a failed nested execution on as the `HostError`'s cause
/// (`Vm::nested_error`, `HostError::caused_by`); until then each level wraps the message of
/// the one below.
#[test]
fn reentry_failure_messages_are_bounded() {
    let _lock = shared();
    let scratch = Scratch::new("reentry_messages");
    let exe = build_c("tests/c/reentry_stack.c", &scratch, &["-lpthread"]);
    let stdout = run_ok(&exe, &["messages"]);
    assert!(stdout.contains("reentry_stack messages: all "), "{stdout}");
}

/// Threads: 8 threads, each with its own VM, 10 000 executions each, at the same time; and a
/// VM busy on one thread refuses a second thread with STOFFEL_ERROR_REENTRANCY (made
/// deterministic with pipes), then works from that second thread once idle, and destroyed by
/// the second thread while the first is inside it, is dead at once and destroyed (finalizer
/// run) when the first's call returns; a VM destroyed under a hammering thread; a stale
/// handle kept by a thread while the next VM reuses the destroyed VM's storage.
#[test]
fn threads() {
    let _lock = shared();
    let scratch = Scratch::new("threads");
    let exe = build_c("tests/c/threads.c", &scratch, &["-lpthread"]);
    let stdout = run_ok(&exe, &[]);
    println!("{stdout}");
    assert_lines_in_order(
        &stdout,
        &[
            "threads: 8 VMs x 10000 executions ok",
            "threads: busy VM refused a second thread with STOFFEL_ERROR_REENTRANCY",
            "threads: a destroyed VM's handle stays invalid after its storage is reused",
        ],
    );
    assert!(stdout.contains("threads: all "), "{stdout}");
}

/// Soak and cost: 1 000 000 executions returning a fresh object, each released: RSS growth
/// under 16 MiB and live handles back to the baseline. Prints RSS, ns per call and ns per
/// VM→C callback.
#[test]
fn soak_and_cost() {
    let _lock = exclusive();
    let scratch = Scratch::new("soak");
    let exe = build_c("tests/c/soak.c", &scratch, &["-O2"]);
    let stdout = run_ok(&exe, &[]);
    println!("{stdout}");
    let rss = line_with(&stdout, "soak: rss");
    let before = figure(rss, "after_10k_kib");
    let after = figure(rss, "after_1m_kib");
    assert!(
        after - before < 16.0 * 1024.0,
        "RSS grew by {} KiB over the soak: {rss}",
        after - before
    );
    let handles = line_with(&stdout, "soak: live_handles");
    assert_eq!(
        figure(handles, "baseline"),
        figure(handles, "end"),
        "{handles}"
    );
    for key in [
        "soak: ns_per_object_call",
        "cost: ns_per_execute_add",
        "cost: ns_per_callback",
    ] {
        let line = line_with(&stdout, key);
        let ns = figure(line, "ns");
        assert!(ns > 0.0 && ns < 1_000_000.0, "{line}");
    }
}

/// `examples/long_running.c`, the soak a long-running host would run, for 3 seconds: VMs
/// created and destroyed, executions, re-entry, foreign objects and by-name calls; it checks
/// itself (no live handles at the end, every finalizer run once, RSS within 2x of the
/// warm-up figure, collections > 0). CI runs it for 20 seconds against the release build.
#[test]
fn long_running_example_soaks_cleanly() {
    let _lock = exclusive();
    let scratch = Scratch::new("long_running");
    let exe = build_c("examples/long_running.c", &scratch, &["-O2"]);
    let stdout = run_ok(&exe, &["3", "1"]);
    println!("{stdout}");
    let end = line_with(&stdout, "end:");
    assert_eq!(figure(end, "live_handles"), 0.0, "{end}");
    assert!(figure(end, "iterations") > 0.0, "{end}");
    assert!(figure(end, "vms") > 1.0, "{end}");
    assert!(figure(end, "collections") > 0.0, "{end}");
}

/// Issue 16 item 2: `examples/watchdog.c`, a thread that interrupts an endless loop after
/// 100 ms. The execution fails with `STOFFEL_ERROR_INTERRUPTED` within a second, and the VM
/// answers afterwards. Also under valgrind.
#[test]
fn watchdog_example_interrupts_an_endless_loop() {
    let _lock = shared();
    let scratch = Scratch::new("watchdog");
    let exe = build_c("examples/watchdog.c", &scratch, &["-lpthread"]);
    let stdout = run_ok(&exe, &[]);
    let stopped = line_with(&stdout, "watchdog: spin stopped after");
    assert!(stopped.contains("interrupted"), "{stopped}");
    let ms = stopped
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no time in {stopped}"));
    assert!((100.0..5000.0).contains(&ms), "{stopped}");
    assert!(
        stdout.contains("watchdog: the VM answered 42 afterwards"),
        "{stdout}"
    );
    // Under valgrind too (no timing asserted there: everything runs far slower).
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert!(vg.contains("watchdog: spin stopped after"), "{vg}");
        assert!(
            vg.contains("watchdog: the VM answered 42 afterwards"),
            "{vg}"
        );
    }
}

/// Issue 16 item 4: `examples/object_fields.c` walks an object's fields with
/// `stoffel_object_next`, in insertion order, each value of its own kind, ending at
/// `STOFFEL_END`; a key that is not a field is an error. Valgrind-clean: every key and string
/// freed, every id released.
#[test]
fn object_fields_example_walks_in_insertion_order() {
    let _lock = shared();
    let scratch = Scratch::new("object_fields");
    let exe = build_c("examples/object_fields.c", &scratch, &[]);
    let lines = [
        "settings.name = \"render\"",
        "settings.width = 1280",
        "settings.height = 720",
        "settings.vsync = true",
        "settings.ratio = 1.5",
        "settings.layers = an array",
        "object_fields: 6 fields",
        "object_fields: next after \"depth\": code -3: the key is not a field of the object",
    ];
    let stdout = run_ok(&exe, &[]);
    assert_lines_in_order(&stdout, &lines);
    assert_eq!(stdout.lines().count(), lines.len(), "{stdout}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert_lines_in_order(&vg, &lines);
    }
}

/// Issue 16 item 3: `examples/backtrace.c`: a division by zero below a C callback. The
/// message C reads names the whole chain, innermost first, with the callback between the
/// bytecode frames and each frame's instruction index. Valgrind-clean.
#[test]
fn backtrace_example_names_the_chain_through_a_callback() {
    let _lock = shared();
    let scratch = Scratch::new("backtrace");
    let exe = build_c("examples/backtrace.c", &scratch, &[]);
    let lines = [
        "apply_discount: price_after failed with -4",
        "main() failed with -3:",
        "backtrace (innermost first):",
        "  at price_after, instruction 2",
        "  in host function 'apply_discount'",
        "  at checkout, instruction 1",
        "  at main, instruction 2",
    ];
    let stdout = run_ok(&exe, &[]);
    assert_lines_in_order(&stdout, &lines);
    assert!(stdout.contains("Division by zero"), "{stdout}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert_lines_in_order(&vg, &lines);
    }
}

/// Issue 16 item 1: `examples/slices.c`, a game loop running a long script 1000 instructions
/// per frame with other VM calls between frames: the sliced result equals the uninterrupted
/// one, the state errors have `STOFFEL_ERROR_STATE`, cancel works, and destroying a VM with a
/// suspended execution is clean. Also under valgrind.
#[test]
fn slices_example_runs_a_script_across_frames() {
    let _lock = shared();
    let scratch = Scratch::new("slices");
    let exe = build_c("examples/slices.c", &scratch, &[]);
    let lines = [
        "slices: a second start: STOFFEL_ERROR_STATE: an execution is already suspended on this \
         VM (resume or cancel it first)",
        "slices: resume with nothing suspended: STOFFEL_ERROR_STATE: no execution is suspended \
         on this VM",
        "slices: cancel twice: STOFFEL_ERROR_STATE",
        "slices: destroyed with an execution suspended",
    ];
    let check = |stdout: &str| {
        assert_lines_in_order(stdout, &lines);
        let done = line_with(stdout, "slices: frames=");
        assert!(figure(done, "frames") >= 50.0, "{done}");
        assert_eq!(figure(done, "callbacks"), 5000.0, "{done}");
        assert_eq!(
            figure(done, "result"),
            figure(done, "uninterrupted"),
            "{done}"
        );
    };
    check(&run_ok(&exe, &[]));
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        check(&vg);
    }
}

// ---- Hostile hosts (issue 18): exit time, destroy races, non-local exits, memory, fork,
// destroy chains. Each of these failed (aborted, hung, crashed or leaked) before the fix.

/// Item 1: the API called from a pthread-key destructor and from an `atexit` handler, after
/// the thread's thread-local storage (the last-error slot) is gone: a double destroy, stale
/// and NULL handles, `stoffel_last_error(NULL)` (a static message), a VM's whole life. Every
/// call returns its code (it used to abort: "cannot access a Thread Local Storage value
/// during or after destruction", then "panic in a function that cannot unwind").
#[test]
fn calls_during_thread_and_process_exit_return_codes() {
    let _lock = shared();
    let scratch = Scratch::new("exit_time");
    let exe = build_c("tests/c/exit_time.c", &scratch, &["-lpthread"]);
    let lines = [
        "exit_time: pthread-key destructor: every call returned its code",
        "exit_time: atexit handler: every call returned its code",
    ];
    assert_lines_in_order(&run_ok(&exe, &[]), &lines);
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert_lines_in_order(&vg, &lines);
    }
}

/// Item 6: 3 s of create / use / destroy beside two threads polling the current handle with
/// read-only calls (`stoffel_gc_stats`, `stoffel_last_error`). Every handle is dead right
/// after its destroy and every VM's finalizer ran exactly once: no survivors (there used to
/// be hundreds: a destroy that met a poller inside a call did nothing).
#[test]
fn destroy_always_destroys_beside_polling_threads() {
    let _lock = exclusive();
    let scratch = Scratch::new("destroy_race");
    let exe = build_c("tests/c/destroy_race.c", &scratch, &["-O2", "-lpthread"]);
    let stdout = run_ok(&exe, &["3"]);
    println!("{stdout}");
    let line = line_with(&stdout, "destroy_race: vms=");
    assert_eq!(figure(line, "survivors"), 0.0, "{line}");
    assert_eq!(figure(line, "alive_after_destroy"), 0.0, "{line}");
    assert!(figure(line, "vms") > 1000.0, "{line}");
}

/// Item 11: 100 000 VMs, each with a foreign object whose finalizer destroys the next VM;
/// destroying the first, on a thread with a 256 KiB stack, runs every finalizer once, in
/// order, none nested in another (it used to recurse, ~1 KB of stack a level, and crash).
#[test]
fn finalizer_destroy_chains_take_no_stack() {
    let _lock = exclusive();
    let scratch = Scratch::new("destroy_chain");
    let exe = build_c("tests/c/destroy_chain.c", &scratch, &["-O2", "-lpthread"]);
    let stdout = run_ok(&exe, &["100000"]);
    println!("{stdout}");
    let line = line_with(&stdout, "destroy_chain: n=");
    assert_eq!(figure(line, "finalizers"), 100000.0, "{line}");
    assert_eq!(figure(line, "nested"), 0.0, "{line}");
}

/// Item 8, `longjmp`: a C function callback and a print callback left with `longjmp`. What
/// the guide documents (and does not promise): the VM is stuck in the abandoned call (calls
/// on it fail with STOFFEL_ERROR_REENTRANCY), and `stoffel_destroy_vm` from that thread
/// destroys it: its finalizer runs (it used to never run: the destroy waited forever for the
/// abandoned call to return). On the main thread and another one; and a re-entrant call from
/// a fiber whose stack lies above the thread's is not taken for a longjmp. Not under
/// valgrind: the skipped frames leak.
#[test]
fn callbacks_left_by_longjmp_are_destroyable() {
    let _lock = shared();
    let scratch = Scratch::new("longjmp");
    let exe = build_c("tests/c/longjmp.c", &scratch, &["-lpthread"]);
    assert_lines_in_order(
        &run_ok(&exe, &[]),
        &[
            "longjmp: out of a C function callback: stuck, then destroyed (finalizer ran)",
            "longjmp: out of a print callback: stuck, then destroyed (finalizer ran)",
            "longjmp: the same on another thread",
            "longjmp: a re-entrant call from a fiber above the thread's stack works",
        ],
    );
}

/// Item 8, C++: `examples/cpp_callbacks.cpp` (callbacks that throw, wrapped in try/catch as
/// the guide says) builds with `g++ -Werror -pedantic` and works; an exception that does
/// escape a callback terminates the process with SIGABRT, as the guide says, even with a
/// try/catch around the call (`tests/c/cpp_escape.cpp`), and so does `pthread_exit` in a
/// callback (`tests/c/pthread_exit.c`). These pin documented behaviour (it was the same
/// before; the guide said nothing).
#[test]
fn cpp_callbacks_catch_their_exceptions() {
    use std::os::unix::process::ExitStatusExt;
    let _lock = shared();
    let scratch = Scratch::new("cpp");
    let flags = ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"];
    let example = build_with(
        "g++",
        &flags,
        Path::new("examples/cpp_callbacks.cpp"),
        &scratch,
        &[],
    );
    assert_lines_in_order(
        &run_ok(&example, &[]),
        &[
            "checked_div(84, 2) = 42",
            "checked_div(84, 0): code -4, exception \"division by zero\"",
            "last error mentions cpp_div: yes",
            "checked_div(84, 4) = 21 (the VM works after the exception)",
            "printed 1 line(s): 7",
            "destroying the VM...",
            "finalizer: buffer released",
            "done",
        ],
    );
    let escape = build_with(
        "g++",
        &flags,
        Path::new("tests/c/cpp_escape.cpp"),
        &scratch,
        &[],
    );
    let output = run(&escape, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.signal(),
        Some(6),
        "expected SIGABRT, got {:?}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, "cpp_escape: calling\n");
    // pthread_exit in a callback unwinds like an exception: the process aborts too.
    let exit = build_c("tests/c/pthread_exit.c", &scratch, &["-lpthread"]);
    let output = run(&exit, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.signal(),
        Some(6),
        "{:?}\n{stdout}",
        output.status
    );
    assert_eq!(stdout, "pthread_exit: calling\n");
}

/// Item 9: under `ulimit -v` (the program's own size + 160 MiB), a 100 MiB STRING argument,
/// string, function name and registration name fail with STOFFEL_ERROR_LIMIT; a 40 MiB
/// string is refused by a 1 MiB VM memory limit before any copy; `stoffel_create_vm`
/// returns NULL when memory runs out, and works again once VMs are destroyed. All of these
/// used to abort the process.
#[test]
fn allocation_failure_under_ulimit_is_an_error_code() {
    let _lock = shared();
    let scratch = Scratch::new("no_memory");
    let exe = build_c("tests/c/no_memory.c", &scratch, &[]);
    let probe = run_ok(&exe, &["probe"]);
    let base = figure(line_with(&probe, "no_memory: vmsize_kib="), "vmsize_kib") as u64;
    let limit = base + 160 * 1024;
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {limit}; exec \"$0\" run"))
        .arg(&exe)
        .current_dir(root())
        .output()
        .expect("run sh");
    let stdout = success(&exe, &output);
    println!("{stdout}");
    assert_lines_in_order(
        &stdout,
        &[
            "no_memory: 100 MiB strings and names refused with STOFFEL_ERROR_LIMIT",
            "no_memory: a 40 MiB string refused by a 1 MiB VM memory limit before any copy",
        ],
    );
    assert!(stdout.contains("no_memory: all checks="), "{stdout}");
}

/// Item 10: 300 forks while three threads create, use (print included) and destroy VMs;
/// every child creates, uses and destroys a VM and exits 0 (children used to hang in their
/// first `stoffel_create_vm`, on a lock held by a thread that does not exist in the child).
#[test]
fn fork_while_other_threads_use_the_library() {
    let _lock = exclusive();
    let scratch = Scratch::new("fork");
    let exe = build_c("tests/c/fork.c", &scratch, &["-lpthread"]);
    let stdout = run_ok(&exe, &[]);
    println!("{stdout}");
    assert!(
        stdout.contains("fork: 300 children created, used and destroyed a VM and exited 0"),
        "{stdout}"
    );
}

#[test]
fn error_names_identity_and_failed_callback_results() {
    // issue 17: stoffel_error_name, stoffel_same_value, and an id a failing callback wrote to
    // *result released by the VM.
    let out = common::build_and_run_c("ergonomics");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ergonomics exited with {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ergonomics: all "), "{stdout}");
}

/// Function handles (`stoffel_lookup_function`, `stoffel_call_function`): 20,000 calls
/// through one handle give the results of the same calls by name; the handle follows its name
/// across reloads (also compacting ones) and registrations; another VM's, a made-up and an
/// all-zero handle get `STOFFEL_ERROR_INVALID_HANDLE`, a destroyed VM
/// `STOFFEL_ERROR_INVALID_VM`; bad arguments and NULLs the codes of
/// `stoffel_execute_with_args`. Under valgrind too.
#[test]
fn function_handles() {
    let _lock = shared();
    let scratch = Scratch::new("functions");
    let exe = build_c("tests/c/functions.c", &scratch, &[]);
    let stdout = run_ok(&exe, &[]);
    let done = line_with(&stdout, "functions: all ");
    // "functions: all N checks passed": the loop alone makes 80,000 checks.
    let checks: u64 = done
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {done:?}"));
    assert!(checks >= 80_000, "{done}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert!(vg.contains("functions: all "), "{vg}");
    }
}

/// The fast paths of calls from C (the last name resolved, compared in place; scalar
/// arguments read straight into the VM) give what the general paths give: names sharing a
/// prefix, redefinitions, a new VM after a destroyed one, every scalar kind, strings, bad
/// tags, more than 8 arguments, and the same codes and messages for failures whether the
/// name was cached or not. Under valgrind too (the in-place compare reads no byte past a
/// name's NUL).
#[test]
fn host_call_fast_paths() {
    let _lock = shared();
    let scratch = Scratch::new("host_calls");
    let exe = build_c("tests/c/host_calls.c", &scratch, &[]);
    let stdout = run_ok(&exe, &[]);
    let done = line_with(&stdout, "host_calls: all ");
    let checks: u64 = done
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {done:?}"));
    assert!(checks >= 150, "{done}");
    if let Some((vg, _)) = valgrind(&exe, &[]) {
        assert!(vg.contains("host_calls: all "), "{vg}");
    }
}
