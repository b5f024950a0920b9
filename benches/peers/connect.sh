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
#              FileStreamSource batch.size = 10000 lines per poll.
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
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-1000000}"
REPEAT="${REPEAT:-3}"
# group:artifact of CSV source connectors people use; none was on Maven
# Central when this was written (both are published on Confluent Hub).
CSV_CANDIDATES="${CSV_CANDIDATES:-com.github.jcustenborder.kafka.connect:kafka-connect-spooldir io.streamthoughts:kafka-connect-file-pulse-plugin}"
source benches/peers/lib.sh

# Connect's jars: scripts/kafka fetches connect-runtime and connect-file
# with the broker; anything missing of the three Connect needs here comes
# from Maven Central into the peers' cache.
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

connect_cmd() { # NAME: the java command line of bin/connect-standalone.sh
    connect=(java ${CONNECT_HEAP_OPTS:--Xms256M -Xmx2G} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
        -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$(dirname "$kafka_libs")/log4j2.properties"
        -cp "$connect_cp" org.apache.kafka.connect.cli.ConnectStandalone
        "$work/$1/worker.properties" "$work/$1/connector.properties")
}

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

for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT: cold read of $N lines"
    topic "cold_tributary_$r"
    topic "cold_connect_$r"
    tributary_logfile_toml "cold_tributary_$r" "$work/cold.log" "$work/off-tributary-$r" > "$work/tributary-$r.toml"
    RUST_LOG=warn until_acked "tributary_$r" "cold_tributary_$r" "$N" \
        "$bin/tributary" run --config "$work/tributary-$r.toml"
    echo "   tributary: $(tail -1 "$results" | cut -d' ' -f2) s"
    connect_props "connect_$r" "cold_connect_$r" "$work/cold.log"
    connect_cmd "connect_$r"
    until_acked "connect-filestream_$r" "cold_connect_$r" "$N" "${connect[@]}"
    echo "   Connect FileStreamSource: $(tail -1 "$results" | cut -d' ' -f2) s"
    check_count "cold_tributary_$r" "$N"
    check_count "cold_connect_$r" "$N"
    echo "   both topics hold exactly $N records"
done

echo
report "$N"
echo
csv_connectors
