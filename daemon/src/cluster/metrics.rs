//! The cluster's own metrics, registered with the daemon's registry.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

/// Per member; labels are bounded (`event` has four values).
pub(super) struct ClusterMetrics {
    /// `tributary_cluster_units_owned`.
    pub units_owned: IntGauge,
    /// `tributary_cluster_rebalances_total{event="assign|revoke|lost|error"}`.
    pub rebalances: IntCounterVec,
    /// `tributary_cluster_unit_start_seconds`: from an assignment to the
    /// unit running, the time to take over as this member sees it.
    pub unit_start_seconds: Histogram,
    /// `tributary_cluster_unit_release_seconds`: from a revoke to its
    /// units drained and committed.
    pub release_seconds: Histogram,
}

impl ClusterMetrics {
    /// Creates and registers the metrics.
    pub(super) fn register() -> ClusterMetrics {
        let buckets = vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        let metrics = ClusterMetrics {
            units_owned: IntGauge::new(
                "tributary_cluster_units_owned",
                "Units of cluster work this member runs.",
            )
            .expect("valid metric"),
            rebalances: IntCounterVec::new(
                Opts::new(
                    "tributary_cluster_rebalances_total",
                    "Rebalances this member went through: units assigned, revoked, lost \
                     (revoked after this member was counted gone), or a failed rebalance.",
                ),
                &["event"],
            )
            .expect("valid metric"),
            unit_start_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "tributary_cluster_unit_start_seconds",
                    "Seconds from a unit's assignment to this member until it runs.",
                )
                .buckets(buckets.clone()),
            )
            .expect("valid metric"),
            release_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "tributary_cluster_unit_release_seconds",
                    "Seconds from a revoke until its units were drained and committed.",
                )
                .buckets(buckets),
            )
            .expect("valid metric"),
        };
        for event in ["assign", "revoke", "lost", "error"] {
            metrics.rebalances.with_label_values(&[event]);
        }
        let global = crate::metrics::global();
        global.register(Box::new(metrics.units_owned.clone()));
        global.register(Box::new(metrics.rebalances.clone()));
        global.register(Box::new(metrics.unit_start_seconds.clone()));
        global.register(Box::new(metrics.release_seconds.clone()));
        metrics
    }
}
