//! `include/install.sh` installs the library, header and `stoffel_vm.pc`; a C program then
//! builds with nothing but `pkg-config --cflags --libs stoffel_vm` and runs.

mod common;

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pkg_config_finds_the_installed_library() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prefix =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prefix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    run(Command::new(root.join("include/install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .arg("--lib-dir")
        .arg(common::lib_dir()));
    let pc_path = prefix.join("lib/pkgconfig");
    let flags = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "stoffel_vm"])
        .env("PKG_CONFIG_PATH", &pc_path));
    assert!(flags.contains("-lstoffel_vm"), "{flags}");
    let version = run(Command::new("pkg-config")
        .args(["--modversion", "stoffel_vm"])
        .env("PKG_CONFIG_PATH", &pc_path));
    assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));

    let src = prefix.join("hello.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <string.h>
#include <stoffel_vm.h>
int main(void) {
    VMHandle vm = stoffel_create_vm();
    if (!vm) return 1;
    if (stoffel_load_assembly(vm, ".function main\n LDI r1, 41\n LDI r2, 1\n ADD r3, r1, r2\n RET r3\n") != 0) return 2;
    StoffelValue r;
    if (stoffel_execute(vm, "main", &r) != 0 || r.value_type != STOFFEL_VALUE_INT) return 3;
    printf("%s %lld\n", stoffel_version(), (long long)r.data.int_val);
    stoffel_destroy_vm(vm);
    return 0;
}
"#,
    )
    .unwrap();
    let exe = prefix.join("hello");
    let mut gcc = Command::new("gcc");
    gcc.arg("-std=c99")
        .arg("-Wall")
        .arg("-Werror")
        .arg(&src)
        .arg("-o")
        .arg(&exe);
    gcc.args(flags.split_whitespace());
    gcc.arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
    run(&mut gcc);
    let output = run(&mut Command::new(&exe));
    assert_eq!(output, format!("{} 42\n", env!("CARGO_PKG_VERSION")));
}
