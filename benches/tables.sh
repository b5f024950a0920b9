#!/usr/bin/env bash
# Throughput of the `csv` table source: N orders rows as CSV (~90-100
# bytes/row) -> typed JSON -> librdkafka mock cluster in its own process on
# loopback, keyed by customer_id, side by side with:
#   kcat            `kcat -P -K '\t' -l` sending the same rows pre-serialised
#                   as JSON lines (the ceiling: C, no parsing, no typing);
#   confluent_kafka pandas.read_csv + iterrows + confluent-kafka Producer,
#                   json.dumps per row (how people do it today);
#   kafka_python    pandas.read_csv + iterrows + kafka-python
#                   KafkaProducer(value_serializer=json...).
# Python peers read PY_N rows (default N) and are compared by rows/s. Then
# the peak RSS of tributary reading a BIG_BYTES (default 2 GB) CSV.
# Prints rows/s, CPU seconds and peak RSS of each, and the ratios.
#
# KEYED=1 (default) keys every record by customer_id, as people's scripts
# do, and kcat sends the same keys (-K); KEYED=0 is the plain comparison
# with `kcat -P -l` and no keys.
#
#   benches/tables.sh                       # N=1000000, REPEAT=3, 2 GB RSS run
#   N=200000 PY_N=50000 BIG_BYTES=0 benches/tables.sh
#   KEYED=0 PY_N=200000 BIG_BYTES=0 benches/tables.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
PY_N="${PY_N:-$N}"
BIG_BYTES="${BIG_BYTES:-2000000000}"
PARTITIONS="${PARTITIONS:-8}"
REPEAT="${REPEAT:-3}"
KEYED="${KEYED:-1}"
python3 -c 'import pandas, kafka, confluent_kafka' 2>/dev/null || {
    echo "needs pandas, kafka-python and confluent-kafka: pip install pandas kafka-python confluent-kafka" >&2
    exit 1
}
work="$(mktemp -d /tmp/tributary-tables-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -q -p tributary -p tributary-tables
    cargo build --release -q -p tributary-tests --bin mock-broker
fi
bin=target/release

# measure NAME CMD...: runs CMD under GNU time, appends "name wall user sys rss_kb".
measure() {
    local name="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" || {
        echo "$name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
    echo "$name $(cat "$work/$name.time")" >> "$work/results"
}

key_line='key = "customer_id"'
[ "$KEYED" = 1 ] || key_line=''
write_config() { # bootstrap topic csv config
    cat > "$4" <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$1"
topic_partitions = $PARTITIONS
[offsets]
dir = "$4.offsets"
[http]
listen = "off"
[plugins]
dirs = ["$PWD/$bin"]
[[source]]
name = "bench"
type = "csv"
topic = "$2"
$key_line
format = "json"
path = "$3"
batch_rows = 10000
[source.columns]
unit_price = "decimal(10,2)"
total = "decimal(12,2)"
created_at = "timestamp(%Y-%m-%d %H:%M:%S)"
TOML
}

echo "== generating $N orders rows"
python3 benches/tables.py write "$N" "$work/orders.csv" "$work/lines.json"
head -n $((PY_N + 1)) "$work/orders.csv" > "$work/orders-py.csv"
cut -f2- "$work/lines.json" > "$work/values.json"
echo "   $(wc -c < "$work/orders.csv") bytes of CSV, $(( $(wc -c < "$work/orders.csv") / N )) bytes/row"

topics=(warmup:$PARTITIONS confluent_kafka:$PARTITIONS kafka_python:$PARTITIONS big:$PARTITIONS)
for r in $(seq "$REPEAT"); do topics+=("tributary_$r:$PARTITIONS" "kcat_$r:$PARTITIONS"); done
"$bin/mock-broker" "${topics[@]}" > "$work/mock.addr" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/mock.addr" ] && break; sleep 0.1; done
mock="$(head -1 "$work/mock.addr")"
kcat_opts=(-X enable.idempotence=true -X acks=all -X linger.ms=5 -X batch.num.messages=10000
    -X queue.buffering.max.messages=100000)

echo "== warm-up run (untimed)"
write_config "$mock" warmup "$work/orders-py.csv" "$work/warmup.toml"
"$bin/tributary" run --config "$work/warmup.toml" --exit-when-finished 2> /dev/null

# The machine may be shared: tributary and kcat take turns, REPEAT times,
# and the medians are compared.
for r in $(seq "$REPEAT"); do
    echo "== tributary (csv source), run $r"
    write_config "$mock" "tributary_$r" "$work/orders.csv" "$work/tributary-$r.toml"
    measure "tributary_$r" "$bin/tributary" run --config "$work/tributary-$r.toml" --exit-when-finished
    echo "== kcat -P -l (pre-serialised JSON lines), run $r"
    if [ "$KEYED" = 1 ]; then
        measure "kcat_$r" kcat -P -b "$mock" -t "kcat_$r" -K $'\t' -l "${kcat_opts[@]}" "$work/lines.json"
    else
        measure "kcat_$r" kcat -P -b "$mock" -t "kcat_$r" -l "${kcat_opts[@]}" "$work/values.json"
    fi
done
echo "== pandas + iterrows + confluent-kafka ($PY_N rows)"
measure confluent_kafka python3 benches/tables.py pandas-confluent-kafka "$mock" confluent_kafka "$work/orders-py.csv"
echo "== pandas + iterrows + kafka-python ($PY_N rows)"
measure kafka_python python3 benches/tables.py pandas-kafka-python "$mock" kafka_python "$work/orders-py.csv"
runs=(confluent_kafka kafka_python)
for r in $(seq "$REPEAT"); do runs+=("tributary_$r" "kcat_$r"); done
for t in "${runs[@]}"; do
    want=$N
    case $t in confluent_kafka|kafka_python) want=$PY_N ;; esac
    high="$(python3 benches/kafka_tool.py watermarks "$mock" "$t")"
    [ "$high" = "$want" ] || { echo "$t: $high records on the mock broker, expected $want" >&2; exit 1; }
