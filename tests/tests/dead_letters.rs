//! Rows a plugin cannot read go to the source's dead-letter topic with
//! headers naming the error, and the offset passes a bad row only once its
//! dead-letter record is acknowledged: across crashes, every row is either
//! in the topic or in the dead-letter topic.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tributary_plugin_sdk::dead_letter::header;
use tributary_tests::*;

/// Every Nth row is unreadable.
const EVERY: u64 = 100;

/// A plugin directory with the faulty fixture under a loadable name.
fn plugin_dir(dir: &TempDir) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let from = plugin_lib("fixture_faulty");
    std::fs::copy(&from, plugins.join("libtributary_faulty.so"))
        .unwrap_or_else(|e| panic!("copy {} (build it first): {e}", from.display()));
    plugins
}

fn faulty_source(topic: &str, count: u64, dead_letter_topic: Option<&str>) -> String {
    let mut text = format!(
        "[[source]]\nname = \"rows\"\ntype = \"faulty\"\ntopic = {}\n\
         count = {count}\nrate_per_sec = 2000\ndead_letter_every = {EVERY}\n",
        toml_str(topic)
    );
    if let Some(topic) = dead_letter_topic {
        text.push_str(&format!("dead_letter_topic = {}\n", toml_str(topic)));
    }
    text
}

/// A consumed record's value and headers.
type Letter = (Vec<u8>, Vec<(String, String)>);

