//! A real Prometheus server (the Debian package's binary) scraping the
//! daemon, so tests check what an operator's Prometheus really sees.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::broker::free_port;
use crate::http::{http_request, url_encode};
use crate::process;

/// Environment variable naming the Prometheus binary.
pub const PROMETHEUS_BIN_ENV: &str = "PROMETHEUS_BIN";

/// How long Prometheus gets to answer after spawning.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `$PROMETHEUS_BIN`, else `/usr/bin/prometheus` if it exists. With
/// `CI=true`, a missing binary panics: CI must run these tests.
pub fn prometheus_bin() -> Option<PathBuf> {
    let bin = std::env::var_os(PROMETHEUS_BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    if bin.is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} does not exist (apt-get install prometheus)",
        bin.display()
    );
    eprintln!(
        "note: {} not found: Prometheus scrape tests are SKIPPED",
        bin.display()
    );
    None
}

/// `promtool` beside [`prometheus_bin`].
pub fn promtool_bin() -> Option<PathBuf> {
    let bin = prometheus_bin()?.with_file_name("promtool");
    bin.is_file().then_some(bin)
}

/// A Prometheus process on a free loopback port with its data in a test
/// directory, scraping `targets` every second. Stopped by PID on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with `binary`, its config and data under `dir`,
    /// and waits until it answers.
    ///
    /// # Panics
    /// If it does not start within a minute.
    pub fn start(binary: &Path, dir: &Path, targets: &[String]) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: tributary\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("write prometheus.yml");
        let address = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address={address}"));
        let child = process::spawn_logged(&mut cmd, &log);
        let mut prometheus = Prometheus {
            child,
            address,
            log,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if http_request(&prometheus.address, "GET", "/-/ready", &[])
                .is_ok_and(|r| r.status == 200)
            {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline && matches!(prometheus.child.try_wait(), Ok(None)),
                "Prometheus did not start:\n{}",
                process::log_tail(&prometheus.log, 30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs an instant query; returns every sample as `(labels, value)`.
    ///
    /// # Panics
    /// If Prometheus does not answer or rejects the query.
    pub fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let reply = http_request(&self.address, "GET", &path, &[])
            .unwrap_or_else(|e| panic!("query {expr}: {e}"));
        let json = reply.json();
        assert_eq!(json["status"], "success", "query {expr}: {}", reply.body);
        json["data"]["result"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| {
                        let value = r["value"][1].as_str()?.parse().ok()?;
                        Some((r["metric"].clone(), value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = process::terminate(&mut self.child, Duration::from_secs(10));
    }
}
