//! The `tributary` command: parses the command line and calls the library.
//!
//! Exit codes: 0 success, 2 bad configuration, 1 any other failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tributary::config::{self, Config, ConfigError, ConfigErrors};
use tributary::plugin::PluginRegistry;

/// `--version`: version, git revision, librdkafka, plugin ABI.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(tributary::version_text);

#[derive(Parser, Debug)]
#[command(
    name = "tributary",
    version = VERSION.as_str(),
    about = "Feeds Kafka from source plugins, committing offsets only after delivery."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct ConfigArgs {
    /// The main configuration file.
    #[arg(long, short = 'c', default_value = config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// The drop-in directory (default: `conf.d` beside the main file).
    #[arg(long)]
    conf_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the last (or the next) records of a topic: partition, offset,
    /// timestamp, key, headers and value, Avro decoded through
    /// `[schema_registry]`. Reads in no consumer group and commits nothing;
    /// with the embedded broker, reads the running daemon's.
    Peek {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        peek: PeekArgs,
    },
    /// Run the daemon.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Exit once every source has finished (finite inputs), instead of
        /// running until SIGTERM.
        #[arg(long)]
        exit_when_finished: bool,
    },
    /// Check the configuration, the plugins and every source's options.
    /// Needs no broker.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Read or change committed source offsets, in either store, with the
    /// daemon stopped or the sources concerned paused.
    Offsets {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: OffsetsAction,
    },
    /// List the plugins found in the plugin directories, or describe one
    /// source type and its options.
    Plugins {
        #[command(flatten)]
        config: ConfigArgs,
        /// Search this directory instead of the configured ones (repeatable).
        #[arg(long = "plugin-dir")]
        plugin_dirs: Vec<PathBuf>,
        #[command(subcommand)]
        action: Option<PluginsAction>,
    },
    /// Watch a running daemon from its HTTP API: each source's state,
    /// records/s, bytes/s, lag, in-flight records, last commit and errors,
    /// and the Kafka client's queue and brokers. `q` quits.
    Top {
        #[command(flatten)]
        config: ConfigArgs,
        /// The daemon's HTTP endpoint, e.g. `http://127.0.0.1:9464`,
        /// instead of `[http] listen` from the configuration.
        #[arg(long)]
        url: Option<String>,
        /// Seconds between polls.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Print one plain-text snapshot and exit (what `top` does anyway
        /// when stdout is not a terminal).
        #[arg(long)]
        once: bool,
    },
}

/// `tributary peek`'s own options.
#[derive(clap::Args, Debug)]
struct PeekArgs {
    /// The topic.
    topic: String,
    /// Show the newest N records across the partitions, oldest first (the
    /// default, with N = 10).
    #[arg(long, value_name = "N", conflicts_with = "next",
          value_parser = clap::value_parser!(u64).range(1..))]
    last: Option<u64>,
    /// Wait for the next N records written to the topic and show each as it
    /// arrives; exit code 1 if fewer arrive within --timeout.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    next: Option<u64>,
    /// Only this partition.
    #[arg(long, value_name = "P")]
    partition: Option<i32>,
    /// `text` (a block per record) or `json` (an object per line).
    #[arg(long, default_value = "text")]
    format: tributary::peek::Format,
    /// Seconds --next waits for its records, and --last for the end of
    /// every partition.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    timeout: f64,
    /// The brokers to read instead of `[kafka] bootstrap_servers` (or of the
    /// running daemon's embedded broker).
    #[arg(long, value_name = "HOST:PORT,...")]
    bootstrap_servers: Option<String>,
}

