//! Column types: the names users write in `[source.columns]`, inference
//! from a sample of text cells, parsing one cell, and the Arrow builders a
//! batch is assembled in.
//!
//! A row is kept whole or not at all: text rows are parsed cell by cell
//! straight into columns that can be truncated, and a bad value in the
//! fifth column takes the row back out of the first four; other readers
//! parse a row into a scratch buffer of [`Cell`]s first and append only a
//! row whose every cell parsed. Either way a bad value never leaves four
//! columns one row longer than the rest.

use std::sync::Arc;

use arrow_array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{Buffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// The time zone written on timestamp columns: times without an offset are
/// taken as UTC, and times with one are converted to it.
pub const UTC: &str = "+00:00";

/// The largest decimal precision Arrow's `Decimal128` holds.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// A column's type, as configured or inferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `int64`: a signed 64-bit integer.
    Int64,
    /// `float64`: a finite double.
    Float64,
    /// `bool`: `true`/`false` (also `t`/`f`, `yes`/`no`, `1`/`0` when configured).
    Bool,
    /// `string`: UTF-8 text, as it is.
    String,
    /// `timestamp` (RFC 3339 or ISO 8601 without offset, as UTC) or
    /// `timestamp(<chrono format>)`.
    Timestamp(Option<String>),
    /// `decimal(precision,scale)`: exact, never rounded.
    Decimal(u8, i8),
}

impl ColumnType {
    /// The accepted spellings, for messages.
    pub const SPELLINGS: &'static str = "int64, float64, bool, string, timestamp, \
         timestamp(<format such as %Y-%m-%d %H:%M:%S>), decimal(<precision>,<scale>)";

    /// Parses a type name from the config.
    pub fn parse(text: &str) -> Result<ColumnType, String> {
        let t = text.trim();
        let simple = match t {
            "int64" | "int" | "integer" => Some(ColumnType::Int64),
            "float64" | "float" | "double" => Some(ColumnType::Float64),
            "bool" | "boolean" => Some(ColumnType::Bool),
            "string" | "str" | "utf8" => Some(ColumnType::String),
            "timestamp" => Some(ColumnType::Timestamp(None)),
            _ => None,
        };
        if let Some(ty) = simple {
            return Ok(ty);
        }
        let bad = || {
            format!(
                "unknown column type `{t}`; expected one of {}",
                Self::SPELLINGS
            )
        };
        if let Some(inner) = t
            .strip_prefix("timestamp(")
            .and_then(|r| r.strip_suffix(')'))
        {
            if inner.is_empty() {
                return Err(bad());
            }
            check_time_format(inner)?;
            return Ok(ColumnType::Timestamp(Some(inner.to_owned())));
        }
        if let Some(inner) = t.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
            let mut parts = inner.split(',').map(str::trim);
            let precision: Option<u8> = parts.next().and_then(|p| p.parse().ok());
            let scale: Option<i8> = parts.next().and_then(|s| s.parse().ok());
            return match (precision, scale, parts.next()) {
                (Some(p), Some(s), None)
                    if (1..=MAX_DECIMAL_PRECISION).contains(&p) && s >= 0 && (s as u8) <= p =>
                {
                    Ok(ColumnType::Decimal(p, s))
                }
                _ => Err(format!(
                    "invalid decimal type `{t}`: expected decimal(precision,scale) with \
                     1 <= precision <= {MAX_DECIMAL_PRECISION} and 0 <= scale <= precision"
                )),
            };
        }
        Err(bad())
    }

    /// The Arrow type of the column.
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::String => DataType::Utf8,
            ColumnType::Timestamp(_) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
            }
            ColumnType::Decimal(p, s) => DataType::Decimal128(*p, *s),
        }
    }

    /// The name as a user writes it.
    pub fn name(&self) -> String {
        match self {
            ColumnType::Int64 => "int64".into(),
            ColumnType::Float64 => "float64".into(),
            ColumnType::Bool => "bool".into(),
            ColumnType::String => "string".into(),
            ColumnType::Timestamp(None) => "timestamp".into(),
            ColumnType::Timestamp(Some(f)) => format!("timestamp({f})"),
            ColumnType::Decimal(p, s) => format!("decimal({p},{s})"),
        }
    }
}

