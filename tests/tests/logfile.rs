//! The logfile source under rotation (the real `logrotate`), truncation,
//! deletion, inode reuse, restarts and `kill -9`: every line carries a
//! sequence number and an independent consumer counts what reached Kafka.

use std::path::Path;
use std::time::{Duration, Instant};

use tributary_tests::*;

const TOPIC: &str = "logs";

/// Raw lines as record values, spread over partitions by the line itself
/// (the default key, the file path, would put a whole file in one
/// partition, more than the mock broker keeps).
const STRING_VALUES: &str = "format = \"string\"\nkey = \"line\"\n";

/// JSON rows with `seq` parsed from the line by a regex; other lines are
/// skipped.
const PARSED_SEQ: &str = "key = \"line\"\nparser = \"regex\"\nregex = '\"seq\":(?P<seq>\\d+)'\nregex_types = { seq = \"uint64\" }\non_error = \"skip\"\n";

/// JSON rows: each line's JSON object's keys become columns (`seq`).
const JSON_ROWS: &str = "key = \"line\"\nparser = \"json\"\non_error = \"fail\"\n";

struct Setup {
    dir: TempDir,
    broker: Broker,
    topic: String,
    config: std::path::PathBuf,
    logs: std::path::PathBuf,
}

impl Setup {
    fn new(label: &str, kind: BrokerKind, partitions: i32, include: &str, extra: &str) -> Setup {
        Setup::with(label, kind, partitions, include, extra, |spec, _| spec)
    }

    /// [`Setup::new`] with the main configuration changed by `adjust`.
    fn with(
        label: &str,
        kind: BrokerKind,
        partitions: i32,
        include: &str,
        extra: &str,
        adjust: impl FnOnce(ConfigSpec, &Broker) -> ConfigSpec,
    ) -> Setup {
        let dir = TempDir::new(label);
        let broker = Broker::start(kind, dir.path());
        let topic = broker.topic(TOPIC);
        broker.create_topic(&topic, partitions);
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let include = logs.join(include);
        let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in(
            "logs.toml",
            logfile_source("applog", &topic, include.to_str().unwrap(), extra),
        );
        let spec = adjust(spec, &broker);
        let config = write_config(dir.path(), &spec);
        Setup {
            dir,
            broker,
            topic,
            config,
            logs,
        }
    }

    fn log(&self, name: &str) -> std::path::PathBuf {
        self.logs.join(name)
    }

    fn start(&self, round: &str) -> Daemon {
        let daemon = Daemon::start(&self.config, &self.dir.join(format!("daemon-{round}.log")));
        assert!(
            wait_until(Duration::from_secs(60), || daemon
                .log_text()
                .contains("Daemon running.")),
            "daemon did not start:\n{}",
            daemon.log_text()
        );
        daemon
    }

    /// Waits until `0..count` all reached the topic.
    fn delivered(&self, count: u64, timeout: Duration) -> SeqReport {
        let report = consume_seqs(&self.broker.bootstrap(), &self.topic, count, timeout);
        assert!(report.nothing_missing(), "{}: {report}", self.broker.kind());
        report
    }

    fn final_report(&self, count: u64) -> SeqReport {
        consume_seqs(
            &self.broker.bootstrap(),
            &self.topic,
            count,
            Duration::from_secs(120),
        )
    }
}

fn stop(daemon: &mut Daemon) {
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean stop failed: {status:?}\n{}",
        daemon.log_text()
    );
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn rename_rotation_every_second_loses_and_repeats_nothing() {
    const ROTATIONS: usize = 100;
    let s = Setup::new(
        "log-rename",
        broker_of_record(),
        8,
        "app.log*",
        STRING_VALUES,
    );
    let log = s.log("app.log");
    std::fs::write(&log, b"").unwrap();
    let rotate = Logrotate::new(s.dir.path(), &log, "create\nrotate 3");
    let _daemon = s.start("run");
    let per_sec = 400;
    let total = per_sec * (ROTATIONS as u64 + 4);
    let writer = LineWriter::start(&log, 0, total, per_sec);
    let mut rotations = 0;
    let mut next = Instant::now() + Duration::from_secs(1);
    while !writer.is_done() {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += Duration::from_secs(1);
        if writer.is_done() {
            break;
        }
        rotate.rotate();
        rotations += 1;
    }
    let written = writer.join(Duration::from_secs(10));
    assert_eq!(written, total);
    assert!(rotations >= ROTATIONS, "only {rotations} rotations");
    let report = s.final_report(total);
    eprintln!("{rotations} rotations: {report}");
    assert!(report.exactly_once(), "{rotations} rotations: {report}");
}

