//! Checkpoints kept in a compacted Kafka topic, so that the host is
//! replaceable: a second daemon with an empty state directory and the same
//! configuration continues where the first stopped.
//!
//! The record format is part of the interface (operators read it with
//! `kcat`, and the offsets tooling exports and imports it), so it is
//! versioned:
//!
//! * key: the JSON array `["<source>", "<partition as lowercase hex>"]`;
//! * value: the JSON object `{"version": 1, "checkpoint": "<hex>",
//!   "host": "<host name>", "time": "<RFC 3339, UTC>"}`;
//! * a tombstone (a record without a value) forgets a partition that ended.
//!
//! The topic is compacted (`cleanup.policy=compact`), so it keeps the last
//! record of every key. A source's checkpoints are read by reading the
//! whole topic to its end with `read_committed`, at every start of the
//! source: what another host wrote since is what counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{Checkpoints, OffsetError, OffsetStore, hex};

/// The version of the record value this daemon writes and reads.
pub const RECORD_VERSION: u64 = 1;
/// How long a metadata call or a commit may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading the topic to its end may take: longer than the
/// transaction timeout of exactly-once producers, so that a transaction a
/// killed daemon left open is aborted by the broker before the reader gives
/// up.
const READ_TIMEOUT: Duration = Duration::from_secs(75);
/// The file in the state directory that remembers which offsets topic this
/// host used, so that a topic deleted while the daemon was stopped is an
/// error and not a silent start from the beginning.
const MARKER: &str = "kafka-offsets-topic";

/// One record of the offsets topic, its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRecord {
    /// The source.
    pub source: String,
    /// The source partition.
    pub partition: Vec<u8>,
    /// The checkpoint, `None` for a tombstone; `Err` says why the value
    /// cannot be decoded (an error only for the source it belongs to).
    pub checkpoint: Result<Option<Vec<u8>>, String>,
    /// Where it is, for messages: `partition P offset O`.
    pub at: String,
}

/// The key of `(source, partition)`.
pub fn encode_key(source: &str, partition: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([source, hex(partition)]))
        .expect("a JSON array of strings serialises")
}

/// The value of a checkpoint written by `host` at `time`.
pub fn encode_value(checkpoint: &[u8], host: &str, time: SystemTime) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": RECORD_VERSION,
        "checkpoint": hex(checkpoint),
        "host": host,
        "time": rfc3339(time),
    }))
    .expect("a JSON object of strings and numbers serialises")
}

/// Decodes a key; `Err` says what is wrong with it.
pub fn decode_key(key: &[u8]) -> Result<(String, Vec<u8>), String> {
    let value: serde_json::Value =
        serde_json::from_slice(key).map_err(|e| format!("the key is not JSON: {e}"))?;
    match value.as_array().map(Vec::as_slice) {
        Some(
            [
                serde_json::Value::String(source),
                serde_json::Value::String(partition),
            ],
        ) => Ok((source.clone(), unhex(partition)?)),
        _ => Err(format!(
            "the key is not [\"<source>\", \"<partition hex>\"]: {value}"
        )),
    }
}

/// Decodes a value into its checkpoint; `Err` says what is wrong with it.
pub fn decode_value(value: &[u8]) -> Result<Vec<u8>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| format!("the value is not JSON: {e}"))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(RECORD_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "record version {other} is not the version {RECORD_VERSION} this daemon reads; \
                 upgrade it"
            ));
        }
        None => return Err("the value has no `version`".into()),
    }
    value
        .get("checkpoint")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "the value has no `checkpoint` string".to_owned())
        .and_then(unhex)
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    super::unhex(text).ok_or_else(|| format!("`{text}` is not hex"))
}

