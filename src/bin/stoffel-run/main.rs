//! `stoffel-run`: runs a StoffelVM program (STFL bytecode or text assembly) from the command
//! line, passing it arguments; `assemble` and `disasm` convert between the two forms.
//! `cli` holds the command line (clap), `tools` loading, assembling and disassembling.
//!
//! Exit status: 0 on success, 1 on a runtime error, 2 on a usage or load error; messages go to
//! stderr, program output to stdout. A closed output pipe (`stoffel-run prog | head -1`) ends
//! the run quietly with status 0.
//!
//! Nothing here writes with `print!`/`println!`/`eprintln!`: those panic when the write fails.
//! Every write to stdout is checked, and a failure ends the run (quietly for a closed pipe);
//! writes of messages to stderr ignore failures, there being nowhere left to report them.

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use stoffel_vm::{Output, RuntimeError, RuntimeErrorKind, Val, Vm, VmError};

use cli::{Cli, RunArgs, Tool};

mod cli;
mod tools;

/// Feature `mimalloc`: the runner's allocator (see Cargo.toml); never the library's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status when stdout (or stderr while tracing) turns out to be a pipe whose reader is
/// gone: the reader stopped wanting output, which is not an error of the program.
const EXIT_CLOSED_PIPE: u8 = 0;

/// Exit status of a usage or load error.
const EXIT_USAGE: u8 = 2;

/// Writes a message to stderr; a failure to write it is ignored.
fn report(message: impl Display) {
    let _ = writeln!(io::stderr().lock(), "stoffel-run: {message}");
}

/// Writes a runtime failure's call chain to stderr after its message (`backtrace (innermost
/// first):` and one line per entry), when it has more than the failing frame.
fn report_backtrace(error: &VmError) {
    if let VmError::Runtime(r) = error
        && r.backtrace.len() > 1
    {
        let _ = write!(
            io::stderr().lock(),
            "backtrace (innermost first):\n{}",
            r.backtrace_text()
        );
    }
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
    /// Shared with `run` (atomic: with the `send` feature the VM's writer must be `Send`).
    closed: Arc<AtomicBool>,
}

impl ProgramOutput {
    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed.store(true, Ordering::Relaxed);
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
    // Not `std::env::args()`: it panics on an argument that is not UTF-8. Checked here, before
    // clap, so the message names the argument.
    let mut args = Vec::new();
    for arg in std::env::args_os() {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                report(format_args!("argument {arg:?} is not valid UTF-8"));
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    match cli.command {
        Some(Tool::Assemble { input, output }) => tools::assemble(&input, output.as_deref()),
        Some(Tool::Disasm { file }) => tools::disasm(&file),
        None => run(&cli.run),
    }
}

/// What a failed parse ends with: `--help` and `--version` print to stdout (status 0, quiet on
/// a closed pipe), anything else is a usage error on stderr (status 2).
fn clap_exit(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let text = error.render().to_string();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => match write_stdout(&text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => stdout_failed(&e),
        },
        _ => {
            let _ = io::stderr().lock().write_all(text.as_bytes());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(options: &RunArgs) -> ExitCode {
    // `required` in the clap definition: only a subcommand goes without FILE.
    let Some(file) = options.file.as_deref() else {
        report("missing FILE");
        return ExitCode::from(EXIT_USAGE);
    };
    let args: Result<Vec<Val>, String> = options
        .args
        .iter()
        .map(|a| cli::entry_argument(a))
        .collect();
    let args = match args {
        Ok(args) => args,
        Err(message) => {
            report(message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (program, trailing) = match tools::load_file(file) {
        Ok(loaded) => loaded,
        Err(message) => {
            report(message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if options.disasm {
        return tools::print_listing(&program, trailing);
    }

    let mut vm = Vm::new();
    vm.set_instruction_limit(options.fuel);
    if let Some(depth) = options.max_depth {
        vm.set_max_call_depth(depth);
    }
    vm.set_memory_limit(options.memory_limit.0);
    vm.set_local_storage(options.local_store.clone());
    let stdout_closed = Arc::new(AtomicBool::new(false));
    vm.set_output(Output::Writer(Box::new(ProgramOutput {
        closed: Arc::clone(&stdout_closed),
    })));
    if options.trace {
        vm.set_trace(Some(Box::new(trace_line)));
    }
    if let Err(e) = vm.load_program(program) {
        report(format_args!("cannot load {file}: {e}"));
        return ExitCode::from(EXIT_USAGE);
    }
    if !vm.has_function(&options.entry) {
        report(format_args!(
            "{file}: no function named '{}'",
            options.entry
        ));
        return ExitCode::from(EXIT_USAGE);
    }
    let outcome = vm.execute(&options.entry, &args);
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
        })) if stdout_closed.load(Ordering::Relaxed) => ExitCode::from(EXIT_CLOSED_PIPE),
        Err(
            e @ VmError::Runtime(RuntimeError {
                kind: RuntimeErrorKind::MemoryLimit(_),
                ..
            }),
        ) => {
            report(format_args!(
                "{e} (--memory-limit SIZE sets the limit; the default is 1G)"
            ));
            report_backtrace(&e);
            ExitCode::from(1)
        }
        Err(e) => {
            report(&e);
            report_backtrace(&e);
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
