#!/usr/bin/env bash
# Cold read of a log file into Apache Kafka: tributary's logfile source
# beside Filebeat (the Apache-2.0 OSS build of `filebeat`: filestream input
# -> Kafka output), on one broker (scripts/kafka) and the same N-line file
# (~100 bytes a line).
#
# Filebeat is built once from the Go module proxy,
# github.com/elastic/beats/v7@$BEATS_VERSION (benches/peers/lib.sh), into
# the peers' cache; its configuration is filebeat_conf's in
# benches/peers/lib.sh. Its Kafka output (sarama) has no idempotent
# producer; the rest is set to tributary's defaults where it has a knob:
#   required_acks -1 (acks=all), compression none, bulk_max_size 10000 and
#   bulk_flush_frequency 5 ms (batch.num.messages, linger.ms), a memory
#   queue of 100,000 events flushed at 10,000 or after 5 ms
#   (queue.buffering.max.messages), protocol version 2.6 (its newest),
#   end-of-file backoff 100 ms and a scan for new files every second (the
#   logfile source's polling of open files and glob_interval_ms).
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
#   RESULTS_TSV=cold.tsv benches/peers/filebeat.sh   # also append the medians
#
# RESULTS_TSV=FILE appends a row per tool (tool records wall_s records_per_s
# cpu_s records_per_cpu_s rss_mb) to FILE, with a header when it is new.
set -euo pipefail
[ -n "${RESULTS_TSV:-}" ] && RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
N="${N:-1000000}"
REPEAT="${REPEAT:-3}"
source benches/peers/lib.sh

echo "== building tributary and Filebeat $BEATS_VERSION"
build_tributary tributary-logfile
go_peer github.com/elastic/beats/v7 "$BEATS_VERSION" ./filebeat "$filebeat"
"$filebeat" version
peers_kafka_start
echo "== input"
cold_input "$N"

cold_rounds filebeat filebeat "Filebeat"

echo
report "$N"
