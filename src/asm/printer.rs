//! The instruction printer: one [`Instruction`] as a line of assembly. The disassembler prints
//! every instruction line with it, and code that shows linked instructions (a tracer) can use
//! it too, by saying through [`OperandNames`] how constants, callees and jump targets are
//! spelled.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::program::Instruction;

/// How an instruction's operands that point elsewhere are spelled.
///
/// [`instruction_text`] writes registers (`r3`) and stack slots (`[sp+1]`, `[sp-1]`) itself and
/// asks this for the operands that are indices into some table: a constant, a callee, a jump
/// target. What those indices mean depends on where the instruction comes from (a
/// [`Program`](crate::program::Program) or linked code), so the caller decides.
pub trait OperandNames {
    /// The name a CALL's callee index stands for.
    fn callee(&self, index: u32) -> Cow<'_, str>;
    /// The text of the constant an LDI loads (`index` is the LDI's constant operand).
    fn constant(&self, index: u32) -> Cow<'_, str>;
    /// How a jump target is written. `target` is the jump's operand as the instruction holds
    /// it: a label index in a [`Program`](crate::program::Program)'s function, an instruction
    /// index in linked code.
    fn label(&self, target: u32) -> Cow<'_, str>;
}

/// One instruction as assembly text, without indentation or line end: the mnemonic, a space,
/// then the operands separated by `", "`: registers as `r<N>` (`ADD r1, r2, r3`), a stack
/// slot as `[sp+N]` or `[sp-N]` (`LD r7, [sp-1]`), a spill slot as a plain number
/// (`LDS r1, 3`, `STS 3, r1`), and an LDI's constant, a CALL's callee and
/// a jump's target as `names` spells them.
///
/// The disassembler prints each instruction line with this function, spelling constants with
/// [`Constant`](crate::program::Constant)'s `Display`, and callees and labels by their names
/// (quoted when they are not plain identifiers).
///
/// ```
/// use std::borrow::Cow;
/// use stoffel_vm::asm::{OperandNames, instruction_text};
/// use stoffel_vm::program::Instruction;
///
/// /// Spells every index as a number.
/// struct Indices;
///
/// impl OperandNames for Indices {
///     fn callee(&self, index: u32) -> Cow<'_, str> {
///         format!("f{index}").into()
///     }
///     fn constant(&self, index: u32) -> Cow<'_, str> {
///         format!("#{index}").into()
///     }
///     fn label(&self, target: u32) -> Cow<'_, str> {
///         format!("@{target}").into()
///     }
/// }
///
/// let text = |ins| instruction_text(&ins, &Indices);
/// assert_eq!(text(Instruction::Ldi { dst: 1, constant: 0 }), "LDI r1, #0");
/// assert_eq!(text(Instruction::Ld { dst: 2, offset: -1 }), "LD r2, [sp-1]");
/// assert_eq!(text(Instruction::Add { dst: 3, a: 1, b: 2 }), "ADD r3, r1, r2");
/// assert_eq!(text(Instruction::JmpLt { label: 7 }), "JMPLT @7");
/// assert_eq!(text(Instruction::Call { callee: 0 }), "CALL f0");
/// ```
pub fn instruction_text(ins: &Instruction, names: &impl OperandNames) -> String {
    use Instruction::*;
    let m = ins.mnemonic();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = match *ins {
        Ld { dst, offset } => {
            if offset >= 0 {
                write!(out, "{m} r{dst}, [sp+{offset}]")
            } else {
                write!(out, "{m} r{dst}, [sp{offset}]")
            }
        }
        Ldi { dst, constant } => write!(out, "{m} r{dst}, {}", names.constant(constant)),
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
            write!(out, "{m} {}", names.label(label))
        }
        Call { callee } => write!(out, "{m} {}", names.callee(callee)),
        Ret { src } | PushArg { src } => write!(out, "{m} r{src}"),
        Cmp { a, b } => write!(out, "{m} r{a}, r{b}"),
        Nop => write!(out, "{m}"),
        Lds { dst, slot } => write!(out, "{m} r{dst}, {slot}"),
        Sts { slot, src } => write!(out, "{m} {slot}, r{src}"),
    };
    out
}
