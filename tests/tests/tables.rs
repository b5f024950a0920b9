//! The table sources (`csv`, `parquet`, `arrow`) through the real daemon
//! into a real broker: typed rows land as typed JSON, a spool directory
//! loses nothing across `kill -9` and repeats nothing across clean stops,
//! files leave the spool only once their rows are committed, and a file
//! still being written is not read.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::{Value, json};
use tributary_tests::*;

/// Rows per spool file.
const ROWS_PER_FILE: u64 = 200;
/// Files dropped into the spool.
const FILES: u64 = 50;

/// The CSV text of spool file `k`: rows `k * ROWS_PER_FILE ..`, with
/// quoted fields holding the delimiter and a line break.
fn orders_csv(k: u64) -> String {
    let mut s = String::from("seq,customer_id,total,note\r\n");
    for seq in k * ROWS_PER_FILE..(k + 1) * ROWS_PER_FILE {
        s.push_str(&format!(
            "{seq},c-{},{}.{:02},\"order {seq}, \"\"rush\"\"\nsecond line\"\r\n",
            seq % 13,
            seq % 500,
            seq % 100
        ));
    }
    s
}

fn file_name(k: u64) -> String {
    format!("orders-{k:03}.csv")
}

fn seqs_of(name: &str) -> std::ops::Range<u64> {
    let k: u64 = name
        .trim_start_matches("orders-")
        .trim_end_matches(".csv")
        .parse()
        .unwrap_or_else(|_| panic!("unexpected file {name}"));
    k * ROWS_PER_FILE..(k + 1) * ROWS_PER_FILE
}

fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn spool_source(spool: &Path, topic: &str, settle_ms: u64) -> String {
    format!(
        "[[source]]\n\
         name = \"spool\"\n\
         type = \"csv\"\n\
         topic = \"{topic}\"\n\
         key = \"customer_id\"\n\
         format = \"json\"\n\
         spool_dir = {}\n\
         pattern = \"*.csv\"\n\
         settle_ms = {settle_ms}\n\
         scan_interval_ms = 50\n\
         batch_rows = 64\n\
         \n\
         [source.columns]\n\
         seq = \"int64\"\n\
         total = \"decimal(10,2)\"\n",
        toml_str(spool.to_str().expect("UTF-8 test path"))
    )
}

fn wait_running(daemon: &Daemon) {
    assert!(
        wait_until(Duration::from_secs(60), || daemon
            .log_text()
            .contains("Daemon running.")),
        "daemon did not start:\n{}",
        daemon.log_text()
    );
}

/// Drops the 50 files into the spool over four daemon runs, interrupting
/// the first three with `interrupt`; after each interruption, checks that
/// every row of every file already in `finished/` is in the topic. Then
/// lets the last run finish every file and stops it cleanly.
fn spool_rounds(
    kind: BrokerKind,
    label: &str,
    seed: &mut u64,
    interrupt: impl Fn(&mut Daemon, usize),
) -> SeqReport {
    let dir = TempDir::new(label);
    let broker = Broker::start(kind, dir.path());
    let topic = broker.topic("tables");
    broker.create_topic(&topic, 8);
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let finished = spool.join("finished");
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("spool.toml", spool_source(&spool, &topic, 300));
    let config = write_config(dir.path(), &spec);
    let total = FILES * ROWS_PER_FILE;
    let mut next = 0;
    for round in 0..4 {
        let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
        wait_running(&daemon);
        let files = if round < 3 { 12 } else { FILES - next };
        for _ in 0..files {
            std::fs::write(spool.join(file_name(next)), orders_csv(next)).unwrap();
            next += 1;
            std::thread::sleep(pick(seed, 10, 120));
        }
        if round == 3 {
            let done = wait_until(Duration::from_secs(120), || {
                list(&finished).len() == FILES as usize
            });
            assert!(
                done,
                "{kind}: only {} of {FILES} files finished; spool holds {:?}\n{}",
                list(&finished).len(),
                list(&spool),
                daemon.log_text()
            );
            let status = daemon.sigterm_and_wait(Duration::from_secs(30));
            assert!(
                status.is_some_and(|s| s.success()),
                "final stop: {status:?}"
            );
            break;
        }
        std::thread::sleep(pick(seed, 100, 900));
        interrupt(&mut daemon, round);
        // None moved early: a file in `finished/` has every row in Kafka.
        let moved = list(&finished);
        let landed: BTreeSet<u64> =
            consume_seqs(&broker.bootstrap(), &topic, total, Duration::from_secs(3))
                .records
                .iter()
                .map(|r| r.seq)
                .collect();
        for name in &moved {
            let missing: Vec<u64> = seqs_of(name).filter(|s| !landed.contains(s)).collect();
            assert!(
                missing.is_empty(),
                "{kind}: round {round}: {name} was moved to finished/ before its rows \
                 {missing:?} reached the topic"
            );
        }
        eprintln!(
            "{kind} {label}: round {round}: {} files dropped, {} finished",
            next,
            moved.len()
        );
    }
    assert_eq!(
        list(&spool),
        Vec::<String>::new(),
        "{kind}: left in the spool"
    );
    assert!(
        list(&spool.join("error")).is_empty(),
        "{kind}: files in error/"
    );
    let report = consume_seqs(&broker.bootstrap(), &topic, total, Duration::from_secs(120));
    eprintln!("{kind} {label}: {report}");
    assert!(
        report.keys_split_across_partitions().is_empty(),
        "{kind}: a customer's rows landed in several partitions"
    );
    report
}

