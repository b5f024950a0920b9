//! One run of one source: a plugin thread that polls, serialises and sends,
//! and an async task that commits what Kafka acknowledged.
//!
//! ```text
//!  plugin thread                                    librdkafka thread
//!  ─────────────                                    ─────────────────
//!  poll() ─► serialise ──► register batch ─► send ─► delivery reports
//!            (records, or   (AckTracker)     (TopicSender)  │ last report of a batch:
//!             dead letters)                                 ▼ AckTracker::ack → state
//!      ▲
//!      └── committed(partition, checkpoint) ◄── commit task: write state every interval
//! ```
//!
//! Every batch walks these stages once, in this order: a dead-letter batch
//! differs only in how it is serialised (`serialize::DeadLetterRecords`)
//! and in the topic its sender writes to.
//!
//! The plugin is only called from its thread. A checkpoint enters `state`
//! only when every record of its batch and of all earlier batches of the
//! same source partition was acknowledged; the plugin hears of it only once
//! it is durably written.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use tributary_plugin_sdk::Checkpoint;

use super::SourceError;
use super::ack::AckTracker;
use super::too_large;
use super::transaction::{Transactions, is_fencing};
use crate::config::SourceConfig;
use crate::offsets::{Checkpoints, OffsetStore};
use crate::plugin::{LoadedPlugin, PluginInstance, PollOutcome, Polled};
use crate::producer::{
    BatchAck, BatchHandle, Completion, Outcome, Producer, Records, TopicSender, Unsent,
};
use crate::serialize::{self, DeadLetterRecords, RecordSerializer, Serialized};
use crate::status::SourceStatus;
use crate::telemetry::{
    self, DeadLettersWritten, FirstDeadLetter, OffsetCommitError, OffsetsCommitted, RecordsFailed,
    RecordsProduced,
};

/// How long one `poll` may wait; also how quickly a stop is noticed.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a stopped source's thread may take to return from the plugin
/// before it is given up on (a plugin stuck in `poll`).
const THREAD_STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a source whose producer queue is full looks at the queue again.
const QUEUE_FULL_NAP: Duration = Duration::from_millis(1);
/// The longest a source waits for its full producer queue to drain before
/// offering the rest of a batch again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(50);

/// How a run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The plugin has no more data; everything it produced is committed.
    Finished,
    /// Shutdown was requested.
    Stopped,
}

/// Everything a source run needs.
#[derive(Clone)]
pub struct SourceContext {
    /// The source's config.
    pub config: SourceConfig,
    /// The library providing its type.
    pub plugin: Arc<LoadedPlugin>,
    /// The shared producer.
    pub producer: Producer,
    /// Where checkpoints go.
    pub store: Arc<dyn OffsetStore>,
    /// Shared state for observers.
    pub status: Arc<SourceStatus>,
    /// How often delivered checkpoints are written.
    pub commit_interval: Duration,
    /// How long a stop waits for outstanding deliveries.
    pub drain_timeout: Duration,
    /// With exactly-once delivery, the `transactional.id` of `producer`,
    /// set when a run prepares it.
    pub transactional_id: Option<String>,
    /// The largest record the source's topic takes, read when a run
    /// prepares it.
    pub record_limit: crate::producer::SharedLimit,
    /// `[schema_registry]`, for `format = "avro"`.
    pub schema_registry: Option<crate::config::SchemaRegistryConfig>,
    /// The cluster, for topics a topic template names as they appear.
    pub kafka: Arc<crate::producer::Kafka>,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("source", &self.config.name)
            .field("plugin", &self.plugin.name)
            .finish_non_exhaustive()
    }
}

/// Delivery state shared by the plugin thread, librdkafka's delivery
/// callbacks and the commit task.
#[derive(Debug, Default)]
struct Shared {
    acks: Mutex<AckState>,
    /// The first delivery failure; the run ends with it.
    failure: Mutex<Option<SourceError>>,
    /// Wakes the commit task when a batch completes or fails.
    wake: Notify,
}

#[derive(Debug, Default)]
struct AckState {
    tracker: AckTracker,
    /// The committable checkpoint of every partition.
    state: Checkpoints,
    /// Partitions whose checkpoint moved since the last commit.
    changed: BTreeSet<Vec<u8>>,
    /// A checkpoint moved since the last note (see [`note`]).
    unnoted: bool,
    /// Batches registered and neither completed nor abandoned.
    outstanding: usize,
}

/// Locks a mutex, recovering from poisoning: the guarded values are plain
/// data that no panic can leave half-updated in a way that matters here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Committed checkpoints on their way to the plugin's `committed`.
type Notices = std::sync::mpsc::Receiver<Checkpoint>;

