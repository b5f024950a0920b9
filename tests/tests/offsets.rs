//! Offsets survive process death: a `kill -9` loses nothing, a clean stop
//! repeats nothing. The daemon runs as a child process against a broker that
//! outlives it; an independent consumer counts sequence numbers.

use std::path::Path;
use std::time::{Duration, Instant};

use tributary_tests::*;

const ROUNDS: usize = 10;

/// A pseudo-random duration in `[min, max)` from a seed, so a failing run
/// can be repeated with `TRIBUTARY_TEST_SEED`.
fn pick(seed: &mut u64, min_ms: u64, max_ms: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(min_ms + *seed % (max_ms - min_ms))
}

fn test_seed() -> u64 {
    let seed = std::env::var("TRIBUTARY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("TRIBUTARY_TEST_SEED={seed}");
    seed
}

/// The next sequence number the daemon committed for `source`, read from
/// the offset file the daemon writes (line 1: JSON with hex checkpoints).
fn committed_seq(offsets_dir: &Path, source: &str) -> Option<u64> {
    let text = std::fs::read_to_string(offsets_dir.join(format!("source-{source}.json"))).ok()?;
    let body: serde_json::Value = serde_json::from_str(text.lines().next()?).ok()?;
    let hex = body["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["partition"] == "736571")?["checkpoint"]
        .as_str()?
        .to_owned();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Runs the daemon until the source has committed `count` records, or the
/// timeout passes, then stops it with SIGTERM.
fn run_to_completion(config: &Path, dir: &TempDir, count: u64, round: usize) {
    let mut daemon = Daemon::start(config, &dir.join(format!("daemon-final-{round}.log")));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !daemon.log_text().contains("Daemon running.") {
        assert!(
            Instant::now() < deadline,
            "daemon did not start:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    while committed_seq(&dir.join("offsets"), "orders") != Some(count) {
        assert!(
            Instant::now() < deadline,
            "source did not finish; log:\n{}",
            daemon.log_text()
        );
        assert!(daemon.is_running(), "daemon died:\n{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "final stop: {status:?}"
    );
}

#[test]
fn offsets_resume_after_kill_9() {
    let mut seed = test_seed();
    for kind in brokers_under_test() {
        let dir = TempDir::new("kill-9");
        let broker = Broker::start(kind, dir.path());
        broker.create_topic("orders", 8);
        let count = 60_000;
        let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
            "orders.toml",
            datagen_source("orders", "orders", count, 5_000, 11),
        );
        let config = write_config(dir.path(), &spec);
        let mut progress = Vec::new();
        for round in 0..ROUNDS {
            let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
            std::thread::sleep(pick(&mut seed, 300, 1500));
            daemon.kill9();
            progress.push(committed_seq(&dir.join("offsets"), "orders").unwrap_or(0));
        }
        assert!(
            progress.windows(2).all(|w| w[0] <= w[1]) && progress[ROUNDS - 1] > 0,
            "{kind}: committed offsets must only grow and must move: {progress:?}"
        );
        run_to_completion(&config, &dir, count, ROUNDS);

        let report = consume_seqs(
            &broker.bootstrap(),
            "orders",
            count,
            Duration::from_secs(120),
        );
        eprintln!("{kind}: {ROUNDS} kill -9 rounds, committed after each: {progress:?}; {report}");
        assert!(report.nothing_missing(), "{kind}: {report}");
        assert_eq!(report.out_of_range, 0, "{kind}: {report}");
        // Resuming from the committed offset bounds the re-sent records to
        // what was in flight or uncommitted at each kill; restarting from
        // the beginning would re-send far more.
        assert!(
            report.duplicated < count / 2,
            "{kind}: too many duplicates for a resumed source: {report}"
        );
    }
}

#[test]
fn clean_restart_loses_and_repeats_nothing() {
    let mut seed = test_seed();
    for kind in brokers_under_test() {
        let dir = TempDir::new("clean-restart");
        let broker = Broker::start(kind, dir.path());
        broker.create_topic("orders", 8);
        let count = 60_000;
        let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
            "orders.toml",
            datagen_source("orders", "orders", count, 5_000, 5),
        );
        let config = write_config(dir.path(), &spec);
        let mut progress = Vec::new();
        for round in 0..ROUNDS {
            let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
            std::thread::sleep(pick(&mut seed, 300, 1200));
            let status = daemon.sigterm_and_wait(Duration::from_secs(30));
            assert!(
                status.is_some_and(|s| s.success()),
                "{kind}: round {round}: SIGTERM must exit 0, got {status:?}\n{}",
                daemon.log_text()
            );
            progress.push(committed_seq(&dir.join("offsets"), "orders").unwrap_or(0));
        }
        assert!(
            progress[ROUNDS - 1] > 0,
            "{kind}: nothing committed: {progress:?}"
        );
        run_to_completion(&config, &dir, count, ROUNDS);

        let report = consume_seqs(
            &broker.bootstrap(),
            "orders",
            count,
            Duration::from_secs(120),
        );
        eprintln!("{kind}: {ROUNDS} SIGTERM rounds, committed after each: {progress:?}; {report}");
        assert!(report.exactly_once(), "{kind}: {report}");
    }
}
