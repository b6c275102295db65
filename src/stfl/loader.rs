//! The loader: decodes STFL bytes (versions 0 to 9) with a bounds-checked reader, then
//! validates the result with [`Program::new`], pointing any error back at the bytes concerned.

use std::collections::HashMap;

use crate::program::{
    ClientIo, Constant, FunctionParts, FunctionType, FunctionTypes, Instruction, Label,
    MAX_TYPE_DEPTH, Manifest, MpcBackend, MpcCurve, PreprocessingDemand, Program, ProgramError,
    Reg, ShareType,
};

use super::error::{LoadError, LoadErrorKind};
use super::{MAGIC, VERSION};

/// The first version with a manifest after the function table.
const MANIFEST_VERSION: u16 = 2;
/// The first version whose manifest starts with the MPC backend byte.
const BACKEND_VERSION: u16 = 3;
/// The first version whose manifest then has the MPC curve byte.
const CURVE_VERSION: u16 = 4;
/// The first version with parameter and result types in function records. From this version
/// on, a parent flag other than 0 or 1 is an error (v0/v1 read it as "no parent").
const TYPES_VERSION: u16 = 5;
/// The first version whose manifest ends with a preprocessing demand.
const DEMAND_VERSION: u16 = 8;

/// The smallest encoding of one constant: a bare tag (Unit).
const MIN_CONSTANT_BYTES: u64 = 1;
/// The smallest encoding of one function record: name length, register count, parameter
/// count, upvalue count, parent flag, label count (2+2+2+2+1+2) and instruction count (4).
const MIN_FUNCTION_BYTES: u64 = 15;
/// The smallest encoding of one label: name length (2) and target (4).
const MIN_LABEL_BYTES: u64 = 6;
/// The smallest encoding of one instruction: NOP, an opcode alone (every version's reader
/// decodes it).
const MIN_INSTRUCTION_BYTES: u64 = 1;
/// The smallest encoding of one parameter or upvalue name: its length (2).
const MIN_NAME_BYTES: u64 = 2;
/// The smallest encoding of one function type: a bare tag.
const MIN_TYPE_BYTES: u64 = 1;
/// The smallest encoding of one client IO schema: slot (8), input and output counts (4+4).
const MIN_CLIENT_BYTES: u64 = 16;
/// The smallest encoding of one share type: tag and bit length (1+4).
const MIN_SHARE_BYTES: u64 = 5;

/// Facts about a loaded file that are not part of the [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadInfo {
    /// The version field of the header (0 to 9; also [`Program::version`]).
    pub version: u16,
    /// Bytes after the last function record. The loader ignores them, as the reference does.
    pub trailing_bytes: usize,
}

/// Loads an STFL file of version 0 to 9 into a validated [`Program`] of that version.
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
    // From v5 on a record also has a type count (2) and a result type (1).
    let min_function = MIN_FUNCTION_BYTES + if version >= TYPES_VERSION { 3 } else { 0 };
    let function_count = r.count_u32("function count", min_function)?;
    let mut functions = r.vec_for(at, "functions", function_count)?;
    let mut spans = r.vec_for(at, "functions", function_count)?;
    let mut callees = Callees::default();
    for index in 0..function_count {
        let (parts, span) = r.function(index, version, &mut callees)?;
        functions.push(parts);
        spans.push(span);
    }
    r.ctx = Context::default();
    let manifest_at = r.pos;
    let manifest = if version >= MANIFEST_VERSION {
        Some(r.manifest(version)?)
    } else {
        None
    };
    let info = LoadInfo {
        version,
        trailing_bytes: r.remaining(),
    };

    let program = Program::new(constants, functions, callees.names)
        .map_err(|(index, error)| program_error(index, error, &spans))?
        .with_format(version, manifest)
        // Decoding has checked everything this checks; reported, never unwrapped.
        .map_err(|e| r.fail(manifest_at, LoadErrorKind::Format(Box::new(e))))?;
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
        version: u16,
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
        let types = if version >= TYPES_VERSION {
            Some(self.function_types(params.len())?)
        } else {
            None
        };
        let upvalues = self.names("upvalue count", "upvalue name length", "upvalue name")?;
        let flag_at = self.pos;
        let parent = match self.u8("parent flag")? {
            1 => Some(self.name("parent name length", "parent name")?),
            0 => None,
            flag if version >= TYPES_VERSION => {
                return Err(self.fail(flag_at, LoadErrorKind::InvalidParentFlag(flag)));
            }
            // v0/v1 (and v2-v4) readers took every other value as "no parent".
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
            types,
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
            // NOP, LDS and STS decode in every version, as in the original reader.
            0x17 => Nop,
            0x18 => Lds {
                dst: self.reg()?,
                slot: self.u32("spill slot")?,
            },
            0x19 => {
                let slot = self.u32("spill slot")?;
                Sts {
                    slot,
                    src: self.reg()?,
                }
            }
            other => return Err(self.fail(at, LoadErrorKind::UnknownOpcode(other))),
        })
    }
}

