//! Turning Arrow rows into Kafka record values and keys.
//!
//! A batch is serialised into one contiguous buffer with a byte range per
//! row, so sending a record borrows a slice instead of allocating per row
//! (librdkafka copies the payload into its own queue anyway).

mod avro;
mod connect;
mod dead_letter;
mod json;

use std::ops::Range;
use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::{Array, GenericStringArray, OffsetSizeTrait, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use arrow_schema::DataType;
use arrow_schema::{ArrowError, FieldRef, TimeUnit};

use crate::config::Format;

pub use avro::AvroTarget;
pub use dead_letter::{DeadLetterRecords, is_dead_letter};

/// Errors while serialising a batch.
#[derive(Debug, thiserror::Error)]
pub enum SerializeError {
    /// The configured key column is not in the batch.
    #[error("key column `{column}` is not in the source's rows (columns: {available})")]
    MissingKeyColumn {
        /// The configured column.
        column: String,
        /// The columns the batch has.
        available: String,
    },
    /// The configured value column (`format = "string"`) is not in the batch.
    #[error("value column `{column}` is not in the source's rows (columns: {available})")]
    MissingValueColumn {
        /// The configured column.
        column: String,
        /// The columns the batch has.
        available: String,
    },
    /// Arrow could not encode a column.
    #[error("cannot serialise a batch: {0}")]
    Arrow(#[from] ArrowError),
    /// The schema registry did not give the batch's schema an id.
    #[error("schema for subject `{subject}`: {source}")]
    Registry {
        /// The subject.
        subject: String,
        /// Why.
        source: crate::registry::RegistryError,
    },
    /// arrow-avro could not map or encode the batch.
    #[error("cannot encode the batch as Avro: {0}")]
    Avro(String),
    /// A `format = "avro"` source has no registry to register with.
    #[error("format = \"avro\" needs a [schema_registry] section")]
    NoRegistry,
    /// A dead-letter batch without the columns the SDK defines.
    #[error(
        "the plugin returned a dead-letter batch whose column `{column}` is missing, has nulls, or has the wrong type"
    )]
    MalformedDeadLetters {
        /// The column at fault.
        column: String,
    },
}

/// The serialised rows of one batch.
#[derive(Debug, Default)]
pub struct Serialized {
    /// All values, back to back.
    pub values: Vec<u8>,
    /// Each row's value within `values`.
    pub value_ranges: Vec<Range<usize>>,
    /// All keys, back to back.
    pub keys: Vec<u8>,
    /// Each row's key within `keys`; `None` without a key column or for a
    /// null key (Kafka then spreads such records over partitions).
    pub key_ranges: Vec<Option<Range<usize>>>,
}

impl Serialized {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.value_ranges.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.value_ranges.is_empty()
    }

    /// The value of row `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        &self.values[self.value_ranges[i].clone()]
    }

    /// The key of row `i`.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        self.key_ranges
            .get(i)
            .and_then(|r| r.as_ref())
            .map(|r| &self.keys[r.clone()])
    }
}

/// Serialises a source's batches according to its `format` and `key`.
#[derive(Debug)]
pub struct RecordSerializer {
    format: Format,
    key_column: Option<String>,
    options: EncoderOptions,
    /// Bytes per row of the previous batch, to size the next buffer once
    /// instead of growing (and copying) it several times.
    bytes_per_row: AtomicUsize,
    /// With `format = "avro"`, the source's encoder and registry.
    avro: Option<avro::AvroValues>,
    /// With `format = "connect_json"`, the envelope's schema part of the
    /// last Arrow schema seen.
    connect_schema: std::sync::Mutex<Option<(arrow_schema::SchemaRef, String)>>,
}

impl RecordSerializer {
    /// A serializer for one source; `avro` says where `format = "avro"`
    /// registers its schemas.
    pub fn new(format: Format, key_column: Option<String>, avro: Option<AvroTarget>) -> Self {
        let avro = match (&format, avro) {
            (Format::Avro(settings), Some(target)) => {
                Some(avro::AvroValues::new(settings.clone(), target))
            }
            _ => None,
        };
        RecordSerializer {
            format,
            key_column,
            avro,
            connect_schema: std::sync::Mutex::new(None),
            // Explicit nulls keep every record's shape the same, which is
            // what JSON-schema consumers downstream expect.
            options: plain_options()
                .clone()
                .with_encoder_factory(Arc::new(RepeatedTimestamps)),
            bytes_per_row: AtomicUsize::new(128),
        }
    }

