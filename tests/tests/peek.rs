//! `tributary peek`: shows what a running daemon wrote, on its embedded
//! broker with no address to copy, and decodes Avro through the schema
//! registry; an independent consumer checks what it shows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tributary_tests::*;

/// A record as an independent consumer read it.
#[derive(Debug)]
struct Seen {
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    headers: Vec<(String, String)>,
    value: Value,
}

/// Every record of `topic` from the beginning, until `count` arrived or a
/// minute passed.
fn read_all(bootstrap: &str, topic: &str, count: usize) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("peek-oracle-{}", std::process::id()))
        .set("enable.auto.commit", "false")
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) {
            let headers = msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                            (h.key.to_owned(), v.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Seen {
                partition: msg.partition(),
                offset: msg.offset(),
                timestamp: msg.timestamp().to_millis().unwrap_or_default(),
                key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                headers,
                value: serde_json::from_slice(msg.payload().unwrap_or_default())
                    .unwrap_or(Value::Null),
            });
        }
    }
    out
}

/// Each partition's high watermark.
fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, high)
        })
        .collect()
}

/// `tributary peek <args>`.
fn peek(args: &[&str]) -> Output {
    let mut all = vec!["peek"];
    all.extend_from_slice(args);
    run_cli(&all, Duration::from_secs(120))
}

/// The JSON objects `--format json` printed, one per line.
fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A datagen orders source carrying each order's `status` as a header too.
fn orders_with_headers(name: &str, topic: &str, count: u64, rate_per_sec: u64) -> String {
    format!(
        "{}headers = [\"status\"]\n",
        datagen_source(name, topic, count, rate_per_sec, 11)
    )
}

/// The embedded broker's address as the daemon logs it, once it has.
fn logged_address(daemon: &Daemon) -> Option<String> {
    daemon.log_text().lines().find_map(|l| {
        let (_, rest) = l.split_once("bootstrap_servers=\"")?;
        Some(rest.split('"').next()?.to_owned())
    })
}

