//! The main file's sections: `[kafka]` (with `[kafka.options]`), `[offsets]`,
//! `[http]`, `[plugins]` and `[schema_registry]`, each filled in over its
//! defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use toml_edit::{Item, TableLike, Value};

use super::span::{FileCtx, describe, describe_value, entries};
use super::{
    ClusterConfig, ClusterProtocol, HttpConfig, KafkaConfig, OffsetStoreKind, OffsetsConfig,
    PluginsConfig, SchemaRegistryConfig,
};

const KAFKA_KEYS: &[&str] = &[
    "bootstrap_servers",
    "options",
    "topic_partitions",
    "topic_replication_factor",
    "drain_timeout_ms",
    "insecure_skip_tls_verify",
    "transactional_id_prefix",
];
const OFFSETS_KEYS: &[&str] = &["store", "topic", "dir", "commit_interval_ms"];
const HTTP_KEYS: &[&str] = &["listen", "token"];
const PLUGINS_KEYS: &[&str] = &["dirs"];
const CLUSTER_KEYS: &[&str] = &[
    "group",
    "protocol",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "member",
];
const SCHEMA_REGISTRY_KEYS: &[&str] = &[
    "url",
    "username",
    "password",
    "bearer_token",
    "ca_file",
    "timeout_ms",
];

/// librdkafka options a config may not pass through, and why.
const DENIED_KAFKA_OPTIONS: &[(&str, &str)] = &[
    (
        "plugin.library.paths",
        "refused: librdkafka would load the shared libraries named here, running their code inside the daemon",
    ),
    (
        "sasl.kerberos.kinit.cmd",
        "refused: librdkafka runs this value as a shell command; obtain Kerberos tickets outside the daemon",
    ),
    (
        "ssl.engine.location",
        "refused: librdkafka would load this OpenSSL engine library, running its code inside the daemon",
    ),
    (
        "ssl.providers",
        "refused: librdkafka would load these OpenSSL provider modules, running their code inside the daemon",
    ),
    (
        "bootstrap.servers",
        "refused: the daemon sets this itself; use `kafka.bootstrap_servers`",
    ),
    (
        "enable.idempotence",
        "refused: the daemon manages this; source offsets are committed only after idempotent delivery",
    ),
    (
        "acks",
        "refused: the daemon manages this; source offsets are committed only after acks=all delivery",
    ),
    (
        "enable.ssl.certificate.verification",
        "refused: without certificate verification anyone on the network path can read and change records; if you accept that, set `kafka.insecure_skip_tls_verify = true`",
    ),
    (
        "ssl.endpoint.identification.algorithm",
        "refused: without host-name verification any certificate from a trusted CA is accepted for any broker; if you accept that, set `kafka.insecure_skip_tls_verify = true`",
    ),
    (
        "transactional.id",
        "refused: the daemon manages transactional ids per source; offsets depend on them",
    ),
];

/// The main file's sections, filled in over the defaults.
pub(super) struct Sections<'a> {
    pub(super) kafka: &'a mut KafkaConfig,
    pub(super) offsets: &'a mut OffsetsConfig,
    pub(super) http: &'a mut HttpConfig,
    pub(super) plugins: &'a mut PluginsConfig,
    pub(super) schema_registry: &'a mut Option<SchemaRegistryConfig>,
    pub(super) cluster: &'a mut Option<ClusterConfig>,
    pub(super) base_dir: &'a Path,
}

