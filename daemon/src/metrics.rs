//! Prometheus metrics: what `/metrics` serves.
//!
//! Per-source counters live in each source's [`SourceStatus`] (plain
//! atomics the pipeline bumps anyway); a collector turns them into metric
//! families at scrape time, so the hot path pays nothing extra and a source
//! removed by a reload disappears from the output. Counters that only exist
//! here (records failed and dead-lettered by error class, the write-to-ack
//! histogram, reloads) are ordinary registered metrics.
//!
//! Labels come only from bounded sets: source name, plugin, error class,
//! state, broker id. Never a path, a record value or an error message.
//!
//! Names: counters are `tributary_<noun>_<unit>_total`, gauges carry their
//! unit (`_seconds`, `_bytes`, `_records`, `_rows`) without `_total`. A
//! quantity whose unit depends on the plugin (the lag) has one family per
//! unit, and a source exports only the one of its type's unit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use rdkafka::statistics::Statistics;
use tributary_plugin_sdk::{ErrorCategory, LagUnit};

use crate::status::{SourceState, SourceStatus};

/// Upper bounds of the write-to-ack histogram: from a local broker's
/// millisecond to librdkafka's delivery timeouts.
const WRITE_TO_ACK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Error classes used by the daemon itself when counting failed records.
/// The dead-letter path may add its own, but each caller must draw from a
/// fixed list: every class becomes a time series.
pub mod error_class {
    /// Kafka did not acknowledge in time (`message.timeout.ms`).
    pub const TIMED_OUT: &str = "timed_out";
    /// The record is larger than the broker or producer accepts.
    pub const TOO_LARGE: &str = "too_large";
    /// The topic or cluster refused the producer's credentials.
    pub const AUTHORIZATION: &str = "authorization";
    /// The topic or partition does not exist.
    pub const UNKNOWN_TOPIC: &str = "unknown_topic";
    /// The broker fenced or forgot the idempotent producer.
    pub const PRODUCER_STATE: &str = "producer_state";
    /// Rows could not be serialised.
    pub const SERIALIZE: &str = "serialize";
    /// Anything else Kafka reported.
    pub const KAFKA_OTHER: &str = "kafka_other";
    /// Where classes beyond [`super::MAX_CLASSES_PER_SOURCE`] are counted.
    pub const OTHER: &str = "other";

    /// The classes the daemon itself counts failed records under; every
    /// source exports them from the start (at 0), so a dashboard's error
    /// panels have series before the first error.
    pub const DAEMON: &[&str] = &[
        TIMED_OUT,
        TOO_LARGE,
        AUTHORIZATION,
        UNKNOWN_TOPIC,
        PRODUCER_STATE,
        SERIALIZE,
        KAFKA_OTHER,
    ];
}

/// The daemon's own classes of source failures; the plugin ABI's error
/// categories (`ErrorCategory::NAMES`) come before them.
const DAEMON_FAILURE_CLASSES: [&str; 9] = [
    "kafka",
    "fenced",
    error_class::TOO_LARGE,
    "too_many_topics",
    "offsets",
    error_class::SERIALIZE,
    "dead_letter",
    "hung",
    error_class::OTHER,
];

/// Every class a source's failures are counted under.
pub fn source_failure_classes() -> impl Iterator<Item = &'static str> {
    ErrorCategory::NAMES
        .into_iter()
        .chain(DAEMON_FAILURE_CLASSES)
}

/// Distinct error classes a source may create series for; further ones are
/// counted as [`error_class::OTHER`]. Dead-letter classes come from
/// plugins, and a plugin bug must not be able to flood Prometheus.
pub const MAX_CLASSES_PER_SOURCE: usize = 32;
/// Longest error class kept; longer ones are cut.
const MAX_CLASS_CHARS: usize = 48;