    /// Serialises every row of `batch`.
    pub fn serialize(&self, batch: &RecordBatch) -> Result<Serialized, SerializeError> {
        let rows = batch.num_rows();
        let per_row = self.bytes_per_row.load(Ordering::Relaxed);
        let mut out = Serialized {
            values: Vec::with_capacity(rows * (per_row + per_row / 8)),
            value_ranges: Vec::with_capacity(rows),
            ..Serialized::default()
        };
        match &self.format {
            Format::Json => self.json_values(batch, &mut out)?,
            Format::String { value_column } => string_values(batch, value_column, &mut out)?,
            Format::Avro(_) => match &self.avro {
                Some(avro) => avro.encode(batch, &mut out)?,
                None => return Err(SerializeError::NoRegistry),
            },
            Format::ConnectJson => self.connect_values(batch, &mut out)?,
        }
        if let Some(per_row) = out.values.len().checked_div(rows) {
            self.bytes_per_row.store(per_row, Ordering::Relaxed);
        }
        self.keys(batch, &mut out)?;
        Ok(out)
    }

    fn json_values(&self, batch: &RecordBatch, out: &mut Serialized) -> Result<(), ArrowError> {
        let mut encoder = json::RowEncoder::try_new(batch, &self.options)?;
        for row in 0..batch.num_rows() {
            let start = out.values.len();
            encoder.encode(row, &mut out.values);
            out.value_ranges.push(start..out.values.len());
        }
        Ok(())
    }

    /// Connect's envelope around each row: the schema part is made once
    /// per Arrow schema, the payload by the JSON encoder on the row in
    /// Connect's shapes.
    fn connect_values(&self, batch: &RecordBatch, out: &mut Serialized) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut cached = self
            .connect_schema
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached
            .as_ref()
            .is_none_or(|(s, _)| s.fields() != batch.schema_ref().fields())
        {
            let schema = connect::connect_schema(batch.schema_ref())?;
            let head = format!("{{\"schema\":{schema},\"payload\":");
            *cached = Some((batch.schema(), head));
        }
        let head = cached.as_ref().map_or("", |(_, h)| h.as_str());
        let converted = connect::to_connect(batch)?;
        let mut encoder = json::RowEncoder::try_new(&converted, &self.options)?;
        for row in 0..converted.num_rows() {
            let start = out.values.len();
            out.values.extend_from_slice(head.as_bytes());
            encoder.encode(row, &mut out.values);
            out.values.push(b'}');
            out.value_ranges.push(start..out.values.len());
        }
        Ok(())
    }

    fn keys(&self, batch: &RecordBatch, out: &mut Serialized) -> Result<(), SerializeError> {
        let Some(column) = &self.key_column else {
            return Ok(());
        };
        // A batch without rows has no keys to make; sources send one to
        // move a checkpoint past rows that produced no record (the end of an
        // empty file), whatever its columns.
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let Some(array) = batch.column_by_name(column) else {
            return Err(SerializeError::MissingKeyColumn {
                column: column.clone(),
                available: column_names(batch),
            });
        };
        out.key_ranges.reserve(batch.num_rows());
        // Text keys (the common case: ids) are copied as they are.
        match array.data_type() {
            DataType::Utf8 => {
                copy_string_keys(array.as_string::<i32>(), out);
                return Ok(());
            }
            DataType::LargeUtf8 => {
                copy_string_keys(array.as_string::<i64>(), out);
                return Ok(());
            }
            _ => {}
        }
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
        out.keys.reserve(batch.num_rows() * 16);
        for row in 0..batch.num_rows() {
            if array.is_null(row) {
                out.key_ranges.push(None);
                continue;
            }
            let start = out.keys.len();
            // Writing into a Vec through fmt cannot fail.
            let _ =
                std::io::Write::write_fmt(&mut out.keys, format_args!("{}", formatter.value(row)));
            out.key_ranges.push(Some(start..out.keys.len()));
        }
        Ok(())
    }
}

