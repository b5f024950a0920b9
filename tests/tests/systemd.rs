//! The systemd notification protocol as a `Type=notify` unit sees it: a
//! datagram socket named by `NOTIFY_SOCKET` receives READY, WATCHDOG,
//! RELOADING/READY around a reload and STOPPING, and the watchdog starves
//! when a pipeline is wedged.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tributary_tests::*;

/// systemd's side of the protocol: a bound datagram socket.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &TempDir) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket { socket, path }
    }

    /// Every message received within `wait`, with its arrival time.
    fn collect(&self, wait: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                out.push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        }
        out
    }

    /// Waits up to `wait` for a message starting with `prefix`; returns it
    /// and everything received before it.
    fn until(&self, prefix: &str, wait: Duration) -> (Option<String>, Vec<String>) {
        let deadline = Instant::now() + wait;
        let mut before = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if message.starts_with(prefix) {
                    return (Some(message), before);
                }
                before.push(message);
            }
        }
        (None, before)
    }
}

fn start(dir: &TempDir, spec: &ConfigSpec, notify: &NotifySocket) -> Daemon {
    let config = write_config(dir.path(), spec);
    Daemon::start_with_env(
        &config,
        &dir.join("daemon.log"),
        &[],
        &[
            ("NOTIFY_SOCKET", notify.path.as_os_str()),
            // A 1-s watchdog: fed every 0.5 s while healthy.
            ("WATCHDOG_USEC", OsStr::new("1000000")),
        ],
    )
}

#[test]
fn sd_notify_reports_ready_watchdog_and_stopping() {
    let dir = TempDir::new("sd-notify");
    let broker = Broker::start_mock(1);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
        "orders.toml",
        datagen_source("orders", "orders", 1_000_000, 1_000, 1),
    );
    let notify = NotifySocket::bind(&dir);
    let mut daemon = start(&dir, &spec, &notify);

    let (ready, before) = notify.until("READY=1", Duration::from_secs(30));
    assert!(ready.is_some(), "no READY=1; got {before:?}");
    assert!(
        !before.iter().any(|m| m.contains("WATCHDOG=1")),
        "watchdog before ready: {before:?}"
    );
    let fed = notify.collect(Duration::from_secs(3));
    let pings = fed.iter().filter(|(_, m)| m == "WATCHDOG=1").count();
    assert!(pings >= 3, "too few WATCHDOG=1 in 3 s: {fed:?}");

    // A reload is bracketed by RELOADING=1 (with the monotonic time systemd
    // requires) and READY=1.
    daemon.signal(libc::SIGHUP);
    let (reloading, _) = notify.until("RELOADING=1", Duration::from_secs(10));
    let reloading = reloading.expect("no RELOADING=1 after SIGHUP");
    assert!(
        reloading.lines().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|v| v.parse::<u64>().is_ok())),
        "{reloading}"
    );
    let (ready, _) = notify.until("READY=1", Duration::from_secs(10));
    assert!(ready.is_some(), "no READY=1 after the reload");

    daemon.signal(libc::SIGTERM);
    let (stopping, _) = notify.until("STOPPING=1", Duration::from_secs(10));
    assert!(stopping.is_some(), "no STOPPING=1");
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn watchdog_starves_while_a_plugin_is_stuck() {
    let dir = TempDir::new("sd-watchdog");
    let broker = Broker::start_mock(1);
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for (built, installed) in [
        ("tributary_datagen", "tributary_datagen"),
        ("fixture_faulty", "tributary_faulty"),
    ] {
        let from = plugin_lib(built);
        std::fs::copy(&from, plugins.join(format!("lib{installed}.so")))
            .unwrap_or_else(|e| panic!("copy {} (build it first): {e}", from.display()));
    }
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", 1_000_000, 1_000, 1),
        )
        .drop_in(
            "stuck.toml",
            "[[source]]\nname = \"stuck\"\ntype = \"faulty\"\ntopic = \"stuck\"\nhang_poll = true\n",
        );
    spec.plugin_dirs = vec![plugins];
    let notify = NotifySocket::bind(&dir);
    let mut daemon = start(&dir, &spec, &notify);

    let (ready, before) = notify.until("READY=1", Duration::from_secs(30));
    assert!(ready.is_some(), "no READY=1; got {before:?}");
    // Within a couple of seconds the stuck thread is noticed; from then on
    // no WATCHDOG=1 arrives, though the other source keeps producing.
    let messages = notify.collect(Duration::from_secs(6));
    let noticed = messages
        .iter()
        .find(|(_, m)| m.contains("STATUS=Source `stuck` is stuck"))
        .map(|(t, _)| *t);
    let noticed = noticed.unwrap_or_else(|| panic!("stall not reported: {messages:?}"));
    let fed_after = messages
        .iter()
        .filter(|(t, m)| *t > noticed && m == "WATCHDOG=1")
        .count();
    assert_eq!(fed_after, 0, "watchdog fed while stuck: {messages:?}");
    assert!(
        daemon
            .log_text()
            .contains("not feeding the systemd watchdog"),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.is_running());
}
