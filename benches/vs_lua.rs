//! `vs_lua`: stoffel-vm against PUC Lua 5.4, and LuaJIT 2.1 with its JIT off, on the same
//! workloads (BENCHMARKS.md explains them and holds the latest table).
//!
//! ```text
//! cargo bench --bench vs_lua -- [--quick] [--reps N] [--only NAME,NAME] [--baseline FILE]
//!                               [--save-baseline FILE] [--markdown FILE]
//! ```
//!
//! `cargo bench` builds what the runner needs in the release profile first (`stoffel-run`
//! and the library, whose `libstoffel_vm.so` lands next to this binary in
//! `target/release/deps`); the runner then compiles the two C programs of the host-API
//! workloads with `gcc`, and installs Debian's `lua5.4` and `liblua5.4-dev` with
//! `apt-get install -y` when `lua5.4` or its headers are missing.
//!
//! Every timed run is its own process: `target/release/stoffel-run FILE [quick]
//! --print-result --stats` or `lua5.4 peak_rss.lua FILE [quick]` for the workloads written as programs
//! (`benches/workloads/NAME.sasm` and `NAME.lua`), the C programs
//! `benches/workloads/host_api_{stoffel,lua}.c` for the host-API ones. When `luajit` is
//! installed (Debian's `luajit`; the runner does not install it), the script workloads also
//! run as `luajit -joff peak_rss.lua FILE [quick]`, a third column (the host-API rows have
//! no LuaJIT column: the package has no C library to link). Ours, Lua's and LuaJIT's runs
//! alternate; each run's stdout must be exactly the expected answer (computed here in Rust),
//! or the runner stops. Each process reports its own peak RSS (VmHWM of `/proc/self/status`)
//! on stderr as `peak_rss_kb=N`; `stoffel-run --stats` also reports the instructions it ran.
//! The table shows the median wall time of the runs (at least 3 unless `--reps` says
//! otherwise), the largest peak RSS, and how busy the rest of the machine was meanwhile.
//!
//! `--save-baseline FILE` writes the medians to FILE; `--baseline FILE` compares with such a
//! file and flags every workload whose time is more than 10% above the baseline's.
//! `--markdown FILE` writes the table (with machine, date and commit) into FILE in place of
//! the lines from `<!-- vs_lua:begin -->` to `<!-- vs_lua:end -->` (appended if absent).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The modulus the workloads keep their running sums below.
const MODULUS: u64 = 1_000_003;

/// Slower than the baseline by more than this fraction is flagged.
const REGRESSION_THRESHOLD: f64 = 0.10;

const BEGIN_MARKER: &str = "<!-- vs_lua:begin -->";
const END_MARKER: &str = "<!-- vs_lua:end -->";

const USAGE: &str = "usage: cargo bench --bench vs_lua -- [--quick] [--reps N] [--only NAME,NAME]
                           [--baseline FILE] [--save-baseline FILE] [--markdown FILE]

  --quick               smaller sizes (a check in seconds, not a measurement)
  --reps N              runs of each side per workload (default 3); the table shows medians
  --only NAME,NAME      run only these workloads
  --baseline FILE       compare with a saved baseline; flag workloads >10% slower
  --save-baseline FILE  save this run's medians as a baseline
  --markdown FILE       write the table into FILE (between <!-- vs_lua:begin/end --> markers)";

