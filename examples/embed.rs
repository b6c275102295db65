//! Embedding stoffel-vm in a Rust program: load code, register a typed host function with
//! captured state, call with Rust arguments, read an object's fields as Rust values through
//! a handle that releases itself, set limits.
//!
//! Run with `cargo run --example embed`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use stoffel_vm::{Rooted, Vm, VmError};

const PROGRAM: &str = r#"
; Builds {name: NAME, score: SCORE * 2} and reports it through the host's `log` function.
.function make_record(name, score)
    MOV r5, r0          ; keep the parameters: every CALL overwrites r0
    MOV r6, r1
    CALL create_object
    MOV r1, r0
    LDI r2, "name"
    PUSHARG r1
    PUSHARG r2
    PUSHARG r5
    CALL set_field
    LDI r2, "score"
    LDI r3, 2
    MUL r4, r6, r3
    PUSHARG r1
    PUSHARG r2
    PUSHARG r4
    CALL set_field
    PUSHARG r5
    PUSHARG r4
    CALL log
    RET r1

.function spin
top:
    JMP top
"#;

fn main() -> Result<(), VmError> {
    let mut vm = Vm::new();
    vm.load_assembly(PROGRAM)?;

    // A typed host function with its own state; the VM checks and converts its arguments.
    // (An atomic, so the closure is `Send + Sync`, as the `send` feature requires.)
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    vm.register_fn("log", move |name: String, score: i64| {
        let n = counter.fetch_add(1, Relaxed) + 1;
        println!("log #{n}: {name} scored {score}");
    });

    // Call with Rust arguments; the object comes back as a handle that releases itself.
    let record: Rooted = vm.call("make_record", ("ada", 21i64))?;
    let score: i64 = vm.get(&record, "score")?;
    println!("record {} has score {score}", vm.display(&record)?);
    drop(record); // the collector may now reclaim it

    // Limits turn runaway code into an error; the VM stays usable.
    vm.set_instruction_limit(Some(1_000_000));
    if let Err(e) = vm.call::<()>("spin", ()) {
        println!("spin stopped: {e}");
    }
    vm.collect_all();
    println!(
        "host calls: {}, gc: {:?}",
        calls.load(Relaxed),
        vm.gc_stats()
    );
    Ok(())
}
