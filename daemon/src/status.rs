//! What each source is doing, shared between its tasks and observers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tributary_plugin_sdk::LagUnit;

/// The lifecycle of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Loading checkpoints, creating the topic and the plugin instance.
    Starting,
    /// Polling and producing.
    Running,
    /// Failed; waiting before the next restart.
    Backoff,
    /// Failed and will not be restarted (e.g. no plugin provides its type).
    Failed,
    /// Paused by an operator: drained and committed, not polling, waiting
    /// to be resumed.
    Paused,
    /// The source reported it has no more data; offsets are committed.
    Finished,
    /// Stopped by shutdown, an operator, or a reload that removed it.
    Stopped,
    /// A unit of a cluster's work that this daemon does not run: another
    /// member runs it, or it waits to be assigned.
    Standby,
}

impl SourceState {
    /// Every state, for metrics that export one series per state so that a
    /// dashboard sees a state end as well as begin.
    pub const ALL: [SourceState; 8] = [
        SourceState::Starting,
        SourceState::Running,
        SourceState::Backoff,
        SourceState::Failed,
        SourceState::Paused,
        SourceState::Finished,
        SourceState::Stopped,
        SourceState::Standby,
    ];
}

impl SourceState {
    /// A lowercase name for logs and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Running => "running",
            SourceState::Backoff => "backoff",
            SourceState::Failed => "failed",
            SourceState::Paused => "paused",
            SourceState::Finished => "finished",
            SourceState::Stopped => "stopped",
            SourceState::Standby => "standby",
        }
    }
}

/// Counters and state of one source.
#[derive(Debug)]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// The source's plugin type.
    pub source_type: String,
    state: Mutex<SourceState>,
    last_error: Mutex<Option<String>>,
    last_commit: Mutex<Option<Instant>>,
    /// When this status was created, the age a commit has before the first.
    created: Instant,
    /// Whether the latest offset commit attempt failed; readiness fails
    /// while it does.
    commit_failing: AtomicBool,
    /// Times the source was restarted after a failure.
    pub restarts: AtomicU64,
    /// Rows received from the plugin.
    pub records_polled: AtomicU64,
    /// Records Kafka acknowledged.
    pub records_produced: AtomicU64,
    /// Value bytes Kafka acknowledged.
    pub bytes_produced: AtomicU64,
    /// Batches received from the plugin.
    pub batches: AtomicU64,
    /// Successful offset commits.
    pub commits: AtomicU64,
    /// Failed offset commits (retried at the next interval).
    pub commit_failures: AtomicU64,
    /// Records handed to the producer and not yet acknowledged.
    pub in_flight: AtomicI64,
    /// How far the source is behind its input as the plugin reports it, in
    /// [`lag_unit`](Self::lag_unit), or -1.
    pub lag: AtomicI64,
    /// What `lag` counts, as the source's type declares it; `None` when the
    /// type reports no lag (or before the source first starts).
    lag_unit: Mutex<Option<LagUnit>>,
    /// When the source's thread last came back from the plugin or from
    /// waiting for queue space, in milliseconds since [`epoch`]; 0 before
    /// the first time. The systemd watchdog reads it to tell a wedged
    /// pipeline from an idle one.
    heartbeat_ms: AtomicU64,
}

/// The origin of heartbeat times.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl SourceStatus {
    /// A fresh status in `Starting`.
    pub fn new(name: &str, source_type: &str) -> Self {
        SourceStatus {
            name: name.to_owned(),
            source_type: source_type.to_owned(),
            state: Mutex::new(SourceState::Starting),
            last_error: Mutex::new(None),
            last_commit: Mutex::new(None),
            created: Instant::now(),
            commit_failing: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            records_polled: AtomicU64::new(0),
            records_produced: AtomicU64::new(0),
            bytes_produced: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            lag: AtomicI64::new(-1),
            lag_unit: Mutex::new(None),
            heartbeat_ms: AtomicU64::new(0),
        }
    }

    /// The current state.
    pub fn state(&self) -> SourceState {
        *lock(&self.state)
    }

    /// Moves to `state`.
    pub fn set_state(&self, state: SourceState) {
        if state == SourceState::Running {
            // A fresh run starts with a fresh heartbeat, not the last one
            // of a thread that failed.
            self.beat();
        }
        *lock(&self.state) = state;
    }

    /// Sets what `lag` counts, from the type of the plugin that runs the
    /// source.
    pub fn set_lag_unit(&self, unit: Option<LagUnit>) {
        *lock(&self.lag_unit) = unit;
    }

    /// What `lag` counts; `None` when the source reports no lag.
    pub fn lag_unit(&self) -> Option<LagUnit> {
        *lock(&self.lag_unit)
    }

    /// Records a failure message (shown until the next one).
    pub fn set_error(&self, message: String) {
        *lock(&self.last_error) = Some(message);
    }

    /// The last failure message.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Notes a successful commit.
    pub fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.commit_failing.store(false, Ordering::Relaxed);
        *lock(&self.last_commit) = Some(Instant::now());
    }

    /// Notes that the source's thread is alive and not stuck in the plugin.
    pub fn beat(&self) {
        let ms = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        // 0 means "never"; a beat in the first millisecond counts as 1.
        self.heartbeat_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Time since the last [`beat`](Self::beat), or `None` before the first.
    pub fn heartbeat_age(&self) -> Option<Duration> {
        match self.heartbeat_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(epoch().elapsed().saturating_sub(Duration::from_millis(ms))),
        }
    }

    /// Notes a failed commit attempt (retried at the next interval).
    pub fn commit_failed(&self) {
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
        self.commit_failing.store(true, Ordering::Relaxed);
    }

    /// Whether the latest commit attempt failed.
    pub fn commit_failing(&self) -> bool {
        self.commit_failing.load(Ordering::Relaxed)
    }

    /// Time since the last successful commit or, before the first one,
    /// since the source was set up: a source that never commits ages like
    /// one that stopped committing.
    pub fn commit_age(&self) -> Duration {
        self.since_last_commit()
            .unwrap_or_else(|| self.created.elapsed())
    }

    /// Time since the last successful commit.
    pub fn since_last_commit(&self) -> Option<Duration> {
        lock(&self.last_commit).map(|t| t.elapsed())
    }
}

/// Locks a mutex, recovering from poisoning: the data is plain values that
/// stay consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
