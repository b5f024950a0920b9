//! The membership thread: one consumer in the group, subscribed to the
//! work topics, whose rebalance callbacks start and stop units.
//!
//! The callbacks run inside `poll` on this thread (never on a runtime
//! thread), so they may block on the runtime: a revoke returns only once
//! every revoked unit has drained and committed, and only then does
//! librdkafka give the partitions up. Heartbeats come from librdkafka's own
//! threads, so a long drain does not cost the membership; it counts only
//! against `max.poll.interval.ms`, set well above the longest drain.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};

use super::{ClusterError, Rebalanced, Shared, lock, now_rfc3339};
use crate::config::{ClusterConfig, ClusterProtocol};

/// How long one `poll` waits; also how soon a reload's new units are
/// offered and a stop is noticed.
const POLL: Duration = Duration::from_millis(250);

/// Longest a revoke callback may take before Kafka counts this member
/// gone: well above a drain plus an exactly-once commit with its retries.
const MAX_POLL_INTERVAL_MS: &str = "600000";

/// The consumer's context: the rebalance callbacks.
pub(super) struct Membership {
    shared: Arc<Shared>,
    /// Work topic → unit, for the units the configuration defines now.
    topics: Mutex<BTreeMap<String, String>>,
    /// Work topic → unit, for the partitions this member holds: a unit a
    /// reload removed is still released by the name it was given under.
    assigned: Mutex<BTreeMap<String, String>>,
}

/// The group's consumer.
pub(super) fn consumer(
    config: &ClusterConfig,
    shared: &Arc<Shared>,
) -> Result<BaseConsumer<Membership>, ClusterError> {
    let mut client = shared.client.clone();
    client
        .set("group.id", format!("tributary-cluster.{}", config.group))
        .set(
            "client.id",
            format!("{}{}", super::group::CLIENT_ID_PREFIX, shared.member),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS);
    match config.protocol {
        ClusterProtocol::Classic => {
            client
                .set("group.protocol", "classic")
                // Eager assignors would stop every unit at every change.
                .set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", config.session_timeout_ms.to_string())
                .set(
                    "heartbeat.interval.ms",
                    config.heartbeat_interval_ms.to_string(),
                );
        }
        ClusterProtocol::Consumer => {
            client.set("group.protocol", "consumer");
        }
    }
    let context = Membership {
        shared: shared.clone(),
        topics: Mutex::new(BTreeMap::new()),
        assigned: Mutex::new(BTreeMap::new()),
    };
    client
        .create_with_context(context)
        .map_err(|e| ClusterError::Consumer {
            group: config.group.clone(),
            message: e.to_string(),
        })
}

/// How long the thread waits before it tries again to offer the units
/// (create their work topics and subscribe) after a failure.
const OFFER_RETRY: Duration = Duration::from_secs(5);

/// Polls until `stop`, offering the configured units (again after each
/// reload that changes them, and until the broker lets them be offered);
/// then revokes what it holds (each unit drains and commits) and leaves the
/// group.
pub(super) fn run(consumer: &BaseConsumer<Membership>, shared: &Shared, stop: &AtomicBool) {
    let mut offered: Option<u64> = None;
    let mut next_try = Instant::now();
    let mut last_failure: Option<String> = None;
    while !stop.load(Ordering::Acquire) {
        let version = shared.supervisor.defined_units_version();
        if offered != Some(version) && Instant::now() >= next_try {
            match offer(consumer, shared) {
                Ok(()) => {
                    offered = Some(version);
                    last_failure = None;
                }
                Err(e) => {
                    let message = e.to_string();
                    if last_failure.as_ref() != Some(&message) {
                        tracing::error!(
                            group = %shared.group,
                            error = %message,
                            "Cannot offer the units to the cluster yet; retrying."
                        );
                    }
                    last_failure = Some(message);
                    next_try = Instant::now() + OFFER_RETRY;
                }
            }
        }
        if let Some(Err(e)) = consumer.poll(POLL) {
            tracing::warn!(group = %shared.group, error = %e, "Cluster membership error.");
        }
    }
    lock(&shared.state).state = "leaving";
    consumer.unsubscribe();
    // The revoke callback runs in these polls; Drop then leaves the group.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && consumer.assignment().is_ok_and(|a| a.count() > 0) {
        let _ = consumer.poll(POLL);
    }
}

