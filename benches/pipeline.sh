#!/usr/bin/env bash
# Throughput of the whole pipeline: N datagen order rows -> JSON -> broker
# process on loopback, side by side with peers sending the same rows as
# pre-serialised JSON lines with the same producer settings (idempotent,
# acks=all, linger 5 ms, 10k-record batches):
#   A. librdkafka mock cluster in its own process: tributary vs `kcat -P -l`
#      (the ceiling: C, no serialisation), with the same keys (customer_id,
#      `kcat -K`) and without keys (sticky partitioning, larger batches).
#   B. Apache Kafka (scripts/kafka, one KRaft node): tributary vs a
#      confluent-kafka (Python) producer loop. benches/kafka.sh compares
#      against Kafka's own Java producer and Connect on the same broker.
# Prints rows/s, CPU seconds and peak RSS of each, and the ratios.
#
#   benches/pipeline.sh            # N=1000000
#   N=200000 benches/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
PARTITIONS="${PARTITIONS:-8}"
work="$(mktemp -d /tmp/tributary-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    KAFKA_DATA="$work/kafka" scripts/kafka stop || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --workspace -q
bin=target/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# measure NAME CMD...: runs CMD under GNU time, appends "name wall user sys rss_kb".
measure() {
    local name="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" || {
        echo "$name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
    echo "$name $(cat "$work/$name.time")" >> "$work/results"
}

write_config() { # bootstrap topic file [key line] (fresh offsets per config file)
    local key_line='key = "customer_id"'
    [ $# -ge 4 ] && key_line="$4"
    cat > "$3" <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$1"
topic_partitions = $PARTITIONS
[offsets]
dir = "$3.offsets"
[http]
listen = "off"
[[source]]
name = "bench"
type = "datagen"
topic = "$2"
$key_line
kind = "orders"
rate_per_sec = 0
batch_size = 10000
count = $N
seed = 1
TOML
}

echo "== B. Apache Kafka (broker process, scripts/kafka)"
kafka="$(KAFKA_DATA="$work/kafka" KAFKA_HEAP=1g scripts/kafka start | tail -1)"
python3 benches/kafka_tool.py create "$kafka" tributary "$PARTITIONS"
write_config "$kafka" tributary "$work/kafka.toml"
measure kafka_tributary "$bin/tributary" run --config "$work/kafka.toml" --exit-when-finished
read -r total distinct missing < <(python3 benches/kafka_tool.py dump "$kafka" tributary "$N" "$work/lines.json")
echo "   tributary -> Kafka: consumed $total records, $distinct distinct, $missing missing"
[ "$missing" = 0 ] || { echo "records missing on Kafka" >&2; exit 1; }
python3 benches/kafka_tool.py create "$kafka" python "$PARTITIONS"
measure kafka_confluent_kafka python3 benches/kafka_tool.py produce "$kafka" python "$work/lines.json"
read -r total _ _ < <(python3 benches/kafka_tool.py dump "$kafka" python "$N" /dev/null)
echo "   confluent-kafka -> Kafka: consumed $total records"
[ "$total" = "$N" ] || { echo "confluent-kafka: expected $N records" >&2; exit 1; }

echo "== A. librdkafka mock cluster (broker process)"
# Every run gets its own topic; the first run on a fresh broker is slower
# (warm-up), so one untimed run comes first and each measurement is the
# median of REPEAT runs taken in turn.
REPEAT="${REPEAT:-3}"
topics=(warmup:$PARTITIONS)
for r in $(seq "$REPEAT"); do
    for t in tributary kcat tributary_nokey kcat_nokey; do topics+=("${t}_$r:$PARTITIONS"); done
done
"$bin/mock-broker" "${topics[@]}" > "$work/mock.addr" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/mock.addr" ] && break; sleep 0.1; done
mock="$(head -1 "$work/mock.addr")"
kcat_opts=(-X enable.idempotence=true -X acks=all -X linger.ms=5 -X batch.num.messages=10000
    -X queue.buffering.max.messages=100000)
cut -f2- "$work/lines.json" > "$work/values.json"
write_config "$mock" warmup "$work/warmup.toml"
"$bin/tributary" run --config "$work/warmup.toml" --exit-when-finished 2> /dev/null
for r in $(seq "$REPEAT"); do
    write_config "$mock" "tributary_$r" "$work/mock-$r.toml"
    measure "mock_tributary_$r" "$bin/tributary" run --config "$work/mock-$r.toml" --exit-when-finished
    measure "mock_kcat_$r" kcat -P -b "$mock" -t "kcat_$r" -K $'\t' -l "${kcat_opts[@]}" "$work/lines.json"
    write_config "$mock" "tributary_nokey_$r" "$work/mock-nokey-$r.toml" ""
    measure "mock_tributary_nokey_$r" "$bin/tributary" run --config "$work/mock-nokey-$r.toml" --exit-when-finished
    measure "mock_kcat_nokey_$r" kcat -P -b "$mock" -t "kcat_nokey_$r" -l "${kcat_opts[@]}" "$work/values.json"
    for t in tributary kcat tributary_nokey kcat_nokey; do
        high="$(python3 benches/kafka_tool.py watermarks "$mock" "${t}_$r")"
        [ "$high" = "$N" ] || { echo "${t}_$r: $high records on the mock broker, expected $N" >&2; exit 1; }
    done
done
echo "   every mock run: high watermarks sum to $N"

echo
python3 - "$work/results" "$N" "$(wc -c < "$work/values.json")" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, user, sys_, rss = line.split()
    base = name.rsplit("_", 1)[0] if name.startswith("mock_") else name
    runs.setdefault(base, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024))
rows = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
n, size = int(sys.argv[2]), int(sys.argv[3])
print(f"{n} order rows, {size / n:.0f} bytes/row as JSON; mock figures are medians of {len(runs['mock_kcat'])} runs")
print(f"{'run':<24}{'rows/s':>12}{'MB/s':>8}{'CPU s':>8}{'peak RSS MB':>13}")
for name, (wall, cpu, rss) in rows.items():
    print(f"{name:<24}{n / wall:>12,.0f}{size / wall / 1e6:>8.1f}{cpu:>8.2f}{rss:>13.1f}")
def ratio(a, b):
    return rows[b][0] / rows[a][0]
print(f"\nmock broker, keyed:   tributary / kcat throughput = {ratio('mock_tributary', 'mock_kcat'):.2f}x (target >= 0.6x)")
print(f"mock broker, unkeyed: tributary / kcat throughput = {ratio('mock_tributary_nokey', 'mock_kcat_nokey'):.2f}x (target >= 0.6x)")
print(f"Apache Kafka, keyed: tributary / confluent-kafka throughput = {ratio('kafka_tributary', 'kafka_confluent_kafka'):.2f}x")
PY
