//! Reading programs from files, and the `assemble` and `disasm` subcommands.

use std::path::Path;
use std::process::ExitCode;

use stoffel_vm::program::Program;
use stoffel_vm::{asm, stfl};

use super::{EXIT_USAGE, report, stdout_failed, write_stdout};

/// Reads and loads `path`, bytecode or assembly (told apart by content, as the VM does).
/// Returns the program and the number of trailing bytes a bytecode file had after its last
/// function (0 for assembly), or the message to report.
pub fn load_file(path: &str) -> Result<(Program, usize), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
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
    loaded.map_err(|e| format!("cannot load {path}: {e}"))
}

/// Prints `program` as assembly, noting trailing bytes the file had.
pub fn print_listing(program: &Program, trailing: usize) -> ExitCode {
    let mut listing = asm::disassemble_with_indices(program);
    if trailing > 0 {
        listing.push_str(&format!(
            "; {trailing} trailing bytes after the last function were ignored\n"
        ));
    }
    match write_stdout(&listing) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => stdout_failed(&e),
    }
}

/// `stoffel-run disasm FILE`: the same listing as `--disasm`.
pub fn disasm(path: &str) -> ExitCode {
    match load_file(path) {
        Ok((program, trailing)) => print_listing(&program, trailing),
        Err(message) => {
            report(message);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `stoffel-run assemble IN [-o OUT]`: assembles IN and writes it as STFL bytecode to OUT
/// (default: IN with the extension `.stflb`). An assembly error is reported as
/// `IN:LINE:COLUMN: message`, the form editors jump to.
pub fn assemble(input: &str, output: Option<&str>) -> ExitCode {
    match assemble_file(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            report(message);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn assemble_file(input: &str, output: Option<&str>) -> Result<(), String> {
    let bytes = std::fs::read(input).map_err(|e| format!("cannot read {input}: {e}"))?;
    if bytes.starts_with(&stfl::MAGIC) {
        return Err(format!(
            "{input} is already STFL bytecode (use `stoffel-run disasm {input}` to see it)"
        ));
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|e| format!("{input}: not UTF-8 assembly: {e}"))?;
    let program = asm::assemble(text)
        .map_err(|e| format!("{input}:{}:{}: {}", e.line, e.column, e.message))?;
    let code = stfl::write(&program).map_err(|e| format!("cannot encode {input}: {e}"))?;
    let default_output;
    let output = match output {
        Some(path) => path,
        None => {
            default_output = Path::new(input).with_extension("stflb");
            if default_output == Path::new(input) {
                return Err(format!(
                    "{input} already ends in .stflb: name the output with -o OUT"
                ));
            }
            default_output
                .to_str()
                .ok_or_else(|| format!("{input}: cannot name the output (use -o OUT)"))?
        }
    };
    std::fs::write(output, code).map_err(|e| format!("cannot write {output}: {e}"))
}
