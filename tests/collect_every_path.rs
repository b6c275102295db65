//! The collector runs on every path that allocates, not only in the driver's step loop: a
//! builtin executed by name (the Python bindings' `stoffel_execute(vm, "create_object")`),
//! `Vm::call` of builtins and host functions, results converted for the host, the heap API
//! and foreign objects with no execution at all, and host functions called from bytecode so
//! often that the driver never ends a step on its instruction budget.
//!
//! Each workload runs 1 000 000 calls with every result released. Before the fix these paths
//! never collected (heap +200 bytes per call, 0 collections). Checked: the peak of heap bytes,
//! of `Gc` allocations and of live handles after the first 10 000 calls stays within 2x of
//! their peak during those 10 000 calls, and collections keep happening. Peaks, not samples:
//! incremental collection makes the heap a sawtooth. RSS is checked in its own process by
//! `tests/collect_every_path_rss.rs`.

mod collect_paths;

mod common;

use common::SyncCell;
use std::sync::Arc;
use std::time::Instant;

use collect_paths::{CALLS, HOST_LOOP, WARMUP, workload};
use stoffel_vm::{GcStats, Val, Vm};

/// Peaks of the figures that must stay flat.
#[derive(Clone, Copy, Debug, Default)]
struct Peaks {
    heap_bytes: usize,
    gc_objects: usize,
    live_handles: usize,
}

impl Peaks {
    fn add(&mut self, s: &GcStats) {
        self.heap_bytes = self.heap_bytes.max(s.heap_bytes);
        self.gc_objects = self.gc_objects.max(s.gc_objects);
        self.live_handles = self.live_handles.max(s.live_handles);
    }
}

/// Samples of one run: peaks during the warm-up and after it, and collections at both ends.
#[derive(Default)]
struct Record {
    warm: Peaks,
    rest: Peaks,
    collections_warm: u64,
    collections_end: u64,
}

impl Record {
    fn sample(&mut self, call: u64, s: &GcStats) {
        if call <= WARMUP {
            self.warm.add(s);
            self.collections_warm = s.collections;
        } else {
            self.rest.add(s);
            self.collections_end = s.collections;
        }
    }

    #[track_caller]
    fn check(&self, name: &str) {
        let (w, r) = (self.warm, self.rest);
        eprintln!(
            "{name}: peak heap bytes {} -> {}, gc objects {} -> {}, live handles {} -> {}; \
             collections {} after {WARMUP} calls, {} after {CALLS}",
            w.heap_bytes,
            r.heap_bytes,
            w.gc_objects,
            r.gc_objects,
            w.live_handles,
            r.live_handles,
            self.collections_warm,
            self.collections_end
        );
        assert!(
            r.heap_bytes <= 2 * w.heap_bytes,
            "{name}: heap bytes grew: {w:?} -> {r:?}"
        );
        assert!(
            r.gc_objects <= 2 * w.gc_objects,
            "{name}: Gc allocations grew: {w:?} -> {r:?}"
        );
        assert!(
            r.live_handles <= 2 * w.live_handles,
            "{name}: live handles grew: {w:?} -> {r:?}"
        );
        assert!(
            self.collections_warm > 0 && self.collections_end > self.collections_warm,
            "{name}: the collector must keep running: {} after {WARMUP} calls, {} after {CALLS}",
            self.collections_warm,
            self.collections_end
        );
    }
}

/// Runs the workload `name` for [`CALLS`] calls, sampling the figures after every call.
fn check_flat(name: &str) -> Vm {
    let finalized = Arc::new(SyncCell::new(0));
    let collect_paths::Workload { mut vm, mut step } = workload(name, &finalized);
    let started = Instant::now();
    let mut record = Record::default();
    for call in 1..=CALLS {
        step(&mut vm);
        record.sample(call, &vm.gc_stats());
    }
    eprintln!("{name}: {CALLS} calls in {:?}", started.elapsed());
    record.check(name);
    vm
}

#[test]
fn execute_create_object_by_name() {
    check_flat("execute_create_object");
}

#[test]
fn execute_create_array_by_name() {
    check_flat("execute_create_array");
}

#[test]
fn call_builtin_by_name_with_string_arguments() {
    check_flat("call_builtin_with_strings");
}

#[test]
fn execute_builtin_by_name_returning_a_string() {
    check_flat("execute_builtin_returning_string");
}

#[test]
fn call_host_function_by_name_returning_a_string() {
    check_flat("call_host_returning_string");
}

#[test]
fn execute_host_function_by_name_returning_an_object() {
    check_flat("execute_host_returning_object");
}

#[test]
fn heap_api_without_execution() {
    let vm = check_flat("heap_api");
    assert_eq!(vm.gc_stats().live_handles, 0);
}

/// Foreign objects made and released with no execution: the heap stays flat and every one of
/// them is finalized (some only by the closing full collections).
#[test]
fn create_foreign_without_execution() {
    let finalized = Arc::new(SyncCell::new(0));
    let collect_paths::Workload { mut vm, mut step } = workload("create_foreign", &finalized);
    let mut record = Record::default();
    for call in 1..=CALLS {
        step(&mut vm);
        record.sample(call, &vm.gc_stats());
    }
    record.check("create_foreign");
    let before_full = finalized.get();
    assert!(
        before_full > CALLS - 10_000,
        "the collector finalizes as it goes: {before_full} of {CALLS} finalized"
    );
    vm.collect_all();
    vm.collect_all();
    assert_eq!(finalized.get(), CALLS);
    assert_eq!(vm.gc_stats().foreign_objects, 0);
}

/// One execution of bytecode that calls host functions 1 000 000 times in a tight loop, with
/// a fresh object per iteration and a fresh string from the host: the driver's step never
/// runs out of budget between host calls, so the host-call path must pay the collector. The
/// host function samples the figures while the execution runs.
#[test]
fn bytecode_calling_host_functions_in_a_tight_loop() {
    let mut vm = Vm::new();
    let record = Arc::new(std::sync::Mutex::new(Record::default()));
    let calls = Arc::new(SyncCell::new(0u64));
    let (rec, count) = (record.clone(), calls.clone());
    vm.register_function("host_string", move |vm, args| {
        assert!(matches!(args, [Val::Object(_)]), "{args:?}");
        count.set(count.get() + 1);
        rec.lock().unwrap().sample(count.get(), &vm.gc_stats());
        Ok(Val::from("a fresh string from the host"))
    });
    vm.register_function("host_int", |_, _| Ok(Val::I64(7)));
    vm.load_assembly(HOST_LOOP).unwrap();
    let n = CALLS as i64;
    assert_eq!(vm.call::<Val>("loop", &[Val::I64(n)]).unwrap(), Val::I64(n));
    assert_eq!(calls.get(), CALLS);
    record
        .lock()
        .unwrap()
        .check("bytecode_calling_host_functions");
}

/// `Vm::check` of a value without a handle allocates nothing (it is a `&self` call, which
/// could never pay the collector back).
#[test]
fn check_of_a_string_allocates_nothing() {
    let vm = Vm::new();
    let before = vm.gc_stats();
    for _ in 0..1000 {
        vm.check(&Val::from("not a handle")).unwrap();
    }
    assert_eq!(vm.gc_stats(), before);
}
