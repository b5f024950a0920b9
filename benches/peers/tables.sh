#!/usr/bin/env bash
# A CSV table into Apache Kafka: N order rows (benches/tables.py, ~100
# bytes a row) sent as JSON records keyed by customer_id, by tributary's
# `csv` table source beside the Python scripts people write for this job
# today, on one broker (scripts/kafka):
#   confluent_kafka  pandas.read_csv + iterrows + confluent-kafka Producer,
#                    json.dumps of each row's dict;
#   kafka_python     pandas.read_csv + iterrows + kafka-python
#                    KafkaProducer(value_serializer=json.dumps ...).
# Kafka Connect is not in the comparison: Apache Kafka ships no CSV source
# connector, and the community ones (spooldir, file-pulse) are published on
# Confluent Hub only, not on Maven Central, where Connect's other jars come
# from (scripts/kafka).
#
# Producer settings are tributary's defaults (daemon/src/producer/mod.rs),
# set in each client (benches/tables.py, peer_confluent_kafka and
# peer_kafka_python):
#   tributary        idempotent, acks=all, linger.ms 5, batch.num.messages
#                    10000, a 64 MB / 100,000-record queue, no compression;
#                    batch_rows 10000; the CSV's decimals and timestamp
#                    typed (orders_columns, benches/lib.sh).
#   confluent_kafka  the same librdkafka settings: enable.idempotence true,
#                    acks all, linger.ms 5, batch.num.messages 10000,
#                    queue.buffering.max.kbytes 65536 and .messages 100000,
#                    compression.codec none.
#   kafka_python     enable_idempotence True, acks all, linger_ms 5,
#                    batch_size 1 MB (bytes per partition: ~10,000 records),
#                    compression_type None; protocol versions probed.
# PY_DEFAULTS=1 runs the scripts with their clients' defaults instead (the
# loops of benches/tables.sh: confluent-kafka not idempotent, 1 GB queue;
# kafka-python linger 0, 16 KB batches, protocol pinned to 2.0).
# The values are json.dumps of pandas' row (ints, floats, the timestamp as
# its text); tributary's are its typed JSON (decimals as numbers, the
# timestamp in RFC 3339), about the same size.
#
# Every tool reads the file and exits once all is acknowledged: wall
# seconds, CPU seconds (user + system) and peak RSS are GNU time's over the
# whole process, interpreter start and pandas import included. The Python
# peers send the first PY_N rows (default N). Runs alternate tools after an
# untimed warm-up of each on 1,000 rows; medians of REPEAT runs. Every run
# must leave exactly its row count on its topic (none lost, none doubled).
# Prints rows/s, CPU seconds, rows per CPU-second and peak RSS, and the
# ratios against tributary; with RESULTS_TSV=FILE also appends one row per
# tool (tool records wall_s records_per_s cpu_s records_per_cpu_s rss_mb,
# header line when the file is new) for benches/peers/plot.py --tables.
#
#   benches/peers/tables.sh                        # N=1000000 REPEAT=3
#   N=100000 PY_N=20000 REPEAT=1 NO_BUILD=1 benches/peers/tables.sh
#   RESULTS_TSV=tables.tsv benches/peers/tables.sh
set -euo pipefail
# RESULTS_TSV relative to where the script was started from
[ -z "${RESULTS_TSV:-}" ] || RESULTS_TSV="$(realpath -m "$RESULTS_TSV")"
cd "$(dirname "$0")/../.."
N="${N:-1000000}"
PY_N="${PY_N:-$N}"
REPEAT="${REPEAT:-3}"
PY_DEFAULTS="${PY_DEFAULTS:-0}"
python3 -c 'import pandas, kafka, confluent_kafka' 2>/dev/null || {
    echo "needs pandas, kafka-python and confluent-kafka:" \
        "python3 -m pip install pandas kafka-python confluent-kafka" >&2
    exit 1
}
[ "$PY_N" -le "$N" ] || { echo "PY_N ($PY_N) must not exceed N ($N)" >&2; exit 1; }
source benches/peers/lib.sh

py_tools=(confluent_kafka kafka_python)
py_entry() { # tool -> benches/tables.py command
    if [ "$PY_DEFAULTS" = 1 ]; then echo "pandas-${1//_/-}"; else echo "peer-${1//_/-}"; fi
}

# tables_toml TOPIC CSV OFFSETS_DIR: the csv source on CSV, keyed by
# customer_id, JSON values.
tables_toml() {
    tributary_toml "$3"
    cat <<TOML
[[source]]
name = "bench"
type = "csv"
topic = "$1"
key = "customer_id"
format = "json"
path = "$2"
batch_rows = 10000
$orders_columns
TOML
}

echo "== tributary, Python $(python3 -c 'import platform; print(platform.python_version())'), pandas" \
    "$(python3 -c 'import pandas; print(pandas.__version__)'), confluent-kafka" \
    "$(python3 -c 'import confluent_kafka as c; print(c.__version__, "/ librdkafka", c.libversion()[0])'), kafka-python" \
    "$(python3 -c 'import kafka; print(kafka.__version__)')"
