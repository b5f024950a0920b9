//! tributary: a daemon that feeds Kafka from source plugins and commits each
//! source's position only after Kafka acknowledged everything before it.
//!
//! The binary is a thin wrapper around [`run`]; tests start and stop the
//! real daemon in-process the same way.

pub mod config;
pub mod offsets;
pub mod pipeline;
pub mod plugin;
pub mod producer;
pub mod serialize;
pub mod signals;
pub mod systemd;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::Config;
use crate::offsets::{FileStore, OffsetError, OffsetStore};
use crate::pipeline::{SourceContext, SourceState, SourceStatus};
use crate::plugin::PluginRegistry;
use crate::producer::{Kafka, ProducerError};

/// Errors that stop the daemon as a whole. Problems of a single source never
/// do: that source fails and restarts while the others run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Kafka client or the embedded broker could not start.
    #[error(transparent)]
    Kafka(#[from] ProducerError),
    /// The offset store could not be opened.
    #[error(transparent)]
    Offsets(#[from] OffsetError),
    /// With `exit_when_finished`: some sources did not finish.
    #[error("{0} source(s) did not finish: {1}")]
    Unfinished(usize, String),
}

/// How a run behaves beyond its config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once every source has finished (finite inputs, benchmarks)
    /// instead of waiting for a signal.
    pub exit_when_finished: bool,
}

/// Runs the daemon until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    run_with(config, RunOptions::default(), shutdown).await
}

/// Runs the daemon until `shutdown` is cancelled or, with
/// [`RunOptions::exit_when_finished`], until every source finished.
pub async fn run_with(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let registry = PluginRegistry::load(&config.plugins.dirs);
    for error in &registry.errors {
        tracing::error!(error = %error, "Plugin library not loaded.");
    }
    let store: Arc<dyn OffsetStore> = Arc::new(FileStore::open(config.offsets.dir.clone())?);
    let kafka = Arc::new(Kafka::connect(&config.kafka)?);
    let tasks = TaskTracker::new();
    let mut statuses = Vec::new();
    for source in config.sources.iter().filter(|s| s.enabled) {
        let status = Arc::new(SourceStatus::new(&source.name, &source.source_type));
        statuses.push(status.clone());
        let span =
            tracing::info_span!("source", source = %source.name, plugin = %source.source_type);
        // A source whose plugin is missing or rejects its options does not
        // start; every other source still runs.
        let problems = validate::check_source(source, &registry);
        let plugin = match registry.get(&source.source_type) {
            Some(plugin) if problems.is_empty() => plugin,
            _ => {
                let message: Vec<String> = problems.iter().map(ToString::to_string).collect();
                status.set_state(SourceState::Failed);
                status.set_error(message.join("; "));
                span.in_scope(|| {
                    for problem in &problems {
                        tracing::error!(error = %problem, "Source not started.");
                    }
                });
                continue;
            }
        };
        let ctx = SourceContext {
            config: source.clone(),
            plugin: plugin.clone(),
            producer: kafka.producer(),
            store: store.clone(),
            status,
            commit_interval: Duration::from_millis(config.offsets.commit_interval_ms),
            drain_timeout: Duration::from_millis(config.kafka.drain_timeout_ms),
        };
        tasks.spawn(pipeline::supervise(ctx, kafka.clone(), shutdown.clone()).instrument(span));
    }
    tasks.close();
    tracing::info!(
        sources = statuses.len(),
        bootstrap_servers = kafka.bootstrap_servers(),
        "Daemon running."
    );
    let notifier = Arc::new(systemd::Notifier::from_env());
    notifier.ready(&format!("Running {} source(s).", statuses.len()));
    let watchdog = tokio::spawn(systemd::feed_watchdog(
        notifier.clone(),
        statuses.clone(),
        shutdown.clone(),
    ));
    let progress = tokio::spawn(report_progress(statuses.clone(), shutdown.clone()));
    if options.exit_when_finished {
        tokio::select! {
            () = tasks.wait() => {}
            () = shutdown.cancelled() => {}
        }
        shutdown.cancel();
    } else {
        shutdown.cancelled().await;
    }
    notifier.stopping();
    tasks.wait().await;
    progress.abort();
    watchdog.abort();
    kafka.flush(Duration::from_secs(1));
    let unfinished: Vec<String> = statuses
        .iter()
        .filter(|s| s.state() != SourceState::Finished)
        .map(|s| format!("{} ({})", s.name, s.state().as_str()))
        .collect();
    for status in &statuses {
        tracing::info!(
            source = %status.name,
            state = status.state().as_str(),
            produced = status.records_produced.load(std::sync::atomic::Ordering::Relaxed),
            "Source summary."
        );
    }
    if options.exit_when_finished && !unfinished.is_empty() {
        return Err(RunError::Unfinished(
            unfinished.len(),
            unfinished.join(", "),
        ));
    }
    Ok(())
}

/// How often the daemon logs what each source has done: the operator's
/// first sign that data flows, before any metrics are scraped.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

async fn report_progress(statuses: Vec<Arc<SourceStatus>>, shutdown: CancellationToken) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut last: Vec<u64> = vec![0; statuses.len()];
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        for (status, last) in statuses.iter().zip(last.iter_mut()) {
            let produced = status.records_produced.load(Relaxed);
            if produced == *last
                && !matches!(status.state(), SourceState::Running | SourceState::Backoff)
            {
                continue;
            }
            let rate = (produced - *last) as f64 / PROGRESS_INTERVAL.as_secs_f64();
            *last = produced;
            let restarts = status.restarts.load(Relaxed);
            if restarts == 0 {
                tracing::info!(
                    source = %status.name,
                    state = status.state().as_str(),
                    produced,
                    per_sec = rate.round(),
                    in_flight = status.in_flight.load(Relaxed),
                    commits = status.commits.load(Relaxed),
                    "Progress."
                );
            } else {
                tracing::warn!(
                    source = %status.name,
                    state = status.state().as_str(),
                    produced,
                    per_sec = rate.round(),
                    commits = status.commits.load(Relaxed),
                    restarts,
                    last_error = status.last_error().unwrap_or_default(),
                    "Progress."
                );
            }
        }
    }
}
