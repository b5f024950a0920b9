//! The daemon's configuration: `tributary.toml` plus drop-ins in `conf.d/`.
//!
//! The main file holds `[kafka]` (with `[kafka.options]`), `[offsets]`,
//! `[http]` and `[plugins]`, and may hold `[[source]]` tables; every `*.toml`
//! file directly in the drop-in directory adds more `[[source]]` tables, read
//! in lexical order of file name.
//!
//! Loading checks everything it can without a broker or plugins and reports
//! every problem at once, each with file, line, column and key
//! ([`ConfigErrors`]). Plugin options are checked later, once the plugin has
//! been loaded and has declared them ([`check_plugin_options`]).
//!
//! String values may reference secrets (`${env:NAME}`, `${file:/path}`,
//! `${cred:NAME}`; `$${` for a literal `${`). Substituted values never appear
//! in error messages, and `Debug` prints no option values at all.

mod error;
mod load;
mod plugin_options;
mod sections;
mod sources;
mod span;
mod subst;
mod suggest;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors, Location};
pub use plugin_options::{OptionSchema, check_plugin_options};
pub use suggest::did_you_mean;

/// The keys of a `[[source]]` the daemon reads itself; every other key is
/// the plugin's.
pub const SOURCE_KEYS: &[&str] = &[
    "name",
    "type",
    "topic",
    "key",
    "dead_letter_topic",
    "format",
    "value_column",
    "enabled",
    "delivery",
    "transaction_interval_ms",
    "transaction_max_records",
    "avro_record_name",
    "avro_namespace",
    "subject_name_strategy",
    "key_format",
    "headers",
    "timestamp",
    "rename",
    "max_topics",
    "shards",
];

/// Where the daemon looks for its main file when none is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tributary/tributary.toml";

/// Reads and checks the main file and every drop-in.
///
/// `conf_dir` defaults to `conf.d` beside the main file; a missing default
/// drop-in directory means "no drop-ins", but a `conf_dir` given explicitly
/// must exist (a mistyped path should not silently run zero sources).
///
/// All problems in all files are returned together.
pub fn load(main_file: &Path, conf_dir: Option<&Path>) -> Result<Config, ConfigErrors> {
    let (config, errors) = load_all(main_file, conf_dir);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Like [`load`], but returns the configuration as far as it could be read
/// together with every problem, so callers can add their own checks (the
/// plugins' option checks) and report everything at once.
pub fn load_all(main_file: &Path, conf_dir: Option<&Path>) -> (Config, Vec<ConfigError>) {
    load::load(main_file, conf_dir, &|name| std::env::var_os(name))
}

/// Parses `text` as if it were the content of `main_file`, reading no
/// drop-ins (`Config::conf_dir` is still the default beside `main_file`).
///
/// For tests and tools that hold a config in memory; relative paths resolve
/// against `main_file`'s directory as in [`load`].
pub fn load_from_str(main_file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    load::load_from_str(main_file, text, &|name| std::env::var_os(name))
}

/// The whole configuration, after substitution and checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The main file as given, for messages and for reloading the same file.
    pub main_file: PathBuf,
    /// The drop-in directory actually used, so a reload watches the same
    /// one; `None` when the main file says `conf_dir = ""` (no drop-ins).
    pub conf_dir: Option<PathBuf>,
    /// Main file, then drop-ins, in the order read; what a reload re-reads
    /// and what `tributary validate` reports having checked.
    pub files: Vec<PathBuf>,
    pub kafka: KafkaConfig,
    pub offsets: OffsetsConfig,
    pub http: HttpConfig,
    pub plugins: PluginsConfig,
    /// `[schema_registry]`, if the main file has one.
    pub schema_registry: Option<SchemaRegistryConfig>,
    /// `[cluster]`, if the main file has one.
    pub cluster: Option<ClusterConfig>,
    /// Sources in file order: main file first, then drop-ins lexically.
    /// Names are unique.
    pub sources: Vec<SourceConfig>,
    /// The `type` of every `[[source]]` read, including those left out of
    /// `sources` for other errors.
    pub types: Vec<TypeRef>,
}

