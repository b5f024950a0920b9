//! Tests of the harness itself: if the oracle miscounts, every other test's
//! verdict is worthless.

use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use tributary_tests::{
    Broker, BrokerKind, KafkaBroker, TempDir, brokers_under_test, consume_seqs, produce_seqs,
};

/// Produces 0..1000 without 500 and with 7 twice, with a plain producer; the
/// oracle must report exactly that gap and that duplicate.
#[test]
fn oracle_counts_missing_and_duplicated_records() {
    for kind in brokers_under_test() {
        let dir = TempDir::new(&format!("oracle-{kind}"));
        let broker = Broker::start(kind, dir.path());
        let topic = broker.topic("seqs");
        broker.create_topic(&topic, 3);

        let seqs = (0..1000u64).filter(|&s| s != 500).chain([7]);
        produce_seqs(&broker.bootstrap(), &topic, seqs);

        // Seq 500 never arrives, so the oracle reads until the timeout.
        let report = consume_seqs(&broker.bootstrap(), &topic, 1000, Duration::from_secs(10));
        assert_eq!(report.missing, vec![500], "{kind}: {report}");
        assert_eq!(report.missing_count, 1, "{kind}: {report}");
        assert_eq!(report.duplicated, 1, "{kind}: {report}");
        assert_eq!(report.total, 1000, "{kind}: {report}");
        assert_eq!(report.seen_distinct, 999, "{kind}: {report}");
        assert_eq!(report.max_seq, Some(999), "{kind}: {report}");
        assert_eq!(
            report.unparsable + report.out_of_range,
            0,
            "{kind}: {report}"
        );
        assert!(report.timed_out, "{kind}: {report}");
        // The default partitioner hashes keys: one key, one partition.
        assert!(
            report.keys_split_across_partitions().is_empty(),
            "{kind}: {:?}",
            report.keys_split_across_partitions()
        );
        let partitions: std::collections::BTreeSet<i32> =
            report.records.iter().map(|r| r.partition).collect();
        assert!(
            partitions.len() > 1,
            "{kind}: all records in {partitions:?}"
        );
    }
}

/// A failing test must not leave a broker process behind: the Kafka handle
/// stops the process by PID while the panic unwinds.
#[test]
fn kafka_is_stopped_when_a_test_panics() {
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        return;
    }
    let dir = TempDir::new("kafka-panic");
    let mut bootstrap = String::new();
    let mut pid = 0;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let broker = KafkaBroker::start(&dir.join("kafka"), None);
        bootstrap = broker.bootstrap().to_owned();
        pid = broker.pid();
        assert!(TcpStream::connect(&bootstrap).is_ok(), "kafka listens");
        panic!("deliberate failure inside a test");
    }));
    assert!(result.is_err());
    assert!(
        TcpStream::connect(&bootstrap).is_err(),
        "kafka still listens on {bootstrap} after the panic"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "kafka pid {pid} still exists after the panic"
    );
    assert!(
        !dir.join("kafka").exists(),
        "the broker's data directory outlived its handle"
    );
}

/// Topics of two handles on the shared broker never collide, so tests in
/// one binary can run in parallel on it.
#[test]
fn handles_on_the_shared_kafka_get_topics_of_their_own() {
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        return;
    }
    let dir = TempDir::new("kafka-shared");
    let (a, b) = (
        Broker::start(BrokerKind::Kafka, dir.path()),
        Broker::start(BrokerKind::Kafka, dir.path()),
    );
    assert_eq!(a.bootstrap(), b.bootstrap(), "one broker per test binary");
    assert_ne!(a.topic("orders"), b.topic("orders"));
    a.create_topic(&a.topic("orders"), 1);
    b.create_topic(&b.topic("orders"), 1);
    produce_seqs(&a.bootstrap(), &a.topic("orders"), 0..10);
    let report = consume_seqs(
        &b.bootstrap(),
        &b.topic("orders"),
        0,
        Duration::from_secs(3),
    );
    assert_eq!(report.total, 0, "b sees a's records: {report}");
}
