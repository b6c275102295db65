//! The interpreter's state: the register stack, frames, pending call arguments and
//! activations ([`Interp`], which lives in the arena root), and the operations that push and
//! pop them (starting an activation, unwinding after an error; calls and returns are in `call`).
//!
//! Registers: frames use `regs[base..base + frame_size]`; the vector always reaches
//! [`WINDOW`] registers past the top frame's base, so the running frame borrows a fixed-size
//! window and a masked register index needs no bounds check.
//!
//! Memory: the stacks grow only through the `reserve_*` functions here, which the
//! memory limit admits ([`Runtime::room`]) and which reserve with `try_reserve`, so a program
//! can neither pass the limit by growing a stack nor abort the process. The hot paths only
//! compare a length with a capacity; the growth itself is out of line. The stacks' capacity
//! is reported to the meter ([`Interp::stack_bytes`]), and [`Interp::shrink_stacks`] gives
//! back what they grew past a small baseline when an activation fails or a top-level
//! execution ends.

use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, Mutation};

use super::builtins::{self, Builtin, Outcome};
use super::code::Code;
use super::{BACKTRACE_ENDS, Runtime, RuntimeError, RuntimeErrorKind, TraceEntry, WINDOW};
use crate::heap::{Env, Meter, Str, reserve_vec};
use crate::value::Value;

/// One call's frame.
#[derive(Clone, Copy, Collect)]
#[collect(no_drop)]
pub struct Frame<'gc> {
    /// Index into [`Code::functions`].
    pub func: u32,
    /// Next instruction.
    pub ip: u32,
    /// The compare flag (-1, 0, +1); starts at 0.
    pub cmp: i8,
    /// The first frame of its activation: returning from it ends the activation.
    pub entry: bool,
    /// Where this frame's registers start in the register stack.
    pub base: u32,
    /// Where its call arguments start on the pending stack.
    pub args_base: u32,
    /// How many call arguments it got.
    pub arg_count: u32,
    /// Pending-stack length to restore when it returns.
    pub restore_pending: u32,
    /// Where its spill slots (LDS/STS) start on the spill stack; it has none when pushed.
    pub spill_base: u32,
    /// Cells reachable with get_upvalue / set_upvalue.
    pub env: Option<Env<'gc>>,
}

impl Frame<'_> {
    /// Where this frame's own pending arguments (for its next CALL) start.
    pub(super) fn pending_base(&self) -> usize {
        (self.args_base + self.arg_count) as usize
    }
}

/// A top-level or nested execution: its frames start at `frame_base`.
#[derive(Clone, Copy, Debug, Collect)]
#[collect(require_static)]
pub struct Activation {
    pub(super) frame_base: usize,
    pub(super) reg_base: usize,
    pub(super) pending_base: usize,
    pub(super) spill_base: usize,
}

/// The frames, the pending-argument stack, the spill stack and the activations: everything
/// about calls except the registers. Builtins get this (shared) while the interpreter keeps
/// the running frame's registers borrowed.
#[derive(Collect, Default)]
#[collect(no_drop)]
pub struct Calls<'gc> {
    pub(super) frames: Vec<Frame<'gc>>,
    pub(super) pending: Vec<Value<'gc>>,
    /// Spill slots: each frame's from its `spill_base` to the next frame's (the top frame's
    /// to the end), so a frame's slots survive its calls and a callee starts with none.
    pub(super) spill: Vec<Value<'gc>>,
    pub(super) activations: Vec<Activation>,
}

/// The interpreter's stacks. Lives in the arena root.
#[derive(Collect, Default)]
#[collect(no_drop)]
pub struct Interp<'gc> {
    /// The register stack. Frames use `regs[base..base + frame_size]`; everything from
    /// `reg_top` on is Unit (a returning frame clears its registers), and the vector always
    /// reaches [`WINDOW`] registers past the top frame's base, so the running frame can
    /// borrow a fixed-size window.
    pub(super) regs: Vec<Value<'gc>>,
    /// One past the top frame's registers.
    pub(super) reg_top: usize,
    pub(super) calls: Calls<'gc>,
    /// The value the last finished activation returned.
    pub result: Value<'gc>,
    /// The last [`run`] yielded: the top frame's ip is the next instruction to run (not one
    /// past a failing instruction), so an error raised now (fuel, memory) names that one.
    pub(super) yielded: bool,
    /// Bytes the top frame's next instruction needs but the memory limit (or the system)
    /// refused: the step ended so the driver can collect garbage first (see [`run`]). The
    /// driver's limit check after collecting adds it ([`Interp::waiting_bytes`]).
    pub(super) alloc_wait: usize,
}

