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
//! Registers are `u16` (frames are at most [`MAX_FRAME_SIZE`] registers, checked by
//! [`crate::program::Program`]); the loop masks them into a fixed-size window, which is what
//! lets safe Rust access registers without a bounds check.

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
    /// `CMP a, b` then a conditional jump to `target` (the jump's own op follows).
    CmpJump {
        a: R,
        b: R,
        when: Cond,
        target: u16,
    },
    /// Past the last instruction: the function returns.
    End,
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
/// constants global).
pub(crate) fn lower(code: &[Instruction]) -> Box<[Op]> {
    let mut ops: Vec<Op> = code.iter().map(|&ins| lower_one(ins)).collect();
    ops.push(Op::End);
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
        if let Ok(target) = u16::try_from(label) {
            ops[i] = Op::CmpJump {
                a: r(a),
                b: r(b),
                when,
                target,
            };
        }
    }
    ops.into_boxed_slice()
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_indices_and_fuses_compare_and_branch() {
        let code = [
            Instruction::Cmp { a: 1, b: 2 },
            Instruction::JmpLt { label: 3 },
            Instruction::Cmp { a: 1, b: 2 },
            Instruction::Ret { src: 1 },
        ];
        let ops = lower(&code);
        assert_eq!(ops.len(), code.len() + 1);
        assert_eq!(
            ops[0],
            Op::CmpJump {
                a: 1,
                b: 2,
                when: Cond::Lt,
                target: 3
            }
        );
        assert_eq!(ops[1], Op::JmpLt { target: 3 });
        assert_eq!(ops[2], Op::Cmp { a: 1, b: 2 });
        assert_eq!(ops[4], Op::End);
    }

    #[test]
    fn far_targets_stay_unfused() {
        let code = [
            Instruction::Cmp { a: 0, b: 0 },
            Instruction::JmpEq { label: 70_000 },
        ];
        assert_eq!(lower(&code)[0], Op::Cmp { a: 0, b: 0 });
    }
}
