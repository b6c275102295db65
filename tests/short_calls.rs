//! The short host → VM call (src/vm/quick.rs): `stoffel_call_function` and
//! `stoffel_execute_with_args` of a bytecode function with a few scalar arguments start the
//! frame, run one step and take a scalar result in one go, and fall back to the general
//! driver for everything else. Each case here runs the same call through that path (the C
//! API, on a VM warmed up so its stacks have room: the short path's condition) and through
//! the general one (`Vm::execute` of the Rust API, on a VM set up the same way), and
//! requires the same result, or the same return code and message: instruction limits of 1
//! to N, depth limits, the memory limit, an interrupt asked for before the call, a callee
//! that calls a C function which re-enters the VM, failing callees, results of every kind,
//! and collection during a million calls.

use std::ffi::{CStr, CString, c_int};
use std::sync::atomic::{AtomicPtr, Ordering};

use stoffel_vm::ffi::foreign::stoffel_register_foreign_function;
use stoffel_vm::ffi::functions::{stoffel_call_function, stoffel_lookup_function};
use stoffel_vm::ffi::values::{stoffel_free_string, stoffel_release_value};
use stoffel_vm::ffi::vm::{
    stoffel_create_vm, stoffel_destroy_vm, stoffel_execute_with_args, stoffel_gc_stats,
    stoffel_interrupt, stoffel_last_error, stoffel_load_assembly, stoffel_set_instruction_limit,
    stoffel_set_max_call_depth, stoffel_set_memory_limit,
};
use stoffel_vm::ffi::{
    STOFFEL_ERROR_EXECUTE_WITH_ARGS, STOFFEL_ERROR_INTERRUPTED, STOFFEL_ERROR_LIMIT, STOFFEL_OK,
    StoffelFunction, StoffelGcStats, StoffelValue, StoffelValueData, StoffelValueType, VMHandle,
};
use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

const PROGRAM: &str = r#"
.function warm(a) registers 1
    RET r0
.function f(a, b) registers 4
    ADD r2, r0, r1
    LDI r3, 1000003
    MOD r2, r2, r3
    RET r2
.function g(x) registers 2
    LDI r1, 2
    MUL r1, r0, r1
    RET r1
.function sum(n) registers 5
    MOV r4, r0
    LDI r1, 0
    LDI r2, 0
    LDI r3, 1
top:
    CMP r2, r4
    JMPEQ done
    PUSHARG r2
    CALL g
    ADD r1, r1, r0
    ADD r2, r2, r3
    JMP top
done:
    RET r1
.function down(n) registers 2
    LDI r1, 0
    CMP r0, r1
    JMPEQ bottom
    LDI r1, 1
    SUB r1, r0, r1
    PUSHARG r1
    CALL down
    RET r0
bottom:
    RET r0
.function boom(a, b) registers 3
    DIV r2, r0, r1
    RET r2
.function outer(a, b) registers 2
    PUSHARG r0
    PUSHARG r1
    CALL boom
    RET r0
.function objects(n) registers 4
    MOV r3, r0
    LDI r1, 0
    LDI r2, 1
again:
    CMP r1, r3
    JMPEQ out
    CALL create_object
    ADD r1, r1, r2
    JMP again
out:
    RET r1
.function churn(a, b) registers 3
    ADD r2, r0, r1
    CALL create_object
    RET r2
.function reenter(a, b) registers 2
    PUSHARG r0
    PUSHARG r1
    CALL c_reenter
    RET r0
.function r_unit(a) registers 1
    LDI r0, ()
    RET r0
.function r_bool(a) registers 1
    LDI r0, true
    RET r0
.function r_float(a) registers 1
    LDI r0, -2.5
    RET r0
.function r_i32(a) registers 1
    LDI r0, -7i32
    RET r0
.function r_u8(a) registers 1
    LDI r0, 200u8
    RET r0
.function r_u64(a) registers 1
    LDI r0, 123456789u64
    RET r0
.function r_string(a) registers 1
    LDI r0, "text"
    RET r0
.function r_object(a) registers 1
    CALL create_object
    RET r0
.function r_array(a) registers 1
    CALL create_array
    RET r0
.function r_arg(a) registers 1
    RET r0
"#;