/// Where a `[[source]]` names its plugin's source type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    /// `source[<name>]` (or `source[#n]`).
    pub source: String,
    /// The type written.
    pub source_type: String,
    /// Where its value is.
    pub location: Location,
}

/// `[kafka]`: how to reach the cluster and how to create topics.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Broker list, or `"embedded"` (the default) for librdkafka's
    /// in-process mock cluster, so a fresh machine runs without a broker.
    pub bootstrap_servers: String,
    /// `[kafka.options]`: librdkafka properties passed through unchanged
    /// (TOML strings, integers, floats and booleans, stored as text). Options
    /// that load code or that the delivery guarantees depend on are refused.
    /// Values may be secrets, so `Debug` prints only the keys.
    pub options: BTreeMap<String, String>,
    /// Partitions of topics the daemon creates; at least 1.
    pub topic_partitions: i32,
    /// Replication factor of topics the daemon creates; 1 to 32767 (Kafka
    /// carries it as a 16-bit integer).
    pub topic_replication_factor: i32,
    /// How long a stop waits for outstanding deliveries before giving up;
    /// undelivered records are not committed, so they are re-read later.
    pub drain_timeout_ms: u64,
    /// Turns off TLS certificate and host-name verification. Named for its
    /// risk: the librdkafka properties that do the same are refused in
    /// `[kafka.options]`, so turning verification off is never an accident.
    pub insecure_skip_tls_verify: bool,
    /// Key `transactional_id_prefix`: an exactly-once source's
    /// `transactional.id` is this plus its name. Two daemons sharing a
    /// cluster must use different prefixes unless they are meant to fence
    /// each other (a source that moved hosts).
    pub transactional_id_prefix: String,
}

impl KafkaConfig {
    /// The `bootstrap_servers` value that selects the embedded mock cluster.
    pub const EMBEDDED: &'static str = "embedded";

    /// Whether the daemon should start the in-process mock cluster.
    pub fn is_embedded(&self) -> bool {
        self.bootstrap_servers == Self::EMBEDDED
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Self::EMBEDDED.to_owned(),
            options: BTreeMap::new(),
            topic_partitions: 3,
            topic_replication_factor: 1,
            drain_timeout_ms: 30_000,
            insecure_skip_tls_verify: false,
            transactional_id_prefix: "tributary-".to_owned(),
        }
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("options", &Redacted(self.options.keys()))
            .field("topic_partitions", &self.topic_partitions)
            .field("topic_replication_factor", &self.topic_replication_factor)
            .field("drain_timeout_ms", &self.drain_timeout_ms)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .finish()
    }
}

/// Debug-prints a map's keys with every value hidden.
struct Redacted<I>(I);

impl<'a, I> fmt::Debug for Redacted<I>
where
    I: Iterator<Item = &'a String> + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.clone().map(|key| (key, format_args!("<redacted>"))))
            .finish()
    }
}

/// Which offset store keeps source checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetStoreKind {
    /// Checksummed files in `offsets.dir`, written tmp → fsync → rename.
    #[default]
    File,
    /// A compacted Kafka topic, `offsets.topic`: the host is replaceable.
    Kafka,
}

/// `[cluster]`: daemons with the same `group` share the sources through
/// Kafka's consumer-group protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Key `group`: the daemons that share work.
    pub group: String,
    /// Key `protocol`: Kafka's group protocol.
    pub protocol: ClusterProtocol,
    /// Key `session_timeout_ms` (classic only): how long a silent member
    /// keeps its units; the broker accepts 6000 to 1800000 by default.
    pub session_timeout_ms: u64,
    /// Key `heartbeat_interval_ms` (classic only): at most a third of the
    /// session timeout.
    pub heartbeat_interval_ms: u64,
    /// Key `member`: this daemon's name in the cluster view; the host name
    /// and HTTP port by default.
    pub member: Option<String>,
    /// Where the `[cluster]` table is, for errors about it.
    pub location: Location,
}

/// [`ClusterConfig::protocol`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterProtocol {
    /// `classic`: JoinGroup/SyncGroup with the cooperative-sticky assignor;
    /// any Kafka since 2.4.
    Classic,
    /// `consumer`: KIP-848, assignments computed by the broker (Kafka 4.0+);
    /// the session timeout is the broker's.
    Consumer,
}

