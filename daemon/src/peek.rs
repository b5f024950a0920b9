//! `tributary peek TOPIC`: the last or the next records of a topic with
//! their partition, offset, timestamp, key, headers and value, Avro decoded
//! through the schema registry, so the records the daemon wrote can be seen
//! without another tool.
//!
//! Peek reads with a consumer that belongs to no group: partitions are
//! assigned by hand and nothing is committed, so it never moves a group's
//! offsets nor takes partitions away from a running consumer.
//!
//! The embedded broker lives inside the running daemon on a port chosen at
//! start-up; the daemon writes it to its state directory
//! ([`producer::ADDRESS_FILE`]) and peek reads it from there.

mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{KafkaConfig, SchemaRegistryConfig};
use crate::producer::{self, KafkaContext};
use crate::registry::{RegistryError, SchemaRegistry};

pub use render::Format;

/// Why peek could not show the records.
#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    /// The configuration says `embedded` and no daemon announced its broker.
    #[error(
        "no running daemon's embedded broker is announced in {dir}: peek reads the broker of a \
         running `tributary run` with the same configuration (or pass --bootstrap-servers)"
    )]
    NotRunning {
        /// The state directory (`[offsets] dir`).
        dir: PathBuf,
    },
    /// The announcement was left behind by a daemon that is gone.
    #[error(
        "the daemon (pid {pid}) that announced its embedded broker in {path} is not running; \
         the embedded broker lives only as long as the daemon"
    )]
    Stale {
        /// The process that wrote it.
        pid: u32,
        /// The file.
        path: PathBuf,
    },
    /// The announcement could not be read.
    #[error("cannot read the embedded broker's address from {path}: {source}")]
    AddressFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// librdkafka refused the client configuration.
    #[error("Kafka client configuration: {0}")]
    Client(#[source] KafkaError),
    /// The broker did not answer.
    #[error("cannot read the metadata of topic `{topic}` from {bootstrap}: {message}")]
    Metadata {
        /// The topic.
        topic: String,
        /// Where it was asked.
        bootstrap: String,
        /// The client's error.
        message: String,
    },
    /// No such topic.
    #[error("topic `{topic}` does not exist at {bootstrap}")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// Where it was looked for.
        bootstrap: String,
    },
    /// `--partition` names a partition the topic does not have.
    #[error("topic `{topic}` has no partition {partition}; its partitions are {known}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// The ones it has, e.g. `0 to 2`.
        known: String,
    },
    /// A partition's offsets could not be read.
    #[error("cannot read the offsets of `{topic}` partition {partition}: {message}")]
    Watermarks {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The client's error.
        message: String,
    },
    /// Reading failed.
    #[error("cannot read `{topic}`: {message}")]
    Consume {
        /// The topic.
        topic: String,
        /// The client's error.
        message: String,
    },
    /// `--next`: fewer new records than asked for arrived in time.
    #[error("{received} of {wanted} new record(s) of `{topic}` arrived within {seconds} s")]
    Timeout {
        /// The topic.
        topic: String,
        /// How many arrived (and were shown).
        received: usize,
        /// How many were asked for.
        wanted: usize,
        /// The `--timeout`.
        seconds: f64,
    },
    /// The schema registry client could not be set up.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Standard output failed (other than a closed pipe, which ends peek
    /// quietly).
    #[error("cannot write the records: {0}")]
    Output(#[source] std::io::Error),
}

/// Which records to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The newest `n` records across the chosen partitions, oldest first.
    Last(usize),
    /// The next `n` records written after peek started, as they arrive.
    Next(usize),
}

/// What `tributary peek` was asked for.
#[derive(Debug, Clone)]
pub struct PeekOptions {
    /// The topic.
    pub topic: String,
    /// The last or the next records.
    pub which: Which,
    /// Only this partition.
    pub partition: Option<i32>,
    /// How records are printed.
    pub format: Format,
    /// How long `--next` waits for its records, and `--last` for reaching
    /// the end of every partition.
    pub timeout: Duration,
}

