//! The engine: reads `/proc` and `/sys` once per interval and turns two
//! consecutive readings into a [`Sample`].
//!
//! Each collector fails on its own: a missing file, a vanished interface or
//! a mount that cannot be `statvfs`ed drops the values it would have given
//! and adds a [`CollectorError`]; every other value of the sample stands.
//! Rates need two readings, so the first sample has none; a counter that
//! went backwards (wrap, device reset, interface re-created) gives no rate
//! for that interval rather than a negative one.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::procfs::{self, CpuTimes, DiskCounters, NetCounters};

/// Block device name prefixes that are never physical disks.
const VIRTUAL_DISK_PREFIXES: [&str; 4] = ["loop", "ram", "zram", "fd"];

/// One failed read, for the error count and the (rate-limited) log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorError {
    /// The collector: `cpu`, `memory`, `filesystems`, ….
    pub collector: &'static str,
    /// What failed, with the path.
    pub message: String,
}

/// CPU time shares over the interval, in percent (0 to 100).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuPercent {
    /// `user + nice`.
    pub user: f64,
    /// `system + irq + softirq`.
    pub system: f64,
    /// `iowait`.
    pub iowait: f64,
    /// `idle`.
    pub idle: f64,
    /// `steal`.
    pub steal: f64,
}

impl CpuPercent {
    /// Busy share: everything but idle and iowait.
    pub fn busy(&self) -> f64 {
        (100.0 - self.idle - self.iowait).clamp(0.0, 100.0)
    }

    /// Shares between two readings; `None` when a counter went backwards
    /// or no time passed.
    pub fn between(prev: &CpuTimes, cur: &CpuTimes) -> Option<CpuPercent> {
        let d = |a: u64, b: u64| b.checked_sub(a).map(|v| v as f64);
        let user = d(prev.user, cur.user)?;
        let system = d(prev.system, cur.system)?;
        let iowait = d(prev.iowait, cur.iowait)?;
        let idle = d(prev.idle, cur.idle)?;
        let steal = d(prev.steal, cur.steal)?;
        let total = user + system + iowait + idle + steal;
        if total <= 0.0 {
            return None;
        }
        let p = |v: f64| v * 100.0 / total;
        Some(CpuPercent {
            user: p(user),
            system: p(system),
            iowait: p(iowait),
            idle: p(idle),
            steal: p(steal),
        })
    }
}

/// Memory or swap, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemoryUse {
    /// Total.
    pub total: Option<u64>,
    /// `total - available`.
    pub used: Option<u64>,
    /// `MemAvailable` (memory) or `SwapFree` (swap).
    pub available: Option<u64>,
    /// `used / total` in percent; `None` when the total is 0.
    pub percent: Option<f64>,
}

impl MemoryUse {
    fn new(total: Option<u64>, available: Option<u64>) -> MemoryUse {
        let used = total.zip(available).map(|(t, a)| t.saturating_sub(a));
        let percent = used
            .zip(total)
            .filter(|(_, t)| *t > 0)
            .map(|(u, t)| u as f64 * 100.0 / t as f64);
        MemoryUse {
            total,
            used,
            available,
            percent,
        }
    }
}

/// One filesystem's use.
#[derive(Debug, Clone, PartialEq)]
pub struct FsUse {
    /// Mount point.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Mount source.
    pub device: String,
    /// Size in bytes.
    pub size: u64,
    /// Used bytes (size − free).
    pub used: u64,
    /// Bytes available to unprivileged users.
    pub available: u64,
    /// Inodes in total.
    pub inodes_total: u64,
    /// Inodes in use.
    pub inodes_used: u64,
}

impl FsUse {
    /// Used share as `df` shows it: `used / (used + available)`, leaving out
    /// the blocks reserved for root.
    pub fn used_percent(&self) -> Option<f64> {
        let denom = self.used + self.available;
        (denom > 0).then(|| self.used as f64 * 100.0 / denom as f64)
    }
}

/// Per-second rates of one disk.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DiskRates {
    /// Bytes read per second.
    pub read_bytes: f64,
    /// Bytes written per second.
    pub write_bytes: f64,
    /// Reads completed per second.
    pub reads: f64,
    /// Writes completed per second.
    pub writes: f64,
    /// Milliseconds spent reading, per second.
    pub read_time_ms: f64,
    /// Milliseconds spent writing, per second.
    pub write_time_ms: f64,
}

