//! Time-sliced execution (`Vm::start`, `Vm::resume`, `Vm::cancel`, `Vm::run_async`): a
//! sliced run gives exactly what an uninterrupted one gives, host functions and re-entry work
//! inside slices, other calls run while an execution is suspended, the collector keeps a
//! suspended execution's values, and the instruction limit counts across slices.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use common::{SyncCell, vm_with};
use stoffel_vm::{ApiError, HostError, Output, Progress, RuntimeErrorKind, Val, Vm, VmError};

/// Counts 0..n in r1, summing into r3 (about 6 instructions per round).
const COUNT: &str = "
.function count(n)
    LDI r1, 0
    LDI r2, 1
    LDI r3, 0
top:
    CMP r1, r0
    JMPEQ done
    ADD r1, r1, r2
    ADD r3, r3, r1
    JMP top
done:
    RET r3
";

/// Runs a suspended-or-done progress to its end with slices of `fuel`; the result and the
/// number of slices.
fn finish(
    vm: &mut Vm,
    mut progress: Result<Progress, VmError>,
    fuel: u64,
) -> (Result<Val, VmError>, u32) {
    let mut slices = 1;
    loop {
        match progress {
            Ok(Progress::Suspended) => {
                assert!(vm.is_suspended());
                progress = vm.resume(fuel);
                slices += 1;
            }
            Ok(Progress::Done(v)) => return (Ok(v), slices),
            Err(e) => return (Err(e), slices),
        }
    }
}

/// A VM with `bytes` loaded and `print` captured.
fn program_vm(bytes: &[u8]) -> (Vm, Arc<Mutex<String>>) {
    let mut vm = Vm::new();
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    vm.set_output(Output::Callback(Box::new(move |s: &str| {
        sink.lock().unwrap().push_str(s)
    })));
    vm.load_bytecode(bytes).expect("loads");
    (vm, out)
}

fn stflb_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("conformance directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("stflb"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("readable"))
        })
        .collect();
    files.sort();
    files
}

/// Every conformance program (v1 and v9 sets) gives the same output and result (or error)
/// in slices of 1, 7 and 100 instructions as in one uninterrupted run.
#[test]
fn sliced_runs_match_uninterrupted_runs_on_the_conformance_programs() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut compared = 0;
    let mut multi_slice = 0;
    for dir in ["conformance", "conformance-v9"] {
        for (name, bytes) in stflb_files(&root.join(dir)) {
            let (mut vm, out) = program_vm(&bytes);
            if !vm.has_function("main") {
                continue;
            }
            let whole = vm.call::<Val>("main", ()).map_err(|e| e.to_string());
            let whole_out = out.lock().unwrap().clone();
            let whole_count = vm.instructions_executed();
            for fuel in [1, 7, 100] {
                let (mut vm, out) = program_vm(&bytes);
                let first = vm.start("main", &[], fuel);
                let (result, slices) = finish(&mut vm, first, fuel);
                let result = result.map_err(|e| e.to_string());
                assert_eq!(result, whole, "{dir}/{name} in slices of {fuel}");
                assert_eq!(
                    *out.lock().unwrap(),
                    whole_out,
                    "{dir}/{name} in slices of {fuel}"
                );
                assert_eq!(vm.instructions_executed(), whole_count, "{dir}/{name}");
                assert!(!vm.is_suspended());
                if slices > 2 {
                    multi_slice += 1;
                }
                compared += 1;
            }
        }
    }
    assert!(compared >= 3 * 70, "{compared} runs compared");
    assert!(
        multi_slice >= 3 * 60,
        "{multi_slice} runs took several slices"
    );
}

#[test]
fn slices_resume_exactly_and_count_every_instruction() {
    let (mut vm, _) = vm_with(COUNT);
    let whole: i64 = vm.call("count", (1000i64,)).unwrap();
    assert_eq!(whole, 500_500);
    let before = vm.instructions_executed();
    let first = vm.start("count", &[Val::I64(1000)], 10);
    assert_eq!(first, Ok(Progress::Suspended));
    assert_eq!(
        vm.instructions_executed() - before,
        10,
        "a slice runs exactly its fuel"
    );
    let (result, slices) = finish(&mut vm, first, 10);
    assert_eq!(result.unwrap(), Val::I64(whole));
    let used = vm.instructions_executed() - before;
    assert_eq!(
        u64::from(slices),
        used.div_ceil(10).max(1),
        "{used} instructions"
    );
}