/// How a workload is run.
enum Program {
    /// `benches/workloads/NAME.sasm` under stoffel-run and `NAME.lua` under lua5.4; both
    /// take their size from the entry (`main` or `quick`) / `arg[1]` (absent or `quick`).
    Script,
    /// The workload named here, with ours running what today's StoffelLang compiler made of
    /// it (`benches/workloads/compiled/NAME.stflb`, from `NAME.stfl`: the shape real
    /// programs have) instead of the hand-written `.sasm`; Lua runs the same `NAME.lua`.
    Compiled(&'static str),
    /// The C programs `host_api_stoffel` and `host_api_lua` with this mode and the size.
    HostApi(&'static str),
}

impl Workload {
    /// The name of its `.lua` (and `.sasm` / `.stfl`) files.
    fn script(&self) -> &'static str {
        match self.program {
            Program::Compiled(script) => script,
            _ => self.name,
        }
    }
}

struct Workload {
    name: &'static str,
    program: Program,
    /// The size parameter, full and `--quick` (the programs hold the same numbers).
    full: u64,
    quick: u64,
    /// The answer every run must print, for a size.
    answer: fn(u64) -> u64,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "fib",
        program: Program::Script,
        full: 35,
        quick: 27,
        answer: fib_answer,
    },
    Workload {
        name: "int_loop",
        program: Program::Script,
        full: 100_000_000,
        quick: 5_000_000,
        answer: int_loop_answer,
    },
    Workload {
        name: "objects",
        program: Program::Script,
        full: 5_000_000,
        quick: 300_000,
        answer: objects_answer,
    },
    Workload {
        name: "binary_trees",
        program: Program::Script,
        full: 20,
        quick: 14,
        answer: binary_trees_answer,
    },
    Workload {
        name: "closures",
        program: Program::Script,
        full: 5_000_000,
        quick: 300_000,
        answer: closures_answer,
    },
    Workload {
        name: "array_sum",
        program: Program::Script,
        full: 5_000_000,
        quick: 300_000,
        answer: array_sum_answer,
    },
    Workload {
        name: "strings",
        program: Program::Script,
        full: 1_000_000,
        quick: 60_000,
        answer: strings_answer,
    },
    Workload {
        name: "host_calls",
        program: Program::HostApi("calls"),
        full: 1_000_000,
        quick: 100_000,
        answer: running_sum_answer,
    },
    Workload {
        name: "host_calls_cached",
        program: Program::HostApi("cached"),
        full: 1_000_000,
        quick: 100_000,
        answer: running_sum_answer,
    },
    Workload {
        name: "host_callbacks",
        program: Program::HostApi("callbacks"),
        full: 1_000_000,
        quick: 100_000,
        answer: running_sum_answer,
    },
    Workload {
        name: "alloc_loop",
        program: Program::Script,
        full: 10_000_000,
        quick: 1_000_000,
        answer: running_sum_answer,
    },
    Workload {
        name: "vm_lifecycle",
        program: Program::HostApi("lifecycle"),
        full: 100_000,
        quick: 10_000,
        answer: lifecycle_answer,
    },
    Workload {
        name: "fib_compiled",
        program: Program::Compiled("fib"),
        full: 35,
        quick: 27,
        answer: fib_answer,
    },
    Workload {
        name: "int_loop_compiled",
        program: Program::Compiled("int_loop"),
        full: 100_000_000,
        quick: 5_000_000,
        answer: int_loop_answer,
    },
    Workload {
        name: "objects_compiled",
        program: Program::Compiled("objects"),
        full: 5_000_000,
        quick: 300_000,
        answer: objects_answer,
    },
    Workload {
        name: "closures_compiled",
        program: Program::Compiled("closures"),
        full: 5_000_000,
        quick: 300_000,
        answer: closures_answer,
    },
    Workload {
        name: "array_sum_compiled",
        program: Program::Compiled("array_sum"),
        full: 5_000_000,
        quick: 300_000,
        answer: array_sum_answer,
    },
    Workload {
        name: "strings_compiled",
        program: Program::Compiled("strings"),
        full: 1_000_000,
        quick: 60_000,
        answer: strings_answer,
    },
    Workload {
        name: "alloc_loop_compiled",
        program: Program::Compiled("alloc_loop"),
        full: 10_000_000,
        quick: 1_000_000,
        answer: running_sum_answer,
    },
];

// ---------------------------------------------------------------------------------------------
// Expected answers, computed independently of both VMs
// ---------------------------------------------------------------------------------------------

