//! Reading the files, walking the TOML trees and turning spans into
//! `file:line:column`.
//!
//! Nothing here stops at the first problem: every check pushes onto one error
//! list and carries on, so a syntax error in one file does not hide errors in
//! another, and one bad key does not hide the next.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use toml_edit::Document;

use super::sections::Sections;
use super::sources::Sources;
use super::span::{FileCtx, SourceText, entries};
use super::subst::{EnvLookup, Substitutor};
use super::{
    Config, ConfigError, ConfigErrors, HttpConfig, KafkaConfig, Location, OffsetsConfig,
    PluginsConfig, SourceConfig,
};

/// Top-level keys of the main file.
const MAIN_KEYS: &[&str] = &[
    "conf_dir",
    "kafka",
    "offsets",
    "http",
    "plugins",
    "schema_registry",
    "cluster",
    "source",
];

pub(super) fn load(
    main_file: &Path,
    conf_dir: Option<&Path>,
    env: EnvLookup<'_>,
) -> (Config, Vec<ConfigError>) {
    let base_dir = base_dir(main_file);
    let mut loader = Loader::new(main_file, &base_dir, env);

    match read_text(main_file) {
        Ok(text) => loader.read_file(main_file.to_path_buf(), text, FileRole::Main),
        Err(error) => loader.errors.push(error),
    }
    // The command line wins over the main file's `conf_dir`, which wins over
    // the default; an empty `conf_dir` means "no drop-ins".
    let (conf_dir_used, explicit) = match (conf_dir, loader.conf_dir_setting.take()) {
        (Some(dir), _) => (Some(dir.to_path_buf()), true),
        (None, Some(setting)) if setting.as_os_str().is_empty() => (None, true),
        (None, Some(setting)) => (Some(base_dir.join(setting)), true),
        (None, None) => (Some(base_dir.join("conf.d")), false),
    };
    let Some(conf_dir_used) = conf_dir_used else {
        return loader.finish(None);
    };
    match drop_in_files(&conf_dir_used, explicit, main_file) {
        Ok(paths) => {
            for path in paths {
                match read_text(&path) {
                    Ok(text) => loader.read_file(path, text, FileRole::DropIn),
                    Err(error) => {
                        loader.errors.push(error);
                        loader.files.push(path);
                    }
                }
            }
        }
        Err(error) => loader.errors.push(error),
    }
    loader.finish(Some(conf_dir_used))
}

pub(super) fn load_from_str(
    main_file: &Path,
    text: &str,
    env: EnvLookup<'_>,
) -> Result<Config, ConfigErrors> {
    let base_dir = base_dir(main_file);
    let mut loader = Loader::new(main_file, &base_dir, env);
    loader.read_file(main_file.to_path_buf(), text.to_owned(), FileRole::Main);
    let (config, errors) = loader.finish(Some(base_dir.join("conf.d")));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The directory relative paths are resolved against. `Path::parent` of a
/// bare file name is `""`, which joins to a path relative to the working
/// directory, the same place the main file itself was found.
fn base_dir(main_file: &Path) -> PathBuf {
    main_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Reads a whole file as UTF-8.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| {
        ConfigError::new(
            None,
            None,
            format!("cannot read `{}`: {error}", path.display()),
        )
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = error.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&error.as_bytes()[..valid]).into_owned();
        let text = SourceText::new(path.to_path_buf(), prefix);
        ConfigError::new(
            Some(text.location(valid)),
            None,
            "the file is not valid UTF-8",
        )
    })
}

