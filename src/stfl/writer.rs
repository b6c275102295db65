//! The writer: encodes a [`Program`] as STFL bytes of the program's version, deterministically.

use crate::program::{
    Constant, FunctionType, FunctionTypes, Instruction, Manifest, Program, ShareType,
};

use super::MAGIC;
use super::error::WriteError;

/// Writes `program` as STFL of its own version ([`Program::version`]: the version it was
/// read as, 9 for assembled programs), with the manifest from v2 and type metadata from v5
/// (all `unknown` when the program has none). The output depends only on the program, so
/// equal programs give equal bytes, and loading the bytes gives back an equal program.
pub fn write(program: &Program) -> Result<Vec<u8>, WriteError> {
    let version = program.version();
    let mut w = Writer {
        out: Vec::new(),
        function: None,
    };
    w.out.extend_from_slice(&MAGIC);
    w.u16(version);
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
        if version >= 5 {
            w.types(function.params.len(), function.types.as_ref())?;
        }
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
    w.function = None;
    if version >= 2 {
        let default = Manifest::default();
        w.manifest(version, program.manifest().unwrap_or(&default))?;
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

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    /// The v5+ type metadata of a function with `params` parameters.
    fn types(&mut self, params: usize, types: Option<&FunctionTypes>) -> Result<(), WriteError> {
        match types {
            Some(t) => {
                self.len16("parameter type count", t.params.len())?;
                for ty in &t.params {
                    self.function_type(ty)?;
                }
                self.function_type(&t.ret)
            }
            None => {
                self.len16("parameter type count", params)?;
                for _ in 0..=params {
                    self.function_type(&FunctionType::Unknown)?;
                }
                Ok(())
            }
        }
    }

    fn function_type(&mut self, ty: &FunctionType) -> Result<(), WriteError> {
        self.out.push(ty.tag());
        match ty {
            FunctionType::Int { signed, bits } => {
                self.out.push(u8::from(*signed));
                self.out.push(*bits);
            }
            FunctionType::Fixed { bits } if *bits != 64 => self.out.push(*bits),
            FunctionType::Secret(t) | FunctionType::List(t) => self.function_type(t)?,
            FunctionType::Dict(k, v) => {
                self.function_type(k)?;
                self.function_type(v)?;
            }
            FunctionType::Object(name) => self.name("object type name", name)?,
            FunctionType::TypeVar(name) => self.name("type variable", name)?,
            FunctionType::Generic(name, params) => {
                self.name("generic type name", name)?;
                self.len16("generic parameter count", params.len())?;
                for p in params {
                    self.function_type(p)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The manifest with the fields `version` has.
    fn manifest(&mut self, version: u16, m: &Manifest) -> Result<(), WriteError> {
        if version >= 3 {
            self.out.push(m.backend as u8);
        }
        if version >= 4 {
            self.out.push(m.curve as u8);
        }
        self.len32("client count", m.clients.len())?;
        for client in &m.clients {
            self.u64(client.client_slot);
            for list in [&client.inputs, &client.outputs] {
                self.len32("share type count", list.len())?;
                for share in list {
                    match *share {
                        ShareType::SecretInt { bit_length } => {
                            self.out.push(0);
                            self.u32(bit_length);
                        }
                        ShareType::SecretFixedPoint {
                            total_bits,
                            fractional_bits,
                        } => {
                            self.out.push(1);
                            self.u32(total_bits);
                            self.u32(fractional_bits);
                        }
                        ShareType::SecretUInt { bit_length } => {
                            self.out.push(2);
                            self.u32(bit_length);
                        }
                    }
                }
            }
        }
        if version >= 8 {
            let d = &m.demand;
            for n in [d.triples, d.randoms, d.prandbits, d.prandints] {
                self.u64(n);
            }
            self.out.push(u8::from(d.dynamic));
        }
        Ok(())
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
            Lds { dst, slot } => {
                self.u32(dst);
                self.u32(slot);
            }
            Sts { slot, src } => {
                self.u32(slot);
                self.u32(src);
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