[ "$PY_DEFAULTS" = 1 ] && echo "   Python producers with their clients' defaults (PY_DEFAULTS=1)"
build_tributary tributary-tables
peers_kafka_start

echo "== input"
python3 benches/tables.py write "$N" "$work/orders.csv" /dev/null
head -n $((PY_N + 1)) "$work/orders.csv" > "$work/orders-py.csv"
head -n 1001 "$work/orders.csv" > "$work/warmup.csv"
echo "   $work/orders.csv: $N rows, $(wc -c < "$work/orders.csv") bytes; Python peers: $PY_N rows"

echo "== warm-up (untimed, 1,000 rows each)"
topic warmup_tributary
tables_toml warmup_tributary "$work/warmup.csv" "$work/off-warmup" > "$work/warmup.toml"
RUST_LOG=warn "$bin/tributary" run --config "$work/warmup.toml" --exit-when-finished > /dev/null 2> "$work/warmup.err" || {
    echo "tributary warm-up failed:" >&2; tail -20 "$work/warmup.err" >&2; exit 1; }
for t in "${py_tools[@]}"; do
    topic "warmup_$t"
    python3 benches/tables.py "$(py_entry "$t")" "$broker" "warmup_$t" "$work/warmup.csv" \
        > "$work/warmup-$t.out" 2>&1 || { echo "$t warm-up failed:" >&2; tail -20 "$work/warmup-$t.out" >&2; exit 1; }
done

# rows of each run, by tool, for the report
: > "$work/rows"
for r in $(seq "$REPEAT"); do
    echo "== round $r of $REPEAT"
    topic "tables_tributary_$r"
    tables_toml "tables_tributary_$r" "$work/orders.csv" "$work/off-tributary-$r" > "$work/tributary-$r.toml"
    RUST_LOG=warn measure "tributary_$r" "$bin/tributary" run --config "$work/tributary-$r.toml" --exit-when-finished
    check_count "tables_tributary_$r" "$N"
    echo "   tributary: $(tail -1 "$results" | cut -d' ' -f2) s, $N records on the topic"
    echo "tributary $N" >> "$work/rows"
    for t in "${py_tools[@]}"; do
        topic "tables_${t}_$r"
        measure "${t}_$r" python3 benches/tables.py "$(py_entry "$t")" "$broker" "tables_${t}_$r" "$work/orders-py.csv"
        check_count "tables_${t}_$r" "$PY_N"
        echo "   $t: $(tail -1 "$results" | cut -d' ' -f2) s, $PY_N records on the topic"
        echo "$t $PY_N" >> "$work/rows"
    done
done

# tables_report: medians per tool (runs named TOOL_R), each tool's own row
# count; ratios against tributary; RESULTS_TSV rows. (benches/peers/lib.sh's
# `report` takes one N for every tool; the Python peers send PY_N.)
echo
python3 - "$results" "$work/rows" "${RESULTS_TSV:-}" <<'PY'
import os, statistics, sys
rows = dict(line.split() for line in open(sys.argv[2]))
runs = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss = line.split()
    tool = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
    runs.setdefault(tool, []).append((float(wall), float(cpu), int(rss) / 1024))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in runs.items()}
reps = max(len(v) for v in runs.values())
print(f"orders CSV -> JSON keyed by customer_id, medians of {reps} run(s), Apache Kafka on loopback")
print(f"{'tool':<18}{'rows':>10}{'wall s':>9}{'rows/s':>12}{'CPU s':>8}{'rows/CPU-s':>12}{'peak RSS MB':>13}")
table = {}
for tool, (wall, cpu, rss) in med.items():
    n = int(rows[tool])
    table[tool] = (n, wall, n / wall, cpu, n / cpu, rss)
    print(f"{tool:<18}{n:>10,}{wall:>9.2f}{n / wall:>12,.0f}{cpu:>8.2f}{n / cpu:>12,.0f}{rss:>13.1f}")
if "tributary" in table:
    print()
    _, _, rt, _, ct, mt = table["tributary"]
    for tool, (_, _, r, _, c, m) in table.items():
        if tool != "tributary":
            print(f"tributary / {tool:<16} rows/s {rt / r:6.2f}x   rows per CPU-second {ct / c:6.2f}x   "
                  f"peak RSS {mt / m:5.2f}x")
    print("(> 1: tributary ahead; peak RSS: tributary's as a fraction of the peer's)")
out = sys.argv[3]
if out:
    new = not os.path.exists(out) or os.path.getsize(out) == 0
    with open(out, "a") as f:
        if new:
            f.write("tool\trecords\twall_s\trecords_per_s\tcpu_s\trecords_per_cpu_s\trss_mb\n")
        for tool, (n, wall, rate, cpu, per_cpu, rss) in table.items():
            f.write(f"{tool}\t{n}\t{wall:.3f}\t{rate:.0f}\t{cpu:.3f}\t{per_cpu:.0f}\t{rss:.1f}\n")
    print(f"rows appended to {out}")
PY
