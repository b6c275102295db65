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

mod ops;

use gc_arena::lock::RefLock;
use gc_arena::{Collect, Gc, Mutation};

use crate::builtins::{self, Outcome};
use crate::code::{Binding, Code};
use crate::heap::{Env, Meter, Str, Upvalue, alloc_env};
use crate::program::Instruction;
use crate::value::{Kind, Value};

pub use ops::{BinOp, compare};

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
    /// The most frames that may be live at once.
    pub max_depth: usize,
    /// Heap bytes (meter plus interpreter stacks) above which allocation fails.
    pub memory_limit: Option<usize>,
    /// The size of the last allocation [`Runtime::check_alloc`] refused.
    refused: std::cell::Cell<usize>,
}

impl Runtime {
    /// Fresh runtime state with default limits.
    pub fn new(meter: Meter) -> Runtime {
        Runtime {
            meter,
            output: Output::Stdout,
            next_heap_id: 1,
            max_depth: crate::vm::DEFAULT_MAX_DEPTH,
            memory_limit: None,
            refused: std::cell::Cell::new(0),
        }
    }

    /// Takes the next object/array id.
    pub fn heap_id(&mut self) -> u64 {
        let id = self.next_heap_id;
        self.next_heap_id += 1;
        id
    }

    /// Fails if allocating `bytes` more would pass the memory limit.
    pub fn check_alloc(&self, bytes: usize) -> Result<(), ErrorKind> {
        match self.memory_limit {
            Some(limit) if self.meter.bytes().saturating_add(bytes) > limit => {
                self.refused.set(bytes);
                Err(ErrorKind::MemoryLimit(limit))
            }
            _ => Ok(()),
        }
    }
}

/// What went wrong, without where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
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
    pub kind: ErrorKind,
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

/// The interpreter's stacks. Lives in the arena root.
#[derive(Collect, Default)]
#[collect(no_drop)]
pub struct Interp<'gc> {
    regs: Vec<Value<'gc>>,
    frames: Vec<Frame<'gc>>,
    pending: Vec<Value<'gc>>,
    activations: Vec<Activation>,
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
    /// The activation failed and has been unwound.
    Error(RuntimeError),
}

impl<'gc> Interp<'gc> {
    /// Frames live in all activations.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Activations in progress (1 for a plain execute, more while host functions re-enter).
    pub fn activation_count(&self) -> usize {
        self.activations.len()
    }

