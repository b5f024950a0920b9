//! Column types: the names users write in `[source.columns]`
//! ([`ColumnType`], in this file), and what the readers do with them, one
//! file per concern:
//!
//! * `cell.rs`: one cell's text parsed as a type ([`parse_text`]), or why
//!   it is bad ([`CellError`]);
//! * `time.rs`: timestamps ([`parse_timestamp`]), the common layouts by
//!   hand and the rest by chrono;
//! * `exact.rs`: the one spelling of each value, the text the serializers
//!   write back ([`parse_exact`]): what inference accepts, and all an
//!   inferred column ([`Origin::Inferred`]) reads;
//! * `infer.rs`: a column's type from a sample of its cells ([`Inference`]);
//! * `build.rs`: the Arrow columns a batch is assembled in
//!   ([`BatchBuilder`]), a row kept whole or not at all.
//!
//! The readers name everything through this module, whichever file it
//! lives in.

mod build;
mod cell;
mod exact;
mod infer;
mod time;

use arrow_schema::{DataType, TimeUnit};

pub use self::build::{BatchBuilder, Columns};
pub use self::cell::{Cell, CellError, parse_bytes, parse_text, shorten, utf8_error};
pub use self::exact::{Origin, parse_exact};
pub use self::infer::Inference;
pub use self::time::parse_timestamp;

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
}
