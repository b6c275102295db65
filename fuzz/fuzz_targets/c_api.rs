//! Drives the C API with sequences of calls decoded from the input, all through the
//! `extern "C"` functions: several VMs; loading (prepared programs as assembly or bytecode,
//! random bytes, random assembly), also again and again, redefining functions that are
//! running; executions with arbitrary arguments (forged, stale, released and other-VM ids,
//! bad type tags, odd bools, invalid UTF-8, NULLs, bad counts); plain C callbacks that
//! succeed, fail or return every type; *scripted* callbacks (`stoffel_register_foreign_function_ex`)
//! that interpret a list of ops of their own on the VM they get (re-entrant executions,
//! reloads, registrations, retains and releases of their argument ids, GC, destroying their
//! own VM or another, setting their result); foreign objects whose finalizers count their
//! runs, destroy VMs or call into them; release/retain (also twice); heap access; closures;
//! limits; GC; strings freed twice or never handed out; function handles
//! (`stoffel_lookup_function`, `stoffel_call_function`: any VM's, also a destroyed one's, and
//! made-up ones; another VM's handle must be `STOFFEL_ERROR_INVALID_HANDLE`).
//!
//! The target keeps a model of what it owns (every id and how many references, every
//! argument id a running callback was given, which VMs are alive and which are in the middle
//! of a call on this thread) and checks after every call:
//! - no crash, no sanitizer report, no `STOFFEL_ERROR_PANIC`, every code one the function
//!   documents; a failing call leaves a message;
//! - a destroyed VM's handle (also one destroyed from a callback or a finalizer, while a
//!   call on it is still running) gets `STOFFEL_ERROR_INVALID_VM` from every call; a VM
//!   in a call that lent it to no callback (calls from a print callback or a finalizer) gets
//!   `STOFFEL_ERROR_REENTRANCY`;
//! - releasing or retaining a live id succeeds and a dead or other VM's id is refused;
//! - `live_handles` equals the number of ids the model says are live (ours and the running
//!   callbacks' arguments), whenever the VM can be asked, and at the end;
//! - a finalizer never runs while we hold an id of its object, and by the end (every VM
//!   destroyed) each finalizer has run exactly once.
//!
//! Seeds: `STOFFEL_FUZZ_WRITE_SEEDS=DIR cargo +nightly fuzz run c_api -- -runs=0` writes the
//! hand-written inputs of [`seeds`] to DIR (each checked to decode to what it was written
//! from) and exits.
#![no_main]

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use stoffel_vm::ffi::foreign::*;
use stoffel_vm::ffi::slices::*;
use stoffel_vm::ffi::values::*;
use stoffel_vm::ffi::vm::*;
use stoffel_vm::ffi::*;

/// Loaded into the first VM before the ops run; `Load(_, 0, _)` loads it again.
const PROGRAM: &str = r#"
.function make_obj(v)
    MOV r5, r0
    CALL create_object
    MOV r1, r0
    LDI r2, "v"
    PUSHARG r1
    PUSHARG r2
    PUSHARG r5
    CALL set_field
    RET r1
.function make_arr(n)
    MOV r5, r0
    CALL create_array
    MOV r1, r0
    PUSHARG r1
    PUSHARG r5
    PUSHARG r5
    CALL array_push
    RET r1
.function make_closure(x)
    LDI r1, "adder"
    LDI r2, "x"
    PUSHARG r1
    PUSHARG r2
    CALL create_closure
    RET r0
.function adder(y)
    MOV r3, r0
    LDI r1, "x"
    PUSHARG r1
    CALL get_upvalue
    ADD r2, r0, r3
    RET r2
.function identity(x)
    RET r0
.function concat(a, b)
    ADD r2, r0, r1
    RET r2
.function calls_cbs(a, b)
    MOV r5, r0
    MOV r6, r1
    PUSHARG r5
    PUSHARG r6
    CALL cb0
    MOV r7, r0
    PUSHARG r7
    PUSHARG r5
    CALL cb1
    PUSHARG r0
    CALL cb2
    PUSHARG r6
    CALL cb3
    RET r0
.function loop_cb(n)
    MOV r4, r0
    LDI r1, 0
    LDI r2, 1
    LDI r3, 3
top:
    PUSHARG r4
    PUSHARG r1
    CALL cb0
    ADD r1, r1, r2
    CMP r1, r3
    JMPLT top
    RET r0
.function spin
top:
    JMP top
.function recurse(n)
    PUSHARG r0
    CALL recurse
    RET r0
.function show(a)
    PUSHARG r0
    CALL print
    PUSHARG r0
    CALL type
    RET r0
"#;

/// Redefines functions of `PROGRAM` (those a callback may be running inside of, too).
const RELOAD_SWAP: &str = r#"
.function identity(x)
    MOV r1, r0
    PUSHARG r1
    CALL cb2
    RET r1
.function calls_cbs(a, b)
    MOV r5, r0
    PUSHARG r5
    PUSHARG r1
    CALL cb1
    PUSHARG r5
    CALL cb3
    RET r0
.function concat(a, b)
    CALL create_object
    RET r0
.function loop_cb(n)
    PUSHARG r0
    CALL identity
    RET r0
"#;

/// Replaces the C callbacks' names with bytecode (also the callback that is running).
const RELOAD_CBS: &str = r#"
.function cb0(a, b)
    ADD r2, r0, r1
    RET r2
.function cb1(a, b)
    PUSHARG r0
    CALL identity
    RET r0
.function cb2(x)
    CALL create_array
    RET r0
.function cb3(x)
    PUSHARG r0
    CALL make_obj
    RET r0
"#;

/// Shadows builtins that `PROGRAM` calls (and the interpreter may have specialised).
const RELOAD_BUILTINS: &str = r#"
.function create_object
    LDI r0, 7
    RET r0
.function print(x)
    RET r0
.function type(x)
    LDI r1, "shadowed"
    RET r1
.function get_upvalue(name)
    LDI r1, 1
    RET r1
"#;

/// Re-enters `calls_cbs` from a new function.
const RELOAD_AGAIN: &str = r#"
.function again(n)
    PUSHARG r0
    PUSHARG r0
    CALL calls_cbs
    PUSHARG r0
    CALL loop_cb
    RET r0
"#;

const PROGRAMS: [&str; 5] = [
    PROGRAM,
    RELOAD_SWAP,
    RELOAD_CBS,
    RELOAD_BUILTINS,
    RELOAD_AGAIN,
];

const NAMES: [&str; 26] = [
    "make_obj",
    "make_arr",
    "make_closure",
    "adder",
    "identity",
    "concat",
    "calls_cbs",
    "spin",
    "recurse",
    "show",
    "cb0",
    "cb1",
    "cb2",
    "cb3",
    "print",
    "type",
    "create_object",
    "create_array",
    "get_field",
    "set_field",
    "array_push",
    "call_closure",
    "nonexistent",
    "",
    "loop_cb",
    "again",
];

/// Names scripted callbacks are registered under: the callbacks `PROGRAM` calls, and
/// bytecode functions and a builtin they replace.
const CB_NAMES: [&str; 8] = [
    "cb0",
    "cb1",
    "cb2",
    "cb3",
    "identity",
    "calls_cbs",
    "loop_cb",
    "create_object",
];

/// Most VMs alive at once, and created per input.
const MAX_VMS: usize = 4;
const MAX_CREATED: u32 = 12;
/// Most ops scripted callbacks run per input, and how deeply they nest.
const SCRIPT_BUDGET: u32 = 400;
const MAX_FRAMES: u32 = 5;

