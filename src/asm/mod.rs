//! Text assembly for StoffelVM programs: an assembler ([`assemble`]) and a disassembler
//! ([`disassemble`]) that are exact inverses on every valid [`Program`], and the printer of a
//! single instruction ([`instruction_text`]) that the disassembler is built on.
//!
//! # Syntax
//!
//! ```text
//! ; a comment runs from ';' to the end of the line (also after code)
//! .version 9                        ; optional, before any .function: the STFL version (0..=9)
//! .backend avss                     ; optional manifest directives, before any .function
//! .curve bn254                      ;   (see "Manifest" below)
//! .function main                    ; a function with no parameters
//! .function fib(n)                  ; parameters by name; argument i arrives in register i
//! .function add(a, b) registers 8   ; optional declared register count (0..=4096)
//! .upvalues x, y                    ; optional, directly after .function: names captured at call
//! .parent outer                     ; optional, directly after .function
//! start:                            ; a label
//!     LDI r1, 10                    ; I64
//!     LDI r2, 7i32                  ; typed integers: suffixes i8 i16 i32 i64 u8 u16 u32 u64
//!     LDI r2, -5i8                  ; a leading '-' for negatives; hex digits after 0x: 0x1F
//!     LDI r3, "hi\n\"x\"\\"         ; strings: escapes \n \t \r \0 \\ \" \u{hex}
//!     LDI r4, 1.5                   ; float: a decimal point or an exponent is required
//!     LDI r4, 1e300                 ;   (-0.0, 1e-7, ...); f64:0x7ff8000000000000 gives exact bits
//!     LDI r5, true                  ; bool (true / false)
//!     LDI r6, ()                    ; unit
//!     LD r7, [sp+0]                 ; pending-argument stack slot: [sp+0], [sp-1], [sp+-1], [sp]
//!     MOV r1, r2                    ; NOT r1, r2 and CMP r1, r2 take two registers
//!     ADD r1, r2, r3                ; SUB MUL DIV MOD AND OR XOR SHL SHR take three
//! loop: SUB r1, r1, r2              ; a label may share a line with an instruction
//!     JMP start                     ; JMPEQ JMPNEQ JMPLT JMPGT take a label of this function
//!     PUSHARG r1                    ; RET and PUSHARG take one register
//!     CALL print                    ; CALL takes a function name
//!     NOP                           ; does nothing
//!     STS 3, r1                     ; spill slot 3 := r1 (slots are plain numbers, per frame)
//!     LDS r2, 3                     ; r2 := spill slot 3 (Unit if never written)
//! end:                              ; a label after the last instruction marks the end
//! .function scale(x: fix<32>, n: int64) -> list<fix<32>> registers 4   ; type metadata
//! ```
//!
//! * A function's body runs until the next `.function` or the end of the file. Blank lines and
//!   comments may appear anywhere; lines may end in `\n` or `\r\n`; a leading byte-order mark
//!   is ignored. Directives (`.function`, `.upvalues`, `.parent`) stand on their own line.
//! * Mnemonics, directive names and the `registers` keyword are case-insensitive; registers
//!   are `r<N>` or `R<N>` with a decimal `N` below 4096 (the frame limit).
//! * Operands are separated by commas.
//! * Names (of functions, parameters, upvalues, the parent, labels and `CALL` targets) are
//!   identifiers `[A-Za-z_][A-Za-z0-9_.:$]*`, or double-quoted strings with the string escapes
//!   above for anything else: `.function "utils math"(a)`, `CALL "x y"`, `"odd label":`,
//!   `.function ""`. An unquoted label definition is the identifier followed by `:`; since
//!   identifiers may contain `:`, exactly one trailing `:` is removed (`a::b:` defines `a::b`).
//! * Integer literals are decimal or `0x` hexadecimal, with an optional leading `-` and an
//!   optional type suffix (none means `i64`); a value that does not fit its type is an error
//!   (there is no two's-complement reinterpretation: write `-1i8`, not `0xFFi8`).
//! * Float literals are read as Rust reads `f64` (correctly rounded); one that overflows to
//!   infinity is an error. `f64:0x` followed by 1 to 16 hex digits gives a float with exactly
//!   those bits, which is how NaNs (with any payload) and infinities are written.
//! * Constants are written inline; the assembler builds the constant pool and the callee table
//!   ([`Program::new`] puts them into canonical order).
//! * `registers N` omitted: the register count is the highest register used plus one, and at
//!   least the number of parameters.
//! * `.upvalues` and `.parent` may come in either order, each at most once, but before the
//!   function's first label or instruction. Parameter and upvalue names may repeat.
//! * Label names are unique within a function; jumps may refer to labels defined later.
//!
//! # Types and manifest (STFL v2+)
//!
//! * A parameter may carry a type after `:` (`a: int64`; an unquoted name takes the `:` with
//!   it, as a label does), and `-> T` after the parameters gives the result type. Untyped
//!   parameters and an omitted result are `unknown`; a function with no type at all, or only
//!   `unknown`s, has no type metadata. Types: `int8`…`int64` and `uint1`…`uint255` (any
//!   width 1..=255), `fix<N>`, `float`, `string`, `bool`, `nil`, `void`, `unknown`,
//!   `secret<T>`, `list<T>`, `dict<K, V>`, `object<Name>`, `var<Name>`,
//!   `generic<Name, T…>` (names as above, quoted when not plain), nested at most
//!   [`MAX_TYPE_DEPTH`] deep.
//! * `.version N` (0 to 9; default 9) is the version [`crate::stfl::write`] writes. Type
//!   metadata needs 5 or later, and the manifest needs 2, `.backend` 3, `.curve` 4 and
//!   `.demand` 8; a program whose version cannot hold what it declares is an error.
//! * Manifest directives, each before the first `.function`: `.backend honeybadger|avss`,
//!   `.curve bls12_381|bn254|curve25519|ed25519|secp256k1|secp256r1` (each at most once),
//!   `.client SLOT inputs(S, …) outputs(S, …)` (one per client, in order; share types
//!   `int<N>`, `uint<N>`, `fixed<TOTAL, FRACTIONAL>`), and `.demand` with any of
//!   `triples N`, `randoms N`, `prandbits N`, `prandints N`, `dynamic true|false`.
//!
//! # Errors
//!
//! Every problem is an [`AsmError`] with a 1-based line and column (columns count Unicode
//! characters; a tab counts as one) and a message naming the problem: unknown mnemonic or
//! directive, wrong operand count or kind, bad register, integer literal out of range for its
//! type, bad escape, unterminated string, unknown or duplicate label, an instruction or label
//! before any `.function`, `.upvalues`/`.parent` after code, and the checks of
//! [`Program::new`], which are reported at the instruction or function concerned.
//!
//! # Disassembly
//!
//! [`disassemble`] prints `.version N` unless the version is 9, the manifest directives of a
//! non-default manifest (default fields left out), then every function with its types (when
//! it has type metadata) and an explicit `registers N`, labels at their
//! positions (each on its own line, in the program's order; labels marking the end after the
//! last instruction), constants in the spelling of [`Constant`]'s `Display`, and names quoted
//! whenever they are not plain identifiers (or end in `:`). Its output assembles back to an
//! equal program: `assemble(&disassemble(&p)) == Ok(p)` for every valid `p`.
//!
//! Each instruction line is four spaces and [`instruction_text`] of the instruction. That
//! function is public so that whatever else shows instructions (a tracer, say) prints them the
//! same way; an [`OperandNames`] says how constants, callees and jump targets are spelled.
//!
//! [`Program`]: crate::program::Program
//! [`Program::new`]: crate::program::Program::new
//! [`Constant`]: crate::program::Constant
//! [`MAX_TYPE_DEPTH`]: crate::program::MAX_TYPE_DEPTH

mod assembler;
mod disasm;
mod lexer;
mod literal;
mod meta;
mod printer;

pub use assembler::assemble;
pub use disasm::{disassemble, disassemble_with_indices};
pub use printer::{OperandNames, instruction_text};

/// A label or function name as assembly writes it: bare when it is a plain identifier,
/// quoted with escapes otherwise.
pub fn label_text(name: &str) -> String {
    literal::name_text(name).into_owned()
}

use crate::stfl;

/// A problem found while assembling, with the 1-based line and column it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct AsmError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in Unicode characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Whether `bytes` should be treated as assembly text rather than STFL bytecode: true when the
/// bytes are valid UTF-8 and do not start with the STFL magic `STFL` ([`stfl::MAGIC`]).
pub fn looks_like_assembly(bytes: &[u8]) -> bool {
    !bytes.starts_with(&stfl::MAGIC) && std::str::from_utf8(bytes).is_ok()
}
