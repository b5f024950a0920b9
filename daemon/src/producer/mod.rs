//! The Kafka side: one idempotent producer shared by all sources, topic
//! creation, and the embedded broker.

mod embedded;

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

pub use embedded::EmbeddedBroker;

use crate::config::KafkaConfig;
use crate::pipeline;

/// Errors of the Kafka side.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The embedded broker could not start.
    #[error("embedded broker: {0}")]
    Embedded(String),
    /// librdkafka refused the configuration.
    #[error("Kafka client configuration: {0}")]
    Client(#[source] KafkaError),
    /// A topic could not be created or inspected.
    #[error("cannot create topic `{topic}`: {message}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's or client's message.
        message: String,
    },
}

/// Routes librdkafka's own log lines and errors into `tracing`, and
/// delivery reports to their batches.
#[derive(Debug, Default, Clone, Copy)]
pub struct KafkaContext;

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{message}");
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Transport errors repeat while a broker is away; they are logged at
        // warn so a flapping broker does not look like data loss. Deliveries
        // that really fail surface through their delivery reports.
        tracing::warn!(target: "librdkafka", error = %error, "Kafka client error: {reason}");
    }
}

impl ProducerContext for KafkaContext {
    /// A `BatchHandle::opaque` of the record's batch.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: usize) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| e);
        // SAFETY: every record is sent with its batch's opaque (see
        // `pipeline::source`), and librdkafka reports each record once.
        unsafe { pipeline::record_done(batch, result) };
    }
}

/// The producer every source sends through: librdkafka's queue, each record
/// tagged with its batch; [`Kafka`] runs the thread that serves delivery
/// reports.
pub type Producer = Arc<BaseProducer<KafkaContext>>;

