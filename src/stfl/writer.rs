//! The writer: encodes a [`Program`] as STFL v1 bytes, deterministically.

use crate::program::{Constant, Instruction, Program};

use super::error::WriteError;
use super::{MAGIC, VERSION};

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