    /// Takes the value the last finished activation returned, so the interpreter does not
    /// keep it alive.
    pub fn take_result(&mut self) -> Value<'gc> {
        std::mem::replace(&mut self.result, Value::Unit)
    }

    /// The running function and the index of the instruction it will run next.
    pub fn position(&self) -> Option<(u32, u32)> {
        self.frames.last().map(|f| (f.func, f.ip))
    }

    /// Bytes the stacks hold, for the memory limit.
    pub fn stack_bytes(&self) -> usize {
        (self.regs.capacity() + self.pending.capacity()) * std::mem::size_of::<Value<'_>>()
            + self.frames.capacity() * std::mem::size_of::<Frame<'_>>()
            + self.alloc_wait
    }

    /// Drops every activation (used after a host panicked through a nested execution).
    pub fn reset(&mut self) {
        self.regs.clear();
        self.frames.clear();
        self.pending.clear();
        self.activations.clear();
        self.result = Value::Unit;
        self.yielded = false;
        self.alloc_wait = 0;
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
            return Err(entry_error(ErrorKind::Arity {
                function: f.name.to_string(),
                expected: f.params.len(),
                got: args.len(),
            }));
        }
        if self.frames.len() >= rt.max_depth {
            return Err(entry_error(ErrorKind::DepthExceeded(rt.max_depth)));
        }
        self.activations.push(Activation {
            frame_base: self.frames.len(),
            reg_base: self.regs.len(),
            pending_base: self.pending.len(),
        });
        let args_base = self.pending.len();
        self.pending.extend_from_slice(args);
        self.push_frame(code, func, args_base, args.len(), args_base, None);
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
        b: crate::code::Builtin,
        args: &[Value<'gc>],
    ) -> Result<bool, RuntimeError> {
        let act = Activation {
            frame_base: self.frames.len(),
            reg_base: self.regs.len(),
            pending_base: self.pending.len(),
        };
        self.activations.push(act);
        self.pending.extend_from_slice(args);
        match builtins::call(b, mc, self, code, rt, act.pending_base) {
            Ok(Outcome::Value(v)) => {
                self.pending.truncate(act.pending_base);
                self.activations.pop();
                self.result = v;
                Ok(true)
            }
            Ok(Outcome::Entered) => Ok(false),
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
        let base = self.frames.last().map_or(0, |f| f.pending_base());
        &self.pending[base.min(self.pending.len())..]
    }

    /// Completes a pending host call: the result goes to the caller's r0.
    pub fn deliver(&mut self, value: Value<'gc>) {
        if let Some(frame) = self.frames.last() {
            let (base, pending) = (frame.base as usize, frame.pending_base());
            self.regs[base] = value;
            self.pending.truncate(pending);
        }
    }

    /// Fails the current activation at the pending host call.
    pub fn fail_host_call(&mut self, code: &Code, kind: ErrorKind) -> RuntimeError {
        let error = self.error_here(code, kind);
        self.yielded = false;
        self.alloc_wait = 0;
        self.unwind();
        error
    }

    fn error_here(&self, code: &Code, kind: ErrorKind) -> RuntimeError {
        match self.frames.last() {
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

    /// Removes the current activation and everything it pushed.
    fn unwind(&mut self) {
        if let Some(act) = self.activations.pop() {
            self.frames.truncate(act.frame_base);
            self.regs.truncate(act.reg_base);
            self.pending.truncate(act.pending_base);
        }
    }

    /// Pushes a frame for `func`, whose `arg_count` arguments are on the pending stack at
    /// `args_base`. The caller has checked arity and depth.
    pub(crate) fn push_frame(
        &mut self,
        code: &Code,
        func: u32,
        args_base: usize,
        arg_count: usize,
        restore_pending: usize,
        env: Option<Env<'gc>>,
    ) {
        let f = &code.functions[func as usize];
        let base = self.regs.len();
        self.regs.resize(base + f.frame_size as usize, Value::Unit);
        let n = arg_count.min(f.frame_size as usize);
        self.regs[base..base + n].copy_from_slice(&self.pending[args_base..args_base + n]);
        self.frames.push(Frame {
            func,
            ip: 0,
            cmp: 0,
            base: base as u32,
            args_base: args_base as u32,
            arg_count: arg_count as u32,
            restore_pending: restore_pending as u32,
            env,
        });
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
                && let Some(up) = env.cells.iter().rev().find(|u| u.name.as_str() == name)
            {
                return Some(up.cell);
            }
        }
        None
    }

    /// The current frame's upvalue cell called `name`.
    pub(crate) fn current_upvalue(&self, name: &str) -> Option<Gc<'gc, RefLock<Value<'gc>>>> {
        let env = self.frames.last()?.env?;
        env.cells
            .iter()
            .rev()
            .find(|u| u.name.as_str() == name)
            .map(|u| u.cell)
    }

    /// Arguments on the pending stack from `base` on.
    pub(crate) fn args_from(&self, base: usize) -> &[Value<'gc>] {
        &self.pending[base.min(self.pending.len())..]
    }

    /// Starts a closure call: a frame for bytecode function `func` with the arguments at
    /// `args_base`, whose pending stack is restored to `restore` on return.
    pub(crate) fn enter_closure(
        &mut self,
        code: &Code,
        rt: &Runtime,
        func: u32,
        args_base: usize,
        restore: usize,
        env: Env<'gc>,
    ) -> Result<(), ErrorKind> {
        let f = &code.functions[func as usize];
        let got = self.pending.len() - args_base;
        if got != f.params.len() {
            return Err(ErrorKind::Arity {
                function: f.name.to_string(),
                expected: f.params.len(),
                got,
            });
        }
        if self.frames.len() >= rt.max_depth {
            return Err(ErrorKind::DepthExceeded(rt.max_depth));
        }
        self.push_frame(code, func, args_base, got, restore, Some(env));
        Ok(())
    }
}

/// Runs the current activation for at most `budget` instructions.
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
) -> (Step, u32) {
    let mut remaining = budget;
    interp.yielded = false;
    let retry = std::mem::take(&mut interp.alloc_wait) > 0;
    let step = run_inner(mc, interp, constants, code, rt, &mut remaining, retry);
    interp.yielded = matches!(step, Step::Yield);
    (step, budget - remaining)
}

/// A register of the running frame's window.
macro_rules! reg {
    ($regs:expr, $r:expr) => {
        $regs[$r as usize]
    };
}