/// The `*.toml` files directly in `dir`, in lexical order of file name.
/// Hidden files, other extensions (`x.toml.bak`) and directories are
/// skipped, and so is the main file should `dir` be its own directory.
fn drop_in_files(
    dir: &Path,
    explicit: bool,
    main_file: &Path,
) -> Result<Vec<PathBuf>, ConfigError> {
    let cannot_read = |error: io::Error| {
        ConfigError::new(
            None,
            None,
            format!("cannot read drop-in directory `{}`: {error}", dir.display()),
        )
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound && !explicit => {
            tracing::debug!(dir = ?dir, "No drop-in directory; reading the main file only.");
            return Ok(Vec::new());
        }
        Err(error) => return Err(cannot_read(error)),
    };
    let main_canonical = std::fs::canonicalize(main_file).ok();
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(cannot_read)?;
        let name = entry.file_name();
        let path = entry.path();
        let hidden = name.as_encoded_bytes().first() == Some(&b'.');
        let toml = path.extension().is_some_and(|ext| ext == "toml");
        // A `*.toml` whose metadata cannot be read (a dangling symlink) is
        // kept, so reading it reports the problem instead of hiding it.
        let not_a_file = std::fs::metadata(&path).is_ok_and(|meta| !meta.is_file());
        if hidden || !toml || not_a_file {
            tracing::debug!(path = ?path, "Skipped a drop-in directory entry that is not a *.toml file.");
            continue;
        }
        if main_canonical.is_some() && std::fs::canonicalize(&path).ok() == main_canonical {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names.into_iter().map(|name| dir.join(name)).collect())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileRole {
    Main,
    DropIn,
}

/// Accumulates the config and the errors over all files.
struct Loader<'a> {
    main_file: &'a Path,
    base_dir: &'a Path,
    env: EnvLookup<'a>,
    files: Vec<PathBuf>,
    kafka: KafkaConfig,
    offsets: OffsetsConfig,
    http: HttpConfig,
    plugins: PluginsConfig,
    schema_registry: Option<super::SchemaRegistryConfig>,
    cluster: Option<super::ClusterConfig>,
    sources: Vec<SourceConfig>,
    types: Vec<super::TypeRef>,
    /// Where each source name was first defined, to point duplicates at it.
    names: BTreeMap<String, Location>,
    /// The main file's `conf_dir`, relative to its directory.
    conf_dir_setting: Option<PathBuf>,
    errors: Vec<ConfigError>,
}

impl<'a> Loader<'a> {
    fn new(main_file: &'a Path, base_dir: &'a Path, env: EnvLookup<'a>) -> Self {
        Self {
            main_file,
            base_dir,
            env,
            files: Vec::new(),
            kafka: KafkaConfig::default(),
            offsets: OffsetsConfig::default(),
            http: HttpConfig::default(),
            plugins: PluginsConfig::default(),
            schema_registry: None,
            cluster: None,
            sources: Vec::new(),
            types: Vec::new(),
            names: BTreeMap::new(),
            conf_dir_setting: None,
            errors: Vec::new(),
        }
    }

    /// The config as far as it could be read, with every problem found.
    fn finish(mut self, conf_dir: Option<PathBuf>) -> (Config, Vec<ConfigError>) {
        // Exactly-once commits a source's checkpoint in the same Kafka
        // transaction as its records, so the checkpoint must live in Kafka.
        if self.offsets.store != super::OffsetStoreKind::Kafka {
            for source in &self.sources {
                if source.delivery == super::Delivery::ExactlyOnce {
                    self.errors.push(ConfigError::new(
                        source.delivery_location.clone(),
                        Some(super::source_key(
                            &super::source_label(&source.name),
                            "delivery",
                        )),
                        "`exactly_once` needs `[offsets] store = \"kafka\"`: the checkpoint \
                         commits in the same Kafka transaction as the records",
                    ));
                }
            }
        }
        // Avro schemas are registered before the first record is sent.
        if self.schema_registry.is_none() {
            for source in &self.sources {
                if matches!(source.format, super::Format::Avro(_)) {
                    self.errors.push(ConfigError::new(
                        Some(source.location.clone()),
                        Some(super::source_key(
                            &super::source_label(&source.name),
                            "format",
                        )),
                        "`avro` needs a `[schema_registry]` section with its `url` in the main \
                         file: each schema is registered before the first record that uses it",
                    ));
                }
            }
        }
        if let Some(cluster) = self.cluster.clone() {
            self.check_cluster(&cluster);
        }
        let config = Config {
            main_file: self.main_file.to_path_buf(),
            conf_dir,
            files: self.files,
            kafka: self.kafka,
            offsets: self.offsets,
            http: self.http,
            plugins: self.plugins,
            schema_registry: self.schema_registry,
            cluster: self.cluster,
            sources: self.sources,
            types: self.types,
        };
        (config, self.errors)
    }

