//! Re-entry against the native stack, and the messages of failures through nested executions
//! (issue 12, must-haves 5 and 7).
//!
//! Host functions that execute code on the VM that called them nest: each level costs
//! native stack. A nested execution is refused with a limit error (`ApiError::StackExhausted`,
//! or `ApiError::TooDeeplyNested` at `MAX_REENTRY` levels) while `STACK_RESERVE` bytes are
//! still left, judged from the thread's real stack; these tests re-enter until refused on
//! threads with 128, 256 and 512 KiB stacks (and a tiny one), and check that no level
//! crashes, the refusal is a limit, and the VM works afterwards. A failure that passes
//! through many levels is reported with the innermost error and the number of levels, in
//! under 1 KiB.

mod common;

use common::SyncCell;
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::{
    ApiError, HostError, MAX_REENTRY, RuntimeErrorKind, STACK_RESERVE, Val, Vm, VmError,
};

/// `main(n)` calls host function `down` with `n`; `leaf` divides by zero.
const PROGRAM: &str = "
.function main(n)
    PUSHARG r0
    CALL down
    RET r0
.function leaf
    LDI r0, 1
    LDI r1, 0
    DIV r2, r0, r1
    RET r2
.function ok
    LDI r0, 7
    RET r0
";

/// What one run of nested re-entry saw.
#[derive(Debug, Default)]
struct Descent {
    /// Deepest level a host function reached (1: called from the top-level execution).
    levels: u32,
    /// The error that refused the next level.
    refusal: Option<VmError>,
    /// Native stack left at each level (from the host function).
    remaining: Vec<usize>,
}

/// A VM whose host function `down` re-enters `main` until that is refused, then returns
/// normally (the refusal is recorded, not passed on).
fn descending_vm(seen: Arc<Mutex<Descent>>) -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    let depth = Arc::new(SyncCell::new(0u32));
    vm.register_function("down", move |vm, args| {
        depth.set(depth.get() + 1);
        {
            let mut s = seen.lock().unwrap();
            s.levels = s.levels.max(depth.get());
            s.remaining.push(stacker::remaining_stack().unwrap_or(0));
        }
        let result = vm.execute("main", args);
        depth.set(depth.get() - 1);
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                let mut s = seen.lock().unwrap();
                if s.refusal.is_none() {
                    s.refusal = Some(e);
                }
                Ok(Val::I64(i64::from(depth.get())))
            }
        }
    });
    vm
}

/// Recurses (1 KiB per level) until less than `left` bytes of stack remain, then runs `f`.
#[inline(never)]
fn with_stack_below<T>(left: usize, f: impl FnOnce() -> T) -> T {
    let pad = std::hint::black_box([0u8; 1024]);
    if stacker::remaining_stack().unwrap() < left {
        return f();
    }
    let result = with_stack_below(left, f);
    std::hint::black_box(&pad);
    result
}

/// Runs `f` on a new thread with a `kib` KiB stack and returns its result (a panic or a
/// stack overflow there fails the test: the latter kills the process).
fn on_thread<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        // glibc may reuse a cached stack up to 4x the size asked for: use no more than asked.
        .spawn(move || with_stack_below(kib * 1024 - 4096, f))
        .expect("spawn")
        .join()
        .expect("the thread panicked")
}

/// Re-enters until refused on a `kib` KiB thread; returns (levels, refusal, per-level cost),
/// and checks that the VM is usable afterwards, on the same thread.
fn descend(kib: usize) -> (u32, VmError, usize) {
    on_thread(kib, move || {
        let seen = Arc::new(Mutex::new(Descent::default()));
        let mut vm = descending_vm(seen.clone());
        let top = vm.execute("main", &[Val::I64(0)]);
        assert!(top.is_ok(), "{kib} KiB: {top:?}");
        // Usable afterwards, and again as deep.
        assert_eq!(vm.execute("ok", &[]), Ok(Val::I64(7)));
        let first = std::mem::take(&mut *seen.lock().unwrap());
        assert!(vm.execute("main", &[Val::I64(0)]).is_ok());
        assert_eq!(
            seen.lock().unwrap().levels,
            first.levels,
            "{kib} KiB: not as deep again"
        );
        assert_eq!(vm.gc_stats().live_handles, 0);
        let r = &first.remaining;
        let per_level = if r.len() > 2 {
            (r[1] - r[r.len() - 1]) / (r.len() - 2)
        } else {
            0
        };
        (first.levels, first.refusal.expect("a refusal"), per_level)
    })
}

