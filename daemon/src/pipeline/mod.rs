//! Sources, from plugin poll to committed offset, and their supervision.

pub mod ack;
mod source;
mod supervisor;
mod too_large;
mod transaction;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use crate::status::{SourceState, SourceStatus};
pub use source::{RunEnd, SourceContext, run_once};
pub use supervisor::{
    ControlError, KafkaCheck, Readiness, ReloadError, ReloadSummary, SourceView, Supervisor,
};

use crate::offsets::OffsetError;
use crate::plugin::PluginError;
use crate::producer::{Kafka, ProducerError};
use crate::serialize::SerializeError;
use crate::telemetry::{
    self, SourceFailed, SourceFinished, SourcePaused, SourceStarted, SourceStopped,
};

/// Why a source run failed. Every variant leads to a restart with backoff
/// from the last committed checkpoint; none skips a record.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The plugin failed or panicked.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Checkpoints could not be read (I/O or a corrupt file).
    #[error(transparent)]
    Offsets(#[from] OffsetError),
    /// Rows could not be serialised.
    #[error(transparent)]
    Serialize(#[from] SerializeError),
    /// The topic could not be created or checked.
    #[error(transparent)]
    Topic(#[from] ProducerError),
    /// The producer refused a record outright.
    #[error("cannot send to topic `{topic}`: {source}")]
    Produce {
        /// The topic.
        topic: String,
        /// The client's error.
        source: KafkaError,
    },
    /// Kafka did not acknowledge a record within the delivery timeout, or
    /// refused it. The offset stays before it.
    #[error("delivery to topic `{topic}` failed: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// The delivery report's error.
        source: KafkaError,
    },
    /// The plugin did not return from a call after a stop was requested.
    #[error(
        "the plugin did not return within {grace:?} of a stop request; its thread is abandoned"
    )]
    Hung {
        /// How long it was given.
        grace: Duration,
    },
    /// The plugin sent rows it could not read, and the source has no
    /// `dead_letter_topic` to put them in. Nothing is skipped: the source
    /// stops before them.
    #[error(
        "the plugin returned rows for the dead-letter topic, but the source has no `dead_letter_topic`"
    )]
    NoDeadLetterTopic,
    /// A task or thread of the daemon itself failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// A record is larger than Kafka accepts and the source's `on_error`
    /// is not `dead_letter` or `skip`. Nothing of its batch was sent.
    #[error(
        "cannot send to topic `{topic}`: {reason}. Nothing of this batch was sent; the source \
         stops before it. Raise the limit, or set `on_error = \"dead_letter\"` (with a \
         `dead_letter_topic`) to set such records aside"
    )]
    TooLarge {
        /// The topic.
        topic: String,
        /// Which row, how large, and which limit.
        reason: String,
    },
    /// A topic template named more topics than `max_topics` allows and
    /// the source's `on_error` is not `dead_letter` or `skip`.
    #[error(
        "{reason}. Nothing of this batch was sent; the source stops before it. Raise \
         `max_topics`, or set `on_error = \"dead_letter\"` (with a `dead_letter_topic`) to set \
         such records aside"
    )]
    TooManyTopics {
        /// Which row, which topic, which limit.
        reason: String,
    },
    /// Another producer initialised the same `transactional.id`: the same
    /// exactly-once source runs in another daemon (or another run).
    #[error(
        "fenced: another producer took transactional id `{transactional_id}` (the same \
         exactly-once source was started by another daemon); this source stops here and is \
         not restarted, so the two do not take turns fencing each other. Stop the other \
         daemon's source (or give one daemon another `[kafka] transactional_id_prefix`), then \
         restart this source"
    )]
    Fenced {
        /// The `transactional.id`.
        transactional_id: String,
    },
    /// A transaction could not begin or commit; it was aborted, and the
    /// source resumes from its last committed checkpoint.
    #[error("transaction {call} failed; aborted, resuming from the last commit: {source}")]
    Transaction {
        /// `begin`, `commit`, …
        call: String,
        /// The client's error.
        source: KafkaError,
    },
}

impl SourceError {
    /// Whether restarting the source would only repeat the error: the
    /// plugin said its input or options are wrong for good (a binary file
    /// where text was expected, permission denied). Such a source stays
    /// `failed` until its configuration changes or an operator restarts it.
    ///
    /// A record larger than Kafka accepts is permanent too: sending the
    /// batch again would fail on the same record and repeat the ones before
    /// it in a loop.
    pub fn is_permanent(&self) -> bool {
        match self {
            SourceError::Plugin(e) => e.is_permanent(),
            SourceError::Fenced { .. }
            | SourceError::TooLarge { .. }
            | SourceError::TooManyTopics { .. } => true,
            SourceError::Serialize(e) => e.is_permanent(),
            SourceError::Produce { source, .. } | SourceError::Delivery { source, .. } => {
                crate::producer::kafka_error_class(source) == crate::metrics::error_class::TOO_LARGE
            }
            _ => false,
        }
    }

