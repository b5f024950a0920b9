#!/usr/bin/env bash
# Log file shipping, side by side against one mock broker process on
# loopback (target/release/mock-broker):
#   tributary + logfile   (format = "string": the raw line is the value)
#   rsyslog               (imfile -> omkafka, Debian rsyslog-kafka), run as
#                         nobody in the foreground with its own config and
#                         work directory, not as the system service
#   kcat -P -l            (the ceiling: reads the file, no tailing state)
# Same producer settings where the peer has them (idempotent, acks=all,
# linger 5 ms, 10k-record batches).
#   (a) cold read of an N-line file (~100 bytes/line): lines/s, CPU per line,
#       peak RSS;
#   (b) steady appends at each of RATES lines/s for DURATION s: delay from
#       write to broker acknowledgement (high watermarks, sampled back to
#       back) p50/p99/max, the lag when writing stops, CPU per line, peak
#       RSS. kcat reads the growing file through `tail -F`.
# Targets: >= 2x rsyslog's lines/s at <= half its CPU per line; peak RSS
# < 50 MB; p99 write-to-ack < 50 ms at 10,000 lines/s.
#
#   benches/logfile.sh                         # N=1000000 RATES="100000 10000" DURATION=60
#   N=200000 DURATION=20 benches/logfile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source benches/lib.sh
N="${N:-1000000}"
RATES="${RATES:-100000 10000}"
DURATION="${DURATION:-60}"
PARTITIONS="${PARTITIONS:-8}"
work="$(mktemp -d /tmp/tributary-logbench.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x /usr/sbin/rsyslogd ] || [ ! -f /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ]; then
    echo "== installing rsyslog and rsyslog-kafka (apt)"
    apt-get install -y -qq rsyslog rsyslog-kafka >/dev/null || { apt-get update -qq && apt-get install -y -qq rsyslog rsyslog-kafka >/dev/null; }
fi
command -v kcat >/dev/null || apt-get install -y -qq kcat >/dev/null

cargo build --release -q -p tributary -p tributary-logfile
cargo build --release -q -p tributary-tests --bin mock-broker
bin="$PWD/target/release"
tick=1000000000 # schedstat counts nanoseconds

topics=()
for peer in tributary rsyslog kcat; do
    topics+=("cold_$peer:$PARTITIONS")
    for rate in $RATES; do topics+=("steady_${rate}_$peer:$PARTITIONS"); done
done
"$bin/mock-broker" "${topics[@]}" > "$work/mock.addr" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/mock.addr" ] && break; sleep 0.1; done
mock="$(head -1 "$work/mock.addr")"

cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
producer_props=(enable.idempotence=true acks=all linger.ms=5 batch.num.messages=10000
    queue.buffering.max.messages=100000)

tributary_conf() { # topic file name
    cat > "$work/$3/tributary.toml" <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$mock"
topic_partitions = $PARTITIONS
[kafka.options]
"linger.ms" = "5"
"batch.num.messages" = "10000"
[offsets]
dir = "$work/$3/offsets"
[http]
listen = "off"
[plugins]
dirs = ["$bin"]
[[source]]
name = "bench"
type = "logfile"
topic = "$1"
include = ["$2"]
format = "string"
value_column = "line"
TOML
}

rsyslog_conf() { # topic file name
    rsyslog_config "$work/$3" "$mock" "$1" "$2" "${producer_props[@]}"
}

# start_peer PEER TOPIC FILE NAME MODE: sets `pid` (empty when the peer
# already ran to completion) and `tail_pid` for kcat's follower.
start_peer() {
    mkdir -p "$work/$4"
    pid=""
    case "$1" in
        tributary)
            tributary_conf "$2" "$3" "$4"
            RUST_LOG=warn "$bin/tributary" run --config "$work/$4/tributary.toml" > "$work/$4/log" 2>&1 &
            pid=$! ;;
        rsyslog)
            rsyslog_conf "$2" "$3" "$4"
            runuser -u nobody -- /usr/sbin/rsyslogd -n -f "$work/$4/rsyslog.conf" -i "$work/$4/state/pid" > "$work/$4/log" 2>&1 &
            local parent=$!
            pids+=("$parent")
            pid="$parent"
            # runuser forks: measure rsyslogd itself.
            for _ in $(seq 100); do
                child="$(pgrep -P "$parent" -x rsyslogd || true)"
                if [ -n "$child" ]; then pid="$child"; break; fi
                sleep 0.05
            done ;;
        kcat)
            local props=()
            for p in "${producer_props[@]}"; do props+=(-X "$p"); done
            if [ "$5" = cold ]; then
                # Synchronous: kcat exits once everything is delivered.
                /usr/bin/time -f "%e %U %S %M" -o "$work/$4/time" \
                    kcat -P -b "$mock" -t "$2" -l "${props[@]}" "$3" > "$work/$4/log" 2>&1
            else
                # kcat cannot follow a file; tail does that part for it.
                mkfifo "$work/$4/fifo"
                tail -n +1 -F "$3" > "$work/$4/fifo" 2>/dev/null &
                tail_pid=$!
                pids+=("$tail_pid")
                kcat -P -b "$mock" -t "$2" "${props[@]}" < "$work/$4/fifo" > "$work/$4/log" 2>&1 &
                pid=$!
            fi ;;
    esac
    if [ -n "$pid" ]; then pids+=("$pid"); fi
    return 0
}