#[test]
fn reentry_on_small_stacks_is_refused_before_the_stack_runs_out() {
    for kib in [128, 256, 512] {
        let (levels, refusal, per_level) = descend(kib);
        println!("{kib} KiB stack: {levels} levels, {per_level} bytes per level, then: {refusal}");
        assert!(refusal.is_limit(), "{kib} KiB: {refusal:?}");
        match &refusal {
            VmError::Api(ApiError::StackExhausted { depth, remaining }) => {
                assert!(*remaining < STACK_RESERVE);
                assert_eq!(*depth, levels, "{kib} KiB: depth in the refusal");
            }
            VmError::Api(ApiError::TooDeeplyNested) => assert_eq!(levels, MAX_REENTRY),
            other => panic!("{kib} KiB: unexpected refusal {other:?}"),
        }
        // A Rust host function that re-enters costs well under 4 KiB of stack per level,
        // even unoptimised (measured: about 0.9 KiB in release builds, 1.2 KiB in tests).
        assert!(per_level > 0 && per_level < 4096, "{kib} KiB: {per_level}");
        // On a 128 KiB thread the stack, not the count, stops re-entry, and it lets a
        // useful depth through.
        if kib == 128 {
            assert!(
                matches!(refusal, VmError::Api(ApiError::StackExhausted { .. })),
                "{kib} KiB: {refusal:?}"
            );
            assert!(levels >= 20, "{kib} KiB: only {levels} levels");
        }
    }
}