fn run_inner<'gc>(
    mc: &Mutation<'gc>,
    interp: &mut Interp<'gc>,
    constants: &[Value<'gc>],
    code: &Code,
    rt: &mut Runtime,
    remaining: &mut u32,
    retry: bool,
) -> Step {
    let start = *remaining;
    'frames: loop {
        let Some(frame) = interp.frames.last().copied() else {
            return Step::Done;
        };
        let act = match interp.activations.last() {
            Some(a) => *a,
            None => return Step::Done,
        };
        let func = &code.functions[frame.func as usize];
        let ops = &func.code[..];
        let base = frame.base as usize;
        let mut ip = frame.ip as usize;
        let mut cmp = frame.cmp;
        // The frame's registers, borrowed once per frame switch: register access is then one
        // bounds check against a length held in a register. Every arm that needs the whole
        // interpreter (calls, returns, errors) leaves this loop afterwards, which ends the
        // borrow.
        let regs: &mut [Value<'gc>] = &mut interp.regs[base..base + func.frame_size as usize];

        // Saves ip and flag into the frame and fails the activation with `kind`.
        macro_rules! fail {
            ($kind:expr) => {{
                let kind = $kind;
                if let Some(f) = interp.frames.last_mut() {
                    f.ip = ip as u32;
                    f.cmp = cmp;
                }
                let error = interp.error_here(code, kind);
                interp.unwind();
                return Step::Error(error);
            }};
        }
        macro_rules! save {
            () => {
                if let Some(f) = interp.frames.last_mut() {
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
                if retry && *remaining + 1 == start {
                    fail!(kind)
                }
                ip -= 1;
                *remaining += 1;
                interp.alloc_wait = rt.refused.get().max(1);
                save!();
                return Step::Yield;
            }};
        }

        loop {
            if *remaining == 0 {
                save!();
                return Step::Yield;
            }
            *remaining -= 1;
            let Some(&ins) = ops.get(ip) else {
                // Fell off the end: the entry returns its r0, a callee returns Unit.
                let value = if interp.frames.len() - 1 == act.frame_base {
                    regs[0]
                } else {
                    Value::Unit
                };
                if return_from_frame(interp, act, value) {
                    return Step::Done;
                }
                continue 'frames;
            };
            ip += 1;
            match ins {
                Instruction::Ldi { dst, constant } => {
                    reg!(regs, dst) = constants[constant as usize];
                }
                Instruction::Mov { dst, src } => {
                    reg!(regs, dst) = reg!(regs, src);
                }
                Instruction::Add { dst, a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match (x, y) {
                        (Value::I64(x), Value::I64(y)) => Value::I64(x.wrapping_add(y)),
                        (Value::String(x), Value::String(y)) => {
                            let len = x.as_str().len().saturating_add(y.as_str().len());
                            if let Err(e) = rt.check_alloc(len) {
                                wait_for_memory!(e)
                            }
                            let mut s = String::with_capacity(len);
                            s.push_str(x.as_str());
                            s.push_str(y.as_str());
                            Value::String(Str::alloc(mc, &rt.meter, s.into_boxed_str()))
                        }
                        _ => match ops::binary(BinOp::Add, x, y) {
                            Ok(v) => v,
                            Err(e) => fail!(e),
                        },
                    };
                }
                Instruction::Sub { dst, a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match (x, y) {
                        (Value::I64(x), Value::I64(y)) => Value::I64(x.wrapping_sub(y)),
                        _ => match ops::binary(BinOp::Sub, x, y) {
                            Ok(v) => v,
                            Err(e) => fail!(e),
                        },
                    };
                }
                Instruction::Mul { dst, a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match (x, y) {
                        (Value::I64(x), Value::I64(y)) => Value::I64(x.wrapping_mul(y)),
                        _ => match ops::binary(BinOp::Mul, x, y) {
                            Ok(v) => v,
                            Err(e) => fail!(e),
                        },
                    };
                }
                Instruction::Div { dst, a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match ops::binary(BinOp::Div, x, y) {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    };
                }
                Instruction::Mod { dst, a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match (x, y) {
                        (Value::I64(x), Value::I64(y)) if y > 0 => Value::I64(x % y),
                        _ => match ops::binary(BinOp::Mod, x, y) {
                            Ok(v) => v,
                            Err(e) => fail!(e),
                        },
                    };
                }
                Instruction::And { dst, a, b }
                | Instruction::Or { dst, a, b }
                | Instruction::Xor { dst, a, b }
                | Instruction::Shl {
                    dst,
                    src: a,
                    amount: b,
                }
                | Instruction::Shr {
                    dst,
                    src: a,
                    amount: b,
                } => {
                    let op = match ins {
                        Instruction::And { .. } => BinOp::And,
                        Instruction::Or { .. } => BinOp::Or,
                        Instruction::Xor { .. } => BinOp::Xor,
                        Instruction::Shl { .. } => BinOp::Shl,
                        _ => BinOp::Shr,
                    };
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    reg!(regs, dst) = match ops::binary(op, x, y) {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    };
                }
                Instruction::Not { dst, src } => {
                    reg!(regs, dst) = match ops::not(reg!(regs, src)) {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    };
                }
                Instruction::Cmp { a, b } => {
                    let (x, y) = (reg!(regs, a), reg!(regs, b));
                    cmp = match (x, y) {
                        (Value::I64(x), Value::I64(y)) => x.cmp(&y) as i8,
                        _ => match ops::compare(x, y) {
                            Ok(c) => c,
                            Err(e) => fail!(e),
                        },
                    };
                }
                Instruction::Jmp { label } => ip = label as usize,
                Instruction::JmpEq { label } => {
                    if cmp == 0 {
                        ip = label as usize
                    }
                }
                Instruction::JmpNeq { label } => {
                    if cmp != 0 {
                        ip = label as usize
                    }
                }
                Instruction::JmpLt { label } => {
                    if cmp < 0 {
                        ip = label as usize
                    }
                }
                Instruction::JmpGt { label } => {
                    if cmp > 0 {
                        ip = label as usize
                    }
                }
                Instruction::PushArg { src } => {
                    let v = reg!(regs, src);
                    interp.pending.push(v);
                }
                Instruction::Ld { dst, offset } => {
                    let pending_base = frame.pending_base();
                    let len = interp.pending.len() - pending_base;
                    let index = len as i64 - 1 + i64::from(offset);
                    if index < 0 || index >= len as i64 {
                        fail!(ErrorKind::StackOutOfBounds { offset, len })
                    }
                    reg!(regs, dst) = interp.pending[pending_base + index as usize];
                }
                Instruction::Ret { src } => {
                    let value = reg!(regs, src);
                    if return_from_frame(interp, act, value) {
                        return Step::Done;
                    }
                    continue 'frames;
                }
                Instruction::Call { callee } => {
                    save!();
                    let pending_base = frame.pending_base();
                    match code.bindings[callee as usize] {
                        Binding::Function(target) => {
                            let f = &code.functions[target as usize];
                            let got = interp.pending.len() - pending_base;
                            if got != f.params.len() {
                                fail!(ErrorKind::Arity {
                                    function: f.name.to_string(),
                                    expected: f.params.len(),
                                    got,
                                })
                            }
                            if interp.frames.len() >= rt.max_depth {
                                fail!(ErrorKind::DepthExceeded(rt.max_depth))
                            }
                            let env = if f.upvalues.is_empty() {
                                None
                            } else {
                                match capture(mc, interp, code, rt, &f.upvalues) {
                                    Ok(env) => Some(env),
                                    Err(e) => fail!(e),
                                }
                            };
                            interp.push_frame(code, target, pending_base, got, pending_base, env);
                            continue 'frames;
                        }
                        Binding::Builtin(b) => {
                            match builtins::call(b, mc, interp, code, rt, pending_base) {
                                Ok(Outcome::Value(v)) => {
                                    interp.regs[base] = v;
                                    interp.pending.truncate(pending_base);
                                    // The builtin had the whole interpreter: borrow the
                                    // frame's registers afresh (ip and flag are saved).
                                    continue 'frames;
                                }
                                Ok(Outcome::Entered) => continue 'frames,
                                Err(e @ ErrorKind::MemoryLimit(_)) => wait_for_memory!(e),
                                Err(e) => fail!(e),
                            }
                        }
                        Binding::Host(host) => {
                            return Step::HostCall { host, slot: callee };
                        }
                        Binding::Unbound => {
                            fail!(ErrorKind::FunctionNotFound(
                                code.names[callee as usize].to_string()
                            ))
                        }
                    }
                }
            }
        }
    }
}