/// A VM selector (`u8`): below 0x80 a slot (modulo the number of slots; the slot's VM may be
/// dead); from 0x80 on, the "current" VM: the one the innermost callback or finalizer
/// belongs to, else slot 0.
type Sel = u8;

#[derive(Arbitrary, Debug, Clone)]
enum Arg {
    Int(i64),
    Float(f64),
    Bool(i32),
    Str(Vec<u8>),
    NullString,
    BadTag(i32),
    /// A value from the pool of ids we were given (possibly released, possibly another VM's).
    Pool(u8),
    /// A made-up id of some heap kind (5..8).
    Forged(u64, u8),
    /// An argument of the innermost running callback (UNIT outside callbacks).
    Param(u8),
    /// The newest value in the pool.
    Last,
}

/// What a foreign object's finalizer does besides counting its run.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fin {
    /// No finalizer (`stoffel_register_foreign_object`).
    None,
    Count,
    /// Destroys a VM (current: the object's own).
    Destroy(Sel),
    /// `stoffel_gc_stats` on a VM (current: the object's own, which must refuse).
    Probe(Sel),
}

/// What a scripted callback returns (the last one wins).
#[derive(Arbitrary, Debug, Clone)]
enum Res {
    Int(i64),
    Float(f64),
    /// One of its arguments, as is.
    Arg(u8),
    Pool(u8),
    Last,
    /// A fresh object of its VM (handed over).
    NewObject,
    Str,
    NullString,
    BadTag(i32),
    /// Returns this code (0 is success).
    Fail(i32),
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    NewVm,
    Destroy(Sel),
    /// A prepared program (`PROGRAMS`), as assembly or as bytecode.
    Load(Sel, u8, bool),
    LoadBytes(Sel, Vec<u8>),
    LoadAsm(Sel, Vec<u8>),
    Execute(Sel, u8, Vec<Arg>),
    ExecuteNoArgs(Sel, u8),
    ExecuteBadName(Sel, Vec<u8>),
    ExecuteBadCount(Sel, i32, bool),
    /// A plain C callback under `cb{name % 4}`.
    Register(Sel, u8, u8),
    /// A scripted callback under `CB_NAMES[name % 8]`, running these ops when called.
    RegisterScript(Sel, u8, Vec<Op>),
    RegisterNull(Sel),
    ForeignObject(Sel, Fin),
    GetForeign(Sel, Arg),
    /// Releases / retains a pool value.
    Release(Sel, u8),
    Retain(Sel, u8),
    /// Releases / retains any value (callback arguments, forged ids, bad tags, ...).
    ReleaseArg(Sel, Arg),
    RetainArg(Sel, Arg),
    CreateObject(Sel),
    CreateArray(Sel),
    GetField(Sel, Arg, Arg),
    SetField(Sel, Arg, Arg, Arg),
    ArrayPush(Sel, Arg, Arg),
    ArrayLength(Sel, Arg),
    CallClosure(Sel, Arg, Vec<Arg>),
    Limits(Sel, u16, u8, u16),
    Gc(Sel),
    Stats(Sel),
    CreateString(Sel, Vec<u8>),
    FreeString(u8),
    FreeBogus(u64),
    PrintCallback(Sel, bool),
    /// In a scripted callback: its result (ignored elsewhere).
    Result(Res),
    /// `stoffel_interrupt`: from a callback, it stops the executions running on the VM.
    Interrupt(Sel),
    /// `stoffel_object_next` from a key (a pool value, an argument, ...).
    ObjectNext(Sel, Arg, Arg),
    /// `stoffel_lookup_function` of `NAMES[name]`; the handle joins the pool of handles.
    Lookup(Sel, u8),
    /// `stoffel_call_function` with a handle from the pool (any VM's, also a destroyed
    /// one's), or a made-up one (`k` >= 0xF0, or no handle yet).
    CallFunction(Sel, u8, Vec<Arg>),
    /// `stoffel_execute_start` with a small fuel (`fuel % 16`).
    Start(Sel, u8, Vec<Arg>, u8),
    /// `stoffel_resume` with a small fuel (`fuel % 16`).
    Resume(Sel, u8),
    /// `stoffel_cancel`.
    Cancel(Sel),
}

// ----- the model -----

struct Slot {
    handle: VMHandle,
    alive: bool,
}

/// An id we were given and the references we hold to it (0: dead to us).
struct Held {
    vm: VMHandle,
    value: StoffelValue,
    refs: u32,
}

/// An id a running callback got as an argument: the VM holds one reference until the
/// callback returns (`vm_ref`), unless the callback released it.
struct ArgRef {
    vm: VMHandle,
    id: u64,
    value: StoffelValue,
    vm_ref: bool,
}

struct FinRec {
    runs: u32,
    registered: bool,
    owner: VMHandle,
    id: u64,
    action: Fin,
}

/// What this thread is inside of, innermost last.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Active {
    /// A call on the VM (it is busy unless a callback of it runs further in).
    Call(VMHandle),
    /// A callback of the VM runs: the VM is lent to it.
    Lent(VMHandle),
    /// A finalizer of a foreign object of the VM runs.
    Fin(VMHandle),
}

impl Active {
    fn vm(self) -> VMHandle {
        match self {
            Active::Call(h) | Active::Lent(h) | Active::Fin(h) => h,
        }
    }
}

/// How a call on a VM must go.
#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    /// Destroyed (perhaps still running): `STOFFEL_ERROR_INVALID_VM`.
    Dead,
    /// In a call on this thread that lent it to no callback: `STOFFEL_ERROR_REENTRANCY`.
    Busy,
    /// Idle, or lent to the innermost callback of it: the call runs.
    Ready,
}

#[derive(Default)]
struct World {
    vms: Vec<Slot>,
    created: u32,
    held: Vec<Held>,
    args: Vec<ArgRef>,
    strings: Vec<*mut c_char>,
    fins: Vec<FinRec>,
    scripts: Vec<Rc<[Op]>>,
    /// Function handles looked up, with the VM each came from.
    funcs: Vec<(VMHandle, StoffelFunction)>,
    active: Vec<Active>,
    budget: u32,
    frames: u32,
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::default());
}

/// Runs `f` on the model. Never call into the VM from `f`: callbacks and finalizers use the
/// model too.
fn world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|w| f(&mut w.borrow_mut()))
}

fn tag(v: &StoffelValue) -> c_int {
    // SAFETY: `value_type` is a 4-byte C int field, read as an int (any bits allowed).
    unsafe { std::ptr::addr_of!(v.value_type).cast::<c_int>().read() }
}

fn id_of(v: &StoffelValue) -> Option<u64> {
    if (5..=8).contains(&tag(v)) {
        // SAFETY: heap values carry an id.
        Some(unsafe { v.data.object_id } as u64)
    } else {
        None
    }
}

fn unit() -> StoffelValue {
    with_tag(0, StoffelValueData { int_val: 0 })
}

fn int(i: i64) -> StoffelValue {
    with_tag(1, StoffelValueData { int_val: i })
}

fn with_tag(tag: c_int, data: StoffelValueData) -> StoffelValue {
    let mut v = StoffelValue {
        value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
        data,
    };
    // Write the raw tag as an int, as a C program may (including out-of-range tags).
    // SAFETY: `value_type` is a 4-byte C int field.
    unsafe {
        std::ptr::addr_of_mut!(v.value_type)
            .cast::<c_int>()
            .write(tag)
    };
    v
}

