#!/usr/bin/env bash
# Cold read of a log file into Apache Kafka: tributary's logfile source
# beside Kafka Connect standalone with FileStreamSourceConnector, the
# connector Apache Kafka ships for lines of a file, on one broker
# (scripts/kafka) and the same N-line file (~100 bytes a line).
#
#   Connect    ConnectStandalone from Kafka's own Maven jars at the version
#              scripts/kafka pins, started as bin/connect-standalone.sh
#              would (-Xms256M -Xmx2G, G1, kafka-run-class.sh's JVM flags);
#              StringConverter for keys and values (the line as it is);
#              FileStreamSource batch.size = 10000 lines per poll
#              (connect_classpath, connect_props and connect_cmd in
#              benches/peers/lib.sh).
#   tributary  the logfile source, format = "string".
# Producer settings on both: acks=all, idempotence on, linger 5 ms, 10,000
# records (~1 MB) per batch, 64 MB buffer, compression none.
#
# Both are followers that never end: each is timed from its start until the
# broker holds all N records (JVM start-up included: what a user waits for),
# then stopped with SIGTERM; CPU seconds and peak RSS are GNU time's over
# the process's whole life. Runs alternate; medians of REPEAT runs. Every
# run must leave exactly N records on its topic (none lost, none doubled).
#
# Also says whether a CSV source connector is on Maven Central (asks Maven
# for the candidates in CSV_CANDIDATES).
#
#   benches/peers/connect.sh                  # N=1000000 REPEAT=3
#   N=200000 REPEAT=1 benches/peers/connect.sh
#   RESULTS_TSV=cold.tsv benches/peers/connect.sh   # also append the medians
#
# RESULTS_TSV=FILE appends a row per tool (tool records wall_s records_per_s
# cpu_s records_per_cpu_s rss_mb) to FILE, with a header when it is new.
set -euo pipefail
[ -n "${RESULTS_TSV:-}" ] && RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
N="${N:-1000000}"
REPEAT="${REPEAT:-3}"
# group:artifact of CSV source connectors people use; none was on Maven
# Central when this was written (both are published on Confluent Hub).
CSV_CANDIDATES="${CSV_CANDIDATES:-com.github.jcustenborder.kafka.connect:kafka-connect-spooldir io.streamthoughts:kafka-connect-file-pulse-plugin}"
source benches/peers/lib.sh

csv_connectors() {
    echo "== CSV source connectors on Maven Central"
    local c
    for c in $CSV_CANDIDATES; do
        if mvn -q -B -Dstyle.color=never dependency:get -Dartifact="$c:LATEST" -Dtransitive=false \
            > "$work/csv-$c.log" 2>&1; then
            echo "   $c: published ($(grep -o 'Downloaded from central: [^ ]*\.jar' "$work/csv-$c.log" | head -1 | sed 's/.*\///'))"
        else
            if grep -q 'Could not find metadata' "$work/csv-$c.log"; then
                echo "   $c: not on Maven Central (no maven-metadata.xml: no version published)"
            else
                echo "   $c: Maven could not tell (see below)"; tail -5 "$work/csv-$c.log"
            fi
        fi
    done
}

echo "== building tributary, fetching Kafka Connect $KAFKA_VERSION"
build_tributary tributary-logfile
connect_classpath
peers_kafka_start
echo "== input"
cold_input "$N"

cold_rounds connect connect-filestream "Connect FileStreamSource"

echo
report "$N"
echo
csv_connectors
