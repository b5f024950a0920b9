#!/usr/bin/env bash
# Exactly-once against at-least-once, on one Apache Kafka 4.x broker
# (scripts/kafka), in the same run, with Kafka's own transactional producer
# as the peer:
#   tables   N orders rows, CSV -> JSON (csv source), at-least-once and
#            exactly-once with transaction_interval_ms 1000 and 100;
#   datagen  N generated orders, the same three ways;
#   peer     ProducerPerformance (kafka-producer-perf-test) sending the same
#            JSON values with --transactional-id and
#            --transaction-duration-ms 1000 and 100.
# Every run's records are counted afterwards with a read_committed reader:
# exactly N distinct, none missing, none twice. Throughput is over the whole
# wall time (start-up included); CPU is the process's own.
#
#   benches/exactly_once.sh                # N=1000000, REPEAT=1
#   N=200000 REPEAT=3 benches/exactly_once.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
REPEAT="${REPEAT:-1}"
PARTITIONS="${PARTITIONS:-8}"
work="$(mktemp -d /tmp/tributary-eos-bench.XXXXXX)"
cleanup() {
    KAFKA_DATA="$work/kafka" scripts/kafka stop || true
    rm -rf "$work"
}
trap cleanup EXIT

[ -n "${NO_BUILD:-}" ] || cargo build --release -q --workspace
bin="$PWD/target/release"

echo "== Apache Kafka"
broker="$(KAFKA_DATA="$work/kafka" KAFKA_HEAP=1g scripts/kafka start | tail -1)"
echo "   $broker"
# shellcheck source=benches/lib.sh
. benches/lib.sh

check() { # topic [any]: N records for a read_committed reader, each seq once
    # (ProducerPerformance picks payload lines at random: only the count)
    local total distinct missing
    read -r total distinct missing < <(python3 benches/kafka_tool.py dump "$broker" "$1" "$N" /dev/null)
    if [ "${2:-}" = any ]; then
        [ "$total" = "$N" ] || { echo "$1: read $total records, expected $N" >&2; exit 1; }
        return
    fi
    [ "$total" = "$N" ] && [ "$distinct" = "$N" ] && [ "$missing" = 0 ] || {
        echo "$1: read $total records, $distinct distinct, $missing missing; expected $N" >&2; exit 1; }
}

toml() { # topic delivery interval source-body
    cat <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$broker"
topic_partitions = $PARTITIONS
transactional_id_prefix = "bench-$1-"
[offsets]
store = "kafka"
topic = "offsets-$1"
dir = "$work/state-$1"
[http]
listen = "off"
[plugins]
dirs = ["$bin"]
[[source]]
name = "bench"
topic = "$1"
format = "json"
delivery = "$2"
transaction_interval_ms = $3
$4
TOML
}
tables_body="type = \"csv\"
path = \"$work/orders.csv\"
batch_rows = 10000
$orders_columns"
datagen_body="type = \"datagen\"
kind = \"orders\"
rate_per_sec = 0
batch_size = 10000
count = $N
seed = 1"

echo "== inputs: $N rows"
python3 benches/tables.py write "$N" "$work/orders.csv" "$work/lines.json"
cut -f2- "$work/lines.json" > "$work/values.json"

producer_props=(acks=all enable.idempotence=true linger.ms=5 batch.size=1000000
    buffer.memory=67108864 compression.type=none max.in.flight.requests.per.connection=5)

: > "$work/results"
runs=(tables_alo tables_eos1000 tables_eos100 datagen_alo datagen_eos1000 datagen_eos100
    perf_eos1000 perf_eos100)
for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT"
    for run in "${runs[@]}"; do
        t="${run}_$r"
        topic "$t"
        case "$run" in
            tables_alo) toml "$t" at_least_once 1000 "$tables_body" > "$work/$t.toml" ;;
            tables_eos1000) toml "$t" exactly_once 1000 "$tables_body" > "$work/$t.toml" ;;
            tables_eos100) toml "$t" exactly_once 100 "$tables_body" > "$work/$t.toml" ;;
            datagen_alo) toml "$t" at_least_once 1000 "$datagen_body" > "$work/$t.toml" ;;
            datagen_eos1000) toml "$t" exactly_once 1000 "$datagen_body" > "$work/$t.toml" ;;
            datagen_eos100) toml "$t" exactly_once 100 "$datagen_body" > "$work/$t.toml" ;;
        esac
        case "$run" in
            perf_eos*)
                measure "$t" scripts/kafka class org.apache.kafka.tools.ProducerPerformance \
                    --topic "$t" --num-records "$N" --throughput -1 \
                    --payload-file "$work/values.json" \
                    --transactional-id "bench-perf-$t" --transaction-duration-ms "${run#perf_eos}" \
                    --producer-props bootstrap.servers="$broker" "${producer_props[@]}" ;;
            *) measure "$t" "$bin/tributary" run --config "$work/$t.toml" --exit-when-finished ;;
        esac
        case "$run" in perf_*) check "$t" any ;; *) check "$t" ;; esac
    done
    echo "   every run: exactly $N records for a read_committed reader"
done

echo
python3 - "$work/results" "$N" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, cpu, _rss = line.split()
    runs.setdefault(name.rsplit("_", 1)[0], []).append((float(wall), float(cpu)))
n = int(sys.argv[2])
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(2)) for k, v in runs.items()}
print(f"{n} records per run, medians of {len(next(iter(runs.values())))} run(s), Apache Kafka on loopback")
print(f"{'run':<18}{'records/s':>12}{'CPU s':>8}")
for name, (wall, cpu) in med.items():
    print(f"{name:<18}{n / wall:>12,.0f}{cpu:>8.2f}")
def ratio(a, b, what):
    print(f"{what:<52} {med[a][0] / med[b][0]:5.2f}x")
print()
ratio("tables_alo", "tables_eos1000", "tables: exactly-once (1 s) / at-least-once")
ratio("tables_alo", "tables_eos100", "tables: exactly-once (100 ms) / at-least-once")
ratio("datagen_alo", "datagen_eos1000", "datagen: exactly-once (1 s) / at-least-once")
ratio("datagen_alo", "datagen_eos100", "datagen: exactly-once (100 ms) / at-least-once")
ratio("perf_eos1000", "tables_eos1000", "tables exactly-once / ProducerPerf transactional (1 s)")
ratio("perf_eos100", "tables_eos100", "tables exactly-once / ProducerPerf transactional (100 ms)")
ratio("perf_eos1000", "datagen_eos1000", "datagen exactly-once / ProducerPerf transactional (1 s)")
PY
