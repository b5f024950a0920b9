//! Handing a whole batch of records to librdkafka in one call.
//!
//! `BaseProducer::send` goes through `rd_kafka_producev` once per record,
//! and each call allocates a C string for the topic name, looks the topic
//! up by name under a lock and reads the clock twice. For a source sending
//! a million small records a second that is a third of its thread's time.
//! `rd_kafka_produce_batch` on a topic handle created once does the lookup
//! and the clock reading once per batch, and still runs the partitioner
//! per record (keys keep their partition).
//!
//! Ordering on a full queue: librdkafka stops accepting at the first record
//! refused for lack of queue space and refuses every later record of the
//! call with the same error, so what it took is always a prefix and the
//! rest can be offered again, in order, once reports have freed space.
//!
//! With librdkafka's default partitioner the partition of each record is
//! computed here, with the same function, and the batch is handed over in
//! partition runs: librdkafka then skips its per-record partitioner call,
//! partition lookup and clock reading. Records keep their order within
//! each partition, which is all Kafka orders.

use std::ffi::{CString, c_void};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use super::Producer;

/// librdkafka's "unassigned partition": let the partitioner choose (by key
/// hash, or sticky for records without a key). A C macro, so not in the
/// generated bindings.
const PARTITION_UA: i32 = -1;

/// Why [`TopicSender::send`] did not hand over every record.
#[derive(Debug)]
pub enum Unsent {
    /// The caller's wait for queue space said to stop; `unsent` records
    /// were never taken (the others were and will be reported).
    Stopped {
        /// Records never accepted.
        unsent: usize,
    },
    /// librdkafka refused records for another reason (a record too large,
    /// a fatal producer state). `refused` records will never be reported;
    /// the others were accepted and will be.
    Refused {
        /// The first refusal that was not for queue space.
        error: KafkaError,
        /// Records never accepted.
        refused: usize,
    },
}

/// The rows of one serialised batch, as librdkafka sees them.
pub trait Records {
    /// Number of records.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Record `i`'s value.
    fn value(&self, i: usize) -> &[u8];
    /// Record `i`'s key, if any.
    fn key(&self, i: usize) -> Option<&[u8]>;
    /// Whether the records carry headers. `rd_kafka_produce_batch` has no
    /// headers, so such records are handed over one at a time.
    fn has_headers(&self) -> bool {
        false
    }
    /// Record `i`'s headers.
    fn headers(&self, _i: usize) -> Option<OwnedHeaders> {
        None
    }
    /// Record `i`'s Kafka timestamp (milliseconds), when not "now". Like
    /// headers, only the one-at-a-time path can set it.
    fn timestamp(&self, _i: usize) -> Option<i64> {
        None
    }
}

impl Records for crate::serialize::DeadLetterRecords {
    fn len(&self) -> usize {
        crate::serialize::DeadLetterRecords::len(self)
    }

    fn value(&self, i: usize) -> &[u8] {
        self.raw(i)
    }

    fn key(&self, _i: usize) -> Option<&[u8]> {
        None
    }

    fn has_headers(&self) -> bool {
        true
    }

    fn headers(&self, i: usize) -> Option<OwnedHeaders> {
        Some(crate::serialize::DeadLetterRecords::headers(self, i))
    }
}

impl Records for crate::serialize::Serialized {
    fn len(&self) -> usize {
        crate::serialize::Serialized::len(self)
    }

    fn value(&self, i: usize) -> &[u8] {
        crate::serialize::Serialized::value(self, i)
    }

    fn key(&self, i: usize) -> Option<&[u8]> {
        crate::serialize::Serialized::key(self, i)
    }

    fn has_headers(&self) -> bool {
        !self.header_names.is_empty() || !self.timestamps.is_empty()
    }

