//! Exactly-once delivery: the records of one or more batches and the
//! checkpoint after them commit in one Kafka transaction, as Kafka
//! Connect's exactly-once source tasks do (KIP-618), on a single daemon.
//!
//! ```text
//!  begin ─► send batch ─► send batch ─► … ─► offset records ─► commit
//!           (records)     (records)          (offsets topic)
//! ```
//!
//! A transaction opens with the first batch after the last commit and
//! commits when it is `transaction_interval_ms` old or holds
//! `transaction_max_records` records, when the source stops, and when it
//! finishes. `commit_transaction` flushes every record first, so a commit
//! means every record and the checkpoint after them are in Kafka, visible
//! to `read_committed` consumers at once; an abort means none is. A
//! daemon killed with an open transaction leaves it to be aborted by the
//! next `init_transactions` of the same `transactional.id` (or the broker's
//! transaction timeout), and the next run resumes from the checkpoint of
//! the last commit: nothing is lost, nothing is repeated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use super::SourceError;
use crate::offsets::{Checkpoints, OffsetStore};
use crate::producer::{NO_BATCH, Producer, TRANSACTION_CALL_TIMEOUT};
use crate::status::SourceStatus;
use crate::telemetry::{self, OffsetsCommitted};

/// How often a commit that timed out is tried again before the
/// transaction is aborted.
const COMMIT_RETRIES: u32 = 3;

/// Whether `code` says another producer took this one's transactional id.
pub(super) fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// The open transaction of one exactly-once source run.
pub struct Transactions {
    producer: Producer,
    store: Arc<dyn OffsetStore>,
    source: String,
    transactional_id: String,
    interval: Duration,
    max_records: u64,
    status: Arc<SourceStatus>,
    /// The committed checkpoints, updated by the batches of the open
    /// transaction.
    state: Checkpoints,
    /// Partitions whose checkpoint the open transaction moves.
    moved: Checkpoints,
    /// When the open transaction began; `None` when none is open.
    opened: Option<Instant>,
    /// Records in the open transaction.
    records: u64,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("transactional_id", &self.transactional_id)
            .field("open", &self.opened.is_some())
            .finish_non_exhaustive()
    }
}

impl Transactions {
    /// Transactions on `producer` (whose transactions are initialised),
    /// starting from the committed `state` of `source`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        producer: Producer,
        store: Arc<dyn OffsetStore>,
        source: &str,
        transactional_id: String,
        interval: Duration,
        max_records: u64,
        status: Arc<SourceStatus>,
        state: Checkpoints,
    ) -> Self {
        Transactions {
            producer,
            store,
            source: source.to_owned(),
            transactional_id,
            interval,
            max_records,
            status,
            state,
            moved: Checkpoints::new(),
            opened: None,
            records: 0,
        }
    }

    /// Opens a transaction unless one is open; called before a batch is
    /// sent.
    pub fn begin(&mut self) -> Result<(), SourceError> {
        if self.opened.is_some() {
            return Ok(());
        }
        self.producer
            .begin_transaction()
            .map_err(|e| self.error("begin", e))?;
        self.opened = Some(Instant::now());
        Ok(())
    }

    /// A batch of `rows` ending at `checkpoint` of `partition` was handed to
    /// the producer inside the open transaction.
    pub fn sent(&mut self, partition: &[u8], checkpoint: &[u8], rows: usize) {
        self.state.insert(partition.to_vec(), checkpoint.to_vec());
        self.moved.insert(partition.to_vec(), checkpoint.to_vec());
        self.records += rows as u64;
    }

    /// Whether the open transaction is due to commit.
    pub fn due(&self) -> bool {
        self.opened.is_some_and(|opened| {
            opened.elapsed() >= self.interval || self.records >= self.max_records
        })
    }

    /// Writes the offset records into the open transaction and commits it.
    /// Returns the checkpoints it moved, for the plugin's `committed`.
    pub fn commit(&mut self) -> Result<Checkpoints, SourceError> {
        if self.opened.is_none() {
            return Ok(Checkpoints::new());
        }
        let Some(offsets) = self.store.in_transaction(&self.source, &self.state) else {
            return Err(SourceError::Internal(
                "exactly-once delivery needs the Kafka offset store".into(),
            ));
        };
        let offsets = offsets?;
        for (key, value) in &offsets.records {
            let mut record =
                BaseRecord::<Vec<u8>, Vec<u8>, usize>::with_opaque_to(&offsets.topic, NO_BATCH)
                    .key(key);
            if let Some(value) = value {
                record = record.payload(value);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        std::thread::sleep(Duration::from_millis(1));
                        record = r;
                    }
                    Err((e, _)) => return Err(self.error("write the offsets of", e)),
                }
            }
        }
        let mut attempt = 0;
        loop {
            match self.producer.commit_transaction(TRANSACTION_CALL_TIMEOUT) {
                Ok(()) => break,
                Err(KafkaError::Transaction(e)) if e.is_retriable() && attempt < COMMIT_RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "Transaction commit timed out; retrying.");
                }
                Err(e) => return Err(self.error("commit", e)),
            }
        }
        self.store
            .committed_in_transaction(&self.source, &self.state);
        telemetry::emit(OffsetsCommitted {
            status: &self.status,
            partitions: self.moved.len(),
        });
        self.opened = None;
        self.records = 0;
        Ok(std::mem::take(&mut self.moved))
    }

    /// Aborts the open transaction, if any: none of its records becomes
    /// visible, and the next run resumes from the last commit.
    pub fn abort(&mut self) {
        if self.opened.take().is_none() {
            return;
        }
        self.records = 0;
        self.moved.clear();
        if let Err(e) = self.producer.abort_transaction(TRANSACTION_CALL_TIMEOUT) {
            // The next run's `init_transactions` aborts it, or the broker
            // does after `transaction.timeout.ms`.
            tracing::warn!(error = %e, "Cannot abort the open transaction; it is aborted when the source starts again.");
        }
    }

    /// The source error for a failed transaction call: fenced (another
    /// producer took the same `transactional.id`, permanent), or aborted
    /// (the source restarts from its last commit).
    fn error(&self, call: &str, error: KafkaError) -> SourceError {
        let fenced = error.rdkafka_error_code().is_some_and(is_fencing)
            || self
                .producer
                .client()
                .fatal_error()
                .is_some_and(|(code, _)| is_fencing(code));
        if fenced {
            SourceError::Fenced {
                transactional_id: self.transactional_id.clone(),
            }
        } else {
            SourceError::Transaction {
                call: call.to_owned(),
                source: error,
            }
        }
    }
}
