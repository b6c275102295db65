//! The Rust embedding API ([`Vm`]) and the driver loop that runs the interpreter in steps.
//!
//! A `Vm` owns one gc-arena arena. [`Vm::execute`] starts an activation and then alternates:
//! run the interpreter for a bounded number of instructions inside `mutate`, pay the
//! collector's debt (and run finalizers of dead foreign objects) outside it, check limits.
//! When bytecode calls a host function the step ends; the driver converts the arguments to
//! [`Val`]s, calls the host with `&mut Vm` (so it may execute code or touch the heap of the
//! same VM), and delivers the result into the caller's r0.
//!
//! Heap values reach the host only as [`Handle`]s inside [`Val`]s. A handle in a result
//! belongs to the caller until [`Vm::release`]; a handle in a host function's arguments is
//! valid during that call (retain it with [`Vm::retain`] to keep it). A handle a host
//! function returns is handed over to the VM (see [`HostFn`]).

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use gc_arena::arena::CollectionPhase;
use gc_arena::lock::RefLock;
use gc_arena::{Arena, Collect, Gc, GcWeak, Mutation, Rootable};

use crate::asm::{self, AsmError};
use crate::handles::{Handle, HandleError, HandleTable};
use crate::heap::{Foreign, ForeignList, Meter, Str};
use crate::interp::builtins::Builtin;
use crate::interp::code::{Binding, Code};
use crate::interp::{self, ErrorKind, Interp, Output, Runtime, RuntimeError, Step};
use crate::limits::{Fuel, MAX_REENTRY, settle_memory};
use crate::program::{Constant, Program};
use crate::stfl::{self, LoadError};
use crate::value::{Kind, Value};

/// Collector pacing: gc-arena's defaults with the collector doing more work per allocated
/// byte (every work factor × 0.6) and sleeping a little longer between cycles (0.75 of the
/// remembered heap instead of 0.5). Measured on binary trees of depth 20 (a large live heap
/// plus garbage): peak RSS 1.21 GiB → 0.61 GiB at the same time (±0.3 s of 5.9 s); the
/// small-heap workloads did not change.
const PACING: gc_arena::metrics::Pacing = {
    let d = gc_arena::metrics::Pacing::DEFAULT;
    gc_arena::metrics::Pacing {
        sleep_factor: 0.75,
        min_sleep: d.min_sleep,
        mark_factor: d.mark_factor * 0.6,
        trace_factor: d.trace_factor * 0.6,
        keep_factor: d.keep_factor * 0.6,
        drop_factor: d.drop_factor * 0.6,
        free_factor: d.free_factor * 0.6,
    }
};

/// A value outside the arena: numbers and strings by value, heap values by handle.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// `()`.
    Unit,
    /// A boolean.
    Bool(bool),
    /// i64.
    I64(i64),
    /// i32.
    I32(i32),
    /// i16.
    I16(i16),
    /// i8.
    I8(i8),
    /// u8.
    U8(u8),
    /// u16.
    U16(u16),
    /// u32.
    U32(u32),
    /// u64.
    U64(u64),
    /// f64.
    Float(f64),
    /// A string (a copy).
    String(String),
    /// An object.
    Object(Handle),
    /// An array.
    Array(Handle),
    /// A closure.
    Closure(Handle),
    /// A foreign object.
    Foreign(Handle),
}

impl Val {
    /// The handle, for heap values.
    pub fn handle(&self) -> Option<Handle> {
        match self {
            Val::Object(h) | Val::Array(h) | Val::Closure(h) | Val::Foreign(h) => Some(*h),
            _ => None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Val::Unit => Kind::Unit,
            Val::Bool(_) => Kind::Bool,
            Val::I64(_) => Kind::I64,
            Val::I32(_) => Kind::I32,
            Val::I16(_) => Kind::I16,
            Val::I8(_) => Kind::I8,
            Val::U8(_) => Kind::U8,
            Val::U16(_) => Kind::U16,
            Val::U32(_) => Kind::U32,
            Val::U64(_) => Kind::U64,
            Val::Float(_) => Kind::Float,
            Val::String(_) => Kind::String,
            Val::Object(_) => Kind::Object,
            Val::Array(_) => Kind::Array,
            Val::Closure(_) => Kind::Closure,
            Val::Foreign(_) => Kind::Foreign,
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I64(v)
    }
}

impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Bool(v)
    }
}

impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Float(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::String(v.to_owned())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::String(v)
    }
}

/// A host function failed; the message becomes part of the runtime error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

impl From<&str> for HostError {
    fn from(s: &str) -> Self {
        HostError(s.to_owned())
    }
}

impl From<String> for HostError {
    fn from(s: String) -> Self {
        HostError(s)
    }
}

impl From<VmError> for HostError {
    fn from(e: VmError) -> Self {
        HostError(e.to_string())
    }
}