/// The daemon's metrics. One per process: [`global`].
pub struct Metrics {
    registry: Registry,
    sources: Arc<Mutex<BTreeMap<String, Arc<SourceStatus>>>>,
    kafka: Arc<Mutex<Option<KafkaStats>>>,
    records_failed: IntCounterVec,
    records_dead_lettered: IntCounterVec,
    source_failures: IntCounterVec,
    write_to_ack: HistogramVec,
    reloads: IntCounter,
    reload_failures: IntCounter,
    plugin_load_failures: IntCounter,
    /// The error classes each source has used, to enforce
    /// [`MAX_CLASSES_PER_SOURCE`].
    classes: Mutex<HashMap<String, HashSet<String>>>,
    /// When `/metrics` was last rendered.
    last_scrape: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics. A process-wide instance because librdkafka's
/// callbacks and the plugin threads report into it without a handle.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let records_failed = IntCounterVec::new(
            Opts::new(
                "tributary_source_failed_records_total",
                "Records that could not be delivered or serialised, by error class; \
                 they are retried from the last committed checkpoint, never skipped.",
            ),
            &["source", "error_class"],
        )
        .expect("static metric options are valid");
        let records_dead_lettered = IntCounterVec::new(
            Opts::new(
                "tributary_source_dead_lettered_records_total",
                "Records written to the source's dead-letter topic, by error class.",
            ),
            &["source", "error_class"],
        )
        .expect("static metric options are valid");
        let source_failures = IntCounterVec::new(
            Opts::new(
                "tributary_source_failures_total",
                "Runs of a source that ended in an error, by error class: the plugin's \
                 category (internal, io, timeout, not_found, invalid_data, invalid_config, \
                 unauthorized) or the daemon's (kafka, offsets, serialize, dead_letter, hung). \
                 The last three plugin categories are permanent and leave the source failed.",
            ),
            &["source", "error_class"],
        )
        .expect("static metric options are valid");
        let write_to_ack = HistogramVec::new(
            HistogramOpts::new(
                "tributary_source_write_to_ack_seconds",
                "Time from handing a batch to the producer to Kafka acknowledging its last record.",
            )
            .buckets(WRITE_TO_ACK_BUCKETS.to_vec()),
            &["source"],
        )
        .expect("static metric options are valid");
        let reloads = IntCounter::new(
            "tributary_reloads_total",
            "Configuration reloads applied (SIGHUP or a change in the drop-in directory).",
        )
        .expect("static metric options are valid");
        let reload_failures = IntCounter::new(
            "tributary_reload_failures_total",
            "Configuration reloads rejected because the new configuration was invalid; \
             the running configuration was kept.",
        )
        .expect("static metric options are valid");
        let plugin_load_failures = IntCounter::new(
            "tributary_plugin_load_failures_total",
            "Plugin libraries that could not be loaded.",
        )
        .expect("static metric options are valid");
        let sources = Arc::new(Mutex::new(BTreeMap::new()));
        let kafka = Arc::new(Mutex::new(None));
        let dynamic = DynamicCollector::new(sources.clone(), kafka.clone());
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(records_failed.clone()),
            Box::new(records_dead_lettered.clone()),
            Box::new(source_failures.clone()),
            Box::new(write_to_ack.clone()),
            Box::new(reloads.clone()),
            Box::new(reload_failures.clone()),
            Box::new(plugin_load_failures.clone()),
            Box::new(dynamic),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for collector in collectors {
            // Names are distinct by construction; a clash is a bug caught by
            // the unit tests below, and must not take the daemon down.
            if let Err(e) = registry.register(collector) {
                tracing::error!(error = %e, "Metric not registered.");
            }
        }
        Metrics {
            registry,
            sources,
            kafka,
            records_failed,
            records_dead_lettered,
            source_failures,
            write_to_ack,
            reloads,
            reload_failures,
            plugin_load_failures,
            classes: Mutex::new(HashMap::new()),
            last_scrape: Mutex::new(None),
        }
    }

    /// A bounded label value for `class` reported by `source`: lowercase
    /// `[a-z0-9_]`, at most [`MAX_CLASS_CHARS`], and at most
    /// [`MAX_CLASSES_PER_SOURCE`] distinct per source.
    fn class_label(&self, source: &str, class: &str) -> String {
        let mut clean: String = class
            .chars()
            .take(MAX_CLASS_CHARS)
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        if clean.is_empty() {
            clean = error_class::OTHER.to_owned();
        }
        let mut classes = lock(&self.classes);
        let seen = classes.entry(source.to_owned()).or_default();
        if seen.contains(&clean) || seen.len() < MAX_CLASSES_PER_SOURCE {
            seen.insert(clean.clone());
            clean
        } else {
            error_class::OTHER.to_owned()
        }
    }

    /// Exports `status` until [`Metrics::remove_source`] (a reload removed
    /// or replaced it).
    pub fn add_source(&self, status: Arc<SourceStatus>) {
        for class in error_class::DAEMON {
            self.records_failed
                .with_label_values(&[status.name.as_str(), class]);
        }
        self.records_dead_lettered
            .with_label_values(&[status.name.as_str(), error_class::OTHER]);
        lock(&self.sources).insert(status.name.clone(), status);
    }

    /// Stops exporting the source `name`.
    pub fn remove_source(&self, name: &str) {
        lock(&self.sources).remove(name);
        let _ = self.write_to_ack.remove_label_values(&[name]);
        let classes = lock(&self.classes).remove(name).unwrap_or_default();
        for class in classes
            .iter()
            .map(String::as_str)
            .chain(error_class::DAEMON.iter().copied())
            .chain([error_class::OTHER])
        {
            let _ = self.records_failed.remove_label_values(&[name, class]);
            let _ = self
                .records_dead_lettered
                .remove_label_values(&[name, class]);
        }
        for class in source_failure_classes() {
            let _ = self.source_failures.remove_label_values(&[name, class]);
        }
    }

    /// Counts a run of `source` that ended in an error of `error_class`
    /// (one of [`source_failure_classes`]; anything else counts as `other`).
    pub fn source_failed(&self, source: &str, error_class: &str) {
        let class = if source_failure_classes().any(|c| c == error_class) {
            error_class
        } else {
            error_class::OTHER
        };
        self.source_failures
            .with_label_values(&[source, class])
            .inc();
    }

    /// Counts `n` records of `source` that failed with `error_class` (one of
    /// a fixed set, see [`error_class`]).
    pub fn records_failed(&self, source: &str, error_class: &str, n: u64) {
        let class = self.class_label(source, error_class);
        self.records_failed
            .with_label_values(&[source, &class])
            .inc_by(n);
    }

    /// Counts `n` records of `source` written to its dead-letter topic.
    /// `error_class` is the dead-letter row's class (e.g. `ragged_row`,
    /// `invalid_utf8`); it is cleaned and capped per source (see
    /// [`MAX_CLASSES_PER_SOURCE`]), so a plugin cannot flood the output.
    pub fn records_dead_lettered(&self, source: &str, error_class: &str, n: u64) {
        let class = self.class_label(source, error_class);
        self.records_dead_lettered
            .with_label_values(&[source, &class])
            .inc_by(n);
    }

    /// The write-to-ack histogram of `source`, for its sending thread.
    pub fn write_to_ack(&self, source: &str) -> Histogram {
        self.write_to_ack.with_label_values(&[source])
    }

    /// Counts an applied reload.
    pub fn reload_applied(&self) {
        self.reloads.inc();
    }

    /// Counts a rejected reload.
    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    /// Counts plugin libraries that failed to load.
    pub fn plugin_load_failed(&self, n: u64) {
        self.plugin_load_failures.inc_by(n);
    }

    /// Takes in librdkafka's latest statistics (`statistics.interval.ms`).
    pub fn kafka_statistics(&self, stats: &Statistics) {
        *lock(&self.kafka) = Some(KafkaStats::from(stats));
    }

    /// The Kafka client as its latest statistics describe it, for
    /// `GET /api/v1/kafka`; the same numbers `/metrics` exports, in one
    /// document a client can read without parsing Prometheus text.
    pub fn kafka_client(&self) -> KafkaClientView {
        let stats = lock(&self.kafka).clone().unwrap_or_default();
        KafkaClientView {
            statistics_age_seconds: stats.received.map(|t| t.elapsed().as_secs_f64()),
            queue_messages: stats.queue_messages,
            queue_bytes: stats.queue_bytes,
            retries: stats.retries,
            transmit_errors: stats.transmit_errors,
            brokers: stats.brokers,
        }
    }

    /// Records of `source` that failed (retried from the last checkpoint)
    /// and records it dead-lettered, each summed over error classes.
    pub fn record_errors(&self, source: &str) -> (u64, u64) {
        (
            sum_of_source(&self.records_failed, source),
            sum_of_source(&self.records_dead_lettered, source),
        )
    }

    /// Adds a module's own metrics (the cluster's). A second registration
    /// of the same name is logged and ignored: the first stays exported.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::warn!(error = %e, "A metric could not be registered.");
        }
    }

    /// Whether `/metrics` was scraped within `within`: someone watches the
    /// numbers there, so the log need not repeat them.
    pub fn scraped_within(&self, within: std::time::Duration) -> bool {
        lock(&self.last_scrape).is_some_and(|at| at.elapsed() < within)
    }

    /// Every metric in the Prometheus text exposition format, as a scrape
    /// gets it.
    pub fn render(&self) -> String {
        *lock(&self.last_scrape) = Some(std::time::Instant::now());
        let families = self.registry.gather();
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a family that the encoder
        // rejects would be a bug in this module, reported in the output.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "Metrics could not be encoded.");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The sum of the counters of `vec` labelled `source`, read through
/// `collect` so that asking creates no series.
fn sum_of_source(vec: &IntCounterVec, source: &str) -> u64 {
    vec.collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "source" && l.value() == source)
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// The Kafka client's queue and brokers, as `GET /api/v1/kafka` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KafkaClientView {
    /// Seconds since librdkafka took the statistics below; `None` before
    /// the first arrive (`statistics.interval.ms`, 5 s by default), while
    /// every number is still 0.
    pub statistics_age_seconds: Option<f64>,
    /// Records in the producer's queue (librdkafka `msg_cnt`).
    pub queue_messages: u64,
    /// Bytes in the producer's queue (librdkafka `msg_size`).
    pub queue_bytes: u64,
    /// Produce requests sent again.
    pub retries: u64,
    /// Transmission errors towards brokers.
    pub transmit_errors: u64,
    /// The brokers the client knows, by node id.
    pub brokers: Vec<BrokerStats>,
}

