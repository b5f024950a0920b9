//! The Kafka side: one idempotent producer shared by all sources, topic
//! creation, and the embedded broker.

mod batch;
mod client_log;
mod delivery;
mod embedded;
mod exit;

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

pub use batch::{Records, TopicSender, Unsent};
pub use client_log::closing;
pub(crate) use delivery::{BatchAck, BatchHandle, Completion, Outcome};
pub use delivery::{NO_BATCH, record_done};
pub use embedded::{ADDRESS_FILE, Announcement, EmbeddedBroker, announced_address};
pub use exit::{clients_closed, exit_now};

use crate::config::KafkaConfig;
use crate::metrics::error_class;

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
    /// An exactly-once source's transactions could not be initialised.
    #[error("cannot initialise transactions of `{id}`: {message}")]
    Transactions {
        /// The `transactional.id`.
        id: String,
        /// Why.
        message: String,
    },
}

/// `transaction.timeout.ms` of exactly-once producers: how long the broker
/// waits before aborting a transaction whose producer went silent (a
/// `kill -9`); `read_committed` consumers of its partitions wait that long
/// at most. Above the longest `transaction_interval_ms` plus a commit.
pub const TRANSACTION_TIMEOUT_MS: &str = "60000";
/// How long `init_transactions`, `commit_transaction` and
/// `abort_transaction` may take.
pub const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `error` means the producer instance itself is unusable, so every
/// later send on it would fail the same way: the broker fenced or forgot its
/// producer id, or librdkafka raised a fatal error.
pub fn breaks_the_producer(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::ProducerFenced
                | Code::InvalidProducerEpoch
                | Code::UnknownProducerId
                | Code::OutOfOrderSequenceNumber
                | Code::InvalidProducerIdMapping
                | Code::Fatal
        )
    )
}

/// The error class of a Kafka produce or delivery error.
pub fn kafka_error_class(error: &KafkaError) -> &'static str {
    use RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(Code::MessageTimedOut | Code::RequestTimedOut) => error_class::TIMED_OUT,
        Some(Code::MessageSizeTooLarge | Code::InvalidMessageSize) => error_class::TOO_LARGE,
        Some(
            Code::TopicAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::SaslAuthenticationFailed,
        ) => error_class::AUTHORIZATION,
        Some(Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::UnknownPartition) => {
            error_class::UNKNOWN_TOPIC
        }
        _ if breaks_the_producer(error) => error_class::PRODUCER_STATE,
        _ => error_class::KAFKA_OTHER,
    }
}

/// How long a broker error stays the explanation of an unreachable Kafka.
const CLIENT_ERROR_MEMORY: Duration = Duration::from_secs(60);

/// The latest error librdkafka reported about a broker connection. Kept so
/// that readiness and source errors say *why* Kafka is unreachable (a
/// certificate that does not verify, a wrong password, a refused
/// connection, a port that speaks another protocol) and name the broker,
/// where a metadata timeout alone says only that it is.
#[derive(Debug, Default)]
pub struct ClientErrors {
    last: std::sync::Mutex<Option<ClientError>>,
}

#[derive(Debug)]
struct ClientError {
    message: String,
    /// When it was last reported.
    at: std::time::Instant,
}

impl ClientErrors {
    /// The latest broker error of the last minute, as librdkafka worded it
    /// (it starts with the broker's address).
    pub fn recent(&self) -> Option<String> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref()
            .filter(|e| e.at.elapsed() < CLIENT_ERROR_MEMORY)
            .map(|e| e.message.clone())
    }

    /// `what`, followed by the latest broker error if there is one.
    pub fn explain(&self, what: impl std::fmt::Display) -> String {
        match self.recent() {
            Some(cause) => format!("{what}; last broker error: {cause}"),
            None => what.to_string(),
        }
    }

    /// Records `message` as the latest broker error.
    fn record(&self, message: &str) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = Some(ClientError {
            message: message.to_owned(),
            at: std::time::Instant::now(),
        });
    }
}

