//! One run of one source: a plugin thread that polls, serialises and sends,
//! and an async task that tracks delivery and commits offsets.
//!
//! ```text
//!  plugin thread                         tracker task (tokio)
//!  ─────────────                         ────────────────────
//!  poll() ─► serialise ─► send_result ─► InFlight{futures} ──► await in any order
//!      ▲                                                       AckTracker: contiguous prefix
//!      └──── committed(partition, checkpoint) ◄── commit ◄──── every commit_interval
//! ```
//!
//! The plugin is only called from its thread. The tracker owns the
//! checkpoints: a checkpoint is written only when every record up to it was
//! acknowledged, and the plugin hears of it only after the write is durable.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::SourceError;
use super::ack::{AckTracker, BatchId};
use super::status::SourceStatus;
use crate::config::SourceConfig;
use crate::offsets::{Checkpoints, OffsetStore};
use crate::plugin::{LoadedPlugin, PluginInstance, PollOutcome};
use crate::producer::Producer;
use crate::serialize::RecordSerializer;

/// How long one `poll` may wait; also how quickly a stop is noticed.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Batches between the plugin thread and the tracker. Small: the real
/// bound on memory is the producer queue, this only smooths hand-over.
const BATCH_CHANNEL: usize = 16;
/// How long a stopped source's thread may take to return from the plugin
/// before it is given up on (a plugin stuck in `poll`).
const THREAD_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait before retrying a send when the producer queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(2);

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
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("source", &self.config.name)
            .field("plugin", &self.plugin.name)
            .finish_non_exhaustive()
    }
}

/// A batch handed to the producer, waiting for its delivery reports.
struct InFlight {
    partition: Vec<u8>,
    checkpoint: Vec<u8>,
    futures: Vec<DeliveryFuture>,
    bytes: u64,
}

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

    let (batch_tx, batch_rx) = mpsc::channel::<InFlight>(BATCH_CHANNEL);
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<(Vec<u8>, Vec<u8>)>();
    let (done_tx, done_rx) = oneshot::channel();
    // Stops the thread on shutdown, and also when the tracker fails.
    let thread_stop = stop.child_token();

    let thread = SourceThread {
        plugin: ctx.plugin.clone(),
        config: ctx.config.clone(),
        checkpoints: loaded.iter().map(|(p, c)| (p.clone(), c.clone())).collect(),
        producer: ctx.producer.clone(),
        status: ctx.status.clone(),
        stop: thread_stop.clone(),
        span: tracing::Span::current(),
    };
    std::thread::Builder::new()
        .name(format!("source-{}", ctx.config.name))
        .spawn(move || {
            let result = thread.run(batch_tx, commit_rx);
            let _ = done_tx.send(result);
        })
        .map_err(|e| SourceError::Internal(format!("cannot start the source thread: {e}")))?;

    let tracked = track(ctx, loaded, batch_rx, commit_tx, stop).await;
    if tracked.is_err() {
        thread_stop.cancel();
    }
    // The thread ends once it sees the stop, a closed channel, or the end of
    // its data, and after it has passed on the final commit notifications.
    let thread_result = tokio::select! {
        r = done_rx => r.unwrap_or_else(|_| Err(SourceError::Internal("the source thread vanished".into()))),
        () = async {
            thread_stop.cancelled().await;
            tokio::time::sleep(THREAD_STOP_GRACE).await;
        } => Err(SourceError::Hung { grace: THREAD_STOP_GRACE }),
    };
    ctx.status.in_flight.store(0, Ordering::Relaxed);
    match (tracked, thread_result) {
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(end)) => Ok(end),
    }
}

struct SourceThread {
    plugin: Arc<LoadedPlugin>,
    config: SourceConfig,
    checkpoints: Vec<(Vec<u8>, Vec<u8>)>,
    producer: Producer,
    status: Arc<SourceStatus>,
    stop: CancellationToken,
    span: tracing::Span,
}

