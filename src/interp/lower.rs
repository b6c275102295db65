//! The interpreter's own instruction form: linked code lowered to compact 8-byte ops, with
//! compare-and-branch pairs fused.
//!
//! Lowering keeps one op per instruction, at the same index, plus one [`Op::End`] past the
//! last (falling off the end), so an op index *is* the instruction index: jump targets,
//! error positions and yields need no translation. A fused op stands in place of the first
//! instruction of its pair and the second one stays where it was, which keeps jumps into the
//! middle of a pair correct and lets the loop run only the first half when the instruction
//! budget has room for one instruction only.
//!
//! Builtin calls with their arguments (`PUSHARG o; PUSHARG k; CALL get_field`) lower to one
//! op that reads the registers directly, for the object, array and upvalue builtins and the
//! list builtins `len` and `append` (one value) the StoffelLang compiler emits. Names can be
//! rebound after linking and a frame may have pushed other arguments before, so each such op
//! checks at run time that the name still means the builtin and that no other argument is
//! pending; if not, it runs as the plain first instruction of its sequence.
//!
//! The StoffelLang compiler turns every `if` and `while` condition into eight instructions: it
//! materializes the comparison as a Bool and tests that against `false`
//! (`CMP a, b; JMPcc T; LDI r, false; JMP E; T: LDI r, true; E: LDI s, false; CMP r, s;
//! JMPEQ X`). That whole shape lowers to one op at its first instruction (an [`Op::CmpJump`]
//! whose target is [`CONDITION_TEST`]), which
//! writes what the eight would have written (`r`, `s`, the compare flag) and charges the six or
//! seven instructions the taken path is long.
//!
//! Registers are `u16` (frames are at most [`MAX_FRAME_SIZE`] registers, checked by
//! [`crate::program::Program`]); the loop masks them into a fixed-size window, which is what
//! lets safe Rust access registers without a bounds check.

use super::builtins::Builtin;
use crate::program::{Instruction, MAX_FRAME_SIZE};

/// A register index in an op.
pub(crate) type R = u16;

/// The size of the register window every frame sees (its own registers, then unused ones).
pub(crate) const WINDOW: usize = MAX_FRAME_SIZE as usize;

const _: () = assert!(WINDOW.is_power_of_two() && WINDOW <= 1 << 16);

