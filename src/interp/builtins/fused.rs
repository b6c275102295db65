//! The fused builtin ops: `PUSHARG …; CALL builtin` run as one op when the name still means
//! the builtin (see `lower`), with the common cases, which cannot fail, inline and the rest
//! through the builtin's own code.

use gc_arena::Mutation;

use super::super::call::Window;
use super::super::code::Code;
use super::super::lower::Op;
use super::super::stack::Calls;
use super::super::{Runtime, RuntimeErrorKind, WINDOW};
use super::{
    Builtin, array_length, array_push, create_array, get_field, get_upvalue, set_field, set_upvalue,
};
use crate::value::Value;

/// How a fused builtin op went (see [`run_fused`]). Small (errors boxed), so it comes back
/// in machine registers rather than through memory.
pub(crate) enum Fused {
    /// It could not run whole (the name was rebound, another argument is pending, or the
    /// budget has no room): its first instruction, a PUSHARG, ran alone.
    Unfused,
    /// The builtin ran and its value is in r0. The op stood for this many instructions.
    Ran(u32),
    /// The memory limit (or the system) refused it. With the op's length, its arguments are
    /// now pending, as the PUSHARGs would have left them, so its CALL can wait for the
    /// collector like any call; with 1, nothing ran (the pending stack could not grow) and
    /// the whole op waits.
    Refused(Box<RuntimeErrorKind>, u32),
    /// The builtin failed.
    Failed(Box<RuntimeErrorKind>, u32),
}

/// What [`common_case`] did with a fused op.
pub(crate) enum Common {
    /// It ran, as this many instructions; its value is in r0.
    Ran(u32),
    /// It may not run whole: the name was rebound, another argument is pending, or the
    /// budget has no room for all its instructions.
    Unfused,
    /// It may run whole, but is not a common case: the builtin's own code must run it, as
    /// this many instructions.
    General(u32),
    /// Not an op this covers.
    Other,
}

/// Whether a fused op may run whole, as far as the pending stack goes: no other argument is
/// pending (a builtin takes all of them), and its PUSHARGs would fit without the stack
/// growing. Growth happens only in the PUSHARGs of an op run unfused, so a fused program's
/// pending stack, and the memory the limit counts for it, grow exactly when a traced run's
/// do (otherwise a run that never grew it could first need to when its memory was already
/// refused, and stop earlier and elsewhere than the same program traced).
#[inline(always)]
pub(crate) fn may_fuse(pending: &[Value<'_>], capacity: usize, pending_base: usize) -> bool {
    pending.len() == pending_base && capacity - pending.len() >= MAX_FUSED_ARGS
}

/// The most arguments a fused op pushes (`set_field`'s three).
const MAX_FUSED_ARGS: usize = 3;

/// The common cases of the fused `get_field`, `set_field`, `array_push`, `append`,
/// `array_length` and `len` ops, which cannot fail, allocate or do lookup work (so charge
/// nothing past the op's instructions): a field read, an array element that is there, a
/// field write or a push that needs no memory, an array's length. `budget` is the
/// instructions the step still allows, this op's included; `alone`, what [`may_fuse`]
/// says. One implementation for the general loop ([`run_fused`]) and the inner loop
/// (`fast`), so that the two cannot differ in when an op runs whole, what it leaves in r0
/// or what it costs.
#[inline(always)]
pub(crate) fn common_case<'gc>(
    op: Op,
    mc: &Mutation<'gc>,
    code: &Code,
    regs: &mut Window<'gc>,
    budget: u32,
    alone: bool,
) -> Common {
    let reg = |r: u16| regs[(r as usize) & (WINDOW - 1)];
    // Each arm first checks that builtin `$b` may run whole as `$len` instructions, then
    // tries its common cases; the rest is the builtin's own code's.
    macro_rules! may_run {
        ($b:expr, $len:expr) => {
            if budget < $len || !alone || !code.still_builtin($b) {
                return Common::Unfused;
            }
        };
    }
    macro_rules! done {
        ($v:expr, $len:expr) => {{
            regs[0] = $v;
            return Common::Ran($len);
        }};
    }
    Common::General(match op {
        Op::GetField { obj, key } => {
            may_run!(Builtin::GetField, 3);
            match reg(obj) {
                Value::Object(o) => done!(o.borrow().get(reg(key)), 3),
                Value::Array(a) => {
                    if let Some(v) = a.borrow().find(reg(key)) {
                        done!(v, 3)
                    }
                }
                _ => {}
            }
            3
        }
        Op::SetField { obj, key, value } => {
            may_run!(Builtin::SetField, 4);
            if let Value::Object(o) = reg(obj)
                && o.borrow_mut(mc).set_in_place(reg(key), reg(value))
            {
                done!(Value::Unit, 4)
            }
            4
        }
        // The list builtins in arms of their own: the array builtins' stay as they were.
        Op::ArrayPush {
            array,
            value,
            list: false,
        } => {
            may_run!(Builtin::ArrayPush, 3);
            if let Value::Array(a) = reg(array)
                && let Some(n) = a.borrow_mut(mc).push_in_place(reg(value))
            {
                done!(Value::I64(n as i64), 3)
            }
            3
        }
        Op::ArrayPush {
            array,
            value,
            list: true,
        } => {
            may_run!(Builtin::Append, 3);
            if let Value::Array(a) = reg(array)
                && a.borrow_mut(mc).push_in_place(reg(value)).is_some()
            {
                done!(Value::Unit, 3)
            }
            3
        }
        Op::ArrayLength { array, list: false } => {
            may_run!(Builtin::ArrayLength, 2);
            if let Value::Array(a) = reg(array) {
                done!(Value::I64(a.borrow().length() as i64), 2)
            }
            2
        }
        Op::ArrayLength { array, list: true } => {
            may_run!(Builtin::Len, 2);
            // Past i64 `len` fails (`array_length` wraps): the general way.
            if let Value::Array(a) = reg(array)
                && let Ok(n) = i64::try_from(a.borrow().length())
            {
                done!(Value::I64(n), 2)
            }
            2
        }
        _ => return Common::Other,
    })
}

