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

# collectd_inputs DIR: the collectd configuration of the host-metrics
# benches without a writer: cpu, memory, df, disk and interface every
# second, pseudo file systems, loop devices and loopback left out, state
# under DIR (created).
collectd_inputs() {
    mkdir -p "$1"
    cat <<CONF
Interval 1
BaseDir "$1"
PIDFile "$1/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
<Plugin cpu>
  ReportByCpu false
  ValuesPercentage true
</Plugin>
<Plugin df>
  FSType proc
  FSType sysfs
  FSType tmpfs
  FSType devtmpfs
  FSType devpts
  FSType cgroup
  FSType cgroup2
  FSType overlay
  FSType squashfs
  IgnoreSelected true
  ValuesPercentage true
</Plugin>
<Plugin disk>
  Disk "/^(loop|ram|zram)/"
  IgnoreSelected true
</Plugin>
<Plugin interface>
  Interface "lo"
  IgnoreSelected true
</Plugin>
CONF
}

# tributary_toml OFFSETS_DIR: the daemon's common part of a bench config:
# $broker, $PARTITIONS partitions per topic, no HTTP, plugins from $bin.
tributary_toml() {
    cat <<TOML
conf_dir = ""
[kafka]
bootstrap_servers = "$broker"
topic_partitions = $PARTITIONS
[offsets]
dir = "$1"
[http]
listen = "off"
[plugins]
dirs = ["$bin"]
TOML
}

# rsyslog_config DIR BROKER TOPIC FILE PROPS...: DIR/rsyslog.conf, imfile
# in inotify mode from the start of FILE, the raw line as the value
# (template %rawmsg%), omkafka to TOPIC with the librdkafka PROPS; its work
# directory DIR/state; DIR is given to nobody, who runs rsyslogd.
rsyslog_config() {
    local dir="$1" broker="$2" topic="$3" file="$4" conf_params
    shift 4
    conf_params="$(printf '"%s",' "$@")"
    mkdir -p "$dir/state"
    cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/state" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%rawmsg%")
input(type="imfile" file="$file" tag="bench" ruleset="kafka" freshStartTail="off")
ruleset(name="kafka") {
  action(type="omkafka" broker=["$broker"] topic="$topic" template="raw"
         confParam=[${conf_params%,}])
}
CONF
    chown -R nobody "$dir"
}