/// One lowered instruction. Fields as in [`Instruction`], with linked indices: `constant`
/// indexes the VM's constant table, `slot` its name table, `target` the function's ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Ld {
        dst: R,
        offset: i32,
    },
    Ldi {
        dst: R,
        constant: u32,
    },
    Mov {
        dst: R,
        src: R,
    },
    /// `LDI dst, constant` followed by `ADD t, a, dst` (the op after it, which keeps its own
    /// op): how the StoffelLang compiler uses a constant. The inner loop ([`super::fast`])
    /// runs both at once; the general loop runs this as the `LDI` alone. Likewise
    /// [`Op::SubK`], [`Op::MulK`] and [`Op::ModK`].
    AddK {
        dst: R,
        constant: u32,
    },
    /// `LDI` followed by `SUB` of that register (see [`Op::AddK`]).
    SubK {
        dst: R,
        constant: u32,
    },
    /// `LDI` followed by `MUL` by that register (see [`Op::AddK`]).
    MulK {
        dst: R,
        constant: u32,
    },
    /// `LDI` followed by `MOD` by that register (see [`Op::AddK`]).
    ModK {
        dst: R,
        constant: u32,
    },
    /// `MOV dst, src` followed by an `LDI` (the op after it, which keeps its own op): the
    /// compiler's assignment from a temporary and the temporary's reset to `()`. Run as one
    /// op by the inner loop, as the `MOV` alone by the general loop.
    MovLdi {
        dst: R,
        src: R,
    },
    Add {
        dst: R,
        a: R,
        b: R,
    },
    Sub {
        dst: R,
        a: R,
        b: R,
    },
    Mul {
        dst: R,
        a: R,
        b: R,
    },
    Div {
        dst: R,
        a: R,
        b: R,
    },
    Mod {
        dst: R,
        a: R,
        b: R,
    },
    And {
        dst: R,
        a: R,
        b: R,
    },
    Or {
        dst: R,
        a: R,
        b: R,
    },
    Xor {
        dst: R,
        a: R,
        b: R,
    },
    Shl {
        dst: R,
        a: R,
        b: R,
    },
    Shr {
        dst: R,
        a: R,
        b: R,
    },
    Not {
        dst: R,
        src: R,
    },
    Jmp {
        target: u32,
    },
    /// A `JMP` back to the start of a loop whose ops all run in the inner loop
    /// ([`super::fast`]; see `fast::is_simple`): the general loop hands the loop to it there.
    /// `builtins`: the loop has fused builtin ops or [`Op::NewObject`] in it, which only the
    /// inner loop's variant with their arms runs (the other keeps the integer loops' code as
    /// small as it is without them).
    Loop {
        target: u32,
        builtins: bool,
    },
    JmpEq {
        target: u32,
    },
    JmpNeq {
        target: u32,
    },
    JmpLt {
        target: u32,
    },
    JmpGt {
        target: u32,
    },
    Call {
        slot: u32,
    },
    /// A `CALL` of a slot that named `create_object` when the code was loaded: the general
    /// loop runs it as any [`Op::Call`]; the inner loop makes the object itself while the
    /// name still means the builtin, nothing is pending and the memory limit admits it.
    NewObject {
        slot: u32,
    },
    Ret {
        src: R,
    },
    PushArg {
        src: R,
    },
    Cmp {
        a: R,
        b: R,
    },
    /// `CMP a, b` then a conditional jump to `target` (the jump's own op follows). With
    /// `target` [`CONDITION_TEST`]: the compiler's condition shape (see the module comment),
    /// whose `LDI`s and final `JMPEQ` keep their own ops (at +2, +5 and +7), where the fused
    /// op reads its registers and target. (One op kind for both: a separate one made the
    /// dispatch loop's code for every other op slower.)
    CmpJump {
        a: R,
        b: R,
        when: Cond,
        target: u16,
    },
    /// `ADD dst, a, b` followed by a fused [`Op::CmpJump`] (whose op follows): a loop's
    /// counter step, compare and branch back, run as one op when the addition is of two
    /// integers and the budget has room for all three instructions.
    AddCmpJump {
        dst: R,
        a: R,
        b: R,
    },
    /// `PUSHARG obj; PUSHARG key; CALL get_field` (3 instructions).
    GetField {
        obj: R,
        key: R,
    },
    /// `PUSHARG obj; PUSHARG key; PUSHARG value; CALL set_field` (4 instructions).
    SetField {
        obj: R,
        key: R,
        value: R,
    },
    /// `PUSHARG array; PUSHARG value; CALL array_push` (3 instructions), or with `list`
    /// `CALL append` (the StoffelLang compiler's spelling: Unit, not the new length).
    ArrayPush {
        array: R,
        value: R,
        list: bool,
    },
    /// `PUSHARG array; CALL array_length` (2 instructions), or with `list` `CALL len` (which
    /// charges a string's length differently and has its own messages).
    ArrayLength {
        array: R,
        list: bool,
    },
    /// `PUSHARG capacity; CALL create_array` (2 instructions).
    CreateArray {
        capacity: R,
    },
    /// `PUSHARG name; CALL get_upvalue` (2 instructions).
    GetUpvalue {
        name: R,
    },
    /// `PUSHARG name; PUSHARG value; CALL set_upvalue` (3 instructions).
    SetUpvalue {
        name: R,
        value: R,
    },
    /// Past the last instruction: the function returns.
    End,
    /// `NOP`: does nothing.
    Nop,
    /// `LDS dst, slot`: the frame's spill slot (Unit if never written).
    Lds {
        dst: R,
        slot: u32,
    },
    /// `STS slot, src`.
    Sts {
        slot: u32,
        src: R,
    },
}

impl Op {
    /// How many instructions a fused builtin op stands for (0 for other ops).
    pub(crate) fn fused_builtin_length(self) -> u32 {
        match self {
            Op::SetField { .. } => 4,
            Op::GetField { .. } | Op::ArrayPush { .. } | Op::SetUpvalue { .. } => 3,
            Op::ArrayLength { .. } | Op::CreateArray { .. } | Op::GetUpvalue { .. } => 2,
            _ => 0,
        }
    }
}

/// The condition of a fused conditional jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Eq,
    Neq,
    Lt,
    Gt,
}

impl Cond {
    /// Whether the jump is taken for compare flag `cmp`.
    #[inline(always)]
    pub(crate) fn holds(self, cmp: i8) -> bool {
        match self {
            Cond::Eq => cmp == 0,
            Cond::Neq => cmp != 0,
            Cond::Lt => cmp < 0,
            Cond::Gt => cmp > 0,
        }
    }
}

