//! Messages and codes name the limit in force when a run stopped (issue 18, item 12): a host
//! function that changes the instruction limit mid-run does not change the budget of the run
//! already going, and the error names that run's limit (it once named the new, unlimited one:
//! "instruction limit of 18446744073709551615 exhausted").

use stoffel_vm::{RuntimeErrorKind, Val, Vm, VmError};

const SPIN: &str = "
.function spin
    CALL lift
top:
    JMP top
";

#[test]
fn lifting_the_limit_mid_run_keeps_the_runs_budget_and_names_it() {
    let mut vm = Vm::new();
    vm.load_assembly(SPIN).unwrap();
    vm.register_function("lift", |vm, _| {
        vm.set_instruction_limit(None);
        Ok(Val::Unit)
    });
    vm.set_instruction_limit(Some(1_000));
    match vm.execute("spin", &[]) {
        Err(VmError::Runtime(e)) => {
            assert_eq!(e.kind, RuntimeErrorKind::FuelExhausted(1_000), "{e}");
            assert!(
                e.to_string()
                    .contains("instruction limit of 1000 exhausted"),
                "{e}"
            );
        }
        other => panic!("expected the run's limit to stop it, got {other:?}"),
    }
    // The next run has the new setting (no limit): give it a finite loop to finish.
    vm.load_assembly(
        ".function count(n)\n LDI r1, 0\n LDI r2, 1\ntop:\n CMP r1, r0\n JMPEQ done\n ADD r1, r1, r2\n JMP top\ndone:\n RET r1\n",
    )
    .unwrap();
    assert_eq!(
        vm.call::<Val>("count", &[Val::I64(5_000)]).unwrap(),
        Val::I64(5_000)
    );
}

#[test]
fn lowering_the_limit_mid_run_applies_from_the_next_run() {
    let mut vm = Vm::new();
    vm.load_assembly(SPIN).unwrap();
    vm.register_function("lift", |vm, _| {
        vm.set_instruction_limit(Some(10));
        Ok(Val::Unit)
    });
    vm.set_instruction_limit(Some(50_000));
    match vm.execute("spin", &[]) {
        Err(VmError::Runtime(e)) => {
            assert_eq!(e.kind, RuntimeErrorKind::FuelExhausted(50_000), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match vm.execute("spin", &[]) {
        Err(VmError::Runtime(e)) => assert_eq!(e.kind, RuntimeErrorKind::FuelExhausted(10), "{e}"),
        other => panic!("{other:?}"),
    }
}
