#!/usr/bin/env python3
"""The writer and the oracle of benches/peers/reliability.sh.

  rotation.py write LOG TOTAL RATE ROTATE_S
      Appends TOTAL lines `{"seq":N}` to LOG at RATE lines/s, and every
      ROTATE_S seconds rotates it by rename the way logrotate's `create`
      does: LOG.k -> LOG.k+1 for every k (oldest first), LOG -> LOG.1, then
      a new empty LOG. No rotated file is deleted, so a line a shipper never
      read is the shipper's loss, not the rotation's. Each line is written
      whole with one write(2). Prints the number of rotations.

  rotation.py count BOOTSTRAP TOPIC WRITTEN
      Reads the whole topic, committed records only (every partition, from
      the beginning to its end) and prints `missing duplicated out_of_range`: seqs in
      [0, WRITTEN) never seen, extra copies of seqs seen, and records that
      are not a line the writer wrote.
"""

import json
import os
import sys
import time


def rotate(log):
    directory, base = os.path.split(log)
    numbers = sorted(
        (int(name[len(base) + 1:]) for name in os.listdir(directory or ".")
         if name.startswith(base + ".") and name[len(base) + 1:].isdigit()),
        reverse=True,
    )
    for k in numbers:
        os.rename(f"{log}.{k}", f"{log}.{k + 1}")
    os.rename(log, f"{log}.1")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return fd


def write(log, total, rate, rotate_s):
    total, rate, rotate_s = int(total), float(rate), float(rotate_s)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = time.monotonic()
    next_rotation = start + rotate_s
    rotations = 0
    seq = 0
    # Lines go out in slices of 10 ms, each line its own write(2) so a
    # rotation falls between lines, never inside one.
    while seq < total:
        now = time.monotonic()
        if now >= next_rotation:
            os.close(fd)
            fd = rotate(log)
            rotations += 1
            next_rotation += rotate_s
        due = min(total, int((now - start) * rate) + 1)
        while seq < due:
            os.write(fd, f'{{"seq":{seq}}}\n'.encode())
            seq += 1
        time.sleep(0.01)
    os.close(fd)
    print(rotations)


def count(bootstrap, topic, written):
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    written = int(written)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "reliability-oracle",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        # Only what a transaction committed (tributary's exactly-once runs).
        "isolation.level": "read_committed",
    })
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = []
    for p in metadata.topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high > low:
            partitions.append((TopicPartition(topic, p, low), high))
    consumer.assign([tp for tp, _ in partitions])
    remaining = {tp.partition: high for tp, high in partitions}
    seen = [0] * written
    out_of_range = 0
    deadline = time.monotonic() + 300
    while remaining and time.monotonic() < deadline:
        for message in consumer.consume(10000, timeout=1):
            if message.error():
                # The end of a partition whose last offsets are transaction
                # markers, which read_committed never returns.
                if message.error().code() == KafkaError._PARTITION_EOF:
                    remaining.pop(message.partition(), None)
                continue
            try:
                seq = json.loads(message.value())["seq"]
            except (ValueError, KeyError, TypeError):
                seq = -1
            if isinstance(seq, int) and 0 <= seq < written:
                seen[seq] += 1
            else:
                out_of_range += 1
            if message.offset() + 1 >= remaining.get(message.partition(), 0):
                remaining.pop(message.partition(), None)
    consumer.close()
    if remaining:
        sys.exit(f"{topic}: could not read partitions {sorted(remaining)} to their end")
    missing = sum(1 for n in seen if n == 0)
    duplicated = sum(n - 1 for n in seen if n > 1)
    print(missing, duplicated, out_of_range)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
