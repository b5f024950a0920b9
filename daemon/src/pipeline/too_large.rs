//! Records larger than Kafka accepts, found before they are sent.
//!
//! librdkafka refuses a record above the producer's `message.max.bytes` at
//! once, and the broker refuses one above the topic's `max.message.bytes`
//! in the delivery report. Either way sending the batch again fails on the
//! same record, and inside a transaction the refusal poisons the records
//! before it. So each serialised record is measured first: an oversized one
//! follows the source's `on_error` before anything of its batch is sent —
//! `dead_letter` puts a preview of it, with the reason, in the dead-letter
//! topic and the rest of the batch goes on; `skip` drops it, counted;
//! anything else (`fail`, the default) stops the source before the batch,
//! for good, with nothing of the batch sent.

use arrow_array::RecordBatch;
use tributary_plugin_sdk::dead_letter::{DeadLetter, dead_letter_batch};

pub use crate::producer::RecordLimit;
use crate::serialize::{SerializeError, Serialized};

/// Space librdkafka reserves per record beyond its key, value and headers
/// (the record's length, attributes, timestamp and offset deltas and the
/// length varints), rounded up so the check is never looser than its own.
const RECORD_OVERHEAD: usize = 64;

/// How much of an oversized record's value its dead letter keeps.
pub const PREVIEW_BYTES: usize = 1024;

/// The error class of an oversized record, in dead-letter headers and in
/// the failure counters.
pub const CLASS: &str = "too_large";

/// What the source does with a record over the limit: its `on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// To the dead-letter topic, then on.
    DeadLetter,
    /// Dropped, counted.
    Skip,
    /// The source stops before the batch.
    Fail,
}

impl Policy {
    /// The policy of a source with these plugin options: the `on_error`
    /// convention every built-in plugin follows.
    pub fn of(options: &serde_json::Map<String, serde_json::Value>) -> Policy {
        match options.get("on_error").and_then(serde_json::Value::as_str) {
            Some("dead_letter") => Policy::DeadLetter,
            Some("skip") => Policy::Skip,
            _ => Policy::Fail,
        }
    }
}

/// Bytes record `i` of `records` takes against the limit.
pub fn record_bytes(records: &Serialized, i: usize) -> usize {
    records.value(i).len()
        + records.key(i).map_or(0, <[u8]>::len)
        + records.header_bytes(i)
        + RECORD_OVERHEAD
}

/// The records of `records` over `limit`, in order.
pub fn oversized(records: &Serialized, limit: &RecordLimit) -> Vec<usize> {
    (0..records.len())
        .filter(|&i| record_bytes(records, i) > limit.bytes)
        .collect()
}

/// `records` without the records at `drop` (sorted).
pub fn without(records: &Serialized, drop: &[usize]) -> Serialized {
    let kept: Vec<usize> = (0..records.len())
        .filter(|i| drop.binary_search(i).is_err())
        .collect();
    records.select(&kept)
}

/// Why record `i` is refused, in words.
pub fn reason(records: &Serialized, i: usize, row: usize, limit: &RecordLimit) -> String {
    format!(
        "row {row} of the batch serialises to a record of {} bytes, more than Kafka accepts \
         here: {limit}",
        record_bytes(records, i)
    )
}

/// Dead letters of class `class` for the records at `rows`, each with
/// the first [`PREVIEW_BYTES`] of its value and `why` it was set aside.
pub fn set_aside(
    records: &Serialized,
    rows: &[usize],
    class: &str,
    why: impl Fn(usize) -> String,
) -> Result<RecordBatch, SerializeError> {
    let letters: Vec<DeadLetter> = rows
        .iter()
        .map(|&i| {
            let value = records.value(i);
            let kept = value.len().min(PREVIEW_BYTES);
            DeadLetter {
                raw: value[..kept].to_vec(),
                error_class: class.to_owned(),
                message: format!("{}; the value's first {kept} bytes are kept", why(i)),
                file: String::new(),
                line: 0,
            }
        })
        .collect();
    dead_letter_batch(&letters).map_err(|e| SerializeError::MalformedDeadLetters {
        column: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(values: &[&[u8]]) -> Serialized {
        let mut s = Serialized::default();
        for (i, v) in values.iter().enumerate() {
            s.value_ranges
                .push(s.values.len()..s.values.len() + v.len());
            s.values.extend_from_slice(v);
            let key = format!("k{i}");
            s.key_ranges
                .push(Some(s.keys.len()..s.keys.len() + key.len()));
            s.keys.extend_from_slice(key.as_bytes());
        }
        s
    }

    fn limit(bytes: usize) -> RecordLimit {
        RecordLimit {
            bytes,
            setting: "message.max.bytes = 100 of the producer".into(),
        }
    }

    #[test]
    fn only_records_over_the_limit_are_picked_and_the_rest_keep_their_order_and_keys() {
        let big = vec![b'x'; 200];
        let s = records(&[b"a", &big, b"c", &big]);
        let over = oversized(&s, &limit(100));
        assert_eq!(over, [1, 3]);
        let rest = without(&s, &over);
        assert_eq!(rest.len(), 2);
        assert_eq!((rest.value(0), rest.key(0)), (&b"a"[..], Some(&b"k0"[..])));
        assert_eq!((rest.value(1), rest.key(1)), (&b"c"[..], Some(&b"k2"[..])));
    }

    #[test]
    fn a_record_at_the_limit_passes_and_one_byte_more_does_not() {
        let s = records(&[b"12345"]);
        let exact = record_bytes(&s, 0);
        assert!(oversized(&s, &limit(exact)).is_empty());
        assert_eq!(oversized(&s, &limit(exact - 1)), [0]);
    }

    #[test]
    fn a_dead_letter_keeps_a_preview_and_says_why() {
        let big = vec![b'y'; 5000];
        let s = records(&[&big]);
        let limit = limit(100);
        let batch = set_aside(&s, &[0], CLASS, |i| reason(&s, i, i, &limit)).unwrap();
        let letters = crate::serialize::DeadLetterRecords::from_batch(&batch, "src").unwrap();
        assert_eq!(letters.raw(0).len(), PREVIEW_BYTES);
        assert_eq!(letters.class(0), CLASS);
        let message = letters.message(0);
        assert!(
            message.contains("5066 bytes") && message.contains("message.max.bytes = 100"),
            "{message}"
        );
    }

    #[test]
    fn on_error_picks_the_policy_and_fail_is_the_default() {
        let opts = |v: &str| {
            let mut m = serde_json::Map::new();
            m.insert("on_error".into(), v.into());
            m
        };
        assert_eq!(Policy::of(&opts("dead_letter")), Policy::DeadLetter);
        assert_eq!(Policy::of(&opts("skip")), Policy::Skip);
        assert_eq!(Policy::of(&opts("fail")), Policy::Fail);
        assert_eq!(Policy::of(&serde_json::Map::new()), Policy::Fail);
    }
}