/// Where the records are: the daemon's configuration, or parts of it.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// `[kafka]`: the brokers and `[kafka.options]` (TLS, SASL).
    pub kafka: &'a KafkaConfig,
    /// `[offsets] dir`, where a running daemon announces its embedded
    /// broker.
    pub state_dir: &'a Path,
    /// `[schema_registry]`, to decode Avro keys and values.
    pub schema_registry: Option<&'a SchemaRegistryConfig>,
    /// `--bootstrap-servers`, instead of the configured ones.
    pub bootstrap_servers: Option<&'a str>,
}

/// How long the broker may take to describe the topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one poll blocks before the deadline is checked again.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// Prints the records `options` asks for to `out`; returns how many were
/// printed. A reader that closes the pipe (`peek … | head`) ends it early
/// without an error.
pub fn run(
    connection: &Connection<'_>,
    options: &PeekOptions,
    out: &mut dyn Write,
) -> Result<usize, PeekError> {
    let bootstrap = bootstrap_servers(connection)?;
    let registry = connection
        .schema_registry
        .map(SchemaRegistry::new)
        .transpose()?;
    let consumer = consumer(connection.kafka, &bootstrap)?;
    let topic = options.topic.as_str();
    let partitions = partitions(&consumer, topic, &bootstrap, options.partition)?;
    let mut ends = BTreeMap::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|e| PeekError::Watermarks {
                topic: topic.to_owned(),
                partition,
                message: e.to_string(),
            })?;
        ends.insert(partition, (low, high));
    }
    let mut printer = render::Printer::new(options.format, registry, out);
    let deadline = Instant::now() + options.timeout;
    let shown = match options.which {
        Which::Last(n) => {
            let records = read_last(&consumer, topic, &ends, n, deadline)?;
            for record in &records {
                if !printer.print(record).map_err(PeekError::Output)? {
                    break;
                }
            }
            records.len()
        }
        Which::Next(n) => {
            let assignment = ends.iter().map(|(p, (_, high))| (*p, *high)).collect();
            let mut print = |record: &OwnedMessage| printer.print(record);
            match read_next(&consumer, topic, assignment, n, deadline, &mut print)? {
                NextEnd::Complete { shown } => shown,
                NextEnd::TimedOut { received } => {
                    return Err(PeekError::Timeout {
                        topic: topic.to_owned(),
                        received,
                        wanted: n,
                        seconds: options.timeout.as_secs_f64(),
                    });
                }
            }
        }
    };
    Ok(shown)
}

/// `--bootstrap-servers`, the configured brokers, or the address a running
/// daemon announced for its embedded broker.
fn bootstrap_servers(connection: &Connection<'_>) -> Result<String, PeekError> {
    if let Some(explicit) = connection.bootstrap_servers {
        return Ok(explicit.to_owned());
    }
    if !connection.kafka.is_embedded() {
        return Ok(connection.kafka.bootstrap_servers.clone());
    }
    let dir = connection.state_dir;
    match producer::announced_address(dir) {
        Ok(Some((address, pid))) if is_running(pid) => Ok(address),
        Ok(Some((_, pid))) => Err(PeekError::Stale {
            pid,
            path: dir.join(producer::ADDRESS_FILE),
        }),
        Ok(None) => Err(PeekError::NotRunning {
            dir: dir.to_path_buf(),
        }),
        Err(source) => Err(PeekError::AddressFile {
            path: dir.join(producer::ADDRESS_FILE),
            source,
        }),
    }
}

/// Whether process `pid` exists (signal 0 sends nothing, it only checks).
fn is_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The daemon's own librdkafka log routing, for a consumer.
#[derive(Default)]
struct PeekContext(KafkaContext);

impl ClientContext for PeekContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching the end of a partition is how `--last` knows it is done.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            self.0.error(error, reason);
        }
    }
}

impl ConsumerContext for PeekContext {}

