//! The `sysmetrics` options: their declaration and the checks that turn the
//! host's JSON into a [`Config`].

use std::path::PathBuf;

use serde_json::Value;
use tributary_plugin_sdk::{ConfigIssue, OptionKind, OptionSpec, Options};

/// The shortest accepted `interval_ms`: below it the sampling itself
/// becomes the load being measured.
pub const MIN_INTERVAL_MS: i64 = 100;
/// The longest accepted `interval_ms`: one day.
pub const MAX_INTERVAL_MS: i64 = 86_400_000;

/// Filesystem types skipped unless `exclude_fs_types` says otherwise:
/// kernel pseudo filesystems, memory-backed ones (their use is already in
/// the memory figures), container layers and read-only images.
pub const DEFAULT_EXCLUDE_FS_TYPES: [&str; 27] = [
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// How rows are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One row per host per interval, a fixed set of columns.
    Wide,
    /// One row per metric and label set, Prometheus style.
    Long,
}

impl Shape {
    /// The accepted names.
    pub const NAMES: [&'static str; 2] = ["wide", "long"];
}

/// The options, as `tributary plugins describe sysmetrics` shows them.
pub fn options() -> Vec<OptionSpec> {
    let flag = |name, default, doc| OptionSpec::new(name, OptionKind::Boolean, Some(default), doc);
    vec![
        OptionSpec::new(
            "interval_ms",
            OptionKind::Integer,
            Some("10000"),
            "Sampling interval (100 to 86400000). Samples are aligned to wall-clock \
             multiples of it (a 10 s interval samples at :00, :10, …).",
        ),
        OptionSpec::new(
            "shape",
            OptionKind::String,
            Some("\"wide\""),
            "\"wide\": one row per interval with a fixed set of host-level columns (null \
             when unknown). \"long\": one row per metric with `name`, `value`, `labels` \
             (per core, disk, interface, mount point) and `timestamp`.",
        )
        .one_of(&Shape::NAMES),
        OptionSpec::new(
            "host",
            OptionKind::String,
            None,
            "Value of the `host` column; defaults to the kernel's host name. Records \
             are keyed by this column unless the source sets another `key`.",
        ),
        flag(
            "cpu",
            "true",
            "CPU percentages (user, system, iowait, idle, steal).",
        ),
        flag(
            "per_cpu",
            "false",
            "Also per core (long shape only: wide rows carry the all-CPU figures).",
        ),
        flag("load", "true", "Load averages over 1, 5 and 15 minutes."),
        flag(
            "memory",
            "true",
            "Memory and swap: total, used, available, percent.",
        ),
        flag(
            "filesystems",
            "true",
            "Filesystem size, use and inodes (wide: summed over the included filesystems).",
        ),
        flag(
            "disks",
            "true",
            "Disk bytes, operations and busy time per second (wide: summed over whole \
             disks; loop, ram, zram and partitions are skipped).",
        ),
        flag(
            "network",
            "true",
            "Interface bytes, packets, errors and drops per second (wide: summed).",
        ),
        flag(
            "processes",
            "true",
            "Process and thread counts, uptime, boot time.",
        ),
        flag(
            "cgroup",
            "false",
            "CPU percent and memory of a cgroup v2 (see `cgroup_path`).",
        ),
        OptionSpec::new(
            "cgroup_path",
            OptionKind::String,
            Some("\"\""),
            "The cgroup under <sys_path>/fs/cgroup, e.g. \"system.slice/nginx.service\"; \
             empty for the root (whose memory use the kernel does not report).",
        ),
        flag(
            "exclude_loopback",
            "true",
            "Skip the loopback interface `lo`.",
        ),
        OptionSpec::new(
            "exclude_fs_types",
            OptionKind::Array,
            None,
            "Filesystem types to skip; the default skips pseudo and memory filesystems \
             (proc, sysfs, tmpfs, devtmpfs, cgroup2, overlay, squashfs, …).",
        ),
        OptionSpec::new(
            "proc_path",
            OptionKind::String,
            Some("\"/proc\""),
            "Where procfs is mounted (e.g. \"/host/proc\" in a container).",
        ),
        OptionSpec::new(
            "sys_path",
            OptionKind::String,
            Some("\"/sys\""),
            "Where sysfs is mounted (e.g. \"/host/sys\" in a container).",
        ),
    ]
}

/// Validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Milliseconds between samples.
    pub interval_ms: u64,
    /// Row shape.
    pub shape: Shape,
    /// `host` column; `None` reads the host name.
    pub host: Option<String>,
    /// Collector switches.
    pub cpu: bool,
    /// Per-core rows (long).
    pub per_cpu: bool,
    /// Load averages.
    pub load: bool,
    /// Memory and swap.
    pub memory: bool,
    /// Filesystems.
    pub filesystems: bool,
    /// Disks.
    pub disks: bool,
    /// Network interfaces.
    pub network: bool,
    /// Processes, threads, uptime, boot time.
    pub processes: bool,
    /// cgroup v2 CPU and memory.
    pub cgroup: bool,
    /// Relative cgroup path.
    pub cgroup_path: String,
    /// Skip `lo`.
    pub exclude_loopback: bool,
    /// Filesystem types to skip.
    pub exclude_fs_types: Vec<String>,
    /// procfs root.
    pub proc_path: PathBuf,
    /// sysfs root.
    pub sys_path: PathBuf,
}