    /// A bounded class for the `error_class` label of source failures.
    pub fn class(&self) -> &'static str {
        match self {
            SourceError::Plugin(e) => tributary_plugin_sdk::abi::category_name(e.category()),
            SourceError::Offsets(_) => "offsets",
            SourceError::Serialize(_) => crate::metrics::error_class::SERIALIZE,
            SourceError::Topic(_) | SourceError::Produce { .. } | SourceError::Delivery { .. } => {
                "kafka"
            }
            SourceError::Hung { .. } => "hung",
            SourceError::Fenced { .. } => "fenced",
            SourceError::TooLarge { .. } => crate::metrics::error_class::TOO_LARGE,
            SourceError::TooManyTopics { .. } => "too_many_topics",
            SourceError::Transaction { .. } => "kafka",
            SourceError::NoDeadLetterTopic => "dead_letter",
            SourceError::Internal(_) => "internal",
        }
    }

    /// Whether the error means the producer instance itself is unusable, so
    /// every later send on it would fail the same way: the broker fenced or
    /// forgot its producer id, or librdkafka raised a fatal error.
    fn breaks_the_producer(&self) -> bool {
        let (SourceError::Delivery { source, .. } | SourceError::Produce { source, .. }) = self
        else {
            return false;
        };
        crate::producer::breaks_the_producer(source)
    }
}

/// First wait before restarting a failed source.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait between restarts.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run that lasted this long resets the backoff: the failure was not a
/// crash loop.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// What an operator (or a reload) wants a source to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Poll and produce.
    Run,
    /// Drain, commit, and wait without polling until told to run again.
    Pause,
    /// Drain, commit, and end the source's task.
    Stop,
}

/// The wish a source's supervisor follows, sent over a `watch` channel.
/// Bumping `generation` while in [`Mode::Run`] restarts the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    /// What the source should do.
    pub mode: Mode,
    /// Incremented by each restart request.
    pub generation: u64,
}

impl Desired {
    /// Running, first generation.
    pub const RUN: Desired = Desired {
        mode: Mode::Run,
        generation: 0,
    };
}

