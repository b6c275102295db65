//! Assembly for what a program records besides code: the format version, the manifest
//! (`.version`, `.backend`, `.curve`, `.client`, `.demand`), function types (`int64`,
//! `fix<32>`, `list<T>`, …) and share types (`int<64>`, `fixed<64, 16>`), read and printed.

use std::fmt::Write as _;

use crate::program::{
    ClientIo, FORMAT_VERSION, FunctionType, MAX_TYPE_DEPTH, Manifest, MpcBackend, MpcCurve,
    Program, ShareType,
};

use super::AsmError;
use super::lexer::{Cursor, Span, is_ident_start};

/// The program-level directives read so far.
#[derive(Default)]
pub(super) struct Header {
    /// `.version N`, with where it was written.
    pub(super) version: Option<(u16, Span)>,
    /// The manifest the directives describe.
    pub(super) manifest: Manifest,
    /// Where the first manifest directive was written.
    pub(super) manifest_at: Option<Span>,
    seen: Vec<&'static str>,
}

impl Header {
    /// Reads the program-level directive `name` (without its dot) if it is one; `None` when
    /// it is not. `started` says whether a `.function` came before.
    pub(super) fn directive(
        &mut self,
        c: &mut Cursor<'_>,
        name: &str,
        start: usize,
        started: bool,
    ) -> Option<Result<(), AsmError>> {
        let key = ["version", "backend", "curve", "client", "demand"]
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(name))?;
        Some(self.read(c, key, start, started))
    }

    fn read(
        &mut self,
        c: &mut Cursor<'_>,
        key: &'static str,
        start: usize,
        started: bool,
    ) -> Result<(), AsmError> {
        if started {
            return Err(c.error(
                start,
                format!("'.{key}' must come before the first .function"),
            ));
        }
        if key != "client" {
            if self.seen.contains(&key) {
                return Err(c.error(start, format!("duplicate '.{key}'")));
            }
            self.seen.push(key);
        }
        if key != "version" {
            self.manifest_at.get_or_insert(c.span(start));
        }
        c.skip_ws();
        match key {
            "version" => {
                let at = c.pos;
                let v: u16 = number(c, "a format version")?;
                if v > FORMAT_VERSION {
                    return Err(c.error(
                        at,
                        format!("unsupported STFL version {v} (only 0 to {FORMAT_VERSION})"),
                    ));
                }
                self.version = Some((v, c.span(start)));
            }
            "backend" => {
                let at = c.pos;
                let word = c.word();
                self.manifest.backend = MpcBackend::ALL
                    .into_iter()
                    .find(|b| b.name().eq_ignore_ascii_case(word))
                    .ok_or_else(|| c.error(at, "expected an MPC backend (honeybadger or avss)"))?;
            }
            "curve" => {
                let at = c.pos;
                let word = c.word();
                self.manifest.curve = MpcCurve::ALL
                    .into_iter()
                    .find(|k| k.name().eq_ignore_ascii_case(word))
                    .ok_or_else(|| {
                        c.error(at, "expected an MPC curve (bls12_381, bn254, curve25519, ed25519, secp256k1 or secp256r1)")
                    })?;
            }
            "client" => {
                let client_slot = number(c, "a client slot")?;
                let inputs = share_list(c, "inputs")?;
                let outputs = share_list(c, "outputs")?;
                self.manifest.clients.push(ClientIo {
                    client_slot,
                    inputs,
                    outputs,
                });
            }
            _ => self.demand(c)?,
        }
        c.expect_end()
    }

    /// `.demand` fields: `triples N`, `randoms N`, `prandbits N`, `prandints N`,
    /// `dynamic true|false`, each at most once, in any order.
    fn demand(&mut self, c: &mut Cursor<'_>) -> Result<(), AsmError> {
        let mut seen: Vec<&str> = Vec::new();
        let d = &mut self.manifest.demand;
        loop {
            c.skip_ws();
            if c.at_end() {
                return Ok(());
            }
            let at = c.pos;
            let word = if c.peek().is_some_and(is_ident_start) {
                c.word()
            } else {
                ""
            };
            if seen.contains(&word) {
                return Err(c.error(at, format!("duplicate '{word}' in .demand")));
            }
            seen.push(word);
            c.skip_ws();
            match word {
                "triples" => d.triples = number(c, "a count")?,
                "randoms" => d.randoms = number(c, "a count")?,
                "prandbits" => d.prandbits = number(c, "a count")?,
                "prandints" => d.prandints = number(c, "a count")?,
                "dynamic" => {
                    let at = c.pos;
                    d.dynamic = match c.word() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(c.error(at, "expected true or false")),
                    }
                }
                _ => {
                    return Err(c.error(
                        at,
                        "expected triples, randoms, prandbits, prandints or dynamic",
                    ));
                }
            }
        }
    }
}

/// A decimal (or `0x` hexadecimal) unsigned number.
fn number<T: TryFrom<u64>>(c: &mut Cursor<'_>, what: &str) -> Result<T, AsmError> {
    c.skip_ws();
    let at = c.pos;
    while c
        .peek()
        .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        c.bump();
    }
    let text = c.slice(at);
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if text.starts_with(|ch: char| ch.is_ascii_digit()) => text.parse::<u64>().ok(),
        None => None,
    };
    value.and_then(|v| T::try_from(v).ok()).ok_or_else(|| {
        c.error(
            at,
            format!("expected {what} (a number in range), found '{text}'"),
        )
    })
}

fn expect(c: &mut Cursor<'_>, ch: char) -> Result<(), AsmError> {
    c.skip_ws();
    if c.eat(ch) {
        Ok(())
    } else {
        Err(c.error(c.pos, format!("expected '{ch}', found {}", c.found())))
    }
}