/// A host function: called with the VM (to re-enter it or use its heap) and the arguments.
///
/// Handles in the arguments are valid during the call (retain one to keep it). A handle in
/// the returned value is handed over to the VM, which releases it once it has the value: a
/// host returns a fresh object without leaking it, and returning an argument is fine; to
/// return a value the host also keeps, retain it first.
pub type HostFn = Rc<dyn Fn(&mut Vm, &[Val]) -> Result<Val, HostError>>;

/// A misuse of the embedding API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// No function, builtin or host function has this name.
    #[error("function '{0}' not found")]
    FunctionNotFound(String),
    /// A bad handle.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// A handle of the wrong kind (an array id passed as an object, …).
    #[error("expected {expected}, got {got}")]
    WrongKind {
        /// What was needed.
        expected: &'static str,
        /// What was given.
        got: &'static str,
    },
    /// Host functions re-entered the VM too deeply.
    #[error("host functions re-entered the VM more than {MAX_REENTRY} levels deep")]
    TooDeeplyNested,
    /// The program has more constants than the VM can address.
    #[error("too many constants loaded")]
    TooManyConstants,
}

/// Everything that can go wrong in a VM call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VmError {
    /// Bytecode could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Assembly could not be assembled.
    #[error(transparent)]
    Assembly(#[from] AsmError),
    /// Code failed while running.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The API was misused.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl VmError {
    /// Whether this is a limit the host set (instructions, call depth, memory) rather than
    /// a fault of the code or of the call.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            VmError::Runtime(RuntimeError {
                kind: ErrorKind::FuelExhausted(_)
                    | ErrorKind::DepthExceeded(_)
                    | ErrorKind::MemoryLimit(_),
                ..
            })
        )
    }
}

impl From<HandleError> for VmError {
    fn from(e: HandleError) -> Self {
        VmError::Api(ApiError::Handle(e))
    }
}

/// Collector and heap figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcStats {
    /// Estimated bytes of live heap values (strings, objects, arrays, closures, …).
    pub heap_bytes: usize,
    /// Bytes of the interpreter's stacks.
    pub stack_bytes: usize,
    /// `Gc` allocations the collector tracks.
    pub gc_objects: usize,
    /// Live handles.
    pub live_handles: usize,
    /// Foreign objects whose data is still held (not yet finalized).
    pub foreign_objects: usize,
    /// Collection cycles completed (counted when marking finishes).
    pub collections: u64,
}

#[derive(Collect)]
#[collect(no_drop)]
struct Root<'gc> {
    interp: Interp<'gc>,
    constants: Vec<Value<'gc>>,
    handles: HandleTable<'gc>,
    foreigns: ForeignList<'gc>,
}

