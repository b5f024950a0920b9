//! Broker faults: injected errors and outages longer than the delivery
//! timeout are retried or restarted, never skipped.

use std::sync::{Mutex, MutexGuard, PoisonError};
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

/// What an outage must have done for a test to prove something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Deliveries timed out during the outage (`message.timeout.ms` is 2 s),
    /// so the source restarted from its committed checkpoint.
    FailedDeliveries,
    /// Nothing in particular: the producer may ride through it with retries
    /// (librdkafka's default delivery timeout of 5 minutes).
    Anything,
}

/// Runs `count` datagen records (into `topic`, which must exist) through
/// the daemon, calls `outage` once the first offset is committed, and checks
/// what [`Expect`] says of the outage, that the daemon lived on, and that
/// every record reached the topic.
///
/// Every record before every offset ever committed must be in the topic: had
/// a commit passed an undelivered record, the restart would resume after it
/// and the record would be missing.
#[allow(clippy::too_many_arguments)]
fn survives_outage(
    broker: &Broker,
    dir: &TempDir,
    topic: &str,
    count: u64,
    rate: u64,
    extra: &[(&str, &str)],
    expect: Expect,
    outage: impl FnOnce(),
) -> SeqReport {
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path());
    if expect == Expect::FailedDeliveries {
        // Deliveries give up quickly, so an outage turns into failed
        // delivery reports within the test instead of after 5 minutes.
        spec = spec.kafka_option("message.timeout.ms", "2000");
    }
    for (key, value) in extra {
        spec = spec.kafka_option(key, value);
    }
    let spec = spec.drop_in(
        "orders.toml",
        datagen_source("orders", topic, count, rate, 9),
    );
    let config = write_config(dir.path(), &spec);
    let offsets = dir.join("offsets");
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    wait_for("a first commit", Duration::from_secs(30), || {
        committed_seq(&offsets, "orders").is_some_and(|s| s > 0)
    });
    let before = committed_seq(&offsets, "orders").unwrap_or(0);
    outage();
    let after = committed_seq(&offsets, "orders").unwrap_or(0);
    // Records time out while the broker is away, but the failed run is
    // logged once the source has stopped, which can be just after the
    // broker is back.
    let failed = Instant::now();
    let deadline = failed + Duration::from_secs(30);
    let failure = format!("delivery to topic `{topic}` failed");
    while expect == Expect::FailedDeliveries && !daemon.log_text().contains(&failure) {
        assert!(
            Instant::now() < deadline,
            "the outage did not fail any delivery, so the test proved nothing:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("failure logged {:?} after the outage", failed.elapsed());
    assert!(daemon.is_running(), "daemon died:\n{}", daemon.log_text());

    wait_for("the source to finish", Duration::from_secs(120), || {
        committed_seq(&offsets, "orders") == Some(count)
    });
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let report = consume_seqs(&broker.bootstrap(), topic, count, Duration::from_secs(60));
    eprintln!(
        "{}: committed {before} before the outage, {after} after it; {report}",
        broker.kind()
    );
    assert!(report.nothing_missing(), "{report}");
    assert_eq!(report.out_of_range, 0, "{report}");
    report
}

#[test]
fn broker_errors_never_skip_records() {
    let dir = TempDir::new("broker-errors");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 8);
    // One request in flight per connection. librdkafka's idempotent
    // producer treats the success of a later pipelined batch as proof that
    // an earlier batch with an uncertain outcome was written ("implicitly
    // acked by subsequent batch success"). That holds on a real broker,
    // which rejects a batch whose sequence number skips ahead, but the mock
    // cluster checks sequence numbers only for transactional producers: it
    // appends the later batch, and the earlier one, acknowledged without
    // being written, is lost. With pipelining this test lost 2-4 records in
    // about a third of runs, each time with exactly one such implicit
    // acknowledgement covering exactly the missing records (librdkafka
    // `debug=eos`), and none in runs that lost nothing. The daemon keeps
    // librdkafka's default of 5 in flight; real brokers are tested by
    // `broker_outage_never_skips_records`.
    let no_pipelining = [("max.in.flight.requests.per.connection", "1")];
    let expect = Expect::FailedDeliveries;
    survives_outage(
        &broker,
        &dir,
        "orders",
        40_000,
        4_000,
        &no_pipelining,
        expect,
        || {
            // Retriable produce errors: librdkafka retries them.
            let mock = broker.mock();
            let mut errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 30];
            errors.extend([RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 10]);
            errors.extend([RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 10]);
            mock.request_errors(RDKafkaApiKey::Produce, &errors);
            std::thread::sleep(Duration::from_secs(2));
            // Then the broker goes away for longer than the delivery timeout.
            mock.broker_down(1).expect("broker down");
            std::thread::sleep(Duration::from_secs(6));
            mock.broker_up(1).expect("broker up");
        },
    );
}

