//! The oracle: an independent consumer that counts what reached the topic.
//!
//! It deliberately shares nothing with the daemon (its own librdkafka client,
//! its own config) and reads with `isolation.level=read_committed`, so records
//! of aborted transactions do not count. Records are counted by consuming,
//! never by watermarks: watermarks count aborted records and transaction
//! markers, and brokers report them differently.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// How many missing sequence numbers a report lists; the count is always
/// exact. Longer lists only bury the first gap, which is the useful one.
pub const MISSING_LISTED: usize = 20;

/// How long the oracle keeps reading after it has seen every expected
/// sequence number, to catch duplicates that arrive behind the originals.
pub const TRAILING_READ: Duration = Duration::from_secs(1);

/// One consumed record, for checks beyond counting (key → partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition the record was read from.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The record key, if any.
    pub key: Option<Vec<u8>>,
    /// The `seq` field of the JSON value.
    pub seq: u64,
}

/// What the oracle read from a topic, measured against `0..expected`.
#[derive(Debug, Clone, Default)]
pub struct SeqReport {
    /// The `expected_count` the report was made against.
    pub expected: u64,
    /// Distinct sequence numbers read (including any outside `0..expected`).
    pub seen_distinct: u64,
    /// Records read that carry a `seq` (duplicates included).
    pub total: u64,
    /// The first [`MISSING_LISTED`] numbers in `0..expected` never read.
    pub missing: Vec<u64>,
    /// How many numbers in `0..expected` were never read.
    pub missing_count: u64,
    /// `total - seen_distinct`: records read more than once, counted once per
    /// extra copy.
    pub duplicated: u64,
    /// The largest `seq` read, if any.
    pub max_seq: Option<u64>,
    /// Distinct numbers read that are `>= expected` — a generator or oracle
    /// bug if not expected by the test.
    pub out_of_range: u64,
    /// Records whose value is not a JSON object with an unsigned integer
    /// `seq`; they are not part of `total`.
    pub unparsable: u64,
    /// Consumer errors seen while reading (first few), for the failure
    /// message; the oracle retries through them.
    pub errors: Vec<String>,
    /// Whether reading stopped on the timeout rather than after seeing all
    /// expected numbers plus [`TRAILING_READ`].
    pub timed_out: bool,
    /// Every record read, in consumption order.
    pub records: Vec<Record>,
}

impl SeqReport {
    /// True if every number in `0..expected` was read at least once and
    /// nothing unparsable arrived: the at-least-once verdict.
    pub fn nothing_missing(&self) -> bool {
        self.missing_count == 0 && self.unparsable == 0
    }

    /// True if every number was read exactly once: the exactly-once verdict.
    pub fn exactly_once(&self) -> bool {
        self.nothing_missing() && self.duplicated == 0 && self.out_of_range == 0
    }

    /// Keys whose records were read from more than one partition, with those
    /// partitions. Empty when keyed partitioning held.
    pub fn keys_split_across_partitions(&self) -> Vec<(Vec<u8>, Vec<i32>)> {
        let mut by_key: BTreeMap<&[u8], Vec<i32>> = BTreeMap::new();
        for r in &self.records {
            if let Some(key) = &r.key {
                let parts = by_key.entry(key).or_default();
                if !parts.contains(&r.partition) {
                    parts.push(r.partition);
                }
            }
        }
        by_key
            .into_iter()
            .filter(|(_, parts)| parts.len() > 1)
            .map(|(k, mut parts)| {
                parts.sort_unstable();
                (k.to_vec(), parts)
            })
            .collect()
    }
}

impl fmt::Display for SeqReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {}, read {} records, {} distinct, missing {}",
            self.expected, self.total, self.seen_distinct, self.missing_count
        )?;
        if self.missing_count > 0 {
            write!(f, " {:?}", self.missing)?;
            if self.missing_count > self.missing.len() as u64 {
                write!(
                    f,
                    " and {} more",
                    self.missing_count - self.missing.len() as u64
                )?;
            }
        }
        write!(f, ", duplicated {}", self.duplicated)?;
        if let Some(max) = self.max_seq {
            write!(f, ", max seq {max}")?;
        }
        if self.out_of_range > 0 {
            write!(f, ", out of range {}", self.out_of_range)?;
        }
        if self.unparsable > 0 {
            write!(f, ", unparsable {}", self.unparsable)?;
        }
        if self.timed_out {
            write!(f, " (timed out)")?;
        }
        if !self.errors.is_empty() {
            write!(f, ", consumer errors: {:?}", self.errors)?;
        }
        Ok(())
    }
}

/// How many consumer errors a report keeps.
const ERRORS_KEPT: usize = 10;

