//! The command line: clap definitions, the value parsers of the options, and the entry's
//! arguments turned into values.

use clap::{Args, Parser, Subcommand};
use stoffel_vm::Val;

/// Shown after `--help`: what clap cannot say by itself.
const AFTER_HELP: &str = "\
Arguments after ENTRY are passed to it: an integer becomes an int64, a number with a '.' or an
exponent a float, true/false a bool, anything else a string. `s:TEXT` is always the string
TEXT (`s:42` is the string \"42\", `s:s:x` the string \"s:x\"). Put `--` before arguments that
start with '-' and are not numbers (`stoffel-run prog.sasm main -- --text`); everything after
`--` is FILE, ENTRY or an argument, never an option or a subcommand (`stoffel-run -- disasm`
runs a file named `disasm`).

Exit status: 0 success, 1 runtime error (including the memory limit and a wrong number of
arguments), 2 usage or load error. If stdout (or stderr under --trace) is a pipe that was
closed, e.g. by `| head -1`, the run stops at the next write to it and exits 0 without a
message.";

/// `stoffel-run`: runs, assembles or disassembles a StoffelVM program.
#[derive(Parser, Debug)]
#[command(
    name = "stoffel-run",
    version,
    about = "Runs ENTRY (default: main) of FILE: STFL bytecode (.stflb) or text assembly, told \
             apart by\ncontent. The subcommands assemble and disassemble files.",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Tool>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands besides running.
#[derive(Subcommand, Debug)]
pub enum Tool {
    /// Assemble a text assembly file into STFL bytecode.
    Assemble {
        /// The assembly file.
        #[arg(value_name = "IN")]
        input: String,
        /// Where to write the bytecode (default: IN with its extension replaced by .stflb).
        #[arg(short, long, value_name = "OUT")]
        output: Option<String>,
    },
    /// Print a bytecode or assembly file as assembly (like --disasm).
    Disasm {
        /// The bytecode (.stflb) or assembly file.
        #[arg(value_name = "FILE")]
        file: String,
    },
}

/// Running a program: the file, entry, its arguments and the options.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The program: STFL bytecode or text assembly.
    #[arg(value_name = "FILE", required = true)]
    pub file: Option<String>,

    /// The function to run.
    #[arg(value_name = "ENTRY", default_value = "main")]
    pub entry: String,

    /// Arguments passed to ENTRY (see below for their types).
    #[arg(value_name = "ARG", allow_negative_numbers = true)]
    pub args: Vec<String>,

    /// Print the entry's return value as the last line of stdout.
    #[arg(long)]
    pub print_result: bool,

    /// Stop with an error after N instructions.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub fuel: Option<u64>,

    /// Stop with an error beyond N live call frames [default: 10000].
    #[arg(long, value_name = "N", value_parser = parse_depth, allow_hyphen_values = true)]
    pub max_depth: Option<usize>,

    /// Stop with an error past SIZE bytes of heap and stacks (K, M, G suffixes, or none)
    // (one line: a longer help would switch clap to its long layout; the README has more)
    // (hyphen values: `--memory-limit -1` is reported by `parse_size`, naming the option)
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "1G",
        value_parser = parse_size,
        allow_hyphen_values = true
    )]
    pub memory_limit: MemoryLimit,

    /// Keep `LocalStorage.*` values in DIR (one file per key; created if missing).
    #[arg(long, value_name = "DIR")]
    pub local_store: Option<std::path::PathBuf>,

    /// Print every executed instruction to stderr.
    #[arg(long)]
    pub trace: bool,

    /// Print the loaded program as assembly and exit.
    #[arg(long)]
    pub disasm: bool,

    /// At exit, print `stats: instructions=N peak_rss_kb=N` to stderr (as --fuel counts)
    #[arg(long)]
    pub stats: bool,
}

/// A `--memory-limit`: bytes, or `None` for no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimit(pub Option<usize>);

/// Parses a `--memory-limit` value: bytes, or a number with a K/M/G suffix (binary units,
/// either case), or `none`.
pub fn parse_size(text: &str) -> Result<MemoryLimit, String> {
    let bad = || {
        format!(
            "--memory-limit: bad size '{text}' (expected bytes, a number with K, M or G, or 'none')"
        )
    };
    if text.eq_ignore_ascii_case("none") {
        return Ok(MemoryLimit(None));
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
    Ok(MemoryLimit(Some(bytes)))
}

/// Parses a `--max-depth` value: at least one frame.
fn parse_depth(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("--max-depth must be at least 1".to_owned()),
        Ok(depth) => Ok(depth),
        Err(_) => Err(format!("--max-depth: bad number '{text}'")),
    }
}

/// The value an entry argument stands for (see [`AFTER_HELP`] for the rules).
pub fn entry_argument(text: &str) -> Result<Val, String> {
    if let Some(string) = text.strip_prefix("s:") {
        return Ok(Val::String(string.to_owned()));
    }
    match text {
        "true" => return Ok(Val::Bool(true)),
        "false" => return Ok(Val::Bool(false)),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(Val::String(text.to_owned()));
    }
    if unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Val::I64).map_err(|_| {
            format!(
                "argument '{text}' is out of the range of a 64-bit integer (write s:{text} for a string)"
            )
        });
    }
    // A float needs a digit first (so `inf` and `nan` stay strings) and parses as f64.
    match text.parse::<f64>() {
        Ok(x) if unsigned.contains(['.', 'e', 'E']) => Ok(Val::Float(x)),
        _ => Ok(Val::String(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn entry_arguments_get_their_types() {
        assert_eq!(entry_argument("42"), Ok(Val::I64(42)));
        assert_eq!(entry_argument("-7"), Ok(Val::I64(-7)));
        assert_eq!(entry_argument("+7"), Ok(Val::I64(7)));
        assert_eq!(entry_argument("1.5"), Ok(Val::Float(1.5)));
        assert_eq!(entry_argument("-2e3"), Ok(Val::Float(-2000.0)));
        assert_eq!(entry_argument("true"), Ok(Val::Bool(true)));
        assert_eq!(entry_argument("false"), Ok(Val::Bool(false)));
        assert_eq!(entry_argument("hi"), Ok(Val::String("hi".into())));
        assert_eq!(entry_argument("inf"), Ok(Val::String("inf".into())));
        assert_eq!(entry_argument("12abc"), Ok(Val::String("12abc".into())));
        assert_eq!(entry_argument(""), Ok(Val::String(String::new())));
        assert_eq!(entry_argument("s:42"), Ok(Val::String("42".into())));
        assert_eq!(entry_argument("s:true"), Ok(Val::String("true".into())));
        assert_eq!(entry_argument("s:s:x"), Ok(Val::String("s:x".into())));
        assert!(entry_argument("99999999999999999999").is_err());
    }
}
