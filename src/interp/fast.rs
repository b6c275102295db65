//! The inner loop: runs the running frame's simple ops (register moves, integer arithmetic,
//! compares and jumps, `PUSHARG` with room) until one that needs the general loop, and the
//! marks lowering gives it ([`mark`]).
//!
//! Why two loops: the general loop in `dispatch` has ~40 arms (calls, returns, builtins,
//! errors, memory waits), and the machine registers that hold its state are shared by all of
//! them, so every op pays for the rare ones, and fusing more ops there made every row slower
//! (BENCHMARKS.md). This loop has only the common cases of the simple ops, and nothing that
//! can fail: anything else (another op, a non-integer operand, an overflow, a budget too short
//! for a pair) ends it *before* that op, which the general loop then runs with its full
//! semantics. Each op here does exactly what the general loop's arm does on the same path
//! and charges the same budget, so where the boundary falls changes nothing a program can
//! observe. Here, and only here, the compiler's statement pairs run as one op.
//!
//! The fused `get_field`, `set_field`, `array_push`/`append` and `array_length`/`len` ops
//! count as simple too: their common cases (a read, a write or push that needs no memory, a
//! length) run here through the same code the general loop runs them with
//! (`builtins::common_case`), and the rest is handed back like any other op. So does
//! `create_object` ([`Op::NewObject`]), made here when the memory limit admits it.
//!
//! The general loop enters this one at the jump back of a loop made only of simple ops
//! ([`Op::Loop`]): such a loop then runs here until it ends. Loops with calls or other
//! builtins in them stay in the general loop, as does straight-line code: entering costs a
//! call, more than a few simple ops save.

use gc_arena::Mutation;

use super::builtins::{self, Builtin, Common, common_case, may_fuse};
use super::call::Window;
use super::code::{Binding, Code};
use super::lower::{CONDITION_TEST, FALSE_VS_FALSE, TRUE_VS_FALSE};
use super::stack::Calls;
use super::{Op, Runtime, WINDOW};
use crate::value::Value;

/// A register of the running frame's window.
macro_rules! reg {
    ($regs:expr, $r:expr) => {
        $regs[($r as usize) & (WINDOW - 1)]
    };
}

/// The state the loops hand each other: next op, budget left, compare flag.
pub(super) type Cursor = (usize, u32, i8);