/// Runs a fused builtin op (`PUSHARG …; CALL builtin` as one op). It runs whole only when
/// the name still means the builtin, no other argument is pending and the budget has room
/// for all its instructions; otherwise only its first PUSHARG runs. Kept out of the dispatch
/// loop so that the loop's hot values keep machine registers; its own rare paths (running
/// unfused, failing) are out of line too, so the common one saves few registers.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_fused<'gc>(
    op: Op,
    mc: &Mutation<'gc>,
    calls: &mut Calls<'gc>,
    code: &Code,
    rt: &mut Runtime,
    regs: &mut Window<'gc>,
    pending_base: usize,
    left: u32,
) -> Fused {
    // (`left` no longer counts the op's first instruction.)
    let alone = may_fuse(&calls.pending, calls.pending.capacity(), pending_base);
    let len = match common_case(op, mc, code, regs, left + 1, alone) {
        Common::Ran(len) => return Fused::Ran(len),
        Common::Unfused => return unfused(op, calls, rt, regs),
        Common::General(len) => len,
        Common::Other => {
            let reg = |r: u16| regs[(r as usize) & (WINDOW - 1)];
            // As in `common_case`.
            macro_rules! may_run {
                ($b:expr, $len:expr) => {
                    if left < $len - 1 || !alone || !code.still_builtin($b) {
                        return unfused(op, calls, rt, regs);
                    }
                };
            }
            match op {
                Op::CreateArray { .. } => {
                    may_run!(Builtin::CreateArray, 2);
                    2
                }
                Op::GetUpvalue { name } => {
                    may_run!(Builtin::GetUpvalue, 2);
                    if let Value::String(name) = reg(name) {
                        // A miss goes the general way, which charges the search itself.
                        let mut work = rt.work;
                        if let Some(cell) = calls.current_upvalue(name, &mut work) {
                            rt.work = work;
                            regs[0] = *cell.borrow();
                            return Fused::Ran(2);
                        }
                    }
                    2
                }
                Op::SetUpvalue { name, value } => {
                    may_run!(Builtin::SetUpvalue, 3);
                    if let Value::String(name) = reg(name) {
                        let mut work = rt.work;
                        if let Some(cell) = calls.current_upvalue(name, &mut work) {
                            rt.work = work;
                            *cell.borrow_mut(mc) = reg(value);
                            regs[0] = Value::Unit;
                            return Fused::Ran(3);
                        }
                    }
                    3
                }
                _ => return not_fused(),
            }
        }
    };
    run_general(op, mc, calls, rt, regs, len)
}

