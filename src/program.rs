//! Programs: the validated, immutable form of StoffelVM code.
//!
//! Both front ends (the STFL v1 loader in [`crate::stfl`] and the text assembler in
//! [`crate::asm`]) build a [`Program`] through [`Program::new`], which checks every index once,
//! so the interpreter never has to: constant indices are in range, every jump names a label of
//! its own function, every label points inside (or just past) the code, and every register fits
//! the frame. Jumps and calls are indices, never names, so nothing is looked up by string while
//! code runs. A `Program` knows nothing of the heap or the interpreter.

use std::collections::HashMap;
use std::fmt;

/// A register number inside a frame.
pub type Reg = u32;

/// The largest frame (in registers) a function may use. StoffelLang code uses r0..r31; the cap
/// keeps a malformed file from making every call allocate a huge register window.
pub const MAX_FRAME_SIZE: u32 = 4096;

/// A constant-pool entry. The pool is shared by every function of a program.
#[derive(Clone, Debug)]
pub enum Constant {
    /// The unit value `()`.
    Unit,
    /// A 64-bit signed integer.
    I64(i64),
    /// A 32-bit signed integer.
    I32(i32),
    /// A 16-bit signed integer.
    I16(i16),
    /// An 8-bit signed integer.
    I8(i8),
    /// An 8-bit unsigned integer.
    U8(u8),
    /// A 16-bit unsigned integer.
    U16(u16),
    /// A 32-bit unsigned integer.
    U32(u32),
    /// A 64-bit unsigned integer.
    U64(u64),
    /// A 64-bit float; its bits are carried exactly (NaN payloads and -0.0 included).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An immutable UTF-8 string.
    String(Box<str>),
}

