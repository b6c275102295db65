//! No abort when memory runs out: without any memory limit, under an address-space cap
//! (`ulimit -v`), the runaway programs of `tests/data/cli/` (a string doubling itself, an
//! array written at ever larger indices) end with a runtime error, exit status 1 and a
//! one-line message, never SIGABRT (status 134). Every allocation whose size a program
//! controls is a fallible reservation.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_stoffel-run");

/// Runs stoffel-run with `args` under `ulimit -v KIB`.
fn stoffel_run_capped(kib: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn runaway_programs_without_a_limit_fail_cleanly_when_the_system_refuses() {
    for program in [
        "tests/data/cli/string_doubling.sasm",
        "tests/data/cli/array_index_doubling.sasm",
    ] {
        let out = stoffel_run_capped(4_000_000, &[program, "--memory-limit", "none"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{program}: status {:?}, stderr: {err}",
            out.status
        );
        assert!(
            err.contains("out of memory: could not allocate"),
            "{program}: {err}"
        );
        assert!(!err.contains("panicked"), "{program}: {err}");
        assert_eq!(err.lines().count(), 1, "{program}: {err}");
    }
}
