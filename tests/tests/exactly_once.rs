//! Exactly-once delivery on a real Apache Kafka: records and the checkpoint
//! after them commit in one transaction, so a `kill -9`, a second daemon
//! with the same source, or a move to another host neither loses nor
//! repeats a record for a `read_committed` consumer (the oracle).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tributary_tests::*;

/// The shared Apache Kafka, or `None` where it cannot run (then these
/// tests have nothing to test: the mock has no transactions worth proving).
fn kafka(dir: &TempDir) -> Option<Broker> {
    brokers_under_test()
        .contains(&BrokerKind::Kafka)
        .then(|| Broker::start(BrokerKind::Kafka, dir.path()))
}

/// One host's configuration: the Kafka offset store on `offsets_topic`,
/// state in `dir/<host>`, `source` as its one drop-in, and its HTTP address.
struct Host {
    config: PathBuf,
    http: String,
}

fn host(broker: &Broker, dir: &Path, name: &str, offsets_topic: &str, source: &str) -> Host {
    let state = dir.join(name);
    std::fs::create_dir_all(&state).unwrap();
    // Hosts of one test share transactional ids (that is what a host move
    // or a second daemon is); tests running beside it on the same Kafka
    // must not.
    let prefix = format!(
        "transactional_id_prefix = {}",
        toml_str(&broker.topic("tx"))
    );
    let mut spec = ConfigSpec::new(&broker.bootstrap(), &state)
        .with_http()
        .kafka_key(&prefix)
        .drop_in("source.toml", source);
    spec.offsets_topic = Some(offsets_topic.to_owned());
    Host {
        config: write_config(&state, &spec),
        http: spec.http_address().expect("http is on"),
    }
}

/// The API's view of source `orders` on `address`, or `Null` while the
/// daemon does not answer.
fn orders(address: &str) -> serde_json::Value {
    http_request(address, "GET", "/api/v1/sources/orders", &[])
        .map_or(serde_json::Value::Null, |r| r.json())
}

/// Two hosts configured with the same exactly-once datagen source of
/// `count` records at `rate` per second, sharing an offsets topic; and the
/// source's topic.
fn two_hosts(broker: &Broker, dir: &Path, count: u64, rate: u64) -> (String, Host, Host) {
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 4);
    let offsets_topic = broker.topic("offsets");
    let source = exactly_once_datagen(&topic, count, rate);
    let a = host(broker, dir, "a", &offsets_topic, &source);
    let b = host(broker, dir, "b", &offsets_topic, &source);
    (topic, a, b)
}

/// What a read_committed reader finds in `topic`: every one of `count`
/// records, once.
fn assert_exactly_once(broker: &Broker, topic: &str, count: u64) {
    let report = consume_seqs(&broker.bootstrap(), topic, count, Duration::from_secs(120));
    eprintln!("{report}");
    assert!(report.exactly_once(), "{report}");
}

fn exactly_once_datagen(topic: &str, count: u64, rate: u64) -> String {
    format!(
        "{}delivery = \"exactly_once\"\ntransaction_interval_ms = 200\n",
        datagen_source("orders", topic, count, rate, 11)
    )
}

#[test]
fn exactly_once_needs_the_kafka_offset_store() {
    let dir = TempDir::new("eos-file-store");
    let spec = ConfigSpec::new("127.0.0.1:9", dir.path())
        .drop_in("orders.toml", exactly_once_datagen("orders", 10, 10));
    let config = write_config(dir.path(), &spec);
    let text = validate_refuses(&config);
    assert!(
        text.contains("conf.d/orders.toml:11")
            && text.contains("source[orders].delivery")
            && text.contains("store = \"kafka\""),
        "{text}"
    );
}

#[test]
fn kill_9_every_few_seconds_repeats_nothing_for_datagen() {
    let dir = TempDir::new("eos-kill-9");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let mut seed = test_seed();
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 4);
    let offsets_topic = broker.topic("offsets");
    let count = 60_000;
    let config = host(
        &broker,
        dir.path(),
        "a",
        &offsets_topic,
        &exactly_once_datagen(&topic, count, 10_000),
    )
    .config;
    for round in 0..10 {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        std::thread::sleep(pick(&mut seed, 1000, 3000));
        daemon.kill9();
    }
    let out = run_until_finished(&config, Duration::from_secs(180));
    assert!(out.status.success(), "{}", output_text(&out));
    assert_exactly_once(&broker, &topic, count);
}

