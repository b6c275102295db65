//! Handles that release themselves (issue 17 item 3): `Rooted` values need no manual
//! release, clones share one reference, and `Vm::same` compares identity.

use stoffel_vm::{Rooted, Val, Vm};

#[test]
fn objects_created_and_dropped_in_a_loop_leave_no_live_handle() {
    let mut vm = Vm::new();
    for i in 0..100_000i64 {
        let obj: Rooted = vm.call("create_object", ()).unwrap();
        vm.set(&obj, "i", i).unwrap();
    }
    assert_eq!(vm.gc_stats().live_handles, 0);
    // The queued ids are really released at the next call, and the objects collected.
    let probe: Val = vm.call("create_object", ()).unwrap();
    vm.release(&probe).unwrap();
    vm.collect_all();
    let stats = vm.gc_stats();
    assert_eq!(stats.live_handles, 0);
    assert!(
        stats.heap_bytes < 64 * 1024,
        "100k dropped objects still hold {} heap bytes",
        stats.heap_bytes
    );
}

#[test]
fn clones_share_one_reference_and_the_last_drop_releases_it() {
    let mut vm = Vm::new();
    let array: Rooted = vm.call("create_array", ()).unwrap();
    vm.call::<Val>("array_push", (&array, 7i64)).unwrap();
    let copy = array.clone();
    assert_eq!(vm.gc_stats().live_handles, 1, "one reference for both");
    drop(array);
    vm.collect_all();
    assert_eq!(
        vm.from_val::<Vec<i64>>(&copy).unwrap(),
        [7],
        "the clone keeps it alive"
    );
    let id = copy.val().clone();
    drop(copy);
    assert_eq!(vm.gc_stats().live_handles, 0);
    vm.collect_all();
    assert!(vm.check(&id).is_err(), "released: the id is stale now");
}

#[test]
fn rooted_values_pass_as_arguments_and_into_containers_without_leaking() {
    let mut vm = Vm::new();
    vm.load_assembly(".function id(x) registers 1\n    RET r0\n")
        .unwrap();
    let obj: Rooted = vm.call("create_object", ()).unwrap();
    let back: Rooted = vm.call("id", (&obj,)).unwrap();
    assert!(vm.same(&obj, &back).unwrap());
    let list = vm.to_val(vec![obj.clone(), back.clone()]).unwrap();
    let list = vm.root(list);
    assert_eq!(vm.call::<i64>("array_length", (&list,)).unwrap(), 2);
    drop((obj, back, list));
    assert_eq!(vm.gc_stats().live_handles, 0);
}

#[test]
fn a_rooted_value_may_outlive_its_vm() {
    let kept;
    {
        let mut vm = Vm::new();
        kept = vm.call::<Rooted>("create_object", ()).unwrap();
    }
    // Dropping it now queues the id on a queue nobody drains: nothing else happens.
    drop(kept);
}

#[test]
fn identity_compares_objects_not_ids() {
    let mut vm = Vm::new();
    let obj = vm.create_object().unwrap();
    vm.set_field(&obj, &Val::from("me"), &obj).unwrap();
    let again = vm.get_field(&obj, &Val::from("me")).unwrap();
    assert_ne!(obj, again, "two ids");
    assert!(vm.same(&obj, &again).unwrap(), "one object");
    let other = vm.create_object().unwrap();
    assert!(!vm.same(&obj, &other).unwrap());
    assert!(!vm.same(&obj, &Val::I64(1)).unwrap());
    assert!(vm.same(&Val::from("s"), &Val::from("s")).unwrap());
    for v in [&obj, &again, &other] {
        vm.release(v).unwrap();
    }
    assert!(
        vm.same(&obj, &obj).is_err(),
        "a released id is an error, not false"
    );
}