type VmArena = Arena<Rootable![Root<'_>]>;

struct HostEntry {
    name: Rc<str>,
    function: HostFn,
}

/// Keeps the re-entry depth right even if a host function panics through `execute`.
struct NestGuard(Rc<Cell<u32>>);

impl Drop for NestGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A StoffelVM virtual machine.
///
/// ```
/// use stoffel_vm::{Vm, Val};
/// let mut vm = Vm::new();
/// vm.load_assembly(".function add(a, b)\n ADD r2, r0, r1\n RET r2\n").unwrap();
/// assert_eq!(vm.execute("add", &[Val::I64(2), Val::I64(40)]).unwrap(), Val::I64(42));
/// ```
pub struct Vm {
    arena: VmArena,
    code: Code,
    hosts: Vec<HostEntry>,
    rt: Runtime,
    foreign_data: HashMap<u64, Box<dyn Any>>,
    next_foreign_id: u64,
    fuel: Fuel,
    nesting: Rc<Cell<u32>>,
    collections: u64,
    instructions: u64,
    trace: Option<TraceSink>,
    /// Room for a host call's arguments, reused from call to call (a nested call finds it
    /// taken and uses a fresh one).
    host_args: Vec<Val>,
}

/// Receives one line per executed instruction (see [`Vm::set_trace`]).
pub type TraceSink = Box<dyn FnMut(&str)>;

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

impl Vm {
    /// A VM with the builtins and default limits (depth 10 000, no instruction or memory
    /// limit), printing to stdout.
    pub fn new() -> Vm {
        let arena = VmArena::new(|mc| Root {
            interp: Interp::default(),
            constants: Vec::new(),
            handles: HandleTable::new(),
            foreigns: Gc::new(mc, RefLock::new(Vec::new())),
        });
        arena.metrics().set_pacing(PACING);
        Vm {
            arena,
            code: Code::with_builtins(),
            hosts: Vec::new(),
            rt: Runtime::new(Meter::default()),
            foreign_data: HashMap::new(),
            next_foreign_id: 1,
            fuel: Fuel::default(),
            nesting: Rc::new(Cell::new(0)),
            collections: 0,
            instructions: 0,
            trace: None,
            host_args: Vec::new(),
        }
    }

    // ----- loading -----

    /// Loads STFL v1 bytecode. Adds to what is loaded (later names win); a failed load
    /// changes nothing.
    ///
    /// ```
    /// # use stoffel_vm::{Vm, VmError};
    /// let mut vm = Vm::new();
    /// let err = vm.load_bytecode(b"STFL\x09\x00").unwrap_err();
    /// assert!(matches!(err, VmError::Load(_)));
    /// assert!(err.to_string().contains("version"), "{err}");
    /// ```
    pub fn load_bytecode(&mut self, bytes: &[u8]) -> Result<(), VmError> {
        let program = stfl::load(bytes)?;
        self.load_program(program)
    }

    /// Assembles and loads text assembly (see [`crate::asm`]).
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// vm.load_assembly(".function answer\n    LDI r1, 42\n    RET r1\n").unwrap();
    /// assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
    /// // Errors say where: line and column.
    /// let err = vm.load_assembly(".function f\n    FROB r1\n").unwrap_err();
    /// assert!(err.to_string().starts_with("line 2, column 5"), "{err}");
    /// ```
    pub fn load_assembly(&mut self, source: &str) -> Result<(), VmError> {
        let program = asm::assemble(source)?;
        self.load_program(program)
    }

    /// Loads a validated program.
    pub fn load_program(&mut self, program: Program) -> Result<(), VmError> {
        let base = self.arena.mutate(|_, root| root.constants.len());
        if base + program.constants().len() > u32::MAX as usize {
            return Err(ApiError::TooManyConstants.into());
        }
        let meter = &self.rt.meter;
        self.arena.mutate_root(|mc, root| {
            for c in program.constants() {
                let v = constant_value(mc, meter, c);
                root.constants.push(v);
            }
        });
        self.code.link(Rc::new(program), base as u32);
        Ok(())
    }

    /// Every loaded program, in load order.
    pub fn programs(&self) -> impl Iterator<Item = &Program> {
        self.code.programs.iter().map(|p| &**p)
    }

    /// Whether `name` is currently defined (bytecode, builtin or host function).
    pub fn has_function(&self, name: &str) -> bool {
        self.code.lookup(name) != Binding::Unbound
    }

    // ----- host functions -----

    /// Registers a host function under `name`, replacing any function of that name
    /// (bytecode, builtin or host), as StoffelVM does. The closure may keep state and may
    /// call back into the VM it gets.
    ///
    /// ```
    /// # use std::cell::Cell; use std::rc::Rc;
    /// # use stoffel_vm::{HostError, Val, Vm};
    /// let mut vm = Vm::new();
    /// let calls = Rc::new(Cell::new(0));
    /// let counter = calls.clone();
    /// vm.register_function("twice", move |_vm, args| {
    ///     counter.set(counter.get() + 1);
    ///     match args {
    ///         [Val::I64(n)] => Ok(Val::I64(n * 2)),
    ///         _ => Err(HostError::from("twice: expected one int64")),
    ///     }
    /// });
    /// vm.load_assembly(".function main\n LDI r1, 21\n PUSHARG r1\n CALL twice\n RET r0\n").unwrap();
    /// assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
    /// assert_eq!(calls.get(), 1);
    /// ```
    pub fn register_function<F>(&mut self, name: &str, function: F)
    where
        F: Fn(&mut Vm, &[Val]) -> Result<Val, HostError> + 'static,
    {
        let slot = self.code.slot(name);
        let entry = HostEntry {
            name: Rc::from(name),
            function: Rc::new(function),
        };
        match self.code.bindings[slot as usize] {
            Binding::Host(i) => self.hosts[i as usize] = entry,
            _ => {
                self.hosts.push(entry);
                self.code.bindings[slot as usize] = Binding::Host(self.hosts.len() as u32 - 1);
            }
        }
    }

    // ----- limits and output -----

    /// Instructions one top-level execution may run (`None`: unlimited). Host functions'
    /// nested executions count against the outer execution's budget.
    ///
    /// ```
    /// # use stoffel_vm::{ErrorKind, Val, Vm, VmError};
    /// let mut vm = Vm::new();
    /// vm.load_assembly(".function spin\ntop:\n    JMP top\n").unwrap();
    /// vm.set_instruction_limit(Some(10_000));
    /// match vm.execute("spin", &[]) {
    ///     Err(VmError::Runtime(e)) => assert_eq!(e.kind, ErrorKind::FuelExhausted(10_000)),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn set_instruction_limit(&mut self, limit: Option<u64>) {
        self.rt.limits.instructions = limit;
    }

    /// Frames that may be live at once (at least 1).
    pub fn set_max_call_depth(&mut self, depth: usize) {
        self.rt.limits.max_depth = depth.max(1);
    }

    /// Bytes of heap values plus interpreter stacks above which execution fails
    /// (`None`: unlimited). Not counted: the fixed register window every VM keeps above its
    /// deepest frame (4 096 registers, 64 KiB) and the VM's own code.
    pub fn set_memory_limit(&mut self, bytes: Option<usize>) {
        self.rt.limits.memory = bytes;
    }

    /// Where `print` writes.
    pub fn set_output(&mut self, output: Output) {
        self.rt.output = output;
    }

    /// Calls `sink` with a line for every instruction executed (function, index, instruction),
    /// or stops tracing with `None`. Tracing runs the interpreter one instruction per step, so
    /// it is slow; it costs nothing when off.
    pub fn set_trace(&mut self, sink: Option<TraceSink>) {
        self.trace = sink;
    }

    /// The text `print` would write for `value` (strings raw, `Object(3)`, `42u8`, …).
    pub fn display(&self, value: &Val) -> Result<String, VmError> {
        let meter = &self.rt.meter;
        self.arena.mutate(|mc, root| {
            let v = val_to_value(mc, meter, &root.handles, value)?;
            let mut out = String::new();
            v.write_display(&mut out);
            Ok(out)
        })
    }

    // ----- execution -----

    /// Runs `name` (a bytecode function, builtin or host function) with `args`. A bytecode
    /// function needs exactly its parameter count, or no arguments (parameters are then
    /// Unit, as StoffelVM's `execute`). Heap values in the result are new handles the caller
    /// owns.
    pub fn execute(&mut self, name: &str, args: &[Val]) -> Result<Val, VmError> {
        self.run_named(name, args, true)
    }

    /// Like [`Vm::execute`], but a bytecode function must get exactly its parameter count,
    /// also when that is more than zero and `args` is empty (StoffelVM's
    /// `execute_with_args`).
    pub fn call(&mut self, name: &str, args: &[Val]) -> Result<Val, VmError> {
        self.run_named(name, args, false)
    }

    fn run_named(&mut self, name: &str, args: &[Val], lenient: bool) -> Result<Val, VmError> {
        match self.code.lookup(name) {
            Binding::Unbound => Err(ApiError::FunctionNotFound(name.to_owned()).into()),
            Binding::Host(h) => {
                let _guard = self.enter()?;
                self.call_host_directly(h, name, args)
            }
            Binding::Function(f) => {
                let _guard = self.enter()?;
                let code = &self.code;
                let rt = &mut self.rt;
                self.arena.mutate_root(|mc, root| -> Result<(), VmError> {
                    // The usual few arguments convert into a stack buffer, not a Vec.
                    let mut buffer = [Value::Unit; 8];
                    let owned;
                    let values: &[Value<'_>] = if args.len() <= buffer.len() {
                        for (slot, a) in buffer.iter_mut().zip(args) {
                            *slot = val_to_value(mc, &rt.meter, &root.handles, a)?;
                        }
                        &buffer[..args.len()]
                    } else {
                        owned = vals_to_values(mc, &rt.meter, &root.handles, args)?;
                        &owned
                    };
                    root.interp.begin_function(code, rt, f, values, lenient)?;
                    Ok(())
                })?;
                self.drive()
            }
            Binding::Builtin(b) => {
                let _guard = self.enter()?;
                self.run_builtin(b, args)
            }
        }
    }

    fn enter(&mut self) -> Result<NestGuard, VmError> {
        let depth = self.nesting.get();
        if depth >= MAX_REENTRY {
            return Err(ApiError::TooDeeplyNested.into());
        }
        if depth == 0 {
            // A top-level execution: fresh budget, and no state left by a host panic.
            self.fuel.refill(self.rt.limits.instructions);
            if self.arena.mutate(|_, root| root.interp.activation_count()) > 0 {
                self.arena.mutate_root(|_, root| root.interp.reset());
            }
        }
        self.nesting.set(depth + 1);
        Ok(NestGuard(self.nesting.clone()))
    }

    fn run_builtin(&mut self, b: Builtin, args: &[Val]) -> Result<Val, VmError> {
        let code = &self.code;
        let rt = &mut self.rt;
        let finished = self
            .arena
            .mutate_root(|mc, root| -> Result<bool, VmError> {
                let values = vals_to_values(mc, &rt.meter, &root.handles, args)?;
                Ok(root.interp.begin_builtin(mc, code, rt, b, &values)?)
            })?;
        if finished {
            self.arena
                .mutate_root(|_, root| value_to_val(root.interp.take_result(), &mut root.handles))
        } else {
            self.drive()
        }
    }

    /// Runs the current activation to its end.
    fn drive(&mut self) -> Result<Val, VmError> {
        loop {
            let budget = match self.fuel.slice(self.trace.is_some()) {
                Ok(budget) => budget,
                Err(e) => return Err(self.fail_activation(e.into())),
            };
            if self.trace.is_some() {
                self.trace_next();
            }
            let code = &self.code;
            let rt = &mut self.rt;
            let mut used = 0;
            let step = self.arena.mutate_root(|mc, root| {
                interp::run(
                    mc,
                    &mut root.interp,
                    &root.constants,
                    code,
                    rt,
                    budget,
                    &mut used,
                )
            });
            self.fuel.burn(used);
            self.instructions += u64::from(used);
            match step {
                Step::Yield => {
                    self.collect_debt();
                    let limit = self.rt.limits.memory;
                    if let Err(e) = settle_memory(limit, self, Vm::used_bytes, Vm::collect_all) {
                        return Err(self.fail_activation(e.into()));
                    }
                }
                Step::Done => {
                    // Collect first (the result is rooted in the interpreter meanwhile), so
                    // the result is converted straight into the return value.
                    self.collect_debt();
                    return self.arena.mutate_root(|_, root| {
                        value_to_val(root.interp.take_result(), &mut root.handles)
                    });
                }
                Step::Error(e) => {
                    self.collect_debt();
                    return Err((*e).into());
                }
                Step::HostCall { host, slot } => self.call_host(host, slot)?,
            }
        }
    }

    fn trace_next(&mut self) {
        let Some((func, ip)) = self.arena.mutate(|_, root| root.interp.position()) else {
            return;
        };
        let f = &self.code.functions[func as usize];
        let text = match f.code.get(ip as usize) {
            Some(ins) => self.describe(ins),
            None => "(end of function)".to_owned(),
        };
        let line = format!("{}[{}]: {}", f.name, ip, text);
        if let Some(sink) = self.trace.as_mut() {
            sink(&line);
        }
    }

    /// A linked instruction in assembly-like text (calls by name, constants by value).
    fn describe(&self, ins: &crate::program::Instruction) -> String {
        use crate::program::Instruction as I;
        match *ins {
            I::Ldi { dst, constant } => {
                let c = self.arena.mutate(|_, root| {
                    root.constants
                        .get(constant as usize)
                        .map(|v| v.debug_string())
                        .unwrap_or_default()
                });
                format!("LDI r{dst}, {c}")
            }
            I::Call { callee } => format!("CALL {}", self.code.names[callee as usize]),
            other => {
                let regs: Vec<String> = other.registers().map(|r| format!("r{r}")).collect();
                match other.label() {
                    Some(target) => format!("{} @{target}", other.mnemonic()),
                    None => match other {
                        I::Ld { dst, offset } => format!("LD r{dst}, [sp+{offset}]"),
                        _ => format!("{} {}", other.mnemonic(), regs.join(", ")),
                    },
                }
            }
        }
    }

    fn used_bytes(&self) -> usize {
        self.rt.meter.bytes() + self.arena.mutate(|_, root| root.interp.stack_bytes())
    }

    /// Fails the running activation (at its current instruction) with `kind`.
    fn fail_activation(&mut self, kind: ErrorKind) -> VmError {
        let code = &self.code;
        self.arena
            .mutate_root(|_, root| root.interp.fail_host_call(code, kind))
            .into()
    }

    /// Makes the host call the interpreter stopped at, and delivers its result.
    fn call_host(&mut self, host: u32, slot: u32) -> Result<(), VmError> {
        let mut out = std::mem::take(&mut self.host_args);
        out.clear();
        let args = self.arena.mutate_root(|_, root| {
            for &v in root.interp.host_args() {
                out.push(value_to_val(v, &mut root.handles)?);
            }
            Ok::<_, VmError>(out)
        });
        let args = match args {
            Ok(a) => a,
            Err(e) => {
                return Err(self.fail_activation(ErrorKind::Host {
                    function: self.code.names[slot as usize].to_string(),
                    message: e.to_string(),
                }));
            }
        };
        let entry = &self.hosts[host as usize];
        let (function, name) = (entry.function.clone(), entry.name.clone());
        let result = function(self, &args);
        let delivered = match result {
            Ok(v) => {
                let meter = &self.rt.meter;
                self.arena
                    .mutate_root(|mc, root| {
                        // An integer goes straight to the register: through `val_to_value`
                        // and `?` it is built in a returned `Result` and copied whole, and
                        // that made VM -> C callbacks 10% slower (measured).
                        let value = match v {
                            Val::I64(x) => Value::I64(x),
                            ref other => val_to_value(mc, meter, &root.handles, other)?,
                        };
                        root.interp.deliver(value);
                        // The host handed its result's handle over (see `HostFn`).
                        if let Some(h) = v.handle() {
                            let _ = root.handles.release(h);
                        }
                        Ok::<(), VmError>(())
                    })
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.0),
        };
        // Argument handles live for the call only (unless the host retained them). Released
        // after the result is read: returning an argument is allowed.
        self.release_all(&args);
        let mut args = args;
        args.clear();
        self.host_args = args;
        match delivered {
            Ok(()) => Ok(()),
            Err(message) => Err(self.fail_activation(ErrorKind::Host {
                function: name.to_string(),
                message,
            })),
        }
    }

    /// A host function executed by name: it gets its own argument handles and hands its
    /// result over, exactly as when bytecode calls it; the caller gets a new handle.
    fn call_host_directly(&mut self, host: u32, name: &str, args: &[Val]) -> Result<Val, VmError> {
        let function = self.hosts[host as usize].function.clone();
        let meter = &self.rt.meter;
        let own_args = self.arena.mutate_root(|mc, root| {
            args.iter()
                .map(|a| {
                    let v = val_to_value(mc, meter, &root.handles, a)?;
                    value_to_val(v, &mut root.handles)
                })
                .collect::<Result<Vec<Val>, VmError>>()
        })?;
        let result = function(self, &own_args);
        let meter = &self.rt.meter;
        let out = match result {
            Ok(v) => self.arena.mutate_root(|mc, root| {
                let value = val_to_value(mc, meter, &root.handles, &v)?;
                if let Some(h) = v.handle() {
                    let _ = root.handles.release(h);
                }
                value_to_val(value, &mut root.handles)
            }),
            Err(e) => Err(RuntimeError {
                function: name.to_owned(),
                instruction: 0,
                kind: ErrorKind::Host {
                    function: name.to_owned(),
                    message: e.0,
                },
            }
            .into()),
        };
        self.release_all(&own_args);
        out
    }

    // ----- handles -----

    /// Drops the caller's reference to a heap value (no-op for non-heap values). Releasing a
    /// handle that is already dead is an error.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// let obj = vm.create_object().unwrap();
    /// vm.set_field(&obj, &Val::from("x"), &Val::I64(1)).unwrap();
    /// assert_eq!(vm.gc_stats().live_handles, 1);
    /// vm.release(&obj).unwrap();
    /// assert!(vm.get_field(&obj, &Val::from("x")).is_err(), "a released id is stale");
    /// assert!(vm.release(&obj).is_err(), "and releasing twice is an error, not a crash");
    /// ```
    pub fn release(&mut self, value: &Val) -> Result<(), VmError> {
        match value.handle() {
            Some(h) => Ok(self.arena.mutate_root(|_, root| root.handles.release(h))?),
            None => Ok(()),
        }
    }

    /// Adds a reference to a heap value's handle: it then needs one more [`Vm::release`].
    pub fn retain(&mut self, value: &Val) -> Result<(), VmError> {
        match value.handle() {
            Some(h) => Ok(self.arena.mutate_root(|_, root| root.handles.retain(h))?),
            None => Ok(()),
        }
    }

    fn release_all(&mut self, vals: &[Val]) {
        if vals.iter().all(|v| v.handle().is_none()) {
            return;
        }
        self.arena.mutate_root(|_, root| {
            for v in vals {
                if let Some(h) = v.handle() {
                    // The host may have released it itself: not an error here.
                    let _ = root.handles.release(h);
                }
            }
        });
    }

    /// Checks that a handle is live in this VM and of the kind `value` says.
    pub fn check(&self, value: &Val) -> Result<(), VmError> {
        let meter = &self.rt.meter;
        self.arena
            .mutate(|mc, root| val_to_value(mc, meter, &root.handles, value).map(|_| ()))
    }

    // ----- heap access -----

    /// A new empty object (a handle the caller owns).
    pub fn create_object(&mut self) -> Result<Val, VmError> {
        self.builtin(Builtin::CreateObject, &[])
    }

    /// A new empty array.
    pub fn create_array(&mut self) -> Result<Val, VmError> {
        self.builtin(Builtin::CreateArray, &[])
    }

    /// `get_field(container, key)`: Unit when missing or when `container` is not an object or array.
    pub fn get_field(&mut self, container: &Val, key: &Val) -> Result<Val, VmError> {
        self.builtin(Builtin::GetField, &[container.clone(), key.clone()])
    }

    /// `set_field(container, key, value)`.
    pub fn set_field(&mut self, container: &Val, key: &Val, value: &Val) -> Result<(), VmError> {
        self.builtin(
            Builtin::SetField,
            &[container.clone(), key.clone(), value.clone()],
        )
        .map(|_| ())
    }

    /// `array_length(array)`.
    pub fn array_length(&mut self, array: &Val) -> Result<i64, VmError> {
        match self.builtin(Builtin::ArrayLength, std::slice::from_ref(array))? {
            Val::I64(n) => Ok(n),
            other => Err(ApiError::WrongKind {
                expected: "int64",
                got: other.kind().type_name(),
            }
            .into()),
        }
    }

    /// `array_push(array, value)`; returns the new length.
    pub fn array_push(&mut self, array: &Val, value: &Val) -> Result<i64, VmError> {
        match self.builtin(Builtin::ArrayPush, &[array.clone(), value.clone()])? {
            Val::I64(n) => Ok(n),
            other => Err(ApiError::WrongKind {
                expected: "int64",
                got: other.kind().type_name(),
            }
            .into()),
        }
    }

    /// `call_closure(closure, args…)`.
    pub fn call_closure(&mut self, closure: &Val, args: &[Val]) -> Result<Val, VmError> {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(closure.clone());
        all.extend_from_slice(args);
        self.builtin(Builtin::CallClosure, &all)
    }

    fn builtin(&mut self, b: Builtin, args: &[Val]) -> Result<Val, VmError> {
        let _guard = self.enter()?;
        self.run_builtin(b, args)
    }

    // ----- foreign objects -----

    /// Wraps host data as a foreign object. `data` is dropped (its `Drop` is the finalizer)
    /// exactly once: after the collector finds the object unreachable, or when the VM drops.
    ///
    /// ```
    /// # use stoffel_vm::Vm;
    /// let mut vm = Vm::new();
    /// let file = vm.create_foreign(Box::new(String::from("log.txt"))).unwrap();
    /// let data = vm.foreign_data(&file).unwrap();
    /// assert_eq!(data.downcast_ref::<String>().unwrap(), "log.txt");
    /// vm.release(&file).unwrap();
    /// vm.collect_all(); // the String is dropped here
    /// assert_eq!(vm.gc_stats().foreign_objects, 0);
    /// ```
    pub fn create_foreign(&mut self, data: Box<dyn Any>) -> Result<Val, VmError> {
        let id = self.next_foreign_id;
        self.next_foreign_id += 1;
        let meter = &self.rt.meter;
        let handle = self.arena.mutate_root(|mc, root| {
            let f = Foreign::alloc(mc, meter, id);
            root.foreigns.borrow_mut(mc).push((Gc::downgrade(f), id));
            root.handles.insert(Value::Foreign(f))
        })?;
        self.foreign_data.insert(id, data);
        Ok(Val::Foreign(handle))
    }

    /// The data of a foreign object.
    pub fn foreign_data(&self, value: &Val) -> Result<&dyn Any, VmError> {
        let id = self.arena.mutate(|_, root| match value {
            Val::Foreign(h) => match root.handles.get(*h)? {
                Value::Foreign(f) => Ok(f.id),
                other => Err(VmError::from(ApiError::WrongKind {
                    expected: "foreign object",
                    got: other.kind().type_name(),
                })),
            },
            other => Err(ApiError::WrongKind {
                expected: "foreign object",
                got: other.kind().type_name(),
            }
            .into()),
        })?;
        self.foreign_data
            .get(&id)
            .map(|b| &**b)
            .ok_or_else(|| ApiError::Handle(HandleError::Stale(id)).into())
    }

    // ----- garbage collection -----

    /// Pays the collector's allocation debt (incremental work), finalizing dead foreign objects.
    fn collect_debt(&mut self) {
        if self.arena.metrics().allocation_debt() <= 0.0 {
            return;
        }
        if self.arena.collection_phase() == CollectionPhase::Sweeping {
            self.arena.cycle_debt();
            return;
        }
        let dead = self
            .arena
            .mark_debt()
            .map(|marked| marked.finalize(|fc, root| dead_foreigns(fc, root.foreigns)));
        if let Some(dead) = dead {
            self.collections += 1;
            self.arena.cycle_debt();
            self.finalize(dead);
        }
    }

    /// Runs a whole collection now (finishing any cycle in progress first).
    pub fn collect_all(&mut self) {
        if self.arena.collection_phase() == CollectionPhase::Sweeping {
            self.arena.finish_cycle();
        }
        let dead = match self.arena.finish_marking() {
            Some(marked) => marked.finalize(|fc, root| dead_foreigns(fc, root.foreigns)),
            None => Vec::new(),
        };
        self.collections += 1;
        self.arena.finish_cycle();
        self.finalize(dead);
    }

    fn finalize(&mut self, dead: Vec<u64>) {
        for id in dead {
            // Dropping the data runs its finalizer, here, outside the arena.
            drop(self.foreign_data.remove(&id));
        }
    }

    /// Instructions this VM has executed in its lifetime (for measurements).
    pub fn instructions_executed(&self) -> u64 {
        self.instructions
    }

    /// Heap and collector figures.
    pub fn gc_stats(&self) -> GcStats {
        let (stack_bytes, live_handles) = self
            .arena
            .mutate(|_, root| (root.interp.stack_bytes(), root.handles.live()));
        GcStats {
            heap_bytes: self.rt.meter.bytes(),
            stack_bytes,
            gc_objects: self.arena.metrics().total_gc_count(),
            live_handles,
            foreign_objects: self.foreign_data.len(),
            collections: self.collections,
        }
    }
}