/// The value and headers of every record in `topic`, all partitions.
fn read_letters(bootstrap: &str, topic: &str, expected: usize) -> Vec<Letter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("dlq-headers-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) {
            let headers = msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (h.key.to_owned(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((msg.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

#[test]
fn dead_letters_survive_kill_9_and_carry_their_error() {
    let dir = TempDir::new("dead-letters");
    let broker = Broker::start(broker_of_record(), dir.path());
    let (topic, dlq) = (broker.topic("rows"), broker.topic("rows.dlq"));
    let count = 6_000;
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("rows.toml", faulty_source(&topic, count, Some(&dlq)));
    spec.plugin_dirs = vec![plugin_dir(&dir)];
    let config = write_config(dir.path(), &spec);
    let offsets = dir.join("offsets");

    // Two crashes mid-run, then a run to the end.
    for round in 0..2 {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        let target = (round + 1) * count / 3;
        let reached = wait_until(Duration::from_secs(60), || {
            committed_seq(&offsets, "rows").is_some_and(|s| s >= target)
        });
        assert!(reached, "no progress:\n{}", daemon.log_text());
        daemon.kill9();
    }
    let mut daemon = Daemon::start(&config, &dir.join("daemon-last.log"));
    let finished = wait_until(Duration::from_secs(60), || {
        committed_seq(&offsets, "rows") == Some(count)
    });
    assert!(finished, "did not finish:\n{}", daemon.log_text());
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    let bad: BTreeSet<u64> = (0..count).filter(|s| s % EVERY == EVERY - 1).collect();
    let good = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(60));
    let letters = consume_seqs(&broker.bootstrap(), &dlq, count, Duration::from_secs(20));
    let good_seqs: BTreeSet<u64> = good.records.iter().map(|r| r.seq).collect();
    let letter_seqs: BTreeSet<u64> = letters.records.iter().map(|r| r.seq).collect();
    assert!(
        good_seqs.is_disjoint(&bad),
        "an unreadable row reached the topic"
    );
    assert_eq!(letter_seqs, bad, "dead letters: {letters:?}");
    let missing: Vec<u64> = (0..count)
        .filter(|s| !good_seqs.contains(s) && !letter_seqs.contains(s))
        .take(20)
        .collect();
    assert!(missing.is_empty(), "missing: {missing:?}");

    let letters = read_letters(&broker.bootstrap(), &dlq, bad.len());
    assert!(letters.len() >= bad.len(), "{letters:?}");
    for (_, h) in &letters {
        let get = |k: &str| h.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get(header::ERROR_CLASS), Some("unreadable"), "{h:?}");
        assert_eq!(get(header::SOURCE), Some("rows"), "{h:?}");
        assert_eq!(get(header::FILE), Some("faulty"), "{h:?}");
        let line: u64 = get(header::LINE).and_then(|l| l.parse().ok()).unwrap();
        assert_eq!(line % EVERY, 0, "line {line} is not the line of a bad row");
        assert!(
            get(header::ERROR_MESSAGE).is_some_and(|m| m.contains("unreadable")),
            "{h:?}"
        );
    }
}

#[test]
fn dead_letters_without_a_topic_halt_the_source_before_them() {
    let dir = TempDir::new("dead-letters-no-topic");
    let broker = Broker::start_mock(1);
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("rows.toml", faulty_source("rows", 1_000, None));
    spec.plugin_dirs = vec![plugin_dir(&dir)];
    let config = write_config(dir.path(), &spec);
    let offsets = dir.join("offsets");
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let failed = wait_until(Duration::from_secs(30), || {
        daemon.log_text().contains("has no `dead_letter_topic`")
    });
    assert!(failed, "no clear error:\n{}", daemon.log_text());
    // Restarted with backoff, and failing again at the same row.
    let again = wait_until(Duration::from_secs(30), || {
        daemon
            .log_text()
            .matches("has no `dead_letter_topic`")
            .count()
            >= 2
    });
    assert!(again, "not restarted:\n{}", daemon.log_text());
    assert!(daemon.is_running(), "{}", daemon.log_text());
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // Rows 0..=98 are good; row 99 is unreadable and has nowhere to go, so
    // the offset never passes it.
    assert_eq!(committed_seq(&offsets, "rows"), Some(EVERY - 1));
}

#[test]
fn bad_csv_rows_reach_the_dead_letter_topic_with_file_and_line() {
    let dir = TempDir::new("dead-letters-csv");
    let broker = Broker::start(broker_of_record(), dir.path());
    let (topic, dlq) = (broker.topic("orders"), broker.topic("orders.dlq"));
    let rows = 1_000u64;
    let path = dir.join("orders.csv");
    let mut text = String::from("seq,total\n");
    let mut bad = Vec::new();
    for seq in 0..rows {
        // Line 1 is the header, so row `seq` is on line `seq + 2`.
        let row = match seq % 100 {
            37 => format!("{seq},not-a-number"),
            71 => format!("{seq},1.5,extra"),
            _ => format!("{seq},{}.25", seq * 3),
        };
        if seq % 100 == 37 || seq % 100 == 71 {
            bad.push((seq, row.clone()));
        }
        text.push_str(&row);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let source = format!(
        "[[source]]\nname = \"orders\"\ntype = \"csv\"\ntopic = {}\n\
         path = {}\non_error = \"dead_letter\"\ndead_letter_topic = {}\n\
         batch_rows = 64\n\n[source.columns]\nseq = \"int64\"\ntotal = \"float64\"\n",
        toml_str(&topic),
        toml_str(path.to_str().unwrap()),
        toml_str(&dlq)
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("orders.toml", source);
    let config = write_config(dir.path(), &spec);
    let mut daemon =
        Daemon::start_with_args(&config, &dir.join("daemon.log"), &["--exit-when-finished"]);
    let status = daemon.wait_exit(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        daemon.log_text()
    );

    // The daemon exited after committing, so everything is there; the read
    // times out only because the bad rows are (rightly) missing.
    let good = consume_seqs(&broker.bootstrap(), &topic, rows, Duration::from_secs(10));
    let bad_seqs: BTreeSet<u64> = bad.iter().map(|(s, _)| *s).collect();
    let good_seqs: BTreeSet<u64> = good.records.iter().map(|r| r.seq).collect();
    assert_eq!(good.duplicated, 0);
    assert_eq!(
        good_seqs,
        (0..rows)
            .filter(|s| !bad_seqs.contains(s))
            .collect::<BTreeSet<_>>()
    );
    let letters = read_letters(&broker.bootstrap(), &dlq, bad.len());
    assert_eq!(letters.len(), bad.len(), "{letters:?}");
    let file = path.to_str().unwrap();
    for (value, h) in &letters {
        let get = |k: &str| h.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let raw = String::from_utf8_lossy(value);
        let (seq, row) = bad
            .iter()
            .find(|(_, row)| *row == raw)
            .unwrap_or_else(|| panic!("unexpected dead letter {raw:?}"));
        assert_eq!(raw, *row);
        let line = (seq + 2).to_string();
        assert_eq!(get(header::LINE), Some(line.as_str()), "{h:?}");
        assert!(
            get(header::FILE).is_some_and(|f| f.ends_with(file) || f == file),
            "{h:?}"
        );
        let class = if seq % 100 == 37 {
            "parse_error"
        } else {
            "ragged_row"
        };
        assert_eq!(get(header::ERROR_CLASS), Some(class), "{h:?}");
        assert!(
            get(header::ERROR_MESSAGE).is_some_and(|m| !m.is_empty()),
            "{h:?}"
        );
        assert_eq!(get(header::SOURCE), Some("orders"), "{h:?}");
    }
}

/// A CSV file of 20 rows (batches of 5) whose row 10 is larger than Kafka takes; the
/// source's topic, dead-letter topic and daemon configuration. `limit`
/// says where the limit is: the producer's `message.max.bytes`, or the
/// topic's `max.message.bytes` on a real Kafka.
fn too_large_setup(
    dir: &TempDir,
    broker: &Broker,
    on_error: &str,
    exactly_once: bool,
    topic_limit: bool,
) -> (String, String, PathBuf) {
    let (topic, dlq) = (broker.topic("rows"), broker.topic("rows.dlq"));
    if topic_limit {
        create_topic_with_configs(
            &broker.bootstrap(),
            &topic,
            1,
            &[("max.message.bytes", "10000")],
        );
    } else {
        broker.create_topic(&topic, 1);
    }
    let path = dir.join("rows.csv");
    let mut text = String::from("seq,note\n");
    for i in 0..20 {
        let note = if i == 10 {
            "x".repeat(20_000)
        } else {
            format!("row {i}")
        };
        text.push_str(&format!("{i},{note}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let mut source = format!(
        "[[source]]\nname = \"rows\"\ntype = \"csv\"\ntopic = {}\npath = {}\n\
         on_error = {}\ndead_letter_topic = {}\nbatch_rows = 5\n",
        toml_str(&topic),
        toml_str(path.to_str().unwrap()),
        toml_str(on_error),
        toml_str(&dlq)
    );
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path());
    if exactly_once {
        source.push_str("delivery = \"exactly_once\"\n");
        spec.offsets_topic = Some(broker.topic("offsets"));
        spec = spec.kafka_key(&format!(
            "transactional_id_prefix = {}",
            toml_str(&broker.topic("tx"))
        ));
    }
    if !topic_limit {
        spec = spec.kafka_option("message.max.bytes", "10000");
    }
    let spec = spec.drop_in("rows.toml", source);
    (topic, dlq, write_config(dir.path(), &spec))
}

/// Runs the set-up to its end with `dead_letter`: the 19 other rows arrive
/// once (read_committed), row 10 is in the dead-letter topic once with
/// the reason and a preview, and the source finished well.
fn too_large_goes_to_dead_letters(
    label: &str,
    kind: BrokerKind,
    exactly_once: bool,
    topic_limit: bool,
) {
    let dir = TempDir::new(label);
    let broker = Broker::start(kind, dir.path());
    let (topic, dlq, config) =
        too_large_setup(&dir, &broker, "dead_letter", exactly_once, topic_limit);
    let out = run_until_finished(&config, Duration::from_secs(90));
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let report = consume_seqs(&broker.bootstrap(), &topic, 20, Duration::from_secs(10));
    let seqs: BTreeSet<u64> = report.records.iter().map(|r| r.seq).collect();
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(
        seqs,
        (0..20).filter(|s| *s != 10).collect::<BTreeSet<_>>(),
        "{report}"
    );
    let letters = read_letters(&broker.bootstrap(), &dlq, 2);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let (value, h) = &letters[0];
    let get = |k: &str| h.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get(header::ERROR_CLASS), Some("too_large"), "{h:?}");
    let setting = if topic_limit {
        "max.message.bytes"
    } else {
        "message.max.bytes"
    };
    assert!(
        get(header::ERROR_MESSAGE)
            .is_some_and(|m| m.contains("more than Kafka accepts") && m.contains(setting)),
        "{h:?}"
    );
    assert!(
        value.starts_with(b"{\"seq\":10,") && value.len() == 1024,
        "{}",
        String::from_utf8_lossy(value)
    );
}

#[test]
fn a_row_too_large_for_kafka_goes_to_the_dead_letter_topic_and_the_source_goes_on() {
    too_large_goes_to_dead_letters("dead-letters-too-large", broker_of_record(), false, false);
}

#[test]
fn a_row_too_large_for_the_topic_goes_to_the_dead_letter_topic_exactly_once() {
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    }
    too_large_goes_to_dead_letters("dead-letters-too-large-eos", BrokerKind::Kafka, true, true);
}

#[test]
fn a_row_too_large_fails_an_exactly_once_source_before_its_batch_and_repeats_nothing() {
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    }
    let dir = TempDir::new("too-large-fail-eos");
    let broker = Broker::start(BrokerKind::Kafka, dir.path());
    let (topic, _dlq, config) = too_large_setup(&dir, &broker, "fail", true, true);
    for round in 0..2 {
        let out = run_until_finished(&config, Duration::from_secs(90));
        let text = output_text(&out);
        assert!(!out.status.success(), "round {round}: {text}");
        assert!(
            text.contains("rows (failed)") && text.contains("max.message.bytes = 10000"),
            "{text}"
        );
        assert!(!text.contains("restarting"), "{text}");
    }
    // Batches of 5 rows: the two before the one holding row 10 are
    // committed once over both runs; nothing of that batch or after it is.
    let report = consume_seqs(&broker.bootstrap(), &topic, 10, Duration::from_secs(10));
    assert!(report.exactly_once(), "{report}");
    assert_eq!(report.max_seq, Some(9), "{report}");
}

#[test]
fn a_row_too_large_for_kafka_fails_its_source_without_a_resend_loop() {
    let dir = TempDir::new("too-large-fail");
    let broker = Broker::start_mock(1);
    let (topic, _dlq, config) = too_large_setup(&dir, &broker, "fail", false, false);
    let out = run_until_finished(&config, Duration::from_secs(60));
    let text = output_text(&out);
    // It used to restart with back-off forever, sending the rows before the
    // big one again at every restart.
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("rows (failed)"), "{text}");
    assert!(!text.contains("restarting"), "{text}");
    let report = consume_seqs(&broker.bootstrap(), &topic, 10, Duration::from_secs(10));
    assert!(report.exactly_once(), "{report}");
    assert_eq!(report.max_seq, Some(9), "{report}");
}
