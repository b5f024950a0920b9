//! What the daemon tells its operator, one type per fact.
//!
//! Each event owns everything a fact changes in the daemon's telemetry: its
//! log line, its counters and the source state it implies. Call sites
//! build the event and [`emit`] it, so a counter cannot be forgotten beside
//! a log line, and a dead letter is logged and counted at the same moment
//! (when Kafka acknowledged it). Names follow `<Noun><Verb>[Error]`.
//!
//! Events that concern one source are emitted inside its span where one
//! exists; those emitted on librdkafka's delivery thread carry the source's
//! name as a field instead.

use std::time::Duration;

use crate::metrics;
use crate::status::{SourceState, SourceStatus};

/// A fact the daemon reports.
pub trait InternalEvent {
    /// Writes the log line and moves the counters of this fact.
    fn emit(self);
}

/// Reports `event`.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

/// A source run began: its topic exists and its plugin is about to be
/// created.
#[derive(Debug)]
pub struct SourceStarted<'a> {
    /// The source.
    pub status: &'a SourceStatus,
    /// The topic it writes to.
    pub topic: &'a str,
}

impl InternalEvent for SourceStarted<'_> {
    fn emit(self) {
        self.status.set_state(SourceState::Running);
        tracing::info!(topic = %self.topic, "Source started.");
    }
}

/// A source has no more data, and everything it produced is committed.
#[derive(Debug)]
pub struct SourceFinished<'a> {
    /// The source.
    pub status: &'a SourceStatus,
}

impl InternalEvent for SourceFinished<'_> {
    fn emit(self) {
        self.status.set_state(SourceState::Finished);
        tracing::info!("Source finished; all its records are delivered and committed.");
    }
}

/// A source stopped: shutdown, an operator, or a reload that removed it.
#[derive(Debug)]
pub struct SourceStopped<'a> {
    /// The source.
    pub status: &'a SourceStatus,
}

impl InternalEvent for SourceStopped<'_> {
    fn emit(self) {
        self.status.set_state(SourceState::Stopped);
        tracing::info!("Source stopped.");
    }
}

/// An operator paused a source; it is drained and committed.
#[derive(Debug)]
pub struct SourcePaused<'a> {
    /// The source.
    pub status: &'a SourceStatus,
}

impl InternalEvent for SourcePaused<'_> {
    fn emit(self) {
        self.status.set_state(SourceState::Paused);
        tracing::info!("Source paused.");
    }
}

/// A source run ended in an error.
#[derive(Debug)]
pub struct SourceFailed<'a> {
    /// The source.
    pub status: &'a SourceStatus,
    /// What went wrong.
    pub error: &'a (dyn std::error::Error + 'a),
    /// Its bounded class, for the `error_class` label.
    pub class: &'static str,
    /// When it runs again; `None` for a permanent error, which leaves the
    /// source failed until its configuration changes or an operator
    /// restarts it.
    pub retry_in: Option<Duration>,
}

impl InternalEvent for SourceFailed<'_> {
    fn emit(self) {
        let class = self.class;
        self.status.set_error(self.error.to_string());
        metrics::global().source_failed(&self.status.name, class);
        match self.retry_in {
            Some(retry_in) => {
                self.status.set_state(SourceState::Backoff);
                self.status
                    .restarts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    error = %self.error,
                    error_class = class,
                    ?retry_in,
                    "Source failed; restarting from its last committed checkpoint."
                );
            }
            None => {
                self.status.set_state(SourceState::Failed);
                tracing::error!(
                    error = %self.error,
                    error_class = class,
                    "Source failed and is not restarted: the error will not go away by \
                     retrying. Fix the input or the configuration, then reload or restart \
                     the source (POST /api/v1/sources/<name>/restart)."
                );
            }
        }
    }
}

/// Records that could not be serialised or delivered. They are not lost:
/// the source fails before their checkpoint and sends them again.
#[derive(Debug)]
pub struct RecordsFailed<'a> {
    /// The source's name.
    pub source: &'a str,
    /// A class from [`metrics::error_class`].
    pub class: &'a str,
    /// How many.
    pub count: u64,
}

impl InternalEvent for RecordsFailed<'_> {
    fn emit(self) {
        metrics::global().records_failed(self.source, self.class, self.count);
        // The source's failure says why, once; this is the per-batch detail.
        tracing::debug!(
            source = %self.source,
            error_class = self.class,
            records = self.count,
            "Records not delivered; they are sent again from the last committed checkpoint."
        );
    }
}

/// The first row of a dead-letter batch, shown in the log line.
#[derive(Debug, Clone)]
pub struct FirstDeadLetter {
    /// Its error class.
    pub class: String,
    /// The file it came from.
    pub file: String,
    /// The line it starts on.
    pub line: u64,
    /// What was wrong.
    pub message: String,
}

/// Kafka acknowledged a batch of dead letters.
#[derive(Debug)]
pub struct DeadLettersWritten<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The dead-letter topic.
    pub topic: &'a str,
    /// Rows per error class.
    pub classes: &'a [(String, u64)],
    /// The batch's first row.
    pub first: Option<&'a FirstDeadLetter>,
}

