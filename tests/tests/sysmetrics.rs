//! The `sysmetrics` source through the real daemon: its figures agree with
//! an independent reader (Prometheus' node_exporter) on the same host at the
//! same time, a failing collector costs only its own metrics, and wide rows
//! keep one schema.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tributary_tests::*;

/// Absolute tolerance on CPU busy percent: the daemon's rows and the two
/// node_exporter scrapes cover nearly, not exactly, the same seconds of a
/// two-core machine that may be compiling next door.
const CPU_BUSY_TOLERANCE: f64 = 25.0;
/// Tolerance on `MemAvailable`, as a share of `MemTotal`: sampled at
/// different instants.
const MEM_AVAILABLE_TOLERANCE: f64 = 0.05;
/// Tolerance on the 1-minute load: the kernel updates it every 5 s.
const LOAD_TOLERANCE: f64 = 1.0;
/// Tolerance on uptime against `row time − node_boot_time_seconds`.
const UPTIME_TOLERANCE_S: f64 = 5.0;

/// A `sysmetrics` drop-in.
fn sysmetrics_source(name: &str, topic: &str, options: &str) -> String {
    format!(
        // No `key`: the plugin's default key column (`host`) applies, which
        // the tests check on every record.
        "[[source]]\nname = {}\ntype = \"sysmetrics\"\ntopic = {}\n\
         format = \"json\"\n{options}\n",
        toml_str(name),
        toml_str(topic)
    )
}

/// A record read back: key and JSON value.
struct Row {
    key: Option<String>,
    value: Value,
}

/// Reads `topic` from the beginning until `done` holds for what was read
/// or `timeout` passes.
fn read_rows(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Row]) -> bool,
) -> Vec<Row> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("sysmetrics-test-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("test consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("valid offset");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut rows = Vec::new();
    while Instant::now() < deadline && !done(&rows) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value = serde_json::from_slice(m.payload().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{topic}: not JSON: {e}"));
            rows.push(Row {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value,
            });
        }
    }
    rows
}

/// A node_exporter process on a loopback port, killed by PID on drop (also
/// when the test panics).
struct NodeExporter {
    child: Child,
    addr: String,
}

impl NodeExporter {
    /// Starts node_exporter, or returns `None` (with a note) when it is not
    /// installed and `CI` is not `true`.
    fn start(log: &Path) -> Option<NodeExporter> {
        let bin = [
            "/usr/bin/prometheus-node-exporter",
            "/usr/bin/node_exporter",
        ]
        .into_iter()
        .find(|p| Path::new(p).is_file());
        let Some(bin) = bin else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but prometheus-node-exporter is not installed (apt-get install \
                 prometheus-node-exporter)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "note: prometheus-node-exporter not installed: values_agree_with_node_exporter \
                 is SKIPPED"
            );
            return None;
        };
        let addr = format!("127.0.0.1:{}", free_port());
        let out = std::fs::File::create(log).expect("node_exporter log");
        let err = out.try_clone().expect("log handle");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--web.listen-address={addr}"))
            .arg("--collector.disable-defaults")
            .args([
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.loadavg",
                "--collector.stat",
                "--collector.filesystem",
                "--collector.diskstats",
                "--collector.netdev",
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: `prctl` is async-signal-safe and touches no memory of the
        // parent; it makes the child die with the spawning test thread even
        // when no Drop runs (the test process killed).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn node_exporter");
        let ne = NodeExporter { child, addr };
        assert!(
            wait_until(Duration::from_secs(15), || ne.try_scrape().is_some()),
            "node_exporter did not answer on {}: {}",
            ne.addr,
            std::fs::read_to_string(log).unwrap_or_default()
        );
        Some(ne)
    }

    fn try_scrape(&self) -> Option<String> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "GET /metrics HTTP/1.0\r\nHost: {}\r\nAccept: text/plain\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.contains(" 200 ").then(|| body.to_owned())
    }

    /// One scrape, parsed.
    fn scrape(&self) -> Metrics {
        let text = self.try_scrape().expect("scrape node_exporter");
        Metrics {
            at_ms: now_ms(),
            samples: text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    let (name, labels) = match series.split_once('{') {
                        Some((n, rest)) => (n, rest.trim_end_matches('}')),
                        None => (series, ""),
                    };
                    Some((name.to_owned(), labels.to_owned(), value.parse().ok()?))
                })
                .collect(),
        }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node_exporter scrape: `(name, raw labels, value)`.
