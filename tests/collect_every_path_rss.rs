//! RSS stays flat on every path that allocates (see `tests/collect_every_path.rs` for the
//! heap figures): each workload runs 1 000 000 calls with every result released, and the
//! process's resident set (VmRSS) at the end must be within 2x of what it was after 10 000
//! calls, and less than 16 MiB above it (before the collector ran on these paths, each grew
//! by 100 to 650 MB).
//!
//! This file holds a single test so that the process's RSS is these workloads' alone (other
//! tests running on other threads would make it noisy); the workloads run one after the
//! other, each on a fresh VM, dropped before the next starts.

mod collect_paths;

mod common;

use common::SyncCell;
use std::sync::Arc;

use collect_paths::{CALLS, HOST_LOOP, NAMES, WARMUP, status_kib, workload};
use stoffel_vm::{Val, Vm};

/// Largest growth allowed after the warm-up, on top of the 2x.
const MAX_GROWTH_KIB: u64 = 16 * 1024;

#[track_caller]
fn check(name: &str, warm_kib: u64, end_kib: u64) {
    eprintln!("{name}: RSS {warm_kib} KiB after {WARMUP} calls, {end_kib} KiB after {CALLS}");
    assert!(
        end_kib <= 2 * warm_kib && end_kib < warm_kib + MAX_GROWTH_KIB,
        "{name}: RSS grew from {warm_kib} KiB to {end_kib} KiB"
    );
}

#[test]
fn rss_stays_flat_on_every_path() {
    for name in NAMES {
        let finalized = Arc::new(SyncCell::new(0));
        let collect_paths::Workload { mut vm, mut step } = workload(name, &finalized);
        let mut warm = 0;
        for call in 1..=CALLS {
            step(&mut vm);
            if call == WARMUP {
                warm = status_kib("VmRSS:");
            }
        }
        check(name, warm, status_kib("VmRSS:"));
    }

    // One execution making 1 000 000 host calls (see `HOST_LOOP`); RSS read by the host
    // function while the execution runs.
    let mut vm = Vm::new();
    let calls = Arc::new(SyncCell::new(0u64));
    let rss = Arc::new(SyncCell::new((0u64, 0u64)));
    let (count, seen) = (calls.clone(), rss.clone());
    vm.register_function("host_string", move |_, _| {
        count.set(count.get() + 1);
        if count.get() == WARMUP {
            seen.set((status_kib("VmRSS:"), 0));
        } else if count.get() == CALLS {
            seen.set((seen.get().0, status_kib("VmRSS:")));
        }
        Ok(Val::from("a fresh string from the host"))
    });
    vm.register_function("host_int", |_, _| Ok(Val::I64(7)));
    vm.load_assembly(HOST_LOOP).unwrap();
    let n = CALLS as i64;
    assert_eq!(vm.call::<Val>("loop", &[Val::I64(n)]).unwrap(), Val::I64(n));
    let (warm, end) = rss.get();
    check("bytecode_calling_host_functions", warm, end);
}
