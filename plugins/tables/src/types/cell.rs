//! One cell's text parsed as a column type: the value as a [`Cell`], or a
//! [`CellError`] whose class becomes a dead-letter header. Integers and
//! decimals, most of the cells of most files, have parsers of their own
//! that take one pass over the bytes; the tests hold them to reference
//! parsers on generated numbers.

use super::ColumnType;
use super::time::parse_timestamp;

/// One parsed value, before it is appended. Strings borrow the input by
/// byte range so parsing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// An `int64`.
    Int(i64),
    /// A `float64`.
    Float(f64),
    /// A `bool`.
    Bool(bool),
    /// A `string` cell: the text is the whole input of the cell.
    Text,
    /// A timestamp in microseconds since the epoch, UTC.
    Micros(i64),
    /// A decimal, unscaled.
    Decimal(i128),
}

/// Why a cell did not parse; the class becomes a dead-letter header and a
/// log field, so it comes from a small fixed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// `parse_error`, `out_of_range` or `invalid_utf8`.
    pub class: &'static str,
    /// What was found and what was expected.
    pub message: String,
}

impl CellError {
    pub(super) fn parse(ty: &ColumnType, text: &str) -> CellError {
        CellError {
            class: "parse_error",
            message: format!("`{}` is not a valid {}", shorten(text), ty.name()),
        }
    }

    pub(super) fn range(ty: &ColumnType, text: &str) -> CellError {
        CellError {
            class: "out_of_range",
            message: format!("`{}` is out of range for {}", shorten(text), ty.name()),
        }
    }
}

/// A value shown in a message, cut so a huge cell cannot flood the log.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Parses one cell's bytes as `ty`. The caller has already turned the
/// configured null spellings into [`Cell::Null`].
pub fn parse_bytes(ty: &ColumnType, bytes: &[u8]) -> Result<Cell, CellError> {
    let text = std::str::from_utf8(bytes).map_err(|e| utf8_error(ty, &e))?;
    parse_text(ty, text)
}

/// The error for a cell of type `ty` whose bytes are not UTF-8.
pub fn utf8_error(ty: &ColumnType, e: &std::str::Utf8Error) -> CellError {
    CellError {
        class: "invalid_utf8",
        message: format!(
            "invalid UTF-8 at byte {} of the value; expected {}",
            e.valid_up_to(),
            ty.name()
        ),
    }
}

/// Parses one cell's text as `ty`.
pub fn parse_text(ty: &ColumnType, text: &str) -> Result<Cell, CellError> {
    match ty {
        ColumnType::String => Ok(Cell::Text),
        ColumnType::Int64 => parse_int(trim(text)).map(Cell::Int).map_err(|overflow| {
            if overflow {
                CellError::range(ty, text)
            } else {
                CellError::parse(ty, text)
            }
        }),
        ColumnType::Float64 => match trim(text).parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Cell::Float(v)),
            // JSON has no NaN or infinity: refuse rather than write `null`.
            Ok(_) if looks_numeric(trim(text)) => Err(CellError::range(ty, text)),
            _ => Err(CellError::parse(ty, text)),
        },
        ColumnType::Bool => {
            let t = trim(text);
            let is = |words: &[&str]| words.iter().any(|w| t.eq_ignore_ascii_case(w));
            if is(&["true", "t", "yes", "y", "1"]) {
                Ok(Cell::Bool(true))
            } else if is(&["false", "f", "no", "n", "0"]) {
                Ok(Cell::Bool(false))
            } else {
                Err(CellError::parse(ty, text))
            }
        }
        ColumnType::Timestamp(format) => parse_timestamp(trim(text), format.as_deref())
            .map(Cell::Micros)
            .ok_or_else(|| CellError::parse(ty, text)),
        ColumnType::Decimal(p, s) => parse_decimal(trim(text), *p, *s)
            .map(Cell::Decimal)
            .map_err(|overflow| {
                if overflow {
                    CellError::range(ty, text)
                } else {
                    CellError::parse(ty, text)
                }
            }),
    }
}

/// `text.trim()`, without looking at its characters when its first and
/// last bytes are printable ASCII (the common case in a data file).
pub(super) fn trim(text: &str) -> &str {
    let plain = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    if plain(text.as_bytes().first()) && plain(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

/// Whether `text` is a number as written in decimal (an overflowing
/// float such as `1e400` is out of range, not garbage).
pub(super) fn looks_numeric(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    !t.is_empty()
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// An integer in plain decimal (one optional sign, then digits);
/// `Err(true)` when it is one but does not fit.
#[inline]
pub(super) fn parse_int(text: &str) -> Result<i64, bool> {
    let (negative, digits) = split_sign(text.as_bytes());
    if digits.is_empty() {
        return Err(false);
    }
    if digits.len() <= 18 {
        // Eighteen digits cannot overflow: no check on each step.
        let mut v = 0i64;
        for &b in digits {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(false);
            }
            v = v * 10 + i64::from(d);
        }
        return Ok(if negative { -v } else { v });
    }
    // Accumulated as a negative number, whose range reaches `i64::MIN`.
    // Every byte is checked even after an overflow, so that `9…9x` is
    // garbage rather than out of range.
    let mut value: Option<i64> = Some(0);
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(false);
        }
        value = value
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_sub(i64::from(d)));
    }
    match value {
        Some(v) if negative => Ok(v),
        Some(v) => v.checked_neg().ok_or(true),
        None => Err(true),
    }
}

