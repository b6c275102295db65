//! The assembler: turns source lines into functions (directives, labels, instructions and
//! their operands), builds the constant pool and callee table, and validates the result with
//! [`Program::new`].

use std::collections::HashMap;

use crate::program::{
    Constant, FORMAT_VERSION, FunctionParts, FunctionType, FunctionTypes, Instruction, Label,
    MAX_FRAME_SIZE, MNEMONICS, Program, ProgramError, Reg,
};

use super::AsmError;
use super::lexer::{Cursor, Span, Token, error_at, is_ident_start};
use super::literal::{name_text, parse_float_bits, parse_number, parse_register};
use super::meta::{Header, function_type};

/// Assembles source text (see the [module documentation](crate::asm) for the syntax) into a
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

/// The operand kinds instructions take.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OperandKind {
    Reg,
    Const,
    Stack,
    Label,
    Callee,
    Slot,
}

impl OperandKind {
    fn noun(self) -> &'static str {
        match self {
            OperandKind::Reg => "register",
            OperandKind::Const => "constant",
            OperandKind::Stack => "stack slot",
            OperandKind::Label => "label",
            OperandKind::Callee => "function name",
            OperandKind::Slot => "spill slot",
        }
    }
}

/// The operand kinds of the instruction with this opcode (index into [`MNEMONICS`]).
fn signature(opcode: usize) -> &'static [OperandKind] {
    use OperandKind::*;
    match opcode {
        0 => &[Reg, Stack],
        1 => &[Reg, Const],
        2 | 11 | 20 => &[Reg, Reg],
        3..=10 | 12 | 13 => &[Reg, Reg, Reg],
        14 | 15 | 16 | 21 | 22 => &[Label],
        17 => &[Callee],
        23 => &[],
        24 => &[Reg, Slot],
        25 => &[Slot, Reg],
        _ => &[Reg],
    }
}

/// The opcode (index into [`MNEMONICS`]) of a mnemonic in any case: the mnemonic packed
/// upper-cased into an integer once, so that finding it is integer comparisons.
fn opcode_of(mnemonic: &str) -> Option<usize> {
    let key = mnemonic_key(mnemonic.as_bytes())?;
    MNEMONIC_KEYS.iter().position(|&k| k == key)
}

/// Up to 7 bytes, upper-cased, and their count in the top byte (`None` if longer: no
/// mnemonic is).
const fn mnemonic_key(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 7 {
        return None;
    }
    let mut key = (bytes.len() as u64) << 56;
    let mut i = 0;
    while i < bytes.len() {
        key |= (bytes[i].to_ascii_uppercase() as u64) << (8 * i);
        i += 1;
    }
    Some(key)
}

/// [`mnemonic_key`] of every mnemonic, in opcode order.
const MNEMONIC_KEYS: [u64; MNEMONICS.len()] = {
    let mut keys = [0; MNEMONICS.len()];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = match mnemonic_key(MNEMONICS[i].as_bytes()) {
            Some(key) => key,
            None => panic!("a mnemonic is longer than 7 bytes"),
        };
        i += 1;
    }
    keys
};

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

