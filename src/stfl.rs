//! The STFL v1 binary format, in both directions: [`load`] turns the bytes a StoffelLang
//! compiler writes into a validated [`Program`], and [`write()`] turns a [`Program`] back into
//! bytes.
//!
//! The loader accepts everything the reference StoffelVM loader accepts (version 0 or 1,
//! labels in any order, duplicate label names with the later entry winning, duplicate
//! function names, empty names, parent flags other than 0/1, trailing bytes), and rejects what
//! the reference silently mangles (unknown jump labels, constant indices out of range, label
//! targets past the code, registers above the frame limit). Every error carries the byte
//! offset it concerns, plus the function and instruction when known. Nothing is allocated
//! from a count before checking that the bytes left could hold that many elements, and no
//! input can make it panic. Loading is a pure function of the bytes.
//!
//! The writer is deterministic: constants, functions, labels and callees are written in the
//! [`Program`]'s own (canonical) order, so `load(write(p)) == p` for every program `p`.

use std::collections::HashMap;
use std::fmt;

use crate::program::{Constant, FunctionParts, Instruction, Label, Program, ProgramError, Reg};

/// The four bytes every STFL file starts with.
pub const MAGIC: [u8; 4] = *b"STFL";

/// The version [`write()`] emits. [`load`] accepts this and every lower version (that is, 0).
pub const VERSION: u16 = 1;

/// The smallest encoding of one constant: a bare tag (Unit).
const MIN_CONSTANT_BYTES: u64 = 1;
/// The smallest encoding of one function record: name length, register count, parameter
/// count, upvalue count, parent flag, label count (2+2+2+2+1+2) and instruction count (4).
const MIN_FUNCTION_BYTES: u64 = 15;
/// The smallest encoding of one label: name length (2) and target (4).
const MIN_LABEL_BYTES: u64 = 6;
/// The smallest encoding of one instruction: a jump or CALL with an empty name (1+2).
const MIN_INSTRUCTION_BYTES: u64 = 3;
/// The smallest encoding of one parameter or upvalue name: its length (2).
const MIN_NAME_BYTES: u64 = 2;

/// Facts about a loaded file that are not part of the [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadInfo {
    /// The version field of the header (0 or 1).
    pub version: u16,
    /// Bytes after the last function record. The loader ignores them, as the reference does.
    pub trailing_bytes: usize,
}

/// Why a file could not be loaded, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// Byte offset in the file of the field, instruction or record the error is about.
    pub offset: usize,
    /// Index (in file order) of the function record the error is in, if it is in one.
    pub function_index: Option<usize>,
    /// Name of that function, once it has been read.
    pub function: Option<String>,
    /// Index of the instruction within the function, when the error is about one.
    pub instruction: Option<usize>,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