/// Finds foreign objects the marking phase left unreachable and forgets them; returns their ids.
fn dead_foreigns<'gc>(fc: &gc_arena::Finalization<'gc>, list: ForeignList<'gc>) -> Vec<u64> {
    let mut dead = Vec::new();
    list.borrow_mut(fc)
        .retain(|(weak, id): &(GcWeak<'gc, Foreign>, u64)| {
            if weak.is_dead(fc) {
                dead.push(*id);
                false
            } else {
                true
            }
        });
    dead
}

fn constant_value<'gc>(mc: &Mutation<'gc>, meter: &Meter, c: &Constant) -> Value<'gc> {
    match c {
        Constant::Unit => Value::Unit,
        Constant::I64(v) => Value::I64(*v),
        Constant::I32(v) => Value::I32(*v),
        Constant::I16(v) => Value::I16(*v),
        Constant::I8(v) => Value::I8(*v),
        Constant::U8(v) => Value::U8(*v),
        Constant::U16(v) => Value::U16(*v),
        Constant::U32(v) => Value::U32(*v),
        Constant::U64(v) => Value::U64(*v),
        Constant::Float(v) => Value::Float(*v),
        Constant::Bool(v) => Value::Bool(*v),
        Constant::String(s) => Value::String(Str::alloc_copy(mc, meter, s)),
    }
}