/// A leading `-` or `+` (one at most), and the rest.
fn split_sign(b: &[u8]) -> (bool, &[u8]) {
    match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    }
}

/// A decimal with at most `scale` fractional digits and at most
/// `precision` digits in all; `Err(true)` when it has too many digits.
#[inline]
pub(super) fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, bool> {
    match short_decimal(text.as_bytes(), precision, scale) {
        Some(v) => Ok(v),
        None => long_decimal(text, precision, scale),
    }
}

/// A valid decimal that fits a `u64` once scaled, in one pass over its
/// bytes; `None` for anything else, valid or not.
#[inline]
fn short_decimal(text: &[u8], precision: u8, scale: i8) -> Option<i128> {
    let (negative, body) = split_sign(text);
    // Nineteen digits, or eighteen and a point, fit a u64 unscaled.
    if body.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    // Digits before the point, leading zeros not counted.
    let mut int_len = 0usize;
    // Digits after the point, once there is one.
    let mut frac_len: Option<usize> = None;
    for &b in body {
        let d = b.wrapping_sub(b'0');
        if d <= 9 {
            v = v * 10 + u64::from(d);
            match &mut frac_len {
                Some(n) => *n += 1,
                None if v != 0 => int_len += 1,
                None => {}
            }
        } else if b == b'.' && frac_len.is_none() {
            frac_len = Some(0);
        } else {
            return None;
        }
    }
    // No digit at all (`""`, `"."`) is not a number.
    let no_digits = body.len() == usize::from(frac_len.is_some());
    let frac_len = frac_len.unwrap_or(0);
    let scale = scale as usize;
    if no_digits || frac_len > scale || int_len + scale > usize::from(precision).min(18) {
        return None;
    }
    let v = i128::from(v * 10u64.pow((scale - frac_len) as u32));
    Some(if negative { -v } else { v })
}