/// A `read_committed` consumer assigned to every partition of `topic` from
/// the beginning, waiting (until `deadline`) for the topic to appear.
fn oracle_consumer(bootstrap: &str, topic: &str, deadline: Instant) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka refuses `assign` without a group.id, but with explicit
        // assignment and no commits the group is never joined; a unique name
        // keeps concurrent oracles from sharing anything all the same.
        .set("group.id", unique_group_id())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .set("client.id", "tributary-test-oracle")
        .create()
        .expect("oracle consumer");
    let partitions = wait_for_partitions(&consumer, topic, deadline);
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("Offset::Beginning is a valid offset");
    }
    consumer.assign(&tpl).expect("assign partitions");
    consumer
}

/// Reads every partition of `topic` from the beginning until all of
/// `0..expected_count` were seen (then [`TRAILING_READ`] more) or `timeout`
/// passed, and reports what was missing and duplicated.
///
/// Each record value must be a JSON object with an unsigned integer `seq`.
/// Waits (within `timeout`) for the topic to appear in metadata, so it can be
/// called while the producer is still starting.
///
/// # Panics
/// If the consumer cannot be created or the topic never appears.
pub fn consume_seqs(
    bootstrap: &str,
    topic: &str,
    expected_count: u64,
    timeout: Duration,
) -> SeqReport {
    consume_wanted(bootstrap, topic, Wanted::Below(expected_count), timeout)
}

/// [`consume_seqs`] for an arbitrary set of expected numbers: reading stops
/// once every number in `wanted` was read (plus [`TRAILING_READ`]);
/// `missing` lists numbers of `wanted` never read, and numbers read outside
/// it count as `out_of_range`.
///
/// # Panics
/// If the consumer cannot be created or the topic never appears.
pub fn consume_seq_set(
    bootstrap: &str,
    topic: &str,
    wanted: &std::collections::BTreeSet<u64>,
    timeout: Duration,
) -> SeqReport {
    consume_wanted(bootstrap, topic, Wanted::Set(wanted), timeout)
}

/// The sequence numbers a reading expects.
enum Wanted<'a> {
    Below(u64),
    Set(&'a std::collections::BTreeSet<u64>),
}

impl Wanted<'_> {
    fn count(&self) -> u64 {
        match self {
            Wanted::Below(n) => *n,
            Wanted::Set(s) => s.len() as u64,
        }
    }

    fn contains(&self, seq: u64) -> bool {
        match self {
            Wanted::Below(n) => seq < *n,
            Wanted::Set(s) => s.contains(&seq),
        }
    }
}

fn consume_wanted(
    bootstrap: &str,
    topic: &str,
    wanted: Wanted<'_>,
    timeout: Duration,
) -> SeqReport {
    let expected_count = wanted.count();
    let deadline = Instant::now() + timeout;
    let consumer = oracle_consumer(bootstrap, topic, deadline);

    let mut report = SeqReport {
        expected: expected_count,
        ..SeqReport::default()
    };
    // Counts per seq; a map keeps memory proportional to what was read even
    // when a bug produces huge out-of-range numbers.
    let mut counts: HashMap<u64, u32> = HashMap::new();
    let mut in_range_distinct = 0u64;
    let mut complete_at: Option<Instant> = None;

    loop {
        let now = Instant::now();
        if complete_at.is_some_and(|t| now >= t + TRAILING_READ) {
            break;
        }
        if now >= deadline {
            report.timed_out = complete_at.is_none();
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(100));
        match consumer.poll(wait) {
            None => {}
            Some(Err(e)) if report.errors.len() < ERRORS_KEPT => {
                report.errors.push(e.to_string());
            }
            Some(Err(_)) => {}
            Some(Ok(msg)) => {
                let Some(seq) = msg.payload().and_then(parse_seq) else {
                    report.unparsable += 1;
                    continue;
                };
                report.total += 1;
                report.max_seq = report.max_seq.max(Some(seq));
                let n = counts.entry(seq).or_insert(0);
                *n += 1;
                if *n == 1 && wanted.contains(seq) {
                    in_range_distinct += 1;
                }
                report.records.push(Record {
                    partition: msg.partition(),
                    offset: msg.offset(),
                    key: msg.key().map(<[u8]>::to_vec),
                    seq,
                });
                if complete_at.is_none() && in_range_distinct == expected_count {
                    complete_at = Some(Instant::now());
                }
            }
        }
        // Nothing expected at all: still read the trailing second, so a test
        // asserting "nothing was produced" sees stray records.
        if expected_count == 0 && complete_at.is_none() {
            complete_at = Some(Instant::now());
        }
    }

    report.seen_distinct = counts.len() as u64;
    report.out_of_range = report.seen_distinct - in_range_distinct;
    report.duplicated = report.total - report.seen_distinct;
    report.missing_count = expected_count - in_range_distinct;
    if report.missing_count > 0 {
        report.missing = match &wanted {
            Wanted::Below(n) => (0..*n)
                .filter(|s| !counts.contains_key(s))
                .take(MISSING_LISTED)
                .collect(),
            Wanted::Set(set) => set
                .iter()
                .copied()
                .filter(|s| !counts.contains_key(s))
                .take(MISSING_LISTED)
                .collect(),
        };
    }
    report
}

