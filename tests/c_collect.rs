//! The collector runs on the C API's by-name calls, through the real `libstoffel_vm.so`: the
//! Python bindings' pattern (`stoffel_execute(vm, "create_object", &r)` then
//! `stoffel_release_value`, a million times, never calling `stoffel_gc_collect`), a
//! registered C function returning a string executed by name, the heap API and foreign
//! objects with no execution. `tests/c/collect_by_name.c` checks the figures itself (heap
//! and RSS flat, collections happening, ids and finalizers accounted for); this runs it
//! (compiled with gcc, in its own process so its RSS is its own) and shows its figures.

mod common;

#[test]
fn python_bindings_pattern_collects_through_the_c_api() {
    let out = common::build_and_run_c("collect_by_name");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "collect_by_name exited with {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("collect_by_name: all "), "{stdout}");
}
