//! The interpreter: frames on one register stack, the dispatch loop, call/return, limits and
//! runtime errors.
//!
//! All interpreter state ([`Interp`]) lives in the arena root, so the loop can stop after a
//! bounded number of instructions ([`run`] returns [`Step::Yield`]) and the collector can run
//! between steps, like piccolo's stepping executor. A call to a host function also ends the
//! step ([`Step::HostCall`]): the driver in [`crate::vm`] makes the call outside the arena,
//! then hands the result back with [`Interp::deliver`]. A host function may therefore execute
//! code on the same VM: the nested execution pushes its own [`Activation`] on the same stacks.
//!
//! Calling convention (StoffelVM's): `PUSHARG` appends to the current frame's pending
//! arguments; `CALL` hands all of them to the callee (argument i in register i) and clears
//! them; the callee's `RET` value, or a builtin's or host function's result, lands in the
//! caller's r0. The arguments stay on the pending stack below the callee's own pending area
//! for as long as the callee runs: they are its parameters' values at call time, which
//! `create_closure` captures by name.
//!
//! Speed: the loop runs the lowered ops of the `lower` module (8 bytes, registers masked into a
//! fixed-size window so safe Rust needs no bounds check). Its speed depends on the few values
//! every op uses (window, ops, ip, budget, flag) staying in machine registers, and that is
//! fragile: a new arm with a lot of inline code can make the compiler spill them and slow
//! *every* op (adding the fused builtin ops inline cost the integer loop 40%). Keep arms
//! small, put rare or bulky work in out-of-line functions (`run_fused`, `ops::binary`,
//! `capture`), and compare against the benchmark baseline (BENCHMARKS.md) after changing the
//! loop.

pub mod builtins;
pub mod code;
mod lower;
mod ops;

use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, Mutation};

use crate::heap::{Cells, Env, Meter, Str, Upvalue, alloc_env};
use crate::limits::{Exceeded, Limits};
use crate::value::{Kind, Value};
use builtins::Builtin;
use builtins::Outcome;
use code::{Binding, Code};

pub(crate) use lower::{Op, WINDOW, lower};
pub use ops::BinOp;

/// Where `print` writes.
pub enum Output {
    /// The process's standard output.
    Stdout,
    /// Any writer.
    Writer(Box<dyn std::io::Write>),
    /// A function called with each printed line (newline included).
    Callback(Box<dyn FnMut(&str)>),
}

impl Output {
    /// Writes one piece of text.
    pub fn write_text(&mut self, text: &str) -> std::io::Result<()> {
        match self {
            Output::Stdout => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()
            }
            Output::Writer(w) => {
                w.write_all(text.as_bytes())?;
                w.flush()
            }
            Output::Callback(f) => {
                f(text);
                Ok(())
            }
        }
    }
}

/// State the interpreter needs that is not in the arena.
pub struct Runtime {
    /// Bytes of live heap values.
    pub meter: Meter,
    /// Where `print` writes.
    pub output: Output,
    /// The next object/array id (`Object(n)`), starting at 1.
    pub next_heap_id: u64,
    /// Depth and memory limits (and the instruction limit the driver reads).
    pub(crate) limits: Limits,
}

impl Runtime {
    /// Fresh runtime state with default limits.
    pub fn new(meter: Meter) -> Runtime {
        Runtime {
            meter,
            output: Output::Stdout,
            next_heap_id: 1,
            limits: Limits::default(),
        }
    }

    /// Takes the next object/array id.
    pub fn heap_id(&mut self) -> u64 {
        let id = self.next_heap_id;
        self.next_heap_id += 1;
        id
    }

    /// Fails if allocating `bytes` more would pass the memory limit.
    #[inline]
    pub fn check_alloc(&self, bytes: usize) -> Result<(), RuntimeErrorKind> {
        Ok(self.limits.admit(self.meter.bytes(), bytes)?)
    }
}

