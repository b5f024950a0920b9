//! The one spelling of each value: the text the serializers write for it.
//!
//! An inferred type must never change a value. `00501` read as an integer
//! is sent as `501` (another zip code), `19.90` as `19.9`, `TRUE` as
//! `true`: the digits survive, the text the user wrote does not. So a
//! column is given a type other than `string` only when every sampled
//! cell is written exactly as the serializers would write its value back,
//! and the column then reads every later cell by the same rule, so a cell
//! past the sample that its type would change is a bad row, never a
//! changed value. A declared type reads leniently (`parse_text`): the
//! user asked for the conversion.
//!
//! The spellings, each checked against the serializers in the tests:
//!
//! * `int64`: `0`, or an optional `-` and digits without a leading zero
//!   (the JSON serializer and the key formatter write integers this way);
//! * `float64`: plain decimal notation with a point and digits on both
//!   sides, no leading zero, no trailing zero except the `.0` of a whole
//!   number, and the shortest digits that read back as the same double,
//!   between 1e-5 and 1e10 (or zero): there the JSON serializer (lexical)
//!   and the key formatter (ryu) both write the shortest digits in plain
//!   notation, and outside it they switch to exponents, each its own way;
//! * `bool`: `true` or `false`;
//! * `timestamp`: `YYYY-MM-DDTHH:MM:SS[.fff]Z`, UTC, as the serializers
//!   write the plugin's UTC timestamps, a fraction only when it is not
//!   zero, and no finer than milliseconds: the finest every output format
//!   keeps (Kafka Connect's `Timestamp` holds milliseconds), where the
//!   JSON writer would also write `.ffffff` back unchanged.
//!
//! No text has two of these spellings, so the inferred type of a column
//! never depends on the order of the checks.

use tributary_plugin_sdk::calendar::civil_from_days;

use super::ColumnType;
use super::cell::{Cell, CellError, parse_int, parse_text};
use super::time::{Layout, fast_iso};

/// Where a column's type came from, which decides how its cells are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Configured in `columns`: cells are converted leniently (`007` is 7,
    /// `TRUE` is true), as the user asked.
    Declared,
    /// Inferred from the sample: only cells the serializers write back
    /// unchanged are values; any other is a bad row.
    Inferred,
}

/// An `int64` cell as the serializers write it back; `Err(true)` when it
/// is an integer in that form too large for `int64`, `Err(false)` for any
/// other text.
#[inline]
pub(super) fn exact_int(text: &str) -> Result<i64, bool> {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    // `0` alone (not `-0`), or a first digit that is not 0 (nor a sign).
    let canonical = match digits {
        [b'0'] => digits.len() == text.len(),
        [b'1'..=b'9', ..] => true,
        _ => false,
    };
    if canonical {
        parse_int(text)
    } else {
        Err(false)
    }
}

/// The most digits (leading zeros of a fraction included) a `float64`
/// cell may have to be taken as written without a second look: every
/// decimal of at most 15 significant digits reads as a double of its own
/// (`f64::DIGITS`), so no other decimal as short reads as the same double
/// and the shortest-digits writers give these digits back.
const SURELY_SHORTEST: usize = f64::DIGITS as usize;

/// A `float64` cell as the serializers write it back.
#[inline]
pub(super) fn exact_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let point = body.iter().position(|&b| b == b'.')?;
    let (int, frac) = (&body[..point], &body[point + 1..]);
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    // At most ten digits before the point: from 1e10 on, both writers use
    // an exponent.
    if !digits(int) || !digits(frac) || int.len() > 10 {
        return None;
    }
    if int.len() > 1 && int[0] == b'0' {
        return None;
    }
    // `.0` is how a whole number is written; any other trailing zero is not.
    if frac.len() > 1 && frac.last() == Some(&b'0') {
        return None;
    }
    // Below 1e-5 (five zeros after `0.`), both writers use an exponent;
    // `0.0` itself is zero.
    if int == b"0" && frac != b"0" && frac.iter().take_while(|&&b| b == b'0').count() > 4 {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if int.len() + frac.len() <= SURELY_SHORTEST {
        return Some(value);
    }
    // Sixteen or seventeen digits: written back only if they are the
    // shortest that read as this double (`0.30000000000000004` is,
    // `0.10000000000000001` is written `0.1`).
    (written_float(value) == text).then_some(value)
}