/// An operand after interpretation: a register, a constant-pool index, a stack offset, a
/// callee-table index, or a label name (resolved when the function ends).
enum Operand {
    Reg(Reg),
    Const(u32),
    Stack(i32),
    Callee(u32),
    Slot(u32),
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
    header: Header,
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
            header: Header::default(),
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
        let started = self.current.is_some() || !self.functions.is_empty();
        if let Some(result) = self.header.directive(c, directive, start, started) {
            result
        } else if directive.eq_ignore_ascii_case("function") {
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
                format!(
                    "unknown directive '{name}' (expected .function, .upvalues, .parent, .version, .backend, .curve, .client or .demand)"
                ),
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
        let mut param_types: Vec<Option<FunctionType>> = Vec::new();
        c.skip_ws();
        if c.eat('(') {
            c.skip_ws();
            if !c.eat(')') {
                loop {
                    c.skip_ws();
                    let at = c.pos;
                    let quoted = c.peek() == Some('"');
                    let mut param = c.name("a parameter name")?;
                    // `a: int64`: an unquoted name takes the ':' with it, as labels do.
                    let typed = if !quoted && param.ends_with(':') {
                        param.pop();
                        true
                    } else {
                        c.skip_ws();
                        c.eat(':')
                    };
                    param_types.push(if typed {
                        Some(function_type(c, 1)?)
                    } else {
                        None
                    });
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
        let mut ret = None;
        if c.eat('-') {
            if !c.eat('>') {
                return Err(c.error(c.pos, format!("expected '->', found {}", c.found())));
            }
            ret = Some(function_type(c, 1)?);
            c.skip_ws();
        }
        let types =
            (ret.is_some() || param_types.iter().any(Option::is_some)).then(|| FunctionTypes {
                params: param_types
                    .into_iter()
                    .map(|t| t.unwrap_or(FunctionType::Unknown))
                    .collect(),
                ret: ret.unwrap_or(FunctionType::Unknown),
            });
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
                types,
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
        let Some(opcode) = opcode_of(mnemonic) else {
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
            values.push(self.interpret_operand(c, kind, token, at)?);
        }
        let span = c.span(start);
        let Some(builder) = self.current.as_mut() else {
            return Err(c.error(start, format!("instruction {name} before any .function")));
        };
        use Instruction::*;
        use Operand as Op;
        let instruction = match (opcode, values.as_mut_slice()) {
            (0, [Op::Reg(dst), Op::Stack(offset)]) => Ld {
                dst: *dst,
                offset: *offset,
            },
            (1, [Op::Reg(dst), Op::Const(constant)]) => Ldi {
                dst: *dst,
                constant: *constant,
            },
            (2, [Op::Reg(dst), Op::Reg(src)]) => Mov {
                dst: *dst,
                src: *src,
            },
            (11, [Op::Reg(dst), Op::Reg(src)]) => Not {
                dst: *dst,
                src: *src,
            },
            (20, [Op::Reg(a), Op::Reg(b)]) => Cmp { a: *a, b: *b },
            (23, []) => Nop,
            (24, [Op::Reg(dst), Op::Slot(slot)]) => Lds {
                dst: *dst,
                slot: *slot,
            },
            (25, [Op::Slot(slot), Op::Reg(src)]) => Sts {
                slot: *slot,
                src: *src,
            },
            (3..=10, [Op::Reg(dst), Op::Reg(a), Op::Reg(b)]) => {
                Instruction::binary(opcode as u8, *dst, *a, *b)
                    .ok_or_else(|| c.error(start, format!("malformed operands for {name}")))?
            }
            (12, [Op::Reg(dst), Op::Reg(src), Op::Reg(amount)]) => Shl {
                dst: *dst,
                src: *src,
                amount: *amount,
            },
            (13, [Op::Reg(dst), Op::Reg(src), Op::Reg(amount)]) => Shr {
                dst: *dst,
                src: *src,
                amount: *amount,
            },
            (17, [Op::Callee(callee)]) => Call { callee: *callee },
            (18, [Op::Reg(src)]) => Ret { src: *src },
            (19, [Op::Reg(src)]) => PushArg { src: *src },
            (_, [Op::Name(label)]) => {
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
    fn interpret_operand(
        &mut self,
        c: &Cursor<'_>,
        kind: OperandKind,
        token: Token<'_>,
        at: usize,
    ) -> Result<Operand, AsmError> {
        let wrong = |expected: &str, token: &Token<'_>| {
            c.error(
                at,
                format!("expected {expected}, found {}", token.describe()),
            )
        };
        match kind {
            OperandKind::Reg => match token {
                Token::Word(w) => parse_register(w)
                    .map(Operand::Reg)
                    .map_err(|message| c.error(at, message)),
                other => Err(wrong("a register (like r0)", &other)),
            },
            OperandKind::Const => {
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
                Ok(Operand::Const(self.intern_constant(constant)))
            }
            OperandKind::Slot => match token {
                Token::Number(n) => n.parse::<u32>().map(Operand::Slot).map_err(|_| {
                    c.error(
                        at,
                        format!("spill slot {n} is not a number from 0 to {}", u32::MAX),
                    )
                }),
                other => Err(wrong("a spill slot (a number)", &other)),
            },
            OperandKind::Stack => match token {
                Token::Stack(k) => Ok(Operand::Stack(k)),
                other => Err(wrong("a stack slot like [sp+0] or [sp-1]", &other)),
            },
            OperandKind::Label | OperandKind::Callee => {
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
                if kind == OperandKind::Callee {
                    Ok(Operand::Callee(self.intern_callee(name)))
                } else {
                    Ok(Operand::Name(name))
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
        let program = Program::new(constants, functions, callees).map_err(|(index, error)| {
            let span = self.program_error_span(index, &error);
            self.error(span, error.to_string())
        })?;
        let version = self.header.version.map_or(FORMAT_VERSION, |(v, _)| v);
        let manifest = std::mem::take(&mut self.header.manifest);
        program.with_format(version, Some(manifest)).map_err(|e| {
            let span = (self.header.version.map(|(_, at)| at))
                .or(self.header.manifest_at)
                .unwrap_or(Span { line: 0, byte: 0 });
            self.error(span, e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_are_found_in_any_case_and_nothing_else_is() {
        for (i, m) in MNEMONICS.iter().enumerate() {
            assert_eq!(opcode_of(m), Some(i), "{m}");
            assert_eq!(opcode_of(&m.to_ascii_lowercase()), Some(i), "{m}");
        }
        assert_eq!(opcode_of("PushArg"), Some(19));
        for other in ["", "L", "LDD", "PUSHARGS", "LD\0", "ÄDD", "JMPNEQQQQ"] {
            assert_eq!(opcode_of(other), None, "{other:?}");
        }
    }
}
