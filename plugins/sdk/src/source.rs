//! The safe side of the ABI: what a plugin author implements.

use std::time::Duration;

use arrow_array::RecordBatch;
use serde_json::Value;

/// A source of records. One instance serves one `[[source]]` of the config
/// and is only ever called from one thread, so it need not be `Sync`.
pub trait Source: Sized + 'static {
    /// Checks the options without creating anything; used by
    /// `tributary validate` before a config goes live.
    ///
    /// The host has already checked the option names and types against
    /// [`SourceType::options`]; this is for rules across options and for
    /// values the type alone cannot judge.
    fn validate(config: &Value) -> Result<(), Vec<ConfigIssue>>;

    /// Creates an instance that resumes after `checkpoints`, the last
    /// committed checkpoint of each partition this source has produced.
    fn create(ctx: CreateContext) -> Result<Self, Error>;

    /// Returns the next batch, or [`Poll::Idle`] when nothing arrived
    /// within `timeout`. Must return within about `timeout`.
    fn poll(&mut self, timeout: Duration) -> Result<Poll, Error>;

    /// Everything up to `checkpoint` of `partition` is committed. The
    /// default does nothing; a source that must act once data is safe (move
    /// a finished file away, delete a spool entry) does it here.
    fn committed(&mut self, partition: &[u8], checkpoint: &[u8]) -> Result<(), Error> {
        let _ = (partition, checkpoint);
        Ok(())
    }
}

/// What [`Source::create`] receives.
#[derive(Debug)]
pub struct CreateContext {
    /// The source's name in the config.
    pub source_name: String,
    /// The source's plugin options.
    pub config: Value,
    /// Last committed `(partition, checkpoint)` pairs.
    pub checkpoints: Vec<(Vec<u8>, Vec<u8>)>,
    /// Sends messages to the daemon's log.
    pub log: Logger,
}

/// The outcome of one [`Source::poll`].
#[derive(Debug)]
pub enum Poll {
    /// Rows to send.
    Batch(Batch),
    /// Nothing new within the timeout.
    Idle,
    /// No more data, ever.
    Finished,
}

/// Rows from one source partition, with the checkpoint that follows them.
#[derive(Debug)]
pub struct Batch {
    /// The rows, one Kafka record each.
    pub records: RecordBatch,
    /// The source partition (e.g. a file identity). Checkpoints are tracked
    /// per partition.
    pub partition: Vec<u8>,
    /// Where to resume once these rows and all earlier rows of the same
    /// partition are delivered.
    pub checkpoint: Vec<u8>,
    /// Rows or bytes still waiting at the source, when known.
    pub lag: Option<u64>,
}

/// An error from a plugin, shown to the operator as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    /// Builds an error from any message.
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error(format!("arrow: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(format!("I/O: {e}"))
    }
}

/// A problem with one option (or with the table when `key` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The option at fault, so the host can point at its line.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigIssue {
    /// An issue with one option.
    pub fn key(key: &str, message: impl Into<String>) -> Self {
        ConfigIssue {
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

/// Every problem at once, as the error `create` returns when the options it
/// was given do not pass [`Source::validate`].
impl From<Vec<ConfigIssue>> for Error {
    fn from(issues: Vec<ConfigIssue>) -> Self {
        let parts: Vec<String> = issues
            .into_iter()
            .map(|i| match i.key {
                Some(k) => format!("`{k}`: {}", i.message),
                None => i.message,
            })
            .collect();
        Error(format!("invalid options: {}", parts.join("; ")))
    }
}

/// The plugin options as a JSON object. The host sends `{}` when a source
/// has no options; `null` is accepted as the same.
pub fn options_object(config: &Value) -> Result<&serde_json::Map<String, Value>, Vec<ConfigIssue>> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    match config {
        Value::Object(obj) => Ok(obj),
        Value::Null => Ok(EMPTY.get_or_init(serde_json::Map::new)),
        other => Err(vec![ConfigIssue {
            key: None,
            message: format!("expected the options as a table, got {other}"),
        }]),
    }
}

/// An issue for every key of `options` not named in `known`. The host
/// already refuses unknown keys before a plugin sees them; plugins check
/// again so that a typo can never silently fall back to a default.
pub fn unknown_options(
    options: &serde_json::Map<String, Value>,
    known: &[&str],
) -> Vec<ConfigIssue> {
    options
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            ConfigIssue::key(
                k,
                format!("unknown option; expected one of {}", known.join(", ")),
            )
        })
        .collect()
}

