#!/usr/bin/env bash
# Steady appends to a log file shipped into Apache Kafka: tributary's
# logfile source beside Filebeat, rsyslog and Kafka Connect's
# FileStreamSource, on one broker (scripts/kafka) on loopback.
#
# For each rate of RATES (lines/s) and each round of REPEAT, every peer of
# PEERS in turn (peers alternate within a round) starts tailing an empty
# file; WARMUP lines are written and the run waits until the broker holds
# them (so start-up, JVM warm-up and Filebeat's scan for new files are not
# counted); then benches/logbench.py steady appends ~100-byte lines at the
# rate for DURATION seconds while it samples the topic's high watermarks back
# to back, and waits up to 60 s for the rest to arrive. Per run:
#   p50/p99/max ms   delay from the write of a line to the first high-
#                    watermark sample that covers it (its acknowledgement by
#                    the broker); the sample interval bounds the resolution
#   lag@end          lines written but not acknowledged when writing stopped
#   drain s          time from the end of writing to the last acknowledgement
#   acked/s          lines written / (DURATION + drain s): the rate the peer
#                    achieved; writer/s is the rate the writer achieved
#   kept up          every line acknowledged, within KEEP_UP_S (default 5) s
#                    of the end of writing
#   CPU us/line      the peer's CPU time (user + system, /proc/PID/stat, all
#                    threads) from the start of writing to the last
#                    acknowledgement, per line written
#   peak RSS MB      the peer's VmHWM at the end (start-up included)
# After the run the peer is stopped with SIGTERM and its topic must hold
# exactly WARMUP + written records: the count column says "ok", or how many
# were lost or duplicated (the other runs go on).
#
# The peers, configured in benches/peers/lib.sh, with tributary's producer
# settings where they have them (idempotence, acks=all, linger 5 ms,
# 10,000-record batches, a 100,000-record / 64 MB queue, compression off):
#   tributary  the logfile source, format = "string" (inotify, and open
#              files polled every 100 ms).
#   filebeat   Filebeat $BEATS_VERSION (built once from the Go module proxy),
#              filestream input -> Kafka output (sarama: no idempotent
#              producer): required_acks -1, compression none, bulk_max_size
#              10000, bulk_flush_frequency 5 ms, memory queue of 100,000
#              events flushed at 10,000 or after 5 ms, end-of-file backoff
#              100 ms (2 s to 10 s by default), scan for new files every 1 s.
#   rsyslog    Debian's rsyslog + rsyslog-kafka (apt-get install when absent),
#              run as nobody in the foreground with its own config and work
#              directory: imfile in inotify mode, omkafka (librdkafka) with
#              enable.idempotence=true, acks=all, linger.ms=5,
#              batch.num.messages=10000, queue.buffering.max.messages=100000,
#              compression none.
#   connect    Kafka Connect standalone (Kafka's own jars at the broker's
#              version, bin/connect-standalone.sh's JVM flags, -Xms256M
#              -Xmx2G) with FileStreamSourceConnector, batch.size 10000,
#              StringConverter; producer acks=all, enable.idempotence=true,
#              linger.ms=5, batch.size=1000000 bytes, buffer.memory 64 MB,
#              compression none. FileStreamSource waits 1 s at the end of
#              the file before it reads again (not configurable).
#
# The writer and the sampler (Python) share the machine with the peer and
# the broker: on a small machine check writer/s against the rate.
#
#   benches/peers/appends.sh      # RATES="10000 100000" DURATION=60 REPEAT=1
#   RATES=10000 DURATION=10 PEERS="tributary rsyslog" benches/peers/appends.sh
#   RESULTS_TSV=appends.tsv REPEAT=3 benches/peers/appends.sh
#
# REPEAT defaults to 1 (each run is DURATION s per peer and rate, plus
# start-up); with more, the table shows medians. RESULTS_TSV=FILE appends
# one row per tool and rate (tool rate p50_ms p99_ms max_ms cpu_per_line_us
# rss_mb kept_up; medians, kept_up "yes" only when every run kept up), with
# a header when FILE is new. Runs as root (apt-get, setpriv for rsyslog).
set -euo pipefail
[ -n "${RESULTS_TSV:-}" ] && RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
RATES="${RATES:-10000 100000}"
PEERS="${PEERS:-tributary filebeat rsyslog connect}"
REPEAT="${REPEAT:-1}"
DURATION="${DURATION:-60}"
WARMUP="${WARMUP:-100}"
KEEP_UP_S="${KEEP_UP_S:-5}"
source benches/peers/lib.sh

