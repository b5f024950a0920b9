//! Offsets survive process death: a `kill -9` loses nothing, a clean stop
//! repeats nothing. The daemon runs as a child process against a broker that
//! outlives it; an independent consumer counts sequence numbers.

use std::path::Path;
use std::time::{Duration, Instant};

use tributary_tests::*;

const ROUNDS: usize = 10;

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

/// Starts the daemon `ROUNDS` times, each time interrupting it at a random
/// moment with `interrupt`, then lets it finish; returns the offset committed
/// after each round and what an independent consumer read.
fn interrupted_runs(
    kind: BrokerKind,
    label: &str,
    count: u64,
    seed: &mut u64,
    interrupt: impl Fn(&mut Daemon, usize),
) -> (Vec<u64>, SeqReport) {
    let dir = TempDir::new(label);
    let broker = Broker::start(kind, dir.path());
    // Eight partitions keep the mock broker's 5 MiB-per-partition retention
    // above what the test writes.
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 8);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
        "orders.toml",
        datagen_source("orders", &topic, count, 5_000, *seed % 1000),
    );
    let config = write_config(dir.path(), &spec);
    let mut progress = Vec::new();
    for round in 0..ROUNDS {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        std::thread::sleep(pick(seed, 300, 1500));
        interrupt(&mut daemon, round);
        progress.push(committed_seq(&dir.join("offsets"), "orders").unwrap_or(0));
    }
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress[ROUNDS - 1] > 0,
        "{kind}: committed offsets must only grow and must move: {progress:?}"
    );
    run_to_completion(&config, &dir, count, ROUNDS);
    let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(120));
    eprintln!("{kind} {label}: committed after each round: {progress:?}; {report}");
    (progress, report)
}

#[test]
fn offsets_resume_after_kill_9() {
    let mut seed = test_seed();
    for kind in brokers_under_test() {
        let count = 60_000;
        let (_, report) = interrupted_runs(kind, "kill-9", count, &mut seed, |daemon, _| {
            daemon.kill9();
        });
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
        let (_, report) =
            interrupted_runs(kind, "clean-restart", 60_000, &mut seed, |daemon, round| {
                let status = daemon.sigterm_and_wait(Duration::from_secs(30));
                assert!(
                    status.is_some_and(|s| s.success()),
                    "{kind}: round {round}: SIGTERM must exit 0, got {status:?}\n{}",
                    daemon.log_text()
                );
            });
        assert!(report.exactly_once(), "{kind}: {report}");
    }
}

/// `mount`/`umount`, through `sudo -n` when the tests do not run as root.
fn mount_command(program: &str) -> std::process::Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::process::Command::new(program)
    } else {
        let mut sudo = std::process::Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    }
}

/// Unmounts a test's file system when dropped, also when the test fails.
struct Mounted(std::path::PathBuf);

