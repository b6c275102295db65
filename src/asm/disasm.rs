//! The disassembler: prints a [`Program`] as assembly text that assembles back to an equal
//! program.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::program::{Function, Program};

use super::literal::name_text;
use super::printer::{OperandNames, instruction_text};

/// Prints a program as assembly text that [`assemble`](super::assemble) turns back into an
/// equal program.
pub fn disassemble(program: &Program) -> String {
    listing(program, false)
}

/// Like [`disassemble`], with each instruction's index in its function as a comment
/// (`; 3`): the index a runtime error names ("at instruction 3"). The comments assemble away,
/// so the listing still assembles back to an equal program.
pub fn disassemble_with_indices(program: &Program) -> String {
    listing(program, true)
}

fn listing(program: &Program, indices: bool) -> String {
    let mut out = super::meta::header_text(program);
    for (index, function) in program.functions().iter().enumerate() {
        if index > 0 || !out.is_empty() {
            out.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = write_function(&mut out, program, function, indices);
    }
    out
}

/// The column the index comments start at (instructions longer than this get one space).
const INDEX_COLUMN: usize = 36;

fn write_name_list(out: &mut String, names: &[String]) -> fmt::Result {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name_text(name));
    }
    Ok(())
}

fn write_function(
    out: &mut String,
    program: &Program,
    function: &Function,
    indices: bool,
) -> fmt::Result {
    write!(out, ".function {}", name_text(&function.name))?;
    if !function.params.is_empty() {
        out.push('(');
        match &function.types {
            Some(types) => {
                for (i, (name, ty)) in function.params.iter().zip(&types.params).enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    write!(out, "{sep}{}: {ty}", name_text(name))?;
                }
            }
            None => write_name_list(out, &function.params)?,
        }
        out.push(')');
    }
    if let Some(types) = &function.types {
        write!(out, " -> {}", types.ret)?;
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
    let operand_names = ProgramNames { program, function };
    for (index, instruction) in function.code.iter().enumerate() {
        if let Some(names) = u32::try_from(index).ok().and_then(|i| at.remove(&i)) {
            for name in names {
                writeln!(out, "{}:", name_text(name))?;
            }
        }
        let text = instruction_text(instruction, &operand_names);
        out.push_str("    ");
        out.push_str(&text);
        if indices {
            let pad = INDEX_COLUMN.saturating_sub(4 + text.chars().count()).max(1);
            write!(out, "{:pad$}; {index}", "")?;
        }
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

/// Operand spellings inside one function of a program: constants in [`Constant`]'s `Display`
/// spelling, callees and labels by name (quoted when not plain), and a placeholder for an index
/// the program does not have (which a program built by [`Program::new`] never holds).
///
/// [`Constant`]: crate::program::Constant
struct ProgramNames<'a> {
    program: &'a Program,
    function: &'a Function,
}

impl OperandNames for ProgramNames<'_> {
    fn callee(&self, index: u32) -> Cow<'_, str> {
        match self.program.callees().get(index as usize) {
            Some(name) => name_text(name),
            None => Cow::Owned(format!("<invalid callee #{index}>")),
        }
    }

    fn constant(&self, index: u32) -> Cow<'_, str> {
        match self.program.constants().get(index as usize) {
            Some(c) => Cow::Owned(c.to_string()),
            None => Cow::Owned(format!("<invalid constant #{index}>")),
        }
    }

    fn label(&self, target: u32) -> Cow<'_, str> {
        match self.function.labels.get(target as usize) {
            Some(l) => name_text(&l.name),
            None => Cow::Owned(format!("<invalid label #{target}>")),
        }
    }
}