/// The type of an option's value, as written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A number; integers are accepted.
    Float,
    /// `true` or `false`.
    Boolean,
    /// An array.
    Array,
    /// A table.
    Table,
}

impl OptionKind {
    /// The name used in the ABI and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionKind::String => "string",
            OptionKind::Integer => "integer",
            OptionKind::Float => "float",
            OptionKind::Boolean => "boolean",
            OptionKind::Array => "array",
            OptionKind::Table => "table",
        }
    }
}

/// The description of one option.
#[derive(Debug, Clone)]
pub struct OptionSpec {
    /// The key.
    pub name: &'static str,
    /// The value's type.
    pub kind: OptionKind,
    /// The default as a TOML literal, if any.
    pub default: Option<&'static str>,
    /// What the option does.
    pub doc: &'static str,
    /// Allowed values of a string option.
    pub choices: &'static [&'static str],
    /// Whether the key must be present.
    pub required: bool,
}

impl OptionSpec {
    /// An optional key with a default.
    pub const fn new(
        name: &'static str,
        kind: OptionKind,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        OptionSpec {
            name,
            kind,
            default,
            doc,
            choices: &[],
            required: false,
        }
    }

    /// Restricts a string option to `choices`.
    pub const fn one_of(mut self, choices: &'static [&'static str]) -> Self {
        self.choices = choices;
        self
    }

    /// Makes the key mandatory.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// Ties a [`Source`] implementation to its name and options.
pub trait SourceType: Source {
    /// The value of `type` in a `[[source]]` table.
    const NAME: &'static str;
    /// One sentence for listings.
    const DESCRIPTION: &'static str;
    /// The column whose value becomes the record key when the source's
    /// config sets no `key` (e.g. `host` for host metrics).
    const DEFAULT_KEY: Option<&'static str> = None;
    /// The accepted options.
    fn options() -> Vec<OptionSpec>;
}

/// Sends plugin messages to the host's log.
#[derive(Clone, Copy)]
pub struct Logger(pub(crate) Option<crate::abi::LogFn>);

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logger")
    }
}

impl Logger {
    /// A logger that drops everything, for tests.
    pub const fn none() -> Self {
        Logger(None)
    }

    fn emit(&self, level: u32, msg: &str) {
        if let Some(log) = self.0 {
            // SAFETY: the host promised `log` stays valid while the instance
            // lives, and the message is borrowed only for the call.
            unsafe { log(level, crate::abi::StrRef::new(msg)) };
        }
    }

    /// Logs at error level.
    pub fn error(&self, msg: &str) {
        self.emit(crate::abi::LOG_ERROR, msg);
    }
    /// Logs at warning level.
    pub fn warn(&self, msg: &str) {
        self.emit(crate::abi::LOG_WARN, msg);
    }
    /// Logs at info level.
    pub fn info(&self, msg: &str) {
        self.emit(crate::abi::LOG_INFO, msg);
    }
    /// Logs at debug level.
    pub fn debug(&self, msg: &str) {
        self.emit(crate::abi::LOG_DEBUG, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_an_object_and_null_counts_as_empty() {
        let obj = serde_json::json!({"a": 1});
        assert_eq!(options_object(&obj).unwrap().len(), 1);
        assert!(options_object(&Value::Null).unwrap().is_empty());
        let issues = options_object(&serde_json::json!([1])).unwrap_err();
        assert_eq!(issues[0].key, None);
        assert!(
            issues[0]
                .message
                .contains("expected the options as a table")
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_known_ones() {
        let obj = serde_json::json!({"rate": 1, "colour": "blue"});
        let issues = unknown_options(options_object(&obj).unwrap(), &["rate", "seed"]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key.as_deref(), Some("colour"));
        assert!(issues[0].message.contains("rate, seed"));
    }

    #[test]
    fn every_issue_is_in_the_create_error() {
        let error = Error::from(vec![
            ConfigIssue::key("rate", "must be positive"),
            ConfigIssue {
                key: None,
                message: "bad table".into(),
            },
        ]);
        assert_eq!(
            error.to_string(),
            "invalid options: `rate`: must be positive; bad table"
        );
    }
}