/// One broker in librdkafka's statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BrokerStats {
    /// The broker's node id.
    pub id: i32,
    /// `host:port/id`, as librdkafka names it.
    pub name: String,
    /// librdkafka's connection state: `UP`, `DOWN`, `CONNECT`, `AUTH`, …
    pub state: String,
    /// Average round-trip time over the last statistics window; `None`
    /// when no request was answered in it.
    pub rtt_seconds: Option<f64>,
}

/// What the daemon keeps of librdkafka's statistics.
#[derive(Debug, Clone, Default)]
struct KafkaStats {
    /// When they arrived.
    received: Option<Instant>,
    queue_messages: u64,
    queue_bytes: u64,
    retries: u64,
    transmit_errors: u64,
    /// Real brokers (bootstrap entries have node id -1 and are left out).
    brokers: Vec<BrokerStats>,
}

impl From<&Statistics> for KafkaStats {
    fn from(s: &Statistics) -> Self {
        let mut stats = KafkaStats {
            received: Some(Instant::now()),
            queue_messages: s.msg_cnt,
            queue_bytes: s.msg_size,
            ..KafkaStats::default()
        };
        for broker in s.brokers.values() {
            stats.retries += broker.txretries;
            stats.transmit_errors += broker.txerrs;
            if broker.nodeid >= 0 {
                stats.brokers.push(BrokerStats {
                    id: broker.nodeid,
                    name: broker.name.clone(),
                    state: broker.state.clone(),
                    rtt_seconds: broker.rtt.as_ref().map(|w| w.avg as f64 / 1e6),
                });
            }
        }
        stats.brokers.sort_unstable_by_key(|b| b.id);
        stats
    }
}

