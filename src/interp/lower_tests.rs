//! Tests of lowering: which instruction sequences become which ops.

use super::*;

#[test]
fn keeps_indices_and_fuses_compare_and_branch() {
    let code = [
        Instruction::Cmp { a: 1, b: 2 },
        Instruction::JmpLt { label: 3 },
        Instruction::Cmp { a: 1, b: 2 },
        Instruction::Ret { src: 1 },
    ];
    let ops = lower(&code, |_| None, |_| None);
    assert_eq!(ops.len(), code.len() + 1);
    assert_eq!(
        ops[0],
        Op::CmpJump {
            a: 1,
            b: 2,
            when: Cond::Lt,
            target: 3
        }
    );
    assert_eq!(ops[1], Op::JmpLt { target: 3 });
    assert_eq!(ops[2], Op::Cmp { a: 1, b: 2 });
    assert_eq!(ops[4], Op::End);
}

#[test]
fn fuses_a_counter_step_with_the_compare_and_branch_after_it() {
    let code = [
        Instruction::Add { dst: 1, a: 1, b: 2 },
        Instruction::Cmp { a: 1, b: 3 },
        Instruction::JmpLt { label: 0 },
        Instruction::Add { dst: 1, a: 1, b: 2 },
        Instruction::Cmp { a: 1, b: 3 },
        Instruction::Ret { src: 1 },
    ];
    let ops = lower(&code, |_| None, |_| None);
    assert_eq!(ops[0], Op::AddCmpJump { dst: 1, a: 1, b: 2 });
    assert!(matches!(ops[1], Op::CmpJump { target: 0, .. }));
    assert_eq!(ops[2], Op::JmpLt { target: 0 });
    // No branch after the compare: nothing to fuse with.
    assert_eq!(ops[3], Op::Add { dst: 1, a: 1, b: 2 });
}

#[test]
fn far_targets_stay_unfused() {
    let code = [
        Instruction::Cmp { a: 0, b: 0 },
        Instruction::JmpEq { label: 70_000 },
    ];
    assert_eq!(lower(&code, |_| None, |_| None)[0], Op::Cmp { a: 0, b: 0 });
}

fn length(array: R, list: bool) -> Op {
    Op::ArrayLength { array, list }
}

fn pushed(array: R, value: R, list: bool) -> Op {
    Op::ArrayPush { array, value, list }
}

#[test]
fn fuses_builtin_calls_with_their_arguments() {
    let (get, set, push, len) = (1, 2, 3, 4);
    let builtin_at = |slot| match slot {
        1 => Some(Builtin::GetField),
        2 => Some(Builtin::SetField),
        3 => Some(Builtin::ArrayPush),
        4 => Some(Builtin::ArrayLength),
        _ => None,
    };
    let code = [
        Instruction::PushArg { src: 5 },
        Instruction::PushArg { src: 6 },
        Instruction::PushArg { src: 7 },
        Instruction::Call { callee: set },
        Instruction::PushArg { src: 5 },
        Instruction::PushArg { src: 6 },
        Instruction::Call { callee: get },
        Instruction::PushArg { src: 5 },
        Instruction::Call { callee: len },
        Instruction::PushArg { src: 5 },
        Instruction::PushArg { src: 6 },
        Instruction::Call { callee: push },
        Instruction::PushArg { src: 5 },
        Instruction::Call { callee: 9 },
    ];
    let ops = lower(&code, builtin_at, |_| None);
    assert_eq!(
        ops[0],
        Op::SetField {
            obj: 5,
            key: 6,
            value: 7
        }
    );
    // The rest of a sequence keeps its own ops (a jump may land there).
    assert_eq!(ops[1], Op::PushArg { src: 6 });
    assert_eq!(ops[3], Op::Call { slot: set });
    assert_eq!(ops[4], Op::GetField { obj: 5, key: 6 });
    assert_eq!(ops[7], length(5, false));
    assert_eq!(ops[9], pushed(5, 6, false));
    assert_eq!(ops[12], Op::PushArg { src: 5 });
    assert_eq!(
        ops.iter().map(|op| op.fused_builtin_length()).sum::<u32>(),
        4 + 3 + 2 + 3
    );
}

