//! The dispatch loop: runs the current activation's lowered ops for a bounded number of
//! instructions (one step).
//!
//! Speed depends on the few values every op uses (window, ops, ip, budget, flag) staying in
//! machine registers, and that is fragile: a new arm with a lot of inline code can make the
//! compiler spill them and slow *every* op (adding the fused builtin ops inline cost the
//! integer loop 40%). Keep arms small, put rare or bulky work in out-of-line functions
//! ([`builtins::run_fused`], `ops::binary`, `call::capture`), and compare against the
//! benchmark baseline (BENCHMARKS.md) after changing the loop. Loops made only of simple ops
//! (the fused list and field builtins included) leave this loop at their jump back
//! (`Op::Loop`) for the inner loop in `fast`, which is where ops that must stay cheap, and
//! the statement pairs, get their fast paths.

use gc_arena::Mutation;

use super::builtins::{self, Builtin, Fused, Outcome, run_fused};
use super::call::{Window, capture, return_from_frame, window};
use super::code::{Binding, Code};
use super::fast;
use super::lower::{CONDITION_TEST, Cond, FALSE_VS_FALSE, TRUE_VS_FALSE};
use super::stack::{Interp, Step};
use super::{BinOp, Op, Runtime, RuntimeErrorKind, WINDOW, ops};
use crate::heap::Str;
use crate::value::Value;

/// Runs the current activation for at most `budget` instructions; `used` is set to how many
/// ran.
///
/// An instruction whose allocation (heap value or stack growth) the memory limit or the
/// system refuses does not fail at once: heap bytes include garbage the collector has not
/// freed yet, and the collector only runs between steps. The step ends *before* that
/// instruction (it is not charged), and the driver collects and fails only if live memory
/// plus the request is still over the limit; otherwise the next step retries it, and a
/// second refusal then is an error (see [`crate::limits`]).
#[inline(always)]
pub fn run<'gc>(
    mc: &Mutation<'gc>,
    interp: &mut Interp<'gc>,
    constants: &[Value<'gc>],
    code: &Code,
    rt: &mut Runtime,
    budget: u32,
    used: &mut u32,
) -> Step {
    interp.yielded = false;
    let retry = std::mem::take(&mut interp.alloc_wait) > 0;
    let (step, remaining) = run_inner(mc, interp, constants, code, rt, budget, retry);
    interp.yielded = matches!(step, Step::Yield);
    // Lookup work the budget could not cover is charged too (the limit then runs out).
    let overrun = std::mem::take(&mut rt.overrun);
    *used = (budget - remaining).saturating_add(overrun.min(u64::from(u32::MAX)) as u32);
    step
}

/// A register of the running frame's window.
macro_rules! reg {
    ($regs:expr, $r:expr) => {
        $regs[($r as usize) & (WINDOW - 1)]
    };
}