fn int(i: i64) -> StoffelValue {
    StoffelValue {
        value_type: StoffelValueType::STOFFEL_VALUE_INT,
        data: StoffelValueData { int_val: i },
    }
}

/// What a call gave C: a value or a code and message.
#[derive(Debug, PartialEq)]
enum Outcome {
    Int(i64),
    Float(u64),
    Bool(bool),
    Unit,
    Text(String),
    /// An OBJECT, ARRAY, FOREIGN or CLOSURE id (the kind only: ids differ between VMs).
    Id(StoffelValueType),
    Failed(c_int, String),
}

/// A VM through the C API, warmed up so its stacks have room for the short path.
struct CVm(VMHandle);

impl CVm {
    fn new() -> CVm {
        let vm = CVm(stoffel_create_vm());
        assert!(!vm.0.is_null());
        let source = CString::new(PROGRAM).unwrap();
        // SAFETY: a live VM and a NUL-terminated source.
        assert_eq!(
            unsafe { stoffel_load_assembly(vm.0, source.as_ptr()) },
            STOFFEL_OK
        );
        assert_eq!(vm.by_name("warm", &[1]), Outcome::Int(1));
        vm
    }

    fn message(&self) -> String {
        let m = stoffel_last_error(self.0);
        assert!(!m.is_null());
        // SAFETY: a NUL-terminated message owned by the VM.
        unsafe { CStr::from_ptr(m) }.to_string_lossy().into_owned()
    }

    fn outcome(&self, rc: c_int, r: &StoffelValue) -> Outcome {
        if rc != STOFFEL_OK {
            return Outcome::Failed(rc, self.message());
        }
        type T = StoffelValueType;
        // SAFETY: the union field the type says was written.
        unsafe {
            match r.value_type {
                T::STOFFEL_VALUE_INT => Outcome::Int(r.data.int_val),
                T::STOFFEL_VALUE_FLOAT => Outcome::Float(r.data.float_val.to_bits()),
                T::STOFFEL_VALUE_BOOL => Outcome::Bool(r.data.bool_val != 0),
                T::STOFFEL_VALUE_UNIT => Outcome::Unit,
                T::STOFFEL_VALUE_STRING => {
                    let text = CStr::from_ptr(r.data.string_val).to_string_lossy().into();
                    stoffel_free_string(r.data.string_val as *mut _);
                    Outcome::Text(text)
                }
                kind => {
                    assert_eq!(stoffel_release_value(self.0, r), STOFFEL_OK);
                    Outcome::Id(kind)
                }
            }
        }
    }

    fn by_name(&self, name: &str, args: &[i64]) -> Outcome {
        let name = CString::new(name).unwrap();
        let args: Vec<StoffelValue> = args.iter().map(|&a| int(a)).collect();
        let mut r = int(0);
        // SAFETY: live VM, NUL-terminated name, `args.len()` values, writable result.
        let rc = unsafe {
            stoffel_execute_with_args(
                self.0,
                name.as_ptr(),
                args.as_ptr(),
                args.len() as c_int,
                &mut r,
            )
        };
        self.outcome(rc, &r)
    }

    fn through_handle(&self, name: &str, args: &[i64]) -> Outcome {
        let cname = CString::new(name).unwrap();
        let mut func = StoffelFunction { vm: 0, slot: 0 };
        // SAFETY: live VM, NUL-terminated name, writable out.
        assert_eq!(
            unsafe { stoffel_lookup_function(self.0, cname.as_ptr(), &mut func) },
            STOFFEL_OK
        );
        let args: Vec<StoffelValue> = args.iter().map(|&a| int(a)).collect();
        let mut r = int(0);
        // SAFETY: as in `by_name`.
        let rc = unsafe {
            stoffel_call_function(self.0, func, args.as_ptr(), args.len() as c_int, &mut r)
        };
        self.outcome(rc, &r)
    }

    /// The call both ways (by name and through a handle), which must agree.
    fn call(&self, name: &str, args: &[i64]) -> Outcome {
        let first = self.by_name(name, args);
        let second = self.through_handle(name, args);
        assert_eq!(first, second, "{name}{args:?}: by name vs through a handle");
        first
    }

