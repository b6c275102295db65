//! Finalizers run in a documented, deterministic order: newest first (reverse registration),
//! for the foreign objects one collection finds dead and for those still held when the VM is
//! dropped. (They once followed a randomly seeded hash map at drop.)

use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::Vm;

/// Foreign data that records its number when dropped (finalized).
struct Recorder {
    number: usize,
    log: Arc<Mutex<Vec<usize>>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.number);
    }
}

fn register(vm: &mut Vm, count: usize, log: &Arc<Mutex<Vec<usize>>>) -> Vec<stoffel_vm::Val> {
    (0..count)
        .map(|number| {
            vm.create_foreign(Box::new(Recorder {
                number,
                log: log.clone(),
            }))
            .unwrap()
        })
        .collect()
}

#[test]
fn a_collection_finalizes_newest_first() {
    let mut vm = Vm::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    // Enough objects that a hash map's order would be visibly random.
    let held = register(&mut vm, 200, &log);
    // Release in a scrambled order: the order of finalizers must not depend on it.
    for i in (0..held.len()).map(|i| (i * 7919) % held.len()) {
        vm.release(&held[i]).unwrap();
    }
    vm.collect_all();
    let expected: Vec<usize> = (0..200).rev().collect();
    assert_eq!(*log.lock().unwrap(), expected);
}

#[test]
fn dropping_the_vm_finalizes_newest_first() {
    for _ in 0..5 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut vm = Vm::new();
        let _held = register(&mut vm, 200, &log);
        drop(vm);
        let expected: Vec<usize> = (0..200).rev().collect();
        assert_eq!(*log.lock().unwrap(), expected);
    }
}

#[test]
fn each_finalizer_runs_once_when_collection_and_drop_share_the_work() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut vm = Vm::new();
    let held = register(&mut vm, 100, &log);
    // The even ones die in a collection, the odd ones at drop.
    for (i, v) in held.iter().enumerate() {
        if i % 2 == 0 {
            vm.release(v).unwrap();
        }
    }
    vm.collect_all();
    drop(vm);
    let evens = (0..100).rev().filter(|i| i % 2 == 0);
    let odds = (0..100).rev().filter(|i| i % 2 == 1);
    let expected: Vec<usize> = evens.chain(odds).collect();
    assert_eq!(*log.lock().unwrap(), expected);
}
