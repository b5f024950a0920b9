//! A column's type inferred from a sample of its cells, text or JSON: the
//! narrowest type that every value parses as, by the same parsers that
//! later read the column.

use super::ColumnType;
use super::cell::{looks_numeric, parse_int};
use super::time::parse_timestamp;

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

#[cfg(test)]
mod tests {
    use super::*;

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
