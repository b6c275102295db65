//! `include/stoffel_vm.h` must be exactly what cbindgen generates from the current source.
//! To regenerate after changing the C API: `STOFFEL_BLESS_HEADER=1 cargo test --test header`.

use std::path::Path;

fn generate() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(root).join("cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn checked_in_header_matches_a_fresh_generation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/stoffel_vm.h");
    let fresh = generate();
    if std::env::var_os("STOFFEL_BLESS_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/stoffel_vm.h is stale: run `STOFFEL_BLESS_HEADER=1 cargo test --test header`"
    );
}
