//! The collector runs on the C API's by-name calls, through the real `libstoffel_vm.so`: the
//! Python bindings' pattern (`stoffel_execute(vm, "create_object", &r)` then
//! `stoffel_release_value`, a million times, never calling `stoffel_gc_collect`), a
//! registered C function returning a string executed by name, the heap API and foreign
//! objects with no execution. `tests/c/collect_by_name.c` checks the figures itself (heap
//! and RSS flat, collections happening, ids and finalizers accounted for); this runs it
//! (compiled with gcc, in its own process so its RSS is its own) and shows its figures.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn python_bindings_pattern_collects_through_the_c_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = common::lib_dir();
    let dir = std::env::temp_dir().join(format!("stoffel_c_collect_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("collect_by_name");
    let built = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-I"])
        .arg(root.join("include"))
        .arg(root.join("tests/c/collect_by_name.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lstoffel_vm")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("cannot run gcc");
    assert!(
        built.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    // Cargo's LD_LIBRARY_PATH lists `target/<profile>` before `deps`, and the copy of the
    // library there is only refreshed by `cargo build`: it would win over the rpath and the
    // test would run a stale library.
    let out = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run collect_by_name");
    let _ = std::fs::remove_dir_all(&dir);
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
