//! What a VM has loaded: functions linked against the VM's global name table.
//!
//! Bytecode functions, builtins and host functions share one table of names ("slots"); a later
//! definition of a name replaces the earlier one, as in StoffelVM. Loading a [`Program`]
//! gives every name it calls a slot once, and rewrites the code so that at run time a `CALL`
//! is an index into the slot table, an `LDI` an index into the VM's constant table, and a
//! jump an instruction index: no string is looked up while code runs. A name nobody has
//! defined yet keeps an unbound slot and fails only if it is called (hosts may define it later).

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use super::builtins::Builtin;
use super::{Op, lower};
use crate::program::{Constant, Instruction, Program};

/// What a name currently means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Nothing yet: calling it is the error "function not found".
    Unbound,
    /// A bytecode function (index into [`Code::functions`]).
    Function(u32),
    /// A builtin.
    Builtin(Builtin),
    /// A host function (index into the VM's host table).
    Host(u32),
}

/// A bytecode function after linking.
#[derive(Debug)]
pub struct LinkedFunction {
    /// Its name.
    pub name: Rc<str>,
    /// Code with jumps as instruction indices, calls as slots and LDI as global constants.
    pub code: Box<[Instruction]>,
    /// The same code lowered for the interpreter (one op per instruction, same indices).
    pub(crate) ops: Box<[Op]>,
    /// Registers per frame.
    pub frame_size: u32,
    /// Parameter names.
    pub params: Box<[Rc<str>]>,
    /// Where each parameter name first appears, for functions with more than
    /// [`INDEXED_PARAMS`] parameters (closure capture looks names up in every live frame).
    param_index: Option<HashMap<Rc<str>, u32>>,
    /// Names captured at call time.
    pub upvalues: Box<[Rc<str>]>,
    /// The program it came from (index into [`Code::programs`]).
    program: u32,
}

/// Functions with more parameters than this get a name index; fewer are compared in turn.
const INDEXED_PARAMS: usize = 8;

impl LinkedFunction {
    /// The name of a label at instruction `target` in the source of this function, if the
    /// program it came from is still loaded (for traces).
    pub fn label_at<'a>(&self, code: &'a Code, target: u32) -> Option<&'a str> {
        let program = code.programs.get(self.program as usize)?;
        let source = program
            .functions()
            .iter()
            .rev()
            .find(|f| f.name.as_str() == &*self.name)?;
        source
            .labels
            .iter()
            .find(|l| l.target == target)
            .map(|l| l.name.as_str())
    }

    fn index_params(&mut self) {
        if self.params.len() > INDEXED_PARAMS {
            let mut index = HashMap::with_capacity(self.params.len());
            for (i, p) in self.params.iter().enumerate() {
                index.entry(p.clone()).or_insert(i as u32);
            }
            self.param_index = Some(index);
        }
    }

    /// The position of the first parameter called `name`. Adds the names it compared (1 for
    /// an indexed function) to `examined`.
    pub(crate) fn param_position(&self, name: &str, examined: &mut u64) -> Option<u32> {
        if let Some(index) = &self.param_index {
            *examined += 1;
            return index.get(name).copied();
        }
        let found = self.params.iter().position(|p| &**p == name);
        *examined += found.map_or(self.params.len(), |i| i + 1) as u64;
        found.map(|i| i as u32)
    }
}

/// The VM's linked code and name table.
#[derive(Default, Debug)]
pub struct Code {
    /// The functions loaded. A replaced function stays until [`Code::compact`] drops it
    /// (frames of a running execution hold function indices).
    pub functions: Vec<LinkedFunction>,
    /// The current meaning of each slot.
    pub bindings: Vec<Binding>,
    /// Each slot's name.
    pub names: Names,
    /// The slots of the names that are not builtins' (those are in [`builtin_slot`]).
    by_name: HashMap<Rc<str>, u32>,
    /// The last name found, so a host calling the same function again and again skips the
    /// hash (a name's slot never changes, so this never goes stale).
    last_found: std::cell::RefCell<Option<(Rc<str>, u32)>>,
    /// Loaded programs with a function still bound, in load order (for disassembly).
    pub programs: Vec<Rc<Program>>,
    /// Where each program's constants are in the VM's constant table: (first, count).
    constant_ranges: Vec<(u32, u32)>,
}

/// The slot names: the builtins' first (slot `i` is `Builtin::ALL[i]`'s name, shared by every
/// VM, so a new VM copies no name), then the names code and hosts brought, each VM its own.
#[derive(Default, Debug)]
pub struct Names {
    /// How many leading slots are builtins' (0 in a table made without them).
    builtins: usize,
    own: Vec<Rc<str>>,
}

impl Names {
    /// The name of slot `slot`, if there is that slot.
    pub fn get(&self, slot: usize) -> Option<&str> {
        if slot < self.builtins {
            return Some(Builtin::ALL[slot].name());
        }
        self.own.get(slot - self.builtins).map(|n| &**n)
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.builtins + self.own.len()
    }

