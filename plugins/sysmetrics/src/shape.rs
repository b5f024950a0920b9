//! Turning a [`Sample`] into Arrow rows: `wide` (one row, fixed columns)
//! or `long` (one row per metric and label set).
//!
//! The wide schema never changes: a collector that is off, failed, or has
//! no rate yet leaves its columns null, so Avro and JSON Schema consumers
//! see the same record type every interval.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{MapBuilder, MapFieldNames, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tributary_plugin_sdk::Error;

use crate::collect::{CpuPercent, Sample};

const UTC: &str = "UTC";

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// Wide columns after `host`, `timestamp`, `collector_errors`, with their
/// types: `F` Float64, `U` UInt64, `I` Int64. All nullable.
pub const WIDE_COLUMNS: [(&str, char); 47] = [
    ("cpu_percent", 'F'),
    ("cpu_user_percent", 'F'),
    ("cpu_system_percent", 'F'),
    ("cpu_iowait_percent", 'F'),
    ("cpu_idle_percent", 'F'),
    ("cpu_steal_percent", 'F'),
    ("load1", 'F'),
    ("load5", 'F'),
    ("load15", 'F'),
    ("memory_total_bytes", 'U'),
    ("memory_used_bytes", 'U'),
    ("memory_available_bytes", 'U'),
    ("memory_percent", 'F'),
    ("swap_total_bytes", 'U'),
    ("swap_used_bytes", 'U'),
    ("swap_available_bytes", 'U'),
    ("swap_percent", 'F'),
    ("fs_size_bytes", 'U'),
    ("fs_used_bytes", 'U'),
    ("fs_available_bytes", 'U'),
    ("fs_used_percent", 'F'),
    ("fs_max_used_percent", 'F'),
    ("fs_inodes_total", 'U'),
    ("fs_inodes_used", 'U'),
    ("disk_read_bytes_per_sec", 'F'),
    ("disk_write_bytes_per_sec", 'F'),
    ("disk_reads_per_sec", 'F'),
    ("disk_writes_per_sec", 'F'),
    ("disk_read_time_ms_per_sec", 'F'),
    ("disk_write_time_ms_per_sec", 'F'),
    ("net_rx_bytes_per_sec", 'F'),
    ("net_rx_packets_per_sec", 'F'),
    ("net_rx_errors_per_sec", 'F'),
    ("net_rx_drops_per_sec", 'F'),
    ("net_tx_bytes_per_sec", 'F'),
    ("net_tx_packets_per_sec", 'F'),
    ("net_tx_errors_per_sec", 'F'),
    ("net_tx_drops_per_sec", 'F'),
    ("processes", 'U'),
    ("threads", 'U'),
    ("procs_running", 'U'),
    ("procs_blocked", 'U'),
    ("uptime_seconds", 'F'),
    ("boot_time_seconds", 'I'),
    ("cgroup_cpu_percent", 'F'),
    ("cgroup_memory_bytes", 'U'),
    ("interval_ms", 'U'),
];

/// The wide schema: `host`, `timestamp`, `collector_errors`, then
/// [`WIDE_COLUMNS`].
pub fn wide_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![
                Field::new("host", DataType::Utf8, false),
                Field::new("timestamp", timestamp_type(), false),
                Field::new("collector_errors", DataType::UInt64, false),
            ];
            fields.extend(WIDE_COLUMNS.iter().map(|(name, t)| {
                let dt = match t {
                    'F' => DataType::Float64,
                    'U' => DataType::UInt64,
                    _ => DataType::Int64,
                };
                Field::new(*name, dt, true)
            }));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// A value of a wide column.
#[derive(Debug, Clone, Copy)]
enum V {
    F(Option<f64>),
    U(Option<u64>),
}