/// Creates the work topics of the units the configuration defines now and
/// subscribes to them.
fn offer(consumer: &BaseConsumer<Membership>, shared: &Shared) -> Result<(), ClusterError> {
    let topics = shared.work_topics()?;
    let names: Vec<String> = topics.keys().cloned().collect();
    shared
        .runtime
        .block_on(shared.kafka.ensure_internal_topics(&names))
        .map_err(|source| ClusterError::Topics {
            group: shared.group.clone(),
            source,
        })?;
    subscribe(consumer, topics);
    Ok(())
}

/// Subscribes to `topics` (work topic → unit), or unsubscribes when the
/// configuration defines no unit.
fn subscribe(consumer: &BaseConsumer<Membership>, topics: BTreeMap<String, String>) {
    let names: Vec<String> = topics.keys().cloned().collect();
    *lock(&consumer.context().topics) = topics;
    let result = if names.is_empty() {
        consumer.unsubscribe();
        Ok(())
    } else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&names)
    };
    match result {
        Ok(()) => tracing::debug!(units = names.len(), "Offering units to the cluster."),
        Err(e) => tracing::error!(error = %e, "Cannot subscribe to the work topics."),
    }
}

impl Membership {
    fn record(&self, consumer: &BaseConsumer<Self>, rebalanced: Rebalanced) {
        let shared = &self.shared;
        let (member_id, generation) = group_identity(consumer);
        tracing::info!(
            group = %shared.group,
            member = %shared.member,
            generation,
            assigned = ?rebalanced.assigned,
            revoked = ?rebalanced.revoked,
            lost = rebalanced.lost,
            took_ms = rebalanced.took_ms,
            "Cluster rebalanced."
        );
        shared
            .metrics
            .units_owned
            .set(i64::try_from(shared.supervisor.owned_units().len()).unwrap_or(i64::MAX));
        let mut state = lock(&shared.state);
        state.state = "up";
        state.member_id = member_id;
        state.generation = generation;
        state.rebalances += 1;
        state.last_rebalance = Some(rebalanced);
    }

    /// Drains and commits every revoked unit, all at once, and returns
    /// when all have ended.
    fn revoke(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) {
        let lost = consumer.assignment_lost();
        let units: Vec<String> = {
            let mut assigned = lock(&self.assigned);
            partitions
                .elements()
                .iter()
                .filter_map(|p| assigned.remove(p.topic()))
                .collect()
        };
        if units.is_empty() {
            return;
        }
        let shared = &self.shared;
        shared
            .metrics
            .rebalances
            .with_label_values(&[if lost { "lost" } else { "revoke" }])
            .inc();
        let started = Instant::now();
        shared.runtime.block_on(async {
            let releases: Vec<_> = units
                .iter()
                .map(|unit| {
                    let supervisor = shared.supervisor.clone();
                    let unit = unit.clone();
                    tokio::spawn(async move { supervisor.release(&unit).await })
                })
                .collect();
            for release in releases {
                if let Err(e) = release.await {
                    tracing::error!(error = %e, "Releasing a unit failed.");
                }
            }
        });
        let took = started.elapsed();
        shared.metrics.release_seconds.observe(took.as_secs_f64());
        self.record(
            consumer,
            Rebalanced {
                at: now_rfc3339(),
                assigned: Vec::new(),
                revoked: units,
                lost,
                took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            },
        );
    }