/// Captures a callee's declared upvalues by name (StoffelVM resolves them at every call).
fn capture<'gc>(
    mc: &Mutation<'gc>,
    interp: &Interp<'gc>,
    code: &Code,
    rt: &Runtime,
    names: &[std::rc::Rc<str>],
) -> Result<Env<'gc>, ErrorKind> {
    let mut cells = Vec::with_capacity(names.len());
    for name in names {
        let cell = interp
            .find_upvalue(mc, code, name)
            .ok_or_else(|| ErrorKind::UpvalueNotFound(name.to_string()))?;
        cells.push(Upvalue {
            name: Str::alloc(mc, &rt.meter, Box::from(&**name)),
            cell,
        });
    }
    Ok(alloc_env(mc, &rt.meter, cells))
}

/// Pops the top frame, giving `value` to its caller's r0. Returns true when the frame was the
/// activation's entry (the activation is then finished and `value` is its result).
fn return_from_frame<'gc>(interp: &mut Interp<'gc>, act: Activation, value: Value<'gc>) -> bool {
    let Some(frame) = interp.frames.pop() else {
        return true;
    };
    interp.regs.truncate(frame.base as usize);
    interp.pending.truncate(frame.restore_pending as usize);
    if interp.frames.len() <= act.frame_base {
        interp.result = value;
        interp.activations.pop();
        interp.regs.truncate(act.reg_base);
        interp.pending.truncate(act.pending_base);
        return true;
    }
    if let Some(caller) = interp.frames.last() {
        interp.regs[caller.base as usize] = value;
    }
    false
}

/// The kind name used in messages about builtin arguments.
pub(crate) fn kind_name(v: Value<'_>) -> &'static str {
    v.kind().type_name()
}
