//! Turning Arrow rows into Kafka record values and keys.
//!
//! A batch is serialised into one contiguous buffer with a byte range per
//! row, so sending a record borrows a slice instead of allocating per row
//! (librdkafka copies the payload into its own queue anyway).

mod avro;
mod connect;
mod dead_letter;
mod json;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::{Array, GenericStringArray, OffsetSizeTrait, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use arrow_schema::DataType;
use arrow_schema::{ArrowError, FieldRef, TimeUnit};

use crate::config::{Format, Shape, TopicPart, TopicTemplate};

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
    /// A `headers` or `timestamp` column is not in the batch.
    #[error("{what} column `{column}` is not in the source's rows (columns: {available})")]
    MissingColumn {
        /// `header` or `timestamp`.
        what: &'static str,
        /// The configured column.
        column: String,
        /// The columns the batch has.
        available: String,
    },
    /// A cell a topic template reads cannot be part of a topic name.
    #[error(
        "row {row} of the batch: column `{column}` of the topic template is {}; a topic name \
         takes 1 to 249 characters of A-Z, a-z, 0-9, `.`, `_`, `-`",
        match cell { Some(c) => format!("{c:?}"), None => "null".to_owned() }
    )]
    TopicTemplate {
        /// The row within the batch.
        row: usize,
        /// The column.
        column: String,
        /// Its text (shortened), or `None` for a null.
        cell: Option<String>,
    },
    /// The `timestamp` column holds no times.
    #[error(
        "timestamp column `{column}` is of type {found}; expected a timestamp or a date column"
    )]
    TimestampColumn {
        /// The column.
        column: String,
        /// Its type.
        found: String,
    },
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

impl SerializeError {
    /// Whether serialising the same rows again would fail the same way:
    /// a column the settings name is missing or of the wrong type, a cell
    /// a topic template cannot use, a schema the registry refuses. A
    /// registry that is down may come back.
    pub fn is_permanent(&self) -> bool {
        match self {
            SerializeError::MissingColumn { .. }
            | SerializeError::TimestampColumn { .. }
            | SerializeError::TopicTemplate { .. }
            | SerializeError::NoRegistry => true,
            SerializeError::Registry { source, .. } => source.is_permanent(),
            _ => false,
        }
    }
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
    /// The names of the headers each record carries (`headers`).
    pub header_names: Vec<String>,
    /// All header values, back to back.
    pub header_values: Vec<u8>,
    /// Header `j` of row `i` within `header_values` at `j * len + i`;
    /// `None` for a null cell (that header is left out).
    pub header_ranges: Vec<Option<Range<usize>>>,
    /// Each row's Kafka timestamp in milliseconds (`timestamp`); empty
    /// when Kafka stamps records itself.
    pub timestamps: Vec<Option<i64>>,
    /// With a topic template, the topics of this batch…
    pub topic_names: Vec<String>,
    /// …and each row's, as an index into `topic_names`; empty without a
    /// template (every record goes to the source's topic).
    pub topics: Vec<u32>,
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

    /// Header `j` of row `i`, if its cell is not null.
    pub fn header(&self, i: usize, j: usize) -> Option<&[u8]> {
        self.header_ranges
            .get(j * self.len() + i)
            .and_then(|r| r.as_ref())
            .map(|r| &self.header_values[r.clone()])
    }

    /// Row `i`'s Kafka timestamp, when taken from a column.
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        self.timestamps.get(i).copied().flatten()
    }

    /// The records at `rows` (in that order), with their keys, headers,
    /// timestamps and topics.
    pub fn select(&self, rows: &[usize]) -> Serialized {
        let mut out = Serialized::default();
        out.header_names.clone_from(&self.header_names);
        for j in 0..self.header_names.len() {
            for &i in rows {
                out.header_ranges.push(self.header(i, j).map(|v| {
                    let range = out.header_values.len()..out.header_values.len() + v.len();
                    out.header_values.extend_from_slice(v);
                    range
                }));
            }
        }
        if !self.timestamps.is_empty() {
            out.timestamps = rows.iter().map(|&i| self.timestamp(i)).collect();
        }
        if !self.topics.is_empty() {
            out.topic_names.clone_from(&self.topic_names);
            out.topics = rows.iter().map(|&i| self.topics[i]).collect();
        }
        for &i in rows {
            let value = self.value(i);
            out.value_ranges
                .push(out.values.len()..out.values.len() + value.len());
            out.values.extend_from_slice(value);
            out.key_ranges.push(self.key(i).map(|key| {
                let range = out.keys.len()..out.keys.len() + key.len();
                out.keys.extend_from_slice(key);
                range
            }));
        }
        out
    }

    /// Bytes of row `i`'s headers (names and values).
    pub fn header_bytes(&self, i: usize) -> usize {
        (0..self.header_names.len())
            .map(|j| {
                self.header(i, j)
                    .map_or(0, |v| v.len() + self.header_names[j].len())
            })
            .sum()
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
    /// Headers, timestamps and renamed columns.
    shape: Shape,
    /// The topic template, when each record's topic comes from its row.
    topic_template: Option<TopicTemplate>,
    /// With `format = "connect_json"`, the envelope's schema part of the
    /// last Arrow schema seen.
    connect_schema: std::sync::Mutex<Option<(arrow_schema::SchemaRef, String)>>,
}

