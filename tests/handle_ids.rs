//! Ids are unique for the life of the process (include/README.md, "Ids"): an id one VM issued
//! is refused by every other VM, and by the same VM once released, however many VMs the
//! process makes, with a true message and nothing changed by the refused call. Exhaustion of
//! the id counter is tested in `tests/handle_id_exhaustion.rs` (its own process: it moves the
//! process-wide counter). The C test runs 1 000 000 VM creations through the real library.

mod common;

use std::time::Instant;

use stoffel_vm::{ApiError, Handle, HandleError, Val, Vm, VmError};

const MAKE: &str = r#"
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

fn vm() -> Vm {
    let mut vm = Vm::new();
    vm.load_assembly(MAKE).unwrap();
    vm
}

fn not_live_message(id: u64) -> String {
    format!("handle {id} is not live in this VM (released, never issued, or issued by another VM)")
}

/// `vm` refuses `id` (as an object) by every call that takes one, with the true message,
/// and nothing in `vm` changes: `own` still reads `v == own_v`, live handles unchanged.
#[track_caller]
fn assert_refused(vm: &mut Vm, id: u64, own: &Val, own_v: i64) {
    let live = vm.gc_stats().live_handles;
    let bad = Val::Object(Handle::from_id(id).unwrap());
    let key = Val::from("v");
    let results = [
        vm.get_field(&bad, &key).map(|_| ()),
        vm.set_field(&bad, &key, &Val::I64(-1)),
        vm.set_field(own, &key, &bad),
        vm.retain(&bad),
        vm.release(&bad),
        vm.check(&bad),
        vm.execute("make", std::slice::from_ref(&bad)).map(|_| ()),
    ];
    for (i, r) in results.into_iter().enumerate() {
        let err = r.expect_err("a foreign id was accepted");
        assert_eq!(
            err,
            VmError::Api(ApiError::Handle(HandleError::NotLive(id))),
            "call {i}"
        );
        assert_eq!(err.to_string(), not_live_message(id), "call {i}");
    }
    assert_eq!(vm.gc_stats().live_handles, live, "live handles changed");
    assert_eq!(vm.get_field(own, &key).unwrap(), Val::I64(own_v));
}

/// 70 000 VMs in turn (more than a 16-bit VM tag can tell apart), four of them kept alive with
/// their objects: each new VM refuses the ids of the live ones, and they refuse its ids.
#[test]
fn ids_of_one_vm_are_refused_by_every_other_vm_across_70k_vms() {
    const VMS: i64 = 70_000;
    const KEEP_EVERY: i64 = 20_000;
    let mut kept: Vec<(Vm, Val, i64)> = Vec::new();
    for n in 0..VMS {
        let mut fresh = vm();
        let obj = fresh.execute("make", &[Val::I64(n)]).unwrap();
        let id = obj.handle().unwrap().id();
        for (old, old_obj, old_n) in &mut kept {
            let old_id = old_obj.handle().unwrap().id();
            assert_ne!(old_id, id, "VM {n} was issued VM {old_n}'s id");
            // The cheap check every time, all calls now and then.
            if n % 1000 == 0 {
                assert_refused(&mut fresh, old_id, &obj, n);
                assert_refused(old, id, old_obj, *old_n);
            } else {
                let bad = Val::Object(Handle::from_id(old_id).unwrap());
                assert!(fresh.get_field(&bad, &Val::from("v")).is_err(), "VM {n}");
                assert!(fresh.release(&bad).is_err(), "VM {n}");
                let bad = Val::Object(Handle::from_id(id).unwrap());
                assert!(old.get_field(&bad, &Val::from("v")).is_err(), "VM {old_n}");
            }
        }
        if n % KEEP_EVERY == 0 {
            kept.push((fresh, obj, n));
        }
    }
    for (vm, obj, n) in &mut kept {
        assert_eq!(vm.get_field(obj, &Val::from("v")).unwrap(), Val::I64(*n));
        assert_eq!(vm.gc_stats().live_handles, 1);
    }
}

#[test]
fn a_released_id_is_refused_for_good_by_its_own_vm() {
    let mut vm = vm();
    let keep = vm.execute("make", &[Val::I64(1)]).unwrap();
    let gone = vm.execute("make", &[Val::I64(2)]).unwrap();
    let gone_id = gone.handle().unwrap().id();
    vm.release(&gone).unwrap();
    assert_refused(&mut vm, gone_id, &keep, 1);
    // However many ids the VM issues later (several blocks' worth), none is the dead one.
    for i in 0..5000 {
        let obj = vm.execute("make", &[Val::I64(i)]).unwrap();
        assert_ne!(obj.handle().unwrap().id(), gone_id);
        vm.release(&obj).unwrap();
    }
    assert_refused(&mut vm, gone_id, &keep, 1);
    assert_eq!(vm.gc_stats().live_handles, 1);
}

#[test]
fn a_retained_id_dies_with_its_last_release() {
    let mut vm = vm();
    let keep = vm.execute("make", &[Val::I64(5)]).unwrap();
    let obj = vm.execute("make", &[Val::I64(6)]).unwrap();
    vm.retain(&obj).unwrap();
    vm.release(&obj).unwrap();
    assert_eq!(vm.get_field(&obj, &Val::from("v")).unwrap(), Val::I64(6));
    vm.release(&obj).unwrap();
    assert_refused(&mut vm, obj.handle().unwrap().id(), &keep, 5);
}

/// Id 0 is not a handle at all; made-up ids, small or large, are refused with the same true
/// message as released ones, never "of another VM" alone.
#[test]
fn forged_ids_are_refused_with_a_true_message() {
    assert_eq!(Handle::from_id(0), None);
    let mut vm = vm();
    let own = vm.execute("make", &[Val::I64(9)]).unwrap();
    let own_id = own.handle().unwrap().id();
    let mut forged = vec![1, 2, 0x1234, 1 << 16, 1 << 48, u64::MAX, u64::MAX - 1];
    forged.extend([own_id + 1, own_id + 1_000_000, own_id ^ (1 << 40)]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..1000 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        forged.push(x);
    }
    for id in forged {
        if id == own_id {
            continue;
        }
        assert_refused(&mut vm, id, &own, 9);
    }
    assert_eq!(vm.gc_stats().live_handles, 1);
}

/// Ids issued by many VMs at once, from several threads, are all distinct.
#[test]
fn ids_are_distinct_across_threads() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let mut ids = Vec::new();
                for _ in 0..20 {
                    let mut vm = vm();
                    for i in 0..300 {
                        let obj = vm.execute("make", &[Val::I64(i)]).unwrap();
                        ids.push(obj.handle().unwrap().id());
                        if i % 2 == 0 {
                            vm.release(&obj).unwrap();
                        }
                    }
                }
                ids
            })
        })
        .collect();
    let mut all = std::collections::HashSet::new();
    for t in threads {
        for id in t.join().unwrap() {
            assert!(all.insert(id), "id {id} issued twice");
        }
    }
    assert_eq!(all.len(), 4 * 20 * 300);
}

/// The C test: 1 000 000 `stoffel_create_vm` in one process through the real library
/// (`tests/c/ids.c`).
#[test]
fn one_million_vms_through_the_c_api() {
    let start = Instant::now();
    let out = common::build_and_run_c("ids");
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tests/c/ids.c failed ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}(wall {elapsed:?})");
    assert!(stdout.contains("ids: vms=1000000 "), "{stdout}");
    assert!(stdout.contains("ids: all "), "{stdout}");
}