/// What went wrong, without where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeErrorKind {
    /// Operand kinds an operation does not accept.
    #[error("type error in {op}: {}", match right { Some(r) => format!("cannot apply to {left} and {r}"), None => format!("cannot apply to {left}") })]
    Type {
        /// The operation.
        op: &'static str,
        /// Left (or only) operand kind.
        left: Kind,
        /// Right operand kind.
        right: Option<Kind>,
    },
    /// Integer or float division by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// Integer or float modulo by zero.
    #[error("modulo by zero")]
    ModuloByZero,
    /// Signed `MIN / -1` or `MIN % -1`.
    #[error("integer overflow in division")]
    Overflow,
    /// CMP of values that have no order.
    #[error("cannot compare {left} and {right}")]
    Compare {
        /// Debug text of the left value.
        left: String,
        /// Debug text of the right value.
        right: String,
    },
    /// A call to a name nothing defines.
    #[error("function '{0}' not found")]
    FunctionNotFound(String),
    /// A bytecode function called with the wrong number of arguments.
    #[error("function '{function}' expects {expected} arguments but got {got}")]
    Arity {
        /// The callee.
        function: String,
        /// Its parameter count.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// `LD` outside the pending-argument stack.
    #[error("stack address [sp+{offset}] out of bounds (pending arguments: {len})")]
    StackOutOfBounds {
        /// The offset.
        offset: i32,
        /// How many values were pending.
        len: usize,
    },
    /// Too many frames.
    #[error("maximum call depth of {0} frames exceeded")]
    DepthExceeded(usize),
    /// The instruction budget ran out.
    #[error("instruction limit of {0} exhausted")]
    FuelExhausted(u64),
    /// The heap limit would be passed.
    #[error("memory limit of {0} bytes exceeded")]
    MemoryLimit(usize),
    /// A dynamically scoped variable was not found.
    #[error("could not find upvalue '{0}'")]
    UpvalueNotFound(String),
    /// A builtin rejected its arguments.
    #[error("{builtin}: {message}")]
    Builtin {
        /// The builtin's name.
        builtin: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A host function failed.
    #[error("host function '{function}' failed: {message}")]
    Host {
        /// Its name.
        function: String,
        /// Its message.
        message: String,
    },
    /// `print` could not write its output.
    #[error("print failed: {0}")]
    Output(String),
    /// A broken interpreter invariant: a bug in this crate, reported instead of a panic.
    #[error("internal interpreter error: {0}")]
    Internal(&'static str),
}

impl From<Exceeded> for RuntimeErrorKind {
    fn from(e: Exceeded) -> Self {
        match e {
            Exceeded::Instructions(limit) => RuntimeErrorKind::FuelExhausted(limit),
            Exceeded::Depth(limit) => RuntimeErrorKind::DepthExceeded(limit),
            Exceeded::Memory(limit) => RuntimeErrorKind::MemoryLimit(limit),
        }
    }
}

/// A runtime error: what went wrong, in which function, at which instruction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("runtime error in function '{function}' at instruction {instruction}: {kind}")]
pub struct RuntimeError {
    /// The function that was running.
    pub function: String,
    /// The index of the failing instruction in that function.
    pub instruction: usize,
    /// What went wrong.
    pub kind: RuntimeErrorKind,
}

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
    /// Cells reachable with get_upvalue / set_upvalue.
    pub env: Option<Env<'gc>>,
}

impl Frame<'_> {
    /// Where this frame's own pending arguments (for its next CALL) start.
    fn pending_base(&self) -> usize {
        (self.args_base + self.arg_count) as usize
    }
}

/// A top-level or nested execution: its frames start at `frame_base`.
#[derive(Clone, Copy, Debug, Collect)]
#[collect(require_static)]
pub struct Activation {
    frame_base: usize,
    reg_base: usize,
    pending_base: usize,
}

/// The frames, the pending-argument stack and the activations: everything about calls except
/// the registers. Builtins get this (shared) while the interpreter keeps the running frame's
/// registers borrowed.
#[derive(Collect, Default)]
#[collect(no_drop)]
pub struct Calls<'gc> {
    frames: Vec<Frame<'gc>>,
    pending: Vec<Value<'gc>>,
    activations: Vec<Activation>,
}

/// The interpreter's stacks. Lives in the arena root.
#[derive(Collect, Default)]
#[collect(no_drop)]
pub struct Interp<'gc> {
    /// The register stack. Frames use `regs[base..base + frame_size]`; everything from
    /// `reg_top` on is Unit (a returning frame clears its registers), and the vector always
    /// reaches [`WINDOW`] registers past the top frame's base, so the running frame can
    /// borrow a fixed-size window.
    regs: Vec<Value<'gc>>,
    /// One past the top frame's registers.
    reg_top: usize,
    calls: Calls<'gc>,
    /// The value the last finished activation returned.
    pub result: Value<'gc>,
    /// The last [`run`] yielded: the top frame's ip is the next instruction to run (not one
    /// past a failing instruction), so an error raised now (fuel, memory) names that one.
    yielded: bool,
    /// Bytes the top frame's next instruction needs but the memory limit refused: the step
    /// ended so the driver can collect garbage first (see [`run`]). Counted in
    /// [`Interp::stack_bytes`] so the driver's limit check after collecting includes it.
    alloc_wait: usize,
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