impl DiskRates {
    fn between(prev: &DiskCounters, cur: &DiskCounters, secs: f64) -> Option<DiskRates> {
        Some(DiskRates {
            read_bytes: rate(prev.read_bytes, cur.read_bytes, secs)?,
            write_bytes: rate(prev.write_bytes, cur.write_bytes, secs)?,
            reads: rate(prev.reads, cur.reads, secs)?,
            writes: rate(prev.writes, cur.writes, secs)?,
            read_time_ms: rate(prev.read_time_ms, cur.read_time_ms, secs)?,
            write_time_ms: rate(prev.write_time_ms, cur.write_time_ms, secs)?,
        })
    }

    fn add(&mut self, o: &DiskRates) {
        self.read_bytes += o.read_bytes;
        self.write_bytes += o.write_bytes;
        self.reads += o.reads;
        self.writes += o.writes;
        self.read_time_ms += o.read_time_ms;
        self.write_time_ms += o.write_time_ms;
    }
}

/// Per-second rates of one interface: bytes, packets, errors, drops.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetRates {
    /// Received.
    pub rx: [f64; 4],
    /// Sent.
    pub tx: [f64; 4],
}

impl NetRates {
    fn between(prev: &NetCounters, cur: &NetCounters, secs: f64) -> Option<NetRates> {
        let mut r = NetRates::default();
        for i in 0..4 {
            r.rx[i] = rate(prev.rx[i], cur.rx[i], secs)?;
            r.tx[i] = rate(prev.tx[i], cur.tx[i], secs)?;
        }
        Some(r)
    }

    fn add(&mut self, o: &NetRates) {
        for i in 0..4 {
            self.rx[i] += o.rx[i];
            self.tx[i] += o.tx[i];
        }
    }
}

/// `(cur − prev) / secs`; `None` when the counter went backwards.
pub fn rate(prev: u64, cur: u64, secs: f64) -> Option<f64> {
    let d = cur.checked_sub(prev)?;
    (secs > 0.0).then(|| d as f64 / secs)
}

/// Everything one interval yields. `None` and empty mean "unknown": the
/// collector is off, failed, or (for rates) this is the first sample.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Reads that failed this interval.
    pub errors: Vec<CollectorError>,
    /// All CPUs together.
    pub cpu: Option<CpuPercent>,
    /// Per core, when `per_cpu` is on.
    pub per_cpu: Vec<(u32, CpuPercent)>,
    /// Load averages over 1, 5, 15 minutes.
    pub load: Option<[f64; 3]>,
    /// Memory.
    pub memory: MemoryUse,
    /// Swap.
    pub swap: MemoryUse,
    /// Filesystems that were read; `None` when the mount table was not.
    pub filesystems: Option<Vec<FsUse>>,
    /// Per disk rates; `None` on the first sample or a failed read.
    pub disks: Option<Vec<(String, DiskRates)>>,
    /// Per interface rates; `None` on the first sample or a failed read.
    pub network: Option<Vec<(String, NetRates)>>,
    /// Processes (numeric entries of procfs).
    pub processes: Option<u64>,
    /// Threads (from `/proc/loadavg`).
    pub threads: Option<u64>,
    /// Runnable tasks.
    pub procs_running: Option<u64>,
    /// Tasks blocked on I/O.
    pub procs_blocked: Option<u64>,
    /// Seconds since boot.
    pub uptime_seconds: Option<f64>,
    /// Boot time, seconds since the epoch.
    pub boot_time_seconds: Option<u64>,
    /// CPU use of the cgroup, percent of all CPUs.
    pub cgroup_cpu_percent: Option<f64>,
    /// Memory use of the cgroup.
    pub cgroup_memory_bytes: Option<u64>,
}

impl Sample {
    /// Disk rates summed over disks.
    pub fn disk_total(&self) -> Option<DiskRates> {
        self.disks.as_ref().map(|d| {
            let mut t = DiskRates::default();
            d.iter().for_each(|(_, r)| t.add(r));
            t
        })
    }

    /// Interface rates summed over interfaces.
    pub fn network_total(&self) -> Option<NetRates> {
        self.network.as_ref().map(|n| {
            let mut t = NetRates::default();
            n.iter().for_each(|(_, r)| t.add(r));
            t
        })
    }
}

/// The counters a rate needs from the previous reading.
#[derive(Debug, Default)]
struct Counters {
    at: Option<Instant>,
    cpu: Option<CpuTimes>,
    per_cpu: Vec<(u32, CpuTimes)>,
    disks: Option<Vec<(String, DiskCounters)>>,
    network: Option<Vec<(String, NetCounters)>>,
    cgroup_cpu_usec: Option<u64>,
}

