//! tributary: a daemon that feeds Kafka from source plugins and commits each
//! source's position only after Kafka acknowledged everything before it.
//!
//! The binary is a thin wrapper around [`run`]; tests start and stop the
//! real daemon in-process the same way.

pub mod base64;
pub mod cluster;
pub mod config;
pub mod http;
pub mod metrics;
pub mod offsets;
pub mod peek;
pub mod pipeline;
pub mod plugin;
pub mod producer;
pub mod registry;
pub mod reload;
pub mod serialize;
pub mod signals;
pub mod status;
pub mod systemd;
pub mod telemetry;
pub mod top;
pub mod validate;

/// What `tributary --version` prints: the daemon's version and the git
/// revision it was built from, the librdkafka it links, and the plugin ABI
/// it loads.
pub fn version_text() -> String {
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    format!(
        "{} (git {})\nlibrdkafka {librdkafka}\nplugin ABI {}.{}",
        env!("CARGO_PKG_VERSION"),
        env!("TRIBUTARY_GIT_REVISION"),
        tributary_plugin_sdk::abi::ABI_MAJOR,
        tributary_plugin_sdk::abi::ABI_MINOR,
    )
}

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::http::{HttpError, HttpState};
use crate::offsets::{FileStore, KafkaStore, OffsetError, OffsetStore};
use crate::pipeline::{SourceState, SourceStatus, Supervisor};
use crate::plugin::PluginRegistry;
use crate::producer::{Kafka, ProducerError};
use crate::signals::ReloadRequests;

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
    /// The HTTP endpoint could not listen.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Cluster mode could not start.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// `exit_when_finished` with `[cluster]`: a member never finishes, its
    /// units may come back from another member at any time.
    #[error(
        "`--exit-when-finished` cannot be used with `[cluster]`: units move between members, \
         so no member knows when all are finished"
    )]
    ClusterNeverFinishes,
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
    /// The drop-in directory given on the command line, if any; reloads
    /// read the same one.
    pub conf_dir: Option<PathBuf>,
    /// Reload requests (SIGHUP, see [`signals::install`]).
    pub reload_requests: Option<ReloadRequests>,
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
    if options.exit_when_finished && config.cluster.is_some() {
        return Err(RunError::ClusterNeverFinishes);
    }
    let registry = PluginRegistry::load(&config.plugins.dirs);
    for error in &registry.errors {
        telemetry::emit(telemetry::PluginLoadError { error });
    }
    let kafka = Arc::new(Kafka::connect(&config.kafka)?);
    let store = open_store(&config.offsets, &kafka).await?;
    // `tributary peek` finds the embedded broker's address here; a daemon
    // that cannot write it still runs (the log names the address too).
    let _announcement = if config.kafka.is_embedded() {
        producer::Announcement::write(&config.offsets.dir, kafka.bootstrap_servers())
            .inspect_err(|e| {
                tracing::warn!(dir = %config.offsets.dir.display(), error = %e, "Cannot write the embedded broker's address for `tributary peek`.");
            })
            .ok()
    } else {
        None
    };
    let notifier = Arc::new(systemd::Notifier::from_env());
    // Bound before any source starts, so a port in use fails the start.
    let listener = match config.http.listen {
        Some(address) => Some(http::bind(address).await?),
        None => None,
    };
    let token = config.http.token.clone();
    let conf_dir = config.conf_dir.clone();
    let cluster_config = config.cluster.clone();
    let http_port = config.http.listen.map(|a| a.port());
    let supervisor = Supervisor::start(
        config,
        registry,
        store,
        kafka.clone(),
        options.conf_dir.clone(),
        shutdown.clone(),
    );
    let cluster = match &cluster_config {
        Some(c) => Some(Cluster::start(
            c,
            http_port,
            supervisor.clone(),
            kafka.clone(),
        )?),
        None => None,
    };
    let serves_metrics = listener.is_some();
    // The daemon's own tasks (HTTP, reload watcher, watchdog, progress
    // lines): each ends when `shutdown` is cancelled, and the stop waits
    // for them, so none is cut off half-way through a reply or a reload.
    let background = TaskTracker::new();
    if let Some(listener) = listener {
        let state = Arc::new(HttpState {
            supervisor: supervisor.clone(),
            token,
            cluster: cluster.clone(),
        });
        background.spawn(http::serve(listener, state, shutdown.clone()));
    }
    background.spawn(reload::watch(
        supervisor.clone(),
        notifier.clone(),
        options.reload_requests.clone(),
        conf_dir,
        shutdown.clone(),
    ));
    tracing::info!(
        sources = supervisor.statuses().len(),
        bootstrap_servers = kafka.bootstrap_servers(),
        "Daemon running."
    );
    notifier.ready(&format!(
        "Running {} source(s).",
        supervisor.statuses().len()
    ));
    background.spawn(systemd::feed_watchdog(
        notifier.clone(),
        supervisor.clone(),
        shutdown.clone(),
    ));
    background.spawn(report_progress(
        supervisor.clone(),
        serves_metrics,
        shutdown.clone(),
    ));
    if options.exit_when_finished {
        tokio::select! {
            () = supervisor.wait() => {}
            () = shutdown.cancelled() => {}
        }
        shutdown.cancel();
    } else {
        shutdown.cancelled().await;
    }
    notifier.stopping();
    supervisor.wait().await;
    // Every unit has drained and committed: leaving now lets the other
    // members take them at once, from where this one stopped.
    if let Some(cluster) = &cluster {
        cluster.stop().await;
    }
    // Every source has drained and committed: what the Kafka clients
    // report from here on (the in-process broker stopping under them) is
    // the daemon letting go, not a fault.
    crate::producer::closing();
    supervisor.stop_probe().await;
    background.close();
    if tokio::time::timeout(BACKGROUND_STOP_GRACE, background.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            tasks = background.len(),
            "Daemon tasks still running after the stop grace; exiting without them."
        );
    }
    kafka.flush(Duration::from_secs(1));
    let statuses = supervisor.statuses();
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

