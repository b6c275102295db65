//! Reloading code: replaced functions and their constants are freed, loads are not charged to
//! the memory limit past what is live, and a reload from inside a running execution leaves
//! that execution's code alone (issue 18, item 5). Its own test binary: it measures RSS.

use stoffel_vm::{Val, Vm};

/// A 3-function program whose constants differ per `generation` (strings and numbers).
fn program(generation: usize) -> String {
    format!(
        r#"
.function answer
    LDI r1, {generation}
    RET r1
.function greet
    LDI r1, "hello from generation {generation}, with a string long enough to be a heap allocation of its own"
    RET r1
.function spin(n)
    LDI r1, 0
    LDI r2, 1
top:
    CMP r1, r0
    JMPEQ done
    ADD r1, r1, r2
    JMP top
done:
    RET r1
"#
    )
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn twelve_thousand_reloads_free_what_they_replace() {
    let mut vm = Vm::new();
    vm.set_memory_limit(Some(1 << 20));
    for generation in 0..1_000 {
        vm.load_assembly(&program(generation)).unwrap();
    }
    vm.collect_all();
    let rss_before = rss_kib();
    let heap_before = vm.gc_stats().heap_bytes;
    for generation in 1_000..12_000 {
        vm.load_assembly(&program(generation)).unwrap();
        if generation % 1_000 == 0 {
            // The latest definitions are the ones that run.
            assert_eq!(
                vm.execute("answer", &[]).unwrap(),
                Val::I64(generation as i64)
            );
        }
    }
    vm.collect_all();
    let rss_after = rss_kib();
    let heap_after = vm.gc_stats().heap_bytes;
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB over 11,000 reloads"
    );
    assert!(
        heap_after <= heap_before * 2 + 64 * 1024,
        "heap bytes grew from {heap_before} to {heap_after}"
    );
    // Only programs that still define something are kept.
    assert!(
        vm.programs().count() <= 128,
        "{} programs kept",
        vm.programs().count()
    );
    // The 1 MiB limit still leaves room to run: a loop longer than a step.
    assert_eq!(
        vm.call::<Val>("spin", &[Val::I64(100_000)]).unwrap(),
        Val::I64(100_000)
    );
    match vm.execute("greet", &[]).unwrap() {
        Val::String(s) => assert!(s.contains("generation 11999"), "{s}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reload_inside_an_execution_leaves_the_running_code_alone() {
    let mut vm = Vm::new();
    vm.load_assembly(
        r#"
.function main
    LDI r1, "before"
    CALL reload
    LDI r2, 40
    LDI r3, 2
    ADD r4, r2, r3
    RET r4
.function answer
    LDI r1, 1
    RET r1
"#,
    )
    .unwrap();
    vm.register_function("reload", |vm, _| {
        // Replace `main` (running now) and `answer`, many times over.
        for generation in 0..200 {
            vm.load_assembly(&format!(
                ".function main\n LDI r1, -1\n RET r1\n.function answer\n LDI r1, {generation}\n RET r1\n"
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(Val::Unit)
    });
    // The running `main` finishes its own code.
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(42));
    // Afterwards the new definitions run, and a top-level load frees the replaced ones.
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(-1));
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(199));
    for generation in 0..100 {
        vm.load_assembly(&format!(
            ".function answer\n LDI r1, {generation}\n RET r1\n"
        ))
        .unwrap();
    }
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(99));
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(-1));
    assert!(vm.programs().count() <= 128);
}

#[test]
fn functions_rebound_to_host_functions_are_freed_and_the_rest_keep_working() {
    let mut vm = Vm::new();
    for generation in 0..500 {
        vm.load_assembly(&program(generation)).unwrap();
        // `answer` becomes a host function each time: its bytecode is dead at once.
        vm.register_function("answer", |_, _| Ok(Val::I64(7)));
    }
    assert_eq!(vm.execute("answer", &[]).unwrap(), Val::I64(7));
    assert_eq!(
        vm.call::<Val>("spin", &[Val::I64(10)]).unwrap(),
        Val::I64(10)
    );
    match vm.execute("greet", &[]).unwrap() {
        Val::String(s) => assert!(s.contains("generation 499"), "{s}"),
        other => panic!("{other:?}"),
    }
    assert!(vm.programs().count() <= 128);
}