impl Reader<'_> {
    /// The v5+ type metadata of a function with `params` parameters: a type count that must
    /// equal `params`, the parameter types, the result type.
    fn function_types(&mut self, params: usize) -> Result<FunctionTypes, LoadError> {
        let at = self.pos;
        let count = usize::from(self.u16("parameter type count")?);
        if count != params {
            return Err(self.fail(
                at,
                LoadErrorKind::TypeCountMismatch {
                    params,
                    types: count,
                },
            ));
        }
        // One more type (the result) follows the parameters' types.
        self.check_count(at, "parameter type count", count as u64 + 1, MIN_TYPE_BYTES)?;
        let mut types = self.vec_for(at, "parameter types", count)?;
        for _ in 0..count {
            types.push(self.function_type(1)?);
        }
        let ret = self.function_type(1)?;
        Ok(FunctionTypes { params: types, ret })
    }

    /// One (recursive) function type at nesting level `depth` (1 for the outermost).
    fn function_type(&mut self, depth: usize) -> Result<FunctionType, LoadError> {
        let at = self.pos;
        if depth > MAX_TYPE_DEPTH {
            return Err(self.fail(at, LoadErrorKind::InvalidType("type nests too deeply")));
        }
        let inner = |r: &mut Self| r.function_type(depth + 1).map(Box::new);
        Ok(match self.u8("function type tag")? {
            0 => {
                let signed = self.u8("integer type signedness")? != 0;
                let bits = self.u8("integer type bit width")?;
                if bits == 0 {
                    return Err(self.fail(
                        at,
                        LoadErrorKind::InvalidType("integer type has a bit width of 0"),
                    ));
                }
                FunctionType::Int { signed, bits }
            }
            1 => FunctionType::Float,
            2 => FunctionType::String,
            3 => FunctionType::Bool,
            4 => FunctionType::Nil,
            5 => FunctionType::Void,
            6 => FunctionType::Secret(inner(self)?),
            7 => FunctionType::List(inner(self)?),
            8 => {
                let key = inner(self)?;
                FunctionType::Dict(key, inner(self)?)
            }
            9 => FunctionType::Object(self.name("object type name length", "object type name")?),
            10 => {
                let name = self.name("generic type name length", "generic type name")?;
                let count_at = self.pos;
                let count = self.count_u16("generic parameter count", MIN_TYPE_BYTES)?;
                let mut params = self.vec_for(count_at, "generic parameters", count)?;
                for _ in 0..count {
                    params.push(self.function_type(depth + 1)?);
                }
                FunctionType::Generic(name, params)
            }
            11 => FunctionType::TypeVar(self.name("type variable name length", "type variable")?),
            12 => FunctionType::Unknown,
            13 => FunctionType::Fixed { bits: 64 },
            14 => {
                let bits = self.u8("fixed-point type bit width")?;
                if bits == 0 {
                    return Err(self.fail(
                        at,
                        LoadErrorKind::InvalidType("fixed-point type has a bit width of 0"),
                    ));
                }
                FunctionType::Fixed { bits }
            }
            tag => return Err(self.fail(at, LoadErrorKind::UnknownTypeTag(tag))),
        })
    }

    /// The manifest after the function table (v2+), with the fields `version` has.
    fn manifest(&mut self, version: u16) -> Result<Manifest, LoadError> {
        let mut manifest = Manifest::default();
        if version >= BACKEND_VERSION {
            let at = self.pos;
            let tag = self.u8("MPC backend")?;
            manifest.backend = *MpcBackend::ALL
                .get(usize::from(tag))
                .ok_or_else(|| self.fail(at, LoadErrorKind::UnknownBackend(tag)))?;
        }
        if version >= CURVE_VERSION {
            let at = self.pos;
            let tag = self.u8("MPC curve")?;
            manifest.curve = *MpcCurve::ALL
                .get(usize::from(tag))
                .ok_or_else(|| self.fail(at, LoadErrorKind::UnknownCurve(tag)))?;
        }
        let at = self.pos;
        let count = self.count_u32("client count", MIN_CLIENT_BYTES)?;
        manifest.clients = self.vec_for(at, "client schemas", count)?;
        for _ in 0..count {
            let client_slot = self.u64("client slot")?;
            let inputs = self.share_types("client input count")?;
            let outputs = self.share_types("client output count")?;
            manifest.clients.push(ClientIo {
                client_slot,
                inputs,
                outputs,
            });
        }
        if version >= DEMAND_VERSION {
            manifest.demand = PreprocessingDemand {
                triples: self.u64("preprocessing triples")?,
                randoms: self.u64("preprocessing randoms")?,
                prandbits: self.u64("preprocessing prandbits")?,
                prandints: self.u64("preprocessing prandints")?,
                dynamic: self.u8("preprocessing dynamic flag")? != 0,
            };
        }
        Ok(manifest)
    }

    /// A u32 count of share types.
    fn share_types(&mut self, what: &'static str) -> Result<Vec<ShareType>, LoadError> {
        let at = self.pos;
        let count = self.count_u32(what, MIN_SHARE_BYTES)?;
        let mut types = self.vec_for(at, "share types", count)?;
        for _ in 0..count {
            let at = self.pos;
            let share = match self.u8("share type tag")? {
                0 => ShareType::SecretInt {
                    bit_length: self.u32("share bit length")?,
                },
                2 => ShareType::SecretUInt {
                    bit_length: self.u32("share bit length")?,
                },
                1 => ShareType::SecretFixedPoint {
                    total_bits: self.u32("fixed-point total bits")?,
                    fractional_bits: self.u32("fixed-point fractional bits")?,
                },
                tag => return Err(self.fail(at, LoadErrorKind::UnknownShareTypeTag(tag))),
            };
            if let Some(problem) = share.problem() {
                return Err(self.fail(at, LoadErrorKind::InvalidShareType(problem)));
            }
            types.push(share);
        }
        Ok(types)
    }
}