    /// What cluster mode needs of the other sections: positions in Kafka,
    /// where every member reads them, and a broker the members share.
    fn check_cluster(&mut self, cluster: &super::ClusterConfig) {
        if self.offsets.store != super::OffsetStoreKind::Kafka {
            self.errors.push(ConfigError::new(
                Some(cluster.location.clone()),
                Some("offsets.store".to_owned()),
                "`[cluster]` needs `[offsets] store = \"kafka\"`: a unit that moves to another \
                 member resumes from the checkpoints its last owner committed, which only the \
                 Kafka store shares",
            ));
        }
        if self.kafka.bootstrap_servers == super::KafkaConfig::EMBEDDED {
            self.errors.push(ConfigError::new(
                Some(cluster.location.clone()),
                Some("kafka.bootstrap_servers".to_owned()),
                "`[cluster]` needs a real Kafka: with \"embedded\" each daemon would have a \
                 broker of its own and none would see the others",
            ));
        }
    }

    /// Reads one file, then orders its errors by position: the checks run
    /// per key, but a reader fixes a file top to bottom.
    fn read_file(&mut self, path: PathBuf, text: String, role: FileRole) {
        let first_error = self.errors.len();
        self.check_file(path, text, role);
        if let Some(errors) = self.errors.get_mut(first_error..) {
            errors.sort_by(|a, b| a.location.cmp(&b.location));
        }
    }

    fn check_file(&mut self, path: PathBuf, mut text: String, role: FileRole) {
        self.files.push(path.clone());
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        let src = SourceText::new(path, text);
        let doc = match Document::parse(src.text.as_str()) {
            Ok(doc) => doc,
            Err(error) => {
                let offset = error.span().map_or(0, |span| span.start);
                self.errors.push(ConfigError::new(
                    Some(src.location(offset)),
                    None,
                    format!("invalid TOML: {}", error.message()),
                ));
                return;
            }
        };
        let mut ctx = FileCtx {
            src: &src,
            subst: Substitutor {
                env: self.env,
                base_dir: self.base_dir,
            },
            errors: &mut self.errors,
        };
        let mut sections = Sections {
            kafka: &mut self.kafka,
            offsets: &mut self.offsets,
            http: &mut self.http,
            plugins: &mut self.plugins,
            schema_registry: &mut self.schema_registry,
            cluster: &mut self.cluster,
            base_dir: self.base_dir,
        };
        let mut sources = Sources {
            list: &mut self.sources,
            names: &mut self.names,
            types: &mut self.types,
        };
        let mut conf_dir_setting = None;
        for (key, key_span, item) in entries(doc.as_table()) {
            match (role, key) {
                (_, "source") => sources.read_all(&mut ctx, item),
                (FileRole::Main, "conf_dir") => conf_dir_setting = ctx.string(item, key),
                (FileRole::Main, "kafka") => sections.kafka(&mut ctx, item),
                (FileRole::Main, "offsets") => sections.offsets(&mut ctx, item),
                (FileRole::Main, "http") => sections.http(&mut ctx, item),
                (FileRole::Main, "plugins") => sections.plugins(&mut ctx, item),
                (FileRole::Main, "schema_registry") => sections.schema_registry(&mut ctx, item),
                (FileRole::Main, "cluster") => sections.cluster(&mut ctx, item),
                (FileRole::Main, _) => ctx.unknown_key(key_span, key, MAIN_KEYS),
                (FileRole::DropIn, _) if MAIN_KEYS.contains(&key) => ctx.error(
                    key_span,
                    key,
                    format!(
                        "drop-in files may only contain [[source]] tables; `{key}` belongs in the main file `{}`",
                        self.main_file.display()
                    ),
                ),
                (FileRole::DropIn, _) => ctx.error(
                    key_span,
                    key,
                    "unknown key; drop-in files may only contain [[source]] tables",
                ),
            }
        }
        if let Some(setting) = conf_dir_setting {
            self.conf_dir_setting = Some(PathBuf::from(setting));
        }
    }
}

/// Helpers shared by the tests of the config modules.
#[cfg(test)]
pub(super) mod test_support {
    use std::ffi::OsString;
    use std::path::Path;

    use super::super::{Config, ConfigErrors};

    /// An environment with no variables.
    pub(in super::super) fn no_env(_: &str) -> Option<OsString> {
        None
    }