#[test]
fn fuel_zero_starts_without_running() {
    let (mut vm, _) = vm_with(COUNT);
    assert_eq!(
        vm.start("count", &[Val::I64(3)], 0),
        Ok(Progress::Suspended)
    );
    assert_eq!(vm.instructions_executed(), 0);
    assert_eq!(vm.resume(0), Ok(Progress::Suspended));
    assert_eq!(vm.instructions_executed(), 0);
    assert_eq!(vm.resume(1_000), Ok(Progress::Done(Val::I64(6))));
    // The name and arguments are checked at start.
    assert!(matches!(
        vm.start("nope", &[], 0),
        Err(VmError::Api(ApiError::FunctionNotFound(_)))
    ));
    let err = vm.start("count", &[], 0).unwrap_err();
    assert!(err.to_string().contains("expects 1"), "{err}");
    assert!(!vm.is_suspended());
}

#[test]
fn host_functions_and_builtins_by_name_run_to_their_end() {
    let (mut vm, _) = vm_with(COUNT);
    vm.register_fn("triple", |n: i64| 3 * n);
    assert_eq!(
        vm.start("triple", &[Val::I64(5)], 0),
        Ok(Progress::Done(Val::I64(15)))
    );
    assert_eq!(
        vm.start("len", &[Val::from("abc")], 0),
        Ok(Progress::Done(Val::I64(3)))
    );
    assert!(!vm.is_suspended());
}

/// The sliced code calls a host function that re-enters the VM for far longer than a slice;
/// the nested execution runs to its end (it is never suspended) and the result is exact.
#[test]
fn host_functions_and_reentry_inside_slices() {
    let src = format!(
        "{COUNT}
.function main(n)
    MOV r5, r0
    LDI r1, 0
    LDI r2, 1
    LDI r4, 0
top:
    CMP r1, r5
    JMPEQ done
    ADD r1, r1, r2
    PUSHARG r1
    CALL nested
    ADD r4, r4, r0
    JMP top
done:
    RET r4
"
    );
    let (mut vm, _) = vm_with(&src);
    let calls = Arc::new(SyncCell::new(0u32));
    let seen = calls.clone();
    vm.register_function("nested", move |vm, args| {
        seen.set(seen.get() + 1);
        // Start and resume belong to the top level.
        assert!(matches!(
            vm.start("count", &[Val::I64(1)], 5),
            Err(VmError::Api(ApiError::SliceInCall))
        ));
        assert!(matches!(
            vm.resume(5),
            Err(VmError::Api(ApiError::SliceInCall))
        ));
        assert!(matches!(
            vm.cancel(),
            Err(VmError::Api(ApiError::SliceInCall))
        ));
        // ~600 instructions, many slices' worth.
        let n = args[0].as_i64().unwrap() + 100;
        Ok(vm.execute("count", &[Val::I64(n)])?)
    });
    let whole: i64 = vm.call("main", (20i64,)).unwrap();
    assert_eq!(calls.replace(0), 20);
    for fuel in [1, 3, 7, 50] {
        let first = vm.start("main", &[Val::I64(20)], fuel);
        let (result, slices) = finish(&mut vm, first, fuel);
        assert_eq!(result.unwrap(), Val::I64(whole), "fuel {fuel}");
        assert_eq!(calls.replace(0), 20, "fuel {fuel}");
        // The slices end in main's own frames: at most one per main instruction.
        assert!(slices > 20 && slices < 200, "{slices} slices of {fuel}");
    }
}