impl InternalEvent for DeadLettersWritten<'_> {
    fn emit(self) {
        let mut rows = 0;
        for (class, n) in self.classes {
            metrics::global().records_dead_lettered(self.source, class, *n);
            rows += n;
        }
        // One line per batch, not per row: a file of bad rows must not
        // flood the journal. Every row's details travel in its headers.
        if let Some(first) = self.first {
            tracing::warn!(
                source = %self.source,
                rows,
                topic = %self.topic,
                class = %first.class,
                file = %first.file,
                line = first.line,
                error = %first.message,
                "Rows written to the dead-letter topic; the first is shown."
            );
        }
    }
}

/// A batch of records was acknowledged by Kafka.
#[derive(Debug)]
pub struct RecordsProduced<'a> {
    /// The source.
    pub status: &'a SourceStatus,
    /// Records in the batch.
    pub records: u64,
    /// Their value bytes.
    pub bytes: u64,
}

impl InternalEvent for RecordsProduced<'_> {
    fn emit(self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.status
            .records_produced
            .fetch_add(self.records, Relaxed);
        self.status.bytes_produced.fetch_add(self.bytes, Relaxed);
    }
}

/// A source's delivered checkpoints were written to the offset store.
#[derive(Debug)]
pub struct OffsetsCommitted<'a> {
    /// The source.
    pub status: &'a SourceStatus,
    /// Partitions whose checkpoint moved.
    pub partitions: usize,
}

impl InternalEvent for OffsetsCommitted<'_> {
    fn emit(self) {
        self.status.committed();
        tracing::trace!(partitions = self.partitions, "Offsets committed.");
    }
}

/// Writing a source's checkpoints failed; they stay pending and are
/// written at the next attempt.
#[derive(Debug)]
pub struct OffsetCommitError<'a> {
    /// The source.
    pub status: &'a SourceStatus,
    /// Why.
    pub error: &'a (dyn std::error::Error + 'a),
}

impl InternalEvent for OffsetCommitError<'_> {
    fn emit(self) {
        self.status.commit_failed();
        tracing::error!(error = %self.error, "Offset commit failed; will retry.");
    }
}

/// A plugin library could not be loaded; sources of its types fail.
#[derive(Debug)]
pub struct PluginLoadError<'a> {
    /// Why.
    pub error: &'a crate::plugin::PluginError,
}

impl InternalEvent for PluginLoadError<'_> {
    fn emit(self) {
        metrics::global().plugin_load_failed(1);
        tracing::error!(error = %self.error, "Plugin library not loaded.");
    }
}

/// A configuration reload was applied.
#[derive(Debug)]
pub struct ReloadApplied<'a> {
    /// Sources started for the first time.
    pub added: &'a [String],
    /// Sources restarted with a new configuration.
    pub changed: &'a [String],
    /// Sources drained and stopped.
    pub removed: &'a [String],
    /// Sources left running untouched.
    pub unchanged: usize,
    /// How long it took.
    pub took: Duration,
}

impl InternalEvent for ReloadApplied<'_> {
    fn emit(self) {
        metrics::global().reload_applied();
        tracing::info!(
            added = ?self.added,
            changed = ?self.changed,
            removed = ?self.removed,
            unchanged = self.unchanged,
            took = ?self.took,
            "Configuration reloaded."
        );
    }
}

/// A configuration reload was refused; the running configuration stays.
#[derive(Debug)]
pub struct ReloadError<'a> {
    /// Every problem of the new configuration.
    pub errors: &'a [crate::config::ConfigError],
}

impl InternalEvent for ReloadError<'_> {
    fn emit(self) {
        metrics::global().reload_failed();
        for error in self.errors {
            tracing::error!(error = %error, "Reload rejected: configuration invalid.");
        }
        tracing::error!(
            errors = self.errors.len(),
            "Reload rejected; the running configuration is kept."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permanent_failure_leaves_the_source_failed_and_counts_no_restart() {
        let status = SourceStatus::new("telemetry-permanent", "csv");
        let error = std::io::Error::other("boom");
        emit(SourceFailed {
            status: &status,
            error: &error,
            class: "internal",
            retry_in: None,
        });
        assert_eq!(status.state(), SourceState::Failed);
        assert_eq!(
            status.restarts.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert_eq!(status.last_error().as_deref(), Some("boom"));
        emit(SourceFailed {
            status: &status,
            error: &error,
            class: "internal",
            retry_in: Some(Duration::from_secs(1)),
        });
        assert_eq!(status.state(), SourceState::Backoff);
        assert_eq!(
            status.restarts.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let text = metrics::global().render();
        let series = r#"tributary_source_failures_total{error_class="internal",source="telemetry-permanent"} 2"#;
        assert!(text.contains(series), "{text}");
    }

    #[test]
    fn dead_letters_are_counted_per_class_when_written() {
        let classes = [("ragged_row".to_owned(), 2), ("invalid_utf8".to_owned(), 1)];
        emit(DeadLettersWritten {
            source: "telemetry-dead",
            topic: "dlq",
            classes: &classes,
            first: None,
        });
        let text = metrics::global().render();
        for series in [
            r#"tributary_source_dead_lettered_records_total{error_class="ragged_row",source="telemetry-dead"} 2"#,
            r#"tributary_source_dead_lettered_records_total{error_class="invalid_utf8",source="telemetry-dead"} 1"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }
}
