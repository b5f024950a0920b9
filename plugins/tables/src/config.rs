//! The options of the table sources: their declaration (what
//! `tributary plugins describe csv` shows) and the checks that turn the
//! host's JSON into a [`Config`].

use std::path::PathBuf;

use serde_json::{Map, Value};
use tributary_plugin_sdk::bad_rows::OnError;
use tributary_plugin_sdk::{ConfigIssue, LagUnit, OptionKind, OptionSpec, Options};

use crate::types::ColumnType;

/// The file formats, one source type each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Delimited text: CSV, TSV and friends.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC, file (Feather v2) or stream format.
    Arrow,
}

impl Format {
    /// Whether the format is text read line by line (typed by config or
    /// inference, may be gzip-compressed, has bad rows).
    pub fn is_text(self) -> bool {
        matches!(self, Format::Csv | Format::Ndjson)
    }

    /// What its readers' lag counts: bytes of a text file not yet read,
    /// rows of a columnar file (whose metadata counts them).
    pub const fn lag_unit(self) -> LagUnit {
        match self {
            Format::Csv | Format::Ndjson => LagUnit::Bytes,
            Format::Parquet | Format::Arrow => LagUnit::Rows,
        }
    }
}

/// How input files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip when the file starts with the gzip magic bytes.
    Auto,
    /// Never decompress.
    None,
    /// Always gzip.
    Gzip,
}

/// Where files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One file or a glob, read once (or watched for new matches).
    Path {
        /// The path or glob pattern.
        pattern: String,
        /// Keep looking for new matching files instead of finishing.
        watch: bool,
    },
    /// A spool directory.
    Spool(SpoolConfig),
}

/// The options of a spool directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The directory files are dropped into.
    pub dir: PathBuf,
    /// Glob on file names to pick up.
    pub pattern: glob::Pattern,
    /// How long size and modification time must stay unchanged.
    pub settle_ms: u64,
    /// When set, a file is complete once `<name><suffix>` exists.
    pub marker_suffix: Option<String>,
    /// Where read files go.
    pub finished_dir: PathBuf,
    /// Where unreadable files go, each with a `.reason` file.
    pub error_dir: PathBuf,
    /// How often the directory is listed.
    pub scan_interval_ms: u64,
}

/// CSV dialect options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvDialect {
    /// Field delimiter byte.
    pub delimiter: u8,
    /// Quote byte.
    pub quote: u8,
    /// Escape byte inside quotes; `None` means quotes are escaped by doubling.
    pub escape: Option<u8>,
    /// Lines starting with this byte are skipped.
    pub comment: Option<u8>,
    /// Whether the first row names the columns.
    pub has_header: bool,
    /// Column names when there is no header (or to replace it).
    pub column_names: Option<Vec<String>>,
    /// Cell texts read as null.
    pub null_values: Vec<String>,
}

/// Validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The format of every file.
    pub format: Format,
    /// Where files come from.
    pub input: Input,
    /// Most rows per batch.
    pub batch_rows: usize,
    /// The bad-row policy: under `fail` the source fails (a single file or
    /// glob), or the file goes to `error/` and the spool goes on with the
    /// next one.
    pub on_error: OnError,
    /// Explicit column types, by name.
    pub columns: Vec<(String, ColumnType)>,
    /// Rows sampled for type inference.
    pub infer_rows: usize,
    /// Which files of the input this unit reads.
    pub shard: Shard,
    /// Compression of text files.
    pub compression: Compression,
    /// CSV options (defaults for other formats).
    pub csv: CsvDialect,
}

/// The part of a split source's input one unit reads (`shard` of `shards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This unit's shard, from 0.
    pub index: u32,
    /// How many units share the input; 1 when the source is not split.
    pub count: u32,
}

impl Shard {
    /// Whether the file called `name` (its file name, the same on every
    /// host) is this unit's to read.
    pub fn owns(&self, name: &str) -> bool {
        self.count <= 1
            || tributary_plugin_sdk::shard::of(name.as_bytes(), self.count) == self.index
    }
}

