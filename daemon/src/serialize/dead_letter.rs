//! Dead-letter rows as Kafka records: the row's raw bytes as the value, no
//! key, and headers that say what was wrong and where the row came from.
//!
//! A plugin returns rows it could not read as a batch marked with
//! [`dead_letter::DEAD_LETTER_METADATA_KEY`] (see the SDK's `dead_letter`
//! module). They are serialised here, beside the source's own records, and
//! sent by the same sender through the same ordered acknowledgement, so a
//! checkpoint passes a bad row only once its dead-letter record is
//! acknowledged.

use arrow_array::{Array, BinaryArray, RecordBatch, StringArray, UInt64Array};
use rdkafka::message::{Header, OwnedHeaders};
use tributary_plugin_sdk::dead_letter::{self, column, header};

use super::SerializeError;

/// The rows of one dead-letter batch, ready to send.
#[derive(Debug)]
pub struct DeadLetterRecords {
    raw: BinaryArray,
    class: StringArray,
    message: StringArray,
    file: StringArray,
    line: UInt64Array,
    /// The `[[source]]` that read the rows, for the source-name header.
    source: String,
}

impl DeadLetterRecords {
    /// Checks the columns the SDK defines and takes (cheap, reference
    /// counted) hold of them.
    pub fn from_batch(batch: &RecordBatch, source: &str) -> Result<Self, SerializeError> {
        fn column<T: Clone + 'static>(
            batch: &RecordBatch,
            name: &str,
        ) -> Result<T, SerializeError> {
            batch
                .column_by_name(name)
                .filter(|c| c.null_count() == 0)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .cloned()
                .ok_or_else(|| SerializeError::MalformedDeadLetters {
                    column: name.to_owned(),
                })
        }
        Ok(DeadLetterRecords {
            raw: column(batch, column::RAW)?,
            class: column(batch, column::ERROR_CLASS)?,
            message: column(batch, column::ERROR_MESSAGE)?,
            file: column(batch, column::FILE)?,
            line: column(batch, column::LINE)?,
            source: source.to_owned(),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Row `i` as read.
    pub fn raw(&self, i: usize) -> &[u8] {
        self.raw.value(i)
    }

    /// Row `i`'s error class.
    pub fn class(&self, i: usize) -> &str {
        self.class.value(i)
    }

    /// Row `i`'s error message.
    pub fn message(&self, i: usize) -> &str {
        self.message.value(i)
    }

    /// The file row `i` came from.
    pub fn file(&self, i: usize) -> &str {
        self.file.value(i)
    }

    /// The line row `i` starts on (0 when unknown).
    pub fn line(&self, i: usize) -> u64 {
        self.line.value(i)
    }

    /// Rows per error class, in order of first appearance: what the
    /// dead-letter counter adds once the batch is acknowledged.
    pub fn classes(&self) -> Vec<(String, u64)> {
        let mut classes: Vec<(String, u64)> = Vec::new();
        for i in 0..self.len() {
            let class = self.class(i);
            match classes.iter_mut().find(|(c, _)| c == class) {
                Some((_, n)) => *n += 1,
                None => classes.push((class.to_owned(), 1)),
            }
        }
        classes
    }

    /// The headers of row `i`, named in the SDK's [`header`] module.
    pub fn headers(&self, i: usize) -> OwnedHeaders {
        let line = self.line(i).to_string();
        let entry = |key, value| Header {
            key,
            value: Some(value),
        };
        OwnedHeaders::new_with_capacity(5)
            .insert(entry(header::ERROR_CLASS, self.class(i)))
            .insert(entry(header::ERROR_MESSAGE, self.message(i)))
            .insert(entry(header::FILE, self.file(i)))
            .insert(entry(header::LINE, &line))
            .insert(entry(header::SOURCE, &self.source))
    }
}

/// Whether `batch` holds dead letters rather than records.
pub fn is_dead_letter(batch: &RecordBatch) -> bool {
    dead_letter::is_dead_letter(batch.schema_ref())
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;
    use tributary_plugin_sdk::dead_letter::{DeadLetter, dead_letter_batch};

    use super::*;

    fn letter(class: &str, line: u64) -> DeadLetter {
        DeadLetter {
            raw: b"1,\xff".to_vec(),
            error_class: class.into(),
            message: "column `b`: invalid UTF-8".into(),
            file: "/in/a.csv".into(),
            line,
        }
    }

    #[test]
    fn rows_keep_their_raw_bytes_and_carry_the_error_in_headers() {
        let batch =
            dead_letter_batch(&[letter("invalid_utf8", 7), letter("ragged_row", 9)]).unwrap();
        assert!(is_dead_letter(&batch));
        let records = DeadLetterRecords::from_batch(&batch, "orders").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records.raw(0), b"1,\xff");
        let headers = records.headers(1);
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                ("tributary.error.class", "ragged_row"),
                ("tributary.error.message", "column `b`: invalid UTF-8"),
                ("tributary.source.file", "/in/a.csv"),
                ("tributary.source.line", "9"),
                ("tributary.source.name", "orders"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            records.classes(),
            [("invalid_utf8".to_owned(), 1), ("ragged_row".to_owned(), 1)]
        );
    }

    #[test]
    fn a_batch_without_the_sdk_columns_is_refused_naming_the_column() {
        let batch = dead_letter_batch(&[letter("x", 1)]).unwrap();
        let without_line = batch.project(&[0, 1, 2, 3]).unwrap();
        let err = DeadLetterRecords::from_batch(&without_line, "s").unwrap_err();
        assert!(err.to_string().contains("column `line`"), "{err}");
    }
}