/// The dispatch loop. Returns how the step ended and the budget left. (Inlined into the
/// driver's step, as the compiler did by itself before the memory checks made it larger:
/// fib and the integer loop run 1-3% faster so.)
#[inline(always)]
fn run_inner<'gc>(
    mc: &Mutation<'gc>,
    interp: &mut Interp<'gc>,
    constants: &[Value<'gc>],
    code: &Code,
    rt: &mut Runtime,
    budget: u32,
    retry: bool,
) -> (Step, u32) {
    let mut left = budget;
    'frames: loop {
        let Some(frame) = interp.calls.frames.last().copied() else {
            return (Step::Done, left);
        };
        let func = &code.functions[frame.func as usize];
        let ops = &func.ops[..];
        let base = frame.base as usize;
        let pending_base = frame.pending_base();
        let mut ip = frame.ip as usize;
        let mut cmp = frame.cmp;

        // Saves ip and flag into the frame and fails the activation with `kind`.
        macro_rules! fail {
            ($kind:expr) => {{
                let kind = $kind;
                if let Some(f) = interp.calls.frames.last_mut() {
                    f.ip = ip as u32;
                    f.cmp = cmp;
                }
                let error = interp.error_here(code, kind);
                interp.unwind();
                return (Step::Error(Box::new(error)), left);
            }};
        }
        macro_rules! save {
            () => {
                if let Some(f) = interp.calls.frames.last_mut() {
                    f.ip = ip as u32;
                    f.cmp = cmp;
                }
            };
        }
        // The current instruction's allocation was refused: end the step before it so the
        // driver can collect, unless this already is the retry after a collection.
        macro_rules! wait_for_memory {
            ($kind:expr) => {{
                let kind = $kind;
                if retry && left + 1 == budget {
                    fail!(kind)
                }
                ip -= 1;
                left += 1;
                interp.alloc_wait = rt.limits.take_refused();
                save!();
                return (Step::Yield, left);
            }};
        }

        // The frame's registers, borrowed once per frame switch. Every arm that needs the
        // whole interpreter (calls, returns, errors) leaves this loop afterwards, which ends
        // the borrow; builtins only see `interp.calls`.
        let Some(regs) = window(&mut interp.regs, base) else {
            fail!(RuntimeErrorKind::Internal("register window out of range"))
        };

        // Integer fast path of a three-register op (`$fast` is `None` on overflow or a bad
        // shift amount); anything else goes to `ops::binary`, which also reports those
        // errors. Each path writes its own result (a shared result variable would make the
        // fast path go through a stack temporary).
        macro_rules! arith {
            ($dst:expr, $a:expr, $b:expr, $op:expr, |$x:ident, $y:ident| $fast:expr) => {{
                if let (&Value::I64($x), &Value::I64($y)) = (&reg!(regs, $a), &reg!(regs, $b))
                    && let Some(v) = $fast
                {
                    reg!(regs, $dst) = Value::I64(v);
                } else {
                    match ops::binary($op, reg!(regs, $a), reg!(regs, $b)) {
                        Ok(v) => reg!(regs, $dst) = v,
                        Err(e) => fail!(e),
                    }
                }
            }};
        }
        // The result of a builtin run without its PUSHARGs, into r0. When the memory limit
        // refuses it, the sequence goes on unfused: the arguments go on the pending stack
        // as the PUSHARGs would have put them, and the CALL waits for the collector (and
        // fails, if it must) like any call.
        macro_rules! builtin_result {
            ($result:expr, [$($arg:expr),*]) => {
                match $result {
                    Ok(v) => regs[0] = v,
                    Err(e) if e.is_memory() => {
                        $(interp.calls.pending.push($arg);)*
                        wait_for_memory!(e)
                    }
                    Err(e) => fail!(e),
                }
            };
        }

        // Returns `$value` to the caller's r0. A frame that is not its activation's entry is
        // popped here, with its registers cleared through the window it already has;
        // `return_from_frame` does the rest (an activation's end).
        macro_rules! return_to_caller {
            ($value:expr) => {{
                let value = $value;
                if !frame.entry && interp.calls.frames.len() >= 2 {
                    let used = interp.reg_top.saturating_sub(base).min(WINDOW);
                    regs[..used].fill(Value::Unit);
                    interp.reg_top = base;
                    interp.calls.frames.pop();
                    interp
                        .calls
                        .pending
                        .truncate(frame.restore_pending as usize);
                    interp.calls.spill.truncate(frame.spill_base as usize);
                    if let Some(caller) = interp.calls.frames.last()
                        && let Some(r0) = interp.regs.get_mut(caller.base as usize)
                    {
                        *r0 = value;
                    }
                    continue 'frames;
                }
                if return_from_frame(interp, value) {
                    return (Step::Done, left);
                }
                continue 'frames;
            }};
        }
        macro_rules! compare {
            ($a:expr, $b:expr) => {
                match (&reg!(regs, $a), &reg!(regs, $b)) {
                    (Value::I64(x), Value::I64(y)) => x.cmp(y) as i8,
                    (&x, &y) => match ops::compare(x, y) {
                        Ok(c) => c,
                        Err(e) => fail!(e),
                    },
                }
            };
        }

        // At the jump back of a loop of simple ops: run them in the inner loop.
        macro_rules! enter_loop {
            ($builtins:literal) => {
                (ip, left, cmp) = fast::run_simple::<$builtins>(
                    mc,
                    code,
                    rt,
                    regs,
                    ops,
                    constants,
                    &mut interp.calls,
                    (ip, left, cmp),
                )
            };
        }

        loop {
            if left == 0 {
                save!();
                return (Step::Yield, left);
            }
            left -= 1;
            let Some(&op) = ops.get(ip) else {
                fail!(RuntimeErrorKind::Internal("instruction index out of range"))
            };
            ip += 1;
            match op {
                Op::Ldi { dst, constant }
                | Op::AddK { dst, constant }
                | Op::SubK { dst, constant }
                | Op::MulK { dst, constant }
                | Op::ModK { dst, constant } => {
                    reg!(regs, dst) = constants[constant as usize];
                }
                Op::Mov { dst, src } | Op::MovLdi { dst, src } => {
                    reg!(regs, dst) = reg!(regs, src);
                }
                Op::AddCmpJump { dst, a, b }
                    if left >= 2
                        && let (&Value::I64(x), &Value::I64(y)) =
                            (&reg!(regs, a), &reg!(regs, b))
                        && let Some(sum) = x.checked_add(y) =>
                {
                    reg!(regs, dst) = Value::I64(sum);
                    // The CMP+Jcc op that follows, without another dispatch.
                    if let Some(&Op::CmpJump { a, b, when, target }) = ops.get(ip) {
                        ip += 1;
                        left -= 1;
                        cmp = compare!(a, b);
                        left -= 1;
                        ip = if when.holds(cmp) {
                            target as usize
                        } else {
                            ip + 1
                        };
                    }
                }
                Op::Add { dst, a, b } | Op::AddCmpJump { dst, a, b } => {
                    if let (Value::String(x), Value::String(y)) = (reg!(regs, a), reg!(regs, b)) {
                        let len = x.as_str().len().saturating_add(y.as_str().len());
                        if let Err(e) = rt.check_alloc(Str::charge(len)) {
                            wait_for_memory!(e)
                        }
                        match Str::try_concat(mc, &rt.meter, x.as_str(), y.as_str()) {
                            Ok(s) => reg!(regs, dst) = Value::String(s),
                            Err(e) => wait_for_memory!(rt.alloc_error(e)),
                        }
                    } else {
                        arith!(dst, a, b, BinOp::Add, |x, y| x.checked_add(y))
                    }
                }
                Op::Sub { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Sub, |x, y| x.checked_sub(y))
                }
                Op::Mul { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Mul, |x, y| x.checked_mul(y))
                }
                Op::Div { dst, a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match ops::binary(BinOp::Div, x, y) {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    };
                }
                Op::Mod { dst, a, b } => match (&reg!(regs, a), &reg!(regs, b)) {
                    (&Value::I64(x), &Value::I64(y)) if y > 0 => {
                        reg!(regs, dst) = Value::I64(x % y)
                    }
                    (&x, &y) => match ops::binary(BinOp::Mod, x, y) {
                        Ok(v) => reg!(regs, dst) = v,
                        Err(e) => fail!(e),
                    },
                },
                Op::And { dst, a, b } => arith!(dst, a, b, BinOp::And, |x, y| Some(x & y)),
                Op::Or { dst, a, b } => arith!(dst, a, b, BinOp::Or, |x, y| Some(x | y)),
                Op::Xor { dst, a, b } => arith!(dst, a, b, BinOp::Xor, |x, y| Some(x ^ y)),
                Op::Shl { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Shl, |x, y| ((y as u64) < 64)
                        .then(|| x << y))
                }
                Op::Shr { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Shr, |x, y| ((y as u64) < 64)
                        .then(|| x >> y))
                }
                Op::Not { dst, src } => {
                    reg!(regs, dst) = match ops::not(reg!(regs, src)) {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    };
                }
                Op::Cmp { a, b } => cmp = compare!(a, b),
                Op::CmpJump { a, b, when, target } => {
                    cmp = compare!(a, b);
                    if target == CONDITION_TEST {
                        (ip, left, cmp) = condition_test(regs, ops, ip, left, when, cmp);
                        continue;
                    }
                    // The jump is an instruction of its own: with no budget left for it, it
                    // runs (from its own op at `ip`) in the next step.
                    if left > 0 {
                        left -= 1;
                        ip = if when.holds(cmp) {
                            target as usize
                        } else {
                            ip + 1
                        };
                    }
                }
                Op::Jmp { target } => ip = target as usize,
                Op::Loop { target, builtins } => {
                    ip = target as usize;
                    if builtins {
                        enter_loop!(true)
                    } else {
                        enter_loop!(false)
                    }
                }
                Op::JmpEq { target } => {
                    if cmp == 0 {
                        ip = target as usize
                    }
                }
                Op::JmpNeq { target } => {
                    if cmp != 0 {
                        ip = target as usize
                    }
                }
                Op::JmpLt { target } => {
                    if cmp < 0 {
                        ip = target as usize
                    }
                }
                Op::JmpGt { target } => {
                    if cmp > 0 {
                        ip = target as usize
                    }
                }
                Op::PushArg { src } => {
                    if let Err(e) = interp.calls.push_arg(rt, reg!(regs, src)) {
                        wait_for_memory!(*e)
                    }
                }
                Op::GetField { .. }
                | Op::SetField { .. }
                | Op::ArrayPush { .. }
                | Op::ArrayLength { .. }
                | Op::CreateArray { .. }
                | Op::GetUpvalue { .. }
                | Op::SetUpvalue { .. } => {
                    match run_fused(
                        op,
                        mc,
                        &mut interp.calls,
                        code,
                        rt,
                        regs,
                        pending_base,
                        left,
                    ) {
                        Fused::Unfused => {}
                        Fused::Ran(len) => {
                            left -= len - 1;
                            ip += len as usize - 1;
                            left -= rt.charge_work(left);
                        }
                        Fused::Refused(kind, len) => {
                            // The arguments are pushed: the CALL waits like any call (or,
                            // with len 1, the op itself waits).
                            left -= len - 1;
                            ip += len as usize - 1;
                            wait_for_memory!(*kind)
                        }
                        Fused::Failed(kind, len) => {
                            left -= len - 1;
                            ip += len as usize - 1;
                            left -= rt.charge_work(left);
                            fail!(*kind)
                        }
                    }
                }
                Op::Nop => {}
                Op::Lds { dst, slot } => {
                    reg!(regs, dst) = interp.calls.load_spill(frame.spill_base, slot);
                }
                Op::Sts { slot, src } => {
                    let v = reg!(regs, src);
                    if let Err(e) = interp.calls.store_spill(rt, frame.spill_base, slot, v) {
                        wait_for_memory!(*e)
                    }
                }
                Op::Ld { dst, offset } => {
                    let len = interp.calls.pending.len() - pending_base;
                    let index = len as i64 - 1 + i64::from(offset);
                    if index < 0 || index >= len as i64 {
                        fail!(RuntimeErrorKind::StackOutOfBounds { offset, len })
                    }
                    reg!(regs, dst) = interp.calls.pending[pending_base + index as usize];
                }
                Op::Ret { src } => {
                    let value = reg!(regs, src);
                    return_to_caller!(value);
                }
                Op::End => {
                    // Fell off the end: the function returns its own r0 (the entry to the
                    // host, a callee to its caller's r0), as the current StoffelVM.
                    let value = regs[0];
                    return_to_caller!(value);
                }
                Op::Call { slot } | Op::NewObject { slot } => match code.bindings[slot as usize] {
                    Binding::Function(target) => {
                        if interp.call_fast(code, rt, target, pending_base, ip, cmp) {
                            continue 'frames;
                        }
                        save!();
                        if let Err(e) = interp.calls.check_call(code, rt, target, pending_base) {
                            fail!(e)
                        }
                        let f = &code.functions[target as usize];
                        // Budget the capture's lookups cost (given back if the call waits).
                        let mut charged = 0;
                        let env = if f.upvalues.is_empty() {
                            None
                        } else {
                            match capture(mc, &interp.calls, code, rt, &f.upvalues) {
                                Ok(env) => {
                                    charged = rt.charge_work(left);
                                    left -= charged;
                                    Some(env)
                                }
                                Err(e) => {
                                    left -= rt.charge_work(left);
                                    fail!(e)
                                }
                            }
                        };
                        if let Err(e) = interp.push_frame(
                            code,
                            rt,
                            target,
                            pending_base,
                            pending_base,
                            env,
                            false,
                        ) {
                            // Retried after a collection: its lookups are charged then
                            // (only this instruction can have left an overrun).
                            left += charged;
                            rt.overrun = 0;
                            wait_for_memory!(*e)
                        }
                        continue 'frames;
                    }
                    Binding::Builtin(Builtin::CreateObject)
                        if interp.calls.pending.len() == pending_base =>
                    {
                        builtin_result!(builtins::create_object(mc, rt), [])
                    }
                    Binding::Builtin(Builtin::CreateArray)
                        if interp.calls.pending.len() == pending_base =>
                    {
                        builtin_result!(builtins::create_array(mc, rt, None), [])
                    }
                    Binding::Builtin(b) => {
                        let called = builtins::call(b, mc, &interp.calls, code, rt, pending_base);
                        match &called {
                            // Retried after a collection (and refused before any lookup).
                            Err(e) if e.is_memory() => rt.work = 0,
                            _ => left -= rt.charge_work(left),
                        }
                        match called {
                            Ok(Outcome::Value(v)) => {
                                regs[0] = v;
                                interp.calls.pending.truncate(pending_base);
                            }
                            Ok(Outcome::Enter {
                                func,
                                args_base,
                                restore,
                                env,
                            }) => {
                                save!();
                                if let Err(e) = interp.push_frame(
                                    code,
                                    rt,
                                    func,
                                    args_base,
                                    restore,
                                    Some(env),
                                    false,
                                ) {
                                    wait_for_memory!(*e)
                                }
                                continue 'frames;
                            }
                            Err(e) if e.is_memory() => wait_for_memory!(e),
                            Err(e) => fail!(e),
                        }
                    }
                    Binding::Host(host) => {
                        save!();
                        return (Step::HostCall { host, slot }, left);
                    }
                    Binding::Unbound => {
                        fail!(super::stdlib::unbound_call(&code.names[slot as usize]))
                    }
                },
            }
        }
    }
}