/// The largest `batch_rows`.
pub const MAX_BATCH_ROWS: i64 = 1_000_000;
/// The largest `infer_rows`.
pub const MAX_INFER_ROWS: i64 = 1_000_000;

/// The options of a format, as `tributary plugins describe` shows them.
pub fn options(format: Format) -> Vec<OptionSpec> {
    let mut specs = vec![
        OptionSpec::new(
            "path",
            OptionKind::String,
            None,
            "A file or a glob (`/data/*.csv`) to read. Each file is read once: a file already \
             read (same content, whatever its name) is not read again. Set either `path` or \
             `spool_dir`.",
        ),
        OptionSpec::new(
            "watch",
            OptionKind::Boolean,
            Some("false"),
            "With `path`: keep looking for new matching files instead of finishing once every \
             match is read.",
        ),
        OptionSpec::new(
            "spool_dir",
            OptionKind::String,
            None,
            "A directory watched for complete files. Each is read, then moved to \
             `finished_dir` (or `error_dir` with a `<name>.reason` file) only once all its rows \
             are delivered and the checkpoint committed.",
        ),
        OptionSpec::new(
            "pattern",
            OptionKind::String,
            Some("\"*\""),
            "With `spool_dir`: glob on file names to pick up. Hidden files, marker files and \
             `.reason` files are never picked up.",
        ),
        OptionSpec::new(
            "settle_ms",
            OptionKind::Integer,
            Some("2000"),
            "With `spool_dir` and no `marker_suffix`: a file is complete once its size and \
             modification time stayed unchanged this long.",
        ),
        OptionSpec::new(
            "marker_suffix",
            OptionKind::String,
            None,
            "With `spool_dir`: a file is complete once a marker file `<name><suffix>` (e.g. \
             `.done`) exists; the marker is removed with the file.",
        ),
        OptionSpec::new(
            "finished_dir",
            OptionKind::String,
            None,
            "With `spool_dir`: where read files are moved; `<spool_dir>/finished` by default. \
             Same file system as the spool.",
        ),
        OptionSpec::new(
            "error_dir",
            OptionKind::String,
            None,
            "With `spool_dir`: where unreadable files are moved, each with `<name>.reason`; \
             `<spool_dir>/error` by default.",
        ),
        OptionSpec::new(
            "scan_interval_ms",
            OptionKind::Integer,
            Some("500"),
            "How often the spool directory (or a watched glob) is listed.",
        ),
        OptionSpec::new(
            "shard",
            OptionKind::Integer,
            Some("0"),
            "Set by the daemon when the source has `shards = N` (not written by hand): this \
             unit reads only the files whose name maps to shard `shard` of `shards` \
             (`tributary_plugin_sdk::shard::of`), so N units, on one daemon or spread over a \
             cluster, read one directory with each file read once.",
        ),
        OptionSpec::new(
            "shards",
            OptionKind::Integer,
            Some("1"),
            "Set by the daemon from the source's `shards`: how many units share the input.",
        ),
        OptionSpec::new(
            "batch_rows",
            OptionKind::Integer,
            Some("8192"),
            "Most rows per batch (1 to 1000000). Memory stays bounded by a few batches \
             whatever the file size.",
        ),
    ];
    if format.is_text() {
        specs.extend([
            OnError::option(
                OnError::Fail,
                "A row that cannot be read (ragged, a value that does not parse as its \
                 column's type, invalid UTF-8 or JSON): `fail` stops the source (in a spool, \
                 the file goes to `error_dir` and the next file is read); `skip` counts and \
                 logs it; `dead_letter` sends the raw row to the source's dead-letter topic.",
            ),
            OptionSpec::new(
                "columns",
                OptionKind::Table,
                None,
                "Column types by name, e.g. `{ id = \"int64\", at = \"timestamp(%Y-%m-%d \
                 %H:%M:%S)\", price = \"decimal(10,2)\" }`. Types: int64, float64, bool, \
                 string, timestamp, timestamp(<format>), decimal(p,s). Columns not listed are \
                 inferred from the first `infer_rows` rows.",
            ),
            OptionSpec::new(
                "infer_rows",
                OptionKind::Integer,
                Some("1000"),
                "Rows sampled at the start of each file to infer the types of columns not in \
                 `columns` (bool, int64, float64, timestamp, else string). A column gets a \
                 type only if every sampled value is written exactly as that type would be \
                 sent (`00501`, `+5`, `1e3`, `19.90`, `TRUE` keep a column a string); a later \
                 value the type would change is a bad row. 0 reads every unlisted column as \
                 string.",
            ),
            OptionSpec::new(
                "compression",
                OptionKind::String,
                Some("\"auto\""),
                "`auto` decompresses gzip files (recognised by their first bytes), `gzip` \
                 requires it, `none` never decompresses.",
            )
            .one_of(&["auto", "none", "gzip"]),
        ]);
    }
    if format == Format::Csv {
        specs.extend([
            OptionSpec::new(
                "delimiter",
                OptionKind::String,
                Some("\",\""),
                "The field delimiter, one ASCII character; \"\\t\" for TSV.",
            ),
            OptionSpec::new(
                "quote",
                OptionKind::String,
                Some("\"\\\"\""),
                "The quote character, one ASCII character.",
            ),
            OptionSpec::new(
                "escape",
                OptionKind::String,
                None,
                "The escape character inside quoted fields (e.g. \"\\\\\"); without it a \
                 quote inside quotes is written twice.",
            ),
            OptionSpec::new(
                "comment",
                OptionKind::String,
                None,
                "Lines starting with this ASCII character are skipped.",
            ),
            OptionSpec::new(
                "has_header",
                OptionKind::Boolean,
                Some("true"),
                "Whether the first row names the columns. Without a header, set \
                 `column_names`.",
            ),
            OptionSpec::new(
                "column_names",
                OptionKind::Array,
                None,
                "Column names, in file order: required without a header, and replaces the \
                 header's names when given with one.",
            ),
            OptionSpec::new(
                "null_values",
                OptionKind::Array,
                Some("[\"\"]"),
                "Cell texts read as null (an empty cell by default).",
            ),
        ]);
    }
    specs
}

