//! Pairs of instructions the StoffelLang compiler emits around every statement, fused so the
//! dispatch loop runs each pair as one op.
//!
//! The compiler evaluates an expression into a temporary, moves it to the variable and then
//! loads `()` into the temporary (`MOV x, t; LDI t, ()`), loads every constant operand into a
//! register just before its use (`LDI k, 1; ADD t, i, k`), and ends a loop body by clearing a
//! temporary before jumping back (`LDI t, (); JMP loop`). Counted in the compiled integer
//! loop, these pairs are 8 of its 17 instructions.
//!
//! Each fused op stands in place of the first instruction of its pair, and the second keeps
//! its own op (as [`super::lower`] does for every fusion), so a jump into the middle of a pair
//! is still correct. The loop runs the pair only when the budget has room for both
//! instructions, and for [`Op::LdiArith`] only when the arithmetic is of two integers and
//! cannot fail; otherwise it runs the first instruction alone, and the second runs as its own
//! op, with every error, limit and trace exactly as without fusion.

use super::lower::Op;
use crate::program::Instruction;

/// Fuses the pairs in `ops` (lowered from `code`, one op per instruction plus the final
/// `End`), where both instructions still have their plain ops. `unit_at` tells whether a
/// constant is `()`, `int_at` whether it is an I64.
pub(super) fn fuse_pairs(
    code: &[Instruction],
    ops: &mut [Op],
    plain: impl Fn(Instruction) -> Op,
    unit_at: impl Fn(u32) -> bool,
    int_at: impl Fn(u32) -> bool,
) {
    for i in 0..code.len().saturating_sub(1) {
        let (first, second) = (code[i], code[i + 1]);
        if ops[i] != plain(first) || ops[i + 1] != plain(second) {
            continue;
        }
        let fused = match (ops[i], ops[i + 1]) {
            (
                Op::Mov { dst, src },
                Op::Ldi {
                    dst: cleared,
                    constant,
                },
            ) if cleared == src && unit_at(constant) => Some(Op::MovClear { dst, src }),
            (Op::Ldi { dst, constant }, Op::Jmp { target }) if unit_at(constant) => {
                Some(Op::ClearJmp { dst, target })
            }
            (
                Op::Ldi { dst, constant },
                Op::Add { b, .. } | Op::Sub { b, .. } | Op::Mul { b, .. } | Op::Mod { b, .. },
            ) if b == dst && int_at(constant) => Some(Op::LdiArith { dst, constant }),
            _ => None,
        };
        if let Some(op) = fused {
            ops[i] = op;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ins: Instruction) -> Op {
        super::super::lower::lower_one(ins)
    }

    #[test]
    fn fuses_the_compilers_statement_pairs_and_keeps_the_second_op() {
        // Constant 0 is (), 1 is the integer 1.
        let code = [
            Instruction::Ldi {
                dst: 4,
                constant: 1,
            },
            Instruction::Add { dst: 4, a: 3, b: 4 },
            Instruction::Mov { dst: 3, src: 4 },
            Instruction::Ldi {
                dst: 4,
                constant: 0,
            },
            Instruction::Jmp { label: 0 },
        ];
        let mut ops: Vec<Op> = code.iter().map(|&i| plain(i)).collect();
        ops.push(Op::End);
        fuse_pairs(&code, &mut ops, plain, |c| c == 0, |c| c == 1);
        assert_eq!(
            ops[0],
            Op::LdiArith {
                dst: 4,
                constant: 1
            }
        );
        assert_eq!(ops[1], plain(code[1]));
        assert_eq!(ops[2], Op::MovClear { dst: 3, src: 4 });
        // The LDI () is the second of the MOV's pair and the first of the JMP's: both fuse.
        assert_eq!(ops[3], Op::ClearJmp { dst: 4, target: 0 });
        assert_eq!(ops[4], plain(code[4]));
    }

    #[test]
    fn leaves_lookalikes_alone() {
        let code = [
            // The constant is not an integer.
            Instruction::Ldi {
                dst: 4,
                constant: 0,
            },
            Instruction::Add { dst: 4, a: 3, b: 4 },
            // The loaded register is not the second operand.
            Instruction::Ldi {
                dst: 5,
                constant: 1,
            },
            Instruction::Add { dst: 4, a: 5, b: 4 },
            // The cleared register is not the one moved from.
            Instruction::Mov { dst: 3, src: 4 },
            Instruction::Ldi {
                dst: 3,
                constant: 0,
            },
        ];
        let mut ops: Vec<Op> = code.iter().map(|&i| plain(i)).collect();
        ops.push(Op::End);
        let before = ops.clone();
        fuse_pairs(&code, &mut ops, plain, |c| c == 0, |c| c == 1);
        assert_eq!(ops, before);
    }
}