/// Runs simple ops from `ip` while the budget lasts; returns where it stopped (the op there,
/// if any, has not run and is not charged). `calls` has the running frame on top and the
/// pending arguments. (The call stack whole rather than the pending stack and the frame's
/// base: with that one argument more at the general loop's `Op::Loop` arm, the general loop
/// ran hand-written array code with 1.5% more instructions.)
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(super) fn run_simple<'gc, const BUILTINS: bool>(
    mc: &Mutation<'gc>,
    code: &Code,
    rt: &mut Runtime,
    regs: &mut Window<'gc>,
    ops: &[Op],
    constants: &[Value<'gc>],
    calls: &mut Calls<'gc>,
    (mut ip, mut left, mut cmp): Cursor,
) -> Cursor {
    let pending_base = calls.frames.last().map_or(usize::MAX, |f| f.pending_base());
    let pending = &mut calls.pending;
    // An integer op's fast path, or stop.
    macro_rules! int_op {
        ($dst:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $fast:expr) => {{
            if let (&Value::I64($x), &Value::I64($y)) = (&reg!(regs, $a), &reg!(regs, $b))
                && let Some(v) = $fast
            {
                reg!(regs, $dst) = Value::I64(v);
            } else {
                break;
            }
        }};
    }
    macro_rules! int_cmp {
        ($a:expr, $b:expr) => {
            match (&reg!(regs, $a), &reg!(regs, $b)) {
                (Value::I64(x), Value::I64(y)) => x.cmp(y) as i8,
                _ => break,
            }
        };
    }
    // `LDI k, c` and the integer op after it that uses `k` as its second operand (see
    // `Op::AddK`), at once when both surely succeed; else the LDI alone.
    macro_rules! with_constant {
        ($k:expr, $constant:expr, $next:path, |$x:ident, $y:ident| $fast:expr) => {{
            let Some(&c) = constants.get($constant as usize) else {
                break;
            };
            reg!(regs, $k) = c;
            if left >= 2
                && let Some(&$next { dst, a, .. }) = ops.get(ip + 1)
                && let (&Value::I64($x), Value::I64($y)) = (&reg!(regs, a), c)
                && let Some(v) = $fast
            {
                reg!(regs, dst) = Value::I64(v);
                left -= 2;
                ip += 2;
                continue;
            }
        }};
    }
    while left > 0 {
        let Some(&op) = ops.get(ip) else { break };
        match op {
            Op::Ldi { dst, constant } => {
                let Some(&v) = constants.get(constant as usize) else {
                    break;
                };
                reg!(regs, dst) = v;
            }
            Op::Mov { dst, src } => reg!(regs, dst) = copy(&reg!(regs, src)),
            Op::MovLdi { dst, src } => {
                reg!(regs, dst) = copy(&reg!(regs, src));
                if left >= 2
                    && let Some(
                        &(Op::Ldi { dst, constant }
                        | Op::AddK { dst, constant }
                        | Op::SubK { dst, constant }
                        | Op::MulK { dst, constant }
                        | Op::ModK { dst, constant }),
                    ) = ops.get(ip + 1)
                    && let Some(&v) = constants.get(constant as usize)
                {
                    reg!(regs, dst) = v;
                    left -= 2;
                    ip += 2;
                    continue;
                }
            }
            Op::AddK { dst, constant } => {
                with_constant!(dst, constant, Op::Add, |x, y| x.checked_add(y))
            }
            Op::SubK { dst, constant } => {
                with_constant!(dst, constant, Op::Sub, |x, y| x.checked_sub(y))
            }
            Op::MulK { dst, constant } => {
                with_constant!(dst, constant, Op::Mul, |x, y| x.checked_mul(y))
            }
            Op::ModK { dst, constant } => {
                with_constant!(dst, constant, Op::Mod, |x, y| (y > 0).then(|| x % y))
            }
            Op::Add { dst, a, b } => int_op!(dst, a, b, |x, y| x.checked_add(y)),
            Op::Sub { dst, a, b } => int_op!(dst, a, b, |x, y| x.checked_sub(y)),
            Op::Mul { dst, a, b } => int_op!(dst, a, b, |x, y| x.checked_mul(y)),
            Op::Mod { dst, a, b } => int_op!(dst, a, b, |x, y| (y > 0).then(|| x % y)),
            Op::And { dst, a, b } => int_op!(dst, a, b, |x, y| Some(x & y)),
            Op::Or { dst, a, b } => int_op!(dst, a, b, |x, y| Some(x | y)),
            Op::Xor { dst, a, b } => int_op!(dst, a, b, |x, y| Some(x ^ y)),
            Op::Cmp { a, b } => cmp = int_cmp!(a, b),
            Op::CmpJump { a, b, when, target } if target != CONDITION_TEST && left >= 2 => {
                cmp = int_cmp!(a, b);
                left -= 2;
                ip = if when.holds(cmp) {
                    target as usize
                } else {
                    ip + 2
                };
                continue;
            }
            Op::CmpJump { a, b, when, .. } if left >= 7 => {
                // The compiler's condition shape (see `lower`): CMP, JMPcc, LDI r, false, JMP,
                // LDI r, true, LDI s, false, CMP r, s, JMPEQ X.
                let (
                    Some(&Op::Ldi { dst: tested, .. }),
                    Some(&Op::Ldi { dst: against, .. }),
                    Some(&Op::JmpEq { target }),
                ) = (ops.get(ip + 2), ops.get(ip + 5), ops.get(ip + 7))
                else {
                    break;
                };
                let holds = when.holds(int_cmp!(a, b));
                reg!(regs, tested) = Value::Bool(holds);
                reg!(regs, against) = Value::Bool(false);
                if holds {
                    // CMP, JMPcc, LDI true, LDI false, CMP, JMPEQ (not taken).
                    (ip, left, cmp) = (ip + 8, left - 6, TRUE_VS_FALSE);
                } else {
                    // CMP, JMPcc, LDI false, JMP, LDI false, CMP, JMPEQ.
                    (ip, left, cmp) = (target as usize, left - 7, FALSE_VS_FALSE);
                }
                continue;
            }
            Op::AddCmpJump { dst, a, b } => {
                // The counter step, then the CmpJump after it (see `lower`), at once.
                int_op!(dst, a, b, |x, y| x.checked_add(y));
                if let Some(&Op::CmpJump { a, b, when, target }) = ops.get(ip + 1)
                    && target != CONDITION_TEST
                    && left >= 3
                    && let (Value::I64(x), Value::I64(y)) = (&reg!(regs, a), &reg!(regs, b))
                {
                    // (Once the sum is written, nothing here may stop the loop.)
                    cmp = x.cmp(y) as i8;
                    left -= 3;
                    ip = if when.holds(cmp) {
                        target as usize
                    } else {
                        ip + 3
                    };
                    continue;
                }
            }
            Op::Jmp { target } | Op::Loop { target, .. } => {
                left -= 1;
                ip = target as usize;
                continue;
            }
            Op::JmpEq { target } if cmp == 0 => {
                left -= 1;
                ip = target as usize;
                continue;
            }
            Op::JmpNeq { target } if cmp != 0 => {
                left -= 1;
                ip = target as usize;
                continue;
            }
            Op::JmpLt { target } if cmp < 0 => {
                left -= 1;
                ip = target as usize;
                continue;
            }
            Op::JmpGt { target } if cmp > 0 => {
                left -= 1;
                ip = target as usize;
                continue;
            }
            Op::JmpEq { .. } | Op::JmpNeq { .. } | Op::JmpLt { .. } | Op::JmpGt { .. } => {}
            Op::PushArg { src } if pending.len() < pending.capacity() => {
                pending.push(copy(&reg!(regs, src)));
            }
            // The fused builtin ops' common cases, exactly as the general loop runs them
            // (which charges no lookup work for these).
            Op::GetField { .. }
            | Op::SetField { .. }
            | Op::ArrayPush { .. }
            | Op::ArrayLength { .. }
                if BUILTINS =>
            {
                let alone = may_fuse(pending, pending.capacity(), pending_base);
                let len = fused(op, mc, code, regs, left, alone);
                if len == 0 {
                    break;
                }
                left -= len;
                ip += len as usize;
                continue;
            }
            Op::NewObject { slot } if BUILTINS && pending.len() == pending_base => {
                if !new_object(mc, code, rt, regs, slot) {
                    break;
                }
            }
            Op::Nop => {}
            _ => break,
        }
        left -= 1;
        ip += 1;
    }
    (ip, left, cmp)
}