impl Config {
    /// Checks the options of a source of `format`; every issue at once.
    pub fn from_json(format: Format, config: &Value) -> Result<Config, Vec<ConfigIssue>> {
        let (checked, declared) = Options::check(&options(format), config);
        Options::merge(declared, Config::from_options(format, &checked))
    }

    /// Reads options already checked against [`options`] (names, types,
    /// choices), defaults applied; checks what a declaration cannot.
    pub fn from_options(format: Format, options: &Options) -> Result<Config, Vec<ConfigIssue>> {
        let obj = options.as_map();
        let mut issues = Vec::new();
        let mut ctx = Ctx {
            obj,
            issues: &mut issues,
        };
        let path = ctx.string("path");
        let spool_dir = ctx.string("spool_dir");
        let watch = ctx.boolean("watch").unwrap_or(false);
        let pattern = ctx.string("pattern");
        let settle_ms = ctx.integer("settle_ms", 0, 86_400_000).unwrap_or(2000);
        let marker_suffix = ctx.string("marker_suffix");
        if marker_suffix.as_deref() == Some("") {
            ctx.issue("marker_suffix", "must not be empty");
        }
        let finished_dir = ctx.string("finished_dir");
        let error_dir = ctx.string("error_dir");
        let scan_interval_ms = ctx
            .integer("scan_interval_ms", 10, 3_600_000)
            .unwrap_or(500);
        let batch_rows = ctx.integer("batch_rows", 1, MAX_BATCH_ROWS).unwrap_or(8192);
        let shards = ctx.integer("shards", 1, 1024).unwrap_or(1) as u32;
        let shard = ctx.integer("shard", 0, 1023).unwrap_or(0) as u32;
        if shard >= shards {
            ctx.issue("shard", format!("must be below `shards` ({shards})"));
        }
        let infer_rows = ctx.integer("infer_rows", 0, MAX_INFER_ROWS).unwrap_or(1000);
        // Columnar formats do not declare it: they have no bad rows.
        let on_error = OnError::from_options(options, OnError::Fail).unwrap_or_else(|issue| {
            ctx.issues.push(issue);
            OnError::Fail
        });
        let compression = match ctx.string("compression").as_deref() {
            None | Some("auto") => Compression::Auto,
            Some("none") => Compression::None,
            Some("gzip") => Compression::Gzip,
            Some(_) => {
                ctx.issue("compression", "expected one of auto, none, gzip");
                Compression::Auto
            }
        };
        let columns = ctx.columns();
        let delimiter = ctx.ascii("delimiter").unwrap_or(b',');
        let quote = ctx.ascii("quote").unwrap_or(b'"');
        let escape = ctx.ascii("escape");
        let comment = ctx.ascii("comment");
        let has_header = ctx.boolean("has_header").unwrap_or(true);
        let column_names = ctx.strings("column_names");
        let null_values = ctx
            .strings("null_values")
            .unwrap_or_else(|| vec![String::new()]);
        if !has_header && column_names.is_none() && format == Format::Csv {
            ctx.issue(
                "column_names",
                "required when `has_header = false`: the columns need names",
            );
        }
        if let Some(names) = &column_names {
            let mut sorted: Vec<&String> = names.iter().collect();
            sorted.sort();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                ctx.issue("column_names", format!("the name `{}` appears twice", w[0]));
            }
        }
        if delimiter == quote {
            ctx.issue("quote", "must differ from `delimiter`");
        }

