//! `stoffel-run`: exit codes, output, and its options, run as a real process.

use std::process::{Command, Output};

fn stoffel_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stoffel-run"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
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
    let bad = temp_file("bad.stflb", b"STFL\x07\x00");
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
