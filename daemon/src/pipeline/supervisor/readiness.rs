//! Whether the daemon is ready (`/ready`): the configuration, the brokers
//! and every source. The broker part comes from a probe that asks the
//! brokers for metadata in the background, so a readiness check never
//! waits on the network.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::Producer as _;
use tokio::task::JoinHandle;

use super::{Supervisor, lock};
use crate::pipeline::SourceState;

/// How often the broker is asked for metadata to decide readiness.
const KAFKA_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may wait for the broker.
const KAFKA_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

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

impl Supervisor {
    /// Waits for the broker probe, which ends once `shutdown` is cancelled
    /// (a metadata call still blocked on a frozen broker is left to its
    /// own timeout on a blocking thread).
    pub async fn stop_probe(&self) {
        self.probe.wait().await;
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
                    SourceState::Running
                    | SourceState::Paused
                    | SourceState::Finished
                    | SourceState::Standby => {
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
    pub(super) async fn probe_kafka(self: Arc<Self>) {
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
}
