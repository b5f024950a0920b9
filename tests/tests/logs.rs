//! What an operator reads in the log on the first day: a first run in a
//! terminal that shows its data flowing, a clean stop without warnings, and
//! one line per broker event rather than one per client and retry.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tributary_tests::*;

/// The lines at WARN or ERROR level.
fn loud(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect()
}

/// A log line without its timestamp, librdkafka's own counters and the
/// daemon's repeat count: two lines with the same text are the same event
/// logged twice.
fn event_text(line: &str) -> String {
    let text = line.split_once(' ').map_or(line, |(_, rest)| rest);
    let text = text.split(" (after ").next().unwrap_or(text);
    text.split(" more in the last minute)")
        .next()
        .unwrap_or(text)
        .to_owned()
}

/// Starts a daemon on `spec` and waits for its first commit of `orders`.
fn start_committing(dir: &TempDir, spec: &ConfigSpec) -> Daemon {
    let config = write_config(dir.path(), spec);
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    assert!(
        wait_until(Duration::from_secs(30), || {
            committed_seq(&dir.join("offsets"), "orders").is_some_and(|s| s > 0)
        }),
        "no commit:\n{}",
        daemon.log_text()
    );
    daemon
}

#[test]
fn a_clean_stop_on_the_embedded_broker_logs_no_warning() {
    let dir = TempDir::new("logs-embedded-stop");
    let spec = ConfigSpec::new("embedded", dir.path()).drop_in(
        "orders.toml",
        datagen_source("orders", "orders", 1_000_000, 1_000, 3),
    );
    let mut daemon = start_committing(&dir, &spec);
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = daemon.log_text();
    // The in-process broker stops with the daemon: its connections closing
    // then ("1/1 brokers are down") are no fault to warn about.
    assert!(loud(&log).is_empty(), "warnings on a clean stop:\n{log}");
}

#[test]
fn a_broker_that_goes_away_is_logged_once_per_event_not_per_client_and_retry() {
    let dir = TempDir::new("logs-broker-away");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 3);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        // The broker probe is a second client of the same broker.
        .with_http()
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", 1_000_000, 1_000, 3),
        );
    let mut daemon = start_committing(&dir, &spec);
    broker.mock().broker_down(1).expect("broker down");
    // librdkafka retries the connection many times in this long, with
    // two clients.
    std::thread::sleep(Duration::from_secs(15));
    broker.mock().broker_up(1).expect("broker up");
    let before = committed_seq(&dir.join("offsets"), "orders").unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(60), || {
            committed_seq(&dir.join("offsets"), "orders").is_some_and(|s| s > before + 1_000)
        }),
        "no progress after the broker came back:\n{}",
        daemon.log_text()
    );
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = daemon.log_text();
    let lines = loud(&log);
    assert!(
        !lines.is_empty(),
        "the broker going away was not logged at all:\n{log}"
    );
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        *events.entry(event_text(line)).or_default() += 1;
    }
    let repeated: Vec<(&String, &usize)> = events.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "events logged more than once: {repeated:#?}\n{}",
        lines.join("\n")
    );
    eprintln!(
        "{} loud lines for a 15 s outage:\n{}",
        lines.len(),
        lines.join("\n")
    );
}

/// Runs the daemon with its log on a pseudo-terminal (`script`), for
/// `seconds`, and returns what the terminal showed.
fn run_in_a_terminal(config: &Path, typescript: &Path, seconds: u64) -> String {
    let command = format!(
        "exec {} run --config {}",
        shell_quote(&daemon_bin().display().to_string()),
        shell_quote(&config.display().to_string())
    );
    let mut child: Child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command])
        .arg(typescript)
        .env_remove("INVOCATION_ID")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script(1)");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM to `script` is passed on to the daemon in the terminal.
    // SAFETY: plain kill(2) of our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(typescript).unwrap_or_default()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `text` without ANSI escape sequences (a terminal gets colours).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `per_sec` values of a source's progress lines.
fn rates(log: &str, source: &str) -> Vec<f64> {
    plain(log)
        .lines()
        .filter(|l| l.contains("Progress.") && l.contains(&format!("source={source}")))
        .filter_map(|l| {
            let (_, rest) = l.split_once("per_sec=")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect::<Vec<f64>>()
}

#[test]
fn a_first_run_in_a_terminal_shows_throughput_every_few_seconds_and_a_service_stays_quiet() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "script(1) is required in CI");
        eprintln!("script(1) not installed: skipping");
        return;
    }
    let dir = TempDir::new("logs-first-run");
    // As the quickstart: embedded broker, /metrics served, nobody scraping.
    let spec = ConfigSpec::new("embedded", dir.path()).with_http().drop_in(
        "orders.toml",
        datagen_source("orders", "orders", 1_000_000, 500, 3),
    );
    let config = write_config(dir.path(), &spec);
    let shown = run_in_a_terminal(&config, &dir.join("typescript"), 17);
    let seen = rates(&shown, "orders");
    assert!(
        seen.iter().filter(|r| **r > 0.0).count() >= 2,
        "a terminal should see the throughput every few seconds, saw {seen:?}:\n{shown}"
    );
    assert!(
        loud(&shown).is_empty(),
        "warnings in a clean first run:\n{shown}"
    );

    // The same daemon with its log in a file (a service): one line when
    // the source starts running, then quiet while /metrics serves the rest.
    let dir = TempDir::new("logs-service");
    let spec = ConfigSpec::new("embedded", dir.path()).with_http().drop_in(
        "orders.toml",
        datagen_source("orders", "orders", 1_000_000, 500, 3),
    );
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    std::thread::sleep(Duration::from_secs(17));
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = daemon.log_text();
    let seen = rates(&log, "orders");
    assert!(
        seen.len() <= 1,
        "a service with /metrics logs its throughput only when the state changes, saw {seen:?}:\n{log}"
    );
}
