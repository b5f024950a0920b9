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
use rdkafka::message::Message;
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