/// A value for the host: heap values get a new handle (one reference).
#[inline]
fn value_to_val<'gc>(v: Value<'gc>, handles: &mut HandleTable<'gc>) -> Result<Val, VmError> {
    // Integers inline: the host-call paths convert a few of them per call.
    match v {
        Value::I64(x) => Ok(Val::I64(x)),
        other => other_value_to_val(other, handles),
    }
}

#[inline(never)]
fn other_value_to_val<'gc>(v: Value<'gc>, handles: &mut HandleTable<'gc>) -> Result<Val, VmError> {
    Ok(match v {
        Value::Unit => Val::Unit,
        Value::Bool(b) => Val::Bool(b),
        Value::I64(x) => Val::I64(x),
        Value::I32(x) => Val::I32(x),
        Value::I16(x) => Val::I16(x),
        Value::I8(x) => Val::I8(x),
        Value::U8(x) => Val::U8(x),
        Value::U16(x) => Val::U16(x),
        Value::U32(x) => Val::U32(x),
        Value::U64(x) => Val::U64(x),
        Value::Float(x) => Val::Float(x),
        Value::String(s) => Val::String(s.as_str().to_owned()),
        Value::Object(_) => Val::Object(handles.insert(v)?),
        Value::Array(_) => Val::Array(handles.insert(v)?),
        Value::Closure(_) => Val::Closure(handles.insert(v)?),
        Value::Foreign(_) => Val::Foreign(handles.insert(v)?),
    })
}