    fn headers(&self, i: usize) -> Option<OwnedHeaders> {
        if self.header_names.is_empty() {
            return None;
        }
        let mut headers = OwnedHeaders::new_with_capacity(self.header_names.len());
        for (j, name) in self.header_names.iter().enumerate() {
            if let Some(value) = self.header(i, j) {
                headers = headers.insert(rdkafka::message::Header {
                    key: name,
                    value: Some(value),
                });
            }
        }
        Some(headers)
    }

    fn timestamp(&self, i: usize) -> Option<i64> {
        crate::serialize::Serialized::timestamp(self, i)
    }
}

/// How often the partition count is read again from the broker: partitions
/// can be added to a topic while the daemon runs.
const PARTITION_COUNT_REFRESH: Duration = Duration::from_secs(30);
/// How long that read may take; on failure the last count is kept.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Who picks each record's partition.
#[derive(Debug)]
enum Partitioning {
    /// librdkafka's partitioner, per record (a `partitioner` other than its
    /// default is configured, or the partition count is not known yet).
    Librdkafka,
    /// librdkafka's default (`consistent_random`) computed here: CRC-32 of
    /// the key modulo the partition count, so a key lands where librdkafka
    /// would put it; records without a key go to one partition per batch,
    /// rotating, as librdkafka's sticky partitioning does per linger window.
    /// Knowing partitions up front lets a batch go in partition runs, which
    /// saves librdkafka a clock reading and a partition lookup per record.
    ConsistentRandom {
        partitions: i32,
        refreshed: Instant,
        /// Taken modulo the partition count.
        next_unkeyed: u32,
    },
}

/// A librdkafka topic handle on one producer, for batch sends to that
/// topic. It keeps the producer alive, so the handle is destroyed first.
pub struct TopicSender {
    topic: NonNull<rd::rd_kafka_topic_t>,
    name: String,
    /// Holding it keeps the client alive until the topic handle is
    /// destroyed.
    producer: Producer,
    partitioning: Partitioning,
    /// Reused message descriptors and partition buckets: no allocation per
    /// batch.
    scratch: Vec<rd::rd_kafka_message_t>,
    partitions: Vec<i32>,
    bucket_starts: Vec<usize>,
}

// SAFETY: librdkafka topic handles are thread-safe reference-counted
// objects; the scratch buffers are only touched through `&mut self`.
unsafe impl Send for TopicSender {}

impl std::fmt::Debug for TopicSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSender")
            .field("topic", &self.name)
            .field("partitioning", &self.partitioning)
            .finish_non_exhaustive()
    }
}

impl TopicSender {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle on `topic` for `producer`.
    pub fn new(producer: &Producer, topic: &str) -> Result<Self, KafkaError> {
        let name = CString::new(topic).map_err(KafkaError::from)?;
        // SAFETY: the client pointer is valid while `producer` lives (kept
        // below); librdkafka copies the name; a null config means defaults.
        let raw = unsafe {
            rd::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        let Some(handle) = NonNull::new(raw) else {
            // SAFETY: reads this thread's last librdkafka error.
            let code = unsafe { rd::rd_kafka_last_error() };
            return Err(KafkaError::ClientCreation(format!(
                "cannot open topic `{topic}`: {}",
                RDKafkaErrorCode::from(code)
            )));
        };
        let mut sender = TopicSender {
            topic: handle,
            name: topic.to_owned(),
            producer: producer.clone(),
            partitioning: Partitioning::Librdkafka,
            scratch: Vec::new(),
            partitions: Vec::new(),
            bucket_starts: Vec::new(),
        };
        if producer
            .partitioner()
            .is_none_or(|p| p == "consistent_random")
        {
            // Where records without a key start: random, so restarts and
            // sources do not all begin on partition 0.
            let start = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                topic,
            );
            sender.partitioning = Partitioning::ConsistentRandom {
                partitions: 0,
                refreshed: Instant::now(),
                next_unkeyed: u32::try_from(start % 1024).unwrap_or(0),
            };
            sender.refresh_partition_count();
        }
        Ok(sender)
    }