/// `value` in plain decimal notation with its shortest round-trip digits
/// and a `.0` when whole: what both writers give between 1e-5 and 1e10.
fn written_float(value: f64) -> String {
    // `Display` for floats writes the shortest digits that read back as
    // the same double, never with an exponent.
    let mut text = value.to_string();
    if !text.contains('.') {
        text.push_str(".0");
    }
    text
}

/// A `bool` cell as the serializers write it back.
#[inline]
pub(super) fn exact_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A `timestamp` cell as the serializers write it back, in microseconds
/// since the epoch.
#[inline]
pub(super) fn exact_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    // The fraction: none, or milliseconds that are not zero.
    let fraction_ok = match b.len() {
        20 => true,
        24 => b[19] == b'.' && &b[20..23] != b"000",
        _ => false,
    };
    if !fraction_ok || b[10] != b'T' || b[b.len() - 1] != b'Z' {
        return None;
    }
    // Checks every digit, field range and the rest of the layout.
    fast_iso(text, Layout::Iso)
}

/// Parses one cell of a column whose type was inferred: only the spelling
/// the serializers write back is a value.
pub fn parse_exact(ty: &ColumnType, text: &str) -> Result<Cell, CellError> {
    let exact = match ty {
        ColumnType::String => return Ok(Cell::Text),
        ColumnType::Int64 => exact_int(text).map(Cell::Int).ok(),
        ColumnType::Float64 => exact_float(text).map(Cell::Float),
        ColumnType::Bool => exact_bool(text).map(Cell::Bool),
        ColumnType::Timestamp(None) => exact_timestamp(text).map(Cell::Micros),
        // Never inferred; read as declared if that ever changes.
        ColumnType::Timestamp(Some(_)) | ColumnType::Decimal(..) => {
            return parse_text(ty, text);
        }
    };
    exact.ok_or_else(|| inexact(ty, text))
}

/// Why a cell of an inferred column is not a value of its type: what it
/// would have become, and what to do about it.
#[cold]
fn inexact(ty: &ColumnType, text: &str) -> CellError {
    const HINT: &str = "the column's type was inferred from the sample (`infer_rows`): \
                        declare it in `columns` to read such values (`string` keeps them \
                        as written)";
    let (shown, name) = (super::shorten(text), ty.name());
    match parse_text(ty, text) {
        Ok(cell) => CellError {
            class: "parse_error",
            message: match written(cell) {
                Some(sent) => {
                    format!("read as {name}, `{shown}` would be sent as `{sent}`; {HINT}")
                }
                None => format!("read as {name}, `{shown}` would not be sent as written; {HINT}"),
            },
        },
        Err(e) => CellError {
            class: e.class,
            message: format!("{}; {HINT}", e.message),
        },
    }
}

/// How the serializers write a value, where this module knows it exactly.
fn written(cell: Cell) -> Option<String> {
    match cell {
        Cell::Int(v) => Some(v.to_string()),
        Cell::Float(v) => {
            let text = written_float(v);
            (exact_float(&text) == Some(v)).then_some(text)
        }
        Cell::Bool(v) => Some(v.to_string()),
        Cell::Micros(v) => written_timestamp(v),
        Cell::Null | Cell::Text | Cell::Decimal(_) => None,
    }
}