struct Metrics {
    at_ms: i64,
    samples: Vec<(String, String, f64)>,
}

impl Metrics {
    /// The values of `name` whose labels contain every `k="v"` of `labels`.
    fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, l, v)| (l.clone(), *v))
            .collect()
    }

    fn one(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let v = self.values(name, labels);
        assert_eq!(v.len(), 1, "node_exporter {name}{labels:?}: {v:?}");
        v[0].1
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.values(name, labels).iter().map(|(_, v)| v).sum()
    }

    /// The values of label `key` among the series of `name`.
    fn label_values(&self, name: &str, key: &str) -> BTreeSet<String> {
        let needle = format!("{key}=\"");
        self.values(name, &[])
            .into_iter()
            .filter_map(|(l, _)| {
                let rest = &l[l.find(&needle)? + needle.len()..];
                Some(rest[..rest.find('"')?].to_owned())
            })
            .collect()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn num(row: &Value, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// Milliseconds since the epoch of a row's `timestamp`, whether the
/// serializer wrote a number or an RFC 3339 string.
fn row_ms(row: &Value) -> i64 {
    match &row["timestamp"] {
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => parse_rfc3339_ms(s).unwrap_or_else(|| panic!("timestamp {s}")),
        other => panic!("timestamp {other}"),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)` in UTC, enough for our rows.
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let ms = if b.get(19) == Some(&b'.') {
        let frac: String = s[20..].chars().take_while(char::is_ascii_digit).collect();
        format!("{frac:0<3}")[..3].parse().ok()?
    } else {
        0
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

#[test]
fn values_agree_with_node_exporter() {
    let dir = TempDir::new("sysmetrics-node-exporter");
    let Some(ne) = NodeExporter::start(&dir.join("node_exporter.log")) else {
        return;
    };
    let broker = Broker::start_mock(1);
    broker.create_topic("wide", 1);
    broker.create_topic("long", 1);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in(
            "wide.toml",
            sysmetrics_source("wide", "wide", "interval_ms = 1000"),
        )
        .drop_in(
            "long.toml",
            sysmetrics_source(
                "long",
                "long",
                "interval_ms = 1000\nshape = \"long\"\nper_cpu = true",
            ),
        );
    let config = write_config(dir.path(), &spec);
    let _daemon = Daemon::start(&config, &dir.join("daemon.log"));

    // Rows 0 and 1 may straddle the first scrape; rows from 2 on lie
    // between the scrapes (the rate in row n covers n−1..n).
    let wide = read_rows(&broker.bootstrap(), "wide", Duration::from_secs(60), |r| {
        r.len() >= 2
    });
    assert!(wide.len() >= 2, "only {} wide rows", wide.len());
    let a = ne.scrape();
    let more = read_rows(&broker.bootstrap(), "wide", Duration::from_secs(60), |r| {
        r.len() >= 7
    });
    let b = ne.scrape();
    let wide = more;
    assert!(wide.len() >= 7, "only {} wide rows", wide.len());
    let long = read_rows(&broker.bootstrap(), "long", Duration::from_secs(30), |r| {
        r.iter()
            .filter(|r| r.value["name"] == "disk_reads_per_sec")
            .count()
            >= 2
    });

    // The key is the host column.
    let host = wide[0].value["host"]
        .as_str()
        .expect("host column")
        .to_owned();
    assert!(!host.is_empty());
    assert!(wide.iter().all(|r| r.key.as_deref() == Some(host.as_str())));

    // Exact: totals and boot time are the same kernel numbers.
    let first = &wide[0].value;
    assert_eq!(
        num(first, "memory_total_bytes"),
        Some(a.one("node_memory_MemTotal_bytes", &[])),
        "MemTotal"
    );
    assert_eq!(
        num(first, "swap_total_bytes"),
        Some(a.one("node_memory_SwapTotal_bytes", &[])),
        "SwapTotal"
    );
    assert_eq!(
        num(first, "boot_time_seconds"),
        Some(a.one("node_boot_time_seconds", &[])),
        "boot time"
    );

    // Ranges and the first sample.
    for key in [
        "cpu_percent",
        "cpu_user_percent",
        "net_rx_bytes_per_sec",
        "disk_reads_per_sec",
    ] {
        assert!(
            first[key].is_null(),
            "first row has a rate for {key}: {first}"
        );
    }
    for (i, row) in wide.iter().enumerate() {
        let row = &row.value;
        assert_eq!(num(row, "collector_errors"), Some(0.0), "{row}");
        for (k, v) in row.as_object().expect("object") {
            let Some(v) = v.as_f64() else { continue };
            if k.ends_with("_percent") {
                assert!((0.0..=100.0).contains(&v), "{k} = {v}");
            }
            if k.ends_with("_per_sec") {
                assert!(v >= 0.0, "{k} = {v}");
            }
        }
        if i > 0 {
            for key in ["cpu_percent", "net_rx_bytes_per_sec", "disk_reads_per_sec"] {
                assert!(row[key].is_number(), "row {i} has no {key}: {row}");
            }
            let prev = &wide[i - 1].value;
            assert!(row_ms(row) > row_ms(prev), "timestamps go forward");
            assert!(num(row, "uptime_seconds") >= num(prev, "uptime_seconds"));
        }
        assert_eq!(row_ms(row) % 1000, 0, "aligned to the interval: {row}");
    }

    // Monotonic counters on the independent side, and our figures between
    // its two scrapes.
    let busy = |m: &Metrics| {
        let total = m.sum("node_cpu_seconds_total", &[]);
        let idle = m.sum("node_cpu_seconds_total", &[("mode", "idle")])
            + m.sum("node_cpu_seconds_total", &[("mode", "iowait")]);
        (total, total - idle)
    };
    let ((ta, ba), (tb, bb)) = (busy(&a), busy(&b));
    assert!(
        tb >= ta && bb >= ba,
        "node_cpu_seconds_total went backwards"
    );
    let ne_busy = (bb - ba) / (tb - ta) * 100.0;
    let between: Vec<&Value> = wide
        .iter()
        .map(|r| &r.value)
        .filter(|r| row_ms(r) > a.at_ms + 1000 && row_ms(r) <= b.at_ms)
        .collect();
    assert!(!between.is_empty(), "no rows between the scrapes");
    let ours_busy = between
        .iter()
        .filter_map(|r| num(r, "cpu_percent"))
        .sum::<f64>()
        / between.len() as f64;
    assert!(
        (ours_busy - ne_busy).abs() <= CPU_BUSY_TOLERANCE,
        "CPU busy: ours {ours_busy:.1}%, node_exporter {ne_busy:.1}%"
    );
    let rx = |m: &Metrics| m.sum("node_network_receive_bytes_total", &[]);
    assert!(rx(&b) >= rx(&a), "network counters went backwards");

    let total = a.one("node_memory_MemTotal_bytes", &[]);
    let ne_avail = [&a, &b].map(|m| m.one("node_memory_MemAvailable_bytes", &[]));
    let ne_load = [&a, &b].map(|m| m.one("node_load1", &[]));
    let ne_boot = a.one("node_boot_time_seconds", &[]);
    for row in &between {
        let avail = num(row, "memory_available_bytes").expect("available");
        let d = ne_avail
            .iter()
            .map(|n| (n - avail).abs())
            .fold(f64::MAX, f64::min);
        assert!(
            d <= MEM_AVAILABLE_TOLERANCE * total,
            "MemAvailable: ours {avail}, node_exporter {ne_avail:?}"
        );
        let load = num(row, "load1").expect("load1");
        let d = ne_load
            .iter()
            .map(|n| (n - load).abs())
            .fold(f64::MAX, f64::min);
        assert!(
            d <= LOAD_TOLERANCE,
            "load1: ours {load}, node_exporter {ne_load:?}"
        );
        let uptime = num(row, "uptime_seconds").expect("uptime");
        let expected = row_ms(row) as f64 / 1000.0 - ne_boot;
        assert!(
            (uptime - expected).abs() <= UPTIME_TOLERANCE_S,
            "uptime: ours {uptime}, from node_boot_time_seconds {expected}"
        );
    }

    // Long rows: per device and per mount, the same devices and sizes.
    let labelled = |name: &str, key: &str| -> BTreeMap<String, f64> {
        long.iter()
            .map(|r| &r.value)
            .filter(|r| r["name"] == name)
            .filter_map(|r| Some((r["labels"][key].as_str()?.to_owned(), r["value"].as_f64()?)))
            .collect()
    };
    let fs = labelled("fs_size_bytes", "mountpoint");
    let ne_fs = a.label_values("node_filesystem_size_bytes", "mountpoint");
    let common: Vec<&String> = fs.keys().filter(|m| ne_fs.contains(*m)).collect();
    assert!(
        !common.is_empty(),
        "no common mount: ours {fs:?}, node_exporter {ne_fs:?}"
    );
    for m in common {
        assert_eq!(
            fs[m],
            a.one("node_filesystem_size_bytes", &[("mountpoint", m)]),
            "size of {m}"
        );
    }
    let disks = labelled("disk_reads_per_sec", "device");
    let ne_disks = a.label_values("node_disk_reads_completed_total", "device");
    for d in disks.keys() {
        assert!(
            ne_disks.contains(d),
            "disk {d} unknown to node_exporter {ne_disks:?}"
        );
    }
    let ifaces = labelled("net_rx_bytes_per_sec", "interface");
    let ne_ifaces = a.label_values("node_network_receive_bytes_total", "device");
    assert_eq!(
        ifaces.keys().cloned().collect::<BTreeSet<_>>(),
        ne_ifaces,
        "interfaces (loopback excluded by both)"
    );
    assert!(!ifaces.contains_key("lo"));
    let cpus = labelled("cpu_idle_percent", "cpu");
    assert_eq!(
        cpus.len(),
        a.label_values("node_cpu_seconds_total", "cpu").len(),
        "per-core rows"
    );
    for r in &long {
        let v = r.value["value"].as_f64().expect("value");
        assert!(v.is_finite() && v >= 0.0, "{}", r.value);
    }
}

/// A fake procfs/sysfs with every file the collectors read, except
/// `sys/block`; its mount table names one real and one vanished mount.
fn fake_tree(dir: &Path) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "proc/stat",
        "cpu 10 0 10 80 0 0 0 0 0 0\nbtime 100\nprocs_running 1\nprocs_blocked 0\n",
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
        "h\nh\n eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n eth1: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n",
    );
    w(
        "proc/self/mountinfo",
        "27 1 254:1 / / rw - ext4 /dev/vda1 rw\n\
         28 1 254:9 / /vanished-mount-of-the-sysmetrics-test rw - ext4 /dev/vdz rw\n",
    );
    w("proc/sys/kernel/hostname", "fakehost\n");
    std::fs::create_dir_all(dir.join("sys")).unwrap();
}

#[test]
fn missing_sys_file_drops_one_metric_not_the_row() {
    let dir = TempDir::new("sysmetrics-missing");
    let tree = dir.join("tree");
    fake_tree(&tree);
    let broker = Broker::start_mock(1);
    broker.create_topic("m", 1);
    let options = format!(
        "interval_ms = 1000\nproc_path = {}\nsys_path = {}",
        toml_str(tree.join("proc").to_str().unwrap()),
        toml_str(tree.join("sys").to_str().unwrap())
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("m.toml", sysmetrics_source("m", "m", &options));
    let config = write_config(dir.path(), &spec);
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));

    let rows = read_rows(&broker.bootstrap(), "m", Duration::from_secs(60), |r| {
        r.len() >= 3
    });
    assert!(rows.len() >= 3, "only {} rows", rows.len());
    // An interface disappears between samples.
    std::fs::write(
        tree.join("proc/net/dev"),
        "h\nh\n eth0: 2 3 4 5 0 0 0 0 6 7 8 9 0 0 0 0\n",
    )
    .unwrap();
    let rows = read_rows(&broker.bootstrap(), "m", Duration::from_secs(60), |r| {
        r.len() >= 6
    });
    assert!(rows.len() >= 6, "only {} rows", rows.len());
    for (i, row) in rows.iter().enumerate() {
        let row = &row.value;
        assert_eq!(row["host"], "fakehost");
        // sys/block is missing (disks) and one mount cannot be statvfs'ed.
        assert_eq!(num(row, "collector_errors"), Some(2.0), "row {i}: {row}");
        assert!(row["disk_reads_per_sec"].is_null(), "{row}");
        assert_eq!(num(row, "memory_total_bytes"), Some(1_024_000.0));
        assert_eq!(num(row, "load1"), Some(0.5));
        assert_eq!(num(row, "uptime_seconds"), Some(123.5));
        assert!(num(row, "fs_size_bytes").is_some_and(|s| s > 0.0), "{row}");
        if i > 0 {
            let rx = num(row, "net_rx_bytes_per_sec").expect("network rate");
            assert!(rx >= 0.0, "{row}");
        }
    }
    let log = daemon.log_text();
    assert!(
        log.contains("Collector disks dropped a metric"),
        "no log of the failure:\n{log}"
    );
    // Rate-limited: one line per collector for the whole run.
    assert_eq!(
        log.matches("Collector disks dropped a metric").count(),
        1,
        "{log}"
    );
}

#[test]
fn wide_schema_is_stable_across_intervals() {
    let dir = TempDir::new("sysmetrics-schema");
    let broker = Broker::start_mock(1);
    broker.create_topic("w", 1);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
        "w.toml",
        // Collectors off and on side by side: still one schema.
        sysmetrics_source(
            "w",
            "w",
            "interval_ms = 1000\ncgroup = false\nper_cpu = true",
        ),
    );
    let config = write_config(dir.path(), &spec);
    let _daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let rows = read_rows(&broker.bootstrap(), "w", Duration::from_secs(60), |r| {
        r.len() >= 4
    });
    assert!(rows.len() >= 4, "only {} rows", rows.len());

    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        _ => "other",
    };
    let keys = |v: &Value| {
        v.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    let first = keys(&rows[0].value);
    assert!(first.len() > 40, "{first:?}");
    let mut types: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for row in &rows {
        assert_eq!(keys(&row.value), first, "columns changed between intervals");
        for (k, v) in row.value.as_object().unwrap() {
            types.entry(k.clone()).or_default().insert(kind(v));
        }
    }
    for (k, t) in &types {
        let non_null: Vec<_> = t.iter().filter(|t| **t != "null").collect();
        assert!(non_null.len() <= 1, "{k} changed type: {t:?}");
    }
    // Collectors that are off are null, never absent.
    assert!(rows.iter().all(|r| r.value["cgroup_cpu_percent"].is_null()));
}
