//! The end of the process-wide id counter: issuance stops with a clean error at `u64::MAX`
//! and never wraps to reuse an id. One test in its own process, because it moves the counter
//! (with the hidden test hook) for every VM in the process.

use stoffel_vm::{
    __advance_handle_counter_for_tests, ApiError, Handle, HandleError, Val, Vm, VmError,
};

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

fn exhausted() -> VmError {
    VmError::Api(ApiError::Handle(HandleError::IdsExhausted))
}

fn id(v: &Val) -> u64 {
    v.handle().unwrap().id()
}

fn v(vm: &mut Vm, obj: &Val) -> Val {
    vm.get_field(obj, &Val::from("v")).unwrap()
}

#[test]
fn issuance_stops_cleanly_at_the_end_of_the_counter_and_never_wraps() {
    // A VM that took its block of ids before the jump keeps issuing from it.
    let mut early = vm();
    let early_first = early.execute("make", &[Val::I64(-1)]).unwrap();
    assert!(id(&early_first) < 1 << 20);

    // Ids across the 32-bit and the 63-bit boundaries (no narrowing anywhere): each VM gets
    // its ids in order, they name its values, and the other VMs refuse them.
    for boundary in [1u64 << 32, 1 << 63] {
        __advance_handle_counter_for_tests(boundary - 2);
        let mut a = vm();
        let mut b = vm();
        let objs: Vec<Val> = (0..4)
            .map(|i| a.execute("make", &[Val::I64(i)]).unwrap())
            .collect();
        let ids: Vec<u64> = objs.iter().map(id).collect();
        assert_eq!(ids, [boundary - 2, boundary - 1, boundary, boundary + 1]);
        let theirs = b.execute("make", &[Val::I64(100)]).unwrap();
        assert!(id(&theirs) >= boundary - 2 + 1024, "b took the next block");
        for (i, obj) in objs.iter().enumerate() {
            assert_eq!(v(&mut a, obj), Val::I64(i as i64));
            assert_eq!(
                b.get_field(obj, &Val::from("v")).unwrap_err(),
                VmError::Api(ApiError::Handle(HandleError::NotLive(id(obj))))
            );
            assert!(early.release(obj).is_err());
        }
        assert!(a.get_field(&theirs, &Val::from("v")).is_err());
        assert_eq!(v(&mut b, &theirs), Val::I64(100));
    }

    // Moving the counter back does nothing; forward, to three ids before the end.
    __advance_handle_counter_for_tests(u64::MAX - 3);
    __advance_handle_counter_for_tests(5);

    // A new VM gets the last three ids (a block cut short: u64::MAX itself is never issued).
    let mut late = vm();
    let last: Vec<Val> = (0..3)
        .map(|i| late.execute("make", &[Val::I64(i)]).unwrap())
        .collect();
    let ids: Vec<u64> = last.iter().map(id).collect();
    assert_eq!(ids, [u64::MAX - 3, u64::MAX - 2, u64::MAX - 1]);

    // Then issuing fails, by every path that would make an id, with nothing changed.
    let err = late.create_object().unwrap_err();
    assert_eq!(err, exhausted());
    assert_eq!(
        err.to_string(),
        "no handle ids left: this process has used every id up to 2^64 - 2"
    );
    assert_eq!(late.create_array().unwrap_err(), exhausted());
    let err = late.execute("make", &[Val::I64(7)]).unwrap_err();
    assert!(err.to_string().contains("no handle ids left"), "{err}");
    assert_eq!(late.gc_stats().live_handles, 3);
    for (i, obj) in last.iter().enumerate() {
        assert_eq!(v(&mut late, obj), Val::I64(i as i64));
    }
    // The VM still runs code that needs no new id.
    late.load_assembly(".function add(a, b)\n ADD r2, r0, r1\n RET r2\n")
        .unwrap();
    assert_eq!(
        late.execute("add", &[Val::I64(40), Val::I64(2)]).unwrap(),
        Val::I64(42)
    );

    // Releasing does not bring ids back: still exhausted, and the released id stays dead.
    late.release(&last[0]).unwrap();
    assert_eq!(late.create_object().unwrap_err(), exhausted());
    assert_eq!(
        late.get_field(&last[0], &Val::from("v")).unwrap_err(),
        VmError::Api(ApiError::Handle(HandleError::NotLive(u64::MAX - 3)))
    );
    // The counter did not wrap: a brand-new VM gets no id either (not 1, not anything).
    let mut fresh = vm();
    assert_eq!(fresh.create_object().unwrap_err(), exhausted());
    assert_eq!(fresh.gc_stats().live_handles, 0);
    // And the last ids mean nothing to the other VMs.
    for other in [&mut early, &mut fresh] {
        for bad in [u64::MAX - 2, u64::MAX - 1, u64::MAX] {
            let bad = Val::Object(Handle::from_id(bad).unwrap());
            assert_eq!(
                other.get_field(&bad, &Val::from("v")).unwrap_err(),
                VmError::Api(ApiError::Handle(HandleError::NotLive(id(&bad))))
            );
        }
    }

    // The early VM finishes its block (ids in order, all below the jump), then stops too.
    let mut previous = id(&early_first);
    let mut issued = 1;
    let end = loop {
        match early.create_object() {
            Ok(obj) => {
                assert_eq!(id(&obj), previous + 1);
                previous = id(&obj);
                issued += 1;
                early.release(&obj).unwrap();
            }
            Err(e) => break e,
        }
    };
    assert_eq!(end, exhausted());
    assert!((1..=1024).contains(&issued), "{issued} ids from one block");
    assert_eq!(v(&mut early, &early_first), Val::I64(-1));
    assert_eq!(early.gc_stats().live_handles, 1);

    // Moving the counter to the very end changes nothing more.
    __advance_handle_counter_for_tests(u64::MAX);
    assert_eq!(vm().create_object().unwrap_err(), exhausted());
    for (i, obj) in last[1..].iter().enumerate() {
        assert_eq!(v(&mut late, obj), Val::I64(i as i64 + 1));
    }

    // Through the C API, running out of ids is a limit (STOFFEL_ERROR_LIMIT), not a bad id.
    use stoffel_vm::ffi::values::stoffel_create_object;
    use stoffel_vm::ffi::vm::{stoffel_create_vm, stoffel_destroy_vm};
    use stoffel_vm::ffi::{STOFFEL_ERROR_LIMIT, StoffelValue};
    let c_vm = stoffel_create_vm();
    assert!(!c_vm.is_null());
    let mut out = std::mem::MaybeUninit::<StoffelValue>::uninit();
    // SAFETY: `c_vm` is a live VM handle and `out` is writable.
    let rc = unsafe { stoffel_create_object(c_vm, out.as_mut_ptr()) };
    assert_eq!(rc, STOFFEL_ERROR_LIMIT, "ids exhausted is a limit in C");
    stoffel_destroy_vm(c_vm);
}
