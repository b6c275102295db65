//! Text assembly for StoffelVM programs: an assembler ([`assemble`]) and a disassembler
//! ([`disassemble`]) that are exact inverses on every valid [`Program`].
//!
//! # Syntax
//!
//! ```text
//! ; a comment runs from ';' to the end of the line (also after code)
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
//! end:                              ; a label after the last instruction marks the end
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
//! [`disassemble`] prints every function with an explicit `registers N`, labels at their
//! positions (each on its own line, in the program's order; labels marking the end after the
//! last instruction), constants in the spelling of [`Constant`]'s `Display`, and names quoted
//! whenever they are not plain identifiers (or end in `:`). Its output assembles back to an
//! equal program: `assemble(&disassemble(&p)) == Ok(p)` for every valid `p`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};

use crate::program::{
    Constant, Function, FunctionParts, Instruction, Label, MAX_FRAME_SIZE, MNEMONICS, Program,
    ProgramError, Reg,
};

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

/// The first bytes of every STFL v1 file.
const STFL_MAGIC: &[u8] = b"STFL";

/// Whether `bytes` should be treated as assembly text rather than STFL bytecode: true when the
/// bytes are valid UTF-8 and do not start with the STFL magic `STFL`.
pub fn looks_like_assembly(bytes: &[u8]) -> bool {
    !bytes.starts_with(STFL_MAGIC) && std::str::from_utf8(bytes).is_ok()
}

/// Assembles source text (see the [module documentation](self) for the syntax) into a
/// validated, canonical [`Program`].
pub fn assemble(source: &str) -> Result<Program, AsmError> {
    let lines: Vec<&str> = source
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let mut asm = Assembler::new(&lines);
    for (index, text) in lines.iter().enumerate() {
        asm.line(index, text)?;
    }
    asm.finish()
}

/// Prints a program as assembly text that [`assemble`] turns back into an equal program.
pub fn disassemble(program: &Program) -> String {
    let mut out = String::new();
    for (index, function) in program.functions().iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = write_function(&mut out, program, function);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Disassembler
// ---------------------------------------------------------------------------------------------

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '$')
}

/// Whether a name can be written without quotes everywhere a name may appear.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_char) && !name.ends_with(':')
}

/// A name as written in assembly: bare when plain, quoted with escapes otherwise.
fn name_text(name: &str) -> Cow<'_, str> {
    if is_plain_name(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(Constant::String(name.into()).to_string())
    }
}

fn write_name_list(out: &mut String, names: &[String]) -> fmt::Result {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name_text(name));
    }
    Ok(())
}

fn write_function(out: &mut String, program: &Program, function: &Function) -> fmt::Result {
    write!(out, ".function {}", name_text(&function.name))?;
    if !function.params.is_empty() {
        out.push('(');
        write_name_list(out, &function.params)?;
        out.push(')');
    }
    writeln!(out, " registers {}", function.register_count)?;
    if !function.upvalues.is_empty() {
        out.push_str(".upvalues ");
        write_name_list(out, &function.upvalues)?;
        out.push('\n');
    }
    if let Some(parent) = &function.parent {
        writeln!(out, ".parent {}", name_text(parent))?;
    }
    // Labels grouped by target, keeping the program's order within a target.
    let mut at: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for label in &function.labels {
        at.entry(label.target).or_default().push(&label.name);
    }
    for (index, instruction) in function.code.iter().enumerate() {
        if let Some(names) = u32::try_from(index).ok().and_then(|i| at.remove(&i)) {
            for name in names {
                writeln!(out, "{}:", name_text(name))?;
            }
        }
        out.push_str("    ");
        write_instruction(out, program, function, instruction)?;
        out.push('\n');
    }
    // Labels at the end (and, defensively, any beyond it).
    for names in at.into_values() {
        for name in names {
            writeln!(out, "{}:", name_text(name))?;
        }
    }
    Ok(())
}