/// `logrotate` with `copytruncate` every second while a writer appends
/// 5,000 lines/s, writes going on during the copy and between the copy and
/// the truncation. A line written after the copy and truncated away before
/// any reader saw it is on no disk (the window `logrotate` documents for
/// copytruncate): every rotated copy is kept, and every line a copy or the
/// live file holds must arrive once; what the window took is reported.
fn copytruncate_every_second(s: &Setup) {
    let log = s.log("app.log");
    std::fs::write(&log, b"").unwrap();
    let rotate = Logrotate::new(s.dir.path(), &log, "copytruncate\nrotate 100");
    let _daemon = s.start("run");
    let per_sec = 5000;
    let total = per_sec * 20;
    let writer = LineWriter::start(&log, 0, total, per_sec);
    let mut rotations = 0;
    while !writer.is_done() {
        std::thread::sleep(Duration::from_secs(1));
        rotate.rotate();
        rotations += 1;
    }
    assert_eq!(writer.join(Duration::from_secs(10)), total);
    let on_disk = seqs_in_files(&s.logs);
    let report = consume_seq_set(
        &s.broker.bootstrap(),
        &s.topic,
        &on_disk,
        Duration::from_secs(120),
    );
    let window = total - on_disk.len() as u64;
    eprintln!(
        "copytruncate, {rotations} rotations, {window} lines written inside logrotate's \
         window: {report}"
    );
    // What the original was read to is not read again from its copy, and
    // nothing a file holds is skipped.
    assert!(
        report.nothing_missing() && report.duplicated == 0,
        "copytruncate, {rotations} rotations: {report}"
    );
    assert!(rotations >= 15, "only {rotations} rotations");
}

#[test]
fn copytruncate_rotation_every_second_reads_each_line_once() {
    let s = Setup::new(
        "log-copytruncate",
        BrokerKind::Mock,
        8,
        "app.log*",
        STRING_VALUES,
    );
    copytruncate_every_second(&s);
}

#[test]
fn copytruncate_rotation_every_second_delivers_each_line_once_exactly_once() {
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    }
    let s = Setup::with(
        "log-copytruncate-eos",
        BrokerKind::Kafka,
        8,
        "app.log*",
        &format!("{STRING_VALUES}delivery = \"exactly_once\"\ntransaction_interval_ms = 200\n"),
        |mut spec, broker| {
            spec.offsets_topic = Some(broker.topic("offsets"));
            spec.kafka_key(&format!(
                "transactional_id_prefix = {}",
                toml_str(&broker.topic("tx"))
            ))
        },
    );
    copytruncate_every_second(&s);
}

#[test]
fn truncation_deletion_inode_reuse_and_shared_first_bytes_read_each_line_once() {
    let s = Setup::new(
        "log-edges",
        BrokerKind::Mock,
        4,
        "*.log",
        &format!("{PARSED_SEQ}rotate_wait_ms = 300\ncopy_wait_ms = 500\n"),
    );
    let mut daemon = s.start("first");

    // Truncate in place, then write past the old offset.
    let t = s.log("truncated.log");
    append_seqs(&t, 0..100);
    s.delivered(100, Duration::from_secs(60));
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&t)
        .unwrap();
    append_seqs(&t, 100..300);
    s.delivered(300, Duration::from_secs(60));

    // Deleted while open (by the writer and by the daemon): drained.
    let d = s.log("deleted.log");
    append_seqs(&d, 300..400);
    s.delivered(400, Duration::from_secs(60));
    {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new().append(true).open(&d).unwrap();
        std::fs::remove_file(&d).unwrap();
        for n in 400..450 {
            w.write_all(seq_line(n).as_bytes()).unwrap();
        }
    }
    s.delivered(450, Duration::from_secs(60));
    assert!(
        wait_until(Duration::from_secs(30), || daemon
            .log_text()
            .contains("Released")),
        "the deleted file was never released:\n{}",
        daemon.log_text()
    );

    // Two files starting with the same bytes, and a file of a few bytes.
    let header = "# the same first line in both files, longer than nothing\n";
    append(&s.log("same-a.log"), header.as_bytes());
    append_seqs(&s.log("same-a.log"), 450..460);
    s.delivered(460, Duration::from_secs(60));
    append(&s.log("same-b.log"), header.as_bytes());
    append_seqs(&s.log("same-b.log"), 460..465);
    append_seqs(&s.log("tiny.log"), 465..466);
    s.delivered(466, Duration::from_secs(60));
    append_seqs(&s.log("tiny.log"), 466..467);
    append_seqs(&s.log("same-a.log"), 467..470);
    s.delivered(470, Duration::from_secs(60));

    // Inode reuse while stopped: the file is replaced by a new one that
    // gets the freed inode; it must be read from its start.
    stop(&mut daemon);
    let r = s.log("truncated.log");
    let old = inode(&r);
    std::fs::remove_file(&r).unwrap();
    append_seqs(&r, 470..500);
    eprintln!(
        "inode {} the replaced file's ({old})",
        if inode(&r) == old {
            "reused"
        } else {
            "differs from"
        }
    );
    let _daemon = s.start("second");
    let report = s.final_report(500);
    assert!(report.exactly_once(), "{report}");
}