    /// Reads the topic's partition count; keeps the last one on failure.
    fn refresh_partition_count(&mut self) {
        let Partitioning::ConsistentRandom {
            partitions,
            refreshed,
            ..
        } = &mut self.partitioning
        else {
            return;
        };
        *refreshed = Instant::now();
        let Ok(metadata) = self
            .producer
            .client()
            .fetch_metadata(Some(&self.name), METADATA_TIMEOUT)
        else {
            return;
        };
        if let Some(topic) = metadata.topics().iter().find(|t| t.name() == self.name) {
            let count = i32::try_from(topic.partitions().len()).unwrap_or(0);
            if topic.error().is_none() && count > *partitions {
                *partitions = count;
            }
        }
    }

    /// Hands every record of `records` to librdkafka, each carrying
    /// `opaque` as its delivery opaque. When the producer queue is full,
    /// calls `wait` (which should serve delivery reports for a moment) and
    /// offers the rest again, in order, unless `wait` returns `false`.
    pub fn send(
        &mut self,
        records: &impl Records,
        opaque: usize,
        mut wait: impl FnMut() -> bool,
    ) -> Result<(), Unsent> {
        if records.is_empty() {
            return Ok(());
        }
        if records.has_headers() {
            return self.send_each(records, opaque, wait);
        }
        let count = records.len();
        if let Partitioning::ConsistentRandom { refreshed, .. } = &self.partitioning
            && refreshed.elapsed() >= PARTITION_COUNT_REFRESH
        {
            self.refresh_partition_count();
        }
        let known = match &mut self.partitioning {
            Partitioning::ConsistentRandom {
                partitions,
                next_unkeyed,
                ..
            } if *partitions > 0 => {
                let count = partitions.unsigned_abs();
                // Below the partition count, an i32.
                let unkeyed = i32::try_from(*next_unkeyed % count).unwrap_or(0);
                *next_unkeyed = (*next_unkeyed + 1) % count;
                Some((*partitions, unkeyed))
            }
            _ => None,
        };
        let flags = match known {
            Some((partitions, unkeyed)) => {
                self.partitions.clear();
                for i in 0..count {
                    self.partitions.push(match records.key(i) {
                        Some(key) => consistent_partition(key, partitions),
                        None => unkeyed,
                    });
                }
                self.describe_by_partition(records, opaque, partitions);
                rd::RD_KAFKA_MSG_F_COPY | rd::RD_KAFKA_MSG_F_PARTITION
            }
            None => {
                self.scratch.clear();
                self.scratch.reserve(count);
                for i in 0..count {
                    self.scratch
                        .push(descriptor(records, i, opaque, PARTITION_UA));
                }
                rd::RD_KAFKA_MSG_F_COPY
            }
        };
        let mut next = 0;
        loop {
            let pending = &mut self.scratch[next..];
            let offered = pending.len();
            let cnt = i32::try_from(offered).unwrap_or(i32::MAX);
            // SAFETY: the topic handle lives as long as `self`; every payload
            // and key points into `records`, alive for the call, and
            // RD_KAFKA_MSG_F_COPY makes librdkafka copy them before
            // returning. librdkafka writes only the `err` field of each
            // descriptor.
            let accepted = unsafe {
                rd::rd_kafka_produce_batch(
                    self.topic.as_ptr(),
                    PARTITION_UA,
                    flags,
                    pending.as_mut_ptr(),
                    cnt,
                )
            };
            if usize::try_from(accepted).is_ok_and(|a| a == offered) {
                return Ok(());
            }
            let failed =
                |m: &rd::rd_kafka_message_t| m.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR;
            let refused = pending.iter().filter(|m| failed(m)).count();
            let Some(first) = pending.iter().position(failed) else {
                // Fewer accepted than offered, yet no record says why:
                // count all as refused rather than guess which were taken.
                return Err(Unsent::Refused {
                    error: KafkaError::MessageProduction(RDKafkaErrorCode::Fail),
                    refused: offered,
                });
            };
            let queue_full =
                RDKafkaErrorCode::from(pending[first].err) == RDKafkaErrorCode::QueueFull;
            if !queue_full || refused != offered - first {
                let error = pending
                    .iter()
                    .map(|m| RDKafkaErrorCode::from(m.err))
                    .find(|c| *c != RDKafkaErrorCode::NoError && *c != RDKafkaErrorCode::QueueFull)
                    .unwrap_or(RDKafkaErrorCode::Fail);
                return Err(Unsent::Refused {
                    error: KafkaError::MessageProduction(error),
                    refused,
                });
            }
            next += first;
            if !wait() {
                return Err(Unsent::Stopped {
                    unsent: count - next,
                });
            }
            for m in &mut self.scratch[next..] {
                m.err = RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR;
            }
        }
    }