/// Reads every partition of `topic` from the beginning until `count`
/// records arrived (then [`TRAILING_READ`] more, to see extra ones) or
/// `timeout` passed, and returns each record's key and value parsed as JSON
/// (`Value::Null` for a value that is not JSON), ordered by partition and
/// offset. For tests that check what landed, not just how many.
///
/// # Panics
/// If the consumer cannot be created or the topic never appears.
pub fn consume_json(
    bootstrap: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<(Option<Vec<u8>>, serde_json::Value)> {
    let deadline = Instant::now() + timeout;
    let consumer = oracle_consumer(bootstrap, topic, deadline);
    let mut got: Vec<(i32, i64, Option<Vec<u8>>, serde_json::Value)> = Vec::new();
    let mut complete_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline || complete_at.is_some_and(|t| now >= t + TRAILING_READ) {
            break;
        }
        if let Some(Ok(msg)) = consumer.poll((deadline - now).min(Duration::from_millis(100))) {
            let value = msg
                .payload()
                .and_then(|p| serde_json::from_slice(p).ok())
                .unwrap_or(serde_json::Value::Null);
            got.push((
                msg.partition(),
                msg.offset(),
                msg.key().map(<[u8]>::to_vec),
                value,
            ));
            if got.len() >= count && complete_at.is_none() {
                complete_at = Some(Instant::now());
            }
        }
    }
    got.sort_by_key(|(p, o, _, _)| (*p, *o));
    got.into_iter().map(|(_, _, k, v)| (k, v)).collect()
}

/// A group id no other oracle in this or a concurrent test process uses.
fn unique_group_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("tributary-test-oracle-{}-{n}", std::process::id())
}

/// The `seq` field of a JSON object value.
fn parse_seq(payload: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value.get("seq")?.as_u64()
}

/// Polls metadata until `topic` exists with at least one partition.
fn wait_for_partitions(consumer: &BaseConsumer, topic: &str, deadline: Instant) -> Vec<i32> {
    loop {
        let last = match consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                Some(t) => match t.error() {
                    None if !t.partitions().is_empty() => {
                        return t.partitions().iter().map(|p| p.id()).collect();
                    }
                    None => "topic has no partitions".to_owned(),
                    Some(e) => format!("topic error {e:?}"),
                },
                None => "topic absent from metadata".to_owned(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "oracle: topic {topic} never appeared: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Counts delivery failures of [`produce_seqs`].
struct DeliveryCounter {
    failed: std::sync::atomic::AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Produces one record per item of `seqs` to `topic` with a plain
/// (non-idempotent, non-transactional) producer, independent of the daemon:
/// value `{"seq": n}`, key `k<n % 10>`. Used to test the oracle and to
/// pre-fill topics.
///
/// # Panics
/// If any record is not delivered within 30 s.
pub fn produce_seqs(bootstrap: &str, topic: &str, seqs: impl IntoIterator<Item = u64>) {
    let producer: BaseProducer<DeliveryCounter> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "tributary-test-producer")
        .set("message.timeout.ms", "30000")
        .create_with_context(DeliveryCounter {
            failed: 0.into(),
            first_error: std::sync::Mutex::new(None),
        })
        .expect("test producer");
    for seq in seqs {
        let key = format!("k{}", seq % 10);
        let value = serde_json::json!({ "seq": seq }).to_string();
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        // A full local queue is back-pressure, not failure: serve delivery
        // reports and try again.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(50));
                    record = r;
                }
                Err((e, _)) => panic!("cannot enqueue seq {seq}: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("test producer flushes within 30 s");
    let ctx = producer.context();
    let failed = ctx.failed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        failed,
        0,
        "test producer: {failed} records not delivered, first error: {:?}",
        ctx.first_error.lock().unwrap_or_else(|p| p.into_inner())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_read_from_json_objects_only() {
        assert_eq!(parse_seq(br#"{"seq": 42, "x": "y"}"#), Some(42));
        assert_eq!(parse_seq(br#"{"seq": -1}"#), None);
        assert_eq!(parse_seq(br#"[1]"#), None);
        assert_eq!(parse_seq(b"not json"), None);
    }

    #[test]
    fn split_keys_are_reported() {
        let rec = |partition, key: &[u8]| Record {
            partition,
            offset: 0,
            key: Some(key.to_vec()),
            seq: 0,
        };
        let report = SeqReport {
            records: vec![rec(0, b"a"), rec(1, b"b"), rec(2, b"a"), rec(1, b"b")],
            ..SeqReport::default()
        };
        assert_eq!(
            report.keys_split_across_partitions(),
            vec![(b"a".to_vec(), vec![0, 2])]
        );
    }
}
