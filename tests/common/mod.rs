//! Helpers shared by the test files that drive the built shared library from other languages.

use std::path::PathBuf;

/// The directory of the `libstoffel_vm.so` cargo built for this test run. A test binary is
/// `target/<profile>/deps/<name>-<hash>`; building the tests builds the crate's cdylib into
/// that same `deps` directory (only `cargo build` copies it up to `target/<profile>`, so the
/// copy there may be stale or missing). Falls back to `target/<profile>`.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    let profile = deps
        .parent()
        .expect("test binary is in target/<profile>/deps");
    for dir in [deps, profile] {
        if dir.join("libstoffel_vm.so").is_file() {
            return dir.to_path_buf();
        }
    }
    panic!(
        "libstoffel_vm.so not found in {} or {}: the crate must build a cdylib",
        deps.display(),
        profile.display()
    );
}