/// `[offsets]`: where source checkpoints are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsConfig {
    /// Key `store`: `"file"` (default) or `"kafka"`.
    pub store: OffsetStoreKind,
    /// Key `topic`: the compacted topic of the Kafka store, created if
    /// missing.
    pub topic: String,
    /// Directory of the file store; relative paths are resolved against the
    /// main file's directory, so the daemon's working directory never matters.
    pub dir: PathBuf,
    /// How often delivered offsets are written; at least 1. Lower means less
    /// re-reading after a crash, higher means fewer fsyncs.
    pub commit_interval_ms: u64,
}

impl Default for OffsetsConfig {
    fn default() -> Self {
        Self {
            store: OffsetStoreKind::File,
            topic: "tributary-offsets".to_owned(),
            dir: PathBuf::from("/var/lib/tributary/offsets"),
            commit_interval_ms: 1000,
        }
    }
}

/// `[http]`: the metrics, health and API endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on; `None` (written `"off"` or `""`) disables the
    /// endpoint. Defaults to loopback so nothing is exposed by accident.
    pub listen: Option<SocketAddr>,
    /// Bearer token that state-changing API calls must present. Without
    /// one, those calls are accepted only from loopback addresses. Usually
    /// a `${file:…}` or `${env:…}` reference, so `Debug` hides it.
    pub token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            token: None,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `[plugins]`: where plugin libraries are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// Searched in order. Defaults to the daemon binary's own directory (so a
    /// build tree or unpacked tarball works as is), then
    /// `/usr/lib/tributary/plugins`. Relative entries are resolved against
    /// the main file's directory.
    pub dirs: Vec<PathBuf>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        Self {
            dirs: exe_dir
                .into_iter()
                .chain([PathBuf::from("/usr/lib/tributary/plugins")])
                .collect(),
        }
    }
}

/// What a source promises about each record; key `delivery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Every record arrives; after a crash the records since the last
    /// commit arrive again.
    #[default]
    AtLeastOnce,
    /// Every record arrives once, for `read_committed` consumers: records
    /// and the checkpoint after them commit in one Kafka transaction. Needs
    /// `[offsets] store = "kafka"`.
    ExactlyOnce,
}

/// How records are serialized; key `format`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per record, keys from the Arrow schema's field names.
    #[default]
    Json,
    /// The record value is one column's bytes as they are (text or binary;
    /// other types as displayed), e.g. a log line sent on unchanged. Key
    /// `value_column` names it (default `line`).
    String {
        /// The column whose bytes become the value.
        value_column: String,
    },
    /// Avro binary in the Confluent wire format (magic byte 0, the 4-byte
    /// schema id, the datum), the schema derived from the rows' Arrow
    /// schema and registered in `[schema_registry]`.
    Avro(AvroFormat),
    /// Kafka Connect's `JsonConverter` envelope with schemas enabled:
    /// `{"schema": …, "payload": …}`, so Connect sink connectors read the
    /// records as if a Connect source wrote them.
    ConnectJson,
}

/// The settings of `format = "avro"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroFormat {
    /// Key `avro_record_name`: the name of the value's Avro record
    /// (default: the source's name, made a valid Avro name).
    pub record_name: String,
    /// Key `avro_namespace`: its namespace, if any.
    pub namespace: Option<String>,
    /// Key `subject_name_strategy`: the registry subject schemas are
    /// registered under.
    pub subject: SubjectStrategy,
    /// Key `key_format`: `"string"` (default) keys are the key column's
    /// text; `"avro"` keys are Avro too, registered under `<topic>-key`.
    pub key_avro: bool,
}

/// Which subject a schema is registered under, as Confluent's serializers
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectStrategy {
    /// `<topic>-value` (TopicNameStrategy, the default).
    #[default]
    Topic,
    /// `<namespace>.<record name>` (RecordNameStrategy).
    Record,
    /// `<topic>-<namespace>.<record name>` (TopicRecordNameStrategy).
    TopicRecord,
}

