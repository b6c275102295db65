//! The disassembler: prints a [`Program`] as assembly text that assembles back to an equal
//! program.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::program::{Function, Instruction, Program};

use super::literal::name_text;

/// Prints a program as assembly text that [`assemble`](super::assemble) turns back into an
/// equal program.
pub fn disassemble(program: &Program) -> String {
    let mut out = String::new();
    for (index, function) in program.functions().iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = write_function(&mut out, program, function);
    }
    out
}

fn write_name_list(out: &mut String, names: &[String]) -> fmt::Result {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name_text(name));
    }
    Ok(())
}

fn write_function(out: &mut String, program: &Program, function: &Function) -> fmt::Result {
    write!(out, ".function {}", name_text(&function.name))?;
    if !function.params.is_empty() {
        out.push('(');
        write_name_list(out, &function.params)?;
        out.push(')');
    }
    writeln!(out, " registers {}", function.register_count)?;
    if !function.upvalues.is_empty() {
        out.push_str(".upvalues ");
        write_name_list(out, &function.upvalues)?;
        out.push('\n');
    }
    if let Some(parent) = &function.parent {
        writeln!(out, ".parent {}", name_text(parent))?;
    }
    // Labels grouped by target, keeping the program's order within a target.
    let mut at: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for label in &function.labels {
        at.entry(label.target).or_default().push(&label.name);
    }
    for (index, instruction) in function.code.iter().enumerate() {
        if let Some(names) = u32::try_from(index).ok().and_then(|i| at.remove(&i)) {
            for name in names {
                writeln!(out, "{}:", name_text(name))?;
            }
        }
        out.push_str("    ");
        write_instruction(out, program, function, instruction)?;
        out.push('\n');
    }
    // Labels at the end (and, defensively, any beyond it).
    for names in at.into_values() {
        for name in names {
            writeln!(out, "{}:", name_text(name))?;
        }
    }
    Ok(())
}

fn write_instruction(
    out: &mut String,
    program: &Program,
    function: &Function,
    instruction: &Instruction,
) -> fmt::Result {
    use Instruction::*;
    let m = instruction.mnemonic();
    match *instruction {
        Ld { dst, offset } => {
            if offset >= 0 {
                write!(out, "{m} r{dst}, [sp+{offset}]")
            } else {
                write!(out, "{m} r{dst}, [sp{offset}]")
            }
        }
        Ldi { dst, constant } => match program.constants().get(constant as usize) {
            Some(c) => write!(out, "{m} r{dst}, {c}"),
            None => write!(out, "{m} r{dst}, <invalid constant #{constant}>"),
        },
        Mov { dst, src } | Not { dst, src } => write!(out, "{m} r{dst}, r{src}"),
        Add { dst, a, b }
        | Sub { dst, a, b }
        | Mul { dst, a, b }
        | Div { dst, a, b }
        | Mod { dst, a, b }
        | And { dst, a, b }
        | Or { dst, a, b }
        | Xor { dst, a, b } => write!(out, "{m} r{dst}, r{a}, r{b}"),
        Shl { dst, src, amount } | Shr { dst, src, amount } => {
            write!(out, "{m} r{dst}, r{src}, r{amount}")
        }
        Jmp { label } | JmpEq { label } | JmpNeq { label } | JmpLt { label } | JmpGt { label } => {
            match function.labels.get(label as usize) {
                Some(l) => write!(out, "{m} {}", name_text(&l.name)),
                None => write!(out, "{m} <invalid label #{label}>"),
            }
        }
        Call { callee } => match program.callees().get(callee as usize) {
            Some(name) => write!(out, "{m} {}", name_text(name)),
            None => write!(out, "{m} <invalid callee #{callee}>"),
        },
        Ret { src } | PushArg { src } => write!(out, "{m} r{src}"),
        Cmp { a, b } => write!(out, "{m} r{a}, r{b}"),
    }
}