const _: () = assert!(std::mem::size_of::<Op>() == 8);

/// A validated register number as an op register (always fits: see the module comment).
fn r(reg: u32) -> R {
    debug_assert!(reg < MAX_FRAME_SIZE);
    (reg & (MAX_FRAME_SIZE - 1)) as R
}

/// Lowers one function's linked code (jumps already instruction indices, calls slots,
/// constants global). `builtin_at` tells which builtin a call slot names now, if any;
/// `bool_at` which Bool a constant is, if it is one.
pub(crate) fn lower(
    code: &[Instruction],
    builtin_at: impl Fn(u32) -> Option<Builtin>,
    bool_at: impl Fn(u32) -> Option<bool>,
) -> Box<[Op]> {
    let mut ops: Vec<Op> = code.iter().map(|&ins| lower_one(ins)).collect();
    ops.push(Op::End);
    for i in 0..code.len() {
        if let Some(op) = fuse_builtin_call(&code[i..], &builtin_at) {
            ops[i] = op;
        } else if let Op::Call { slot } = ops[i]
            && builtin_at(slot) == Some(Builtin::CreateObject)
        {
            ops[i] = Op::NewObject { slot };
        }
    }
    for i in 0..code.len().saturating_sub(1) {
        let Instruction::Cmp { a, b } = code[i] else {
            continue;
        };
        let (when, label) = match code[i + 1] {
            Instruction::JmpEq { label } => (Cond::Eq, label),
            Instruction::JmpNeq { label } => (Cond::Neq, label),
            Instruction::JmpLt { label } => (Cond::Lt, label),
            Instruction::JmpGt { label } => (Cond::Gt, label),
            _ => continue,
        };
        if let Ok(target) = u16::try_from(label)
            && target != CONDITION_TEST
        {
            ops[i] = Op::CmpJump {
                a: r(a),
                b: r(b),
                when,
                target,
            };
            if let Some(i) = i.checked_sub(1)
                && let Op::Add { dst, a, b } = ops[i]
            {
                ops[i] = Op::AddCmpJump { dst, a, b };
            }
        }
    }
    for i in 0..code.len() {
        if let Some(op) = condition_test(&code[i..], i, &bool_at) {
            ops[i] = op;
            // An ADD just before stays plain: its fused form expects a CmpJump after it.
            if let Some(i) = i.checked_sub(1)
                && let Op::AddCmpJump { dst, a, b } = ops[i]
            {
                ops[i] = Op::Add { dst, a, b };
            }
        }
    }
    super::fast::mark(&mut ops);
    ops.into_boxed_slice()
}

/// The [`Op::CmpJump`] target that marks the compiler's condition shape (never a real
/// target: such a compare and branch stays unfused).
pub(crate) const CONDITION_TEST: u16 = u16::MAX;

/// The compare flag `CMP r, s` leaves for Bools `r` and `s` (`false < true`, as
/// `ops::compare` orders them).
pub(crate) const TRUE_VS_FALSE: i8 = 1;
pub(crate) const FALSE_VS_FALSE: i8 = 0;

/// The condition shape's op if `code` (starting at instruction `at`) starts with the compiler's
/// condition shape: `CMP a, b; JMPcc at+4; LDI r, false; JMP at+5; LDI r, true;
/// LDI s, false; CMP r, s; JMPEQ X`, with `r` and `s` different registers.
fn condition_test(
    code: &[Instruction],
    at: usize,
    bool_at: impl Fn(u32) -> Option<bool>,
) -> Option<Op> {
    use Instruction as I;
    let [
        I::Cmp { a, b },
        branch,
        I::Ldi {
            dst: bool_reg,
            constant: r_false,
        },
        I::Jmp { label: end },
        I::Ldi {
            dst: bool_again,
            constant: r_true,
        },
        I::Ldi {
            dst: false_reg,
            constant: s_false,
        },
        I::Cmp {
            a: tested,
            b: against,
        },
        I::JmpEq { .. },
        ..,
    ] = *code
    else {
        return None;
    };
    let (when, label) = match branch {
        I::JmpEq { label } => (Cond::Eq, label),
        I::JmpNeq { label } => (Cond::Neq, label),
        I::JmpLt { label } => (Cond::Lt, label),
        I::JmpGt { label } => (Cond::Gt, label),
        _ => return None,
    };
    let shape = label as usize == at + 4
        && end as usize == at + 5
        && bool_reg == bool_again
        && bool_reg != false_reg
        && (tested, against) == (bool_reg, false_reg)
        && bool_at(r_false) == Some(false)
        && bool_at(r_true) == Some(true)
        && bool_at(s_false) == Some(false);
    shape.then_some(Op::CmpJump {
        a: r(a),
        b: r(b),
        when,
        target: CONDITION_TEST,
    })
}

