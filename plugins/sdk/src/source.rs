//! The safe side of the ABI: what a plugin author implements.

use std::time::Duration;

use arrow_array::RecordBatch;

use crate::options::{OptionSpec, Options};

/// A source of records. One instance serves one `[[source]]` of the config
/// and is only ever called from one thread, so it need not be `Sync`.
pub trait Source: Sized + 'static {
    /// Checks the options without creating anything; used by
    /// `tributary validate` before a config goes live.
    ///
    /// `options` have passed their declarations in [`SourceType::options`]
    /// (names, types, choices, ranges, required keys) and carry the
    /// declared defaults; this is for rules across options and for values
    /// a declaration cannot judge (a pattern that must compile).
    fn validate(options: &Options) -> Result<(), Vec<ConfigIssue>>;

    /// Creates an instance that resumes after [`CreateContext::checkpoints`],
    /// the last committed checkpoint of each partition this source has
    /// produced.
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
    /// The source's plugin options, checked against their declarations,
    /// defaults applied.
    pub options: Options,
    /// The last committed checkpoint of every partition the source has
    /// produced. A partition absent here was never committed, or was
    /// forgotten after its empty checkpoint.
    pub checkpoints: Vec<Checkpoint>,
    /// Sends messages to the daemon's log.
    pub log: Logger,
}

/// A source partition and the checkpoint committed for it: where the
/// source resumes reading that partition.
///
/// Both are opaque to the daemon: the partition names a part of the input
/// that is read in order (a file's identity, a generator's sequence), and
/// the checkpoint is what the plugin returned with a batch, meaning
/// "everything of this partition up to the end of that batch". The daemon
/// stores a checkpoint only once Kafka acknowledged every record up to it.
///
/// An empty checkpoint ends a partition: once committed the daemon forgets
/// it ([`Checkpoint::ends_partition`]). Met in [`CreateContext::checkpoints`],
/// it leaves nothing to resume in its partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    /// The source partition (e.g. a file identity).
    pub partition: Vec<u8>,
    /// Where to resume in that partition; empty when the partition ended.
    pub checkpoint: Vec<u8>,
}

impl Checkpoint {
    /// The checkpoint `checkpoint` of `partition`.
    pub fn new(partition: impl Into<Vec<u8>>, checkpoint: impl Into<Vec<u8>>) -> Self {
        Checkpoint {
            partition: partition.into(),
            checkpoint: checkpoint.into(),
        }
    }

    /// Whether the checkpoint is empty, which ends its partition: once
    /// committed, the daemon forgets the partition.
    pub fn ends_partition(&self) -> bool {
        self.checkpoint.is_empty()
    }
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
    /// How far the source is behind its input after this batch, when known,
    /// in its type's [`SourceType::LAG_UNIT`]. Ignored when the type
    /// declares no unit.
    pub lag: Option<u64>,
}

/// Why a plugin call failed, in the categories of the ABI: they become the
/// `error_class` label of the daemon's metrics, and the permanent ones
/// ([`ErrorCategory::is_permanent`]) leave the source failed instead of
/// restarting it in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// A bug or an unexpected state; restarted after a back-off.
    Internal,
    /// Reading failed; restarted after a back-off.
    Io,
    /// Something took too long; restarted after a back-off.
    Timeout,
    /// Something the source needs does not exist yet; restarted after a
    /// back-off.
    NotFound,
    /// The input is wrong and will stay wrong; permanent.
    InvalidData,
    /// The options cannot work; permanent.
    InvalidConfig,
    /// Permission denied; permanent.
    Unauthorized,
}

impl ErrorCategory {
    /// Every category, in code order.
    pub const ALL: [ErrorCategory; 7] = [
        ErrorCategory::Internal,
        ErrorCategory::Io,
        ErrorCategory::Timeout,
        ErrorCategory::NotFound,
        ErrorCategory::InvalidData,
        ErrorCategory::InvalidConfig,
        ErrorCategory::Unauthorized,
    ];