fn write_instruction(
    out: &mut String,
    program: &Program,
    function: &Function,
    instruction: &Instruction,
) -> fmt::Result {
    use Instruction::*;
    let m = instruction.mnemonic();
    match *instruction {
        Ld { dst, offset } => {
            if offset >= 0 {
                write!(out, "{m} r{dst}, [sp+{offset}]")
            } else {
                write!(out, "{m} r{dst}, [sp{offset}]")
            }
        }
        Ldi { dst, constant } => match program.constants().get(constant as usize) {
            Some(c) => write!(out, "{m} r{dst}, {c}"),
            None => write!(out, "{m} r{dst}, <invalid constant #{constant}>"),
        },
        Mov { dst, src } | Not { dst, src } => write!(out, "{m} r{dst}, r{src}"),
        Add { dst, a, b }
        | Sub { dst, a, b }
        | Mul { dst, a, b }
        | Div { dst, a, b }
        | Mod { dst, a, b }
        | And { dst, a, b }
        | Or { dst, a, b }
        | Xor { dst, a, b } => write!(out, "{m} r{dst}, r{a}, r{b}"),
        Shl { dst, src, amount } | Shr { dst, src, amount } => {
            write!(out, "{m} r{dst}, r{src}, r{amount}")
        }
        Jmp { label } | JmpEq { label } | JmpNeq { label } | JmpLt { label } | JmpGt { label } => {
            match function.labels.get(label as usize) {
                Some(l) => write!(out, "{m} {}", name_text(&l.name)),
                None => write!(out, "{m} <invalid label #{label}>"),
            }
        }
        Call { callee } => match program.callees().get(callee as usize) {
            Some(name) => write!(out, "{m} {}", name_text(name)),
            None => write!(out, "{m} <invalid callee #{callee}>"),
        },
        Ret { src } | PushArg { src } => write!(out, "{m} r{src}"),
        Cmp { a, b } => write!(out, "{m} r{a}, r{b}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing
// ---------------------------------------------------------------------------------------------

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Builds an error at a byte offset of a line.
fn error_at(line: usize, text: &str, byte: usize, message: impl Into<String>) -> AsmError {
    let column = text.get(..byte).map_or(byte, |s| s.chars().count()) + 1;
    AsmError {
        line: line + 1,
        column,
        message: message.into(),
    }
}

/// A position in the source: a 0-based line index and a byte offset in that line.
#[derive(Clone, Copy, Debug)]
struct Span {
    line: usize,
    byte: usize,
}

/// One operand as written, before it is interpreted for its instruction.
#[derive(Debug)]
enum Token<'a> {
    /// An identifier-like word: a register, a name, `true`, `false`, `f64:0x…`.
    Word(&'a str),
    /// A quoted string (a string constant or a name).
    Str(String),
    /// A numeric literal, sign included.
    Number(&'a str),
    /// `()`.
    Unit,
    /// `[sp+k]`.
    Stack(i32),
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("'{w}'"),
            Token::Str(s) => format!("string {}", Constant::String(s.as_str().into())),
            Token::Number(n) => format!("number {n}"),
            Token::Unit => "()".to_owned(),
            Token::Stack(k) => format!("stack slot [sp+{k}]"),
        }
    }
}

/// A cursor over one line of source.
struct Cursor<'a> {
    line: usize,
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: usize, text: &'a str) -> Self {
        Cursor { line, text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.bump();
        }
    }

    /// At the end of the line's code (end of line or a comment).
    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(';'))
    }

    fn slice(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or("")
    }

    fn span(&self, byte: usize) -> Span {
        Span {
            line: self.line,
            byte,
        }
    }

    fn error(&self, byte: usize, message: impl Into<String>) -> AsmError {
        error_at(self.line, self.text, byte, message)
    }

    /// What is at the cursor, for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None | Some(';') => "end of line".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// An identifier-like word; the caller has checked the first character.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        if self.peek().is_some_and(is_ident_start) {
            self.bump();
            while self.peek().is_some_and(is_ident_char) {
                self.bump();
            }
        }
        self.slice(start)
    }

    /// A numeric literal; the caller has checked that it starts with a digit or `-digit`.
    fn number(&mut self) -> &'a str {
        let start = self.pos;
        self.eat('-');
        let rest = self.rest();
        let hex = rest.starts_with("0x") || rest.starts_with("0X");
        let mut prev = '\0';
        while let Some(c) = self.peek() {
            let exponent_sign = !hex && matches!(c, '+' | '-') && matches!(prev, 'e' | 'E');
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || exponent_sign {
                self.bump();
                prev = c;
            } else {
                break;
            }
        }
        self.slice(start)
    }

    /// A double-quoted string with escapes; the cursor is on the opening quote.
    fn string(&mut self) -> Result<String, AsmError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let here = self.pos;
            match self.bump() {
                None => {
                    return Err(self.error(start, "unterminated string (missing closing '\"')"));
                }
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('0') => out.push('\0'),
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('u') => out.push(self.unicode_escape(here)?),
                    Some(c) => {
                        return Err(self.error(
                            here,
                            format!(
                                "unknown escape sequence '\\{}' in string (known: \\n \\t \\r \\0 \\\\ \\\" \\u{{hex}})",
                                c.escape_debug()
                            ),
                        ));
                    }
                    None => {
                        return Err(self.error(start, "unterminated string (missing closing '\"')"));
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// The rest of `\u{hex}` after the `u`; `at` is the backslash.
    fn unicode_escape(&mut self, at: usize) -> Result<char, AsmError> {
        let bad = |c: &Self| {
            c.error(
                at,
                "invalid unicode escape in string: expected \\u{hex} with 1 to 6 hex digits",
            )
        };
        if !self.eat('{') {
            return Err(bad(self));
        }
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.bump();
        }
        let digits = self.slice(digits_start);
        if digits.is_empty() || digits.len() > 6 || !self.eat('}') {
            return Err(bad(self));
        }
        let value = u32::from_str_radix(digits, 16).map_err(|_| bad(self))?;
        char::from_u32(value).ok_or_else(|| {
            self.error(
                at,
                format!(
                    "invalid unicode escape in string: {value:#x} is not a Unicode scalar value"
                ),
            )
        })
    }

    /// `[sp+k]`, `[sp-k]`, `[sp+-k]` or `[sp]`; the cursor is on `[`.
    fn stack_slot(&mut self) -> Result<i32, AsmError> {
        let start = self.pos;
        let bad = |c: &Self| c.error(start, "malformed stack slot: expected [sp+N] or [sp-N]");
        self.bump();
        self.skip_ws();
        let word = self.word();
        if !word.eq_ignore_ascii_case("sp") {
            return Err(bad(self));
        }
        self.skip_ws();
        if self.eat(']') {
            return Ok(0);
        }
        let mut negative = false;
        let mut signed = false;
        loop {
            self.skip_ws();
            match self.peek() {
                Some('+') => {}
                Some('-') => negative = !negative,
                _ => break,
            }
            self.bump();
            signed = true;
        }
        if !signed {
            return Err(bad(self));
        }
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let digits = self.slice(digits_start);
        if digits.is_empty() {
            return Err(bad(self));
        }
        self.skip_ws();
        if !self.eat(']') {
            return Err(bad(self));
        }
        let magnitude = digits.parse::<u64>().ok().map(i128::from);
        let value = magnitude.map(|m| if negative { -m } else { m });
        value
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| self.error(start, "stack offset is out of range for i32"))
    }

    /// One operand of an instruction.
    fn operand(&mut self) -> Result<(Token<'a>, usize), AsmError> {
        let start = self.pos;
        let token = match self.peek() {
            Some(c) if is_ident_start(c) => Token::Word(self.word()),
            Some('"') => Token::Str(self.string()?),
            Some(c) if c.is_ascii_digit() => Token::Number(self.number()),
            Some('-') if self.peek_second().is_some_and(|c| c.is_ascii_digit()) => {
                Token::Number(self.number())
            }
            Some('(') => {
                self.bump();
                self.skip_ws();
                if !self.eat(')') {
                    return Err(self.error(start, "expected '()' (the unit constant)"));
                }
                Token::Unit
            }
            Some('[') => Token::Stack(self.stack_slot()?),
            _ => {
                return Err(self.error(
                    start,
                    format!("expected an operand, found {}", self.found()),
                ));
            }
        };
        Ok((token, start))
    }

    /// A name: an identifier or a quoted string.
    fn name(&mut self, what: &str) -> Result<String, AsmError> {
        match self.peek() {
            Some('"') => self.string(),
            Some(c) if is_ident_start(c) => Ok(self.word().to_owned()),
            _ => Err(self.error(
                self.pos,
                format!(
                    "expected {what} (an identifier or a quoted string), found {}",
                    self.found()
                ),
            )),
        }
    }

    /// A comma-separated list of names up to the end of the line (possibly empty).
    fn name_list(&mut self, what: &str) -> Result<Vec<(String, usize)>, AsmError> {
        let mut names = Vec::new();
        self.skip_ws();
        if self.at_end() {
            return Ok(names);
        }
        loop {
            self.skip_ws();
            let at = self.pos;
            names.push((self.name(what)?, at));
            self.skip_ws();
            if self.at_end() {
                return Ok(names);
            }
            if !self.eat(',') {
                return Err(self.error(
                    self.pos,
                    format!("expected ',' or end of line, found {}", self.found()),
                ));
            }
        }
    }

    fn expect_end(&mut self) -> Result<(), AsmError> {
        self.skip_ws();
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error(
                self.pos,
                format!("unexpected {} (expected end of line)", self.found()),
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------------------------

/// Parses a numeric literal (as lexed by [`Cursor::number`]) into a constant.
fn parse_number(token: &str) -> Result<Constant, String> {
    let (negative, body) = match token.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, token),
    };
    let (radix, rest) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(rest) => (16, rest),
        None => (10, body),
    };
    if radix == 10 && body.contains(['.', 'e', 'E']) {
        return match token.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Constant::Float(v)),
            Ok(_) => Err(format!(
                "float literal {token} is out of range (write infinities as f64:0x<bits>)"
            )),
            Err(_) => Err(format!("invalid float literal {token}")),
        };
    }
    let split = rest
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(rest.len());
    let digits = rest.get(..split).unwrap_or("");
    let suffix = rest.get(split..).unwrap_or("");
    if digits.is_empty() {
        return Err(format!("invalid number {token}"));
    }
    let out_of_range = |ty: &str| format!("integer literal {token} is out of range for {ty}");
    let ty = if suffix.is_empty() { "i64" } else { suffix };
    let magnitude = u128::from_str_radix(digits, radix)
        .ok()
        .filter(|&m| m <= 1u128 << 64)
        .and_then(|m| i128::try_from(m).ok());
    let value = match magnitude {
        Some(m) if negative => -m,
        Some(m) => m,
        None => {
            return Err(if is_int_suffix(ty) {
                out_of_range(ty)
            } else {
                bad_suffix(token, suffix)
            });
        }
    };
    let constant = match ty {
        "i64" => i64::try_from(value).ok().map(Constant::I64),
        "i32" => i32::try_from(value).ok().map(Constant::I32),
        "i16" => i16::try_from(value).ok().map(Constant::I16),
        "i8" => i8::try_from(value).ok().map(Constant::I8),
        "u64" => u64::try_from(value).ok().map(Constant::U64),
        "u32" => u32::try_from(value).ok().map(Constant::U32),
        "u16" => u16::try_from(value).ok().map(Constant::U16),
        "u8" => u8::try_from(value).ok().map(Constant::U8),
        _ => return Err(bad_suffix(token, suffix)),
    };
    constant.ok_or_else(|| out_of_range(ty))
}

