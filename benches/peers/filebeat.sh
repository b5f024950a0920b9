#!/usr/bin/env bash
# Cold read of a log file into Apache Kafka: tributary's logfile source
# beside Filebeat (the Apache-2.0 OSS build of `filebeat`: filestream input
# -> Kafka output), on one broker (scripts/kafka) and the same N-line file
# (~100 bytes a line).
#
# Filebeat is built once from the Go module proxy,
# github.com/elastic/beats/v7@$BEATS_VERSION (benches/peers/lib.sh), into
# the peers' cache. Its Kafka output (sarama) has no idempotent producer;
# the rest is set to tributary's defaults where it has a knob:
#   required_acks -1 (acks=all), compression none, bulk_max_size 10000 and
#   bulk_flush_frequency 5 ms (batch.num.messages, linger.ms), a memory
#   queue of 100,000 events flushed at 10,000 or after 5 ms
#   (queue.buffering.max.messages), protocol version 2.6 (its newest).
# The record value is the line as it is (codec.format '%{[message]}'), as
# tributary's format = "string" sends it.
#
# Both are followers that never end: each is timed from its start until the
# broker holds all N records, then stopped with SIGTERM; CPU seconds and
# peak RSS are GNU time's over the process's whole life. Runs alternate;
# medians of REPEAT runs. Every run must leave exactly N records on its
# topic (none lost, none doubled).
#
#   benches/peers/filebeat.sh                  # N=1000000 REPEAT=3
#   N=200000 REPEAT=1 benches/peers/filebeat.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-1000000}"
REPEAT="${REPEAT:-3}"
source benches/peers/lib.sh

filebeat="$PEERS_CACHE/filebeat-$BEATS_VERSION"

# filebeat_conf NAME TOPIC FILE: $work/NAME/filebeat.yml, its data,
# registry and logs under $work/NAME.
filebeat_conf() {
    local dir="$work/$1"
    mkdir -p "$dir"
    cat > "$dir/filebeat.yml" <<YAML
filebeat.inputs:
  - type: filestream
    id: bench
    paths: ["$3"]
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

echo "== building tributary and Filebeat $BEATS_VERSION"
build_tributary tributary-logfile
go_peer github.com/elastic/beats/v7 "$BEATS_VERSION" ./filebeat "$filebeat"
"$filebeat" version
peers_kafka_start
echo "== input"
cold_input "$N"

for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT: cold read of $N lines"
    topic "cold_tributary_$r"
    topic "cold_filebeat_$r"
    tributary_logfile_toml "cold_tributary_$r" "$work/cold.log" "$work/off-tributary-$r" > "$work/tributary-$r.toml"
    RUST_LOG=warn until_acked "tributary_$r" "cold_tributary_$r" "$N" \
        "$bin/tributary" run --config "$work/tributary-$r.toml"
    echo "   tributary: $(tail -1 "$results" | cut -d' ' -f2) s"
    filebeat_conf "filebeat_$r" "cold_filebeat_$r" "$work/cold.log"
    until_acked "filebeat_$r" "cold_filebeat_$r" "$N" \
        "$filebeat" -e --strict.perms=false -c "$work/filebeat_$r/filebeat.yml"
    echo "   Filebeat: $(tail -1 "$results" | cut -d' ' -f2) s"
    check_count "cold_tributary_$r" "$N"
    check_count "cold_filebeat_$r" "$N"
    echo "   both topics hold exactly $N records"
done

echo
report "$N"