impl<'gc> Calls<'gc> {
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

    /// Looks a variable up by name the way StoffelVM does: frames from the top down, each
    /// frame's parameters (their values at call time) first, then its upvalue cells. A
    /// parameter is captured into a new cell; an upvalue's cell is shared.
    pub(crate) fn find_upvalue(
        &self,
        mc: &Mutation<'gc>,
        code: &Code,
        name: &str,
    ) -> Option<Gc<'gc, RefLock<Value<'gc>>>> {
        for frame in self.frames.iter().rev() {
            let f = &code.functions[frame.func as usize];
            if let Some(i) = f.params.iter().position(|p| &**p == name) {
                let value = if (i as u32) < frame.arg_count {
                    self.pending[frame.args_base as usize + i]
                } else {
                    Value::Unit
                };
                return Some(Gc::new(mc, RefLock::new(value)));
            }
            if let Some(env) = frame.env
                && let Some(up) = env.cells().find_last(|u| u.name.as_str() == name)
            {
                return Some(up.cell);
            }
        }
        None
    }

    /// The current frame's upvalue cell called `name`. Names usually are the very string the
    /// closure was made with (the same constant), so pointers are compared first.
    pub(crate) fn current_upvalue(
        &self,
        name: Gc<'gc, Str>,
    ) -> Option<Gc<'gc, RefLock<Value<'gc>>>> {
        let env = self.frames.last()?.env?;
        env.cells()
            .find_last(|u| Gc::ptr_eq(u.name, name) || u.name.as_str() == name.as_str())
            .map(|u| u.cell)
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

    /// Bytes the stacks hold, for the memory limit. The register window's fixed reserve
    /// above the high-water mark is not counted: it is the same for every program.
    pub fn stack_bytes(&self) -> usize {
        let regs = self.regs.capacity().saturating_sub(WINDOW);
        (regs + self.calls.pending.capacity()) * std::mem::size_of::<Value<'_>>()
            + self.calls.frames.capacity() * std::mem::size_of::<Frame<'_>>()
            + self.alloc_wait
    }

    /// Drops every activation (used after a host panicked through a nested execution).
    pub fn reset(&mut self) {
        self.regs.clear();
        self.reg_top = 0;
        self.calls.frames.clear();
        self.calls.pending.clear();
        self.calls.activations.clear();
        self.result = Value::Unit;
        self.yielded = false;
        self.alloc_wait = 0;
    }

    fn begin_activation(&mut self) -> Activation {
        let act = Activation {
            frame_base: self.calls.frames.len(),
            reg_base: self.reg_top,
            pending_base: self.calls.pending.len(),
        };
        self.calls.activations.push(act);
        act
    }

    /// Starts an activation for bytecode function `func` with `args`. The count must match
    /// the parameters, except that with `lenient` and no args at all the parameters start as
    /// Unit (StoffelVM's `execute`).
    pub fn begin_function(
        &mut self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        args: &[Value<'gc>],
        lenient: bool,
    ) -> Result<(), RuntimeError> {
        let f = &code.functions[func as usize];
        let entry_error = |kind| RuntimeError {
            function: f.name.to_string(),
            instruction: 0,
            kind,
        };
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
        let act = self.begin_activation();
        self.calls.pending.extend_from_slice(args);
        self.push_frame(code, func, act.pending_base, act.pending_base, None, true);
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
        let act = self.begin_activation();
        self.calls.pending.extend_from_slice(args);
        match builtins::call(b, mc, &self.calls, code, rt, act.pending_base) {
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
            }) => {
                self.push_frame(code, func, args_base, restore, Some(env), true);
                Ok(false)
            }
            Err(kind) => {
                self.unwind();
                Err(RuntimeError {
                    function: b.name().to_string(),
                    instruction: 0,
                    kind,
                })
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

    fn error_here(&self, code: &Code, kind: RuntimeErrorKind) -> RuntimeError {
        match self.calls.frames.last() {
            Some(frame) => RuntimeError {
                function: code.functions[frame.func as usize].name.to_string(),
                // ip points past the failing instruction, or (after a yield) at the
                // instruction that did not run.
                instruction: if self.yielded {
                    frame.ip as usize
                } else {
                    (frame.ip as usize).saturating_sub(1)
                },
                kind,
            },
            None => RuntimeError {
                function: String::new(),
                instruction: 0,
                kind,
            },
        }
    }

    /// Clears the registers from `base` to the top, which becomes `base`.
    fn pop_registers(&mut self, base: usize) {
        let top = self.reg_top.min(self.regs.len());
        if base < top {
            self.regs[base..top].fill(Value::Unit);
        }
        self.reg_top = base;
    }

    /// Removes the current activation and everything it pushed.
    fn unwind(&mut self) {
        if let Some(act) = self.calls.activations.pop() {
            self.calls.frames.truncate(act.frame_base);
            self.pop_registers(act.reg_base);
            self.calls.pending.truncate(act.pending_base);
        }
    }

    /// Pushes a frame for `func`, whose arguments are on the pending stack from `args_base`
    /// to its top. The caller has checked arity and depth.
    #[inline(always)]
    pub(crate) fn push_frame(
        &mut self,
        code: &Code,
        func: u32,
        args_base: usize,
        restore_pending: usize,
        env: Option<Env<'gc>>,
        entry: bool,
    ) {
        let f = &code.functions[func as usize];
        let base = self.reg_top;
        if self.regs.len() < base + WINDOW {
            self.regs.resize(base + WINDOW, Value::Unit);
        }
        self.reg_top = base + f.frame_size as usize;
        let args = &self.calls.pending[args_base.min(self.calls.pending.len())..];
        // Calls pass a few arguments: copy those cases directly (`copy_from_slice` would call
        // `memmove`, and a loop costs more to set up than it copies).
        if let Some(regs) = self.regs.get_mut(base..base + WINDOW) {
            match &args[..args.len().min(f.frame_size as usize)] {
                [] => {}
                [a] => regs[0] = *a,
                [a, b] => {
                    regs[0] = *a;
                    regs[1] = *b;
                }
                many => {
                    for (r, a) in regs.iter_mut().zip(many) {
                        *r = *a;
                    }
                }
            }
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
            env,
        });
    }
}

/// The running frame's registers: a fixed-size window, so a masked `u16` register index
/// needs no bounds check.
type Window<'gc> = [Value<'gc>; WINDOW];

/// Borrows the window of the frame whose registers start at `base`.
fn window<'a, 'gc>(regs: &'a mut Vec<Value<'gc>>, base: usize) -> Option<&'a mut Window<'gc>> {
    if regs.len() < base + WINDOW {
        // push_frame keeps the vector long enough; this only guards the invariant.
        regs.resize(base + WINDOW, Value::Unit);
    }
    regs.get_mut(base..)?.first_chunk_mut::<WINDOW>()
}

/// Runs the current activation for at most `budget` instructions; `used` is set to how many
/// ran.
///
/// An instruction whose allocation the memory limit refuses does not fail at once: heap bytes
/// include garbage the collector has not freed yet, and the collector only runs between
/// steps. The step ends *before* that instruction (it is not charged), and the driver's
/// limit check collects and fails only if live memory plus the request is still over the
/// limit; otherwise the next step retries it, and a second refusal then is an error.
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
    *used = budget - remaining;
    step
}

