#!/usr/bin/env bash
# Host metrics every second into Apache Kafka: tributary's sysmetrics source
# beside Telegraf (cpu, mem, disk, diskio and net inputs -> Kafka output,
# 1 s interval), both running at the same time for DURATION seconds on one
# broker (scripts/kafka). Prints the CPU seconds, CPU milliseconds per
# interval, peak RSS and records written of each, and the ratios.
#
# Telegraf is built once from the Go module proxy,
# github.com/influxdata/telegraf@$TELEGRAF_VERSION (benches/peers/lib.sh),
# into the peers' cache, with only the plugins used here (Telegraf's
# `custom` build tags), as its documentation says to build a small agent.
# Kafka output settings: required_acks -1, idempotent_writes, compression
# off, JSON values; batch of up to 10,000 metrics flushed every second.
# tributary: sysmetrics, wide rows, JSON, keyed by host, 1 s interval.
#
# Both run under GNU time and are stopped with SIGTERM after DURATION s:
# CPU seconds and peak RSS cover the whole life, start-up included.
#
#   benches/peers/telegraf.sh                  # DURATION=120
#   DURATION=30 benches/peers/telegraf.sh
#   BUILD_ONLY=1 benches/peers/telegraf.sh     # fetch and build Telegraf
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-120}"
source benches/peers/lib.sh

telegraf="$PEERS_CACHE/telegraf-$TELEGRAF_VERSION-custom"
telegraf_tags=custom,inputs.cpu,inputs.mem,inputs.disk,inputs.diskio,inputs.net,outputs.kafka,serializers.json

echo "== building Telegraf $TELEGRAF_VERSION ($telegraf_tags)"
go_peer github.com/influxdata/telegraf "$TELEGRAF_VERSION" ./cmd/telegraf "$telegraf" \
    -tags "$telegraf_tags"
"$telegraf" --version
[ -n "${BUILD_ONLY:-}" ] && exit 0
build_tributary tributary-sysmetrics
peers_kafka_start
topic tributary_metrics
topic telegraf_metrics

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

echo "== both for $DURATION s"
tpids=()
RUST_LOG=warn /usr/bin/time -f "%e %U %S %M" -o "$work/tributary.time" \
    "$bin/tributary" run --config "$work/tributary.toml" > "$work/tributary.out" 2>&1 &
tpids+=($!)
/usr/bin/time -f "%e %U %S %M" -o "$work/telegraf.time" \
    "$telegraf" --config "$work/telegraf.conf" > "$work/telegraf.out" 2>&1 &
tpids+=($!)
peer_pids+=("${tpids[@]}")
sleep "$DURATION"
for t in "${tpids[@]}"; do
    child="$(pgrep -P "$t" | head -1)"
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null || true
done
for t in "${tpids[@]}"; do wait "$t" 2>/dev/null || true; done

for tool in tributary telegraf; do
    read -r _ user sys rss < <(tail -1 "$work/$tool.time")
    records="$(python3 benches/kafka_tool.py watermarks "$broker" "${tool}_metrics")"
    [ "$records" -gt 0 ] || { echo "$tool wrote nothing:" >&2; tail -20 "$work/$tool.out" >&2; exit 1; }
    echo "$tool $user $sys $rss $records" >> "$results"
done
echo
python3 - "$results" "$DURATION" <<'PY'
import sys
d = float(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    tool, user, sys_, rss, records = line.split()
    rows[tool] = (float(user) + float(sys_), int(rss) / 1024, int(records))
print(f"host metrics, 1 s interval, {d:.0f} s, both at once, Apache Kafka on loopback")
print(f"{'tool':<12}{'CPU s':>8}{'CPU ms/interval':>17}{'peak RSS MB':>13}{'records':>10}")
for tool, (cpu, rss, records) in rows.items():
    print(f"{tool:<12}{cpu:>8.2f}{cpu * 1000 / d:>17.2f}{rss:>13.1f}{records:>10,}")
(ct, rt, _), (cg, rg, _) = rows["tributary"], rows["telegraf"]
print(f"\ntributary / telegraf: CPU {ct / cg:.2f}x, peak RSS {rt / rg:.2f}x (< 1: tributary lighter)")
print("records: tributary writes one wide row per interval; Telegraf one record per metric and tag set")
PY
