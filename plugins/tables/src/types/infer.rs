//! A column's type inferred from a sample of its cells, text or JSON: the
//! type whose serializers write every sampled value back exactly as it
//! was written (see `exact.rs`), else `string`.

use super::ColumnType;
use super::exact::{exact_bool, exact_float, exact_int, exact_timestamp};

/// Infers a column's type from sample values (nulls already removed):
/// `bool`, `int64`, `float64` or `timestamp` when every text value is
/// written exactly as that type's serializers write it back, else
/// `string`. So `00501`, `+5`, `1e3`, `19.90`, `TRUE` or
/// `2024-01-02 03:04:05` keep a column text: as a type they would be sent
/// as other text. JSON numbers and booleans keep their JSON types.
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
    /// Takes one non-null sample value of a text file into account.
    ///
    /// A candidate type is not checked again once a cell ruled it out, so
    /// sampling a text column costs a few comparisons per cell.
    pub fn observe(&mut self, text: &str) {
        self.seen = true;
        if self.bool_ok {
            self.bool_ok = exact_bool(text).is_some();
        }
        if self.int_ok {
            // An integer too big for int64 is not written as a float
            // either (it has no point): the column stays text, every
            // digit kept.
            self.int_ok = exact_int(text).is_ok();
        }
        if self.float_ok {
            self.float_ok = exact_float(text).is_some();
        }
        if self.timestamp_ok {
            self.timestamp_ok = exact_timestamp(text).is_some();
        }
    }

    /// Takes a value seen as a JSON number into account: JSON numbers stay
    /// numbers, `int64` while every one is an integer that fits.
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
    /// is a timestamp as the serializers write it back.
    pub fn observe_json_string(&mut self, text: &str) {
        self.seen = true;
        self.bool_ok = false;
        self.int_ok = false;
        self.float_ok = false;
        if self.timestamp_ok {
            self.timestamp_ok = exact_timestamp(text).is_some();
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

    fn infer(values: &[&str]) -> ColumnType {
        let mut i = Inference::default();
        values.iter().for_each(|v| i.observe(v));
        i.result()
    }

    #[test]
    fn inference_picks_the_type_every_value_is_written_as() {
        assert_eq!(infer(&["1", "-2"]), ColumnType::Int64);
        assert_eq!(infer(&["1.0", "2.5"]), ColumnType::Float64);
        assert_eq!(infer(&["true", "false"]), ColumnType::Bool);
        assert_eq!(infer(&["1", "x"]), ColumnType::String);
        assert_eq!(
            infer(&["2024-01-01T00:00:00Z"]),
            ColumnType::Timestamp(None)
        );
        assert_eq!(infer(&[]), ColumnType::String);
    }

    #[test]
    fn json_numbers_keep_their_json_type() {
        let number = |text: &str| serde_json::from_str::<serde_json::Number>(text).unwrap();
        let infer_json = |values: &[&str]| {
            let mut i = Inference::default();
            values.iter().for_each(|v| i.observe_number(&number(v)));
            i.result()
        };
        assert_eq!(infer_json(&["1", "-2"]), ColumnType::Int64);
        assert_eq!(infer_json(&["1", "2.5"]), ColumnType::Float64);
        assert_eq!(infer_json(&["18446744073709551615"]), ColumnType::String);
        let mut i = Inference::default();
        i.observe_json_string("00501");
        assert_eq!(i.result(), ColumnType::String);
        let mut i = Inference::default();
        i.observe_json_string("2024-01-02 03:04:05");
        assert_eq!(i.result(), ColumnType::String);
        let mut i = Inference::default();
        i.observe_json_string("2024-01-02T03:04:05Z");
        assert_eq!(i.result(), ColumnType::Timestamp(None));
    }
}