impl Config {
    /// Reads and checks the options, reporting every problem, not the first.
    pub fn from_json(config: &Value) -> Result<Config, Vec<ConfigIssue>> {
        let (checked, declared) = Options::check(&options(), config);
        Options::merge(declared, Config::from_options(&checked))
    }

    /// Reads options already checked against [`options`] (names, types,
    /// choices), defaults applied; checks what a declaration cannot.
    pub fn from_options(options: &Options) -> Result<Config, Vec<ConfigIssue>> {
        let obj = options.as_map();
        let mut issues = Vec::new();
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());

        let interval_ms = match get("interval_ms") {
            None => 10_000,
            Some(v) => match v
                .as_i64()
                .filter(|n| (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(n))
            {
                Some(n) => n.unsigned_abs(),
                None => {
                    issues.push(ConfigIssue::key(
                        "interval_ms",
                        format!(
                            "expected an integer from {MIN_INTERVAL_MS} to {MAX_INTERVAL_MS} \
                             (milliseconds between samples), got {v}"
                        ),
                    ));
                    10_000
                }
            },
        };
        let string = |k: &str, issues: &mut Vec<ConfigIssue>| match get(k) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                issues.push(ConfigIssue::key(k, format!("expected a string, got {v}")));
                None
            }
        };
        let shape = match string("shape", &mut issues).as_deref() {
            None | Some("wide") => Shape::Wide,
            Some("long") => Shape::Long,
            Some(other) => {
                issues.push(ConfigIssue::key(
                    "shape",
                    format!("expected \"wide\" or \"long\", got \"{other}\""),
                ));
                Shape::Wide
            }
        };
        let host = string("host", &mut issues);
        if host.as_deref() == Some("") {
            issues.push(ConfigIssue::key(
                "host",
                "must not be empty; leave it out to use the host name",
            ));
        }
        let cgroup_path = string("cgroup_path", &mut issues).unwrap_or_default();
        if cgroup_path.split('/').any(|c| c == "..") {
            issues.push(ConfigIssue::key(
                "cgroup_path",
                "must stay under the cgroup root (no `..`)",
            ));
        }
        let proc_path = string("proc_path", &mut issues).unwrap_or_else(|| "/proc".into());
        let sys_path = string("sys_path", &mut issues).unwrap_or_else(|| "/sys".into());
        for (k, p) in [("proc_path", &proc_path), ("sys_path", &sys_path)] {
            if p.is_empty() {
                issues.push(ConfigIssue::key(k, "must not be empty"));
            }
        }
        let exclude_fs_types = match get("exclude_fs_types") {
            None => DEFAULT_EXCLUDE_FS_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            Some(Value::Array(items)) => {
                let names: Vec<String> = items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect();
                if names.len() != items.len() {
                    issues.push(ConfigIssue::key(
                        "exclude_fs_types",
                        "expected an array of filesystem type names (strings)",
                    ));
                }
                names
            }
            Some(v) => {
                issues.push(ConfigIssue::key(
                    "exclude_fs_types",
                    format!("expected an array of strings, got {v}"),
                ));
                Vec::new()
            }
        };
        let mut flag = |k: &str, default: bool| match get(k) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                issues.push(ConfigIssue::key(
                    k,
                    format!("expected true or false, got {v}"),
                ));
                default
            }
        };
        let config = Config {
            interval_ms,
            shape,
            host,
            cpu: flag("cpu", true),
            per_cpu: flag("per_cpu", false),
            load: flag("load", true),
            memory: flag("memory", true),
            filesystems: flag("filesystems", true),
            disks: flag("disks", true),
            network: flag("network", true),
            processes: flag("processes", true),
            cgroup: flag("cgroup", false),
            exclude_loopback: flag("exclude_loopback", true),
            cgroup_path,
            exclude_fs_types,
            proc_path: proc_path.into(),
            sys_path: sys_path.into(),
        };
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(issues)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_table() {
        let c = Config::from_json(&json!({})).unwrap();
        assert_eq!(c.interval_ms, 10_000);
        assert_eq!(c.shape, Shape::Wide);
        assert!(c.cpu && c.memory && c.disks && c.network && c.exclude_loopback);
        assert!(!c.per_cpu && !c.cgroup);
        assert!(c.exclude_fs_types.iter().any(|t| t == "tmpfs"));
        assert_eq!(c.proc_path, PathBuf::from("/proc"));
        assert_eq!(c.sys_path, PathBuf::from("/sys"));
        // Every option the parser reads is declared, and vice versa.
        assert_eq!(options().len(), 17);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let issues = Config::from_json(&json!({
            "interval_ms": 5,
            "shape": "tall",
            "cpu": "yes",
            "host": "",
            "cgroup_path": "../etc",
            "exclude_fs_types": [1],
            "colour": "blue",
        }))
        .unwrap_err();
        let keys: Vec<_> = issues.iter().filter_map(|i| i.key.as_deref()).collect();
        for k in [
            "interval_ms",
            "shape",
            "cpu",
            "host",
            "cgroup_path",
            "exclude_fs_types",
            "colour",
        ] {
            assert!(keys.contains(&k), "no issue for {k}: {keys:?}");
        }
    }
}