/// A register of the running frame's window.
macro_rules! reg {
    ($regs:expr, $r:expr) => {
        $regs[($r as usize) & (WINDOW - 1)]
    };
}

/// The dispatch loop. Returns how the step ended and the budget left.
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

        // Integer fast path of a three-register op; anything else goes to `ops::binary`.
        // Each path writes its own result (a shared result variable would make the fast
        // path go through a stack temporary).
        macro_rules! arith {
            ($dst:expr, $a:expr, $b:expr, $op:expr, |$x:ident, $y:ident| $fast:expr) => {{
                if let (&Value::I64($x), &Value::I64($y)) = (&reg!(regs, $a), &reg!(regs, $b)) {
                    reg!(regs, $dst) = Value::I64($fast);
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
                    Err(e @ RuntimeErrorKind::MemoryLimit(_)) => {
                        $(interp.calls.pending.push($arg);)*
                        wait_for_memory!(e)
                    }
                    Err(e) => fail!(e),
                }
            };
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
                Op::Ldi { dst, constant } => {
                    reg!(regs, dst) = constants[constant as usize];
                }
                Op::Mov { dst, src } => {
                    reg!(regs, dst) = reg!(regs, src);
                }
                Op::AddCmpJump { dst, a, b }
                    if left >= 2
                        && let (&Value::I64(x), &Value::I64(y)) =
                            (&reg!(regs, a), &reg!(regs, b)) =>
                {
                    reg!(regs, dst) = Value::I64(x.wrapping_add(y));
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
                        if let Err(e) = rt.check_alloc(len) {
                            wait_for_memory!(e)
                        }
                        reg!(regs, dst) =
                            Value::String(Str::concat(mc, &rt.meter, x.as_str(), y.as_str()));
                    } else {
                        arith!(dst, a, b, BinOp::Add, |x, y| x.wrapping_add(y))
                    }
                }
                Op::Sub { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Sub, |x, y| x.wrapping_sub(y))
                }
                Op::Mul { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Mul, |x, y| x.wrapping_mul(y))
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
                Op::And { dst, a, b } => arith!(dst, a, b, BinOp::And, |x, y| x & y),
                Op::Or { dst, a, b } => arith!(dst, a, b, BinOp::Or, |x, y| x | y),
                Op::Xor { dst, a, b } => arith!(dst, a, b, BinOp::Xor, |x, y| x ^ y),
                Op::Shl { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Shl, |x, y| x.wrapping_shl(y as u32))
                }
                Op::Shr { dst, a, b } => {
                    arith!(dst, a, b, BinOp::Shr, |x, y| x.wrapping_shr(y as u32))
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
                    interp.calls.pending.push(reg!(regs, src));
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
                        }
                        Fused::Refused(kind, len) => {
                            // The arguments are pushed: the CALL waits like any call.
                            left -= len - 1;
                            ip += len as usize - 1;
                            wait_for_memory!(*kind)
                        }
                        Fused::Failed(kind, len) => {
                            left -= len - 1;
                            ip += len as usize - 1;
                            fail!(*kind)
                        }
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
                    if return_from_frame(interp, value) {
                        return (Step::Done, left);
                    }
                    continue 'frames;
                }
                Op::End => {
                    // Fell off the end: the entry returns its r0, a callee returns Unit.
                    let entry = interp.calls.activations.last().map(|a| a.frame_base);
                    let value = if Some(interp.calls.frames.len() - 1) == entry {
                        regs[0]
                    } else {
                        Value::Unit
                    };
                    if return_from_frame(interp, value) {
                        return (Step::Done, left);
                    }
                    continue 'frames;
                }
                Op::Call { slot } => match code.bindings[slot as usize] {
                    Binding::Function(target) => {
                        save!();
                        if let Err(e) = interp.calls.check_call(code, rt, target, pending_base) {
                            fail!(e)
                        }
                        let f = &code.functions[target as usize];
                        let env = if f.upvalues.is_empty() {
                            None
                        } else {
                            match capture(mc, &interp.calls, code, rt, &f.upvalues) {
                                Ok(env) => Some(env),
                                Err(e) => fail!(e),
                            }
                        };
                        interp.push_frame(code, target, pending_base, pending_base, env, false);
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
                        match builtins::call(b, mc, &interp.calls, code, rt, pending_base) {
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
                                interp.push_frame(code, func, args_base, restore, Some(env), false);
                                continue 'frames;
                            }
                            Err(e @ RuntimeErrorKind::MemoryLimit(_)) => wait_for_memory!(e),
                            Err(e) => fail!(e),
                        }
                    }
                    Binding::Host(host) => {
                        save!();
                        return (Step::HostCall { host, slot }, left);
                    }
                    Binding::Unbound => {
                        fail!(RuntimeErrorKind::FunctionNotFound(
                            code.names[slot as usize].to_string()
                        ))
                    }
                },
            }
        }
    }
}

