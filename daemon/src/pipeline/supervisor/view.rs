//! A source as the HTTP API shows it: its configuration and a snapshot of
//! its counters. It stays in the supervisor rather than in `http`, because
//! the supervisor's operator methods answer with it and `http` already
//! depends on the pipeline (moving it would make the two modules import
//! each other).

use crate::config::SourceConfig;
use crate::pipeline::SourceStatus;

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
    /// What `lag` counts (`rows` or `bytes`), as the source's type
    /// declares it; `None` when the type reports no lag.
    pub lag_unit: Option<&'static str>,
    /// Records that could not be delivered or serialised (retried from the
    /// last checkpoint), over every error class.
    pub records_failed: u64,
    /// Records written to the dead-letter topic, over every error class.
    pub records_dead_lettered: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

impl SourceView {
    pub(super) fn of(config: &SourceConfig, status: &SourceStatus) -> SourceView {
        use std::sync::atomic::Ordering::Relaxed;
        let lag = status.lag.load(Relaxed);
        let (records_failed, records_dead_lettered) =
            crate::metrics::global().record_errors(&config.name);
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
            lag_unit: status.lag_unit().map(|u| u.name()),
            records_failed,
            records_dead_lettered,
            last_error: status.last_error(),
        }
    }
}
