//! Formats other than plain JSON, checked by the independent readers their
//! users would run: Kafka Connect's own `JsonConverter` for
//! `format = "connect_json"`, confluent-kafka's `AvroDeserializer` with a
//! real schema registry for `format = "avro"`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tributary_tests::*;

/// The raw values of the first `count` records of `topic` (all
/// partitions, read_committed), in partition and offset order.
fn raw_values(bootstrap: &str, topic: &str, count: usize) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("raw-{topic}-{}", std::process::id()))
        .set("enable.auto.commit", "false")
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) {
            out.push(msg.payload().unwrap_or_default().to_vec());
        }
    }
    out
}

/// What Kafka Connect's `JsonConverter` makes of each value: one JSON
/// object per value (see `tests/tools/ConnectJsonCheck.java`).
fn connect_json_check(values: &[Vec<u8>]) -> Vec<Value> {
    let script = repo_root().join("scripts/connect-json-check");
    let mut child = Command::new(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut input = Vec::new();
    for v in values {
        input.extend_from_slice(v);
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("connect-json-check output");
    writer.join().unwrap().expect("write to connect-json-check");
    assert!(out.status.success(), "connect-json-check failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Two datagen sources of the same orders (same seed): one as plain JSON,
/// one as `format`; returns the broker and both topics once the daemon
/// finished.
fn orders_in_two_formats(
    dir: &TempDir,
    format: &str,
    count: u64,
    extra_main: &str,
) -> (Broker, String, String) {
    let broker = Broker::start(broker_of_record(), dir.path());
    let (json_topic, other_topic) = (broker.topic("orders-json"), broker.topic("orders-other"));
    let plain = datagen_source("plain", &json_topic, count, 5_000, 7);
    let other = datagen_source("shaped", &other_topic, count, 5_000, 7)
        .replace("format = \"json\"", &format!("format = \"{format}\""));
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("plain.toml", plain)
        .drop_in("shaped.toml", other);
    let config = write_config(dir.path(), &spec);
    if !extra_main.is_empty() {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}\n{extra_main}")).unwrap();
    }
    let out = run_until_finished(&config, Duration::from_secs(120));
    assert!(out.status.success(), "{}", output_text(&out));
    (broker, json_topic, other_topic)
}

/// The plain JSON orders by `seq`.
fn json_orders(broker: &Broker, topic: &str, count: usize) -> BTreeMap<u64, Value> {
    raw_values(&broker.bootstrap(), topic, count)
        .iter()
        .map(|v| {
            let v: Value = serde_json::from_slice(v).unwrap();
            (v["seq"].as_u64().unwrap(), v)
        })
        .collect()
}

#[test]
fn connect_json_records_read_back_through_kafka_connects_own_json_converter() {
    let dir = TempDir::new("serializers-connect-json");
    let count = 200;
    let (broker, json_topic, connect_topic) =
        orders_in_two_formats(&dir, "connect_json", count, "");
    let plain = json_orders(&broker, &json_topic, count as usize);
    let values = raw_values(&broker.bootstrap(), &connect_topic, count as usize);
    assert_eq!(values.len(), count as usize);
    let read = connect_json_check(&values);
    assert_eq!(read.len(), values.len());
    for r in &read {
        assert!(
            r.get("error").is_none() && r.get("warnings").is_none(),
            "Connect did not read a record cleanly: {r}"
        );
        let schema = &r["schema"];
        assert_eq!(schema["type"], "struct", "{r}");
        let v = &r["value"];
        let seq = v["seq"].as_u64().expect("seq");
        let want = &plain[&seq];
        for field in ["order_id", "customer_id", "total", "status"] {
            assert_eq!(v[field], want[field], "{field} of {seq}: {r}");
        }
        // Nested items: an array of structs, field by field.
        assert_eq!(v["items"], want["items"], "items of {seq}: {r}");
        // The timestamp is Connect's Timestamp logical type: epoch millis.
        assert_eq!(
            v["timestamp"]["logical"], "org.apache.kafka.connect.data.Timestamp",
            "{r}"
        );
        // Datagen stamps rows with the time they are made, so the two
        // sources' stamps differ: this one must be a time of this run.
        let millis = v["timestamp"]["epoch_millis"].as_i64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now - millis).abs() < 600_000, "{r}");
    }
}

/// What a consumer sees of one record: topic, Kafka timestamp, headers,
/// value.
struct Seen {
    topic: String,
    timestamp: Option<i64>,
    headers: Vec<(String, String)>,
    value: Value,
}

/// Every record of `topics` (read_committed), until `count` arrived.
fn read_records(bootstrap: &str, topics: &[String], count: usize) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("shape-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        for p in metadata.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
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
                            let v = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (h.key.to_owned(), v.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Seen {
                topic: msg.topic().to_owned(),
                timestamp: msg.timestamp().to_millis(),
                headers,
                value: serde_json::from_slice(msg.payload().unwrap_or_default()).unwrap(),
            });
        }
    }
    out
}

