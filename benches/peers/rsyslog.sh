#!/usr/bin/env bash
# Cold read of a log file into Apache Kafka: tributary's logfile source
# beside rsyslog (imfile -> omkafka), on one broker (scripts/kafka) and the
# same N-line file (~100 bytes a line).
#
#   rsyslog    Debian's rsyslog and rsyslog-kafka (apt-get install when
#              absent), rsyslogd in the foreground as nobody with its own
#              config and work directory, not the system service (rsyslog_conf
#              in benches/peers/lib.sh): imfile in inotify mode from the start
#              of the file, the raw line as the value (template %rawmsg%),
#              omkafka, whose producer is librdkafka, with tributary's settings
#              (librdkafka_producer_props): enable.idempotence=true, acks=all,
#              linger.ms=5, batch.num.messages=10000,
#              queue.buffering.max.messages=100000 (64 MB), compression none.
#   tributary  the logfile source, format = "string".
#
# Both are followers that never end: each is timed from its start until the
# broker holds all N records, then stopped with SIGTERM; CPU seconds and
# peak RSS are GNU time's over the process's whole life. Runs alternate;
# medians of REPEAT runs. Every run must leave exactly N records on its
# topic (none lost, none doubled).
#
#   benches/peers/rsyslog.sh                  # N=1000000 REPEAT=3
#   N=200000 REPEAT=1 benches/peers/rsyslog.sh
#   RESULTS_TSV=cold.tsv benches/peers/rsyslog.sh   # also append the medians
#
# RESULTS_TSV=FILE appends a row per tool (tool records wall_s records_per_s
# cpu_s records_per_cpu_s rss_mb) to FILE, with a header when it is new.
# Runs as root (apt-get, and setpriv to become nobody).
set -euo pipefail
[ -n "${RESULTS_TSV:-}" ] && RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
N="${N:-1000000}"
REPEAT="${REPEAT:-3}"
source benches/peers/lib.sh

echo "== building tributary, rsyslog from apt"
build_tributary tributary-logfile
rsyslog_install
/usr/sbin/rsyslogd -v | head -1
peers_kafka_start
echo "== input"
cold_input "$N"

cold_rounds rsyslog rsyslog "rsyslog"

echo
report "$N"