/// A host value in the arena: handles must be live and of the kind the `Val` says.
#[inline]
fn val_to_value<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    handles: &HandleTable<'gc>,
    v: &Val,
) -> Result<Value<'gc>, VmError> {
    match v {
        Val::I64(x) => Ok(Value::I64(*x)),
        other => other_val_to_value(mc, meter, handles, other),
    }
}

#[inline(never)]
fn other_val_to_value<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    handles: &HandleTable<'gc>,
    v: &Val,
) -> Result<Value<'gc>, VmError> {
    Ok(match v {
        Val::Unit => Value::Unit,
        Val::Bool(b) => Value::Bool(*b),
        Val::I64(x) => Value::I64(*x),
        Val::I32(x) => Value::I32(*x),
        Val::I16(x) => Value::I16(*x),
        Val::I8(x) => Value::I8(*x),
        Val::U8(x) => Value::U8(*x),
        Val::U16(x) => Value::U16(*x),
        Val::U32(x) => Value::U32(*x),
        Val::U64(x) => Value::U64(*x),
        Val::Float(x) => Value::Float(*x),
        Val::String(s) => Value::String(Str::alloc_copy(mc, meter, s)),
        Val::Object(h) | Val::Array(h) | Val::Closure(h) | Val::Foreign(h) => {
            let value = handles.get(*h)?;
            if value.kind() != v.kind() {
                return Err(ApiError::WrongKind {
                    expected: v.kind().type_name(),
                    got: value.kind().type_name(),
                }
                .into());
            }
            value
        }
    })
}

fn vals_to_values<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    handles: &HandleTable<'gc>,
    vals: &[Val],
) -> Result<Vec<Value<'gc>>, VmError> {
    vals.iter()
        .map(|v| val_to_value(mc, meter, handles, v))
        .collect()
}
