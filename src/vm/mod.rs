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

mod convert;
mod drive;
mod foreign;
mod gc;
mod heap_api;
mod host;
mod interrupt;
mod quick;
mod rooted;
mod send;
mod slice;
mod typed;
mod typed_host;
mod val;

use std::collections::BTreeMap;

use gc_arena::lock::RefLock;
use gc_arena::{Arena, Collect, Gc, Mutation, Rootable};

use crate::asm;
use crate::error::{ApiError, VmError};
use crate::handles::HandleTable;
use crate::heap::{AllocError, ForeignList, Meter, Str};
use crate::interp::code::{Binding, Code};
use crate::interp::{Interp, Output, Runtime};
use crate::limits::Fuel;
use crate::program::{Constant, Program};
use crate::stfl;
use crate::value::Value;

use gc::PACING;
use val::val_to_value;

pub use convert::{FromVal, IntoVal};
pub(crate) use drive::Scalar;
pub use gc::GcStats;
pub use interrupt::InterruptHandle;
pub use rooted::Rooted;
pub use send::{ForeignData, HostFn, MaybeSend, MaybeSendSync, TraceSink};
pub use slice::{Progress, RunAsync};
pub use typed::{Args, Func, IntoArgs};
pub use typed_host::{HostArg, HostReturn, IntoHostFn};
pub use val::Val;

use host::HostEntry;
#[derive(Collect)]
#[collect(no_drop)]
struct Root<'gc> {
    interp: Interp<'gc>,
    constants: Vec<Value<'gc>>,
    handles: HandleTable<'gc>,
    foreigns: ForeignList<'gc>,
}