fn is_int_suffix(s: &str) -> bool {
    matches!(
        s,
        "i64" | "i32" | "i16" | "i8" | "u64" | "u32" | "u16" | "u8"
    )
}

fn bad_suffix(token: &str, suffix: &str) -> String {
    format!(
        "invalid number {token}: unknown suffix '{suffix}' (expected i8, i16, i32, i64, u8, u16, u32 or u64)"
    )
}

/// Parses `f64:0x<hex>` (case-insensitive prefix, 1 to 16 hex digits).
fn parse_float_bits(word: &str) -> Option<Result<Constant, String>> {
    let prefix = word.get(..6)?;
    if !prefix.eq_ignore_ascii_case("f64:0x") {
        return None;
    }
    let digits = word.get(6..).unwrap_or("");
    if digits.is_empty() || digits.len() > 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(Err(format!(
            "invalid float bits {word}: expected f64:0x followed by 1 to 16 hex digits"
        )));
    }
    Some(
        u64::from_str_radix(digits, 16)
            .map(|bits| Constant::Float(f64::from_bits(bits)))
            .map_err(|_| format!("invalid float bits {word}")),
    )
}

// ---------------------------------------------------------------------------------------------
// Assembler
// ---------------------------------------------------------------------------------------------

/// The operand kinds instructions take.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Reg,
    Const,
    Stack,
    Label,
    Callee,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Reg => "register",
            Kind::Const => "constant",
            Kind::Stack => "stack slot",
            Kind::Label => "label",
            Kind::Callee => "function name",
        }
    }
}

