//! Parsers for the kernel's text files under `/proc` and `/sys`.
//!
//! Every function here is pure (text in, values out), so the unit tests
//! below feed them fixture strings. A line the parser does not understand is
//! skipped, not fatal: kernels add fields, and one odd line must not cost
//! the whole collector.

/// Jiffies of one CPU line of `/proc/stat`, grouped the way the rows report
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// `user + nice` (guest time is already inside `user`).
    pub user: u64,
    /// `system + irq + softirq`.
    pub system: u64,
    /// `iowait`.
    pub iowait: u64,
    /// `idle`.
    pub idle: u64,
    /// `steal`.
    pub steal: u64,
}

impl CpuTimes {
    /// All jiffies, the denominator of the percentages.
    pub fn total(&self) -> u64 {
        self.user + self.system + self.iowait + self.idle + self.steal
    }
}

/// What `/proc/stat` tells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// The `cpu` line: all CPUs together.
    pub total: Option<CpuTimes>,
    /// `cpuN` lines as `(N, times)`.
    pub per_cpu: Vec<(u32, CpuTimes)>,
    /// Boot time, seconds since the epoch (`btime`).
    pub boot_time: Option<u64>,
    /// `procs_running`.
    pub procs_running: Option<u64>,
    /// `procs_blocked`.
    pub procs_blocked: Option<u64>,
}

/// Parses `/proc/stat`.
pub fn parse_stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        if let Some(rest) = name.strip_prefix("cpu") {
            let v: Vec<u64> = fields.map_while(|f| f.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal [guest guest_nice]
            if v.len() < 8 {
                continue;
            }
            let times = CpuTimes {
                user: v[0] + v[1],
                system: v[2] + v[5] + v[6],
                idle: v[3],
                iowait: v[4],
                steal: v[7],
            };
            if rest.is_empty() {
                stat.total = Some(times);
            } else if let Ok(n) = rest.parse() {
                stat.per_cpu.push((n, times));
            }
            continue;
        }
        let value = fields.next().and_then(|v| v.parse().ok());
        match name {
            "btime" => stat.boot_time = value,
            "procs_running" => stat.procs_running = value,
            "procs_blocked" => stat.procs_blocked = value,
            _ => {}
        }
    }
    stat
}

/// The `/proc/meminfo` fields the rows use, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    /// `MemTotal`.
    pub mem_total: Option<u64>,
    /// `MemAvailable`.
    pub mem_available: Option<u64>,
    /// `SwapTotal`.
    pub swap_total: Option<u64>,
    /// `SwapFree`.
    pub swap_free: Option<u64>,
}

/// Parses `/proc/meminfo` (values in kB, returned in bytes).
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_ascii_whitespace();
        let Some(n) = parts.next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = if parts.next() == Some("kB") {
            n.saturating_mul(1024)
        } else {
            n
        };
        match name {
            "MemTotal" => m.mem_total = Some(bytes),
            "MemAvailable" => m.mem_available = Some(bytes),
            "SwapTotal" => m.swap_total = Some(bytes),
            "SwapFree" => m.swap_free = Some(bytes),
            _ => {}
        }
    }
    m
}

/// `/proc/loadavg`: the three averages and the number of threads (kernel
/// scheduling entities) in the fourth field, `running/total`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadAvg {
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    /// Threads on the system.
    pub threads: u64,
}

/// Parses `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut f = text.split_ascii_whitespace();
    let load = [
        f.next()?.parse().ok()?,
        f.next()?.parse().ok()?,
        f.next()?.parse().ok()?,
    ];
    let threads = f.next()?.split_once('/')?.1.parse().ok()?;
    Some(LoadAvg { load, threads })
}

/// Parses `/proc/uptime`: seconds since boot.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Cumulative counters of one block device from `/proc/diskstats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskCounters {
    /// Reads completed.
    pub reads: u64,
    /// Bytes read (sectors × 512, whatever the device's sector size).
    pub read_bytes: u64,
    /// Milliseconds spent reading.
    pub read_time_ms: u64,
    /// Writes completed.
    pub writes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Milliseconds spent writing.
    pub write_time_ms: u64,
}

/// Parses `/proc/diskstats` into `(device, counters)`.
pub fn parse_diskstats(text: &str) -> Vec<(String, DiskCounters)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.len() < 11 {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().ok();
            Some((
                f[2].to_owned(),
                DiskCounters {
                    reads: n(3)?,
                    read_bytes: n(5)?.saturating_mul(512),
                    read_time_ms: n(6)?,
                    writes: n(7)?,
                    write_bytes: n(9)?.saturating_mul(512),
                    write_time_ms: n(10)?,
                },
            ))
        })
        .collect()
}

/// Cumulative counters of one interface from `/proc/net/dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetCounters {
    /// Received: bytes, packets, errors, drops.
    pub rx: [u64; 4],
    /// Sent: bytes, packets, errors, drops.
    pub tx: [u64; 4],
}