fn fib_answer(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

fn int_loop_answer(n: u64) -> u64 {
    (0..n).fold(0, |s, i| (s + i * i) % MODULUS)
}

/// z = x + y = i + (i + 1) per object.
fn objects_answer(n: u64) -> u64 {
    (0..n).fold(0, |acc, i| (acc + 2 * i + 1) % MODULUS)
}

/// A tree of depth d has 2^(d+1) - 1 nodes, and its item check counts them.
fn binary_trees_answer(max: u64) -> u64 {
    let check = |d: u64| (1u64 << (d + 1)) - 1;
    let mut total = check(max + 1) + check(max);
    for d in (4..=max).step_by(2) {
        total += (1u64 << (max - d)) * check(d);
    }
    total
}

/// The counter made with i returns i + 1, then i + 3.
fn closures_answer(n: u64) -> u64 {
    (0..n).fold(0, |acc, i| (acc + i + 3) % MODULUS)
}

fn array_sum_answer(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Every built string matches.
fn strings_answer(n: u64) -> u64 {
    n
}

/// s = (s + i) % 1000003 for i = 0 .. n-1: the host-API workloads and alloc_loop.
fn running_sum_answer(n: u64) -> u64 {
    (0..n).fold(0, |s, i| (s + i) % MODULUS)
}

/// g(i) = (7i + 3) % 1000003, summed mod 1000003 (one fresh VM or Lua state per i).
fn lifecycle_answer(n: u64) -> u64 {
    (0..n).fold(0, |s, i| (s + (7 * i + 3) % MODULUS) % MODULUS)
}

/// Whether LuaJIT, whose numbers are doubles, computes `workload` at `size` exactly: every
/// intermediate below 2^53. Only `int_loop` passes that (i*i reaches 1e16 at full size).
fn luajit_exact(workload: &Workload, size: u64) -> bool {
    match workload.script() {
        "int_loop" => {
            let top = size.saturating_sub(1);
            top.checked_mul(top)
                .and_then(|sq| sq.checked_add(MODULUS))
                .is_some_and(|max| max < 1 << 53)
        }
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

struct Options {
    quick: bool,
    reps: usize,
    only: Option<Vec<String>>,
    baseline: Option<PathBuf>,
    save_baseline: Option<PathBuf>,
    markdown: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        reps: 3,
        only: None,
        baseline: None,
        save_baseline: None,
        markdown: None,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg {
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            "--quick" => options.quick = true,
            "--reps" => {
                let v = value()?;
                options.reps = match v.parse() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("--reps: bad count '{v}'")),
                };
            }
            "--only" => {
                let names: Vec<String> = value()?.split(',').map(str::to_owned).collect();
                for name in &names {
                    if !WORKLOADS.iter().any(|w| w.name == name) {
                        let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
                        return Err(format!(
                            "--only: no workload '{name}' (known: {})",
                            known.join(", ")
                        ));
                    }
                }
                options.only = Some(names);
            }
            "--baseline" => options.baseline = Some(value()?.into()),
            "--save-baseline" => options.save_baseline = Some(value()?.into()),
            "--markdown" => options.markdown = Some(value()?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
        i += 1;
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// Tools: stoffel-run, the shared library, Lua, the C programs
// ---------------------------------------------------------------------------------------------

struct Tools {
    root: PathBuf,
    stoffel_run: PathBuf,
    lua: String,
    /// `luajit`, when installed (the third column).
    luajit: Option<String>,
    c_stoffel: PathBuf,
    c_lua: PathBuf,
}

fn run_status(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn lua_present() -> bool {
    let runs = Command::new("lua5.4")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    runs && Path::new("/usr/include/lua5.4/lua.h").exists()
}

/// Installs Debian's lua5.4 and liblua5.4-dev when the interpreter or the headers are missing.
fn ensure_lua() -> Result<(), String> {
    if lua_present() {
        return Ok(());
    }
    eprintln!("vs_lua: lua5.4 or its headers are missing; installing lua5.4 liblua5.4-dev");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_status(&mut command)
    };
    let install = ["install", "-y", "lua5.4", "liblua5.4-dev"];
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install)?;
    }
    if lua_present() {
        Ok(())
    } else {
        Err("lua5.4 is still missing after apt-get install".to_owned())
    }
}

/// The directory holding the freshly built `libstoffel_vm.so`: `cargo bench` builds the
/// library's cdylib into `target/release/deps`, next to this binary (only `cargo build` copies
/// it up to `target/release`).
fn library_dir(stoffel_run: &Path) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut candidates = Vec::new();
    candidates.extend(exe.parent().map(Path::to_path_buf));
    candidates.extend(stoffel_run.parent().map(Path::to_path_buf));
    candidates
        .into_iter()
        .find(|dir| dir.join("libstoffel_vm.so").exists())
        .ok_or_else(|| {
            "libstoffel_vm.so not found next to the bench binary or stoffel-run; \
             run `cargo build --release` first"
                .to_owned()
        })
}

fn prepare_tools() -> Result<Tools, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let stoffel_run = PathBuf::from(env!("CARGO_BIN_EXE_stoffel-run"));
    if !stoffel_run.exists() {
        return Err(format!(
            "{} is missing; run `cargo build --release` first",
            stoffel_run.display()
        ));
    }
    ensure_lua()?;
    let lib_dir = library_dir(&stoffel_run)?;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vs_lua");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let workloads = root.join("benches/workloads");
    let c_stoffel = out.join("host_api_stoffel");
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(workloads.join("host_api_stoffel.c"))
        .arg("-L")
        .arg(&lib_dir)
        .arg("-lstoffel_vm")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&c_stoffel);
    run_status(&mut gcc)?;
    let c_lua = out.join("host_api_lua");
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror"])
        .args(["-I", "/usr/include/lua5.4"])
        .arg(workloads.join("host_api_lua.c"))
        .arg("-llua5.4")
        .arg("-o")
        .arg(&c_lua);
    run_status(&mut gcc)?;
    let luajit = Command::new("luajit")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        .then(|| "luajit".to_owned());
    if luajit.is_none() {
        eprintln!(
            "vs_lua: luajit is not installed: no LuaJIT column (apt-get install luajit adds it)"
        );
    }
    Ok(Tools {
        root,
        stoffel_run,
        lua: "lua5.4".to_owned(),
        luajit,
        c_stoffel,
        c_lua,
    })
}

