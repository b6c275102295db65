//! Runs every program in `tests/conformance/` (real StoffelLang compiler output) and checks
//! its stdout and result against `expected.tsv`.

mod common;

use common::Case;
use std::sync::Arc;
use std::sync::Mutex;

use stoffel_vm::{Output, Vm};

fn cases() -> Vec<Case> {
    common::expected_cases(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance"
    )))
}

fn run_case(vm: &mut Vm, case: &Case) -> Result<(), String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");
    let bytes = std::fs::read(format!("{dir}/{}.stflb", case.name)).unwrap();
    let captured = Arc::new(Mutex::new(String::new()));
    let sink = captured.clone();
    vm.set_output(Output::Callback(Box::new(move |s| {
        sink.lock().unwrap().push_str(s)
    })));
    vm.load_bytecode(&bytes)
        .map_err(|e| format!("{}: load failed: {e}", case.name))?;
    let outcome = vm.execute(&case.entry, &[]);
    let stdout = captured.lock().unwrap().clone();
    if stdout != case.stdout {
        return Err(format!(
            "{}: stdout {:?}, expected {:?}",
            case.name, stdout, case.stdout
        ));
    }
    match (outcome, case.result.as_str()) {
        (Err(_), "<error>") => Ok(()),
        (Ok(v), "<error>") => Err(format!("{}: expected an error, got {v:?}", case.name)),
        (Err(e), expected) => Err(format!("{}: expected {expected}, got error {e}", case.name)),
        (Ok(v), expected) => {
            let shown = vm.display(&v).unwrap();
            if shown == expected {
                Ok(())
            } else {
                Err(format!(
                    "{}: result {shown}, expected {expected}",
                    case.name
                ))
            }
        }
    }
}

#[test]
fn every_conformance_program_gives_the_expected_output_and_result() {
    let cases = cases();
    assert!(cases.len() >= 25, "expected.tsv lost rows: {}", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run_case(&mut Vm::new(), case).err())
        .collect();
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn every_program_gives_the_same_answer_when_run_again_on_the_same_vm() {
    // Each execution starts with fresh frames, and an error leaves nothing behind, so a
    // second load + run on the same VM (the load replaces `main` with itself) must agree.
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|case| {
            let mut vm = Vm::new();
            run_case(&mut vm, case)
                .and_then(|()| run_case(&mut vm, case))
                .err()
        })
        .collect();
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn a_name_missing_from_one_program_is_found_once_another_defines_it() {
    // Calls are late-bound through one name table, as in StoffelVM: the stale shipped import
    // program calls `add`, which it does not define; after loading a program that defines
    // `add`, the same call succeeds.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");
    let stale = std::fs::read(format!("{dir}/shipped_imports_main_with_import.stflb")).unwrap();
    let mut vm = Vm::new();
    vm.load_bytecode(&stale).unwrap();
    assert!(vm.execute("main", &[]).is_err());
    vm.load_assembly(
        ".function add(a, b)\n ADD r2, r0, r1\n RET r2\n\
         .function multiply(a, b)\n MUL r2, r0, r1\n RET r2\n",
    )
    .unwrap();
    assert_eq!(vm.execute("main", &[]).unwrap(), stoffel_vm::Val::I64(23));
}
