//! `stoffel-run`: runs a StoffelVM program (STFL v1 bytecode or text assembly) from the
//! command line.
//!
//! Exit status: 0 on success, 1 on a runtime error, 2 on a usage or load error; messages go to
//! stderr, program output to stdout.

use std::process::ExitCode;

use stoffel_vm::{Vm, asm, stfl};

const USAGE: &str = "usage: stoffel-run FILE [ENTRY] [--print-result] [--fuel N] [--max-depth N] [--trace] [--disasm] [--stats]

Runs ENTRY (default: main) of FILE, an STFL v1 bytecode file (.stflb) or a text assembly
file (detected by content).

  --print-result  print the entry's return value as the last line of stdout
  --fuel N        stop with an error after N instructions
  --max-depth N   stop with an error beyond N live call frames (default 10000)
  --trace         print every executed instruction to stderr
  --disasm        print the loaded program as assembly and exit
  --stats         at exit, print `stats: instructions=N peak_rss_kb=N` to stderr (the
                  instructions executed and the process's peak RSS, VmHWM; for benches/)";

struct Options {
    file: String,
    entry: String,
    print_result: bool,
    fuel: Option<u64>,
    max_depth: Option<usize>,
    trace: bool,
    disasm: bool,
    stats: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut positional = Vec::new();
    let mut options = Options {
        file: String::new(),
        entry: "main".to_owned(),
        print_result: false,
        fuel: None,
        max_depth: None,
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("stoffel-run: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(&options.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("stoffel-run: cannot read {}: {e}", options.file);
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
            eprintln!("stoffel-run: cannot load {}: {e}", options.file);
            return ExitCode::from(2);
        }
    };
    if options.disasm {
        print!("{}", asm::disassemble(&program));
        if trailing > 0 {
            println!("; {trailing} trailing bytes after the last function were ignored");
        }
        return ExitCode::SUCCESS;
    }

    let mut vm = Vm::new();
    vm.set_instruction_limit(options.fuel);
    if let Some(depth) = options.max_depth {
        vm.set_max_call_depth(depth);
    }
    if options.trace {
        vm.set_trace(Some(Box::new(|line: &str| eprintln!("{line}"))));
    }
    if let Err(e) = vm.load_program(program) {
        eprintln!("stoffel-run: cannot load {}: {e}", options.file);
        return ExitCode::from(2);
    }
    if !vm.has_function(&options.entry) {
        eprintln!(
            "stoffel-run: {}: no function named '{}'",
            options.file, options.entry
        );
        return ExitCode::from(2);
    }
    let outcome = vm.execute(&options.entry, &[]);
    if options.stats {
        print_stats(&vm);
    }
    match outcome {
        Ok(result) => {
            if options.print_result {
                match vm.display(&result) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("stoffel-run: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stoffel-run: {e}");
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
    eprintln!(
        "stats: instructions={} peak_rss_kb={peak_rss_kb}",
        vm.instructions_executed()
    );
}