/// Builds the families whose series come and go with sources, and those
/// read from librdkafka's statistics, at each scrape.
struct DynamicCollector {
    sources: Arc<Mutex<BTreeMap<String, Arc<SourceStatus>>>>,
    kafka: Arc<Mutex<Option<KafkaStats>>>,
    started: Instant,
    /// Serialises scrapes: collecting resets and refills the vectors below.
    scrape: Mutex<Families>,
    descs: Vec<Desc>,
}

struct Families {
    polled: IntCounterVec,
    produced: IntCounterVec,
    bytes: IntCounterVec,
    batches: IntCounterVec,
    commits: IntCounterVec,
    commit_failures: IntCounterVec,
    restarts: IntCounterVec,
    commit_age: GaugeVec,
    in_flight: IntGaugeVec,
    lag_rows: IntGaugeVec,
    lag_bytes: IntGaugeVec,
    state: IntGaugeVec,
    uptime: Gauge,
    build_info: IntGaugeVec,
    queue_messages: IntGauge,
    queue_bytes: IntGauge,
    retries: IntCounter,
    transmit_errors: IntCounter,
    rtt: GaugeVec,
    brokers_up: IntGauge,
}

fn counter_vec(name: &str, help: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &["source", "plugin"])
        .expect("static metric options are valid")
}

