//! `stoffel-run`: runs a StoffelVM program (STFL bytecode, versions 0 to 9, or text assembly) from the
//! command line.
//!
//! Exit status: 0 on success, 1 on a runtime error, 2 on a usage or load error; messages go to
//! stderr, program output to stdout. A closed output pipe (`stoffel-run prog | head -1`) ends
//! the run quietly with status 0.
//!
//! Nothing here writes with `print!`/`println!`/`eprintln!`: those panic when the write fails.
//! Every write to stdout is checked, and a failure ends the run (quietly for a closed pipe);
//! writes of messages to stderr ignore failures, there being nowhere left to report them.

use std::cell::Cell;
use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;
use std::rc::Rc;

use stoffel_vm::{Output, RuntimeError, RuntimeErrorKind, Vm, VmError, asm, stfl};

/// Exit status when stdout (or stderr while tracing) turns out to be a pipe whose reader is
/// gone: the reader stopped wanting output, which is not an error of the program.
const EXIT_CLOSED_PIPE: u8 = 0;

/// The default `--memory-limit`: 1 GiB of heap values and interpreter stacks.
const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

const USAGE: &str = "usage: stoffel-run FILE [ENTRY] [--print-result] [--fuel N] [--max-depth N] [--memory-limit SIZE] [--trace] [--disasm] [--stats]

Runs ENTRY (default: main) of FILE, an STFL bytecode file (.stflb, versions 0 to 9) or a
text assembly file (detected by content).

  --print-result       print the entry's return value as the last line of stdout
  --fuel N             stop with an error after N instructions
  --max-depth N        stop with an error beyond N live call frames (default 10000)
  --memory-limit SIZE  stop with an error when the program's heap values and interpreter
                       stacks would pass SIZE bytes (default 1G); SIZE is a number of bytes,
                       optionally with a K, M or G suffix (binary: 1K = 1024), or `none`
                       for no limit (the process may then be killed when memory runs out)
  --trace              print every executed instruction to stderr
  --disasm             print the loaded program as assembly and exit
  --stats              at exit, print `stats: instructions=N peak_rss_kb=N` to stderr (the
                       instructions executed, counted as --fuel counts them, and the
                       process's peak RSS, VmHWM; for benches/)

Exit status: 0 success, 1 runtime error (including the memory limit), 2 usage or load error.
If stdout (or stderr under --trace) is a pipe that was closed, e.g. by `| head -1`, the
run stops at the next write to it and exits 0 without a message.";

struct Options {
    file: String,
    entry: String,
    print_result: bool,
    fuel: Option<u64>,
    max_depth: Option<usize>,
    memory_limit: Option<usize>,
    trace: bool,
    disasm: bool,
    stats: bool,
}

/// Parses a `--memory-limit` value: bytes, or a number with a K/M/G suffix (binary units,
/// either case), or `none`.
fn parse_size(text: &str) -> Result<Option<usize>, String> {
    let bad = || {
        format!(
            "--memory-limit: bad size '{text}' (expected bytes, a number with K, M or G, or 'none')"
        )
    };
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: usize = digits
        .parse()
        .map_err(|_| format!("--memory-limit: '{text}' is too large"))?;
    let bytes = number
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("--memory-limit: '{text}' is too large"))?;
    if bytes == 0 {
        return Err("--memory-limit must be at least 1 byte (use 'none' for no limit)".to_owned());
    }
    Ok(Some(bytes))
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut positional = Vec::new();
    let mut options = Options {
        file: String::new(),
        entry: "main".to_owned(),
        print_result: false,
        fuel: None,
        max_depth: None,
        memory_limit: Some(DEFAULT_MEMORY_LIMIT),
        trace: false,
        disasm: false,
        stats: false,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let mut value = |name: &str| -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--print-result" => options.print_result = true,
            "--trace" => options.trace = true,
            "--disasm" => options.disasm = true,
            "--stats" => options.stats = true,
            "--fuel" => {
                let v = value("--fuel")?;
                options.fuel = Some(v.parse().map_err(|_| format!("--fuel: bad number '{v}'"))?);
            }
            "--max-depth" => {
                let v = value("--max-depth")?;
                let depth: usize = v
                    .parse()
                    .map_err(|_| format!("--max-depth: bad number '{v}'"))?;
                if depth == 0 {
                    return Err("--max-depth must be at least 1".to_owned());
                }
                options.max_depth = Some(depth);
            }
            "--memory-limit" => {
                let v = value("--memory-limit")?;
                options.memory_limit = parse_size(&v)?;
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option '{s}'")),
            _ => positional.push(arg.clone()),
        }
        i += 1;
    }
    match positional.len() {
        0 => return Err("missing FILE".to_owned()),
        1 => {}
        2 => options.entry = positional[1].clone(),
        _ => return Err(format!("unexpected argument '{}'", positional[2])),
    }
    options.file = positional[0].clone();
    Ok(options)
}

/// Writes a message to stderr; a failure to write it is ignored.
fn report(message: impl Display) {
    let _ = writeln!(io::stderr().lock(), "stoffel-run: {message}");
}

/// Writes `text` to stdout and flushes it.
fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The exit status after a failed write to stdout: quiet for a closed pipe, otherwise a
/// message and status 1.
fn stdout_failed(error: &io::Error) -> ExitCode {
    if error.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::from(EXIT_CLOSED_PIPE)
    } else {
        report(format_args!("cannot write to stdout: {error}"));
        ExitCode::from(1)
    }
}