/// [`parse_decimal`] for any length.
fn long_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, bool> {
    let (negative, body) = split_sign(text.as_bytes());
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &[][..]),
    };
    let digits_ok = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_ok(int_part)
        || !digits_ok(frac_part)
    {
        return Err(false);
    }
    let scale = scale as usize;
    let zeros = int_part.iter().take_while(|&&b| b == b'0').count();
    let int_part = &int_part[zeros..];
    if frac_part.len() > scale || int_part.len() + scale > precision as usize {
        return Err(true);
    }
    let missing = (scale - frac_part.len()) as u32;
    let value = if int_part.len() + scale <= 18 {
        // Fits a u64 with room to spare, which is cheaper than an i128.
        let mut v = 0u64;
        for b in int_part.iter().chain(frac_part) {
            v = v * 10 + u64::from(b - b'0');
        }
        i128::from(v * 10u64.pow(missing))
    } else {
        // At most 38 digits, so this cannot overflow an i128.
        let mut v = 0i128;
        for b in int_part.iter().chain(frac_part) {
            v = v * 10 + i128::from(b - b'0');
        }
        v * 10i128.pow(missing)
    };
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::tests::Rng;

    #[test]
    fn integers_that_overflow_are_out_of_range_not_garbage() {
        let e = parse_text(&ColumnType::Int64, "99999999999999999999").unwrap_err();
        assert_eq!(e.class, "out_of_range");
        let e = parse_text(&ColumnType::Int64, "12a").unwrap_err();
        assert_eq!(e.class, "parse_error");
        assert_eq!(parse_text(&ColumnType::Int64, " -42 "), Ok(Cell::Int(-42)));
        let e = parse_text(&ColumnType::Float64, "1e400").unwrap_err();
        assert_eq!(e.class, "out_of_range");
        assert_eq!(
            parse_text(&ColumnType::Float64, "NaN").unwrap_err().class,
            "parse_error"
        );
    }

    #[test]
    fn decimals_are_exact_and_never_rounded() {
        let ty = ColumnType::Decimal(10, 2);
        assert_eq!(parse_text(&ty, "12.5"), Ok(Cell::Decimal(1250)));
        assert_eq!(parse_text(&ty, "-0.01"), Ok(Cell::Decimal(-1)));
        assert_eq!(parse_text(&ty, "7"), Ok(Cell::Decimal(700)));
        assert_eq!(parse_text(&ty, "1.234").unwrap_err().class, "out_of_range");
        assert_eq!(
            parse_text(&ty, "123456789").unwrap_err().class,
            "out_of_range"
        );
        assert_eq!(parse_text(&ty, "1.2.3").unwrap_err().class, "parse_error");
        assert_eq!(parse_text(&ty, ".").unwrap_err().class, "parse_error");
    }

    #[test]
    fn invalid_utf8_is_its_own_class() {
        let e = parse_bytes(&ColumnType::String, b"ab\xffc").unwrap_err();
        assert_eq!(e.class, "invalid_utf8");
        assert!(e.message.contains("byte 2"), "{}", e.message);
    }

    /// The integer parser this module had before its fast path, kept as
    /// the reference the fast one must agree with.
    fn reference_int(text: &str) -> Result<i64, bool> {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(false);
        }
        text.parse::<i64>().map_err(|_| true)
    }

    /// The decimal parser this module had before its fast path.
    fn reference_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, bool> {
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty())
            || !digits_ok(int_part)
            || !digits_ok(frac_part)
        {
            return Err(false);
        }
        let scale = scale as usize;
        let int_part = int_part.trim_start_matches('0');
        if frac_part.len() > scale || int_part.len() + scale > precision as usize {
            return Err(true);
        }
        let mut value: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            value = value * 10 + i128::from(b - b'0');
        }
        for _ in frac_part.len()..scale {
            value *= 10;
        }
        Ok(if negative { -value } else { value })
    }

    /// Mostly numbers, some of them broken: a sign, digits (often with
    /// leading zeros), a point, more digits, sometimes a stray byte.
    fn number_like(rng: &mut Rng) -> String {
        let mut text = rng.pick(&["", "", "", "-", "+", "--", "+-"]).to_string();
        let zeros = if rng.below(4) == 0 { rng.below(4) } else { 0 };
        text.push_str(&"0".repeat(zeros));
        let int_len = rng.below(24);
        text.push_str(&rng.text(b"0123456789", int_len));
        if rng.below(2) == 0 {
            text.push('.');
            let frac_len = rng.below(8);
            text.push_str(&rng.text(b"0123456789", frac_len));
        }
        if rng.below(8) == 0 && !text.is_empty() {
            let at = rng.below(text.len());
            text.replace_range(at..=at, &rng.text(b"x .-+e0", 1));
        }
        if rng.below(16) == 0 {
            text = format!(" {text}\t");
        }
        text
    }

    #[test]
    fn integers_parse_as_the_standard_parser_does() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "+0",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "+9223372036854775807",
            "000000000000000000000000009",
            "999999999999999999",
            "9999999999999999999",
            "99999999999999999999x",
            "",
            "-",
            "+",
            "1-",
            " 12 ",
            "1_000",
            "١٢",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = Rng::new(1);
        cases.extend((0..20_000).map(|_| number_like(&mut rng)));
        for text in &cases {
            assert_eq!(
                parse_int(text.trim()),
                reference_int(text.trim()),
                "{text:?}"
            );
            let expected = match reference_int(text.trim()) {
                Ok(v) => Ok(Cell::Int(v)),
                Err(true) => Err(CellError::range(&ColumnType::Int64, text)),
                Err(false) => Err(CellError::parse(&ColumnType::Int64, text)),
            };
            assert_eq!(parse_text(&ColumnType::Int64, text), expected, "{text:?}");
        }
    }

    #[test]
    fn decimals_parse_as_before_for_every_precision_and_scale() {
        let types = [
            (10, 2),
            (12, 2),
            (1, 0),
            (5, 5),
            (18, 0),
            (18, 4),
            (19, 2),
            (20, 18),
            (38, 0),
            (38, 10),
        ];
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "12.5",
            "12.",
            ".5",
            ".",
            "-",
            "+.1",
            "-0.01",
            "1.234",
            "1.2.3",
            "00000000000000000000000001.10",
            "99999999.99",
            "100000000.00",
            "-99999999.99",
            "9999999999999999999",
            "18446744073709551616",
            "1e5",
            "",
            " 7 ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = Rng::new(2);
        cases.extend((0..20_000).map(|_| number_like(&mut rng)));
        for (p, s) in types {
            let ty = ColumnType::Decimal(p, s);
            for text in &cases {
                let reference = reference_decimal(text.trim(), p, s);
                assert_eq!(
                    parse_decimal(text.trim(), p, s),
                    reference,
                    "{text:?} {p},{s}"
                );
                let expected = match reference {
                    Ok(v) => Ok(Cell::Decimal(v)),
                    Err(true) => Err(CellError::range(&ty, text)),
                    Err(false) => Err(CellError::parse(&ty, text)),
                };
                assert_eq!(parse_text(&ty, text), expected, "{text:?} {p},{s}");
            }
        }
    }
}