/// Opens the configured offset store for the offsets tool, outside a
/// running daemon. The in-process broker keeps nothing between runs, so its
/// offsets cannot be handled from outside.
pub async fn open_offset_store(config: &Config) -> Result<Arc<dyn OffsetStore>, RunError> {
    if config.offsets.store == config::OffsetStoreKind::Kafka && config.kafka.is_embedded() {
        return Err(RunError::Offsets(OffsetError::Kafka {
            topic: config.offsets.topic.clone(),
            message: "the embedded broker keeps nothing between runs; set \
                      kafka.bootstrap_servers to reach a cluster"
                .into(),
        }));
    }
    let kafka = Kafka::connect(&config.kafka)?;
    open_store(&config.offsets, &kafka).await
}

/// Opens the configured offset store. The Kafka store's topic is created
/// when missing, unless this host used it before (it was deleted).
async fn open_store(
    offsets: &config::OffsetsConfig,
    kafka: &Kafka,
) -> Result<Arc<dyn OffsetStore>, RunError> {
    match offsets.store {
        config::OffsetStoreKind::File => Ok(Arc::new(FileStore::open(offsets.dir.clone())?)),
        config::OffsetStoreKind::Kafka => {
            let existed = kafka.ensure_offsets_topic(&offsets.topic).await?;
            let dir = offsets.dir.clone();
            let topic = offsets.topic.clone();
            tokio::task::spawn_blocking(move || {
                crate::offsets::kafka::check_marker(&dir, &topic, existed)
            })
            .await
            .map_err(|e| {
                RunError::Offsets(crate::offsets::OffsetError::Kafka {
                    topic: offsets.topic.clone(),
                    message: e.to_string(),
                })
            })??;
            tracing::info!(topic = %offsets.topic, "Offsets are kept in Kafka.");
            Ok(Arc::new(KafkaStore::new(
                kafka.client_config(),
                &offsets.topic,
            )?))
        }
    }
}

/// How long the stop waits for the daemon's own tasks once the sources
/// have drained: a reload or an HTTP reply in progress gets this long.
const BACKGROUND_STOP_GRACE: Duration = Duration::from_secs(5);

/// How often the daemon looks at what each source has done: the operator's
/// first sign that data flows, before any metrics are scraped.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// What a progress line was last written for, per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    produced: u64,
    state: SourceState,
    restarts: u64,
}

/// Whether progress goes to a person at a terminal: standard error (the
/// log) is a terminal, and no service manager runs the daemon.
fn logs_to_a_terminal() -> bool {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tty && std::env::var_os("INVOCATION_ID").is_none()
        && std::env::var_os("JOURNAL_STREAM").is_none()
}

/// How recent a scrape of `/metrics` keeps throughput out of the log.
const SCRAPE_MEMORY: Duration = Duration::from_secs(120);

/// Logs a source's progress when something changed since its last line:
/// state changes and restarts always (info, or warn once it has
/// restarted); throughput changes at info while a person may be watching
/// (the log is a terminal and no scraper reads `/metrics`, or no
/// `/metrics` serves the numbers at all), at debug otherwise (under systemd
/// or with a scraper). An idle daemon logs nothing.
async fn report_progress(
    supervisor: Arc<Supervisor>,
    serves_metrics: bool,
    shutdown: CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut last: HashMap<String, Seen> = HashMap::new();
    let terminal = logs_to_a_terminal();
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let statuses: Vec<Arc<SourceStatus>> = supervisor.statuses();
        last.retain(|name, _| statuses.iter().any(|s| &s.name == name));
        for status in &statuses {
            let now = Seen {
                produced: status.records_produced.load(Relaxed),
                state: status.state(),
                restarts: status.restarts.load(Relaxed),
            };
            let before = last.insert(status.name.clone(), now).unwrap_or(Seen {
                produced: 0,
                state: SourceState::Starting,
                restarts: 0,
            });
            if before == now {
                continue;
            }
            let rate = now.produced.saturating_sub(before.produced) as f64
                / PROGRESS_INTERVAL.as_secs_f64();
            let only_throughput = before.state == now.state && before.restarts == now.restarts;
            if now.restarts > 0 {
                tracing::warn!(
                    source = %status.name,
                    state = now.state.as_str(),
                    produced = now.produced,
                    per_sec = rate.round(),
                    commits = status.commits.load(Relaxed),
                    restarts = now.restarts,
                    last_error = status.last_error().unwrap_or_default(),
                    "Progress."
                );
            } else if only_throughput
                && serves_metrics
                && (!terminal || crate::metrics::global().scraped_within(SCRAPE_MEMORY))
            {
                tracing::debug!(
                    source = %status.name,
                    state = now.state.as_str(),
                    produced = now.produced,
                    per_sec = rate.round(),
                    in_flight = status.in_flight.load(Relaxed),
                    commits = status.commits.load(Relaxed),
                    "Progress."
                );
            } else {
                tracing::info!(
                    source = %status.name,
                    state = now.state.as_str(),
                    produced = now.produced,
                    per_sec = rate.round(),
                    in_flight = status.in_flight.load(Relaxed),
                    commits = status.commits.load(Relaxed),
                    "Progress."
                );
            }
        }
    }
}
