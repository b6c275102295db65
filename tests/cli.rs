//! `stoffel-run`: exit codes, output, and its options, run as a real process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_stoffel-run");

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn stoffel_run(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_file(name: &str, contents: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("stoffel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn fib_example_prints_the_right_number() {
    let out = stoffel_run(&["examples/fib.sasm", "--print-result"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "832040\n");
}

#[test]
fn hello_prints_and_returns_unit() {
    let out = stoffel_run(&["examples/hello.sasm", "--print-result"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "Hello, world!\n()\n");
}

#[test]
fn bytecode_files_are_detected_by_content() {
    let out = stoffel_run(&["tests/conformance/shipped_fizzbuzz.stflb", "--print-result"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "73\n");
    // Same bytes under a misleading name still load as bytecode.
    let bytes = std::fs::read("tests/conformance/shipped_fizzbuzz.stflb").unwrap();
    let path = temp_file("fizz.sasm", &bytes);
    let out = stoffel_run(&[&path, "--print-result"]);
    assert_eq!(text(&out.stdout), "73\n");
}

#[test]
fn a_runtime_error_exits_1_with_the_message_on_stderr() {
    let out = stoffel_run(&["tests/conformance/shipped_imports_main_with_import.stflb"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("function 'add' not found") && err.contains("'main'"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn load_and_usage_errors_exit_2() {
    let bad = temp_file("bad.stflb", b"STFL\x0a\x00");
    let out = stoffel_run(&[&bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("version"),
        "{}",
        text(&out.stderr)
    );

    let bad_asm = temp_file("bad.sasm", b".function main\n    FROB r1\n");
    let out = stoffel_run(&[&bad_asm]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(stoffel_run(&[]).status.code(), Some(2));
    assert_eq!(stoffel_run(&["--fuel"]).status.code(), Some(2));
    assert_eq!(
        stoffel_run(&["examples/fib.sasm", "--bogus"]).status.code(),
        Some(2)
    );
    assert_eq!(stoffel_run(&["/no/such/file"]).status.code(), Some(2));
    let out = stoffel_run(&["examples/fib.sasm", "nosuchentry"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nosuchentry"));
}

#[test]
fn an_entry_other_than_main_can_be_named() {
    let src = temp_file(
        "two.sasm",
        b".function main\n LDI r1, 1\n RET r1\n.function other\n LDI r1, 2\n RET r1\n",
    );
    let out = stoffel_run(&[&src, "other", "--print-result"]);
    assert_eq!(text(&out.stdout), "2\n");
}

#[test]
fn fuel_and_depth_limits_are_runtime_errors() {
    let spin = temp_file("spin.sasm", b".function main\ntop:\n    JMP top\n");
    let out = stoffel_run(&[&spin, "--fuel", "1000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("instruction limit"),
        "{}",
        text(&out.stderr)
    );

    let out = stoffel_run(&["examples/fib.sasm", "--max-depth", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("call depth"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn disasm_output_runs_like_the_original() {
    let out = stoffel_run(&["tests/conformance/fibonacci_recursive.stflb", "--disasm"]);
    assert_eq!(out.status.code(), Some(0));
    let listing = text(&out.stdout);
    assert!(
        listing.contains(".function main") && listing.contains("CALL"),
        "{listing}"
    );
    let path = temp_file("fib_rec.sasm", listing.as_bytes());
    let out = stoffel_run(&[&path, "--print-result"]);
    assert_eq!(text(&out.stdout), "55\n");
}

#[test]
fn disasm_shows_v9_type_metadata_and_spill_instructions() {
    let out = stoffel_run(&[
        "tests/conformance-v9/examples__matrix__clear__convolution_int64__main.stflb",
        "--disasm",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let listing = text(&out.stdout);
    assert!(
        listing.contains(".function convolve(grid: list<list<int64>>, kernel: list<list<int64>>) -> list<list<int64>>"),
        "{listing}"
    );
    assert!(
        listing.contains("    STS 1, r2") && listing.contains("    LDS r2, 1"),
        "{listing}"
    );
    // A v9 program without a manifest prints no header; the listing assembles back.
    assert!(listing.starts_with(".function "), "{listing}");
    let path = temp_file("conv.sasm", listing.as_bytes());
    let out = stoffel_run(&[&path, "--disasm"]);
    assert_eq!(text(&out.stdout), listing);
}

#[test]
fn disasm_reports_trailing_bytes() {
    let mut bytes = std::fs::read("tests/conformance/factorial.stflb").unwrap();
    bytes.extend_from_slice(b"junk");
    let path = temp_file("trailing.stflb", &bytes);
    let out = stoffel_run(&[&path, "--disasm"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("4 trailing bytes"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn trace_lists_executed_instructions_on_stderr() {
    let src = temp_file("t.sasm", b".function main\n LDI r1, 7\n RET r1\n");
    let out = stoffel_run(&[&src, "--trace", "--print-result"]);
    assert_eq!(text(&out.stdout), "7\n");
    assert_eq!(text(&out.stderr), "main[0]: LDI r1, 7\nmain[1]: RET r1\n");
}

#[test]
fn an_errors_instruction_index_is_found_in_the_listing_and_the_trace_names_labels() {
    // issue 17 item 6: `disasm` prints each instruction's index, the one errors name, and
    // `--trace` writes jump targets by their label.
    let src = temp_file(
        "idx.sasm",
        b".function main registers 3\n    LDI r1, 1\n    LDI r2, 0\n    CMP r1, r2\n    JMPGT divide\n    RET r1\ndivide:\n    DIV r0, r1, r2\n    RET r0\n",
    );
    let out = stoffel_run(&[&src]);
    assert_eq!(out.status.code(), Some(1));
    let error = text(&out.stderr);
    assert!(error.contains("at instruction 5"), "{error}");
    let listing = text(&stoffel_run(&["disasm", &src]).stdout);
    let line = listing
        .lines()
        .find(|l| l.trim_end().ends_with("; 5"))
        .unwrap_or_else(|| panic!("no instruction 5 in\n{listing}"));
    assert!(line.trim_start().starts_with("DIV r0, r1, r2"), "{line}");
    let trace = text(&stoffel_run(&[&src, "--trace"]).stderr);
    assert!(trace.contains("main[3]: JMPGT divide\n"), "{trace}");
}

#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(BIN)
        .arg(std::ffi::OsStr::from_bytes(b"prog\xff.sasm"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

// ----- closed output pipes -----

/// A pipe whose read end is already closed (as after `| head -1` has exited): every write to
/// the returned end fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// Runs stoffel-run with stdout a closed pipe; stderr is captured.
fn run_with_closed_stdout(args: &[&str]) -> Output {
    command(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Runs stoffel-run like `stoffel-run ARGS | head -1`: reads the first line of stdout, closes
/// the pipe, then waits (stderr is captured). Returns the line and the output.
fn run_reading_one_line(args: &[&str]) -> (String, Output) {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The reader (and with it the pipe's only read end) is dropped here.
    (line, child.wait_with_output().unwrap())
}

/// A closed stdout ends the run with status 0 and nothing on stderr: no panic, no abort, no
/// "print failed" message.
fn assert_quiet_exit(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: status {:?}, stderr: {err}",
        out.status
    );
    assert!(err.is_empty(), "{what}: stderr: {err}");
}

/// Prints a line forever; with `--fuel` the run ends with an instruction-limit error (exit 1
/// and a message) if writes to a closed stdout do not stop it.
const PRINT_FOREVER: &[u8] = b".function main
    LDI r1, \"a line of program output\"
loop:
    PUSHARG r1
    CALL print
    JMP loop
";

#[test]
fn print_to_a_closed_stdout_ends_quietly() {
    let src = temp_file("print_forever.sasm", PRINT_FOREVER);
    let out = run_with_closed_stdout(&[&src, "--fuel", "10000000"]);
    assert_quiet_exit(&out, "print, stdout closed from the start");

    let (line, out) = run_reading_one_line(&[&src, "--fuel", "10000000"]);
    assert_eq!(line, "a line of program output\n");
    assert_quiet_exit(&out, "print, stdout closed after one line");
}

/// An assembly program whose listing is about 2 MiB, more than any pipe buffers.
fn big_program() -> String {
    let mut src = String::from(".function main\n");
    for i in 0..100_000 {
        src.push_str(&format!("    LDI r1, {i}\n"));
    }
    src.push_str("    RET r1\n");
    src
}

#[test]
fn disasm_to_a_closed_stdout_ends_quietly() {
    let src = temp_file("big.sasm", big_program().as_bytes());
    let out = run_with_closed_stdout(&[&src, "--disasm"]);
    assert_quiet_exit(&out, "--disasm, stdout closed from the start");

    let (line, out) = run_reading_one_line(&[&src, "--disasm"]);
    assert!(line.starts_with(".function main"), "{line}");
    assert_quiet_exit(&out, "--disasm, stdout closed after one line");
}

#[test]
fn print_result_to_a_closed_stdout_ends_quietly() {
    // Returns a string of 2^21 'x's.
    let src = temp_file(
        "big_result.sasm",
        b".function main
    LDI r1, \"x\"
    LDI r2, 0
    LDI r3, 21
    LDI r4, 1
loop:
    ADD r1, r1, r1
    ADD r2, r2, r4
    CMP r2, r3
    JMPLT loop
    RET r1
",
    );
    let out = stoffel_run(&[&src, "--print-result"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), (1 << 21) + 1);

    let out = run_with_closed_stdout(&[&src, "--print-result"]);
    assert_quiet_exit(&out, "--print-result, stdout closed from the start");
}

#[test]
fn trace_with_a_closed_stdout_or_stderr_ends_quietly() {
    let src = temp_file("trace_print_forever.sasm", PRINT_FOREVER);
    let args = [src.as_str(), "--trace", "--fuel", "1000000"];

    // stdout closed: the first print fails; the trace up to there is on stderr.
    let out = command(&args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{:?}: {err}", out.status);
    assert!(
        err.lines().all(|l| l.starts_with("main[")),
        "only trace lines expected: {err}"
    );
    assert!(err.contains("CALL print"), "{err}");

    // stderr (the trace) closed, stdout read: the first trace line already fails. Nothing
    // can be said on stderr, so only the status shows it (a panic would be 101).
    let out = command(&args)
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);

    // Both closed, as in `stoffel-run --trace 2>&1 | head -1` once head has exited.
    let out = command(&args)
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);

    // The trace read like `2>&1 | head -1`: one line, then the pipe closes.
    let mut child = command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "main[0]: LDI r1, \"a line of program output\"\n");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn help_to_a_closed_stdout_ends_quietly() {
    let out = stoffel_run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--memory-limit <SIZE>"));
    let out = run_with_closed_stdout(&["--help"]);
    assert_quiet_exit(&out, "--help, stdout closed from the start");
}

#[test]
fn other_stdout_write_errors_are_runtime_errors() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full here
    };
    let src = temp_file(
        "print_once.sasm",
        b".function main\n LDI r1, 1\n PUSHARG r1\n CALL print\n RET r1\n",
    );
    let out = command(&[&src])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("print failed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

// ----- memory limit -----

/// Runs stoffel-run under `ulimit -v 4000000` (about 3.8 GiB of address space), where an
/// allocation that does not fit fails, so a run that outgrows it would abort (SIGABRT).
fn stoffel_run_under_ulimit(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4000000 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn assert_memory_limit_error(out: &Output, limit: usize, what: &str) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: status {:?}, stderr: {err}",
        out.status
    );
    assert!(
        err.contains(&format!("memory limit of {limit} bytes exceeded")),
        "{what}: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{what}: one line expected: {err}");
}

const HOSTILE: [&str; 2] = [
    "tests/data/cli/string_doubling.sasm",
    "tests/data/cli/array_index_doubling.sasm",
];

#[test]
fn runaway_programs_stop_at_an_explicit_memory_limit() {
    for program in HOSTILE {
        let out = stoffel_run(&[program, "--memory-limit", "64M"]);
        assert_memory_limit_error(&out, 64 << 20, program);
        let out = stoffel_run_under_ulimit(&[program, "--memory-limit", "64M"]);
        assert_memory_limit_error(&out, 64 << 20, &format!("{program} under ulimit -v"));
    }
}

#[test]
fn runaway_programs_stop_at_the_default_memory_limit() {
    for program in HOSTILE {
        let out = stoffel_run(&[program]);
        assert_memory_limit_error(&out, 1 << 30, program);
        let out = stoffel_run_under_ulimit(&[program]);
        assert_memory_limit_error(&out, 1 << 30, &format!("{program} under ulimit -v"));
    }
}

#[test]
fn memory_limit_sizes() {
    let src = temp_file("tiny.sasm", b".function main\n LDI r1, 5\n RET r1\n");
    for good in [
        "1048576", "64K", "64k", "64M", "2m", "1G", "1g", "none", "NONE",
    ] {
        let out = stoffel_run(&[&src, "--memory-limit", good, "--print-result"]);
        assert_eq!(out.status.code(), Some(0), "{good}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "5\n", "{good}");
    }
    for bad in [
        "",
        "0",
        "0K",
        "-1",
        "1.5G",
        "64MB",
        "K",
        "12X",
        " 64M",
        "1T",
        "99999999999999999999",
        "99999999999G",
    ] {
        let out = stoffel_run(&[&src, "--memory-limit", bad]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "'{bad}': {err}");
        assert!(err.contains("--memory-limit"), "'{bad}': {err}");
        assert!(!err.contains("panicked"), "'{bad}': {err}");
    }
    assert_eq!(
        stoffel_run(&[&src, "--memory-limit"]).status.code(),
        Some(2)
    );
    // A small limit is a runtime error of the program, not a usage error.
    let out = stoffel_run(&["examples/objects.sasm", "--memory-limit", "100"]);
    assert_memory_limit_error(&out, 100, "objects.sasm with 100 bytes");
}

// ----- entry arguments, --version, assemble and disasm -----

/// `add(a, b)` returns a + b; `show(x)` prints x and returns it.
const ADD_AND_SHOW: &[u8] = b".function add(a, b)
    ADD r2, r0, r1
    RET r2
.function show(x)
    MOV r1, r0
    PUSHARG r1
    CALL print
    RET r1
";

#[test]
fn arguments_after_the_entry_are_passed_with_their_types() {
    let src = temp_file("args.sasm", ADD_AND_SHOW);
    let out = stoffel_run(&[&src, "add", "40", "2", "--print-result"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "42\n");
    // Negative numbers are arguments, not options; options may come after them.
    let out = stoffel_run(&[&src, "add", "-5", "-6", "--print-result"]);
    assert_eq!(text(&out.stdout), "-11\n", "{}", text(&out.stderr));
    let out = stoffel_run(&[&src, "add", "1.5", "2.25", "--print-result"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "3.75f64\n");

    // `type` names the kind each argument arrived as.
    let typed = temp_file(
        "typed.sasm",
        b".function kind(x)\n PUSHARG r0\n CALL type\n RET r0\n",
    );
    for (arg, kind) in [
        ("7", "int64"),
        ("-7", "int64"),
        ("7.0", "float"),
        ("1e3", "float"),
        ("true", "boolean"),
        ("false", "boolean"),
        ("hello", "string"),
        ("s:7", "string"),
        ("s:true", "string"),
        ("inf", "string"),
    ] {
        let out = stoffel_run(&[&typed, "kind", arg, "--print-result"]);
        assert_eq!(out.status.code(), Some(0), "{arg}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{kind}\n"), "{arg}");
    }

    // `s:` is stripped once; `--` passes text that looks like an option.
    let out = stoffel_run(&[&src, "show", "s:s:42"]);
    assert_eq!(text(&out.stdout), "s:42\n", "{}", text(&out.stderr));
    let out = stoffel_run(&[&src, "--print-result", "show", "--", "--not-an-option"]);
    assert_eq!(
        text(&out.stdout),
        "--not-an-option\n--not-an-option\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_arguments_are_errors() {
    let src = temp_file("args_bad.sasm", ADD_AND_SHOW);
    // Too large for an int64: a usage error that says how to pass it as a string.
    let out = stoffel_run(&[&src, "show", "99999999999999999999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("s:99999999999999999999"),
        "{}",
        text(&out.stderr)
    );
    // The wrong number of arguments is an error of the call (status 1).
    let out = stoffel_run(&[&src, "add", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expects 2 arguments but got 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_prints_the_crate_version() {
    let out = stoffel_run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("stoffel-run {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run_with_closed_stdout(&["--version"]);
    assert_quiet_exit(&out, "--version, stdout closed from the start");
}

#[test]
fn assemble_then_run_gives_the_same_result() {
    let dir = std::env::temp_dir().join(format!("stoffel-cli-asm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("fib.stflb");
    let out_path = out_path.to_str().unwrap();
    let out = stoffel_run(&["assemble", "examples/fib.sasm", "-o", out_path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let bytes = std::fs::read(out_path).unwrap();
    assert!(bytes.starts_with(b"STFL"));
    let out = stoffel_run(&[out_path, "main", "--print-result"]);
    assert_eq!(text(&out.stdout), "832040\n", "{}", text(&out.stderr));

    // Without -o: next to the input, with the extension .stflb; the same bytes.
    let src = dir.join("copy.sasm");
    std::fs::copy("examples/fib.sasm", &src).unwrap();
    let out = stoffel_run(&["assemble", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(dir.join("copy.stflb")).unwrap(), bytes);

    // The bytecode disassembles to assembly that assembles to the same bytes.
    let out = stoffel_run(&["disasm", out_path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing = dir.join("listing.sasm");
    std::fs::write(&listing, &out.stdout).unwrap();
    let again = dir.join("again.stflb");
    let out = stoffel_run(&[
        "assemble",
        listing.to_str().unwrap(),
        "--output",
        again.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn assemble_errors_name_line_and_column() {
    let bad = temp_file(
        "bad_for_assemble.sasm",
        b".function main\n    LDI r1, 1\n  FROB r1\n",
    );
    let out = stoffel_run(&["assemble", &bad, "-o", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{bad}:3:3: ")), "{err}");
    assert!(err.contains("FROB"), "{err}");

    // Bytecode is not assembly; a missing input is a clear error.
    let out = stoffel_run(&[
        "assemble",
        "tests/conformance/factorial.stflb",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already STFL bytecode"),
        "{}",
        text(&out.stderr)
    );
    let out = stoffel_run(&["assemble", "/no/such/file.sasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read"));
    assert_eq!(stoffel_run(&["assemble"]).status.code(), Some(2));
}

#[test]
fn disasm_subcommand_matches_the_flag_and_reports_byte_offsets() {
    let file = "tests/conformance/fibonacci_recursive.stflb";
    let by_flag = stoffel_run(&[file, "--disasm"]);
    let by_command = stoffel_run(&["disasm", file]);
    assert_eq!(by_command.status.code(), Some(0));
    assert_eq!(by_command.stdout, by_flag.stdout);

    // A truncated file: the message names the byte offset of what is missing.
    let bytes = std::fs::read(file).unwrap();
    let cut = temp_file("cut.stflb", &bytes[..bytes.len() / 2]);
    let out = stoffel_run(&["disasm", &cut]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("byte 0x"), "{err}");
    let out = run_with_closed_stdout(&["disasm", file]);
    assert_quiet_exit(&out, "disasm, stdout closed from the start");
}

#[test]
fn a_file_named_like_a_subcommand_runs_after_a_double_dash() {
    let dir = std::env::temp_dir().join(format!("stoffel-cli-named-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy("examples/fib.sasm", dir.join("disasm")).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    // The subcommand wins...
    let out = run(&["disasm", "disasm"]);
    assert!(
        text(&out.stdout).starts_with(".function"),
        "{}",
        text(&out.stderr)
    );
    // ...and `--` (or a path such as ./disasm) runs the file.
    let out = run(&["--print-result", "--", "disasm"]);
    assert_eq!(text(&out.stdout), "832040\n", "{}", text(&out.stderr));
    let out = run(&["./disasm", "--print-result"]);
    assert_eq!(text(&out.stdout), "832040\n", "{}", text(&out.stderr));
}
