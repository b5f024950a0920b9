#!/usr/bin/env python3
"""Reads a topic and decodes Confluent-framed Avro with Confluent's own client.

An independent reader for the tests of `format = "avro"`: the values (and,
with --key-avro, the keys) go through confluent-kafka's AvroDeserializer,
which fetches each writer schema by id from the schema registry
(SchemaRegistryClient, GET /schemas/ids/{id}). Nothing of tributary's is
used to decode.

    python avro_decode.py --bootstrap 127.0.0.1:9092 \
        --registry http://127.0.0.1:8081/apis/ccompat/v7 \
        --topic orders --count 10 [--timeout 30] [--key-avro]

Every partition is read from the beginning with isolation.level =
read_committed. One JSON line per record on stdout, in the order they
arrive (in offset order within a partition):

    {"partition": 0, "offset": 3, "key": "k3", "value": {...},
     "schema_id": 1}

- "key": the key as UTF-8 text (null for no key), or with --key-avro the
  decoded key; then "key_schema_id" is added.
- "value": the decoded datum (null for a tombstone). Logical types come out
  as fastavro gives them and are then written as: timestamps, dates and
  times as ISO 8601 strings, decimals as strings, UUIDs as strings, bytes
  and fixed as lowercase hex.
- "schema_id": bytes 1..5 of the value, big-endian (null for a tombstone).

Exit status: 0 once --count records were printed (--count 0: read until
--timeout, then 0); 1 when the timeout came first (the records read are
printed); 2 when a record could not be decoded (a line
{"partition":..,"offset":..,"error":"..."} is printed, then it stops) or
on bad arguments. Needs confluent-kafka with its avro extra
(`scripts/schema-registry python` prints an interpreter that has it).
"""

import argparse
import datetime
import decimal
import json
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def to_json(obj):
    """json.dumps default= for what fastavro returns beyond JSON's types."""
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def schema_id(data):
    if data is None or len(data) < 5:
        return None
    return int.from_bytes(data[1:5], "big")


def partitions(consumer, topic, deadline):
    """The topic's partition ids, waiting for the topic to exist."""
    last = None
    while True:
        left = deadline - time.monotonic()
        try:
            md = consumer.list_topics(topic=topic, timeout=max(0.5, min(left, 5.0)))
            tmd = md.topics.get(topic)
            if tmd is not None and tmd.error is None and tmd.partitions:
                return sorted(tmd.partitions)
            last = tmd.error if tmd is not None else "no metadata"
        except KafkaException as e:
            last = e
        if time.monotonic() >= deadline:
            raise SystemExit(f"avro_decode: topic {topic!r} not found before the timeout ({last})")
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    ap.add_argument("--registry", required=True, help="schema registry base URL")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True, help="records to read (0: until --timeout)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    ap.add_argument("--key-avro", action="store_true", help="keys are Confluent-framed Avro too")
    args = ap.parse_args()
    if args.count < 0:
        ap.error("--count must be >= 0")

    deadline = time.monotonic() + args.timeout
    registry = SchemaRegistryClient({"url": args.registry})
    value_deser = AvroDeserializer(registry)
    key_deser = AvroDeserializer(registry) if args.key_avro else None

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"avro-decode-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
        }
    )
    got = 0
    try:
        parts = partitions(consumer, args.topic, deadline)
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
        while args.count == 0 or got < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            msg = consumer.poll(min(left, 0.5))
            if msg is None:
                continue
            if msg.error():
                if msg.error().fatal():
                    raise SystemExit(f"avro_decode: {msg.error()}")
                print(f"avro_decode: {msg.error()}", file=sys.stderr)
                continue
            topic, part, off = msg.topic(), msg.partition(), msg.offset()
            raw_key, raw_value = msg.key(), msg.value()
            line = {"partition": part, "offset": off}
            try:
                if key_deser is not None:
                    key = key_deser(raw_key, SerializationContext(topic, MessageField.KEY, msg.headers()))
                elif raw_key is None:
                    key = None
                else:
                    key = raw_key.decode("utf-8", errors="replace")
                value = value_deser(raw_value, SerializationContext(topic, MessageField.VALUE, msg.headers()))
            except Exception as e:  # SerializationError, SchemaRegistryError, fastavro's
                line["error"] = f"{type(e).__name__}: {e}"
                print(json.dumps(line), flush=True)
                return 2
            line["key"] = key
            if key_deser is not None:
                line["key_schema_id"] = schema_id(raw_key)
            line["value"] = value
            line["schema_id"] = schema_id(raw_value)
            print(json.dumps(line, default=to_json, ensure_ascii=False), flush=True)
            got += 1
    finally:
        consumer.close()
    if args.count and got < args.count:
        print(f"avro_decode: {got} of {args.count} records before the {args.timeout:g}s timeout", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
