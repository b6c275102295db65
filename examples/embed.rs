//! Embedding stoffel-vm in a Rust program: load code, register a host function with captured
//! state, execute with arguments, work with heap values through handles, set limits.
//!
//! Run with `cargo run --example embed`.

use std::cell::Cell;
use std::rc::Rc;

use stoffel_vm::{HostError, Val, Vm, VmError};

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

    // A host function with its own state: counts calls, prints its arguments.
    let calls = Rc::new(Cell::new(0));
    let counter = calls.clone();
    vm.register_function("log", move |_vm, args| {
        counter.set(counter.get() + 1);
        match args {
            [Val::String(name), Val::I64(score)] => {
                println!("log #{}: {name} scored {score}", counter.get());
                Ok(Val::Unit)
            }
            other => Err(HostError::new(format!(
                "log: unexpected arguments {other:?}"
            ))),
        }
    });

    // Execute with arguments; the object comes back as a handle we own.
    let record = vm.execute("make_record", &[Val::from("ada"), Val::I64(21)])?;
    let score = vm.get_field(&record, &Val::from("score"))?;
    println!("record {} has score {score:?}", vm.display(&record)?);
    vm.release(&record)?; // now the collector may reclaim it

    // Limits turn runaway code into an error; the VM stays usable.
    vm.set_instruction_limit(Some(1_000_000));
    match vm.execute("spin", &[]) {
        Err(e) => println!("spin stopped: {e}"),
        Ok(v) => println!("spin returned {v:?}?"),
    }
    vm.collect_all();
    println!("host calls: {}, gc: {:?}", calls.get(), vm.gc_stats());
    Ok(())
}