    /// The categories' names, as the `error_class` label shows them, in
    /// the order of [`ErrorCategory::ALL`].
    pub const NAMES: [&'static str; 7] = [
        "internal",
        "io",
        "timeout",
        "not_found",
        "invalid_data",
        "invalid_config",
        "unauthorized",
    ];

    /// The category's name, as the `error_class` label shows it.
    pub fn name(self) -> &'static str {
        crate::abi::category_name(self.code())
    }

    /// The category named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The `ERROR_*` code of the ABI.
    pub fn code(self) -> u32 {
        use crate::abi;
        match self {
            ErrorCategory::Internal => abi::ERROR_INTERNAL,
            ErrorCategory::Io => abi::ERROR_IO,
            ErrorCategory::Timeout => abi::ERROR_TIMEOUT,
            ErrorCategory::NotFound => abi::ERROR_NOT_FOUND,
            ErrorCategory::InvalidData => abi::ERROR_INVALID_DATA,
            ErrorCategory::InvalidConfig => abi::ERROR_INVALID_CONFIG,
            ErrorCategory::Unauthorized => abi::ERROR_UNAUTHORIZED,
        }
    }

    /// Whether restarting the source would only repeat the error.
    pub fn is_permanent(self) -> bool {
        crate::abi::is_permanent(self.code())
    }

    /// The category of an I/O error.
    pub fn of_io(kind: std::io::ErrorKind) -> Self {
        use std::io::ErrorKind;
        match kind {
            ErrorKind::NotFound => ErrorCategory::NotFound,
            ErrorKind::PermissionDenied => ErrorCategory::Unauthorized,
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof => ErrorCategory::InvalidData,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ErrorCategory::Timeout,
            _ => ErrorCategory::Io,
        }
    }
}

/// An error from a plugin: a category for the daemon, a message for the
/// operator, shown as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    category: ErrorCategory,
    message: String,
}

impl Error {
    /// An error of category [`ErrorCategory::Internal`] (transient).
    pub fn new(msg: impl Into<String>) -> Self {
        Error::with(ErrorCategory::Internal, msg)
    }

    /// An error of the given category.
    pub fn with(category: ErrorCategory, msg: impl Into<String>) -> Self {
        Error {
            category,
            message: msg.into(),
        }
    }

    /// The input is wrong and will stay wrong (permanent).
    pub fn invalid_data(msg: impl Into<String>) -> Self {
        Error::with(ErrorCategory::InvalidData, msg)
    }

    /// The options cannot work (permanent).
    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Error::with(ErrorCategory::InvalidConfig, msg)
    }

    /// An I/O error with context (`"/var/log/app.log: "`), categorised by
    /// its kind.
    pub fn io(context: impl std::fmt::Display, e: &std::io::Error) -> Self {
        Error::with(ErrorCategory::of_io(e.kind()), format!("{context}: {e}"))
    }

    /// The category.
    pub fn category(&self) -> ErrorCategory {
        self.category
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front of the message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        use arrow_schema::ArrowError as A;
        let category = match &e {
            A::ParseError(_)
            | A::CsvError(_)
            | A::JsonError(_)
            | A::IpcError(_)
            | A::ParquetError(_)
            | A::CastError(_) => ErrorCategory::InvalidData,
            A::IoError(_, io) => ErrorCategory::of_io(io.kind()),
            _ => ErrorCategory::Internal,
        };
        Error::with(category, format!("arrow: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::with(ErrorCategory::of_io(e.kind()), format!("I/O: {e}"))
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
        Error::invalid_config(format!("invalid options: {}", parts.join("; ")))
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
    /// What [`Batch::lag`] counts: rows or bytes still to read. The daemon
    /// exports the lag as `tributary_source_lag_rows` or
    /// `tributary_source_lag_bytes` accordingly; `None` (the default) for a
    /// type that reports no lag.
    const LAG_UNIT: Option<LagUnit> = None;
    /// Whether a source of this type reads the host it runs on (log files,
    /// host metrics): such a source runs on every member of a cluster of
    /// daemons and never moves; any other source is one unit of work that
    /// runs on one member at a time. `false` by default.
    const READS_THIS_HOST: bool = false;
    /// The accepted options.
    fn options() -> Vec<OptionSpec>;
}

/// The unit of a source type's lag, [`SourceType::LAG_UNIT`]; on the C ABI
/// the text of [`SourceTypeDescriptor::lag_unit`](crate::abi::SourceTypeDescriptor::lag_unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LagUnit {
    /// Rows (records) not yet read, e.g. of a Parquet file or a paced
    /// generator's backlog.
    Rows,
    /// Bytes not yet read, e.g. of a log file or a CSV file.
    Bytes,
}

impl LagUnit {
    /// Every unit.
    pub const ALL: [LagUnit; 2] = [LagUnit::Rows, LagUnit::Bytes];

    /// The unit's name: `rows` or `bytes`, as the ABI and the metric's
    /// name spell it.
    pub const fn name(self) -> &'static str {
        match self {
            LagUnit::Rows => "rows",
            LagUnit::Bytes => "bytes",
        }
    }

    /// The unit named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.name() == name)
    }
}

