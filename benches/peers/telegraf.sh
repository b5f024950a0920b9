#!/usr/bin/env bash
# Host metrics every second into Apache Kafka: tributary's sysmetrics source
# beside Telegraf (cpu, mem, disk, diskio and net inputs -> Kafka output,
# 1 s interval) and collectd (cpu, memory, df, disk and interface plugins
# -> write_kafka, 1 s interval), all three running at the same time for
# DURATION seconds on one broker (scripts/kafka). Prints the CPU seconds,
# CPU milliseconds per interval, peak RSS and records written of each, and
# the ratios; with RESULTS_TSV=FILE also appends one row per tool (tool
# cpu_s cpu_ms_per_sample rss_mb, header line when the file is new) for
# benches/peers/plot.py --metrics.
#
# Telegraf is built once from the Go module proxy,
# github.com/influxdata/telegraf@$TELEGRAF_VERSION (benches/peers/lib.sh),
# into the peers' cache, with only the plugins used here (Telegraf's
# `custom` build tags), as its documentation says to build a small agent.
# Kafka output settings: required_acks -1, idempotent_writes, compression
# off, JSON values; batch of up to 10,000 metrics flushed every second.
# collectd: Debian's collectd-core (installed with apt-get when absent),
# its plugins configured as benches/sysmetrics.sh does (total CPU in
# percent, df without pseudo file systems, disks without loop/ram/zram,
# interfaces without lo); write_kafka (librdkafka) set to tributary's
# producer defaults: enable.idempotence true, acks all, linger.ms 5,
# batch.num.messages 10000, queue.buffering.max.kbytes 65536 and
# .messages 100000, compression none; JSON values, keyed by host name.
# tributary: sysmetrics, wide rows, JSON, keyed by host, 1 s interval.
#
# All three run under GNU time and are stopped with SIGTERM after
# DURATION s: CPU seconds and peak RSS cover the whole life, start-up
# included.
#
#   benches/peers/telegraf.sh                  # DURATION=120
#   DURATION=30 benches/peers/telegraf.sh
#   BUILD_ONLY=1 benches/peers/telegraf.sh     # fetch and build Telegraf, install collectd
set -euo pipefail
# RESULTS_TSV relative to where the script was started from
[ -z "${RESULTS_TSV:-}" ] || RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-120}"
source benches/peers/lib.sh

telegraf="$PEERS_CACHE/telegraf-$TELEGRAF_VERSION-custom"
telegraf_tags=custom,inputs.cpu,inputs.mem,inputs.disk,inputs.diskio,inputs.net,outputs.kafka,serializers.json

echo "== building Telegraf $TELEGRAF_VERSION ($telegraf_tags)"
go_peer github.com/influxdata/telegraf "$TELEGRAF_VERSION" ./cmd/telegraf "$telegraf" \
    -tags "$telegraf_tags"
"$telegraf" --version
if [ ! -x /usr/sbin/collectd ] || [ ! -f /usr/lib/collectd/write_kafka.so ]; then
    echo "== installing collectd-core (apt)"
    apt-get install -y -qq collectd-core >/dev/null || { apt-get update -qq && apt-get install -y -qq collectd-core >/dev/null; }
fi
echo "   $(/usr/sbin/collectd -h | sed -n 's/^collectd \([0-9][0-9.]*[0-9]\).*/collectd \1/p' | head -1)"
[ -n "${BUILD_ONLY:-}" ] && exit 0
build_tributary tributary-sysmetrics
peers_kafka_start
topic tributary_metrics
topic telegraf_metrics
topic collectd_metrics

{
    tributary_toml "$work/off-tributary"
    cat <<TOML
[[source]]
name = "host"
type = "sysmetrics"
topic = "tributary_metrics"
key = "host"
format = "json"
interval_ms = 1000
shape = "wide"
TOML
} > "$work/tributary.toml"

cat > "$work/telegraf.conf" <<TOML
[agent]
  interval = "1s"
  flush_interval = "1s"
  collection_jitter = "0s"
  flush_jitter = "0s"
  metric_batch_size = 10000
  metric_buffer_limit = 100000
  quiet = true
