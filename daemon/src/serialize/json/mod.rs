//! JSON objects from Arrow rows, with the per-column decisions taken once
//! per batch.
//!
//! arrow-json's encoder calls a boxed encoder per value and formats through
//! generic paths (serde_json for strings, `Display` for decimals, chrono for
//! timestamps); for a million CSV rows that was a third of the sending
//! thread. [`RowEncoder`] picks a plain formatting routine per column when
//! it is built and writes the common types straight into the output. Its
//! output is arrow-json's with explicit nulls, byte for byte (the tests
//! compare the two on random batches), and a column without a fast path is
//! handed to arrow-json's own encoder for that column, so no type changes
//! shape.
//!
//! This file picks the writer for each column and lays out the object;
//! the writers live beside it, one file per kind of value: [`number`],
//! [`string`], [`decimal`] and [`time`] (timestamps and dates), with
//! [`buffer`] holding the two ways they append to the output.

mod buffer;
mod decimal;
mod number;
mod string;
mod time;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal32Type, Decimal64Type, Decimal128Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, GenericStringArray, RecordBatch, StringViewArray};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_json::StructMode;
use arrow_json::writer::{EncoderOptions, NullableEncoder, make_encoder};
use arrow_schema::{ArrowError, DataType, FieldRef, TimeUnit};

use self::buffer::push_prefix;
use self::decimal::{Scale, write_decimal};
use self::number::{write_float, write_number};
use self::string::{write_string, write_string_at};
use self::time::{Dates, Timestamps, is_utc};

/// Writes one JSON object per row of a batch, keys in schema order and
/// nulls written out (`"col":null`).
pub(crate) struct RowEncoder<'a> {
    columns: Vec<Column<'a>>,
}

struct Column<'a> {
    /// `{"name":` for the first column, `,"name":` for the others; the name
    /// escaped by serde_json, as arrow-json does.
    key: Key,
    /// The column's nulls, for the fast paths (a fallback encoder knows its
    /// own, which for some types are logical rather than physical nulls).
    nulls: Option<&'a NullBuffer>,
    value: Value<'a>,
}

