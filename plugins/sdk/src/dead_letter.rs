//! Rows a source read but could not turn into records: ragged CSV rows,
//! values that do not parse as their column's type, invalid UTF-8, lines
//! that are not JSON.
//!
//! A plugin whose `on_error` policy is `dead_letter` returns them as an
//! ordinary [`Batch`](crate::Batch) built by [`dead_letter_batch`]: same
//! partition, a checkpoint after the bad rows. The schema carries
//! [`DEAD_LETTER_METADATA_KEY`], so the daemon sends each row's raw bytes to
//! the source's dead-letter topic instead of serialising it, with headers
//! naming the error. The batch goes through the same ordered acknowledgement
//! as any other, so the checkpoint passes a bad row only once its
//! dead-letter write is acknowledged. No ABI change was needed: a schema's
//! metadata already crosses the C Data Interface.

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema};

/// Schema metadata key marking a dead-letter batch; its value is `"1"`.
pub const DEAD_LETTER_METADATA_KEY: &str = "tributary.dead_letter";

/// Column names of a dead-letter batch, in order.
pub mod column {
    /// The row as read, bytes exactly as in the input (binary).
    pub const RAW: &str = "raw";
    /// A short, bounded class such as `ragged_row` (string).
    pub const ERROR_CLASS: &str = "error_class";
    /// What was wrong and what was expected (string).
    pub const ERROR_MESSAGE: &str = "error_message";
    /// The input the row came from, e.g. a file path (string).
    pub const FILE: &str = "file";
    /// The 1-based line the row starts on; 0 when unknown (uint64).
    pub const LINE: &str = "line";
}

/// Kafka header names the daemon puts on every dead-letter record.
pub mod header {
    /// The error class, from [`super::DeadLetter::error_class`].
    pub const ERROR_CLASS: &str = "tributary.error.class";
    /// The error message.
    pub const ERROR_MESSAGE: &str = "tributary.error.message";
    /// The input file (or other origin) of the row.
    pub const FILE: &str = "tributary.source.file";
    /// The line the row starts on, in decimal.
    pub const LINE: &str = "tributary.source.line";
    /// The name of the `[[source]]` that read the row.
    pub const SOURCE: &str = "tributary.source.name";
}

/// One row that could not be turned into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The row as read, without its line terminator.
    pub raw: Vec<u8>,
    /// A short class from a small fixed set (`ragged_row`, `parse_error`,
    /// `invalid_utf8`, `invalid_json`, …): it becomes a metric label, so it
    /// must never contain data.
    pub error_class: String,
    /// What was wrong and what was expected, naming the column.
    pub message: String,
    /// The file (or other origin) the row came from.
    pub file: String,
    /// The 1-based line the row starts on; 0 when unknown.
    pub line: u64,
}

/// The schema of every dead-letter batch.
pub fn dead_letter_schema() -> Arc<Schema> {
    let fields = vec![
        Field::new(column::RAW, DataType::Binary, false),
        Field::new(column::ERROR_CLASS, DataType::Utf8, false),
        Field::new(column::ERROR_MESSAGE, DataType::Utf8, false),
        Field::new(column::FILE, DataType::Utf8, false),
        Field::new(column::LINE, DataType::UInt64, false),
    ];
    let metadata =
        std::collections::HashMap::from([(DEAD_LETTER_METADATA_KEY.to_owned(), "1".to_owned())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Builds the batch that carries `rows` to the dead-letter topic.
pub fn dead_letter_batch(rows: &[DeadLetter]) -> Result<RecordBatch, ArrowError> {
    let raw = BinaryArray::from_iter_values(rows.iter().map(|r| r.raw.as_slice()));
    let class = StringArray::from_iter_values(rows.iter().map(|r| r.error_class.as_str()));
    let message = StringArray::from_iter_values(rows.iter().map(|r| r.message.as_str()));
    let file = StringArray::from_iter_values(rows.iter().map(|r| r.file.as_str()));
    let line = UInt64Array::from_iter_values(rows.iter().map(|r| r.line));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(raw),
        Arc::new(class),
        Arc::new(message),
        Arc::new(file),
        Arc::new(line),
    ];
    RecordBatch::try_new(dead_letter_schema(), columns)
}

/// Whether a batch with this schema carries dead letters.
pub fn is_dead_letter(schema: &Schema) -> bool {
    schema
        .metadata()
        .get(DEAD_LETTER_METADATA_KEY)
        .is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_batches_are_marked_and_keep_raw_bytes() {
        let rows = vec![DeadLetter {
            raw: b"1,\xff,3".to_vec(),
            error_class: "invalid_utf8".into(),
            message: "column `name`: invalid UTF-8".into(),
            file: "/spool/a.csv".into(),
            line: 7,
        }];
        let batch = dead_letter_batch(&rows).unwrap();
        assert!(is_dead_letter(batch.schema().as_ref()));
        assert_eq!(batch.num_rows(), 1);
        let raw = batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap();
        assert_eq!(raw.value(0), b"1,\xff,3");
        let plain = Schema::new(vec![Field::new("a", DataType::Utf8, true)]);
        assert!(!is_dead_letter(&plain));
    }
}