/// How a step ended.
#[derive(Debug)]
pub enum Step {
    /// The instruction budget ran out; call [`run`] again.
    Yield,
    /// The activation finished; its value is in [`Interp::result`].
    Done,
    /// The running code called host function `host`; its arguments are
    /// [`Interp::host_args`]. Deliver the result with [`Interp::deliver`].
    HostCall {
        /// Index into the VM's host table.
        host: u32,
        /// The slot it was called through (its name).
        slot: u32,
    },
    /// The activation failed and has been unwound. (Boxed: a small `Step` comes back from
    /// [`run`] in machine registers; a large one through memory, copied whole.)
    Error(Box<RuntimeError>),
}

/// Stack capacities kept when stacks shrink back ([`Interp::shrink_stacks`]): registers for
/// a second window, pending arguments and frames for ordinary programs. Larger stacks are
/// given back after an error and at the end of every top-level execution.
const REGS_BASELINE: usize = 2 * WINDOW;
const PENDING_BASELINE: usize = 256;
const FRAMES_BASELINE: usize = 256;
const SPILL_BASELINE: usize = 256;
/// What [`Interp::stack_bytes`] is at most with the baselines (and a few activations).
const BASELINE_BYTES: usize = (REGS_BASELINE - WINDOW + PENDING_BASELINE + SPILL_BASELINE)
    * std::mem::size_of::<Value<'static>>()
    + FRAMES_BASELINE * std::mem::size_of::<Frame<'static>>()
    + 16 * std::mem::size_of::<Activation>();

