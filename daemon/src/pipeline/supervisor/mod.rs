//! The set of sources the daemon runs, and everything that changes it while
//! it runs: pause, resume, restart, offset resets, and configuration
//! reloads that start, restart and stop single sources while the others
//! keep running.
//!
//! Each source has one task running [`supervise`] and a `watch` channel
//! carrying what it should do ([`Desired`]). Stopping, pausing and
//! restarting all end the current run the way a shutdown does (stop
//! polling, deliver, commit), so none of them loses or repeats records.
//!
//! This file holds the [`Supervisor`] itself: its construction, the source
//! set and how one source is launched. What is done to that set lives
//! beside it, one file per concern, each adding its own `impl Supervisor`:
//! [`control`] (pause, resume, restart), [`offsets`] (reading and resetting
//! a source's checkpoints), [`readiness`] (what `/ready` reports, and the
//! broker probe that feeds it), [`reload`] (applying a new configuration to
//! the running set), [`view`] (a source as the API shows it) and [`units`]
//! (which sources run here when daemons share the work as a cluster).

mod control;
mod offsets;
mod readiness;
mod reload;
mod units;
mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use control::ControlError;
pub use readiness::{KafkaCheck, Readiness};
pub use reload::{ReloadError, ReloadSummary};
pub use units::Units;
pub use view::SourceView;

use super::{Desired, SourceContext, SourceState, SourceStatus, supervise};
use crate::config::{Config, SourceConfig};
use crate::metrics;
use crate::offsets::OffsetStore;
use crate::plugin::PluginRegistry;
use crate::producer::Kafka;
use crate::validate;

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
    /// With `[cluster]`: the units of work this daemon was assigned; every
    /// other unit is kept on standby.
    units: Option<Units>,
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
            units: config.cluster.as_ref().map(|_| Units::default()),
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

    /// Starts one source's task, or marks it failed when it cannot run; in
    /// a cluster, a unit of work not assigned to this daemon is put on
    /// standby instead.
    fn launch(&self, source: SourceConfig, status: Arc<SourceStatus>) -> Entry {
        metrics::global().add_source(status.clone());
        if self.is_unit(&source) && !self.owns(&source.name) {
            status.set_state(SourceState::Standby);
            return Entry {
                config: source,
                status,
                control: None,
                task: None,
            };
        }
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
            transactional_id: None,
            record_limit: crate::producer::SharedLimit::new(
                crate::producer::RecordLimit::unchecked(),
            ),
            schema_registry: self.config().schema_registry.clone(),
            kafka: self.kafka.clone(),
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
}

/// Locks a mutex, recovering from poisoning: the guarded values stay
/// consistent even if a holder panicked (each update is one assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