#[test]
fn peek_shows_the_newest_records_of_a_running_embedded_daemon_with_key_headers_and_offsets() {
    let dir = TempDir::new("peek-last");
    let count = 500;
    // Spread over two seconds, so the newest records are told apart by
    // their timestamps.
    let spec = ConfigSpec::new("embedded", dir.path()).drop_in(
        "orders.toml",
        orders_with_headers("orders", "orders", count, 250),
    );
    let config = write_config(dir.path(), &spec);
    let config = config.to_str().unwrap();
    let daemon = Daemon::start(Path::new(config), &dir.join("daemon.log"));
    let done = wait_until(Duration::from_secs(60), || {
        committed_seq(&dir.join("offsets"), "orders") == Some(count)
    });
    assert!(done, "the source did not finish:\n{}", daemon.log_text());
    let address = logged_address(&daemon).expect("the daemon logs the broker's address");
    let all = read_all(&address, "orders", count as usize);
    assert_eq!(all.len(), count as usize);
    let distinct: std::collections::BTreeSet<i64> = all.iter().map(|s| s.timestamp).collect();
    assert!(
        distinct.len() > 20,
        "{} distinct timestamps",
        distinct.len()
    );

    // No address given: peek finds the running daemon's broker.
    let out = peek(&[
        "orders", "--config", config, "--last", "7", "--format", "json",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let shown = json_lines(&out);
    assert_eq!(shown.len(), 7, "{}", output_text(&out));
    let mut oldest_first = Vec::new();
    for line in &shown {
        let (partition, offset) = (
            line["partition"].as_i64().unwrap() as i32,
            line["offset"].as_i64().unwrap(),
        );
        let seen = all
            .iter()
            .find(|s| s.partition == partition && s.offset == offset)
            .unwrap_or_else(|| panic!("no record at {partition}/{offset}: {line}"));
        assert_eq!(line["topic"], "orders", "{line}");
        assert_eq!(line["timestamp"], seen.timestamp, "{line}");
        assert_eq!(line["key"].as_str(), seen.key.as_deref(), "{line}");
        assert_eq!(line["key_format"], "text", "{line}");
        assert_eq!(line["value"], seen.value, "{line}");
        assert_eq!(line["value_format"], "json", "{line}");
        let headers: Vec<(String, String)> = line["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let text = |k: &str| h[k].as_str().unwrap_or_default().to_owned();
                (text("name"), text("value"))
            })
            .collect();
        assert_eq!(headers, seen.headers, "{line}");
        assert_eq!(
            headers,
            vec![(
                "status".to_owned(),
                seen.value["status"].as_str().unwrap().to_owned()
            )]
        );
        oldest_first.push(seen.timestamp);
    }
    // The newest records, oldest first: none left out is newer than one shown.
    assert!(oldest_first.is_sorted(), "{oldest_first:?}");
    assert_eq!(oldest_first.last(), distinct.last());
    let oldest_shown = oldest_first[0];
    let shown_at: Vec<(i64, i64)> = shown
        .iter()
        .map(|l| {
            (
                l["partition"].as_i64().unwrap(),
                l["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    for s in &all {
        if !shown_at.contains(&(i64::from(s.partition), s.offset)) {
            assert!(
                s.timestamp <= oldest_shown,
                "{}/{} at {} is newer than the oldest shown ({oldest_shown})",
                s.partition,
                s.offset,
                s.timestamp
            );
        }
    }

    // The text form: one block per record, partition by partition.
    let out = peek(&[
        "orders",
        "--config",
        config,
        "--partition",
        "1",
        "--last",
        "3",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 3, "{text}");
    let mut in_partition_1: Vec<&Seen> = all.iter().filter(|s| s.partition == 1).collect();
    in_partition_1.sort_by_key(|s| s.offset);
    for (block, seen) in blocks
        .iter()
        .zip(&in_partition_1[in_partition_1.len() - 3..])
    {
        assert!(
            block.starts_with(&format!("partition 1  offset {}  20", seen.offset)),
            "{block}"
        );
        let key = seen.key.as_deref().unwrap();
        assert!(block.contains(&format!("\n  key      {key}\n")), "{block}");
        let status = seen.value["status"].as_str().unwrap();
        assert!(
            block.contains(&format!("\n  headers  status={status}\n")),
            "{block}"
        );
        let order = seen.value["order_id"].as_str().unwrap();
        assert!(
            block.contains(&format!("\"order_id\":\"{order}\"")),
            "{block}"
        );
    }
    drop(daemon);
}

#[test]
fn peek_next_shows_only_records_written_after_it_started_and_times_out_with_exit_code_1() {
    let dir = TempDir::new("peek-next");
    let spec = ConfigSpec::new("embedded", dir.path())
        .drop_in(
            "live.toml",
            orders_with_headers("live", "live", 1_000_000, 20),
        )
        .drop_in("done.toml", orders_with_headers("done", "done", 10, 0));
    let config = write_config(dir.path(), &spec);
    let config = config.to_str().unwrap();
    let mut daemon = Daemon::start(Path::new(config), &dir.join("daemon.log"));
    let started = wait_until(Duration::from_secs(60), || {
        committed_seq(&dir.join("offsets"), "live").is_some_and(|s| s >= 20)
            && committed_seq(&dir.join("offsets"), "done") == Some(10)
    });
    assert!(started, "no records:\n{}", daemon.log_text());
    let address = logged_address(&daemon).expect("the daemon logs the broker's address");

    let before = high_watermarks(&address, "live", 3);
    let out = peek(&[
        "live",
        "--config",
        config,
        "--next",
        "5",
        "--format",
        "json",
        "--timeout",
        "60",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let shown = json_lines(&out);
    assert_eq!(shown.len(), 5, "{}", output_text(&out));
    for line in &shown {
        let partition = line["partition"].as_i64().unwrap() as i32;
        assert!(
            line["offset"].as_i64().unwrap() >= before[&partition],
            "{line} was there before peek started: {before:?}"
        );
        assert!(line["value"]["seq"].is_u64(), "{line}");
    }

    // A topic nothing writes to any more: the last records are all of them,
    // and waiting for a new one ends in an error after the timeout.
    let out = peek(&[
        "done", "--config", config, "--last", "50", "--format", "json",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let mut seqs: Vec<u64> = json_lines(&out)
        .iter()
        .map(|l| l["value"]["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..10).collect::<Vec<u64>>());
    let asked = Instant::now();
    let out = peek(&["done", "--config", config, "--next", "1", "--timeout", "2"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("0 of 1 new record(s) of `done` arrived within 2 s"),
        "{text}"
    );
    assert!(asked.elapsed() >= Duration::from_secs(2));
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn peek_names_an_unknown_topic_a_stopped_daemon_and_a_bad_config() {
    let dir = TempDir::new("peek-errors");
    let spec = ConfigSpec::new("embedded", dir.path()).drop_in(
        "orders.toml",
        orders_with_headers("orders", "orders", 10, 0),
    );
    let config_path = write_config(dir.path(), &spec);
    let config = config_path.to_str().unwrap();
    let mut daemon = Daemon::start(&config_path, &dir.join("daemon.log"));
    let done = wait_until(Duration::from_secs(60), || {
        committed_seq(&dir.join("offsets"), "orders") == Some(10)
    });
    assert!(done, "{}", daemon.log_text());

    let out = peek(&["no-such-topic", "--config", config]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("topic `no-such-topic` does not exist at 127.0.0.1:"),
        "{text}"
    );
    // Looking did not create it.
    let out = peek(&["no-such-topic", "--config", config]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let out = peek(&["orders", "--config", config, "--partition", "9"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("topic `orders` has no partition 9; its partitions are 0 to 2"),
        "{text}"
    );

    // The embedded broker ends with its daemon, and so does its address.
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let out = peek(&["orders", "--config", config]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no running daemon's embedded broker is announced in"),
        "{text}"
    );

    // A configuration error is exit code 2, as for every subcommand.
    std::fs::write(&config_path, "[kafka]\nbootstrap_server = \"x:9092\"\n").unwrap();
    let out = peek(&["orders", "--config", config]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("bootstrap_server"), "{text}");
}

/// A real schema registry (`scripts/schema-registry`) on the shared Apache
/// Kafka, stopped (by its PID, through the script) when dropped.
struct Registry {
    url: String,
    data: std::path::PathBuf,
}

impl Registry {
    fn start(broker: &Broker, dir: &TempDir) -> Registry {
        let data = dir.join("schema-registry");
        let out = Command::new(repo_root().join("scripts/schema-registry"))
            .args(["start", &broker.bootstrap()])
            .env("SCHEMA_REGISTRY_DATA", &data)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/schema-registry");
        let registry = Registry {
            url: String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned(),
            data,
        };
        assert!(
            out.status.success() && registry.url.starts_with("http://127.0.0.1:"),
            "schema registry did not start: {out:?}"
        );
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/schema-registry"))
            .arg("stop")
            .env("SCHEMA_REGISTRY_DATA", &self.data)
            .status();
    }
}

#[test]
fn peek_decodes_avro_keys_and_values_to_the_fields_of_their_rows() {
    let dir = TempDir::new("peek-avro");
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    }
    let broker = Broker::start(BrokerKind::Kafka, dir.path());
    let registry = Registry::start(&broker, &dir);
    let count = 120u64;
    let (json_topic, avro_topic) = (broker.topic("peek-json"), broker.topic("peek-avro"));
    let plain = datagen_source("plain", &json_topic, count, 5_000, 7);
    let avro = datagen_source("shaped", &avro_topic, count, 5_000, 7).replace(
        "format = \"json\"",
        "format = \"avro\"\navro_record_name = \"Order\"\navro_namespace = \"shop\"\n\
         key_format = \"avro\"",
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("plain.toml", plain)
        .drop_in("avro.toml", avro);
    let config = write_config(dir.path(), &spec);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[schema_registry]\nurl = {}\n",
            toml_str(&registry.url)
        ),
    )
    .unwrap();
    let out = run_until_finished(&config, Duration::from_secs(120));
    assert!(out.status.success(), "{}", output_text(&out));

    let rows: BTreeMap<u64, Value> = read_all(&broker.bootstrap(), &json_topic, count as usize)
        .into_iter()
        .map(|s| (s.value["seq"].as_u64().unwrap(), s.value))
        .collect();
    assert_eq!(rows.len(), count as usize);
    let config = config.to_str().unwrap();
    let n = count.to_string();
    let out = peek(&[
        avro_topic.as_str(),
        "--config",
        config,
        "--last",
        &n,
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let shown = json_lines(&out);
    assert_eq!(shown.len(), count as usize, "{}", output_text(&out));
    let mut seqs = Vec::new();
    for line in &shown {
        assert_eq!(line["value_format"], "avro", "{line}");
        assert_eq!(line["key_format"], "avro", "{line}");
        assert!(line["value_schema_id"].is_u64(), "{line}");
        assert_ne!(line["key_schema_id"], line["value_schema_id"], "{line}");
        let value = &line["value"];
        let seq = value["seq"].as_u64().unwrap();
        let row = &rows[&seq];
        for field in ["order_id", "customer_id", "total", "status", "items"] {
            assert_eq!(value[field], row[field], "{field} of {seq}: {line}");
        }
        assert_eq!(line["key"], row["customer_id"], "{line}");
        let ts = value["timestamp"].as_str().expect("timestamp");
        assert!(ts.starts_with("20") && ts.contains('T'), "{line}");
        seqs.push(seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), count as usize);

    let out = peek(&[avro_topic.as_str(), "--config", config, "--last", "1"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("  value    (Avro schema "), "{text}");
    assert!(text.contains("\"order_id\":\"ORD-"), "{text}");

    // Peek reads in no group: the broker knows of none afterwards.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("consumer");
    let groups = consumer
        .fetch_group_list(Some("tributary-peek"), Duration::from_secs(10))
        .expect("group list");
    let names: Vec<&str> = groups.groups().iter().map(|g| g.name()).collect();
    assert!(names.is_empty(), "{names:?}");
}
