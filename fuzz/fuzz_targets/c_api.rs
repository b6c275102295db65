//! Drives the C API with sequences of calls decoded from the input: several VMs, loading
//! (prepared programs, random bytes, random assembly), executions with arbitrary arguments
//! (forged, stale, released and other-VM ids, bad type tags, odd bools, invalid UTF-8,
//! NULLs, bad counts), C callbacks that succeed, fail, return every type or re-enter the VM,
//! foreign objects with finalizers, release/retain (also twice), heap access, closures,
//! limits and GC — all through the `extern "C"` functions.
//!
//! Invariants checked after every step: no crash; a failing call leaves a message; releasing
//! a value we own succeeds and releasing one we no longer own is `STOFFEL_ERROR_INVALID_HANDLE`;
//! at the end, after releasing everything we own, each VM has no live handle; after
//! destroying every VM, every finalizer has run exactly once.
#![no_main]

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::rc::Rc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stoffel_vm::ffi::foreign::*;
use stoffel_vm::ffi::values::*;
use stoffel_vm::ffi::vm::*;
use stoffel_vm::ffi::*;

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

const NAMES: [&str; 24] = [
    "make_obj", "make_arr", "make_closure", "adder", "identity", "concat", "calls_cbs", "spin",
    "recurse", "show", "cb0", "cb1", "cb2", "cb3", "print", "type", "create_object",
    "create_array", "get_field", "set_field", "array_push", "call_closure", "nonexistent", "",
];

