# Shared by benches/peers/*.sh: tributary beside the shippers users would
# pick instead (Kafka Connect, Filebeat, Telegraf), each fetched and built
# once into a cache outside the repository at pinned versions, configured
# for the same job on one Apache Kafka broker (scripts/kafka) on loopback.
#
# Source it from the repository root after `set -euo pipefail`. It sets
# `work` (a scratch directory removed on exit), starts nothing by itself:
# call peers_kafka_start for the broker (sets `broker`).
#
# Environment:
#   PEERS_CACHE=DIR   where peers are fetched and built
#                     (default ~/.cache/tributary/peers)
#   NO_BUILD=1        use target/release as it is (no cargo build)
#   PARTITIONS=N      partitions of every topic (default 8)

# Pinned versions. Kafka Connect is the one scripts/kafka pins (its jars are
# Kafka's own Maven artifacts), so the broker and Connect always match.
KAFKA_VERSION="$(sed -n 's/^KAFKA_VERSION=//p' scripts/kafka)"
# Beats: the proxy refuses to list github.com/elastic/beats/v7's versions
# (403) but serves an exact release; 8.x tags keep the /v7 module path, so
# only 7.x tags are module versions. v7.17.29 is the 7.17 release of June 2025.
BEATS_VERSION=v7.17.29
TELEGRAF_VERSION=v1.37.2

PEERS_CACHE="${PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tributary/peers}"
PARTITIONS="${PARTITIONS:-8}"
mkdir -p "$PEERS_CACHE"

# measure and topic come from the benches' own library.
# shellcheck source=../lib.sh
source benches/lib.sh

work="$(mktemp -d /tmp/tributary-peers.XXXXXX)"
chmod 755 "$work"
results="$work/results"
: > "$results"
peer_pids=()
peers_cleanup() {
    local pid
    for pid in "${peer_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${broker:-}" ]; then KAFKA_DATA="$work/kafka" scripts/kafka stop || true; fi
    rm -rf "$work"
}
trap peers_cleanup EXIT

# The producer settings every peer gets where it has them: tributary's own
# (daemon/src/producer/mod.rs: idempotent, acks=all, linger 5 ms, 10,000
# records per batch, a 64 MB / 100k-record queue, no compression) in each
# client's vocabulary. The Java client counts batches in bytes per
# partition: 1 MB is librdkafka's batch.size default, ~10,000 records of
# 100 bytes.
java_producer_props=(acks=all enable.idempotence=true linger.ms=5 batch.size=1000000
    buffer.memory=67108864 compression.type=none max.in.flight.requests.per.connection=5)

bin="$PWD/target/release"
build_tributary() { # cargo packages beyond the daemon
    [ -n "${NO_BUILD:-}" ] && return 0
    local packages=(-p tributary) p
    for p in "$@"; do packages+=(-p "$p"); done
    cargo build --release -q "${packages[@]}"
    [ -x "$bin/tributary" ] || { echo "no $bin/tributary" >&2; exit 1; }
}

# peers_kafka_start: one Apache Kafka broker for the whole run, data under
# $work (stopped by the exit trap, by its PID, through scripts/kafka stop).
peers_kafka_start() {
    broker="$(KAFKA_DATA="$work/kafka" KAFKA_HEAP="${KAFKA_HEAP:-1g}" scripts/kafka start | tail -1)"
    echo "   Apache Kafka $KAFKA_VERSION at $broker"
}

# tributary_toml OFFSETS_DIR: the daemon's common part of a config.
tributary_toml() {
    cat <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$broker"
topic_partitions = $PARTITIONS
[offsets]
dir = "$1"
[http]
listen = "off"
[plugins]
dirs = ["$bin"]
TOML
}

# tributary_logfile_toml TOPIC FILE OFFSETS_DIR: the logfile source on FILE,
# each line the record's value as it is (format = "string"), as Connect's
# StringConverter and Filebeat's string codec send it.
tributary_logfile_toml() {
    tributary_toml "$3"
    cat <<TOML
[[source]]
name = "bench"
type = "logfile"
topic = "$1"
include = ["$2"]
format = "string"
value_column = "line"
TOML
}

# cold_input N: $work/cold.log, N lines of ~100 bytes (benches/logbench.py).
cold_input() {
    python3 benches/logbench.py gen "$work/cold.log" "$1"
    chmod 644 "$work/cold.log"
    echo "   $work/cold.log: $1 lines, $(wc -c < "$work/cold.log") bytes"
}