/// The one wide row of `sample`.
pub fn wide(
    sample: &Sample,
    host: &str,
    timestamp_ms: i64,
    interval_ms: u64,
) -> Result<RecordBatch, Error> {
    use V::{F, U};
    let cpu = sample.cpu;
    let c = |f: fn(&CpuPercent) -> f64| F(cpu.as_ref().map(f));
    let load = |i: usize| F(sample.load.map(|l| l[i]));
    let (m, sw) = (&sample.memory, &sample.swap);
    let fs = sample.filesystems.as_ref();
    let fs_sum = |f: fn(&crate::collect::FsUse) -> u64| U(fs.map(|v| v.iter().map(f).sum()));
    let fs_used: Option<u64> = fs.map(|v| v.iter().map(|f| f.used).sum());
    let fs_avail: Option<u64> = fs.map(|v| v.iter().map(|f| f.available).sum());
    let fs_percent = fs_used
        .zip(fs_avail)
        .filter(|(u, a)| u + a > 0)
        .map(|(u, a)| u as f64 * 100.0 / (u + a) as f64);
    let fs_max = fs.and_then(|v| v.iter().filter_map(|f| f.used_percent()).reduce(f64::max));
    let d = sample.disk_total();
    let n = sample.network_total();
    let nr = |rx: bool, i: usize| F(n.map(|n| if rx { n.rx[i] } else { n.tx[i] }));
    let values: [V; 47] = [
        F(cpu.map(|c| c.busy())),
        c(|c| c.user),
        c(|c| c.system),
        c(|c| c.iowait),
        c(|c| c.idle),
        c(|c| c.steal),
        load(0),
        load(1),
        load(2),
        U(m.total),
        U(m.used),
        U(m.available),
        F(m.percent),
        U(sw.total),
        U(sw.used),
        U(sw.available),
        F(sw.percent),
        fs_sum(|f| f.size),
        U(fs_used),
        U(fs_avail),
        F(fs_percent),
        F(fs_max),
        fs_sum(|f| f.inodes_total),
        fs_sum(|f| f.inodes_used),
        F(d.map(|d| d.read_bytes)),
        F(d.map(|d| d.write_bytes)),
        F(d.map(|d| d.reads)),
        F(d.map(|d| d.writes)),
        F(d.map(|d| d.read_time_ms)),
        F(d.map(|d| d.write_time_ms)),
        nr(true, 0),
        nr(true, 1),
        nr(true, 2),
        nr(true, 3),
        nr(false, 0),
        nr(false, 1),
        nr(false, 2),
        nr(false, 3),
        U(sample.processes),
        U(sample.threads),
        U(sample.procs_running),
        U(sample.procs_blocked),
        F(sample.uptime_seconds),
        // `boot_time_seconds` is the one Int64 column; see below.
        U(sample.boot_time_seconds),
        F(sample.cgroup_cpu_percent),
        U(sample.cgroup_memory_bytes),
        U(Some(interval_ms)),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![host])),
        Arc::new(TimestampMillisecondArray::from(vec![timestamp_ms]).with_timezone(UTC)),
        Arc::new(UInt64Array::from(vec![sample.errors.len() as u64])),
    ];
    for ((_, t), v) in WIDE_COLUMNS.iter().zip(values) {
        columns.push(match (t, v) {
            ('F', F(x)) => Arc::new(Float64Array::from(vec![x])),
            ('U', U(x)) => Arc::new(UInt64Array::from(vec![x])),
            ('I', U(x)) => Arc::new(Int64Array::from(vec![
                x.and_then(|x| i64::try_from(x).ok()),
            ])),
            // The table above and `values` are written side by side; a
            // mismatch is a bug the schema test catches.
            _ => return Err(Error::new("sysmetrics: wide column type mismatch")),
        });
    }
    Ok(RecordBatch::try_new(wide_schema(), columns)?)
}

/// The long schema: `host`, `timestamp`, `name`, `value`, `labels`.
pub fn long_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let labels = DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(
                        vec![
                            Field::new("key", DataType::Utf8, false),
                            Field::new("value", DataType::Utf8, true),
                        ]
                        .into(),
                    ),
                    false,
                )),
                false,
            );
            Arc::new(Schema::new(vec![
                Field::new("host", DataType::Utf8, false),
                Field::new("timestamp", timestamp_type(), false),
                Field::new("name", DataType::Utf8, false),
                Field::new("value", DataType::Float64, false),
                Field::new("labels", labels, false),
            ]))
        })
        .clone()
}