/// Serves delivery reports until stopped. Unlike rdkafka's
/// `ThreadedProducer`, it is woken at once on shutdown (`rd_kafka_yield`)
/// instead of finishing a 100 ms poll.
#[derive(Debug)]
struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    fn start(producer: Producer) -> Result<Self, ProducerError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-delivery".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    producer.poll(Duration::from_millis(100));
                }
            })
            .map_err(|e| {
                ProducerError::Embedded(format!("cannot start the delivery thread: {e}"))
            })?;
        Ok(Poller {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self, producer: &Producer) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: the handle is valid while `producer` lives; yield only
        // makes a blocked poll return early.
        unsafe { rdkafka::bindings::rd_kafka_yield(producer.client().native_ptr()) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Settings the daemon relies on; users cannot override them (the config
/// refuses these keys).
const MANAGED: &[(&str, &str)] = &[
    // Retries never reorder or duplicate within a partition, so "delivered"
    // in a delivery report means exactly once in the log.
    ("enable.idempotence", "true"),
    ("acks", "all"),
];

/// Defaults chosen for throughput with bounded memory; users may override.
const DEFAULTS: &[(&str, &str)] = &[
    ("client.id", "tributary"),
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    // librdkafka's own default queue is 1 GiB; 64 MiB and 100k records keep
    // the daemon's footprint small while still filling large batches. When
    // the queue is full, sources wait (backpressure) instead of buffering.
    ("queue.buffering.max.kbytes", "65536"),
    ("queue.buffering.max.messages", "100000"),
];

/// A connection to Kafka: the producer and, in embedded mode, the broker.
pub struct Kafka {
    producer: Producer,
    poller: Poller,
    /// For the admin client, created only when a topic must be created.
    admin_config: ClientConfig,
    bootstrap: String,
    // Dropped after the producer (field order), so the producer can flush.
    embedded: Option<EmbeddedBroker>,
    topic_partitions: i32,
    topic_replication_factor: i32,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("bootstrap", &self.bootstrap)
            .field("embedded", &self.embedded.is_some())
            .finish_non_exhaustive()
    }
}

impl Kafka {
    /// Starts the embedded broker when configured, and creates the producer.
    pub fn connect(config: &KafkaConfig) -> Result<Self, ProducerError> {
        let embedded = if config.is_embedded() {
            let broker = EmbeddedBroker::start()?;
            tracing::info!(
                bootstrap_servers = broker.bootstrap_servers(),
                "Embedded broker started; read it with: kcat -C -b {} -t <topic>",
                broker.bootstrap_servers()
            );
            Some(broker)
        } else {
            None
        };
        let bootstrap = embedded.as_ref().map_or_else(
            || config.bootstrap_servers.clone(),
            |b| b.bootstrap_servers().to_owned(),
        );
        let mut client = ClientConfig::new();
        for (k, v) in DEFAULTS {
            client.set(*k, *v);
        }
        for (k, v) in &config.options {
            client.set(k, v);
        }
        for (k, v) in MANAGED {
            client.set(*k, *v);
        }
        client.set("bootstrap.servers", &bootstrap);
        let producer: Producer = Arc::new(
            client
                .create_with_context(KafkaContext)
                .map_err(ProducerError::Client)?,
        );
        let poller = Poller::start(producer.clone())?;
        // Bring up the producer's broker connection now: the idempotent
        // producer asks for its producer id as soon as it exists, and if no
        // broker connection is up at that moment librdkafka retries only
        // after 500 ms. A failure here is not fatal (the broker may come
        // later); sources wait for it anyway.
        let _ = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(1));
        let mut admin_config = ClientConfig::new();
        admin_config.set("bootstrap.servers", &bootstrap);
        for (k, v) in &config.options {
            // Security and connection settings apply to the admin client too;
            // producer-only keys are harmless there (librdkafka ignores them).
            admin_config.set(k, v);
        }
        Ok(Kafka {
            producer,
            poller,
            admin_config,
            bootstrap,
            embedded,
            topic_partitions: config.topic_partitions,
            topic_replication_factor: config.topic_replication_factor,
        })
    }

    /// The producer, to clone into sources.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The bootstrap servers in use (the embedded broker's address in
    /// embedded mode).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Makes sure `topic` exists, creating it with the configured partitions
    /// when it does not, as scripts do with an admin client today (brokers
    /// often run with `auto.create.topics.enable=false`).
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), ProducerError> {
        if let Some(broker) = &self.embedded {
            return broker.create_topic(topic, self.topic_partitions);
        }
        if self.topic_exists(topic).await? {
            return Ok(());
        }
        let new = NewTopic::new(
            topic,
            self.topic_partitions,
            TopicReplication::Fixed(self.topic_replication_factor),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let admin: AdminClient<DefaultClientContext> =
            self.admin_config.create().map_err(ProducerError::Client)?;
        let results =
            admin
                .create_topics([&new], &opts)
                .await
                .map_err(|e| ProducerError::CreateTopic {
                    topic: topic.to_owned(),
                    message: e.to_string(),
                })?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(ProducerError::CreateTopic {
                        topic: topic.to_owned(),
                        message: code.to_string(),
                    });
                }
            }
        }
        tracing::info!(
            topic,
            partitions = self.topic_partitions,
            replication_factor = self.topic_replication_factor,
            "Created topic."
        );
        Ok(())
    }

    async fn topic_exists(&self, topic: &str) -> Result<bool, ProducerError> {
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .map(|m| {
                    m.topics().iter().any(|t| {
                        t.name() == name && t.error().is_none() && !t.partitions().is_empty()
                    })
                })
        })
        .await
        .map_err(|e| ProducerError::CreateTopic {
            topic: topic.to_owned(),
            message: e.to_string(),
        })?;
        metadata.map_err(|e| ProducerError::CreateTopic {
            topic: topic.to_owned(),
            message: format!("cannot read metadata: {e}"),
        })
    }

    /// Waits up to `timeout` for every queued record to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "Some records were not delivered before shutdown; their offsets were not committed.");
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.poller.stop(&self.producer);
    }
}