impl PartialEq for Constant {
    /// Constants are equal when they have the same kind and the same bits, so a float constant
    /// round-trips exactly (NaN equals itself, 0.0 and -0.0 differ).
    fn eq(&self, other: &Self) -> bool {
        use Constant::*;
        match (self, other) {
            (Unit, Unit) => true,
            (I64(a), I64(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (I8(a), I8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Bool(a), Bool(b)) => a == b,
            (String(a), String(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Constant {}

impl std::hash::Hash for Constant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        use Constant::*;
        std::mem::discriminant(self).hash(state);
        match self {
            Unit => {}
            I64(v) => v.hash(state),
            I32(v) => v.hash(state),
            I16(v) => v.hash(state),
            I8(v) => v.hash(state),
            U8(v) => v.hash(state),
            U16(v) => v.hash(state),
            U32(v) => v.hash(state),
            U64(v) => v.hash(state),
            Float(v) => v.to_bits().hash(state),
            Bool(v) => v.hash(state),
            String(v) => v.hash(state),
        }
    }
}

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
}

/// The STFL v1 opcodes, in encoding order. The index of a mnemonic is its opcode byte.
pub const MNEMONICS: [&str; 23] = [
    "LD", "LDI", "MOV", "ADD", "SUB", "MUL", "DIV", "MOD", "AND", "OR", "XOR", "NOT", "SHL", "SHR",
    "JMP", "JMPEQ", "JMPNEQ", "CALL", "RET", "PUSHARG", "CMP", "JMPLT", "JMPGT",
];

impl Instruction {
    /// The STFL v1 opcode byte of this instruction.
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

    /// The registers this instruction reads or writes.
    pub fn registers(&self) -> impl Iterator<Item = Reg> {
        use Instruction::*;
        let (regs, n): ([Reg; 3], usize) = match *self {
            Ld { dst, .. } | Ldi { dst, .. } => ([dst, 0, 0], 1),
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
            Ret { src } | PushArg { src } => ([src, 0, 0], 1),
            Cmp { a, b } => ([a, b, 0], 2),
            Jmp { .. }
            | JmpEq { .. }
            | JmpNeq { .. }
            | JmpLt { .. }
            | JmpGt { .. }
            | Call { .. } => ([0, 0, 0], 0),
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

/// A named position in a function's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The label's name, unique within its function.
    pub name: String,
    /// The instruction index it names; equal to the code length when it marks the end.
    pub target: u32,
}

/// One function of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// The name calls use. Names need not be unique in a program: the last one loaded wins.
    pub name: String,
    /// The register count the file declares (kept for round trips; see [`Function::frame_size`]).
    pub register_count: u16,
    /// Parameter names; argument i arrives in register i.
    pub params: Vec<String>,
    /// Names of variables captured when the function is called (dynamic lookup, as StoffelVM).
    pub upvalues: Vec<String>,
    /// The enclosing function's name, if the file records one (stored, never used).
    pub parent: Option<String>,
    /// Labels, unique by name.
    pub labels: Vec<Label>,
    /// The code.
    pub code: Vec<Instruction>,
    frame_size: u32,
}

impl Function {
    /// Registers a frame of this function gets: the largest of the declared count, the
    /// parameter count and the highest register the code names, plus one. Computed by
    /// [`Program::new`], so a compiler that under-counts registers is harmless.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The instruction index a jump's label names.
    pub fn label_target(&self, label: u32) -> u32 {
        self.labels[label as usize].target
    }
}

/// The parts of a [`Function`] before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionParts {
    /// See [`Function::name`].
    pub name: String,
    /// See [`Function::register_count`].
    pub register_count: u16,
    /// See [`Function::params`].
    pub params: Vec<String>,
    /// See [`Function::upvalues`].
    pub upvalues: Vec<String>,
    /// See [`Function::parent`].
    pub parent: Option<String>,
    /// See [`Function::labels`].
    pub labels: Vec<Label>,
    /// See [`Function::code`].
    pub code: Vec<Instruction>,
}

/// A validated program: a constant pool, functions, and the names its calls refer to.
///
/// Programs are kept in one canonical form, so two programs that mean the same are equal
/// whichever front end built them: the constant pool holds each constant once, in order of
/// first use (unused entries dropped); the callee table likewise; each function's labels are
/// sorted by target, then name. This is what makes STFL load → write → load and
/// disassemble → assemble exact identities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    constants: Vec<Constant>,
    functions: Vec<Function>,
    callees: Vec<String>,
}

/// Why a program is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// An `LDI` names a constant the pool does not have.
    #[error(
        "function '{function}', instruction {instruction}: constant index {index} is out of range (the pool has {len})"
    )]
    ConstantOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The bad index.
        index: u32,
        /// Pool size.
        len: usize,
    },
    /// A jump's label index does not name a label of the function.
    #[error(
        "function '{function}', instruction {instruction}: label index {index} is out of range"
    )]
    LabelOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The bad index.
        index: u32,
    },
    /// A `CALL`'s callee index does not name an entry of the callee table.
    #[error(
        "function '{function}', instruction {instruction}: callee index {index} is out of range"
    )]
    CalleeOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The bad index.
        index: u32,
    },
    /// A label points beyond the end of the code.
    #[error(
        "function '{function}': label '{label}' targets instruction {target}, beyond the code ({len} instructions)"
    )]
    LabelBeyondCode {
        /// Function name.
        function: String,
        /// Label name.
        label: String,
        /// Its target.
        target: u32,
        /// Code length.
        len: usize,
    },
    /// Two labels of one function share a name.
    #[error("function '{function}': label '{label}' is defined twice")]
    DuplicateLabel {
        /// Function name.
        function: String,
        /// Label name.
        label: String,
    },
    /// A register index is at or above [`MAX_FRAME_SIZE`].
    #[error("function '{function}', instruction {instruction}: register r{register} is above the frame limit (r{})", MAX_FRAME_SIZE - 1)]
    RegisterOutOfRange {
        /// Function name.
        function: String,
        /// Instruction index.
        instruction: usize,
        /// The register.
        register: u32,
    },
    /// The declared register count or the parameter count exceeds [`MAX_FRAME_SIZE`].
    #[error(
        "function '{function}': frame of {size} registers is above the limit of {MAX_FRAME_SIZE}"
    )]
    FrameTooLarge {
        /// Function name.
        function: String,
        /// The requested size.
        size: u32,
    },
}

