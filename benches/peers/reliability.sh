#!/usr/bin/env bash
# Reliability side by side: each log shipper tails a file that is rotated
# by rename every ROTATE_S seconds while it is killed with SIGKILL KILLS
# times, then every line written is looked for on its topic: missing and
# duplicated lines per shipper, on one Apache Kafka broker
# (scripts/kafka), peers one after another.
#
# The job, the same for every peer:
#   - benches/peers/rotation.py writes TOTAL = RATE x DURATION lines
#     `{"seq":N}` to app.log at RATE lines/s and rotates it every ROTATE_S s
#     the way logrotate's `create` does (app.log.k -> app.log.k+1, app.log ->
#     app.log.1, a new app.log; renames in Python, as logrotate cannot run
#     every second); no rotated file is ever deleted, so every line stays
#     on disk for the shipper to find;
#   - the shipper is started, killed with SIGKILL a random 1-3 s after
#     its topic grows again (or after UP_TIMEOUT s, default 30, so a slow
#     start such as a JVM's is not killed before it ships anything), and
#     restarted at once on the same state, KILLS times; every peer gets
#     the same schedule (the seed is printed; SEED=N repeats it). After
#     each kill the script prints the end offsets (the sum of the
#     high watermarks: with exactly-once these count aborted records and
#     transaction markers too);
#   - it then runs until the writer is done and its topic has not grown for
#     QUIET_S seconds, and is stopped with SIGTERM;
#   - rotation.py reads the whole topic and counts, over the seqs written,
#     the missing ones and the extra copies.
#
# Each peer as its documentation says to run it for not losing lines, with
# the producer settings of the other benches (benches/peers/lib.sh):
#   tributary  logfile source on include = ["app.log*"] (rotated files are
#              followed by identity), value = the line, at-least-once (the
#              default): a checkpoint moves only when Kafka has acknowledged
#              every line before it and is written every commit_interval_ms
#              (1 s), so a kill -9 repeats up to that much.
#   tributary-eo  the same with delivery = "exactly_once": lines and
#              checkpoints in one Kafka transaction (offsets kept in
#              Kafka, [offsets] store = "kafka"); the oracle reads
#              committed records only (read_committed), as a consumer of an
#              exactly-once topic does.
#   filebeat   filestream input on paths ["app.log*"] (files tracked by
#              inode, registry in its data path), Kafka output with
#              required_acks -1; the registry is updated once the output
#              has acknowledged the events.
#   rsyslog    imfile (inotify mode, follows a renamed file to its end) on
#              app.log with persistStateInterval="100" (its crash-safety
#              knob: the read position is written every 100 lines instead
#              of only at a clean stop), state files in its work
#              directory, omkafka with the default in-memory action queue
#              (a disk queue is rsyslog's answer to crashes, at a large
#              cost in speed; not what the other peers are given). One
#              file name, as imfile's documentation shows for rotated
#              logs: a glob "app.log*" loses nothing here but reads every
#              rotated file again as a new one (tens of thousands of
#              copies in a 20,000-line run).
#   connect    Kafka Connect standalone, FileStreamSourceConnector on
#              file=app.log, offsets in its offset file flushed every 10 s
#              (offset.flush.interval.ms; the default is 60 s). It reads one
#              path and knows nothing of rotation: what that costs is part
#              of the result.
#
#   benches/peers/reliability.sh        # RATE=2000 DURATION=30 KILLS=10 ROTATE_S=1
#   PEERS="tributary filebeat" RATE=5000 benches/peers/reliability.sh
#   RESULTS_TSV=rel.tsv benches/peers/reliability.sh   # also appends TSV rows
#   NO_BUILD=1 RATE=2000 DURATION=10 KILLS=3 QUIET_S=5 benches/peers/reliability.sh
#
# Prints one row per peer (tool written kills rotations missing
# duplicated), also to RESULTS_TSV when set (a header when the file is
# new); a peer that cannot run here gets "-" and the others still run.
set -euo pipefail
[ -n "${RESULTS_TSV:-}" ] && RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
RATE="${RATE:-2000}"
DURATION="${DURATION:-30}"
KILLS="${KILLS:-10}"
ROTATE_S="${ROTATE_S:-1}"
QUIET_S="${QUIET_S:-10}"
UP_TIMEOUT_S=$((2 * ${UP_TIMEOUT:-30}))  # in half seconds
PEERS="${PEERS:-tributary tributary-eo filebeat rsyslog connect}"
SEED="${SEED:-$RANDOM}"
source benches/peers/lib.sh