/// Runs the source until it finishes, `stop` is cancelled, or it fails.
pub async fn run_once(
    ctx: &SourceContext,
    stop: &CancellationToken,
) -> Result<RunEnd, SourceError> {
    let name = ctx.config.name.clone();
    let store = ctx.store.clone();
    let loaded = tokio::task::spawn_blocking(move || store.load(&name))
        .await
        .map_err(|e| SourceError::Internal(e.to_string()))??;
    if !loaded.is_empty() {
        tracing::info!(
            partitions = loaded.len(),
            "Resuming from committed checkpoints."
        );
    }
    let shared = Arc::new(Shared::default());
    lock(&shared.acks).state = loaded.clone();
    let transactions = ctx.transactional_id.as_ref().map(|id| {
        Transactions::new(
            ctx.producer.clone(),
            ctx.store.clone(),
            &ctx.config.name,
            id.clone(),
            Duration::from_millis(ctx.config.transaction_interval_ms),
            ctx.config.transaction_max_records,
            ctx.status.clone(),
            loaded.clone(),
        )
    });

    let (notice_tx, notice_rx) = std::sync::mpsc::channel();
    let (loop_tx, loop_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    // Stops the thread on shutdown, and also when a delivery fails.
    let thread_stop = stop.child_token();
    let thread = SourceThread {
        plugin: ctx.plugin.clone(),
        config: ctx.config.clone(),
        checkpoints: loaded
            .into_iter()
            .map(|(partition, checkpoint)| Checkpoint::new(partition, checkpoint))
            .collect(),
        producer: ctx.producer.clone(),
        status: ctx.status.clone(),
        shared: shared.clone(),
        stop: thread_stop.clone(),
        span: tracing::Span::current(),
        write_to_ack: crate::metrics::global().write_to_ack(&ctx.config.name),
        transactions,
        record_limit: ctx.record_limit.clone(),
        on_error: too_large::Policy::of(&ctx.config.options),
        schema_registry: ctx.schema_registry.clone(),
        kafka: ctx.kafka.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    std::thread::Builder::new()
        .name(format!("source-{}", ctx.config.name))
        .spawn(move || {
            let result = thread.run(loop_tx, notice_rx);
            let _ = done_tx.send(result);
        })
        .map_err(|e| SourceError::Internal(format!("cannot start the source thread: {e}")))?;

    let outcome = track(ctx, &shared, loop_rx, notice_tx, stop).await;
    if outcome.is_err() {
        thread_stop.cancel();
    }
    // The thread ends once it sees the stop or the end of its data, and
    // after passing on the final commit notifications.
    let thread_result = tokio::select! {
        r = done_rx => r.unwrap_or_else(|_| Err(SourceError::Internal("the source thread vanished".into()))),
        () = async {
            thread_stop.cancelled().await;
            tokio::time::sleep(THREAD_STOP_GRACE).await;
        } => Err(SourceError::Hung { grace: THREAD_STOP_GRACE }),
    };
    ctx.status.in_flight.store(0, Ordering::Relaxed);
    let fenced = |e| fenced(ctx, e);
    let end = outcome.map_err(fenced)?;
    thread_result.map_err(fenced)?;
    Ok(end)
}

/// An exactly-once source whose records were refused for an old producer
/// epoch was fenced: another producer took its `transactional.id`. That is
/// permanent (restarting would fence the other daemon in turn), whichever
/// call noticed it first.
fn fenced(ctx: &SourceContext, error: SourceError) -> SourceError {
    let Some(id) = &ctx.transactional_id else {
        return error;
    };
    let code = match &error {
        SourceError::Delivery { source, .. }
        | SourceError::Produce { source, .. }
        | SourceError::Transaction { source, .. } => source.rdkafka_error_code(),
        _ => None,
    };
    // The first failed report may only say its record was purged; the
    // producer's fatal error says why.
    let fatal = ctx.producer.client().fatal_error().map(|(code, _)| code);
    if [code, fatal].into_iter().flatten().any(is_fencing) {
        SourceError::Fenced {
            transactional_id: id.clone(),
        }
    } else {
        error
    }
}

struct SourceThread {
    plugin: Arc<LoadedPlugin>,
    config: SourceConfig,
    checkpoints: Vec<Checkpoint>,
    producer: Producer,
    status: Arc<SourceStatus>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    span: tracing::Span,
    /// The source's write-to-ack histogram, observed once per batch.
    write_to_ack: prometheus::Histogram,
    /// With exactly-once delivery, the source's transactions; commits then
    /// happen here, not in the commit task.
    transactions: Option<Transactions>,
    /// The largest record the topic takes, and what an oversized one gets.
    record_limit: crate::producer::SharedLimit,
    on_error: too_large::Policy,
    schema_registry: Option<crate::config::SchemaRegistryConfig>,
    kafka: Arc<crate::producer::Kafka>,
    /// Runs topic creation (async admin calls) from this thread.
    runtime: tokio::runtime::Handle,
}

impl SourceThread {
    /// Creates the instance and runs it: poll, serialise, send. Reports how
    /// the loop ended on `loop_tx` once every polled batch is registered,
    /// then relays commit notices until the commit task closes the channel,
    /// and destroys the instance.
    ///
    /// Polling and sending share one thread on purpose: measured on two
    /// cores, a separate sender thread cost more in contention with
    /// librdkafka's threads than it gained in overlap.
    fn run(
        mut self,
        loop_tx: oneshot::Sender<Result<RunEnd, SourceError>>,
        notices: Notices,
    ) -> Result<(), SourceError> {
        let _span = self.span.clone().entered();
        let declared: Vec<String> = self
            .plugin
            .source_types
            .iter()
            .find(|t| t.name == self.config.source_type)
            .map(|t| t.options.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default();
        let declares = |key: &str| declared.iter().any(|d| d == key);
        let config_json =
            serde_json::Value::Object(self.config.plugin_options(declares)).to_string();
        let (include, exclude) = self.config.value_columns(declares);
        let mut instance = match PluginInstance::create(
            self.plugin.clone(),
            &self.config.source_type,
            &self.config.name,
            &config_json,
            &self.checkpoints,
        ) {
            Ok(i) => i,
            Err(e) => {
                let _ = loop_tx.send(Err(e.into()));
                return Ok(());
            }
        };
        // Without a `key`, the plugin's default key column (if it has one).
        let key = self.config.key.clone().or_else(|| {
            self.plugin
                .source_types
                .iter()
                .find(|t| t.name == self.config.source_type)
                .and_then(|t| t.default_key.clone())
        });
        let avro = match self.avro_target() {
            Ok(target) => target,
            Err(e) => {
                let _ = loop_tx.send(Err(e));
                return Ok(());
            }
        };
        let shape = crate::config::Shape {
            include,
            exclude,
            ..self.config.shape.clone()
        };
        let serializer = RecordSerializer::with_shape(self.config.format.clone(), key, avro, shape)
            .with_topics(self.config.topic_template.clone());
        let _ = loop_tx.send(self.produce(&mut instance, &serializer, &notices));
        let mut result = Ok(());
        while let Ok(committed) = notices.recv() {
            if let Err(e) = instance.committed(&committed) {
                result = Err(e.into());
            }
        }
        result
    }

    /// Where an Avro source registers its schemas: a client of
    /// `[schema_registry]` (none for other formats).
    fn avro_target(&self) -> Result<Option<serialize::AvroTarget>, SourceError> {
        let (crate::config::Format::Avro(_), Some(config)) =
            (&self.config.format, &self.schema_registry)
        else {
            return Ok(None);
        };
        let registry = crate::registry::SchemaRegistry::new(config).map_err(|source| {
            SourceError::Serialize(serialize::SerializeError::Registry {
                subject: String::new(),
                source,
            })
        })?;
        Ok(Some(serialize::AvroTarget {
            registry: Arc::new(registry),
            topic: self.config.topic.clone(),
        }))
    }

    /// Polls and sends until the source finishes, a stop, or an error. With
    /// exactly-once delivery, a run that ends well commits its open
    /// transaction and a run that fails aborts it.
    fn produce(
        &mut self,
        instance: &mut PluginInstance,
        serializer: &RecordSerializer,
        notices: &Notices,
    ) -> Result<RunEnd, SourceError> {
        let mut transactions = self.transactions.take();
        let result = self.produce_loop(instance, serializer, notices, &mut transactions);
        if let Some(t) = transactions.as_mut() {
            match &result {
                // Nothing of the batch with the oversized record is in the
                // transaction: what came before it is delivered once.
                Ok(_) | Err(SourceError::TooLarge { .. }) => match t.commit() {
                    Ok(moved) => tell_committed(instance, moved)?,
                    Err(e) => {
                        t.abort();
                        return Err(e);
                    }
                },
                Err(_) => t.abort(),
            }
        }
        result
    }

    fn produce_loop(
        &self,
        instance: &mut PluginInstance,
        serializer: &RecordSerializer,
        notices: &Notices,
        transactions: &mut Option<Transactions>,
    ) -> Result<RunEnd, SourceError> {
        // A template's topics get their handles as they appear.
        let records = match self.config.topic_template {
            Some(_) => None,
            None => Some(
                TopicSender::new(&self.producer, &self.config.topic).map_err(|e| {
                    SourceError::Produce {
                        topic: self.config.topic.clone(),
                        source: e,
                    }
                })?,
            ),
        };
        let mut senders = Senders {
            records,
            dead_letters: None,
            by_topic: std::collections::HashMap::new(),
        };
        loop {
            self.status.beat();
            while let Ok(committed) = notices.try_recv() {
                instance.committed(&committed)?;
            }
            if self.stop.is_cancelled() {
                return Ok(RunEnd::Stopped);
            }
            if let Some(t) = transactions.as_mut()
                && t.due()
            {
                tell_committed(instance, t.commit()?)?;
            }
            match instance.poll(POLL_TIMEOUT)? {
                PollOutcome::Idle => {}
                PollOutcome::Finished => return Ok(RunEnd::Finished),
                PollOutcome::Batch(batch) => {
                    let Some(t) = transactions.as_mut() else {
                        if !self.send_batch(batch, serializer, &mut senders)? {
                            return Ok(RunEnd::Stopped);
                        }
                        continue;
                    };
                    t.begin()?;
                    let rows = batch.records.num_rows();
                    let end = (batch.partition.clone(), batch.checkpoint.clone());
                    if !self.send_batch(batch, serializer, &mut senders)? {
                        // Part of the batch is in the transaction without
                        // its checkpoint: committing it would repeat those
                        // records after a restart.
                        t.abort();
                        return Ok(RunEnd::Stopped);
                    }
                    t.sent(&end.0, &end.1, rows);
                }
            }
        }
    }

    /// Serialises a polled batch (rows into records, or dead letters into
    /// raw records with error headers) and hands it to the producer.
    /// Returns `false` when stopped while the producer queue was full.
    fn send_batch(
        &self,
        batch: Polled,
        serializer: &RecordSerializer,
        senders: &mut Senders,
    ) -> Result<bool, SourceError> {
        let rows = batch.records.num_rows();
        self.status
            .records_polled
            .fetch_add(rows as u64, Ordering::Relaxed);
        self.status.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(lag) = batch.lag {
            self.status
                .lag
                .store(i64::try_from(lag).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
        if serialize::is_dead_letter(&batch.records) {
            let letters = DeadLetterRecords::from_batch(&batch.records, &self.config.name)?;
            let sender = senders.dead_letters(&self.producer, &self.config)?;
            let first = (!letters.is_empty()).then(|| FirstDeadLetter {
                class: letters.class(0).to_owned(),
                file: letters.file(0).to_owned(),
                line: letters.line(0),
                message: letters.message(0).to_owned(),
            });
            let delivered = Delivered::DeadLetters {
                classes: letters.classes(),
                first,
            };
            return self.send_records(&batch, Some(&batch.checkpoint), &letters, delivered, sender);
        }
        let serialized = match serializer.serialize(&batch.records) {
            Ok(s) => s,
            // A schema the registry refuses for good: with `on_error =
            // "dead_letter"` the batch's rows go to the dead-letter topic
            // (as JSON, with the registry's answer) and the source goes on.
            Err(serialize::SerializeError::Registry { subject, source })
                if source.is_permanent() && self.on_error == too_large::Policy::DeadLetter =>
            {
                let as_json = RecordSerializer::new(crate::config::Format::Json, None, None)
                    .serialize(&batch.records)?;
                let all: Vec<usize> = (0..as_json.len()).collect();
                let why = Aside::Registry(format!("schema for subject `{subject}`: {source}"));
                return self.send_aside(&batch, &as_json, &all, why, senders);
            }
            Err(e) => {
                telemetry::emit(RecordsFailed {
                    source: &self.config.name,
                    class: crate::metrics::error_class::SERIALIZE,
                    count: rows as u64,
                });
                return Err(e.into());
            }
        };
        let over = too_large::oversized(&serialized, &self.record_limit.get());
        if !over.is_empty() {
            return self.send_oversized(&batch, &serialized, &over, senders);
        }
        self.send_rows(&batch, &serialized, senders)
    }

    /// Sends a batch's records with its checkpoint: to the source's topic,
    /// or, with a topic template, to each record's own topic (created as
    /// it first appears, up to `max_topics`; records for topics beyond
    /// that follow `on_error`). One acknowledgement covers every topic.
    fn send_rows(
        &self,
        batch: &Polled,
        serialized: &Serialized,
        senders: &mut Senders,
    ) -> Result<bool, SourceError> {
        let delivered = Delivered::Records {
            rows: serialized.len(),
            bytes: serialized.values.len() as u64,
        };
        let Some(template) = &self.config.topic_template else {
            let records = senders
                .records
                .as_mut()
                .ok_or_else(|| SourceError::Internal("no sender for the source's topic".into()))?;
            return self.send_records(
                batch,
                Some(&batch.checkpoint),
                serialized,
                delivered,
                records,
            );
        };
        // Topics beyond `max_topics`, in order of first appearance.
        let mut room = template.max_topics.saturating_sub(senders.by_topic.len());
        let mut refused: Vec<bool> = vec![false; serialized.topic_names.len()];
        for (t, name) in serialized.topic_names.iter().enumerate() {
            if !senders.by_topic.contains_key(name) {
                if room == 0 {
                    refused[t] = true;
                } else {
                    room -= 1;
                }
            }
        }
        if refused.iter().any(|r| *r) {
            let aside: Vec<usize> = (0..serialized.len())
                .filter(|&i| refused[serialized.topics[i] as usize])
                .collect();
            return self.send_aside(batch, serialized, &aside, Aside::TooManyTopics, senders);
        }
        for name in &serialized.topic_names {
            if !senders.by_topic.contains_key(name) {
                self.runtime
                    .block_on(self.kafka.ensure_topic(name))
                    .map_err(SourceError::Topic)?;
                let sender =
                    TopicSender::new(&self.producer, name).map_err(|e| SourceError::Produce {
                        topic: name.clone(),
                        source: e,
                    })?;
                senders.by_topic.insert(name.clone(), sender);
            }
        }
        let handle = self.register(
            &batch.partition,
            Some(&batch.checkpoint),
            serialized.len(),
            delivered,
        );
        let mut left = serialized.len();
        for (t, name) in serialized.topic_names.iter().enumerate() {
            let rows: Vec<usize> = (0..serialized.len())
                .filter(|&i| serialized.topics[i] as usize == t)
                .collect();
            let part = serialized.select(&rows);
            let sender = senders
                .by_topic
                .get_mut(name)
                .expect("every topic of the batch has a sender");
            let sent = sender.send(&part, handle.opaque(), || {
                if self.stop.is_cancelled() {
                    return false;
                }
                self.wait_for_queue_space();
                true
            });
            left -= rows.len();
            match sent {
                Ok(()) => {}
                Err(Unsent::Stopped { unsent }) => {
                    handle.abandon(unsent + left);
                    return Ok(false);
                }
                Err(Unsent::Refused { error, refused }) => {
                    return Err(self.refused(handle, refused + left, error, name));
                }
            }
        }
        handle.sent_all();
        Ok(true)
    }

    /// Sends a batch with records larger than Kafka accepts (`over`), by
    /// the source's `on_error`.
    fn send_oversized(
        &self,
        batch: &Polled,
        serialized: &Serialized,
        over: &[usize],
        senders: &mut Senders,
    ) -> Result<bool, SourceError> {
        self.send_aside(batch, serialized, over, Aside::TooLarge, senders)
    }

    /// Sends a batch whose records at `aside` cannot go where they belong,
    /// by the source's `on_error`: their dead letters first, as a part of
    /// the batch, then the other records with the checkpoint; or the
    /// others alone; or nothing, failing the source.
    fn send_aside(
        &self,
        batch: &Polled,
        serialized: &Serialized,
        aside: &[usize],
        why: Aside,
        senders: &mut Senders,
    ) -> Result<bool, SourceError> {
        let limit = &self.record_limit.get();
        let max_topics = self
            .config
            .topic_template
            .as_ref()
            .map_or(0, |t| t.max_topics);
        let reason = |i: usize| match &why {
            Aside::Registry(message) => format!("row {i} of the batch: {message}"),
            Aside::TooLarge => too_large::reason(serialized, i, i, limit),
            Aside::TooManyTopics => format!(
                "row {i} of the batch is for topic `{}`, beyond the source's max_topics = \
                 {max_topics}",
                serialized.topic_names[serialized.topics[i] as usize]
            ),
        };
        let class = why.class();
        match self.on_error {
            too_large::Policy::Fail => {
                telemetry::emit(RecordsFailed {
                    source: &self.config.name,
                    class,
                    count: aside.len() as u64,
                });
                return Err(match why {
                    Aside::Registry(message) => SourceError::Internal(message),
                    Aside::TooLarge => SourceError::TooLarge {
                        topic: self.config.topic.clone(),
                        reason: reason(aside[0]),
                    },
                    Aside::TooManyTopics => SourceError::TooManyTopics {
                        reason: reason(aside[0]),
                    },
                });
            }
            too_large::Policy::Skip => {
                telemetry::emit(RecordsFailed {
                    source: &self.config.name,
                    class,
                    count: aside.len() as u64,
                });
                tracing::warn!(
                    skipped = aside.len(),
                    "Skipped record(s) (on_error = \"skip\"): {}.",
                    reason(aside[0])
                );
            }
            too_large::Policy::DeadLetter => {
                let letters = too_large::set_aside(serialized, aside, class, reason)?;
                let letters = DeadLetterRecords::from_batch(&letters, &self.config.name)?;
                let sender = senders.dead_letters(&self.producer, &self.config)?;
                let delivered = Delivered::DeadLetters {
                    classes: letters.classes(),
                    first: Some(FirstDeadLetter {
                        class: class.to_owned(),
                        file: String::new(),
                        line: 0,
                        message: letters.message(0).to_owned(),
                    }),
                };
                if !self.send_records(batch, None, &letters, delivered, sender)? {
                    return Ok(false);
                }
            }
        }
        let rest = too_large::without(serialized, aside);
        self.send_rows(batch, &rest, senders)
    }

    /// Registers a batch with the ack tracker and hands its records to
    /// `sender`. Returns `false` when stopped while the producer queue was
    /// full; the batch is then abandoned: it never completes, so its
    /// checkpoint is never committed and its rows are read again after
    /// restart. Without a `checkpoint` the records are a part sent ahead of
    /// their batch.
    fn send_records(
        &self,
        batch: &Polled,
        checkpoint: Option<&[u8]>,
        records: &impl Records,
        delivered: Delivered,
        sender: &mut TopicSender,
    ) -> Result<bool, SourceError> {
        let batch_handle = self.register(&batch.partition, checkpoint, records.len(), delivered);
        let sent = sender.send(records, batch_handle.opaque(), || {
            if self.stop.is_cancelled() {
                return false;
            }
            self.wait_for_queue_space();
            true
        });
        match sent {
            Ok(()) => {
                batch_handle.sent_all();
                Ok(true)
            }
            Err(Unsent::Stopped { unsent }) => {
                batch_handle.abandon(unsent);
                Ok(false)
            }
            Err(Unsent::Refused { error, refused }) => {
                Err(self.refused(batch_handle, refused, error, sender.name()))
            }
        }
    }

    /// Waits until a quarter of the full producer queue has drained (or
    /// [`QUEUE_FULL_WAIT`] has passed), so the rest of the batch is offered
    /// once into room rather than over and over into a full queue; the
    /// broker keeps three quarters of a queue to work on meanwhile. The
    /// delivery thread serves the reports that free the space: this thread
    /// sleeps, where polling the producer for a short window would spin on
    /// the clock (a fifth of the CPU against a real broker, measured).
    fn wait_for_queue_space(&self) {
        // Waiting for the broker is not a wedged pipeline.
        self.status.beat();
        let full = self.producer.in_flight_count();
        let room = full - full / 4;
        let deadline = std::time::Instant::now() + QUEUE_FULL_WAIT;
        while self.producer.in_flight_count() > room && std::time::Instant::now() < deadline {
            std::thread::sleep(QUEUE_FULL_NAP);
        }
    }

    /// Registers `rows` records of a polled batch's partition with the ack
    /// tracker and counts them in flight.
    fn register(
        &self,
        partition: &[u8],
        checkpoint: Option<&[u8]>,
        rows: usize,
        delivered: Delivered,
    ) -> BatchHandle {
        let id = {
            let mut acks = lock(&self.shared.acks);
            acks.outstanding += 1;
            match checkpoint {
                Some(c) => acks.tracker.register(partition, c.to_vec()),
                None => acks.tracker.register_part(partition),
            }
        };
        self.status
            .in_flight
            .fetch_add(rows as i64, Ordering::Relaxed);
        BatchHandle::new(BatchAck::new(rows, self.completion(id, rows, delivered)))
    }

    /// Gives up on a batch of which the producer refused `refused` records:
    /// counts them as failed and names the error.
    fn refused(
        &self,
        batch_handle: BatchHandle,
        refused: usize,
        error: KafkaError,
        topic: &str,
    ) -> SourceError {
        batch_handle.abandon(refused);
        telemetry::emit(RecordsFailed {
            source: &self.config.name,
            class: crate::producer::kafka_error_class(&error),
            count: refused as u64,
        });
        SourceError::Produce {
            topic: topic.to_owned(),
            source: error,
        }
    }

    /// What runs when the batch ends: on librdkafka's thread at its last
    /// delivery report, or on this thread when the batch is abandoned.
    fn completion(&self, id: super::ack::BatchId, rows: usize, delivered: Delivered) -> Completion {
        let shared = self.shared.clone();
        let status = self.status.clone();
        let topic = match &delivered {
            Delivered::Records { .. } => self.config.topic.clone(),
            Delivered::DeadLetters { .. } => {
                self.config.dead_letter_topic.clone().unwrap_or_default()
            }
        };
        let write_to_ack = self.write_to_ack.clone();
        let sent = std::time::Instant::now();
        Box::new(move |outcome| {
            status.in_flight.fetch_sub(rows as i64, Ordering::Relaxed);
            match outcome {
                Outcome::Delivered => {
                    write_to_ack.observe(sent.elapsed().as_secs_f64());
                    match &delivered {
                        Delivered::Records { rows, bytes } => telemetry::emit(RecordsProduced {
                            status: &status,
                            records: *rows as u64,
                            bytes: *bytes,
                        }),
                        Delivered::DeadLetters { classes, first } => {
                            telemetry::emit(DeadLettersWritten {
                                source: &status.name,
                                topic: &topic,
                                classes,
                                first: first.as_ref(),
                            });
                        }
                    }
                    let mut acks = lock(&shared.acks);
                    acks.outstanding -= 1;
                    // An unchanged checkpoint (a source with nothing to
                    // resume) is not written again.
                    if let Some(released) = acks.tracker.ack(id)
                        && acks.state.get(&released.partition) != Some(&released.checkpoint)
                    {
                        acks.changed.insert(released.partition.clone());
                        acks.unnoted = true;
                        acks.state.insert(released.partition, released.checkpoint);
                    }
                }
                // The sender gave up on the batch (and says why on its own
                // path): it will never be acknowledged, and nobody waits
                // for it.
                Outcome::Abandoned => lock(&shared.acks).outstanding -= 1,
                Outcome::Failed(e) => {
                    telemetry::emit(RecordsFailed {
                        source: &status.name,
                        class: crate::producer::kafka_error_class(&e),
                        count: rows as u64,
                    });
                    lock(&shared.acks).outstanding -= 1;
                    lock(&shared.failure).get_or_insert(SourceError::Delivery {
                        topic: topic.clone(),
                        source: e,
                    });
                }
            }
            shared.wake.notify_one();
        })
    }
}

/// Tells the plugin which checkpoints a transaction committed.
fn tell_committed(instance: &mut PluginInstance, moved: Checkpoints) -> Result<(), SourceError> {
    for (partition, checkpoint) in moved {
        instance.committed(&Checkpoint::new(partition, checkpoint))?;
    }
    Ok(())
}

/// The source's topic handles: its own topic, its dead-letter topic once
/// a dead letter arrives, and the topics a template named so far.
struct Senders {
    /// The source's topic; `None` with a topic template.
    records: Option<TopicSender>,
    dead_letters: Option<TopicSender>,
    by_topic: std::collections::HashMap<String, TopicSender>,
}

/// Why records are set aside rather than sent to their topic.
#[derive(Debug, Clone)]
enum Aside {
    /// The schema registry refused their schema (its answer).
    Registry(String),
    /// Larger than Kafka accepts.
    TooLarge,
    /// For a topic beyond `max_topics`.
    TooManyTopics,
}

impl Aside {
    fn class(&self) -> &'static str {
        match self {
            Aside::Registry(_) => "schema_registry",
            Aside::TooLarge => too_large::CLASS,
            Aside::TooManyTopics => "too_many_topics",
        }
    }
}

impl Senders {
    fn dead_letters(
        &mut self,
        producer: &Producer,
        config: &SourceConfig,
    ) -> Result<&mut TopicSender, SourceError> {
        let Some(topic) = config.dead_letter_topic.as_deref() else {
            return Err(SourceError::NoDeadLetterTopic);
        };
        if self.dead_letters.is_none() {
            let sender = TopicSender::new(producer, topic).map_err(|e| SourceError::Produce {
                topic: topic.to_owned(),
                source: e,
            })?;
            self.dead_letters = Some(sender);
        }
        // Set just above when it was empty.
        Ok(self.dead_letters.as_mut().expect("created above"))
    }
}

/// What a batch's acknowledgement counts as.
#[derive(Debug)]
enum Delivered {
    /// Serialised rows to the source's topic.
    Records { rows: usize, bytes: u64 },
    /// Dead letters, counted per error class.
    DeadLetters {
        classes: Vec<(String, u64)>,
        first: Option<FirstDeadLetter>,
    },
}

/// Commits delivered checkpoints every interval until the plugin loop has
/// ended and every registered batch is settled, a delivery fails, or the
/// drain timeout passes after `stop`. Ends with a final commit.
async fn track(
    ctx: &SourceContext,
    shared: &Shared,
    mut loop_rx: oneshot::Receiver<Result<RunEnd, SourceError>>,
    notice_tx: std::sync::mpsc::Sender<Checkpoint>,
    stop: &CancellationToken,
) -> Result<RunEnd, SourceError> {
    let mut ticker = tokio::time::interval(ctx.commit_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Notes follow acknowledgements, at most one per NOTE_SPACING.
    let mut last_note = tokio::time::Instant::now() - NOTE_SPACING;
    let mut next_note: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let drain_deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(ctx.drain_timeout).await;
    };
    tokio::pin!(drain_deadline);
    let mut loop_end: Option<Result<RunEnd, SourceError>> = None;
    // After the plugin side fails, records already handed to the producer
    // still get their reports; waiting for them (up to the drain timeout)
    // lets the commit cover them, so the restart repeats less.
    let mut failure_drain: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let outcome = loop {
        if let Some(e) = lock(&shared.failure).take() {
            break Err(e);
        }
        if loop_end.is_some() && lock(&shared.acks).outstanding == 0 {
            break loop_end.take().unwrap_or(Ok(RunEnd::Stopped));
        }
        tokio::select! {
            r = &mut loop_rx, if loop_end.is_none() => match r {
                Ok(Ok(end)) => loop_end = Some(Ok(end)),
                Ok(Err(e)) => {
                    loop_end = Some(Err(e));
                    failure_drain = Some(Box::pin(tokio::time::sleep(ctx.drain_timeout)));
                }
                Err(_) => break Err(SourceError::Internal("the source thread vanished".into())),
            },
            () = shared.wake.notified() => {
                if next_note.is_none() && lock(&shared.acks).unnoted {
                    next_note = Some(Box::pin(tokio::time::sleep_until(last_note + NOTE_SPACING)));
                }
            }
            () = async {
                if let Some(sleep) = next_note.as_mut() {
                    sleep.await;
                }
            }, if next_note.is_some() => {
                next_note = None;
                last_note = tokio::time::Instant::now();
                note(ctx, shared).await;
            }
            _ = ticker.tick() => commit(ctx, shared, &notice_tx).await,
            () = async {
                if let Some(sleep) = failure_drain.as_mut() {
                    sleep.await;
                }
            }, if failure_drain.is_some() => {
                break loop_end.take().unwrap_or(Ok(RunEnd::Stopped));
            }
            () = &mut drain_deadline => {
                tracing::warn!(
                    batches = lock(&shared.acks).outstanding,
                    "Drain timeout reached; undelivered records will be sent again after restart."
                );
                // Not `Finished`, even if the plugin was: some of its
                // records are not committed.
                match loop_end.take() {
                    Some(Err(e)) => break Err(e),
                    _ => break Ok(RunEnd::Stopped),
                }
            }
        }
    };
    // Whatever happened, the acknowledged prefix is safe to keep.
    commit(ctx, shared, &notice_tx).await;
    outcome
}

/// Shortest time between two notes of a source's acknowledged checkpoints:
/// what a `kill -9` can repeat beyond the records in flight.
const NOTE_SPACING: Duration = Duration::from_millis(20);

/// Notes the acknowledged checkpoints between commits
/// ([`OffsetStore::note`](crate::offsets::OffsetStore::note)): cheap, and
/// enough for a crash of the process to repeat only about
/// [`NOTE_SPACING`] of records instead of a commit interval. A note that
/// cannot be written changes nothing: the commits go on.
async fn note(ctx: &SourceContext, shared: &Shared) {
    if ctx.transactional_id.is_some() {
        return;
    }
    let snapshot = {
        let mut acks = lock(&shared.acks);
        if !acks.unnoted {
            return;
        }
        acks.unnoted = false;
        acks.state.clone()
    };
    let store = ctx.store.clone();
    let name = ctx.config.name.clone();
    match tokio::task::spawn_blocking(move || store.note(&name, &snapshot)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "Checkpoint note not written."),
        Err(e) => tracing::debug!(error = %e, "Checkpoint note not written."),
    }
}

/// Writes the checkpoints if any moved, then tells the plugin. A failed
/// write (full or read-only disk) keeps them pending for the next attempt.
/// An exactly-once source commits in its transactions instead.
async fn commit(
    ctx: &SourceContext,
    shared: &Shared,
    notice_tx: &std::sync::mpsc::Sender<Checkpoint>,
) {
    if ctx.transactional_id.is_some() {
        return;
    }
    let (snapshot, changed) = {
        let acks = lock(&shared.acks);
        if acks.changed.is_empty() {
            return;
        }
        (acks.state.clone(), acks.changed.clone())
    };
    let store = ctx.store.clone();
    let name = ctx.config.name.clone();
    let to_write = snapshot.clone();
    let result = tokio::task::spawn_blocking(move || store.commit(&name, &to_write)).await;
    match result {
        Ok(Ok(())) => {
            telemetry::emit(OffsetsCommitted {
                status: &ctx.status,
                partitions: changed.len(),
            });
            let mut acks = lock(&shared.acks);
            for partition in changed {
                let Some(checkpoint) = snapshot.get(&partition) else {
                    continue;
                };
                if acks.state.get(&partition) == Some(checkpoint) {
                    acks.changed.remove(&partition);
                }
                // The thread may already be gone (it failed); the
                // checkpoint is durable either way.
                let _ = notice_tx.send(Checkpoint::new(partition, checkpoint.clone()));
            }
        }
        Ok(Err(e)) => telemetry::emit(OffsetCommitError {
            status: &ctx.status,
            error: &e,
        }),
        Err(e) => telemetry::emit(OffsetCommitError {
            status: &ctx.status,
            error: &e,
        }),
    }
}
