#!/usr/bin/env python3
"""Kafka chores for the benchmarks, done with an independent client
(confluent-kafka): create topics, dump and count a topic, produce a file of
pre-serialised lines the way a tuned script would, read high watermarks."""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _, f in admin.create_topics([NewTopic(topic, int(partitions), 1)]).items():
        try:
            f.result(30)
        except Exception as e:  # already exists is fine
            if "already exists" not in str(e).lower():
                raise


def dump(bootstrap, topic, expected, out_path):
    """Reads the whole topic; writes "key<TAB>value" lines; checks seq."""
    expected = int(expected)
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-dump-{time.time_ns()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    })
    md = c.list_topics(topic, timeout=30)
    parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    c.assign(parts)
    seen = set()
    total = 0
    deadline = time.time() + 300
    with open(out_path, "wb") as out:
        # Until every record is read (a producer that picks payloads at
        # random repeats seqs), then one more second for any extra ones.
        while time.time() < deadline:
            if total >= expected:
                deadline = min(deadline, time.time() + 1.0)
            for m in c.consume(10000, timeout=0.5):
                if m.error():
                    continue
                v = m.value()
                out.write((m.key() or b"") + b"\t" + v + b"\n")
                try:
                    seen.add(json.loads(v)["seq"])
                except (ValueError, KeyError, TypeError):
                    pass  # not a JSON row (Avro, Connect's envelope): counted only
                total += 1
    c.close()
    missing = expected - len([s for s in seen if s < expected])
    print(f"{total} {len(seen)} {missing}")


def produce(bootstrap, topic, path):
    """The ceiling for a script: pre-serialised "key<TAB>value" lines,
    same producer settings as the daemon."""
    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 100000,
    })
    n = 0
    with open(path, "rb") as f:
        for line in f:
            while True:
                try:
                    key, value = line.rstrip(b"\n").split(b"\t", 1)
                    p.produce(topic, value, key)
                    break
                except BufferError:
                    p.poll(0.01)
            n += 1
            if n % 1000 == 0:
                p.poll(0)
    left = p.flush(120)
    if left:
        sys.exit(f"{left} records not delivered")


def watermarks(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-wm"})
    md = c.list_topics(topic, timeout=30)
    total = 0
    for p in md.topics[topic].partitions:
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        total += high
    c.close()
    print(total)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