/// Reads samples; keeps the previous counters for rates.
#[derive(Debug)]
pub struct Collector {
    config: Config,
    cgroup_dir: PathBuf,
    prev: Counters,
}

impl Collector {
    /// A collector with no previous reading.
    pub fn new(config: Config) -> Collector {
        let cgroup_dir = config
            .sys_path
            .join("fs/cgroup")
            .join(config.cgroup_path.trim_matches('/'));
        Collector {
            config,
            cgroup_dir,
            prev: Counters::default(),
        }
    }

    /// The host name from `<proc_path>/sys/kernel/hostname`.
    pub fn host_name(&self) -> io::Result<String> {
        let name = read(&self.config.proc_path.join("sys/kernel/hostname"))?;
        Ok(name.trim().to_owned())
    }

    /// Reads everything the configuration asks for.
    pub fn sample(&mut self) -> Sample {
        let now = Instant::now();
        let secs = self
            .prev
            .at
            .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        let mut cur = Counters {
            at: Some(now),
            ..Counters::default()
        };
        let mut s = Sample::default();
        let cfg = &self.config;
        let proc_ = cfg.proc_path.as_path();

        if cfg.cpu || cfg.processes {
            match read(&proc_.join("stat")) {
                Ok(text) => {
                    let stat = procfs::parse_stat(&text);
                    if cfg.cpu {
                        if stat.total.is_none() {
                            s.error(
                                "cpu",
                                format!("no cpu line in {}", proc_.join("stat").display()),
                            );
                        }
                        cur.cpu = stat.total;
                        s.cpu = self
                            .prev
                            .cpu
                            .zip(stat.total)
                            .and_then(|(p, c)| CpuPercent::between(&p, &c));
                        if cfg.per_cpu {
                            s.per_cpu = stat
                                .per_cpu
                                .iter()
                                .filter_map(|(n, c)| {
                                    let p = self.prev.per_cpu.iter().find(|(m, _)| m == n)?;
                                    Some((*n, CpuPercent::between(&p.1, c)?))
                                })
                                .collect();
                            cur.per_cpu = stat.per_cpu;
                        }
                    }
                    if cfg.processes {
                        s.boot_time_seconds = stat.boot_time;
                        s.procs_running = stat.procs_running;
                        s.procs_blocked = stat.procs_blocked;
                    }
                }
                Err(e) => s.error("cpu", e.to_string()),
            }
        }
        if cfg.load || cfg.processes {
            let path = proc_.join("loadavg");
            match read(&path)
                .and_then(|t| procfs::parse_loadavg(&t).ok_or_else(|| malformed(&path)))
            {
                Ok(l) => {
                    if cfg.load {
                        s.load = Some(l.load);
                    }
                    if cfg.processes {
                        s.threads = Some(l.threads);
                    }
                }
                Err(e) => s.error("load", e.to_string()),
            }
        }
        if cfg.memory {
            match read(&proc_.join("meminfo")) {
                Ok(text) => {
                    let m = procfs::parse_meminfo(&text);
                    if m.mem_total.is_none() || m.mem_available.is_none() {
                        s.error(
                            "memory",
                            format!(
                                "MemTotal or MemAvailable missing from {}",
                                proc_.join("meminfo").display()
                            ),
                        );
                    }
                    s.memory = MemoryUse::new(m.mem_total, m.mem_available);
                    s.swap = MemoryUse::new(m.swap_total, m.swap_free);
                }
                Err(e) => s.error("memory", e.to_string()),
            }
        }
        if cfg.processes {
            let path = proc_.join("uptime");
            match read(&path).and_then(|t| procfs::parse_uptime(&t).ok_or_else(|| malformed(&path)))
            {
                Ok(u) => s.uptime_seconds = Some(u),
                Err(e) => s.error("processes", e.to_string()),
            }
            match count_processes(proc_) {
                Ok(n) => s.processes = Some(n),
                Err(e) => s.error("processes", format!("{}: {e}", proc_.display())),
            }
        }
        if cfg.filesystems {
            s.filesystems = self.filesystems(&mut s.errors);
        }
        if cfg.disks {
            cur.disks = self.disk_counters(&mut s.errors);
            s.disks = self
                .prev
                .disks
                .as_ref()
                .zip(cur.disks.as_ref())
                .map(|(p, c)| pair_rates(p, c, |a, b| DiskRates::between(a, b, secs)));
        }
        if cfg.network {
            match read(&proc_.join("net/dev")) {
                Ok(text) => {
                    let mut n = procfs::parse_net_dev(&text);
                    if cfg.exclude_loopback {
                        n.retain(|(name, _)| name != "lo");
                    }
                    cur.network = Some(n);
                }
                Err(e) => s.error("network", e.to_string()),
            }
            s.network = self
                .prev
                .network
                .as_ref()
                .zip(cur.network.as_ref())
                .map(|(p, c)| pair_rates(p, c, |a, b| NetRates::between(a, b, secs)));
        }
        if cfg.cgroup {
            let cpu_path = self.cgroup_dir.join("cpu.stat");
            match read(&cpu_path)
                .and_then(|t| procfs::parse_cgroup_cpu_usec(&t).ok_or_else(|| malformed(&cpu_path)))
            {
                Ok(usec) => {
                    cur.cgroup_cpu_usec = Some(usec);
                    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                    s.cgroup_cpu_percent = self.prev.cgroup_cpu_usec.and_then(|p| {
                        let r = rate(p, usec, secs)?;
                        Some((r / 1e6 * 100.0 / cpus as f64).min(100.0))
                    });
                }
                Err(e) => s.error("cgroup", e.to_string()),
            }
            let mem_path = self.cgroup_dir.join("memory.current");
            match read(&mem_path).and_then(|t| t.trim().parse().map_err(|_| malformed(&mem_path))) {
                Ok(bytes) => s.cgroup_memory_bytes = Some(bytes),
                Err(e) => s.error("cgroup", e.to_string()),
            }
        }
        self.prev = cur;
        s
    }