impl SourceThread {
    fn run(
        self,
        batch_tx: mpsc::Sender<InFlight>,
        commits: std::sync::mpsc::Receiver<(Vec<u8>, Vec<u8>)>,
    ) -> Result<RunEnd, SourceError> {
        let _span = self.span.clone().entered();
        let config_json = serde_json::Value::Object(self.config.options.clone()).to_string();
        let mut instance = PluginInstance::create(
            self.plugin.clone(),
            &self.config.source_type,
            &self.config.name,
            &config_json,
            &self.checkpoints,
        )?;
        let serializer = RecordSerializer::new(self.config.format, self.config.key.clone());
        let produced = self.produce_loop(&mut instance, &serializer, &batch_tx, &commits);
        // Closing the batch channel lets the tracker drain and make its final
        // commit; its notifications still reach the plugin below.
        drop(batch_tx);
        let mut notify_result: Result<(), SourceError> = Ok(());
        while let Ok((partition, checkpoint)) = commits.recv() {
            if let Err(e) = instance.committed(&partition, &checkpoint) {
                notify_result = Err(e.into());
            }
        }
        let end = produced?;
        notify_result?;
        Ok(end)
    }

    fn produce_loop(
        &self,
        instance: &mut PluginInstance,
        serializer: &RecordSerializer,
        batch_tx: &mpsc::Sender<InFlight>,
        commits: &std::sync::mpsc::Receiver<(Vec<u8>, Vec<u8>)>,
    ) -> Result<RunEnd, SourceError> {
        loop {
            while let Ok((partition, checkpoint)) = commits.try_recv() {
                instance.committed(&partition, &checkpoint)?;
            }
            if self.stop.is_cancelled() {
                return Ok(RunEnd::Stopped);
            }
            let batch = match instance.poll(POLL_TIMEOUT)? {
                PollOutcome::Idle => continue,
                PollOutcome::Finished => return Ok(RunEnd::Finished),
                PollOutcome::Batch(b) => b,
            };
            let rows = batch.records.num_rows() as u64;
            self.status
                .records_polled
                .fetch_add(rows, Ordering::Relaxed);
            self.status.batches.fetch_add(1, Ordering::Relaxed);
            if let Some(lag) = batch.lag {
                self.status
                    .lag
                    .store(i64::try_from(lag).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
            let serialized = serializer.serialize(&batch.records)?;
            let mut futures = Vec::with_capacity(serialized.len());
            for i in 0..serialized.len() {
                let mut record = FutureRecord::to(&self.config.topic).payload(serialized.value(i));
                if let Some(key) = serialized.key(i) {
                    record = record.key(key);
                }
                match self.send(record)? {
                    Some(f) => futures.push(f),
                    // Stopped while the queue was full: this batch is
                    // abandoned. Its checkpoint is never committed, so its
                    // rows are read again after restart.
                    None => return Ok(RunEnd::Stopped),
                }
            }
            self.status
                .in_flight
                .fetch_add(futures.len() as i64, Ordering::Relaxed);
            let in_flight = InFlight {
                partition: batch.partition,
                checkpoint: batch.checkpoint,
                futures,
                bytes: serialized.values.len() as u64,
            };
            if batch_tx.blocking_send(in_flight).is_err() {
                // The tracker stopped (it failed); it reports why.
                return Ok(RunEnd::Stopped);
            }
        }
    }

    /// Hands one record to the producer, waiting while its queue is full
    /// (backpressure). Returns `None` if stopped while waiting.
    fn send(
        &self,
        mut record: FutureRecord<'_, [u8], [u8]>,
    ) -> Result<Option<DeliveryFuture>, SourceError> {
        loop {
            match self.producer.send_result(record) {
                Ok(f) => return Ok(Some(f)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    if self.stop.is_cancelled() {
                        return Ok(None);
                    }
                    record = r;
                    std::thread::sleep(QUEUE_FULL_WAIT);
                }
                Err((e, _)) => {
                    return Err(SourceError::Produce {
                        topic: self.config.topic.clone(),
                        source: e,
                    });
                }
            }
        }
    }
}

/// Waits for every delivery report of a batch, in order.
async fn delivered(
    id: BatchId,
    futures: Vec<DeliveryFuture>,
    topic: &str,
) -> (BatchId, u64, Result<(), SourceError>) {
    let n = futures.len() as u64;
    for f in futures {
        match f.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                let err = SourceError::Delivery {
                    topic: topic.to_owned(),
                    source: e,
                };
                return (id, n, Err(err));
            }
            Err(_) => {
                let err = SourceError::Internal("the producer dropped a delivery report".into());
                return (id, n, Err(err));
            }
        }
    }
    (id, n, Ok(()))
}