/// The fused op for a builtin call that starts `code`, if it starts with one.
fn fuse_builtin_call(
    code: &[Instruction],
    builtin_at: impl Fn(u32) -> Option<Builtin>,
) -> Option<Op> {
    use Instruction::{Call, PushArg};
    let called = |at: usize| match code.get(at) {
        Some(&Call { callee }) => builtin_at(callee),
        _ => None,
    };
    let pushed = |at: usize| match code.get(at) {
        Some(&PushArg { src }) => Some(r(src)),
        _ => None,
    };
    let first = pushed(0)?;
    match called(1) {
        Some(b @ (Builtin::ArrayLength | Builtin::Len)) => {
            let list = b == Builtin::Len;
            return Some(Op::ArrayLength { array: first, list });
        }
        Some(Builtin::CreateArray) => return Some(Op::CreateArray { capacity: first }),
        Some(Builtin::GetUpvalue) => return Some(Op::GetUpvalue { name: first }),
        _ => {}
    }
    let second = pushed(1)?;
    match called(2) {
        Some(Builtin::GetField) => {
            return Some(Op::GetField {
                obj: first,
                key: second,
            });
        }
        Some(b @ (Builtin::ArrayPush | Builtin::Append)) => {
            return Some(Op::ArrayPush {
                array: first,
                value: second,
                list: b == Builtin::Append,
            });
        }
        Some(Builtin::SetUpvalue) => {
            return Some(Op::SetUpvalue {
                name: first,
                value: second,
            });
        }
        _ => {}
    }
    let third = pushed(2)?;
    (called(3) == Some(Builtin::SetField)).then_some(Op::SetField {
        obj: first,
        key: second,
        value: third,
    })
}

fn lower_one(ins: Instruction) -> Op {
    use Instruction as I;
    match ins {
        I::Ld { dst, offset } => Op::Ld {
            dst: r(dst),
            offset,
        },
        I::Ldi { dst, constant } => Op::Ldi {
            dst: r(dst),
            constant,
        },
        I::Mov { dst, src } => Op::Mov {
            dst: r(dst),
            src: r(src),
        },
        I::Not { dst, src } => Op::Not {
            dst: r(dst),
            src: r(src),
        },
        I::Add { dst, a, b } => Op::Add {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Sub { dst, a, b } => Op::Sub {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Mul { dst, a, b } => Op::Mul {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Div { dst, a, b } => Op::Div {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Mod { dst, a, b } => Op::Mod {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::And { dst, a, b } => Op::And {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Or { dst, a, b } => Op::Or {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Xor { dst, a, b } => Op::Xor {
            dst: r(dst),
            a: r(a),
            b: r(b),
        },
        I::Shl { dst, src, amount } => Op::Shl {
            dst: r(dst),
            a: r(src),
            b: r(amount),
        },
        I::Shr { dst, src, amount } => Op::Shr {
            dst: r(dst),
            a: r(src),
            b: r(amount),
        },
        I::Jmp { label } => Op::Jmp { target: label },
        I::JmpEq { label } => Op::JmpEq { target: label },
        I::JmpNeq { label } => Op::JmpNeq { target: label },
        I::JmpLt { label } => Op::JmpLt { target: label },
        I::JmpGt { label } => Op::JmpGt { target: label },
        I::Call { callee } => Op::Call { slot: callee },
        I::Ret { src } => Op::Ret { src: r(src) },
        I::PushArg { src } => Op::PushArg { src: r(src) },
        I::Cmp { a, b } => Op::Cmp { a: r(a), b: r(b) },
        I::Nop => Op::Nop,
        I::Lds { dst, slot } => Op::Lds { dst: r(dst), slot },
        I::Sts { slot, src } => Op::Sts { slot, src: r(src) },
    }
}

#[cfg(test)]
#[path = "lower_tests.rs"]
mod tests;