/// How a fused builtin op went (see [`run_fused`]). Small (errors boxed), so it comes back
/// in machine registers rather than through memory.
enum Fused {
    /// It could not run whole (the name was rebound, another argument is pending, or the
    /// budget has no room): its first instruction, a PUSHARG, ran alone.
    Unfused,
    /// The builtin ran and its value is in r0. The op stood for this many instructions.
    Ran(u32),
    /// The memory limit refused it; its arguments are now pending, as the PUSHARGs would
    /// have left them, so its CALL can wait for the collector like any call.
    Refused(Box<RuntimeErrorKind>, u32),
    /// The builtin failed.
    Failed(Box<RuntimeErrorKind>, u32),
}

/// Runs a fused builtin op (`PUSHARG …; CALL builtin` as one op). It runs whole only when
/// the name still means the builtin, no other argument is pending and the budget has room
/// for all its instructions; otherwise only its first PUSHARG runs. Kept out of the dispatch
/// loop so that the loop's hot values keep machine registers.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn run_fused<'gc>(
    op: Op,
    mc: &Mutation<'gc>,
    calls: &mut Calls<'gc>,
    code: &Code,
    rt: &mut Runtime,
    regs: &mut Window<'gc>,
    pending_base: usize,
    left: u32,
) -> Fused {
    let reg = |r: u16| regs[(r as usize) & (WINDOW - 1)];
    // Runs builtin `$b` (its sequence is `$len` instructions, the first a PUSHARG of
    // `$first`) if it may run whole; `$args` are the values its PUSHARGs would push, which a
    // memory refusal leaves pending.
    macro_rules! fused {
        ($b:expr, $len:expr, $first:expr, [$($arg:expr),*], |$($v:ident),*| $call:expr) => {{
            if left < $len - 1 || calls.pending.len() != pending_base || !code.still_builtin($b)
            {
                calls.pending.push(reg($first));
                return Fused::Unfused;
            }
            let ($($v,)*) = ($(reg($arg),)*);
            match $call {
                Ok(v) => {
                    regs[0] = v;
                    Fused::Ran($len)
                }
                Err(e @ RuntimeErrorKind::MemoryLimit(_)) => {
                    calls.pending.extend_from_slice(&[$($v),*]);
                    Fused::Refused(Box::new(e), $len)
                }
                Err(e) => Fused::Failed(Box::new(e), $len),
            }
        }};
    }
    match op {
        Op::GetField { obj, key } => fused!(Builtin::GetField, 3, obj, [obj, key], |o, k| {
            Ok::<_, RuntimeErrorKind>(builtins::get_field(o, k))
        }),
        Op::SetField { obj, key, value } => {
            fused!(Builtin::SetField, 4, obj, [obj, key, value], |o, k, v| {
                builtins::set_field(mc, rt, o, k, v)
            })
        }
        Op::ArrayPush { array, value } => {
            fused!(Builtin::ArrayPush, 3, array, [array, value], |a, v| {
                builtins::array_push(mc, rt, a, &[v])
            })
        }
        Op::ArrayLength { array } => fused!(Builtin::ArrayLength, 2, array, [array], |a| {
            builtins::array_length(a)
        }),
        Op::CreateArray { capacity } => {
            fused!(Builtin::CreateArray, 2, capacity, [capacity], |c| {
                builtins::create_array(mc, rt, Some(c))
            })
        }
        Op::GetUpvalue { name } => fused!(Builtin::GetUpvalue, 2, name, [name], |n| {
            builtins::get_upvalue(calls, n)
        }),
        Op::SetUpvalue { name, value } => {
            fused!(Builtin::SetUpvalue, 3, name, [name, value], |n, v| {
                builtins::set_upvalue(mc, calls, n, v)
            })
        }
        _ => Fused::Failed(
            Box::new(RuntimeErrorKind::Internal("not a fused builtin op")),
            1,
        ),
    }
}