impl Tools {
    /// Whether `side` has a run of `workload` at this size (LuaJIT: installed, a script,
    /// exact in doubles).
    fn runs(&self, workload: &Workload, side: Side, quick: bool) -> bool {
        let size = if quick { workload.quick } else { workload.full };
        match side {
            Side::Ours | Side::Lua => true,
            Side::LuaJit => {
                self.luajit.is_some()
                    && matches!(workload.program, Program::Script | Program::Compiled(_))
                    && luajit_exact(workload, size)
            }
        }
    }

    /// The command of one run: ours (`stoffel-run`, the stoffel C program), Lua's or
    /// LuaJIT's (scripts only, `-joff`).
    fn command(&self, workload: &Workload, side: Side, quick: bool) -> Command {
        let size = if quick { workload.quick } else { workload.full };
        let ours = side == Side::Ours;
        match workload.program {
            Program::Script | Program::Compiled(_) => {
                let dir = self.root.join("benches/workloads");
                let mut command;
                if side == Side::LuaJit {
                    // The interpreter only: the higher anchor for an interpreter.
                    command = Command::new(self.luajit.as_deref().unwrap_or("luajit"));
                    command.arg("-joff");
                    command.arg(dir.join("peak_rss.lua"));
                    command.arg(dir.join(format!("{}.lua", workload.script())));
                    if quick {
                        command.arg("quick");
                    }
                } else if ours {
                    command = Command::new(&self.stoffel_run);
                    command.arg(match workload.program {
                        Program::Compiled(script) => dir.join(format!("compiled/{script}.stflb")),
                        _ => dir.join(format!("{}.sasm", workload.name)),
                    });
                    if quick {
                        command.arg("quick");
                    }
                    command.args(["--print-result", "--stats"]);
                } else {
                    // The wrapper runs the script, then reports the peak RSS.
                    command = Command::new(&self.lua);
                    command.arg(dir.join("peak_rss.lua"));
                    command.arg(dir.join(format!("{}.lua", workload.script())));
                    if quick {
                        command.arg("quick");
                    }
                }
                command
            }
            Program::HostApi(mode) => {
                let mut command = Command::new(if ours { &self.c_stoffel } else { &self.c_lua });
                command.arg(mode).arg(size.to_string());
                command
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runs and measurements
// ---------------------------------------------------------------------------------------------

struct Run {
    seconds: f64,
    peak_rss_kb: u64,
    instructions: Option<u64>,
}

/// The number after `key=` on stderr (the last one, if several).
fn stderr_number(stderr: &str, key: &str) -> Option<u64> {
    stderr
        .split_whitespace()
        .rev()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// One timed run; its stdout must be exactly `expected` (one line).
fn run_once(mut command: Command, expected: &str) -> Result<Run, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{command:?}");
    let start = Instant::now();
    let output = command
        .spawn()
        .and_then(|child| child.wait_with_output())
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{shown} failed ({}):\n{stderr}", output.status));
    }
    if stdout.trim_end() != expected {
        return Err(format!(
            "WRONG ANSWER from {shown}: expected {expected}, got {:?}\nstderr:\n{stderr}",
            stdout.trim_end()
        ));
    }
    let Some(peak_rss_kb) = stderr_number(&stderr, "peak_rss_kb") else {
        return Err(format!(
            "{shown} did not report its peak RSS (peak_rss_kb=N on stderr):\n{stderr}"
        ));
    };
    Ok(Run {
        seconds,
        peak_rss_kb,
        instructions: stderr_number(&stderr, "instructions"),
    })
}

/// CPU time counters, in clock ticks: every CPU's busy and total time (/proc/stat), and this
/// process's own plus its reaped children's (/proc/self/stat).
#[derive(Clone, Copy)]
struct CpuSample {
    busy: u64,
    total: u64,
    mine: u64,
}

fn cpu_sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = own.rsplit_once(')')?.1;
    let own: Vec<u64> = after_name
        .split_whitespace()
        .skip(11) // state .. cmajflt; then utime stime cutime cstime
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(CpuSample {
        busy: total - idle,
        total,
        mine: own.iter().sum(),
    })
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The average number of CPUs other processes kept busy between two samples.
fn other_load(before: Option<CpuSample>, after: Option<CpuSample>) -> Option<f64> {
    let (b, a) = (before?, after?);
    let total = a.total.checked_sub(b.total)?;
    if total == 0 {
        return None;
    }
    let busy = a.busy.saturating_sub(b.busy);
    let mine = a.mine.saturating_sub(b.mine);
    let per_cpu = total as f64 / cpu_count() as f64;
    Some((busy.saturating_sub(mine) as f64 / per_cpu).max(0.0))
}

/// Who runs a workload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours,
    Lua,
    /// LuaJIT 2.1 with the JIT off.
    LuaJit,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Lua => "Lua",
            Side::LuaJit => "LuaJIT",
        }
    }
}

