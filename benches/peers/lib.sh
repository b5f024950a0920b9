# Shared by benches/peers/*.sh: tributary beside the shippers users would
# pick instead (Kafka Connect, Filebeat, rsyslog, Telegraf), each fetched and
# built once into a cache outside the repository at pinned versions (rsyslog:
# Debian's packages), configured for the same job on one Apache Kafka broker
# (scripts/kafka) on loopback. Every peer's configuration is written here,
# once, for all the scripts that run it.
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

# The logfile source's producer settings in librdkafka's vocabulary (rsyslog's
# omkafka is librdkafka too).
librdkafka_producer_props=(enable.idempotence=true acks=all linger.ms=5 batch.num.messages=10000
    queue.buffering.max.messages=100000 queue.buffering.max.kbytes=65536 compression.codec=none)

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

# filebeat: the Filebeat binary (filebeat.sh and appends.sh build it with
# go_peer github.com/elastic/beats/v7 "$BEATS_VERSION" ./filebeat "$filebeat").
filebeat="$PEERS_CACHE/filebeat-$BEATS_VERSION"

# filebeat_conf NAME TOPIC FILE: $work/NAME/filebeat.yml, its data,
# registry and logs under $work/NAME. Filestream input -> Kafka output
# (sarama: no idempotent producer); the rest at tributary's defaults where
# Filebeat has a knob: required_acks -1 (acks=all), compression none,
# bulk_max_size 10000 and bulk_flush_frequency 5 ms (batch.num.messages,
# linger.ms), a memory queue of 100,000 events flushed at 10,000 or after
# 5 ms (queue.buffering.max.messages), protocol version 2.6 (its newest);
# at the end of a file it looks again every 100 ms (backoff, 2 s to 10 s by
# default), as the logfile source polls open files, and for new files every
# second (prospector.scanner.check_interval, 10 s by default), as the
# logfile source's glob_interval_ms. The record value is the line as it is
# (codec.format '%{[message]}'), as tributary's format = "string" sends it.
filebeat_conf() {
    local dir="$work/$1"
    mkdir -p "$dir"
    cat > "$dir/filebeat.yml" <<YAML
filebeat.inputs:
  - type: filestream
    id: bench
    paths: ["$3"]
    prospector.scanner.check_interval: 1s
    backoff.init: 100ms
    backoff.max: 100ms
queue.mem:
  events: 100000
  flush.min_events: 10000
  flush.timeout: 5ms
output.kafka:
  hosts: ["$broker"]
  topic: "$2"
  version: "2.6"
  required_acks: -1
  compression: none
  bulk_max_size: 10000
  bulk_flush_frequency: 5ms
  codec.format:
    string: '%{[message]}'
path.home: "$dir"
path.data: "$dir/data"
path.logs: "$dir/logs"
logging.level: warning
logging.metrics.enabled: false
http.enabled: false
monitoring.enabled: false
YAML
    chmod 600 "$dir/filebeat.yml"
}

# filebeat_cmd NAME: sets `cmd`, Filebeat's command line on filebeat_conf's file.
filebeat_cmd() { cmd=("$filebeat" -e --strict.perms=false -c "$work/$1/filebeat.yml"); }

# connect_classpath: sets `connect_cp` and `kafka_libs`. Connect's jars:
# scripts/kafka fetches connect-runtime and connect-file with the broker;
# anything missing of the three Connect needs here comes from Maven Central
# into the peers' cache.
connect_classpath() {
    local libs
    libs="$(scripts/kafka fetch | tail -1)"
    kafka_libs="$libs"
    connect_cp="$libs/*"
    local missing=() a
    for a in connect-runtime connect-file connect-json; do
        [ -f "$libs/$a-$KAFKA_VERSION.jar" ] || missing+=("$a")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    local dir="$PEERS_CACHE/connect-$KAFKA_VERSION"
    if [ ! -f "$dir/.complete" ]; then
        mkdir -p "$dir"
        {
            echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            echo '<groupId>local.tributary</groupId><artifactId>connect-peer</artifactId><version>1</version>'
            echo '<packaging>pom</packaging><dependencies>'
            for a in "${missing[@]}"; do
                echo "<dependency><groupId>org.apache.kafka</groupId><artifactId>$a</artifactId><version>$KAFKA_VERSION</version></dependency>"
            done
            echo '</dependencies></project>'
        } > "$dir/pom.xml"
        echo "   fetching ${missing[*]} $KAFKA_VERSION from Maven Central"
        mvn -q -B -Dstyle.color=never -f "$dir/pom.xml" dependency:copy-dependencies \
            -DoutputDirectory="$dir/libs" -DincludeScope=runtime
        touch "$dir/.complete"
    fi
    connect_cp="$dir/libs/*:$connect_cp"
}

# connect_props NAME TOPIC FILE: $work/NAME/{worker,connector}.properties.
# Connect standalone: StringConverter for keys and values (the line as it
# is), the producer at java_producer_props, REST on a free loopback port;
# FileStreamSource with batch.size = 10000 lines per poll (at the end of
# the file it waits 1 s before it looks again; no setting changes that).
connect_props() {
    local dir="$work/$1" p port
    mkdir -p "$dir"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    {
        echo "bootstrap.servers=$broker"
        echo "key.converter=org.apache.kafka.connect.storage.StringConverter"
        echo "value.converter=org.apache.kafka.connect.storage.StringConverter"
        echo "offset.storage.file.filename=$dir/offsets"
        echo "offset.flush.interval.ms=10000"
        echo "listeners=http://127.0.0.1:$port"
        for p in "${java_producer_props[@]}"; do echo "producer.$p"; done
    } > "$dir/worker.properties"
    cat > "$dir/connector.properties" <<PROPS
name=$1
connector.class=org.apache.kafka.connect.file.FileStreamSourceConnector
tasks.max=1
file=$3
topic=$2
batch.size=10000
PROPS
}