#[test]
fn a_topic_template_headers_and_a_timestamp_column_shape_each_record_from_its_row() {
    let dir = TempDir::new("serializers-shape");
    let broker = Broker::start(broker_of_record(), dir.path());
    let prefix = broker.topic("applog");
    let count = 400u64;
    let source = format!(
        "[[source]]\nname = \"logs\"\ntype = \"datagen\"\nkind = \"logs\"\n\
         topic = {}\nheaders = [\"request_id\", \"module\"]\ntimestamp = \"timestamp\"\n\
         rename = {{ message = \"msg\" }}\nexclude = [\"user_id\"]\n\
         count = {count}\nrate_per_sec = 5000\nseed = 3\n",
        toml_str(&format!("{prefix}.{{level}}"))
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("logs.toml", source);
    let config = write_config(dir.path(), &spec);
    let out = run_until_finished(&config, Duration::from_secs(120));
    assert!(out.status.success(), "{}", output_text(&out));
    let topics: Vec<String> = ["DEBUG", "INFO", "WARN", "ERROR"]
        .iter()
        .map(|l| format!("{prefix}.{l}"))
        .collect();
    let seen = read_records(&broker.bootstrap(), &topics, count as usize);
    assert_eq!(seen.len(), count as usize);
    let mut per_topic: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &seen {
        let level = r.value["level"].as_str().unwrap();
        assert_eq!(r.topic, format!("{prefix}.{level}"), "{}", r.value);
        *per_topic.entry(level).or_default() += 1;
        let header = |k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("request_id"),
            r.value["request_id"].as_str(),
            "{}",
            r.value
        );
        assert_eq!(header("module"), r.value["module"].as_str(), "{}", r.value);
        // The value's `timestamp` (RFC 3339, milliseconds) is the record's.
        let text = r.value["timestamp"].as_str().unwrap();
        let millis = chrono_free_millis(text);
        assert_eq!(r.timestamp, Some(millis), "{text}");
        assert!(
            r.value.get("msg").is_some() && r.value.get("message").is_none(),
            "{}",
            r.value
        );
        assert!(r.value.get("user_id").is_none(), "{}", r.value);
    }
    assert!(per_topic.len() >= 3, "{per_topic:?}");
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS.mmmZ` (or with
/// `+00:00`), without a date library.
fn chrono_free_millis(text: &str) -> i64 {
    let n = |a: usize, b: usize| text[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss) = (n(11, 13), n(14, 16), n(17, 19));
    let ms = if text.as_bytes().get(19) == Some(&b'.') {
        n(20, 23)
    } else {
        0
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}

#[test]
fn a_topic_template_stops_at_max_topics_and_says_which_topic_was_one_too_many() {
    let dir = TempDir::new("serializers-max-topics");
    let broker = Broker::start(broker_of_record(), dir.path());
    let prefix = broker.topic("capped");
    let source = format!(
        "[[source]]\nname = \"logs\"\ntype = \"datagen\"\nkind = \"logs\"\n\
         topic = {}\nmax_topics = 2\ncount = 200\nrate_per_sec = 5000\nseed = 3\n",
        toml_str(&format!("{prefix}.{{level}}"))
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("logs.toml", source);
    let config = write_config(dir.path(), &spec);
    let out = run_until_finished(&config, Duration::from_secs(120));
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("beyond the source's max_topics = 2"),
        "{text}"
    );
    assert!(text.contains("logs (failed)"), "{text}");
    assert!(!text.contains("restarting"), "{text}");
}

/// A real schema registry (Apicurio Registry's Confluent-compatible API,
/// `scripts/schema-registry`) on the shared Apache Kafka, stopped (by its
/// PID, through the script) when dropped.
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

    fn main_section(&self) -> String {
        format!("[schema_registry]\nurl = {}\n", toml_str(&self.url))
    }

    /// Every record of `topic` decoded by confluent-kafka's own
    /// `AvroDeserializer` (`tests/tools/avro_decode.py`).
    fn decode(&self, broker: &Broker, topic: &str, count: usize, key_avro: bool) -> Vec<Value> {
        let out = Command::new(repo_root().join("scripts/schema-registry"))
            .arg("decode")
            .args(key_avro.then_some("--key-avro"))
            .args([
                "--bootstrap",
                &broker.bootstrap(),
                "--registry",
                &self.url,
                "--topic",
                topic,
                "--count",
                &count.to_string(),
                "--timeout",
                "60",
            ])
            .env("SCHEMA_REGISTRY_DATA", &self.data)
            .stderr(Stdio::inherit())
            .output()
            .expect("run avro_decode.py");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "avro_decode.py failed ({:?}):\n{text}",
            out.status
        );
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
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

/// The shared Apache Kafka, or `None` where it cannot run: a schema
/// registry keeps its schemas in a real Kafka.
fn kafka(dir: &TempDir) -> Option<Broker> {
    brokers_under_test()
        .contains(&BrokerKind::Kafka)
        .then(|| Broker::start(BrokerKind::Kafka, dir.path()))
}

#[test]
fn avro_orders_with_nested_items_decode_with_confluents_own_deserializer() {
    let dir = TempDir::new("serializers-avro-orders");
    let Some(broker) = kafka(&dir) else {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    };
    let registry = Registry::start(&broker, &dir);
    let count = 300u64;
    let (json_topic, avro_topic) = (broker.topic("orders-json"), broker.topic("orders-avro"));
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
    std::fs::write(&config, format!("{text}\n{}", registry.main_section())).unwrap();
    let out = run_until_finished(&config, Duration::from_secs(120));
    assert!(out.status.success(), "{}", output_text(&out));

    let plain = json_orders(&broker, &json_topic, count as usize);
    let decoded = registry.decode(&broker, &avro_topic, count as usize, true);
    assert_eq!(decoded.len(), count as usize);
    let ids: std::collections::BTreeSet<u64> = decoded
        .iter()
        .map(|r| r["schema_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one schema for one source: {ids:?}");
    for r in &decoded {
        let v = &r["value"];
        let seq = v["seq"].as_u64().unwrap();
        let want = &plain[&seq];
        for field in ["order_id", "customer_id", "total", "status", "items"] {
            assert_eq!(v[field], want[field], "{field} of {seq}: {r}");
        }
        // The key: the customer id as an Avro string, registered apart.
        assert_eq!(r["key"], want["customer_id"], "{r}");
        assert_ne!(r["key_schema_id"], r["schema_id"], "{r}");
        // timestamp-millis: an ISO time of this run.
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(ts.starts_with("20") && ts.contains('T'), "{r}");
    }
}

#[test]
fn avro_registers_a_new_version_for_new_columns_and_halts_on_an_incompatible_one() {
    let dir = TempDir::new("serializers-avro-versions");
    let Some(broker) = kafka(&dir) else {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    };
    let registry = Registry::start(&broker, &dir);
    let topic = broker.topic("people");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    // a.csv and b.csv: b drops a column (a compatible change under the
    // registry's BACKWARD rule): a second version. c.csv adds a column
    // without a default: refused.
    std::fs::write(
        spool.join("a.csv"),
        "seq,name,city\n0,ann,Oslo\n1,bob,Rome\n",
    )
    .unwrap();
    std::fs::write(spool.join("b.csv"), "seq,name\n2,cid\n3,dan\n").unwrap();
    let source = format!(
        "[[source]]\nname = \"people\"\ntype = \"csv\"\ntopic = {}\nformat = \"avro\"\n\
         spool_dir = {}\nsettle_ms = 0\n",
        toml_str(&topic),
        toml_str(spool.to_str().unwrap())
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("people.toml", source);
    let config = write_config(dir.path(), &spec);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{}", registry.main_section())).unwrap();
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let decoded = registry.decode(&broker, &topic, 4, false);
    let by_seq: BTreeMap<u64, &Value> = decoded
        .iter()
        .map(|r| (r["value"]["seq"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(by_seq.len(), 4, "{decoded:?}");
    assert_eq!(by_seq[&0]["value"]["city"], "Oslo");
    assert_eq!(by_seq[&3]["value"]["name"], "dan");
    assert!(by_seq[&3]["value"].get("city").is_none());
    assert_ne!(
        by_seq[&0]["schema_id"], by_seq[&3]["schema_id"],
        "a new version for b.csv"
    );

    std::fs::write(spool.join("c.csv"), "seq,name,email\n4,eve,e@x\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || daemon
            .log_text()
            .contains("409")),
        "the refusal is not reported:\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains(&format!("`{topic}-value`")), "{log}");
    assert!(
        !log.contains("restarting"),
        "an incompatible schema is permanent:\n{log}"
    );
    // Nothing of c.csv went out.
    let all = consume_json(&broker.bootstrap(), &topic, 5, Duration::from_secs(5));
    assert_eq!(all.len(), 4);
    daemon.sigterm_and_wait(Duration::from_secs(30));
}

#[test]
fn zip_codes_keep_their_leading_zeros_in_the_value_and_the_key() {
    let dir = TempDir::new("serializers-zips");
    let broker = Broker::start(broker_of_record(), dir.path());
    let topic = broker.topic("zips");
    let path = dir.join("zips.csv");
    std::fs::write(
        &path,
        "zip,city,population\n00501,Holtsville,10\n08123,Somewhere,2000\n10001,New York,21102\n",
    )
    .unwrap();
    let source = format!(
        "[[source]]\nname = \"zips\"\ntype = \"csv\"\ntopic = {}\nkey = \"zip\"\npath = {}\n",
        toml_str(&topic),
        toml_str(path.to_str().unwrap())
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("zips.toml", source);
    let config = write_config(dir.path(), &spec);
    let out = run_until_finished(&config, Duration::from_secs(60));
    assert!(out.status.success(), "{}", output_text(&out));
    let mut got: Vec<(String, Value)> =
        consume_json(&broker.bootstrap(), &topic, 3, Duration::from_secs(30))
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k.unwrap()).unwrap(), v))
            .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["00501", "08123", "10001"]);
    for (key, value) in &got {
        assert_eq!(value["zip"], Value::String(key.clone()), "{value}");
    }
    // A column every cell of which prints back the same stays a number.
    assert_eq!(got[0].1["population"], 10, "{}", got[0].1);
}

/// A Kafka, a registry, and a daemon run to its end with `source` (a
/// drop-in) and the registry in its main file.
fn run_with_registry(broker: &Broker, registry: &Registry, dir: &TempDir, source: String) {
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("source.toml", source);
    let config = write_config(dir.path(), &spec);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{}", registry.main_section())).unwrap();
    let out = run_until_finished(&config, Duration::from_secs(120));
    assert!(out.status.success(), "{}", output_text(&out));
}

#[test]
fn avro_flights_from_parquet_keep_timestamps_decimals_and_nulls() {
    use arrow_array::{
        ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int32Array, RecordBatch,
        StringArray, TimestampMicrosecondArray,
    };
    let dir = TempDir::new("serializers-avro-parquet");
    let Some(broker) = kafka(&dir) else {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    };
    let registry = Registry::start(&broker, &dir);
    let topic = broker.topic("flights");
    let rows = 120usize;
    let base = 1_717_200_000_000_000i64; // 2024-06-01T00:00:00Z in µs
    let col = |a: ArrayRef| a;
    let batch = RecordBatch::try_from_iter([
        (
            "flight",
            col(std::sync::Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("KL{:04}", 1000 + i)),
            ))),
        ),
        (
            "origin",
            col(std::sync::Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| ["AMS", "CDG", "JFK"][i % 3]),
            ))),
        ),
        (
            "dep_time",
            col(std::sync::Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..rows).map(|i| base + i as i64 * 600_000_000),
                )
                .with_timezone("UTC"),
            )),
        ),
        (
            "delay_min",
            col(std::sync::Arc::new(
                (0..rows)
                    .map(|i| (i % 4 != 0).then_some(i as i32 % 90 - 10))
                    .collect::<Int32Array>(),
            )),
        ),
        (
            "distance_km",
            col(std::sync::Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| 300.5 + i as f64),
            ))),
        ),
        (
            "cancelled",
            col(std::sync::Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| Some(i % 17 == 0)),
            ))),
        ),
        (
            "fare",
            col(std::sync::Arc::new(
                Decimal128Array::from_iter_values((0..rows).map(|i| 9_999 + i as i128 * 101))
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            )),
        ),
    ])
    .unwrap();
    let path = dir.join("flights.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let source = format!(
        "[[source]]\nname = \"flights\"\ntype = \"parquet\"\ntopic = {}\nkey = \"flight\"\n\
         format = \"avro\"\npath = {}\n",
        toml_str(&topic),
        toml_str(path.to_str().unwrap())
    );
    run_with_registry(&broker, &registry, &dir, source);
    let decoded = registry.decode(&broker, &topic, rows, false);
    assert_eq!(decoded.len(), rows);
    for r in &decoded {
        let v = &r["value"];
        let i: usize = v["flight"].as_str().unwrap()[2..].parse::<usize>().unwrap() - 1000;
        assert_eq!(r["key"], v["flight"], "{r}");
        assert_eq!(v["origin"], ["AMS", "CDG", "JFK"][i % 3], "{r}");
        let dep = v["dep_time"].as_str().unwrap();
        assert_eq!(
            chrono_free_millis(dep),
            (base + i as i64 * 600_000_000) / 1000,
            "{r}"
        );
        if i.is_multiple_of(4) {
            assert!(v["delay_min"].is_null(), "{r}");
        } else {
            assert_eq!(v["delay_min"], i as i64 % 90 - 10, "{r}");
        }
        assert_eq!(v["distance_km"], 300.5 + i as f64, "{r}");
        assert_eq!(v["cancelled"], i.is_multiple_of(17), "{r}");
        let cents = 9_999 + i as i64 * 101;
        assert_eq!(
            v["fare"],
            format!("{}.{:02}", cents / 100, cents % 100),
            "{r}"
        );
    }
}

#[test]
fn avro_nginx_lines_carry_their_own_time_and_typed_status() {
    let dir = TempDir::new("serializers-avro-logs");
    let Some(broker) = kafka(&dir) else {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    };
    let registry = Registry::start(&broker, &dir);
    let topic = broker.topic("access");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lines = 50u32;
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "10.0.0.{} - - [10/Oct/2000:13:{:02}:36 -0700] \"GET /item/{i} HTTP/1.1\" {} {} \"-\" \"curl/8\"\n",
            i % 250,
            i % 60,
            if i % 5 == 0 { 404 } else { 200 },
            100 + i
        ));
    }
    std::fs::write(logs.join("access.log"), text).unwrap();
    let source = format!(
        "{}format = \"avro\"\nparser = \"nginx_combined\"\nread_from = \"beginning\"\n\
         timestamp = \"time_local\"\n",
        logfile_source(
            "access",
            &topic,
            logs.join("access.log").to_str().unwrap(),
            ""
        )
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("source.toml", source);
    let config = write_config(dir.path(), &spec);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{}", registry.main_section())).unwrap();
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let decoded = registry.decode(&broker, &topic, lines as usize, false);
    daemon.sigterm_and_wait(Duration::from_secs(30));
    assert_eq!(decoded.len(), lines as usize);
    for r in &decoded {
        let v = &r["value"];
        let path = v["path"].as_str().unwrap();
        let i: u32 = path.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(
            v["status"],
            if i.is_multiple_of(5) { 404 } else { 200 },
            "{r}"
        );
        assert_eq!(v["body_bytes_sent"], 100 + i, "{r}");
        // 13:MM:36 -0700 is 20:MM:36 UTC.
        let t = v["time_local"].as_str().unwrap();
        assert!(
            t.starts_with(&format!("2000-10-10T20:{:02}:36", i % 60)),
            "{r}"
        );
    }
}

#[test]
fn avro_rows_the_registry_refuses_go_to_the_dead_letter_topic_by_policy() {
    let dir = TempDir::new("serializers-avro-dead-letters");
    let Some(broker) = kafka(&dir) else {
        eprintln!("no Apache Kafka here: nothing to test");
        return;
    };
    let registry = Registry::start(&broker, &dir);
    let (topic, dlq) = (broker.topic("people"), broker.topic("people-dlq"));
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(spool.join("a.csv"), "seq,name\n0,ann\n1,bob\n").unwrap();
    let source = format!(
        "[[source]]\nname = \"people\"\ntype = \"csv\"\ntopic = {}\nformat = \"avro\"\n\
         spool_dir = {}\nsettle_ms = 0\non_error = \"dead_letter\"\ndead_letter_topic = {}\n",
        toml_str(&topic),
        toml_str(spool.to_str().unwrap()),
        toml_str(&dlq)
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("people.toml", source);
    let config = write_config(dir.path(), &spec);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{}", registry.main_section())).unwrap();
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    assert_eq!(registry.decode(&broker, &topic, 2, false).len(), 2);
    // A column without a default: the registry refuses the schema; the
    // rows go to the dead-letter topic as JSON and the source goes on.
    std::fs::write(spool.join("b.csv"), "seq,name,email\n2,cid,c@x\n").unwrap();
    let letters = raw_values(&broker.bootstrap(), &dlq, 1);
    assert_eq!(letters.len(), 1, "no dead letter:\n{}", daemon.log_text());
    let letter: Value = serde_json::from_slice(&letters[0]).unwrap();
    assert_eq!(letter["email"], "c@x", "{letter}");
    std::fs::write(spool.join("c.csv"), "seq,name\n3,dan\n").unwrap();
    let decoded = registry.decode(&broker, &topic, 3, false);
    assert_eq!(decoded.len(), 3, "{decoded:?}");
    // Records spread over partitions: find c.csv's row by its seq.
    assert!(
        decoded
            .iter()
            .any(|r| r["value"]["seq"] == 3 && r["value"]["name"] == "dan"),
        "{decoded:?}"
    );
    assert!(
        !daemon.log_text().contains("restarting"),
        "{}",
        daemon.log_text()
    );
    daemon.sigterm_and_wait(Duration::from_secs(30));
}

/// A registry stand-in served over TLS by Python's `http.server`: it
/// answers `POST /subjects/*/versions` with id 42 when the basic
/// credentials are `reg:s3cret`, 401 otherwise, and logs each request's
/// path and Authorization header. It checks the transport and the
/// credentials, which the real registry above runs without. Stopped (by
/// its PID) when dropped.
struct TlsRegistry {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
}

impl TlsRegistry {
    fn start(dir: &TempDir) -> (TlsRegistry, std::path::PathBuf) {
        let certs = dir.join("certs");
        let ca = Ca::new(&certs, "registry-ca");
        ca.server_cert(&certs, &["IP:127.0.0.1"]);
        let port = free_port();
        let log = dir.join("registry-requests.log");
        let script = format!(
            r#"
import base64, http.server, json, ssl
LOG = {log:?}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        with open(LOG, "a") as f:
            f.write(self.path + " " + auth + "\n")
        ok = auth == "Basic " + base64.b64encode(b"reg:s3cret").decode()
        json.loads(body)["schema"]
        reply = json.dumps({{"id": 42}} if ok else {{"error_code": 401, "message": "bad credentials"}}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain({crt:?}, {key:?})
s = http.server.HTTPServer(("127.0.0.1", {port}), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#,
            log = log.to_str().unwrap(),
            crt = certs.join("server.crt").to_str().unwrap(),
            key = certs.join("server.key").to_str().unwrap(),
        );
        let child = Command::new("python3")
            .args(["-c", &script])
            .spawn()
            .expect("start the TLS registry stand-in");
        let url = format!("https://127.0.0.1:{port}");
        assert!(
            wait_until(Duration::from_secs(20), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "the TLS registry stand-in did not listen"
        );
        (TlsRegistry { child, url, log }, ca.cert)
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the daemon on `config` to its end with `SR_PASSWORD` set.
fn run_with_password(config: &std::path::Path, password: &str) -> std::process::Output {
    Command::new(daemon_bin())
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--exit-when-finished",
        ])
        .env("SR_PASSWORD", password)
        .output()
        .expect("run the daemon")
}

#[test]
fn avro_registers_over_tls_with_a_private_ca_and_basic_credentials_from_the_environment() {
    if !openssl_available() {
        eprintln!("no openssl here: nothing to test");
        return;
    }
    let dir = TempDir::new("serializers-avro-tls");
    let broker = Broker::start(broker_of_record(), dir.path());
    let (registry, ca) = TlsRegistry::start(&dir);
    let topic = broker.topic("secure");
    let source = datagen_source("secure", &topic, 20, 1_000, 5)
        .replace("format = \"json\"", "format = \"avro\"");
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("secure.toml", source);
    let config = write_config(dir.path(), &spec);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[schema_registry]\nurl = {}\nusername = \"reg\"\npassword = \"${{env:SR_PASSWORD}}\"\nca_file = {}\n",
            toml_str(&registry.url),
            toml_str(ca.to_str().unwrap())
        ),
    )
    .unwrap();
    let out = run_with_password(&config, "s3cret");
    assert!(out.status.success(), "{}", output_text(&out));
    let values = raw_values(&broker.bootstrap(), &topic, 20);
    assert_eq!(values.len(), 20);
    for v in &values {
        assert_eq!(
            &v[..5],
            &[0, 0, 0, 0, 42],
            "Confluent framing with the registry's id"
        );
    }
    let requests = std::fs::read_to_string(&registry.log).unwrap();
    assert!(
        requests.starts_with(&format!(
            "/subjects/{topic}-value/versions Basic cmVnOnMzY3JldA=="
        )),
        "{requests}"
    );
    // The wrong password: refused for good, named, nothing sent.
    let topic2 = broker.topic("secure2");
    // Another source (its own offsets) on another topic.
    let dropin = dir.join("conf.d/secure.toml");
    let text = std::fs::read_to_string(&dropin)
        .unwrap()
        .replace(&topic, &topic2)
        .replace("name = \"secure\"", "name = \"secure2\"");
    std::fs::write(&dropin, text).unwrap();
    let out = run_with_password(&config, "wrong");
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("HTTP 401") && text.contains("bad credentials"),
        "{text}"
    );
    assert!(!text.contains("restarting"), "{text}");
}

#[test]
fn a_log_file_source_routes_by_status_with_headers_and_the_lines_own_time() {
    let dir = TempDir::new("serializers-shape-logfile");
    let broker = Broker::start(broker_of_record(), dir.path());
    let prefix = broker.topic("access");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lines = 60u32;
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "10.0.0.{i} - - [10/Oct/2000:13:{:02}:36 -0700] \"GET /item/{i} HTTP/1.1\" {} 10 \"-\" \"curl/8\"\n",
            i % 60,
            [200, 404, 500][i as usize % 3],
        ));
    }
    std::fs::write(logs.join("access.log"), text).unwrap();
    let source = logfile_source(
        "access",
        &format!("{prefix}.{{status}}"),
        logs.join("access.log").to_str().unwrap(),
        "parser = \"nginx_combined\"\nread_from = \"beginning\"\n\
         headers = [\"remote_addr\"]\ntimestamp = \"time_local\"\n",
    );
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path()).drop_in("access.toml", source);
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let topics: Vec<String> = [200, 404, 500]
        .iter()
        .map(|s| format!("{prefix}.{s}"))
        .collect();
    // The three topics exist once the daemon created them.
    assert!(
        wait_until(Duration::from_secs(60), || {
            daemon.log_text().matches("Created topic").count() >= 3
        }),
        "{}",
        daemon.log_text()
    );
    let seen = read_records(&broker.bootstrap(), &topics, lines as usize);
    daemon.sigterm_and_wait(Duration::from_secs(30));
    assert_eq!(seen.len(), lines as usize);
    for r in &seen {
        let status = r.value["status"].as_u64().unwrap();
        assert_eq!(r.topic, format!("{prefix}.{status}"), "{}", r.value);
        let addr = r
            .headers
            .iter()
            .find(|(k, _)| k == "remote_addr")
            .map(|(_, v)| v.as_str());
        assert_eq!(addr, r.value["remote_addr"].as_str(), "{}", r.value);
        let i: i64 = r.value["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // 13:MM:36 -0700 on 10 Oct 2000 is 20:MM:36 UTC.
        let want = chrono_free_millis(&format!("2000-10-10T20:{:02}:36Z", i % 60));
        assert_eq!(r.timestamp, Some(want), "{}", r.value);
    }
}