struct Row {
    name: &'static str,
    ours: Vec<Run>,
    lua: Vec<Run>,
    /// Empty where LuaJIT did not run (not installed, a host-API row, not exact in doubles).
    luajit: Vec<Run>,
    other_load: Option<f64>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn median_seconds(runs: &[Run]) -> f64 {
    median(runs.iter().map(|r| r.seconds).collect())
}

fn max_rss_kb(runs: &[Run]) -> Option<u64> {
    runs.iter().map(|r| r.peak_rss_kb).max()
}

// ---------------------------------------------------------------------------------------------
// Baselines
// ---------------------------------------------------------------------------------------------

struct BaselineEntry {
    ours: f64,
    lua: f64,
}

struct Baseline {
    quick: bool,
    entries: Vec<(String, BaselineEntry)>,
}

fn mode_name(quick: bool) -> &'static str {
    if quick { "quick" } else { "full" }
}

fn save_baseline(path: &Path, quick: bool, rows: &[Row]) -> Result<(), String> {
    let mut text = String::from(
        "# vs_lua baseline (benches/vs_lua.rs): workload, median seconds ours and Lua, \
         peak RSS KiB ours and Lua\n",
    );
    let _ = writeln!(text, "mode {}", mode_name(quick));
    for row in rows {
        let _ = writeln!(
            text,
            "{} {:.6} {:.6} {} {}",
            row.name,
            median_seconds(&row.ours),
            median_seconds(&row.lua),
            max_rss_kb(&row.ours).unwrap_or(0),
            max_rss_kb(&row.lua).unwrap_or(0),
        );
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn load_baseline(path: &Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read baseline {}: {e}", path.display()))?;
    let mut quick = None;
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bad = || {
            format!(
                "{}:{}: bad baseline line '{line}'",
                path.display(),
                index + 1
            )
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["mode", "quick"] => quick = Some(true),
            ["mode", "full"] => quick = Some(false),
            [name, ours, lua, ..] => {
                let ours = ours.parse().map_err(|_| bad())?;
                let lua = lua.parse().map_err(|_| bad())?;
                entries.push((name.to_string(), BaselineEntry { ours, lua }));
            }
            _ => return Err(bad()),
        }
    }
    let quick = quick.ok_or_else(|| format!("{}: no 'mode' line", path.display()))?;
    Ok(Baseline { quick, entries })
}

impl Baseline {
    fn get(&self, name: &str) -> Option<&BaselineEntry> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

fn mib(kb: Option<u64>) -> String {
    kb.map_or_else(|| "?".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0))
}

fn change(now: f64, then: f64) -> String {
    format!("{:+.1}%", (now / then - 1.0) * 100.0)
}

/// The table's rows as cells, the header first.
fn table_cells(rows: &[Row], baseline: Option<&Baseline>, luajit: bool) -> Vec<Vec<String>> {
    let mut header: Vec<String> = [
        "workload",
        "ours (s)",
        "Lua (s)",
        "ours/Lua",
        "LuaJIT -joff (s)",
        "ours/LuaJIT",
        "ours peak RSS (MiB)",
        "Lua peak RSS (MiB)",
        "ours instructions",
        "other load (CPUs)",
    ]
    .iter()
    .filter(|h| luajit || !h.contains("LuaJIT"))
    .map(|s| s.to_string())
    .collect();
    if baseline.is_some() {
        header.push("ours vs baseline".to_owned());
        header.push("Lua vs baseline".to_owned());
    }
    let mut cells = vec![header];
    for row in rows {
        let ours = median_seconds(&row.ours);
        let lua = median_seconds(&row.lua);
        let instructions = row.ours.iter().find_map(|r| r.instructions);
        let mut line = vec![
            row.name.to_owned(),
            format!("{ours:.3}"),
            format!("{lua:.3}"),
            format!("{:.2}", ours / lua),
        ];
        if luajit {
            if row.luajit.is_empty() {
                line.extend(["-".to_owned(), "-".to_owned()]);
            } else {
                let jit = median_seconds(&row.luajit);
                line.extend([format!("{jit:.3}"), format!("{:.2}", ours / jit)]);
            }
        }
        line.extend([
            mib(max_rss_kb(&row.ours)),
            mib(max_rss_kb(&row.lua)),
            instructions.map_or_else(|| "-".to_owned(), |n| format!("{:.1}M", n as f64 / 1e6)),
            row.other_load
                .map_or_else(|| "?".to_owned(), |l| format!("{l:.2}")),
        ]);
        if let Some(baseline) = baseline {
            match baseline.get(row.name) {
                Some(entry) => {
                    let mut ours_change = change(ours, entry.ours);
                    if ours > entry.ours * (1.0 + REGRESSION_THRESHOLD) {
                        ours_change.push_str(" SLOWER");
                    }
                    line.push(ours_change);
                    line.push(change(lua, entry.lua));
                }
                None => {
                    line.push("(not in baseline)".to_owned());
                    line.push(String::new());
                }
            }
        }
        cells.push(line);
    }
    cells
}

fn text_table(cells: &[Vec<String>]) -> String {
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .map(|row| row.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (index, row) in cells.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if index == 0 {
            let width = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            out.push_str(&"-".repeat(width));
            out.push('\n');
        }
    }
    out
}

fn markdown_table(cells: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (index, row) in cells.iter().enumerate() {
        out.push_str("| ");
        out.push_str(&row.join(" | "));
        out.push_str(" |\n");
        if index == 0 {
            out.push('|');
            for c in 0..row.len() {
                out.push_str(if c == 0 { "---|" } else { "---:|" });
            }
            out.push('\n');
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Context for the report: machine, date, commit, Lua version, load
// ---------------------------------------------------------------------------------------------

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// `YYYY-MM-DD HH:MM UTC` (days to civil date: Howard Hinnant's algorithm).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    // `lua5.4 -v` prints to stdout; be lenient and take whichever has text.
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    Some(String::from_utf8_lossy(&text).trim().to_owned())
}

fn git_revision(root: &Path) -> String {
    let Some(head) = command_output("git", &["rev-parse", "--short", "HEAD"], root) else {
        return "unknown".to_owned();
    };
    let dirty = command_output(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        root,
    )
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

struct Context {
    date: String,
    machine: String,
    revision: String,
    lua_version: String,
    /// `None`: LuaJIT not installed.
    luajit_version: Option<String>,
    load_before: String,
    load_after: String,
    other_load: Option<f64>,
}

fn markdown_block(options: &Options, context: &Context, cells: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN_MARKER}");
    let _ = writeln!(
        out,
        "Measured {} on {}; commit {}; {}; `{}` ({} mode, median of {} runs per side).",
        context.date,
        context.machine,
        context.revision,
        context.lua_version,
        reproduce_command(options),
        mode_name(options.quick),
        options.reps,
    );
    let _ = writeln!(
        out,
        "Load average (1 min) {} before and {} after; other processes kept {} CPUs busy on \
         average meanwhile (column \"other load\": per workload).",
        context.load_before,
        context.load_after,
        context
            .other_load
            .map_or_else(|| "?".to_owned(), |l| format!("{l:.2}")),
    );
    match &context.luajit_version {
        Some(version) => {
            let _ = writeln!(
                out,
                "LuaJIT column: {version} with the JIT off (`luajit -joff`), script workloads \
                 only (\"-\": the host-API rows, which link Lua's C library, and `int_loop` at \
                 full size, whose i*i passes 2^53 in LuaJIT's doubles)."
            );
        }
        None => {
            let _ = writeln!(
                out,
                "No LuaJIT column: `luajit` was not installed (Debian's `luajit` adds it)."
            );
        }
    }
    out.push('\n');
    out.push_str(&markdown_table(cells));
    let _ = writeln!(out, "{END_MARKER}");
    out
}

/// The command that repeats this measurement (without the baseline and output options).
fn reproduce_command(options: &Options) -> String {
    let mut command = "cargo bench --bench vs_lua --".to_owned();
    if options.quick {
        command.push_str(" --quick");
    }
    if options.reps != 3 {
        let _ = write!(command, " --reps {}", options.reps);
    }
    if let Some(only) = &options.only {
        let _ = write!(command, " --only {}", only.join(","));
    }
    if let Some(path) = &options.markdown {
        let _ = write!(command, " --markdown {}", path.display());
    }
    command
}

/// Puts `block` in place of the lines from the begin marker to the end marker of the file at
/// `path` (each marker alone on its line), or appends it when the file or the markers are
/// missing.
fn write_markdown(path: &Path, block: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut begin = None;
    let mut end = None;
    let mut offset = 0;
    for line in old.split_inclusive('\n') {
        let text = line.trim();
        if begin.is_none() && text == BEGIN_MARKER {
            begin = Some(offset);
        } else if begin.is_some() && text == END_MARKER {
            end = Some(offset + line.len());
            break;
        }
        offset += line.len();
    }
    let new = match (begin, end) {
        (Some(begin), Some(end)) => format!("{}{block}{}", &old[..begin], &old[end..]),
        _ if old.is_empty() => format!("# Benchmarks: stoffel-vm vs Lua 5.4\n\n{block}"),
        _ => format!("{}\n\n{block}", old.trim_end()),
    };
    std::fs::write(path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn run(options: &Options) -> Result<(), String> {
    let baseline = options.baseline.as_deref().map(load_baseline).transpose()?;
    if let Some(b) = &baseline
        && b.quick != options.quick
    {
        return Err(format!(
            "the baseline was measured in {} mode, this run is in {} mode",
            mode_name(b.quick),
            mode_name(options.quick)
        ));
    }
    let tools = prepare_tools()?;
    let selected: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| {
            options
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|n| n == w.name))
        })
        .collect();

    let context_start = (utc_now(), load_average(), cpu_sample());
    let mut rows = Vec::new();
    for workload in &selected {
        let size = if options.quick {
            workload.quick
        } else {
            workload.full
        };
        let expected = (workload.answer)(size).to_string();
        let before = cpu_sample();
        let mut row = Row {
            name: workload.name,
            ours: Vec::new(),
            lua: Vec::new(),
            luajit: Vec::new(),
            other_load: None,
        };
        for rep in 1..=options.reps {
            for side in [Side::Ours, Side::Lua, Side::LuaJit] {
                if !tools.runs(workload, side, options.quick) {
                    continue;
                }
                let command = tools.command(workload, side, options.quick);
                let run = run_once(command, &expected)?;
                eprintln!(
                    "{:<17} {:<6} run {rep}/{}: {:>8.3} s  peak RSS {:>7} MiB  answer {expected}",
                    workload.name,
                    side.label(),
                    options.reps,
                    run.seconds,
                    mib(Some(run.peak_rss_kb)),
                );
                match side {
                    Side::Ours => row.ours.push(run),
                    Side::Lua => row.lua.push(run),
                    Side::LuaJit => row.luajit.push(run),
                }
            }
        }
        row.other_load = other_load(before, cpu_sample());
        rows.push(row);
    }

    let context = Context {
        date: context_start.0,
        machine: format!("{} ({} CPUs)", cpu_model(), cpu_count()),
        revision: git_revision(&tools.root),
        lua_version: command_output(&tools.lua, &["-v"], &tools.root)
            .and_then(|v| v.split("  ").next().map(str::to_owned))
            .unwrap_or_else(|| "Lua 5.4".to_owned()),
        luajit_version: tools.luajit.as_deref().map(|luajit| {
            command_output(luajit, &["-v"], &tools.root)
                .and_then(|v| v.split(" -- ").next().map(str::to_owned))
                .unwrap_or_else(|| "LuaJIT".to_owned())
        }),
        load_before: context_start.1,
        load_after: load_average(),
        other_load: other_load(context_start.2, cpu_sample()),
    };
    let cells = table_cells(&rows, baseline.as_ref(), tools.luajit.is_some());
    println!();
    println!(
        "stoffel-vm vs {} ({} mode, median of {} runs; {}; {})",
        context.lua_version,
        mode_name(options.quick),
        options.reps,
        context.machine,
        context.date
    );
    print!("{}", text_table(&cells));
    if let Some(load) = context.other_load
        && load > 0.2
    {
        println!(
            "note: other processes kept {load:.2} CPUs busy on average during the run; \
             times may be noisy"
        );
    }

    let mut regressed = Vec::new();
    if let Some(baseline) = &baseline {
        for row in &rows {
            if let Some(entry) = baseline.get(row.name)
                && median_seconds(&row.ours) > entry.ours * (1.0 + REGRESSION_THRESHOLD)
            {
                regressed.push(row.name);
            }
        }
        if regressed.is_empty() {
            println!("baseline: no workload is more than 10% slower");
        } else {
            println!(
                "baseline: SLOWER by more than 10%: {}",
                regressed.join(", ")
            );
        }
    }
    if let Some(path) = &options.save_baseline {
        save_baseline(path, options.quick, &rows)?;
        println!("baseline saved to {}", path.display());
    }
    if let Some(path) = &options.markdown {
        write_markdown(path, &markdown_block(options, &context, &cells))?;
        println!("table written to {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("vs_lua: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vs_lua: {message}");
            ExitCode::FAILURE
        }
    }
}