# until_acked NAME TOPIC N CMD...: starts CMD (a follower that never ends on
# its own) under GNU time, stops it with SIGTERM once the broker holds N
# records in TOPIC, and appends "NAME wall_s cpu_s peak_rss_kb" to
# $results like `measure`: wall from the start to the last record
# acknowledged, CPU and peak RSS over the process's whole life (GNU time:
# every thread, also the ones that ended, and shutdown).
until_acked() {
    local name="$1" topic="$2" n="$3"; shift 3
    local t0 done_at tpid child wall
    t0="$(date +%s.%N)"
    /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" &
    tpid=$!
    peer_pids+=("$tpid")
    done_at="$(python3 benches/logbench.py wait "$broker" "$topic" "$n" "${WAIT_TIMEOUT_S:-900}")" || {
        echo "$name: not all $n records arrived" >&2; tail -20 "$work/$name.err" "$work/$name.out" >&2; exit 1; }
    wall="$(awk -v a="$t0" -v b="$done_at" 'BEGIN {print b - a}')"
    child="$(pgrep -P "$tpid" | head -1)"
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    local user sys rss
    # GNU time puts "Command terminated by signal 15" before the figures.
    read -r _ user sys rss < <(tail -1 "$work/$name.time")
    echo "$name $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}') $rss" >> "$results"
}

# check_count TOPIC N: the broker must hold exactly N records (fewer: lost;
# more: duplicated).
check_count() {
    local high
    high="$(python3 benches/kafka_tool.py watermarks "$broker" "$1")"
    [ "$high" = "$2" ] || { echo "$1: $high records on the broker, expected $2" >&2; return 1; }
}

# go_peer MODULE VERSION PACKAGE OUT [BUILD_FLAGS...]: builds PACKAGE of
# MODULE@VERSION into OUT from the Go module proxy, once. `go install` refuses modules whose
# go.mod has replace directives (beats and telegraf both have them), so the
# downloaded module is copied into the cache and built inside itself, where
# its replace directives apply.
go_peer() {
    local module="$1" version="$2" package="$3" out="$4"
    shift 4
    [ -x "$out" ] && return 0
    local dir
    dir="$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module@$version" \
        | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')" || {
        echo "go mod download $module@$version failed" >&2; return 1; }
    local src="$PEERS_CACHE/src/${module//\//+}@$version"
    if [ ! -f "$src/.copied" ]; then
        rm -rf "$src"
        mkdir -p "$(dirname "$src")"
        cp -r "$dir" "$src"
        chmod -R u+w "$src"
        touch "$src/.copied"
    fi
    echo "   go build $package in $src (once; takes minutes)"
    (cd "$src" && GOFLAGS=-mod=mod go build -trimpath "$@" -o "$out.tmp" "$package") > "$out.build.log" 2>&1 || {
        echo "go build $package of $module@$version failed:" >&2; tail -30 "$out.build.log" >&2; return 1; }
    mv "$out.tmp" "$out"
}

# report N: the table of $results (medians over runs named NAME_R) and the
# ratios of tributary against every peer. Tools are the run names without
# their _R suffix; "tributary" is the baseline.
report() {
    python3 - "$results" "$1" <<'PY'
import statistics, sys
n = int(sys.argv[2])
runs = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss = line.split()
    tool = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
    runs.setdefault(tool, []).append((float(wall), float(cpu), int(rss) / 1024))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
reps = max(len(v) for v in runs.values())
print(f"{n:,} records per run, medians of {reps} run(s), Apache Kafka on loopback")
print(f"{'tool':<18}{'records':>10}{'wall s':>9}{'records/s':>12}{'CPU s':>8}{'rec/CPU-s':>12}{'peak RSS MB':>13}")
for tool, (wall, cpu, rss) in med.items():
    print(f"{tool:<18}{n:>10,}{wall:>9.2f}{n / wall:>12,.0f}{cpu:>8.2f}{n / cpu:>12,.0f}{rss:>13.1f}")
base = next((k for k in med if k.startswith("tributary")), None)
if base:
    print()
    wt, ct, rt = med[base]
    for tool, (w, c, r) in med.items():
        if tool == base:
            continue
        print(f"{base} / {tool:<20} records/s {w / wt:6.2f}x   records per CPU-second {c / ct:6.2f}x   "
              f"peak RSS {rt / r:5.2f}x")
    print("(> 1: tributary ahead; peak RSS: tributary's as a fraction of the peer's)")
PY
}