impl RecordSerializer {
    /// A serializer for one source; `avro` says where `format = "avro"`
    /// registers its schemas.
    pub fn new(format: Format, key_column: Option<String>, avro: Option<AvroTarget>) -> Self {
        Self::with_shape(format, key_column, avro, Shape::default())
    }

    /// [`RecordSerializer::new`] with headers, a timestamp column or
    /// renamed columns.
    pub fn with_shape(
        format: Format,
        key_column: Option<String>,
        avro: Option<AvroTarget>,
        shape: Shape,
    ) -> Self {
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
            shape,
            topic_template: None,
            connect_schema: std::sync::Mutex::new(None),
            // Explicit nulls keep every record's shape the same, which is
            // what JSON-schema consumers downstream expect.
            options: plain_options()
                .clone()
                .with_encoder_factory(Arc::new(RepeatedTimestamps)),
            bytes_per_row: AtomicUsize::new(128),
        }
    }

    /// Records go to the topic `template` makes of their row.
    #[must_use]
    pub fn with_topics(mut self, template: Option<TopicTemplate>) -> Self {
        self.topic_template = template;
        self
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
        self.headers_and_timestamps(batch, &mut out)?;
        self.topics(batch, &mut out)?;
        let whole = batch;
        let shaped = self.value_batch(batch)?;
        let batch = &shaped;
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
        self.keys(whole, &mut out)?;
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
        if let (Format::Avro(settings), Some(avro)) = (&self.format, &self.avro)
            && settings.key_avro
        {
            let nullable = batch
                .schema_ref()
                .field_with_name(column)
                .is_ok_and(|f| f.is_nullable());
            return avro.keys(array, nullable, out);
        }
        texts(array, &mut out.keys, &mut out.key_ranges)
    }

    /// The header columns' text, column by column, and the Kafka
    /// timestamps, from the whole row (before `rename`).
    fn headers_and_timestamps(
        &self,
        batch: &RecordBatch,
        out: &mut Serialized,
    ) -> Result<(), SerializeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let missing = |column: &str| SerializeError::MissingColumn {
            what: "header",
            column: column.to_owned(),
            available: column_names(batch),
        };
        for column in &self.shape.headers {
            let array = batch
                .column_by_name(column)
                .ok_or_else(|| missing(column))?;
            texts(array, &mut out.header_values, &mut out.header_ranges)?;
        }
        out.header_names.clone_from(&self.shape.headers);
        if let Some(column) = &self.shape.timestamp {
            let array =
                batch
                    .column_by_name(column)
                    .ok_or_else(|| SerializeError::MissingColumn {
                        what: "timestamp",
                        column: column.clone(),
                        available: column_names(batch),
                    })?;
            let millis = match array.data_type() {
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
                    let ms =
                        arrow_cast::cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
                    arrow_cast::cast(&ms, &DataType::Int64)?
                }
                other => {
                    return Err(SerializeError::TimestampColumn {
                        column: column.clone(),
                        found: other.to_string(),
                    });
                }
            };
            let millis = millis.as_primitive::<arrow_array::types::Int64Type>();
            out.timestamps = (0..millis.len())
                .map(|i| millis.is_valid(i).then(|| millis.value(i)))
                .collect();
        }
        Ok(())
    }

    /// Each row's topic from the template: its literal parts and the text
    /// of its columns' cells. A null cell, or one that would make an
    /// invalid topic name, is an error naming the row and the column.
    fn topics(&self, batch: &RecordBatch, out: &mut Serialized) -> Result<(), SerializeError> {
        let Some(template) = &self.topic_template else {
            return Ok(());
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut cells: HashMap<&str, CellTexts> = HashMap::new();
        for column in template.columns() {
            let array =
                batch
                    .column_by_name(column)
                    .ok_or_else(|| SerializeError::MissingColumn {
                        what: "topic",
                        column: column.to_owned(),
                        available: column_names(batch),
                    })?;
            let mut bytes = Vec::new();
            let mut ranges = Vec::new();
            texts(array, &mut bytes, &mut ranges)?;
            cells.insert(column, (bytes, ranges));
        }
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut name = String::new();
        out.topics.reserve(batch.num_rows());
        for row in 0..batch.num_rows() {
            name.clear();
            for part in &template.parts {
                match part {
                    TopicPart::Literal(text) => name.push_str(text),
                    TopicPart::Column(column) => {
                        let (bytes, ranges) = &cells[column.as_str()];
                        let cell = ranges[row]
                            .as_ref()
                            .map(|r| String::from_utf8_lossy(&bytes[r.clone()]));
                        let valid = cell.as_deref().is_some_and(|c| {
                            !c.is_empty()
                                && c.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
                                })
                        });
                        if !valid {
                            return Err(SerializeError::TopicTemplate {
                                row,
                                column: column.clone(),
                                cell: cell.map(|c| c.chars().take(80).collect()),
                            });
                        }
                        name.push_str(cell.as_deref().unwrap_or_default());
                    }
                }
            }
            let next = u32::try_from(index.len()).unwrap_or(u32::MAX);
            let i = *index.entry(name.clone()).or_insert_with(|| {
                out.topic_names.push(name.clone());
                next
            });
            out.topics.push(i);
        }
        if out
            .topic_names
            .iter()
            .any(|t| t.len() > 249 || t == "." || t == "..")
        {
            return Err(SerializeError::TopicTemplate {
                row: 0,
                column: String::new(),
                cell: Some("a topic name longer than 249 characters, or `.`/`..`".into()),
            });
        }
        Ok(())
    }

    /// The batch the value is made of: the columns `include` and
    /// `exclude` choose, renamed by `rename`.
    fn value_batch(&self, batch: &RecordBatch) -> Result<RecordBatch, SerializeError> {
        let batch = &self.value_columns(batch)?;
        if self.shape.rename.is_empty() {
            return Ok(batch.clone());
        }
        let fields: Vec<FieldRef> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| match self.shape.rename.get(f.name()) {
                Some(new) => Arc::new(f.as_ref().clone().with_name(new)),
                None => f.clone(),
            })
            .collect();
        Ok(RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new_with_metadata(
                fields,
                batch.schema().metadata().clone(),
            )),
            batch.columns().to_vec(),
        )?)
    }

    /// `include` (in its order) or every column, less `exclude`. A column
    /// `include` names that the rows lack is an error; `exclude` may name
    /// columns some files do not have.
    fn value_columns(&self, batch: &RecordBatch) -> Result<RecordBatch, SerializeError> {
        if self.shape.include.is_none() && self.shape.exclude.is_empty() {
            return Ok(batch.clone());
        }
        let schema = batch.schema();
        let indices: Vec<usize> = match &self.shape.include {
            Some(include) => include
                .iter()
                .map(|c| {
                    schema
                        .index_of(c)
                        .map_err(|_| SerializeError::MissingColumn {
                            what: "include",
                            column: c.clone(),
                            available: column_names(batch),
                        })
                })
                .collect::<Result<_, _>>()?,
            None => (0..schema.fields().len()).collect(),
        };
        let indices: Vec<usize> = indices
            .into_iter()
            .filter(|&i| !self.shape.exclude.contains(schema.field(i).name()))
            .collect();
        Ok(batch.project(&indices)?)
    }
}