/// What an operator should check for a class of broker errors.
fn hint(code: Option<RDKafkaErrorCode>) -> Option<&'static str> {
    match code? {
        RDKafkaErrorCode::Authentication => Some(
            "check `sasl.mechanism`, `sasl.username` and `sasl.password` in [kafka.options] against the broker's users",
        ),
        RDKafkaErrorCode::SSL => Some(
            "check `ssl.ca.location` in [kafka.options] (the CA that signed the broker's certificate) and that the certificate names the host in `bootstrap_servers`",
        ),
        _ => None,
    }
}

/// librdkafka's wording of a broker error, with what it leaves unsaid: a
/// peer that answers the first request with a "response size" in the
/// hundreds of megabytes is speaking another protocol (the size is the
/// first four bytes of its answer, `HTTP` = 1213486160), and raising
/// `receive.message.max.bytes` as librdkafka suggests would not help.
fn annotate(reason: &str) -> std::borrow::Cow<'_, str> {
    if reason.contains("Invalid response size") && reason.contains("APIVERSION_QUERY") {
        format!("{reason}; this address does not answer like a Kafka broker (another protocol on that port?)").into()
    } else {
        reason.into()
    }
}

/// The largest record the source's topic takes, and which setting says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLimit {
    /// Bytes of key, value and headers plus librdkafka's per-record
    /// overhead.
    pub bytes: usize,
    /// The setting behind it, for error messages.
    pub setting: String,
}

impl RecordLimit {
    /// No limit checked here: until a run has read the topic's, librdkafka
    /// alone enforces one.
    pub fn unchecked() -> RecordLimit {
        RecordLimit {
            bytes: usize::MAX,
            setting: "not read yet".to_owned(),
        }
    }
}

impl std::fmt::Display for RecordLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes ({})", self.bytes, self.setting)
    }
}

/// Routes librdkafka's own log lines and errors into `tracing`, and
/// delivery reports to their batches.
#[derive(Debug, Default, Clone)]
pub struct KafkaContext {
    errors: Arc<ClientErrors>,
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let loud = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        // A connection failure (`FAIL`) is also raised as an error event,
        // which `error` below logs once with what to check; a closing
        // daemon's own connections are no fault.
        if loud && (fac == "FAIL" || client_log::is_closing()) {
            tracing::debug!(target: "librdkafka", facility = fac, "{message}");
            return;
        }
        let held_back = if loud {
            match client_log::admit(message) {
                Some(n) => n,
                None => {
                    tracing::debug!(target: "librdkafka", facility = fac, "(again) {message}");
                    return;
                }
            }
        } else {
            0
        };
        let message = &client_log::with_repeats(message, held_back);
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
        let reason = &annotate(reason);
        if client_log::is_closing() {
            tracing::debug!(target: "librdkafka", error = %error, "Kafka client error while closing: {reason}");
            return;
        }
        let code = error.rdkafka_error_code();
        // "1/1 brokers are down" follows the error that took the last broker
        // down and says less; the earlier one stays the explanation.
        if code != Some(RDKafkaErrorCode::AllBrokersDown) {
            self.errors.record(reason);
        }
        // One line per event, however many clients and retries report it.
        let Some(held_back) = client_log::admit(reason) else {
            tracing::debug!(target: "librdkafka", error = %error, "Kafka client error (again): {reason}");
            return;
        };
        let reason = &client_log::with_repeats(reason, held_back);
        if let Some(hint) = hint(code) {
            // A certificate or a password does not fix itself: say so once a
            // minute at error level, with what to check.
            tracing::error!(target: "librdkafka", error = %error, "Kafka client error: {reason}; {hint}");
        } else {
            // Transport errors repeat while a broker is away; they are logged
            // at warn so a flapping broker does not look like data loss.
            // Deliveries that really fail surface through delivery reports.
            tracing::warn!(target: "librdkafka", error = %error, "Kafka client error: {reason}");
        }
    }

    /// librdkafka's statistics (every `statistics.interval.ms`): queue
    /// depth, broker round-trip times, retries and errors for `/metrics`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        crate::metrics::global().kafka_statistics(&statistics);
    }
}

impl ProducerContext for KafkaContext {
    /// A `BatchHandle::opaque` of the record's batch.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: usize) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| e);
        // SAFETY: every record is sent with its batch's opaque (see
        // `pipeline::source`), and librdkafka reports each record once.
        unsafe { delivery::record_done(batch, result) };
    }
}