    /// Starts every assigned unit this member's configuration defines.
    fn assign(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) {
        if partitions.count() == 0 {
            return;
        }
        // Membership only: nothing is ever read from a work topic.
        if let Err(e) = consumer.pause(partitions) {
            tracing::debug!(error = %e, "Cannot pause the work partitions.");
        }
        let shared = &self.shared;
        // Units are spawned on the daemon's runtime from this thread.
        let _runtime = shared.runtime.enter();
        let started = Instant::now();
        let topics = lock(&self.topics).clone();
        let mut units = Vec::new();
        for partition in partitions.elements() {
            let Some(unit) = shared.unit_of(partition.topic(), &topics) else {
                tracing::warn!(
                    topic = partition.topic(),
                    "Assigned a work topic this member's configuration does not define; held idle."
                );
                continue;
            };
            lock(&self.assigned).insert(partition.topic().to_owned(), unit.to_owned());
            if shared.supervisor.acquire(unit).is_none() {
                tracing::warn!(
                    unit,
                    "Assigned a unit that is not configured here; held idle."
                );
                continue;
            }
            units.push(unit.to_owned());
            shared.runtime.spawn(time_to_run(
                shared.supervisor.clone(),
                unit.to_owned(),
                started,
                shared.metrics.unit_start_seconds.clone(),
            ));
        }
        shared
            .metrics
            .rebalances
            .with_label_values(&["assign"])
            .inc();
        self.record(
            consumer,
            Rebalanced {
                at: now_rfc3339(),
                assigned: units,
                revoked: Vec::new(),
                lost: false,
                took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
        );
    }
}

/// Observes how long an assigned unit took to run (or to give up trying).
async fn time_to_run(
    supervisor: Arc<crate::pipeline::Supervisor>,
    unit: String,
    since: Instant,
    histogram: prometheus::Histogram,
) {
    let deadline = since + Duration::from_secs(300);
    while Instant::now() < deadline {
        match supervisor.source(&unit).map(|s| s.state) {
            Some("running" | "finished") => {
                histogram.observe(since.elapsed().as_secs_f64());
                tracing::info!(
                    unit,
                    took_ms = since.elapsed().as_millis() as u64,
                    "Unit taken over."
                );
                return;
            }
            Some("starting" | "backoff") => {}
            _ => return,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kafka's member id and the generation (classic) or member epoch
/// (consumer), which rdkafka does not wrap.
fn group_identity(consumer: &BaseConsumer<Membership>) -> (String, i32) {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is a live consumer handle for the duration of this
    // call. `rd_kafka_memberid` returns a string librdkafka allocated (or
    // null), freed here with `rd_kafka_mem_free`; the group metadata is an
    // owned copy (or null), destroyed after its generation is read.
    unsafe {
        use rdkafka::bindings as rd;
        let id_ptr = rd::rd_kafka_memberid(rk);
        let member_id = if id_ptr.is_null() {
            String::new()
        } else {
            let id = std::ffi::CStr::from_ptr(id_ptr)
                .to_string_lossy()
                .into_owned();
            rd::rd_kafka_mem_free(rk, id_ptr.cast());
            id
        };
        let metadata = rd::rd_kafka_consumer_group_metadata(rk);
        let generation = if metadata.is_null() {
            -1
        } else {
            let generation = rd::rd_kafka_consumer_group_metadata_generation_id(metadata);
            rd::rd_kafka_consumer_group_metadata_destroy(metadata);
            generation
        };
        (member_id, generation)
    }
}

impl ClientContext for Membership {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "cluster membership: {message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "cluster membership: {message}");
            }
            _ => {
                tracing::debug!(target: "librdkafka", facility = fac, "cluster membership: {message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "Cluster membership: {reason}");
    }
}

impl ConsumerContext for Membership {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            self.revoke(consumer, partitions);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => self.assign(consumer, partitions),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                self.shared
                    .metrics
                    .rebalances
                    .with_label_values(&["error"])
                    .inc();
                tracing::warn!(group = %self.shared.group, error = %e, "Cluster rebalance failed.");
            }
        }
    }
}