impl std::fmt::Display for LagUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Sends plugin messages to the host's log, tagged with the source.
#[derive(Clone, Copy)]
pub struct Logger {
    log: Option<crate::abi::LogFn>,
    context: *mut std::ffi::c_void,
}

// SAFETY: the ABI lets a plugin call the log callback from any thread while
// the instance lives, with the context the host gave; the host's callback
// and context are built for that.
unsafe impl Send for Logger {}
// SAFETY: see above; the logger itself is never mutated.
unsafe impl Sync for Logger {}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logger")
    }
}

impl Logger {
    /// A logger that drops everything, for tests.
    pub const fn none() -> Self {
        Logger {
            log: None,
            context: std::ptr::null_mut(),
        }
    }

    pub(crate) fn new(log: Option<crate::abi::LogFn>, context: *mut std::ffi::c_void) -> Self {
        Logger { log, context }
    }

    fn emit(&self, level: u32, msg: &str) {
        if let Some(log) = self.log {
            // SAFETY: the host promised `log` and `context` stay valid while
            // the instance lives, and the message is borrowed only for the call.
            unsafe { log(self.context, level, crate::abi::StrRef::new(msg)) };
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
    fn lag_units_are_named_as_the_abi_and_the_metrics_spell_them() {
        for unit in LagUnit::ALL {
            assert_eq!(LagUnit::from_name(unit.name()), Some(unit));
        }
        assert_eq!(LagUnit::Rows.name(), "rows");
        assert_eq!(LagUnit::Bytes.to_string(), "bytes");
        assert_eq!(LagUnit::from_name("lines"), None);
    }

    #[test]
    fn an_empty_checkpoint_ends_its_partition() {
        assert!(Checkpoint::new(b"file", b"").ends_partition());
        assert!(!Checkpoint::new(b"file", 7u64.to_le_bytes()).ends_partition());
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

#[cfg(test)]
mod category_tests {
    use super::*;

    #[test]
    fn io_errors_are_categorised_by_kind() {
        use std::io::{Error as IoError, ErrorKind};
        let cat = |k| Error::from(IoError::from(k)).category();
        assert_eq!(cat(ErrorKind::NotFound), ErrorCategory::NotFound);
        assert_eq!(
            cat(ErrorKind::PermissionDenied),
            ErrorCategory::Unauthorized
        );
        assert_eq!(cat(ErrorKind::InvalidData), ErrorCategory::InvalidData);
        assert_eq!(cat(ErrorKind::Interrupted), ErrorCategory::Io);
        assert!(ErrorCategory::InvalidData.is_permanent());
        assert!(!ErrorCategory::NotFound.is_permanent());
        assert!(
            Error::from(vec![ConfigIssue::key("a", "b")])
                .category()
                .is_permanent()
        );
    }
}