/// The tests below stop, freeze or restart the binary's Apache Kafka, so
/// they take turns on it (no other test in this binary uses it).
fn exclusive_kafka(dir: &TempDir) -> Option<(MutexGuard<'static, ()>, Broker)> {
    static TURN: Mutex<()> = Mutex::new(());
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        return None;
    }
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    Some((turn, Broker::start(BrokerKind::Kafka, dir.path())))
}

#[test]
fn broker_outage_never_skips_records() {
    // The broker process stops answering (SIGSTOP) while records are in
    // flight, for longer than the delivery timeout, then comes back.
    let dir = TempDir::new("broker-outage");
    let Some((_turn, broker)) = exclusive_kafka(&dir) else {
        return;
    };
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let kafka = broker.kafka();
    let expect = Expect::FailedDeliveries;
    survives_outage(&broker, &dir, &topic, 20_000, 2_000, &[], expect, || {
        kafka.pause();
        std::thread::sleep(Duration::from_secs(6));
        kafka.resume();
    });
}

#[test]
fn broker_restart_while_producing_loses_nothing() {
    // A clean broker restart on the same log directory, as in a rolling
    // upgrade of a one-node cluster: the producer waits through it.
    let dir = TempDir::new("broker-restart");
    let Some((_turn, broker)) = exclusive_kafka(&dir) else {
        return;
    };
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let kafka = broker.kafka();
    // The restart must stay within the delivery timeout, as it does with
    // librdkafka's default of 5 minutes: the tests' 10 s is shorter than a
    // JVM restart on a loaded machine, and a record that times out is
    // resent from the checkpoint, which repeats the ones after it.
    let report = survives_outage(
        &broker,
        &dir,
        &topic,
        30_000,
        3_000,
        &[("message.timeout.ms", "300000")],
        Expect::Anything,
        || {
            let pid = kafka.pid();
            kafka.stop();
            std::thread::sleep(Duration::from_secs(2));
            kafka.start_again();
            assert_ne!(pid, kafka.pid(), "a new broker process");
        },
    );
    // The idempotent producer keeps its sequence numbers across the restart
    // and the broker restores its producer state from the log: nothing is
    // written twice.
    assert_eq!(report.duplicated, 0, "{report}");
}

#[test]
fn broker_restarts_between_daemon_runs_lose_and_repeat_nothing() {
    // The daemon stops cleanly, the broker restarts, the daemon resumes:
    // the committed checkpoint and the log agree.
    let dir = TempDir::new("broker-restart-rounds");
    let Some((_turn, broker)) = exclusive_kafka(&dir) else {
        return;
    };
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let kafka = broker.kafka();
    let count = 30_000;
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
        "orders.toml",
        datagen_source("orders", &topic, count, 10_000, 3),
    );
    let config = write_config(dir.path(), &spec);
    let offsets = dir.join("offsets");
    for round in 0..3 {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        let target = (round + 1) * count / 4;
        wait_for("progress", Duration::from_secs(60), || {
            committed_seq(&offsets, "orders").is_some_and(|s| s >= target)
        });
        let status = daemon.sigterm_and_wait(Duration::from_secs(30));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        kafka.stop();
        kafka.start_again();
    }
    let mut daemon = Daemon::start(&config, &dir.join("daemon-last.log"));
    wait_for("the source to finish", Duration::from_secs(120), || {
        committed_seq(&offsets, "orders") == Some(count)
    });
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(60));
    assert!(report.exactly_once(), "{report}");
}

#[test]
fn broker_restart_in_the_middle_of_transactions_loses_and_repeats_nothing() {
    // An exactly-once source while the broker stops and starts again: the
    // open transaction is aborted or committed whole, and the source goes
    // on from its last commit.
    let dir = TempDir::new("eos-broker-restart");
    let Some((_turn, broker)) = exclusive_kafka(&dir) else {
        return;
    };
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let kafka = broker.kafka();
    let count = 30_000;
    let source = format!(
        "{}delivery = \"exactly_once\"\ntransaction_interval_ms = 200\n",
        datagen_source("orders", &topic, count, 3_000, 9)
    );
    let prefix = format!(
        "transactional_id_prefix = {}",
        toml_str(&broker.topic("tx"))
    );
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .kafka_key(&prefix)
        .drop_in("orders.toml", source);
    spec.offsets_topic = Some(broker.topic("offsets"));
    let address = spec.http_address().unwrap();
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let state = || {
        http_request(&address, "GET", "/api/v1/sources/orders", &[])
            .map_or(serde_json::Value::Null, |r| r.json())
    };
    wait_for("a few commits", Duration::from_secs(60), || {
        state()["offset_commits"].as_u64() > Some(3)
    });
    let pid = kafka.pid();
    kafka.stop();
    std::thread::sleep(Duration::from_secs(2));
    kafka.start_again();
    assert_ne!(pid, kafka.pid(), "a new broker process");
    wait_for("the source to finish", Duration::from_secs(180), || {
        state()["state"] == "finished"
    });
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(120));
    eprintln!("{report}");
    assert!(report.exactly_once(), "{report}");
}
