//! Configuration reloads while the daemon runs: a drop-in added, changed,
//! broken and removed in `conf.d/`, and SIGHUP for the main file. Sources
//! the change does not touch keep running and lose and repeat nothing;
//! every record is counted by the oracle.

use std::time::Duration;

use tributary_tests::*;

fn metrics(address: &str) -> String {
    http_get(address, "/metrics").body
}

fn source_names(address: &str) -> Vec<String> {
    http_get(address, "/api/v1/sources").json()["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The state of source `name`; `None` if there is no such source (or the
/// endpoint is not up yet).
fn source_state(address: &str, name: &str) -> Option<String> {
    let reply = http_request(address, "GET", &format!("/api/v1/sources/{name}"), &[]).ok()?;
    (reply.status == 200).then(|| {
        reply.json()["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    })
}

/// Lines of the log about `source` containing `needle`.
fn log_count(daemon: &Daemon, source: &str, needle: &str) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|l| l.contains(&format!("source={source} ")) && l.contains(needle))
        .count()
}

#[test]
fn drop_in_changes_apply_without_touching_other_sources() {
    let dir = TempDir::new("reload-drop-in");
    let broker = Broker::start(broker_of_record(), dir.path());
    let (steady, added) = (broker.topic("steady"), broker.topic("added"));
    for topic in [&steady, &added] {
        broker.create_topic(topic, 4);
    }
    let steady_count = 40_000;
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .drop_in(
            "steady.toml",
            datagen_source("steady", &steady, steady_count, 2_000, 1),
        );
    let config = write_config(dir.path(), &spec);
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let address = spec.http_address().expect("HTTP is on");
    let offsets = dir.join("offsets");
    assert!(
        wait_until(Duration::from_secs(60), || {
            committed_seq(&offsets, "steady").is_some_and(|s| s > 0)
        }),
        "{}",
        daemon.log_text()
    );
    let pid = daemon.pid();

    // 1. A new drop-in: its source starts, in the same process.
    let added_count = 6_000;
    let conf_d = dir.join("conf.d");
    let write = |name: &str, text: &str| {
        let tmp = conf_d.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, conf_d.join(name)).unwrap();
    };
    write(
        "added.toml",
        &datagen_source("added", &added, added_count, 1_500, 2),
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            committed_seq(&offsets, "added").is_some_and(|s| s > 0)
        }),
        "the added source did not start:\n{}",
        daemon.log_text()
    );

    // 2. A change to it: that source alone drains and restarts.
    write(
        "added.toml",
        &datagen_source("added", &added, added_count, 3_000, 2),
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            daemon.log_text().contains("changed=[\"added\"]")
        }),
        "the change was not applied:\n{}",
        daemon.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            committed_seq(&offsets, "added") == Some(added_count)
        }),
        "{}",
        daemon.log_text()
    );

    // 3. A broken drop-in: rejected with file, line and key; nothing stops.
    write(
        "broken.toml",
        "[[source]]\nname = \"broken\"\ntype = \"datagen\"\ntopic = \"broken\"\nrate_per_sec = \"fast\"\n",
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            metric_value(&metrics(&address), "tributary_reload_failures_total") == Some(1.0)
        }),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(
        log.lines().any(|l| l.contains("Reload rejected")
            && l.contains("broken.toml:5:")
            && l.contains("rate_per_sec")),
        "the rejection does not name file, line and key:\n{log}"
    );
    assert!(!source_names(&address).contains(&"broken".to_owned()));
    let ready = http_get(&address, "/ready").json();
    assert!(
        ready["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("broken.toml")),
        "{ready}"
    );
    std::fs::remove_file(conf_d.join("broken.toml")).unwrap();

    // 4. Removing a drop-in stops its source cleanly.
    std::fs::remove_file(conf_d.join("added.toml")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || {
            !source_names(&address).contains(&"added".to_owned())
        }),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("Source removed by reload."));
    assert!(
        !metrics(&address).contains("source=\"added\""),
        "a removed source is still exported"
    );

    // The untouched source ran through all of it: one start, never
    // stopped, and the oracle finds every record exactly once.
    assert!(
        wait_until(Duration::from_secs(120), || {
            committed_seq(&offsets, "steady") == Some(steady_count)
        }),
        "{}",
        daemon.log_text()
    );
    assert_eq!(daemon.pid(), pid);
    assert_eq!(log_count(&daemon, "steady", "Source started."), 1);
    assert_eq!(log_count(&daemon, "steady", "Source stopped."), 0);
    let reloads = metric_value(&metrics(&address), "tributary_reloads_total").unwrap_or(0.0);
    assert!(reloads >= 3.0, "reloads applied: {reloads}");
    for (topic, count) in [(&steady, steady_count), (&added, added_count)] {
        let report = consume_seqs(&broker.bootstrap(), topic, count, Duration::from_secs(60));
        assert!(report.exactly_once(), "{topic}: {report}");
    }
}

#[test]
fn sighup_reloads_the_main_file() {
    let dir = TempDir::new("reload-sighup");
    let broker = Broker::start_mock(1);
    for topic in ["first", "second"] {
        broker.create_topic(topic, 4);
    }
    let count = 4_000;
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .drop_in(
            "first.toml",
            datagen_source("first", "first", count, 2_000, 1),
        );
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let address = spec.http_address().expect("HTTP is on");
    assert!(
        wait_until(Duration::from_secs(60), || {
            source_state(&address, "first").as_deref() == Some("running")
        }),
        "{}",
        daemon.log_text()
    );
    // A source in the main file, which the drop-in watcher does not look
    // at: only SIGHUP can bring it in.
    // Only the main file is rewritten, so the watcher sees no change.
    spec.extra = datagen_source("second", "second", count, 2_000, 2);
    let tmp = dir.join("tributary.toml.tmp");
    std::fs::write(&tmp, spec.main_text()).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let reply = http_get(&address, "/api/v1/sources/second");
    assert_eq!(reply.status, 404, "started without SIGHUP: {}", reply.body);
    daemon.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(60), || {
            source_state(&address, "second").as_deref() == Some("finished")
        }),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.is_running());
    assert!(
        wait_until(Duration::from_secs(60), || {
            source_state(&address, "first").as_deref() == Some("finished")
        }),
        "{}",
        daemon.log_text()
    );
    assert_eq!(log_count(&daemon, "first", "Source started."), 1);
    for topic in ["first", "second"] {
        let report = consume_seqs(&broker.bootstrap(), topic, count, Duration::from_secs(60));
        assert!(report.exactly_once(), "{topic}: {report}");
    }
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