/// What is wrong with a file that [`load`] rejects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadErrorKind {
    /// The file does not start with `STFL`.
    #[error("not an STFL file (bad magic)")]
    BadMagic,
    /// The version field is above [`VERSION`].
    #[error("unsupported STFL version {0} (only 0 and 1 are supported)")]
    UnsupportedVersion(u16),
    /// The file ends inside a fixed-width field. The error's offset is where the field starts.
    #[error("truncated: {what} needs {needed} bytes, only {available} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the file at the field.
        available: usize,
        /// The field being read.
        what: &'static str,
    },
    /// A string is not valid UTF-8. The error's offset is that of the first invalid byte.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The string being read.
        what: &'static str,
    },
    /// A constant's tag byte is not one of 0..=11.
    #[error("unknown constant tag {0}")]
    UnknownConstantTag(u8),
    /// An instruction's opcode byte is not one of 0x00..=0x16.
    #[error("unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    /// A count or length promises more elements or bytes than the rest of the file could
    /// hold, even at the smallest encoding of each element. This is also how a length prefix
    /// that runs past the end of the file is reported. The error's offset is the count's.
    #[error("{what} {count} is more than the {remaining} remaining bytes can hold")]
    CountTooLarge {
        /// The count or length field.
        what: &'static str,
        /// Its value.
        count: u64,
        /// Bytes left after the field.
        remaining: usize,
    },
    /// A jump names a label its function does not define. The error's offset is the jump's.
    #[error("jump to unknown label '{}'", shorten(name))]
    UnknownLabel {
        /// The label name.
        name: String,
    },
    /// The system refused the memory for `what` (this many bytes): a file's counts are
    /// checked against its size, but a large file can still need more than there is. The
    /// error's offset is the count's.
    #[error("out of memory: could not allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// What the memory was for.
        what: &'static str,
        /// Bytes requested.
        bytes: usize,
    },
    /// The file decodes but the program is not valid (constant index out of range, label
    /// beyond the code, register above the frame limit, frame too large). The error's offset
    /// is that of the instruction, label entry or field concerned.
    #[error("{0}")]
    Invalid(Box<ProgramError>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte 0x{:04x}", self.offset)?;
        // A program error names its function and instruction itself.
        let invalid = matches!(self.kind, LoadErrorKind::Invalid(_));
        let mut parts: Vec<String> = Vec::new();
        match (self.function_index, &self.function) {
            (Some(index), Some(name)) if !invalid => {
                parts.push(format!("function #{index} '{}'", shorten(name)))
            }
            (Some(index), _) => parts.push(format!("function #{index}")),
            (None, Some(name)) if !invalid => parts.push(format!("function '{}'", shorten(name))),
            (None, _) => {}
        }
        if let (Some(instruction), false) = (self.instruction, invalid) {
            parts.push(format!("instruction {instruction}"));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// A name as shown in messages: escaped, and cut short if very long.
fn shorten(name: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = name
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Loads an STFL v1 (or v0) file into a validated [`Program`].
pub fn load(bytes: &[u8]) -> Result<Program, LoadError> {
    load_with_info(bytes).map(|(program, _)| program)
}

/// Like [`load`], also returning the header version and the count of ignored trailing bytes.
pub fn load_with_info(bytes: &[u8]) -> Result<(Program, LoadInfo), LoadError> {
    let mut r = Reader::new(bytes);

    let magic_len = MAGIC.len().min(bytes.len());
    if bytes.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(r.fail(0, LoadErrorKind::BadMagic));
    }
    r.take(MAGIC.len(), "magic")?;
    let version_at = r.pos;
    let version = r.u16("version")?;
    if version > VERSION {
        return Err(r.fail(version_at, LoadErrorKind::UnsupportedVersion(version)));
    }

    let at = r.pos;
    let constant_count = r.count_u32("constant count", MIN_CONSTANT_BYTES)?;
    let mut constants = r.vec_for(at, "constants", constant_count)?;
    for _ in 0..constant_count {
        constants.push(r.constant()?);
    }

    let at = r.pos;
    let function_count = r.count_u32("function count", MIN_FUNCTION_BYTES)?;
    let mut functions = r.vec_for(at, "functions", function_count)?;
    let mut spans = r.vec_for(at, "functions", function_count)?;
    let mut callees = Callees::default();
    for index in 0..function_count {
        let (parts, span) = r.function(index, &mut callees)?;
        functions.push(parts);
        spans.push(span);
    }
    let info = LoadInfo {
        version,
        trailing_bytes: r.remaining(),
    };

    let program = Program::new(constants, functions, callees.names)
        .map_err(|(index, error)| program_error(index, error, &spans))?;
    Ok((program, info))
}

/// Where the parts of one function record are in the file, to point errors that
/// [`Program::new`] finds back at bytes.
struct Span {
    start: usize,
    register_count: usize,
    declared_registers: u16,
    params: usize,
    label_count: usize,
    /// Name and entry offset of each label kept (after later duplicates replaced earlier ones).
    labels: Vec<(String, usize)>,
    /// Offset of each instruction's opcode byte.
    code: Vec<usize>,
}

/// Turns an error from [`Program::new`] into a [`LoadError`] at the offending bytes.
fn program_error(index: usize, error: ProgramError, spans: &[Span]) -> LoadError {
    let instruction = error.instruction();
    let offset = spans.get(index).map_or(0, |span| match &error {
        ProgramError::LabelBeyondCode { label, .. } => span
            .labels
            .iter()
            .find(|(name, _)| name == label)
            .map_or(span.label_count, |&(_, at)| at),
        ProgramError::DuplicateLabel { .. } => span.label_count,
        ProgramError::FrameTooLarge { size, .. } => {
            if *size == u32::from(span.declared_registers) {
                span.register_count
            } else {
                span.params
            }
        }
        _ => instruction
            .and_then(|i| span.code.get(i).copied())
            .unwrap_or(span.start),
    });
    LoadError {
        offset,
        function_index: Some(index),
        function: Some(error.function().to_owned()),
        instruction,
        kind: LoadErrorKind::Invalid(Box::new(error)),
    }
}

/// The callee table being built: each distinct CALL name once.
#[derive(Default)]
struct Callees {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Callees {
    fn intern(&mut self, name: String) -> Option<u32> {
        if let Some(&i) = self.index.get(&name) {
            return Some(i);
        }
        let i = u32::try_from(self.names.len()).ok()?;
        self.names.push(name.clone());
        self.index.insert(name, i);
        Some(i)
    }
}

/// Where errors are being reported from.
#[derive(Default)]
struct Context {
    function_index: Option<usize>,
    function: Option<String>,
    instruction: Option<usize>,
}

/// A bounds-checked little-endian cursor over the file.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    ctx: Context,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            pos: 0,
            ctx: Context::default(),
        }
    }

    fn fail(&self, offset: usize, kind: LoadErrorKind) -> LoadError {
        LoadError {
            offset,
            function_index: self.ctx.function_index,
            function: self.ctx.function.clone(),
            instruction: self.ctx.instruction,
            kind,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LoadError> {
        let start = self.pos;
        let slice = start
            .checked_add(n)
            .and_then(|end| self.bytes.get(start..end));
        match slice {
            Some(slice) => {
                self.pos = start + slice.len();
                Ok(slice)
            }
            None => Err(self.fail(
                start,
                LoadErrorKind::Truncated {
                    needed: n,
                    available: self.remaining(),
                    what,
                },
            )),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], LoadError> {
        let at = self.pos;
        let slice = self.take(N, what)?;
        <[u8; N]>::try_from(slice).map_err(|_| {
            self.fail(
                at,
                LoadErrorKind::Truncated {
                    needed: N,
                    available: slice.len(),
                    what,
                },
            )
        })
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, LoadError> {
        self.array::<1>(what).map(|[b]| b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, LoadError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, LoadError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, LoadError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Checks that `count` elements of at least `min_each` bytes fit in what is left.
    fn check_count(
        &self,
        at: usize,
        what: &'static str,
        count: u64,
        min_each: u64,
    ) -> Result<usize, LoadError> {
        let remaining = self.remaining();
        let fits = count
            .checked_mul(min_each)
            .is_some_and(|need| need <= remaining as u64);
        match usize::try_from(count) {
            Ok(count) if fits => Ok(count),
            _ => Err(self.fail(
                at,
                LoadErrorKind::CountTooLarge {
                    what,
                    count,
                    remaining,
                },
            )),
        }
    }

    /// An empty vector with room for `count` elements (a count read at `at` and checked
    /// against the file's size), failing instead of aborting when the system refuses.
    fn vec_for<T>(&self, at: usize, what: &'static str, count: usize) -> Result<Vec<T>, LoadError> {
        let mut v = Vec::new();
        v.try_reserve_exact(count).map_err(|_| {
            let bytes = count.saturating_mul(std::mem::size_of::<T>());
            self.fail(at, LoadErrorKind::OutOfMemory { what, bytes })
        })?;
        Ok(v)
    }

    fn count_u32(&mut self, what: &'static str, min_each: u64) -> Result<usize, LoadError> {
        let at = self.pos;
        let count = self.u32(what)?;
        self.check_count(at, what, u64::from(count), min_each)
    }

    fn count_u16(&mut self, what: &'static str, min_each: u64) -> Result<usize, LoadError> {
        let at = self.pos;
        let count = self.u16(what)?;
        self.check_count(at, what, u64::from(count), min_each)
    }

    /// Reads `len` bytes of UTF-8.
    fn utf8(&mut self, len: usize, what: &'static str) -> Result<&'a str, LoadError> {
        let at = self.pos;
        let slice = self.take(len, what)?;
        std::str::from_utf8(slice).map_err(|e| {
            self.fail(
                at.saturating_add(e.valid_up_to()),
                LoadErrorKind::InvalidUtf8 { what },
            )
        })
    }

    /// Reads a u16-length-prefixed UTF-8 name.
    fn name(&mut self, length: &'static str, what: &'static str) -> Result<String, LoadError> {
        let len = self.count_u16(length, 1)?;
        self.utf8(len, what).map(str::to_owned)
    }

    /// Reads a u16 count of u16-length-prefixed names.
    fn names(
        &mut self,
        count: &'static str,
        length: &'static str,
        what: &'static str,
    ) -> Result<Vec<String>, LoadError> {
        let n = self.count_u16(count, MIN_NAME_BYTES)?;
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            names.push(self.name(length, what)?);
        }
        Ok(names)
    }

    fn constant(&mut self) -> Result<Constant, LoadError> {
        let at = self.pos;
        let tag = self.u8("constant tag")?;
        Ok(match tag {
            0 => Constant::Unit,
            1 => Constant::I64(i64::from_le_bytes(self.array("I64 constant")?)),
            2 => Constant::I32(i32::from_le_bytes(self.array("I32 constant")?)),
            3 => Constant::I16(i16::from_le_bytes(self.array("I16 constant")?)),
            4 => Constant::I8(i8::from_le_bytes(self.array("I8 constant")?)),
            5 => Constant::U8(self.u8("U8 constant")?),
            6 => Constant::U16(self.u16("U16 constant")?),
            7 => Constant::U32(self.u32("U32 constant")?),
            8 => Constant::U64(self.u64("U64 constant")?),
            9 => Constant::Float(f64::from_bits(self.u64("Float constant")?)),
            10 => Constant::Bool(self.u8("Bool constant")? != 0),
            11 => {
                let len = self.count_u32("string constant length", 1)?;
                Constant::String(self.utf8(len, "string constant")?.into())
            }
            other => return Err(self.fail(at, LoadErrorKind::UnknownConstantTag(other))),
        })
    }

    fn reg(&mut self) -> Result<Reg, LoadError> {
        self.u32("register operand")
    }

    fn function(
        &mut self,
        index: usize,
        callees: &mut Callees,
    ) -> Result<(FunctionParts, Span), LoadError> {
        self.ctx = Context {
            function_index: Some(index),
            function: None,
            instruction: None,
        };
        let start = self.pos;
        let name = self.name("function name length", "function name")?;
        self.ctx.function = Some(name.clone());
        let register_count_at = self.pos;
        let register_count = self.u16("register count")?;
        let params_at = self.pos;
        let params = self.names("parameter count", "parameter name length", "parameter name")?;
        let upvalues = self.names("upvalue count", "upvalue name length", "upvalue name")?;
        let parent = match self.u8("parent flag")? {
            1 => Some(self.name("parent name length", "parent name")?),
            _ => None,
        };

        let label_count_at = self.pos;
        let label_count = self.count_u16("label count", MIN_LABEL_BYTES)?;
        let mut labels: Vec<Label> = Vec::with_capacity(label_count);
        let mut label_spans: Vec<(String, usize)> = Vec::with_capacity(label_count);
        let mut label_index: HashMap<String, u32> = HashMap::with_capacity(label_count);
        for _ in 0..label_count {
            let at = self.pos;
            let name = self.name("label name length", "label name")?;
            let target = self.u32("label target")?;
            match label_index.get(&name).and_then(|&i| {
                let i = i as usize;
                Some((labels.get_mut(i)?, label_spans.get_mut(i)?))
            }) {
                // A later entry with the same name replaces the earlier one.
                Some((label, span)) => {
                    label.target = target;
                    span.1 = at;
                }
                None => {
                    // At most u16::MAX labels, so the index always fits.
                    let i = u32::try_from(labels.len()).unwrap_or(u32::MAX);
                    label_index.insert(name.clone(), i);
                    label_spans.push((name.clone(), at));
                    labels.push(Label { name, target });
                }
            }
        }

        let count_at = self.pos;
        let count = self.count_u32("instruction count", MIN_INSTRUCTION_BYTES)?;
        let mut code = self.vec_for(count_at, "instructions", count)?;
        let mut code_spans = self.vec_for(count_at, "instructions", count)?;
        for i in 0..count {
            self.ctx.instruction = Some(i);
            let at = self.pos;
            code_spans.push(at);
            code.push(self.instruction(at, &label_index, callees)?);
        }
        self.ctx.instruction = None;

        let parts = FunctionParts {
            name,
            register_count,
            params,
            upvalues,
            parent,
            labels,
            code,
        };
        let span = Span {
            start,
            register_count: register_count_at,
            declared_registers: register_count,
            params: params_at,
            label_count: label_count_at,
            labels: label_spans,
            code: code_spans,
        };
        Ok((parts, span))
    }

    fn instruction(
        &mut self,
        at: usize,
        labels: &HashMap<String, u32>,
        callees: &mut Callees,
    ) -> Result<Instruction, LoadError> {
        use Instruction::*;
        let opcode = self.u8("opcode")?;
        Ok(match opcode {
            0x00 => {
                let dst = self.reg()?;
                let offset = i32::from_le_bytes(self.array("LD offset")?);
                Ld { dst, offset }
            }
            0x01 => {
                let dst = self.reg()?;
                let constant = self.u32("constant index")?;
                Ldi { dst, constant }
            }
            0x02 => Mov {
                dst: self.reg()?,
                src: self.reg()?,
            },
            0x03..=0x0A => {
                let (dst, a, b) = (self.reg()?, self.reg()?, self.reg()?);
                match Instruction::binary(opcode, dst, a, b) {
                    Some(ins) => ins,
                    None => return Err(self.fail(at, LoadErrorKind::UnknownOpcode(opcode))),
                }
            }
            0x0B => Not {
                dst: self.reg()?,
                src: self.reg()?,
            },
            0x0C | 0x0D => {
                let (dst, src, amount) = (self.reg()?, self.reg()?, self.reg()?);
                if opcode == 0x0C {
                    Shl { dst, src, amount }
                } else {
                    Shr { dst, src, amount }
                }
            }
            0x0E | 0x0F | 0x10 | 0x15 | 0x16 => {
                let name = self.name("label name length", "jump label")?;
                let Some(&label) = labels.get(&name) else {
                    return Err(self.fail(at, LoadErrorKind::UnknownLabel { name }));
                };
                match opcode {
                    0x0E => Jmp { label },
                    0x0F => JmpEq { label },
                    0x10 => JmpNeq { label },
                    0x15 => JmpLt { label },
                    _ => JmpGt { label },
                }
            }
            0x11 => {
                let name = self.name("call target length", "call target")?;
                // Every CALL is at least 3 bytes, so the table cannot outgrow u32.
                let callee = callees.intern(name).unwrap_or(u32::MAX);
                Call { callee }
            }
            0x12 => Ret { src: self.reg()? },
            0x13 => PushArg { src: self.reg()? },
            0x14 => Cmp {
                a: self.reg()?,
                b: self.reg()?,
            },
            other => return Err(self.fail(at, LoadErrorKind::UnknownOpcode(other))),
        })
    }
}

/// Why a [`Program`] cannot be written as STFL v1: some length or count does not fit its
/// field. The loader never produces such a program, but a hand-built one can.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A length or count is above what its field can hold.
    #[error("{}{what} is {len}, above the STFL v1 limit of {max}", location(*function))]
    TooLong {
        /// Index of the function concerned, if any.
        function: Option<usize>,
        /// The length or count.
        what: &'static str,
        /// Its value.
        len: usize,
        /// The field's maximum.
        max: u64,
    },
    /// An instruction refers to a label or callee the program does not have. A [`Program`]
    /// built by [`Program::new`] never does; this is reported instead of panicking.
    #[error("{}instruction {instruction} refers to a missing {what}", location(Some(*function)))]
    DanglingIndex {
        /// Index of the function.
        function: usize,
        /// Index of the instruction.
        instruction: usize,
        /// "label" or "callee".
        what: &'static str,
    },
}

fn location(function: Option<usize>) -> String {
    function.map_or_else(String::new, |i| format!("function #{i}: "))
}

/// Writes `program` as STFL v1. The output depends only on the program, so equal programs
/// give equal bytes, and loading the bytes gives back an equal program.
pub fn write(program: &Program) -> Result<Vec<u8>, WriteError> {
    let mut w = Writer {
        out: Vec::new(),
        function: None,
    };
    w.out.extend_from_slice(&MAGIC);
    w.u16(VERSION);
    w.len32("constant count", program.constants().len())?;
    for constant in program.constants() {
        w.constant(constant)?;
    }
    w.len32("function count", program.functions().len())?;
    for (index, function) in program.functions().iter().enumerate() {
        w.function = Some(index);
        w.name("function name", &function.name)?;
        w.u16(function.register_count);
        w.names("parameter count", "parameter name", &function.params)?;
        w.names("upvalue count", "upvalue name", &function.upvalues)?;
        match &function.parent {
            Some(parent) => {
                w.out.push(1);
                w.name("parent name", parent)?;
            }
            None => w.out.push(0),
        }
        w.len16("label count", function.labels.len())?;
        for label in &function.labels {
            w.name("label name", &label.name)?;
            w.u32(label.target);
        }
        w.len32("instruction count", function.code.len())?;
        for (i, ins) in function.code.iter().enumerate() {
            w.instruction(program, function, index, i, ins)?;
        }
    }
    Ok(w.out)
}

struct Writer {
    out: Vec<u8>,
    function: Option<usize>,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn too_long(&self, what: &'static str, len: usize, max: u64) -> WriteError {
        WriteError::TooLong {
            function: self.function,
            what,
            len,
            max,
        }
    }

    fn len16(&mut self, what: &'static str, len: usize) -> Result<(), WriteError> {
        let v = u16::try_from(len).map_err(|_| self.too_long(what, len, u16::MAX.into()))?;
        self.u16(v);
        Ok(())
    }

    fn len32(&mut self, what: &'static str, len: usize) -> Result<(), WriteError> {
        let v = u32::try_from(len).map_err(|_| self.too_long(what, len, u32::MAX.into()))?;
        self.u32(v);
        Ok(())
    }

    fn name(&mut self, what: &'static str, name: &str) -> Result<(), WriteError> {
        self.len16(what, name.len())?;
        self.out.extend_from_slice(name.as_bytes());
        Ok(())
    }

    fn names(
        &mut self,
        count: &'static str,
        what: &'static str,
        names: &[String],
    ) -> Result<(), WriteError> {
        self.len16(count, names.len())?;
        for name in names {
            self.name(what, name)?;
        }
        Ok(())
    }

    fn constant(&mut self, constant: &Constant) -> Result<(), WriteError> {
        let out = &mut self.out;
        match constant {
            Constant::Unit => out.push(0),
            Constant::I64(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::I32(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::I16(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::I8(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::U8(v) => {
                out.push(5);
                out.push(*v);
            }
            Constant::U16(v) => {
                out.push(6);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::U32(v) => {
                out.push(7);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::U64(v) => {
                out.push(8);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Constant::Float(v) => {
                out.push(9);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            Constant::Bool(v) => {
                out.push(10);
                out.push(u8::from(*v));
            }
            Constant::String(s) => {
                out.push(11);
                self.len32("string constant length", s.len())?;
                self.out.extend_from_slice(s.as_bytes());
            }
        }
        Ok(())
    }

    fn instruction(
        &mut self,
        program: &Program,
        function: &crate::program::Function,
        function_index: usize,
        index: usize,
        ins: &Instruction,
    ) -> Result<(), WriteError> {
        use Instruction::*;
        let dangling = |what| WriteError::DanglingIndex {
            function: function_index,
            instruction: index,
            what,
        };
        self.out.push(ins.opcode());
        match *ins {
            Ld { dst, offset } => {
                self.u32(dst);
                self.out.extend_from_slice(&offset.to_le_bytes());
            }
            Ldi { dst, constant } => {
                self.u32(dst);
                self.u32(constant);
            }
            Jmp { label }
            | JmpEq { label }
            | JmpNeq { label }
            | JmpLt { label }
            | JmpGt { label } => {
                let label = function
                    .labels
                    .get(label as usize)
                    .ok_or_else(|| dangling("label"))?;
                self.name("jump label", &label.name)?;
            }
            Call { callee } => {
                let name = program
                    .callees()
                    .get(callee as usize)
                    .ok_or_else(|| dangling("callee"))?;
                self.name("call target", name)?;
            }
            _ => {
                for reg in ins.registers() {
                    self.u32(reg);
                }
            }
        }
        Ok(())
    }
}