for peer in $PEERS; do
    case "$peer" in tributary|filebeat|rsyslog|connect) ;; *) echo "unknown peer $peer" >&2; exit 2 ;; esac
done

echo "== building the peers: $PEERS"
build_tributary tributary-logfile
for peer in $PEERS; do
    case "$peer" in
        filebeat)
            go_peer github.com/elastic/beats/v7 "$BEATS_VERSION" ./filebeat "$filebeat"
            "$filebeat" version ;;
        rsyslog)
            rsyslog_install
            /usr/sbin/rsyslogd -v | head -1 ;;
        connect)
            connect_classpath
            echo "Kafka Connect $KAFKA_VERSION" ;;
    esac
done
peers_kafka_start

# peer_cmd PEER NAME TOPIC FILE: writes PEER's configuration, sets `cmd`.
peer_cmd() {
    case "$1" in
        tributary)
            tributary_logfile_toml "$3" "$4" "$work/$2/offsets" > "$work/$2/tributary.toml"
            cmd=("$bin/tributary" run --config "$work/$2/tributary.toml") ;;
        filebeat) filebeat_conf "$2" "$3" "$4"; filebeat_cmd "$2" ;;
        rsyslog) rsyslog_conf "$2" "$3" "$4"; rsyslog_cmd "$2" ;;
        connect) connect_props "$2" "$3" "$4"; connect_cmd "$2" ;;
    esac
}

clk_tck="$(getconf CLK_TCK)"
# cpu_s PID: user + system seconds of the process, every thread, also the
# ones that ended.
cpu_s() {
    awk -v t="$clk_tck" '{sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / t}' "/proc/$1/stat" 2>/dev/null || echo nan
}
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# stop_peer PID: SIGTERM, SIGKILL after 30 s, and forget the PID.
stop_peer() {
    local pid="$1" p kept=()
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "   (PID $pid still alive 30 s after SIGTERM: SIGKILL)"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for p in "${peer_pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    peer_pids=("${kept[@]}")
}

# label PEER: the tool's name in the tables, as the cold-read scripts name it.
label() { if [ "$1" = connect ]; then echo connect-filestream; else echo "$1"; fi; }

# run_peer PEER RATE R: one run; appends
# "TOOL RATE R cpu_s rss_kb count JSON" to $results.
run_peer() {
    local peer="$1" rate="$2" r="$3"
    local name="${peer}_${rate}_$r" t="steady_${peer}_${rate}_$r"
    local f="$work/$name/input.log" pid out c0 c1 rss high count
    mkdir -p "$work/$name"
    chmod 755 "$work/$name"
    : > "$f"; chmod 644 "$f"
    topic "$t"
    peer_cmd "$peer" "$name" "$t" "$f"
    RUST_LOG=warn "${cmd[@]}" > "$work/$name/out" 2> "$work/$name/err" &
    pid=$!
    peer_pids+=("$pid")
    python3 benches/logbench.py gen "$f" "$WARMUP"
    if ! python3 benches/logbench.py wait "$broker" "$t" "$WARMUP" "${WARMUP_TIMEOUT_S:-120}" > /dev/null; then
        echo "   $peer: the $WARMUP warm-up lines did not arrive; skipped" >&2
        tail -5 "$work/$name/err" "$work/$name/out" >&2 || true
        stop_peer "$pid"
        echo "$(label "$peer") $rate $r nan 0 failed {}" >> "$results"
        return 0
    fi
    sleep 1
    c0="$(cpu_s "$pid")"
    out="$(python3 benches/logbench.py steady "$f" "$rate" "$DURATION" "$broker" "$t")" || {
        echo "   $peer: the steady writer failed; skipped" >&2
        stop_peer "$pid"
        echo "$(label "$peer") $rate $r nan 0 failed {}" >> "$results"
        return 0
    }
    c1="$(cpu_s "$pid")"
    rss="$(hwm_kb "$pid")"
    kill -0 "$pid" 2>/dev/null || echo "   $peer exited during the run" >&2
    stop_peer "$pid"
    high="$(python3 benches/kafka_tool.py watermarks "$broker" "$t")"
    count="$(python3 -c 'import json, sys
w = json.loads(sys.argv[1])["written"] + int(sys.argv[2]); h = int(sys.argv[3])
print("ok" if h == w else ("lost:%d" % (w - h) if h < w else "dup:%d" % (h - w)))' "$out" "$WARMUP" "$high")"
    [ "$count" = ok ] || echo "   $peer: $high records on $t, expected $WARMUP + written: $count" >&2
    echo "$(label "$peer") $rate $r $(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}') $rss $count $out" >> "$results"
    echo "   $peer: $out"
}

