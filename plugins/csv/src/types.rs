//! Column types: the names users write in `[source.columns]`, inference
//! from a sample of text cells, parsing one cell, and the Arrow builders a
//! batch is assembled in.
//!
//! Parsing is split from building on purpose: a row is first parsed cell by
//! cell into a reusable scratch buffer of [`Cell`]s, and only a row whose
//! every cell parsed is appended to the builders. A bad value in the fifth
//! column thus never leaves four columns one row longer than the rest.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
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
    let text = std::str::from_utf8(bytes).map_err(|e| CellError {
        class: "invalid_utf8",
        message: format!(
            "invalid UTF-8 at byte {} of the value; expected {}",
            e.valid_up_to(),
            ty.name()
        ),
    })?;
    parse_text(ty, text)
}

/// Parses one cell's text as `ty`.
pub fn parse_text(ty: &ColumnType, text: &str) -> Result<Cell, CellError> {
    match ty {
        ColumnType::String => Ok(Cell::Text),
        ColumnType::Int64 => parse_int(text.trim()).map(Cell::Int).map_err(|overflow| {
            if overflow {
                CellError::range(ty, text)
            } else {
                CellError::parse(ty, text)
            }
        }),
        ColumnType::Float64 => match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Cell::Float(v)),
            // JSON has no NaN or infinity: refuse rather than write `null`.
            Ok(_) if looks_numeric(text.trim()) => Err(CellError::range(ty, text)),
            _ => Err(CellError::parse(ty, text)),
        },
        ColumnType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Ok(Cell::Bool(true)),
            "false" | "f" | "no" | "n" | "0" => Ok(Cell::Bool(false)),
            _ => Err(CellError::parse(ty, text)),
        },
        ColumnType::Timestamp(format) => parse_timestamp(text.trim(), format.as_deref())
            .map(Cell::Micros)
            .ok_or_else(|| CellError::parse(ty, text)),
        ColumnType::Decimal(p, s) => parse_decimal(text.trim(), *p, *s)
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

/// An integer in plain decimal; `Err(true)` when it is one but does not fit.
fn parse_int(text: &str) -> Result<i64, bool> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(false);
    }
    text.parse::<i64>().map_err(|_| true)
}

/// A decimal with at most `scale` fractional digits and at most
/// `precision` digits in all; `Err(true)` when it has too many digits.
fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, bool> {
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
        // At most 38 digits, so this cannot overflow an i128.
        value = value * 10 + i128::from(b - b'0');
    }
    for _ in frac_part.len()..scale {
        value *= 10;
    }
    Ok(if negative { -value } else { value })
}

/// Microseconds since the epoch, UTC.
pub fn parse_timestamp(text: &str, format: Option<&str>) -> Option<i64> {
    // The common layouts are parsed by hand: chrono re-reads the format
    // string on every call, which costs more than the rest of a row. The
    // fast path accepts a subset of what chrono accepts, with the same
    // result; anything else falls through to chrono.
    let fast = match format {
        None => fast_iso(text, Layout::Iso),
        Some("%Y-%m-%d %H:%M:%S") => fast_iso(text, Layout::Space),
        Some("%Y-%m-%dT%H:%M:%S") => fast_iso(text, Layout::T),
        Some(_) => None,
    };
    if fast.is_some() {
        return fast;
    }
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

/// Microseconds since the epoch of a fixed-width date and time.
fn fast_iso(text: &str, layout: Layout) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let sep_ok = match layout {
        Layout::Iso => b[10] == b' ' || b[10] == b'T',
        Layout::Space => b[10] == b' ',
        Layout::T => b[10] == b'T',
    };
    if !sep_ok || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0u32;
    if layout == Layout::Iso {
        if let Some(r) = rest.strip_suffix(b"Z") {
            rest = r;
        }
        if let Some(frac) = rest.strip_prefix(b".") {
            if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for i in 0..6 {
                micros = micros * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
            }
            rest = &[];
        }
    }
    if !rest.is_empty() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_micro_opt(num(11..13)?, num(14..16)?, num(17..19)?, micros)?;
    Some(time.and_utc().timestamp_micros())
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

/// One column under construction.
#[derive(Debug)]
enum ColumnBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Time(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder, u8, i8),
}

impl ColumnBuilder {
    /// A builder for `capacity` values (`bytes` of text for strings).
    fn new(ty: &ColumnType, capacity: usize, bytes: usize) -> ColumnBuilder {
        match ty {
            ColumnType::Int64 => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            ColumnType::Float64 => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnType::String => {
                ColumnBuilder::Text(StringBuilder::with_capacity(capacity, bytes))
            }
            ColumnType::Timestamp(_) => ColumnBuilder::Time(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone(UTC),
            ),
            ColumnType::Decimal(p, s) => {
                ColumnBuilder::Decimal(Decimal128Builder::with_capacity(capacity), *p, *s)
            }
        }
    }
}

/// Appends parsed rows and finishes them into a [`RecordBatch`].
#[derive(Debug)]
pub struct BatchBuilder {
    schema: SchemaRef,
    types: Vec<ColumnType>,
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
            types: columns.types.clone(),
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
            match (builder, *cell) {
                (ColumnBuilder::Int(b), Cell::Int(v)) => b.append_value(v),
                (ColumnBuilder::Float(b), Cell::Float(v)) => b.append_value(v),
                (ColumnBuilder::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (ColumnBuilder::Text(b), Cell::Text) => b.append_value(text(i)),
                (ColumnBuilder::Time(b), Cell::Micros(v)) => b.append_value(v),
                (ColumnBuilder::Decimal(b, _, _), Cell::Decimal(v)) => b.append_value(v),
                (ColumnBuilder::Int(b), _) => b.append_null(),
                (ColumnBuilder::Float(b), _) => b.append_null(),
                (ColumnBuilder::Bool(b), _) => b.append_null(),
                (ColumnBuilder::Text(b), _) => b.append_null(),
                (ColumnBuilder::Time(b), _) => b.append_null(),
                (ColumnBuilder::Decimal(b, _, _), _) => b.append_null(),
            }
        }
        self.rows += 1;
    }

    /// The rows appended since the last call, as a batch. The builders are
    /// replaced by ones sized like this batch: a finished Arrow builder
    /// keeps no capacity, and growing it again row by row would copy every
    /// buffer several times per batch.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let capacity = self.capacity;
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .zip(&self.types)
            .map(|(slot, ty)| -> Result<ArrayRef, ArrowError> {
                let bytes = match slot {
                    ColumnBuilder::Text(b) => b.values_slice().len(),
                    _ => 0,
                };
                let next = ColumnBuilder::new(ty, capacity, (bytes + bytes / 8).max(capacity * 8));
                Ok(match std::mem::replace(slot, next) {
                    ColumnBuilder::Int(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Float(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Bool(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Time(mut b) => Arc::new(b.finish().with_timezone(UTC)),
                    ColumnBuilder::Decimal(mut b, p, s) => {
                        Arc::new(b.finish().with_precision_and_scale(p, s)?)
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
    }
}

#[cfg(test)]
mod tests {
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
}
