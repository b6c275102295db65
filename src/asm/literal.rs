//! The spelling of operands: numeric, float-bits and register literals read into values, and
//! names written back as text (bare when plain, quoted otherwise).

use std::borrow::Cow;

use crate::program::{Constant, MAX_FRAME_SIZE, Reg};

use super::lexer::{is_ident_char, is_ident_start};

/// Whether a name can be written without quotes everywhere a name may appear.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_char) && !name.ends_with(':')
}

/// A name as written in assembly: bare when plain, quoted with escapes otherwise.
pub(super) fn name_text(name: &str) -> Cow<'_, str> {
    if is_plain_name(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(Constant::String(name.into()).to_string())
    }
}

/// Parses a numeric literal (as lexed by [`Cursor::number`]) into a constant.
///
/// [`Cursor::number`]: super::lexer::Cursor::number
pub(super) fn parse_number(token: &str) -> Result<Constant, String> {
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
pub(super) fn parse_float_bits(word: &str) -> Option<Result<Constant, String>> {
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

pub(super) fn parse_register(word: &str) -> Result<Reg, String> {
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
