#!/usr/bin/env python3
"""Helpers for benches/tables.sh: write the orders CSV and the same rows as
pre-serialised JSON lines, and the two ways people send a CSV to Kafka from
Python today (pandas.read_csv + iterrows + a producer per row)."""
import json
import sys

HEADER = (
    "seq,order_id,customer_id,sku,qty,unit_price,total,currency,status,channel,city,created_at"
)
STATUSES = ["new", "paid", "shipped", "delivered", "returned"]
CURRENCIES = ["EUR", "USD", "GBP"]
CHANNELS = ["web", "mobile", "store", "partner"]
CITIES = ["Amsterdam", "Berlin", "Copenhagen", "Dublin", "Edinburgh", "Frankfurt", "Lisbon"]


def row(seq):
    qty = 1 + seq % 9
    unit = 100 + (seq * 7919) % 90000  # cents
    return {
        "seq": seq,
        "order_id": 10_000_000 + seq,
        "customer_id": f"cust-{(seq * 2654435761) % 50000:05d}",
        "sku": f"SKU-{(seq * 40503) % 100000:05d}",
        "qty": qty,
        "unit_price": f"{unit // 100}.{unit % 100:02d}",
        "total": f"{unit * qty // 100}.{unit * qty % 100:02d}",
        "currency": CURRENCIES[seq % 3],
        "status": STATUSES[seq % 5],
        "channel": CHANNELS[seq % 4],
        "city": CITIES[seq % 7],
        "created_at": "2024-05-%02d %02d:%02d:%02d"
        % (1 + seq // 86400 % 28, seq // 3600 % 24, seq // 60 % 60, seq % 60),
    }


def write(n, csv_path, lines_path):
    """The CSV, and "key<TAB>json" lines with the JSON tributary writes for
    it (numbers as numbers, decimals as numbers, timestamps in RFC 3339)."""
    n = int(n)
    with open(csv_path, "w") as c, open(lines_path, "w") as j:
        c.write(HEADER + "\n")
        for seq in range(n):
            r = row(seq)
            c.write(",".join(str(r[k]) for k in HEADER.split(",")) + "\n")
            v = dict(r)
            v["unit_price"] = float(v["unit_price"])
            v["total"] = float(v["total"])
            v["created_at"] = v["created_at"].replace(" ", "T") + "Z"
            j.write(v["customer_id"] + "\t" + json.dumps(v, separators=(",", ":")) + "\n")


def repeat(csv_path, out_path, target_bytes):
    """A big CSV: the rows of `csv_path` over and over up to `target_bytes`."""
    target = int(target_bytes)
    with open(csv_path, "rb") as f:
        header = f.readline()
        body = f.read()
    with open(out_path, "wb") as out:
        out.write(header)
        written = len(header)
        while written < target:
            out.write(body)
            written += len(body)


def _numpy_default(o):
    # iterrows hands out numpy scalars, which json cannot serialise.
    return o.item() if hasattr(o, "item") else str(o)


def pandas_kafka_python(bootstrap, topic, csv_path, settings=None):
    """pandas.read_csv + iterrows + kafka-python KafkaProducer with a JSON
    value_serializer; `settings` are more KafkaProducer arguments."""
    import pandas as pd
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        key_serializer=lambda k: k.encode(),
        value_serializer=lambda v: json.dumps(v, default=_numpy_default).encode(),
        # kafka-python's version probe fails against librdkafka's mock
        # cluster; the 2.0 protocol is what it would pick against Kafka 2.x.
        **{"api_version": (2, 0, 0), **(settings or {})},
    )
    df = pd.read_csv(csv_path)
    for _, r in df.iterrows():
        producer.send(topic, key=r["customer_id"], value=r.to_dict())
    producer.flush()
    producer.close()


def pandas_confluent_kafka(bootstrap, topic, csv_path, settings=None):
    """pandas.read_csv + iterrows + confluent-kafka, json.dumps per row;
    `settings` are more producer properties."""
    import pandas as pd
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, **(settings or {})})
    df = pd.read_csv(csv_path)
    for _, r in df.iterrows():
        value = json.dumps(r.to_dict(), default=_numpy_default).encode()
        while True:
            try:
                producer.produce(topic, value, r["customer_id"].encode())
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(300)
    if left:
        sys.exit(f"{left} records not delivered")


# The same two loops with the producer set as tributary's own
# (daemon/src/producer/mod.rs: idempotent, acks=all, linger 5 ms, 10,000
# records per batch, a 64 MB / 100k-record queue, no compression), for
# benches/peers/tables.sh against Apache Kafka. kafka-python counts batches
# in bytes per partition: 1 MB, ~10,000 records of 100 bytes, as the Java
# client gets in benches/peers/lib.sh; it probes the broker's versions.
CONFLUENT_KAFKA_AS_TRIBUTARY = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "queue.buffering.max.kbytes": 65536,
    "queue.buffering.max.messages": 100000,
    "compression.codec": "none",
}
KAFKA_PYTHON_AS_TRIBUTARY = {
    "api_version": None,
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 1_000_000,
    "compression_type": None,
}


def peer_confluent_kafka(bootstrap, topic, csv_path):
    pandas_confluent_kafka(bootstrap, topic, csv_path, CONFLUENT_KAFKA_AS_TRIBUTARY)


def peer_kafka_python(bootstrap, topic, csv_path):
    pandas_kafka_python(bootstrap, topic, csv_path, KAFKA_PYTHON_AS_TRIBUTARY)


if __name__ == "__main__":
    name = sys.argv[1].replace("-", "_")
    globals()[name](*sys.argv[2:])