/// The rest of the compiler's condition shape (an [`Op::CmpJump`] to [`CONDITION_TEST`]) after its compare gave `flag` (`ip` is at its +1): writes
/// what the shape's instructions would have (the Bool, the `false`, the flag of testing one
/// against the other) and returns the new ip, budget left and flag. Out of line: inlined,
/// its code made the dispatch loop's other ops slower (about 4% more instructions on the
/// hand-written integer loop).
#[inline(never)]
fn condition_test(
    regs: &mut Window<'_>,
    ops: &[Op],
    ip: usize,
    left: u32,
    when: Cond,
    flag: i8,
) -> (usize, u32, i8) {
    match (ops.get(ip + 1), ops.get(ip + 4), ops.get(ip + 6)) {
        (
            Some(&Op::Ldi { dst: tested, .. }),
            Some(&Op::Ldi { dst: against, .. }),
            Some(&Op::JmpEq { target }),
        ) if left >= 6 => {
            let holds = when.holds(flag);
            reg!(regs, tested) = Value::Bool(holds);
            reg!(regs, against) = Value::Bool(false);
            if holds {
                // CMP, JMPcc, LDI true, LDI false, CMP, JMPEQ (not taken).
                (ip + 7, left - 5, TRUE_VS_FALSE)
            } else {
                // CMP, JMPcc, LDI false, JMP, LDI false, CMP, JMPEQ.
                (target as usize, left - 6, FALSE_VS_FALSE)
            }
        }
        // Too little budget left: just the CMP; the rest runs op by op.
        _ => (ip, left, flag),
    }
}