/// `[schema_registry]`: where Avro schemas are registered.
#[derive(Clone, PartialEq, Eq)]
pub struct SchemaRegistryConfig {
    /// Base URL, `http://` or `https://`.
    pub url: String,
    /// Basic authentication, usually through `${file:…}` or `${env:…}`.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// A bearer token instead of basic authentication.
    pub bearer_token: Option<String>,
    /// A PEM file of the CA that signed the registry's certificate.
    pub ca_file: Option<PathBuf>,
    /// How long one request may take.
    pub timeout_ms: u64,
}

impl std::fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistryConfig")
            .field("url", &self.url)
            .field("username", &self.username.as_ref().map(|_| "…"))
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// Keys `headers`, `timestamp` and `rename`: what of a row, besides its
/// value, a record carries, and under which names the value's columns go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// Columns copied into Kafka headers (as text), in this order.
    pub headers: Vec<String>,
    /// A timestamp (or date) column whose value becomes the record's Kafka
    /// timestamp; without it Kafka stamps the record when it is sent.
    pub timestamp: Option<String>,
    /// Columns of the value renamed: `old = "new"`.
    pub rename: BTreeMap<String, String>,
    /// `include`: the only columns the value carries, in this order.
    pub include: Option<Vec<String>>,
    /// `exclude`: columns the value leaves out.
    pub exclude: Vec<String>,
}

/// A `topic` with column names in braces (`"applog.{level}"`): each
/// record's topic is made from its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    /// Literal text and column names, in order.
    pub parts: Vec<TopicPart>,
    /// Key `max_topics`: the most distinct topics the source may create.
    pub max_topics: usize,
}

/// A piece of a [`TopicTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPart {
    /// Text as written.
    Literal(String),
    /// The text of this column's cell.
    Column(String),
}

impl TopicTemplate {
    /// Parses `text` if it holds `{column}` parts; `Err` says what is
    /// wrong with the braces.
    pub fn parse(text: &str) -> Result<Option<TopicTemplate>, String> {
        if !text.contains(['{', '}']) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(TopicPart::Literal(rest.to_owned()));
                    rest = "";
                }
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err("a `}` without its `{`".to_owned());
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(TopicPart::Literal(rest[..i].to_owned()));
                    }
                    let Some(end) = rest[i + 1..].find('}') else {
                        return Err("a `{` without its `}`".to_owned());
                    };
                    let column = &rest[i + 1..i + 1 + end];
                    if column.is_empty() || column.contains('{') {
                        return Err("expected a column name between `{` and `}`".to_owned());
                    }
                    parts.push(TopicPart::Column(column.to_owned()));
                    rest = &rest[i + 2 + end..];
                }
            }
        }
        Ok(Some(TopicTemplate {
            parts,
            max_topics: DEFAULT_MAX_TOPICS,
        }))
    }

    /// The columns the template reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TopicPart::Column(c) => Some(c.as_str()),
            TopicPart::Literal(_) => None,
        })
    }
}

/// Default of `max_topics`.
pub const DEFAULT_MAX_TOPICS: usize = 100;

/// Keys `include` and `exclude`: which columns the value carries. They are
/// the plugin's own when it declares an option of that name (`logfile`'s
/// file globs); then the value keeps every column.
pub const VALUE_COLUMN_KEYS: [&str; 2] = ["include", "exclude"];

impl SourceConfig {
    /// The name written in the `[[source]]` table: the source's own, or for
    /// a unit of a split source the source it belongs to.
    pub fn written_name(&self) -> &str {
        self.split.as_ref().map_or(&self.name, |s| &s.source)
    }

    /// The options the plugin gets: every plugin key, less `include` and
    /// `exclude` when the plugin does not declare them (they are the
    /// host's then).
    pub fn plugin_options(
        &self,
        declares: impl Fn(&str) -> bool,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut options = self.options.clone();
        for key in VALUE_COLUMN_KEYS {
            if !declares(key) {
                options.remove(key);
            }
        }
        options
    }

    /// The value's columns as `include` and `exclude` choose them, when
    /// they are the host's keys: `include` (in its order) or every column,
    /// less `exclude`.
    pub fn value_columns(
        &self,
        declares: impl Fn(&str) -> bool,
    ) -> (Option<Vec<String>>, Vec<String>) {
        let list = |key: &str| -> Option<Vec<String>> {
            if declares(key) {
                return None;
            }
            self.options
                .get(key)
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
        };
        (list("include"), list("exclude").unwrap_or_default())
    }
}