fn int_gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric options are valid")
}

impl Families {
    fn new() -> Families {
        Families {
            polled: counter_vec(
                "tributary_source_polled_records_total",
                "Rows received from the source's plugin.",
            ),
            produced: counter_vec(
                "tributary_source_produced_records_total",
                "Records Kafka acknowledged.",
            ),
            bytes: counter_vec(
                "tributary_source_produced_bytes_total",
                "Value bytes of the records Kafka acknowledged.",
            ),
            batches: counter_vec(
                "tributary_source_batches_total",
                "Batches received from the source's plugin.",
            ),
            commits: counter_vec(
                "tributary_source_offset_commits_total",
                "Successful writes of the source's delivered checkpoints.",
            ),
            commit_failures: counter_vec(
                "tributary_source_offset_commit_failures_total",
                "Failed writes of the source's checkpoints (retried at the next interval).",
            ),
            restarts: counter_vec(
                "tributary_source_restarts_total",
                "Restarts of the source after a failure.",
            ),
            commit_age: GaugeVec::new(
                Opts::new(
                    "tributary_source_last_commit_age_seconds",
                    "Seconds since the source's last successful offset commit (since it was set \
                     up, before the first). An idle source has nothing to commit.",
                ),
                &["source", "plugin"],
            )
            .expect("static metric options are valid"),
            in_flight: int_gauge_vec(
                "tributary_source_in_flight_records",
                "Records handed to the producer and not yet acknowledged.",
                &["source", "plugin"],
            ),
            lag_rows: int_gauge_vec(
                "tributary_source_lag_rows",
                "Rows the source has yet to read from its input, for source types that count \
                 their lag in rows; absent when the plugin does not know.",
                &["source", "plugin"],
            ),
            lag_bytes: int_gauge_vec(
                "tributary_source_lag_bytes",
                "Bytes the source has yet to read from its input, for source types that count \
                 their lag in bytes; absent when the plugin does not know.",
                &["source", "plugin"],
            ),
            state: int_gauge_vec(
                "tributary_source_state",
                "1 for the source's current state, 0 for the others.",
                &["source", "plugin", "state"],
            ),
            uptime: Gauge::new(
                "tributary_uptime_seconds",
                "Seconds since the daemon started.",
            )
            .expect("static metric options are valid"),
            build_info: int_gauge_vec(
                "tributary_build_info",
                "Always 1; the label carries the daemon's version.",
                &["version"],
            ),
            queue_messages: IntGauge::new(
                "tributary_kafka_queue_messages",
                "Records in the producer's queue (librdkafka msg_cnt).",
            )
            .expect("static metric options are valid"),
            queue_bytes: IntGauge::new(
                "tributary_kafka_queue_bytes",
                "Bytes in the producer's queue (librdkafka msg_size).",
            )
            .expect("static metric options are valid"),
            retries: IntCounter::new(
                "tributary_kafka_retries_total",
                "Produce requests sent again by librdkafka (resets when the producer is replaced).",
            )
            .expect("static metric options are valid"),
            transmit_errors: IntCounter::new(
                "tributary_kafka_transmit_errors_total",
                "Transmission errors towards brokers (resets when the producer is replaced).",
            )
            .expect("static metric options are valid"),
            rtt: GaugeVec::new(
                Opts::new(
                    "tributary_kafka_broker_rtt_seconds",
                    "Average round-trip time to each broker over the last statistics window.",
                ),
                &["broker"],
            )
            .expect("static metric options are valid"),
            brokers_up: IntGauge::new(
                "tributary_kafka_brokers_up",
                "Brokers the producer is connected to.",
            )
            .expect("static metric options are valid"),
        }
    }

