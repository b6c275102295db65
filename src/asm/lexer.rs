//! The lexer: a cursor over one line of source that reads words, numbers, strings, stack
//! slots and names, and turns positions into [`AsmError`]s with line and column.

use crate::program::Constant;

use super::AsmError;

pub(super) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(super) fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '$')
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Builds an error at a byte offset of a line.
pub(super) fn error_at(
    line: usize,
    text: &str,
    byte: usize,
    message: impl Into<String>,
) -> AsmError {
    let column = text.get(..byte).map_or(byte, |s| s.chars().count()) + 1;
    AsmError {
        line: line + 1,
        column,
        message: message.into(),
    }
}

/// A position in the source: a 0-based line index and a byte offset in that line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub(super) line: usize,
    pub(super) byte: usize,
}

/// One operand as written, before it is interpreted for its instruction.
#[derive(Debug)]
pub(super) enum Token<'a> {
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
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Cursor<'a> {
    line: usize,
    text: &'a str,
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(line: usize, text: &'a str) -> Self {
        Cursor { line, text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<char> {
        // Source is mostly ASCII: such a byte is a whole character (and always at a character
        // boundary), so only other bytes need decoding.
        match self.text.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii() => Some(char::from(b)),
            None => None,
            Some(_) => self.rest().chars().next(),
        }
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(super) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub(super) fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.bump();
        }
    }

    /// At the end of the line's code (end of line or a comment).
    pub(super) fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(';'))
    }

    pub(super) fn slice(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or("")
    }

    pub(super) fn span(&self, byte: usize) -> Span {
        Span {
            line: self.line,
            byte,
        }
    }

    pub(super) fn error(&self, byte: usize, message: impl Into<String>) -> AsmError {
        error_at(self.line, self.text, byte, message)
    }

    /// What is at the cursor, for error messages.
    pub(super) fn found(&self) -> String {
        match self.peek() {
            None | Some(';') => "end of line".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// An identifier-like word; the caller has checked the first character.
    pub(super) fn word(&mut self) -> &'a str {
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
    pub(super) fn string(&mut self) -> Result<String, AsmError> {
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
    pub(super) fn operand(&mut self) -> Result<(Token<'a>, usize), AsmError> {
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
    pub(super) fn name(&mut self, what: &str) -> Result<String, AsmError> {
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
    pub(super) fn name_list(&mut self, what: &str) -> Result<Vec<(String, usize)>, AsmError> {
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

    pub(super) fn expect_end(&mut self) -> Result<(), AsmError> {
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