for rate in $RATES; do
    for r in $(seq "$REPEAT"); do
        echo "== $rate lines/s for $DURATION s, round $r of $REPEAT"
        for peer in $PEERS; do run_peer "$peer" "$rate" "$r"; done
    done
done

echo
python3 - "$results" "$DURATION" "$KEEP_UP_S" "${RESULTS_TSV:-}" <<'PY'
import json, math, os, statistics, sys
duration, keep_up_s, tsv = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
runs = {}  # (rate, tool) -> [run]
for line in open(sys.argv[1]):
    tool, rate, r, cpu, rss, count, js = line.rstrip("\n").split(" ", 6)
    m = json.loads(js)
    run = {"count": count}
    if m:
        run["rss"] = int(rss) / 1024
        written = m["written"]
        # The last sample may precede the end of writing by a sample interval.
        drain = max(0.0, m["drain_s"]) if m["drain_s"] is not None else None
        run.update(p50=m["p50_ms"], p99=m["p99_ms"], max=m["max_ms"], lag=m["lag_at_end"],
                   drain=drain if drain is not None else math.nan,
                   acked=written / (duration + drain) if drain is not None else m["delivered"] / (duration + 60),
                   writer=written / duration,
                   cpu=float(cpu) / max(1, written) * 1e6,
                   kept=drain is not None and drain <= keep_up_s and m["delivered"] >= written)
    runs.setdefault((int(rate), tool), []).append(run)

def med(rs, k):
    xs = [x[k] for x in rs if k in x and not math.isnan(x[k])]
    return statistics.median(xs) if xs else math.nan

rows = []
for rate in sorted({k[0] for k in runs}):
    tools = [t for (r, t) in runs if r == rate]
    reps = max(len(runs[(rate, t)]) for t in tools)
    print(f"steady appends at {rate:,} lines/s for {duration:g} s, medians of {reps} run(s), Apache Kafka on loopback")
    print(f"{'tool':<19}{'p50 ms':>8}{'p99 ms':>9}{'max ms':>9}{'lag@end':>9}{'drain s':>8}{'acked/s':>10}"
          f"{'writer/s':>10}{'CPU us/line':>12}{'peak RSS MB':>12}{'kept up':>8}  count")
    stat = {}
    for t in tools:
        rs = runs[(rate, t)]
        s = {k: med(rs, k) for k in ("p50", "p99", "max", "lag", "drain", "acked", "writer", "cpu", "rss")}
        ok = sum(1 for x in rs if x.get("kept"))
        s["kept"] = "yes" if ok == len(rs) else ("no" if ok == 0 else f"{ok}/{len(rs)}")
        counts = ",".join(x["count"] for x in rs)
        stat[t] = s
        print(f"{t:<19}{s['p50']:>8.1f}{s['p99']:>9.1f}{s['max']:>9.1f}{s['lag']:>9,.0f}{s['drain']:>8.2f}"
              f"{s['acked']:>10,.0f}{s['writer']:>10,.0f}{s['cpu']:>12.2f}{s['rss']:>12.1f}{s['kept']:>8}  {counts}")
        rows.append((t, rate, s))
    if "tributary" in stat:
        b = stat["tributary"]
        print()
        for t, s in stat.items():
            if t == "tributary":
                continue
            print(f"{t + ' / tributary:':<32}p50 {s['p50'] / b['p50']:7.2f}x  p99 {s['p99'] / b['p99']:7.2f}x  "
                  f"CPU per line {s['cpu'] / b['cpu']:6.2f}x  peak RSS {s['rss'] / b['rss']:6.2f}x")
        print("(the peer's figure over tributary's: > 1, tributary ahead)")
    print()
print("Delays: from the write of a burst of lines (every 10 ms) to the first high-watermark")
print("sample covering it. CPU: the peer's, from the start of writing to the last acknowledgement.")
if tsv:
    new = not os.path.exists(tsv) or os.path.getsize(tsv) == 0
    with open(tsv, "a") as f:
        if new:
            f.write("tool\trate\tp50_ms\tp99_ms\tmax_ms\tcpu_per_line_us\trss_mb\tkept_up\n")
        for t, rate, s in rows:
            f.write(f"{t}\t{rate}\t{s['p50']:.1f}\t{s['p99']:.1f}\t{s['max']:.1f}\t{s['cpu']:.2f}\t{s['rss']:.1f}\t{s['kept']}\n")
PY