#[derive(Subcommand, Debug)]
enum OffsetsAction {
    /// Show every configured source's committed checkpoints.
    List,
    /// Print the checkpoints as a JSON document for `import`.
    Export {
        /// Only these sources (repeatable); all configured ones by default.
        #[arg(long = "source")]
        sources: Vec<String>,
    },
    /// Replace the checkpoints of the sources in a document from `export`.
    Import {
        /// The document; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Forget a source's checkpoints: it starts from the beginning of its
    /// input when it runs again.
    Reset {
        /// The source.
        #[arg(long)]
        source: String,
    },
}

#[derive(Subcommand, Debug)]
enum PluginsAction {
    /// List libraries and the source types they provide (the default).
    List,
    /// Show a source type's options.
    Describe {
        /// The source type, as written in `type = "..."`.
        name: String,
    },
}

/// A failure that maps to exit code 2.
#[derive(Debug)]
struct BadConfig(ConfigErrors);

impl std::fmt::Display for BadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for BadConfig {}

/// How long the process waits at exit for its Kafka clients to close. A
/// client held by a metadata call to an unreachable broker may take
/// seconds more; the stop does not wait for it.
const CLIENTS_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let code = match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            if let Some(bad) = e.downcast_ref::<BadConfig>() {
                let n = bad.0.0.len();
                eprintln!("{}", bad.0);
                eprintln!(
                    "configuration invalid: {n} error{}",
                    if n == 1 { "" } else { "s" }
                );
                2
            } else {
                eprintln!("error: {e:#}");
                1
            }
        }
    };
    // A Kafka client still alive here (a metadata call stuck on a broker
    // that does not answer) would crash under the C exit handlers.
    if !tributary::producer::clients_closed(CLIENTS_CLOSE_GRACE) {
        tracing::info!(
            grace = ?CLIENTS_CLOSE_GRACE,
            "A Kafka client is still waiting on a broker; exiting without it."
        );
        tributary::producer::exit_now(code);
    }
    ExitCode::from(code)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours for a person at a terminal only: a journal or a log file
    // gets plain text (and NO_COLOR is honoured).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn load(args: &ConfigArgs) -> anyhow::Result<Config> {
    config::load(&args.config, args.conf_dir.as_deref()).map_err(|e| BadConfig(e).into())
}

/// Loads the files and checks every source against the plugins, reporting
/// file-level and plugin-level problems together. Returns the config and
/// the plugin-level problems when the files themselves are fine.
fn load_and_check(args: &ConfigArgs) -> anyhow::Result<(Config, Vec<ConfigError>)> {
    let (config, mut errors) = config::load_all(&args.config, args.conf_dir.as_deref());
    errors.extend(
        tributary::producer::check_options(&config.kafka)
            .into_iter()
            .map(|(property, message)| {
                ConfigError::new(None, Some(format!("kafka.options.{property}")), message)
            }),
    );
    let file_errors = errors.len();
    let registry = PluginRegistry::load(&config.plugins.dirs);
    let mut plugin_errors = tributary::validate::check_sources(&config, &registry);
    if file_errors > 0 {
        errors.append(&mut plugin_errors);
        errors.sort_by(|a, b| a.location.cmp(&b.location));
        return Err(BadConfig(ConfigErrors(errors)).into());
    }
    for e in &registry.errors {
        tracing::warn!(error = %e, "Plugin library not loaded.");
    }
    Ok((config, plugin_errors))
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            config,
            exit_when_finished,
        } => run(&config, exit_when_finished),
        Command::Validate { config } => validate(&config),
        Command::Peek { config, peek: args } => peek(&config, args),
        Command::Offsets { config, action } => offsets(&config, action),
        Command::Plugins {
            config,
            plugin_dirs,
            action,
        } => plugins(&config, plugin_dirs, action.unwrap_or(PluginsAction::List)),
        Command::Top {
            config,
            url,
            interval,
            once,
        } => top(&config, url.as_deref(), interval, once),
    }
}