    /// `statvfs` of every mount not excluded, one per device.
    fn filesystems(&self, errors: &mut Vec<CollectorError>) -> Option<Vec<FsUse>> {
        let path = self.config.proc_path.join("self/mountinfo");
        let text = match read(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(CollectorError {
                    collector: "filesystems",
                    message: e.to_string(),
                });
                return None;
            }
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for m in procfs::parse_mountinfo(&text) {
            if self.config.exclude_fs_types.contains(&m.fs_type) || !seen.insert(m.dev.clone()) {
                continue;
            }
            match statvfs(&m.mount_point) {
                Ok(v) => {
                    let frsize = n(v.f_frsize);
                    let size = n(v.f_blocks).saturating_mul(frsize);
                    let free = n(v.f_bfree).saturating_mul(frsize);
                    out.push(FsUse {
                        size,
                        used: size.saturating_sub(free),
                        available: n(v.f_bavail).saturating_mul(frsize),
                        inodes_total: n(v.f_files),
                        inodes_used: n(v.f_files).saturating_sub(n(v.f_ffree)),
                        mount_point: m.mount_point,
                        fs_type: m.fs_type,
                        device: m.source,
                    });
                }
                // A mount that vanished between reading the table and
                // `statvfs` (or that we may not look at) costs only itself.
                Err(e) => errors.push(CollectorError {
                    collector: "filesystems",
                    message: format!("statvfs {}: {e}", m.mount_point),
                }),
            }
        }
        Some(out)
    }

    /// Counters of whole physical disks: the devices under `<sys>/block`
    /// (so partitions are not counted twice), without virtual ones.
    fn disk_counters(
        &self,
        errors: &mut Vec<CollectorError>,
    ) -> Option<Vec<(String, DiskCounters)>> {
        let mut fail = |message: String| {
            errors.push(CollectorError {
                collector: "disks",
                message,
            });
        };
        let block = self.config.sys_path.join("block");
        let disks: HashSet<String> = match std::fs::read_dir(&block) {
            Ok(dir) => dir
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !VIRTUAL_DISK_PREFIXES.iter().any(|p| n.starts_with(p)))
                .collect(),
            Err(e) => {
                fail(format!("{}: {e}", block.display()));
                return None;
            }
        };
        match read(&self.config.proc_path.join("diskstats")) {
            Ok(text) => Some(
                procfs::parse_diskstats(&text)
                    .into_iter()
                    .filter(|(n, _)| disks.contains(n))
                    .collect(),
            ),
            Err(e) => {
                fail(e.to_string());
                None
            }
        }
    }
}

impl Sample {
    fn error(&mut self, collector: &'static str, message: String) {
        self.errors.push(CollectorError { collector, message });
    }
}

/// Rates of the devices present in both readings. A device that appeared
/// has no rate yet; one that vanished has none any more; one whose
/// counters went backwards (re-created, wrapped) is skipped this once.
fn pair_rates<C, R>(
    prev: &[(String, C)],
    cur: &[(String, C)],
    f: impl Fn(&C, &C) -> Option<R>,
) -> Vec<(String, R)> {
    cur.iter()
        .filter_map(|(name, c)| {
            let (_, p) = prev.iter().find(|(n, _)| n == name)?;
            Some((name.clone(), f(p, c)?))
        })
        .collect()
}