/// The batch's column names, for errors.
fn column_names(batch: &RecordBatch) -> String {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `format = "string"`: each value is the column's bytes as they are (text
/// and binary columns), or its display form (other types). A null becomes
/// an empty value: a Kafka null value would read as a tombstone on
/// compacted topics.
fn string_values(
    batch: &RecordBatch,
    column: &str,
    out: &mut Serialized,
) -> Result<(), SerializeError> {
    let Some(array) = batch.column_by_name(column) else {
        return Err(SerializeError::MissingValueColumn {
            column: column.to_owned(),
            available: column_names(batch),
        });
    };
    let push = |bytes: Option<&[u8]>, out: &mut Serialized| {
        let start = out.values.len();
        if let Some(b) = bytes {
            out.values.extend_from_slice(b);
        }
        out.value_ranges.push(start..out.values.len());
    };
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            for row in 0..a.len() {
                push(a.is_valid(row).then(|| a.value(row).as_bytes()), out);
            }
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            for row in 0..a.len() {
                push(a.is_valid(row).then(|| a.value(row).as_bytes()), out);
            }
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            for row in 0..a.len() {
                push(a.is_valid(row).then(|| a.value(row)), out);
            }
        }
        DataType::LargeBinary => {
            let a = array.as_binary::<i64>();
            for row in 0..a.len() {
                push(a.is_valid(row).then(|| a.value(row)), out);
            }
        }
        _ => {
            let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            for row in 0..array.len() {
                let start = out.values.len();
                if array.is_valid(row) {
                    // Writing into a Vec through fmt cannot fail.
                    let _ = std::io::Write::write_fmt(
                        &mut out.values,
                        format_args!("{}", formatter.value(row)),
                    );
                }
                out.value_ranges.push(start..out.values.len());
            }
        }
    }
    Ok(())
}

/// Encoder options without our factory: explicit nulls keep every record's
/// shape the same, which is what JSON-schema consumers downstream expect.
fn plain_options() -> &'static EncoderOptions {
    static PLAIN: std::sync::OnceLock<EncoderOptions> = std::sync::OnceLock::new();
    PLAIN.get_or_init(|| EncoderOptions::default().with_explicit_nulls(true))
}

/// Consecutive rows very often carry the same timestamp (a batch stamped
/// once, log lines of the same second), and formatting one through chrono
/// costs more than the rest of a small row. This wraps arrow-json's own
/// timestamp encoder and reuses the previous row's bytes when the value
/// repeats, so the output is byte for byte the same. [`json::RowEncoder`]
/// formats naive and UTC timestamps itself; this still serves the other
/// time zones and timestamps nested in lists or structs.
#[derive(Debug)]
struct RepeatedTimestamps;

impl EncoderFactory for RepeatedTimestamps {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        use arrow_array::types::{
            TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
            TimestampSecondType,
        };
        let values: &'a [i64] = match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => {
                array.as_primitive::<TimestampSecondType>().values()
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                array.as_primitive::<TimestampMillisecondType>().values()
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                array.as_primitive::<TimestampMicrosecondType>().values()
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                array.as_primitive::<TimestampNanosecondType>().values()
            }
            _ => return Ok(None),
        };
        let inner = make_encoder(field, array, plain_options())?;
        Ok(Some(NullableEncoder::new(
            Box::new(CachedTimestamp {
                inner,
                values,
                last: None,
                bytes: Vec::new(),
            }),
            array.nulls().cloned(),
        )))
    }
}

struct CachedTimestamp<'a> {
    inner: NullableEncoder<'a>,
    values: &'a [i64],
    last: Option<i64>,
    bytes: Vec<u8>,
}

impl Encoder for CachedTimestamp<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = self.values[idx];
        if self.last != Some(value) {
            self.bytes.clear();
            self.inner.encode(idx, &mut self.bytes);
            self.last = Some(value);
        }
        out.extend_from_slice(&self.bytes);
    }
}