    fn stats(&self) -> StoffelGcStats {
        let mut s = StoffelGcStats {
            heap_bytes: 0,
            stack_bytes: 0,
            gc_objects: 0,
            live_handles: 0,
            foreign_objects: 0,
            collections: 0,
        };
        // SAFETY: live VM, writable stats.
        assert_eq!(unsafe { stoffel_gc_stats(self.0, &mut s) }, STOFFEL_OK);
        s
    }
}

impl Drop for CVm {
    fn drop(&mut self) {
        stoffel_destroy_vm(self.0);
    }
}

/// The general path's outcome, as the C API reports it (its code and message rules).
fn general(vm: &mut Vm, name: &str, args: &[i64]) -> Outcome {
    let args: Vec<Val> = args.iter().map(|&a| Val::I64(a)).collect();
    match vm.execute(name, &args) {
        Ok(v) => match v {
            Val::Unit => Outcome::Unit,
            Val::Bool(b) => Outcome::Bool(b),
            Val::Float(x) => Outcome::Float(x.to_bits()),
            Val::String(s) => Outcome::Text(s),
            Val::Object(_) => {
                vm.release(&v).unwrap();
                Outcome::Id(StoffelValueType::STOFFEL_VALUE_OBJECT)
            }
            Val::Array(_) => {
                vm.release(&v).unwrap();
                Outcome::Id(StoffelValueType::STOFFEL_VALUE_ARRAY)
            }
            other => Outcome::Int(match other {
                Val::I64(x) => x,
                Val::I32(x) => x.into(),
                Val::U8(x) => x.into(),
                Val::U64(x) => x as i64,
                v => panic!("unexpected result {v:?}"),
            }),
        },
        Err(e) => Outcome::Failed(c_code(&e), c_message(&e)),
    }
}

fn c_code(e: &VmError) -> c_int {
    match e {
        _ if e.is_limit() => STOFFEL_ERROR_LIMIT,
        VmError::Runtime(r) if r.kind == RuntimeErrorKind::Interrupted => STOFFEL_ERROR_INTERRUPTED,
        _ => STOFFEL_ERROR_EXECUTE_WITH_ARGS,
    }
}

fn c_message(e: &VmError) -> String {
    let mut m = e.to_string();
    if let VmError::Runtime(r) = e
        && r.backtrace.len() > 1
    {
        m.push_str("\nbacktrace (innermost first):\n");
        m.push_str(&r.backtrace_text());
    }
    m
}

fn rust_vm() -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.register_function("c_reenter", |vm, args| Ok(vm.execute("f", args)?));
    vm
}

#[test]
fn instruction_limits_one_to_n_end_the_call_as_the_general_path_does() {
    let c = CVm::new();
    let mut rust = rust_vm();
    let calls: [(&str, &[i64]); 4] = [
        ("f", &[5, 6]),
        ("sum", &[4]),
        ("down", &[5]),
        ("outer", &[1, 0]),
    ];
    for limit in 1..=60u64 {
        assert_eq!(stoffel_set_instruction_limit(c.0, limit), STOFFEL_OK);
        rust.set_instruction_limit(Some(limit));
        for (name, args) in calls {
            let expected = general(&mut rust, name, args);
            assert_eq!(
                c.call(name, args),
                expected,
                "{name}{args:?}, limit {limit}"
            );
        }
    }
    // Both ends were reached: the limit stops the longest call at first, none at the end.
    assert_eq!(stoffel_set_instruction_limit(c.0, 0), STOFFEL_OK);
    assert_eq!(c.call("sum", &[4]), Outcome::Int(12));
}

#[test]
fn depth_limits_end_the_call_as_the_general_path_does() {
    let c = CVm::new();
    let mut rust = rust_vm();
    for depth in 1..=6u32 {
        assert_eq!(stoffel_set_max_call_depth(c.0, depth), STOFFEL_OK);
        rust.set_max_call_depth(depth as usize);
        for n in 0..=6 {
            let expected = general(&mut rust, "down", &[n]);
            let got = c.call("down", &[n]);
            assert_eq!(got, expected, "down({n}) at depth {depth}");
            assert_eq!(matches!(got, Outcome::Int(0)), n < i64::from(depth));
        }
    }
}