    /// Hands records over one `rd_kafka_producev` call at a time, for
    /// records with headers, with the same contract as [`TopicSender::send`]:
    /// what was taken is a prefix, a full queue waits, another refusal ends
    /// the call.
    fn send_each(
        &self,
        records: &impl Records,
        opaque: usize,
        mut wait: impl FnMut() -> bool,
    ) -> Result<(), Unsent> {
        let count = records.len();
        for i in 0..count {
            let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.name, opaque)
                .payload(records.value(i));
            if let Some(key) = records.key(i) {
                record = record.key(key);
            }
            if let Some(headers) = records.headers(i) {
                record = record.headers(headers);
            }
            if let Some(timestamp) = records.timestamp(i) {
                record = record.timestamp(timestamp);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        if !wait() {
                            return Err(Unsent::Stopped { unsent: count - i });
                        }
                        record = r;
                    }
                    Err((error, _)) => {
                        return Err(Unsent::Refused {
                            error,
                            refused: count - i,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Fills the descriptors grouped by partition (a counting sort, stable,
    /// so each partition keeps the records' order), which lets librdkafka
    /// look each partition up once per batch.
    fn describe_by_partition(&mut self, records: &impl Records, opaque: usize, partitions: i32) {
        let buckets = usize::try_from(partitions).unwrap_or(0);
        self.bucket_starts.clear();
        self.bucket_starts.resize(buckets + 1, 0);
        for p in &self.partitions {
            self.bucket_starts[*p as usize + 1] += 1;
        }
        for b in 1..=buckets {
            self.bucket_starts[b] += self.bucket_starts[b - 1];
        }
        self.scratch.clear();
        // SAFETY: plain data, all zero is its "unset" state; every slot is
        // overwritten below because the buckets cover 0..len exactly.
        self.scratch
            .resize(self.partitions.len(), unsafe { std::mem::zeroed() });
        for (i, p) in self.partitions.iter().enumerate() {
            let slot = &mut self.bucket_starts[*p as usize];
            self.scratch[*slot] = descriptor(records, i, opaque, *p);
            *slot += 1;
        }
    }
}

/// librdkafka's `consistent_random` partition for a key: CRC-32 of the key
/// modulo the partition count.
fn consistent_partition(key: &[u8], partitions: i32) -> i32 {
    let count = u32::try_from(partitions).unwrap_or(1).max(1);
    // The remainder is below `partitions`, an i32.
    i32::try_from(crc32fast::hash(key) % count).unwrap_or(0)
}

/// The librdkafka descriptor of record `i`.
fn descriptor(
    records: &impl Records,
    i: usize,
    opaque: usize,
    partition: i32,
) -> rd::rd_kafka_message_t {
    let value = records.value(i);
    let (key, key_len) = records.key(i).map_or((std::ptr::null_mut(), 0), |k| {
        (k.as_ptr().cast_mut(), k.len())
    });
    // SAFETY: the struct is plain data (pointers and integers); all zero is
    // its documented "unset" state.
    let mut message: rd::rd_kafka_message_t = unsafe { std::mem::zeroed() };
    message.partition = partition;
    message.payload = value.as_ptr().cast_mut().cast::<c_void>();
    message.len = value.len();
    message.key = key.cast::<c_void>();
    message.key_len = key_len;
    message._private = opaque as *mut c_void;
    message
}

impl Drop for TopicSender {
    fn drop(&mut self) {
        // SAFETY: created by `rd_kafka_topic_new` and destroyed once, while
        // the producer (held by `self`) is still alive.
        unsafe { rd::rd_kafka_topic_destroy(self.topic.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    use super::*;
    use crate::config::KafkaConfig;
    use crate::producer::{BatchAck, BatchHandle, Kafka, Outcome};

    /// Records as (key, value).
    struct Rows(Vec<(Option<Vec<u8>>, Vec<u8>)>);

    impl Records for Rows {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn value(&self, i: usize) -> &[u8] {
            &self.0[i].1
        }

        fn key(&self, i: usize) -> Option<&[u8]> {
            self.0[i].0.as_deref()
        }
    }

    fn embedded(options: &[(&str, &str)], topics: &[(&str, i32)]) -> Kafka {
        let kafka = Kafka::connect(&KafkaConfig {
            bootstrap_servers: KafkaConfig::EMBEDDED.to_owned(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            topic_partitions: 1,
            topic_replication_factor: 1,
            drain_timeout_ms: 1000,
            ..KafkaConfig::default()
        })
        .expect("embedded broker");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for (topic, partitions) in topics {
            let Some(broker) = &kafka.embedded else {
                unreachable!("embedded above");
            };
            broker.create_topic(topic, *partitions).expect("topic");
            runtime.block_on(kafka.ensure_topic(topic)).expect("topic");
        }
        kafka
    }

    /// Sends `rows` as one batch through a [`TopicSender`], serving reports
    /// while the queue is full; returns how many times it was full.
    fn send_all(kafka: &Kafka, topic: &str, rows: &Rows) -> usize {
        let mut sender = TopicSender::new(&kafka.producer(), topic).expect("topic handle");
        send_with(&mut sender, rows)
    }

    fn send_with(sender: &mut TopicSender, rows: &Rows) -> usize {
        let producer = sender.producer.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let batch = BatchHandle::new(BatchAck::new(
            rows.len(),
            Box::new(move |outcome| {
                let _ = done_tx.send(match outcome {
                    Outcome::Delivered => None,
                    other => Some(format!("{other:?}")),
                });
            }),
        ));
        let mut full = 0;
        sender
            .send(rows, batch.opaque(), || {
                full += 1;
                producer.poll(Duration::from_millis(5));
                true
            })
            .expect("every record accepted");
        batch.sent_all();
        let outcome = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the batch completes");
        assert_eq!(outcome, None, "every record delivered");
        full
    }

    /// Every record of `topic` as (partition, key, value), in log order
    /// per partition.
    fn read_all(
        kafka: &Kafka,
        topic: &str,
        partitions: i32,
        expected: usize,
    ) -> Vec<(i32, Vec<u8>, String)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .set("group.id", "batch-check")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&assignment).expect("assign");
        let mut read = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while read.len() < expected && Instant::now() < deadline {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            read.push((
                message.partition(),
                message.key().unwrap_or_default().to_vec(),
                String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            ));
        }
        assert_eq!(read.len(), expected, "every record read once");
        read
    }

    #[test]
    fn a_full_queue_takes_a_prefix_and_the_rest_follows_in_key_order() {
        const ROWS: usize = 45;
        // A queue far smaller than the batch, held back by linger, so the
        // batch goes in over several calls.
        let kafka = embedded(
            &[("queue.buffering.max.messages", "10"), ("linger.ms", "20")],
            &[("ordered", 3)],
        );
        let rows = Rows(
            (0..ROWS)
                .map(|i| {
                    (
                        Some(format!("k{}", i % 5).into_bytes()),
                        i.to_string().into_bytes(),
                    )
                })
                .collect(),
        );
        let full = send_all(&kafka, "ordered", &rows);
        assert!(full > 0, "the queue never filled, so this proved nothing");
        let mut per_key: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
        for (_, key, value) in read_all(&kafka, "ordered", 3, ROWS) {
            per_key
                .entry(key)
                .or_default()
                .push(value.parse().expect("a number"));
        }
        for (key, values) in per_key {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            assert_eq!(values, sorted, "key {key:?} out of order");
        }
    }

    #[test]
    fn keys_land_in_the_partition_librdkafka_would_choose() {
        const ROWS: usize = 300;
        let kafka = embedded(&[], &[("ours", 7), ("theirs", 7)]);
        let keys: Vec<Vec<u8>> = (0..ROWS)
            .map(|i| format!("customer-{}", i * 7919 % 1000).into_bytes())
            .collect();
        let rows = Rows(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (Some(k.clone()), i.to_string().into_bytes()))
                .collect(),
        );
        send_all(&kafka, "ours", &rows);
        // librdkafka's own partitioner, record by record.
        let plain: rdkafka::producer::BaseProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .create()
            .expect("producer");
        for (i, key) in keys.iter().enumerate() {
            let value = i.to_string();
            plain
                .send(
                    BaseRecord::<[u8], str>::to("theirs")
                        .key(key)
                        .payload(&value),
                )
                .expect("queued");
        }
        plain.flush(Duration::from_secs(20)).expect("flushed");
        let ours: BTreeMap<Vec<u8>, i32> = read_all(&kafka, "ours", 7, ROWS)
            .into_iter()
            .map(|(p, k, _)| (k, p))
            .collect();
        let theirs: BTreeMap<Vec<u8>, i32> = read_all(&kafka, "theirs", 7, ROWS)
            .into_iter()
            .map(|(p, k, _)| (k, p))
            .collect();
        assert_eq!(ours.len(), ROWS, "distinct keys");
        assert_eq!(ours, theirs);
        let used: std::collections::BTreeSet<i32> = ours.values().copied().collect();
        assert!(used.len() > 1, "keys spread over partitions");
    }

    #[test]
    fn records_without_keys_spread_over_partitions_batch_by_batch() {
        let kafka = embedded(&[], &[("unkeyed", 4)]);
        let batch = Rows(
            (0..10)
                .map(|i| (None, i.to_string().into_bytes()))
                .collect(),
        );
        let mut sender = TopicSender::new(&kafka.producer(), "unkeyed").expect("topic handle");
        for _ in 0..4 {
            send_with(&mut sender, &batch);
        }
        let read = read_all(&kafka, "unkeyed", 4, 40);
        let mut per_partition = BTreeMap::new();
        for (partition, _, _) in &read {
            *per_partition.entry(*partition).or_insert(0) += 1;
        }
        assert_eq!(
            per_partition.values().copied().collect::<Vec<_>>(),
            vec![10; 4],
            "one batch per partition in turn: {per_partition:?}"
        );
    }

    #[test]
    fn another_partitioner_is_left_to_librdkafka() {
        let kafka = embedded(&[("partitioner", "murmur2_random")], &[("murmur", 5)]);
        let producer = kafka.producer();
        let sender = TopicSender::new(&producer, "murmur").expect("topic handle");
        assert!(matches!(sender.partitioning, Partitioning::Librdkafka));
        drop(sender);
        let rows = Rows(
            (0..50)
                .map(|i| {
                    (
                        Some(format!("k{i}").into_bytes()),
                        i.to_string().into_bytes(),
                    )
                })
                .collect(),
        );
        send_all(&kafka, "murmur", &rows);
        read_all(&kafka, "murmur", 5, 50);
    }
}