#[test]
fn spool_directory_loses_nothing_across_kill_9() {
    let mut seed = test_seed();
    for kind in brokers_under_test() {
        let report = spool_rounds(kind, "spool-kill-9", &mut seed, |daemon, _| {
            daemon.kill9();
        });
        assert!(report.nothing_missing(), "{kind}: {report}");
        assert_eq!(report.out_of_range, 0, "{kind}: {report}");
    }
}

#[test]
fn spool_directory_repeats_nothing_across_clean_stops() {
    let mut seed = test_seed();
    for kind in brokers_under_test() {
        let report = spool_rounds(kind, "spool-clean", &mut seed, |daemon, round| {
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

#[test]
fn a_file_still_being_written_is_not_picked_up_before_it_is_complete() {
    for kind in brokers_under_test() {
        let dir = TempDir::new("spool-growing");
        let broker = Broker::start(kind, dir.path());
        let topic = broker.topic("tables");
        broker.create_topic(&topic, 3);
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
            .drop_in("spool.toml", spool_source(&spool, &topic, 1500));
        let config = write_config(dir.path(), &spec);
        let daemon = Daemon::start(&config, &dir.join("daemon.log"));
        wait_running(&daemon);

        // Written a row at a time, more often than the settle time, for
        // well over the settle time.
        let text = orders_csv(0);
        let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
        let path = spool.join(file_name(0));
        let mut file = std::fs::File::create(&path).unwrap();
        let start = Instant::now();
        let mut written = 0;
        while start.elapsed() < Duration::from_secs(5) || written < lines.len() {
            if written < lines.len() {
                std::io::Write::write_all(&mut file, lines[written].as_bytes()).unwrap();
                written += 1;
            }
            std::thread::sleep(Duration::from_millis(25));
            if written == lines.len() {
                break;
            }
        }
        // Still being written (the last write was just now): nothing read.
        let early = consume_seqs(&broker.bootstrap(), &topic, 0, Duration::from_millis(200));
        assert_eq!(
            early.total, 0,
            "{kind}: rows sent while the file grew: {early}"
        );
        assert!(
            !daemon.log_text().contains("orders-000.csv"),
            "{kind}: the growing file was touched:\n{}",
            daemon.log_text()
        );
        drop(file);

        assert!(
            wait_until(Duration::from_secs(60), || list(&spool.join("finished"))
                == [file_name(0)]),
            "{kind}: the complete file was not read:\n{}",
            daemon.log_text()
        );
        let report = consume_seqs(
            &broker.bootstrap(),
            &topic,
            ROWS_PER_FILE,
            Duration::from_secs(60),
        );
        assert!(report.exactly_once(), "{kind}: {report}");
    }
}

/// The next row the source `name` committed for its one file: bytes 2..10
/// of the checkpoint (version, flags, next row as little-endian u64, …).
fn committed_row(offsets_dir: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(offsets_dir.join(format!("source-{name}.json"))).ok()?;
    let body: Value = serde_json::from_str(text.lines().next()?).ok()?;
    let hex = body["partitions"].as_array()?.first()?["checkpoint"].as_str()?;
    let byte = |i: usize| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok();
    let bytes: Vec<u8> = (2..10).map(byte).collect::<Option<_>>()?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[test]
fn a_big_file_resumes_after_kill_9_without_repeating_committed_rows() {
    let mut seed = test_seed();
    let files = 600; // 120,000 rows
    for kind in brokers_under_test() {
        let dir = TempDir::new("tables-big-kill-9");
        let broker = Broker::start(kind, dir.path());
        // Sixteen partitions keep the mock broker's 5 MiB-per-partition
        // retention above what the test writes.
        let topic = broker.topic("tables");
        broker.create_topic(&topic, 16);
        let path = dir.join("orders.csv");
        let mut text = orders_csv(0);
        for k in 1..files {
            // One header, then the rows of every file.
            text.push_str(orders_csv(k).split_once("\r\n").unwrap().1);
        }
        std::fs::write(&path, text).unwrap();
        let total = files * ROWS_PER_FILE;
        let extra = "key = \"customer_id\"\n[source.columns]\nseq = \"int64\"\n";
        let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
            .drop_in("big.toml", path_source("big", "csv", &topic, &path, extra));
        let config = write_config(dir.path(), &spec);
        let mut progress = Vec::new();
        for round in 0..3 {
            let mut daemon = Daemon::start(&config, &dir.join(format!("daemon-{round}.log")));
            wait_running(&daemon);
            std::thread::sleep(pick(&mut seed, 200, 1200));
            daemon.kill9();
            progress.push(committed_row(&dir.join("offsets"), "big").unwrap_or(0));
        }
        eprintln!("{kind}: committed row after each kill: {progress:?} of {total}");
        assert!(
            progress.windows(2).all(|w| w[0] <= w[1]),
            "{kind}: committed rows must only grow: {progress:?}"
        );
        let mut daemon = Daemon::start_with_args(
            &config,
            &dir.join("daemon-final.log"),
            &["--exit-when-finished"],
        );
        let status = daemon.wait_exit(Duration::from_secs(180));
        assert!(
            status.is_some_and(|s| s.success()),
            "{kind}: {status:?}\n{}",
            daemon.log_text()
        );
        if let Some(&last) = progress.last().filter(|&&r| r > 0 && r < total) {
            // It resumes at the last commit, or further on at the position
            // noted between commits (what Kafka acknowledged before the kill).
            let log = daemon.log_text();
            let resumed = log
                .split_once(" at row ")
                .and_then(|(_, rest)| rest.split_once(' '))
                .and_then(|(row, _)| row.parse::<u64>().ok());
            assert!(
                resumed.is_some_and(|row| row >= last && row <= total),
                "{kind}: the last run did not resume at or after committed row {last}:\n{log}"
            );
        }
        let report = consume_seqs(&broker.bootstrap(), &topic, total, Duration::from_secs(120));
        eprintln!("{kind}: {report}");
        assert!(report.nothing_missing(), "{kind}: {report}");
        assert_eq!(report.out_of_range, 0, "{kind}: {report}");
        // Only rows after the last commit of each round may come again: a
        // run starting at committed row `c` never sends a row below `c`, so
        // a row is read at most once per run that started at or below it.
        let starts: Vec<u64> = std::iter::once(0).chain(progress.iter().copied()).collect();
        let mut copies = std::collections::BTreeMap::<u64, u64>::new();
        for r in &report.records {
            *copies.entry(r.seq).or_default() += 1;
        }
        let resent_committed: Vec<(u64, u64)> = copies
            .into_iter()
            .filter(|(seq, n)| *n > starts.iter().filter(|s| **s <= *seq).count() as u64)
            .take(10)
            .collect();
        assert!(
            resent_committed.is_empty(),
            "{kind}: committed rows were sent again (seq, copies), runs started at \
             {starts:?}: {resent_committed:?}; {report}"
        );
    }
}

/// Rows with several column types and nulls, as a DataFrame library would
/// write them.
fn typed_rows(rows: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new("price", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("paid", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("day", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows)),
        Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| (i % 5 != 0).then_some(i as f64 * 1.25)),
        )),
        Arc::new(StringArray::from_iter(
            (0..rows).map(|i| (i % 7 != 0).then(|| format!("name \"{i}\""))),
        )),
        Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0)))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                (0..rows).map(|i| 1_700_000_000_000_000 + i * 1_000_000),
            )
            .with_timezone("+00:00"),
        ),
        Arc::new(
            Decimal128Array::from_iter((0..rows).map(|i| (i % 3 != 0).then_some(i as i128 * 101)))
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(Date32Array::from_iter_values(
            (0..rows as i32).map(|i| 19_000 + i),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// What the JSON of row `i` of [`typed_rows`] must be.
fn expected_json(i: i64) -> Value {
    json!({
        "seq": i,
        "price": (i % 5 != 0).then_some(i as f64 * 1.25),
        "name": (i % 7 != 0).then(|| format!("name \"{i}\"")),
        "paid": i % 2 == 0,
        "amount": (i % 3 != 0).then_some((i * 101) as f64 / 100.0),
    })
}

fn check_typed(kind: BrokerKind, label: &str, got: &[(Option<Vec<u8>>, Value)], rows: i64) {
    assert_eq!(got.len() as i64, rows, "{kind} {label}: record count");
    let mut by_seq: Vec<&Value> = got.iter().map(|(_, v)| v).collect();
    by_seq.sort_by_key(|v| v["seq"].as_i64());
    for (i, value) in by_seq.into_iter().enumerate() {
        let i = i as i64;
        let want = expected_json(i);
        for key in ["seq", "price", "name", "paid", "amount"] {
            assert_eq!(
                value[key], want[key],
                "{kind} {label}: row {i} `{key}`: {value}"
            );
        }
        assert!(
            value["seq"].is_i64(),
            "{kind} {label}: seq must stay a number: {value}"
        );
        assert!(
            value["amount"].is_number() || value["amount"].is_null(),
            "{kind} {label}: a decimal must be a JSON number: {value}"
        );
        // 1_700_000_000 s after the epoch is 2023-11-14T22:13:20Z.
        let at = value["at"].as_str().unwrap_or_default();
        let secs = 20 + i;
        let want_at = format!("2023-11-14T22:{:02}:{:02}", 13 + secs / 60, secs % 60);
        assert!(
            at.starts_with(&want_at),
            "{kind} {label}: row {i} `at` = {at:?}"
        );
        // Day 19000 after the epoch is 2022-01-08.
        if i == 0 {
            assert_eq!(value["day"], "2022-01-08", "{kind} {label}: {value}");
        }
    }
}

fn path_source(name: &str, source_type: &str, topic: &str, path: &Path, extra: &str) -> String {
    format!(
        "[[source]]\n\
         name = \"{name}\"\n\
         type = \"{source_type}\"\n\
         topic = \"{topic}\"\n\
         format = \"json\"\n\
         path = {}\n\
         batch_rows = 100\n\
         {extra}",
        toml_str(path.to_str().expect("UTF-8 test path"))
    )
}

#[test]
fn parquet_arrow_and_csv_rows_land_typed() {
    let rows = 600;
    for kind in brokers_under_test() {
        let dir = TempDir::new("tables-typed");
        let broker = Broker::start(kind, dir.path());
        let [parquet_topic, arrow_topic, csv_topic] =
            ["parquet", "arrow", "csv"].map(|t| broker.topic(t));
        for topic in [&parquet_topic, &arrow_topic, &csv_topic] {
            broker.create_topic(topic, 3);
        }
        let data = typed_rows(rows);
        let parquet_path = dir.join("rows.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&parquet_path).unwrap(),
            data.schema(),
            None,
        )
        .unwrap();
        w.write(&data.slice(0, 250)).unwrap();
        w.write(&data.slice(250, (rows - 250) as usize)).unwrap();
        w.close().unwrap();
        let arrow_path = dir.join("rows.arrow");
        let mut w = arrow_ipc::writer::FileWriter::try_new(
            std::fs::File::create(&arrow_path).unwrap(),
            &data.schema(),
        )
        .unwrap();
        w.write(&data).unwrap();
        w.finish().unwrap();
        // The same rows as CSV, typed by config: what pandas users have.
        let csv_path = dir.join("rows.csv");
        let mut text = String::from("seq,price,name,paid,at,amount,day\n");
        for i in 0..rows {
            let v = expected_json(i);
            let cell = |v: &Value| match v {
                Value::Null => String::new(),
                Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                other => other.to_string(),
            };
            text.push_str(&format!(
                "{},{},{},{},2023-11-14 22:{:02}:{:02},{},{}\n",
                i,
                cell(&v["price"]),
                cell(&v["name"]),
                v["paid"],
                13 + (20 + i) / 60,
                (20 + i) % 60,
                match &v["amount"] {
                    Value::Null => String::new(),
                    _ => format!("{}.{:02}", i * 101 / 100, i * 101 % 100),
                },
                if i == 0 { "2022-01-08" } else { "" },
            ));
        }
        std::fs::write(&csv_path, text).unwrap();
        let csv_columns = "\n[source.columns]\nseq = \"int64\"\nprice = \"float64\"\n\
                           paid = \"bool\"\nat = \"timestamp(%Y-%m-%d %H:%M:%S)\"\n\
                           amount = \"decimal(10,2)\"\nday = \"string\"\n";
        let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
            .drop_in(
                "p.toml",
                path_source("p", "parquet", &parquet_topic, &parquet_path, ""),
            )
            .drop_in(
                "a.toml",
                path_source("a", "arrow", &arrow_topic, &arrow_path, ""),
            )
            .drop_in(
                "c.toml",
                path_source("c", "csv", &csv_topic, &csv_path, csv_columns),
            );
        let config = write_config(dir.path(), &spec);
        let mut daemon =
            Daemon::start_with_args(&config, &dir.join("daemon.log"), &["--exit-when-finished"]);
        let status = daemon.wait_exit(Duration::from_secs(120));
        assert!(
            status.is_some_and(|s| s.success()),
            "{kind}: {status:?}\n{}",
            daemon.log_text()
        );
        for (label, topic) in [
            ("parquet", &parquet_topic),
            ("arrow", &arrow_topic),
            ("csv", &csv_topic),
        ] {
            let got = consume_json(
                &broker.bootstrap(),
                topic,
                rows as usize,
                Duration::from_secs(60),
            );
            check_typed(kind, label, &got, rows);
        }
    }
}

#[test]
fn a_binary_file_fails_its_source_once_and_run_exits_with_an_error() {
    let dir = TempDir::new("tables-binary");
    let broker = Broker::start_mock(1);
    broker.create_topic("rows", 1);
    // What a new user does by mistake: point a CSV source at a binary file.
    let path = dir.join("image.csv");
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    bytes[..4].copy_from_slice(b"\x89PNG");
    std::fs::write(&path, bytes).unwrap();
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("s.toml", path_source("rows", "csv", "rows", &path, ""));
    let config = write_config(dir.path(), &spec);
    let started = Instant::now();
    let out = run_until_finished(&config, Duration::from_secs(60));
    let text = output_text(&out);
    // It exits (it used to restart every minute forever), with an error
    // that names the file and the problem, and counts no restart.
    assert!(!out.status.success(), "{text}");
    assert!(started.elapsed() < Duration::from_secs(30), "{text}");
    assert!(text.contains("rows (failed)"), "{text}");
    assert!(
        text.contains("image.csv") && text.contains("not valid UTF-8"),
        "{text}"
    );
    assert!(text.contains("error_class=\"invalid_data\""), "{text}");
    assert!(!text.contains("restarting"), "{text}");
}
