//! Instructions: the STFL opcodes, their operands and mnemonics.

use super::Reg;

/// One instruction. Operands are registers unless named otherwise. `Copy` and 16 bytes, so
/// the interpreter can keep a plain array of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// `LD dst, [sp+offset]`: read the current frame's pending-argument stack at `len-1+offset`.
    Ld {
        /// Destination register.
        dst: Reg,
        /// Offset from the top of the pending-argument stack (0 is the last value pushed).
        offset: i32,
    },
    /// `LDI dst, constant`: load a constant-pool entry.
    Ldi {
        /// Destination register.
        dst: Reg,
        /// Index into the constant pool (in linked code: the VM's constant table).
        constant: u32,
    },
    /// `MOV dst, src`.
    Mov {
        /// Destination register.
        dst: Reg,
        /// Source register.
        src: Reg,
    },
    /// `ADD dst, a, b`.
    Add {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `SUB dst, a, b`.
    Sub {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `MUL dst, a, b`.
    Mul {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `DIV dst, a, b`.
    Div {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `MOD dst, a, b`.
    Mod {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `AND dst, a, b`.
    And {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `OR dst, a, b`.
    Or {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `XOR dst, a, b`.
    Xor {
        /// Destination register.
        dst: Reg,
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `NOT dst, src`.
    Not {
        /// Destination register.
        dst: Reg,
        /// Source register.
        src: Reg,
    },
    /// `SHL dst, src, amount` (the amount is a register).
    Shl {
        /// Destination register.
        dst: Reg,
        /// Source register.
        src: Reg,
        /// Register holding the shift amount.
        amount: Reg,
    },
    /// `SHR dst, src, amount` (arithmetic; the amount is a register).
    Shr {
        /// Destination register.
        dst: Reg,
        /// Source register.
        src: Reg,
        /// Register holding the shift amount.
        amount: Reg,
    },
    /// `JMP label`; `label` indexes the function's [`Function::labels`].
    Jmp {
        /// Index into the function's labels (in linked code: the target instruction).
        label: u32,
    },
    /// `JMPEQ label`: jump when the compare flag is 0.
    JmpEq {
        /// Index into the function's labels (in linked code: the target instruction).
        label: u32,
    },
    /// `JMPNEQ label`: jump when the compare flag is not 0.
    JmpNeq {
        /// Index into the function's labels (in linked code: the target instruction).
        label: u32,
    },
    /// `JMPLT label`: jump when the compare flag is -1.
    JmpLt {
        /// Index into the function's labels (in linked code: the target instruction).
        label: u32,
    },
    /// `JMPGT label`: jump when the compare flag is +1.
    JmpGt {
        /// Index into the function's labels (in linked code: the target instruction).
        label: u32,
    },
    /// `CALL name`; `callee` indexes the program's [`Program::callees`].
    Call {
        /// Index into the program's callees (in linked code: the VM's name slot).
        callee: u32,
    },
    /// `RET src`.
    Ret {
        /// Source register.
        src: Reg,
    },
    /// `PUSHARG src`: append a copy of `src` to the current frame's argument stack.
    PushArg {
        /// Source register.
        src: Reg,
    },
    /// `CMP a, b`: set the compare flag to -1, 0 or +1.
    Cmp {
        /// Left operand register.
        a: Reg,
        /// Right operand register.
        b: Reg,
    },
    /// `NOP`: does nothing (opcode 0x17, decoded by every STFL version).
    Nop,
    /// `LDS dst, slot`: read the current frame's spill slot (Unit if never written). STFL v9.
    Lds {
        /// Destination register.
        dst: Reg,
        /// Spill-slot number (not a register: it does not count for the frame size).
        slot: u32,
    },
    /// `STS slot, src`: store a copy of `src` in the current frame's spill slot. STFL v9.
    Sts {
        /// Spill-slot number (not a register: it does not count for the frame size).
        slot: u32,
        /// Source register.
        src: Reg,
    },
}

/// The STFL opcodes, in encoding order. The index of a mnemonic is its opcode byte.
pub const MNEMONICS: [&str; 26] = [
    "LD", "LDI", "MOV", "ADD", "SUB", "MUL", "DIV", "MOD", "AND", "OR", "XOR", "NOT", "SHL", "SHR",
    "JMP", "JMPEQ", "JMPNEQ", "CALL", "RET", "PUSHARG", "CMP", "JMPLT", "JMPGT", "NOP", "LDS",
    "STS",
];

impl Instruction {
    /// The STFL opcode byte of this instruction.
    pub fn opcode(&self) -> u8 {
        use Instruction::*;
        match self {
            Ld { .. } => 0x00,
            Ldi { .. } => 0x01,
            Mov { .. } => 0x02,
            Add { .. } => 0x03,
            Sub { .. } => 0x04,
            Mul { .. } => 0x05,
            Div { .. } => 0x06,
            Mod { .. } => 0x07,
            And { .. } => 0x08,
            Or { .. } => 0x09,
            Xor { .. } => 0x0A,
            Not { .. } => 0x0B,
            Shl { .. } => 0x0C,
            Shr { .. } => 0x0D,
            Jmp { .. } => 0x0E,
            JmpEq { .. } => 0x0F,
            JmpNeq { .. } => 0x10,
            Call { .. } => 0x11,
            Ret { .. } => 0x12,
            PushArg { .. } => 0x13,
            Cmp { .. } => 0x14,
            JmpLt { .. } => 0x15,
            JmpGt { .. } => 0x16,
            Nop => 0x17,
            Lds { .. } => 0x18,
            Sts { .. } => 0x19,
        }
    }

    /// The three-register instruction (`ADD` … `XOR`) with STFL opcode `0x03..=0x0A`.
    pub fn binary(opcode: u8, dst: Reg, a: Reg, b: Reg) -> Option<Instruction> {
        use Instruction::*;
        Some(match opcode {
            0x03 => Add { dst, a, b },
            0x04 => Sub { dst, a, b },
            0x05 => Mul { dst, a, b },
            0x06 => Div { dst, a, b },
            0x07 => Mod { dst, a, b },
            0x08 => And { dst, a, b },
            0x09 => Or { dst, a, b },
            0x0A => Xor { dst, a, b },
            _ => return None,
        })
    }

    /// The mnemonic, as written in assembly and disassembly (`LDI`, `JMPEQ`, …).
    pub fn mnemonic(&self) -> &'static str {
        MNEMONICS[self.opcode() as usize]
    }

    /// The registers this instruction reads or writes (an LDS/STS slot is not one).
    pub fn registers(&self) -> impl Iterator<Item = Reg> {
        use Instruction::*;
        let (regs, n): ([Reg; 3], usize) = match *self {
            Ld { dst, .. } | Ldi { dst, .. } | Lds { dst, .. } => ([dst, 0, 0], 1),
            Mov { dst, src } | Not { dst, src } => ([dst, src, 0], 2),
            Add { dst, a, b }
            | Sub { dst, a, b }
            | Mul { dst, a, b }
            | Div { dst, a, b }
            | Mod { dst, a, b }
            | And { dst, a, b }
            | Or { dst, a, b }
            | Xor { dst, a, b } => ([dst, a, b], 3),
            Shl { dst, src, amount } | Shr { dst, src, amount } => ([dst, src, amount], 3),
            Ret { src } | PushArg { src } | Sts { src, .. } => ([src, 0, 0], 1),
            Cmp { a, b } => ([a, b, 0], 2),
            Jmp { .. }
            | JmpEq { .. }
            | JmpNeq { .. }
            | JmpLt { .. }
            | JmpGt { .. }
            | Call { .. }
            | Nop => ([0, 0, 0], 0),
        };
        regs.into_iter().take(n)
    }

    /// The label index, for the five jump instructions.
    pub fn label(&self) -> Option<u32> {
        use Instruction::*;
        match *self {
            Jmp { label }
            | JmpEq { label }
            | JmpNeq { label }
            | JmpLt { label }
            | JmpGt { label } => Some(label),
            _ => None,
        }
    }
}
