//! The set of sources the daemon runs, and everything that changes it while
//! it runs: pause, resume, restart, offset resets, and configuration
//! reloads that start, restart and stop single sources while the others
//! keep running.
//!
//! Each source has one task running [`supervise`] and a `watch` channel
//! carrying what it should do ([`Desired`]). Stopping, pausing and
//! restarting all end the current run the way a shutdown does (stop
//! polling, deliver, commit), so none of them loses or repeats records.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{Desired, Mode, SourceContext, SourceState, SourceStatus, supervise};
use crate::config::{self, Config, ConfigErrors, SourceConfig};
use crate::metrics;
use crate::offsets::{Checkpoints, OffsetError, OffsetStore};
use crate::plugin::PluginRegistry;
use crate::producer::Kafka;
use crate::validate;

/// How often the broker is asked for metadata to decide readiness.
const KAFKA_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may wait for the broker.
const KAFKA_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an operator's request about a source was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No enabled source has that name.
    #[error("no source named `{0}`")]
    NotFound(String),
    /// The request does not fit the source's state.
    #[error("source `{name}` is {state}: {message}")]
    Conflict {
        /// The source.
        name: String,
        /// Its state.
        state: &'static str,
        /// What to do instead.
        message: &'static str,
    },
    /// The offset store failed.
    #[error(transparent)]
    Offsets(#[from] OffsetError),
    /// A task of the daemon failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration has errors; the running one is kept.
    #[error("configuration invalid; the running configuration is kept:\n{0}")]
    Invalid(ConfigErrors),
    /// A task of the daemon failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a reload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadSummary {
    /// Sources started for the first time.
    pub added: Vec<String>,
    /// Sources restarted with a new configuration.
    pub changed: Vec<String>,
    /// Sources drained and stopped.
    pub removed: Vec<String>,
    /// Sources left running untouched.
    pub unchanged: usize,
}

/// The outcome of the latest reachability probe of the brokers.
#[derive(Debug, Clone)]
pub enum KafkaCheck {
    /// No probe has finished yet.
    Pending,
    /// The brokers answered a metadata request.
    Reachable {
        /// Brokers in the answer.
        brokers: usize,
    },
    /// The brokers did not answer in time, or answered with an error.
    Unreachable {
        /// The client's error.
        error: String,
    },
}

/// A source as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceView {
    /// The source's name.
    pub name: String,
    /// The plugin's source type.
    pub plugin: String,
    /// The topic it produces to.
    pub topic: String,
    /// Its state (`running`, `paused`, …).
    pub state: &'static str,
    /// Rows received from the plugin.
    pub records_polled: u64,
    /// Records Kafka acknowledged.
    pub records_produced: u64,
    /// Value bytes Kafka acknowledged.
    pub bytes_produced: u64,
    /// Batches received.
    pub batches: u64,
    /// Records sent and not yet acknowledged.
    pub records_in_flight: i64,
    /// Successful offset commits.
    pub offset_commits: u64,
    /// Failed offset commits.
    pub offset_commit_failures: u64,
    /// Seconds since the last commit (or since set-up, before the first).
    pub last_commit_age_seconds: f64,
    /// Restarts after failures.
    pub restarts: u64,
    /// Units behind, when the plugin knows.
    pub lag: Option<i64>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl SourceView {
    fn of(config: &SourceConfig, status: &SourceStatus) -> SourceView {
        use std::sync::atomic::Ordering::Relaxed;
        let lag = status.lag.load(Relaxed);
        SourceView {
            name: config.name.clone(),
            plugin: config.source_type.clone(),
            topic: config.topic.clone(),
            state: status.state().as_str(),
            records_polled: status.records_polled.load(Relaxed),
            records_produced: status.records_produced.load(Relaxed),
            bytes_produced: status.bytes_produced.load(Relaxed),
            batches: status.batches.load(Relaxed),
            records_in_flight: status.in_flight.load(Relaxed).max(0),
            offset_commits: status.commits.load(Relaxed),
            offset_commit_failures: status.commit_failures.load(Relaxed),
            last_commit_age_seconds: status.commit_age().as_secs_f64(),
            restarts: status.restarts.load(Relaxed),
            lag: (lag >= 0).then_some(lag),
            last_error: status.last_error(),
        }
    }
}

