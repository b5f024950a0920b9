#!/usr/bin/env bash
# tributary side by side with Kafka's own clients, on one Apache Kafka 4.x
# broker (scripts/kafka: a KRaft node on loopback), in the same run:
#   tables   N orders rows, CSV -> JSON (csv source, no key)
#            vs ProducerPerformance (kafka-producer-perf-test: the Java
#            client at full speed) sending the same JSON values
#            (--payload-file), and `kcat -P -l` with the same values;
#   datagen  N generated orders -> JSON vs ProducerPerformance sending the
#            JSON values tributary produced in the first round;
#   logs     N 100-byte lines read cold from a file (logfile source) vs
#            Kafka Connect standalone with FileStreamSourceConnector on the
#            same file, and `kcat -P -l`.
# Every producer: acks=all, idempotence on, linger 5 ms, ~1 MB batches,
# 64 MB buffer, no compression. Runs alternate; medians of REPEAT runs.
# Throughput is over the whole wall time from start to the last record
# acknowledged (JVM start-up included: what a user waits for); CPU is the
# process's own (GNU time, or schedstat for the long-running ones).
#
#   benches/kafka.sh                      # N=1000000, REPEAT=3
#   N=200000 REPEAT=1 benches/kafka.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source benches/lib.sh
N="${N:-1000000}"
REPEAT="${REPEAT:-3}"
PARTITIONS="${PARTITIONS:-8}"
work="$(mktemp -d /tmp/tributary-kafka-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    KAFKA_DATA="$work/kafka" scripts/kafka stop || true
    rm -rf "$work"
}
trap cleanup EXIT

[ -n "${NO_BUILD:-}" ] || cargo build --release -q --workspace
bin="$PWD/target/release"
tick="$(getconf CLK_TCK)"

echo "== Apache Kafka"
broker="$(KAFKA_DATA="$work/kafka" KAFKA_HEAP=1g scripts/kafka start | tail -1)"
echo "   $broker"