#[test]
fn a_second_daemon_with_the_same_source_fences_the_first_for_good() {
    let dir = TempDir::new("eos-fenced");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let count = 60_000;
    let (topic, a, b) = two_hosts(&broker, dir.path(), count, 2_000);
    let mut daemon_a = Daemon::start(&a.config, &dir.join("a.log"));
    assert!(
        wait_until(Duration::from_secs(60), || {
            orders(&a.http)["offset_commits"].as_u64() > Some(2)
        }),
        "A did not commit:\n{}",
        daemon_a.log_text()
    );
    // B starts the same source: its producer takes the transactional id.
    let mut daemon_b = Daemon::start(&b.config, &dir.join("b.log"));
    let mut view = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(60), || {
            view = orders(&a.http);
            view["state"] == "failed"
        }),
        "A was not fenced: {view}\n{}",
        daemon_a.log_text()
    );
    let error = view["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("fenced") && error.contains("orders`"),
        "{view}"
    );
    // For a minute: A stays stopped, B runs to the end, nobody restarts.
    let watch = std::time::Instant::now();
    while watch.elapsed() < Duration::from_secs(60) {
        let (va, vb) = (orders(&a.http), orders(&b.http));
        assert_eq!(va["state"], "failed", "A came back: {va}");
        assert_eq!(va["restarts"], 0, "{va}");
        // B may still be starting (reading the offsets topic) when A
        // notices it was fenced; it must never fail or restart.
        assert!(
            matches!(
                vb["state"].as_str(),
                Some("starting" | "running" | "finished")
            ),
            "B: {vb}\n{}",
            daemon_b.log_text()
        );
        assert_eq!(vb["restarts"], 0, "{vb}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(orders(&b.http)["state"], "finished", "B did not finish");
    let ready = http_get(&a.http, "/ready");
    assert_eq!(ready.status, 503, "{}", ready.body);
    for daemon in [&mut daemon_a, &mut daemon_b] {
        let status = daemon.sigterm_and_wait(Duration::from_secs(30));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
    }
    assert_exactly_once(&broker, &topic, count);
}

#[test]
fn a_source_moves_to_another_host_exactly_once() {
    let dir = TempDir::new("eos-host-move");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let mut seed = test_seed();
    let count = 40_000;
    let (topic, a, b) = two_hosts(&broker, dir.path(), count, 8_000);
    let mut daemon_a = Daemon::start(&a.config, &dir.join("a.log"));
    std::thread::sleep(pick(&mut seed, 2000, 3000));
    daemon_a.kill9();
    let out = run_until_finished(&b.config, Duration::from_secs(120));
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Resuming from committed checkpoints."),
        "{text}"
    );
    assert_exactly_once(&broker, &topic, count);
}

#[test]
fn kill_9_every_few_seconds_repeats_nothing_for_a_csv_spool_directory() {
    let dir = TempDir::new("eos-spool");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let mut seed = test_seed();
    let topic = broker.topic("spool");
    broker.create_topic(&topic, 4);
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    // 40 files of 1000 rows, dropped at once; each run reads a few.
    let (files, rows) = (40u64, 1000u64);
    for k in 0..files {
        let mut text = String::from("seq,customer_id,note\n");
        for seq in k * rows..(k + 1) * rows {
            text.push_str(&format!("{seq},c-{},\"row {seq}, quoted\"\n", seq % 13));
        }
        let tmp = spool.join(format!(".orders-{k:03}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, spool.join(format!("orders-{k:03}.csv"))).unwrap();
    }
    let source = format!(
        "[[source]]\nname = \"orders\"\ntype = \"csv\"\ntopic = {}\nkey = \"customer_id\"\n\
         delivery = \"exactly_once\"\ntransaction_interval_ms = 200\n\
         spool_dir = {}\npattern = \"*.csv\"\nsettle_ms = 0\nscan_interval_ms = 50\n\
         batch_rows = 100\n\n[source.columns]\nseq = \"int64\"\n",
        toml_str(&topic),
        toml_str(spool.to_str().unwrap())
    );
    let config = host(&broker, dir.path(), "a", &broker.topic("offsets"), &source).config;
    for round in 0..10 {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        std::thread::sleep(pick(&mut seed, 1000, 2500));
        daemon.kill9();
    }
    let mut daemon = Daemon::start(&config, &dir.join("daemon-last.log"));
    let finished = spool.join("finished");
    assert!(
        wait_until(Duration::from_secs(180), || {
            daemon.log_text().contains("Daemon running.")
                && std::fs::read_dir(&finished).map_or(0, |d| d.count()) == files as usize
        }),
        "not every file was read:\n{}",
        daemon.log_text()
    );
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_exactly_once(&broker, &topic, files * rows);
}