/// What readiness is made of; see [`Supervisor::readiness`].
#[derive(Debug, Clone)]
pub struct Readiness {
    /// The configuration in force was loaded and validated.
    pub config_loaded: bool,
    /// The latest broker probe.
    pub kafka: KafkaCheck,
    /// Sources that are not running and committing: `(name, state, why)`.
    pub failing_sources: Vec<(String, &'static str, String)>,
    /// The latest reload's error, if it was rejected (the running
    /// configuration is still the previous one; readiness does not depend on
    /// it).
    pub last_reload_error: Option<String>,
}

impl Readiness {
    /// Whether every check passes.
    pub fn is_ready(&self) -> bool {
        self.config_loaded
            && matches!(self.kafka, KafkaCheck::Reachable { .. })
            && self.failing_sources.is_empty()
    }
}

/// One configured, enabled source.
struct Entry {
    config: SourceConfig,
    status: Arc<SourceStatus>,
    /// `None` when the source could not be started (its plugin is missing
    /// or refused its options).
    control: Option<watch::Sender<Desired>>,
    task: Option<JoinHandle<()>>,
}

/// Runs the sources and changes them on request.
pub struct Supervisor {
    kafka: Arc<Kafka>,
    store: Arc<dyn OffsetStore>,
    registry: PluginRegistry,
    /// The `--conf-dir` given on the command line, re-applied by reloads.
    conf_dir_arg: Option<PathBuf>,
    commit_interval: Duration,
    drain_timeout: Duration,
    shutdown: CancellationToken,
    /// One task per source run.
    tasks: TaskTracker,
    /// The broker probe; ends on `shutdown`, awaited by [`Self::stop_probe`].
    probe: TaskTracker,
    config: Mutex<Arc<Config>>,
    sources: Mutex<BTreeMap<String, Entry>>,
    /// One reload at a time (SIGHUP and the drop-in watcher may coincide).
    reload_lock: tokio::sync::Mutex<()>,
    kafka_check: Mutex<KafkaCheck>,
    last_reload_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("sources", &lock(&self.sources).keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Starts every enabled source of `config`, and the broker probe.
    /// Sources whose plugin is missing or refuses their options are marked
    /// failed; the others run.
    pub fn start(
        config: Config,
        registry: PluginRegistry,
        store: Arc<dyn OffsetStore>,
        kafka: Arc<Kafka>,
        conf_dir_arg: Option<PathBuf>,
        shutdown: CancellationToken,
    ) -> Arc<Supervisor> {
        let supervisor = Arc::new(Supervisor {
            kafka,
            store,
            registry,
            conf_dir_arg,
            commit_interval: Duration::from_millis(config.offsets.commit_interval_ms),
            drain_timeout: Duration::from_millis(config.kafka.drain_timeout_ms),
            shutdown,
            tasks: TaskTracker::new(),
            probe: TaskTracker::new(),
            config: Mutex::new(Arc::new(config.clone())),
            sources: Mutex::new(BTreeMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
            kafka_check: Mutex::new(KafkaCheck::Pending),
            last_reload_error: Mutex::new(None),
        });
        {
            let mut sources = lock(&supervisor.sources);
            for source in config.sources.iter().filter(|s| s.enabled) {
                let status = Arc::new(SourceStatus::new(&source.name, &source.source_type));
                let entry = supervisor.launch(source.clone(), status);
                sources.insert(source.name.clone(), entry);
            }
        }
        // Closed so that `wait` returns once every source task ended;
        // tasks spawned later by reloads and restarts are still tracked.
        supervisor.tasks.close();
        supervisor.probe.spawn(supervisor.clone().probe_kafka());
        supervisor.probe.close();
        supervisor
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        lock(&self.config).clone()
    }

    /// The status of every source, for logs.
    pub fn statuses(&self) -> Vec<Arc<SourceStatus>> {
        lock(&self.sources)
            .values()
            .map(|e| e.status.clone())
            .collect()
    }

    /// Waits until every source task has ended (finished or stopped).
    pub async fn wait(&self) {
        self.tasks.wait().await;
    }

    /// Waits for the broker probe, which ends once `shutdown` is cancelled
    /// (a metadata call still blocked on a frozen broker is left to its
    /// own timeout on a blocking thread).
    pub async fn stop_probe(&self) {
        self.probe.wait().await;
    }

    /// Starts one source's task, or marks it failed when it cannot run.
    fn launch(&self, source: SourceConfig, status: Arc<SourceStatus>) -> Entry {
        metrics::global().add_source(status.clone());
        let span =
            tracing::info_span!("source", source = %source.name, plugin = %source.source_type);
        let problems = validate::check_source(&source, &self.registry);
        let plugin = match self.registry.get(&source.source_type) {
            Some(plugin) if problems.is_empty() => plugin.clone(),
            _ => {
                let message: Vec<String> = problems.iter().map(ToString::to_string).collect();
                status.set_state(SourceState::Failed);
                status.set_error(message.join("; "));
                span.in_scope(|| {
                    for problem in &problems {
                        tracing::error!(error = %problem, "Source not started.");
                    }
                });
                return Entry {
                    config: source,
                    status,
                    control: None,
                    task: None,
                };
            }
        };
        status.set_state(SourceState::Starting);
        let (control, watch) = watch::channel(Desired::RUN);
        let ctx = SourceContext {
            config: source.clone(),
            plugin,
            producer: self.kafka.producer(),
            store: self.store.clone(),
            status: status.clone(),
            commit_interval: self.commit_interval,
            drain_timeout: self.drain_timeout,
        };
        let task = self.tasks.spawn(
            supervise(ctx, self.kafka.clone(), self.shutdown.clone(), watch).instrument(span),
        );
        Entry {
            config: source,
            status,
            control: Some(control),
            task: Some(task),
        }
    }

    /// Every source, in name order.
    pub fn sources(&self) -> Vec<SourceView> {
        lock(&self.sources)
            .values()
            .map(|e| SourceView::of(&e.config, &e.status))
            .collect()
    }

    /// One source.
    pub fn source(&self, name: &str) -> Option<SourceView> {
        lock(&self.sources)
            .get(name)
            .map(|e| SourceView::of(&e.config, &e.status))
    }

    /// Drains the source and keeps it idle until [`Supervisor::resume`].
    pub fn pause(&self, name: &str) -> Result<SourceView, ControlError> {
        self.steer(name, |d| d.mode = Mode::Pause)
    }

    /// Lets a paused source run again, from its committed checkpoints.
    pub fn resume(&self, name: &str) -> Result<SourceView, ControlError> {
        self.steer(name, |d| d.mode = Mode::Run)
    }

    /// Drains the source and starts it again from its committed checkpoints
    /// (a paused source is resumed; a finished one runs again).
    pub fn restart(&self, name: &str) -> Result<SourceView, ControlError> {
        let mut sources = lock(&self.sources);
        let entry = sources
            .get_mut(name)
            .ok_or_else(|| ControlError::NotFound(name.to_owned()))?;
        if entry.task.as_ref().is_some_and(JoinHandle::is_finished) {
            tracing::info!(source = %name, "Source restarting on request.");
            *entry = self.launch(entry.config.clone(), entry.status.clone());
            return Ok(SourceView::of(&entry.config, &entry.status));
        }
        drop(sources);
        self.steer(name, |d| {
            d.mode = Mode::Run;
            d.generation += 1;
        })
    }

    fn steer(
        &self,
        name: &str,
        change: impl FnOnce(&mut Desired),
    ) -> Result<SourceView, ControlError> {
        let sources = lock(&self.sources);
        let entry = sources
            .get(name)
            .ok_or_else(|| ControlError::NotFound(name.to_owned()))?;
        let state = entry.status.state();
        let Some(control) = &entry.control else {
            return Err(ControlError::Conflict {
                name: name.to_owned(),
                state: state.as_str(),
                message: "it cannot run (see last_error); fix its configuration and reload",
            });
        };
        if entry.task.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(ControlError::Conflict {
                name: name.to_owned(),
                state: state.as_str(),
                message: "its task has ended; restart it to run it again",
            });
        }
        control.send_modify(change);
        Ok(SourceView::of(&entry.config, &entry.status))
    }

    /// The committed checkpoints of a source.
    pub async fn offsets(&self, name: &str) -> Result<Checkpoints, ControlError> {
        if !lock(&self.sources).contains_key(name) {
            return Err(ControlError::NotFound(name.to_owned()));
        }
        let store = self.store.clone();
        let owned = name.to_owned();
        Ok(tokio::task::spawn_blocking(move || store.load(&owned))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))??)
    }

