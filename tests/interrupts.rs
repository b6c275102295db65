//! Interrupts from any thread (issue 16 item 2): an `InterruptHandle` stops the running
//! execution at its next check, the VM stays usable, and an interrupt while nothing runs is
//! ignored.

use std::time::{Duration, Instant};

use stoffel_vm::{HostError, RuntimeErrorKind, Val, Vm, VmError};

const PROGRAM: &str = "
.function spin
top:
    JMP top

.function answer
    LDI r0, 42
    RET r0

.function call_host
    CALL host
    RET r0
";

fn interrupted(e: &VmError) -> bool {
    matches!(e, VmError::Runtime(r) if r.kind == RuntimeErrorKind::Interrupted)
}

/// A watchdog: interrupts `vm`'s execution after `delay` from another thread, then every
/// 10 ms until it is stopped (an interrupt that arrives before the execution starts is
/// ignored, so a watchdog repeats it). Stop it with the returned flag, then join it.
struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn join(self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

fn interrupt_after(vm: &Vm, delay: Duration) -> Watchdog {
    let handle = vm.interrupt_handle();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(delay);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            handle.interrupt();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Watchdog { done, thread }
}

#[test]
fn an_endless_loop_stops_soon_after_the_interrupt_and_the_vm_stays_usable() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    for round in 0..3 {
        let watchdog = interrupt_after(&vm, Duration::from_millis(50));
        let start = Instant::now();
        let err = vm.execute("spin", &[]).unwrap_err();
        let elapsed = start.elapsed();
        watchdog.join();
        assert!(interrupted(&err), "round {round}: {err:?}");
        assert_eq!(
            err.to_string(),
            "runtime error in function 'spin' at instruction 0: execution interrupted by the host"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "round {round}: took {elapsed:?}"
        );
        assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
    }
}

#[test]
fn an_interrupt_while_nothing_runs_is_ignored() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    vm.interrupt_handle().interrupt();
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
}

#[test]
fn a_nested_execution_is_interrupted_and_the_whole_execution_reports_it() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    // The host function re-enters into the endless loop and passes the failure on in its
    // own words: the top-level execution still reports the interrupt.
    vm.register_function("host", |vm, _| match vm.execute("spin", &[]) {
        Ok(v) => Ok(v),
        Err(e) => Err(HostError::new(format!("spin failed: {e}"))),
    });
    let watchdog = interrupt_after(&vm, Duration::from_millis(50));
    let err = vm.execute("call_host", &[]).unwrap_err();
    watchdog.join();
    assert!(interrupted(&err), "{err:?}");
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(42));
}

#[test]
fn the_handle_is_send_sync_and_may_outlive_the_vm() {
    fn send_sync<T: Send + Sync + Clone>(_: &T) {}
    let handle = Vm::new().interrupt_handle();
    send_sync(&handle);
    handle.interrupt();
}