type VmArena = Arena<Rootable![Root<'_>]>;

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
    /// Foreign objects' data by id; ids grow with registration, which gives finalizers
    /// their order.
    foreign_data: BTreeMap<u64, ForeignData>,
    next_foreign_id: u64,
    fuel: Fuel,
    nesting: send::Depth,
    collections: u64,
    instructions: u64,
    trace: Option<TraceSink>,
    /// Room for a host call's arguments, reused from call to call (a nested call finds it
    /// taken and uses a fresh one).
    host_args: Vec<Val>,
    /// The last failed nested execution during the running host call (`host.rs`).
    nested_failure: Option<Box<host::NestedFailure>>,
    /// This VM's serial, unique in the process: a [`Func`] names the VM it came from.
    serial: u64,
    /// Ids of dropped [`Rooted`]s, released at the next execution or heap call.
    drops: std::sync::Arc<rooted::DropQueue>,
    /// Set by an [`InterruptHandle`]; read between steps.
    interrupt: interrupt::InterruptFlag,
    /// The host's data, one value per type ([`Vm::set_user_data`]).
    user_data: std::collections::HashMap<std::any::TypeId, ForeignData>,
    /// The suspended time-sliced execution, if any ([`Vm::start`]).
    slice: slice::Slicing,
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

impl Vm {
    /// A VM with the builtins and default limits (depth 10 000, no instruction or memory
    /// limit), printing to stdout.
    pub fn new() -> Vm {
        // One meter for the heap, the stacks and the handle table (which lives in the root).
        let mut root_meter = None;
        let arena = VmArena::new(|mc| {
            let meter = Meter::new(mc.metrics().clone());
            root_meter = Some(meter.clone());
            Root {
                interp: Interp::default(),
                constants: Vec::new(),
                handles: HandleTable::new(meter),
                foreigns: Gc::new(mc, RefLock::new(Vec::new())),
            }
        });
        arena.metrics().set_pacing(PACING);
        // A new arena would start a cycle at its first allocation (gc-arena starts with no
        // sleep), and the VM's first execution would pay for marking a heap that is all
        // construction. It sleeps as after any cycle that left a small heap instead.
        arena.metrics().adjust_debt(-(PACING.min_sleep as f64));
        let meter = root_meter.unwrap_or_else(|| Meter::new(arena.metrics().clone()));
        Vm {
            arena,
            code: Code::with_builtins(),
            hosts: Vec::new(),
            rt: Runtime::new(meter),
            foreign_data: BTreeMap::new(),
            next_foreign_id: 1,
            fuel: Fuel::default(),
            nesting: send::Depth::default(),
            collections: 0,
            instructions: 0,
            trace: None,
            host_args: Vec::new(),
            nested_failure: None,
            serial: typed::next_vm_serial(),
            drops: Default::default(),
            interrupt: Default::default(),
            user_data: Default::default(),
            slice: Default::default(),
        }
    }

    /// Loads STFL bytecode (versions 0 to 9). Adds to what is loaded (later names win); a
    /// failed load changes nothing.
    ///
    /// ```
    /// # use stoffel_vm::{Vm, VmError};
    /// let mut vm = Vm::new();
    /// let err = vm.load_bytecode(b"STFL\x0a\x00").unwrap_err();
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

    /// Loads a validated program. Memory for its constants is reserved fallibly: when the
    /// system refuses it, the load fails ([`ApiError::OutOfMemory`]) and changes nothing.
    ///
    /// A program whose manifest declares client inputs or outputs is an MPC program: it is
    /// refused with [`ApiError::NeedsMpc`], since stoffel-vm has no MPC engine.
    pub fn load_program(&mut self, program: Program) -> Result<(), VmError> {
        if let Some(manifest) = program.manifest()
            && !manifest.clients.is_empty()
        {
            return Err(ApiError::NeedsMpc {
                clients: manifest.clients.len(),
            }
            .into());
        }
        let base = self.arena.mutate(|_, root| root.constants.len());
        let count = program.constants().len();
        if base + count > u32::MAX as usize {
            return Err(ApiError::TooManyConstants.into());
        }
        let meter = &self.rt.meter;
        self.arena.mutate_root(|mc, root| {
            let loaded = (|| {
                root.constants
                    .try_reserve(count)
                    .map_err(|_| count.saturating_mul(std::mem::size_of::<Value<'_>>()))?;
                for c in program.constants() {
                    let v = constant_value(mc, meter, c)?;
                    root.constants.push(v);
                }
                Ok(())
            })();
            loaded.map_err(|bytes| {
                root.constants.truncate(base);
                ApiError::OutOfMemory(bytes)
            })
        })?;
        self.code.link(std::rc::Rc::new(program), base as u32);
        // Replaced functions and their constants go once nothing runs (a host function may
        // load code while its execution's frames still use the old functions).
        if self.nesting.get() == 0 {
            let code = &mut self.code;
            self.arena.mutate_root(|_, root| {
                if root.interp.activation_count() == 0 {
                    code.compact(&mut root.constants);
                }
            });
        }
        Ok(())
    }

    /// The loaded programs that still define a function, in load order (a program all of
    /// whose functions were replaced by later loads or host functions may be gone).
    pub fn programs(&self) -> impl Iterator<Item = &Program> {
        self.code.programs.iter().map(|p| &**p)
    }

    /// Whether `name` is currently defined (bytecode, builtin or host function).
    pub fn has_function(&self, name: &str) -> bool {
        self.code.lookup(name) != Binding::Unbound
    }

    /// Instructions one top-level execution may run (`None`: unlimited). Host functions'
    /// nested executions count against the outer execution's budget.
    ///
    /// ```
    /// # use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};
    /// let mut vm = Vm::new();
    /// vm.load_assembly(".function spin\ntop:\n    JMP top\n").unwrap();
    /// vm.set_instruction_limit(Some(10_000));
    /// match vm.execute("spin", &[]) {
    ///     Err(VmError::Runtime(e)) => assert_eq!(e.kind, RuntimeErrorKind::FuelExhausted(10_000)),
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
    /// (`None`: unlimited). Checked whenever either grows (a refusal gets one full
    /// collection before it is an error, [`RuntimeErrorKind::MemoryLimit`]); after the error
    /// the stacks shrink back and the VM is as usable as before. Not counted: the fixed
    /// register window every VM keeps above its deepest frame (4 096 registers, 64 KiB) and
    /// the VM's own code. With or without a limit, memory the system refuses is
    /// [`RuntimeErrorKind::OutOfMemory`], never an abort.
    ///
    /// [`RuntimeErrorKind::MemoryLimit`]: crate::RuntimeErrorKind::MemoryLimit
    /// [`RuntimeErrorKind::OutOfMemory`]: crate::RuntimeErrorKind::OutOfMemory
    pub fn set_memory_limit(&mut self, bytes: Option<usize>) {
        self.rt.limits.memory = bytes;
    }

    /// The directory `LocalStorage.store/load/retrieve/delete/exists` keep values in, one
    /// file per key (created when first stored to), or no store with `None` (the default):
    /// those builtins then fail with "Local storage is not configured", as in StoffelVM.
    /// Keys become file names that stay inside the directory (README, "Builtins").
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let dir = std::env::temp_dir().join(format!("stoffel-doc-{}", std::process::id()));
    /// let mut vm = Vm::new();
    /// vm.set_local_storage(Some(dir.clone()));
    /// vm.load_assembly(
    ///     r#".function main
    ///     LDI r1, "answer"
    ///     LDI r2, 42
    ///     PUSHARG r1
    ///     PUSHARG r2
    ///     CALL LocalStorage.store
    ///     PUSHARG r1
    ///     CALL LocalStorage.load
    ///     RET r0
    /// "#,
    /// )
    /// .unwrap();
    /// assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn set_local_storage(&mut self, dir: Option<std::path::PathBuf>) {
        self.rt.local_storage = dir;
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

    /// The text `print` would write for `value` (strings raw, `42u8`, `[1, 2]`, `{k: v}`, …).
    pub fn display(&self, value: &Val) -> Result<String, VmError> {
        // A string prints as itself; converting it would copy it into the heap from a `&self`
        // call, which cannot pay the collector back.
        if let Val::String(text) = value {
            return Ok(text.clone());
        }
        let meter = &self.rt.meter;
        self.arena.mutate(|mc, root| {
            let v = val_to_value(mc, meter, &root.handles, value)?;
            Ok(crate::interp::format::to_text(v))
        })
    }
}

/// A constant as a value; `Err` is the bytes the system refused for a string.
fn constant_value<'gc>(
    mc: &Mutation<'gc>,
    meter: &Meter,
    c: &Constant,
) -> Result<Value<'gc>, usize> {
    Ok(match c {
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
        Constant::String(s) => {
            Value::String(Str::try_alloc_copy(mc, meter, s).map_err(|e| match e {
                AllocError::Limit(bytes) | AllocError::System(bytes) => bytes,
            })?)
        }
    })
}
