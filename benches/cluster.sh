#!/usr/bin/env bash
# Cluster mode on a shared spool: FILES CSV files of ROWS orders rows each
# in one spool directory (tmpfs), read by 1, 2 and 3 tributary daemons of
# one `[cluster]` group with `shards = 3`, on one Apache Kafka 4.x broker
# (scripts/kafka), all on this machine. Also the plain single daemon with
# no `[cluster]` and `shards = 1`, the baseline.
#
# For each run: the time from the first file dropped to the last one moved
# to finished/ (start-up and group join excluded: the daemons join before
# the files arrive), rows/s over that time, the CPU seconds of the daemons
# and of the broker, rows per daemon CPU-second, and every record counted
# afterwards (FILES x ROWS per run).
#
#   benches/cluster.sh                   # FILES=30 ROWS=100000, REPEAT=1
#   FILES=12 ROWS=50000 REPEAT=3 benches/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${FILES:-30}"
ROWS="${ROWS:-100000}"
REPEAT="${REPEAT:-1}"
PARTITIONS="${PARTITIONS:-6}"
N=$((FILES * ROWS))
work="$(mktemp -d /dev/shm/tributary-cluster-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    KAFKA_DATA="$work/kafka" scripts/kafka stop || true
    rm -rf "$work"
}
trap cleanup EXIT

[ -n "${NO_BUILD:-}" ] || cargo build --release -q --workspace
bin="$PWD/target/release"

echo "== Apache Kafka"
broker="$(KAFKA_DATA="$work/kafka" KAFKA_HEAP=1g scripts/kafka start | tail -1)"
broker_pid="$(cat "$work/kafka/kafka.pid")"
echo "   $broker (pid $broker_pid)"
# shellcheck source=benches/lib.sh
. benches/lib.sh

echo "== inputs: $FILES files x $ROWS rows"
python3 benches/tables.py write "$N" "$work/orders.csv" /dev/null
mkdir -p "$work/files"
tail -n +2 "$work/orders.csv" | split -d -a 3 -l "$ROWS" - "$work/files/part-"
for f in "$work"/files/part-*; do
    { head -1 "$work/orders.csv"; cat "$f"; } > "$f.csv" && rm "$f"
done

cpu_of() { # pid: user+system CPU seconds so far
    awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0
}

toml() { # run member http_port shards cluster(0/1) topic
    cat <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$broker"
topic_partitions = $PARTITIONS
transactional_id_prefix = "bench-$1-"
[offsets]
store = "kafka"
topic = "offsets-$1"
dir = "$work/state-$1-$2"
commit_interval_ms = 1000
[http]
listen = "127.0.0.1:$3"
[plugins]
dirs = ["$bin"]
TOML
    [ "$5" = 1 ] && printf '[cluster]\ngroup = "bench-%s"\nmember = "%s"\n' "$1" "$2"
    cat <<TOML
[[source]]
name = "spool"
type = "csv"
topic = "$6"
key = "customer_id"
spool_dir = "$work/spool-$1"
pattern = "*.csv"
settle_ms = 0
batch_rows = 10000
shards = $4
$orders_columns
TOML
}

# run NAME MEMBERS SHARDS CLUSTER: one measurement, appended to results.
run() {
    local name=$1 members=$2 shards=$3 cluster=$4 topic="rows-$1"
    topic "$topic"
    mkdir -p "$work/spool-$name"
    local run_pids=() ports=() i port
    for i in $(seq 0 $((members - 1))); do
        port=$((24000 + RANDOM % 4000))
        ports+=("$port")
        toml "$name" "m$i" "$port" "$shards" "$cluster" "$topic" > "$work/$name-m$i.toml"
        "$bin/tributary" run --config "$work/$name-m$i.toml" > "$work/$name-m$i.log" 2>&1 &
        run_pids+=("$!")
        pids+=("$!")
    done
    # Every member has joined and holds its units before the files arrive.
    local want=$((cluster == 1 ? shards : 1)) owned
    for _ in $(seq 600); do
        owned=0
        for port in "${ports[@]}"; do
            if [ "$cluster" = 1 ]; then
                owned=$((owned + $(curl -sf "http://127.0.0.1:$port/api/v1/cluster" \
                    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["member"]["units"]))' \
                    2>/dev/null || echo 0)))
            else
                curl -sf "http://127.0.0.1:$port/ready" > /dev/null && owned=1
            fi
        done
        [ "$owned" -ge "$want" ] && break
        sleep 0.1
    done
    local cpu0=() broker0 start end
    for pid in "${run_pids[@]}"; do cpu0+=("$(cpu_of "$pid")"); done
    broker0="$(cpu_of "$broker_pid")"
    start="$(date +%s.%N)"
    mv "$work"/files/*.csv "$work/spool-$name/"
    until [ "$(find "$work/spool-$name/finished" -name '*.csv' 2>/dev/null | wc -l)" -ge "$FILES" ]; do
        sleep 0.05
    done
    end="$(date +%s.%N)"
    local cpu=0
    for i in "${!run_pids[@]}"; do
        cpu="$(awk -v a="$cpu" -v b="$(cpu_of "${run_pids[$i]}")" -v c="${cpu0[$i]}" 'BEGIN {print a + b - c}')"
    done
    local broker_cpu
    broker_cpu="$(awk -v b="$(cpu_of "$broker_pid")" -v c="$broker0" 'BEGIN {print b - c}')"
    for pid in "${run_pids[@]}"; do kill -TERM "$pid"; done
    for pid in "${run_pids[@]}"; do wait "$pid" || { echo "$name: a daemon failed" >&2; exit 1; }; done
    mv "$work/spool-$name/finished"/*.csv "$work/files/"
    local total
    read -r total _ < <(python3 benches/kafka_tool.py dump "$broker" "$topic" "$N" /dev/null)
    [ "$total" -ge "$N" ] || { echo "$name: read $total records, expected $N" >&2; exit 1; }
    echo "$name $members $shards $(awk -v s="$start" -v e="$end" 'BEGIN {print e - s}') $cpu $broker_cpu $total" >> "$work/results"
}

: > "$work/results"
for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT"
    run "alone_$r" 1 1 0
    run "cluster1_$r" 1 3 1
    run "cluster2_$r" 2 3 1
    run "cluster3_$r" 3 3 1
done

echo
printf '%-12s %7s %6s %8s %10s %11s %11s %12s\n' run members shards wall_s rows/s daemon_cpu broker_cpu rows/cpu_s
while read -r name members shards wall cpu broker_cpu total; do
    awk -v n="$name" -v m="$members" -v s="$shards" -v w="$wall" -v c="$cpu" -v b="$broker_cpu" -v t="$N" \
        'BEGIN {printf "%-12s %7d %6d %8.2f %10.0f %11.2f %11.2f %12.0f\n", n, m, s, w, t / w, c, b, t / c}'
done < "$work/results"
echo
echo "speed-up against one member (same shards):"
awk -v n="$N" '$1 ~ /^cluster1_/ {one[substr($1, 10)] = $4}
    $1 ~ /^cluster[23]_/ {r = substr($1, 10); if (one[r] > 0) printf "  %s: %.2fx\n", $1, one[r] / $4}' "$work/results"
