//! Writing daemon configurations: a main file plus `conf.d/` drop-ins, the
//! layout the daemon reads in production.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::paths::target_dir;

/// The pieces of a `tributary.toml` a test varies, plus drop-in files.
///
/// [`ConfigSpec::new`] fills in the defaults every test wants (offsets in the
/// test dir, HTTP off, plugins from this build's target dir); tests change
/// fields or add raw TOML in [`ConfigSpec::extra`] for anything else, so the
/// helper never needs to track every key the daemon grows.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    /// `[kafka] bootstrap_servers`: a broker's bootstrap list or `"embedded"`.
    pub bootstrap_servers: String,
    /// `[kafka] topic_partitions`: partitions of topics the daemon creates.
    pub topic_partitions: u32,
    /// `[kafka.options]`: librdkafka properties passed through verbatim.
    pub kafka_options: Vec<(String, String)>,
    /// Further `[kafka]` keys, as TOML (`key = value`).
    pub kafka_keys: Vec<String>,
    /// `[offsets] dir`: the file store, or the Kafka store's state.
    pub offsets_dir: PathBuf,
    /// `[offsets] store = "kafka"` with this `topic`; `None` for the file
    /// store.
    pub offsets_topic: Option<String>,
    /// `[offsets] commit_interval_ms`.
    pub commit_interval_ms: u64,
    /// `[http] listen`: `"off"` unless a test exercises the HTTP server.
    pub http_listen: String,
    /// `[http] token`, written verbatim (e.g. a `${file:…}` reference).
    pub http_token: Option<String>,
    /// `[plugins] dirs`.
    pub plugin_dirs: Vec<PathBuf>,
    /// Raw TOML appended to the main file after the sections above.
    pub extra: String,
    /// `(file name, TOML text)` pairs written to `conf.d/<file name>`.
    pub drop_ins: Vec<(String, String)>,
}

impl ConfigSpec {
    /// Defaults for a test whose scratch directory is `dir`: offsets in
    /// `dir/offsets`, a 10 s `message.timeout.ms` (so a broken broker fails
    /// fast instead of after librdkafka's 5 minutes), commits every 200 ms,
    /// HTTP off, plugins from [`target_dir`], 3 partitions.
    pub fn new(bootstrap_servers: &str, dir: &Path) -> ConfigSpec {
        ConfigSpec {
            bootstrap_servers: bootstrap_servers.to_owned(),
            topic_partitions: 3,
            kafka_options: vec![("message.timeout.ms".to_owned(), "10000".to_owned())],
            kafka_keys: Vec::new(),
            offsets_dir: dir.join("offsets"),
            offsets_topic: None,
            commit_interval_ms: 200,
            http_listen: "off".to_owned(),
            http_token: None,
            plugin_dirs: vec![target_dir()],
            extra: String::new(),
            drop_ins: Vec::new(),
        }
    }

    /// Turns the HTTP endpoint on at a free loopback port; see
    /// [`ConfigSpec::http_address`].
    pub fn with_http(mut self) -> ConfigSpec {
        self.http_listen = format!("127.0.0.1:{}", crate::broker::free_port());
        self
    }

    /// The HTTP endpoint's `host:port`, if it is on.
    pub fn http_address(&self) -> Option<String> {
        (self.http_listen != "off" && !self.http_listen.is_empty())
            .then(|| self.http_listen.clone())
    }

    /// Adds `conf.d/<file_name>` with `toml` as its content.
    pub fn drop_in(mut self, file_name: &str, toml: impl Into<String>) -> ConfigSpec {
        self.drop_ins.push((file_name.to_owned(), toml.into()));
        self
    }