/// Where the program's `print` writes: stdout, noting when a write finds the pipe closed (the
/// VM then stops with a "print failed" runtime error, which [`run`] turns into a quiet exit).
struct ProgramOutput {
    closed: Rc<Cell<bool>>,
}

impl ProgramOutput {
    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed.set(true);
        }
        result
    }
}

impl Write for ProgramOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.note(io::stdout().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.note(io::stdout().lock().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.note(io::stdout().flush())
    }
}

/// `--trace`: one line per instruction on stderr. The VM gives the sink no way to fail, so a
/// failed write ends the process here: status [`EXIT_CLOSED_PIPE`] for a closed pipe, 1 for
/// any other error (no message: stderr is what failed). Program output is already flushed,
/// since every `print` flushes.
fn trace_line(line: &str) {
    let mut err = io::stderr().lock();
    if let Err(e) = writeln!(err, "{line}") {
        let status = if e.kind() == io::ErrorKind::BrokenPipe {
            EXIT_CLOSED_PIPE
        } else {
            1
        };
        std::process::exit(i32::from(status));
    }
}

fn main() -> ExitCode {
    // Not `std::env::args()`: it panics on an argument that is not UTF-8.
    let args: Result<Vec<String>, String> = std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| format!("argument {arg:?} is not valid UTF-8"))
        })
        .collect();
    match args.and_then(|args| parse_args(&args)) {
        Ok(options) => run(&options),
        Err(message) if message.is_empty() => match write_stdout(&format!("{USAGE}\n")) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => stdout_failed(&e),
        },
        Err(message) => {
            report(format_args!("{message}\n\n{USAGE}"));
            ExitCode::from(2)
        }
    }
}

fn run(options: &Options) -> ExitCode {
    let bytes = match std::fs::read(&options.file) {
        Ok(b) => b,
        Err(e) => {
            report(format_args!("cannot read {}: {e}", options.file));
            return ExitCode::from(2);
        }
    };
    let loaded = if asm::looks_like_assembly(&bytes) {
        match std::str::from_utf8(&bytes) {
            Ok(text) => asm::assemble(text)
                .map(|p| (p, 0))
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("not UTF-8 assembly: {e}")),
        }
    } else {
        stfl::load_with_info(&bytes)
            .map(|(p, info)| (p, info.trailing_bytes))
            .map_err(|e| e.to_string())
    };
    let (program, trailing) = match loaded {
        Ok(p) => p,
        Err(e) => {
            report(format_args!("cannot load {}: {e}", options.file));
            return ExitCode::from(2);
        }
    };
    if options.disasm {
        let mut listing = asm::disassemble(&program);
        if trailing > 0 {
            listing.push_str(&format!(
                "; {trailing} trailing bytes after the last function were ignored\n"
            ));
        }
        return match write_stdout(&listing) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => stdout_failed(&e),
        };
    }

    let mut vm = Vm::new();
    vm.set_instruction_limit(options.fuel);
    if let Some(depth) = options.max_depth {
        vm.set_max_call_depth(depth);
    }
    vm.set_memory_limit(options.memory_limit);
    let stdout_closed = Rc::new(Cell::new(false));
    vm.set_output(Output::Writer(Box::new(ProgramOutput {
        closed: Rc::clone(&stdout_closed),
    })));
    if options.trace {
        vm.set_trace(Some(Box::new(trace_line)));
    }
    if let Err(e) = vm.load_program(program) {
        report(format_args!("cannot load {}: {e}", options.file));
        return ExitCode::from(2);
    }
    if !vm.has_function(&options.entry) {
        report(format_args!(
            "{}: no function named '{}'",
            options.file, options.entry
        ));
        return ExitCode::from(2);
    }
    let outcome = vm.execute(&options.entry, &[]);
    if options.stats {
        print_stats(&vm);
    }
    match outcome {
        Ok(result) => {
            if !options.print_result {
                return ExitCode::SUCCESS;
            }
            match vm.display(&result) {
                Ok(text) => match write_stdout(&format!("{text}\n")) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => stdout_failed(&e),
                },
                Err(e) => {
                    report(e);
                    ExitCode::from(1)
                }
            }
        }
        Err(VmError::Runtime(RuntimeError {
            kind: RuntimeErrorKind::Output(_),
            ..
        })) if stdout_closed.get() => ExitCode::from(EXIT_CLOSED_PIPE),
        Err(
            e @ VmError::Runtime(RuntimeError {
                kind: RuntimeErrorKind::MemoryLimit(_),
                ..
            }),
        ) => {
            report(format_args!(
                "{e} (--memory-limit SIZE sets the limit; the default is 1G)"
            ));
            ExitCode::from(1)
        }
        Err(e) => {
            report(e);
            ExitCode::from(1)
        }
    }
}

/// `--stats`: the instructions `vm` executed and this process's peak RSS (VmHWM from
/// `/proc/self/status`; `?` where that is unavailable), on one line of stderr.
fn print_stats(vm: &Vm) {
    let peak_rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?;
                Some(kb.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "?".to_owned());
    let _ = writeln!(
        io::stderr().lock(),
        "stats: instructions={} peak_rss_kb={peak_rss_kb}",
        vm.instructions_executed()
    );
}