/// The operand kinds of the instruction with this opcode (index into [`MNEMONICS`]).
fn signature(opcode: usize) -> &'static [Kind] {
    use Kind::*;
    match opcode {
        0 => &[Reg, Stack],
        1 => &[Reg, Const],
        2 | 11 | 20 => &[Reg, Reg],
        3..=10 | 12 | 13 => &[Reg, Reg, Reg],
        14 | 15 | 16 | 21 | 22 => &[Label],
        17 => &[Callee],
        _ => &[Reg],
    }
}

/// Builds a jump instruction of the given opcode.
fn jump(opcode: usize, label: u32) -> Option<Instruction> {
    Some(match opcode {
        14 => Instruction::Jmp { label },
        15 => Instruction::JmpEq { label },
        16 => Instruction::JmpNeq { label },
        21 => Instruction::JmpLt { label },
        22 => Instruction::JmpGt { label },
        _ => return None,
    })
}

/// An operand after interpretation.
enum Value {
    Reg(Reg),
    Const(u32),
    Stack(i32),
    Callee(u32),
    Name(String),
}

/// A jump whose label is resolved when the function ends.
struct PendingJump {
    instruction: usize,
    opcode: usize,
    label: String,
    span: Span,
}

/// Where the parts of a finished function came from, for error messages.
struct FunctionSpans {
    head: Span,
    instructions: Vec<Span>,
}

