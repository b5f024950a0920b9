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

use std::ffi::{CString, c_void};
use std::ops::Range;
use std::ptr::NonNull;

use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use super::Producer;

/// librdkafka's "unassigned partition": let the partitioner choose (by key
/// hash, or sticky for records without a key). A C macro, so not in the
/// generated bindings.
const PARTITION_UA: i32 = -1;

/// What one [`TopicSender::send`] did with the records it was offered.
#[derive(Debug)]
pub enum Sent {
    /// All were accepted; each will get a delivery report.
    All,
    /// The first `accepted` were; the queue is full from there on and none
    /// after them were taken.
    QueueFull {
        /// Records accepted from the front of the range.
        accepted: usize,
    },
    /// librdkafka refused records for another reason (a record too large,
    /// a fatal producer state). `refused` records will never be reported;
    /// the others were accepted and will be.
    Failed {
        /// The first refusal that was not for queue space.
        error: KafkaError,
        /// How many of the records offered were not accepted.
        refused: usize,
    },
}

/// The rows of one serialised batch, as librdkafka sees them.
pub trait Records {
    /// Record `i`'s value.
    fn value(&self, i: usize) -> &[u8];
    /// Record `i`'s key, if any.
    fn key(&self, i: usize) -> Option<&[u8]>;
}

impl Records for crate::serialize::Serialized {
    fn value(&self, i: usize) -> &[u8] {
        crate::serialize::Serialized::value(self, i)
    }

    fn key(&self, i: usize) -> Option<&[u8]> {
        crate::serialize::Serialized::key(self, i)
    }
}

/// A librdkafka topic handle on one producer, for batch sends to that
/// topic. It keeps the producer alive, so the handle is destroyed first.
pub struct TopicSender {
    topic: NonNull<rd::rd_kafka_topic_t>,
    /// Never read: holding it keeps the client alive until the topic
    /// handle is destroyed.
    _producer: Producer,
    /// Reused message descriptors: one allocation per source run.
    scratch: Vec<rd::rd_kafka_message_t>,
}

// SAFETY: librdkafka topic handles are thread-safe reference-counted
// objects; the scratch buffer is only touched through `&mut self`.
unsafe impl Send for TopicSender {}

impl std::fmt::Debug for TopicSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSender").finish_non_exhaustive()
    }
}