#[derive(Arbitrary, Debug, Clone)]
enum Arg {
    Int(i64),
    Float(f64),
    Bool(i32),
    Str(Vec<u8>),
    NullString,
    BadTag(i32),
    /// A value from the pool (possibly released, possibly another VM's).
    Pool(u8),
    /// A made-up id of some heap kind (5..8).
    Forged(u64, u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    NewVm,
    Destroy(u8),
    LoadProgram(u8),
    LoadBytes(u8, Vec<u8>),
    LoadAsm(u8, Vec<u8>),
    Execute(u8, u8, Vec<Arg>),
    ExecuteBadName(u8, Vec<u8>),
    ExecuteBadCount(u8, i32, bool),
    Register(u8, u8, u8),
    RegisterNull(u8),
    ForeignObject(u8, bool),
    GetForeign(u8, Arg),
    Release(u8, u8),
    Retain(u8, u8),
    ReleaseArg(u8, Arg),
    CreateObject(u8),
    CreateArray(u8),
    GetField(u8, Arg, Arg),
    SetField(u8, Arg, Arg, Arg),
    ArrayPush(u8, Arg, Arg),
    ArrayLength(u8, Arg),
    CallClosure(u8, Arg, Vec<Arg>),
    Limits(u8, u16, u8, u16),
    Gc(u8),
    Stats(u8),
    CreateString(u8, Vec<u8>),
    FreeString(u8),
    FreeBogus(u64),
    PrintCallback(u8, bool),
}

/// A value we received from a VM and the references we hold to it.
struct Held {
    vm: usize,
    value: StoffelValue,
    refs: u32,
}

#[derive(Default)]
struct World {
    vms: Vec<Option<VMHandle>>,
    held: Vec<Held>,
    strings: Vec<*mut c_char>,
    finalized: Vec<Rc<RefCell<u32>>>,
}

fn unit() -> StoffelValue {
    StoffelValue {
        value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
        data: StoffelValueData { int_val: 0 },
    }
}

fn with_tag(tag: c_int, data: StoffelValueData) -> StoffelValue {
    let mut v = StoffelValue {
        value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
        data,
    };
    // Write the raw tag as an int, as a C program may (including out-of-range tags).
    // SAFETY: `value_type` is a 4-byte C int field.
    unsafe { std::ptr::addr_of_mut!(v.value_type).cast::<c_int>().write(tag) };
    v
}

fn is_heap(v: &StoffelValue) -> bool {
    // SAFETY: values in `held` came from the VM, so their tags are valid.
    let tag = unsafe { std::ptr::addr_of!(v.value_type).cast::<c_int>().read() };
    (5..=8).contains(&tag)
}

fn check(vm: VMHandle, rc: c_int) {
    if rc != STOFFEL_OK {
        assert!(!stoffel_last_error(vm).is_null(), "a failing call (code {rc}) must leave a message");
    }
}

// ----- callbacks -----

unsafe extern "C" fn cb_sum(args: *const StoffelValue, n: c_int, out: *mut StoffelValue) -> c_int {
    let mut sum = 0i64;
    for i in 0..n as usize {
        // SAFETY: the VM passes `n` readable values.
        let a = unsafe { *args.add(i) };
        if a.value_type == StoffelValueType::STOFFEL_VALUE_INT {
            // SAFETY: INT values carry int_val.
            sum = sum.wrapping_add(unsafe { a.data.int_val });
        }
    }
    // SAFETY: `out` is writable.
    unsafe { out.write(with_tag(1, StoffelValueData { int_val: sum })) };
    0
}

unsafe extern "C" fn cb_fail(_: *const StoffelValue, _: c_int, _: *mut StoffelValue) -> c_int {
    -7
}

unsafe extern "C" fn cb_string(_: *const StoffelValue, _: c_int, out: *mut StoffelValue) -> c_int {
    static TEXT: &[u8] = b"from C\0";
    // SAFETY: `out` is writable; the string is static.
    unsafe { out.write(with_tag(4, StoffelValueData { string_val: TEXT.as_ptr().cast() })) };
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

unsafe extern "C" fn cb_null_string(_: *const StoffelValue, _: c_int, out: *mut StoffelValue) -> c_int {
    // SAFETY: `out` is writable.
    unsafe { out.write(with_tag(4, StoffelValueData { string_val: std::ptr::null() })) };
    0
}

/// Re-enters the VM: executes, uses the heap, collects garbage, releases what it made.
unsafe extern "C" fn cb_reenter(
    vm: VMHandle,
    _user: *mut c_void,
    args: *const StoffelValue,
    n: c_int,
    out: *mut StoffelValue,
) -> c_int {
    let mut obj = unit();
    // SAFETY (all calls below): valid pointers to locals; `args` has `n` values.
    unsafe {
        if stoffel_create_object(vm, &mut obj) != 0 {
            return 1;
        }
        let key = with_tag(1, StoffelValueData { int_val: 1 });
        let val = if n > 0 { *args } else { unit() };
        let rc = stoffel_set_field(vm, &obj, &key, &val);
        check(vm, rc);
        let mut got = unit();
        if stoffel_get_field(vm, &obj, &key, &mut got) == 0 {
            release_any(vm, &got);
        }
        let name = c"identity";
        let mut r = unit();
        if stoffel_execute_with_args(vm, name.as_ptr(), &obj, 1, &mut r) == 0 {
            release_any(vm, &r);
        }
        check(vm, stoffel_gc_collect(vm));
        check(vm, stoffel_release_value(vm, &obj));
        out.write(with_tag(1, StoffelValueData { int_val: 42 }));
    }
    0
}

/// Frees or releases a value the VM handed us.
unsafe fn release_any(vm: VMHandle, v: &StoffelValue) {
    if v.value_type == StoffelValueType::STOFFEL_VALUE_STRING {
        // SAFETY: a STRING result's pointer came from the VM.
        stoffel_free_string(unsafe { v.data.string_val } as *mut c_char);
    } else if is_heap(v) {
        // SAFETY: `v` is a valid value.
        assert_eq!(unsafe { stoffel_release_value(vm, v) }, STOFFEL_OK);
    }
}

unsafe extern "C" fn finalize(object: *mut c_void) {
    // SAFETY: `object` is the `Rc<RefCell<u32>>` leaked for this object (see ForeignObject).
    let counter = unsafe { Rc::from_raw(object as *const RefCell<u32>) };
    *counter.borrow_mut() += 1;
}

type PrintFn = unsafe extern "C" fn(*const c_char, *mut c_void);

unsafe extern "C" fn quiet_sink(_text: *const c_char, _user: *mut c_void) {}

unsafe extern "C" fn print_sink(text: *const c_char, user: *mut c_void) {
    // A print callback must not be able to re-enter: it gets a clean error.
    let mut v = unit();
    // SAFETY: `user` is the VM handle we registered; `v` is a local.
    let rc = unsafe { stoffel_create_object(user, &mut v) };
    assert_eq!(rc, STOFFEL_ERROR_REENTRANCY, "re-entry from print must be refused");
    assert!(!text.is_null());
}

impl World {
    fn vm(&self, i: u8) -> Option<(usize, VMHandle)> {
        if self.vms.is_empty() {
            return None;
        }
        let i = i as usize % self.vms.len();
        self.vms[i].map(|h| (i, h))
    }

    /// Builds a C value for an argument; owned C strings are kept alive in `keep`.
    fn arg(&self, a: &Arg, keep: &mut Vec<CString>) -> StoffelValue {
        match a {
            Arg::Int(i) => with_tag(1, StoffelValueData { int_val: *i }),
            Arg::Float(f) => with_tag(2, StoffelValueData { float_val: *f }),
            Arg::Bool(b) => with_tag(3, StoffelValueData { bool_val: *b }),
            Arg::Str(bytes) => {
                let c = CString::new(bytes.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>())
                    .unwrap_or_default();
                let p = c.as_ptr();
                keep.push(c);
                with_tag(4, StoffelValueData { string_val: p })
            }
            Arg::NullString => with_tag(4, StoffelValueData { string_val: std::ptr::null() }),
            Arg::BadTag(t) => with_tag(*t, StoffelValueData { int_val: 0 }),
            Arg::Pool(i) => {
                if self.held.is_empty() {
                    unit()
                } else {
                    self.held[*i as usize % self.held.len()].value
                }
            }
            Arg::Forged(id, kind) => with_tag(5 + (*kind % 4) as c_int, StoffelValueData { object_id: *id as usize }),
        }
    }

    /// Records a result we now own.
    fn keep_result(&mut self, vm: usize, v: StoffelValue) {
        if v.value_type == StoffelValueType::STOFFEL_VALUE_STRING {
            // SAFETY: a STRING result's pointer came from the VM.
            self.strings.push(unsafe { v.data.string_val } as *mut c_char);
        } else if is_heap(&v) {
            self.held.push(Held { vm, value: v, refs: 1 });
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::NewVm => {
                if self.vms.len() < 4 {
                    let h = stoffel_create_vm();
                    assert!(!h.is_null());
                    // Keep runaway programs short and output quiet.
                    assert_eq!(stoffel_set_instruction_limit(h, 50_000), STOFFEL_OK);
                    // SAFETY: a valid callback.
                    assert_eq!(unsafe { stoffel_set_print_callback(h, Some(quiet_sink), h) }, STOFFEL_OK);
                    self.vms.push(Some(h));
                }
            }
            Op::Destroy(i) => {
                if let Some((i, h)) = self.vm(i) {
                    stoffel_destroy_vm(h);
                    self.vms[i] = None;
                    // Its ids are dead; calls with the stale handle must fail cleanly.
                    self.held.iter_mut().filter(|v| v.vm == i).for_each(|v| v.refs = 0);
                    let mut out = unit();
                    // SAFETY: valid pointer to a local.
                    let rc = unsafe { stoffel_create_object(h, &mut out) };
                    assert_eq!(rc, STOFFEL_ERROR_INVALID_VM);
                }
            }
            Op::LoadProgram(i) => {
                if let Some((_, h)) = self.vm(i) {
                    let src = CString::new(PROGRAM).expect("no NUL");
                    // SAFETY: a valid C string.
                    assert_eq!(unsafe { stoffel_load_assembly(h, src.as_ptr()) }, STOFFEL_OK);
                }
            }
            Op::LoadBytes(i, bytes) => {
                if let Some((_, h)) = self.vm(i) {
                    // SAFETY: a live buffer of that length.
                    check(h, unsafe { stoffel_load_bytecode(h, bytes.as_ptr(), bytes.len()) });
                }
            }
            Op::LoadAsm(i, bytes) => {
                if let Some((_, h)) = self.vm(i) {
                    let text: Vec<u8> = bytes.into_iter().filter(|&b| b != 0).collect();
                    let c = CString::new(text).unwrap_or_default();
                    // SAFETY: a valid C string (possibly invalid UTF-8).
                    check(h, unsafe { stoffel_load_assembly(h, c.as_ptr()) });
                }
            }
            Op::Execute(i, name, args) => {
                if let Some((vi, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let cargs: Vec<StoffelValue> = args.iter().take(8).map(|a| self.arg(a, &mut keep)).collect();
                    let name = CString::new(NAMES[name as usize % NAMES.len()]).expect("no NUL");
                    let mut out = unit();
                    // SAFETY: valid name, `cargs.len()` readable values, writable result.
                    let rc = unsafe {
                        stoffel_execute_with_args(h, name.as_ptr(), cargs.as_ptr(), cargs.len() as c_int, &mut out)
                    };
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        self.keep_result(vi, out);
                    }
                }
            }
            Op::ExecuteBadName(i, bytes) => {
                if let Some((vi, h)) = self.vm(i) {
                    let c = CString::new(bytes.into_iter().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap_or_default();
                    let mut out = unit();
                    // SAFETY: a valid C string (maybe invalid UTF-8) and a writable result.
                    let rc = unsafe { stoffel_execute(h, c.as_ptr(), &mut out) };
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        self.keep_result(vi, out);
                    }
                }
            }
            Op::ExecuteBadCount(i, count, null_args) => {
                if let Some((_, h)) = self.vm(i) {
                    let args = [unit(); 2];
                    if !null_args && (3..=1024).contains(&count) {
                        return; // a real count larger than our array: the caller's bug, not ours
                    }
                    let p = if null_args { std::ptr::null() } else { args.as_ptr() };
                    let mut out = unit();
                    // SAFETY: with NULL args or a bad count the VM must refuse before reading.
                    let rc = unsafe {
                        stoffel_execute_with_args(h, c"identity".as_ptr(), p, count, &mut out)
                    };
                    if !(0..=1024).contains(&count) || (null_args && count > 0) {
                        assert_eq!(rc, STOFFEL_ERROR_NULL);
                    }
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        // SAFETY: `out` was written by the VM.
                        unsafe { release_any(h, &out) };
                    }
                }
            }
            Op::Register(i, name, kind) => {
                if let Some((_, h)) = self.vm(i) {
                    let name = CString::new(format!("cb{}", name % 4)).expect("no NUL");
                    // SAFETY: valid name and function pointers.
                    let rc = unsafe {
                        match kind % 7 {
                            0 => stoffel_register_foreign_function(h, name.as_ptr(), Some(cb_sum)),
                            1 => stoffel_register_foreign_function(h, name.as_ptr(), Some(cb_fail)),
                            2 => stoffel_register_foreign_function(h, name.as_ptr(), Some(cb_string)),
                            3 => stoffel_register_foreign_function(h, name.as_ptr(), Some(cb_bad_tag)),
                            4 => stoffel_register_foreign_function(h, name.as_ptr(), Some(cb_echo)),
                            5 => stoffel_register_foreign_function(h, name.as_ptr(), Some(cb_null_string)),
                            _ => stoffel_register_foreign_function_ex(
                                h,
                                name.as_ptr(),
                                Some(cb_reenter),
                                std::ptr::null_mut(),
                            ),
                        }
                    };
                    assert_eq!(rc, STOFFEL_OK);
                }
            }
            Op::RegisterNull(i) => {
                if let Some((_, h)) = self.vm(i) {
                    // SAFETY: a valid name; the NULL function must be refused.
                    let rc = unsafe { stoffel_register_foreign_function(h, c"cb0".as_ptr(), None) };
                    assert_eq!(rc, STOFFEL_ERROR_NULL);
                    check(h, rc);
                }
            }
            Op::ForeignObject(i, with_finalizer) => {
                if let Some((vi, h)) = self.vm(i) {
                    let counter = Rc::new(RefCell::new(0u32));
                    let raw = Rc::into_raw(counter.clone()) as *mut c_void;
                    let mut out = unit();
                    // SAFETY: a valid pointer and result.
                    let rc = unsafe {
                        if with_finalizer {
                            stoffel_register_foreign_object_ex(h, raw, Some(finalize), &mut out)
                        } else {
                            stoffel_register_foreign_object(h, raw, &mut out)
                        }
                    };
                    assert_eq!(rc, STOFFEL_OK);
                    if with_finalizer {
                        self.finalized.push(counter);
                    } else {
                        // No finalizer: we keep the reference the pointer stands for.
                        // SAFETY: `raw` came from `Rc::into_raw` just above.
                        drop(unsafe { Rc::from_raw(raw as *const RefCell<u32>) });
                    }
                    self.keep_result(vi, out);
                }
            }
            Op::GetForeign(i, a) => {
                if let Some((_, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let v = self.arg(&a, &mut keep);
                    let mut p: *mut c_void = std::ptr::null_mut();
                    // SAFETY: valid pointers.
                    check(h, unsafe { stoffel_get_foreign_object(h, &v, &mut p) });
                }
            }
            Op::Release(i, k) | Op::Retain(i, k) if !self.held.is_empty() => {
                let retain = matches!(op, Op::Retain(..));
                let k = k as usize % self.held.len();
                let owner = self.held[k].vm;
                if let Some((_, h)) = self.vm(i) {
                    let v = self.held[k].value;
                    // SAFETY: a valid value pointer.
                    let rc = unsafe {
                        if retain { stoffel_retain_value(h, &v) } else { stoffel_release_value(h, &v) }
                    };
                    check(h, rc);
                    let same_vm = self.vm(i).map(|(vi, _)| vi) == Some(owner);
                    if same_vm && self.held[k].refs > 0 {
                        assert_eq!(rc, STOFFEL_OK, "releasing/retaining an owned id must work");
                        if retain {
                            self.held[k].refs += 1;
                        } else {
                            self.held[k].refs -= 1;
                        }
                    } else {
                        assert_eq!(rc, STOFFEL_ERROR_INVALID_HANDLE, "a dead or other VM's id must be refused");
                    }
                }
            }
            Op::Release(..) | Op::Retain(..) => {}
            Op::ReleaseArg(i, a) => {
                if let Some((_, h)) = self.vm(i) {
                    if matches!(a, Arg::Pool(_)) {
                        return; // pool entries are released through Op::Release (tracked)
                    }
                    let mut keep = Vec::new();
                    let v = self.arg(&a, &mut keep);
                    // SAFETY: a valid value pointer.
                    let rc = unsafe { stoffel_release_value(h, &v) };
                    // Ids carry a VM tag and a generation, so a forged id hitting one of ours
                    // is negligible; a bad tag or a non-heap value must be refused cleanly.
                    check(h, rc);
                    if matches!(a, Arg::BadTag(t) if !(0..=8).contains(&t)) {
                        assert_eq!(rc, STOFFEL_ERROR_TYPE);
                    }
                }
            }
            Op::CreateObject(i) | Op::CreateArray(i) => {
                if let Some((vi, h)) = self.vm(i) {
                    let mut out = unit();
                    // SAFETY: writable result.
                    let rc = unsafe {
                        if matches!(op, Op::CreateObject(_)) {
                            stoffel_create_object(h, &mut out)
                        } else {
                            stoffel_create_array(h, &mut out)
                        }
                    };
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        self.keep_result(vi, out);
                    }
                }
            }
            Op::GetField(i, c, k) => {
                if let Some((vi, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let (c, k) = (self.arg(&c, &mut keep), self.arg(&k, &mut keep));
                    let mut out = unit();
                    // SAFETY: valid pointers.
                    let rc = unsafe { stoffel_get_field(h, &c, &k, &mut out) };
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        self.keep_result(vi, out);
                    }
                }
            }
            Op::SetField(i, c, k, v) => {
                if let Some((_, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let (c, k, v) = (self.arg(&c, &mut keep), self.arg(&k, &mut keep), self.arg(&v, &mut keep));
                    // SAFETY: valid pointers.
                    check(h, unsafe { stoffel_set_field(h, &c, &k, &v) });
                }
            }
            Op::ArrayPush(i, a, v) => {
                if let Some((_, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let (a, v) = (self.arg(&a, &mut keep), self.arg(&v, &mut keep));
                    // SAFETY: valid pointers.
                    check(h, unsafe { stoffel_array_push(h, &a, &v) });
                }
            }
            Op::ArrayLength(i, a) => {
                if let Some((_, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let a = self.arg(&a, &mut keep);
                    let mut n = 0usize;
                    // SAFETY: valid pointers.
                    check(h, unsafe { stoffel_array_length(h, &a, &mut n) });
                }
            }
            Op::CallClosure(i, c, args) => {
                if let Some((vi, h)) = self.vm(i) {
                    let mut keep = Vec::new();
                    let c = self.arg(&c, &mut keep);
                    let cargs: Vec<StoffelValue> = args.iter().take(4).map(|a| self.arg(a, &mut keep)).collect();
                    let mut out = unit();
                    // SAFETY: valid pointers and count.
                    let rc = unsafe { stoffel_call_closure(h, &c, cargs.as_ptr(), cargs.len() as c_int, &mut out) };
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        self.keep_result(vi, out);
                    }
                }
            }
            Op::Limits(i, fuel, depth, mem) => {
                if let Some((_, h)) = self.vm(i) {
                    check(h, stoffel_set_instruction_limit(h, u64::from(fuel) * 16 + 1));
                    // (0 would mean unlimited: never here, `spin` must stop.)
                    check(h, stoffel_set_max_call_depth(h, u32::from(depth)));
                    check(h, stoffel_set_memory_limit(h, (usize::from(mem) + 1) * 4096));
                }
            }
            Op::Gc(i) => {
                if let Some((_, h)) = self.vm(i) {
                    assert_eq!(stoffel_gc_collect(h), STOFFEL_OK);
                }
            }
            Op::Stats(i) => {
                if let Some((vi, h)) = self.vm(i) {
                    let mut s = StoffelGcStats::default();
                    // SAFETY: writable.
                    assert_eq!(unsafe { stoffel_gc_stats(h, &mut s) }, STOFFEL_OK);
                    let owned = self.held.iter().filter(|v| v.vm == vi && v.refs > 0).count();
                    assert!(s.live_handles >= owned, "every id we own is live: {s:?}");
                }
            }
            Op::CreateString(i, bytes) => {
                if let Some((_, h)) = self.vm(i) {
                    let c = CString::new(bytes.into_iter().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap_or_default();
                    let mut out = unit();
                    // SAFETY: valid pointers.
                    let rc = unsafe { stoffel_create_string(h, c.as_ptr(), &mut out) };
                    check(h, rc);
                    if rc == STOFFEL_OK {
                        // SAFETY: a STRING value.
                        self.strings.push(unsafe { out.data.string_val } as *mut c_char);
                    }
                }
            }
            Op::FreeString(k) => {
                if !self.strings.is_empty() {
                    let k = k as usize % self.strings.len();
                    let p = self.strings.swap_remove(k);
                    stoffel_free_string(p);
                    // Freeing it again must be harmless.
                    stoffel_free_string(p);
                }
            }
            Op::FreeBogus(offset) => {
                // A pointer the VM never handed out (even one inside a real string) is ignored.
                let local = [0 as c_char; 4];
                stoffel_free_string(local.as_ptr() as *mut c_char);
                if let Some(&p) = self.strings.first() {
                    let inside = p.wrapping_add((offset % 2 + 1) as usize);
                    stoffel_free_string(inside);
                }
            }
            Op::PrintCallback(i, on) => {
                if let Some((_, h)) = self.vm(i) {
                    // SAFETY: a valid callback; user data is the VM handle.
                    let sink = if on { Some(print_sink as PrintFn) } else { Some(quiet_sink as PrintFn) };
                    let rc = unsafe { stoffel_set_print_callback(h, sink, h) };
                    assert_eq!(rc, STOFFEL_OK);
                }
            }
        }
    }

    fn finish(mut self) {
        for held in std::mem::take(&mut self.held) {
            if let Some(Some(h)) = self.vms.get(held.vm) {
                for _ in 0..held.refs {
                    // SAFETY: a valid value pointer.
                    assert_eq!(unsafe { stoffel_release_value(*h, &held.value) }, STOFFEL_OK);
                }
            }
        }
        for h in self.vms.iter().flatten() {
            let mut s = StoffelGcStats::default();
            // SAFETY: writable.
            assert_eq!(unsafe { stoffel_gc_stats(*h, &mut s) }, STOFFEL_OK);
            assert_eq!(s.live_handles, 0, "after releasing all we own, no handle is live: {s:?}");
        }
        for p in self.strings.drain(..) {
            stoffel_free_string(p);
        }
        for h in self.vms.drain(..).flatten() {
            stoffel_destroy_vm(h);
        }
        for counter in &self.finalized {
            assert_eq!(*counter.borrow(), 1, "every finalizer runs exactly once by destroy");
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World::default();
    world.step(Op::NewVm);
    world.step(Op::LoadProgram(0));
    for op in ops.into_iter().take(64) {
        world.step(op);
    }
    world.finish();
});