/// `CALL create_object` with nothing pending, as the general loop runs it, if the name still
/// means the builtin and the memory limit admits the object; false (nothing done: a refusal
/// is asked again, and waited on, by the general loop) otherwise.
#[inline(never)]
fn new_object<'gc>(
    mc: &Mutation<'gc>,
    code: &Code,
    rt: &mut Runtime,
    regs: &mut Window<'gc>,
    slot: u32,
) -> bool {
    if code.bindings.get(slot as usize) != Some(&Binding::Builtin(Builtin::CreateObject)) {
        return false;
    }
    match builtins::create_object(mc, rt) {
        Ok(object) => {
            regs[0] = object;
            true
        }
        Err(_) => false,
    }
}

/// A fused builtin op's common case ([`common_case`]): the instructions it ran as, or 0 if
/// it did not run. Out of line: inlined, it made the simple ops slower (the compiled integer
/// loop ran 4.5% more instructions, for 12% fewer in the compiled array loop).
#[inline(never)]
fn fused<'gc>(
    op: Op,
    mc: &Mutation<'gc>,
    code: &Code,
    regs: &mut Window<'gc>,
    left: u32,
    alone: bool,
) -> u32 {
    match common_case(op, mc, code, regs, left, alone) {
        Common::Ran(len) => len,
        _ => 0,
    }
}

/// Marks what the inner loop runs at once: the compiler's statement pairs
/// ([`Op::AddK`] and its kin, [`Op::MovLdi`]) and the jumps back of simple loops
/// ([`Op::Loop`]). Called by lowering, after its other fusions.
pub(super) fn mark(ops: &mut [Op]) {
    statement_pairs(ops);
    simple_loops(ops);
}

/// Marks the compiler's statement pairs for the inner loop: an `LDI` whose register the next
/// op uses as its second operand of `ADD`/`SUB`/`MUL`/`MOD`, and a `MOV` followed by an
/// `LDI`. Each mark stands in place of the first instruction only: the second keeps its op,
/// so jumps to it, and the general loop, which runs a mark as its first instruction, are
/// unaffected.
fn statement_pairs(ops: &mut [Op]) {
    for i in 0..ops.len().saturating_sub(1) {
        ops[i] = match (ops[i], ops[i + 1]) {
            (Op::Ldi { dst, constant }, Op::Add { b, .. }) if b == dst => {
                Op::AddK { dst, constant }
            }
            (Op::Ldi { dst, constant }, Op::Sub { b, .. }) if b == dst => {
                Op::SubK { dst, constant }
            }
            (Op::Ldi { dst, constant }, Op::Mul { b, .. }) if b == dst => {
                Op::MulK { dst, constant }
            }
            (Op::Ldi { dst, constant }, Op::Mod { b, .. }) if b == dst => {
                Op::ModK { dst, constant }
            }
            (Op::Mov { dst, src }, Op::Ldi { .. }) => Op::MovLdi { dst, src },
            (op, _) => op,
        };
    }
}