impl TopicSender {
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
        let Some(topic) = NonNull::new(raw) else {
            // SAFETY: reads this thread's last librdkafka error.
            let code = unsafe { rd::rd_kafka_last_error() };
            return Err(KafkaError::ClientCreation(format!(
                "cannot open topic `{topic}`: {}",
                RDKafkaErrorCode::from(code)
            )));
        };
        Ok(TopicSender {
            topic,
            _producer: producer.clone(),
            scratch: Vec::new(),
        })
    }

    /// Offers `records[range]` to librdkafka, every one carrying `opaque`
    /// as its delivery opaque, in one call.
    pub fn send(&mut self, records: &impl Records, range: Range<usize>, opaque: usize) -> Sent {
        let count = range.len();
        if count == 0 {
            return Sent::All;
        }
        self.scratch.clear();
        self.scratch.reserve(count);
        for i in range {
            let value = records.value(i);
            let (key, key_len) = records.key(i).map_or((std::ptr::null_mut(), 0), |k| {
                (k.as_ptr().cast_mut(), k.len())
            });
            // SAFETY: the struct is plain data (pointers and integers); all
            // zero is its documented "unset" state.
            let mut message: rd::rd_kafka_message_t = unsafe { std::mem::zeroed() };
            message.payload = value.as_ptr().cast_mut().cast::<c_void>();
            message.len = value.len();
            message.key = key.cast::<c_void>();
            message.key_len = key_len;
            message._private = opaque as *mut c_void;
            self.scratch.push(message);
        }
        let cnt = i32::try_from(count).unwrap_or(i32::MAX);
        // SAFETY: the topic handle lives as long as `self`; every payload
        // and key points into `records`, alive for the call, and
        // RD_KAFKA_MSG_F_COPY makes librdkafka copy them before returning.
        // librdkafka writes only the `err` field of each descriptor.
        let accepted = unsafe {
            rd::rd_kafka_produce_batch(
                self.topic.as_ptr(),
                PARTITION_UA,
                rd::RD_KAFKA_MSG_F_COPY,
                self.scratch.as_mut_ptr(),
                cnt,
            )
        };
        if usize::try_from(accepted).is_ok_and(|a| a == count) {
            return Sent::All;
        }
        let first = self
            .scratch
            .iter()
            .position(|m| m.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
        let Some(first) = first else {
            // Fewer accepted than offered, yet no record says why; treat
            // all as refused rather than guess which ones were taken.
            return Sent::Failed {
                error: KafkaError::MessageProduction(RDKafkaErrorCode::Fail),
                refused: count,
            };
        };
        let refused = self
            .scratch
            .iter()
            .filter(|m| m.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
            .count();
        let code = RDKafkaErrorCode::from(self.scratch[first].err);
        if code == RDKafkaErrorCode::QueueFull && refused == count - first {
            Sent::QueueFull { accepted: first }
        } else {
            let error = self
                .scratch
                .iter()
                .map(|m| RDKafkaErrorCode::from(m.err))
                .find(|c| *c != RDKafkaErrorCode::NoError && *c != RDKafkaErrorCode::QueueFull)
                .unwrap_or(code);
            Sent::Failed {
                error: KafkaError::MessageProduction(error),
                refused,
            }
        }
    }
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
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    use super::*;
    use crate::config::KafkaConfig;
    use crate::pipeline::{BatchAck, BatchHandle};
    use crate::producer::Kafka;

    /// Keyed records: (key, value).
    struct Rows(Vec<(Vec<u8>, Vec<u8>)>);

    impl Records for Rows {
        fn value(&self, i: usize) -> &[u8] {
            &self.0[i].1
        }

        fn key(&self, i: usize) -> Option<&[u8]> {
            Some(&self.0[i].0)
        }
    }

    #[test]
    fn a_full_queue_takes_a_prefix_and_the_rest_follows_in_key_order() {
        const ROWS: usize = 45;
        let options = BTreeMap::from([
            // A queue far smaller than the batch, held back by linger, so
            // the batch goes in over several calls.
            ("queue.buffering.max.messages".to_owned(), "10".to_owned()),
            ("linger.ms".to_owned(), "20".to_owned()),
        ]);
        let kafka = Kafka::connect(&KafkaConfig {
            bootstrap_servers: KafkaConfig::EMBEDDED.to_owned(),
            options,
            topic_partitions: 3,
            topic_replication_factor: 1,
            drain_timeout_ms: 1000,
        })
        .expect("embedded broker");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime
            .block_on(kafka.ensure_topic("ordered"))
            .expect("topic");
        let producer = kafka.producer();
        let mut sender = TopicSender::new(&producer, "ordered").expect("topic handle");

        let rows = Rows(
            (0..ROWS)
                .map(|i| {
                    let key = format!("k{}", i % 3).into_bytes();
                    (key, i.to_string().into_bytes())
                })
                .collect(),
        );
        let (done_tx, done_rx) = mpsc::channel();
        let batch = BatchHandle::new(BatchAck::new(
            ROWS,
            Box::new(move |error| {
                let _ = done_tx.send(error.map(|e| e.to_string()));
            }),
        ));
        let (mut next, mut full) = (0, 0);
        loop {
            match sender.send(&rows, next..ROWS, batch.opaque()) {
                Sent::All => break,
                Sent::QueueFull { accepted } => {
                    assert!(accepted < ROWS - next);
                    next += accepted;
                    full += 1;
                    producer.poll(Duration::from_millis(5));
                }
                Sent::Failed { error, refused } => panic!("{error} ({refused} refused)"),
            }
        }
        batch.sent_all();
        assert!(full > 0, "the queue never filled, so this proved nothing");
        let outcome = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the batch completes");
        assert_eq!(outcome, None, "every record delivered");

        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .set("group.id", "batch-order-check")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..3 {
            assignment
                .add_partition_offset("ordered", partition, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&assignment).expect("assign");
        let mut per_key: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
        let mut read = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while read < ROWS && Instant::now() < deadline {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let value: usize = std::str::from_utf8(message.payload().unwrap_or_default())
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("a number");
            per_key
                .entry(message.key().unwrap_or_default().to_vec())
                .or_default()
                .push(value);
            read += 1;
        }
        assert_eq!(read, ROWS, "every record read once");
        for (key, values) in per_key {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            assert_eq!(values, sorted, "key {key:?} out of order");
        }
    }
}