/// Where the model has a live reference to id `id` of `vm`.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Held(usize),
    Arg(usize),
}

impl World {
    fn alive(&self, h: VMHandle) -> bool {
        self.vms.iter().any(|s| s.handle == h && s.alive)
    }

    fn state(&self, h: VMHandle) -> State {
        if !self.alive(h) {
            return State::Dead;
        }
        match self
            .active
            .iter()
            .rev()
            .find(|a| matches!(a, Active::Call(x) | Active::Lent(x) if *x == h))
        {
            Some(Active::Call(_)) => State::Busy,
            _ => State::Ready,
        }
    }

    /// The VM of the innermost callback or finalizer, else slot 0's.
    fn current(&self) -> VMHandle {
        self.active
            .iter()
            .rev()
            .find_map(|a| match a {
                Active::Lent(h) | Active::Fin(h) => Some(*h),
                Active::Call(_) => None,
            })
            .unwrap_or(self.vms[0].handle)
    }

    fn pick(&self, sel: Sel) -> VMHandle {
        if sel >= 0x80 {
            self.current()
        } else {
            self.vms[sel as usize % self.vms.len()].handle
        }
    }

    fn locate(&self, vm: VMHandle, id: u64) -> Option<Loc> {
        if let Some(i) = self
            .held
            .iter()
            .position(|e| e.vm == vm && e.refs > 0 && id_of(&e.value) == Some(id))
        {
            return Some(Loc::Held(i));
        }
        self.args
            .iter()
            .position(|a| a.vm == vm && a.vm_ref && a.id == id)
            .map(Loc::Arg)
    }

    /// Ids of `vm` the model says are live.
    fn live_ids(&self, vm: VMHandle) -> usize {
        let mut ids = HashSet::new();
        ids.extend(
            self.held
                .iter()
                .filter(|e| e.vm == vm && e.refs > 0)
                .filter_map(|e| id_of(&e.value)),
        );
        ids.extend(
            self.args
                .iter()
                .filter(|a| a.vm == vm && a.vm_ref)
                .map(|a| a.id),
        );
        ids.len()
    }

    /// A destroyed VM that no call, callback or finalizer of this thread is inside of (and no
    /// destroy loop, which may have queued it) is gone: its finalizers have run. `None`: all
    /// destroyed VMs (at the top level).
    fn check_gone(&self, vm: Option<VMHandle>) {
        if self.active.iter().any(|a| matches!(a, Active::Fin(_))) {
            return;
        }
        let inside = |h: VMHandle| self.active.iter().any(|a| a.vm() == h);
        for (i, rec) in self.fins.iter().enumerate() {
            // (`id` 0: registration in progress.)
            if rec.registered
                && rec.id != 0
                && vm.is_none_or(|h| h == rec.owner)
                && !self.alive(rec.owner)
                && !inside(rec.owner)
            {
                assert_eq!(
                    rec.runs, 1,
                    "finalizer {i}: its VM is destroyed and no call on it runs"
                );
            }
        }
    }

    /// The VM is destroyed (or doomed): its handle and all its ids are dead.
    fn mark_dead(&mut self, h: VMHandle) {
        for s in self.vms.iter_mut().filter(|s| s.handle == h) {
            s.alive = false;
        }
        self.held
            .iter_mut()
            .filter(|e| e.vm == h)
            .for_each(|e| e.refs = 0);
        self.args
            .iter_mut()
            .filter(|a| a.vm == h)
            .for_each(|a| a.vm_ref = false);
    }

    /// Records a result we now own: a string to free, or an id of `vm` (if it is alive: the
    /// ids of a VM destroyed during the call are dead).
    fn keep_result(&mut self, vm: VMHandle, v: StoffelValue) {
        if tag(&v) == 4 {
            // SAFETY: a STRING result's pointer came from the VM.
            self.strings
                .push(unsafe { v.data.string_val } as *mut c_char);
        } else if let Some(id) = id_of(&v)
            && self.alive(vm)
        {
            match self.locate(vm, id) {
                Some(Loc::Held(i)) => self.held[i].refs += 1,
                _ => self.held.push(Held {
                    vm,
                    value: v,
                    refs: 1,
                }),
            }
        }
    }

    fn pool(&self, k: u8) -> StoffelValue {
        if self.held.is_empty() {
            unit()
        } else {
            self.held[k as usize % self.held.len()].value
        }
    }

    fn last(&self) -> StoffelValue {
        self.held.last().map_or_else(unit, |e| e.value)
    }
}