#[test]
fn stopped_across_three_rotations_reads_the_remainders_and_nothing_again() {
    for kind in brokers_under_test() {
        let s = Setup::new(
            &format!("log-stopped-{}", kind.name()),
            kind,
            4,
            "app.log*",
            JSON_ROWS,
        );
        let log = s.log("app.log");
        append_seqs(&log, 0..1000);
        let rotate = Logrotate::new(s.dir.path(), &log, "create\nrotate 5");
        let mut daemon = s.start("first");
        s.delivered(1000, Duration::from_secs(60));
        append_seqs(&log, 1000..1200);
        stop(&mut daemon);
        for r in 0..3u64 {
            rotate.rotate();
            append_seqs(&log, 1200 + r * 100..1300 + r * 100);
        }
        let _daemon = s.start("second");
        let report = s.final_report(1500);
        assert!(report.exactly_once(), "{kind}: {report}");
    }
}

#[test]
fn kill_9_ten_times_while_tailing_loses_nothing() {
    let s = Setup::new(
        "log-kill9",
        broker_of_record(),
        16,
        "app.log",
        STRING_VALUES,
    );
    let log = s.log("app.log");
    std::fs::write(&log, b"").unwrap();
    let per_sec = 20_000;
    let total = per_sec * 12;
    let writer = LineWriter::start(&log, 0, total, per_sec);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("seed {seed}");
    for round in 0..10 {
        let mut daemon = s.start(&format!("round-{round}"));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 700));
        daemon.kill9();
    }
    let _daemon = s.start("final");
    assert_eq!(writer.join(Duration::from_secs(60)), total);
    let report = s.final_report(total);
    eprintln!("kill -9 x10 at {per_sec} lines/s: {report}");
    assert!(report.nothing_missing(), "{report}");
    assert_eq!(report.out_of_range, 0, "{report}");
}

#[test]
fn kill_9_between_commits_repeats_nothing_already_acknowledged() {
    // No commit runs during the test: only the note written between
    // commits (20 ms after the acknowledgements) can tell the restarted
    // daemon where the first one got to.
    let s = Setup::with(
        "log-note",
        broker_of_record(),
        4,
        "app.log",
        STRING_VALUES,
        |mut spec, _| {
            spec.commit_interval_ms = 600_000;
            spec
        },
    );
    let log = s.log("app.log");
    let append = |seqs: std::ops::Range<u64>| {
        let text: String = seqs.map(seq_line).collect();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    };
    append(0..5_000);
    let mut daemon = s.start("first");
    s.delivered(5_000, Duration::from_secs(60));
    // Acknowledgements reach the daemon just after the broker has the lines.
    std::thread::sleep(Duration::from_millis(500));
    daemon.kill9();
    append(5_000..10_000);
    let _daemon = s.start("second");
    s.delivered(10_000, Duration::from_secs(60));
    let report = s.final_report(10_000);
    assert!(report.exactly_once(), "{report}");
}

#[test]
fn a_last_line_without_newline_across_sigterm_is_sent_once_whole() {
    for kind in brokers_under_test() {
        let s = Setup::new(
            &format!("log-partial-{}", kind.name()),
            kind,
            1,
            "app.log",
            STRING_VALUES,
        );
        let log = s.log("app.log");
        append(&log, b"{\"seq\":0}\n{\"seq\":");
        let mut daemon = s.start("first");
        s.delivered(1, Duration::from_secs(60));
        stop(&mut daemon);
        append(&log, b"1}\n");
        let _daemon = s.start("second");
        let report = s.final_report(2);
        assert!(report.exactly_once(), "{kind}: {report}");
        assert_eq!(report.total, 2, "{kind}: {report}");
    }
}

#[test]
fn a_line_of_many_megabytes_is_skipped_and_counted_and_reading_goes_on() {
    let s = Setup::new(
        "log-overlong",
        BrokerKind::Mock,
        1,
        "app.log",
        &format!("{STRING_VALUES}line_overflow = \"skip\"\n"),
    );
    let log = s.log("app.log");
    append_seqs(&log, 0..10);
    let mut huge = vec![b'x'; 8 << 20];
    huge.push(b'\n');
    append(&log, &huge);
    append_seqs(&log, 10..20);
    let daemon = s.start("run");
    let report = s.final_report(20);
    assert!(report.exactly_once(), "{report}");
    assert!(
        daemon.log_text().contains("longer than max_line_bytes"),
        "the skipped line was not counted:\n{}",
        daemon.log_text()
    );
}

#[test]
fn three_hundred_files_under_a_handle_limit_are_each_read_once() {
    const FILES: u64 = 300;
    let s = Setup::new(
        "log-many",
        BrokerKind::Mock,
        4,
        "*.log",
        &format!("{STRING_VALUES}max_open_files = 32\n"),
    );
    for f in 0..FILES {
        append_seqs(&s.log(&format!("f{f:03}.log")), f * 5..f * 5 + 5);
    }
    let _daemon = s.start("run");
    s.delivered(FILES * 5, Duration::from_secs(120));
    // Every file grows again: idle ones were closed and must be reopened.
    for f in 0..FILES {
        let first = FILES * 5 + f * 5;
        append_seqs(&s.log(&format!("f{f:03}.log")), first..first + 5);
    }
    let report = s.final_report(FILES * 10);
    assert!(report.exactly_once(), "{report}");
}
