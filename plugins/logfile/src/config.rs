//! The `logfile` options: their declaration and the checks that turn the
//! host's JSON into a [`Config`].

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};
use tributary_plugin_sdk::bad_rows::OnError;
use tributary_plugin_sdk::{ConfigIssue, OptionKind, OptionSpec, Options};

use crate::parse::{ColumnType, Parser};

/// The largest accepted `fingerprint_bytes`.
pub const MAX_FINGERPRINT_BYTES: u32 = 65_536;

/// Where a file seen for the first time is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// From its first byte.
    Beginning,
    /// From its end: only lines appended later.
    End,
}

/// What happens to a line longer than `max_line_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Its first `max_line_bytes` are sent; the rest is dropped.
    Truncate,
    /// It is dropped whole.
    Skip,
}

/// How continuation lines are recognised.
#[derive(Debug, Clone)]
pub enum Multiline {
    /// A line matching starts a new event; other lines continue it.
    Start(Regex),
    /// A line matching continues the previous event.
    Continue(Regex),
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Glob patterns of files to read.
    pub include: Vec<glob::Pattern>,
    /// Glob patterns of files never to read.
    pub exclude: Vec<glob::Pattern>,
    /// Where files without a checkpoint start on the source's first run.
    pub read_from: ReadFrom,
    /// How often the globs are expanded again (inotify wakes it sooner).
    pub glob_interval_ms: u64,
    /// How many leading bytes identify a file's content.
    pub fingerprint_bytes: usize,
    /// The longest line (or multiline event) kept.
    pub max_line_bytes: usize,
    /// What happens to longer lines.
    pub line_overflow: Overflow,
    /// Idle time after which a last line without newline is sent anyway;
    /// 0 holds it until completed.
    pub partial_line_timeout_ms: u64,
    /// Multiline joining, if configured.
    pub multiline: Option<Multiline>,
    /// Idle time after which a multiline event is sent.
    pub multiline_timeout_ms: u64,
    /// How lines become columns.
    pub parser: Parser,
    /// What happens to a line the parser cannot read.
    pub on_error: OnError,
    /// The most file handles held open at once.
    pub max_open_files: usize,
    /// How long a file that left the globs (renamed away or deleted) is
    /// still read after its last growth.
    pub rotate_wait_ms: u64,
    /// How long a new file that may be a copy in progress of a tracked one
    /// waits before being read as a file of its own.
    pub copy_wait_ms: u64,
    /// The most lines per batch.
    pub max_batch_lines: usize,
    /// The value of the `host` column; the kernel's host name when unset.
    pub host: Option<String>,
    /// Whether inotify wakes the source (else polling only).
    pub inotify: bool,
}

