//! A host function (or C callback) that returns one of its arguments hands over the
//! argument's own reference: a reference it added with `retain` stays its own. Found by the
//! `c_api` fuzz target: a callback that retained an argument id and returned it lost the
//! retained id (the VM released the id twice, once as the handed-over result and once as an
//! argument), so the host's later `stoffel_release_value` got `STOFFEL_ERROR_INVALID_HANDLE`
//! and `live_handles` was one short.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::ffi::foreign::stoffel_register_foreign_function_ex;
use stoffel_vm::ffi::values::{stoffel_create_object, stoffel_release_value, stoffel_retain_value};
use stoffel_vm::ffi::vm::{
    stoffel_create_vm, stoffel_destroy_vm, stoffel_execute_with_args, stoffel_gc_stats,
    stoffel_load_assembly,
};
use stoffel_vm::ffi::{
    STOFFEL_ERROR_INVALID_HANDLE, STOFFEL_OK, StoffelGcStats, StoffelValue, StoffelValueData,
    StoffelValueType, VMHandle,
};
use stoffel_vm::{Val, Vm};

const PROGRAM: &str = "
.function main
    CALL create_object
    PUSHARG r0
    CALL keep
    RET r0
";

#[test]
fn a_host_function_returning_a_retained_argument_keeps_its_reference() {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM).unwrap();
    let kept: Arc<Mutex<Option<Val>>> = Arc::default();
    let slot = kept.clone();
    vm.register_function("keep", move |vm, args| {
        vm.retain(&args[0]).unwrap();
        *slot.lock().unwrap() = Some(args[0].clone());
        Ok(args[0].clone())
    });
    let result = vm.execute("main", &[]).unwrap();
    let kept = kept.lock().unwrap().clone().unwrap();
    assert_eq!(
        vm.gc_stats().live_handles,
        2,
        "the result and the retained argument"
    );
    vm.release(&result).unwrap();
    vm.release(&kept)
        .expect("the retained argument is still the host's");
    assert_eq!(vm.gc_stats().live_handles, 0);

    // Returned as is without a retain: nothing is left behind.
    vm.register_function("keep", |_vm, args| Ok(args[0].clone()));
    let result = vm.execute("main", &[]).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 1, "only the result");
    vm.release(&result).unwrap();

    // Executed by name (the host gets ids of its own): the same.
    vm.register_function("keep", |vm, args| {
        vm.retain(&args[0]).unwrap();
        Ok(args[0].clone())
    });
    let obj = vm.create_object().unwrap();
    let result = vm.execute("keep", std::slice::from_ref(&obj)).unwrap();
    assert_eq!(
        vm.gc_stats().live_handles,
        3,
        "ours, the result, the retained argument"
    );
    vm.release(&obj).unwrap();
    vm.release(&result).unwrap();
    assert_eq!(vm.gc_stats().live_handles, 1, "the retained argument");
}

thread_local! {
    static KEPT: Mutex<Vec<StoffelValue>> = const { Mutex::new(Vec::new()) };
}

/// Retains its first argument, keeps it, and returns it.
unsafe extern "C" fn keep(
    vm: VMHandle,
    _user: *mut c_void,
    args: *const StoffelValue,
    n: c_int,
    out: *mut StoffelValue,
) -> c_int {
    assert_eq!(n, 1);
    // SAFETY: one readable argument; `out` is writable.
    unsafe {
        let arg = *args;
        assert_eq!(stoffel_retain_value(vm, &arg), STOFFEL_OK);
        KEPT.with(|k| k.lock().unwrap().push(arg));
        out.write(arg);
    }
    0
}

fn live_handles(vm: VMHandle) -> usize {
    let mut s = StoffelGcStats::default();
    // SAFETY: writable.
    assert_eq!(unsafe { stoffel_gc_stats(vm, &mut s) }, STOFFEL_OK);
    s.live_handles
}

#[test]
fn a_c_callback_returning_a_retained_argument_keeps_its_reference() {
    let vm = stoffel_create_vm();
    let unit = StoffelValue {
        value_type: StoffelValueType::STOFFEL_VALUE_UNIT,
        data: StoffelValueData { int_val: 0 },
    };
    let source = std::ffi::CString::new(PROGRAM).unwrap();
    // SAFETY: valid strings, pointers to locals, a callback of the right type.
    unsafe {
        assert_eq!(stoffel_load_assembly(vm, source.as_ptr()), STOFFEL_OK);
        let rc = stoffel_register_foreign_function_ex(
            vm,
            c"keep".as_ptr(),
            Some(keep),
            std::ptr::null_mut(),
        );
        assert_eq!(rc, STOFFEL_OK);

        // Called from bytecode.
        let mut result = unit;
        let rc = stoffel_execute_with_args(vm, c"main".as_ptr(), std::ptr::null(), 0, &mut result);
        assert_eq!(rc, STOFFEL_OK);
        let kept = KEPT.with(|k| k.lock().unwrap().pop()).unwrap();
        assert_eq!(live_handles(vm), 2, "the result and the retained argument");
        assert_eq!(stoffel_release_value(vm, &result), STOFFEL_OK);
        assert_eq!(
            stoffel_release_value(vm, &kept),
            STOFFEL_OK,
            "the retained id is ours"
        );
        assert_eq!(
            stoffel_release_value(vm, &kept),
            STOFFEL_ERROR_INVALID_HANDLE
        );
        assert_eq!(live_handles(vm), 0);

        // Executed by name.
        let mut obj = unit;
        assert_eq!(stoffel_create_object(vm, &mut obj), STOFFEL_OK);
        let rc = stoffel_execute_with_args(vm, c"keep".as_ptr(), &obj, 1, &mut result);
        assert_eq!(rc, STOFFEL_OK);
        let kept = KEPT.with(|k| k.lock().unwrap().pop()).unwrap();
        assert_eq!(
            live_handles(vm),
            3,
            "ours, the result, the retained argument"
        );
        for v in [obj, result, kept] {
            assert_eq!(stoffel_release_value(vm, &v), STOFFEL_OK);
        }
        assert_eq!(live_handles(vm), 0);
    }
    stoffel_destroy_vm(vm);
}