impl<'gc> Calls<'gc> {
    /// Pushes a call argument; a full pending stack grows first, if the memory limit and
    /// the system allow. (Errors are boxed: this is inlined into the dispatch loop.)
    #[inline(always)]
    pub(crate) fn push_arg(
        &mut self,
        rt: &Runtime,
        v: Value<'gc>,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        if self.pending.len() == self.pending.capacity() {
            self.reserve_args(rt, 1)?;
        }
        self.pending.push(v);
        Ok(())
    }

    /// Makes room for `extra` more pending arguments (admitted by the memory limit).
    #[cold]
    #[inline(never)]
    pub(crate) fn reserve_args(
        &mut self,
        rt: &Runtime,
        extra: usize,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        let need = self.pending.len().saturating_add(extra);
        let grown = reserve_vec(&mut self.pending, need, rt.room())
            .map_err(|e| Box::new(rt.alloc_error(e)))?;
        rt.meter.add_stack_bytes(grown);
        Ok(())
    }

    /// Spill slot `slot` of the frame whose slots start at `base` (the running one): Unit
    /// when never written.
    #[inline(always)]
    pub(super) fn load_spill(&self, base: u32, slot: u32) -> Value<'gc> {
        let i = base as usize + slot as usize;
        self.spill.get(i).copied().unwrap_or(Value::Unit)
    }

    /// Stores `v` in spill slot `slot` of the running frame (slots start at `base`),
    /// growing its slots with Unit first if the memory limit and the system allow.
    #[inline(always)]
    pub(super) fn store_spill(
        &mut self,
        rt: &Runtime,
        base: u32,
        slot: u32,
        v: Value<'gc>,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        let i = base as usize + slot as usize;
        match self.spill.get_mut(i) {
            Some(s) => *s = v,
            None => self.grow_spill(rt, i, v)?,
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn grow_spill(
        &mut self,
        rt: &Runtime,
        i: usize,
        v: Value<'gc>,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        // Frames record their base as u32: the stack stays below that many slots.
        if i >= u32::MAX as usize {
            let bytes = i.saturating_mul(std::mem::size_of::<Value<'_>>());
            return Err(Box::new(
                rt.alloc_error(crate::heap::AllocError::System(bytes)),
            ));
        }
        let grown = reserve_vec(&mut self.spill, i + 1, rt.room())
            .map_err(|e| Box::new(rt.alloc_error(e)))?;
        rt.meter.add_stack_bytes(grown);
        // Reserved: fills, allocates nothing.
        self.spill.resize(i, Value::Unit);
        self.spill.push(v);
        Ok(())
    }

    /// Arguments on the pending stack from `base` on.
    pub(crate) fn args_from(&self, base: usize) -> &[Value<'gc>] {
        &self.pending[base.min(self.pending.len())..]
    }

    /// Checks a call of bytecode function `func` with the arguments from `args_base` to the
    /// top of the pending stack: their count and the depth limit.
    #[inline(always)]
    pub(crate) fn check_call(
        &self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        args_base: usize,
    ) -> Result<(), RuntimeErrorKind> {
        let f = &code.functions[func as usize];
        let got = self.pending.len().saturating_sub(args_base);
        if got != f.params.len() {
            return Err(RuntimeErrorKind::Arity {
                function: f.name.to_string(),
                expected: f.params.len(),
                got,
            });
        }
        rt.limits.check_depth(self.frames.len())?;
        Ok(())
    }

    /// The cell `create_closure` captures for `name`: searching the live frames from the
    /// top, a parameter of that name (a fresh cell holding the argument) or else a cell of
    /// the frame's closure. Each frame costs a constant amount (parameter names are indexed
    /// when the function is linked, cells by name), and the frames and names examined are
    /// added to `work`, which is charged to the instruction budget.
    pub(crate) fn find_upvalue(
        &self,
        mc: &Mutation<'gc>,
        code: &Code,
        name: Gc<'gc, Str>,
        work: &mut u64,
    ) -> Option<Gc<'gc, RefLock<Value<'gc>>>> {
        let mut examined: u64 = 0;
        let found = self.frames.iter().rev().find_map(|frame| {
            examined += 1;
            let f = &code.functions[frame.func as usize];
            if let Some(i) = f.param_position(name.as_str(), &mut examined) {
                let value = if i < frame.arg_count {
                    self.pending[frame.args_base as usize + i as usize]
                } else {
                    Value::Unit
                };
                return Some(Gc::new(mc, RefLock::new(value)));
            }
            frame
                .env?
                .cells()
                .find(name, &mut examined)
                .map(|up| up.cell)
        });
        *work = work.saturating_add(examined);
        found
    }

    /// The current frame's upvalue cell called `name`. Adds the cells it examined to `work`.
    pub(crate) fn current_upvalue(
        &self,
        name: Gc<'gc, Str>,
        work: &mut u64,
    ) -> Option<Gc<'gc, RefLock<Value<'gc>>>> {
        let env = self.frames.last()?.env?;
        env.cells().find(name, work).map(|u| u.cell)
    }
}

impl<'gc> Interp<'gc> {
    /// Activations in progress (1 for a plain execute, more while host functions re-enter).
    pub fn activation_count(&self) -> usize {
        self.calls.activations.len()
    }

    /// Takes the value the last finished activation returned, so the interpreter does not
    /// keep it alive.
    pub fn take_result(&mut self) -> Value<'gc> {
        std::mem::replace(&mut self.result, Value::Unit)
    }

    /// The running function and the index of the instruction it will run next.
    pub fn position(&self) -> Option<(u32, u32)> {
        self.calls.frames.last().map(|f| (f.func, f.ip))
    }

    /// Bytes the stacks hold (their capacity), for the memory limit and the statistics. The
    /// register window's fixed reserve above the high-water mark is not counted: it is the
    /// same for every program.
    pub fn stack_bytes(&self) -> usize {
        let regs = self.regs.capacity().saturating_sub(WINDOW);
        (regs + self.calls.pending.capacity() + self.calls.spill.capacity())
            * std::mem::size_of::<Value<'_>>()
            + self.calls.frames.capacity() * std::mem::size_of::<Frame<'_>>()
            + self.calls.activations.capacity() * std::mem::size_of::<Activation>()
    }

    /// Bytes a step that ended waiting for memory needs (0 when it did not).
    pub fn waiting_bytes(&self) -> usize {
        self.alloc_wait
    }

    /// Gives back what the stacks grew past their baselines (keeping what live frames use),
    /// and reports their new size to `meter`. Called when an activation ends with an error
    /// and when a top-level execution ends. (The meter always holds the stacks' size: every
    /// growth and every shrink reports it.)
    #[inline]
    pub fn shrink_stacks(&mut self, meter: &Meter) {
        // One comparison on the common path: the meter holds the stacks' size.
        if meter.stack_bytes() > BASELINE_BYTES {
            self.shrink_grown(meter);
        }
    }

    #[cold]
    #[inline(never)]
    fn shrink_grown(&mut self, meter: &Meter) {
        // Registers past the top frame's window (or the top, whichever is higher) are Unit.
        let top_base = self.calls.frames.last().map_or(0, |f| f.base as usize);
        self.regs.truncate((top_base + WINDOW).max(self.reg_top));
        self.regs.shrink_to(REGS_BASELINE);
        self.calls.pending.shrink_to(PENDING_BASELINE);
        self.calls.spill.shrink_to(SPILL_BASELINE);
        self.calls.frames.shrink_to(FRAMES_BASELINE);
        meter.set_stack_bytes(self.stack_bytes());
    }

    /// Takes what a step in progress leaves for the next one (bytes it waits for, whether it
    /// yielded), so a suspended execution keeps it while other executions run on top.
    pub fn park(&mut self) -> (usize, bool) {
        (std::mem::take(&mut self.alloc_wait), self.yielded)
    }

    /// Gives a resumed execution what [`Interp::park`] took.
    pub fn unpark(&mut self, (wait, yielded): (usize, bool)) {
        self.alloc_wait = wait;
        self.yielded = yielded;
    }

    /// Drops every activation (used after a host panicked through a nested execution).
    pub fn reset(&mut self) {
        self.regs.clear();
        self.reg_top = 0;
        self.calls.frames.clear();
        self.calls.pending.clear();
        self.calls.spill.clear();
        self.calls.activations.clear();
        self.result = Value::Unit;
        self.yielded = false;
        self.alloc_wait = 0;
    }

    pub(super) fn begin_activation(&mut self) -> Activation {
        let act = Activation {
            frame_base: self.calls.frames.len(),
            reg_base: self.reg_top,
            pending_base: self.calls.pending.len(),
            spill_base: self.calls.spill.len(),
        };
        self.calls.activations.push(act);
        act
    }

    /// Starts an activation for bytecode function `func` with `args`. The count must match
    /// the parameters, except that with `lenient` and no args at all the parameters start as
    /// Unit (StoffelVM's `execute`).
    #[inline(always)]
    pub fn begin_function(
        &mut self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        args: &[Value<'gc>],
        lenient: bool,
    ) -> Result<(), RuntimeError> {
        let f = &code.functions[func as usize];
        let entry_error = |kind| RuntimeError::new(f.name.to_string(), 0, kind);
        if !(lenient && args.is_empty()) && args.len() != f.params.len() {
            return Err(entry_error(RuntimeErrorKind::Arity {
                function: f.name.to_string(),
                expected: f.params.len(),
                got: args.len(),
            }));
        }
        if let Err(e) = rt.limits.check_depth(self.calls.frames.len()) {
            return Err(entry_error(e.into()));
        }
        // Reserved first, so a refusal changes nothing (a refused frame unwinds).
        if let Err(kind) = self.reserve_activation(rt, args.len()) {
            return Err(entry_error(*kind));
        }
        let act = self.begin_activation();
        self.calls.pending.extend_from_slice(args);
        if let Err(kind) = self.push_frame(
            code,
            rt,
            func,
            act.pending_base,
            act.pending_base,
            None,
            true,
        ) {
            self.unwind();
            return Err(entry_error(*kind));
        }
        Ok(())
    }

    /// [`Interp::begin_function`] (not lenient) for the call that cannot fail: as many
    /// arguments as parameters, below the depth limit, and room on every stack, so nothing
    /// is reserved or checked against the memory limit. The arguments go on the pending
    /// stack (where `create_closure` and `LD` read them) and straight into the registers.
    /// Returns false, having changed nothing, for every other call, which
    /// [`Interp::begin_function`] then makes (or refuses) with its checks.
    #[inline(always)]
    pub(crate) fn begin_short(
        &mut self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        argc: usize,
        arg: impl Fn(usize) -> Value<'gc>,
    ) -> bool {
        let Some(f) = code.functions.get(func as usize) else {
            return false;
        };
        let calls = &mut self.calls;
        let depth = calls.frames.len();
        let base = self.reg_top;
        let pending_base = calls.pending.len();
        if argc != f.params.len()
            || rt.limits.check_depth(depth).is_err()
            || depth == calls.frames.capacity()
            || calls.pending.capacity() - pending_base < argc
            || calls.activations.len() == calls.activations.capacity()
        {
            return false;
        }
        let Some(regs) = self
            .regs
            .get_mut(base..)
            .and_then(|r| r.first_chunk_mut::<WINDOW>())
        else {
            return false;
        };
        for (i, r) in regs
            .iter_mut()
            .take(f.frame_size as usize)
            .enumerate()
            .take(argc)
        {
            let v = arg(i);
            *r = v;
            // Room checked above: no growth.
            calls.pending.push(v);
        }
        let spill_base = calls.spill.len();
        calls.activations.push(Activation {
            frame_base: depth,
            reg_base: base,
            pending_base,
            spill_base,
        });
        // Arguments past the frame's registers (a function with fewer registers than
        // parameters) are on the pending stack only.
        for i in calls.pending.len() - pending_base..argc {
            calls.pending.push(arg(i));
        }
        self.reg_top = base + f.frame_size as usize;
        calls.frames.push(Frame {
            func,
            ip: 0,
            cmp: 0,
            entry: true,
            base: base as u32,
            args_base: pending_base as u32,
            arg_count: argc as u32,
            restore_pending: pending_base as u32,
            spill_base: spill_base as u32,
            env: None,
        });
        true
    }

    /// Reserves, for a new activation, its arguments and the activation itself (admitted by
    /// the memory limit). Its first frame is reserved by [`Interp::push_frame`]; a refusal
    /// there unwinds the activation.
    #[inline]
    fn reserve_activation(
        &mut self,
        rt: &Runtime,
        args: usize,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        if self.calls.pending.capacity() - self.calls.pending.len() < args
            || self.calls.activations.len() == self.calls.activations.capacity()
        {
            self.reserve_activation_slow(rt, args)?;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn reserve_activation_slow(
        &mut self,
        rt: &Runtime,
        args: usize,
    ) -> Result<(), Box<RuntimeErrorKind>> {
        if self.calls.pending.capacity() - self.calls.pending.len() < args {
            self.calls.reserve_args(rt, args)?;
        }
        let need = self.calls.activations.len() + 1;
        let grown = reserve_vec(&mut self.calls.activations, need, rt.room())
            .map_err(|e| Box::new(rt.alloc_error(e)))?;
        rt.meter.add_stack_bytes(grown);
        Ok(())
    }

    /// Starts an activation that calls builtin `b` with `args` (a host executing a builtin by
    /// name). Returns true when the builtin finished at once (its value is in `result`),
    /// false when it started a frame (`call_closure`) that [`run`] must now run.
    pub fn begin_builtin(
        &mut self,
        mc: &Mutation<'gc>,
        code: &Code,
        rt: &mut Runtime,
        b: Builtin,
        args: &[Value<'gc>],
    ) -> Result<bool, RuntimeError> {
        if let Err(kind) = self.reserve_activation(rt, args.len()) {
            return Err(RuntimeError::new(b.name(), 0, *kind));
        }
        let act = self.begin_activation();
        self.calls.pending.extend_from_slice(args);
        let called = builtins::call(b, mc, &self.calls, code, rt, act.pending_base);
        // A host's call is not an instruction: its lookups are not charged.
        rt.work = 0;
        match called {
            Ok(Outcome::Value(v)) => {
                self.calls.pending.truncate(act.pending_base);
                self.calls.activations.pop();
                self.result = v;
                Ok(true)
            }
            Ok(Outcome::Enter {
                func,
                args_base,
                restore,
                env,
            }) => match self.push_frame(code, rt, func, args_base, restore, Some(env), true) {
                Ok(()) => Ok(false),
                Err(kind) => {
                    self.unwind();
                    Err(RuntimeError::new(b.name(), 0, *kind))
                }
            },
            Err(kind) => {
                self.unwind();
                Err(RuntimeError::new(b.name(), 0, kind))
            }
        }
    }

    /// The arguments of a pending host call.
    pub fn host_args(&self) -> &[Value<'gc>] {
        let base = self.calls.frames.last().map_or(0, |f| f.pending_base());
        self.calls.args_from(base)
    }

    /// Completes a pending host call: the result goes to the caller's r0.
    pub fn deliver(&mut self, value: Value<'gc>) {
        if let Some(frame) = self.calls.frames.last() {
            let (base, pending) = (frame.base as usize, frame.pending_base());
            self.regs[base] = value;
            self.calls.pending.truncate(pending);
        }
    }

    /// Fails the current activation at the pending host call.
    pub fn fail_host_call(&mut self, code: &Code, kind: RuntimeErrorKind) -> RuntimeError {
        let error = self.error_here(code, kind);
        self.yielded = false;
        self.alloc_wait = 0;
        self.unwind();
        error
    }

    /// The error `kind` at the running instruction, with the call chain. Out of line: the
    /// dispatch loop reaches it from every failing op.
    #[cold]
    #[inline(never)]
    pub(super) fn error_here(&self, code: &Code, kind: RuntimeErrorKind) -> RuntimeError {
        let Some(frame) = self.calls.frames.last() else {
            return RuntimeError::new(String::new(), 0, kind);
        };
        // ip points past the failing instruction, or (after a yield) at the instruction that
        // did not run.
        let instruction = if self.yielded {
            frame.ip as usize
        } else {
            (frame.ip as usize).saturating_sub(1)
        };
        RuntimeError {
            function: code.functions[frame.func as usize].name.to_string(),
            instruction,
            kind,
            backtrace: self.backtrace(code, instruction),
        }
    }

    /// The call chain, innermost first (see [`RuntimeError::backtrace`]): `innermost` is the
    /// failing frame's instruction; a caller is at its CALL (the instruction before its ip).
    /// Between an activation's entry frame and the frame below it sits the host function
    /// that started the activation, named by that frame's CALL when it is one.
    fn backtrace(&self, code: &Code, innermost: usize) -> Vec<TraceEntry> {
        let frames = &self.calls.frames;
        let entry_at = |i: usize| -> TraceEntry {
            let frame = &frames[i];
            TraceEntry::Frame {
                function: code.functions[frame.func as usize].name.to_string(),
                instruction: if i + 1 == frames.len() {
                    innermost
                } else {
                    (frame.ip as usize).saturating_sub(1)
                },
            }
        };
        let host_below = |i: usize| -> Option<TraceEntry> {
            if !frames[i].entry || i == 0 {
                return None;
            }
            let caller = &frames[i - 1];
            let at = (caller.ip as usize).checked_sub(1)?;
            let function = match code.functions[caller.func as usize].code.get(at) {
                Some(crate::program::Instruction::Call { callee }) => {
                    code.names.get(*callee as usize).map(|n| n.to_string())
                }
                _ => None,
            };
            Some(TraceEntry::Host { function })
        };
        // Entries innermost first, built only at the two ends of a deep chain.
        let count = frames.len();
        let mut out = Vec::new();
        let mut omitted = 0usize;
        for i in (0..count).rev() {
            let from_top = count - 1 - i;
            let keep = from_top < BACKTRACE_ENDS || i < BACKTRACE_ENDS;
            if keep {
                if omitted > 0 {
                    out.push(TraceEntry::Omitted(omitted));
                    omitted = 0;
                }
                out.push(entry_at(i));
                if let Some(host) = host_below(i) {
                    out.push(host);
                }
            } else {
                omitted += 1;
            }
        }
        out
    }

    /// Clears the registers from `base` to the top, which becomes `base`.
    pub(super) fn pop_registers(&mut self, base: usize) {
        let top = self.reg_top.min(self.regs.len());
        if base < top {
            self.regs[base..top].fill(Value::Unit);
        }
        self.reg_top = base;
    }

    /// Removes the current activation and everything it pushed.
    pub(super) fn unwind(&mut self) {
        if let Some(act) = self.calls.activations.pop() {
            self.calls.frames.truncate(act.frame_base);
            self.pop_registers(act.reg_base);
            self.calls.pending.truncate(act.pending_base);
            self.calls.spill.truncate(act.spill_base);
        }
    }
}