    /// Parses `text` as the main file `/t.toml`, with an empty environment.
    pub(in super::super) fn parse(text: &str) -> Result<Config, ConfigErrors> {
        super::load_from_str(Path::new("/t.toml"), text, &no_env)
    }

    /// The displayed errors; panics if loading succeeded.
    pub(in super::super) fn errors_of(result: Result<Config, ConfigErrors>) -> Vec<String> {
        match result {
            Ok(config) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// A `[[source]]` table with only the required keys.
    pub(in super::super) const SOURCE: &str =
        "[[source]]\nname = \"orders\"\ntype = \"datagen\"\ntopic = \"orders\"\n";
}

#[cfg(test)]
mod tests {
    use super::super::OffsetStoreKind;
    use super::test_support::{SOURCE, errors_of, no_env, parse};
    use super::*;

    /// `load` as the public API returns it.
    fn load_checked(
        main_file: &Path,
        conf_dir: Option<&Path>,
        env: EnvLookup<'_>,
    ) -> Result<Config, ConfigErrors> {
        let (config, errors) = load(main_file, conf_dir, env);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }
    use std::ffi::OsString;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "tributary-config-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load_dir(dir: &TempDir, env: EnvLookup<'_>) -> Result<Config, ConfigErrors> {
        load_checked(&dir.0.join("tributary.toml"), None, env)
    }

    /// Replaces the temp dir path with `DIR` so expectations stay readable.
    fn relative(dir: &TempDir, lines: Vec<String>) -> Vec<String> {
        let prefix = dir.0.display().to_string();
        lines
            .into_iter()
            .map(|line| line.replace(&prefix, "DIR"))
            .collect()
    }

    #[test]
    fn defaults_apply_when_sections_are_missing() {
        let dir = TempDir::new("defaults");
        let main = dir.write("tributary.toml", "");
        let config = load_checked(&main, None, &no_env).unwrap();
        assert_eq!(config.main_file, main);
        assert_eq!(config.conf_dir, Some(dir.0.join("conf.d")));
        assert_eq!(config.files, vec![main]);
        assert_eq!(config.kafka, KafkaConfig::default());
        assert!(config.kafka.is_embedded());
        assert_eq!(config.kafka.topic_partitions, 3);
        assert_eq!(config.kafka.topic_replication_factor, 1);
        assert_eq!(config.kafka.drain_timeout_ms, 30_000);
        assert_eq!(config.offsets.store, OffsetStoreKind::File);
        assert_eq!(
            config.offsets.dir,
            PathBuf::from("/var/lib/tributary/offsets")
        );
        assert_eq!(config.offsets.commit_interval_ms, 1000);
        assert_eq!(config.http.listen, Some("127.0.0.1:9464".parse().unwrap()));
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        assert_eq!(
            config.plugins.dirs,
            vec![exe_dir, PathBuf::from("/usr/lib/tributary/plugins")]
        );
        assert!(config.sources.is_empty());
    }

    #[test]
    fn drop_ins_are_read_in_lexical_order_and_only_toml() {
        let dir = TempDir::new("dropins");
        let main = dir.write("tributary.toml", &SOURCE.replace("orders", "main"));
        let source = |name: &str| SOURCE.replace("orders", name);
        dir.write("conf.d/b.toml", &source("b"));
        dir.write("conf.d/a.toml", &source("a"));
        dir.write("conf.d/10-first.toml", &source("ten"));
        dir.write("conf.d/x.toml.bak", "not = [valid");
        dir.write("conf.d/.hidden.toml", "not = [valid");
        dir.write("conf.d/README", "not = [valid");
        dir.write("conf.d/sub.toml/inner.toml", "not = [valid");
        dir.write("conf.d/sub/c.toml", "not = [valid");
        let config = load_checked(&main, None, &no_env).unwrap();
        let conf_d = dir.0.join("conf.d");
        assert_eq!(
            config.files,
            vec![
                main,
                conf_d.join("10-first.toml"),
                conf_d.join("a.toml"),
                conf_d.join("b.toml"),
            ]
        );
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["main", "ten", "a", "b"]);
        assert_eq!(config.sources[2].location.file, conf_d.join("a.toml"));
    }

