//! MPC programs get one clear refusal (issue 13 item 4): a manifest that declares client
//! inputs or outputs is refused at load, with nothing loaded, from bytecode and from assembly;
//! a program without client IO loads as before.

use stoffel_vm::{ApiError, Val, Vm, VmError, stfl};

const MPC_PROGRAM: &str = "
.client 0 inputs(int<64>) outputs(int<64>)
.function main registers 2
    LDI r0, 1
    RET r0
";

fn assert_refused(e: VmError) {
    assert!(
        matches!(e, VmError::Api(ApiError::NeedsMpc { clients: 1 })),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("needs an MPC engine, which stoffel-vm does not provide"),
        "{text}"
    );
}

#[test]
fn a_manifest_with_client_io_is_refused_at_load_and_nothing_is_loaded() {
    let mut vm = Vm::new();
    assert_refused(vm.load_assembly(MPC_PROGRAM).unwrap_err());
    assert!(!vm.has_function("main"), "a refused load changes nothing");

    // The same program as a v9 file: the refusal comes from the VM, not the loader, so the
    // file still disassembles.
    let bytes = stfl::write(&stoffel_vm::asm::assemble(MPC_PROGRAM).unwrap()).unwrap();
    assert!(stfl::load(&bytes).is_ok());
    assert_refused(vm.load_bytecode(&bytes).unwrap_err());
    assert!(!vm.has_function("main"));

    // The VM stays usable.
    vm.load_assembly(".function main registers 1\n    LDI r0, 7\n    RET r0\n")
        .unwrap();
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(7));
}

#[test]
fn a_manifest_without_clients_loads() {
    let mut vm = Vm::new();
    let source = MPC_PROGRAM.replace(
        ".client 0 inputs(int<64>) outputs(int<64>)\n",
        ".backend avss\n",
    );
    vm.load_assembly(&source).unwrap();
    assert_eq!(vm.execute("main", &[]).unwrap(), Val::I64(1));
}
