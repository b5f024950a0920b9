"""Helpers of benches/logfile.sh: make the input file, wait for a topic to
hold N records, and the steady-append run (a writer at a fixed rate plus a
sampler of the topic's high watermarks, from which the delay from write to
broker acknowledgement is computed).

    python3 logbench.py gen PATH N
    python3 logbench.py wait BOOTSTRAP TOPIC N TIMEOUT_S
    python3 logbench.py steady PATH RATE SECONDS BOOTSTRAP TOPIC
"""

import bisect
import json
import sys
import threading
import time

from confluent_kafka import Consumer, TopicPartition

LINE_BYTES = 100


def line(seq):
    head = '{"seq":%d,"msg":"' % seq
    return head + "x" * (LINE_BYTES - len(head) - 3) + '"}\n'


def gen(path, n):
    with open(path, "w") as f:
        batch = []
        for seq in range(int(n)):
            batch.append(line(seq))
            if len(batch) == 10000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))


class Watermarks:
    """Sums the high watermarks of every partition of a topic."""

    def __init__(self, bootstrap, topic):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "logbench"})
        md = self.c.list_topics(topic, timeout=30)
        self.parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]

    def total(self):
        return sum(self.c.get_watermark_offsets(p, timeout=10, cached=False)[1] for p in self.parts)


def wait(bootstrap, topic, n, timeout):
    """Prints the wall-clock time at which the topic first held N records."""
    wm = Watermarks(bootstrap, topic)
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        if wm.total() >= int(n):
            print("%.3f" % time.time())
            return
        time.sleep(0.02)
    sys.exit("timed out: %d of %s records" % (wm.total(), n))


def steady(path, rate, seconds, bootstrap, topic):
    rate, seconds = int(rate), float(seconds)
    wm = Watermarks(bootstrap, topic)
    base = wm.total()
    samples = []  # (time, delivered)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.monotonic(), wm.total() - base))

    sampler = threading.Thread(target=sample)
    sampler.start()
    writes = []  # (time, written so far)
    tick = 0.01
    start = time.monotonic()
    written = 0
    with open(path, "a", buffering=1 << 20) as f:
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            due = int((now - start) * rate)
            if due > written:
                f.write("".join(line(s) for s in range(written, due)))
                f.flush()
                writes.append((time.monotonic(), due))
                written = due
            time.sleep(max(0.0, tick - (time.monotonic() - now)))
    end_written = time.monotonic()
    lag_at_end = written - (samples[-1][1] if samples else 0)
    drain_deadline = end_written + 60
    while time.monotonic() < drain_deadline and (not samples or samples[-1][1] < written):
        time.sleep(0.01)
    stop.set()
    sampler.join()
    drained = samples[-1][0] - end_written if samples and samples[-1][1] >= written else None
    # Delay of each write burst: from its write to the first sample whose
    # count covers it, weighted by the lines in the burst.
    times = [t for t, _ in samples]
    counts = [c for _, c in samples]
    delays = []
    prev = 0
    for t, c in writes:
        i = bisect.bisect_left(counts, c)
        if i < len(counts):
            j = bisect.bisect_left(times, t)
            i = max(i, j)
            if i < len(times):
                delays.append((times[i] - t, c - prev))
        prev = c
    delays.sort()
    total = sum(w for _, w in delays)

    def pct(p):
        acc = 0
        for d, w in delays:
            acc += w
            if acc >= p * total:
                return d * 1000
        return float("nan")

    max_lag = 0
    for t, c in writes:
        i = bisect.bisect_right(times, t) - 1
        if i >= 0:
            max_lag = max(max_lag, c - counts[i])
    print(json.dumps({
        "written": written,
        "delivered": samples[-1][1] if samples else 0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": delays[-1][0] * 1000 if delays else float("nan"),
        "lag_at_end": lag_at_end,
        "max_lag": max_lag,
        "drain_s": drained,
        "sample_interval_ms": 1000 * (times[-1] - times[0]) / max(1, len(times) - 1) if times else None,
    }))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
