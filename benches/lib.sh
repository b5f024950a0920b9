# Shared by the benchmark scripts that run tributary and its peers on one
# Apache Kafka (scripts/kafka): source it after setting `work` (a scratch
# directory) and `broker` (host:port).

# measure NAME CMD...: runs CMD, appends "NAME wall_s cpu_s peak_rss_kb" to
# $work/results; its output goes to $work/NAME.out and .err.
measure() {
    local name="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" || {
        echo "$name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
    local wall user sys rss
    read -r wall user sys rss < "$work/$name.time"
    echo "$name $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}') $rss" >> "$work/results"
}

# topic NAME: creates it with $PARTITIONS partitions.
topic() { python3 benches/kafka_tool.py create "$broker" "$1" "$PARTITIONS"; }

# The orders CSV's declared column types (benches/tables.py writes it).
orders_columns='[source.columns]
unit_price = "decimal(10,2)"
total = "decimal(12,2)"
created_at = "timestamp(%Y-%m-%d %H:%M:%S)"'
