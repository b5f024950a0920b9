//! Broker faults injected with the mock cluster: retried or restarted,
//! never skipped.

use std::time::{Duration, Instant};

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tributary_tests::*;

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn broker_errors_never_skip_records() {
    let dir = TempDir::new("broker-errors");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 8);
    let count = 40_000;
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        // Deliveries give up quickly, so an outage turns into failed
        // delivery reports within the test instead of after 5 minutes.
        .kafka_option("message.timeout.ms", "2000")
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", count, 4_000, 9),
        );
    let config = write_config(dir.path(), &spec);
    let offsets = dir.join("offsets");
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    wait_for("a first commit", Duration::from_secs(30), || {
        committed_seq(&offsets, "orders").is_some_and(|s| s > 0)
    });

    // Retriable produce errors: librdkafka retries them; nothing may be lost.
    let mock = broker.mock();
    let mut errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 30];
    errors.extend([RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 10]);
    errors.extend([RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 10]);
    mock.request_errors(RDKafkaApiKey::Produce, &errors);
    std::thread::sleep(Duration::from_secs(2));

    // The broker goes away for longer than the delivery timeout: records in
    // flight fail, and the committed offset must not move past them.
    let before_outage = committed_seq(&offsets, "orders").unwrap_or(0);
    mock.broker_down(1).expect("broker down");
    let outage = Instant::now();
    let mut during_outage = Vec::new();
    while outage.elapsed() < Duration::from_secs(6) {
        during_outage.push(committed_seq(&offsets, "orders").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(200));
    }
    mock.broker_up(1).expect("broker up");
    let log = daemon.log_text();
    assert!(
        log.contains("delivery to topic `orders` failed"),
        "the outage did not fail any delivery, so the test proved nothing:\n{log}"
    );
    assert!(daemon.is_running(), "daemon died:\n{log}");

    wait_for("the source to finish", Duration::from_secs(120), || {
        committed_seq(&offsets, "orders") == Some(count)
    });
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    // Every record before every offset ever committed is in the topic: had
    // a commit passed an undelivered record, the restart would resume after
    // it and the record would be missing here.
    let report = consume_seqs(
        &broker.bootstrap(),
        "orders",
        count,
        Duration::from_secs(60),
    );
    let max_during = during_outage.iter().max().copied().unwrap_or(0);
    eprintln!("committed before outage {before_outage}, at most {max_during} during it; {report}");
    assert!(report.nothing_missing(), "{report}");
    assert_eq!(report.out_of_range, 0, "{report}");
}

#[test]
fn broker_outage_never_skips_records() {
    // The real broker process stops answering (SIGSTOP) while records are
    // in flight, for longer than the delivery timeout, then comes back.
    if !brokers_under_test().contains(&BrokerKind::Tansu) {
        return;
    }
    let dir = TempDir::new("broker-outage");
    let broker = Broker::start_tansu(dir.path());
    broker.create_topic("orders", 3);
    let count = 20_000;
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .kafka_option("message.timeout.ms", "2000")
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", count, 2_000, 4),
        );
    let config = write_config(dir.path(), &spec);
    let offsets = dir.join("offsets");
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    wait_for("a first commit", Duration::from_secs(30), || {
        committed_seq(&offsets, "orders").is_some_and(|s| s > 0)
    });
    let Broker::Tansu(tansu) = &broker else {
        unreachable!("started as Tansu above");
    };
    tansu.pause();
    let before_outage = committed_seq(&offsets, "orders").unwrap_or(0);
    std::thread::sleep(Duration::from_secs(6));
    let during_outage = committed_seq(&offsets, "orders").unwrap_or(0);
    tansu.resume();
    let log = daemon.log_text();
    assert!(
        log.contains("delivery to topic `orders` failed"),
        "the outage did not fail any delivery, so the test proved nothing:\n{log}"
    );
    assert!(daemon.is_running(), "daemon died:\n{log}");
    wait_for("the source to finish", Duration::from_secs(120), || {
        committed_seq(&offsets, "orders") == Some(count)
    });
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let report = consume_seqs(
        &broker.bootstrap(),
        "orders",
        count,
        Duration::from_secs(60),
    );
    eprintln!(
        "tansu outage: committed {before_outage} before, {during_outage} at its end; {report}"
    );
    assert!(report.nothing_missing(), "{report}");
    assert_eq!(report.out_of_range, 0, "{report}");
}