#[test]
fn fuses_the_list_builtins_len_and_append_with_one_value() {
    let (len, append, other) = (1, 2, 3);
    let builtin_at = |slot| match slot {
        1 => Some(Builtin::Len),
        2 => Some(Builtin::Append),
        3 => Some(Builtin::Extend),
        _ => None,
    };
    let code = [
        // What the compiler emits for `xs.append(i)` and `n = len(xs)`.
        Instruction::PushArg { src: 2 },
        Instruction::PushArg { src: 3 },
        Instruction::Call { callee: append },
        Instruction::PushArg { src: 2 },
        Instruction::Call { callee: len },
        Instruction::Mov { dst: 4, src: 0 },
        // `append(xs, a, b)`: the sequence at its last two PUSHARGs is fused, but the
        // first one is pending when it runs, so it runs unfused then.
        Instruction::PushArg { src: 2 },
        Instruction::PushArg { src: 3 },
        Instruction::PushArg { src: 4 },
        Instruction::Call { callee: append },
        // Another list builtin stays a plain call.
        Instruction::PushArg { src: 2 },
        Instruction::PushArg { src: 3 },
        Instruction::Call { callee: other },
        // `append(xs)` (no value) and a `len` with nothing pushed stay plain.
        Instruction::PushArg { src: 2 },
        Instruction::Nop,
        Instruction::Call { callee: append },
        Instruction::Call { callee: len },
    ];
    let ops = lower(&code, builtin_at, |_| None);
    assert_eq!(ops[0], pushed(2, 3, true));
    assert_eq!(ops[1], Op::PushArg { src: 3 });
    assert_eq!(ops[2], Op::Call { slot: append });
    assert_eq!(ops[3], length(2, true));
    assert_eq!(ops[6], Op::PushArg { src: 2 });
    assert_eq!(ops[7], pushed(3, 4, true));
    assert_eq!(ops[10], Op::PushArg { src: 2 });
    assert_eq!(ops[11], Op::PushArg { src: 3 });
    assert_eq!(ops[13], Op::PushArg { src: 2 });
    assert_eq!(ops[16], Op::Call { slot: len });
    assert_eq!(
        ops.iter().map(|op| op.fused_builtin_length()).sum::<u32>(),
        3 + 2 + 3
    );
}

/// What the StoffelLang compiler emits for `while i < n:` (from the disassembly of a
/// compiled program); constants 0 and 1 are `false` and `true`.
fn condition(jump_back: u32) -> Vec<Instruction> {
    vec![
        Instruction::Cmp { a: 3, b: 1 },
        Instruction::JmpLt { label: 5 },
        Instruction::Ldi {
            dst: 4,
            constant: 0,
        },
        Instruction::Jmp { label: 6 },
        Instruction::Ldi {
            dst: 4,
            constant: 1,
        },
        Instruction::Ldi {
            dst: 5,
            constant: 0,
        },
        Instruction::Cmp { a: 4, b: 5 },
        Instruction::JmpEq { label: jump_back },
    ]
}

fn bools(c: u32) -> Option<bool> {
    [Some(false), Some(true)].get(c as usize).copied().flatten()
}

#[test]
fn fuses_the_compilers_condition_shape() {
    let mut code = vec![Instruction::Nop];
    code.extend(condition(99));
    let ops = lower(&code, |_| None, bools);
    assert_eq!(
        ops[1],
        Op::CmpJump {
            a: 3,
            b: 1,
            when: Cond::Lt,
            target: CONDITION_TEST
        }
    );
    // The rest keep their own ops: jumps may land on them.
    assert_eq!(
        ops[3],
        Op::Ldi {
            dst: 4,
            constant: 0
        }
    );
    assert!(matches!(ops[7], Op::CmpJump { when: Cond::Eq, .. }));
    assert_eq!(ops[8], Op::JmpEq { target: 99 });
}

#[test]
fn near_misses_of_the_condition_shape_stay_unfused() {
    let mut variants = Vec::new();
    // Not Bool constants.
    variants.push((condition(0), None));
    // The Bool and the `false` in one register: the test is then always "equal".
    let mut same = condition(0);
    same[5] = Instruction::Ldi {
        dst: 4,
        constant: 0,
    };
    same[6] = Instruction::Cmp { a: 4, b: 4 };
    variants.push((same, Some(())));
    // The branch skips elsewhere.
    let mut far = condition(0);
    far[1] = Instruction::JmpLt { label: 6 };
    variants.push((far, Some(())));
    // `true` and `false` swapped.
    let mut swapped = condition(0);
    swapped[2] = Instruction::Ldi {
        dst: 4,
        constant: 1,
    };
    swapped[4] = Instruction::Ldi {
        dst: 4,
        constant: 0,
    };
    variants.push((swapped, Some(())));
    for (i, (shape, with_bools)) in variants.into_iter().enumerate() {
        // At instruction 1, where `condition`'s labels fit.
        let code: Vec<Instruction> = std::iter::once(Instruction::Nop).chain(shape).collect();
        let ops = match with_bools {
            Some(()) => lower(&code, |_| None, bools),
            None => lower(&code, |_| None, |_| None),
        };
        assert!(
            !matches!(
                ops[1],
                Op::CmpJump {
                    target: CONDITION_TEST,
                    ..
                }
            ),
            "variant {i}: {:?}",
            ops[1]
        );
    }
}