    #[test]
    fn explicit_conf_dir_replaces_the_default_and_must_exist() {
        let dir = TempDir::new("confdir");
        let main = dir.write("tributary.toml", "");
        dir.write("conf.d/a.toml", SOURCE);
        dir.write("other/z.toml", &SOURCE.replace("orders", "z"));
        let other = dir.0.join("other");
        let config = load_checked(&main, Some(&other), &no_env).unwrap();
        assert_eq!(config.conf_dir, Some(other));
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sources[0].name, "z");

        let missing = dir.0.join("nope");
        let errors = relative(
            &dir,
            errors_of(load_checked(&main, Some(&missing), &no_env)),
        );
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("cannot read drop-in directory `DIR/nope`: "),
            "{errors:?}"
        );
    }

    #[test]
    fn main_file_conf_dir_is_used_and_empty_means_no_drop_ins() {
        let dir = TempDir::new("mainconfdir");
        dir.write("conf.d/a.toml", SOURCE);
        dir.write("extra/b.toml", &SOURCE.replace("orders", "b"));
        let main = dir.write("tributary.toml", "conf_dir = \"extra\"\n");
        let config = load_checked(&main, None, &no_env).unwrap();
        assert_eq!(config.conf_dir, Some(dir.0.join("extra")));
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b"]);

        let main = dir.write("tributary.toml", "conf_dir = \"\"\n");
        let config = load_checked(&main, None, &no_env).unwrap();
        assert_eq!(config.conf_dir, None);
        assert!(config.sources.is_empty());

        // The command line still wins.
        let conf_d = dir.0.join("conf.d");
        let config = load_checked(&main, Some(&conf_d), &no_env).unwrap();
        assert_eq!(config.sources[0].name, "orders");
    }

    #[test]
    fn conf_dir_equal_to_main_dir_does_not_read_the_main_file_twice() {
        let dir = TempDir::new("samedir");
        let main = dir.write("tributary.toml", SOURCE);
        dir.write("more.toml", &SOURCE.replace("orders", "more"));
        let config = load_checked(&main, Some(&dir.0), &no_env).unwrap();
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["orders", "more"]);
    }

    #[test]
    fn missing_main_file_is_an_error_naming_it() {
        let dir = TempDir::new("nomain");
        let errors = relative(&dir, errors_of(load_dir(&dir, &no_env)));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("cannot read `DIR/tributary.toml`: "),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_key_is_reported_with_file_line_and_key() {
        let dir = TempDir::new("unknown");
        dir.write(
            "tributary.toml",
            "[kafka]\nbootstrap_server = \"x\"\ntopic_partitions = 2\n  tpoic_partitions = 2\n\n[htpp]\n",
        );
        let errors = relative(&dir, errors_of(load_dir(&dir, &no_env)));
        assert_eq!(
            errors,
            [
                "DIR/tributary.toml:2:1: `kafka.bootstrap_server`: unknown key (did you mean `bootstrap_servers`?); expected one of: bootstrap_servers, options, topic_partitions, topic_replication_factor, drain_timeout_ms, insecure_skip_tls_verify, transactional_id_prefix",
                "DIR/tributary.toml:4:3: `kafka.tpoic_partitions`: unknown key (did you mean `topic_partitions`?); expected one of: bootstrap_servers, options, topic_partitions, topic_replication_factor, drain_timeout_ms, insecure_skip_tls_verify, transactional_id_prefix",
                "DIR/tributary.toml:6:2: `htpp`: unknown key (did you mean `http`?); expected one of: conf_dir, kafka, offsets, http, plugins, schema_registry, cluster, source",
            ]
        );
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let dir = TempDir::new("syntax");
        dir.write("tributary.toml", "[kafka]\ntopic_partitions = = 3\n");
        let errors = relative(&dir, errors_of(load_dir(&dir, &no_env)));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("DIR/tributary.toml:2:") && errors[0].contains("invalid TOML: "),
            "{errors:?}"
        );
    }

    #[test]
    fn all_errors_across_files_are_reported_together() {
        let dir = TempDir::new("all");
        dir.write(
            "tributary.toml",
            "[offsets]\ndirr = \"x\"\n[kafka]\ntopic_partitions = 0\n",
        );
        dir.write("conf.d/a.toml", "[[source]\nname = \"a\"\n");
        dir.write(
            "conf.d/b.toml",
            "[[source]]\nname = \"b\"\ntype = \"datagen\"\ntopic = \"bad topic\"\nenabled = \"yes\"\n",
        );
        dir.write("conf.d/c.toml", "[kafka]\nacks = 1\n");
        let errors = relative(&dir, errors_of(load_dir(&dir, &no_env)));
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].starts_with("DIR/tributary.toml:2:1: `offsets.dirr`: unknown key"));
        assert_eq!(
            errors[1],
            "DIR/tributary.toml:4:20: `kafka.topic_partitions`: must be between 1 and 2147483647"
        );
        assert!(
            errors[2].starts_with("DIR/conf.d/a.toml:1:") && errors[2].contains("invalid TOML")
        );
        assert!(
            errors[3].starts_with(
                "DIR/conf.d/b.toml:4:9: `source[b].topic`: not a valid Kafka topic name"
            )
        );
        assert_eq!(
            errors[4],
            "DIR/conf.d/b.toml:5:11: `source[b].enabled`: expected a boolean, found a string"
        );
        assert_eq!(
            errors[5],
            "DIR/conf.d/c.toml:1:2: `kafka`: drop-in files may only contain [[source]] tables; `kafka` belongs in the main file `DIR/tributary.toml`"
        );
    }

    #[test]
    fn drop_in_may_only_contain_sources() {
        let dir = TempDir::new("dropinonly");
        dir.write("tributary.toml", "");
        dir.write(
            "conf.d/a.toml",
            "stray = 1\n[[source]]\nname = \"a\"\ntype = \"t\"\ntopic = \"t\"\n",
        );
        let errors = relative(&dir, errors_of(load_dir(&dir, &no_env)));
        assert_eq!(
            errors,
            [
                "DIR/conf.d/a.toml:1:1: `stray`: unknown key; drop-in files may only contain [[source]] tables"
            ]
        );
    }

    #[test]
    fn shards_split_a_source_into_units_that_each_know_their_shard() {
        let config = parse(
            r#"[[source]]
name = "spool"
type = "csv"
topic = "rows"
spool_dir = "/srv/spool"
shards = 3
"#,
        )
        .expect("valid");
        let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["spool@0of3", "spool@1of3", "spool@2of3"]);
        for (i, unit) in config.sources.iter().enumerate() {
            assert_eq!(unit.written_name(), "spool");
            assert_eq!(unit.options["shard"], i);
            assert_eq!(unit.options["shards"], 3);
            assert_eq!(
                unit.split.as_ref().map(|s| (s.index, s.count)),
                Some((i as u32, 3))
            );
        }
        let errors = errors_of(parse(
            "[[source]]\nname = \"a\"\ntype = \"csv\"\ntopic = \"t\"\nshard = 1\nshards = 0\n",
        ));
        assert_eq!(
            errors,
            [
                "/t.toml:5:1: `source[a].shard`: set by the daemon for each unit of a split source; write `shards = N`",
                "/t.toml:6:10: `source[a].shards`: must be between 1 and 1024",
            ]
        );
    }

    #[test]
    fn duplicate_source_name_points_at_both() {
        let dir = TempDir::new("dup");
        dir.write("tributary.toml", SOURCE);
        dir.write("conf.d/a.toml", &format!("# comment\n{SOURCE}"));
        let errors = relative(&dir, errors_of(load_dir(&dir, &no_env)));
        assert_eq!(
            errors,
            [
                "DIR/conf.d/a.toml:3:8: `source[orders].name`: duplicate source name; first defined at DIR/tributary.toml:2:8"
            ]
        );
    }

    #[test]
    fn env_and_file_substitution() {
        let dir = TempDir::new("subst");
        dir.write("secrets/pw", "from-file\n");
        let pw = dir.0.join("secrets/pw");
        dir.write(
            "tributary.toml",
            &format!(
                r#"
[kafka]
bootstrap_servers = "${{env:BROKERS}}"
[kafka.options]
"sasl.password" = "${{file:{}}}"
"sasl.username" = "${{file:secrets/pw}}-rel"
[offsets]
dir = "${{env:STATE}}/offsets"
[plugins]
dirs = ["${{env:STATE}}/plugins"]
[[source]]
name = "s"
type = "datagen"
topic = "t-${{env:SUFFIX}}"
token = "${{env:TOKEN}}"
literal = "$${{env:TOKEN}} costs $5"
list = ["${{env:TOKEN}}"]
"#,
                pw.display()
            ),
        );
        let env = |name: &str| match name {
            "BROKERS" => Some(OsString::from("k:9092")),
            "STATE" => Some(OsString::from("/state")),
            "SUFFIX" => Some(OsString::from("x")),
            "TOKEN" => Some(OsString::from("s3cret-token")),
            _ => None,
        };
        let config = load_dir(&dir, &env).unwrap();
        assert_eq!(config.kafka.bootstrap_servers, "k:9092");
        assert_eq!(config.kafka.options["sasl.password"], "from-file");
        assert_eq!(config.kafka.options["sasl.username"], "from-file-rel");
        assert_eq!(config.offsets.dir, PathBuf::from("/state/offsets"));
        assert_eq!(config.plugins.dirs, vec![PathBuf::from("/state/plugins")]);
        let source = &config.sources[0];
        assert_eq!(source.topic, "t-x");
        assert_eq!(source.options["token"], "s3cret-token");
        assert_eq!(source.options["literal"], "${env:TOKEN} costs $5");
        assert_eq!(source.options["list"], serde_json::json!(["s3cret-token"]));

        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains("from-file"), "{debug}");
        assert!(debug.contains("sasl.password"), "{debug}");
    }

    #[test]
    fn missing_env_var_is_an_error_without_the_value() {
        let text = "[kafka.options]\n\"sasl.password\" = \"${env:KAFKA_PASSWORD}\"\n\"sasl.username\" = \"${env:KAFKA_USER}\"\n[[source]]\nname = \"s\"\ntype = \"t\"\ntopic = \"t\"\ndsn = \"pg://u:${env:PG_PW}@h/${file:/nonexistent/tributary-secret}\"\n";
        let env = |name: &str| (name == "KAFKA_USER").then(|| OsString::from("alice-the-user"));
        let errors = errors_of(load_from_str(Path::new("/etc/t.toml"), text, &env));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert_eq!(
            errors[0],
            "/etc/t.toml:2:19: `kafka.options.sasl.password`: environment variable `KAFKA_PASSWORD` (from `${env:KAFKA_PASSWORD}`) is not set"
        );
        assert_eq!(
            errors[1],
            "/etc/t.toml:8:7: `source[s].dsn`: environment variable `PG_PW` (from `${env:PG_PW}`) is not set"
        );
        assert!(
            errors[2].starts_with("/etc/t.toml:8:7: `source[s].dsn`: cannot read `/nonexistent/tributary-secret` (from `${file:…}`): "),
            "{errors:#?}"
        );
        assert!(errors.iter().all(|e| !e.contains("alice")));
    }

    #[test]
    fn columns_count_characters_and_a_bom_is_ignored() {
        let text = "\u{feff}[kafka]\n\"ü\" = 1 ; x = 2\n";
        let errors = errors_of(load_from_str(Path::new("/t.toml"), text, &no_env));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("/t.toml:2:"), "{errors:?}");
        let text = "[kafka]\n\"ü\" = 1\n";
        let errors = errors_of(load_from_str(Path::new("/t.toml"), text, &no_env));
        let text_bom = format!("\u{feff}{text}");
        let errors_bom = errors_of(load_from_str(Path::new("/t.toml"), &text_bom, &no_env));
        assert_eq!(errors, errors_bom);
        let text = "kafka = { \"ü\" = 1, \"ü2\" = 2 }\n";
        let errors = errors_of(load_from_str(Path::new("/t.toml"), text, &no_env));
        assert!(
            errors[0].starts_with("/t.toml:1:11: `kafka.ü`"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("/t.toml:1:20: `kafka.ü2`"),
            "{errors:?}"
        );
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn non_utf8_file_is_an_error_with_its_position() {
        let dir = TempDir::new("utf8");
        let main = dir.0.join("tributary.toml");
        std::fs::write(&main, b"[kafka]\nx = \"\xff\"\n").unwrap();
        let errors = relative(&dir, errors_of(load_checked(&main, None, &no_env)));
        assert_eq!(
            errors,
            ["DIR/tributary.toml:2:6: the file is not valid UTF-8"]
        );
    }
}