#[test]
fn other_calls_run_while_an_execution_is_suspended() {
    let src = format!(
        "{COUNT}
.function fail
    LDI r1, 1
    LDI r2, 0
    DIV r3, r1, r2
    RET r3
"
    );
    let (mut vm, out) = vm_with(&src);
    vm.register_function("reenter", |vm, _| Ok(vm.execute("count", &[Val::I64(10)])?));
    let mut progress = vm.start("count", &[Val::I64(2000)], 50).unwrap();
    let mut rounds = 0;
    while progress == Progress::Suspended {
        rounds += 1;
        // Ordinary executions, a host function that re-enters, failures, heap calls,
        // a full collection, a code load: none of them disturbs the suspended execution.
        assert_eq!(vm.execute("count", &[Val::I64(4)]).unwrap(), Val::I64(10));
        assert_eq!(vm.execute("reenter", &[]).unwrap(), Val::I64(55));
        assert!(vm.execute("fail", &[]).is_err());
        let obj = vm.create_object().unwrap();
        vm.set_field(&obj, &Val::from("k"), &Val::I64(rounds))
            .unwrap();
        assert_eq!(
            vm.get_field(&obj, &Val::from("k")).unwrap(),
            Val::I64(rounds)
        );
        vm.release(&obj).unwrap();
        vm.execute("print", &[Val::from("between")]).unwrap();
        vm.collect_all();
        assert!(matches!(
            vm.start("count", &[Val::I64(1)], 1),
            Err(VmError::Api(ApiError::AlreadySuspended))
        ));
        if rounds == 3 {
            vm.load_assembly(".function extra\n LDI r1, 7\n RET r1\n")
                .unwrap();
        }
        progress = vm.resume(50).unwrap();
    }
    assert!(rounds > 100, "{rounds}");
    assert_eq!(progress, Progress::Done(Val::I64(2000 * 2001 / 2)));
    assert_eq!(out.lock().unwrap().lines().count() as i64, rounds);
    assert_eq!(vm.execute("extra", &[]).unwrap(), Val::I64(7));
}

#[test]
fn resume_and_cancel_with_nothing_suspended() {
    let (mut vm, _) = vm_with(COUNT);
    let err = vm.resume(10).unwrap_err();
    assert!(
        matches!(err, VmError::Api(ApiError::NothingSuspended)),
        "{err}"
    );
    assert_eq!(err.to_string(), "no execution is suspended on this VM");
    assert_eq!(vm.cancel(), Ok(false));

    assert_eq!(
        vm.start("count", &[Val::I64(100)], 10),
        Ok(Progress::Suspended)
    );
    assert_eq!(vm.cancel(), Ok(true));
    assert!(!vm.is_suspended());
    assert_eq!(vm.cancel(), Ok(false));
    assert!(matches!(
        vm.resume(10),
        Err(VmError::Api(ApiError::NothingSuspended))
    ));
    // The VM is as before: a new start runs from the beginning.
    let first = vm.start("count", &[Val::I64(100)], 10);
    assert_eq!(finish(&mut vm, first, 10).0.unwrap(), Val::I64(5050));
    // A finished execution leaves nothing to resume.
    assert!(matches!(
        vm.resume(10),
        Err(VmError::Api(ApiError::NothingSuspended))
    ));
}

#[test]
fn an_error_in_a_slice_ends_the_execution() {
    let src = "
.function main(n)
    LDI r1, 1
top:
    SUB r0, r0, r1
    JMP top
";
    let (mut vm, _) = vm_with(src);
    // Checked arithmetic: counting down from i64::MIN + 50 overflows after 50 rounds.
    let args = [Val::I64(i64::MIN + 50)];
    let whole = vm.call::<Val>("main", (i64::MIN + 50,)).unwrap_err();
    let first = vm.start("main", &args, 7);
    let (result, slices) = finish(&mut vm, first, 7);
    let err = result.unwrap_err();
    assert_eq!(err.to_string(), whole.to_string());
    assert!(slices > 10, "{slices}");
    assert!(!vm.is_suspended());
    assert!(matches!(
        vm.resume(7),
        Err(VmError::Api(ApiError::NothingSuspended))
    ));
}

#[test]
fn the_instruction_limit_counts_across_slices() {
    let spin = ".function spin\ntop:\n    JMP top\n";
    let (mut vm, _) = vm_with(spin);
    vm.set_instruction_limit(Some(1_000));
    let first = vm.start("spin", &[], 64);
    // A change while suspended applies to later executions, not this one.
    vm.set_instruction_limit(Some(10));
    let (result, slices) = finish(&mut vm, first, 64);
    match result {
        Err(VmError::Runtime(e)) => assert_eq!(e.kind, RuntimeErrorKind::FuelExhausted(1_000)),
        other => panic!("{other:?}"),
    }
    // The last slice is cut short by the limit, which fails it.
    assert_eq!(slices, 1_000u32.div_ceil(64));
    assert_eq!(vm.instructions_executed(), 1_000);
    // Executions between slices have their own budget.
    vm.set_instruction_limit(Some(100));
    assert_eq!(vm.start("spin", &[], 60), Ok(Progress::Suspended));
    let err = vm.execute("spin", &[]).unwrap_err();
    assert!(err.is_limit());
    assert_eq!(vm.resume(30), Ok(Progress::Suspended));
    assert!(vm.resume(30).unwrap_err().is_limit());
    assert_eq!(vm.instructions_executed(), 1_000 + 100 + 100);
}

