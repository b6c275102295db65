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

use super::builtins::Builtin;
use super::{Op, lower};
use crate::program::{Instruction, Program};

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
    /// Names captured at call time.
    pub upvalues: Box<[Rc<str>]>,
}

/// The VM's linked code and name table.
#[derive(Default, Debug)]
pub struct Code {
    /// Every function ever loaded (replaced ones stay, unreachable by name).
    pub functions: Vec<LinkedFunction>,
    /// The current meaning of each slot.
    pub bindings: Vec<Binding>,
    /// Each slot's name.
    pub names: Vec<Rc<str>>,
    by_name: HashMap<Rc<str>, u32>,
    /// The last name found, so a host calling the same function again and again skips the
    /// hash (a name's slot never changes, so this never goes stale).
    last_found: std::cell::RefCell<Option<(Rc<str>, u32)>>,
    /// Loaded programs, in load order (for disassembly).
    pub programs: Vec<Rc<Program>>,
    /// The slot of each builtin's name, in [`Builtin::ALL`] order.
    builtin_slots: [u32; Builtin::ALL.len()],
}

impl Code {
    /// A table with every builtin bound.
    pub fn with_builtins() -> Code {
        let mut code = Code::default();
        for (i, b) in Builtin::ALL.into_iter().enumerate() {
            let slot = code.slot(b.name());
            code.bindings[slot as usize] = Binding::Builtin(b);
            code.builtin_slots[i] = slot;
        }
        code
    }

    /// Whether the name of builtin `b` still means `b` (a host or a program may rebind it).
    #[inline]
    pub(crate) fn still_builtin(&self, b: Builtin) -> bool {
        let slot = self.builtin_slots[b as usize];
        self.bindings.get(slot as usize) == Some(&Binding::Builtin(b))
    }

    /// The slot of `name`, created unbound if new.
    pub fn slot(&mut self, name: &str) -> u32 {
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
        let (key, &slot) = self.by_name.get_key_value(name)?;
        *self.last_found.borrow_mut() = Some((key.clone(), slot));
        Some(slot)
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
            self.functions.push(LinkedFunction {
                name: Rc::from(function.name.as_str()),
                ops: lower(&code, |slot| match self.bindings[slot as usize] {
                    Binding::Builtin(b) => Some(b),
                    _ => None,
                }),
                code,
                frame_size: function.frame_size(),
                params: function
                    .params
                    .iter()
                    .map(|p| Rc::from(p.as_str()))
                    .collect(),
                upvalues: function
                    .upvalues
                    .iter()
                    .map(|u| Rc::from(u.as_str()))
                    .collect(),
            });
            let slot = self.slot(&function.name);
            self.bindings[slot as usize] = Binding::Function(index);
        }
        self.programs.push(program);
    }
}