/// Tracks deliveries and commits checkpoints until the thread closes the
/// batch channel and everything in flight is settled, or the drain timeout
/// passes after `stop`.
async fn track(
    ctx: &SourceContext,
    mut state: Checkpoints,
    mut batch_rx: mpsc::Receiver<InFlight>,
    commit_tx: std::sync::mpsc::Sender<(Vec<u8>, Vec<u8>)>,
    stop: &CancellationToken,
) -> Result<(), SourceError> {
    let topic = ctx.config.topic.as_str();
    let mut acks = AckTracker::new();
    let mut pending = FuturesUnordered::new();
    let mut bytes_of = std::collections::HashMap::new();
    let mut changed = BTreeSet::new();
    let mut open = true;
    let mut ticker = tokio::time::interval(ctx.commit_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drain_deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(ctx.drain_timeout).await;
    };
    tokio::pin!(drain_deadline);
    let mut failure = None;

    while open || !pending.is_empty() {
        tokio::select! {
            batch = batch_rx.recv(), if open => match batch {
                Some(b) => {
                    let id = acks.register(&b.partition, b.checkpoint);
                    bytes_of.insert(id, b.bytes);
                    pending.push(delivered(id, b.futures, topic));
                }
                None => open = false,
            },
            Some((id, n, result)) = pending.next(), if !pending.is_empty() => {
                ctx.status.in_flight.fetch_sub(n as i64, Ordering::Relaxed);
                let bytes = bytes_of.remove(&id).unwrap_or(0);
                match result {
                    Ok(()) => {
                        ctx.status.records_produced.fetch_add(n, Ordering::Relaxed);
                        ctx.status.bytes_produced.fetch_add(bytes, Ordering::Relaxed);
                        if let Some((partition, checkpoint)) = acks.ack(id) {
                            state.insert(partition.clone(), checkpoint);
                            changed.insert(partition);
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            },
            _ = ticker.tick() => {
                commit(ctx, &state, &mut changed, &commit_tx).await;
            },
            () = &mut drain_deadline => {
                tracing::warn!(
                    batches = acks.in_flight(),
                    "Drain timeout reached; undelivered records will be sent again after restart."
                );
                break;
            }
        }
    }
    // Whatever happened, the acknowledged prefix is safe to keep.
    commit(ctx, &state, &mut changed, &commit_tx).await;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Writes the checkpoints if any changed, then tells the plugin. A failed
/// write (full or read-only disk) keeps the changes for the next attempt.
async fn commit(
    ctx: &SourceContext,
    state: &Checkpoints,
    changed: &mut BTreeSet<Vec<u8>>,
    commit_tx: &std::sync::mpsc::Sender<(Vec<u8>, Vec<u8>)>,
) {
    if changed.is_empty() {
        return;
    }
    let store = ctx.store.clone();
    let name = ctx.config.name.clone();
    let snapshot = state.clone();
    let result = tokio::task::spawn_blocking(move || store.commit(&name, &snapshot)).await;
    match result {
        Ok(Ok(())) => {
            ctx.status.committed();
            for partition in std::mem::take(changed) {
                if let Some(checkpoint) = state.get(&partition) {
                    // The thread may already be gone (it failed); the
                    // checkpoint is durable either way.
                    let _ = commit_tx.send((partition, checkpoint.clone()));
                }
            }
        }
        Ok(Err(e)) => {
            ctx.status.commit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "Offset commit failed; will retry.");
        }
        Err(e) => {
            ctx.status.commit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "Offset commit task failed; will retry.");
        }
    }
}