fn copy_string_keys<O: OffsetSizeTrait>(strings: &GenericStringArray<O>, out: &mut Serialized) {
    out.keys.reserve(strings.values().len());
    for row in 0..strings.len() {
        out.key_ranges.push(strings.is_valid(row).then(|| {
            let start = out.keys.len();
            out.keys.extend_from_slice(strings.value(row).as_bytes());
            start..out.keys.len()
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("customer_id", DataType::Utf8, true),
            Field::new("total", DataType::Float64, false),
            Field::new("qty", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt64Array::from(vec![0, 1, 2])),
                Arc::new(StringArray::from(vec![Some("C-1"), None, Some("C\"3")])),
                Arc::new(Float64Array::from(vec![1.5, 2.0, 3.25])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn each_row_becomes_one_json_object_with_typed_values() {
        let s = RecordSerializer::new(Format::Json, None, None)
            .serialize(&batch())
            .unwrap();
        assert_eq!(s.len(), 3);
        let rows: Vec<serde_json::Value> = (0..3)
            .map(|i| serde_json::from_slice(s.value(i)).unwrap())
            .collect();
        assert_eq!(
            rows[0],
            serde_json::json!({"seq": 0, "customer_id": "C-1", "total": 1.5, "qty": 1})
        );
        assert_eq!(rows[1]["customer_id"], serde_json::Value::Null);
        assert_eq!(rows[1]["qty"], serde_json::Value::Null);
        assert_eq!(rows[2]["customer_id"], "C\"3");
        assert!(rows[2]["total"].is_f64() && rows[0]["seq"].is_u64());
    }

    #[test]
    fn key_comes_from_the_named_column_and_null_keys_are_absent() {
        let s = RecordSerializer::new(Format::Json, Some("customer_id".into()), None)
            .serialize(&batch())
            .unwrap();
        assert_eq!(s.key(0), Some(&b"C-1"[..]));
        assert_eq!(s.key(1), None);
        assert_eq!(s.key(2), Some(&b"C\"3"[..]));
        let s = RecordSerializer::new(Format::Json, Some("seq".into()), None)
            .serialize(&batch())
            .unwrap();
        assert_eq!(s.key(2), Some(&b"2"[..]));
    }

    #[test]
    fn timestamps_are_encoded_exactly_as_arrow_json_does() {
        use arrow_array::TimestampMillisecondArray;
        let ts = TimestampMillisecondArray::from(vec![
            Some(1_700_000_000_123),
            Some(1_700_000_000_123),
            None,
            Some(1_700_000_000_999),
            Some(1_700_000_000_123),
        ])
        .with_timezone("UTC");
        let batch = RecordBatch::try_from_iter([("ts", Arc::new(ts) as _)]).unwrap();
        let ours = RecordSerializer::new(Format::Json, None, None)
            .serialize(&batch)
            .unwrap();
        let mut plain = arrow_json::LineDelimitedWriter::new(Vec::new());
        plain.write(&batch).unwrap();
        let plain = String::from_utf8(plain.into_inner()).unwrap();
        let plain: Vec<&str> = plain.lines().collect();
        for (i, line) in plain.iter().enumerate() {
            let row = std::str::from_utf8(ours.value(i)).unwrap();
            if i == 2 {
                assert_eq!(row, r#"{"ts":null}"#);
            } else {
                assert_eq!(row, *line, "row {i}");
            }
        }
    }

    #[test]
    fn a_batch_without_rows_needs_no_key_column() {
        let empty = RecordBatch::new_empty(Arc::new(arrow_schema::Schema::empty()));
        let out = RecordSerializer::new(Format::Json, Some("customer_id".into()), None)
            .serialize(&empty)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn missing_key_column_names_the_available_columns() {
        let err = RecordSerializer::new(Format::Json, Some("nope".into()), None)
            .serialize(&batch())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`nope`") && err.contains("customer_id"),
            "{err}"
        );
    }

    fn string_format(column: &str) -> RecordSerializer {
        RecordSerializer::new(
            Format::String {
                value_column: column.to_owned(),
            },
            Some("seq".into()),
            None,
        )
    }

    #[test]
    fn string_format_sends_the_column_bytes_unchanged() {
        let s = string_format("customer_id").serialize(&batch()).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.value(0), b"C-1");
        assert_eq!(s.value(1), b"", "a null is an empty value");
        assert_eq!(s.value(2), b"C\"3", "no JSON quoting or escaping");
        assert_eq!(s.key(2), Some(&b"2"[..]));
    }

    #[test]
    fn string_format_sends_binary_as_is_and_displays_other_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("raw", DataType::Binary, false),
            Field::new("seq", DataType::UInt64, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::BinaryArray::from_vec(vec![b"\xff\x00x"])),
                Arc::new(UInt64Array::from(vec![42])),
            ],
        )
        .unwrap();
        assert_eq!(
            string_format("raw").serialize(&b).unwrap().value(0),
            b"\xff\x00x"
        );
        assert_eq!(string_format("seq").serialize(&b).unwrap().value(0), b"42");
    }

    /// The orders-like batch of the CSV example: ids, short strings, money
    /// as decimals and a timestamp a second apart per row.
    fn orders(rows: usize) -> RecordBatch {
        use arrow_array::{Decimal128Array, TimestampSecondArray};
        const CITIES: [&str; 5] = ["Lyon", "Zürich", "São Paulo", "New York", "Kraków"];
        let n = rows as i64;
        let text = |f: &dyn Fn(i64) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values((0..n).map(f)))
        };
        let qty: Vec<i64> = (0..n).map(|i| i % 7 + 1).collect();
        let unit: Vec<i128> = (0..n).map(|i| i128::from(199 + i * 37 % 99_800)).collect();
        let total: Vec<i128> = unit
            .iter()
            .zip(&qty)
            .map(|(u, q)| u * i128::from(*q))
            .collect();
        RecordBatch::try_from_iter([
            (
                "seq",
                Arc::new(UInt64Array::from_iter_values(0..rows as u64)) as ArrayRef,
            ),
            (
                "order_id",
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| 10_000_000 + i * 3),
                )),
            ),
            (
                "customer_id",
                text(&|i| format!("C-{:06}", i * 7919 % 100_000)),
            ),
            ("sku", text(&|i| format!("SKU-{:04}", i * 31 % 5_000))),
            ("qty", Arc::new(Int64Array::from(qty))),
            (
                "unit_price",
                Arc::new(
                    Decimal128Array::from(unit)
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                "total",
                Arc::new(
                    Decimal128Array::from(total)
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
            ),
            (
                "currency",
                text(&|i| ["EUR", "USD", "GBP"][i as usize % 3].to_owned()),
            ),
            (
                "status",
                text(&|i| ["paid", "shipped", "refunded", "pending"][i as usize % 4].to_owned()),
            ),
            (
                "channel",
                text(&|i| ["web", "store", "app"][i as usize % 3].to_owned()),
            ),
            (
                "city",
                text(&|i| CITIES[i as usize % CITIES.len()].to_owned()),
            ),
            (
                "created_at",
                Arc::new(TimestampSecondArray::from_iter_values(
                    (0..n).map(|i| 1_700_000_000 + i),
                )),
            ),
        ])
        .unwrap()
    }

    /// The encoding this module did before `json::RowEncoder`: arrow-json's
    /// struct encoder over the whole batch.
    fn arrow_json_values(serializer: &RecordSerializer, batch: &RecordBatch, out: &mut Serialized) {
        let array = arrow_array::StructArray::from(batch.clone());
        let field = Arc::new(Field::new_struct(
            "",
            batch.schema().fields().clone(),
            false,
        ));
        let mut encoder = make_encoder(&field, &array, &serializer.options).unwrap();
        for row in 0..batch.num_rows() {
            let start = out.values.len();
            encoder.encode(row, &mut out.values);
            out.value_ranges.push(start..out.values.len());
        }
    }

    /// Prints ns per row of both encoders on the same batch; run in release
    /// with `--ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark"]
    fn bench_json_values_against_arrow_json() {
        let rows = 200_000;
        let batch = orders(rows);
        let serializer = RecordSerializer::new(Format::Json, None, None);
        // One buffer reused, so the timings leave out the kernel's first
        // touch of fresh pages.
        let time = |encode: &dyn Fn(&mut Serialized)| {
            let mut best = f64::INFINITY;
            let mut out = Serialized::default();
            for _ in 0..7 {
                out.values.clear();
                out.value_ranges.clear();
                let started = std::time::Instant::now();
                encode(&mut out);
                best = best.min(started.elapsed().as_nanos() as f64 / rows as f64);
            }
            (best, out)
        };
        let (before, old) = time(&|out| arrow_json_values(&serializer, &batch, out));
        let (after, new) = time(&|out| serializer.json_values(&batch, out).unwrap());
        assert_eq!(old.values, new.values);
        assert_eq!(old.value_ranges, new.value_ranges);
        eprintln!(
            "JSON values of {rows} order rows ({} bytes/row): arrow-json {before:.0} ns/row, \
             row encoder {after:.0} ns/row, {:.2}x",
            new.values.len() / rows,
            before / after
        );
    }

    #[test]
    fn string_format_names_a_missing_value_column() {
        let err = string_format("line").serialize(&batch()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "value column `line` is not in the source's rows (columns: seq, customer_id, total, qty)"
        );
    }
}