# connect_cmd NAME: sets `connect` (and `cmd`), the java command line of
# bin/connect-standalone.sh (-Xms256M -Xmx2G, G1, kafka-run-class.sh's JVM
# flags) on connect_props's files. Needs connect_classpath first.
connect_cmd() {
    connect=(java ${CONNECT_HEAP_OPTS:--Xms256M -Xmx2G} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
        -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$(dirname "$kafka_libs")/log4j2.properties"
        -cp "$connect_cp" org.apache.kafka.connect.cli.ConnectStandalone
        "$work/$1/worker.properties" "$work/$1/connector.properties")
    cmd=("${connect[@]}")
}

# rsyslog_install: Debian's rsyslog and rsyslog-kafka (omkafka), from apt
# when absent. rsyslogd runs as below, never as the system service.
rsyslog_install() {
    if [ ! -x /usr/sbin/rsyslogd ] || [ ! -f /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ]; then
        echo "   installing rsyslog and rsyslog-kafka (apt)"
        apt-get install -y -qq rsyslog rsyslog-kafka > /dev/null \
            || { apt-get update -qq && apt-get install -y -qq rsyslog rsyslog-kafka > /dev/null; }
    fi
}

# rsyslog_conf NAME TOPIC FILE: $work/NAME/rsyslog.conf, its work directory
# (imfile's state) $work/NAME/state, owned by nobody. imfile in inotify mode
# (a change is read at once) from the start of FILE, the raw line as the
# value (template %rawmsg%), omkafka with librdkafka_producer_props.
rsyslog_conf() {
    rsyslog_config "$work/$1" "$broker" "$2" "$3" "${librdkafka_producer_props[@]}"
}

# rsyslog_cmd NAME: sets `cmd`, rsyslogd in the foreground as nobody
# (setpriv execs it: the PID is rsyslogd's) on rsyslog_conf's file.
rsyslog_cmd() {
    cmd=(setpriv --reuid=nobody --regid=nogroup --clear-groups
        /usr/sbin/rsyslogd -n -f "$work/$1/rsyslog.conf" -i "$work/$1/state/pid")
}

# peer_setup PEER NAME TOPIC FILE: PEER's configuration (filebeat, rsyslog
# or connect) as NAME, shipping FILE to TOPIC; sets `cmd`.
peer_setup() {
    case "$1" in
        filebeat) filebeat_conf "$2" "$3" "$4"; filebeat_cmd "$2" ;;
        rsyslog) rsyslog_conf "$2" "$3" "$4"; rsyslog_cmd "$2" ;;
        connect) connect_props "$2" "$3" "$4"; connect_cmd "$2" ;;
        *) echo "unknown peer $1" >&2; return 1 ;;
    esac
}

# cold_rounds PEER NAME LABEL: REPEAT rounds of the cold read of
# $work/cold.log (N lines), tributary then PEER (results named NAME, shown
# as LABEL) in each round; both topics must then hold exactly N records.
cold_rounds() {
    local peer="$1" name="$2" label="$3" r
    for r in $(seq "$REPEAT"); do
        echo "== round $r of $REPEAT: cold read of $N lines"
        topic "cold_tributary_$r"
        topic "cold_${peer}_$r"
        tributary_logfile_toml "cold_tributary_$r" "$work/cold.log" "$work/off-tributary-$r" > "$work/tributary-$r.toml"
        RUST_LOG=warn until_acked "tributary_$r" "cold_tributary_$r" "$N" \
            "$bin/tributary" run --config "$work/tributary-$r.toml"
        echo "   tributary: $(tail -1 "$results" | cut -d' ' -f2) s"
        peer_setup "$peer" "${peer}_$r" "cold_${peer}_$r" "$work/cold.log"
        until_acked "${name}_$r" "cold_${peer}_$r" "$N" "${cmd[@]}"
        echo "   $label: $(tail -1 "$results" | cut -d' ' -f2) s"
        check_count "cold_tributary_$r" "$N"
        check_count "cold_${peer}_$r" "$N"
        echo "   both topics hold exactly $N records"
    done
}

# report N: the table of $results (medians over runs named NAME_R) and the
# ratios of tributary against every peer. Tools are the run names without
# their _R suffix; "tributary" is the baseline. With RESULTS_TSV set, also
# appends one row per tool (the medians) to that file, with a header when
# the file is new or empty:
#   tool records wall_s records_per_s cpu_s records_per_cpu_s rss_mb
report() {
    python3 - "$results" "$1" "${RESULTS_TSV:-}" <<'PY'
import os, statistics, sys
n = int(sys.argv[2])
tsv = sys.argv[3]
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
if tsv:
    new = not os.path.exists(tsv) or os.path.getsize(tsv) == 0
    with open(tsv, "a") as f:
        if new:
            f.write("tool\trecords\twall_s\trecords_per_s\tcpu_s\trecords_per_cpu_s\trss_mb\n")
        for tool, (wall, cpu, rss) in med.items():
            f.write(f"{tool}\t{n}\t{wall:.3f}\t{n / wall:.0f}\t{cpu:.3f}\t{n / cpu:.0f}\t{rss:.1f}\n")
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
