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

/// A config for one host: the Kafka offset store on `offsets_topic`, state
/// in `dir/<host>`, and `source` as its one drop-in.
fn host_config(
    broker: &Broker,
    dir: &Path,
    host: &str,
    offsets_topic: &str,
    source: &str,
) -> PathBuf {
    let state = dir.join(host);
    std::fs::create_dir_all(&state).unwrap();
    let mut spec = ConfigSpec::new(&broker.bootstrap(), &state).drop_in("source.toml", source);
    spec.offsets_topic = Some(offsets_topic.to_owned());
    spec.http_listen = format!("127.0.0.1:{}", free_port());
    write_config(&state, &spec)
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
    let spec = ConfigSpec::new("127.0.0.1:9", dir.path()).drop_in(
        "orders.toml",
        exactly_once_datagen("orders", 10, 10),
    );
    let config = write_config(dir.path(), &spec);
    let out = run_cli(
        &["validate".as_ref(), "--config".as_ref(), config.as_os_str()],
        Duration::from_secs(30),
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
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
    let config = host_config(
        &broker,
        dir.path(),
        "a",
        &offsets_topic,
        &exactly_once_datagen(&topic, count, 10_000),
    );
    for round in 0..10 {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        std::thread::sleep(pick(&mut seed, 1000, 3000));
        daemon.kill9();
    }
    let out = run_until_finished(&config, Duration::from_secs(180));
    assert!(out.status.success(), "{}", output_text(&out));
    let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(120));
    eprintln!("{report}");
    assert!(report.exactly_once(), "{report}");
}