total=$((RATE * DURATION))
echo "== $total lines at $RATE lines/s, rotated every ${ROTATE_S} s, $KILLS kill -9 per shipper, seed $SEED"
build_tributary tributary-logfile
peers_kafka_start

# unavailable PEER: sets `why` to the reason PEER cannot run here, empty
# when it can (fetches or installs what it needs first).
unavailable() {
    why=""
    case "$1" in
        tributary|tributary-eo)
            [ -x "$bin/tributary" ] && [ -f "$bin/libtributary_logfile.so" ] \
                || why="no $bin/tributary or $bin/libtributary_logfile.so"
            ;;
        filebeat)
            [ -x "$filebeat" ] || go_peer github.com/elastic/beats/v7 "$BEATS_VERSION" ./filebeat "$filebeat" \
                || why="Filebeat $BEATS_VERSION could not be built"
            ;;
        rsyslog)
            rsyslog_install || true
            [ -x /usr/sbin/rsyslogd ] && [ -f /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ] \
                || why="rsyslog and rsyslog-kafka are not installed and apt-get could not install them"
            ;;
        connect)
            command -v java > /dev/null || { why="no java"; return 0; }
            [ -n "${connect_cp:-}" ] || connect_classpath || true
            [ -n "${connect_cp:-}" ] || why="Kafka Connect's jars could not be fetched"
            ;;
        *)
            why="unknown peer (tributary tributary-eo filebeat rsyslog connect)"
            ;;
    esac
}

# start_shipper PEER DIR TOPIC: starts PEER on DIR/app.log* (its state in
# DIR) in the background; sets `shipper` to its PID.
start_shipper() {
    local peer="$1" dir="$2" topic="$3"
    case "$peer" in
        tributary|tributary-eo)
            RUST_LOG=warn "$bin/tributary" run --config "$dir/tributary.toml" >> "$dir/out.log" 2>&1 &
            ;;
        filebeat|connect)
            "${cmd[@]}" >> "$dir/out.log" 2>&1 &
            ;;
        rsyslog)
            rm -f "$dir/state/pid"
            "${cmd[@]}" >> "$dir/out.log" 2>&1 &
            ;;
    esac
    shipper=$!
    peer_pids+=("$shipper")
}

# configure PEER DIR TOPIC: the peer's configuration, once per run.
configure() {
    local peer="$1" dir="$2" topic="$3" name
    name="$(basename "$dir")"
    case "$peer" in
        tributary)
            tributary_logfile_toml "$topic" "$dir/app.log*" "$dir/offsets" > "$dir/tributary.toml"
            ;;
        tributary-eo)
            tributary_logfile_toml "$topic" "$dir/app.log*" "$dir/offsets" > "$dir/tributary.toml"
            echo 'delivery = "exactly_once"' >> "$dir/tributary.toml"
            sed -i 's/^\[offsets\]$/[offsets]\nstore = "kafka"/' "$dir/tributary.toml"
            ;;
        filebeat)
            filebeat_conf "$name" "$topic" "$dir/app.log*"
            filebeat_cmd "$name"
            ;;
        rsyslog)
            rsyslog_install
            rsyslog_conf "$name" "$topic" "$dir/app.log"
            sed -i 's/freshStartTail="off"/freshStartTail="off" persistStateInterval="100"/' \
                "$dir/rsyslog.conf"
            chown -R nobody:nogroup "$dir/state"
            rsyslog_cmd "$name"
            ;;
        connect)
            connect_props "$name" "$topic" "$dir/app.log"
            connect_cmd "$name"
            ;;
    esac
}