    fn push(&mut self, name: Rc<str>) {
        self.own.push(name);
    }
}

impl std::ops::Index<usize> for Names {
    type Output = str;

    fn index(&self, slot: usize) -> &str {
        match self.get(slot) {
            Some(name) => name,
            None => panic!("slot {slot} out of range ({} slots)", self.len()),
        }
    }
}

/// The slot of builtin name `name` in every VM's table (see [`Names`]), by a map built once
/// per process: a new VM does not hash or copy the builtins' names.
fn builtin_slot(name: &str) -> Option<u32> {
    static MAP: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = HashMap::with_capacity(Builtin::ALL.len());
        for (i, b) in Builtin::ALL.into_iter().enumerate() {
            map.entry(b.name()).or_insert(i as u32);
        }
        map
    })
    .get(name)
    .copied()
}

impl Code {
    /// A table with every builtin bound: slot `i` is builtin `Builtin::ALL[i]` (their names
    /// are distinct, checked by a test).
    pub fn with_builtins() -> Code {
        Code {
            bindings: Builtin::ALL.into_iter().map(Binding::Builtin).collect(),
            names: Names {
                builtins: Builtin::ALL.len(),
                own: Vec::new(),
            },
            ..Code::default()
        }
    }

    /// Whether the name of builtin `b` still means `b` (a host or a program may rebind it).
    #[inline]
    pub(crate) fn still_builtin(&self, b: Builtin) -> bool {
        // Slot `b as usize` is `b`'s name (see `with_builtins`).
        self.bindings.get(b as usize) == Some(&Binding::Builtin(b))
    }

    /// The slot of `name`, created unbound if new.
    pub fn slot(&mut self, name: &str) -> u32 {
        if let Some(slot) = self.find_builtin(name) {
            return slot;
        }
        if let Some(&slot) = self.by_name.get(name) {
            return slot;
        }
        let slot = self.bindings.len() as u32;
        let name: Rc<str> = Rc::from(name);
        self.bindings.push(Binding::Unbound);
        self.names.push(name.clone());
        self.by_name.insert(name, slot);
        slot
    }

    /// The slot of `name`, if any code or host has mentioned it.
    pub fn find_slot(&self, name: &str) -> Option<u32> {
        if let Some((cached, slot)) = &*self.last_found.borrow()
            && **cached == *name
        {
            return Some(*slot);
        }
        match self.by_name.get_key_value(name) {
            Some((key, &slot)) => {
                *self.last_found.borrow_mut() = Some((key.clone(), slot));
                Some(slot)
            }
            None => self.find_builtin(name),
        }
    }

    /// The slot of builtin name `name`, in a table made with the builtins.
    fn find_builtin(&self, name: &str) -> Option<u32> {
        if self.names.builtins == 0 {
            return None;
        }
        builtin_slot(name)
    }

    /// What `name` means now.
    pub fn lookup(&self, name: &str) -> Binding {
        self.find_slot(name)
            .map_or(Binding::Unbound, |s| self.bindings[s as usize])
    }

    /// Links `program` whose constants start at `constant_base` in the VM's constant table,
    /// and binds its functions (later ones win). Cannot fail: the program is validated.
    pub fn link(&mut self, program: Rc<Program>, constant_base: u32) {
        let slots: Vec<u32> = program.callees().iter().map(|n| self.slot(n)).collect();
        for function in program.functions() {
            let code: Box<[Instruction]> = function
                .code
                .iter()
                .map(|&ins| match ins {
                    Instruction::Ldi { dst, constant } => Instruction::Ldi {
                        dst,
                        constant: constant_base + constant,
                    },
                    Instruction::Call { callee } => Instruction::Call {
                        callee: slots[callee as usize],
                    },
                    Instruction::Jmp { label } => Instruction::Jmp {
                        label: function.label_target(label),
                    },
                    Instruction::JmpEq { label } => Instruction::JmpEq {
                        label: function.label_target(label),
                    },
                    Instruction::JmpNeq { label } => Instruction::JmpNeq {
                        label: function.label_target(label),
                    },
                    Instruction::JmpLt { label } => Instruction::JmpLt {
                        label: function.label_target(label),
                    },
                    Instruction::JmpGt { label } => Instruction::JmpGt {
                        label: function.label_target(label),
                    },
                    other => other,
                })
                .collect();
            let index = self.functions.len() as u32;
            let program_index = self.programs.len() as u32;
            self.functions.push(LinkedFunction {
                program: program_index,
                name: Rc::from(function.name.as_str()),
                ops: lower(
                    &code,
                    |slot| match self.bindings[slot as usize] {
                        Binding::Builtin(b) => Some(b),
                        _ => None,
                    },
                    |c| bool_constant(&program, constant_base, c),
                ),
                code,
                frame_size: function.frame_size(),
                params: function
                    .params
                    .iter()
                    .map(|p| Rc::from(p.as_str()))
                    .collect(),
                param_index: None,
                upvalues: function
                    .upvalues
                    .iter()
                    .map(|u| Rc::from(u.as_str()))
                    .collect(),
            });
            if let Some(f) = self.functions.last_mut() {
                f.index_params();
            }
            let slot = self.slot(&function.name);
            self.bindings[slot as usize] = Binding::Function(index);
        }
        self.constant_ranges
            .push((constant_base, program.constants().len() as u32));
        self.programs.push(program);
    }