#[test]
fn a_top_level_execution_on_a_tiny_stack_is_refused_not_overflowed() {
    // The VM is made, then the thread's stack is used up to less than STACK_RESERVE (glibc
    // may hand a small-stack thread a bigger cached stack, so the test eats what is there).
    let (result, heap, after) = on_thread(128, || {
        let mut vm = Vm::new();
        vm.load_assembly(PROGRAM).unwrap();
        with_stack_below(STACK_RESERVE - 4096, move || {
            let left = stacker::remaining_stack().unwrap();
            assert!(left < STACK_RESERVE, "{left} bytes left");
            (
                vm.execute("ok", &[]),
                vm.create_object().map(|_| ()),
                vm.gc_stats().live_handles,
            )
        })
    });
    let e = result.unwrap_err();
    assert!(e.is_limit(), "{e:?}");
    assert!(
        matches!(e, VmError::Api(ApiError::StackExhausted { depth: 0, .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("not enough native stack"), "{e}");
    assert!(heap.unwrap_err().is_limit());
    assert_eq!(after, 0);
}

#[test]
fn the_count_bound_still_holds_on_a_big_stack() {
    let (levels, refusal, _) = descend(16 * 1024);
    assert_eq!(levels, MAX_REENTRY);
    assert_eq!(refusal, VmError::Api(ApiError::TooDeeplyNested));
    assert!(refusal.is_limit());
}

/// A VM whose `down(n)` executes `main(n - 1)` (or `leaf` at 0) and passes any failure on
/// with `?`.
fn propagating_vm() -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.register_function("down", |vm, args| match args {
        [Val::I64(0)] => Ok(vm.execute("leaf", &[])?),
        [Val::I64(n)] => Ok(vm.execute("main", &[Val::I64(n - 1)])?),
        other => Err(HostError::new(format!("down: bad arguments {other:?}"))),
    });
    vm
}

fn host_failure(e: &VmError) -> (&str, &str) {
    match e {
        VmError::Runtime(r) => match &r.kind {
            RuntimeErrorKind::Host {
                function, message, ..
            } => (function, message),
            other => panic!("not a host failure: {other:?}"),
        },
        other => panic!("not a runtime error: {other:?}"),
    }
}

#[test]
fn a_failure_under_many_levels_names_the_innermost_error_and_the_depth() {
    on_thread(16 * 1024, || {
        let mut vm = propagating_vm();
        // One level: the nested error, as it is.
        let e = vm.execute("main", &[Val::I64(0)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "runtime error in function 'main' at instruction 1: host function 'down' failed: \
             runtime error in function 'leaf' at instruction 2: Division by zero"
        );
        // main(n) at the top runs n + 1 host calls deep; `leaf` fails in the deepest one.
        for n in [1, 2, 10, 198] {
            let e = vm.execute("main", &[Val::I64(n)]).unwrap_err();
            let text = e.to_string();
            assert_eq!(
                text,
                format!(
                    "runtime error in function 'main' at instruction 1: host function 'down' \
                     failed: runtime error in function 'leaf' at instruction 2: Division by \
                     zero (innermost error of {} nested executions)",
                    n + 1
                )
            );
            assert!(text.len() < 1024, "{} bytes", text.len());
            assert_eq!(host_failure(&e).0, "down");
        }
        // Deeper than allowed: the refusal is the innermost error, 200 levels down.
        let e = vm.execute("main", &[Val::I64(1000)]).unwrap_err();
        let text = e.to_string();
        assert!(text.len() < 1024, "{} bytes: {text}", text.len());
        assert!(
            text.ends_with(&format!(
                "host function 'down' failed: host functions re-entered the VM more than \
                 {MAX_REENTRY} levels deep (innermost error of {MAX_REENTRY} nested executions)"
            )),
            "{text}"
        );
        // And the VM is fine.
        assert_eq!(vm.execute("ok", &[]), Ok(Val::I64(7)));
        assert_eq!(vm.gc_stats().live_handles, 0);
    });
}

#[test]
fn a_host_message_of_its_own_is_kept_at_the_outermost_level() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.register_function("down", |vm, args| match args {
        [Val::I64(0)] => Ok(vm.execute("leaf", &[])?),
        [Val::I64(n)] => vm
            .execute("main", &[Val::I64(n - 1)])
            .map_err(|e| HostError::caused_by(format!("level {n}"), e)),
        _ => Err("bad".into()),
    });
    let e = vm.execute("main", &[Val::I64(3)]).unwrap_err();
    assert_eq!(
        host_failure(&e).1,
        "level 3: runtime error in function 'leaf' at instruction 2: Division by zero \
         (innermost error of 4 nested executions)"
    );
    // A message of its own and no cause: the message, as it is.
    vm.register_function("down", |_, _| Err(HostError::new("disk on fire")));
    let e = vm.execute("main", &[Val::I64(3)]).unwrap_err();
    assert_eq!(host_failure(&e).1, "disk on fire");
}

#[test]
fn a_host_error_that_does_not_pass_on_the_cause_is_not_counted_as_nested() {
    // The message of a nested error formatted into the host's own words is kept whole (the
    // VM cannot tell it is nested): only a cause is flattened.
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.register_function("down", |vm, args| match args {
        [Val::I64(0)] => Ok(vm.execute("leaf", &[])?),
        [Val::I64(n)] => vm
            .execute("main", &[Val::I64(n - 1)])
            .map_err(|e| HostError::new(format!("wrapped: {e}"))),
        _ => Err("bad".into()),
    });
    let e = vm.execute("main", &[Val::I64(2)]).unwrap_err();
    let message = host_failure(&e).1;
    assert_eq!(message.matches("wrapped: ").count(), 2, "{message}");
    assert!(!message.contains("innermost"), "{message}");
}

#[test]
fn nested_error_is_the_last_failed_execution_of_the_running_host_call() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    vm.register_function("down", move |vm, args| {
        log.lock()
            .unwrap()
            .push(vm.nested_error().map(|e| e.to_string()));
        let failed = vm.execute("leaf", &[]).unwrap_err();
        assert_eq!(vm.nested_error(), Some(&failed));
        // A successful execution (with its own host calls) does not clear it.
        if args == [Val::I64(1)] {
            assert_eq!(vm.execute("main", &[Val::I64(0)]), Ok(Val::I64(0)));
        }
        assert_eq!(vm.nested_error(), Some(&failed));
        Ok(Val::I64(0))
    });
    assert_eq!(vm.execute("main", &[Val::I64(1)]), Ok(Val::I64(0)));
    // Each host call starts with none; none outside host functions.
    assert_eq!(*seen.lock().unwrap(), vec![None, None]);
    assert_eq!(vm.nested_error(), None);
}

#[test]
fn host_error_keeps_its_cause() {
    let mut vm = Vm::new();
    let missing = vm.execute("missing", &[]).unwrap_err();
    let e = HostError::from(missing.clone());
    assert_eq!(e.cause(), Some(&missing));
    assert_eq!(e.context(), "");
    assert_eq!(e.to_string(), "function 'missing' not found");
    let source = std::error::Error::source(&e).expect("a source");
    assert_eq!(source.downcast_ref::<VmError>(), Some(&missing));
    let e = HostError::caused_by("looking it up", missing.clone());
    assert_eq!(e.message(), "looking it up: function 'missing' not found");
    let e = HostError::from("plain");
    assert_eq!((e.message(), e.cause()), ("plain".into(), None));
    assert!(std::error::Error::source(&e).is_none());
}