impl Shape {
    /// Whether records carry more than key and value.
    pub fn per_record(&self) -> bool {
        !self.headers.is_empty() || self.timestamp.is_some()
    }
}

/// One `[[source]]` table.
///
/// Equality ignores `location` and `option_locations`: a source that only
/// moved within its file (or to another file) is not a changed source, and a
/// reload must not restart it.
#[derive(Clone)]
pub struct SourceConfig {
    /// Unique across all files; 1 to 128 characters of `[A-Za-z0-9_.-]`,
    /// not `.` or `..`, because it becomes part of offset file names and
    /// metric labels.
    pub name: String,
    /// Key `type`: the plugin that runs this source.
    pub source_type: String,
    /// Kafka topic the records go to; checked against Kafka's topic rules
    /// here so that a typo fails at load, not at the first produce.
    pub topic: String,
    /// Column whose value becomes the record key; `None` for keyless records.
    pub key: Option<String>,
    /// Where rows the plugin could not read go (its `on_error =
    /// "dead_letter"` policy), with headers naming the error; required by
    /// that policy, created like `topic`.
    pub dead_letter_topic: Option<String>,
    /// Keys `format` and `value_column`: how rows become record values.
    pub format: Format,
    /// Keys `headers`, `timestamp`, `rename`.
    pub shape: Shape,
    /// `topic` written as a template, with `max_topics`.
    pub topic_template: Option<TopicTemplate>,
    /// `false` keeps the source in the config (and checked) without running
    /// it.
    pub enabled: bool,
    /// Key `delivery`.
    pub delivery: Delivery,
    /// Key `transaction_interval_ms`: with exactly-once delivery, the
    /// longest a transaction stays open (and so the latency a
    /// `read_committed` consumer sees).
    pub transaction_interval_ms: u64,
    /// Key `transaction_max_records`: with exactly-once delivery, the most
    /// records in one transaction.
    pub transaction_max_records: u64,
    /// Where `delivery` is written, for checks against other sections.
    pub delivery_location: Option<Location>,
    /// Every other key of the table: the plugin's options, TOML converted to
    /// JSON (integers stay integers, datetimes become RFC 3339 strings). May
    /// hold secrets, so `Debug` prints only the keys.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Where the `[[source]]` table starts, for errors about the whole source
    /// (e.g. a missing required plugin option).
    pub location: Location,
    /// Where each plugin option's key is, so [`check_plugin_options`] can
    /// point at the line.
    pub option_locations: BTreeMap<String, Location>,
    /// Set when this is one unit of a source written with `shards = N`.
    pub split: Option<Split>,
}

/// One unit of a source split with `shards = N` (see [`SourceConfig::split`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The source's name as written; the unit is `<source>@<index>of<count>`.
    pub source: String,
    /// This unit's shard, from 0.
    pub index: u32,
    /// `shards`.
    pub count: u32,
    /// Where `shards` is written.
    pub location: Location,
}

impl PartialEq for SourceConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.source_type == other.source_type
            && self.topic == other.topic
            && self.key == other.key
            && self.dead_letter_topic == other.dead_letter_topic
            && self.format == other.format
            && self.shape == other.shape
            && self.topic_template == other.topic_template
            && self.enabled == other.enabled
            && self.delivery == other.delivery
            && self.transaction_interval_ms == other.transaction_interval_ms
            && self.transaction_max_records == other.transaction_max_records
            && self.options == other.options
            && self.split.as_ref().map(|s| (s.index, s.count))
                == other.split.as_ref().map(|s| (s.index, s.count))
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("source_type", &self.source_type)
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("format", &self.format)
            .field("shape", &self.shape)
            .field("enabled", &self.enabled)
            .field("options", &Redacted(self.options.keys()))
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The error key of a source's key: `source[<name>].<key>`.
pub(crate) fn source_key(label: &str, key: &str) -> String {
    format!("{label}.{key}")
}

/// How a source is named in error keys: `source[<name>]`.
pub(crate) fn source_label(name: &str) -> String {
    format!("source[{name}]")
}