/// The options, as `tributary plugins describe logfile` shows them.
pub fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "include",
            OptionKind::Array,
            None,
            "Glob patterns of the files to read (`*`, `?`, `[...]`, `**`), absolute paths. \
             Include the rotated names too (`/var/log/app.log*`) so that what a rename \
             rotation moved away is still read to its end after a restart.",
        )
        .required(),
        OptionSpec::new(
            "exclude",
            OptionKind::Array,
            Some("[]"),
            "Glob patterns of files never read, e.g. `/var/log/*.gz`.",
        ),
        OptionSpec::new(
            "read_from",
            OptionKind::String,
            Some("\"beginning\""),
            "Where files that exist when the source first starts are read from: their \
             beginning, or their end (only lines appended later). Files that appear later, \
             or while the daemon was stopped after a first run, are always read from the \
             beginning so that nothing is lost.",
        )
        .one_of(&["beginning", "end"]),
        OptionSpec::new(
            "glob_interval_ms",
            OptionKind::Integer,
            Some("1000"),
            "How often the globs are expanded to find new, renamed and deleted files. \
             inotify (where available) wakes the source as soon as a watched directory \
             changes; this is the fallback.",
        ),
        OptionSpec::new(
            "fingerprint_bytes",
            OptionKind::Integer,
            Some("256"),
            "A file's identity is its device, inode and a CRC-32 of its first \
             `fingerprint_bytes` bytes (of all of them when the file is shorter when first \
             seen; an empty file is picked up once it has a byte). A reused inode with \
             other content is a new file; a copy with the same content is recognised.",
        ),
        OptionSpec::new(
            "max_line_bytes",
            OptionKind::Integer,
            Some("102400"),
            "The longest line (or joined multiline event) kept, in bytes. It also bounds \
             the memory held per file.",
        ),
        OptionSpec::new(
            "line_overflow",
            OptionKind::String,
            Some("\"truncate\""),
            "A longer line is truncated to `max_line_bytes` (the rest dropped), or skipped \
             whole. Either way it is counted in the log, and reading goes on.",
        )
        .one_of(&["truncate", "skip"]),
        OptionSpec::new(
            "partial_line_timeout_ms",
            OptionKind::Integer,
            Some("0"),
            "A last line without newline is held until its newline arrives. With a value \
             above 0 it is sent after that much idle time instead, and the checkpoint \
             remembers it, so what is appended later is sent as a new line and the first \
             part never twice. A file that is deleted or rotated away sends its partial \
             last line when released.",
        ),
        OptionSpec::new(
            "multiline_start",
            OptionKind::String,
            None,
            "A regex: a line matching it starts a new event, other lines are joined to the \
             current one with `\\n` (e.g. `^\\d{4}-\\d{2}-\\d{2}` for stack traces).",
        ),
        OptionSpec::new(
            "multiline_continue",
            OptionKind::String,
            None,
            "A regex: a line matching it is joined to the previous event (e.g. \
             `^\\s+at ` or `^\\s`). Exclusive with `multiline_start`.",
        ),
        OptionSpec::new(
            "multiline_timeout_ms",
            OptionKind::Integer,
            Some("1000"),
            "A multiline event with no new line for this long is sent.",
        ),
        OptionSpec::new(
            "parser",
            OptionKind::String,
            Some("\"raw\""),
            "How a line becomes columns besides the standard ones (`line`, `file`, `host`, \
             `read_time`, `offset`): `raw` adds none; `json` adds each top-level key of \
             the line's JSON object (numbers, booleans and strings typed, nested values \
             as JSON text); `regex` adds each named capture of `regex`; \
             `syslog_rfc3164`, `syslog_rfc5424`, `nginx_combined`, `apache_combined` are \
             built-in regexes whose time is a timestamp column (UTC milliseconds, like \
             `read_time`), usable as the source's `timestamp`: `time_local` of the web \
             formats (`10/Oct/2000:13:55:36 -0700`), `timestamp` of RFC 5424 (RFC 3339; \
             `-` is null) and of RFC 3164 (`Oct 11 22:14:15`: read as UTC, in the latest \
             year that puts it at most 31 days after the line's read time). A parsed name \
             equal to a standard column gets a `parsed_` prefix.",
        )
        .one_of(&Parser::NAMES),
        OptionSpec::new(
            "regex",
            OptionKind::String,
            None,
            "The pattern of `parser = \"regex\"`, with named captures: \
             `^(?P<level>\\w+) (?P<msg>.*)$`. A line that does not match is a parse error.",
        ),
        OptionSpec::new(
            "regex_types",
            OptionKind::Table,
            Some("{}"),
            "Types of captures: `{ status = \"uint64\", at = \"timestamp\" }`. One of \
             string, int64, uint64, float64, boolean, `timestamp` (RFC 3339: \
             `2003-10-11T22:14:15.003Z`, an offset required) or `timestamp:<chrono format>` \
             (`timestamp:%d/%b/%Y:%H:%M:%S %z`; no offset in the format means UTC, no year \
             means the latest year at most 31 days after the line's read time, no time of day \
             means midnight). Timestamps are UTC milliseconds, usable as the source's \
             `timestamp`. Unlisted captures are strings. A value that does not parse is a \
             parse error; an unmatched optional group, an empty value and `-` are null.",
        ),
        OnError::option(
            OnError::Skip,
            "A line the parser cannot read (not a JSON object, no regex match, a bad typed \
             value or a time not in its format): `skip` drops and counts it, `dead_letter` \
             sends it to the source's dead-letter topic with the error, `fail` stops the \
             source naming file and line.",
        ),
        OptionSpec::new(
            "max_open_files",
            OptionKind::Integer,
            Some("256"),
            "The most file handles held at once. Idle files beyond it are closed and \
             reopened (by path, checking their identity) when they grow; a deleted file \
             being drained keeps its handle.",
        ),
        OptionSpec::new(
            "rotate_wait_ms",
            OptionKind::Integer,
            Some("3000"),
            "A file no longer matched by the globs (renamed away, deleted while open) is \
             read to its end, then released once it has not grown for this long, and its \
             checkpoint is forgotten.",
        ),
        OptionSpec::new(
            "copy_wait_ms",
            OptionKind::Integer,
            Some("2000"),
            "A copy of a file still being read (copytruncate) waits unread until the \
             original is truncated or gone, at most this long after it last grew; a new \
             file starting like a tracked one but too short to tell waits this long too. \
             A copy is read from where the original's reading stopped, so copytruncate \
             neither repeats nor loses what was read.",
        ),
        OptionSpec::new(
            "max_batch_lines",
            OptionKind::Integer,
            Some("4096"),
            "The most lines per batch.",
        ),
        OptionSpec::new(
            "host",
            OptionKind::String,
            None,
            "Value of the `host` column; defaults to the kernel's host name.",
        ),
        OptionSpec::new(
            "inotify",
            OptionKind::Boolean,
            Some("true"),
            "Use inotify to notice changes at once; `false` relies on polling \
             (`glob_interval_ms`, and open files every 100 ms).",
        ),
    ]
}

