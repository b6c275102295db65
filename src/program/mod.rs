//! Programs: the validated, immutable form of StoffelVM code.
//!
//! Both front ends (the STFL loader in [`crate::stfl`] and the text assembler in
//! [`crate::asm`]) build a [`Program`] through [`Program::new`], which checks every index once,
//! so the interpreter never has to: constant indices are in range, every jump names a label of
//! its own function, every label points inside (or just past) the code, and every register fits
//! the frame. Jumps and calls are indices, never names, so nothing is looked up by string while
//! code runs. A `Program` knows nothing of the heap or the interpreter.
//!
//! Besides code, a program carries what the STFL format records but execution never reads:
//! its format version, per-function type metadata ([`FunctionTypes`], v5+) and a
//! [`Manifest`] (v2+). Files: `constant`, `instruction`, `types`, `manifest`, `error`.

mod constant;
mod error;
mod instruction;
mod manifest;
mod types;

use std::collections::HashMap;

pub use constant::Constant;
pub use error::{FormatError, ProgramError};
pub use instruction::{Instruction, MNEMONICS};
pub use manifest::{ClientIo, Manifest, MpcBackend, MpcCurve, PreprocessingDemand, ShareType};
pub use types::{FunctionType, FunctionTypes, MAX_TYPE_DEPTH};

/// The newest STFL format version: what [`Program::new`] gives a program, and the highest a
/// program (and the loader) accepts.
pub const FORMAT_VERSION: u16 = 9;

/// The spill slots (LDS/STS) a function may use: slots `0..MAX_SPILL_SLOTS`. The original VM
/// has no bound (a huge slot number makes one STS allocate that many values); compiled code
/// uses a few dozen, and the cap keeps one instruction from asking for gigabytes.
pub const MAX_SPILL_SLOTS: u32 = 1 << 16;

/// A register number inside a frame.
pub type Reg = u32;

/// The largest frame (in registers) a function may use. StoffelLang code uses r0..r31; the cap
/// keeps a malformed file from making every call allocate a huge register window.
pub const MAX_FRAME_SIZE: u32 = 4096;

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
    /// Declared parameter and result types (STFL v5+; stored, never used). `None` when
    /// absent or all unknown.
    pub types: Option<FunctionTypes>,
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
    /// See [`Function::types`]. When given, it must have one type per parameter.
    pub types: Option<FunctionTypes>,
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
/// sorted by target, then name; type metadata that is all unknown and a default manifest are
/// kept as none. This is what makes STFL load → write → load and disassemble → assemble exact
/// identities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    constants: Vec<Constant>,
    functions: Vec<Function>,
    callees: Vec<String>,
    version: u16,
    manifest: Option<Manifest>,
}

impl Program {
    /// Validates the parts and builds a program of format version [`FORMAT_VERSION`] with no
    /// manifest ([`Program::with_format`] sets both). Callers that read label tables with
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

    /// Sets the STFL version the program is written as and its manifest (a default one is
    /// kept as none). Fails when the version is above [`FORMAT_VERSION`], cannot encode what
    /// the program holds (type metadata needs v5, a manifest v2, a backend v3, a curve v4, a
    /// preprocessing demand v8), or a share type is one the original VM refuses.
    pub fn with_format(
        mut self,
        version: u16,
        manifest: Option<Manifest>,
    ) -> Result<Program, FormatError> {
        if version > FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let manifest = manifest.filter(|m| !m.is_default());
        let needs = |what: String, needs: u16| {
            if version < needs {
                Err(FormatError::NeedsVersion {
                    what,
                    needs,
                    version,
                })
            } else {
                Ok(())
            }
        };
        if let Some(m) = &manifest {
            needs("the manifest".to_owned(), m.needed_version())?;
            for (client, io) in m.clients.iter().enumerate() {
                let lists = [("input", &io.inputs), ("output", &io.outputs)];
                for (direction, list) in lists {
                    for (index, share) in list.iter().enumerate() {
                        if let Some(problem) = share.problem() {
                            return Err(FormatError::InvalidShareType {
                                client,
                                direction,
                                index,
                                problem,
                            });
                        }
                    }
                }
            }
        }
        if let Some(f) = self.functions.iter().find(|f| f.types.is_some()) {
            needs(format!("the type metadata of function '{}'", f.name), 5)?;
        }
        self.version = version;
        self.manifest = manifest;
        Ok(self)
    }

    /// The STFL version the program was read as (or set with [`Program::with_format`]);
    /// [`FORMAT_VERSION`] for a program built by [`Program::new`] or the assembler.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The manifest, if the program has a non-default one.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
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
        version: FORMAT_VERSION,
        manifest: None,
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
        types,
        labels,
        code,
    } = parts;
    if let Some(t) = &types {
        if t.params.len() != params.len() {
            return Err(ProgramError::TypeCountMismatch {
                function: name,
                params: params.len(),
                types: t.params.len(),
            });
        }
        if let Some(problem) = t.params.iter().chain([&t.ret]).find_map(|t| t.problem()) {
            return Err(ProgramError::InvalidType {
                function: name,
                problem,
            });
        }
    }
    let types = types.filter(|t| !t.is_unknown());
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
            Instruction::Lds { slot, .. } | Instruction::Sts { slot, .. }
                if slot >= MAX_SPILL_SLOTS =>
            {
                return Err(ProgramError::SlotOutOfRange {
                    function: name,
                    instruction,
                    slot,
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
        types,
        labels,
        code,
        frame_size,
    })
}