fn last_error(h: VMHandle) -> String {
    let p = stoffel_last_error(h);
    if p.is_null() {
        "(no message)".into()
    } else {
        // SAFETY: a NUL-terminated string valid until the next failing call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Makes a call on `h`, with the model knowing this thread is inside it.
fn on<R>(h: VMHandle, f: impl FnOnce() -> R) -> R {
    world(|w| w.active.push(Active::Call(h)));
    let r = f();
    world(|w| {
        let top = w.active.pop();
        assert_eq!(
            top,
            Some(Active::Call(h)),
            "the model's call stack is balanced"
        );
        // A VM destroyed during the call (from a callback, a finalizer) goes as the outermost
        // call on it returns.
        w.check_gone(Some(h));
    });
    r
}

const OK: c_int = STOFFEL_OK;
const NULL: c_int = STOFFEL_ERROR_NULL;
const UTF8: c_int = STOFFEL_ERROR_UTF8;
const PARSE: c_int = STOFFEL_ERROR_PARSE;
const EXECUTE: c_int = STOFFEL_ERROR_EXECUTE;
const RESULT: c_int = STOFFEL_ERROR_RESULT;
const ARGUMENT: c_int = STOFFEL_ERROR_ARGUMENT;
const EXECUTE_WITH_ARGS: c_int = STOFFEL_ERROR_EXECUTE_WITH_ARGS;
const RESULT_WITH_ARGS: c_int = STOFFEL_ERROR_RESULT_WITH_ARGS;
const INVALID_HANDLE: c_int = STOFFEL_ERROR_INVALID_HANDLE;
const TYPE: c_int = STOFFEL_ERROR_TYPE;
const LIMIT: c_int = STOFFEL_ERROR_LIMIT;
const REENTRANCY: c_int = STOFFEL_ERROR_REENTRANCY;
const INVALID_VM: c_int = STOFFEL_ERROR_INVALID_VM;
const INVALID_FUNCTION: c_int = STOFFEL_ERROR_INVALID_FUNCTION;
const INTERRUPTED: c_int = STOFFEL_ERROR_INTERRUPTED;
const END: c_int = STOFFEL_END;
const SUSPENDED: c_int = STOFFEL_SUSPENDED;
const STATE: c_int = STOFFEL_ERROR_STATE;

/// The codes each kind of call documents (besides `STOFFEL_OK`, and the VM-level
/// `STOFFEL_ERROR_INVALID_VM` / `STOFFEL_ERROR_REENTRANCY`, which the state decides).
const LOAD: &[c_int] = &[NULL, PARSE, LIMIT];
/// Bytecode also has StoffelVM's -3: the bytes decode, a function does not hold together.
const LOAD_BYTES: &[c_int] = &[NULL, PARSE, INVALID_FUNCTION, LIMIT];
const EXEC: &[c_int] = &[NULL, UTF8, EXECUTE, RESULT, LIMIT, INTERRUPTED];
const EXEC_ARGS: &[c_int] = &[
    NULL,
    UTF8,
    ARGUMENT,
    EXECUTE_WITH_ARGS,
    RESULT_WITH_ARGS,
    INVALID_HANDLE,
    LIMIT,
    INTERRUPTED,
];
/// `stoffel_call_closure` says "as `stoffel_execute_with_args`", but a bad tag in the closure
/// value itself is `STOFFEL_ERROR_TYPE` (as for the heap calls, and in the guide's table).
const CLOSURE: &[c_int] = &[
    NULL,
    UTF8,
    ARGUMENT,
    EXECUTE_WITH_ARGS,
    RESULT_WITH_ARGS,
    INVALID_HANDLE,
    TYPE,
    LIMIT,
    INTERRUPTED,
];
const HEAP: &[c_int] = &[NULL, UTF8, TYPE, INVALID_HANDLE, LIMIT, RESULT_WITH_ARGS];
const CREATE: &[c_int] = &[EXECUTE_WITH_ARGS, RESULT_WITH_ARGS, LIMIT, INTERRUPTED];
const STRING: &[c_int] = &[NULL, UTF8, LIMIT];
/// `stoffel_object_next`: the heap codes, a key that is not a field, and the end.
const NEXT: &[c_int] = &[
    NULL,
    UTF8,
    TYPE,
    ARGUMENT,
    INVALID_HANDLE,
    LIMIT,
    RESULT_WITH_ARGS,
    END,
];
/// `stoffel_execute_start` / `stoffel_resume`: as `stoffel_execute_with_args`, plus the
/// suspension and the state error.
const SLICE: &[c_int] = &[
    NULL,
    UTF8,
    ARGUMENT,
    EXECUTE_WITH_ARGS,
    RESULT_WITH_ARGS,
    INVALID_HANDLE,
    LIMIT,
    INTERRUPTED,
    SUSPENDED,
    STATE,
];
const CANCEL: &[c_int] = &[STATE];
const NONE: &[c_int] = &[];
const LOOKUP: &[c_int] = &[NULL, UTF8, INVALID_FUNCTION, LIMIT];

/// `STOFFEL_FUZZ_TRACE=1` prints every op and call (to see what an input does).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("STOFFEL_FUZZ_TRACE").is_some())
}

/// Checks a call's code against the VM's state before the call and the codes allowed.
fn expect(h: VMHandle, st: State, rc: c_int, allowed: &[c_int], what: &str) {
    if tracing() {
        eprintln!("    {what} on {h:p} ({st:?}) -> {rc}");
    }
    assert_ne!(
        rc,
        STOFFEL_ERROR_PANIC,
        "{what}: internal error: {}",
        last_error(h)
    );
    match st {
        State::Dead => assert_eq!(rc, INVALID_VM, "{what} on a destroyed VM"),
        State::Busy => assert_eq!(
            rc, REENTRANCY,
            "{what} on a VM busy in a call of this thread"
        ),
        State::Ready => assert!(
            rc == OK || allowed.contains(&rc),
            "{what}: code {rc} is not documented here: {}",
            last_error(h)
        ),
    }
    // (A VM destroyed during the call took its message with it.)
    // (`STOFFEL_END` is a success, not a failure.)
    if rc < OK && (st != State::Ready || world(|w| w.alive(h))) {
        assert!(
            !stoffel_last_error(h).is_null(),
            "{what}: a failing call (code {rc}) must leave a message"
        );
    }
}

/// A start's or resume's result: kept when finished, UNIT when suspended.
fn slice_result(h: VMHandle, rc: c_int, out: StoffelValue) {
    if rc == OK {
        world(|w| w.keep_result(h, out));
    } else if rc == SUSPENDED {
        assert_eq!(
            out.value_type as i32,
            StoffelValueType::STOFFEL_VALUE_UNIT as i32,
            "a suspended slice leaves its result UNIT"
        );
    }
}

/// Releases (or retains) `v` on `h`, checking the code against the model and updating it.
fn release_or_retain(h: VMHandle, v: StoffelValue, retain: bool) {
    let what = if retain {
        "stoffel_retain_value"
    } else {
        "stoffel_release_value"
    };
    let (st, loc) = world(|w| {
        let st = w.state(h);
        let loc = if st == State::Ready {
            id_of(&v).and_then(|id| w.locate(h, id))
        } else {
            None
        };
        // A release gives the reference up before the call: finalizers may run inside it.
        if !retain {
            match loc {
                Some(Loc::Held(i)) => w.held[i].refs -= 1,
                Some(Loc::Arg(j)) => w.args[j].vm_ref = false,
                None => {}
            }
        }
        (st, loc)
    });
    // SAFETY: a pointer to a local value.
    let rc = on(h, || unsafe {
        if retain {
            stoffel_retain_value(h, &v)
        } else {
            stoffel_release_value(h, &v)
        }
    });
    expect(h, st, rc, &[NULL, UTF8, TYPE, INVALID_HANDLE, LIMIT], what);
    if st != State::Ready {
        return;
    }
    if id_of(&v).is_some() {
        if loc.is_some() {
            assert_eq!(rc, OK, "{what} of a live id must work");
        } else {
            assert_eq!(
                rc, INVALID_HANDLE,
                "{what} of a dead or other VM's id must be refused"
            );
        }
    } else if !(0..=8).contains(&tag(&v)) {
        assert_eq!(rc, TYPE, "{what} of a bad tag");
    }
    if retain && rc == OK {
        world(|w| match loc {
            Some(Loc::Held(i)) => w.held[i].refs += 1,
            Some(Loc::Arg(j)) => {
                let value = w.args[j].value;
                w.held.push(Held {
                    vm: h,
                    value,
                    refs: 1,
                });
            }
            None => {}
        });
    }
}

// ----- scripted callbacks -----

/// A running scripted callback.
struct Frame {
    args: Vec<StoffelValue>,
    result: StoffelValue,
    code: c_int,
}

unsafe extern "C" fn cb_script(
    vm: VMHandle,
    user: *mut c_void,
    args: *const StoffelValue,
    n: c_int,
    out: *mut StoffelValue,
) -> c_int {
    let index = user as usize - 1;
    // SAFETY: the VM passes `n` readable values.
    let args: Vec<StoffelValue> = (0..n.max(0) as usize)
        .map(|i| unsafe { *args.add(i) })
        .collect();
    let started = world(|w| {
        (w.budget > 0 && w.frames < MAX_FRAMES).then(|| {
            w.frames += 1;
            w.active.push(Active::Lent(vm));
            let base = w.args.len();
            let vm_ref = w.alive(vm);
            for a in &args {
                if let Some(id) = id_of(a) {
                    w.args.push(ArgRef {
                        vm,
                        id,
                        value: *a,
                        vm_ref,
                    });
                }
            }
            (w.scripts[index].clone(), base)
        })
    });
    let Some((script, base)) = started else {
        // SAFETY: `out` is writable.
        unsafe { out.write(int(0)) };
        return 0;
    };
    let mut frame = Frame {
        args,
        result: int(0),
        code: 0,
    };
    for op in script.iter() {
        let go = world(|w| {
            w.budget = w.budget.saturating_sub(1);
            w.budget > 0
        });
        if !go {
            break;
        }
        step(op, Some(&mut frame));
    }
    // The result's id is handed over to the VM: unless it is one of this call's arguments
    // (the VM's own reference), that is one of ours (or an outer callback's argument).
    world(|w| {
        if frame.code == 0
            && let Some(id) = id_of(&frame.result)
            && !frame.args.iter().any(|a| id_of(a) == Some(id))
        {
            match w.locate(vm, id) {
                Some(Loc::Held(i)) => w.held[i].refs -= 1,
                Some(Loc::Arg(j)) => w.args[j].vm_ref = false,
                None => {}
            }
        }
        w.args.truncate(base);
        let top = w.active.pop();
        assert_eq!(
            top,
            Some(Active::Lent(vm)),
            "the model's call stack is balanced"
        );
        w.frames -= 1;
    });
    // SAFETY: `out` is writable.
    unsafe { out.write(frame.result) };
    frame.code
}

// ----- plain callbacks -----

unsafe extern "C" fn cb_sum(args: *const StoffelValue, n: c_int, out: *mut StoffelValue) -> c_int {
    let mut sum = 0i64;
    for i in 0..n as usize {
        // SAFETY: the VM passes `n` readable values.
        let a = unsafe { *args.add(i) };
        if tag(&a) == 1 {
            // SAFETY: INT values carry int_val.
            sum = sum.wrapping_add(unsafe { a.data.int_val });
        }
    }
    // SAFETY: `out` is writable.
    unsafe { out.write(int(sum)) };
    0
}

unsafe extern "C" fn cb_fail(_: *const StoffelValue, _: c_int, _: *mut StoffelValue) -> c_int {
    -7
}

static FROM_C: &[u8] = b"from C\0";

unsafe extern "C" fn cb_string(_: *const StoffelValue, _: c_int, out: *mut StoffelValue) -> c_int {
    // SAFETY: `out` is writable; the string is static.
    unsafe {
        out.write(with_tag(
            4,
            StoffelValueData {
                string_val: FROM_C.as_ptr().cast(),
            },
        ))
    };
    0
}

unsafe extern "C" fn cb_bad_tag(_: *const StoffelValue, _: c_int, out: *mut StoffelValue) -> c_int {
    // SAFETY: `out` is writable.
    unsafe { out.write(with_tag(99, StoffelValueData { int_val: 1 })) };
    0
}

unsafe extern "C" fn cb_echo(args: *const StoffelValue, n: c_int, out: *mut StoffelValue) -> c_int {
    if n > 0 {
        // SAFETY: one readable arg; ids in it are valid during the callback.
        unsafe { out.write(*args) };
    }
    0
}

unsafe extern "C" fn cb_null_string(
    _: *const StoffelValue,
    _: c_int,
    out: *mut StoffelValue,
) -> c_int {
    // SAFETY: `out` is writable.
    unsafe {
        out.write(with_tag(
            4,
            StoffelValueData {
                string_val: std::ptr::null(),
            },
        ))
    };
    0
}

type Plain = unsafe extern "C" fn(*const StoffelValue, c_int, *mut StoffelValue) -> c_int;
const PLAIN: [Plain; 6] = [
    cb_sum,
    cb_fail,
    cb_string,
    cb_bad_tag,
    cb_echo,
    cb_null_string,
];

// ----- finalizers and print callbacks -----

unsafe extern "C" fn finalize(object: *mut c_void) {
    let index = object as usize - 1;
    let (owner, action) = world(|w| {
        let rec = &mut w.fins[index];
        rec.runs += 1;
        assert_eq!(rec.runs, 1, "a finalizer runs at most once");
        let (owner, id, action) = (rec.owner, rec.id, rec.action);
        assert!(
            !w.alive(owner) || w.locate(owner, id).is_none(),
            "finalized while an id of the object is live"
        );
        w.active.push(Active::Fin(owner));
        (owner, action)
    });
    if tracing() {
        eprintln!("    finalizer {index} of {owner:p}: {action:?}");
    }
    match action {
        Fin::None | Fin::Count => {}
        Fin::Destroy(sel) => destroy(world(|w| w.pick(sel))),
        Fin::Probe(sel) => stats(world(|w| w.pick(sel))),
    }
    let top = world(|w| w.active.pop());
    assert_eq!(
        top,
        Some(Active::Fin(owner)),
        "the model's call stack is balanced"
    );
}

type PrintFn = unsafe extern "C" fn(*const c_char, *mut c_void);

unsafe extern "C" fn quiet_sink(_text: *const c_char, _user: *mut c_void) {}

unsafe extern "C" fn print_sink(text: *const c_char, user: *mut c_void) {
    assert!(!text.is_null());
    // A print callback cannot re-enter its VM (`user`): it is busy, or destroyed.
    let st = world(|w| w.state(user));
    assert_ne!(st, State::Ready, "print runs inside a call on its VM");
    let mut v = unit();
    // SAFETY: a pointer to a local.
    let rc = on(user, || unsafe { stoffel_create_object(user, &mut v) });
    expect(
        user,
        st,
        rc,
        NONE,
        "stoffel_create_object from a print callback",
    );
}

// ----- ops -----

fn destroy(h: VMHandle) {
    if tracing() {
        eprintln!("    stoffel_destroy_vm({h:p})");
    }
    world(|w| w.mark_dead(h));
    stoffel_destroy_vm(h);
    world(|w| w.check_gone(Some(h)));
    // The handle is dead at once, also while a call on it is still running.
    let mut out = unit();
    // SAFETY: a pointer to a local.
    let rc = unsafe { stoffel_create_object(h, &mut out) };
    assert_eq!(rc, INVALID_VM, "a destroyed VM's handle is dead");
}

fn stats(h: VMHandle) {
    let st = world(|w| w.state(h));
    let mut s = StoffelGcStats::default();
    // SAFETY: writable.
    let rc = on(h, || unsafe { stoffel_gc_stats(h, &mut s) });
    expect(h, st, rc, NONE, "stoffel_gc_stats");
    if rc == OK {
        let live = world(|w| w.live_ids(h));
        assert_eq!(
            s.live_handles, live,
            "live handles: the model's ids are exactly the live ones: {s:?}"
        );
    }
}

/// Builds a C value for an argument; owned C strings are kept alive in `keep`.
/// The first `most` of `args` as C values (strings kept alive in `keep`).
fn c_args(
    args: &[Arg],
    most: usize,
    frame: Option<&Frame>,
    keep: &mut Vec<CString>,
) -> Vec<StoffelValue> {
    args.iter()
        .take(most)
        .map(|a| arg(a, frame, keep))
        .collect()
}

fn arg(a: &Arg, frame: Option<&Frame>, keep: &mut Vec<CString>) -> StoffelValue {
    match a {
        Arg::Int(i) => int(*i),
        Arg::Float(f) => with_tag(2, StoffelValueData { float_val: *f }),
        Arg::Bool(b) => with_tag(3, StoffelValueData { bool_val: *b }),
        Arg::Str(bytes) => {
            let c = CString::new(
                bytes
                    .iter()
                    .copied()
                    .filter(|&b| b != 0)
                    .collect::<Vec<u8>>(),
            )
            .unwrap_or_default();
            let p = c.as_ptr();
            keep.push(c);
            with_tag(4, StoffelValueData { string_val: p })
        }
        Arg::NullString => with_tag(
            4,
            StoffelValueData {
                string_val: std::ptr::null(),
            },
        ),
        Arg::BadTag(t) => with_tag(*t, StoffelValueData { int_val: 0 }),
        Arg::Pool(i) => world(|w| w.pool(*i)),
        Arg::Last => world(|w| w.last()),
        Arg::Forged(id, kind) => with_tag(
            5 + (*kind % 4) as c_int,
            StoffelValueData {
                object_id: *id as usize,
            },
        ),
        Arg::Param(k) => match frame {
            Some(f) if !f.args.is_empty() => f.args[*k as usize % f.args.len()],
            _ => unit(),
        },
    }
}

fn name_of(i: u8) -> CString {
    CString::new(NAMES[i as usize % NAMES.len()]).expect("no NUL")
}

fn c_text(bytes: &[u8]) -> CString {
    CString::new(
        bytes
            .iter()
            .copied()
            .filter(|&b| b != 0)
            .collect::<Vec<u8>>(),
    )
    .unwrap_or_default()
}

fn bytecode(i: usize) -> &'static [u8] {
    // A static (not a leaked thread-local) so that LeakSanitizer sees it reachable.
    static BYTES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    &BYTES.get_or_init(|| {
        PROGRAMS
            .iter()
            .map(|src| {
                let program = stoffel_vm::asm::assemble(src).expect("prepared programs assemble");
                stoffel_vm::stfl::write(&program).expect("and can be written")
            })
            .collect()
    })[i]
}

