#!/usr/bin/env bash
# Avro against JSON (and Kafka Connect's JSON envelope) for the same CSV, on
# one Apache Kafka 4.x broker (scripts/kafka) with a real schema registry
# (scripts/schema-registry), in the same run:
#   json          N orders rows, CSV -> JSON (csv source);
#   avro          the same rows as Avro, Confluent wire format;
#   connect_json  the same rows in Kafka Connect's JsonConverter envelope;
#   peer          the Python script people write for this: csv.DictReader,
#                 confluent-kafka's AvroSerializer, a produce() per row.
# Every run's records are counted afterwards (N each). Throughput is over
# the whole wall time (start-up included); CPU and peak RSS are the
# process's own.
#
#   benches/avro.sh                # N=1000000, REPEAT=1
#   N=200000 REPEAT=3 benches/avro.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
REPEAT="${REPEAT:-1}"
PARTITIONS="${PARTITIONS:-8}"
work="$(mktemp -d /tmp/tributary-avro-bench.XXXXXX)"
cleanup() {
    SCHEMA_REGISTRY_DATA="$work/registry" scripts/schema-registry stop || true
    KAFKA_DATA="$work/kafka" scripts/kafka stop || true
    rm -rf "$work"
}
trap cleanup EXIT

[ -n "${NO_BUILD:-}" ] || cargo build --release -q --workspace
bin="$PWD/target/release"

echo "== Apache Kafka and a schema registry"
broker="$(KAFKA_DATA="$work/kafka" KAFKA_HEAP=1g scripts/kafka start | tail -1)"
registry="$(SCHEMA_REGISTRY_DATA="$work/registry" scripts/schema-registry start "$broker" | tail -1)"
python="$(scripts/schema-registry python)"
echo "   $broker, $registry"
# shellcheck source=benches/lib.sh
. benches/lib.sh

check() { # topic: N records
    local total
    read -r total _ < <(python3 benches/kafka_tool.py dump "$broker" "$1" "$N" /dev/null)
    [ "$total" = "$N" ] || { echo "$1: read $total records, expected $N" >&2; exit 1; }
}
toml() { # topic format
    tributary_toml "$work/state-$1"
    cat <<TOML
[schema_registry]
url = "$registry"
[[source]]
name = "bench"
topic = "$1"
key = "customer_id"
format = "$2"
type = "csv"
path = "$work/orders.csv"
batch_rows = 10000
$orders_columns
TOML
}

echo "== inputs: $N rows"
python3 benches/tables.py write "$N" "$work/orders.csv" "$work/lines.json"

: > "$work/results"
runs=(json avro connect_json peer)
for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT"
    for run in "${runs[@]}"; do
        t="${run}_$r"
        topic "$t"
        case "$run" in
            peer) measure "$t" "$python" benches/avro_peer.py "$broker" "$registry" "$t" "$work/orders.csv" ;;
            *) toml "$t" "$run" > "$work/$t.toml"
               measure "$t" "$bin/tributary" run --config "$work/$t.toml" --exit-when-finished ;;
        esac
        check "$t"
        echo "   $t: $N records"
    done
done

echo
python3 - "$work/results" "$N" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss = line.split()
    runs.setdefault(name.rsplit("_", 1)[0], []).append((float(wall), float(cpu), float(rss)))
n = int(sys.argv[2])
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
print(f"{n} records per run, medians of {len(next(iter(runs.values())))} run(s), Apache Kafka on loopback")
print(f"{'run':<14}{'records/s':>12}{'CPU s':>8}{'peak RSS MiB':>14}")
for name, (wall, cpu, rss) in med.items():
    print(f"{name:<14}{n / wall:>12,.0f}{cpu:>8.2f}{rss / 1024:>14.0f}")
def ratio(a, b, what):
    print(f"{what:<44} {med[a][0] / med[b][0]:5.2f}x")
print()
ratio("json", "avro", "avro / json records per second")
ratio("json", "connect_json", "connect_json / json records per second")
ratio("peer", "avro", "avro / Python AvroSerializer script")
print(f"{'avro / json peak RSS':<44} {med['avro'][2] / med['json'][2]:5.2f}x")
PY