impl Mounted {
    /// Mounts a tmpfs of `size`, owned by the test's user, on `dir`; `None`
    /// where mounting is not allowed (neither root nor password-less sudo),
    /// which only CI refuses to accept.
    fn tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
        std::fs::create_dir_all(dir).unwrap();
        // SAFETY: getuid and getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let options = format!("size={size},mode=0755,uid={uid},gid={gid}");
        let out = mount_command("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Mounted(dir.to_path_buf())),
            other => {
                let why = format!("cannot mount a tmpfs on {}: {other:?}", dir.display());
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("SKIPPED (needs root or sudo to mount a small file system): {why}");
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let status = mount_command("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = mount_command("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_or_read_only_state_directory_holds_the_offset_back_and_recovers() {
    let dir = TempDir::new("state-dir-faults");
    let offsets = dir.join("offsets");
    // A file system of its own, small enough to fill.
    let Some(mount) = Mounted::tmpfs(&offsets, "256k") else {
        return;
    };
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 2);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", 100_000_000, 2_000, 1),
        );
    let address = spec.http_address().expect("http is on");
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let committed = || committed_seq(&offsets, "orders").unwrap_or(0);
    let ready = || http_request(&address, "GET", "/ready", &[]).map_or(0, |r| r.status);
    let failures = || {
        let text = http_request(&address, "GET", "/metrics", &[])
            .map_or_else(|_| String::new(), |r| r.body);
        metric_value(
            &text,
            r#"tributary_source_offset_commit_failures_total{plugin="datagen",source="orders"}"#,
        )
        .unwrap_or(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(60), || committed() > 0
            && ready() == 200),
        "no first commit:\n{}",
        daemon.log_text()
    );

    for (fault, on, off) in [("disk full", "fill", "drain"), ("read-only", "ro", "rw")] {
        let filler = offsets.join("filler");
        if on == "fill" {
            // Fill the file system up to the last byte (ENOSPC).
            let mut file = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 4096];
            while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
        } else {
            mount.remount(on);
        }
        let before = failures();
        assert!(
            wait_until(Duration::from_secs(30), || ready() == 503
                && failures() > before),
            "{fault}: /ready did not fail or no failed commit was counted:\n{}",
            daemon.log_text()
        );
        let reply = http_get(&address, "/ready");
        assert!(
            reply.body.contains("offset commits are failing"),
            "{fault}: {}",
            reply.body
        );
        // The offset does not advance while commits fail.
        let held = committed();
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(committed(), held, "{fault}: the offset moved");
        if off == "drain" {
            std::fs::remove_file(&filler).unwrap();
        } else {
            mount.remount(off);
        }
        // It recovers by itself once the file system takes writes again.
        assert!(
            wait_until(Duration::from_secs(30), || committed() > held
                && ready() == 200),
            "{fault}: no recovery:\n{}",
            daemon.log_text()
        );
    }
    assert!(daemon.is_running(), "{}", daemon.log_text());
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let last = committed();
    // Every committed record is in the topic, and nothing past the last
    // commit was lost by the faults.
    let report = consume_seqs(&broker.bootstrap(), "orders", last, Duration::from_secs(60));
    assert!(report.nothing_missing(), "{report}");
}

#[test]
fn a_source_moves_to_another_host_through_the_kafka_offset_store() {
    let mut seed = test_seed();
    for kind in brokers_under_test() {
        let dir = TempDir::new("host-move");
        let broker = Broker::start(kind, dir.path());
        let topic = broker.topic("moved");
        broker.create_topic(&topic, 4);
        let offsets_topic = broker.topic("tributary-offsets");
        let count = 30_000;
        // Two hosts: the same configuration, each its own state directory.
        let host = |name: &str| {
            let mut spec = ConfigSpec::new(&broker.bootstrap(), &dir.join(name)).drop_in(
                "orders.toml",
                datagen_source("orders", &topic, count, 5_000, 7),
            );
            spec.offsets_topic = Some(offsets_topic.clone());
            std::fs::create_dir_all(dir.join(name)).unwrap();
            write_config(&dir.join(name), &spec)
        };
        let (config_a, config_b) = (host("a"), host("b"));

        // Host A is killed half way.
        let mut a = Daemon::start(&config_a, &dir.join("a.log"));
        std::thread::sleep(pick(&mut seed, 2000, 3000));
        a.kill9();
        assert!(
            !dir.join("b/offsets").exists(),
            "host B must start with an empty state directory"
        );

        // Host B finishes the source from where A's commits left it.
        let out = run_until_finished(&config_b, Duration::from_secs(120));
        let text = output_text(&out);
        assert!(out.status.success(), "{kind}: {text}\nA:\n{}", a.log_text());
        assert!(
            text.contains("Resuming from committed checkpoints."),
            "{kind}: B started from the beginning:\n{text}"
        );
        let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(60));
        eprintln!("{kind}: {report}");
        assert!(report.nothing_missing(), "{kind}: {report}");
        // What B sent again is what A had not committed: far less than
        // everything A sent.
        assert!(report.duplicated < count / 2, "{kind}: {report}");

        // The offsets topic deleted while B is stopped: B refuses to start
        // its source from the beginning, and sends nothing.
        if kind == BrokerKind::Kafka {
            delete_topic_with_admin(&broker.bootstrap(), &offsets_topic);
            let out = run_until_finished(&config_b, Duration::from_secs(60));
            let text = output_text(&out);
            assert!(!out.status.success(), "{text}");
            assert!(
                text.contains(&offsets_topic) && text.contains("is gone"),
                "{text}"
            );
            let again = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(30));
            assert_eq!(
                again.total, report.total,
                "records were sent again: {again}"
            );
        }
    }
}