/// Runs one op at the top level (`frame` None) or in a scripted callback.
fn step(op: &Op, frame: Option<&mut Frame>) {
    if tracing() {
        let depth = world(|w| w.frames);
        eprintln!("{:indent$}{op:?}", "", indent = 2 * depth as usize);
    }
    // The VM an op names, and its state before the op.
    let pick = |sel: Sel| {
        world(|w| {
            let h = w.pick(sel);
            (h, w.state(h))
        })
    };
    match op {
        Op::NewVm => {
            let room = world(|w| {
                w.created < MAX_CREATED && (w.vms.len() < MAX_VMS || w.vms.iter().any(|s| !s.alive))
            });
            if !room {
                return;
            }
            let h = stoffel_create_vm();
            assert!(
                !h.is_null(),
                "stoffel_create_vm: {}",
                last_error(std::ptr::null_mut())
            );
            world(|w| {
                w.created += 1;
                let slot = Slot {
                    handle: h,
                    alive: true,
                };
                match w.vms.iter().position(|s| !s.alive) {
                    Some(i) if w.vms.len() >= MAX_VMS => w.vms[i] = slot,
                    _ => w.vms.push(slot),
                }
            });
            // Keep runaway programs short and output quiet.
            assert_eq!(on(h, || stoffel_set_instruction_limit(h, 50_000)), OK);
            // SAFETY: a valid callback.
            assert_eq!(
                on(h, || unsafe {
                    stoffel_set_print_callback(h, Some(quiet_sink), h)
                }),
                OK
            );
        }
        Op::Destroy(sel) => destroy(world(|w| w.pick(*sel))),
        Op::Load(sel, which, as_bytes) => {
            let (h, st) = pick(*sel);
            let which = *which as usize % PROGRAMS.len();
            let rc = if *as_bytes {
                let bytes = bytecode(which);
                // SAFETY: a live buffer of that length.
                on(h, || unsafe {
                    stoffel_load_bytecode(h, bytes.as_ptr(), bytes.len())
                })
            } else {
                let src = CString::new(PROGRAMS[which]).expect("no NUL");
                // SAFETY: a valid C string.
                on(h, || unsafe { stoffel_load_assembly(h, src.as_ptr()) })
            };
            expect(h, st, rc, NONE, "loading a prepared program");
        }
        Op::LoadBytes(sel, bytes) => {
            let (h, st) = pick(*sel);
            // SAFETY: a live buffer of that length.
            let rc = on(h, || unsafe {
                stoffel_load_bytecode(h, bytes.as_ptr(), bytes.len())
            });
            expect(h, st, rc, LOAD_BYTES, "stoffel_load_bytecode");
        }
        Op::LoadAsm(sel, bytes) => {
            let (h, st) = pick(*sel);
            let c = c_text(bytes);
            // SAFETY: a valid C string (possibly invalid UTF-8).
            let rc = on(h, || unsafe { stoffel_load_assembly(h, c.as_ptr()) });
            expect(h, st, rc, LOAD, "stoffel_load_assembly");
        }
        Op::Execute(sel, name, args) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let cargs = c_args(args, 8, frame.as_deref(), &mut keep);
            let name = name_of(*name);
            let mut out = unit();
            // SAFETY: valid name, `cargs.len()` readable values, writable result.
            let rc = on(h, || unsafe {
                stoffel_execute_with_args(
                    h,
                    name.as_ptr(),
                    cargs.as_ptr(),
                    cargs.len() as c_int,
                    &mut out,
                )
            });
            expect(h, st, rc, EXEC_ARGS, "stoffel_execute_with_args");
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::ExecuteNoArgs(sel, name) => {
            let (h, st) = pick(*sel);
            let name = name_of(*name);
            let mut out = unit();
            // SAFETY: a valid name and a writable result.
            let rc = on(h, || unsafe { stoffel_execute(h, name.as_ptr(), &mut out) });
            expect(h, st, rc, EXEC, "stoffel_execute");
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::ExecuteBadName(sel, bytes) => {
            let (h, st) = pick(*sel);
            let c = c_text(bytes);
            let mut out = unit();
            // SAFETY: a valid C string (maybe invalid UTF-8) and a writable result.
            let rc = on(h, || unsafe { stoffel_execute(h, c.as_ptr(), &mut out) });
            expect(h, st, rc, EXEC, "stoffel_execute");
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::ExecuteBadCount(sel, count, null_args) => {
            let (h, st) = pick(*sel);
            let (count, null_args) = (*count, *null_args);
            let args = [unit(); 2];
            if !null_args && (3..=1024).contains(&count) {
                return; // a real count larger than our array: the caller's bug, not ours
            }
            let p = if null_args {
                std::ptr::null()
            } else {
                args.as_ptr()
            };
            let mut out = unit();
            // SAFETY: with NULL args or a bad count the VM must refuse before reading.
            let rc = on(h, || unsafe {
                stoffel_execute_with_args(h, c"identity".as_ptr(), p, count, &mut out)
            });
            expect(
                h,
                st,
                rc,
                EXEC_ARGS,
                "stoffel_execute_with_args (bad count)",
            );
            if st == State::Ready && (!(0..=1024).contains(&count) || (null_args && count > 0)) {
                assert_eq!(rc, NULL, "a bad count or NULL args");
            }
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::Register(sel, name, kind) => {
            let (h, st) = pick(*sel);
            let name = CString::new(format!("cb{}", name % 4)).expect("no NUL");
            let f = PLAIN[*kind as usize % PLAIN.len()];
            // SAFETY: valid name and function pointer.
            let rc = on(h, || unsafe {
                stoffel_register_foreign_function(h, name.as_ptr(), Some(f))
            });
            expect(h, st, rc, NONE, "stoffel_register_foreign_function");
        }
        Op::RegisterScript(sel, name, ops) => {
            let (h, st) = pick(*sel);
            let name = CString::new(CB_NAMES[*name as usize % CB_NAMES.len()]).expect("no NUL");
            let index = world(|w| {
                w.scripts.push(Rc::from(ops.as_slice()));
                w.scripts.len()
            });
            // SAFETY: valid name and function pointer; user data is the script's index + 1.
            let rc = on(h, || unsafe {
                stoffel_register_foreign_function_ex(
                    h,
                    name.as_ptr(),
                    Some(cb_script),
                    index as *mut c_void,
                )
            });
            expect(h, st, rc, NONE, "stoffel_register_foreign_function_ex");
        }
        Op::RegisterNull(sel) => {
            let (h, st) = pick(*sel);
            // SAFETY: a valid name; the NULL function must be refused.
            let rc = on(h, || unsafe {
                stoffel_register_foreign_function(h, c"cb0".as_ptr(), None)
            });
            expect(
                h,
                st,
                rc,
                &[NULL],
                "stoffel_register_foreign_function(NULL)",
            );
            assert_ne!(rc, OK);
        }
        Op::ForeignObject(sel, fin) => {
            let (h, st) = pick(*sel);
            let with_finalizer = !matches!(fin, Fin::None);
            let index = world(|w| {
                w.fins.push(FinRec {
                    runs: 0,
                    registered: with_finalizer,
                    owner: h,
                    id: 0,
                    action: *fin,
                });
                w.fins.len()
            });
            let object = index as *mut c_void;
            let mut out = unit();
            // SAFETY: a non-NULL pointer and a writable result.
            let rc = on(h, || unsafe {
                if with_finalizer {
                    stoffel_register_foreign_object_ex(h, object, Some(finalize), &mut out)
                } else {
                    stoffel_register_foreign_object(h, object, &mut out)
                }
            });
            expect(h, st, rc, NONE, "stoffel_register_foreign_object");
            world(|w| {
                if rc == OK {
                    w.fins[index - 1].id = id_of(&out).expect("a FOREIGN id");
                    w.keep_result(h, out);
                } else {
                    w.fins[index - 1].registered = false;
                }
            });
        }
        Op::GetForeign(sel, a) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let v = arg(a, frame.as_deref(), &mut keep);
            let mut p: *mut c_void = std::ptr::null_mut();
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe { stoffel_get_foreign_object(h, &v, &mut p) });
            expect(h, st, rc, HEAP, "stoffel_get_foreign_object");
        }
        Op::Release(sel, k) | Op::Retain(sel, k) => {
            let h = world(|w| w.pick(*sel));
            let v = world(|w| w.pool(*k));
            release_or_retain(h, v, matches!(op, Op::Retain(..)));
        }
        Op::ReleaseArg(sel, a) | Op::RetainArg(sel, a) => {
            let h = world(|w| w.pick(*sel));
            let mut keep = Vec::new();
            let v = arg(a, frame.as_deref(), &mut keep);
            release_or_retain(h, v, matches!(op, Op::RetainArg(..)));
        }
        Op::CreateObject(sel) | Op::CreateArray(sel) => {
            let (h, st) = pick(*sel);
            let mut out = unit();
            // SAFETY: writable result.
            let rc = on(h, || unsafe {
                if matches!(op, Op::CreateObject(_)) {
                    stoffel_create_object(h, &mut out)
                } else {
                    stoffel_create_array(h, &mut out)
                }
            });
            expect(h, st, rc, CREATE, "stoffel_create_object/array");
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::Start(sel, name, args, fuel) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let cargs = c_args(args, 8, frame.as_deref(), &mut keep);
            let name = name_of(*name);
            let mut out = unit();
            // SAFETY: valid name, `cargs.len()` readable values, writable result.
            let rc = on(h, || unsafe {
                stoffel_execute_start(
                    h,
                    name.as_ptr(),
                    cargs.as_ptr(),
                    cargs.len() as c_int,
                    u64::from(fuel % 16),
                    &mut out,
                )
            });
            expect(h, st, rc, SLICE, "stoffel_execute_start");
            slice_result(h, rc, out);
        }
        Op::Resume(sel, fuel) => {
            let (h, st) = pick(*sel);
            let mut out = unit();
            // SAFETY: a writable result.
            let rc = on(h, || unsafe {
                stoffel_resume(h, u64::from(fuel % 16), &mut out)
            });
            expect(h, st, rc, SLICE, "stoffel_resume");
            slice_result(h, rc, out);
        }
        Op::Cancel(sel) => {
            let (h, st) = pick(*sel);
            let rc = on(h, || stoffel_cancel(h));
            expect(h, st, rc, CANCEL, "stoffel_cancel");
        }
        Op::ObjectNext(sel, o, k) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let (o, k) = (
                arg(o, frame.as_deref(), &mut keep),
                arg(k, frame.as_deref(), &mut keep),
            );
            let (mut next_key, mut value) = (unit(), unit());
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe {
                stoffel_object_next(h, &o, &k, &mut next_key, &mut value)
            });
            expect(h, st, rc, NEXT, "stoffel_object_next");
            if rc == OK {
                world(|w| {
                    w.keep_result(h, next_key);
                    w.keep_result(h, value);
                });
            }
        }
        Op::GetField(sel, c, k) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let (c, k) = (
                arg(c, frame.as_deref(), &mut keep),
                arg(k, frame.as_deref(), &mut keep),
            );
            let mut out = unit();
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe { stoffel_get_field(h, &c, &k, &mut out) });
            expect(h, st, rc, HEAP, "stoffel_get_field");
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::SetField(sel, c, k, v) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let f = frame.as_deref();
            let (c, k, v) = (
                arg(c, f, &mut keep),
                arg(k, f, &mut keep),
                arg(v, f, &mut keep),
            );
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe { stoffel_set_field(h, &c, &k, &v) });
            expect(h, st, rc, HEAP, "stoffel_set_field");
        }
        Op::ArrayPush(sel, a, v) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let (a, v) = (
                arg(a, frame.as_deref(), &mut keep),
                arg(v, frame.as_deref(), &mut keep),
            );
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe { stoffel_array_push(h, &a, &v) });
            expect(h, st, rc, HEAP, "stoffel_array_push");
        }
        Op::ArrayLength(sel, a) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let a = arg(a, frame.as_deref(), &mut keep);
            let mut n = 0usize;
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe { stoffel_array_length(h, &a, &mut n) });
            expect(h, st, rc, HEAP, "stoffel_array_length");
        }
        Op::CallClosure(sel, c, args) => {
            let (h, st) = pick(*sel);
            let mut keep = Vec::new();
            let c = arg(c, frame.as_deref(), &mut keep);
            let cargs = c_args(args, 4, frame.as_deref(), &mut keep);
            let mut out = unit();
            // SAFETY: valid pointers and count.
            let rc = on(h, || unsafe {
                stoffel_call_closure(h, &c, cargs.as_ptr(), cargs.len() as c_int, &mut out)
            });
            expect(h, st, rc, CLOSURE, "stoffel_call_closure");
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::Limits(sel, fuel, depth, mem) => {
            let (h, st) = pick(*sel);
            // (0 would mean unlimited: never here, `spin` must stop.)
            let rc = on(h, || {
                stoffel_set_instruction_limit(h, u64::from(*fuel) * 16 + 1)
            });
            expect(h, st, rc, NONE, "stoffel_set_instruction_limit");
            let rc = on(h, || stoffel_set_max_call_depth(h, u32::from(*depth)));
            expect(
                h,
                st,
                rc,
                if *depth == 0 { &[NULL] } else { NONE },
                "stoffel_set_max_call_depth",
            );
            let rc = on(h, || {
                stoffel_set_memory_limit(h, (usize::from(*mem) + 1) * 4096)
            });
            expect(h, st, rc, NONE, "stoffel_set_memory_limit");
        }
        Op::Gc(sel) => {
            let (h, st) = pick(*sel);
            let rc = on(h, || stoffel_gc_collect(h));
            expect(h, st, rc, NONE, "stoffel_gc_collect");
        }
        Op::Interrupt(sel) => {
            let (h, st) = pick(*sel);
            // Not through the gate: it works on a VM this thread is inside a call on.
            let rc = stoffel_interrupt(h);
            match st {
                State::Dead => assert_eq!(rc, INVALID_VM, "stoffel_interrupt on a destroyed VM"),
                State::Busy | State::Ready => assert_eq!(rc, OK, "stoffel_interrupt: {rc}"),
            }
        }
        Op::Stats(sel) => stats(world(|w| w.pick(*sel))),
        Op::CreateString(sel, bytes) => {
            let (h, st) = pick(*sel);
            let c = c_text(bytes);
            let mut out = unit();
            // SAFETY: valid pointers.
            let rc = on(h, || unsafe {
                stoffel_create_string(h, c.as_ptr(), &mut out)
            });
            expect(h, st, rc, STRING, "stoffel_create_string");
            if rc == OK {
                // SAFETY: a STRING value.
                world(|w| {
                    w.strings
                        .push(unsafe { out.data.string_val } as *mut c_char)
                });
            }
        }
        Op::FreeString(k) => {
            if let Some(p) = world(|w| {
                (!w.strings.is_empty()).then(|| {
                    let k = *k as usize % w.strings.len();
                    w.strings.swap_remove(k)
                })
            }) {
                stoffel_free_string(p);
                // Freeing it again must be harmless.
                stoffel_free_string(p);
            }
        }
        Op::FreeBogus(offset) => {
            // A pointer the VM never handed out (even one inside a real string) is ignored.
            let local = [0 as c_char; 4];
            stoffel_free_string(local.as_ptr() as *mut c_char);
            if let Some(p) = world(|w| w.strings.first().copied()) {
                stoffel_free_string(p.wrapping_add((offset % 2 + 1) as usize));
            }
        }
        Op::PrintCallback(sel, loud) => {
            let (h, st) = pick(*sel);
            let sink = if *loud {
                Some(print_sink as PrintFn)
            } else {
                Some(quiet_sink as PrintFn)
            };
            // SAFETY: a valid callback; user data is the VM handle.
            let rc = on(h, || unsafe { stoffel_set_print_callback(h, sink, h) });
            expect(h, st, rc, NONE, "stoffel_set_print_callback");
        }
        Op::Lookup(sel, name) => {
            let (h, st) = pick(*sel);
            let name = name_of(*name);
            let mut f = StoffelFunction::default();
            // SAFETY: a valid name and a writable handle.
            let rc = on(h, || unsafe {
                stoffel_vm::ffi::functions::stoffel_lookup_function(h, name.as_ptr(), &mut f)
            });
            expect(h, st, rc, LOOKUP, "stoffel_lookup_function");
            if rc == OK {
                world(|w| w.funcs.push((h, f)));
            }
        }
        Op::CallFunction(sel, k, args) => {
            let (h, st) = pick(*sel);
            let picked = world(|w| {
                (*k < 0xF0 && !w.funcs.is_empty()).then(|| w.funcs[*k as usize % w.funcs.len()])
            });
            let f = picked.map_or(
                StoffelFunction {
                    vm: u64::from(*k) << 8,
                    slot: u64::from(*k),
                },
                |(_, f)| f,
            );
            let mut keep = Vec::new();
            let cargs = c_args(args, 8, frame.as_deref(), &mut keep);
            let mut out = unit();
            // SAFETY: `cargs.len()` readable values and a writable result.
            let rc = on(h, || unsafe {
                stoffel_vm::ffi::functions::stoffel_call_function(
                    h,
                    f,
                    cargs.as_ptr(),
                    cargs.len() as c_int,
                    &mut out,
                )
            });
            expect(h, st, rc, EXEC_ARGS, "stoffel_call_function");
            // Another VM's handle (VM handles are never reused) is refused before anything runs.
            if st == State::Ready
                && let Some((from, _)) = picked
                && from != h
            {
                assert_eq!(rc, INVALID_HANDLE, "another VM's function handle");
            }
            if rc == OK {
                world(|w| w.keep_result(h, out));
            }
        }
        Op::Result(res) => {
            let Some(frame) = frame else {
                return;
            };
            static FROM_SCRIPT: &[u8] = b"from a script\0";
            let code = if let Res::Fail(code) = res { *code } else { 0 };
            let result = match res {
                Res::Int(i) => int(*i),
                Res::Float(f) => with_tag(2, StoffelValueData { float_val: *f }),
                Res::Arg(k) if !frame.args.is_empty() => frame.args[*k as usize % frame.args.len()],
                Res::Arg(_) => unit(),
                Res::Pool(k) => world(|w| w.pool(*k)),
                Res::Last => world(|w| w.last()),
                Res::NewObject => {
                    step(&Op::CreateObject(0x80), Some(frame));
                    world(|w| w.last())
                }
                Res::Str => with_tag(
                    4,
                    StoffelValueData {
                        string_val: FROM_SCRIPT.as_ptr().cast(),
                    },
                ),
                Res::NullString => with_tag(
                    4,
                    StoffelValueData {
                        string_val: std::ptr::null(),
                    },
                ),
                Res::BadTag(t) => with_tag(*t, StoffelValueData { int_val: 0 }),
                Res::Fail(_) => frame.result,
            };
            (frame.code, frame.result) = (code, result);
        }
    }
}