/// How one column's non-null values are written.
enum Value<'a> {
    Int8(&'a [i8]),
    Int16(&'a [i16]),
    Int32(&'a [i32]),
    Int64(&'a [i64]),
    UInt8(&'a [u8]),
    UInt16(&'a [u16]),
    UInt32(&'a [u32]),
    UInt64(&'a [u64]),
    Float32(&'a [f32]),
    Float64(&'a [f64]),
    Boolean(&'a BooleanBuffer),
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
    Utf8View(&'a StringViewArray),
    Decimal32(&'a [i32], Scale),
    Decimal64(&'a [i64], Scale),
    Decimal128(&'a [i128], Scale),
    Timestamp(Box<Timestamps<'a>>),
    Date32(Box<Dates<'a>>),
    /// arrow-json's encoder for this column; it also answers for nulls.
    Fallback(NullableEncoder<'a>),
}

impl<'a> RowEncoder<'a> {
    /// An encoder for `batch`'s rows.
    ///
    /// `options` are arrow-json's, for the columns without a fast path. The
    /// fast paths write what arrow-json writes with explicit nulls, objects
    /// and its default date and time formats; a temporal column whose
    /// format the options override goes to arrow-json. An encoder factory
    /// in `options` must not change the output of the fast-path types (ours
    /// only caches).
    pub(crate) fn try_new(
        batch: &'a RecordBatch,
        options: &'a EncoderOptions,
    ) -> Result<Self, ArrowError> {
        debug_assert!(options.explicit_nulls() && options.struct_mode() == StructMode::ObjectOnly);
        let fields = batch.schema_ref().fields();
        let mut columns = Vec::with_capacity(fields.len());
        for (i, (field, array)) in fields.iter().zip(batch.columns()).enumerate() {
            let mut key = Vec::with_capacity(field.name().len() + 4);
            key.push(if i == 0 { b'{' } else { b',' });
            // Serialising a string into a Vec cannot fail.
            serde_json::to_writer(&mut key, field.name()).expect("a string serialises");
            key.push(b':');
            let key = Key::new(key);
            let array = array.as_ref();
            let value = match fast_path(field, array, options)? {
                Some(value) => value,
                None => Value::Fallback(make_encoder(field, array, options)?),
            };
            let nulls = match value {
                Value::Fallback(_) => None,
                _ => array.nulls(),
            };
            columns.push(Column { key, nulls, value });
        }
        Ok(RowEncoder { columns })
    }

    /// Appends row `row` as one JSON object to `out`.
    pub(crate) fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        if self.columns.is_empty() {
            out.extend_from_slice(b"{}");
            return;
        }
        for column in &mut self.columns {
            column.key.write(out);
            if column.nulls.is_some_and(|n| n.is_null(row)) {
                out.extend_from_slice(b"null");
                continue;
            }
            column.value.encode(row, out);
        }
        out.push(b'}');
    }
}

/// The fast path for `array`'s type, if there is one.
fn fast_path<'a>(
    field: &'a FieldRef,
    array: &'a dyn Array,
    options: &'a EncoderOptions,
) -> Result<Option<Value<'a>>, ArrowError> {
    Ok(Some(match array.data_type() {
        DataType::Int8 => Value::Int8(array.as_primitive::<Int8Type>().values()),
        DataType::Int16 => Value::Int16(array.as_primitive::<Int16Type>().values()),
        DataType::Int32 => Value::Int32(array.as_primitive::<Int32Type>().values()),
        DataType::Int64 => Value::Int64(array.as_primitive::<Int64Type>().values()),
        DataType::UInt8 => Value::UInt8(array.as_primitive::<UInt8Type>().values()),
        DataType::UInt16 => Value::UInt16(array.as_primitive::<UInt16Type>().values()),
        DataType::UInt32 => Value::UInt32(array.as_primitive::<UInt32Type>().values()),
        DataType::UInt64 => Value::UInt64(array.as_primitive::<UInt64Type>().values()),
        DataType::Float32 => Value::Float32(array.as_primitive::<Float32Type>().values()),
        DataType::Float64 => Value::Float64(array.as_primitive::<Float64Type>().values()),
        DataType::Boolean => Value::Boolean(array.as_boolean().values()),
        DataType::Utf8 => Value::Utf8(array.as_string::<i32>()),
        DataType::LargeUtf8 => Value::LargeUtf8(array.as_string::<i64>()),
        DataType::Utf8View => Value::Utf8View(array.as_string_view()),
        DataType::Decimal32(_, scale) => Value::Decimal32(
            array.as_primitive::<Decimal32Type>().values(),
            Scale::new(*scale),
        ),
        DataType::Decimal64(_, scale) => Value::Decimal64(
            array.as_primitive::<Decimal64Type>().values(),
            Scale::new(*scale),
        ),
        DataType::Decimal128(_, scale) => Value::Decimal128(
            array.as_primitive::<Decimal128Type>().values(),
            Scale::new(*scale),
        ),
        DataType::Timestamp(unit, tz) => {
            let zulu = match tz {
                None if options.timestamp_format().is_none() => false,
                Some(tz) if options.timestamp_tz_format().is_none() && is_utc(tz) => true,
                _ => return Ok(None),
            };
            let values = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().values(),
            };
            Value::Timestamp(Box::new(Timestamps::new(
                values,
                *unit,
                zulu,
                make_encoder(field, array, options)?,
            )))
        }
        DataType::Date32 if options.date_format().is_none() => Value::Date32(Box::new(Dates::new(
            array.as_primitive::<Date32Type>().values(),
            make_encoder(field, array, options)?,
        ))),
        _ => return Ok(None),
    }))
}

impl Value<'_> {
    /// Appends the non-null value at `row` (a fallback checks for null
    /// itself).
    #[inline(always)]
    fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        match self {
            Value::Int8(v) => write_number(v[row], out),
            Value::Int16(v) => write_number(v[row], out),
            Value::Int32(v) => write_number(v[row], out),
            Value::Int64(v) => write_number(v[row], out),
            Value::UInt8(v) => write_number(v[row], out),
            Value::UInt16(v) => write_number(v[row], out),
            Value::UInt32(v) => write_number(v[row], out),
            Value::UInt64(v) => write_number(v[row], out),
            Value::Float32(v) => write_float(v[row], v[row].is_finite(), out),
            Value::Float64(v) => write_float(v[row], v[row].is_finite(), out),
            Value::Boolean(v) => {
                out.extend_from_slice(if v.value(row) { b"true" } else { b"false" })
            }
            Value::Utf8(a) => write_string_at(a, row, out),
            Value::LargeUtf8(a) => write_string_at(a, row, out),
            Value::Utf8View(a) => write_string(a.value(row).as_bytes(), out),
            Value::Decimal32(v, scale) => write_decimal(i128::from(v[row]), *scale, out),
            Value::Decimal64(v, scale) => write_decimal(i128::from(v[row]), *scale, out),
            Value::Decimal128(v, scale) => write_decimal(v[row], *scale, out),
            Value::Timestamp(t) => t.encode(row, out),
            Value::Date32(d) => d.encode(row, out),
            Value::Fallback(encoder) => {
                if encoder.is_null(row) {
                    out.extend_from_slice(b"null");
                } else {
                    encoder.encode(row, out);
                }
            }
        }
    }
}

/// A column's key, padded so that writing it is a fixed-size copy.
struct Key {
    padded: [u8; KEY_LEN],
    len: usize,
    /// The key when it is longer than `KEY_LEN`.
    long: Vec<u8>,
}

const KEY_LEN: usize = 32;

impl Key {
    fn new(key: Vec<u8>) -> Self {
        let mut padded = [0; KEY_LEN];
        match padded.get_mut(..key.len()) {
            Some(prefix) => {
                prefix.copy_from_slice(&key);
                Key {
                    padded,
                    len: key.len(),
                    long: Vec::new(),
                }
            }
            None => Key {
                padded,
                len: 0,
                long: key,
            },
        }
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        if self.long.is_empty() {
            push_prefix(out, &self.padded, self.len);
        } else {
            out.extend_from_slice(&self.long);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal32Array,
        Decimal64Array, Decimal128Array, Float32Array, Float64Array, Int8Array, Int16Array,
        Int32Array, Int64Array, LargeStringArray, NullArray, RecordBatch, RecordBatchOptions,
        StringArray, StringViewArray, StructArray, TimestampMicrosecondArray,
        TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt8Array,
        UInt16Array, UInt32Array, UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema};
    use tributary_plugin_sdk::calendar::days_from_civil;

    use crate::config::Format;
    use crate::serialize::RecordSerializer;

    /// xorshift64*: deterministic, so a failing batch can be rebuilt.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn between(&mut self, low: i64, high: i64) -> i64 {
            low + (self.next() % (high - low) as u64) as i64
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// The seed of the randomised tests: `TRIBUTARY_TEST_SEED` when set, so
    /// other batches can be explored, else a fixed one.
    fn test_seed() -> u64 {
        let seed = std::env::var("TRIBUTARY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x7269_6275_7461_7279)
            | 1;
        eprintln!("TRIBUTARY_TEST_SEED={seed}");
        seed
    }

    /// What arrow-json's writer makes of `batch`, one line per row.
    fn arrow_json_lines(batch: &RecordBatch) -> Vec<String> {
        let mut writer = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        let text = String::from_utf8(writer.into_inner()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn assert_same_as_arrow_json(batch: &RecordBatch, context: &str) {
        let expected = arrow_json_lines(batch);
        let ours = RecordSerializer::new(Format::Json, None, None)
            .serialize(batch)
            .unwrap();
        assert_eq!(ours.len(), expected.len(), "{context}");
        for (row, line) in expected.iter().enumerate() {
            let value = String::from_utf8(ours.value(row).to_vec()).unwrap();
            assert_eq!(&value, line, "row {row} of {context}");
        }
    }

    fn maybe<T>(rng: &mut Rng, nullable: bool, value: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        if nullable && rng.chance(20) {
            None
        } else {
            Some(value(rng))
        }
    }

    fn values<T>(
        rng: &mut Rng,
        rows: usize,
        nullable: bool,
        mut value: impl FnMut(&mut Rng) -> T,
    ) -> Vec<Option<T>> {
        (0..rows)
            .map(|_| maybe(rng, nullable, &mut value))
            .collect()
    }

    macro_rules! integers {
        ($rng:expr, $rows:expr, $nullable:expr, $t:ty, $array:ty) => {{
            let v = values($rng, $rows, $nullable, |rng| match rng.below(5) {
                0 => <$t>::MIN,
                1 => <$t>::MAX,
                2 => 0,
                3 => rng.between(-100, 100) as $t,
                _ => rng.next() as $t,
            });
            Arc::new(<$array>::from(v)) as ArrayRef
        }};
    }

    fn float64(rng: &mut Rng) -> f64 {
        const SPECIAL: [f64; 16] = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1e-7,
            1e21,
            1e22,
            -1e16,
            0.1,
            123_456.789,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            f64::EPSILON,
        ];
        match rng.below(4) {
            0 => rng.pick(&SPECIAL),
            1 => f64::from_bits(rng.next()),
            2 => rng.between(-1_000_000, 1_000_000) as f64 / 100.0,
            _ => rng.between(-9999, 9999) as f64 * 10f64.powi(rng.between(-30, 30) as i32),
        }
    }

    fn float32(rng: &mut Rng) -> f32 {
        match rng.below(3) {
            0 => f32::from_bits(rng.next() as u32),
            1 => rng.pick(&[f32::MAX, f32::MIN_POSITIVE, 1e-7, 3.4e38, 16_777_217.0]),
            _ => float64(rng) as f32,
        }
    }

    fn text(rng: &mut Rng) -> String {
        const CHARS: [char; 24] = [
            'a', 'Z', '0', ' ', '/', '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1}',
            '\u{1f}', '\u{7f}', 'é', '€', '😀', '\u{2028}', '<', '\'', 'x', 'y',
        ];
        let len = rng.pick(&[0, 0, 1, 3, 8, 13, 30]);
        (0..len).map(|_| rng.pick(&CHARS)).collect()
    }

    /// A day: mostly recent, sometimes far, sometimes beside a leap day or
    /// the edges of the years chrono writes with four digits.
    fn day(rng: &mut Rng) -> i64 {
        match rng.below(6) {
            0 | 1 => rng.between(-25_000, 50_000),
            2 => rng.between(days_from_civil(0, 1, 1), days_from_civil(10_000, 1, 1)),
            3 => {
                let year = rng.pick(&[1600, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 4, 9996]);
                days_from_civil(year, rng.pick(&[2, 3]), 1) + rng.between(-2, 2)
            }
            4 => {
                rng.pick(&[days_from_civil(0, 1, 1), days_from_civil(10_000, 1, 1)])
                    + rng.between(-2, 2)
            }
            _ => rng.between(-4_000_000, 4_000_000),
        }
    }

    /// A timestamp in `ticks_per_second` units, its fraction zero, whole
    /// milliseconds, whole microseconds or anything.
    fn timestamp(rng: &mut Rng, ticks_per_second: i64) -> i64 {
        if ticks_per_second == 1 && rng.chance(3) {
            // Beyond chrono's range: arrow-json writes an error text.
            return rng.pick(&[i64::MIN, i64::MAX, -9_000_000_000_000_000]);
        }
        let seconds = day(rng) * 86_400 + rng.between(0, 86_400);
        let fraction = match rng.below(4) {
            0 => 0,
            1 => rng.between(0, 1_000) * (ticks_per_second / 1_000).max(1),
            2 => rng.between(0, 1_000_000) * (ticks_per_second / 1_000_000).max(1),
            _ => rng.between(0, ticks_per_second.max(2)),
        } % ticks_per_second;
        seconds
            .checked_mul(ticks_per_second)
            .and_then(|t| t.checked_add(fraction))
            .unwrap_or_else(|| rng.between(-4_000_000_000, 4_000_000_000) * ticks_per_second)
    }

    const ZONES: [Option<&str>; 30] = [
        None,
        None,
        None,
        Some("UTC"),
        Some("UTC"),
        Some("+00:00"),
        Some("-00:00"),
        Some("+0000"),
        Some("-0000"),
        Some("+00"),
        Some("-00"),
        Some("Etc/UTC"),
        Some("UCT"),
        Some("Etc/UCT"),
        Some("Universal"),
        Some("Etc/Universal"),
        Some("Zulu"),
        Some("Etc/Zulu"),
        Some("GMT"),
        Some("Etc/GMT"),
        Some("GMT0"),
        Some("Etc/GMT0"),
        Some("GMT+0"),
        Some("Etc/GMT+0"),
        Some("GMT-0"),
        Some("Etc/GMT-0"),
        Some("Greenwich"),
        Some("Etc/Greenwich"),
        // Not UTC: arrow-json's encoder writes these.
        Some("+01:00"),
        Some("Europe/Paris"),
    ];

    const DECIMALS_128: [(u8, i8); 10] = [
        (10, 2),
        (12, 2),
        (38, 10),
        (38, 0),
        (5, 5),
        (38, 38),
        (10, -2),
        (3, 1),
        (20, 4),
        (38, -5),
    ];

    fn decimal(rng: &mut Rng) -> i128 {
        match rng.below(6) {
            0 => 0,
            1 => i128::from(rng.between(-1_000, 1_000)),
            2 => i128::from(rng.next() as i64),
            3 => (i128::from(rng.next()) << 64) | i128::from(rng.next()),
            4 => rng.pick(&[i128::MIN, i128::MAX, -1, 1, 10, -10, 100_000]),
            _ => i128::from(rng.between(-99_999_999, 99_999_999)),
        }
    }

    /// Kinds of columns the random batches draw from: every fast path,
    /// plus a few types arrow-json's encoder writes.
    const KINDS: usize = 26;

    fn column(rng: &mut Rng, kind: usize, rows: usize, nullable: bool) -> ArrayRef {
        let r = rng;
        match kind {
            0 => integers!(r, rows, nullable, i8, Int8Array),
            1 => integers!(r, rows, nullable, i16, Int16Array),
            2 => integers!(r, rows, nullable, i32, Int32Array),
            3 => integers!(r, rows, nullable, i64, Int64Array),
            4 => integers!(r, rows, nullable, u8, UInt8Array),
            5 => integers!(r, rows, nullable, u16, UInt16Array),
            6 => integers!(r, rows, nullable, u32, UInt32Array),
            7 => integers!(r, rows, nullable, u64, UInt64Array),
            8 => Arc::new(Float32Array::from(values(r, rows, nullable, float32))),
            9 => Arc::new(Float64Array::from(values(r, rows, nullable, float64))),
            10 => Arc::new(BooleanArray::from(values(r, rows, nullable, |r| {
                r.chance(50)
            }))),
            11 => Arc::new(StringArray::from(values(r, rows, nullable, text))),
            12 => Arc::new(LargeStringArray::from(values(r, rows, nullable, text))),
            13 => Arc::new(StringViewArray::from_iter(values(r, rows, nullable, text))),
            14 => {
                let (precision, scale) = r.pick(&DECIMALS_128);
                let array = Decimal128Array::from(values(r, rows, nullable, decimal));
                Arc::new(array.with_precision_and_scale(precision, scale).unwrap())
            }
            15 => {
                let (precision, scale) = r.pick(&[(9, 2), (9, 0), (9, 9), (5, -3)]);
                let array = Decimal32Array::from(values(r, rows, nullable, |r| decimal(r) as i32));
                Arc::new(array.with_precision_and_scale(precision, scale).unwrap())
            }
            16 => {
                let (precision, scale) = r.pick(&[(18, 4), (18, 0), (10, 10), (15, -1)]);
                let array = Decimal64Array::from(values(r, rows, nullable, |r| decimal(r) as i64));
                Arc::new(array.with_precision_and_scale(precision, scale).unwrap())
            }
            17 => {
                let v = values(r, rows, nullable, |r| timestamp(r, 1));
                Arc::new(TimestampSecondArray::from(v).with_timezone_opt(r.pick(&ZONES)))
            }
            18 => {
                let v = values(r, rows, nullable, |r| timestamp(r, 1_000));
                Arc::new(TimestampMillisecondArray::from(v).with_timezone_opt(r.pick(&ZONES)))
            }
            19 => {
                let v = values(r, rows, nullable, |r| timestamp(r, 1_000_000));
                Arc::new(TimestampMicrosecondArray::from(v).with_timezone_opt(r.pick(&ZONES)))
            }
            20 => {
                let v = values(r, rows, nullable, |r| timestamp(r, 1_000_000_000));
                Arc::new(TimestampNanosecondArray::from(v).with_timezone_opt(r.pick(&ZONES)))
            }
            21 => {
                let v = values(r, rows, nullable, |r| match r.below(20) {
                    0 => r.pick(&[i32::MIN, i32::MAX]),
                    _ => day(r) as i32,
                });
                Arc::new(Date32Array::from(v))
            }
            22 => {
                let mut list = ListBuilder::new(Int32Builder::new());
                for _ in 0..rows {
                    if nullable && r.chance(20) {
                        list.append_null();
                        continue;
                    }
                    for _ in 0..r.below(4) {
                        list.values()
                            .append_option(maybe(r, true, |r| r.next() as i32));
                    }
                    list.append(true);
                }
                Arc::new(list.finish())
            }
            23 => {
                let mut dictionary = StringDictionaryBuilder::<Int32Type>::new();
                for _ in 0..rows {
                    match maybe(r, nullable, |r| r.pick(&["EUR", "USD", "a\"b"])) {
                        Some(v) => dictionary.append_value(v),
                        None => dictionary.append_null(),
                    }
                }
                Arc::new(dictionary.finish())
            }
            24 => {
                let v = values(r, rows, nullable, |r| r.next().to_le_bytes().to_vec());
                Arc::new(BinaryArray::from_iter(v))
            }
            _ => {
                let v = values(r, rows, nullable, |r| r.next() as i64 / 1000);
                Arc::new(Date64Array::from(v))
            }
        }
    }

    fn random_batch(rng: &mut Rng) -> RecordBatch {
        const NAMES: [&str; 9] = [
            "seq",
            "",
            "we\"ird",
            "back\\slash",
            "tab\t",
            "ünï€😀",
            "ctl\u{1}",
            "price",
            "a_column_name_longer_than_a_padded_key",
        ];
        let rows = rng.pick(&[0, 1, 2, 7, 40]) as usize;
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for i in 0..rng.below(8) + 1 {
            let nullable = rng.chance(50);
            let kind = rng.below(KINDS as u64) as usize;
            let array = column(rng, kind, rows, nullable);
            let name = format!("{}{i}", rng.pick(&NAMES));
            fields.push(Field::new(name, array.data_type().clone(), nullable));
            columns.push(array);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        // Sliced arrays start inside their buffers (values and nulls).
        if rows > 2 && rng.chance(30) {
            let offset = rng.below(rows as u64 / 2) as usize;
            return batch.slice(offset, rows - offset - 1);
        }
        batch
    }

    #[test]
    fn random_batches_encode_exactly_as_arrow_json_does() {
        let mut rng = Rng(test_seed());
        for round in 0..2_000 {
            let batch = random_batch(&mut rng);
            let types: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .map(|f| format!("{:?}", f.data_type()))
                .collect();
            assert_same_as_arrow_json(&batch, &format!("batch {round} {types:?}"));
        }
    }

    #[test]
    fn every_fast_path_type_is_chosen_for_its_column() {
        let mut rng = Rng(test_seed());
        let options = arrow_json::writer::EncoderOptions::default().with_explicit_nulls(true);
        for kind in 0..=21 {
            let array = column(&mut rng, kind, 3, false);
            let array = match array.data_type() {
                // Only UTC-like zones have a fast path.
                DataType::Timestamp(unit, _) => {
                    arrow_cast::cast(&array, &DataType::Timestamp(*unit, Some("UTC".into())))
                        .unwrap()
                }
                _ => array,
            };
            let batch = RecordBatch::try_from_iter([("c", array)]).unwrap();
            let encoder = super::RowEncoder::try_new(&batch, &options).unwrap();
            assert!(
                !matches!(encoder.columns[0].value, super::Value::Fallback(_)),
                "{:?} falls back",
                batch.schema().field(0).data_type()
            );
        }
    }

    #[test]
    fn utc_zones_are_written_with_z_like_arrow_json() {
        let mut rng = Rng(test_seed());
        for zone in ZONES {
            let values: Vec<i64> = (0..200).map(|_| timestamp(&mut rng, 1_000)).collect();
            let array = TimestampMillisecondArray::from(values).with_timezone_opt(zone);
            let batch = RecordBatch::try_from_iter([("ts", Arc::new(array) as ArrayRef)]).unwrap();
            assert_same_as_arrow_json(&batch, &format!("{zone:?}"));
        }
    }

    #[test]
    fn nested_and_other_types_fall_back_to_arrow_json() {
        let mut rng = Rng(test_seed());
        let rows = 50;
        let name = column(&mut rng, 11, rows, true);
        let at = column(&mut rng, 17, rows, true);
        let point = StructArray::from(vec![
            (
                Arc::new(Field::new("name", name.data_type().clone(), true)),
                name,
            ),
            (Arc::new(Field::new("at", at.data_type().clone(), true)), at),
        ]);
        let paris = TimestampSecondArray::from(values(&mut rng, rows, true, |r| timestamp(r, 1)))
            .with_timezone("Europe/Paris");
        let batch = RecordBatch::try_from_iter_with_nullable([
            ("list", column(&mut rng, 22, rows, true), true),
            ("point", Arc::new(point) as ArrayRef, false),
            ("currency", column(&mut rng, 23, rows, true), true),
            ("raw", column(&mut rng, 24, rows, true), true),
            ("paris", Arc::new(paris) as ArrayRef, true),
            ("nothing", Arc::new(NullArray::new(rows)) as ArrayRef, true),
            ("seq", column(&mut rng, 7, rows, false), false),
        ])
        .unwrap();
        let options = arrow_json::writer::EncoderOptions::default().with_explicit_nulls(true);
        let encoder = super::RowEncoder::try_new(&batch, &options).unwrap();
        let fallbacks = encoder
            .columns
            .iter()
            .filter(|c| matches!(c.value, super::Value::Fallback(_)))
            .count();
        assert_eq!(fallbacks, 6);
        assert_same_as_arrow_json(&batch, "nested and other types");
    }

    #[test]
    fn rows_of_a_batch_without_columns_are_empty_objects() {
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(3)),
        )
        .unwrap();
        assert_same_as_arrow_json(&batch, "no columns");
        let ours = RecordSerializer::new(Format::Json, None, None)
            .serialize(&batch)
            .unwrap();
        assert_eq!(ours.value(2), b"{}");
    }

    #[test]
    fn decimals_and_timestamps_read_as_arrow_displays_them() {
        let prices = Decimal128Array::from(vec![8019, -5, 0, 123_456, -100])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let at = TimestampMicrosecondArray::from(vec![
            0,
            -1,
            951_782_400_123_000,
            1_700_000_000_000_001,
            -62_167_219_200_000_000,
        ]);
        let batch = RecordBatch::try_from_iter([
            ("price", Arc::new(prices) as ArrayRef),
            ("at", Arc::new(at) as ArrayRef),
        ])
        .unwrap();
        let ours = RecordSerializer::new(Format::Json, None, None)
            .serialize(&batch)
            .unwrap();
        let rows: Vec<&str> = (0..5)
            .map(|i| std::str::from_utf8(ours.value(i)).unwrap())
            .collect();
        assert_eq!(
            rows,
            [
                r#"{"price":80.19,"at":"1970-01-01T00:00:00"}"#,
                r#"{"price":-0.05,"at":"1969-12-31T23:59:59.999999"}"#,
                r#"{"price":0.00,"at":"2000-02-29T00:00:00.123"}"#,
                r#"{"price":1234.56,"at":"2023-11-14T22:13:20.000001"}"#,
                r#"{"price":-1.00,"at":"0000-01-01T00:00:00"}"#,
            ]
        );
        assert_same_as_arrow_json(&batch, "examples");
    }
}