/// A producer together with the thread serving its delivery reports. The
/// producer every source sends through; each record is tagged with its
/// batch. [`Kafka`] replaces it when librdkafka declares it unusable.
pub struct ProducerHandle {
    producer: Arc<BaseProducer<KafkaContext>>,
    /// The configured `partitioner`, if any (see [`TopicSender`]).
    partitioner: Option<String>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
    /// Signalled by the poller as it exits. In a mutex only to make the
    /// handle `Sync`; it is used once, from `drop`.
    exited: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

/// What sources hold: the current producer.
pub type Producer = Arc<ProducerHandle>;

/// How long one delivery-report poll may block. rdkafka's poll loop spins
/// through the last fraction of a millisecond of every window (its remaining
/// timeout truncates to 0 ms), so long windows keep an idle daemon idle.
const POLL_WINDOW: Duration = Duration::from_secs(5);

impl ProducerHandle {
    fn start(client: &ClientConfig, context: KafkaContext) -> Result<Arc<Self>, ProducerError> {
        let producer: Arc<BaseProducer<KafkaContext>> = Arc::new(
            client
                .create_with_context(context)
                .map_err(ProducerError::Client)?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (exited_tx, exited) = std::sync::mpsc::channel();
        let (flag, polled) = (stop.clone(), producer.clone());
        let poller = std::thread::Builder::new()
            .name("kafka-delivery".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    polled.poll(POLL_WINDOW);
                }
                let _ = exited_tx.send(());
            })
            .map_err(|e| {
                ProducerError::Embedded(format!("cannot start the delivery thread: {e}"))
            })?;
        Ok(Arc::new(ProducerHandle {
            producer,
            partitioner: client.get("partitioner").map(str::to_owned),
            stop,
            poller: Some(poller),
            exited: std::sync::Mutex::new(exited),
        }))
    }
}

impl ProducerHandle {
    /// The configured librdkafka `partitioner`, if any.
    pub fn partitioner(&self) -> Option<&str> {
        self.partitioner.as_deref()
    }
}

impl std::ops::Deref for ProducerHandle {
    type Target = BaseProducer<KafkaContext>;

    fn deref(&self) -> &Self::Target {
        &self.producer
    }
}

impl std::fmt::Debug for ProducerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerHandle").finish_non_exhaustive()
    }
}

impl Drop for ProducerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: the handle is valid while `producer` lives; yield makes a
        // blocked queue poll return at once.
        unsafe { rdkafka::bindings::rd_kafka_yield(self.producer.client().native_ptr()) };
        if let Some(thread) = self.poller.take() {
            let exited = self
                .exited
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // rdkafka's poll returns only at the end of its window, so a
            // poller still inside one is not waited for: every source has
            // drained and flushed by now. It finishes the window on its own
            // and then drops its reference to the producer (or the process
            // exits first); waiting here once cost every stop 50 ms.
            if exited.try_recv().is_ok() {
                let _ = thread.join();
            }
        }
    }
}

/// The SASL mechanisms librdkafka implements; it checks `sasl.mechanism`
/// only when a client starts.
const SASL_MECHANISMS: &[&str] = &[
    "GSSAPI",
    "PLAIN",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "OAUTHBEARER",
];

/// Whether librdkafka's wording of a problem with `property` may quote a
/// secret value.
fn is_secret(property: &str) -> bool {
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|word| property.contains(word))
}

/// Problems librdkafka would otherwise find only when the client starts: an
/// unknown property, a value it refuses, a SASL mechanism it lacks. Returns
/// `(property, message)` pairs; a message never quotes a secret value.
/// Needs no broker, so `validate` and `run` report these as configuration
/// errors before anything connects.
pub fn check_options(config: &KafkaConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (property, value) in &config.options {
        let mut single = ClientConfig::new();
        single.set(property, value);
        if let Err(e) = single.create_native_config() {
            let message = match e {
                KafkaError::ClientConfig(_, description, _, _) if !is_secret(property) => {
                    format!("librdkafka refuses it: {description}")
                }
                _ => "librdkafka refuses this property or its value".to_owned(),
            };
            problems.push((property.clone(), message));
        }
    }
    if let Some(mechanism) = config.options.get("sasl.mechanism")
        && !SASL_MECHANISMS.contains(&mechanism.as_str())
    {
        problems.push((
            "sasl.mechanism".to_owned(),
            format!(
                "`{mechanism}` is not a SASL mechanism librdkafka supports; expected one of: {}",
                SASL_MECHANISMS.join(", ")
            ),
        ));
    }
    problems
}