/// `time` as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (year, month, day) = tributary_plugin_sdk::calendar::civil_from_days(days);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// This machine's name, for the `host` field.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Collects the delivery result of every record of one commit.
#[derive(Clone, Default)]
struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<mpsc::Sender<KafkaResult<()>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let _ = reply.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// The Kafka offset store.
pub struct KafkaStore {
    topic: String,
    producer: BaseProducer<Deliveries>,
    consumer_config: ClientConfig,
    host: String,
    /// What this store last read or wrote per source: a commit writes only
    /// the partitions that changed, and tombstones the ones that ended.
    known: Mutex<BTreeMap<String, Checkpoints>>,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStore")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaStore {
    /// A store on `topic`, which the caller made sure exists; `client` holds
    /// the connection and security settings.
    pub fn new(client: &ClientConfig, topic: &str) -> Result<Self, OffsetError> {
        let mut producer_config = client.clone();
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0");
        let producer = producer_config
            .create_with_context(Deliveries)
            .map_err(|e| kafka_error(topic, "cannot create its producer", &e))?;
        let mut consumer_config = consumer_base(client);
        consumer_config
            .set("group.id", "tributary-offsets-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest");
        Ok(KafkaStore {
            topic: topic.to_owned(),
            producer,
            consumer_config,
            host: host_name(),
            known: Mutex::new(BTreeMap::new()),
        })
    }

    /// Every record of the topic, read to its end, in order; later records
    /// of a key replace earlier ones.
    pub fn read_all(&self) -> Result<Vec<OffsetRecord>, OffsetError> {
        let consumer: BaseConsumer = self
            .consumer_config
            .create()
            .map_err(|e| kafka_error(&self.topic, "cannot create its reader", &e))?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), KAFKA_TIMEOUT)
            .map_err(|e| kafka_error(&self.topic, "cannot read its metadata", &e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(OffsetError::Kafka {
                topic: self.topic.clone(),
                message: "the offsets topic does not exist (or has no partitions); refusing \
                          to start sources from the beginning"
                    .into(),
            });
        }
        let mut assignment = TopicPartitionList::new();
        // Each partition is read up to the high watermark it had when the
        // read began. End-of-partition events are not used: librdkafka
        // emits none to a read_committed reader of a partition that ends
        // in a transaction marker, which this topic always does under
        // exactly-once sources.
        let mut open: Vec<(i32, i64)> = Vec::new();
        for p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(&self.topic, *p, KAFKA_TIMEOUT)
                .map_err(|e| kafka_error(&self.topic, "cannot read its watermarks", &e))?;
            if high > low {
                assignment
                    .add_partition_offset(&self.topic, *p, Offset::Beginning)
                    .map_err(|e| kafka_error(&self.topic, "cannot assign it", &e))?;
                open.push((*p, high));
            }
        }
        let mut records = Vec::new();
        if open.is_empty() {
            return Ok(records);
        }
        consumer
            .assign(&assignment)
            .map_err(|e| kafka_error(&self.topic, "cannot assign it", &e))?;
        let deadline = Instant::now() + READ_TIMEOUT;
        while !open.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return Err(OffsetError::Kafka {
                    topic: self.topic.clone(),
                    message: format!(
                        "could not read it to its end within {READ_TIMEOUT:?} (an open \
                         transaction holds read_committed readers back until it ends)"
                    ),
                });
            }
            match consumer.poll((deadline - now).min(Duration::from_millis(100))) {
                None => {}
                Some(Err(e)) => return Err(kafka_error(&self.topic, "cannot read it", &e)),
                Some(Ok(message)) => {
                    let at = format!(
                        "partition {} offset {}",
                        message.partition(),
                        message.offset()
                    );
                    let key = message.key().unwrap_or_default();
                    let (source, partition) = decode_key(key).map_err(|e| OffsetError::Kafka {
                        topic: self.topic.clone(),
                        message: format!("the record at {at} cannot be decoded: {e}"),
                    })?;
                    records.push(OffsetRecord {
                        source,
                        partition,
                        checkpoint: message.payload().map(decode_value).transpose(),
                        at,
                    });
                }
            }
            let position = consumer
                .position()
                .map_err(|e| kafka_error(&self.topic, "cannot read its position", &e))?;
            open.retain(|(p, high)| {
                let at = position
                    .find_partition(&self.topic, *p)
                    .and_then(|e| e.offset().to_raw());
                at.is_none_or(|at| at < *high)
            });
        }
        Ok(records)
    }

    /// Writes `records` and waits until Kafka acknowledged every one.
    fn write(&self, records: Vec<super::OffsetRecordBytes>) -> Result<(), OffsetError> {
        let (tx, rx) = mpsc::channel();
        let count = records.len();
        for (key, value) in &records {
            let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new(tx.clone())).key(key);
            if let Some(value) = value {
                record = record.payload(value);
            }
            let mut record: BaseRecord<'_, Vec<u8>, Vec<u8>, _> = record;
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        self.producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                    Err((e, _)) => return Err(kafka_error(&self.topic, "cannot write to it", &e)),
                }
            }
        }
        drop(tx);
        self.producer
            .flush(KAFKA_TIMEOUT)
            .map_err(|e| kafka_error(&self.topic, "cannot write to it", &e))?;
        let results: Vec<KafkaResult<()>> = rx.try_iter().collect();
        if results.len() < count {
            return Err(OffsetError::Kafka {
                topic: self.topic.clone(),
                message: format!(
                    "{} of {count} offset records were not acknowledged",
                    count - results.len()
                ),
            });
        }
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            return Err(kafka_error(&self.topic, "cannot write to it", &e));
        }
        Ok(())
    }
}

