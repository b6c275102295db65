//! The Rust embedding API: handles, host functions (with state and re-entry), foreign
//! objects and finalizers, limits, output redirection, and reuse after errors.

mod common;

use common::SyncCell;
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::ApiError;
use stoffel_vm::HandleError;
use stoffel_vm::{Handle, HostError, Output, RuntimeErrorKind, Val, Vm, VmError};

fn vm_with(src: &str) -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(src).unwrap();
    vm
}

fn runtime_kind(e: VmError) -> RuntimeErrorKind {
    match e {
        VmError::Runtime(r) => r.kind,
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

const MAKE_OBJECT: &str = r#"
.function make(v)
    MOV r5, r0
    CALL create_object
    MOV r1, r0
    LDI r2, "v"
    PUSHARG r1
    PUSHARG r2
    PUSHARG r5
    CALL set_field
    RET r1
"#;

#[test]
fn a_result_handle_names_the_object_until_released() {
    let mut vm = vm_with(MAKE_OBJECT);
    let obj = vm.execute("make", &[Val::I64(7)]).unwrap();
    assert!(matches!(obj, Val::Object(_)));
    assert_eq!(vm.get_field(&obj, &Val::from("v")).unwrap(), Val::I64(7));
    assert_eq!(vm.gc_stats().live_handles, 1);
    vm.release(&obj).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
    let stale = vm.get_field(&obj, &Val::from("v")).unwrap_err();
    assert!(
        matches!(
            stale,
            VmError::Api(ApiError::Handle(HandleError::NotLive(_)))
        ),
        "{stale:?}"
    );
    // Releasing twice is an error, not a crash.
    assert!(vm.release(&obj).is_err());
}

#[test]
fn ids_are_never_zero_and_never_reused() {
    let mut vm = vm_with(MAKE_OBJECT);
    let mut seen = std::collections::HashSet::new();
    for i in 0..5000 {
        let obj = vm.execute("make", &[Val::I64(i)]).unwrap();
        let id = obj.handle().unwrap().id();
        assert_ne!(id, 0);
        assert!(seen.insert(id), "id {id:#x} issued twice");
        vm.release(&obj).unwrap();
    }
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn handles_from_another_vm_or_forged_are_rejected() {
    let mut a = vm_with(MAKE_OBJECT);
    let mut b = vm_with(MAKE_OBJECT);
    let from_a = a.execute("make", &[Val::I64(1)]).unwrap();
    let err = b.get_field(&from_a, &Val::from("v")).unwrap_err();
    assert!(
        matches!(err, VmError::Api(ApiError::Handle(HandleError::NotLive(_)))),
        "{err:?}"
    );
    let forged = Val::Object(Handle::from_id(from_a.handle().unwrap().id() + 1).unwrap());
    assert!(a.get_field(&forged, &Val::from("v")).is_err());
    // An object id passed as an array is refused by kind.
    let as_array = Val::Array(from_a.handle().unwrap());
    let err = a.array_length(&as_array).unwrap_err();
    assert!(
        matches!(err, VmError::Api(ApiError::WrongKind { .. })),
        "{err:?}"
    );
}

#[test]
fn retain_adds_a_reference() {
    let mut vm = vm_with(MAKE_OBJECT);
    let obj = vm.execute("make", &[Val::I64(3)]).unwrap();
    vm.retain(&obj).unwrap();
    vm.release(&obj).unwrap();
    assert_eq!(vm.get_field(&obj, &Val::from("v")).unwrap(), Val::I64(3));
    vm.release(&obj).unwrap();
    assert!(vm.get_field(&obj, &Val::from("v")).is_err());
}

#[test]
fn released_values_are_collected() {
    let mut vm = vm_with(MAKE_OBJECT);
    let baseline = {
        vm.collect_all();
        vm.gc_stats().heap_bytes
    };
    let objs: Vec<Val> = (0..1000)
        .map(|i| vm.execute("make", &[Val::I64(i)]).unwrap())
        .collect();
    vm.collect_all();
    let held = vm.gc_stats().heap_bytes;
    assert!(
        held > baseline + 1000 * 64,
        "held {held}, baseline {baseline}"
    );
    for o in &objs {
        vm.release(o).unwrap();
    }
    vm.collect_all();
    let after = vm.gc_stats().heap_bytes;
    assert!(
        after < baseline + 4096,
        "after release {after}, baseline {baseline}"
    );
}

#[test]
fn host_functions_keep_state_and_get_converted_arguments() {
    let mut vm = vm_with(
        r#"
.function main
    LDI r1, 5
    LDI r2, "five"
    PUSHARG r1
    PUSHARG r2
    CALL tally
    PUSHARG r1
    PUSHARG r2
    CALL tally
    RET r0
"#,
    );
    let calls = Arc::new(SyncCell::new(0));
    let seen = calls.clone();
    vm.register_function("tally", move |_vm, args| {
        assert_eq!(args, &[Val::I64(5), Val::from("five")]);
        seen.set(seen.get() + 1);
        Ok(Val::I64(seen.get() * 100))
    });
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(200));
    assert_eq!(calls.get(), 2);
    // A host function can be executed by name, like the seed's C example does.
    assert_eq!(
        vm.execute("tally", &[Val::I64(5), Val::from("five")])
            .unwrap(),
        Val::I64(300)
    );
}

#[test]
fn host_argument_handles_live_for_the_call_unless_retained() {
    let mut vm = vm_with(
        r#"
.function main
    CALL create_object
    PUSHARG r0
    CALL keep
    RET r0
"#,
    );
    let kept: Arc<Mutex<Option<Val>>> = Arc::default();
    let slot = kept.clone();
    vm.register_function("keep", move |vm, args| {
        vm.retain(&args[0]).map_err(HostError::from)?;
        *slot.lock().unwrap() = Some(args[0].clone());
        Ok(Val::Unit)
    });
    vm.execute("main", &[]).unwrap();
    let obj = kept.lock().unwrap().clone().unwrap();
    assert_eq!(
        vm.gc_stats().live_handles,
        1,
        "only the retained handle stays"
    );
    vm.set_field(&obj, &Val::I64(0), &Val::Bool(true)).unwrap();
    vm.release(&obj).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn host_functions_may_reenter_the_vm() {
    let mut vm = vm_with(
        r#"
.function square(x)
    MUL r1, r0, r0
    RET r1
.function main
    LDI r1, 4
    PUSHARG r1
    CALL via_host
    LDI r2, 1
    ADD r0, r0, r2
    RET r0
"#,
    );
    vm.register_function("via_host", |vm, args| {
        let v = vm.execute("square", args)?;
        let obj = vm.create_object()?;
        vm.set_field(&obj, &Val::from("k"), &v)?;
        let back = vm.get_field(&obj, &Val::from("k"))?;
        vm.release(&obj)?;
        Ok(back)
    });
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(17));
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn runaway_reentry_is_a_clean_error() {
    let mut vm = vm_with(
        r#"
.function main
    CALL again
    RET r0
"#,
    );
    vm.register_function("again", |vm, _| Ok(vm.execute("main", &[])?));
    let err = vm.execute("main", &[]).unwrap_err();
    assert!(err.to_string().contains("re-entered"), "{err}");
    // And the VM is fine afterwards.
    vm.register_function("again", |_, _| Ok(Val::I64(1)));
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(1));
}

#[test]
fn a_failing_host_function_fails_the_execution_with_its_message() {
    let mut vm = vm_with(
        r#"
.function main
    LDI r1, 1
    CALL broken
    RET r1
"#,
    );
    vm.register_function("broken", |_, _| Err(HostError::from("disk on fire")));
    let err = vm.execute("main", &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("broken") && text.contains("disk on fire"),
        "{text}"
    );
    assert!(
        text.contains("'main'") && text.contains("instruction 1"),
        "{text}"
    );
}

struct Tracked(Arc<SyncCell<u32>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn foreign_finalizers_run_once_when_collected() {
    let mut vm = Vm::new();
    let drops = Arc::new(SyncCell::new(0));
    let f = vm.create_foreign(Box::new(Tracked(drops.clone()))).unwrap();
    assert!(vm.foreign_data(&f).unwrap().is::<Tracked>());
    vm.collect_all();
    assert_eq!(drops.get(), 0, "still rooted by its handle");
    vm.release(&f).unwrap();
    vm.collect_all();
    assert_eq!(drops.get(), 1);
    vm.collect_all();
    assert_eq!(drops.get(), 1, "exactly once");
    assert_eq!(vm.gc_stats().foreign_objects, 0);
}

#[test]
fn foreign_finalizers_run_when_the_vm_drops() {
    let drops = Arc::new(SyncCell::new(0));
    {
        let mut vm = Vm::new();
        let _kept = vm.create_foreign(Box::new(Tracked(drops.clone()))).unwrap();
        let gone = vm.create_foreign(Box::new(Tracked(drops.clone()))).unwrap();
        vm.release(&gone).unwrap();
        vm.collect_all();
        assert_eq!(drops.get(), 1);
    }
    assert_eq!(drops.get(), 2);
}

#[test]
fn foreign_objects_stored_in_the_heap_stay_alive() {
    let mut vm = Vm::new();
    let drops = Arc::new(SyncCell::new(0));
    let f = vm.create_foreign(Box::new(Tracked(drops.clone()))).unwrap();
    let obj = vm.create_object().unwrap();
    vm.set_field(&obj, &Val::from("f"), &f).unwrap();
    vm.release(&f).unwrap();
    vm.collect_all();
    assert_eq!(drops.get(), 0, "reachable through the object");
    let again = vm.get_field(&obj, &Val::from("f")).unwrap();
    assert!(vm.foreign_data(&again).unwrap().is::<Tracked>());
    vm.release(&again).unwrap();
    vm.release(&obj).unwrap();
    vm.collect_all();
    assert_eq!(drops.get(), 1);
}

#[test]
fn fuel_stops_an_infinite_loop_and_the_vm_stays_usable() {
    let mut vm = vm_with(
        r#"
.function spin
top:
    JMP top
.function answer
    LDI r1, 42
    RET r1
"#,
    );
    vm.set_instruction_limit(Some(100_000));
    let kind = runtime_kind(vm.execute("spin", &[]).unwrap_err());
    assert_eq!(kind, RuntimeErrorKind::FuelExhausted(100_000));
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
    // The budget is per top-level execution.
    assert!(vm.execute("spin", &[]).is_err());
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
}

#[test]
fn deep_recursion_hits_the_depth_limit_not_the_rust_stack() {
    let mut vm = vm_with(
        r#"
.function down(n)
    MOV r1, r0
    LDI r2, 1
    ADD r1, r1, r2
    PUSHARG r1
    CALL down
    RET r0
"#,
    );
    vm.set_max_call_depth(50_000);
    let kind = runtime_kind(vm.execute("down", &[Val::I64(0)]).unwrap_err());
    assert_eq!(kind, RuntimeErrorKind::DepthExceeded(50_000));
    // The failed execution left no frames behind: the next one starts from depth 0 again.
    vm.set_max_call_depth(10);
    let kind = runtime_kind(vm.execute("down", &[Val::I64(0)]).unwrap_err());
    assert_eq!(kind, RuntimeErrorKind::DepthExceeded(10));
}

#[test]
fn the_memory_limit_stops_a_growing_program_cleanly() {
    let mut vm = vm_with(
        r#"
.function grow
    CALL create_array
    MOV r1, r0
    LDI r2, "0123456789abcdef0123456789abcdef"
loop:
    ADD r2, r2, r2
    PUSHARG r1
    PUSHARG r2
    CALL array_push
    JMP loop
.function answer
    LDI r1, 42
    RET r1
"#,
    );
    vm.set_memory_limit(Some(8 << 20));
    let kind = runtime_kind(vm.execute("grow", &[]).unwrap_err());
    assert_eq!(kind, RuntimeErrorKind::MemoryLimit(8 << 20));
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
    vm.collect_all();
    assert!(vm.gc_stats().heap_bytes < 1 << 20, "{:?}", vm.gc_stats());
}

#[test]
fn print_goes_to_the_output_sink() {
    let mut vm = vm_with(
        r#"
.function main
    LDI r1, "hi"
    LDI r2, 3u8
    PUSHARG r1
    PUSHARG r2
    CALL print
"#,
    );
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    vm.set_output(Output::Callback(Box::new(move |s| {
        sink.lock().unwrap().push_str(s)
    })));
    vm.execute("main", &[]).unwrap();
    assert_eq!(&*text.lock().unwrap(), "hi 3u8\n");
}

#[test]
fn trace_reports_every_instruction() {
    let mut vm = vm_with(
        r#"
.function main
    LDI r1, 2
    LDI r2, 3
    ADD r3, r1, r2
    RET r3
"#,
    );
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    vm.set_trace(Some(Box::new(move |l| {
        sink.lock().unwrap().push(l.to_owned())
    })));
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(5));
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[2], "main[2]: ADD r3, r1, r2");
    assert_eq!(lines[3], "main[3]: RET r3");
}

#[test]
fn unknown_entry_and_bad_arity_are_errors() {
    let mut vm = vm_with(".function two(a, b)\n RET r0\n");
    assert!(matches!(
        vm.execute("nope", &[]),
        Err(VmError::Api(ApiError::FunctionNotFound(_)))
    ));
    let kind = runtime_kind(vm.execute("two", &[Val::I64(1)]).unwrap_err());
    assert!(
        matches!(
            kind,
            RuntimeErrorKind::Arity {
                expected: 2,
                got: 1,
                ..
            }
        ),
        "{kind:?}"
    );
    // No arguments at all: parameters start as Unit (StoffelVM's execute).
    assert_eq!(vm.execute("two", &[]).unwrap(), Val::Unit);
    // `call` (what stoffel_execute_with_args uses) is strict, as StoffelVM's execute_with_args.
    let kind = runtime_kind(vm.call::<Val>("two", &[]).unwrap_err());
    assert!(
        matches!(
            kind,
            RuntimeErrorKind::Arity {
                expected: 2,
                got: 0,
                ..
            }
        ),
        "{kind:?}"
    );
    assert_eq!(
        vm.call::<Val>("two", &[Val::I64(5), Val::I64(6)]).unwrap(),
        Val::I64(5)
    );
}

#[test]
fn host_functions_hand_returned_handles_over_to_the_vm() {
    let mut vm = vm_with(
        r#"
.function main
    LDI r1, 0
    LDI r2, 1000
    LDI r3, 1
loop:
    CMP r1, r2
    JMPEQ done
    PUSHARG r1
    CALL fresh
    ADD r1, r1, r3
    JMP loop
done:
    PUSHARG r1
    CALL fresh
    RET r0
"#,
    );
    // A host returning a fresh object (never released by the host) leaks nothing.
    vm.register_function("fresh", |vm, args| {
        let obj = vm.create_object()?;
        vm.set_field(&obj, &Val::from("n"), &args[0])?;
        Ok(obj)
    });
    let last = vm.execute("main", &[]).unwrap();
    assert_eq!(
        vm.get_field(&last, &Val::from("n")).unwrap(),
        Val::I64(1000)
    );
    assert_eq!(
        vm.gc_stats().live_handles,
        1,
        "only the caller's result is live"
    );
    vm.release(&last).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);

    // Executed by name, a host function returning its own argument hands the caller a new id.
    vm.register_function("echo", |_, args| Ok(args[0].clone()));
    let obj = vm.create_object().unwrap();
    let back = vm.execute("echo", std::slice::from_ref(&obj)).unwrap();
    assert_ne!(back.handle(), obj.handle());
    vm.release(&obj).unwrap();
    vm.set_field(&back, &Val::I64(0), &Val::Bool(true)).unwrap();
    vm.release(&back).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn user_data_is_one_value_per_type_and_foreign_data_changes_in_place() {
    // issue 17 item 4: a typed per-VM user-data slot and foreign_data_mut.
    let mut vm = Vm::new();
    assert!(vm.user_data::<u32>().is_none());
    assert_eq!(vm.set_user_data(5u32), None);
    assert_eq!(vm.set_user_data(String::from("config")), None);
    assert_eq!(vm.set_user_data(6u32), Some(5));
    *vm.user_data_mut::<u32>().unwrap() += 1;
    assert_eq!(vm.user_data::<u32>(), Some(&7));
    assert_eq!(vm.user_data::<String>().map(String::as_str), Some("config"));
    assert_eq!(vm.take_user_data::<String>(), Some("config".to_owned()));
    assert!(vm.user_data::<String>().is_none());

    let list = vm.create_foreign(Box::new(vec![1, 2])).unwrap();
    vm.foreign_data_mut(&list)
        .unwrap()
        .downcast_mut::<Vec<i32>>()
        .unwrap()
        .push(3);
    assert_eq!(
        vm.foreign_data(&list).unwrap().downcast_ref::<Vec<i32>>(),
        Some(&vec![1, 2, 3])
    );
    let not_foreign = vm.create_object().unwrap();
    assert!(vm.foreign_data_mut(&not_foreign).is_err());
    vm.release(&list).unwrap();
    assert!(
        vm.foreign_data_mut(&list).is_err(),
        "a released id is refused"
    );
}