    /// Sets a `[kafka.options]` entry, replacing an earlier one of that name.
    pub fn kafka_option(mut self, key: &str, value: &str) -> ConfigSpec {
        self.kafka_options.retain(|(k, _)| k != key);
        self.kafka_options.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a `[kafka]` key; `toml` is the whole `key = value` line.
    pub fn kafka_key(mut self, toml: &str) -> ConfigSpec {
        self.kafka_keys.push(toml.to_owned());
        self
    }

    /// The text of the main `tributary.toml`.
    pub fn main_text(&self) -> String {
        let mut t = String::new();
        // `writeln!` into a String cannot fail.
        let _ = writeln!(t, "[kafka]");
        let _ = writeln!(
            t,
            "bootstrap_servers = {}",
            toml_str(&self.bootstrap_servers)
        );
        let _ = writeln!(t, "topic_partitions = {}", self.topic_partitions);
        for line in &self.kafka_keys {
            let _ = writeln!(t, "{line}");
        }
        let _ = writeln!(t, "\n[kafka.options]");
        for (k, v) in &self.kafka_options {
            let _ = writeln!(t, "{} = {}", toml_str(k), toml_str(v));
        }
        let _ = writeln!(t, "\n[offsets]");
        match &self.offsets_topic {
            None => {
                let _ = writeln!(t, "store = \"file\"");
            }
            Some(topic) => {
                let _ = writeln!(t, "store = \"kafka\"\ntopic = {}", toml_str(topic));
            }
        }
        let _ = writeln!(t, "dir = {}", toml_path(&self.offsets_dir));
        let _ = writeln!(t, "commit_interval_ms = {}", self.commit_interval_ms);
        let _ = writeln!(t, "\n[http]");
        let _ = writeln!(t, "listen = {}", toml_str(&self.http_listen));
        if let Some(token) = &self.http_token {
            let _ = writeln!(t, "token = {}", toml_str(token));
        }
        let _ = writeln!(t, "\n[plugins]");
        let dirs: Vec<String> = self.plugin_dirs.iter().map(|d| toml_path(d)).collect();
        let _ = writeln!(t, "dirs = [{}]", dirs.join(", "));
        if !self.extra.is_empty() {
            let _ = writeln!(t, "\n{}", self.extra);
        }
        t
    }
}

/// Writes `dir/tributary.toml` and `dir/conf.d/*` from `spec` and returns the
/// main file's path. `conf.d/` is created even when empty, as a packaged
/// install has it. Rewriting an existing config (for reload tests) replaces
/// the files named in `spec`; other drop-ins already in `conf.d/` stay.
///
/// # Panics
/// On any I/O error.
pub fn write_config(dir: &Path, spec: &ConfigSpec) -> PathBuf {
    let main = dir.join("tributary.toml");
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", conf_d.display()));
    write(&main, &spec.main_text());
    for (name, text) in &spec.drop_ins {
        write(&conf_d.join(name), text);
    }
    main
}

/// A `[[source]]` drop-in for the datagen plugin producing `count` `orders`
/// records keyed by `customer_id`, each carrying a `seq` field for the oracle.
pub fn datagen_source(name: &str, topic: &str, count: u64, rate_per_sec: u64, seed: u64) -> String {
    format!(
        "[[source]]\n\
         name = {name}\n\
         type = \"datagen\"\n\
         topic = {topic}\n\
         key = \"customer_id\"\n\
         format = \"json\"\n\
         kind = \"orders\"\n\
         rate_per_sec = {rate_per_sec}\n\
         count = {count}\n\
         seed = {seed}\n",
        name = toml_str(name),
        topic = toml_str(topic),
    )
}

/// Writes via a temp file and rename so a daemon watching or reloading the
/// config never sees a half-written file.
fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path)
        .unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), path.display()));
}

/// A TOML basic string with the characters TOML requires escaped.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as a TOML string. Test paths are built from UTF-8 pieces; a lossy
/// conversion would silently point the daemon elsewhere, hence the panic.
fn toml_path(p: &Path) -> String {
    toml_str(
        p.to_str()
            .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_str("x\ny\u{1}"), r#""x\ny\u0001""#);
    }

    #[test]
    fn main_text_has_every_section() {
        let spec = ConfigSpec::new("127.0.0.1:9092", Path::new("/t")).kafka_option("acks", "all");
        let text = spec.main_text();
        for needle in [
            "bootstrap_servers = \"127.0.0.1:9092\"",
            "\"message.timeout.ms\" = \"10000\"",
            "\"acks\" = \"all\"",
            "dir = \"/t/offsets\"",
            "listen = \"off\"",
            "[plugins]\ndirs = [\"",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