/// `inputs(T, …)` or `outputs(T, …)`.
fn share_list(c: &mut Cursor<'_>, keyword: &str) -> Result<Vec<ShareType>, AsmError> {
    c.skip_ws();
    let at = c.pos;
    if c.word() != keyword {
        return Err(c.error(at, format!("expected '{keyword}(…)'")));
    }
    expect(c, '(')?;
    let mut list = Vec::new();
    c.skip_ws();
    if c.eat(')') {
        return Ok(list);
    }
    loop {
        c.skip_ws();
        list.push(share_type(c)?);
        c.skip_ws();
        if c.eat(')') {
            return Ok(list);
        }
        expect(c, ',')?;
    }
}

/// `int<N>`, `uint<N>` or `fixed<TOTAL, FRACTIONAL>`.
fn share_type(c: &mut Cursor<'_>) -> Result<ShareType, AsmError> {
    let at = c.pos;
    let word = c.word();
    expect(c, '<')?;
    let share = match word {
        "int" => ShareType::SecretInt {
            bit_length: number(c, "a bit length")?,
        },
        "uint" => ShareType::SecretUInt {
            bit_length: number(c, "a bit length")?,
        },
        "fixed" => {
            let total_bits = number(c, "a bit count")?;
            expect(c, ',')?;
            ShareType::SecretFixedPoint {
                total_bits,
                fractional_bits: number(c, "a bit count")?,
            }
        }
        _ => {
            return Err(c.error(at, "expected a share type: int<N>, uint<N> or fixed<T, F>"));
        }
    };
    expect(c, '>')?;
    match share.problem() {
        Some(problem) => Err(c.error(at, format!("invalid share type {share}: {problem}"))),
        None => Ok(share),
    }
}

/// A function type (see [`FunctionType`]'s `Display` for the spellings).
pub(super) fn function_type(c: &mut Cursor<'_>, depth: usize) -> Result<FunctionType, AsmError> {
    c.skip_ws();
    let at = c.pos;
    if depth > MAX_TYPE_DEPTH {
        return Err(c.error(
            at,
            format!("type nests deeper than {MAX_TYPE_DEPTH} levels"),
        ));
    }
    if !c.peek().is_some_and(is_ident_start) {
        return Err(c.error(at, format!("expected a type, found {}", c.found())));
    }
    let word = c.word();
    let inner = |c: &mut Cursor<'_>| function_type(c, depth + 1).map(Box::new);
    let bits = |c: &mut Cursor<'_>, text: &str| -> Result<u8, AsmError> {
        match text.parse::<u8>() {
            Ok(b) if b > 0 => Ok(b),
            _ => Err(c.error(at, format!("'{word}': the bit width must be 1 to 255"))),
        }
    };
    let ty = match word {
        "float" => FunctionType::Float,
        "string" => FunctionType::String,
        "bool" => FunctionType::Bool,
        "nil" => FunctionType::Nil,
        "void" => FunctionType::Void,
        "unknown" => FunctionType::Unknown,
        "fix" => {
            expect(c, '<')?;
            let n: u8 = number(c, "a bit width")?;
            expect(c, '>')?;
            FunctionType::Fixed {
                bits: bits(c, &n.to_string())?,
            }
        }
        "secret" | "list" => {
            expect(c, '<')?;
            let t = inner(c)?;
            expect(c, '>')?;
            if word == "secret" {
                FunctionType::Secret(t)
            } else {
                FunctionType::List(t)
            }
        }
        "dict" => {
            expect(c, '<')?;
            let k = inner(c)?;
            expect(c, ',')?;
            let v = inner(c)?;
            expect(c, '>')?;
            FunctionType::Dict(k, v)
        }
        "object" | "var" | "generic" => {
            expect(c, '<')?;
            c.skip_ws();
            let name = c.name("a type name")?;
            let mut params = Vec::new();
            if word == "generic" {
                c.skip_ws();
                while c.eat(',') {
                    params.push(function_type(c, depth + 1)?);
                    c.skip_ws();
                }
            }
            expect(c, '>')?;
            match word {
                "object" => FunctionType::Object(name),
                "var" => FunctionType::TypeVar(name),
                _ => FunctionType::Generic(name, params),
            }
        }
        _ => {
            let (signed, digits) = match word.strip_prefix("uint") {
                Some(d) => (false, d),
                None => (true, word.strip_prefix("int").unwrap_or("")),
            };
            if digits.is_empty() || !digits.chars().all(|ch| ch.is_ascii_digit()) {
                return Err(c.error(at, format!("unknown type '{word}'")));
            }
            FunctionType::Int {
                signed,
                bits: bits(c, digits)?,
            }
        }
    };
    Ok(ty)
}

/// The program-level directives that give back `program`'s version and manifest, each on
/// its own line (nothing for a version 9 program without a manifest).
pub(super) fn header_text(program: &Program) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    if program.version() != FORMAT_VERSION {
        let _ = writeln!(out, ".version {}", program.version());
    }
    let Some(m) = program.manifest() else {
        return out;
    };
    if m.backend != MpcBackend::default() {
        let _ = writeln!(out, ".backend {}", m.backend.name());
    }
    if m.curve != MpcCurve::default() {
        let _ = writeln!(out, ".curve {}", m.curve.name());
    }
    let list = |l: &[ShareType]| {
        l.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for client in &m.clients {
        let _ = writeln!(
            out,
            ".client {} inputs({}) outputs({})",
            client.client_slot,
            list(&client.inputs),
            list(&client.outputs)
        );
    }
    let d = &m.demand;
    if *d != Default::default() {
        let _ = writeln!(
            out,
            ".demand triples {} randoms {} prandbits {} prandints {} dynamic {}",
            d.triples, d.randoms, d.prandbits, d.prandints, d.dynamic
        );
    }
    out
}