/// Collects long rows.
#[derive(Debug, Default)]
struct Long {
    names: Vec<&'static str>,
    values: Vec<f64>,
    labels: Vec<Vec<(&'static str, String)>>,
}

impl Long {
    fn push(&mut self, name: &'static str, value: Option<f64>, labels: &[(&'static str, &str)]) {
        // Unknown values are left out: a long row exists only for what was
        // measured, as in Prometheus.
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return;
        };
        self.names.push(name);
        self.values.push(value);
        self.labels
            .push(labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
    }

    fn cpu(&mut self, c: &CpuPercent, labels: &[(&'static str, &str)]) {
        self.push("cpu_percent", Some(c.busy()), labels);
        self.push("cpu_user_percent", Some(c.user), labels);
        self.push("cpu_system_percent", Some(c.system), labels);
        self.push("cpu_iowait_percent", Some(c.iowait), labels);
        self.push("cpu_idle_percent", Some(c.idle), labels);
        self.push("cpu_steal_percent", Some(c.steal), labels);
    }
}

fn f(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

/// The long rows of `sample`: one per metric and label set. Rates are
/// absent (no row) in the first sample; `collector_errors` is always there.
pub fn long(sample: &Sample, host: &str, timestamp_ms: i64) -> Result<RecordBatch, Error> {
    let mut l = Long::default();
    l.push("collector_errors", Some(sample.errors.len() as f64), &[]);
    if let Some(c) = &sample.cpu {
        l.cpu(c, &[]);
    }
    for (n, c) in &sample.per_cpu {
        l.cpu(c, &[("cpu", &n.to_string())]);
    }
    if let Some([a, b, c]) = sample.load {
        l.push("load1", Some(a), &[]);
        l.push("load5", Some(b), &[]);
        l.push("load15", Some(c), &[]);
    }
    for (prefix, m) in [("memory", &sample.memory), ("swap", &sample.swap)] {
        let mem = prefix == "memory";
        l.push(
            if mem {
                "memory_total_bytes"
            } else {
                "swap_total_bytes"
            },
            f(m.total),
            &[],
        );
        l.push(
            if mem {
                "memory_used_bytes"
            } else {
                "swap_used_bytes"
            },
            f(m.used),
            &[],
        );
        l.push(
            if mem {
                "memory_available_bytes"
            } else {
                "swap_available_bytes"
            },
            f(m.available),
            &[],
        );
        l.push(
            if mem {
                "memory_percent"
            } else {
                "swap_percent"
            },
            m.percent,
            &[],
        );
    }
    for fs in sample.filesystems.iter().flatten() {
        let labels = [
            ("mountpoint", fs.mount_point.as_str()),
            ("fstype", fs.fs_type.as_str()),
            ("device", fs.device.as_str()),
        ];
        l.push("fs_size_bytes", f(Some(fs.size)), &labels);
        l.push("fs_used_bytes", f(Some(fs.used)), &labels);
        l.push("fs_available_bytes", f(Some(fs.available)), &labels);
        l.push("fs_used_percent", fs.used_percent(), &labels);
        l.push("fs_inodes_total", f(Some(fs.inodes_total)), &labels);
        l.push("fs_inodes_used", f(Some(fs.inodes_used)), &labels);
    }
    for (dev, d) in sample.disks.iter().flatten() {
        let labels = [("device", dev.as_str())];
        l.push("disk_read_bytes_per_sec", Some(d.read_bytes), &labels);
        l.push("disk_write_bytes_per_sec", Some(d.write_bytes), &labels);
        l.push("disk_reads_per_sec", Some(d.reads), &labels);
        l.push("disk_writes_per_sec", Some(d.writes), &labels);
        l.push("disk_read_time_ms_per_sec", Some(d.read_time_ms), &labels);
        l.push("disk_write_time_ms_per_sec", Some(d.write_time_ms), &labels);
    }
    const RX: [&str; 4] = [
        "net_rx_bytes_per_sec",
        "net_rx_packets_per_sec",
        "net_rx_errors_per_sec",
        "net_rx_drops_per_sec",
    ];
    const TX: [&str; 4] = [
        "net_tx_bytes_per_sec",
        "net_tx_packets_per_sec",
        "net_tx_errors_per_sec",
        "net_tx_drops_per_sec",
    ];
    for (iface, n) in sample.network.iter().flatten() {
        let labels = [("interface", iface.as_str())];
        for (name, v) in RX.iter().zip(n.rx) {
            l.push(name, Some(v), &labels);
        }
        for (name, v) in TX.iter().zip(n.tx) {
            l.push(name, Some(v), &labels);
        }
    }
    l.push("processes", f(sample.processes), &[]);
    l.push("threads", f(sample.threads), &[]);
    l.push("procs_running", f(sample.procs_running), &[]);
    l.push("procs_blocked", f(sample.procs_blocked), &[]);
    l.push("uptime_seconds", sample.uptime_seconds, &[]);
    l.push("boot_time_seconds", f(sample.boot_time_seconds), &[]);
    l.push("cgroup_cpu_percent", sample.cgroup_cpu_percent, &[]);
    l.push("cgroup_memory_bytes", f(sample.cgroup_memory_bytes), &[]);

    let rows = l.names.len();
    let mut labels = MapBuilder::new(
        Some(MapFieldNames {
            entry: "entries".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    for set in &l.labels {
        for (k, v) in set {
            labels.keys().append_value(k);
            labels.values().append_value(v);
        }
        labels.append(true)?;
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![host; rows])),
        Arc::new(TimestampMillisecondArray::from(vec![timestamp_ms; rows]).with_timezone(UTC)),
        Arc::new(StringArray::from(l.names)),
        Arc::new(Float64Array::from(l.values)),
        Arc::new(labels.finish()),
    ];
    Ok(RecordBatch::try_new(long_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{CollectorError, MemoryUse};

    #[test]
    fn wide_schema_is_the_same_for_empty_and_full_samples() {
        let empty = wide(&Sample::default(), "h", 0, 1000).unwrap();
        let full = Sample {
            cpu: Some(CpuPercent {
                idle: 100.0,
                ..CpuPercent::default()
            }),
            memory: MemoryUse {
                total: Some(1),
                ..MemoryUse::default()
            },
            boot_time_seconds: Some(5),
            disks: Some(vec![]),
            errors: vec![CollectorError {
                collector: "x",
                message: "y".into(),
            }],
            ..Sample::default()
        };
        let full = wide(&full, "h", 0, 1000).unwrap();
        assert_eq!(empty.schema(), full.schema());
        assert_eq!(empty.num_rows(), 1);
        assert_eq!(full.num_columns(), 3 + WIDE_COLUMNS.len());
        let col = |b: &RecordBatch, n: &str| b.column_by_name(n).unwrap().clone();
        assert!(col(&empty, "cpu_idle_percent").is_null(0));
        assert!(!col(&full, "cpu_idle_percent").is_null(0));
        assert!(!col(&full, "disk_reads_per_sec").is_null(0));
        assert!(col(&full, "net_rx_bytes_per_sec").is_null(0));
    }

    #[test]
    fn long_rows_leave_out_unknown_values() {
        let b = long(&Sample::default(), "h", 7).unwrap();
        // Only the error count is known about an empty sample.
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema(), long_schema());
        let s = Sample {
            load: Some([1.0, 2.0, 3.0]),
            per_cpu: vec![(0, CpuPercent::default()), (1, CpuPercent::default())],
            ..Sample::default()
        };
        let b = long(&s, "h", 7).unwrap();
        assert_eq!(b.num_rows(), 1 + 3 + 12);
    }
}