/// Whether the inner loop ([`super::fast`]) runs `op` (at least on its common path).
fn is_simple(op: Op) -> bool {
    matches!(
        op,
        Op::Ldi { .. }
            | Op::Mov { .. }
            | Op::AddK { .. }
            | Op::SubK { .. }
            | Op::MulK { .. }
            | Op::ModK { .. }
            | Op::MovLdi { .. }
            | Op::Add { .. }
            | Op::Sub { .. }
            | Op::Mul { .. }
            | Op::Mod { .. }
            | Op::And { .. }
            | Op::Or { .. }
            | Op::Xor { .. }
            | Op::Cmp { .. }
            | Op::CmpJump { .. }
            | Op::AddCmpJump { .. }
            | Op::Jmp { .. }
            | Op::Loop { .. }
            | Op::JmpEq { .. }
            | Op::JmpNeq { .. }
            | Op::JmpLt { .. }
            | Op::JmpGt { .. }
            | Op::Nop
            | Op::GetField { .. }
            | Op::SetField { .. }
            | Op::ArrayPush { .. }
            | Op::ArrayLength { .. }
            | Op::NewObject { .. }
    )
}

/// Whether `op` is one of the builtin ops the inner loop runs (only its variant for loops
/// with builtins has their arms).
fn is_builtin(op: Op) -> bool {
    matches!(
        op,
        Op::GetField { .. }
            | Op::SetField { .. }
            | Op::ArrayPush { .. }
            | Op::ArrayLength { .. }
            | Op::NewObject { .. }
    )
}

/// Turns the `JMP` back of every loop made of simple ops only into an [`Op::Loop`]. Loops
/// with a call or another builtin in them stay in the general loop: they would leave the
/// inner loop at every iteration, and entering it costs more than it saves.
fn simple_loops(ops: &mut [Op]) {
    // other_before[i]: how many ops before i are not simple (linear time, however many loops).
    // The PUSHARGs and CALL a fused builtin op stands for follow it unchanged; a loop that
    // runs the op runs them only through it, so they do not count.
    // builtins_before[i]: how many of them are builtin ops the inner loop runs.
    let mut other_before = Vec::with_capacity(ops.len() + 1);
    let mut builtins_before = Vec::with_capacity(ops.len() + 1);
    let (mut others, mut builtins) = (0u32, 0u32);
    let mut covered = 0;
    other_before.push(0);
    builtins_before.push(0);
    for &op in ops.iter() {
        if covered > 0 {
            covered -= 1;
        } else {
            others += u32::from(!is_simple(op));
            if is_simple(op) {
                covered = op.fused_builtin_length().saturating_sub(1);
                builtins += u32::from(is_builtin(op));
            }
        }
        other_before.push(others);
        builtins_before.push(builtins);
    }
    for i in 0..ops.len() {
        if let Op::Jmp { target } = ops[i]
            && (target as usize) <= i
            && other_before[i + 1] == other_before[target as usize]
        {
            let builtins = builtins_before[i + 1] != builtins_before[target as usize];
            ops[i] = Op::Loop { target, builtins };
        }
    }
}