topic_total() { python3 benches/kafka_tool.py watermarks "$broker" "$1"; }

printf '%s\t%s\t%s\t%s\t%s\t%s\n' tool written kills rotations missing duplicated > "$work/rel.tsv"
for peer in $PEERS; do
    unavailable "$peer"
    if [ -n "$why" ]; then
        echo "== $peer cannot run: $why"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$total" - - - - >> "$work/rel.tsv"
        continue
    fi
    dir="$work/$peer"
    topic="reliability_$peer"
    mkdir -p "$dir"
    chmod 755 "$dir"
    : > "$dir/app.log"
    chmod 644 "$dir/app.log"
    topic "$topic"
    configure "$peer" "$dir" "$topic"
    echo "== $peer"
    python3 benches/peers/rotation.py write "$dir/app.log" "$total" "$RATE" "$ROTATE_S" > "$dir/rotations" &
    writer=$!
    RANDOM="$SEED" # the same kill schedule for every peer
    for k in $(seq "$KILLS"); do
        before="$(topic_total "$topic")"
        start_shipper "$peer" "$dir" "$topic"
        # The kill comes 1-3 s after the shipper has shipped again (or
        # after UP_TIMEOUT_S s), so a slow start (a JVM) is not killed
        # before it does anything.
        up=0
        while [ "$up" -lt "$UP_TIMEOUT_S" ] && [ "$(topic_total "$topic")" = "$before" ]; do
            sleep 0.5
            up=$((up + 1))
        done
        pause_ms=$((1000 + RANDOM % 2001))
        sleep "$(awk -v ms="$pause_ms" 'BEGIN {print ms / 1000}')"
        kill -KILL "$shipper" 2>/dev/null || true
        wait "$shipper" 2>/dev/null || true
        echo "   kill -9 $k, ${pause_ms} ms after it shipped again: $(topic_total "$topic") records on the topic"
    done
    start_shipper "$peer" "$dir" "$topic"
    wait "$writer"
    last=-1
    quiet=0
    waited=0
    while [ "$quiet" -lt "$QUIET_S" ] && [ "$waited" -lt 300 ]; do
        sleep 1
        waited=$((waited + 1))
        now="$(topic_total "$topic")"
        if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; last="$now"; fi
    done
    kill -TERM "$shipper" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$shipper" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$shipper" 2>/dev/null || true
    wait "$shipper" 2>/dev/null || true
    rotations="$(cat "$dir/rotations")"
    read -r missing duplicated out_of_range < <(python3 benches/peers/rotation.py count "$broker" "$topic" "$total")
    echo "   $peer: $total written, $rotations rotations, $missing missing, $duplicated duplicated, $out_of_range not written by the writer"
    if [ "$missing" != 0 ]; then
        echo "   the last lines of $peer's own log:"
        { grep -v '^\s*$' "$dir/out.log" || echo "(nothing)"; } | tail -5 | cut -c1-300 | sed 's/^/     /'
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$total" "$KILLS" "$rotations" "$missing" "$duplicated" >> "$work/rel.tsv"
done

echo
echo "kill -9 x$KILLS while tailing a file rotated by rename every ${ROTATE_S} s, $RATE lines/s, seed $SEED"
column -t "$work/rel.tsv"
if [ -n "${RESULTS_TSV:-}" ]; then
    if [ -s "$RESULTS_TSV" ]; then tail -n +2 "$work/rel.tsv" >> "$RESULTS_TSV"; else cp "$work/rel.tsv" "$RESULTS_TSV"; fi
    echo "rows appended to $RESULTS_TSV"
fi
