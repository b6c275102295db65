//! Deterministic mutation testing: mutated example sources never make the assembler panic,
//! every error points inside the source, and whatever assembles round-trips exactly through
//! the disassembler.

use std::panic::{AssertUnwindSafe, catch_unwind};

use stoffel_vm::asm::{assemble, disassemble};

const SEEDS: [&str; 5] = [
    include_str!("../examples/hello.sasm"),
    include_str!("../examples/fib.sasm"),
    include_str!("../examples/objects.sasm"),
    include_str!("../examples/closures.sasm"),
    r#".function "utils math"(a, "b c", a) registers 5
.upvalues x, "y z", ""
.parent outer
start: "odd label":
    LDI r1, -5i8
    LDI r2, 0xFFu8
    LDI r3, "esc \n\t\r\0\\\" \u{1F600} é"
    LDI r4, 1.5e-7
    LDI r4, -0.0
    LDI r4, f64:0x7ff8000000000001
    LDI r0, ()
    LDI r0, true
    LD r1, [sp+-1]
    LD r1, [sp-2]
    SHL r1, r2, r3
    CMP r1, r2
    JMPEQ "odd label"
    JMPGT end
    CALL "x y"
    CALL a::b
end:
"#,
];

/// Characters that are likely to make interesting mutations.
const ALPHABET: &[char] = &[
    '"', '\\', ':', ',', ';', '\n', '\r', '\t', ' ', '-', '+', '.', '(', ')', '[', ']', '{', '}',
    'r', 'R', '0', '1', '9', 'x', 'e', 'E', 'u', 'i', '8', '6', '4', 'f', 'n', 's', 'p', '_', '$',
    'é', '😀', '\u{0}', '\u{feff}', '\u{2028}',
];

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn random_char(rng: &mut XorShift) -> char {
    if rng.below(4) == 0 {
        // Any printable ASCII character.
        char::from(b' ' + rng.below(95) as u8)
    } else {
        ALPHABET[rng.below(ALPHABET.len())]
    }
}

fn mutate(rng: &mut XorShift, source: &str) -> String {
    let mut chars: Vec<char> = source.chars().collect();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let len = chars.len();
        match rng.below(7) {
            0 if len > 0 => {
                chars.remove(rng.below(len));
            }
            1 => {
                let at = rng.below(len + 1);
                chars.insert(at, random_char(rng));
            }
            2 if len > 0 => {
                let at = rng.below(len);
                chars[at] = random_char(rng);
            }
            3 if len > 0 => {
                // Delete a short run.
                let at = rng.below(len);
                let n = (1 + rng.below(8)).min(len - at);
                chars.drain(at..at + n);
            }
            4 if len > 0 => {
                // Duplicate a short run somewhere else.
                let at = rng.below(len);
                let n = (1 + rng.below(16)).min(len - at);
                let run: Vec<char> = chars[at..at + n].to_vec();
                let to = rng.below(len + 1);
                chars.splice(to..to, run);
            }
            5 => {
                // Insert a digit string (register numbers, literals, counts).
                let at = rng.below(len + 1);
                let digits = rng.next().to_string();
                let n = 1 + rng.below(digits.len());
                chars.splice(at..at, digits.chars().take(n));
            }
            _ if len > 0 => {
                // Swap two characters.
                let (a, b) = (rng.below(len), rng.below(len));
                chars.swap(a, b);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn check(source: &str) {
    let result = catch_unwind(AssertUnwindSafe(|| assemble(source)));
    let Ok(result) = result else {
        panic!("assemble panicked on:\n{source:?}");
    };
    match result {
        Ok(program) => {
            let text = disassemble(&program);
            match assemble(&text) {
                Ok(back) => assert_eq!(back, program, "round trip changed:\n{source:?}\n{text}"),
                Err(e) => panic!("disassembly does not assemble: {e}\nsource {source:?}\n{text}"),
            }
        }
        Err(e) => {
            let lines = source.split('\n').count();
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} out of 1..={lines}: {e}\n{source:?}",
                e.line
            );
            let line_text = source.split('\n').nth(e.line - 1).unwrap_or("");
            let width = line_text.chars().count();
            assert!(
                e.column >= 1 && e.column <= width + 1,
                "column {} out of 1..={}: {e}\n{source:?}",
                e.column,
                width + 1
            );
            assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn seeds_assemble() {
    for seed in SEEDS {
        assert!(assemble(seed).is_ok(), "{:?}", assemble(seed));
    }
}

#[test]
fn mutated_sources_never_panic_and_round_trip() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut assembled = 0;
    // ASM_FUZZ_CASES raises the count for a longer local run.
    let cases = std::env::var("ASM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000usize);
    for case in 0..cases {
        let seed = SEEDS[case % SEEDS.len()];
        let source = mutate(&mut rng, seed);
        if assemble(&source).is_ok() {
            assembled += 1;
        }
        check(&source);
    }
    // The mutations are small, so a fair share still assembles and exercises the round trip.
    println!("{assembled} of {cases} mutants assembled");
    assert!(
        assembled > cases / 10,
        "only {assembled} of {cases} mutants assembled"
    );
}

#[test]
fn random_lines_never_panic() {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    for _ in 0..3000 {
        let len = rng.below(40);
        let line: String = (0..len).map(|_| random_char(&mut rng)).collect();
        check(&line);
        check(&format!(".function f\n{line}\n"));
        check(&format!(".function f\n    LDI r1, {line}\n"));
        check(&format!(".function f\n    LD r1, [{line}\n"));
        check(&format!(".function {line}\n"));
    }
}