fn read(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn malformed(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: unexpected format", path.display()),
    )
}

/// Numeric entries of procfs: one per process.
fn count_processes(proc_: &Path) -> io::Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir(proc_)? {
        let Ok(entry) = entry else { continue };
        if entry
            .file_name()
            .as_encoded_bytes()
            .iter()
            .all(u8::is_ascii_digit)
        {
            n += 1;
        }
    }
    Ok(n)
}

/// A `statvfs` field as `u64` (they are narrower on 32-bit targets).
fn n(v: impl Into<u64>) -> u64 {
    v.into()
}

fn statvfs(path: &str) -> io::Result<libc::statvfs> {
    let c = CString::new(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut out = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `out`
    // is valid for writes of one `statvfs`.
    let rc = unsafe { libc::statvfs(c.as_ptr(), out.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `statvfs` returned 0, so it filled `out`.
    Ok(unsafe { out.assume_init() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(user: u64, idle: u64) -> CpuTimes {
        CpuTimes {
            user,
            idle,
            ..CpuTimes::default()
        }
    }

    #[test]
    fn cpu_percent_over_the_interval() {
        let p = CpuPercent::between(&times(100, 100), &times(130, 170)).unwrap();
        assert!((p.user - 30.0).abs() < 1e-9);
        assert!((p.idle - 70.0).abs() < 1e-9);
        assert!((p.busy() - 30.0).abs() < 1e-9);
        // No time passed, or a counter went backwards: no figure.
        assert_eq!(CpuPercent::between(&times(1, 1), &times(1, 1)), None);
        assert_eq!(CpuPercent::between(&times(5, 1), &times(4, 9)), None);
    }

    #[test]
    fn counter_reset_gives_no_rate_never_a_negative_one() {
        assert_eq!(rate(100, 300, 2.0), Some(100.0));
        assert_eq!(rate(300, 100, 2.0), None);
        assert_eq!(rate(u64::MAX - 1, 5, 1.0), None);
        assert_eq!(rate(1, 2, 0.0), None);
        let prev = vec![
            (
                "a".to_owned(),
                NetCounters {
                    rx: [10; 4],
                    tx: [10; 4],
                },
            ),
            ("gone".to_owned(), NetCounters::default()),
        ];
        let cur = vec![
            (
                "a".to_owned(),
                NetCounters {
                    rx: [5; 4],
                    tx: [20; 4],
                },
            ),
            ("new".to_owned(), NetCounters::default()),
        ];
        let r = pair_rates(&prev, &cur, |p, c| NetRates::between(p, c, 1.0));
        assert!(
            r.is_empty(),
            "reset, vanished and new interfaces have no rate: {r:?}"
        );
        let cur = vec![(
            "a".to_owned(),
            NetCounters {
                rx: [30; 4],
                tx: [20; 4],
            },
        )];
        let r = pair_rates(&prev, &cur, |p, c| NetRates::between(p, c, 2.0));
        assert_eq!(r[0].1.rx, [10.0; 4]);
        assert_eq!(r[0].1.tx, [5.0; 4]);
    }

    #[test]
    fn memory_use_from_total_and_available() {
        let m = MemoryUse::new(Some(1000), Some(250));
        assert_eq!((m.used, m.percent), (Some(750), Some(75.0)));
        let none = MemoryUse::new(Some(0), Some(0));
        assert_eq!(none.percent, None);
        assert_eq!(MemoryUse::new(None, Some(1)).used, None);
    }

    #[test]
    fn live_host_first_sample_has_no_rates_second_has() {
        let mut config = Config::from_json(&serde_json::json!({"per_cpu": true})).unwrap();
        config.interval_ms = 100;
        let mut c = Collector::new(config);
        let first = c.sample();
        assert!(first.cpu.is_none() && first.disks.is_none() && first.network.is_none());
        assert!(first.memory.total.is_some_and(|t| t > 0), "{first:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let second = c.sample();
        let cpu = second.cpu.expect("cpu after two readings");
        for v in [cpu.user, cpu.system, cpu.idle, cpu.iowait, cpu.steal] {
            assert!((0.0..=100.0).contains(&v), "{cpu:?}");
        }
        assert!(second.network.is_some());
        assert!(!second.per_cpu.is_empty());
    }
}