impl Config {
    /// Checks every option and reports every problem at once.
    pub fn from_json(value: &Value) -> Result<Config, Vec<ConfigIssue>> {
        let (checked, declared) = Options::check(&options(), value);
        Options::merge(declared, Config::from_options(&checked))
    }

    /// Reads options already checked against [`options`] (names, types,
    /// choices), defaults applied; checks what a declaration cannot.
    pub fn from_options(options: &Options) -> Result<Config, Vec<ConfigIssue>> {
        let obj = options.as_map();
        let mut issues = Vec::new();

        let include = patterns(obj, "include", &mut issues);
        if obj.get("include").is_none() {
            issues.push(ConfigIssue::key(
                "include",
                "required: a list of glob patterns such as [\"/var/log/app/*.log\"]",
            ));
        } else if include.is_empty() && issues.iter().all(|i| i.key.as_deref() != Some("include")) {
            issues.push(ConfigIssue::key(
                "include",
                "must list at least one glob pattern",
            ));
        }
        let exclude = patterns(obj, "exclude", &mut issues);

        let read_from = match choice(obj, "read_from", &["beginning", "end"], &mut issues) {
            Some("end") => ReadFrom::End,
            _ => ReadFrom::Beginning,
        };
        let line_overflow = match choice(obj, "line_overflow", &["truncate", "skip"], &mut issues) {
            Some("skip") => Overflow::Skip,
            _ => Overflow::Truncate,
        };
        let on_error = OnError::from_options(options, OnError::Skip).unwrap_or_else(|issue| {
            issues.push(issue);
            OnError::Skip
        });

        let glob_interval_ms = int(obj, "glob_interval_ms", 1000, 10, 3_600_000, &mut issues);
        let fingerprint_bytes = int(
            obj,
            "fingerprint_bytes",
            256,
            1,
            u64::from(MAX_FINGERPRINT_BYTES),
            &mut issues,
        );
        let max_line_bytes = int(obj, "max_line_bytes", 102_400, 16, 1 << 30, &mut issues);
        let partial_line_timeout_ms = int(
            obj,
            "partial_line_timeout_ms",
            0,
            0,
            86_400_000,
            &mut issues,
        );
        let multiline_timeout_ms = int(
            obj,
            "multiline_timeout_ms",
            1000,
            1,
            86_400_000,
            &mut issues,
        );
        let max_open_files = int(obj, "max_open_files", 256, 1, 1 << 20, &mut issues);
        let rotate_wait_ms = int(obj, "rotate_wait_ms", 3000, 0, 86_400_000, &mut issues);
        let copy_wait_ms = int(obj, "copy_wait_ms", 2000, 0, 86_400_000, &mut issues);
        let max_batch_lines = int(obj, "max_batch_lines", 4096, 1, 1_000_000, &mut issues);

        let start = regex_opt(obj, "multiline_start", &mut issues);
        let cont = regex_opt(obj, "multiline_continue", &mut issues);
        let multiline = match (start, cont) {
            (Some(_), Some(_)) => {
                issues.push(ConfigIssue::key(
                    "multiline_continue",
                    "set either `multiline_start` or `multiline_continue`, not both",
                ));
                None
            }
            (Some(r), None) => Some(Multiline::Start(r)),
            (None, Some(r)) => Some(Multiline::Continue(r)),
            (None, None) => None,
        };

        let host = match obj.get("host") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                issues.push(ConfigIssue::key(
                    "host",
                    format!("expected a non-empty string, got {other}"),
                ));
                None
            }
        };
        let inotify = match obj.get("inotify") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                issues.push(ConfigIssue::key(
                    "inotify",
                    format!("expected true or false, got {other}"),
                ));
                true
            }
        };

        let parser = parser(obj, &mut issues);

        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Config {
            include,
            exclude,
            read_from,
            glob_interval_ms,
            fingerprint_bytes: usize::try_from(fingerprint_bytes).unwrap_or(256),
            max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(102_400),
            line_overflow,
            partial_line_timeout_ms,
            multiline,
            multiline_timeout_ms,
            parser,
            on_error,
            max_open_files: usize::try_from(max_open_files).unwrap_or(256),
            rotate_wait_ms,
            copy_wait_ms,
            max_batch_lines: usize::try_from(max_batch_lines).unwrap_or(4096),
            host,
            inotify,
        })
    }
}