/// Runs a source until shutdown, until it finishes, or until `control`
/// asks it to stop, restarting it with exponential backoff after every
/// failure. `control` also pauses, resumes and restarts it; every run ends
/// the way a shutdown does (stop polling, deliver, commit), so pausing or
/// restarting neither loses nor repeats records.
pub async fn supervise(
    mut ctx: SourceContext,
    kafka: Arc<Kafka>,
    shutdown: CancellationToken,
    mut control: watch::Receiver<Desired>,
) {
    let status = ctx.status.clone();
    status.set_lag_unit(ctx.plugin.lag_unit(&ctx.config.source_type));
    let mut backoff = BACKOFF_INITIAL;
    loop {
        let desired = *control.borrow_and_update();
        if desired.mode == Mode::Pause {
            telemetry::emit(SourcePaused { status: &status });
        }
        let desired = tokio::select! {
            r = control.wait_for(|d| d.mode != Mode::Pause) => match r {
                Ok(d) => *d,
                // The supervisor dropped the source.
                Err(_) => Desired { mode: Mode::Stop, generation: 0 },
            },
            () = shutdown.cancelled() => Desired { mode: Mode::Stop, generation: 0 },
        };
        if desired.mode == Mode::Stop {
            telemetry::emit(SourceStopped { status: &status });
            return;
        }
        let generation = desired.generation;
        // Ends this run on shutdown, or when the wish moves away from this
        // run (pause, stop, restart).
        let run_stop = CancellationToken::new();
        let watcher = tokio::spawn({
            let run_stop = run_stop.clone();
            let mut control = control.clone();
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    _ = control.wait_for(|d| d.mode != Mode::Run || d.generation != generation) => {}
                }
                run_stop.cancel();
            }
        });
        status.set_state(SourceState::Starting);
        // A producer that hit a fatal error is replaced before anyone sends
        // on it again; every (re)start takes the current one.
        ctx.producer = kafka.producer();
        let started = Instant::now();
        // A stop during start-up (broker unreachable) must not wait for
        // metadata timeouts.
        let prepared = tokio::select! {
            r = prepare(&kafka, &mut ctx) => Some(r),
            () = run_stop.cancelled() => None,
        };
        let result = match prepared {
            None => Ok(RunEnd::Stopped),
            Some(Ok(())) => {
                telemetry::emit(SourceStarted {
                    status: &status,
                    topic: &ctx.config.topic,
                });
                run_once(&ctx, &run_stop).await
            }
            Some(Err(e)) => Err(e),
        };
        watcher.abort();
        let interrupted = run_stop.is_cancelled();
        match result {
            Ok(RunEnd::Finished) => {
                telemetry::emit(SourceFinished { status: &status });
                return;
            }
            Ok(RunEnd::Stopped) | Err(_) if interrupted => {
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "Source stopped with an error.");
                }
                if shutdown.is_cancelled() {
                    telemetry::emit(SourceStopped { status: &status });
                    return;
                }
                if control.borrow().mode == Mode::Run {
                    tracing::info!("Source restarting on request.");
                    backoff = BACKOFF_INITIAL;
                }
                // Pause and stop are handled at the top of the loop.
            }
            Ok(RunEnd::Stopped) => {
                // Only a stop request ends a run this way; treat it as one.
                telemetry::emit(SourceStopped { status: &status });
                return;
            }
            Err(e) if e.is_permanent() => {
                telemetry::emit(SourceFailed {
                    status: &status,
                    error: &e,
                    class: e.class(),
                    retry_in: None,
                });
                return;
            }
            Err(e) => {
                if started.elapsed() >= BACKOFF_RESET_AFTER {
                    backoff = BACKOFF_INITIAL;
                }
                // A producer that is broken for good is replaced before
                // anyone sends on it again; every (re)start takes the
                // current one.
                if let Err(replace) =
                    kafka.replace_if_broken(&ctx.producer, e.breaks_the_producer())
                {
                    tracing::error!(error = %replace, "Cannot replace the failed Kafka producer.");
                }
                telemetry::emit(SourceFailed {
                    status: &status,
                    error: &e,
                    class: e.class(),
                    retry_in: Some(backoff),
                });
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    // A pause, stop or restart request ends the wait.
                    _ = control.changed() => {}
                    () = shutdown.cancelled() => {
                        telemetry::emit(SourceStopped { status: &status });
                        return;
                    }
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Readies a run: the topics exist, and an exactly-once source has a
/// transactional producer of its own whose `init_transactions` aborted
/// whatever a previous run left open (before the checkpoints are read, so
/// they are those of the last commit).
async fn prepare(kafka: &Kafka, ctx: &mut SourceContext) -> Result<(), SourceError> {
    ensure_topics(kafka, &ctx.config).await?;
    if ctx.config.delivery == crate::config::Delivery::ExactlyOnce {
        ctx.producer = kafka.transactional_producer(&ctx.config.name).await?;
        ctx.transactional_id = Some(kafka.transactional_id(&ctx.config.name));
    }
    ctx.record_limit = kafka.record_limit(&ctx.config.topic).await;
    Ok(())
}

/// Creates the source's topic, and its dead-letter topic when it has one.
async fn ensure_topics(
    kafka: &Kafka,
    config: &crate::config::SourceConfig,
) -> Result<(), ProducerError> {
    // A template's topics are created as records name them.
    if config.topic_template.is_none() {
        kafka.ensure_topic(&config.topic).await?;
    }
    if let Some(dead_letters) = &config.dead_letter_topic {
        kafka.ensure_topic(dead_letters).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode as Code;

    fn delivery(code: Code) -> SourceError {
        SourceError::Delivery {
            topic: "t".into(),
            source: KafkaError::MessageProduction(code),
        }
    }

    #[test]
    fn only_producer_state_errors_replace_the_producer() {
        for code in [
            Code::ProducerFenced,
            Code::InvalidProducerEpoch,
            Code::UnknownProducerId,
            Code::OutOfOrderSequenceNumber,
        ] {
            assert!(delivery(code).breaks_the_producer(), "{code:?}");
        }
        for code in [
            Code::MessageTimedOut,
            Code::NotLeaderForPartition,
            Code::MessageSizeTooLarge,
            Code::TopicAuthorizationFailed,
        ] {
            assert!(!delivery(code).breaks_the_producer(), "{code:?}");
        }
        assert!(!SourceError::Internal("x".into()).breaks_the_producer());
    }

    #[test]
    fn a_record_too_large_for_kafka_fails_the_source_for_good() {
        let too_large = SourceError::Produce {
            topic: "t".into(),
            source: KafkaError::MessageProduction(Code::MessageSizeTooLarge),
        };
        assert!(too_large.is_permanent());
        assert!(!delivery(Code::RequestTimedOut).is_permanent());
    }
}