/// Settings the daemon relies on; users cannot override them (the config
/// refuses these keys).
const MANAGED: &[(&str, &str)] = &[
    // Retries never reorder or duplicate within a partition, so "delivered"
    // in a delivery report means exactly once in the log.
    ("enable.idempotence", "true"),
    ("acks", "all"),
];

/// What `kafka.insecure_skip_tls_verify` sets: no certificate check, no
/// host-name check.
const INSECURE_TLS: &[(&str, &str)] = &[
    ("enable.ssl.certificate.verification", "false"),
    ("ssl.endpoint.identification.algorithm", "none"),
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
    // Queue depth, broker round-trip times and retries for `/metrics`.
    ("statistics.interval.ms", "5000"),
    // librdkafka connects to a broker learned from metadata (the partition
    // leaders) at most every half `reconnect.backoff.ms`; at its default of
    // 100 ms every start and restart waited 50 ms before its first record.
    // Reconnects after a failure still back off exponentially up to
    // `reconnect.backoff.max.ms`.
    ("reconnect.backoff.ms", "20"),
];

/// The settings every client of the cluster shares: `bootstrap`, then
/// `[kafka.options]` (security and connection; the producer-only keys among
/// them are harmless elsewhere, librdkafka ignores them) and what
/// `insecure_skip_tls_verify` turns off. For the admin client, the offset
/// store and `tributary peek`.
pub fn connection_config(config: &KafkaConfig, bootstrap: &str) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap);
    for (k, v) in &config.options {
        client.set(k, v);
    }
    if config.insecure_skip_tls_verify {
        for (k, v) in INSECURE_TLS {
            client.set(*k, *v);
        }
    }
    client
}

/// A connection to Kafka: the producer and, in embedded mode, the broker.
pub struct Kafka {
    /// Put in front of a source's name to make its `transactional.id`.
    transactional_id_prefix: String,
    /// The current producer; replaced after a fatal error.
    producer: std::sync::Mutex<Producer>,
    /// The producer's settings, to create a replacement.
    producer_config: ClientConfig,
    /// Shared by every producer this connection creates.
    context: KafkaContext,
    /// For the admin client, created only when a topic must be created.
    admin_config: ClientConfig,
    bootstrap: String,
    // Dropped after the producer (field order), so the producer can flush.
    embedded: Option<EmbeddedBroker>,
    topic_partitions: i32,
    topic_replication_factor: i32,
    /// The record limit of each topic a source sends to, once known.
    topic_limits: std::sync::Mutex<std::collections::HashMap<String, SharedLimit>>,
}

/// A topic's [`RecordLimit`], shared by the sources that send to it and
/// updated when the broker's answer arrives.
#[derive(Debug, Clone)]
pub struct SharedLimit(Arc<std::sync::RwLock<RecordLimit>>);

impl SharedLimit {
    /// A limit starting at `limit`.
    pub fn new(limit: RecordLimit) -> SharedLimit {
        SharedLimit(Arc::new(std::sync::RwLock::new(limit)))
    }