# measure NAME CMD...: CMD under GNU time; appends "name wall cpu_s rss_kb".
measure() {
    local name="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" || {
        echo "$name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
    read -r wall user sys rss < "$work/$name.time"
    echo "$name $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}') $rss" >> "$work/results"
}
cpu_s() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.2f\n", s / 1e9}'; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
topic() { python3 benches/kafka_tool.py create "$broker" "$1" "$PARTITIONS"; }
check() { # topic: the broker must hold exactly N records
    local high
    high="$(python3 benches/kafka_tool.py watermarks "$broker" "$1")"
    [ "$high" = "$N" ] || { echo "$1: $high records on the broker, expected $N" >&2; exit 1; }
}

producer_props=(acks=all enable.idempotence=true linger.ms=5 batch.size=1000000
    buffer.memory=67108864 compression.type=none max.in.flight.requests.per.connection=5)
kcat_opts=(-X enable.idempotence=true -X acks=all -X linger.ms=5 -X batch.num.messages=10000
    -X queue.buffering.max.messages=100000)
perf_test() { # topic payload-file: the command line
    perf=(scripts/kafka class org.apache.kafka.tools.ProducerPerformance --topic "$1"
        --num-records "$N" --throughput -1 --payload-file "$2"
        --producer-props bootstrap.servers="$broker" "${producer_props[@]}")
}

echo "== inputs: $N rows and lines"
python3 benches/tables.py write "$N" "$work/orders.csv" "$work/lines.json"
cut -f2- "$work/lines.json" > "$work/values.json"
python3 benches/logbench.py gen "$work/app.log" "$N"
echo "   CSV $(( $(wc -c < "$work/orders.csv") / N )) B/row, JSON $(( $(wc -c < "$work/values.json") / N )) B/row"

tables_toml() { # topic
    tributary_toml "$work/off-$1"
    cat <<TOML
[[source]]
name = "bench"
type = "csv"
topic = "$1"
format = "json"
path = "$work/orders.csv"
batch_rows = 10000
[source.columns]
unit_price = "decimal(10,2)"
total = "decimal(12,2)"
created_at = "timestamp(%Y-%m-%d %H:%M:%S)"
TOML
}

datagen_toml() { # topic
    tributary_toml "$work/off-$1"
    cat <<TOML
[[source]]
name = "bench"
type = "datagen"
topic = "$1"
kind = "orders"
rate_per_sec = 0
batch_size = 10000
count = $N
seed = 1
TOML
}

logs_toml() { # topic
    tributary_toml "$work/off-$1"
    cat <<TOML
[[source]]
name = "bench"
type = "logfile"
topic = "$1"
include = ["$work/app.log"]
format = "string"
value_column = "line"
TOML
}

# until_acked NAME TOPIC CMD...: starts CMD (a follower that never ends on
# its own), stops it once the broker holds N records in TOPIC; appends
# "name wall cpu_s rss_kb" timed from the start to the last acknowledgement.
until_acked() {
    local name="$1" topic="$2"; shift 2
    local t0 done_at pid cpu rss
    t0="$(date +%s.%N)"
    "$@" > "$work/$name.out" 2> "$work/$name.err" &
    pid=$!
    pids+=("$pid")
    done_at="$(python3 benches/logbench.py wait "$broker" "$topic" "$N" 600)" || {
        tail -20 "$work/$name.err" "$work/$name.out" >&2; exit 1; }
    cpu="$(cpu_s "$pid")"; rss="$(hwm_kb "$pid")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name $(awk -v a="$t0" -v b="$done_at" 'BEGIN {print b - a}') $cpu $rss" >> "$work/results"
}

# Connect standalone with FileStreamSourceConnector on the log file.
connect_props() { # name topic: writes $work/NAME/{worker,connector}.properties
    local dir="$work/$1" props=""
    mkdir -p "$dir"
    for p in "${producer_props[@]}"; do props+="producer.$p"$'\n'; done
    cat > "$dir/worker.properties" <<PROPS
bootstrap.servers=$broker
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename=$dir/offsets
offset.flush.interval.ms=10000
listeners=http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$props
PROPS
    cat > "$dir/connector.properties" <<PROPS
name=$1
connector.class=org.apache.kafka.connect.file.FileStreamSourceConnector
tasks.max=1
file=$work/app.log
topic=$2
PROPS
}

: > "$work/results"
for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT"
    for t in tables_tributary_$r tables_perf_$r tables_kcat_$r datagen_tributary_$r datagen_perf_$r \
        logs_tributary_$r logs_connect_$r logs_kcat_$r; do topic "$t"; done
    tables_toml "tables_tributary_$r" > "$work/tables-$r.toml"
    measure "tables_tributary_$r" "$bin/tributary" run --config "$work/tables-$r.toml" --exit-when-finished
    perf_test "tables_perf_$r" "$work/values.json"
    measure "tables_perf_$r" "${perf[@]}"
    measure "tables_kcat_$r" kcat -P -b "$broker" -t "tables_kcat_$r" -l "${kcat_opts[@]}" "$work/values.json"
    datagen_toml "datagen_tributary_$r" > "$work/datagen-$r.toml"
    measure "datagen_tributary_$r" "$bin/tributary" run --config "$work/datagen-$r.toml" --exit-when-finished
    if [ ! -s "$work/datagen-values.json" ]; then
        # The peer sends what tributary's datagen produced, byte for byte.
        python3 benches/kafka_tool.py dump "$broker" "datagen_tributary_$r" "$N" "$work/datagen-lines.json" > /dev/null
        cut -f2- "$work/datagen-lines.json" > "$work/datagen-values.json"
    fi
    perf_test "datagen_perf_$r" "$work/datagen-values.json"
    measure "datagen_perf_$r" "${perf[@]}"
    logs_toml "logs_tributary_$r" > "$work/logs-$r.toml"
    until_acked "logs_tributary_$r" "logs_tributary_$r" "$bin/tributary" run --config "$work/logs-$r.toml"
    connect_props "logs_connect_$r" "logs_connect_$r"
    until_acked "logs_connect_$r" "logs_connect_$r" scripts/kafka class \
        org.apache.kafka.connect.cli.ConnectStandalone \
        "$work/logs_connect_$r/worker.properties" "$work/logs_connect_$r/connector.properties"
    measure "logs_kcat_$r" kcat -P -b "$broker" -t "logs_kcat_$r" -l "${kcat_opts[@]}" "$work/app.log"
    for t in tables_tributary_$r tables_perf_$r tables_kcat_$r datagen_tributary_$r datagen_perf_$r \
        logs_tributary_$r logs_connect_$r logs_kcat_$r; do check "$t"; done
    echo "   every run: $N records on the broker"
done
grep -h "records/sec" "$work"/*perf*.out | tail -n "$((2 * REPEAT))" | sed 's/^/   ProducerPerformance says: /'

echo
python3 - "$work/results" "$N" "$tick" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss = line.split()
    runs.setdefault(name.rsplit("_", 1)[0], []).append((float(wall), float(cpu), int(rss) / 1024))
n = int(sys.argv[2])
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
print(f"{n} records per run, medians of {len(next(iter(runs.values())))} runs, Apache Kafka on loopback")
print(f"{'run':<22}{'records/s':>12}{'CPU s':>8}{'records/CPU-s':>15}{'peak RSS MB':>13}")
for name, (wall, cpu, rss) in med.items():
    print(f"{name:<22}{n / wall:>12,.0f}{cpu:>8.2f}{n / cpu:>15,.0f}{rss:>13.1f}")
def ratios(a, b, what):
    (wa, ca, _), (wb, cb, _) = med[a], med[b]
    print(f"{what:<44} throughput {wb / wa:5.2f}x   per CPU-second {cb / ca:5.2f}x")
print()
ratios("tables_tributary", "tables_perf", "tables CSV->JSON: tributary / ProducerPerf")
ratios("tables_tributary", "tables_kcat", "tables CSV->JSON: tributary / kcat")
ratios("datagen_tributary", "datagen_perf", "datagen: tributary / ProducerPerf")
ratios("logs_tributary", "logs_connect", "log lines: tributary / Connect FileStream")
ratios("logs_tributary", "logs_kcat", "log lines: tributary / kcat")
PY