done
echo "   every run: high watermarks sum to the rows sent"

if [ "$BIG_BYTES" != 0 ]; then
    echo "== peak RSS: tributary reading a $BIG_BYTES-byte CSV"
    python3 benches/tables.py repeat "$work/orders.csv" "$work/big.csv" "$BIG_BYTES"
    big_rows=$(( $(wc -l < "$work/big.csv") - 1 ))
    write_config "$mock" big "$work/big.csv" "$work/big.toml"
    measure big "$bin/tributary" run --config "$work/big.toml" --exit-when-finished
    echo "big_rows $big_rows $(wc -c < "$work/big.csv")" >> "$work/results"
    rm -f "$work/big.csv"
fi

echo
python3 - "$work/results" "$N" "$PY_N" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "big_rows":
        big_rows, big_bytes = int(f[1]), int(f[2])
        continue
    base = f[0].rsplit("_", 1)[0] if f[0].split("_")[-1].isdigit() else f[0]
    runs.setdefault(base, []).append((float(f[1]), float(f[2]) + float(f[3]), int(f[4]) / 1024))
rows = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
print(f"tributary and kcat: medians of {len(runs['kcat'])} runs each")
n, py_n = int(sys.argv[2]), int(sys.argv[3])
count = {"confluent_kafka": py_n, "kafka_python": py_n, "big": None}
print(f"{'run':<18}{'rows':>11}{'rows/s':>12}{'CPU s':>8}{'peak RSS MB':>13}")
rate = {}
for name, (wall, cpu, rss) in rows.items():
    c = count.get(name, n)
    if c is None:
        c = big_rows
    rate[name] = c / wall
    print(f"{name:<18}{c:>11,}{rate[name]:>12,.0f}{cpu:>8.2f}{rss:>13.1f}")
print()
print(f"tributary / kcat            = {rate['tributary'] / rate['kcat']:6.2f}x  (target >= 0.6x)")
print(f"tributary / confluent-kafka = {rate['tributary'] / rate['confluent_kafka']:6.2f}x  (target >= 5x)")
print(f"tributary / kafka-python    = {rate['tributary'] / rate['kafka_python']:6.2f}x  (target >= 40x)")
if "big" in rows:
    print(f"peak RSS reading a {big_bytes / 1e9:.1f} GB CSV ({big_rows:,} rows): "
          f"{rows['big'][2]:.1f} MB  (target < 150 MB)")
PY
