//! A panic in a Rust host function or print callback unwinds its own activation, as an error
//! does, and releases the handles it was given; a caught panic never resumes later, and an
//! outer execution never continues the abandoned inner one (issue 18, item 4).

mod common;

use common::SyncCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::{HostError, Output, Val, Vm};

const PROGRAM: &str = r#"
.function inner
    CALL boom
    LDI r1, 99
    RET r1
.function outer
    CALL catcher
    LDI r1, 1000
    ADD r1, r1, r0
    RET r1
.function with_object
    CALL create_object
    MOV r1, r0
    PUSHARG r1
    CALL boom
    RET r1
.function printer
    LDI r1, "hello"
    PUSHARG r1
    CALL print
    LDI r2, 7
    RET r2
"#;

fn quiet_panics() {
    // The panics below are expected; keep the test output readable.
    std::panic::set_hook(Box::new(|_| {}));
}

/// `catcher` executes `inner` (whose host function panics), catches the panic and returns 1:
/// the outer execution must then finish its own code (1000 + 1), not the inner one's (99).
#[test]
fn a_caught_panic_in_a_nested_execution_does_not_resume_it() {
    quiet_panics();
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.register_function("boom", |_, _| -> Result<Val, HostError> { panic!("boom") });
    vm.register_function("catcher", |vm, _| {
        let caught = catch_unwind(AssertUnwindSafe(|| vm.execute("inner", &[])));
        assert!(
            caught.is_err(),
            "the panic reaches the host function that called execute"
        );
        Ok(Val::I64(1))
    });
    assert_eq!(vm.execute("outer", &[]).unwrap(), Val::I64(1001));
    // And the VM is healthy afterwards.
    assert_eq!(vm.execute("outer", &[]).unwrap(), Val::I64(1001));
}

/// 1,000 top-level panics in a host function that was given an object: no handle stays live.
#[test]
fn panicking_host_functions_release_their_argument_handles() {
    quiet_panics();
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.register_function("boom", |_, _| -> Result<Val, HostError> { panic!("boom") });
    for _ in 0..1_000 {
        let caught = catch_unwind(AssertUnwindSafe(|| vm.execute("with_object", &[])));
        assert!(caught.is_err());
    }
    assert_eq!(vm.gc_stats().live_handles, 0);
    vm.collect_all();
    assert_eq!(vm.gc_stats().live_handles, 0);
}

/// A print callback that panics once: the panic is caught around the execution, and it never
/// fires again later (the print it was in is not re-run by a later execution).
#[test]
fn a_caught_print_panic_never_fires_again() {
    quiet_panics();
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let armed = Arc::new(SyncCell::new(true));
    let (log, trap) = (printed.clone(), armed.clone());
    vm.set_output(Output::Callback(Box::new(move |text: &str| {
        if trap.replace(false) {
            panic!("print callback panics once");
        }
        log.lock().unwrap().push(text.to_owned());
    })));
    vm.register_function("catcher", |vm, _| {
        let caught = catch_unwind(AssertUnwindSafe(|| vm.execute("printer", &[])));
        assert!(caught.is_err());
        Ok(Val::I64(5))
    });
    // The panic is caught inside `catcher`; `outer` finishes its own code.
    assert_eq!(vm.execute("outer", &[]).unwrap(), Val::I64(1005));
    assert!(
        printed.lock().unwrap().is_empty(),
        "{:?}",
        printed.lock().unwrap()
    );
    // A later execution prints once, its own print.
    assert_eq!(vm.execute("printer", &[]).unwrap(), Val::I64(7));
    assert_eq!(*printed.lock().unwrap(), vec!["hello\n".to_owned()]);
}

/// `print` executed by name from a host function, its callback panicking: the builtin's
/// activation is unwound too, and the outer execution finishes its own code.
#[test]
fn a_panicking_print_executed_by_name_leaves_no_activation_behind() {
    quiet_panics();
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.set_output(Output::Callback(Box::new(|_: &str| {
        panic!("print callback panics")
    })));
    vm.register_function("catcher", |vm, _| {
        for _ in 0..3 {
            let caught = catch_unwind(AssertUnwindSafe(|| vm.execute("print", &[Val::from("x")])));
            assert!(caught.is_err());
        }
        Ok(Val::I64(2))
    });
    assert_eq!(vm.execute("outer", &[]).unwrap(), Val::I64(1002));
    assert_eq!(vm.gc_stats().live_handles, 0);
}