        let input = match (path, spool_dir) {
            (Some(_), Some(_)) => {
                ctx.issue("spool_dir", "set either `path` or `spool_dir`, not both");
                None
            }
            (None, None) => {
                issues_push_table(
                    ctx.issues,
                    "one of `path` (a file or glob) or `spool_dir` is required",
                );
                None
            }
            (Some(p), None) => {
                if p.is_empty() {
                    ctx.issue("path", "must not be empty");
                } else if let Err(e) = glob::Pattern::new(&p) {
                    ctx.issue("path", format!("invalid glob: {e}"));
                }
                for k in [
                    "pattern",
                    "settle_ms",
                    "marker_suffix",
                    "finished_dir",
                    "error_dir",
                ] {
                    if options.is_given(k) {
                        ctx.issue(k, "only applies with `spool_dir`");
                    }
                }
                Some(Input::Path { pattern: p, watch })
            }
            (None, Some(d)) => {
                if options.is_given("watch") {
                    ctx.issue(
                        "watch",
                        "only applies with `path`; a spool is always watched",
                    );
                }
                let dir = PathBuf::from(&d);
                if !dir.is_absolute() {
                    ctx.issue("spool_dir", "must be an absolute path");
                }
                let pattern = match glob::Pattern::new(pattern.as_deref().unwrap_or("*")) {
                    Ok(p) => p,
                    Err(e) => {
                        ctx.issue("pattern", format!("invalid glob: {e}"));
                        glob::Pattern::default()
                    }
                };
                Some(Input::Spool(SpoolConfig {
                    finished_dir: finished_dir.map_or_else(|| dir.join("finished"), PathBuf::from),
                    error_dir: error_dir.map_or_else(|| dir.join("error"), PathBuf::from),
                    dir,
                    pattern,
                    settle_ms,
                    marker_suffix,
                    scan_interval_ms,
                }))
            }
        };
        match input {
            Some(input) if issues.is_empty() => Ok(Config {
                format,
                input,
                batch_rows: batch_rows as usize,
                on_error,
                columns,
                infer_rows: infer_rows as usize,
                shard: Shard {
                    index: shard,
                    count: shards,
                },
                compression,
                csv: CsvDialect {
                    delimiter,
                    quote,
                    escape,
                    comment,
                    has_header,
                    column_names,
                    null_values,
                },
            }),
            _ => Err(issues),
        }
    }
}

