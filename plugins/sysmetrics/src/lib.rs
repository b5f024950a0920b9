//! `sysmetrics`: a tributary source plugin that samples the host's CPU,
//! load, memory, filesystems, disks, network interfaces, processes and
//! (optionally) a cgroup, reading `/proc` and `/sys` directly.
//!
//! * [`procfs`]: parsers of the kernel's text files;
//! * [`collect`]: the engine, two readings → one [`collect::Sample`];
//! * [`shape`]: a sample as Arrow rows, `wide` or `long`;
//! * [`config`]: the options;
//! * this file: the thin glue to the plugin SDK: wall-clock alignment,
//!   the `host` column, rate-limited error logs.
//!
//! Metrics are point in time, so there is nothing to resume: every batch
//! goes to partition `sysmetrics` with an empty checkpoint. Delivery is
//! accounted like any other source's, and since the checkpoint never changes
//! the daemon writes no offset file per sample.

pub mod collect;
pub mod config;
pub mod procfs;
pub mod shape;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tributary_plugin_sdk::{
    Batch, ConfigIssue, CreateContext, Error, LagUnit, Logger, OptionSpec, Options, Poll, Source,
    SourceType,
};

use crate::collect::{Collector, Sample};
use crate::config::{Config, Shape};

/// The one partition of a `sysmetrics` source.
pub const PARTITION: &[u8] = b"sysmetrics";