/// Rejects a chrono format with an invalid specifier now, rather than on
/// every row.
fn check_time_format(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(format!("invalid timestamp format `{format}`"));
    }
    Ok(())
}

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
    fn parse(ty: &ColumnType, text: &str) -> CellError {
        CellError {
            class: "parse_error",
            message: format!("`{}` is not a valid {}", shorten(text), ty.name()),
        }
    }

    fn range(ty: &ColumnType, text: &str) -> CellError {
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
fn trim(text: &str) -> &str {
    let plain = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    if plain(text.as_bytes().first()) && plain(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

/// Whether `text` is a number as written in decimal (an overflowing
/// float such as `1e400` is out of range, not garbage).
fn looks_numeric(text: &str) -> bool {
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
fn parse_int(text: &str) -> Result<i64, bool> {
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
fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, bool> {
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

/// Microseconds since the epoch, UTC.
pub fn parse_timestamp(text: &str, format: Option<&str>) -> Option<i64> {
    fast_layout(format)
        .and_then(|layout| fast_iso(text, layout))
        .or_else(|| chrono_timestamp(text, format))
}

/// The layout [`fast_iso`] parses for a format, if it has one.
///
/// The common layouts are parsed by hand: chrono re-reads the format
/// string on every call, which costs more than the rest of a row. The
/// fast path accepts a subset of what chrono accepts, with the same
/// result; anything else falls through to chrono.
fn fast_layout(format: Option<&str>) -> Option<Layout> {
    match format {
        None => Some(Layout::Iso),
        Some("%Y-%m-%d %H:%M:%S") => Some(Layout::Space),
        Some("%Y-%m-%dT%H:%M:%S") => Some(Layout::T),
        Some(_) => None,
    }
}

/// Microseconds since the epoch, UTC, parsed by chrono.
fn chrono_timestamp(text: &str, format: Option<&str>) -> Option<i64> {
    match format {
        None => {
            if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                return Some(t.timestamp_micros());
            }
            for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
                    return Some(t.and_utc().timestamp_micros());
                }
            }
            None
        }
        Some(f) => {
            if has_offset(f)
                && let Ok(t) = DateTime::parse_from_str(text, f)
            {
                return Some(t.timestamp_micros());
            }
            if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
                return Some(t.and_utc().timestamp_micros());
            }
            NaiveDate::parse_from_str(text, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_micros())
        }
    }
}

/// Whether a chrono format reads a UTC offset.
fn has_offset(format: &str) -> bool {
    ["%z", "%:z", "%::z", "%:::z", "%#z"]
        .iter()
        .any(|spec| format.contains(spec))
}

/// The layouts [`fast_iso`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z]`, the default `timestamp`.
    Iso,
    /// Exactly `YYYY-MM-DD HH:MM:SS`.
    Space,
    /// Exactly `YYYY-MM-DDTHH:MM:SS`.
    T,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Microseconds since the epoch of a fixed-width date and time; `None`
/// for anything it does not parse, valid or not (chrono then decides).
#[inline]
fn fast_iso(text: &str, layout: Layout) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let sep_ok = match layout {
        Layout::Iso => b[10] == b' ' || b[10] == b'T',
        Layout::Space => b[10] == b' ',
        Layout::T => b[10] == b'T',
    };
    if !sep_ok || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if layout == Layout::Iso {
        if let Some(r) = rest.strip_suffix(b"Z") {
            rest = r;
        }
        if let Some(frac) = rest.strip_prefix(b".") {
            if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for i in 0..6 {
                micros = micros * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
            rest = &[];
        }
    }
    if !rest.is_empty() {
        return None;
    }
    let days = day_number(&b[..10])?;
    let (hour, minute, second) = (two_digits(b, 11)?, two_digits(b, 14)?, two_digits(b, 17)?);
    // chrono takes a leap second (`:60`) only while parsing: leave it to it.
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Some(seconds * MICROS_PER_SECOND + micros)
}

/// The number written in `b[at..at + 2]`, if both bytes are digits.
#[inline]
fn two_digits(b: &[u8], at: usize) -> Option<i64> {
    let (hi, lo) = (b[at].wrapping_sub(b'0'), b[at + 1].wrapping_sub(b'0'));
    (hi <= 9 && lo <= 9).then(|| i64::from(hi * 10 + lo))
}

/// Days since 1970-01-01 of a valid proleptic Gregorian `YYYY-MM-DD`.
#[inline]
fn day_number(date: &[u8]) -> Option<i64> {
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let year = two_digits(date, 0)? * 100 + two_digits(date, 2)?;
    let (month, day) = (two_digits(date, 5)?, two_digits(date, 8)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date, after Howard
/// Hinnant's `days_from_civil`: years start in March so that the leap day
/// is the last day of a year. Years are counted from 400 years before the
/// date's so that January of year 0 (in year −1, counted from March)
/// needs no negative division; 400 years are exactly 146 097 days.
#[inline]
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = (if month <= 2 { year - 1 } else { year }) + 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = y * 365 + y / 4 - y / 100 + y / 400 + day_of_year;
    days - 146_097 - 719_468
}

/// Infers a column's type from sample values (nulls already removed):
/// the narrowest of `bool`, `int64`, `float64`, `timestamp` that every value
/// parses as, else `string`. Integers that do not fit `int64` make the column
/// a `string`, so no digit is ever lost to a float.
#[derive(Debug, Clone)]
pub struct Inference {
    bool_ok: bool,
    int_ok: bool,
    float_ok: bool,
    timestamp_ok: bool,
    seen: bool,
}

impl Default for Inference {
    fn default() -> Self {
        Inference {
            bool_ok: true,
            int_ok: true,
            float_ok: true,
            timestamp_ok: true,
            seen: false,
        }
    }
}

impl Inference {
    /// Takes one non-null sample value into account.
    pub fn observe(&mut self, text: &str) {
        self.seen = true;
        let t = text.trim();
        if self.bool_ok {
            self.bool_ok = t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false");
        }
        if self.int_ok {
            match parse_int(t) {
                Ok(_) => {}
                Err(true) => {
                    // An integer too big for int64: keep its digits as text.
                    self.int_ok = false;
                    self.float_ok = false;
                }
                Err(false) => self.int_ok = false,
            }
        }
        if self.float_ok && !self.int_ok {
            self.float_ok = t.parse::<f64>().is_ok_and(f64::is_finite) && looks_numeric(t);
        }
        if self.timestamp_ok {
            self.timestamp_ok = parse_timestamp(t, None).is_some();
        }
    }

    /// Takes a value seen as a JSON number into account.
    pub fn observe_number(&mut self, number: &serde_json::Number) {
        self.seen = true;
        self.bool_ok = false;
        self.timestamp_ok = false;
        if number.is_f64() {
            self.int_ok = false;
        } else if number.as_i64().is_none() {
            // A u64 above i64::MAX.
            self.int_ok = false;
            self.float_ok = false;
        }
    }

    /// Takes a JSON value that is only representable as text (an object,
    /// an array) into account.
    pub fn observe_text_only(&mut self) {
        self.seen = true;
        self.bool_ok = false;
        self.int_ok = false;
        self.float_ok = false;
        self.timestamp_ok = false;
    }

    /// Takes a JSON `true`/`false` into account.
    pub fn observe_bool(&mut self) {
        self.seen = true;
        self.int_ok = false;
        self.float_ok = false;
        self.timestamp_ok = false;
    }

    /// Takes a JSON string into account: it stays text unless every string
    /// is a timestamp.
    pub fn observe_json_string(&mut self, text: &str) {
        self.seen = true;
        self.bool_ok = false;
        self.int_ok = false;
        self.float_ok = false;
        if self.timestamp_ok {
            self.timestamp_ok = parse_timestamp(text.trim(), None).is_some();
        }
    }

    /// The inferred type; `string` for a column with no values in the sample.
    pub fn result(&self) -> ColumnType {
        if !self.seen {
            ColumnType::String
        } else if self.bool_ok {
            ColumnType::Bool
        } else if self.int_ok {
            ColumnType::Int64
        } else if self.float_ok {
            ColumnType::Float64
        } else if self.timestamp_ok {
            ColumnType::Timestamp(None)
        } else {
            ColumnType::String
        }
    }
}

/// The columns of one file: names, types and the Arrow schema.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Column names, in file order.
    pub names: Vec<String>,
    /// Their types.
    pub types: Vec<ColumnType>,
    /// The Arrow schema every batch of the file has.
    pub schema: SchemaRef,
}

impl Columns {
    /// Builds the schema; every column is nullable.
    pub fn new(names: Vec<String>, types: Vec<ColumnType>) -> Columns {
        let fields: Vec<Field> = names
            .iter()
            .zip(&types)
            .map(|(n, t)| Field::new(n, t.arrow_type(), true))
            .collect();
        Columns {
            names,
            types,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// The values of one column under construction, in plain vectors rather
/// than Arrow's builders: they can be truncated, so a row is appended cell
/// by cell as it is parsed and taken back if a later cell is bad.
#[derive(Debug)]
enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(BooleanBufferBuilder),
    Text {
        bytes: Vec<u8>,
        /// Where each value ends in `bytes`, after a leading 0.
        offsets: Vec<i32>,
    },
    Time {
        micros: Vec<i64>,
        /// The layout [`fast_iso`] parses, if the format has one.
        layout: Option<Layout>,
    },
    Decimal(Vec<i128>, u8, i8),
}

/// One column under construction.
#[derive(Debug)]
struct ColumnBuilder {
    ty: ColumnType,
    values: Values,
    nulls: NullBufferBuilder,
}

impl ColumnBuilder {
    /// A builder for `capacity` values (`bytes` of text for strings).
    fn new(ty: &ColumnType, capacity: usize, bytes: usize) -> ColumnBuilder {
        let values = match ty {
            ColumnType::Int64 => Values::Int(Vec::with_capacity(capacity)),
            ColumnType::Float64 => Values::Float(Vec::with_capacity(capacity)),
            ColumnType::Bool => Values::Bool(BooleanBufferBuilder::new(capacity)),
            ColumnType::String => {
                let mut offsets = Vec::with_capacity(capacity + 1);
                offsets.push(0);
                Values::Text {
                    bytes: Vec::with_capacity(bytes),
                    offsets,
                }
            }
            ColumnType::Timestamp(format) => Values::Time {
                micros: Vec::with_capacity(capacity),
                layout: fast_layout(format.as_deref()),
            },
            ColumnType::Decimal(p, s) => Values::Decimal(Vec::with_capacity(capacity), *p, *s),
        };
        ColumnBuilder {
            ty: ty.clone(),
            values,
            nulls: NullBufferBuilder::new(capacity),
        }
    }

    /// Appends a null.
    fn push_null(&mut self) {
        match &mut self.values {
            Values::Int(v) | Values::Time { micros: v, .. } => v.push(0),
            Values::Float(v) => v.push(0.0),
            Values::Bool(v) => v.append(false),
            Values::Text { bytes, offsets } => offsets.push(text_offset(bytes)),
            Values::Decimal(v, ..) => v.push(0),
        }
        self.nulls.append_null();
    }

    /// Appends a parsed cell; a cell of another type (a bug) as null.
    fn push_cell(&mut self, cell: Cell, text: &str) {
        match (&mut self.values, cell) {
            (Values::Int(v), Cell::Int(x)) | (Values::Time { micros: v, .. }, Cell::Micros(x)) => {
                v.push(x);
            }
            (Values::Float(v), Cell::Float(x)) => v.push(x),
            (Values::Bool(v), Cell::Bool(x)) => v.append(x),
            (Values::Text { bytes, offsets }, Cell::Text) => {
                bytes.extend_from_slice(text.as_bytes());
                offsets.push(text_offset(bytes));
            }
            (Values::Decimal(v, ..), Cell::Decimal(x)) => v.push(x),
            _ => return self.push_null(),
        }
        self.nulls.append_non_null();
    }

    /// Parses `text` as the column's type and appends it, with the result
    /// of [`parse_text`]; `false` for a bad cell, whose error is then
    /// [`Self::error`]. The common cases are parsed by hand here; every
    /// cell they do not take, good or bad, goes to [`parse_text`].
    ///
    /// A bare flag rather than a `Result` with the error: this runs for
    /// every cell, and a `Result` that large travels through memory,
    /// which costs about as much as parsing a short number. Inlined
    /// always for the same reason: the call alone would cost as much.
    #[inline(always)]
    fn push_text(&mut self, text: &str) -> bool {
        let done = match &mut self.values {
            Values::Text { bytes, offsets } => {
                bytes.extend_from_slice(text.as_bytes());
                offsets.push(text_offset(bytes));
                true
            }
            Values::Int(v) => parse_int(trim(text)).map(|x| v.push(x)).is_ok(),
            Values::Decimal(v, p, s) => {
                parse_decimal(trim(text), *p, *s).map(|x| v.push(x)).is_ok()
            }
            Values::Time {
                micros,
                layout: Some(layout),
            } => fast_iso(trim(text), *layout)
                .map(|x| micros.push(x))
                .is_some(),
            _ => false,
        };
        if done {
            self.nulls.append_non_null();
            true
        } else {
            self.push_parsed(text)
        }
    }

    /// [`Self::push_text`] for what its fast paths do not take.
    #[inline(never)]
    fn push_parsed(&mut self, text: &str) -> bool {
        match parse_text(&self.ty, text) {
            Ok(cell) => {
                self.push_cell(cell, text);
                true
            }
            Err(_) => false,
        }
    }

    /// Why [`Self::push_text`] refused `text`.
    #[cold]
    fn error(&self, text: &str) -> CellError {
        // It refused it because `parse_text` did, so this is that error;
        // the fallback only keeps this total.
        parse_text(&self.ty, text)
            .err()
            .unwrap_or_else(|| CellError::parse(&self.ty, text))
    }

    /// Drops the values after the first `len`.
    fn truncate(&mut self, len: usize) {
        match &mut self.values {
            Values::Int(v) | Values::Time { micros: v, .. } => v.truncate(len),
            Values::Float(v) => v.truncate(len),
            Values::Bool(v) => v.truncate(len),
            Values::Text { bytes, offsets } => {
                offsets.truncate(len + 1);
                bytes.truncate(offsets.last().map_or(0, |&end| end as usize));
            }
            Values::Decimal(v, ..) => v.truncate(len),
        }
        self.nulls.truncate(len);
    }

    /// The column as an array; the builder is left empty, with room for
    /// `capacity` values (`bytes` of text for strings).
    fn finish(&mut self, capacity: usize, bytes: usize) -> Result<ArrayRef, ArrowError> {
        // A null in a row that was taken back leaves a bitmap with no null
        // in it; Arrow's builders would have made none.
        let nulls = self.nulls.finish().filter(|n| n.null_count() > 0);
        let fresh = ColumnBuilder::new(&self.ty, capacity, bytes).values;
        Ok(match std::mem::replace(&mut self.values, fresh) {
            Values::Int(v) => Arc::new(Int64Array::new(v.into(), nulls)),
            Values::Float(v) => Arc::new(Float64Array::new(v.into(), nulls)),
            Values::Bool(mut v) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            Values::Text { bytes, offsets } => Arc::new(StringArray::try_new(
                OffsetBuffer::new(offsets.into()),
                Buffer::from_vec(bytes),
                nulls,
            )?),
            Values::Time { micros, .. } => {
                Arc::new(TimestampMicrosecondArray::new(micros.into(), nulls).with_timezone(UTC))
            }
            Values::Decimal(v, p, s) => {
                Arc::new(Decimal128Array::new(v.into(), nulls).with_precision_and_scale(p, s)?)
            }
        })
    }
}

/// The offset after the last value of a string column.
fn text_offset(bytes: &[u8]) -> i32 {
    // Arrow's string builder has the same limit, and the same panic; a
    // batch of rows holds far less than 2 GiB of text in one column.
    i32::try_from(bytes.len()).expect("byte array offset overflow")
}

/// Appends parsed rows and finishes them into a [`RecordBatch`].
#[derive(Debug)]
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// Rows each batch is sized for.
    capacity: usize,
}

impl BatchBuilder {
    /// Empty builders for `columns`, sized for `capacity` rows.
    pub fn new(columns: &Columns, capacity: usize) -> BatchBuilder {
        let builders = columns
            .types
            .iter()
            .map(|t| ColumnBuilder::new(t, capacity, capacity * 16))
            .collect();
        BatchBuilder {
            schema: columns.schema.clone(),
            columns: builders,
            rows: 0,
            capacity,
        }
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row whose every cell parsed. `text(i)` returns the text
    /// of column `i`, used for [`Cell::Text`] cells.
    ///
    /// The cells come from [`parse_text`] with this builder's types, so a
    /// cell never mismatches its column; if it did (a bug), the value is
    /// written as null rather than panicking.
    pub fn append<'a>(&mut self, cells: &[Cell], text: impl Fn(usize) -> &'a str) {
        for (i, (builder, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            match cell {
                Cell::Null => builder.push_null(),
                Cell::Text => builder.push_cell(Cell::Text, text(i)),
                cell => builder.push_cell(*cell, ""),
            }
        }
        self.rows += 1;
    }

    /// Parses and appends one row of text cells, one per column in order,
    /// `None` for a null, with the results of [`parse_text`].
    ///
    /// Cells are parsed straight into the columns, which saves handing
    /// each value over through a scratch row; on the first bad cell the
    /// row is taken back, so no column is ever left longer than the
    /// others, and its column and error are returned.
    #[inline]
    pub fn append_text<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Result<(), (usize, CellError)> {
        for (i, (column, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            match cell {
                Some(text) => {
                    if !column.push_text(text) {
                        let e = column.error(text);
                        self.truncate(self.rows);
                        return Err((i, e));
                    }
                }
                None => column.push_null(),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes back the last row appended.
    pub fn pop(&mut self) {
        if let Some(rows) = self.rows.checked_sub(1) {
            self.truncate(rows);
            self.rows = rows;
        }
    }

    /// Drops every column's values after the first `rows`.
    fn truncate(&mut self, rows: usize) {
        for column in &mut self.columns {
            column.truncate(rows);
        }
    }

    /// The rows appended since the last call, as a batch. The builders are
    /// left sized like this batch: growing them again row by row would copy
    /// every buffer several times per batch.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let capacity = self.capacity;
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|column| {
                let bytes = match &column.values {
                    Values::Text { bytes, .. } => bytes.len(),
                    _ => 0,
                };
                column.finish(capacity, (bytes + bytes / 8).max(capacity * 8))
            })
            .collect::<Result<_, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn type_names_parse_and_bad_ones_are_explained() {
        assert_eq!(ColumnType::parse("int64"), Ok(ColumnType::Int64));
        assert_eq!(
            ColumnType::parse("timestamp(%Y-%m-%d %H:%M:%S)"),
            Ok(ColumnType::Timestamp(Some("%Y-%m-%d %H:%M:%S".into())))
        );
        assert_eq!(
            ColumnType::parse("decimal(10, 2)"),
            Ok(ColumnType::Decimal(10, 2))
        );
        assert!(
            ColumnType::parse("decimal(2,3)")
                .unwrap_err()
                .contains("scale")
        );
        assert!(ColumnType::parse("decimal(39,0)").is_err());
        assert!(
            ColumnType::parse("int32")
                .unwrap_err()
                .contains("int64, float64")
        );
        assert!(ColumnType::parse("timestamp(%Q)").is_err());
    }

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
    fn timestamps_parse_with_and_without_a_format() {
        let ty = ColumnType::Timestamp(Some("%Y-%m-%d %H:%M:%S".into()));
        assert_eq!(
            parse_text(&ty, "2024-01-02 03:04:05"),
            Ok(Cell::Micros(1_704_164_645_000_000))
        );
        let iso = ColumnType::Timestamp(None);
        assert_eq!(
            parse_text(&iso, "2024-01-02T04:04:05+01:00"),
            Ok(Cell::Micros(1_704_164_645_000_000))
        );
        let day = ColumnType::Timestamp(Some("%d/%m/%Y".into()));
        assert_eq!(
            parse_text(&day, "02/01/2024"),
            Ok(Cell::Micros(1_704_153_600_000_000))
        );
        assert_eq!(
            parse_text(&iso, "yesterday").unwrap_err().class,
            "parse_error"
        );
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        let cases = [
            ("2024-02-29 23:59:59", None),
            ("2024-02-29T23:59:59", None),
            ("2024-02-29T23:59:59Z", None),
            ("2024-02-29T23:59:59.5", None),
            ("2024-02-29 23:59:59.123456789Z", None),
            ("2023-02-29 10:00:00", None),
            ("2024-01-02 03:04:05", Some("%Y-%m-%d %H:%M:%S")),
            ("2024-01-02T03:04:05", Some("%Y-%m-%dT%H:%M:%S")),
            ("2024-01-02T03:04:05", Some("%Y-%m-%d %H:%M:%S")),
            ("2024-13-02 03:04:05", Some("%Y-%m-%d %H:%M:%S")),
            ("2024-01-02 03:04:05+02:00", None),
        ];
        for (text, format) in cases {
            let slow = match format {
                None => DateTime::parse_from_rfc3339(text)
                    .map(|t| t.timestamp_micros())
                    .ok()
                    .or_else(|| {
                        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                            .iter()
                            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                            .map(|t| t.and_utc().timestamp_micros())
                    }),
                Some(f) => NaiveDateTime::parse_from_str(text, f)
                    .ok()
                    .map(|t| t.and_utc().timestamp_micros()),
            };
            assert_eq!(parse_timestamp(text, format), slow, "{text} {format:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_its_own_class() {
        let e = parse_bytes(&ColumnType::String, b"ab\xffc").unwrap_err();
        assert_eq!(e.class, "invalid_utf8");
        assert!(e.message.contains("byte 2"), "{}", e.message);
    }

    #[test]
    fn inference_picks_the_narrowest_type() {
        let infer = |values: &[&str]| {
            let mut i = Inference::default();
            values.iter().for_each(|v| i.observe(v));
            i.result()
        };
        assert_eq!(infer(&["1", "-2"]), ColumnType::Int64);
        assert_eq!(infer(&["1", "2.5"]), ColumnType::Float64);
        assert_eq!(infer(&["true", "FALSE"]), ColumnType::Bool);
        assert_eq!(infer(&["1", "x"]), ColumnType::String);
        assert_eq!(
            infer(&["2024-01-01T00:00:00Z"]),
            ColumnType::Timestamp(None)
        );
        assert_eq!(infer(&["99999999999999999999"]), ColumnType::String);
        assert_eq!(infer(&[]), ColumnType::String);
    }

    /// A small deterministic generator for the randomised tests: the same
    /// cases on every run, so a failure can be replayed.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        /// A number in `0..n`.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }

        pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }

        /// `len` bytes drawn from `alphabet`.
        pub(crate) fn text(&mut self, alphabet: &[u8], len: usize) -> String {
            (0..len).map(|_| char::from(*self.pick(alphabet))).collect()
        }
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

    /// Date-times in the three layouts parsed by hand, valid and not:
    /// every field one past its range now and then, leap days of leap and
    /// common centuries, fractions and a `Z`, and single bytes broken.
    fn timestamp_like(rng: &mut Rng) -> String {
        let year = if rng.below(2) == 0 {
            *rng.pick(&[
                0, 1, 4, 100, 400, 1600, 1899, 1900, 1970, 2000, 2023, 2024, 2100, 2400, 9999,
            ])
        } else {
            rng.below(10_000)
        };
        let month = if rng.below(8) == 0 {
            rng.below(14)
        } else {
            1 + rng.below(12)
        };
        let day = if rng.below(8) == 0 {
            rng.below(33)
        } else {
            27 + rng.below(5)
        };
        let hour = if rng.below(8) == 0 {
            23 + rng.below(2)
        } else {
            rng.below(24)
        };
        let minute = if rng.below(8) == 0 {
            59 + rng.below(2)
        } else {
            rng.below(60)
        };
        let second = if rng.below(8) == 0 {
            59 + rng.below(3)
        } else {
            rng.below(60)
        };
        let sep = rng.pick(&[" ", "T", " ", "T", "t", "_"]);
        let mut text =
            format!("{year:04}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}:{second:02}");
        if rng.below(4) == 0 {
            text.push('.');
            let digits = rng.below(11);
            text.push_str(&rng.text(b"0123456789", digits));
        }
        if rng.below(4) == 0 {
            text.push_str(rng.pick::<&str>(&["Z", "+01:00", "-00:30", "z"]));
        }
        if rng.below(8) == 0 {
            let at = rng.below(text.len());
            text.replace_range(at..=at, &rng.text(b"0189-:T. a", 1));
        }
        text
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono_on_generated_values() {
        let named = [
            ("2024-02-29 10:00:00", true),
            ("2023-02-29 10:00:00", false),
            ("1900-02-29 10:00:00", false),
            ("2000-02-29 10:00:00", true),
            ("2024-02-30 10:00:00", false),
            ("2024-04-31 10:00:00", false),
            ("2024-13-01 10:00:00", false),
            ("2024-00-01 10:00:00", false),
            ("2024-01-00 10:00:00", false),
            ("2024-01-01 24:00:00", false),
            ("2024-01-01 23:60:00", false),
            ("0000-01-01 00:00:00", true),
            ("9999-12-31 23:59:59", true),
            ("1969-12-31 23:59:59", true),
        ];
        let space = Some("%Y-%m-%d %H:%M:%S");
        for (text, valid) in named {
            assert_eq!(parse_timestamp(text, space).is_some(), valid, "{text}");
            assert_eq!(
                parse_timestamp(text, space),
                chrono_timestamp(text, space),
                "{text}"
            );
        }
        let mut rng = Rng::new(3);
        let mut by_hand = 0;
        for _ in 0..30_000 {
            let text = timestamp_like(&mut rng);
            for format in [None, space, Some("%Y-%m-%dT%H:%M:%S")] {
                let fast = fast_layout(format).and_then(|l| fast_iso(&text, l));
                let chrono = chrono_timestamp(&text, format);
                if fast.is_some() {
                    by_hand += 1;
                    assert_eq!(fast, chrono, "{text:?} {format:?}");
                }
                assert_eq!(
                    parse_timestamp(&text, format),
                    chrono,
                    "{text:?} {format:?}"
                );
            }
        }
        // The fast path took a good share of the cases, not none.
        assert!(by_hand > 10_000, "{by_hand}");
    }

    /// Columns of every type, and a text row for them, valid or not.
    fn mixed_row(rng: &mut Rng) -> Vec<Option<String>> {
        let mut cell = |values: &[&str]| -> Option<String> {
            (rng.below(10) != 0).then(|| rng.pick(values).to_string())
        };
        vec![
            cell(&["abc", "", "é ü", " x "]),
            cell(&["1", "-42", " 7 ", "99999999999999999999", "12a"]),
            cell(&["1.5", "-0", "1e400", "NaN", "x"]),
            cell(&["true", "F", "yes", "0", "maybe"]),
            cell(&[
                "2024-01-02 03:04:05",
                "2024-02-30 00:00:00",
                "2024-01-02 03:04:60",
            ]),
            cell(&["2024-01-02T03:04:05Z", "2024-01-02 03:04:05+01:00", "soon"]),
            cell(&["12.5", "-0.01", "123456789", "1.234", "."]),
            cell(&["4", "-99999999999999999999.123", "1.2"]),
        ]
    }

    fn mixed_columns() -> Columns {
        let types = [
            "string",
            "int64",
            "float64",
            "bool",
            "timestamp(%Y-%m-%d %H:%M:%S)",
            "timestamp",
            "decimal(10,2)",
            "decimal(38,4)",
        ]
        .map(|t| ColumnType::parse(t).unwrap());
        let names = (0..types.len()).map(|i| format!("c{i}")).collect();
        Columns::new(names, types.to_vec())
    }

    #[test]
    fn text_rows_build_the_same_batch_as_parsed_cells() {
        let columns = mixed_columns();
        let mut rng = Rng::new(4);
        let mut direct = BatchBuilder::new(&columns, 16);
        let mut scratch = BatchBuilder::new(&columns, 16);
        for round in 0..20 {
            for _ in 0..200 {
                let row = mixed_row(&mut rng);
                // The reference: every cell parsed first, the row appended
                // only if all of them parsed.
                let cells: Result<Vec<Cell>, (usize, CellError)> = row
                    .iter()
                    .zip(&columns.types)
                    .enumerate()
                    .map(|(i, (text, ty))| match text {
                        None => Ok(Cell::Null),
                        Some(t) => parse_text(ty, t).map_err(|e| (i, e)),
                    })
                    .collect();
                let got = direct.append_text(row.iter().map(Option::as_deref));
                match cells {
                    Ok(cells) => {
                        assert_eq!(got, Ok(()), "{row:?}");
                        scratch.append(&cells, |i| row[i].as_deref().unwrap_or_default());
                    }
                    Err(e) => assert_eq!(got, Err(e), "{row:?}"),
                }
                assert_eq!(direct.len(), scratch.len());
            }
            let (a, b) = (direct.finish().unwrap(), scratch.finish().unwrap());
            assert_eq!(a, b, "round {round}");
            for (x, y) in a.columns().iter().zip(b.columns()) {
                assert_eq!(x.nulls(), y.nulls(), "round {round}");
            }
        }
    }

    #[test]
    fn a_bad_cell_takes_its_row_back_out_of_every_column() {
        let columns = mixed_columns();
        let mut b = BatchBuilder::new(&columns, 4);
        let good = [
            "a",
            "1",
            "1.5",
            "true",
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05Z",
            "1.5",
            "2",
        ];
        fn row<'a>(cells: &[&'a str]) -> Vec<Option<&'a str>> {
            cells.iter().map(|c| Some(*c)).collect()
        }
        assert_eq!(b.append_text(row(&good)), Ok(()));
        // A null and text before the bad last cell: all taken back.
        let mut bad = row(&good);
        bad[0] = None;
        bad[7] = Some("x");
        let err = b.append_text(bad).unwrap_err();
        assert_eq!((err.0, err.1.class), (7, "parse_error"));
        assert_eq!(b.append_text(row(&good)), Ok(()));
        // A good row taken back by the reader.
        assert_eq!(b.append_text(row(&good)), Ok(()));
        b.pop();
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        for column in batch.columns() {
            assert_eq!(column.len(), 2);
            assert!(column.nulls().is_none(), "{column:?}");
        }
        let text = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(text.iter().collect::<Vec<_>>(), [Some("a"), Some("a")]);
    }
}