/// The function being assembled.
struct Builder {
    parts: FunctionParts,
    head: Span,
    declared_registers: Option<u16>,
    max_register: Option<Reg>,
    instructions: Vec<Span>,
    label_index: HashMap<String, (u32, usize)>,
    jumps: Vec<PendingJump>,
    header_open: bool,
    seen_upvalues: bool,
    seen_parent: bool,
}

struct Assembler<'s> {
    lines: &'s [&'s str],
    constants: Vec<Constant>,
    constant_index: HashMap<Constant, u32>,
    callees: Vec<String>,
    callee_index: HashMap<String, u32>,
    functions: Vec<FunctionParts>,
    spans: Vec<FunctionSpans>,
    current: Option<Builder>,
}

impl<'s> Assembler<'s> {
    fn new(lines: &'s [&'s str]) -> Self {
        Assembler {
            lines,
            constants: Vec::new(),
            constant_index: HashMap::new(),
            callees: Vec::new(),
            callee_index: HashMap::new(),
            functions: Vec::new(),
            spans: Vec::new(),
            current: None,
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> AsmError {
        let text = self.lines.get(span.line).copied().unwrap_or("");
        error_at(span.line, text, span.byte, message)
    }

    fn line(&mut self, index: usize, text: &str) -> Result<(), AsmError> {
        let mut c = Cursor::new(index, text);
        c.skip_ws();
        if c.at_end() {
            return Ok(());
        }
        if c.peek() == Some('.') {
            return self.directive(&mut c);
        }
        loop {
            c.skip_ws();
            let start = c.pos;
            match c.peek() {
                None | Some(';') => return Ok(()),
                Some('"') => {
                    let name = c.string()?;
                    c.skip_ws();
                    if !c.eat(':') {
                        return Err(c.error(
                            start,
                            "a quoted name at the start of a line must be a label definition (add ':')",
                        ));
                    }
                    self.define_label(name, c.span(start))?;
                }
                Some(ch) if is_ident_start(ch) => {
                    let word = c.word();
                    if let Some(name) = word.strip_suffix(':') {
                        self.define_label(name.to_owned(), c.span(start))?;
                        continue;
                    }
                    let after = c.pos;
                    c.skip_ws();
                    if c.eat(':') {
                        self.define_label(word.to_owned(), c.span(start))?;
                        continue;
                    }
                    c.pos = after;
                    return self.instruction(&mut c, word, start);
                }
                Some('.') => {
                    return Err(c.error(start, "a directive must start its own line"));
                }
                Some(_) => {
                    return Err(c.error(
                        start,
                        format!(
                            "expected a label, directive or instruction, found {}",
                            c.found()
                        ),
                    ));
                }
            }
        }
    }

    fn directive(&mut self, c: &mut Cursor<'_>) -> Result<(), AsmError> {
        let start = c.pos;
        c.bump();
        while c
            .peek()
            .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            c.bump();
        }
        let name = c.slice(start);
        let directive = name.get(1..).unwrap_or("");
        if directive.eq_ignore_ascii_case("function") {
            self.function_directive(c)
        } else if directive.eq_ignore_ascii_case("upvalues") {
            let builder = self.header_builder(c, start, ".upvalues")?;
            if builder.seen_upvalues {
                return Err(c.error(start, "duplicate '.upvalues' for this function"));
            }
            builder.seen_upvalues = true;
            let names = c.name_list("an upvalue name")?;
            builder.parts.upvalues = names.into_iter().map(|(n, _)| n).collect();
            Ok(())
        } else if directive.eq_ignore_ascii_case("parent") {
            let builder = self.header_builder(c, start, ".parent")?;
            if builder.seen_parent {
                return Err(c.error(start, "duplicate '.parent' for this function"));
            }
            builder.seen_parent = true;
            c.skip_ws();
            let parent = c.name("the parent function's name")?;
            c.expect_end()?;
            builder.parts.parent = Some(parent);
            Ok(())
        } else {
            Err(c.error(
                start,
                format!("unknown directive '{name}' (expected .function, .upvalues or .parent)"),
            ))
        }
    }

    /// The current function, if `.upvalues` / `.parent` may still be given for it.
    fn header_builder(
        &mut self,
        c: &Cursor<'_>,
        start: usize,
        what: &str,
    ) -> Result<&mut Builder, AsmError> {
        match self.current.as_mut() {
            None => Err(c.error(start, format!("'{what}' before any .function"))),
            Some(b) if !b.header_open => Err(c.error(
                start,
                format!(
                    "'{what}' must come directly after '.function' (before any label or instruction)"
                ),
            )),
            Some(b) => Ok(b),
        }
    }

    fn function_directive(&mut self, c: &mut Cursor<'_>) -> Result<(), AsmError> {
        self.finish_function()?;
        c.skip_ws();
        let head = c.span(c.pos);
        let name = c.name("a function name")?;
        let mut params = Vec::new();
        c.skip_ws();
        if c.eat('(') {
            c.skip_ws();
            if !c.eat(')') {
                loop {
                    c.skip_ws();
                    let at = c.pos;
                    let param = c.name("a parameter name")?;
                    if params.len() >= MAX_FRAME_SIZE as usize {
                        return Err(c.error(
                            at,
                            format!(
                                "function '{name}' has more than {MAX_FRAME_SIZE} parameters (the frame limit)"
                            ),
                        ));
                    }
                    params.push(param);
                    c.skip_ws();
                    if c.eat(')') {
                        break;
                    }
                    if !c.eat(',') {
                        return Err(c.error(
                            c.pos,
                            format!(
                                "expected ',' or ')' in the parameter list, found {}",
                                c.found()
                            ),
                        ));
                    }
                }
            }
        }
        c.skip_ws();
        let mut declared_registers = None;
        if !c.at_end() {
            let at = c.pos;
            let keyword = if c.peek().is_some_and(is_ident_start) {
                c.word()
            } else {
                ""
            };
            if !keyword.eq_ignore_ascii_case("registers") {
                return Err(c.error(
                    at,
                    format!(
                        "unexpected {} after the function's name and parameters (expected 'registers N' or end of line)",
                        if keyword.is_empty() { c.found() } else { format!("'{keyword}'") }
                    ),
                ));
            }
            c.skip_ws();
            let at = c.pos;
            while c
                .peek()
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                c.bump();
            }
            let count = c.slice(at);
            if count.is_empty() || !count.chars().all(|ch| ch.is_ascii_digit()) {
                return Err(c.error(
                    at,
                    "expected a register count (a decimal number) after 'registers'",
                ));
            }
            match count.parse::<u16>() {
                Ok(n) if u32::from(n) <= MAX_FRAME_SIZE => declared_registers = Some(n),
                _ => {
                    return Err(c.error(
                        at,
                        format!(
                            "register count {count} is above the frame limit of {MAX_FRAME_SIZE}"
                        ),
                    ));
                }
            }
        }
        c.expect_end()?;
        self.current = Some(Builder {
            parts: FunctionParts {
                name,
                params,
                ..FunctionParts::default()
            },
            head,
            declared_registers,
            max_register: None,
            instructions: Vec::new(),
            label_index: HashMap::new(),
            jumps: Vec::new(),
            header_open: true,
            seen_upvalues: false,
            seen_parent: false,
        });
        Ok(())
    }

    fn define_label(&mut self, name: String, span: Span) -> Result<(), AsmError> {
        let Some(builder) = self.current.as_mut() else {
            return Err(self.error(
                span,
                format!("label {} before any .function", name_text(&name)),
            ));
        };
        builder.header_open = false;
        if let Some(&(_, first_line)) = builder.label_index.get(&name) {
            let message = format!(
                "duplicate label {} in function {} (first defined on line {})",
                name_text(&name),
                name_text(&builder.parts.name),
                first_line + 1
            );
            return Err(self.error(span, message));
        }
        let index = u32::try_from(builder.parts.labels.len()).unwrap_or(u32::MAX);
        let target = u32::try_from(builder.parts.code.len()).unwrap_or(u32::MAX);
        builder.label_index.insert(name.clone(), (index, span.line));
        builder.parts.labels.push(Label { name, target });
        Ok(())
    }

    fn instruction(
        &mut self,
        c: &mut Cursor<'_>,
        mnemonic: &str,
        start: usize,
    ) -> Result<(), AsmError> {
        let Some(opcode) = MNEMONICS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(mnemonic))
        else {
            return Err(c.error(start, format!("unknown mnemonic '{mnemonic}'")));
        };
        let name = MNEMONICS.get(opcode).copied().unwrap_or("?");
        if self.current.is_none() {
            return Err(c.error(start, format!("instruction {name} before any .function")));
        }
        let mut operands = Vec::new();
        c.skip_ws();
        if !c.at_end() {
            loop {
                c.skip_ws();
                operands.push(c.operand()?);
                c.skip_ws();
                if c.at_end() {
                    break;
                }
                if !c.eat(',') {
                    return Err(c.error(
                        c.pos,
                        format!("expected ',' or end of line, found {}", c.found()),
                    ));
                }
            }
        }
        let kinds = signature(opcode);
        if operands.len() != kinds.len() {
            let nouns: Vec<&str> = kinds.iter().map(|k| k.noun()).collect();
            let message = format!(
                "{name} takes {} operand{} ({}), found {}",
                kinds.len(),
                if kinds.len() == 1 { "" } else { "s" },
                nouns.join(", "),
                operands.len()
            );
            let at = operands.get(kinds.len()).map_or(start, |(_, at)| *at);
            return Err(c.error(at, message));
        }
        let mut values = Vec::with_capacity(kinds.len());
        let mut first_operand = start;
        for (i, (&kind, (token, at))) in kinds.iter().zip(operands).enumerate() {
            if i == 0 {
                first_operand = at;
            }
            values.push(self.operand_value(c, kind, token, at)?);
        }
        let span = c.span(start);
        let Some(builder) = self.current.as_mut() else {
            return Err(c.error(start, format!("instruction {name} before any .function")));
        };
        use Instruction::*;
        use Value as V;
        let instruction = match (opcode, values.as_mut_slice()) {
            (0, [V::Reg(dst), V::Stack(offset)]) => Ld {
                dst: *dst,
                offset: *offset,
            },
            (1, [V::Reg(dst), V::Const(constant)]) => Ldi {
                dst: *dst,
                constant: *constant,
            },
            (2, [V::Reg(dst), V::Reg(src)]) => Mov {
                dst: *dst,
                src: *src,
            },
            (11, [V::Reg(dst), V::Reg(src)]) => Not {
                dst: *dst,
                src: *src,
            },
            (20, [V::Reg(a), V::Reg(b)]) => Cmp { a: *a, b: *b },
            (3..=10, [V::Reg(dst), V::Reg(a), V::Reg(b)]) => {
                Instruction::binary(opcode as u8, *dst, *a, *b)
                    .ok_or_else(|| c.error(start, format!("malformed operands for {name}")))?
            }
            (12, [V::Reg(dst), V::Reg(src), V::Reg(amount)]) => Shl {
                dst: *dst,
                src: *src,
                amount: *amount,
            },
            (13, [V::Reg(dst), V::Reg(src), V::Reg(amount)]) => Shr {
                dst: *dst,
                src: *src,
                amount: *amount,
            },
            (17, [V::Callee(callee)]) => Call { callee: *callee },
            (18, [V::Reg(src)]) => Ret { src: *src },
            (19, [V::Reg(src)]) => PushArg { src: *src },
            (_, [V::Name(label)]) => {
                let Some(placeholder) = jump(opcode, 0) else {
                    return Err(c.error(start, format!("{name} does not take a label")));
                };
                builder.jumps.push(PendingJump {
                    instruction: builder.parts.code.len(),
                    opcode,
                    label: std::mem::take(label),
                    span: c.span(first_operand),
                });
                placeholder
            }
            _ => {
                return Err(c.error(start, format!("malformed operands for {name}")));
            }
        };
        builder.header_open = false;
        for register in instruction.registers() {
            builder.max_register = Some(builder.max_register.map_or(register, |m| m.max(register)));
        }
        builder.parts.code.push(instruction);
        builder.instructions.push(span);
        Ok(())
    }

    /// Interprets one operand token as the kind the instruction expects.
    fn operand_value(
        &mut self,
        c: &Cursor<'_>,
        kind: Kind,
        token: Token<'_>,
        at: usize,
    ) -> Result<Value, AsmError> {
        let wrong = |expected: &str, token: &Token<'_>| {
            c.error(
                at,
                format!("expected {expected}, found {}", token.describe()),
            )
        };
        match kind {
            Kind::Reg => match token {
                Token::Word(w) => parse_register(w)
                    .map(Value::Reg)
                    .map_err(|message| c.error(at, message)),
                other => Err(wrong("a register (like r0)", &other)),
            },
            Kind::Const => {
                let constant = match token {
                    Token::Number(n) => parse_number(n).map_err(|m| c.error(at, m))?,
                    Token::Str(s) => Constant::String(s.into()),
                    Token::Unit => Constant::Unit,
                    Token::Word("true") => Constant::Bool(true),
                    Token::Word("false") => Constant::Bool(false),
                    Token::Word(w) => match parse_float_bits(w) {
                        Some(result) => result.map_err(|m| c.error(at, m))?,
                        None => {
                            return Err(wrong(
                                "a constant (an integer, float, string, true, false or ())",
                                &Token::Word(w),
                            ));
                        }
                    },
                    other @ Token::Stack(_) => {
                        return Err(wrong(
                            "a constant (an integer, float, string, true, false or ())",
                            &other,
                        ));
                    }
                };
                Ok(Value::Const(self.intern_constant(constant)))
            }
            Kind::Stack => match token {
                Token::Stack(k) => Ok(Value::Stack(k)),
                other => Err(wrong("a stack slot like [sp+0] or [sp-1]", &other)),
            },
            Kind::Label | Kind::Callee => {
                let name = match token {
                    Token::Word(w) => w.to_owned(),
                    Token::Str(s) => s,
                    other => {
                        return Err(wrong(
                            &format!("a {} (an identifier or a quoted string)", kind.noun()),
                            &other,
                        ));
                    }
                };
                if kind == Kind::Callee {
                    Ok(Value::Callee(self.intern_callee(name)))
                } else {
                    Ok(Value::Name(name))
                }
            }
        }
    }

    fn intern_constant(&mut self, constant: Constant) -> u32 {
        if let Some(&index) = self.constant_index.get(&constant) {
            return index;
        }
        let index = u32::try_from(self.constants.len()).unwrap_or(u32::MAX);
        self.constants.push(constant.clone());
        self.constant_index.insert(constant, index);
        index
    }

    fn intern_callee(&mut self, name: String) -> u32 {
        if let Some(&index) = self.callee_index.get(&name) {
            return index;
        }
        let index = u32::try_from(self.callees.len()).unwrap_or(u32::MAX);
        self.callees.push(name.clone());
        self.callee_index.insert(name, index);
        index
    }

    /// Resolves the current function's jumps and moves it to the finished list.
    fn finish_function(&mut self) -> Result<(), AsmError> {
        let Some(mut builder) = self.current.take() else {
            return Ok(());
        };
        for jump_ref in std::mem::take(&mut builder.jumps) {
            let Some(&(index, _)) = builder.label_index.get(&jump_ref.label) else {
                return Err(self.error(
                    jump_ref.span,
                    format!(
                        "unknown label {} in function {}",
                        name_text(&jump_ref.label),
                        name_text(&builder.parts.name)
                    ),
                ));
            };
            if let (Some(slot), Some(resolved)) = (
                builder.parts.code.get_mut(jump_ref.instruction),
                jump(jump_ref.opcode, index),
            ) {
                *slot = resolved;
            }
        }
        let used = builder.max_register.map_or(0, |r| u64::from(r) + 1);
        let needed = used.max(builder.parts.params.len() as u64);
        builder.parts.register_count = builder
            .declared_registers
            .unwrap_or_else(|| u16::try_from(needed).unwrap_or(u16::MAX));
        self.functions.push(builder.parts);
        self.spans.push(FunctionSpans {
            head: builder.head,
            instructions: builder.instructions,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Program, AsmError> {
        self.finish_function()?;
        let functions = std::mem::take(&mut self.functions);
        let constants = std::mem::take(&mut self.constants);
        let callees = std::mem::take(&mut self.callees);
        Program::new(constants, functions, callees).map_err(|(index, error)| {
            let span = self.program_error_span(index, &error);
            self.error(span, error.to_string())
        })
    }

    fn program_error_span(&self, function: usize, error: &ProgramError) -> Span {
        let fallback = Span { line: 0, byte: 0 };
        let Some(spans) = self.spans.get(function) else {
            return fallback;
        };
        error
            .instruction()
            .and_then(|i| spans.instructions.get(i).copied())
            .unwrap_or(spans.head)
    }
}

fn parse_register(word: &str) -> Result<Reg, String> {
    let digits = word
        .strip_prefix('r')
        .or_else(|| word.strip_prefix('R'))
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
    let Some(digits) = digits else {
        return Err(format!("expected a register (like r0), found '{word}'"));
    };
    match digits.parse::<u64>() {
        Ok(n) if n < u64::from(MAX_FRAME_SIZE) => Ok(n as Reg),
        _ => Err(format!(
            "register {word} is above the frame limit (r{})",
            MAX_FRAME_SIZE - 1
        )),
    }
}
