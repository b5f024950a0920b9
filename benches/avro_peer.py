#!/usr/bin/env python3
"""The script people write today to send a CSV to Kafka as Avro: csv.DictReader,
confluent-kafka's own AvroSerializer with a SchemaRegistryClient, one
produce() per row, acks=all, idempotence on, flush at the end. The peer of
benches/avro.sh.

    avro_peer.py BOOTSTRAP REGISTRY_URL TOPIC CSV
"""
import csv
import datetime
import decimal
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

SCHEMA = """{"type": "record", "name": "Order", "fields": [
 {"name": "seq", "type": "long"}, {"name": "order_id", "type": "long"},
 {"name": "customer_id", "type": "string"}, {"name": "sku", "type": "string"},
 {"name": "qty", "type": "long"},
 {"name": "unit_price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
 {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
 {"name": "currency", "type": "string"}, {"name": "status", "type": "string"},
 {"name": "channel", "type": "string"}, {"name": "city", "type": "string"},
 {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}"""


def main():
    bootstrap, registry, topic, path = sys.argv[1:5]
    serializer = AvroSerializer(SchemaRegistryClient({"url": registry}), SCHEMA)
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
        "linger.ms": 5, "batch.size": 1000000, "queue.buffering.max.messages": 1000000,
    })
    ctx = SerializationContext(topic, MessageField.VALUE)
    utc = datetime.timezone.utc
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            value = {
                "seq": int(r["seq"]), "order_id": int(r["order_id"]),
                "customer_id": r["customer_id"], "sku": r["sku"], "qty": int(r["qty"]),
                "unit_price": decimal.Decimal(r["unit_price"]),
                "total": decimal.Decimal(r["total"]),
                "currency": r["currency"], "status": r["status"], "channel": r["channel"],
                "city": r["city"],
                "created_at": datetime.datetime.strptime(
                    r["created_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=utc),
            }
            while True:
                try:
                    producer.produce(topic, key=r["customer_id"], value=serializer(value, ctx))
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
    producer.flush()


if __name__ == "__main__":
    main()