/// A UTC timestamp in microseconds as the serializers write it, for the
/// years 0 to 9999 (others are written with a sign).
fn written_timestamp(micros: i64) -> Option<String> {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let second = seconds.rem_euclid(86_400);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second / 3600,
        second / 60 % 60,
        second % 60
    );
    if fraction % 1000 != 0 {
        text.push_str(&format!(".{fraction:06}"));
    } else if fraction != 0 {
        text.push_str(&format!(".{:03}", fraction / 1000));
    }
    text.push('Z');
    Some(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
    use arrow_array::{TimestampMicrosecondArray, cast::AsArray};
    use arrow_cast::display::{ArrayFormatter, FormatOptions};

    use super::*;
    use crate::types::tests::Rng;
    use crate::types::{BatchBuilder, Columns, Inference, UTC};

    /// The type a column of these cells is inferred as.
    fn infer(cells: &[&str]) -> ColumnType {
        let mut inference = Inference::default();
        cells.iter().for_each(|c| inference.observe(c));
        inference.result()
    }

    #[test]
    fn identifiers_with_leading_zeros_stay_text() {
        assert_eq!(infer(&["00501", "08123", "10001"]), ColumnType::String);
        assert_eq!(infer(&["007"]), ColumnType::String);
        assert_eq!(infer(&["0", "10", "-3"]), ColumnType::Int64);
    }

    #[test]
    fn integers_with_a_sign_prefix_separator_or_space_stay_text() {
        for cell in ["+5", "-0", "0x1F", "1_000", " 5", "5 ", "1,000", "٥"] {
            assert_eq!(infer(&[cell]), ColumnType::String, "{cell:?}");
        }
    }

    #[test]
    fn integers_beyond_int64_stay_text() {
        assert_eq!(infer(&["9223372036854775807"]), ColumnType::Int64);
        assert_eq!(infer(&["-9223372036854775808"]), ColumnType::Int64);
        assert_eq!(infer(&["9223372036854775808"]), ColumnType::String);
        assert_eq!(infer(&["99999999999999999999"]), ColumnType::String);
    }

    #[test]
    fn floats_that_would_print_differently_stay_text() {
        for cell in [
            "1e3",
            "1E3",
            "1.5e2",
            "1.50",
            "19.90",
            "5.",
            ".5",
            "00.5",
            "-0",
            "+1.5",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "Infinity",
            "1.5 ",
            "1,5",
            "0.000001",
            "10000000000.0",
            "0.10000000000000001",
        ] {
            assert_eq!(infer(&[cell]), ColumnType::String, "{cell:?}");
        }
        for cell in [
            "1.5",
            "0.1",
            "1.0",
            "-2.25",
            "0.0",
            "0.00001",
            "9999999999.5",
        ] {
            assert_eq!(infer(&[cell]), ColumnType::Float64, "{cell:?}");
        }
        // The shortest digits of 0.1 + 0.2, seventeen of them.
        assert_eq!(infer(&["0.30000000000000004"]), ColumnType::Float64);
    }

    #[test]
    fn whole_numbers_make_a_float_column_text_as_they_would_gain_a_point() {
        // `5` as a float64 is written `5.0`.
        assert_eq!(infer(&["19.9", "5"]), ColumnType::String);
        assert_eq!(infer(&["19.9", "5.0"]), ColumnType::Float64);
    }

    #[test]
    fn only_lowercase_true_and_false_are_booleans() {
        assert_eq!(infer(&["true", "false"]), ColumnType::Bool);
        for cell in ["True", "TRUE", "FALSE", "t", "yes", "Y"] {
            assert_eq!(infer(&["true", cell]), ColumnType::String, "{cell:?}");
        }
        // Written back as they are, as integers.
        assert_eq!(infer(&["1", "0"]), ColumnType::Int64);
    }

    #[test]
    fn only_utc_timestamps_as_the_serializer_writes_them_are_timestamps() {
        for cell in [
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.120Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            assert_eq!(infer(&[cell]), ColumnType::Timestamp(None), "{cell:?}");
        }
        for cell in [
            // No zone, another separator, another zone, lowercase.
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05",
            "2024-01-02 03:04:05Z",
            "2024-01-02T03:04:05+00:00",
            "2024-01-02T04:04:05+01:00",
            "2024-01-02t03:04:05z",
            // Fractions written with other digits, or finer than stored.
            "2024-01-02T03:04:05.000Z",
            "2024-01-02T03:04:05.5Z",
            "2024-01-02T03:04:05.123000Z",
            "2024-01-02T03:04:05.123456789Z",
            // Finer than a millisecond, which not every format keeps.
            "2024-01-02T03:04:05.123456Z",
            // Not a time of day, or not a day.
            "2024-01-02T03:04:60Z",
            "2024-02-30T03:04:05Z",
            "2024-01-02",
        ] {
            assert_eq!(infer(&[cell]), ColumnType::String, "{cell:?}");
        }
    }

    #[test]
    fn no_text_is_written_back_by_two_types() {
        let mut rng = Rng::new(11);
        for _ in 0..50_000 {
            let cell = number_like(&mut rng);
            let types = [
                exact_int(&cell).is_ok(),
                exact_float(&cell).is_some(),
                exact_bool(&cell).is_some(),
                exact_timestamp(&cell).is_some(),
            ];
            assert!(types.iter().filter(|t| **t).count() <= 1, "{cell:?}");
        }
    }

    #[test]
    fn inferred_columns_refuse_later_cells_their_type_would_change() {
        let e = parse_exact(&ColumnType::Int64, "00501").unwrap_err();
        assert_eq!(e.class, "parse_error");
        assert!(
            e.message.contains("`00501` would be sent as `501`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("`columns`"), "{}", e.message);
        let e = parse_exact(&ColumnType::Float64, "19.90").unwrap_err();
        assert!(e.message.contains("sent as `19.9`"), "{}", e.message);
        let e = parse_exact(&ColumnType::Bool, "TRUE").unwrap_err();
        assert!(e.message.contains("sent as `true`"), "{}", e.message);
        let e = parse_exact(&ColumnType::Timestamp(None), "2024-01-02 03:04:05").unwrap_err();
        assert!(
            e.message.contains("sent as `2024-01-02T03:04:05Z`"),
            "{}",
            e.message
        );
        let e = parse_exact(&ColumnType::Int64, "99999999999999999999").unwrap_err();
        assert_eq!(e.class, "out_of_range");
        let e = parse_exact(&ColumnType::Int64, "n/a").unwrap_err();
        assert_eq!(e.class, "parse_error");
        assert!(e.message.contains("inferred"), "{}", e.message);
        assert_eq!(parse_exact(&ColumnType::Int64, "501"), Ok(Cell::Int(501)));
        // Declared, the same cells are converted as asked.
        assert_eq!(parse_text(&ColumnType::Int64, "00501"), Ok(Cell::Int(501)));
    }

    #[test]
    fn a_zip_code_column_stays_text_and_unchanged() {
        let rows = ["00501", "08123", "10001", "99950"];
        let ty = infer(&rows);
        assert_eq!(ty, ColumnType::String);
        let columns = Columns::new(vec!["zip".into()], vec![ty]);
        assert_eq!(
            columns.schema.field(0).data_type(),
            &arrow_schema::DataType::Utf8
        );
        let mut builder = BatchBuilder::new(&columns, 4);
        for zip in rows {
            builder.append_text([Some(zip)]).unwrap();
        }
        let batch = builder.finish().unwrap();
        let zips: Vec<_> = batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(zips, rows);
    }

    /// Cells that look like numbers, and many that nearly do: leading
    /// zeros, signs, exponents, hex, points, trailing zeros, separators,
    /// spaces, and the digits of values near the edges of plain notation.
    fn number_like(rng: &mut Rng) -> String {
        match rng.below(12) {
            0 => rng
                .pick(&[
                    "NaN", "inf", "-inf", "+inf", "infinity", "0x1F", "0X1f", "0b101", "0o17",
                    "1_000", "1,000", "-0", "+0", "0", "-0.0", "0.0", "true", "TRUE", "-", ".",
                ])
                .to_string(),
            // A double's own shortest digits, as Display writes them.
            1 => {
                let bits = (rng.below(1 << 30) as u64) << 34 | rng.below(1 << 30) as u64;
                let v = f64::from_bits(bits);
                if v.is_finite() {
                    written_float(v)
                } else {
                    "1.5".to_string()
                }
            }
            // A whole or short value scaled into and out of plain notation.
            2 => {
                let mantissa = rng.below(100_000) as f64;
                let exponent = rng.below(40) as i32 - 20;
                written_float(mantissa * 10f64.powi(exponent))
            }
            _ => {
                let mut text = rng.pick(&["", "", "", "", "-", "+", " "]).to_string();
                if rng.below(4) == 0 {
                    text.push_str(&"0".repeat(1 + rng.below(3)));
                }
                let int_len = rng.below(13);
                text.push_str(&rng.text(b"0123456789", int_len));
                if rng.below(2) == 0 {
                    text.push('.');
                    let zeros = if rng.below(3) == 0 { rng.below(7) } else { 0 };
                    text.push_str(&"0".repeat(zeros));
                    let frac_len = rng.below(19);
                    text.push_str(&rng.text(b"0123456789", frac_len));
                }
                if rng.below(6) == 0 {
                    text.push(*rng.pick(&['e', 'E']));
                    text.push_str(rng.pick::<&str>(&["", "-", "+"]));
                    let exp_len = 1 + rng.below(3);
                    text.push_str(&rng.text(b"0123456789", exp_len));
                }
                if rng.below(20) == 0 && !text.is_empty() {
                    let at = rng.below(text.len());
                    text.replace_range(at..=at, &rng.text(b"x _.-+e0", 1));
                }
                text
            }
        }
    }

    /// Each value of `array` as the JSON serializer writes it (arrow-json,
    /// which the daemon's writer matches digit for digit) and as the key
    /// and `string` format write it (arrow-cast's display).
    fn serialized(array: ArrayRef) -> Vec<(String, String)> {
        let batch = RecordBatch::try_from_iter([("v", array.clone())]).unwrap();
        let mut out = Vec::new();
        let mut writer = arrow_json::LineDelimitedWriter::new(&mut out);
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        let json = String::from_utf8(out).unwrap();
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).unwrap();
        json.lines()
            .enumerate()
            .map(|(i, line)| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let json_text = match &value["v"] {
                    serde_json::Value::String(s) => s.clone(),
                    _ => line["{\"v\":".len()..line.len() - 1].to_string(),
                };
                (json_text, formatter.value(i).to_string())
            })
            .collect()
    }

    #[test]
    fn every_cell_inferred_as_a_number_prints_back_as_the_same_text() {
        let mut rng = Rng::new(12);
        let cells: Vec<String> = (0..60_000).map(|_| number_like(&mut rng)).collect();
        let (mut ints, mut floats) = (Vec::new(), Vec::new());
        for cell in &cells {
            // Alone in its column, as the narrowest case; a column of
            // several is inferred as a type only if each cell alone is.
            match infer(&[cell.as_str()]) {
                ColumnType::Int64 => ints.push(cell),
                ColumnType::Float64 => floats.push(cell),
                _ => {}
            }
        }
        // Enough of each kind to mean something, floats of sixteen and
        // seventeen digits among them.
        let long = floats
            .iter()
            .filter(|f| f.bytes().filter(u8::is_ascii_digit).count() > SURELY_SHORTEST)
            .count();
        assert!(
            ints.len() > 5_000 && floats.len() > 4_000 && long > 500,
            "{} {} {long}",
            ints.len(),
            floats.len()
        );
        let parsed = |ty: &ColumnType, cells: &[&String]| -> ArrayRef {
            let columns =
                Columns::with_origins(vec!["v".into()], vec![ty.clone()], vec![Origin::Inferred]);
            let mut builder = BatchBuilder::new(&columns, cells.len());
            for cell in cells {
                builder.append_text([Some(cell.as_str())]).unwrap();
            }
            builder.finish().unwrap().column(0).clone()
        };
        for (ty, cells) in [(ColumnType::Int64, &ints), (ColumnType::Float64, &floats)] {
            let written = serialized(parsed(&ty, cells));
            for (cell, (json, display)) in cells.iter().zip(written) {
                assert_eq!(&json, *cell, "JSON of {ty:?}");
                assert_eq!(&display, *cell, "display of {ty:?}");
            }
        }
    }

    #[test]
    fn every_value_written_in_plain_notation_is_inferred_as_its_type() {
        // The converse: the rule refuses no text the serializers would
        // write back, short of exponents (which each writes its own way).
        let mut rng = Rng::new(13);
        let mut values: Vec<f64> = (0..20_000)
            .map(|_| {
                let cell = number_like(&mut rng);
                cell.parse::<f64>().unwrap_or(0.5)
            })
            .filter(|v| v.is_finite())
            .collect();
        values.extend([
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-5,
            9_999_999_999.0,
            0.30000000000000004,
        ]);
        let array: ArrayRef = Arc::new(Float64Array::from(values.clone()));
        let mut plain = 0;
        for (v, (json, display)) in values.iter().zip(serialized(array)) {
            let both_plain = !json.contains(['e', 'E']) && json == display;
            assert_eq!(
                exact_float(&json).is_some(),
                both_plain,
                "{v:?} {json} {display}"
            );
            if both_plain {
                plain += 1;
                assert_eq!(exact_float(&json), Some(*v), "{json}");
                assert_eq!(written(Cell::Float(*v)).as_deref(), Some(json.as_str()));
            }
        }
        assert!(plain > 5_000, "{plain}");
        let ints: Vec<i64> = (0..2_000)
            .map(|i| (rng.below(1 << 30) as i64) << (i % 34) ^ -(i % 2))
            .chain([0, i64::MIN, i64::MAX])
            .collect();
        let array: ArrayRef = Arc::new(Int64Array::from(ints.clone()));
        for (v, (json, display)) in ints.iter().zip(serialized(array)) {
            assert_eq!(json, display);
            assert_eq!(exact_int(&json), Ok(*v));
        }
        let array: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        for (v, (json, display)) in [true, false].iter().zip(serialized(array)) {
            assert_eq!(json, display);
            assert_eq!(exact_bool(&json), Some(*v));
        }
    }

    #[test]
    fn timestamps_are_inferred_exactly_when_written_back_to_the_millisecond() {
        let mut rng = Rng::new(14);
        let micros: Vec<i64> = (0..5_000)
            .map(|_| {
                let seconds = rng.below(1 << 30) as i64 * 8 - (1 << 31);
                let fraction = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(1000) as i64 * 1000,
                    _ => rng.below(1_000_000) as i64,
                };
                seconds * 1_000_000 + fraction
            })
            .chain([0, -1, 253_402_300_799_999_999, -62_167_219_200_000_000])
            .collect();
        let array: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(micros.clone()).with_timezone(UTC));
        for (v, (json, display)) in micros.iter().zip(serialized(array)) {
            assert_eq!(json, display, "{v}");
            // Microseconds are written back by JSON, but not kept by
            // every format.
            let kept = (*v % 1000 == 0).then_some(*v);
            assert_eq!(exact_timestamp(&json), kept, "{json}");
            assert_eq!(written_timestamp(*v).as_deref(), Some(json.as_str()));
        }
    }
}