/// A register's value, read field by field when it is an integer. An integer op writes its
/// result as two stores (tag, payload); copying the register whole right after is a 16-byte
/// load the CPU cannot forward from those stores, and it waits until they reach the cache
/// (the compiler's `MOV x, t` after every statement is exactly that). Two narrow loads are
/// forwarded. (`black_box` keeps the optimizer from merging them back into one wide copy;
/// the compiled integer loop ran 9% faster with it.)
#[inline(always)]
fn copy<'gc>(v: &Value<'gc>) -> Value<'gc> {
    match *v {
        Value::I64(x) => Value::I64(std::hint::black_box(x)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldi(dst: u16, constant: u32) -> Op {
        Op::Ldi { dst, constant }
    }

    #[test]
    fn marks_the_statement_pairs_at_their_first_op() {
        let mut ops = vec![
            ldi(5, 7),
            Op::Mod { dst: 4, a: 4, b: 5 },
            Op::Mov { dst: 2, src: 4 },
            ldi(4, 0),
            ldi(4, 1),
            Op::Add { dst: 4, a: 3, b: 4 },
            // The constant as the first operand: not a pair.
            ldi(6, 1),
            Op::Sub { dst: 4, a: 6, b: 3 },
            Op::End,
        ];
        mark(&mut ops);
        assert_eq!(
            ops[0],
            Op::ModK {
                dst: 5,
                constant: 7
            }
        );
        assert_eq!(ops[1], Op::Mod { dst: 4, a: 4, b: 5 });
        assert_eq!(ops[2], Op::MovLdi { dst: 2, src: 4 });
        // A pair's second op keeps its own op (jumps may land on it), and may start a pair.
        assert_eq!(ops[3], ldi(4, 0));
        assert_eq!(
            ops[4],
            Op::AddK {
                dst: 4,
                constant: 1
            }
        );
        assert_eq!(ops[6], ldi(6, 1));
    }

    #[test]
    fn only_loops_of_simple_ops_are_handed_to_the_inner_loop() {
        let mut ops = vec![
            Op::Add { dst: 1, a: 1, b: 2 },
            Op::Jmp { target: 0 },
            Op::PushArg { src: 1 },
            Op::Call { slot: 0 },
            Op::Jmp { target: 2 },
            // Forward: not a loop.
            Op::Jmp { target: 7 },
            Op::Jmp { target: 5 },
            Op::End,
        ];
        mark(&mut ops);
        assert_eq!(
            ops[1],
            Op::Loop {
                target: 0,
                builtins: false
            }
        );
        assert_eq!(ops[4], Op::Jmp { target: 2 });
        assert_eq!(ops[5], Op::Jmp { target: 7 });
        assert_eq!(
            ops[6],
            Op::Loop {
                target: 5,
                builtins: false
            }
        );
    }

    #[test]
    fn loops_with_the_fused_list_and_field_builtins_are_handed_to_the_inner_loop() {
        // A fused op stands in place of its first PUSHARG; the PUSHARGs and CALL after it
        // stay, and do not keep the loop in the general loop.
        let mut ops = vec![
            Op::GetField { obj: 1, key: 2 },
            Op::PushArg { src: 2 },
            Op::Call { slot: 0 },
            Op::SetField {
                obj: 1,
                key: 2,
                value: 3,
            },
            Op::PushArg { src: 2 },
            Op::PushArg { src: 3 },
            Op::Call { slot: 1 },
            Op::ArrayPush {
                array: 1,
                value: 3,
                list: true,
            },
            Op::PushArg { src: 3 },
            Op::Call { slot: 2 },
            Op::ArrayLength {
                array: 1,
                list: false,
            },
            Op::Call { slot: 3 },
            Op::Jmp { target: 0 },
            // Builtins that allocate or look names up stay in the general loop.
            Op::CreateArray { capacity: 1 },
            Op::Call { slot: 4 },
            Op::Jmp { target: 13 },
            Op::GetUpvalue { name: 1 },
            Op::Call { slot: 5 },
            Op::Jmp { target: 16 },
            // So does a CALL not covered by a fused op.
            Op::ArrayLength {
                array: 1,
                list: true,
            },
            Op::Call { slot: 6 },
            Op::PushArg { src: 1 },
            Op::Call { slot: 7 },
            Op::Jmp { target: 19 },
            Op::End,
        ];
        mark(&mut ops);
        assert_eq!(
            ops[12],
            Op::Loop {
                target: 0,
                builtins: true
            }
        );
        assert_eq!(ops[15], Op::Jmp { target: 13 });
        assert_eq!(ops[18], Op::Jmp { target: 16 });
        assert_eq!(ops[23], Op::Jmp { target: 19 });
    }

    #[test]
    fn loops_that_make_objects_are_handed_to_the_inner_loop() {
        let mut ops = vec![
            Op::NewObject { slot: 0 },
            Op::Mov { dst: 1, src: 0 },
            Op::Jmp { target: 0 },
            // Another call keeps a loop in the general loop.
            Op::NewObject { slot: 0 },
            Op::Call { slot: 1 },
            Op::Jmp { target: 3 },
            Op::End,
        ];
        mark(&mut ops);
        assert_eq!(
            ops[2],
            Op::Loop {
                target: 0,
                builtins: true
            }
        );
        assert_eq!(ops[5], Op::Jmp { target: 3 });
    }

    #[test]
    fn marking_many_loops_takes_linear_time() {
        // 200k jumps back over a 200k-op body: a per-loop scan would take 4e10 steps.
        let n = 200_000u32;
        let mut ops = vec![Op::Nop; n as usize];
        ops.extend((0..n).map(|_| Op::Jmp { target: 0 }));
        ops.push(Op::End);
        let start = std::time::Instant::now();
        mark(&mut ops);
        assert!(ops[n as usize..2 * n as usize].iter().all(|&op| op
            == Op::Loop {
                target: 0,
                builtins: false
            }));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