    /// The limit now.
    pub fn get(&self) -> RecordLimit {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, limit: RecordLimit) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = limit;
    }
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
                "Embedded broker started; see its records with `tributary peek <topic> --config <file>`, or any Kafka client at {}.",
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
        let insecure: &[(&str, &str)] = if config.insecure_skip_tls_verify {
            INSECURE_TLS
        } else {
            &[]
        };
        if config.insecure_skip_tls_verify {
            tracing::warn!(
                "TLS certificate and host-name verification are off (kafka.insecure_skip_tls_verify): anyone on the network path to the brokers can read and change records."
            );
        }
        for (k, v) in insecure {
            client.set(*k, *v);
        }
        if config.options.iter().any(|(k, _)| k == "debug") {
            // The rdkafka crate drops librdkafka's debug lines unless the
            // client's log level admits them; someone who sets `debug`
            // wants to read them (at `RUST_LOG=librdkafka=debug`).
            client.set_log_level(RDKafkaLogLevel::Debug);
        }
        let context = KafkaContext::default();
        let producer = ProducerHandle::start(&client, context.clone())?;
        // Bring up the producer's broker connection now: the idempotent
        // producer asks for its producer id as soon as it exists, and if no
        // broker connection is up at that moment librdkafka retries only
        // after 500 ms. A failure here is not fatal (the broker may come
        // later); sources wait for it anyway.
        let _ = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(1));
        let admin_config = connection_config(config, &bootstrap);
        Ok(Kafka {
            transactional_id_prefix: config.transactional_id_prefix.clone(),
            producer: std::sync::Mutex::new(producer),
            producer_config: client,
            context,
            admin_config,
            bootstrap,
            embedded,
            topic_partitions: config.topic_partitions,
            topic_replication_factor: config.topic_replication_factor,
            topic_limits: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The current producer, for a source (re)starting.
    pub fn producer(&self) -> Producer {
        self.current().clone()
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Producer> {
        self.producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces `failed` (the producer a source was using when it failed)
    /// if it is still the current one and is broken for good: `broken` says
    /// the source's error showed it (the broker fenced or forgot its producer
    /// id), or librdkafka declared a fatal error. Every later send on such a
    /// producer would fail. Sources restart on the new one from their
    /// committed checkpoints, so what the old one lost is sent again.
    pub fn replace_if_broken(&self, failed: &Producer, broken: bool) -> Result<(), ProducerError> {
        let mut current = self.current();
        if !Arc::ptr_eq(&current, failed) {
            return Ok(());
        }
        let fatal = current.client().fatal_error();
        if !broken && fatal.is_none() {
            return Ok(());
        }
        tracing::error!(
            fatal = ?fatal,
            "The Kafka producer is unusable; replacing it."
        );
        *current = ProducerHandle::start(&self.producer_config, self.context.clone())?;
        Ok(())
    }

    /// The latest broker errors, to explain why Kafka does not answer.
    pub fn client_errors(&self) -> &ClientErrors {
        &self.context.errors
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
        self.create_topic(topic, self.topic_partitions, &[]).await
    }

    /// Makes sure the compacted topic of the Kafka offset store exists;
    /// returns whether it existed before. One partition: the topic holds
    /// one small record per source partition, read whole at every start.
    ///
    /// The in-process broker forgets everything when the daemon exits, so
    /// there its topic counts as always there: nothing to protect.
    pub async fn ensure_offsets_topic(&self, topic: &str) -> Result<bool, ProducerError> {
        if let Some(broker) = &self.embedded {
            broker.create_topic(topic, 1)?;
            return Ok(true);
        }
        if self.topic_exists(topic).await? {
            return Ok(true);
        }
        self.create_topic(topic, 1, &[("cleanup.policy", "compact")])
            .await?;
        Ok(false)
    }

    /// Creates the one-partition, compacted topics the daemon keeps for
    /// itself (the work topics of a cluster) when they are missing.
    pub async fn ensure_internal_topics(&self, topics: &[String]) -> Result<(), ProducerError> {
        for topic in topics {
            if !self.topic_exists(topic).await? {
                self.create_topic(topic, 1, &[("cleanup.policy", "compact")])
                    .await?;
            }
        }
        Ok(())
    }

    /// The largest record `topic` takes: the producer's `message.max.bytes`
    /// (librdkafka refuses larger ones at once), or the topic's
    /// `max.message.bytes` less the record-batch header when that is lower
    /// (the broker refuses larger ones).
    ///
    /// The topic's setting is asked for once per topic and daemon run, and
    /// waited for at most [`LIMIT_WAIT`]: a broker answers in milliseconds,
    /// but one that does not support the request (a mock cluster) must not
    /// hold sources back. A late answer still updates the shared limit; a
    /// topic whose settings cannot be read (the in-process broker, no
    /// describe permission) is held to the producer's limit alone.
    pub async fn record_limit(&self, topic: &str) -> SharedLimit {
        /// Bytes of a record batch's header, around its records.
        const BATCH_HEADER: usize = 61;
        /// How long a source start waits for the topic's setting.
        const LIMIT_WAIT: Duration = Duration::from_millis(500);
        let client = self
            .producer_config
            .get("message.max.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000usize);
        let cell = {
            let mut limits = self
                .topic_limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(cell) = limits.get(topic) {
                return cell.clone();
            }
            let cell = SharedLimit::new(RecordLimit {
                bytes: client,
                setting: format!("message.max.bytes = {client} of the producer"),
            });
            limits.insert(topic.to_owned(), cell.clone());
            cell
        };
        if self.embedded.is_some() {
            return cell;
        }
        let Ok(admin) = self
            .admin_config
            .create::<AdminClient<DefaultClientContext>>()
        else {
            return cell;
        };
        let (topic, update) = (topic.to_owned(), cell.clone());
        let describe = tokio::spawn(async move {
            let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
            let described = admin
                .describe_configs([&rdkafka::admin::ResourceSpecifier::Topic(&topic)], &opts)
                .await;
            let max = described
                .ok()
                .and_then(|results| results.into_iter().next())
                .and_then(Result::ok)
                .and_then(|resource| {
                    resource
                        .get("max.message.bytes")
                        .and_then(|e| e.value.as_deref())
                        .and_then(|v| v.parse::<usize>().ok())
                });
            if let Some(max) = max
                && max.saturating_sub(BATCH_HEADER) < client
            {
                update.set(RecordLimit {
                    bytes: max.saturating_sub(BATCH_HEADER),
                    setting: format!("max.message.bytes = {max} of topic `{topic}`"),
                });
            }
        });
        let _ = tokio::time::timeout(LIMIT_WAIT, describe).await;
        cell
    }

    /// A transactional producer for one exactly-once source, with
    /// `transactional.id` = the configured prefix + `source`, its
    /// transactions initialised: whatever a previous producer with the same
    /// id left open is aborted, and that producer is fenced.
    pub async fn transactional_producer(&self, source: &str) -> Result<Producer, ProducerError> {
        let id = self.transactional_id(source);
        let mut config = self.producer_config.clone();
        config
            .set("transactional.id", &id)
            .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
        let producer = ProducerHandle::start(&config, self.context.clone())?;
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(TRANSACTION_CALL_TIMEOUT))
            .await
            .map_err(|e| ProducerError::Transactions {
                id: id.clone(),
                message: e.to_string(),
            })?
            .map_err(|e| ProducerError::Transactions {
                id: id.clone(),
                message: self.client_errors().explain(e),
            })?;
        tracing::info!(transactional_id = %id, "Transactions initialised; anything a previous run left open is aborted.");
        Ok(producer)
    }

    /// The `transactional.id` of exactly-once source `source`.
    pub fn transactional_id(&self, source: &str) -> String {
        format!("{}{source}", self.transactional_id_prefix)
    }

    /// The connection and security settings, for the daemon's other clients
    /// of the same cluster (the offset store).
    pub fn client_config(&self) -> &ClientConfig {
        &self.admin_config
    }

    async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), ProducerError> {
        let mut new = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(self.topic_replication_factor),
        );
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let admin: AdminClient<DefaultClientContext> =
            self.admin_config.create().map_err(ProducerError::Client)?;
        let results =
            admin
                .create_topics([&new], &opts)
                .await
                .map_err(|e| ProducerError::CreateTopic {
                    topic: topic.to_owned(),
                    message: self.client_errors().explain(e),
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
            partitions,
            replication_factor = self.topic_replication_factor,
            "Created topic."
        );
        Ok(())
    }

    async fn topic_exists(&self, topic: &str) -> Result<bool, ProducerError> {
        let producer = self.producer();
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
            message: self
                .client_errors()
                .explain(format_args!("cannot read metadata: {e}")),
        })
    }

    /// Waits up to `timeout` for every queued record to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer().flush(timeout) {
            tracing::warn!(error = %e, "Some records were not delivered before shutdown; their offsets were not committed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_errors_fall_into_bounded_classes() {
        let class = |code| kafka_error_class(&KafkaError::MessageProduction(code));
        assert_eq!(class(RDKafkaErrorCode::MessageTimedOut), "timed_out");
        assert_eq!(class(RDKafkaErrorCode::MessageSizeTooLarge), "too_large");
        assert_eq!(
            class(RDKafkaErrorCode::TopicAuthorizationFailed),
            "authorization"
        );
        assert_eq!(class(RDKafkaErrorCode::BrokerNotAvailable), "kafka_other");
    }
}