impl ProgramError {
    /// The instruction index the error is about, if it is about one.
    pub fn instruction(&self) -> Option<usize> {
        match self {
            ProgramError::ConstantOutOfRange { instruction, .. }
            | ProgramError::LabelOutOfRange { instruction, .. }
            | ProgramError::CalleeOutOfRange { instruction, .. }
            | ProgramError::RegisterOutOfRange { instruction, .. } => Some(*instruction),
            _ => None,
        }
    }

    /// The name of the function the error is about.
    pub fn function(&self) -> &str {
        match self {
            ProgramError::ConstantOutOfRange { function, .. }
            | ProgramError::LabelOutOfRange { function, .. }
            | ProgramError::CalleeOutOfRange { function, .. }
            | ProgramError::LabelBeyondCode { function, .. }
            | ProgramError::DuplicateLabel { function, .. }
            | ProgramError::RegisterOutOfRange { function, .. }
            | ProgramError::FrameTooLarge { function, .. } => function,
        }
    }
}

impl Program {
    /// Validates the parts and builds a program. Callers that read label tables with
    /// duplicate names (STFL lets the later entry win) resolve them before calling this.
    /// Returns the first problem found, with the index of the function it is in.
    pub fn new(
        constants: Vec<Constant>,
        functions: Vec<FunctionParts>,
        callees: Vec<String>,
    ) -> Result<Program, (usize, ProgramError)> {
        let mut checked = Vec::with_capacity(functions.len());
        for (index, parts) in functions.into_iter().enumerate() {
            let function =
                validate_function(parts, constants.len(), callees.len()).map_err(|e| (index, e))?;
            checked.push(function);
        }
        Ok(canonicalize(constants, checked, callees))
    }

    /// The constant pool.
    pub fn constants(&self) -> &[Constant] {
        &self.constants
    }

    /// The functions, in file order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The names `CALL` instructions refer to, indexed by [`Instruction::Call::callee`].
    pub fn callees(&self) -> &[String] {
        &self.callees
    }

    /// The function with this name that loading would leave in place (the last one).
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().rev().find(|f| f.name == name)
    }
}

/// Rewrites a validated program into the canonical form described on [`Program`].
fn canonicalize(
    constants: Vec<Constant>,
    mut functions: Vec<Function>,
    callees: Vec<String>,
) -> Program {
    let mut pool: Vec<Constant> = Vec::new();
    let mut pool_index: HashMap<&Constant, u32> = HashMap::new();
    let mut name_index: HashMap<&str, u32> = HashMap::new();
    let mut pool_map: Vec<Option<u32>> = vec![None; constants.len()];
    let mut names: Vec<String> = Vec::new();
    let mut name_map: Vec<Option<u32>> = vec![None; callees.len()];
    for function in &mut functions {
        let mut order: Vec<u32> = (0..function.labels.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (la, lb) = (&function.labels[a as usize], &function.labels[b as usize]);
            (la.target, &la.name).cmp(&(lb.target, &lb.name))
        });
        let mut label_map = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            label_map[old as usize] = new as u32;
        }
        function.labels = order
            .iter()
            .map(|&old| function.labels[old as usize].clone())
            .collect();
        for ins in &mut function.code {
            match ins {
                Instruction::Ldi { constant, .. } => {
                    let old = *constant as usize;
                    *constant = *pool_map[old].get_or_insert_with(|| {
                        let c = &constants[old];
                        *pool_index.entry(c).or_insert_with(|| {
                            pool.push(c.clone());
                            (pool.len() - 1) as u32
                        })
                    });
                }
                Instruction::Call { callee } => {
                    let old = *callee as usize;
                    *callee = *name_map[old].get_or_insert_with(|| {
                        let n = callees[old].as_str();
                        *name_index.entry(n).or_insert_with(|| {
                            names.push(n.to_owned());
                            (names.len() - 1) as u32
                        })
                    });
                }
                Instruction::Jmp { label }
                | Instruction::JmpEq { label }
                | Instruction::JmpNeq { label }
                | Instruction::JmpLt { label }
                | Instruction::JmpGt { label } => *label = label_map[*label as usize],
                _ => {}
            }
        }
    }
    Program {
        constants: pool,
        functions,
        callees: names,
    }
}