impl Sections<'_> {
    pub(super) fn kafka(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        let Some(table) = ctx.table(item, "kafka") else {
            return;
        };
        for (name, key_span, item) in entries(table) {
            let key = format!("kafka.{name}");
            match name {
                "bootstrap_servers" => {
                    if let Some(value) = ctx.string(item, &key) {
                        if value.trim().is_empty() {
                            ctx.error(
                                item.span(),
                                &key,
                                "must not be empty; use \"embedded\" for the built-in mock cluster",
                            );
                        } else {
                            self.kafka.bootstrap_servers = value;
                        }
                    }
                }
                "options" => {
                    if let Some(options) = ctx.table(item, &key) {
                        kafka_options(ctx, options, "", &mut self.kafka.options);
                    }
                }
                "topic_partitions" => {
                    if let Some(value) = ctx.integer(item, &key, 1, i32::MAX.into()) {
                        self.kafka.topic_partitions = value;
                    }
                }
                "topic_replication_factor" => {
                    if let Some(value) = ctx.integer(item, &key, 1, i16::MAX.into()) {
                        self.kafka.topic_replication_factor = value;
                    }
                }
                "drain_timeout_ms" => {
                    if let Some(value) = ctx.integer(item, &key, 0, i64::MAX) {
                        self.kafka.drain_timeout_ms = value;
                    }
                }
                "insecure_skip_tls_verify" => {
                    if let Some(value) = ctx.boolean(item, &key) {
                        self.kafka.insecure_skip_tls_verify = value;
                    }
                }
                "transactional_id_prefix" => {
                    if let Some(value) = ctx.string(item, &key) {
                        self.kafka.transactional_id_prefix = value;
                    }
                }
                _ => ctx.unknown_key(key_span, &key, KAFKA_KEYS),
            }
        }
    }

    pub(super) fn offsets(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        let Some(table) = ctx.table(item, "offsets") else {
            return;
        };
        for (name, key_span, item) in entries(table) {
            let key = format!("offsets.{name}");
            match name {
                "store" => match ctx.string(item, &key).as_deref() {
                    Some("file") => self.offsets.store = OffsetStoreKind::File,
                    Some("kafka") => self.offsets.store = OffsetStoreKind::Kafka,
                    Some(_) => ctx.error(item.span(), &key, "expected one of: file, kafka"),
                    None => {}
                },
                "topic" => {
                    if let Some(topic) = ctx.non_empty_string(item, &key) {
                        self.offsets.topic = topic;
                    }
                }
                "dir" => {
                    if let Some(dir) = ctx.non_empty_string(item, &key) {
                        self.offsets.dir = self.base_dir.join(dir);
                    }
                }
                "commit_interval_ms" => {
                    if let Some(value) = ctx.integer(item, &key, 1, i64::MAX) {
                        self.offsets.commit_interval_ms = value;
                    }
                }
                _ => ctx.unknown_key(key_span, &key, OFFSETS_KEYS),
            }
        }
    }

    pub(super) fn cluster(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        let Some(table) = ctx.table(item, "cluster") else {
            return;
        };
        let mut cluster = ClusterConfig {
            group: String::new(),
            protocol: ClusterProtocol::Classic,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 2_000,
            member: None,
            location: ctx.location(item.span()),
        };
        let mut classic_only = Vec::new();
        for (name, key_span, item) in entries(table) {
            let key = format!("cluster.{name}");
            match name {
                "group" => {
                    if let Some(group) = ctx.non_empty_string(item, &key) {
                        // It becomes part of topic names.
                        if group.len() <= 64
                            && group
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                        {
                            cluster.group = group;
                        } else {
                            ctx.error(
                                item.span(),
                                &key,
                                "expected 1 to 64 characters of A-Z, a-z, 0-9, `_` and `-` (it becomes part of topic names)",
                            );
                        }
                    }
                }
                "protocol" => match ctx.string(item, &key).as_deref() {
                    Some("classic") => cluster.protocol = ClusterProtocol::Classic,
                    Some("consumer") => cluster.protocol = ClusterProtocol::Consumer,
                    Some(_) => ctx.error(item.span(), &key, "expected one of: classic, consumer"),
                    None => {}
                },
                "session_timeout_ms" => {
                    classic_only.push((key_span, key.clone()));
                    if let Some(value) = ctx.integer(item, &key, 1_000, 1_800_000) {
                        cluster.session_timeout_ms = value;
                    }
                }
                "heartbeat_interval_ms" => {
                    classic_only.push((key_span, key.clone()));
                    if let Some(value) = ctx.integer(item, &key, 100, 600_000) {
                        cluster.heartbeat_interval_ms = value;
                    }
                }
                "member" => cluster.member = ctx.non_empty_string(item, &key),
                _ => ctx.unknown_key(key_span, &key, CLUSTER_KEYS),
            }
        }
        if !table.contains_key("group") {
            ctx.error(item.span(), "cluster.group", "required key is missing");
        }
        if cluster.protocol == ClusterProtocol::Consumer {
            for (span, key) in classic_only {
                ctx.error(
                    span,
                    &key,
                    "only used with protocol = \"classic\": with \"consumer\" (KIP-848) the \
                     broker sets it (`group.consumer.session.timeout.ms`, \
                     `group.consumer.heartbeat.interval.ms`)",
                );
            }
        } else if cluster.heartbeat_interval_ms * 3 > cluster.session_timeout_ms {
            ctx.error(
                table.get("heartbeat_interval_ms").and_then(Item::span),
                "cluster.heartbeat_interval_ms",
                format!(
                    "must be at most a third of `session_timeout_ms` ({} ms), so that a \
                     member misses several heartbeats before it is counted gone",
                    cluster.session_timeout_ms
                ),
            );
        }
        *self.cluster = Some(cluster);
    }

    pub(super) fn schema_registry(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        let Some(table) = ctx.table(item, "schema_registry") else {
            return;
        };
        let mut registry = SchemaRegistryConfig {
            url: String::new(),
            username: None,
            password: None,
            bearer_token: None,
            ca_file: None,
            timeout_ms: 10_000,
        };
        for (name, key_span, item) in entries(table) {
            let key = format!("schema_registry.{name}");
            match name {
                "url" => {
                    if let Some(url) = ctx.non_empty_string(item, &key) {
                        if url.starts_with("http://") || url.starts_with("https://") {
                            registry.url = url.trim_end_matches('/').to_owned();
                        } else {
                            ctx.error(
                                item.span(),
                                &key,
                                "expected an http:// or https:// URL such as                                  \"http://127.0.0.1:8081\"",
                            );
                        }
                    }
                }
                "username" => registry.username = ctx.non_empty_string(item, &key),
                "password" => registry.password = ctx.string(item, &key),
                "bearer_token" => registry.bearer_token = ctx.non_empty_string(item, &key),
                "ca_file" => {
                    registry.ca_file = ctx
                        .non_empty_string(item, &key)
                        .map(|f| self.base_dir.join(f));
                }
                "timeout_ms" => {
                    if let Some(value) = ctx.integer(item, &key, 1, 600_000) {
                        registry.timeout_ms = value;
                    }
                }
                _ => ctx.unknown_key(key_span, &key, SCHEMA_REGISTRY_KEYS),
            }
        }
        if registry.url.is_empty() && !table.contains_key("url") {
            ctx.error(
                item.span(),
                "schema_registry.url",
                "required key is missing",
            );
        }
        if registry.bearer_token.is_some() && registry.username.is_some() {
            ctx.error(
                item.span(),
                "schema_registry.bearer_token",
                "use either `username`/`password` or `bearer_token`, not both",
            );
        }
        *self.schema_registry = Some(registry);
    }

    pub(super) fn http(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        let Some(table) = ctx.table(item, "http") else {
            return;
        };
        for (name, key_span, item) in entries(table) {
            let key = format!("http.{name}");
            match name {
                "listen" => {
                    let Some(value) = ctx.string(item, &key) else {
                        continue;
                    };
                    if value.is_empty() || value == "off" {
                        self.http.listen = None;
                    } else if let Ok(address) = value.parse::<SocketAddr>() {
                        self.http.listen = Some(address);
                    } else {
                        ctx.error(
                            item.span(),
                            &key,
                            "expected an IP address and port such as \"127.0.0.1:9464\" or \"[::]:9464\", or \"off\"",
                        );
                    }
                }
                "token" => {
                    if let Some(token) = ctx.string(item, &key) {
                        if token.trim().is_empty() {
                            ctx.error(
                                item.span(),
                                &key,
                                "must not be empty; leave the key out to allow state-changing \
                                 calls from loopback addresses only",
                            );
                        } else {
                            self.http.token = Some(token);
                        }
                    }
                }
                _ => ctx.unknown_key(key_span, &key, HTTP_KEYS),
            }
        }
    }

    pub(super) fn plugins(&mut self, ctx: &mut FileCtx<'_>, item: &Item) {
        let Some(table) = ctx.table(item, "plugins") else {
            return;
        };
        for (name, key_span, item) in entries(table) {
            let key = format!("plugins.{name}");
            match name {
                "dirs" => {
                    let Some(array) = item.as_array() else {
                        ctx.wrong_type(item.span(), &key, "an array of strings", describe(item));
                        continue;
                    };
                    let mut dirs = Vec::new();
                    for (index, value) in array.iter().enumerate() {
                        let key = format!("{key}[{index}]");
                        let Some(raw) = value.as_str() else {
                            ctx.wrong_type(value.span(), &key, "a string", describe_value(value));
                            continue;
                        };
                        match ctx.substitute(raw, value.span(), &key) {
                            Some(dir) if dir.is_empty() => {
                                ctx.error(value.span(), &key, "must not be empty");
                            }
                            Some(dir) => dirs.push(self.base_dir.join(dir)),
                            None => {}
                        }
                    }
                    self.plugins.dirs = dirs;
                }
                _ => ctx.unknown_key(key_span, &key, PLUGINS_KEYS),
            }
        }
    }
}

