//! Feature `send`: a `Vm` moves between threads with everything it holds (handles, host
//! functions, foreign objects, user data), and `Rooted`s may be dropped on any thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use stoffel_vm::{Rooted, Val, Vm};

const _: () = {
    const fn send<T: Send>() {}
    send::<Vm>();
};

const PROGRAM: &str = "
.function twice(n)
    PUSHARG r0
    CALL record
    RET r0
";

/// The host's data in the VM: how many `bump` calls it saw.
struct Bumps(u32);

/// Foreign data that counts its finalization.
struct Tracked {
    text: String,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// What travels with the VM: the VM and the host's handles into it.
struct Travelling {
    vm: Vm,
    object: Rooted,
    array: Val,
    foreign: Val,
}

#[test]
fn a_vm_with_live_handles_moves_between_threads_and_back() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    // A host function whose state the test shares: where and with what it was called.
    let calls: Arc<Mutex<Vec<(i64, ThreadId)>>> = Arc::default();
    let log = calls.clone();
    vm.register_fn("record", move |n: i64| {
        log.lock().unwrap().push((n, thread::current().id()));
        n * 2
    });
    vm.register_function("bump", |vm, _| {
        vm.user_data_mut::<Bumps>().unwrap().0 += 1;
        Ok(Val::Unit)
    });
    vm.set_user_data(Bumps(0));
    let object: Rooted = vm.call("create_object", ()).unwrap();
    vm.set(&object, "count", 1i64).unwrap();
    let array = vm.create_array().unwrap(); // a raw id, released by hand below
    vm.array_push(&array, &Val::I64(100)).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let foreign = vm
        .create_foreign(Box::new(Tracked {
            text: String::from("payload"),
            dropped: dropped.clone(),
        }))
        .unwrap();
    assert_eq!(vm.gc_stats().live_handles, 3);

    let main = thread::current().id();
    let mut travelling = Travelling {
        vm,
        object,
        array,
        foreign,
    };
    const ROUNDS: i64 = 4;
    for round in 0..ROUNDS {
        travelling = thread::spawn(move || {
            let Travelling {
                mut vm,
                object,
                array,
                foreign,
            } = travelling;
            assert_eq!(vm.call::<i64>("twice", (round,)).unwrap(), 2 * round);
            let count: i64 = vm.get(&object, "count").unwrap();
            vm.set(&object, "count", count + 1).unwrap();
            vm.array_push(&array, &Val::I64(round)).unwrap();
            let data = vm.foreign_data_mut(&foreign).unwrap();
            data.downcast_mut::<Tracked>().unwrap().text.push('!');
            vm.execute("bump", &[]).unwrap();
            // The collector runs on this thread too; the handles keep everything alive.
            vm.collect_all();
            assert_eq!(vm.gc_stats().live_handles, 3);
            Travelling {
                vm,
                object,
                array,
                foreign,
            }
        })
        .join()
        .unwrap();
    }

    let Travelling {
        mut vm,
        object,
        array,
        foreign,
    } = travelling;
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        (0..ROUNDS).collect::<Vec<_>>()
    );
    assert!(
        calls.iter().all(|c| c.1 != main),
        "ran on the spawned threads"
    );
    assert_eq!(vm.get::<i64>(&object, "count").unwrap(), 1 + ROUNDS);
    assert_eq!(vm.from_val::<Vec<i64>>(&array).unwrap(), [100, 0, 1, 2, 3]);
    let data = vm.foreign_data(&foreign).unwrap();
    assert_eq!(data.downcast_ref::<Tracked>().unwrap().text, "payload!!!!");
    assert_eq!(vm.user_data::<Bumps>().unwrap().0, ROUNDS as u32);
    assert_eq!(vm.gc_stats().live_handles, 3);
    assert_eq!(vm.gc_stats().foreign_objects, 1);

    // Let everything go: the handles are released, the foreign data finalized once.
    drop(object);
    vm.release(&array).unwrap();
    vm.release(&foreign).unwrap();
    vm.collect_all();
    let stats = vm.gc_stats();
    assert_eq!(stats.live_handles, 0);
    assert_eq!(stats.foreign_objects, 0);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    drop(vm);
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "finalized exactly once");
}

#[test]
fn a_vm_dropped_on_another_thread_finalizes_its_foreign_data_there() {
    let mut vm = Vm::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let foreign = vm
        .create_foreign(Box::new(Tracked {
            text: String::new(),
            dropped: dropped.clone(),
        }))
        .unwrap();
    assert!(foreign.handle().is_some());
    thread::spawn(move || drop(vm)).join().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn rooted_values_dropped_on_other_threads_are_released() {
    fn send_and_sync<T: Send + Sync>(_: &T) {}
    let mut vm = Vm::new();
    let objects: Vec<Rooted> = (0..10)
        .map(|_| vm.call("create_object", ()).unwrap())
        .collect();
    send_and_sync(&objects[0]);
    let clones: Vec<Rooted> = objects.iter().map(Rooted::clone).collect();
    assert_eq!(vm.gc_stats().live_handles, 10);
    // The clones go first, on one thread: the originals still hold the references.
    thread::spawn(move || drop(clones)).join().unwrap();
    vm.collect_all();
    assert_eq!(vm.gc_stats().live_handles, 10);
    // The last clones die on another thread while the VM runs on a third.
    let (objects_done, vm_done) = (
        thread::spawn(move || drop(objects)),
        thread::spawn(move || {
            vm.collect_all();
            vm
        }),
    );
    objects_done.join().unwrap();
    let mut vm = vm_done.join().unwrap();
    // Queued by the drops, released at the VM's next heap call.
    vm.collect_all();
    let stats = vm.gc_stats();
    assert_eq!(stats.live_handles, 0);
    assert_eq!(stats.gc_objects, Vm::new().gc_stats().gc_objects);
}

/// A host function has `&mut Vm`, so it can move the VM away while its own call runs (why
/// host functions are `Send + Sync` and the running call shares nothing but `Arc`s with the
/// VM). The moved VM works on the other thread, and so does the one left in its place.
#[test]
fn a_host_function_may_move_its_vm_to_another_thread_mid_call() {
    let mut vm = Vm::new();
    vm.load_assembly(".function main\n    CALL away\n    RET r0\n")
        .unwrap();
    let moved = Arc::new(AtomicUsize::new(0));
    let nested: Arc<Mutex<Option<Val>>> = Arc::default();
    let (count, result) = (moved.clone(), nested.clone());
    vm.register_function("away", move |vm, _| {
        if count.fetch_add(1, Ordering::SeqCst) > 0 {
            return Ok(Val::I64(1));
        }
        let mut old = std::mem::replace(vm, Vm::new());
        let slot = result.clone();
        thread::spawn(move || {
            // The moved VM is mid-call (this host call); a nested execution works there.
            *slot.lock().unwrap() = old.execute("away", &[]).ok();
            drop(old);
        })
        .join()
        .unwrap();
        Ok(Val::I64(7))
    });
    // The execution continues on the VM put in place, which has no such frame: whatever it
    // returns, it returns rather than crashing.
    let _ = vm.execute("main", &[]);
    assert_eq!(*nested.lock().unwrap(), Some(Val::I64(1)));
    assert_eq!(moved.load(Ordering::SeqCst), 2);
    vm.load_assembly(".function add(a, b)\n    ADD r2, r0, r1\n    RET r2\n")
        .unwrap();
    assert_eq!(vm.call::<i64>("add", (2i64, 3i64)).unwrap(), 5);
    assert_eq!(vm.gc_stats().live_handles, 0);
}