fn patterns(
    obj: &Map<String, Value>,
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<glob::Pattern> {
    let Some(value) = obj.get(key) else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        issues.push(ConfigIssue::key(
            key,
            format!("expected an array of glob patterns, got {value}"),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if s.starts_with('/') => match glob::Pattern::new(s) {
                Ok(p) => out.push(p),
                Err(e) => issues.push(ConfigIssue::key(
                    key,
                    format!("element {}: `{s}` is not a valid glob: {e}", i + 1),
                )),
            },
            Value::String(s) => issues.push(ConfigIssue::key(
                key,
                format!("element {}: `{s}` must be an absolute path pattern", i + 1),
            )),
            other => issues.push(ConfigIssue::key(
                key,
                format!("element {}: expected a string, got {other}", i + 1),
            )),
        }
    }
    out
}

fn choice<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    allowed: &[&str],
    issues: &mut Vec<ConfigIssue>,
) -> Option<&'a str> {
    match obj.get(key)? {
        Value::String(s) if allowed.contains(&s.as_str()) => Some(s.as_str()),
        other => {
            issues.push(ConfigIssue::key(
                key,
                format!("expected one of {}, got {other}", allowed.join(", ")),
            ));
            None
        }
    }
}

fn int(
    obj: &Map<String, Value>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
    issues: &mut Vec<ConfigIssue>,
) -> u64 {
    match obj.get(key) {
        None => default,
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => n,
            _ => {
                issues.push(ConfigIssue::key(
                    key,
                    format!("expected an integer from {min} to {max}, got {v}"),
                ));
                default
            }
        },
    }
}