#[test]
fn the_memory_limit_ends_the_call_and_the_vm_stays_usable() {
    let c = CVm::new();
    let mut rust = rust_vm();
    assert_eq!(stoffel_set_memory_limit(c.0, 1 << 20), STOFFEL_OK);
    rust.set_memory_limit(Some(1 << 20));
    // Garbage objects are collected as they go; deep recursion's stacks are not.
    assert_eq!(c.call("objects", &[10_000]), Outcome::Int(10_000));
    assert_eq!(stoffel_set_max_call_depth(c.0, 1_000_000), STOFFEL_OK);
    rust.set_max_call_depth(1_000_000);
    let Outcome::Failed(code, message) = c.call("down", &[100_000]) else {
        panic!("100,000 frames in 1 MiB");
    };
    let Outcome::Failed(rust_code, _) = general(&mut rust, "down", &[100_000]) else {
        panic!("100,000 frames in 1 MiB (general path)");
    };
    assert_eq!(code, rust_code);
    assert_eq!(code, STOFFEL_ERROR_LIMIT, "{message}");
    assert!(message.contains("memory"), "{message}");
    assert_eq!(general(&mut rust, "objects", &[10]), Outcome::Int(10));
    assert_eq!(c.call("f", &[1, 2]), Outcome::Int(3));
    assert_eq!(c.call("objects", &[10]), Outcome::Int(10));
}

#[test]
fn an_interrupt_before_the_call_is_ignored_as_by_the_general_path() {
    let c = CVm::new();
    let mut rust = rust_vm();
    for _ in 0..3 {
        assert_eq!(stoffel_interrupt(c.0), STOFFEL_OK);
        rust.interrupt_handle().interrupt();
        let expected = general(&mut rust, "f", &[40, 2]);
        assert_eq!(expected, Outcome::Int(42));
        assert_eq!(c.by_name("f", &[40, 2]), expected);
        assert_eq!(stoffel_interrupt(c.0), STOFFEL_OK);
        assert_eq!(c.through_handle("sum", &[3]), Outcome::Int(6));
    }
}

static REENTER_VM: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Calls `f` on the VM that called it, with its own arguments (a re-entry).
unsafe extern "C" fn c_reenter(
    args: *const StoffelValue,
    count: c_int,
    result: *mut StoffelValue,
) -> c_int {
    let vm = REENTER_VM.load(Ordering::Relaxed);
    let name = c"f";
    // SAFETY: the VM lent to this callback, the VM's own arguments, its result slot.
    let rc = unsafe { stoffel_execute_with_args(vm, name.as_ptr(), args, count, result) };
    if rc == STOFFEL_OK { 0 } else { 1 }
}

#[test]
fn a_callee_that_calls_a_c_function_which_re_enters() {
    let c = CVm::new();
    REENTER_VM.store(c.0, Ordering::Relaxed);
    let name = c"c_reenter";
    // SAFETY: live VM, NUL-terminated name, a function of the right signature.
    let rc = unsafe { stoffel_register_foreign_function(c.0, name.as_ptr(), Some(c_reenter)) };
    assert_eq!(rc, STOFFEL_OK);
    let mut rust = rust_vm();
    for (a, b) in [(1, 2), (1_000_000, 10), (-4, 4)] {
        let expected = general(&mut rust, "reenter", &[a, b]);
        assert_eq!(c.call("reenter", &[a, b]), expected);
        // The VM is not left inside a call: a plain call follows.
        assert_eq!(c.call("f", &[a, b]), general(&mut rust, "f", &[a, b]));
    }
    // With an instruction limit the re-entry shares the budget; the outcome still agrees.
    for limit in 1..=12u64 {
        assert_eq!(stoffel_set_instruction_limit(c.0, limit), STOFFEL_OK);
        rust.set_instruction_limit(Some(limit));
        let expected = general(&mut rust, "reenter", &[3, 4]);
        let got = c.call("reenter", &[3, 4]);
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&expected),
            "limit {limit}: {got:?} vs {expected:?}"
        );
    }
}