/// How often the same collector's failure is logged at most.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The first wall-clock multiple of `interval_ms` strictly after `now_ms`.
pub fn next_boundary(now_ms: i64, interval_ms: u64) -> i64 {
    let i = i64::try_from(interval_ms).unwrap_or(i64::MAX).max(1);
    (now_ms.div_euclid(i) + 1).saturating_mul(i)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `sysmetrics` source type.
#[derive(Debug)]
pub struct SysMetrics {
    collector: Collector,
    shape: Shape,
    interval_ms: u64,
    host: String,
    /// The wall-clock time (ms) of the next sample.
    next_ms: i64,
    log: Logger,
    /// When each collector's failure was last logged.
    logged: HashMap<&'static str, Instant>,
}

impl SysMetrics {
    /// A source from checked options; the first sample is at the next
    /// boundary.
    pub fn new(config: Config, log: Logger) -> SysMetrics {
        let collector = Collector::new(config.clone());
        let host = config.host.clone().unwrap_or_else(|| {
            collector.host_name().unwrap_or_else(|e| {
                log.warn(&format!(
                    "Cannot read the host name ({e}); the host column says \"unknown\". \
                     Set the `host` option."
                ));
                "unknown".to_owned()
            })
        });
        SysMetrics {
            collector,
            shape: config.shape,
            interval_ms: config.interval_ms,
            host,
            next_ms: next_boundary(now_millis(), config.interval_ms),
            log,
            logged: HashMap::new(),
        }
    }

    /// The value of the `host` column.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Logs each failing collector at most once per [`ERROR_LOG_INTERVAL`].
    fn log_errors(&mut self, sample: &Sample) {
        let now = Instant::now();
        for e in &sample.errors {
            let due = self
                .logged
                .get(e.collector)
                .is_none_or(|t| now.duration_since(*t) >= ERROR_LOG_INTERVAL);
            if due {
                self.logged.insert(e.collector, now);
                let more = sample
                    .errors
                    .iter()
                    .filter(|o| o.collector == e.collector)
                    .count()
                    - 1;
                self.log.warn(&format!(
                    "Collector {} dropped a metric: {} ({more} more this sample; logged at \
                     most once a minute, counted in collector_errors).",
                    e.collector, e.message
                ));
            }
        }
    }

    /// Samples now and shapes the rows, stamped `timestamp_ms`.
    pub fn sample_at(&mut self, timestamp_ms: i64) -> Result<Batch, Error> {
        let sample = self.collector.sample();
        self.log_errors(&sample);
        let records = match self.shape {
            Shape::Wide => shape::wide(&sample, &self.host, timestamp_ms, self.interval_ms)?,
            Shape::Long => shape::long(&sample, &self.host, timestamp_ms)?,
        };
        Ok(Batch {
            records,
            partition: PARTITION.to_vec(),
            checkpoint: Vec::new(),
            lag: None,
        })
    }
}

impl Source for SysMetrics {
    fn validate(options: &Options) -> Result<(), Vec<ConfigIssue>> {
        Config::from_options(options).map(|_| ())
    }

    fn create(ctx: CreateContext) -> Result<Self, Error> {
        let config = Config::from_options(&ctx.options).map_err(Error::from)?;
        // Checkpoints carry only the last sample's time: nothing to resume.
        Ok(SysMetrics::new(config, ctx.log))
    }

    fn poll(&mut self, timeout: Duration) -> Result<Poll, Error> {
        let now = now_millis();
        if now < self.next_ms {
            let wait = Duration::from_millis((self.next_ms - now).unsigned_abs());
            if wait > timeout {
                std::thread::sleep(timeout);
                return Ok(Poll::Idle);
            }
            std::thread::sleep(wait);
        }
        let at = self.next_ms;
        // After a stall (suspend, a blocked producer), skip the missed
        // boundaries instead of sampling in a burst.
        self.next_ms = next_boundary(now_millis().max(at), self.interval_ms);
        self.sample_at(at).map(Poll::Batch)
    }
}

impl SourceType for SysMetrics {
    const NAME: &'static str = "sysmetrics";
    const DESCRIPTION: &'static str =
        "Samples host CPU, memory, filesystems, disks and network from /proc and /sys.";
    /// One host, one partition: rows are keyed by host name unless the
    /// source sets another `key`.
    const DEFAULT_KEY: Option<&'static str> = Some("host");
    /// A sample describes the host now: nothing waits to be read.
    const LAG_UNIT: Option<LagUnit> = None;
    /// This host's files/metrics: in a cluster, every member reads its own.
    const READS_THIS_HOST: bool = true;

    fn options() -> Vec<OptionSpec> {
        config::options()
    }
}

tributary_plugin_sdk::export_plugin!(name: "sysmetrics", sources: [SysMetrics]);

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use serde_json::json;

    use super::*;

    fn create(config: serde_json::Value) -> SysMetrics {
        SysMetrics::create(CreateContext {
            source_name: "test".into(),
            options: Options::parse(&SysMetrics::options(), &config).unwrap(),
            checkpoints: vec![],
            log: Logger::none(),
        })
        .unwrap()
    }

    #[test]
    fn boundaries_are_wall_clock_multiples() {
        assert_eq!(next_boundary(0, 10_000), 10_000);
        assert_eq!(next_boundary(9_999, 10_000), 10_000);
        assert_eq!(next_boundary(10_000, 10_000), 20_000);
        assert_eq!(next_boundary(1_763_754_001_234, 1000), 1_763_754_002_000);
    }

    #[test]
    fn polls_are_aligned_and_never_overrun_the_timeout() {
        let mut s = create(json!({"interval_ms": 200}));
        let mut stamps = Vec::new();
        let start = Instant::now();
        while stamps.len() < 3 {
            let before = Instant::now();
            if let Poll::Batch(b) = s.poll(Duration::from_millis(50)).unwrap() {
                assert_eq!(b.partition, PARTITION);
                assert!(b.checkpoint.is_empty(), "nothing to resume");
                let column = b.records.column_by_name("timestamp").unwrap();
                let ts = column
                    .as_any()
                    .downcast_ref::<arrow_array::TimestampMillisecondArray>()
                    .unwrap()
                    .value(0);
                stamps.push(ts);
            }
            assert!(
                before.elapsed() < Duration::from_millis(300),
                "poll overran"
            );
            assert!(start.elapsed() < Duration::from_secs(10));
        }
        for w in stamps.windows(2) {
            assert_eq!(w[0] % 200, 0);
            assert!(w[1] > w[0]);
        }
    }

    /// A tree with every file the collectors read, from fixture strings.
    fn fake_tree(dir: &std::path::Path) {
        let w = |rel: &str, text: &str| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "proc/stat",
            "cpu 10 0 10 80 0 0 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\nbtime 100\nprocs_running 1\nprocs_blocked 0\n",
        );
        w(
            "proc/meminfo",
            "MemTotal: 1000 kB\nMemAvailable: 250 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
        );
        w("proc/loadavg", "0.5 0.4 0.3 1/50 99\n");
        w("proc/uptime", "123.5 100.0\n");
        w("proc/diskstats", " 254 0 vda 1 0 2 3 4 0 5 6 0 0 0\n");
        w(
            "proc/net/dev",
            "h\nh\n eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n",
        );
        w(
            "proc/self/mountinfo",
            "27 1 254:1 / / rw - ext4 /dev/vda1 rw\n",
        );
        w("proc/sys/kernel/hostname", "fakehost\n");
        std::fs::create_dir_all(dir.join("sys/block/vda")).unwrap();
    }

    #[test]
    fn a_missing_file_drops_its_metric_not_the_row() {
        let dir = std::env::temp_dir().join(format!("sysmetrics-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        fake_tree(&dir);
        let config = json!({
            "proc_path": dir.join("proc").to_str().unwrap(),
            "sys_path": dir.join("sys").to_str().unwrap(),
        });
        let mut s = create(config);
        assert_eq!(s.host(), "fakehost");
        let first = s.sample_at(1000).unwrap().records;
        let errors = |b: &arrow_array::RecordBatch| {
            b.column_by_name("collector_errors")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .value(0)
        };
        assert_eq!(errors(&first), 0);
        // The first sample knows no rates.
        assert!(
            first
                .column_by_name("net_rx_bytes_per_sec")
                .unwrap()
                .is_null(0)
        );

        let stat = "cpu 20 0 20 160 0 0 0 0 0 0\nbtime 100\nprocs_running 1\nprocs_blocked 0\n";
        std::fs::write(dir.join("proc/stat"), stat).unwrap();
        std::fs::remove_file(dir.join("proc/meminfo")).unwrap();
        std::fs::remove_dir_all(dir.join("sys/block")).unwrap();
        let second = s.sample_at(2000).unwrap().records;
        assert_eq!(second.schema(), first.schema());
        assert_eq!(errors(&second), 2);
        let col = |n: &str| second.column_by_name(n).unwrap().clone();
        assert!(col("memory_total_bytes").is_null(0));
        assert!(col("disk_reads_per_sec").is_null(0));
        // Everything else is still there.
        for n in [
            "cpu_percent",
            "load1",
            "net_rx_bytes_per_sec",
            "fs_size_bytes",
            "uptime_seconds",
        ] {
            assert!(!col(n).is_null(0), "{n}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