fn run(args: &ConfigArgs, exit_when_finished: bool) -> anyhow::Result<()> {
    // Problems of single sources (a missing plugin, bad plugin options) do
    // not stop the daemon: those sources are reported and left out, the
    // others run. `validate` treats them as errors.
    // Handlers first: a stop request during start-up must still drain.
    let shutdown = CancellationToken::new();
    let reload_requests =
        tributary::signals::install(shutdown.clone()).context("cannot install signal handlers")?;
    let (config, _per_source) = load_and_check(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("tributary-rt")
        .build()
        .context("cannot start the async runtime")?;
    let options = tributary::RunOptions {
        exit_when_finished,
        conf_dir: args.conf_dir.clone(),
        reload_requests: Some(reload_requests),
    };
    let result = runtime.block_on(tributary::run_with(config, options, shutdown));
    // Every source has drained and committed once `run_with` returns; a
    // blocking metadata lookup still waiting on an unreachable broker must
    // not hold the exit for its full timeout.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result?;
    Ok(())
}

fn offsets(args: &ConfigArgs, action: OffsetsAction) -> anyhow::Result<()> {
    use tributary::offsets::tool;
    let config = load(args)?;
    let names: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let store = runtime.block_on(tributary::open_offset_store(&config))?;
    // Changing the offsets of a running source would be overwritten by
    // its next commit, or would move it under its feet.
    let check_stopped = |sources: &[String]| -> anyhow::Result<()> {
        let Some(listen) = config.http.listen else {
            return Ok(());
        };
        for source in sources {
            let state = tool::running_state(listen, source);
            if !tool::may_change_offsets(state.as_deref()) {
                anyhow::bail!(
                    "source `{source}` is {} in the daemon at {listen}; pause it first \
                     (POST /api/v1/sources/{source}/pause) or stop the daemon",
                    state.unwrap_or_default()
                );
            }
        }
        Ok(())
    };
    let mut out = std::io::stdout().lock();
    match action {
        OffsetsAction::List => {
            let document = tool::export(store.as_ref(), &names)?;
            for (source, entries) in document["sources"].as_object().into_iter().flatten() {
                let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
                if entries.is_empty() {
                    writeln!(out, "{source}: no committed checkpoint")?;
                }
                for entry in entries {
                    writeln!(
                        out,
                        "{source}: partition {} checkpoint {}",
                        entry["partition_hex"].as_str().unwrap_or_default(),
                        entry["checkpoint_hex"].as_str().unwrap_or_default()
                    )?;
                }
            }
        }
        OffsetsAction::Export { sources } => {
            if let Some(unknown) = sources.iter().find(|s| !names.contains(s)) {
                anyhow::bail!("source `{unknown}` is not in the configuration");
            }
            let chosen = if sources.is_empty() { &names } else { &sources };
            writeln!(out, "{}", tool::export(store.as_ref(), chosen)?)?;
        }
        OffsetsAction::Import { file } => {
            let text = match file.filter(|f| f.as_os_str() != "-") {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?,
            };
            let imported = tool::parse(&text)?;
            let sources: Vec<String> = imported.keys().cloned().collect();
            check_stopped(&sources)?;
            tool::import(store.as_ref(), &imported, &names)?;
            writeln!(out, "imported the offsets of {} source(s)", imported.len())?;
        }
        OffsetsAction::Reset { source } => {
            if !names.contains(&source) {
                anyhow::bail!("source `{source}` is not in the configuration");
            }
            check_stopped(std::slice::from_ref(&source))?;
            store.commit(&source, &Default::default())?;
            writeln!(
                out,
                "offsets of `{source}` reset: it starts from the beginning of its input"
            )?;
        }
    }
    Ok(())
}

fn validate(args: &ConfigArgs) -> anyhow::Result<()> {
    let (config, errors) = load_and_check(args)?;
    if !errors.is_empty() {
        return Err(BadConfig(ConfigErrors(errors)).into());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "configuration valid: {} source(s) in {} file(s)",
        config.sources.len(),
        config.files.len()
    )?;
    Ok(())
}

fn top(args: &ConfigArgs, url: Option<&str>, interval: f64, once: bool) -> anyhow::Result<()> {
    use tributary::top::{Options, Target};
    let target = match url {
        Some(url) => Target::from_url(url)?,
        None => Target::from_config(&load(args)?.http)?,
    };
    tributary::top::run(&Options {
        target,
        interval_seconds: interval,
        once,
    })?;
    Ok(())
}

fn peek(args: &ConfigArgs, peek: PeekArgs) -> anyhow::Result<()> {
    use tributary::peek::{Connection, PeekOptions, Which};
    // `--bootstrap-servers` alone reads any cluster, with no configuration
    // file at hand.
    let loaded = if peek.bootstrap_servers.is_some()
        && args.config == Path::new(config::DEFAULT_CONFIG_PATH)
        && !args.config.exists()
    {
        None
    } else {
        Some(load(args)?)
    };
    let default_kafka = config::KafkaConfig::default();
    let default_offsets = config::OffsetsConfig::default();
    let connection = Connection {
        kafka: loaded.as_ref().map_or(&default_kafka, |c| &c.kafka),
        state_dir: &loaded.as_ref().map_or(&default_offsets, |c| &c.offsets).dir,
        schema_registry: loaded.as_ref().and_then(|c| c.schema_registry.as_ref()),
        bootstrap_servers: peek.bootstrap_servers.as_deref(),
    };
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let which = match (peek.next, peek.last) {
        (Some(n), _) => Which::Next(count(n)),
        (None, n) => Which::Last(count(n.unwrap_or(10))),
    };
    let timeout = std::time::Duration::try_from_secs_f64(peek.timeout)
        .map_err(|_| anyhow::anyhow!("--timeout {}: expected seconds, 0 or more", peek.timeout))?;
    let options = PeekOptions {
        topic: peek.topic,
        which,
        partition: peek.partition,
        format: peek.format,
        timeout,
    };
    let shown = tributary::peek::run(&connection, &options, &mut std::io::stdout().lock())?;
    if shown == 0 && matches!(which, Which::Last(_)) {
        match options.partition {
            Some(p) => eprintln!(
                "partition {p} of topic `{}` holds no records",
                options.topic
            ),
            None => eprintln!("topic `{}` holds no records", options.topic),
        }
    }
    Ok(())
}

fn plugin_dirs(args: &ConfigArgs, explicit: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    if !explicit.is_empty() {
        return Ok(explicit);
    }
    if args.config == Path::new(config::DEFAULT_CONFIG_PATH) && !args.config.exists() {
        return Ok(config::PluginsConfig::default().dirs);
    }
    Ok(load(args)?.plugins.dirs)
}

fn plugins(args: &ConfigArgs, explicit: Vec<PathBuf>, action: PluginsAction) -> anyhow::Result<()> {
    let dirs = plugin_dirs(args, explicit)?;
    let registry = PluginRegistry::load(&dirs);
    let mut out = std::io::stdout().lock();
    match action {
        PluginsAction::List => {
            for lib in registry.libraries() {
                writeln!(
                    out,
                    "{} {} (ABI {}.{}) {}",
                    lib.name,
                    lib.version,
                    lib.abi.0,
                    lib.abi.1,
                    lib.path.display()
                )?;
                for t in &lib.source_types {
                    writeln!(out, "  {:<16} {}", t.name, t.description)?;
                }
            }
            for e in &registry.errors {
                writeln!(out, "not loaded: {e}")?;
            }
            if registry.libraries().is_empty() {
                let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                writeln!(out, "no plugins found in: {}", searched.join(", "))?;
            }
        }
        PluginsAction::Describe { name } => {
            let Some(info) = registry.source_type(&name) else {
                let known: Vec<&str> = registry.type_names().collect();
                anyhow::bail!(
                    "no plugin provides source type `{name}` (available: {})",
                    known.join(", ")
                );
            };
            writeln!(out, "{}: {}", info.name, info.description)?;
            if let Some(key) = &info.default_key {
                writeln!(
                    out,
                    "default key column: {key} (when the source sets no `key`)"
                )?;
            }
            match info.lag_unit {
                Some(unit) => writeln!(out, "lag unit: {unit} (tributary_source_lag_{unit})")?,
                None => writeln!(out, "lag unit: none (the source reports no lag)")?,
            }
            writeln!(out, "options:")?;
            for o in &info.options {
                let mut line = format!("  {} ({})", o.name, o.kind);
                if o.required {
                    line.push_str(" required");
                }
                if let Some(d) = &o.default {
                    line.push_str(&format!(" default {d}"));
                }
                if !o.choices.is_empty() {
                    line.push_str(&format!(" one of {}", o.choices.join(" | ")));
                }
                let bound = |b: f64| {
                    if o.kind == "integer" && b.fract() == 0.0 {
                        format!("{}", b as i64)
                    } else {
                        format!("{b}")
                    }
                };
                match (o.minimum, o.maximum) {
                    (Some(lo), Some(hi)) => {
                        line.push_str(&format!(" from {} to {}", bound(lo), bound(hi)))
                    }
                    (Some(lo), None) => line.push_str(&format!(" at least {}", bound(lo))),
                    (None, Some(hi)) => line.push_str(&format!(" at most {}", bound(hi))),
                    (None, None) => {}
                }
                writeln!(out, "{line}\n      {}", o.doc)?;
            }
        }
    }
    Ok(())
}