/// Parses `/proc/net/dev` into `(interface, counters)`.
pub fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let v: Vec<u64> = rest
                .split_ascii_whitespace()
                .map_while(|f| f.parse().ok())
                .collect();
            if v.len() < 16 {
                return None;
            }
            Some((
                name.trim().to_owned(),
                NetCounters {
                    rx: [v[0], v[1], v[2], v[3]],
                    tx: [v[8], v[9], v[10], v[11]],
                },
            ))
        })
        .collect()
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem's device, to skip bind mounts.
    pub dev: String,
    /// Where it is mounted, with the kernel's octal escapes decoded.
    pub mount_point: String,
    /// The filesystem type.
    pub fs_type: String,
    /// The mount source (e.g. `/dev/vda1`).
    pub source: String,
}

/// Parses `/proc/self/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let mut r = right.split(' ');
            if l.len() < 5 {
                return None;
            }
            Some(Mount {
                dev: l[2].to_owned(),
                mount_point: unescape(l[4]),
                fs_type: r.next()?.to_owned(),
                source: unescape(r.next().unwrap_or("")),
            })
        })
        .collect()
}

/// Decodes the `\ooo` octal escapes mountinfo uses for space, tab, newline
/// and backslash.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a cgroup v2 `cpu.stat`: `usage_usec`.
pub fn parse_cgroup_cpu_usec(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  297890 106978 56102 250205 3484 10 1545 139 7 0\n\
cpu0 145361 51832 26917 132214 969 0 630 62 0 0\n\
cpu1 152529 55145 29184 117991 2514 0 915 77 0 0\n\
intr 1 2 3\nctxt 3334\nbtime 1763754000\nprocesses 29711\n\
procs_running 4\nprocs_blocked 1\nsoftirq 1 2 3\n";

    #[test]
    fn stat_groups_cpu_times_and_reads_counts() {
        let s = parse_stat(STAT);
        let t = s.total.unwrap();
        assert_eq!(t.user, 297_890 + 106_978);
        assert_eq!(t.system, 56_102 + 10 + 1545);
        assert_eq!((t.idle, t.iowait, t.steal), (250_205, 3484, 139));
        assert_eq!(s.per_cpu.len(), 2);
        assert_eq!(s.per_cpu[1].0, 1);
        assert_eq!(s.per_cpu[1].1.idle, 117_991);
        assert_eq!(s.boot_time, Some(1_763_754_000));
        assert_eq!((s.procs_running, s.procs_blocked), (Some(4), Some(1)));
    }

    #[test]
    fn stat_skips_short_cpu_lines() {
        let s = parse_stat("cpu 1 2 3\nbtime 5\n");
        assert_eq!(s.total, None);
        assert_eq!(s.boot_time, Some(5));
    }

    #[test]
    fn meminfo_is_read_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:       24684092 kB\nMemFree:        21969416 kB\n\
             MemAvailable:   24098432 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\n",
        );
        assert_eq!(m.mem_total, Some(24_684_092 * 1024));
        assert_eq!(m.mem_available, Some(24_098_432 * 1024));
        assert_eq!((m.swap_total, m.swap_free), (Some(0), Some(0)));
        assert_eq!(parse_meminfo("garbage\n"), MemInfo::default());
    }

    #[test]
    fn loadavg_and_uptime() {
        let l = parse_loadavg("1.48 1.49 1.44 4/104 29711\n").unwrap();
        assert_eq!(l.load, [1.48, 1.49, 1.44]);
        assert_eq!(l.threads, 104);
        assert_eq!(parse_loadavg("1.0 2.0"), None);
        assert_eq!(parse_uptime("3620.23 2525.08\n"), Some(3620.23));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn diskstats_counts_bytes_from_sectors() {
        let d = parse_diskstats(
            "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n \
             254       0 vda 1000 5 2048 300 400 7 4096 900 0 1200 1500 0 0 0 0\n\
             bad line\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].0, "vda");
        let c = d[1].1;
        assert_eq!(
            (c.reads, c.read_bytes, c.read_time_ms),
            (1000, 2048 * 512, 300)
        );
        assert_eq!(
            (c.writes, c.write_bytes, c.write_time_ms),
            (400, 4096 * 512, 900)
        );
    }

    #[test]
    fn net_dev_skips_headers() {
        let n = parse_net_dev(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 50863880847 1535328    0    0    0     0          0         0 50863880847 1535328    0    0    0     0       0          0\n  \
             eth0:100 2 3 4 0 0 0 0 200 5 6 7 0 0 0 0\n",
        );
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].0, "lo");
        assert_eq!(n[1].0, "eth0");
        assert_eq!(n[1].1.rx, [100, 2, 3, 4]);
        assert_eq!(n[1].1.tx, [200, 5, 6, 7]);
    }

    #[test]
    fn mountinfo_decodes_escapes_and_optional_fields() {
        let m = parse_mountinfo(
            "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
             27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
             40 27 254:1 /x /mnt/my\\040disk rw master:2 shared:3 - ext4 /dev/vda1 rw\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].mount_point, "/");
        assert_eq!(m[1].fs_type, "ext4");
        assert_eq!(m[1].source, "/dev/vda1");
        assert_eq!(m[1].dev, "254:1");
        assert_eq!(m[2].mount_point, "/mnt/my disk");
    }

    #[test]
    fn cgroup_cpu_stat() {
        assert_eq!(
            parse_cgroup_cpu_usec("usage_usec 1234\nuser_usec 1000\n"),
            Some(1234)
        );
        assert_eq!(parse_cgroup_cpu_usec("user_usec 1000\n"), None);
    }
}