/// A consumer with the daemon's connection and security settings, in no
/// group, committing nothing.
fn consumer(kafka: &KafkaConfig, bootstrap: &str) -> Result<BaseConsumer<PeekContext>, PeekError> {
    let mut client =
        crate::offsets::kafka::consumer_base(&producer::connection_config(kafka, bootstrap));
    if client.get("client.id").is_none() {
        client.set("client.id", "tributary-peek");
    }
    client
        // librdkafka assigns partitions only to a consumer with a group id;
        // this one never joins the group nor commits to it.
        .set("group.id", "tributary-peek")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // A topic that does not exist must stay so, not be created by
        // looking at it.
        .set("allow.auto.create.topics", "false")
        // An offset deleted by retention while peek starts: the oldest left.
        .set("auto.offset.reset", "earliest");
    client
        .create_with_context(PeekContext::default())
        .map_err(PeekError::Client)
}

/// The partitions to read: all of the topic's, or the one asked for.
fn partitions(
    consumer: &BaseConsumer<PeekContext>,
    topic: &str,
    bootstrap: &str,
    only: Option<i32>,
) -> Result<Vec<i32>, PeekError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| {
            // Serves the client's queued error events, which log why the
            // brokers did not answer (refused, TLS, authentication).
            let _ = consumer.poll(Duration::ZERO);
            PeekError::Metadata {
                topic: topic.to_owned(),
                bootstrap: bootstrap.to_owned(),
                message: e.to_string(),
            }
        })?;
    let unknown = || PeekError::UnknownTopic {
        topic: topic.to_owned(),
        bootstrap: bootstrap.to_owned(),
    };
    let described = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(unknown)?;
    if let Some(error) = described.error() {
        let code = RDKafkaErrorCode::from(error);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Err(unknown());
        }
        return Err(PeekError::Metadata {
            topic: topic.to_owned(),
            bootstrap: bootstrap.to_owned(),
            message: code.to_string(),
        });
    }
    let mut all: Vec<i32> = described.partitions().iter().map(|p| p.id()).collect();
    all.sort_unstable();
    if all.is_empty() {
        return Err(unknown());
    }
    match only {
        None => Ok(all),
        Some(p) if all.contains(&p) => Ok(vec![p]),
        Some(partition) => Err(PeekError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
            known: match all.as_slice() {
                [one] => one.to_string(),
                [first, .., last] => format!("{first} to {last}"),
                [] => "none".to_owned(),
            },
        }),
    }
}

/// The newest `n` records across `ends` (partition → low and high
/// watermark), oldest first: each partition is read from `n` before its end,
/// the union is ordered by timestamp (then partition and offset) and its
/// last `n` kept.
fn read_last(
    consumer: &BaseConsumer<PeekContext>,
    topic: &str,
    ends: &BTreeMap<i32, (i64, i64)>,
    n: usize,
    deadline: Instant,
) -> Result<Vec<OwnedMessage>, PeekError> {
    let back = i64::try_from(n).unwrap_or(i64::MAX);
    let mut assignment = TopicPartitionList::new();
    let mut pending = BTreeSet::new();
    for (&partition, &(low, high)) in ends {
        if high > low {
            let start = low.max(high.saturating_sub(back));
            add(&mut assignment, topic, partition, start)?;
            pending.insert(partition);
        }
    }
    let mut records = Vec::new();
    if pending.is_empty() || n == 0 {
        return Ok(records);
    }
    assign(consumer, topic, &assignment)?;
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                topic,
                partitions = ?pending,
                "Some partitions did not reach their end in time; showing what was read."
            );
            break;
        }
        match consumer.poll(left.min(POLL_SLICE)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
            }
            Some(Err(e)) => return Err(consume_error(topic, &e)),
            Some(Ok(message)) => {
                let high = ends.get(&message.partition()).map_or(i64::MAX, |e| e.1);
                if message.offset() < high {
                    records.push(message.detach());
                }
                if message.offset() >= high - 1 {
                    pending.remove(&message.partition());
                }
            }
        }
    }
    records.sort_by_key(|r| (r.timestamp().to_millis(), r.partition(), r.offset()));
    let skip = records.len().saturating_sub(n);
    records.drain(..skip);
    Ok(records)
}

