//! The hand-written `examples/*.sasm` programs assemble, mean what their comments say, and
//! round-trip through the disassembler.

use std::path::PathBuf;

use stoffel_vm::asm::{assemble, disassemble, looks_like_assembly};
use stoffel_vm::program::{Constant, Instruction, Program};

const HELLO: &str = include_str!("../examples/hello.sasm");
const FIB: &str = include_str!("../examples/fib.sasm");
const OBJECTS: &str = include_str!("../examples/objects.sasm");
const CLOSURES: &str = include_str!("../examples/closures.sasm");

fn assembled(source: &str) -> Program {
    match assemble(source) {
        Ok(program) => program,
        Err(e) => panic!("example does not assemble: {e}"),
    }
}

fn callee_names(program: &Program) -> Vec<&str> {
    program.callees().iter().map(String::as_str).collect()
}

#[test]
fn every_sasm_example_assembles_and_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("examples directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("sasm") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("readable example");
        assert!(looks_like_assembly(source.as_bytes()), "{}", path.display());
        let program = assemble(&source)
            .unwrap_or_else(|e| panic!("{} does not assemble: {e}", path.display()));
        assert!(
            program.function("main").is_some(),
            "{} has no main",
            path.display()
        );
        let text = disassemble(&program);
        assert_eq!(assemble(&text), Ok(program), "{}", path.display());
        // The disassembler's output is a fixed point.
        assert_eq!(disassemble(&assemble(&text).expect("reassembles")), text);
        count += 1;
    }
    assert!(
        count >= 4,
        "expected at least the four examples, found {count}"
    );
}

#[test]
fn hello_prints_a_string_constant() {
    let program = assembled(HELLO);
    assert_eq!(program.functions().len(), 1);
    let main = program.function("main").expect("main");
    assert_eq!(main.register_count, 2);
    assert!(main.params.is_empty());
    assert_eq!(callee_names(&program), ["print"]);
    assert_eq!(
        program.constants(),
        [Constant::String("Hello, world!".into())]
    );
    assert_eq!(
        main.code,
        [
            Instruction::Ldi {
                dst: 1,
                constant: 0
            },
            Instruction::PushArg { src: 1 },
            Instruction::Call { callee: 0 },
            Instruction::Ret { src: 0 },
        ]
    );
}

#[test]
fn fib_is_recursive_with_a_resolved_label() {
    let program = assembled(FIB);
    let names: Vec<&str> = program
        .functions()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["fib", "main"]);
    let fib = program.function("fib").expect("fib");
    assert_eq!(fib.params, ["n"]);
    assert_eq!(fib.register_count, 4);
    assert_eq!(fib.frame_size(), 4);
    assert_eq!(fib.labels.len(), 1);
    assert_eq!(fib.labels[0].name, "small");
    assert_eq!(fib.labels[0].target as usize, fib.code.len() - 1);
    assert_eq!(fib.code[0], Instruction::Mov { dst: 1, src: 0 });
    assert_eq!(fib.code[3], Instruction::JmpLt { label: 0 });
    assert_eq!(fib.label_target(0), 15);
    assert_eq!(callee_names(&program), ["fib"]);
    let main = program.function("main").expect("main");
    assert!(
        main.code
            .iter()
            .any(|i| matches!(i, Instruction::Ldi { .. }))
    );
    assert!(program.constants().contains(&Constant::I64(30)));
    assert_eq!(main.code.last(), Some(&Instruction::Ret { src: 0 }));
}

#[test]
fn objects_uses_the_object_and_array_builtins() {
    let program = assembled(OBJECTS);
    let callees = callee_names(&program);
    for builtin in [
        "create_object",
        "set_field",
        "get_field",
        "print",
        "create_array",
        "array_push",
        "array_length",
    ] {
        assert!(callees.contains(&builtin), "missing CALL {builtin}");
    }
    assert!(
        program
            .constants()
            .contains(&Constant::String("Alice".into()))
    );
    assert!(program.constants().contains(&Constant::I64(30)));
    let main = program.function("main").expect("main");
    assert_eq!(main.register_count, 8);
    assert_eq!(main.code.last(), Some(&Instruction::Ret { src: 7 }));
}

#[test]
fn closures_has_a_counter_and_its_increment() {
    let program = assembled(CLOSURES);
    let make_counter = program.function("make_counter").expect("make_counter");
    assert_eq!(make_counter.params, ["count"]);
    let increment = program.function("increment").expect("increment");
    assert_eq!(increment.params, ["step"]);
    assert_eq!(increment.parent.as_deref(), Some("make_counter"));
    let callees = callee_names(&program);
    for builtin in [
        "create_closure",
        "call_closure",
        "get_upvalue",
        "set_upvalue",
        "make_counter",
        "print",
    ] {
        assert!(callees.contains(&builtin), "missing CALL {builtin}");
    }
    for text in ["increment", "count"] {
        assert!(program.constants().contains(&Constant::String(text.into())));
    }
    assert!(program.constants().contains(&Constant::I64(5)));
    assert!(program.constants().contains(&Constant::I64(7)));
}

#[test]
fn syntax_overview_in_module_docs_assembles() {
    let module = include_str!("../src/asm/mod.rs");
    let mut block = String::new();
    let mut inside = false;
    for line in module.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if doc.starts_with("```") {
            if inside {
                break;
            }
            inside = true;
            continue;
        }
        if inside {
            block.push_str(doc);
            block.push('\n');
        }
    }
    assert!(block.contains(".function"), "no syntax block found");
    let program = assemble(&block).unwrap_or_else(|e| panic!("doc block: {e}\n{block}"));
    let add = program.function("add").expect("add");
    assert_eq!(add.params, ["a", "b"]);
    assert_eq!(add.register_count, 8);
    assert_eq!(add.upvalues, ["x", "y"]);
    assert_eq!(add.parent.as_deref(), Some("outer"));
    let labels: Vec<&str> = add.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(labels, ["start", "loop", "end"]);
    assert_eq!(add.labels[2].target as usize, add.code.len());
    assert_eq!(assemble(&disassemble(&program)), Ok(program));
}