#[test]
fn an_interrupt_fails_the_slice_it_arrives_in() {
    let src = "
.function main
top:
    CALL poke
    JMP top
";
    let (mut vm, _) = vm_with(src);
    let handle = vm.interrupt_handle();
    let pokes = Arc::new(SyncCell::new(0));
    let seen = pokes.clone();
    vm.register_function("poke", move |_, _| {
        seen.set(seen.get() + 1);
        if seen.get() == 30 {
            handle.interrupt();
        }
        Ok(Val::Unit)
    });
    assert_eq!(vm.start("main", &[], 10), Ok(Progress::Suspended));
    // An interrupt while suspended is ignored.
    vm.interrupt_handle().interrupt();
    let (result, _) = finish(&mut vm, Ok(Progress::Suspended), 10);
    match result {
        Err(VmError::Runtime(e)) => assert_eq!(e.kind, RuntimeErrorKind::Interrupted),
        other => panic!("{other:?}"),
    }
    assert_eq!(pokes.get(), 30);
    assert!(!vm.is_suspended());
}

/// Suspended in the middle of building objects, with full collections between slices: the
/// suspended frames' values survive.
#[test]
fn collections_between_slices_keep_the_suspended_values() {
    let src = "
.function build(n)
    MOV r1, r0
    LDI r5, 0
    LDI r6, 1
    PUSHARG r0
    CALL create_array
    MOV r7, r0
    LDI r8, \"v\"
top:
    CMP r5, r1
    JMPEQ sum
    CALL create_object
    MOV r9, r0
    PUSHARG r9
    PUSHARG r8
    PUSHARG r5
    CALL set_field
    PUSHARG r7
    PUSHARG r9
    CALL array_push
    ADD r5, r5, r6
    JMP top
sum:
    LDI r5, 0
    LDI r10, 0
again:
    CMP r5, r1
    JMPEQ done
    PUSHARG r7
    PUSHARG r5
    CALL get_field
    PUSHARG r0
    PUSHARG r8
    CALL get_field
    ADD r10, r10, r0
    ADD r5, r5, r6
    JMP again
done:
    RET r10
.function main(n)
    MOV r1, r0
    PUSHARG r0
    CALL build
    RET r0
";
    let (mut vm, _) = vm_with(src);
    let n = 300i64;
    let whole: i64 = vm.call("main", (n,)).unwrap();
    assert_eq!(whole, n * (n - 1) / 2);
    let collections = vm.gc_stats().collections;
    let mut progress = vm.start("main", &[Val::I64(n)], 13).unwrap();
    let mut rounds = 0;
    while progress == Progress::Suspended {
        // Garbage of our own between slices, then a full collection.
        for _ in 0..5 {
            let junk = vm.create_array().unwrap();
            vm.release(&junk).unwrap();
        }
        vm.collect_all();
        rounds += 1;
        progress = vm.resume(13).unwrap();
    }
    assert_eq!(progress, Progress::Done(Val::I64(whole)));
    assert!(rounds > 200, "{rounds}");
    assert!(vm.gc_stats().collections >= collections + rounds);
}

#[test]
fn a_panic_in_a_call_between_slices_leaves_the_suspended_execution() {
    let src = format!("{COUNT}\n.function boom\n    CALL explode\n    RET r0\n");
    let (mut vm, _) = vm_with(&src);
    vm.register_function("explode", |_, _| panic!("host bug"));
    assert_eq!(
        vm.start("count", &[Val::I64(100)], 20),
        Ok(Progress::Suspended)
    );
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = vm.execute("boom", &[]);
    }));
    assert!(caught.is_err());
    assert!(vm.is_suspended());
    assert_eq!(vm.execute("count", &[Val::I64(3)]).unwrap(), Val::I64(6));
    let (result, _) = finish(&mut vm, Ok(Progress::Suspended), 20);
    assert_eq!(result.unwrap(), Val::I64(5050));
}