[[inputs.cpu]]
  percpu = true
  totalcpu = true
[[inputs.mem]]
[[inputs.disk]]
[[inputs.diskio]]
[[inputs.net]]
[[outputs.kafka]]
  brokers = ["$broker"]
  topic = "telegraf_metrics"
  version = "2.8.0"
  routing_tag = "host"
  required_acks = -1
  idempotent_writes = true
  compression_codec = 0
  data_format = "json"
TOML

# collectd: the collectors of benches/sysmetrics.sh (collectd_inputs in
# benches/lib.sh), write_kafka with the producer settings of the others.
{
    collectd_inputs "$work/collectd"
    echo "LoadPlugin write_kafka"
    echo "<Plugin write_kafka>"
    echo "  Property \"metadata.broker.list\" \"$broker\""
    for p in "${librdkafka_producer_props[@]}"; do echo "  Property \"${p%%=*}\" \"${p#*=}\""; done
    cat <<CONF
  <Topic "collectd_metrics">
    Format JSON
    Key "$(hostname)"
  </Topic>
</Plugin>
CONF
} > "$work/collectd.conf"

echo "== all three for $DURATION s"
tpids=()
RUST_LOG=warn /usr/bin/time -f "%e %U %S %M" -o "$work/tributary.time" \
    "$bin/tributary" run --config "$work/tributary.toml" > "$work/tributary.out" 2>&1 &
tpids+=($!)
/usr/bin/time -f "%e %U %S %M" -o "$work/telegraf.time" \
    "$telegraf" --config "$work/telegraf.conf" > "$work/telegraf.out" 2>&1 &
tpids+=($!)
/usr/bin/time -f "%e %U %S %M" -o "$work/collectd.time" \
    /usr/sbin/collectd -f -C "$work/collectd.conf" > "$work/collectd.out" 2>&1 &
tpids+=($!)
peer_pids+=("${tpids[@]}")
sleep "$DURATION"
for t in "${tpids[@]}"; do
    child="$(pgrep -P "$t" | head -1)"
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
done
for t in "${tpids[@]}"; do wait "$t" 2>/dev/null || true; done

for tool in tributary telegraf collectd; do
    read -r _ user sys rss < <(tail -1 "$work/$tool.time")
    records="$(python3 benches/kafka_tool.py watermarks "$broker" "${tool}_metrics")"
    [ "$records" -gt 0 ] || { echo "$tool wrote nothing:" >&2; tail -20 "$work/$tool.out" >&2; exit 1; }
    echo "$tool $user $sys $rss $records" >> "$results"
done
echo
python3 - "$results" "$DURATION" "${RESULTS_TSV:-}" <<'PY'
import os, sys
d = float(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    tool, user, sys_, rss, records = line.split()
    rows[tool] = (float(user) + float(sys_), int(rss) / 1024, int(records))
print(f"host metrics, 1 s interval, {d:.0f} s, all at once, Apache Kafka on loopback")
print(f"{'tool':<12}{'CPU s':>8}{'CPU ms/interval':>17}{'peak RSS MB':>13}{'records':>10}")
for tool, (cpu, rss, records) in rows.items():
    print(f"{tool:<12}{cpu:>8.2f}{cpu * 1000 / d:>17.2f}{rss:>13.1f}{records:>10,}")
ct, rt, _ = rows["tributary"]
print()
for tool, (c, r, _) in rows.items():
    if tool != "tributary":
        print(f"tributary / {tool:<9} CPU {ct / c:.2f}x, peak RSS {rt / r:.2f}x (< 1: tributary lighter)")
print("records: tributary writes one wide row per interval; Telegraf one record per metric and tag set;")
print("collectd one record per value list (plugin instance and type)")
out = sys.argv[3]
if out:
    new = not os.path.exists(out) or os.path.getsize(out) == 0
    with open(out, "a") as f:
        if new:
            f.write("tool\tcpu_s\tcpu_ms_per_sample\trss_mb\n")
        for tool, (cpu, rss, _) in rows.items():
            f.write(f"{tool}\t{cpu:.3f}\t{cpu * 1000 / d:.3f}\t{rss:.1f}\n")
    print(f"rows appended to {out}")
PY
