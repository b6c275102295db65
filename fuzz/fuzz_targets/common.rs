//! Shared by the fuzz targets: a generator of *valid* programs (so the interpreter, not only
//! the loader, gets exercised) and a runner that executes every function under limits.

#![allow(dead_code)]

use arbitrary::Unstructured;
use stoffel_vm::program::{
    Constant, FunctionParts, FunctionType, FunctionTypes, Instruction, Label, Program,
};
use stoffel_vm::{Val, Vm};

/// Names a generated program may call: its own functions (f0..), builtins, and a missing one.
const BUILTINS: [&str; 13] = [
    "print",
    "type",
    "create_object",
    "create_array",
    "get_field",
    "set_field",
    "array_length",
    "array_push",
    "create_closure",
    "call_closure",
    "get_upvalue",
    "set_upvalue",
    "missing_function",
];

fn constant(u: &mut Unstructured<'_>) -> arbitrary::Result<Constant> {
    Ok(match u.int_in_range(0..=11u8)? {
        0 => Constant::Unit,
        1 => Constant::I64(*u.choose(&[0, 1, -1, 2, 7, 100, i64::MIN, i64::MAX, 63, 64])?),
        2 => Constant::I32(u.arbitrary()?),
        3 => Constant::I16(u.arbitrary()?),
        4 => Constant::I8(u.arbitrary()?),
        5 => Constant::U8(u.arbitrary()?),
        6 => Constant::U16(u.arbitrary()?),
        7 => Constant::U32(u.arbitrary()?),
        8 => Constant::U64(u.arbitrary()?),
        9 => Constant::Float(f64::from_bits(u.arbitrary()?)),
        10 => Constant::Bool(u.arbitrary()?),
        _ => {
            let names = ["f0", "f1", "f2", "x", "a0", "count", ""];
            if u.arbitrary()? {
                Constant::String((*u.choose(&names)?).into())
            } else {
                let s: String = u.arbitrary()?;
                Constant::String(s.chars().take(16).collect::<String>().into())
            }
        }
    })
}

/// Builds a valid program from fuzz input: every index is reduced into range.
pub fn valid_program(u: &mut Unstructured<'_>) -> arbitrary::Result<Program> {
    let n_consts = u.int_in_range(1..=12usize)?;
    let constants: Vec<Constant> = (0..n_consts)
        .map(|_| constant(u))
        .collect::<Result<_, _>>()?;
    let n_funcs = u.int_in_range(1..=4usize)?;
    let mut callees: Vec<String> = (0..n_funcs).map(|i| format!("f{i}")).collect();
    callees.extend(BUILTINS.iter().map(|s| s.to_string()));
    let mut functions = Vec::new();
    for i in 0..n_funcs {
        let params = u.int_in_range(0..=3usize)?;
        let regs = u.int_in_range(1..=8u32)?;
        let len = u.int_in_range(0..=24usize)?;
        let n_labels = u.int_in_range(0..=4usize)?;
        let labels: Vec<Label> = (0..n_labels)
            .map(|l| {
                Ok(Label {
                    name: format!("L{l}"),
                    target: u.int_in_range(0..=len as u32)?,
                })
            })
            .collect::<arbitrary::Result<_>>()?;
        let mut code = Vec::with_capacity(len);
        for _ in 0..len {
            let r = |u: &mut Unstructured<'_>| u.int_in_range(0..=regs - 1);
            let ins = match u.int_in_range(0..=25u8)? {
                0 => Instruction::Ld {
                    dst: r(u)?,
                    offset: u.int_in_range(-2..=1)?,
                },
                1 => Instruction::Ldi {
                    dst: r(u)?,
                    constant: u.int_in_range(0..=n_consts as u32 - 1)?,
                },
                2 => Instruction::Mov {
                    dst: r(u)?,
                    src: r(u)?,
                },
                3 => Instruction::Add {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                4 => Instruction::Sub {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                5 => Instruction::Mul {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                6 => Instruction::Div {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                7 => Instruction::Mod {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                8 => Instruction::And {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                9 => Instruction::Or {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                10 => Instruction::Xor {
                    dst: r(u)?,
                    a: r(u)?,
                    b: r(u)?,
                },
                11 => Instruction::Not {
                    dst: r(u)?,
                    src: r(u)?,
                },
                12 => Instruction::Shl {
                    dst: r(u)?,
                    src: r(u)?,
                    amount: r(u)?,
                },
                13 => Instruction::Shr {
                    dst: r(u)?,
                    src: r(u)?,
                    amount: r(u)?,
                },
                14..=18 if n_labels > 0 => {
                    let label = u.int_in_range(0..=n_labels as u32 - 1)?;
                    match u.int_in_range(0..=4u8)? {
                        0 => Instruction::Jmp { label },
                        1 => Instruction::JmpEq { label },
                        2 => Instruction::JmpNeq { label },
                        3 => Instruction::JmpLt { label },
                        _ => Instruction::JmpGt { label },
                    }
                }
                19 => Instruction::Call {
                    callee: u.int_in_range(0..=callees.len() as u32 - 1)?,
                },
                20 => Instruction::Ret { src: r(u)? },
                21 => Instruction::PushArg { src: r(u)? },
                23 => Instruction::Nop,
                24 => Instruction::Lds {
                    dst: r(u)?,
                    slot: u.int_in_range(0..=7)?,
                },
                25 => Instruction::Sts {
                    slot: u.int_in_range(0..=7)?,
                    src: r(u)?,
                },
                _ => Instruction::Cmp { a: r(u)?, b: r(u)? },
            };
            code.push(ins);
        }
        let upvalues = if u.ratio(1, 8)? {
            vec!["x".to_string()]
        } else {
            Vec::new()
        };
        functions.push(FunctionParts {
            name: format!("f{i}"),
            register_count: regs as u16,
            params: (0..params).map(|p| format!("a{p}")).collect(),
            upvalues,
            parent: None,
            // Type metadata (v5+) on some functions; it never changes execution.
            types: if u.ratio(1, 4)? {
                Some(FunctionTypes {
                    params: vec![
                        FunctionType::Int {
                            signed: true,
                            bits: 64
                        };
                        params
                    ],
                    ret: FunctionType::Unknown,
                })
            } else {
                None
            },
            labels,
            code,
        });
    }
    Ok(
        Program::new(constants, functions, std::mem::take(&mut callees))
            .expect("the generator only builds valid programs"),
    )
}

/// Runs every function of `program` (by name) on `vm` with small limits; every outcome is
/// fine except a crash. Releases what comes back.
pub fn run_all(vm: &mut Vm, program: &Program) {
    vm.set_instruction_limit(Some(20_000));
    vm.set_max_call_depth(64);
    vm.set_memory_limit(Some(16 << 20));
    let names: Vec<String> = program.functions().iter().map(|f| f.name.clone()).collect();
    for name in names {
        for args in [
            &[][..],
            &[Val::I64(3), Val::I64(-1)][..],
            &[Val::I64(1)][..],
        ] {
            if let Ok(v) = vm.execute(&name, args) {
                let _ = vm.display(&v);
                let _ = vm.release(&v);
            }
        }
    }
    vm.collect_all();
    assert_eq!(
        vm.gc_stats().live_handles,
        0,
        "results were released: no handle may remain"
    );
}