    fn collectors(&self) -> Vec<&dyn Collector> {
        vec![
            &self.polled,
            &self.produced,
            &self.bytes,
            &self.batches,
            &self.commits,
            &self.commit_failures,
            &self.restarts,
            &self.commit_age,
            &self.in_flight,
            &self.lag_rows,
            &self.lag_bytes,
            &self.state,
            &self.uptime,
            &self.build_info,
            &self.queue_messages,
            &self.queue_bytes,
            &self.retries,
            &self.transmit_errors,
            &self.rtt,
            &self.brokers_up,
        ]
    }
}

impl DynamicCollector {
    fn new(
        sources: Arc<Mutex<BTreeMap<String, Arc<SourceStatus>>>>,
        kafka: Arc<Mutex<Option<KafkaStats>>>,
    ) -> DynamicCollector {
        let families = Families::new();
        let descs = families
            .collectors()
            .into_iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        DynamicCollector {
            sources,
            kafka,
            started: Instant::now(),
            scrape: Mutex::new(families),
            descs,
        }
    }
}

impl Collector for DynamicCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let f = lock(&self.scrape);
        let statuses: Vec<Arc<SourceStatus>> = lock(&self.sources).values().cloned().collect();
        for vec in [
            &f.polled,
            &f.produced,
            &f.bytes,
            &f.batches,
            &f.commits,
            &f.commit_failures,
            &f.restarts,
        ] {
            vec.reset();
        }
        f.commit_age.reset();
        f.in_flight.reset();
        f.lag_rows.reset();
        f.lag_bytes.reset();
        f.state.reset();
        f.rtt.reset();
        for s in &statuses {
            let labels = [s.name.as_str(), s.source_type.as_str()];
            f.polled
                .with_label_values(&labels)
                .inc_by(s.records_polled.load(Relaxed));
            f.produced
                .with_label_values(&labels)
                .inc_by(s.records_produced.load(Relaxed));
            f.bytes
                .with_label_values(&labels)
                .inc_by(s.bytes_produced.load(Relaxed));
            f.batches
                .with_label_values(&labels)
                .inc_by(s.batches.load(Relaxed));
            f.commits
                .with_label_values(&labels)
                .inc_by(s.commits.load(Relaxed));
            f.commit_failures
                .with_label_values(&labels)
                .inc_by(s.commit_failures.load(Relaxed));
            f.restarts
                .with_label_values(&labels)
                .inc_by(s.restarts.load(Relaxed));
            f.commit_age
                .with_label_values(&labels)
                .set(s.commit_age().as_secs_f64());
            f.in_flight
                .with_label_values(&labels)
                .set(s.in_flight.load(Relaxed).max(0));
            let lag = s.lag.load(Relaxed);
            if let Some(unit) = s.lag_unit()
                && lag >= 0
            {
                let family = match unit {
                    LagUnit::Rows => &f.lag_rows,
                    LagUnit::Bytes => &f.lag_bytes,
                };
                family.with_label_values(&labels).set(lag);
            }
            let current = s.state();
            for state in SourceState::ALL {
                f.state
                    .with_label_values(&[labels[0], labels[1], state.as_str()])
                    .set(i64::from(state == current));
            }
        }
        f.uptime.set(self.started.elapsed().as_secs_f64());
        f.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let kafka = lock(&self.kafka).clone().unwrap_or_default();
        f.queue_messages
            .set(i64::try_from(kafka.queue_messages).unwrap_or(i64::MAX));
        f.queue_bytes
            .set(i64::try_from(kafka.queue_bytes).unwrap_or(i64::MAX));
        f.retries.reset();
        f.retries.inc_by(kafka.retries);
        f.transmit_errors.reset();
        f.transmit_errors.inc_by(kafka.transmit_errors);
        let mut up = 0;
        for broker in &kafka.brokers {
            if let Some(rtt) = broker.rtt_seconds {
                f.rtt.with_label_values(&[&broker.id.to_string()]).set(rtt);
            }
            up += i64::from(broker.state == "UP");
        }
        f.brokers_up.set(up);
        f.collectors()
            .into_iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}