#[test]
fn dropping_a_vm_with_a_suspended_execution() {
    let (mut vm, _) = vm_with(COUNT);
    let obj = vm.create_object().unwrap();
    assert_eq!(
        vm.start("count", &[Val::I64(1_000)], 100),
        Ok(Progress::Suspended)
    );
    assert!(vm.is_suspended());
    vm.release(&obj).unwrap();
    drop(vm);
}

#[test]
fn a_host_error_inside_a_slice_ends_it() {
    let src = format!("{COUNT}\n.function main\n    CALL bad\n    RET r0\n");
    let (mut vm, _) = vm_with(&src);
    vm.register_function("bad", |_, _| Err(HostError::new("no")));
    let err = vm.start("main", &[], 5).unwrap_err();
    assert!(err.to_string().contains("no"), "{err}");
    assert!(!vm.is_suspended());
}

// --- the Future adapter, with a std-only executor ---

struct Flag(std::sync::atomic::AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Polls `future` to its end: the output, the number of polls and of wakes.
fn block_on<F: Future>(future: F) -> (F::Output, usize, usize) {
    let flag = Arc::new(Flag(Default::default()));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            let wakes = flag.0.load(std::sync::atomic::Ordering::Relaxed);
            return (out, polls, wakes);
        }
    }
}

#[test]
fn run_async_yields_every_n_instructions() {
    let (mut vm, _) = vm_with(COUNT);
    let whole: i64 = vm.call("count", (500i64,)).unwrap();
    let before = vm.instructions_executed();
    let (result, polls, wakes) = block_on(vm.run_async("count", &[Val::I64(500)], 100));
    assert_eq!(result.unwrap(), Val::I64(whole));
    let used = vm.instructions_executed() - before;
    assert_eq!(polls as u64, used.div_ceil(100));
    assert_eq!(wakes, polls - 1, "every Pending wakes the task");
    // Errors come out as the future's output.
    let (result, _, _) = block_on(vm.run_async("missing", &[], 100));
    assert!(result.is_err());
    // A future dropped before its end cancels its execution.
    {
        let future = vm.run_async("count", &[Val::I64(500)], 10);
        let waker = Waker::from(Arc::new(Flag(Default::default())));
        let mut future = pin!(future);
        let polled = future.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
    }
    assert!(!vm.is_suspended());
}

/// A boxed execution future.
type Task<'vm> = std::pin::Pin<Box<dyn Future<Output = Result<Val, VmError>> + 'vm>>;

/// Two VMs' executions interleaved by a round-robin executor of boxed futures.
#[test]
fn two_vms_run_round_robin() {
    let (mut a, out_a) = vm_with(
        ".function main(n)\n MOV r3, r0\n LDI r1, 1\n LDI r2, 0\ntop:\n PUSHARG r3\n CALL print\n SUB r3, r3, r1\n CMP r3, r2\n JMPNEQ top\n RET r3\n",
    );
    let (mut b, _) = vm_with(COUNT);
    let waker = Waker::from(Arc::new(Flag(Default::default())));
    let mut cx = Context::from_waker(&waker);
    let mut tasks: Vec<(char, Task<'_>)> = vec![
        ('a', Box::pin(a.run_async("main", &[Val::I64(20)], 25))),
        ('b', Box::pin(b.run_async("count", &[Val::I64(300)], 25))),
    ];
    let mut results = Vec::new();
    let mut turns = String::new();
    while !tasks.is_empty() {
        let mut i = 0;
        while i < tasks.len() {
            turns.push(tasks[i].0);
            match tasks[i].1.as_mut().poll(&mut cx) {
                Poll::Ready(r) => results.push((tasks.remove(i).0, r.unwrap())),
                Poll::Pending => i += 1,
            }
        }
    }
    assert_eq!(
        results,
        [('a', Val::I64(0)), ('b', Val::I64(300 * 301 / 2))]
    );
    // Both ran in turns: 'a' several times before 'b' finished.
    assert!(turns.starts_with("ababab"), "{turns}");
    assert_eq!(out_a.lock().unwrap().lines().count(), 20);
}