    /// Forgets the committed checkpoints of a source that is not running
    /// (paused, stopped, finished or failed), so its next run starts from
    /// the beginning of its input, as Kafka Connect's offset reset does.
    pub async fn reset_offsets(&self, name: &str) -> Result<(), ControlError> {
        {
            let sources = lock(&self.sources);
            let entry = sources
                .get(name)
                .ok_or_else(|| ControlError::NotFound(name.to_owned()))?;
            let state = entry.status.state();
            if !matches!(
                state,
                SourceState::Paused
                    | SourceState::Stopped
                    | SourceState::Finished
                    | SourceState::Failed
            ) {
                return Err(ControlError::Conflict {
                    name: name.to_owned(),
                    state: state.as_str(),
                    message: "pause it first; offsets of a running source cannot be reset",
                });
            }
        }
        let store = self.store.clone();
        let owned = name.to_owned();
        tokio::task::spawn_blocking(move || store.commit(&owned, &Checkpoints::new()))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))??;
        tracing::warn!(source = %name, "Offsets reset; the source starts from the beginning of its input when it runs again.");
        Ok(())
    }

    /// Whether the daemon is ready: config loaded, Kafka reachable, every
    /// enabled source running and committing (a paused or finished source
    /// is where an operator or its input left it, and counts as fine).
    pub fn readiness(&self) -> Readiness {
        let failing_sources = lock(&self.sources)
            .values()
            .filter_map(|e| {
                let state = e.status.state();
                let why = match state {
                    SourceState::Running if e.status.commit_failing() => {
                        "offset commits are failing".to_owned()
                    }
                    SourceState::Running | SourceState::Paused | SourceState::Finished => {
                        return None;
                    }
                    _ => e
                        .status
                        .last_error()
                        .unwrap_or_else(|| format!("the source is {}", state.as_str())),
                };
                Some((e.config.name.clone(), state.as_str(), why))
            })
            .collect();
        Readiness {
            config_loaded: true,
            kafka: lock(&self.kafka_check).clone(),
            failing_sources,
            last_reload_error: lock(&self.last_reload_error).clone(),
        }
    }

    /// Asks the brokers for metadata every few seconds until shutdown.
    ///
    /// librdkafka's metadata call can block well past its timeout while a
    /// broker holds the connection open without answering (a frozen
    /// process), so the probe runs on a blocking thread and a late answer
    /// counts as unreachable; no second probe starts while one hangs.
    async fn probe_kafka(self: Arc<Self>) {
        let mut hanging: Option<JoinHandle<Result<usize, rdkafka::error::KafkaError>>> = None;
        loop {
            let mut probe = hanging.take().unwrap_or_else(|| {
                let producer = self.kafka.producer();
                tokio::task::spawn_blocking(move || {
                    producer
                        .client()
                        .fetch_metadata(None, KAFKA_PROBE_TIMEOUT)
                        .map(|m| m.brokers().len())
                })
            });
            let check = tokio::select! {
                r = &mut probe => match r {
                    Ok(Ok(0)) => KafkaCheck::Unreachable { error: "the metadata answer lists no broker".into() },
                    Ok(Ok(brokers)) => KafkaCheck::Reachable { brokers },
                    Ok(Err(e)) => KafkaCheck::Unreachable { error: self.kafka.client_errors().explain(e) },
                    Err(e) => KafkaCheck::Unreachable { error: format!("probe task failed: {e}") },
                },
                () = tokio::time::sleep(KAFKA_PROBE_TIMEOUT + KAFKA_PROBE_INTERVAL) => {
                    hanging = Some(probe);
                    KafkaCheck::Unreachable {
                        error: self.kafka.client_errors().explain(format_args!(
                            "no metadata answer within {:?}",
                            KAFKA_PROBE_TIMEOUT + KAFKA_PROBE_INTERVAL
                        )),
                    }
                }
                () = self.shutdown.cancelled() => return,
            };
            *lock(&self.kafka_check) = check;
            tokio::select! {
                () = tokio::time::sleep(KAFKA_PROBE_INTERVAL) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Re-reads the main file and the drop-ins and applies the difference:
    /// sources whose configuration changed are drained and restarted, new
    /// ones start, removed (or disabled) ones drain and stop, and the others
    /// keep running untouched. The whole new configuration is checked first
    /// (files and plugin options, as `tributary validate` does); if anything
    /// is wrong, nothing changes, every problem is logged with its file,
    /// line and key, and the failure is counted.
    ///
    /// Changes to `[kafka]`, `[offsets]`, `[http]` and `[plugins]` need a
    /// restart; a reload logs that they were not applied. Plugin libraries
    /// are the ones loaded at start.
    ///
    /// This is the one place a reload happens (SIGHUP, the drop-in watcher):
    /// the right place to tell a service manager that a reload is under way.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadSummary, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let started = Instant::now();
        tracing::info!("Reloading the configuration.");
        let current = self.config();
        let this = self.clone();
        let (new, errors) = tokio::task::spawn_blocking(move || {
            let (new, mut errors) =
                config::load_all(&current.main_file, this.conf_dir_arg.as_deref());
            if errors.is_empty() {
                errors.extend(validate::check_sources(&new, &this.registry));
            }
            (new, errors)
        })
        .await
        .map_err(|e| ReloadError::Internal(e.to_string()))?;
        if !errors.is_empty() {
            for error in &errors {
                tracing::error!(error = %error, "Reload rejected: configuration invalid.");
            }
            tracing::error!(
                errors = errors.len(),
                "Reload rejected; the running configuration is kept."
            );
            metrics::global().reload_failed();
            let errors = ConfigErrors(errors);
            *lock(&self.last_reload_error) = Some(errors.to_string());
            return Err(ReloadError::Invalid(errors));
        }
        let current = self.config();
        for (section, changed) in [
            ("kafka", current.kafka != new.kafka),
            ("offsets", current.offsets != new.offsets),
            ("http", current.http != new.http),
            ("plugins", current.plugins != new.plugins),
        ] {
            if changed {
                tracing::warn!(
                    section,
                    "Changes to this section take effect after a restart; not applied."
                );
            }
        }
        let wanted: BTreeMap<&str, &SourceConfig> = new
            .sources
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (s.name.as_str(), s))
            .collect();
        let mut summary = ReloadSummary::default();
        let mut draining = Vec::new();
        {
            let sources = lock(&self.sources);
            for (name, entry) in sources.iter() {
                match wanted.get(name.as_str()) {
                    None => summary.removed.push(name.clone()),
                    Some(config) if **config != entry.config => summary.changed.push(name.clone()),
                    Some(_) => summary.unchanged += 1,
                }
            }
            for name in wanted.keys() {
                if !sources.contains_key(*name) {
                    summary.added.push((*name).to_owned());
                }
            }
        }
        // Stop what goes away or changes, all at once, then wait for each
        // to drain and commit.
        {
            let mut sources = lock(&self.sources);
            for name in summary.removed.iter().chain(&summary.changed) {
                if let Some(entry) = sources.get_mut(name) {
                    if let Some(control) = &entry.control {
                        control.send_modify(|d| d.mode = Mode::Stop);
                    }
                    if let Some(task) = entry.task.take() {
                        draining.push(task);
                    }
                }
            }
        }
        for task in draining {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "A source task failed while stopping.");
            }
        }
        {
            let mut sources = lock(&self.sources);
            for name in &summary.removed {
                sources.remove(name);
                metrics::global().remove_source(name);
                tracing::info!(source = %name, "Source removed by reload.");
            }
            for name in summary.changed.iter().chain(&summary.added) {
                let Some(config) = wanted.get(name.as_str()) else {
                    continue;
                };
                let status = match sources.get(name) {
                    // Counters carry on across a restart of the same plugin.
                    Some(old) if old.config.source_type == config.source_type => old.status.clone(),
                    _ => Arc::new(SourceStatus::new(name, &config.source_type)),
                };
                let entry = self.launch((*config).clone(), status);
                sources.insert(name.clone(), entry);
            }
        }
        let mut applied = (*current).clone();
        applied.sources = new.sources.clone();
        applied.files = new.files.clone();
        *lock(&self.config) = Arc::new(applied);
        *lock(&self.last_reload_error) = None;
        metrics::global().reload_applied();
        tracing::info!(
            added = ?summary.added,
            changed = ?summary.changed,
            removed = ?summary.removed,
            unchanged = summary.unchanged,
            took = ?started.elapsed(),
            "Configuration reloaded."
        );
        Ok(summary)
    }
}

/// Locks a mutex, recovering from poisoning: the guarded values stay
/// consistent even if a holder panicked (each update is one assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