/// A fused op that the fast cases of [`run_fused`] did not cover: the builtin's own code.
#[inline(never)]
fn run_general<'gc>(
    op: Op,
    mc: &Mutation<'gc>,
    calls: &mut Calls<'gc>,
    rt: &mut Runtime,
    regs: &mut Window<'gc>,
    len: u32,
) -> Fused {
    let reg = |r: u16| regs[(r as usize) & (WINDOW - 1)];
    let result = match op {
        Op::GetField { obj, key } => get_field(mc, rt, reg(obj), reg(key)),
        Op::SetField { obj, key, value } => set_field(mc, rt, reg(obj), reg(key), reg(value)),
        // The list builtins through the very code a plain call runs.
        Op::ArrayPush {
            array,
            value,
            list: true,
        } => super::super::stdlib::call(Builtin::Append, mc, rt, &[reg(array), reg(value)]),
        Op::ArrayLength { array, list: true } => {
            super::super::stdlib::call(Builtin::Len, mc, rt, &[reg(array)])
        }
        Op::ArrayPush { array, value, .. } => array_push(mc, rt, reg(array), &[reg(value)]),
        Op::ArrayLength { array, .. } => array_length(rt, reg(array)),
        Op::CreateArray { capacity } => create_array(mc, rt, Some(reg(capacity))),
        Op::GetUpvalue { name } => get_upvalue(calls, rt, reg(name)),
        Op::SetUpvalue { name, value } => set_upvalue(mc, calls, rt, reg(name), reg(value)),
        _ => return not_fused(),
    };
    match result {
        Ok(v) => {
            regs[0] = v;
            Fused::Ran(len)
        }
        Err(e) => fused_failed(op, e, len, calls, rt, regs),
    }
}

/// The registers a fused op's PUSHARGs push, in order (its first is the one an unfused run
/// pushes alone).
fn fused_args(op: Op) -> ([u16; 3], usize) {
    match op {
        Op::GetField { obj, key } => ([obj, key, 0], 2),
        Op::SetField { obj, key, value } => ([obj, key, value], 3),
        Op::ArrayPush { array, value, .. } => ([array, value, 0], 2),
        Op::ArrayLength { array, .. } => ([array, 0, 0], 1),
        Op::CreateArray { capacity } => ([capacity, 0, 0], 1),
        Op::GetUpvalue { name } => ([name, 0, 0], 1),
        Op::SetUpvalue { name, value } => ([name, value, 0], 2),
        _ => ([0; 3], 0),
    }
}

#[cold]
#[inline(never)]
fn not_fused() -> Fused {
    Fused::Failed(
        Box::new(RuntimeErrorKind::Internal("not a fused builtin op")),
        1,
    )
}

/// A fused op that may not run whole: its first PUSHARG alone; refused stack growth waits
/// at it.
#[cold]
#[inline(never)]
fn unfused<'gc>(op: Op, calls: &mut Calls<'gc>, rt: &Runtime, regs: &Window<'gc>) -> Fused {
    let ([first, ..], _) = fused_args(op);
    match calls.push_arg(rt, regs[(first as usize) & (WINDOW - 1)]) {
        Ok(()) => Fused::Unfused,
        Err(e) => Fused::Refused(e, 1),
    }
}

/// A fused builtin failed with `e`. A memory refusal leaves its arguments pending, as its
/// PUSHARGs would have (the builtins do not write registers, so they are still there).
#[cold]
#[inline(never)]
fn fused_failed<'gc>(
    op: Op,
    e: RuntimeErrorKind,
    len: u32,
    calls: &mut Calls<'gc>,
    rt: &Runtime,
    regs: &Window<'gc>,
) -> Fused {
    if !e.is_memory() {
        return Fused::Failed(Box::new(e), len);
    }
    let (registers, count) = fused_args(op);
    if let Err(e) = calls.reserve_args(rt, count) {
        // No room for the arguments: the whole sequence waits.
        return Fused::Refused(e, 1);
    }
    for &r in &registers[..count] {
        calls.pending.push(regs[(r as usize) & (WINDOW - 1)]);
    }
    Fused::Refused(Box::new(e), len)
}