fn validate_function(
    parts: FunctionParts,
    constant_count: usize,
    callee_count: usize,
) -> Result<Function, ProgramError> {
    let FunctionParts {
        name,
        register_count,
        params,
        upvalues,
        parent,
        labels,
        code,
    } = parts;
    let code_len = code.len();
    let mut seen = std::collections::HashSet::with_capacity(labels.len());
    for label in &labels {
        if label.target as usize > code_len {
            return Err(ProgramError::LabelBeyondCode {
                function: name,
                label: label.name.clone(),
                target: label.target,
                len: code_len,
            });
        }
        if !seen.insert(label.name.as_str()) {
            return Err(ProgramError::DuplicateLabel {
                function: name,
                label: label.name.clone(),
            });
        }
    }
    let declared = u32::from(register_count).max(params.len().min(u32::MAX as usize) as u32);
    if declared > MAX_FRAME_SIZE {
        return Err(ProgramError::FrameTooLarge {
            function: name,
            size: declared,
        });
    }
    let mut frame_size = declared;
    for (instruction, ins) in code.iter().enumerate() {
        for register in ins.registers() {
            if register >= MAX_FRAME_SIZE {
                return Err(ProgramError::RegisterOutOfRange {
                    function: name,
                    instruction,
                    register,
                });
            }
            frame_size = frame_size.max(register + 1);
        }
        match *ins {
            Instruction::Ldi { constant, .. } if constant as usize >= constant_count => {
                return Err(ProgramError::ConstantOutOfRange {
                    function: name,
                    instruction,
                    index: constant,
                    len: constant_count,
                });
            }
            Instruction::Call { callee } if callee as usize >= callee_count => {
                return Err(ProgramError::CalleeOutOfRange {
                    function: name,
                    instruction,
                    index: callee,
                });
            }
            _ => {}
        }
        if let Some(label) = ins.label()
            && label as usize >= labels.len()
        {
            return Err(ProgramError::LabelOutOfRange {
                function: name,
                instruction,
                index: label,
            });
        }
    }
    // A frame always has r0: calls deliver their results there.
    let frame_size = frame_size.max(1);
    Ok(Function {
        name,
        register_count,
        params,
        upvalues,
        parent,
        labels,
        code,
        frame_size,
    })
}

impl fmt::Display for Constant {
    /// The assembly spelling of a constant (see [`crate::asm`]): `42`, `7i32`, `3u8`, `1.5`,
    /// `true`, `()`, `"text"` with escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constant::Unit => write!(f, "()"),
            Constant::I64(v) => write!(f, "{v}"),
            Constant::I32(v) => write!(f, "{v}i32"),
            Constant::I16(v) => write!(f, "{v}i16"),
            Constant::I8(v) => write!(f, "{v}i8"),
            Constant::U8(v) => write!(f, "{v}u8"),
            Constant::U16(v) => write!(f, "{v}u16"),
            Constant::U32(v) => write!(f, "{v}u32"),
            Constant::U64(v) => write!(f, "{v}u64"),
            Constant::Float(v) => {
                if v.is_finite() {
                    // `{:?}` always keeps a decimal point or exponent, so it reads back as a float.
                    write!(f, "{v:?}")
                } else {
                    write!(f, "f64:0x{:016x}", v.to_bits())
                }
            }
            Constant::Bool(v) => write!(f, "{v}"),
            Constant::String(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        '\0' => f.write_str("\\0")?,
                        c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
        }
    }
}