/// The connection and security settings of `client` for a consumer: the
/// shared `[kafka.options]` are mostly producer settings, and a consumer
/// would warn about each.
pub(crate) fn consumer_base(client: &ClientConfig) -> ClientConfig {
    let mut consumer_config = client.clone();
    let producer_only: Vec<String> = consumer_config
        .config_map()
        .keys()
        .filter(|k| is_producer_only(k))
        .map(|k| k.to_string())
        .collect();
    for key in producer_only {
        consumer_config.remove(&key);
    }
    consumer_config
}

/// librdkafka properties that only producers take (its CONFIGURATION.md
/// marks them `P`).
fn is_producer_only(key: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "message.timeout.ms",
        "delivery.timeout.ms",
        "linger.ms",
        "queue.buffering.",
        "batch.",
        "compression.",
        "acks",
        "request.required.acks",
        "request.timeout.ms",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "retries",
        "message.send.max.retries",
        "partitioner",
        "sticky.partitioning",
        "transactional.id",
        "transaction.timeout.ms",
        "queuing.strategy",
        "delivery.report.only.error",
        "message.copy.max.bytes",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
}

fn kafka_error(topic: &str, what: &str, e: &KafkaError) -> OffsetError {
    OffsetError::Kafka {
        topic: topic.to_owned(),
        message: format!("{what}: {e}"),
    }
}

impl OffsetStore for KafkaStore {
    fn load(&self, source: &str) -> Result<Checkpoints, OffsetError> {
        let mut checkpoints = Checkpoints::new();
        for record in self.read_all()? {
            if record.source != source {
                continue;
            }
            let checkpoint = record.checkpoint.map_err(|e| OffsetError::Kafka {
                topic: self.topic.clone(),
                message: format!(
                    "the record of source `{source}` at {} cannot be decoded ({e}); refusing \
                     to guess where the source stopped",
                    record.at
                ),
            })?;
            match checkpoint {
                Some(c) => checkpoints.insert(record.partition, c),
                None => checkpoints.remove(&record.partition),
            };
        }
        super::lock(&self.known).insert(source.to_owned(), checkpoints.clone());
        Ok(checkpoints)
    }

    fn commit(&self, source: &str, checkpoints: &Checkpoints) -> Result<(), OffsetError> {
        let records = self.changes(source, checkpoints)?;
        if !records.is_empty() {
            self.write(records)?;
        }
        self.remember(source, checkpoints);
        Ok(())
    }

    fn in_transaction(
        &self,
        source: &str,
        checkpoints: &Checkpoints,
    ) -> Option<Result<super::TransactionalOffsets, OffsetError>> {
        Some(
            self.changes(source, checkpoints)
                .map(|records| super::TransactionalOffsets {
                    topic: self.topic.clone(),
                    records,
                }),
        )
    }

    fn committed_in_transaction(&self, source: &str, checkpoints: &Checkpoints) {
        self.remember(source, checkpoints);
    }
}