/// Captures a callee's declared upvalues by name (StoffelVM resolves them at every call).
fn capture<'gc>(
    mc: &Mutation<'gc>,
    calls: &Calls<'gc>,
    code: &Code,
    rt: &Runtime,
    names: &[std::rc::Rc<str>],
) -> Result<Env<'gc>, RuntimeErrorKind> {
    let mut cells = Cells::with_capacity(names.len());
    for name in names {
        let cell = calls
            .find_upvalue(mc, code, name)
            .ok_or_else(|| RuntimeErrorKind::UpvalueNotFound(name.to_string()))?;
        cells.push(Upvalue {
            name: Str::alloc_copy(mc, &rt.meter, name),
            cell,
        });
    }
    Ok(alloc_env(mc, &rt.meter, cells))
}

/// Pops the top frame, giving `value` to its caller's r0. Returns true when the frame was the
/// activation's entry (the activation is then finished and `value` is its result).
fn return_from_frame<'gc>(interp: &mut Interp<'gc>, value: Value<'gc>) -> bool {
    let Some(frame) = interp.calls.frames.pop() else {
        return true;
    };
    interp.pop_registers(frame.base as usize);
    interp
        .calls
        .pending
        .truncate(frame.restore_pending as usize);
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

/// The kind name used in messages about builtin arguments.
pub(crate) fn kind_name(v: Value<'_>) -> &'static str {
    v.kind().type_name()
}
