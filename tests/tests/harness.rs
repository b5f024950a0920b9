//! Tests of the harness itself: if the oracle miscounts, every other test's
//! verdict is worthless.

use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use tributary_tests::{
    Broker, BrokerKind, TempDir, brokers_under_test, consume_seqs, produce_seqs,
};

/// Produces 0..1000 without 500 and with 7 twice, with a plain producer; the
/// oracle must report exactly that gap and that duplicate.
#[test]
fn oracle_counts_missing_and_duplicated_records() {
    for kind in brokers_under_test() {
        let dir = TempDir::new(&format!("oracle-{kind}"));
        let broker = Broker::start(kind, dir.path());
        broker.create_topic("seqs", 3);

        let seqs = (0..1000u64).filter(|&s| s != 500).chain([7]);
        produce_seqs(&broker.bootstrap(), "seqs", seqs);

        // Seq 500 never arrives, so the oracle reads until the timeout.
        let report = consume_seqs(&broker.bootstrap(), "seqs", 1000, Duration::from_secs(10));
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

/// A failing test must not leave a broker process behind: the Tansu handle
/// stops the process by PID while the panic unwinds.
#[test]
fn tansu_is_stopped_when_a_test_panics() {
    if !brokers_under_test().contains(&BrokerKind::Tansu) {
        return;
    }
    let dir = TempDir::new("tansu-panic");
    let mut bootstrap = String::new();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let broker = Broker::start(BrokerKind::Tansu, dir.path());
        bootstrap = broker.bootstrap();
        assert!(TcpStream::connect(&bootstrap).is_ok(), "tansu listens");
        panic!("deliberate failure inside a test");
    }));
    assert!(result.is_err());
    assert!(
        TcpStream::connect(&bootstrap).is_err(),
        "tansu still listens on {bootstrap} after the panic"
    );
}