/// How `--next` ended.
#[derive(Debug, PartialEq, Eq)]
enum NextEnd {
    /// Every record asked for was shown, or the reader closed the pipe.
    Complete {
        /// How many were shown.
        shown: usize,
    },
    /// The deadline passed first.
    TimedOut {
        /// How many arrived (and were shown) before it.
        received: usize,
    },
}

/// Hands the next `n` records written after `assignment` (partition →
/// offset to start at) to `print` as they arrive, until `print` says stop
/// (`Ok(false)`) or `deadline` passes.
fn read_next(
    consumer: &BaseConsumer<PeekContext>,
    topic: &str,
    assignment: BTreeMap<i32, i64>,
    n: usize,
    deadline: Instant,
    print: &mut dyn FnMut(&OwnedMessage) -> std::io::Result<bool>,
) -> Result<NextEnd, PeekError> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in assignment {
        add(&mut list, topic, partition, offset)?;
    }
    assign(consumer, topic, &list)?;
    let mut received = 0;
    while received < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(NextEnd::TimedOut { received });
        }
        match consumer.poll(left.min(POLL_SLICE)) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(consume_error(topic, &e)),
            Some(Ok(message)) => {
                received += 1;
                if !print(&message.detach()).map_err(PeekError::Output)? {
                    break;
                }
            }
        }
    }
    Ok(NextEnd::Complete { shown: received })
}

fn add(
    list: &mut TopicPartitionList,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), PeekError> {
    list.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| consume_error(topic, &e))
}

fn assign(
    consumer: &BaseConsumer<PeekContext>,
    topic: &str,
    list: &TopicPartitionList,
) -> Result<(), PeekError> {
    consumer.assign(list).map_err(|e| consume_error(topic, &e))
}

fn consume_error(topic: &str, error: &KafkaError) -> PeekError {
    PeekError::Consume {
        topic: topic.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection<'a>(kafka: &'a KafkaConfig, dir: &'a Path) -> Connection<'a> {
        Connection {
            kafka,
            state_dir: dir,
            schema_registry: None,
            bootstrap_servers: None,
        }
    }

    #[test]
    fn an_embedded_broker_is_found_only_while_its_daemon_runs() {
        let dir = std::env::temp_dir().join(format!("tributary-peek-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kafka = KafkaConfig::default();
        let err = bootstrap_servers(&connection(&kafka, &dir)).unwrap_err();
        assert!(matches!(err, PeekError::NotRunning { .. }), "{err}");
        assert!(err.to_string().contains("--bootstrap-servers"), "{err}");

        let announcement = producer::Announcement::write(&dir, "127.0.0.1:40999").unwrap();
        assert_eq!(
            bootstrap_servers(&connection(&kafka, &dir)).unwrap(),
            "127.0.0.1:40999"
        );
        drop(announcement);

        // Left behind by a daemon that was killed: no process has pid
        // i32::MAX (the kernel's pid_max is at most 2^22).
        std::fs::write(
            dir.join(producer::ADDRESS_FILE),
            format!("127.0.0.1:40999\n{}\n", i32::MAX),
        )
        .unwrap();
        let err = bootstrap_servers(&connection(&kafka, &dir)).unwrap_err();
        assert!(matches!(err, PeekError::Stale { .. }), "{err}");
        assert!(err.to_string().contains("is not running"), "{err}");

        // An explicit address wins, and a configured cluster needs no file.
        let mut explicit = connection(&kafka, &dir);
        explicit.bootstrap_servers = Some("kafka:9092");
        assert_eq!(bootstrap_servers(&explicit).unwrap(), "kafka:9092");
        let cluster = KafkaConfig {
            bootstrap_servers: "b1:9092,b2:9092".into(),
            ..KafkaConfig::default()
        };
        assert_eq!(
            bootstrap_servers(&connection(&cluster, &dir)).unwrap(),
            "b1:9092,b2:9092"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