/// A column's cells as text: the bytes, and each row's range (`None` for
/// a null).
type CellTexts = (Vec<u8>, Vec<Option<Range<usize>>>);

/// Each cell of `array` as text into `bytes`, one range per row (`None`
/// for a null): strings as they are, other types as displayed.
fn texts(
    array: &arrow_array::ArrayRef,
    bytes: &mut Vec<u8>,
    ranges: &mut Vec<Option<Range<usize>>>,
) -> Result<(), SerializeError> {
    ranges.reserve(array.len());
    // Text (the common case: ids) is copied as it is.
    match array.data_type() {
        DataType::Utf8 => {
            copy_strings(array.as_string::<i32>(), bytes, ranges);
            return Ok(());
        }
        DataType::LargeUtf8 => {
            copy_strings(array.as_string::<i64>(), bytes, ranges);
            return Ok(());
        }
        _ => {}
    }
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    bytes.reserve(array.len() * 16);
    for row in 0..array.len() {
        if array.is_null(row) {
            ranges.push(None);
            continue;
        }
        let start = bytes.len();
        // Writing into a Vec through fmt cannot fail.
        let _ = std::io::Write::write_fmt(bytes, format_args!("{}", formatter.value(row)));
        ranges.push(Some(start..bytes.len()));
    }
    Ok(())
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

fn copy_strings<O: OffsetSizeTrait>(
    strings: &GenericStringArray<O>,
    bytes: &mut Vec<u8>,
    ranges: &mut Vec<Option<Range<usize>>>,
) {
    bytes.reserve(strings.values().len());
    for row in 0..strings.len() {
        ranges.push(strings.is_valid(row).then(|| {
            let start = bytes.len();
            bytes.extend_from_slice(strings.value(row).as_bytes());
            start..bytes.len()
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

    fn shaped(shape: Shape) -> RecordSerializer {
        RecordSerializer::with_shape(Format::Json, Some("customer_id".into()), None, shape)
    }

    #[test]
    fn header_columns_travel_as_text_and_null_cells_are_left_out() {
        let s = shaped(Shape {
            headers: vec!["customer_id".into(), "qty".into()],
            ..Shape::default()
        })
        .serialize(&batch())
        .unwrap();
        assert_eq!(s.header_names, ["customer_id", "qty"]);
        assert_eq!(s.header(0, 0), Some(&b"C-1"[..]));
        assert_eq!(s.header(0, 1), Some(&b"1"[..]));
        assert_eq!(s.header(1, 0), None);
        assert_eq!(s.header(1, 1), None);
        assert_eq!(s.header(2, 0), Some(&b"C\"3"[..]));
        // The value still carries every column.
        let v: serde_json::Value = serde_json::from_slice(s.value(0)).unwrap();
        assert_eq!(v["customer_id"], "C-1");
    }

    #[test]
    fn include_picks_and_orders_the_value_columns_and_exclude_drops_some() {
        let value = |shape: Shape| -> String {
            let s = shaped(shape).serialize(&batch()).unwrap();
            String::from_utf8(s.value(0).to_vec()).unwrap()
        };
        let v = value(Shape {
            include: Some(vec!["total".into(), "seq".into()]),
            ..Shape::default()
        });
        assert_eq!(v, r#"{"total":1.5,"seq":0}"#);
        let v = value(Shape {
            exclude: vec!["customer_id".into(), "not_there".into()],
            ..Shape::default()
        });
        assert_eq!(v, r#"{"seq":0,"total":1.5,"qty":1}"#);
        let err = shaped(Shape {
            include: Some(vec!["nope".into()]),
            ..Shape::default()
        })
        .serialize(&batch())
        .unwrap_err();
        assert!(err.to_string().contains("include column `nope`"), "{err}");
        // The key still comes from the whole row.
        let s = shaped(Shape {
            exclude: vec!["customer_id".into()],
            ..Shape::default()
        })
        .serialize(&batch())
        .unwrap();
        assert_eq!(s.key(0), Some(&b"C-1"[..]));
    }

    #[test]
    fn renamed_columns_change_the_value_but_not_key_or_headers() {
        let s = shaped(Shape {
            headers: vec!["customer_id".into()],
            rename: [("customer_id".to_owned(), "customer".to_owned())].into(),
            ..Shape::default()
        })
        .serialize(&batch())
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(s.value(0)).unwrap();
        assert_eq!(v["customer"], "C-1");
        assert!(v.get("customer_id").is_none(), "{v}");
        assert_eq!(s.key(0), Some(&b"C-1"[..]));
        assert_eq!(s.header(0, 0), Some(&b"C-1"[..]));
    }

    #[test]
    fn the_timestamp_column_gives_each_record_its_kafka_time_and_others_are_refused() {
        let micros =
            arrow_array::TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456), None])
                .with_timezone("UTC");
        let batch = RecordBatch::try_from_iter([
            ("at", Arc::new(micros) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ])
        .unwrap();
        let shape = |column: &str| Shape {
            timestamp: Some(column.into()),
            ..Shape::default()
        };
        let s = RecordSerializer::with_shape(Format::Json, None, None, shape("at"))
            .serialize(&batch)
            .unwrap();
        assert_eq!(s.timestamps, [Some(1_700_000_000_123), None]);
        let err = RecordSerializer::with_shape(Format::Json, None, None, shape("n"))
            .serialize(&batch)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("timestamp column `n` is of type Int64"),
            "{err}"
        );
        let err = RecordSerializer::with_shape(Format::Json, None, None, shape("nope"))
            .serialize(&batch)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("timestamp column `nope` is not in"),
            "{err}"
        );
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