/// `[kafka.options]`, flattened: `"compression.type" = "lz4"` and the
/// unquoted (dotted) `compression.type = "lz4"` both give the librdkafka
/// property `compression.type`. Nesting depth is bounded by toml_edit's
/// parser, so the recursion is too.
fn kafka_options(
    ctx: &mut FileCtx<'_>,
    table: &dyn TableLike,
    prefix: &str,
    out: &mut BTreeMap<String, String>,
) {
    for (name, key_span, item) in entries(table) {
        let property = format!("{prefix}{name}");
        let key = format!("kafka.options.{property}");
        if let Some(nested) = item.as_table_like() {
            kafka_options(ctx, nested, &format!("{property}."), out);
            continue;
        }
        if let Some((_, why)) = DENIED_KAFKA_OPTIONS
            .iter()
            .find(|(denied, _)| *denied == property)
        {
            ctx.error(key_span, &key, *why);
            continue;
        }
        let value = match item.as_value() {
            Some(Value::String(raw)) => ctx.substitute(raw.value(), item.span(), &key),
            Some(Value::Integer(value)) => Some(value.value().to_string()),
            Some(Value::Float(value)) => Some(value.value().to_string()),
            Some(Value::Boolean(value)) => Some(value.value().to_string()),
            _ => {
                ctx.wrong_type(
                    item.span(),
                    &key,
                    "a string, integer, float or boolean",
                    describe(item),
                );
                None
            }
        };
        if let Some(value) = value
            && out.insert(property, value).is_some()
        {
            ctx.error(
                key_span,
                &key,
                "set twice (once as a quoted key, once as a dotted key)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::load::load_from_str;
    use super::super::load::test_support::{errors_of, no_env, parse};
    use super::*;

    #[test]
    fn every_main_section_is_read() {
        let config = parse(
            r#"
[kafka]
bootstrap_servers = "k1:9092,k2:9092"
topic_partitions = 12
topic_replication_factor = 3
drain_timeout_ms = 5000

[kafka.options]
"compression.type" = "lz4"
linger.ms = 5
"socket.keepalive.enable" = true
"batch.num.messages" = 1.5

[offsets]
store = "file"
dir = "/srv/offsets"
commit_interval_ms = 250

[http]
listen = "[::]:8080"

[plugins]
dirs = ["/opt/p"]
"#,
        )
        .unwrap();
        let kafka = &config.kafka;
        assert_eq!(kafka.bootstrap_servers, "k1:9092,k2:9092");
        assert!(!kafka.is_embedded());
        assert_eq!(
            (kafka.topic_partitions, kafka.topic_replication_factor),
            (12, 3)
        );
        assert_eq!(kafka.drain_timeout_ms, 5000);
        let options: Vec<(&str, &str)> = kafka
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            options,
            vec![
                ("batch.num.messages", "1.5"),
                ("compression.type", "lz4"),
                ("linger.ms", "5"),
                ("socket.keepalive.enable", "true"),
            ]
        );
        assert_eq!(config.offsets.dir, PathBuf::from("/srv/offsets"));
        assert_eq!(config.offsets.commit_interval_ms, 250);
        assert_eq!(config.http.listen, Some("[::]:8080".parse().unwrap()));
        assert_eq!(config.plugins.dirs, vec![PathBuf::from("/opt/p")]);
    }

    #[test]
    fn a_cluster_section_is_read_with_its_defaults_and_its_rules() {
        let config = parse(
            r#"[kafka]
bootstrap_servers = "127.0.0.1:9092"
[offsets]
store = "kafka"
[cluster]
group = "ingest"
"#,
        )
        .expect("valid");
        let cluster = config.cluster.expect("read");
        assert_eq!(cluster.group, "ingest");
        assert_eq!(cluster.protocol, ClusterProtocol::Classic);
        assert_eq!(
            (cluster.session_timeout_ms, cluster.heartbeat_interval_ms),
            (10_000, 2_000)
        );
        let errors = errors_of(parse(
            r#"[kafka]
bootstrap_servers = "127.0.0.1:9092"
[offsets]
store = "kafka"
[cluster]
group = "in gest"
session_timeout_ms = 6000
heartbeat_interval_ms = 3000
"#,
        ));
        assert_eq!(
            errors,
            [
                "/t.toml:6:9: `cluster.group`: expected 1 to 64 characters of A-Z, a-z, 0-9, `_` and `-` (it becomes part of topic names)",
                "/t.toml:8:25: `cluster.heartbeat_interval_ms`: must be at most a third of `session_timeout_ms` (6000 ms), so that a member misses several heartbeats before it is counted gone",
            ]
        );
        let errors = errors_of(parse(
            "[cluster]\nprotocol = \"consumer\"\nsession_timeout_ms = 6000\n",
        ));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`cluster.group`: required key is missing")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`cluster.session_timeout_ms`: only used with protocol")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("`offsets.store`")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`kafka.bootstrap_servers`")),
            "{errors:?}"
        );
    }

    #[test]
    fn wrong_types_and_ranges_say_what_was_expected() {
        let errors = errors_of(parse(
            r#"kafka = { topic_partitions = "3", topic_replication_factor = 40000, drain_timeout_ms = -1 }
offsets = { commit_interval_ms = 0, store = "kafka" }
http = { listen = "localhost" }
plugins = { dirs = "/opt" }
[kafka.options]
"#,
        ));
        // `[kafka.options]` after an inline `kafka` table is a TOML error,
        // reported alone for that file.
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("/t.toml:5:"), "{errors:?}");

        let errors = errors_of(parse(
            r#"kafka = { topic_partitions = "3", topic_replication_factor = 40000, drain_timeout_ms = -1, options = [] }
offsets = { commit_interval_ms = 0, store = "s3" }
http = { listen = "localhost" }
plugins = { dirs = "/opt" }
"#,
        ));
        assert_eq!(
            errors,
            [
                "/t.toml:1:30: `kafka.topic_partitions`: expected an integer, found a string",
                "/t.toml:1:62: `kafka.topic_replication_factor`: must be between 1 and 32767",
                "/t.toml:1:88: `kafka.drain_timeout_ms`: must be at least 0",
                "/t.toml:1:102: `kafka.options`: expected a table, found an array",
                "/t.toml:2:34: `offsets.commit_interval_ms`: must be at least 1",
                "/t.toml:2:45: `offsets.store`: expected one of: file, kafka",
                "/t.toml:3:19: `http.listen`: expected an IP address and port such as \"127.0.0.1:9464\" or \"[::]:9464\", or \"off\"",
                "/t.toml:4:20: `plugins.dirs`: expected an array of strings, found a string",
            ]
        );
    }

    #[test]
    fn http_listen_off_or_empty_disables_the_endpoint() {
        for listen in ["off", ""] {
            let text = format!("[http]\nlisten = \"{listen}\"\n");
            let config = load_from_str(Path::new("/etc/t/tributary.toml"), &text, &no_env).unwrap();
            assert_eq!(config.http.listen, None);
        }
    }

    #[test]
    fn denied_kafka_option_is_refused() {
        for (option, _) in DENIED_KAFKA_OPTIONS {
            let text = format!("[kafka.options]\n\"{option}\" = \"x\"\n");
            let errors = errors_of(load_from_str(Path::new("/t.toml"), &text, &no_env));
            assert_eq!(errors.len(), 1, "{errors:?}");
            let prefix = format!("/t.toml:2:1: `kafka.options.{option}`: refused: ");
            assert!(errors[0].starts_with(&prefix), "{errors:?}");
        }
        // The unquoted, dotted spelling is the same property.
        let text = "[kafka.options]\nplugin.library.paths = \"/tmp/evil.so\"\nenable.idempotence = false\n";
        let errors = errors_of(load_from_str(Path::new("/t.toml"), text, &no_env));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0]
                .contains("`kafka.options.plugin.library.paths`: refused: librdkafka would load")
        );
        assert!(
            errors[1]
                .contains("`kafka.options.enable.idempotence`: refused: the daemon manages this")
        );
    }

    #[test]
    fn kafka_option_spelled_twice_is_an_error() {
        let text = "[kafka.options]\n\"linger.ms\" = 5\nlinger.ms = 6\n";
        let errors = errors_of(load_from_str(Path::new("/t.toml"), text, &no_env));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("set twice"), "{errors:?}");
        let text = "[kafka.options]\n\"linger.ms\" = [5]\n";
        let errors = errors_of(load_from_str(Path::new("/t.toml"), text, &no_env));
        assert_eq!(
            errors,
            [
                "/t.toml:2:15: `kafka.options.linger.ms`: expected a string, integer, float or boolean, found an array"
            ]
        );
    }

    #[test]
    fn relative_dirs_resolve_against_main_file() {
        let text =
            "[offsets]\ndir = \"state/offsets\"\n[plugins]\ndirs = [\"plugins\", \"/abs\"]\n";
        let config =
            load_from_str(Path::new("/etc/tributary/tributary.toml"), text, &no_env).unwrap();
        assert_eq!(
            config.offsets.dir,
            PathBuf::from("/etc/tributary/state/offsets")
        );
        assert_eq!(
            config.plugins.dirs,
            vec![
                PathBuf::from("/etc/tributary/plugins"),
                PathBuf::from("/abs")
            ]
        );
    }
}