#[test]
fn a_failing_callee_gives_the_general_paths_code_and_message() {
    let c = CVm::new();
    let mut rust = rust_vm();
    for (name, args) in [("boom", &[1i64, 0][..]), ("outer", &[7, 0]), ("f", &[1])] {
        let expected = general(&mut rust, name, args);
        let got = c.call(name, args);
        assert_eq!(got, expected, "{name}{args:?}");
        let Outcome::Failed(code, message) = got else {
            panic!("{name}{args:?} succeeded");
        };
        assert_eq!(code, STOFFEL_ERROR_EXECUTE_WITH_ARGS, "{message}");
    }
    // After the failures the short path runs again.
    assert_eq!(c.call("outer", &[7, 2]), Outcome::Int(3));
}

#[test]
fn results_of_every_kind_arrive_as_through_the_general_path() {
    let c = CVm::new();
    let mut rust = rust_vm();
    let names = [
        "r_unit", "r_bool", "r_float", "r_i32", "r_u8", "r_u64", "r_string", "r_object", "r_array",
        "r_arg",
    ];
    for round in 0..3 {
        for name in names {
            let expected = general(&mut rust, name, &[round]);
            assert_eq!(c.call(name, &[round]), expected, "{name}");
        }
    }
    assert_eq!(c.stats().live_handles, 0, "every id was released");
    assert_eq!(c.call("r_float", &[0]), Outcome::Float((-2.5f64).to_bits()));
    assert_eq!(c.call("r_u8", &[0]), Outcome::Int(200));
}

#[test]
fn a_million_short_calls_that_allocate_keep_collecting() {
    let c = CVm::new();
    let (warmup, calls) = (10_000u64, 1_000_000u64);
    let (mut warm_peak, mut rest_peak, mut warm_collections) = (0, 0, 0);
    for i in 1..=calls {
        let rc_ok = if i % 2 == 0 {
            c.by_name("churn", &[i as i64, 1])
        } else {
            c.through_handle("churn", &[i as i64, 1])
        };
        assert_eq!(rc_ok, Outcome::Int(i as i64 + 1));
        if i % 1000 == 0 || i <= warmup {
            let s = c.stats();
            if i <= warmup {
                warm_peak = warm_peak.max(s.heap_bytes);
                warm_collections = s.collections;
            } else {
                rest_peak = rest_peak.max(s.heap_bytes);
            }
        }
    }
    let end = c.stats();
    assert!(warm_collections > 0, "no collection in {warmup} calls");
    assert!(end.collections > warm_collections, "collections stopped");
    assert!(
        rest_peak <= 2 * warm_peak,
        "heap grew: peak {warm_peak} in the first {warmup} calls, {rest_peak} after"
    );
    assert_eq!(end.live_handles, 0);
}

/// Calls `f` at ever deeper native stack positions on a thread with a small stack: with
/// plenty left the call succeeds (the C gate vouches for the stack and the VM skips its own
/// measurement), near the end it is refused with a limit error, never a crash.
#[test]
fn calls_with_little_native_stack_left_are_refused_not_crashed() {
    fn descend(c: &CVm, out: &mut Vec<(usize, Outcome)>) {
        let pad = std::hint::black_box([0u8; 1024]);
        let left = stacker::remaining_stack().expect("stack bounds");
        out.push((left, c.through_handle("f", &[1, 2])));
        out.push((left, c.by_name("f", &[1, 2])));
        if left > 12 << 10 {
            descend(c, out);
        }
        std::hint::black_box(pad);
    }
    let samples = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let c = CVm::new();
            let mut out = Vec::new();
            descend(&c, &mut out);
            // Back at the top, calls succeed again.
            assert_eq!(c.call("f", &[1, 2]), Outcome::Int(3));
            out
        })
        .unwrap()
        .join()
        .unwrap();
    let reserve = stoffel_vm::STACK_RESERVE;
    let (mut ok, mut refused) = (0, 0);
    for (left, outcome) in samples {
        if left >= reserve + (8 << 10) {
            assert_eq!(outcome, Outcome::Int(3), "{left} bytes of stack left");
            ok += 1;
        } else if left + (8 << 10) <= reserve {
            let Outcome::Failed(code, message) = outcome else {
                panic!("{left} bytes of stack left: {outcome:?}");
            };
            assert_eq!(code, STOFFEL_ERROR_LIMIT, "{message}");
            assert!(message.contains("stack"), "{message}");
            refused += 1;
        }
    }
    assert!(
        ok > 0 && refused > 0,
        "{ok} calls succeeded, {refused} refused"
    );
}