fn regex_opt(obj: &Map<String, Value>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Regex> {
    match obj.get(key)? {
        Value::String(s) => match Regex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                issues.push(ConfigIssue::key(key, format!("not a valid regex: {e}")));
                None
            }
        },
        other => {
            issues.push(ConfigIssue::key(
                key,
                format!("expected a regex string, got {other}"),
            ));
            None
        }
    }
}

fn parser(obj: &Map<String, Value>, issues: &mut Vec<ConfigIssue>) -> Parser {
    let name = choice(obj, "parser", &Parser::NAMES, issues).unwrap_or("raw");
    let mut types = BTreeMap::new();
    match obj.get("regex_types") {
        None => {}
        Some(Value::Object(map)) => {
            for (capture, ty) in map {
                let parsed = match ty.as_str() {
                    Some(name) => ColumnType::parse(name),
                    None => Err(format!(
                        "expected one of {}, got {ty}",
                        ColumnType::SPELLINGS
                    )),
                };
                match parsed {
                    Ok(t) => {
                        types.insert(capture.clone(), t);
                    }
                    Err(e) => {
                        issues.push(ConfigIssue::key("regex_types", format!("`{capture}`: {e}")))
                    }
                }
            }
        }
        Some(other) => issues.push(ConfigIssue::key(
            "regex_types",
            format!("expected a table of capture = type, got {other}"),
        )),
    }
    let regex = regex_opt(obj, "regex", issues);
    if name != "regex" && regex.is_some() {
        issues.push(ConfigIssue::key(
            "regex",
            "only used with parser = \"regex\"",
        ));
    }
    if name != "regex" && !types.is_empty() {
        issues.push(ConfigIssue::key(
            "regex_types",
            "only used with parser = \"regex\"",
        ));
    }
    match Parser::build(name, regex, types) {
        Ok(p) => p,
        Err(issue) => {
            issues.push(issue);
            Parser::Raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_need_only_include() {
        let c = Config::from_json(&json!({"include": ["/var/log/*.log"]})).unwrap();
        assert_eq!(c.read_from, ReadFrom::Beginning);
        assert_eq!(c.max_line_bytes, 102_400);
        assert_eq!(c.on_error, OnError::Skip);
        assert!(c.multiline.is_none());
        assert!(matches!(c.parser, Parser::Raw));
    }

    #[test]
    fn every_bad_option_is_reported_with_its_key() {
        let issues = Config::from_json(&json!({
            "include": ["relative/*.log", 5],
            "read_from": "middle",
            "max_line_bytes": 2,
            "multiline_start": "(",
            "parser": "regex",
            "regex_types": {"n": "complex"},
            "colour": 1,
        }))
        .unwrap_err();
        let keys: Vec<&str> = issues.iter().filter_map(|i| i.key.as_deref()).collect();
        for k in [
            "colour",
            "include",
            "read_from",
            "max_line_bytes",
            "multiline_start",
            "regex_types",
            "regex",
        ] {
            assert!(keys.contains(&k), "{k} missing from {issues:?}");
        }
    }

    #[test]
    fn timestamp_regex_types_are_checked_when_the_config_is_read() {
        let config = |types: serde_json::Value| {
            Config::from_json(&json!({
                "include": ["/var/log/*.log"],
                "parser": "regex",
                "regex": "^(?P<at>\\S+) (?P<msg>.*)$",
                "regex_types": types,
            }))
        };
        assert!(config(json!({"at": "timestamp"})).is_ok());
        assert!(config(json!({"at": "timestamp:%Y-%m-%dT%H:%M:%S"})).is_ok());
        for bad in ["timestamp:%Y-%m-%Q", "timestamp:%H:%M", "time"] {
            let issues = config(json!({ "at": bad })).unwrap_err();
            assert_eq!(issues[0].key.as_deref(), Some("regex_types"), "{bad}");
            assert!(issues[0].message.contains("`at`"), "{bad}: {issues:?}");
        }
    }

    #[test]
    fn include_is_required() {
        let issues = Config::from_json(&json!({})).unwrap_err();
        assert_eq!(issues[0].key.as_deref(), Some("include"));
    }
}