/// Locks a mutex, recovering from poisoning: the guarded values are plain
/// data that stay consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_counters_are_exported_with_source_and_plugin_labels() {
        let metrics = Metrics::new();
        let status = Arc::new(SourceStatus::new("orders", "datagen"));
        status.records_produced.store(42, Relaxed);
        status.set_state(SourceState::Running);
        metrics.add_source(status);
        metrics.records_dead_lettered("orders", "parse", 3);
        let text = metrics.render();
        assert!(
            text.contains(
                "tributary_source_produced_records_total{plugin=\"datagen\",source=\"orders\"} 42"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tributary_source_state{plugin=\"datagen\",source=\"orders\",state=\"running\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tributary_source_state{plugin=\"datagen\",source=\"orders\",state=\"paused\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tributary_source_dead_lettered_records_total{error_class=\"parse\",source=\"orders\"} 3"
            ),
            "{text}"
        );
        // Unknown lag is absent, not a made-up number.
        assert!(!text.contains("tributary_source_lag_rows{"), "{text}");
        assert!(!text.contains("tributary_source_lag_bytes{"), "{text}");
        metrics.remove_source("orders");
        assert!(
            !metrics
                .render()
                .contains("tributary_source_produced_records_total{"),
        );
    }

    #[test]
    fn lag_is_exported_in_the_unit_of_the_source_type_only() {
        let metrics = Metrics::new();
        for (name, unit) in [
            ("parquet-in", Some(LagUnit::Rows)),
            ("logs-in", Some(LagUnit::Bytes)),
            ("host", None),
        ] {
            let status = Arc::new(SourceStatus::new(name, "p"));
            status.set_lag_unit(unit);
            status.lag.store(7, Relaxed);
            metrics.add_source(status);
        }
        let text = metrics.render();
        let lag_lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tributary_source_lag"))
            .collect();
        assert_eq!(
            lag_lines,
            [
                "tributary_source_lag_bytes{plugin=\"p\",source=\"logs-in\"} 7",
                "tributary_source_lag_rows{plugin=\"p\",source=\"parquet-in\"} 7",
            ],
            "{text}"
        );
    }

    #[test]
    fn every_collector_registers_and_process_metrics_are_present() {
        let metrics = Metrics::new();
        let text = metrics.render();
        for name in [
            "tributary_uptime_seconds",
            "tributary_build_info",
            "tributary_reloads_total",
            "tributary_reload_failures_total",
            "tributary_plugin_load_failures_total",
            "tributary_kafka_queue_messages",
            "tributary_kafka_retries_total",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ] {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing:\n{text}"
            );
        }
    }

    #[test]
    fn record_errors_sum_every_class_of_one_source_and_create_no_series() {
        let metrics = Metrics::new();
        metrics.add_source(Arc::new(SourceStatus::new("a", "p")));
        metrics.records_failed("a", error_class::TIMED_OUT, 2);
        metrics.records_failed("a", error_class::SERIALIZE, 3);
        metrics.records_failed("b", error_class::TIMED_OUT, 100);
        metrics.records_dead_lettered("a", "ragged_row", 4);
        let series = || -> Vec<String> {
            metrics
                .render()
                .lines()
                .filter(|l| l.contains("_records_total{"))
                .map(str::to_owned)
                .collect()
        };
        let before = series();
        assert_eq!(metrics.record_errors("a"), (5, 4));
        assert_eq!(metrics.record_errors("unknown"), (0, 0));
        assert_eq!(series(), before);
        // Before librdkafka's first statistics the age says so.
        let kafka = metrics.kafka_client();
        assert_eq!(kafka.statistics_age_seconds, None);
        assert!(kafka.brokers.is_empty());
    }

    #[test]
    fn error_classes_are_cleaned_and_capped_per_source() {
        let metrics = Metrics::new();
        metrics.records_dead_lettered("s", "Bad Row/../x", 1);
        for i in 0..MAX_CLASSES_PER_SOURCE + 10 {
            metrics.records_dead_lettered("s", &format!("class{i}"), 1);
        }
        let text = metrics.render();
        assert!(text.contains("error_class=\"bad_row____x\""), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with("tributary_source_dead_lettered_records_total{"))
            .count();
        // The cap, plus the overflow class.
        assert_eq!(series, MAX_CLASSES_PER_SOURCE + 1, "{text}");
        assert!(
            text.contains(
                "tributary_source_dead_lettered_records_total{error_class=\"other\",source=\"s\"} 11"
            ),
            "{text}"
        );
    }
}
