//! Calling and returning: pushing a frame (the full path with its checks and the short path
//! of the common call), the running frame's register window, capturing a callee's upvalues,
//! and popping a frame. The state they work on is in `stack`.

use gc_arena::Mutation;

use super::code::Code;
use super::stack::{Calls, Frame, Interp};
use super::{Runtime, RuntimeErrorKind, WINDOW};
use crate::heap::{Cells, Env, Str, Upvalue, alloc_env, reserve_vec, reserve_vec_with};
use crate::value::Value;

impl<'gc> Interp<'gc> {
    /// Pushes a frame for `func`, whose arguments are on the pending stack from `args_base`
    /// to its top. The caller has checked arity and depth. Fails (pushing nothing) when the
    /// stacks must grow and the memory limit or the system refuses.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_frame(
        &mut self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        args_base: usize,
        restore_pending: usize,
        env: Option<Env<'gc>>,
        entry: bool,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        let f = &code.functions[func as usize];
        let base = self.reg_top;
        if self.regs.len() < base + WINDOW
            || self.calls.frames.len() == self.calls.frames.capacity()
        {
            self.reserve_frame(rt, base + WINDOW)?;
        }
        self.reg_top = base + f.frame_size as usize;
        let args = &self.calls.pending[args_base.min(self.calls.pending.len())..];
        if let Some(regs) = self.regs.get_mut(base..base + WINDOW) {
            copy_args(regs, &args[..args.len().min(f.frame_size as usize)]);
        }
        self.calls.frames.push(Frame {
            func,
            ip: 0,
            cmp: 0,
            entry,
            base: base as u32,
            args_base: args_base as u32,
            arg_count: args.len() as u32,
            restore_pending: restore_pending as u32,
            // Below u32::MAX: `grow_spill` keeps it so.
            spill_base: self.calls.spill.len() as u32,
            env,
        });
        Ok(())
    }

    /// The common call, done with one lookup of the callee and no error path: a bytecode
    /// function without upvalues, called with as many arguments as it has parameters, below
    /// the depth limit, with room on the stacks. Saves the caller's `ip` and `cmp`, pushes the
    /// callee's frame and returns true; returns false, having changed nothing, for every
    /// other call, which [`Interp::push_frame`] and its checks then handle.
    #[inline(always)]
    pub(super) fn call_fast(
        &mut self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        args_base: usize,
        ip: usize,
        cmp: i8,
    ) -> bool {
        let Some(f) = code.functions.get(func as usize) else {
            return false;
        };
        let calls = &mut self.calls;
        let depth = calls.frames.len();
        let argc = calls.pending.len().wrapping_sub(args_base);
        let base = self.reg_top;
        if !f.upvalues.is_empty()
            || argc != f.params.len()
            || rt.limits.check_depth(depth).is_err()
            || depth == calls.frames.capacity()
        {
            return false;
        }
        let (Some(regs), Some(args)) = (
            self.regs
                .get_mut(base..)
                .and_then(|r| r.first_chunk_mut::<WINDOW>()),
            calls
                .pending
                .get(args_base..)
                .and_then(|a| a.get(..a.len().min(f.frame_size as usize))),
        ) else {
            return false;
        };
        let Some(caller) = calls.frames.last_mut() else {
            return false;
        };
        caller.ip = ip as u32;
        caller.cmp = cmp;
        copy_args(regs, args);
        self.reg_top = base + f.frame_size as usize;
        calls.frames.push(Frame {
            func,
            ip: 0,
            cmp: 0,
            entry: false,
            base: base as u32,
            args_base: args_base as u32,
            arg_count: argc as u32,
            restore_pending: args_base as u32,
            spill_base: calls.spill.len() as u32,
            env: None,
        });
        true
    }

    /// Makes room for one more frame whose window needs `regs_len` registers (admitted by
    /// the memory limit; the new registers are Unit), and reports the stacks to the meter.
    #[cold]
    #[inline(never)]
    fn reserve_frame(
        &mut self,
        rt: &Runtime,
        regs_len: usize,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        let reserved =
            reserve_vec_with(&mut self.regs, regs_len, WINDOW, rt.room()).and_then(|_| {
                if self.regs.len() < regs_len {
                    // Reserved: fills, allocates nothing.
                    self.regs.resize(regs_len, Value::Unit);
                }
                rt.meter.set_stack_bytes(self.stack_bytes());
                let need = self.calls.frames.len() + 1;
                reserve_vec(&mut self.calls.frames, need, rt.room())
            });
        rt.meter.set_stack_bytes(self.stack_bytes());
        reserved
            .map(|_| ())
            .map_err(|e| Box::new(rt.alloc_error(e)))
    }
}