    /// Drops the functions no name binds any more, and the programs none of whose functions
    /// is bound, with their constants (`constants` is the VM's constant table, which shrinks
    /// to the live programs' constants; LDI operands are renumbered). Call it only while no
    /// code runs: frames hold function indices. Closures name their function by slot, so
    /// they never keep a replaced function. Does nothing until at least as many functions
    /// are dead as live (and 64), so reloading costs amortised O(1) per function loaded.
    /// Returns whether it compacted.
    pub(crate) fn compact<T: Copy>(&mut self, constants: &mut Vec<T>) -> bool {
        let mut live = vec![false; self.functions.len()];
        for binding in &self.bindings {
            if let Binding::Function(i) = binding {
                live[*i as usize] = true;
            }
        }
        let live_count = live.iter().filter(|l| **l).count();
        if self.functions.len() - live_count < live_count.max(64) {
            return false;
        }
        let mut program_live = vec![false; self.programs.len()];
        for (f, _) in self.functions.iter().zip(&live).filter(|(_, l)| **l) {
            program_live[f.program as usize] = true;
        }
        // The live programs' constants, in load order, and where each program's now start.
        let mut new_constants = Vec::new();
        let mut new_index = vec![u32::MAX; self.programs.len()];
        let mut programs = Vec::new();
        let mut ranges = Vec::new();
        for (p, _) in program_live.iter().enumerate().filter(|(_, l)| **l) {
            let (base, count) = self.constant_ranges[p];
            new_index[p] = programs.len() as u32;
            ranges.push((new_constants.len() as u32, count));
            new_constants.extend_from_slice(&constants[base as usize..(base + count) as usize]);
            programs.push(self.programs[p].clone());
        }
        let bindings = &self.bindings;
        let mut moved_to = vec![u32::MAX; self.functions.len()];
        let mut functions = Vec::with_capacity(live_count);
        for (i, mut f) in std::mem::take(&mut self.functions).into_iter().enumerate() {
            if !live[i] {
                continue;
            }
            let old_base = self.constant_ranges[f.program as usize].0;
            f.program = new_index[f.program as usize];
            let new_base = ranges[f.program as usize].0;
            if new_base != old_base {
                for ins in f.code.iter_mut() {
                    if let Instruction::Ldi { constant, .. } = ins {
                        *constant = *constant - old_base + new_base;
                    }
                }
                let program = &programs[f.program as usize];
                f.ops = lower(
                    &f.code,
                    |slot| match bindings[slot as usize] {
                        Binding::Builtin(b) => Some(b),
                        _ => None,
                    },
                    |c| bool_constant(program, new_base, c),
                );
            }
            moved_to[i] = functions.len() as u32;
            functions.push(f);
        }
        self.functions = functions;
        for binding in &mut self.bindings {
            if let Binding::Function(i) = binding {
                *i = moved_to[*i as usize];
            }
        }
        *constants = new_constants;
        self.programs = programs;
        self.constant_ranges = ranges;
        true
    }
}

/// The Bool that linked constant `c` is, for a program whose constants start at `base`.
fn bool_constant(program: &Program, base: u32, c: u32) -> Option<bool> {
    match program.constants().get(c.checked_sub(base)? as usize)? {
        Constant::Bool(b) => Some(*b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_slots_are_shared_and_names_stay_distinct() {
        let mut code = Code::with_builtins();
        for (i, b) in Builtin::ALL.into_iter().enumerate() {
            assert_eq!(code.find_slot(b.name()), Some(i as u32), "{}", b.name());
            assert_eq!(&code.names[i], b.name());
            assert_eq!(code.lookup(b.name()), Binding::Builtin(b));
            assert!(code.still_builtin(b));
        }
        // A new name gets the next slot; a builtin's name keeps its slot when rebound.
        let first = Builtin::ALL.len() as u32;
        assert_eq!(code.slot("main"), first);
        assert_eq!(code.slot("main"), first);
        assert_eq!(code.names.get(first as usize), Some("main"));
        assert_eq!(code.names.get(first as usize + 1), None);
        assert_eq!(code.names.len(), Builtin::ALL.len() + 1);
        assert_eq!(code.slot("print"), Builtin::Print as u32);
        code.bindings[Builtin::Print as usize] = Binding::Host(0);
        assert!(!code.still_builtin(Builtin::Print));
        assert_eq!(code.find_slot("nothing"), None);
    }

    #[test]
    fn a_table_without_builtins_has_no_builtin_names() {
        let mut code = Code::default();
        assert_eq!(code.find_slot("print"), None);
        assert_eq!(code.slot("print"), 0);
        assert_eq!(code.names.get(0), Some("print"));
        assert_eq!(code.lookup("print"), Binding::Unbound);
    }
}