fn issues_push_table(issues: &mut Vec<ConfigIssue>, message: &str) {
    issues.push(ConfigIssue {
        key: None,
        message: message.to_owned(),
    });
}

struct Ctx<'a> {
    obj: &'a Map<String, Value>,
    issues: &'a mut Vec<ConfigIssue>,
}

impl Ctx<'_> {
    fn issue(&mut self, key: &str, message: impl Into<String>) {
        self.issues.push(ConfigIssue::key(key, message));
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.obj.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.issue(key, "expected a string");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.obj.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.issue(key, "expected true or false");
                None
            }
        }
    }

    fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<u64> {
        let value = self.obj.get(key)?;
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n as u64),
            _ => {
                self.issue(key, format!("expected an integer from {min} to {max}"));
                None
            }
        }
    }

    fn ascii(&mut self, key: &str) -> Option<u8> {
        let s = self.string(key)?;
        match s.as_bytes() {
            [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Some(*b),
            _ => {
                self.issue(
                    key,
                    "expected exactly one ASCII character (not a line break)",
                );
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        let Value::Array(items) = self.obj.get(key)? else {
            self.issue(key, "expected an array of strings");
            return None;
        };
        let strings: Option<Vec<String>> = items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect();
        if strings.is_none() {
            self.issue(key, "expected an array of strings");
        }
        strings
    }

    fn columns(&mut self) -> Vec<(String, ColumnType)> {
        let Some(value) = self.obj.get("columns") else {
            return Vec::new();
        };
        let Value::Object(table) = value else {
            self.issue("columns", "expected a table of column name = \"type\"");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, ty) in table {
            let key = format!("columns.{name}");
            match ty.as_str().map(ColumnType::parse) {
                Some(Ok(t)) => out.push((name.clone(), t)),
                Some(Err(e)) => self.issue(&key, e),
                None => self.issue(
                    &key,
                    format!("expected a type name: {}", ColumnType::SPELLINGS),
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_and_spool_dirs() {
        let c = Config::from_json(Format::Csv, &json!({"spool_dir": "/in"})).unwrap();
        let Input::Spool(s) = &c.input else {
            panic!("{c:?}")
        };
        assert_eq!(s.finished_dir, PathBuf::from("/in/finished"));
        assert_eq!(s.error_dir, PathBuf::from("/in/error"));
        assert_eq!(s.settle_ms, 2000);
        assert_eq!(c.on_error, OnError::Fail);
        assert_eq!(c.csv.delimiter, b',');
        assert_eq!(c.csv.null_values, vec![String::new()]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let bad = json!({
            "path": "/a.csv",
            "settle_ms": 5,
            "delimiter": "ab",
            "on_error": "explode",
            "columns": {"id": "int32", "x": 5},
            "has_header": false,
            "batch_rows": 0,
        });
        let issues = Config::from_json(Format::Csv, &bad).unwrap_err();
        let keys: Vec<_> = issues.iter().filter_map(|i| i.key.as_deref()).collect();
        for k in [
            "settle_ms",
            "delimiter",
            "on_error",
            "columns.id",
            "columns.x",
            "column_names",
            "batch_rows",
        ] {
            assert!(keys.contains(&k), "{k} missing in {issues:?}");
        }
        let none = Config::from_json(Format::Csv, &json!({})).unwrap_err();
        assert!(none[0].message.contains("`spool_dir`"));
        let both = Config::from_json(Format::Parquet, &json!({"path": "/a", "spool_dir": "/b"}))
            .unwrap_err();
        assert_eq!(both[0].key.as_deref(), Some("spool_dir"));
        // CSV options are not options of Parquet.
        let csv_on_parquet =
            Config::from_json(Format::Parquet, &json!({"path": "/a", "delimiter": ";"}))
                .unwrap_err();
        assert_eq!(csv_on_parquet[0].key.as_deref(), Some("delimiter"));
    }
}