impl KafkaStore {
    /// The records that take `source` from what this store knows to
    /// `checkpoints`: one per partition that moved, a tombstone per
    /// partition that ended (an empty checkpoint, or gone from the map).
    fn changes(
        &self,
        source: &str,
        checkpoints: &Checkpoints,
    ) -> Result<Vec<super::OffsetRecordBytes>, OffsetError> {
        // A source this store has not read yet (an offset reset of a source
        // that never ran here) is read first, so that its partitions get
        // their tombstones.
        let known = super::lock(&self.known).get(source).cloned();
        let previous = match known {
            Some(previous) => previous,
            None => self.load(source)?,
        };
        let now = SystemTime::now();
        let mut records = Vec::new();
        for (partition, checkpoint) in checkpoints.iter().filter(|(_, c)| !c.is_empty()) {
            if previous.get(partition) != Some(checkpoint) {
                records.push((
                    encode_key(source, partition),
                    Some(encode_value(checkpoint, &self.host, now)),
                ));
            }
        }
        for partition in previous.keys() {
            if checkpoints.get(partition).is_none_or(Vec::is_empty) {
                records.push((encode_key(source, partition), None));
            }
        }
        Ok(records)
    }

    fn remember(&self, source: &str, checkpoints: &Checkpoints) {
        let live = checkpoints
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect();
        super::lock(&self.known).insert(source.to_owned(), live);
    }
}

/// Checks the state directory's memory of the offsets topic against what
/// the cluster has: a topic this host used before that is now missing is
/// an error (reading from the beginning would send everything again); a
/// fresh host records the topic it starts using.
pub fn check_marker(state_dir: &Path, topic: &str, exists: bool) -> Result<(), OffsetError> {
    let marker = state_dir.join(MARKER);
    let remembered = std::fs::read_to_string(&marker).ok();
    let io = |source| OffsetError::Io {
        path: marker.clone(),
        source,
    };
    match (remembered.as_deref().map(str::trim), exists) {
        (Some(used), false) if used == topic => Err(OffsetError::Kafka {
            topic: topic.to_owned(),
            message: format!(
                "the offsets topic this host used is gone (deleted while the daemon was \
                 stopped?); refusing to start its sources from the beginning. Restore it (for \
                 example `tributary offsets import`), or, to start over on purpose, delete {}",
                marker.display()
            ),
        }),
        (Some(used), _) if used == topic => Ok(()),
        _ => {
            std::fs::create_dir_all(state_dir).map_err(io)?;
            std::fs::write(&marker, format!("{topic}\n")).map_err(io)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_name_their_host_and_time() {
        let key = encode_key("orders", b"\x00\xffseq");
        assert_eq!(
            String::from_utf8(key.clone()).unwrap(),
            r#"["orders","00ff736571"]"#
        );
        assert_eq!(
            decode_key(&key).unwrap(),
            ("orders".into(), b"\x00\xffseq".to_vec())
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let value = encode_value(&[1, 2, 3], "host-a", time);
        let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["host"], "host-a");
        assert_eq!(json["time"], "2023-11-14T22:13:20Z");
        assert_eq!(decode_value(&value).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn undecodable_records_are_errors_not_a_start_from_scratch() {
        assert!(decode_key(b"not json").unwrap_err().contains("not JSON"));
        assert!(decode_key(br#"["a"]"#).is_err());
        assert!(
            decode_key(br#"["a","zz"]"#)
                .unwrap_err()
                .contains("not hex")
        );
        let future = br#"{"version":2,"checkpoint":"00"}"#;
        assert!(decode_value(future).unwrap_err().contains("version 2"));
        assert!(decode_value(br#"{"version":1}"#).is_err());
    }

    #[test]
    fn a_remembered_topic_that_is_gone_is_refused() {
        let dir = std::env::temp_dir().join(format!("tributary-marker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A fresh host remembers the topic it starts using.
        check_marker(&dir, "offsets", false).unwrap();
        check_marker(&dir, "offsets", true).unwrap();
        let err = check_marker(&dir, "offsets", false).unwrap_err();
        assert!(err.to_string().contains("is gone"), "{err}");
        // Another topic is a new start on purpose.
        check_marker(&dir, "other", false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