/// Copies a call's arguments into the callee's first registers. Calls pass a few arguments:
/// those cases are copied directly (`copy_from_slice` would call `memmove`, and a loop costs
/// more to set up than it copies).
#[inline(always)]
fn copy_args<'gc>(regs: &mut [Value<'gc>], args: &[Value<'gc>]) {
    match args {
        [] => {}
        [a] => {
            if let Some(r) = regs.first_mut() {
                *r = *a;
            }
        }
        [a, b] => {
            if let [r0, r1, ..] = regs {
                *r0 = *a;
                *r1 = *b;
            }
        }
        many => {
            for (r, a) in regs.iter_mut().zip(many) {
                *r = *a;
            }
        }
    }
}

/// The running frame's registers: a fixed-size window, so a masked `u16` register index
/// needs no bounds check.
pub(crate) type Window<'gc> = [Value<'gc>; WINDOW];

/// Borrows the window of the frame whose registers start at `base`.
pub(super) fn window<'a, 'gc>(
    regs: &'a mut Vec<Value<'gc>>,
    base: usize,
) -> Option<&'a mut Window<'gc>> {
    // push_frame keeps the vector long enough (None, an internal error, if it did not).
    regs.get_mut(base..)?.first_chunk_mut::<WINDOW>()
}

/// Captures a callee's declared upvalues by name (StoffelVM resolves them at every call).
pub(super) fn capture<'gc>(
    mc: &Mutation<'gc>,
    calls: &Calls<'gc>,
    code: &Code,
    rt: &mut Runtime,
    names: &[std::rc::Rc<str>],
) -> Result<Env<'gc>, RuntimeErrorKind> {
    let mut cells = Cells::try_with_capacity(names.len()).map_err(|e| rt.alloc_error(e))?;
    for name in names {
        let name_str = Str::alloc_copy(mc, &rt.meter, name);
        let cell = calls
            .find_upvalue(mc, code, name_str, &mut rt.work)
            .ok_or_else(|| RuntimeErrorKind::UpvalueNotFound(name.to_string()))?;
        cells.push(Upvalue {
            name: name_str,
            cell,
        });
    }
    Ok(alloc_env(mc, &rt.meter, cells))
}

/// Pops the top frame, giving `value` to its caller's r0. Returns true when the frame was the
/// activation's entry (the activation is then finished and `value` is its result).
pub(super) fn return_from_frame<'gc>(interp: &mut Interp<'gc>, value: Value<'gc>) -> bool {
    let Some(frame) = interp.calls.frames.pop() else {
        return true;
    };
    interp.pop_registers(frame.base as usize);
    interp
        .calls
        .pending
        .truncate(frame.restore_pending as usize);
    interp.calls.spill.truncate(frame.spill_base as usize);
    if frame.entry {
        interp.result = value;
        if let Some(act) = interp.calls.activations.pop() {
            interp.pop_registers(act.reg_base);
            interp.calls.pending.truncate(act.pending_base);
        }
        return true;
    }
    if let Some(caller) = interp.calls.frames.last() {
        interp.regs[caller.base as usize] = value;
    }
    false
}