fn finish() {
    let (active, frames) = world(|w| (w.active.len(), w.frames));
    assert_eq!((active, frames), (0, 0), "every call has returned");
    let alive: Vec<VMHandle> =
        world(|w| w.vms.iter().filter(|s| s.alive).map(|s| s.handle).collect());
    // Nothing leaked: each VM holds exactly the ids we own.
    for &h in &alive {
        stats(h);
    }
    // Release everything we own (finalizers that run meanwhile may destroy VMs).
    while let Some((h, v)) = world(|w| {
        w.held
            .iter()
            .find(|e| e.refs > 0 && w.alive(e.vm))
            .map(|e| (e.vm, e.value))
    }) {
        release_or_retain(h, v, false);
    }
    for h in world(|w| {
        w.vms
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.handle)
            .collect::<Vec<_>>()
    }) {
        let mut s = StoffelGcStats::default();
        // SAFETY: writable.
        let rc = unsafe { stoffel_gc_stats(h, &mut s) };
        if rc != INVALID_VM {
            assert_eq!(rc, OK);
            assert_eq!(
                s.live_handles, 0,
                "after releasing all we own, no handle is live: {s:?}"
            );
        }
    }
    for p in world(|w| std::mem::take(&mut w.strings)) {
        stoffel_free_string(p);
    }
    while let Some(h) = world(|w| w.vms.iter().find(|s| s.alive).map(|s| s.handle)) {
        destroy(h);
    }
    world(|w| {
        for (i, rec) in w.fins.iter().enumerate() {
            let want = u32::from(rec.registered);
            assert_eq!(
                rec.runs, want,
                "finalizer {i} runs exactly once by the end ({:?})",
                rec.action
            );
        }
    });
}

fn run(ops: &[Op]) {
    world(|w| {
        *w = World::default();
        w.budget = SCRIPT_BUDGET;
    });
    step(&Op::NewVm, None);
    step(&Op::Load(0, 0, false), None);
    for op in ops.iter().take(64) {
        step(op, None);
        world(|w| w.check_gone(None));
    }
    finish();
}

fuzz_target!(
    init: {
        if let Ok(dir) = std::env::var("STOFFEL_FUZZ_WRITE_SEEDS") {
            seeds::write(std::path::Path::new(&dir));
            std::process::exit(0);
        }
    },
    |ops: Vec<Op>| run(&ops)
);

#[path = "c_api_seeds.rs"]
mod seeds;