#[test]
fn offsets_move_from_the_file_store_to_kafka_with_export_and_import() {
    let dir = TempDir::new("offsets-tool");
    let broker = Broker::start(broker_of_record(), dir.path());
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 2);
    let count = 5_000;
    let source = datagen_source("orders", &topic, count, 0, 5);
    // The file store: run the source to its end.
    let file_dir = dir.join("file");
    let file_config = write_config(
        &file_dir,
        &ConfigSpec::new(&broker.bootstrap(), &file_dir).drop_in("orders.toml", &source),
    );
    let out = run_until_finished(&file_config, Duration::from_secs(60));
    assert!(out.status.success(), "{}", output_text(&out));
    let offsets = |config: &Path, args: &[&str]| {
        let mut all = vec!["offsets", "--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        run_cli(&all, Duration::from_secs(60))
    };
    let listed = offsets(&file_config, &["list"]);
    let text = output_text(&listed);
    // Partition `seq`, checkpoint 5000 as a little-endian u64.
    assert!(
        text.contains("orders: partition 736571 checkpoint 8813000000000000"),
        "{text}"
    );
    let exported = offsets(&file_config, &["export"]);
    assert!(exported.status.success(), "{}", output_text(&exported));
    let document = dir.join("offsets.json");
    std::fs::write(&document, &exported.stdout).unwrap();

    // The Kafka store on another host: import, then the source resumes
    // where the file store left it and sends nothing again.
    let kafka_dir = dir.join("kafka");
    let mut spec = ConfigSpec::new(&broker.bootstrap(), &kafka_dir)
        .with_http()
        .drop_in("orders.toml", &source);
    spec.offsets_topic = Some(broker.topic("tributary-offsets"));
    let address = spec.http_address().unwrap();
    let kafka_config = write_config(&kafka_dir, &spec);
    let imported = offsets(&kafka_config, &["import", document.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", output_text(&imported));
    let listed = offsets(&kafka_config, &["list"]);
    assert!(
        output_text(&listed).contains("orders: partition 736571 checkpoint 8813000000000000"),
        "{}",
        output_text(&listed)
    );
    let out = run_until_finished(&kafka_config, Duration::from_secs(60));
    let text = output_text(&out);
    assert!(
        out.status.success() && text.contains("at seq 5000"),
        "{text}"
    );
    let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(60));
    assert!(report.exactly_once(), "{report}");

    // A running source's offsets are not changed under it.
    let endless = datagen_source("orders", &topic, 100_000_000, 100, 5);
    let spec = spec.drop_in("orders.toml", endless);
    let kafka_config = write_config(&kafka_dir, &spec);
    let mut daemon = Daemon::start(&kafka_config, &dir.join("daemon.log"));
    assert!(
        wait_until(Duration::from_secs(60), || {
            http_request(&address, "GET", "/api/v1/sources/orders", &[])
                .is_ok_and(|r| r.json()["state"] == "running")
        }),
        "{}",
        daemon.log_text()
    );
    // The REST offsets API reads the Kafka store too.
    let api = http_get(&address, "/api/v1/sources/orders/offsets").json();
    assert_eq!(api["offsets"][0]["partition_hex"], "736571", "{api}");
    let refused = offsets(&kafka_config, &["reset", "--source", "orders"]);
    let text = output_text(&refused);
    assert!(
        !refused.status.success() && text.contains("pause it first"),
        "{text}"
    );
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let reset = offsets(&kafka_config, &["reset", "--source", "orders"]);
    assert!(reset.status.success(), "{}", output_text(&reset));
    let listed = offsets(&kafka_config, &["list"]);
    assert!(
        output_text(&listed).contains("orders: no committed checkpoint"),
        "{}",
        output_text(&listed)
    );
}