stop_peer() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

results="$work/results"
: > "$results"
echo "== (a) cold read of $N lines"
python3 benches/logbench.py gen "$work/cold.log" "$N"
chmod 644 "$work/cold.log"
echo "   $(wc -c < "$work/cold.log") bytes"
for peer in tributary rsyslog kcat; do
    t0="$(date +%s.%N)"
    start_peer "$peer" "cold_$peer" "$work/cold.log" "cold-$peer" cold
    if [ "$peer" = kcat ]; then
        read -r wall user sys rss < "$work/cold-kcat/time"
        cpu="$(awk -v u="$user" -v s="$sys" -v t="$tick" 'BEGIN {printf "%d", (u + s) * t}')"
        python3 benches/logbench.py wait "$mock" "cold_$peer" "$N" 60 > /dev/null
    else
        done_at="$(python3 benches/logbench.py wait "$mock" "cold_$peer" "$N" 600)"
        wall="$(awk -v a="$t0" -v b="$done_at" 'BEGIN {print b - a}')"
        cpu="$(cpu_ns "$pid")"; rss="$(hwm_kb "$pid")"
        stop_peer "$pid"
    fi
    echo "cold $peer $wall $cpu $rss $N" >> "$results"
    echo "   $peer: $wall s"
done

for rate in $RATES; do
    echo "== (b) steady appends at $rate lines/s for $DURATION s"
    for peer in tributary rsyslog kcat; do
        f="$work/steady-$rate-$peer.log"
        : > "$f"; chmod 644 "$f"
        start_peer "$peer" "steady_${rate}_$peer" "$f" "steady-$rate-$peer" steady
        sleep 2
        c0="$(cpu_ns "$pid")"
        out="$(python3 benches/logbench.py steady "$f" "$rate" "$DURATION" "$mock" "steady_${rate}_$peer")"
        c1="$(cpu_ns "$pid")"; rss="$(hwm_kb "$pid")"
        # kcat ends at the end of its input: stop the follower first.
        if [ "$peer" = kcat ]; then stop_peer "$tail_pid"; fi
        stop_peer "$pid"
        echo "steady$rate $peer $DURATION $((c1 - c0)) $rss $out" >> "$results"
        echo "   $peer: $out"
    done
done

echo
python3 - "$results" "$tick" <<'PY'
import json, sys
rows = [l.rstrip("\n").split(" ", 5) for l in open(sys.argv[1])]
tick = int(sys.argv[2])
print("(a) cold read")
print(f"{'peer':<12}{'lines/s':>12}{'CPU us/line':>13}{'peak RSS MB':>13}")
stat = {}
for kind, peer, wall, cpu, rss, n in rows:
    if kind != "cold":
        continue
    n = int(n)
    lps = n / float(wall)
    cpl = int(cpu) / tick / n * 1e6
    stat[peer] = (lps, cpl)
    print(f"{peer:<12}{lps:>12,.0f}{cpl:>13.2f}{int(rss) / 1024:>13.1f}")
if "rsyslog" in stat and "tributary" in stat:
    print(f"tributary / rsyslog: lines/s {stat['tributary'][0] / stat['rsyslog'][0]:.2f}x (target >= 2x), "
          f"CPU per line {stat['tributary'][1] / stat['rsyslog'][1]:.2f}x (target <= 0.5x)")
if "kcat" in stat and "tributary" in stat:
    print(f"tributary / kcat: lines/s {stat['tributary'][0] / stat['kcat'][0]:.2f}x (kcat: the ceiling)")
kinds = sorted({r[0] for r in rows if r[0].startswith("steady")}, key=lambda k: -int(k[6:]))
for kind in kinds:
    print(f"\n(b) steady appends at {int(kind[6:]):,} lines/s")
    print(f"{'peer':<12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'lag@end':>9}{'max lag':>9}"
          f"{'CPU us/line':>13}{'peak RSS MB':>13}")
    for k, peer, dur, cpu, rss, js in rows:
        if k != kind:
            continue
        m = json.loads(js)
        cpl = int(cpu) / tick / max(1, m["written"]) * 1e6
        print(f"{peer:<12}{m['p50_ms']:>9.1f}{m['p99_ms']:>9.1f}{m['max_ms']:>9.1f}{m['lag_at_end']:>9}"
              f"{m['max_lag']:>9}{cpl:>13.2f}{int(rss) / 1024:>13.1f}")
print("\nDelays: from the write of a burst to the first high-watermark sample covering it;")
print("the sample interval bounds the resolution. CPU from schedstat (kcat cold: GNU time).")
PY
