//! Lines to columns: the standard columns every row has, plus what the
//! parser finds (`raw`, `json`, `regex` and built-in regexes).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use regex::Regex;
use serde_json::Value;
use tributary_plugin_sdk::ConfigIssue;
use tributary_plugin_sdk::bad_rows::GoodRows;

use crate::time::{self, TimeFormat};

/// Names of the columns every row has, in order.
pub mod column {
    /// The line (or joined multiline event), invalid UTF-8 replaced.
    pub const LINE: &str = "line";
    /// The path the file had when read.
    pub const FILE: &str = "file";
    /// The host name.
    pub const HOST: &str = "host";
    /// When the line was read (UTC milliseconds).
    pub const READ_TIME: &str = "read_time";
    /// Byte offset of the line's start in its file.
    pub const OFFSET: &str = "offset";
    /// All of them.
    pub const ALL: [&str; 5] = [LINE, FILE, HOST, READ_TIME, OFFSET];
}

/// The zone written on timestamp columns, parsed and standard alike: every
/// time is converted to UTC.
const UTC: &str = "UTC";

/// The type of a parsed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 64-bit integer.
    UInt64,
    /// 64-bit float.
    Float64,
    /// `true` or `false`.
    Boolean,
    /// A point in time, in UTC milliseconds like `read_time`, so that the
    /// daemon's `timestamp` setting can take either.
    Timestamp(TimeFormat),
}

impl ColumnType {
    /// The accepted `regex_types` values, for messages.
    pub const SPELLINGS: &'static str = "string, int64, uint64, float64, boolean, timestamp \
         (RFC 3339), timestamp:<chrono format such as %Y-%m-%d %H:%M:%S>";

    /// Parses a `regex_types` value, or says why it is not one.
    pub fn parse(name: &str) -> Result<ColumnType, String> {
        Ok(match name {
            "string" => ColumnType::String,
            "int64" => ColumnType::Int64,
            "uint64" => ColumnType::UInt64,
            "float64" => ColumnType::Float64,
            "boolean" => ColumnType::Boolean,
            "timestamp" => ColumnType::Timestamp(TimeFormat::Rfc3339),
            _ => {
                // `timestamp(...)` is how the tables plugin spells it.
                let pattern = name.strip_prefix("timestamp:").or_else(|| {
                    name.strip_prefix("timestamp(")
                        .and_then(|r| r.strip_suffix(')'))
                });
                return match pattern {
                    Some(p) => TimeFormat::pattern(p).map(ColumnType::Timestamp),
                    None => Err(format!(
                        "unknown type `{name}`; expected one of {}",
                        ColumnType::SPELLINGS
                    )),
                };
            }
        })
    }

    /// A timestamp column of a built-in format, checked by the tests.
    fn time_pattern(pattern: &str) -> Result<ColumnType, ConfigIssue> {
        TimeFormat::pattern(pattern)
            .map(ColumnType::Timestamp)
            .map_err(|e| ConfigIssue::key("parser", format!("built-in time format: {e}")))
    }

    fn arrow(&self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::UInt64 => DataType::UInt64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Timestamp(_) => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
            }
        }
    }
}

/// One parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Absent.
    Null,
    /// Text.
    Str(String),
    /// A negative integer (or any, from a typed capture).
    I64(i64),
    /// A non-negative integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A point in time: milliseconds since the epoch, UTC.
    Millis(i64),
}

/// How lines become columns.
#[derive(Debug, Clone)]
pub enum Parser {
    /// Only the standard columns.
    Raw,
    /// Top-level keys of a JSON object.
    Json,
    /// Named captures, with their types and output names.
    Regex {
        /// The pattern.
        regex: Regex,
        /// `(capture name, output column name, type)`, in pattern order.
        captures: Vec<(String, String, ColumnType)>,
    },
}

const SYSLOG_RFC3164: &str = r"^(?:<(?P<pri>\d{1,3})>)?(?P<timestamp>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) (?P<hostname>\S+) (?P<appname>[^:\[\s]+)(?:\[(?P<procid>[^\]]*)\])?: ?(?P<message>.*)$";
const SYSLOG_RFC5424: &str = r"^<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?P<timestamp>\S+) (?P<hostname>\S+) (?P<appname>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<structured_data>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?(?P<message>.*)$";
/// The BSD syslog time, `Oct 11 22:14:15`: no year, no zone.
const SYSLOG_RFC3164_TIME: &str = "%b %e %H:%M:%S";
/// The web servers' `$time_local` / `%t`, `10/Oct/2000:13:55:36 -0700`.
const COMBINED_TIME: &str = "%d/%b/%Y:%H:%M:%S %z";
const COMBINED: &str = r#"^(?P<remote_addr>\S+) (?P<ident>\S+) (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\d+|-) "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)""#;

impl Parser {
    /// The accepted `parser` names.
    pub const NAMES: [&'static str; 7] = [
        "raw",
        "json",
        "regex",
        "syslog_rfc3164",
        "syslog_rfc5424",
        "nginx_combined",
        "apache_combined",
    ];

    /// Builds a parser from its checked name and options.
    pub fn build(
        name: &str,
        regex: Option<Regex>,
        types: BTreeMap<String, ColumnType>,
    ) -> Result<Parser, ConfigIssue> {
        let preset = |pattern: &str, typed: Vec<(&str, ColumnType)>| {
            let types = typed.into_iter().map(|(k, t)| (k.to_owned(), t)).collect();
            // The built-in patterns are constants checked by the tests.
            Regex::new(pattern)
                .map_err(|e| ConfigIssue::key("parser", format!("built-in pattern: {e}")))
                .and_then(|r| Parser::from_regex(r, &types))
        };
        match name {
            "raw" => Ok(Parser::Raw),
            "json" => Ok(Parser::Json),
            "regex" => match regex {
                Some(r) => Parser::from_regex(r, &types),
                None => Err(ConfigIssue::key(
                    "regex",
                    "required with parser = \"regex\": a pattern with named captures",
                )),
            },
            "syslog_rfc3164" => preset(
                SYSLOG_RFC3164,
                vec![
                    ("pri", ColumnType::UInt64),
                    ("timestamp", ColumnType::time_pattern(SYSLOG_RFC3164_TIME)?),
                ],
            ),
            "syslog_rfc5424" => preset(
                SYSLOG_RFC5424,
                vec![
                    ("pri", ColumnType::UInt64),
                    ("version", ColumnType::UInt64),
                    ("timestamp", ColumnType::Timestamp(TimeFormat::Rfc3339)),
                ],
            ),
            "nginx_combined" | "apache_combined" => preset(
                COMBINED,
                vec![
                    ("time_local", ColumnType::time_pattern(COMBINED_TIME)?),
                    ("status", ColumnType::UInt64),
                    ("body_bytes_sent", ColumnType::UInt64),
                ],
            ),
            other => Err(ConfigIssue::key(
                "parser",
                format!(
                    "unknown parser `{other}`; expected one of {}",
                    Parser::NAMES.join(", ")
                ),
            )),
        }
    }

    fn from_regex(
        regex: Regex,
        types: &BTreeMap<String, ColumnType>,
    ) -> Result<Parser, ConfigIssue> {
        let names: Vec<String> = regex.capture_names().flatten().map(str::to_owned).collect();
        if names.is_empty() {
            return Err(ConfigIssue::key(
                "regex",
                "has no named captures (?P<name>...): nothing would become a column",
            ));
        }
        if let Some(unknown) = types.keys().find(|k| !names.contains(k)) {
            return Err(ConfigIssue::key(
                "regex_types",
                format!(
                    "`{unknown}` is not a named capture of the regex (captures: {})",
                    names.join(", ")
                ),
            ));
        }
        let captures = names
            .into_iter()
            .map(|n| {
                let t = types.get(&n).cloned().unwrap_or(ColumnType::String);
                let out = output_name(&n);
                (n, out, t)
            })
            .collect();
        Ok(Parser::Regex { regex, captures })
    }

    /// [`Parser::parse_at`] for a line read now.
    pub fn parse(&self, text: &str) -> Result<Vec<(String, Cell)>, (&'static str, String)> {
        self.parse_at(text, time::now_ms())
    }

    /// Parses one line read at `read_time_ms` (which dates a time written
    /// without a year) into `(column, cell)` pairs, or says why it cannot.
    /// The error is `(class, message)`; the class is a short fixed word.
    pub fn parse_at(
        &self,
        text: &str,
        read_time_ms: i64,
    ) -> Result<Vec<(String, Cell)>, (&'static str, String)> {
        match self {
            Parser::Raw => Ok(Vec::new()),
            Parser::Json => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(map
                    .into_iter()
                    .map(|(k, v)| (output_name(&k), json_cell(v)))
                    .collect()),
                Ok(other) => Err((
                    "invalid_json",
                    format!("expected a JSON object, found {}", json_kind(&other)),
                )),
                Err(e) => Err(("invalid_json", format!("not JSON: {e}"))),
            },
            Parser::Regex { regex, captures } => {
                let Some(caps) = regex.captures(text) else {
                    return Err(("no_match", format!("does not match `{}`", regex.as_str())));
                };
                let mut out = Vec::with_capacity(captures.len());
                for (name, column, ty) in captures {
                    let cell = match caps.name(name).map(|m| m.as_str()) {
                        None => Cell::Null,
                        Some(s) => typed_cell(s, ty, read_time_ms).map_err(|expected| {
                            let named = if name == column {
                                format!("column `{column}`")
                            } else {
                                format!("column `{column}` (capture `{name}`)")
                            };
                            ("parse_error", format!("{named}: `{s}` is not {expected}"))
                        })?,
                    };
                    out.push((column.clone(), cell));
                }
                Ok(out)
            }
        }
    }

    /// The parsed columns' types when they are fixed (regex parsers).
    fn fixed_columns(&self) -> Option<Vec<(String, ColumnType)>> {
        match self {
            Parser::Regex { captures, .. } => Some(
                captures
                    .iter()
                    .map(|(_, out, t)| (out.clone(), t.clone()))
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// A parsed name that would hide a standard column gets a prefix.
fn output_name(name: &str) -> String {
    if column::ALL.contains(&name) {
        format!("parsed_{name}")
    } else {
        name.to_owned()
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_cell(v: Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Cell::U64(u)
            } else if let Some(i) = n.as_i64() {
                Cell::I64(i)
            } else {
                n.as_f64().map_or(Cell::Null, Cell::F64)
            }
        }
        Value::String(s) => Cell::Str(s),
        nested => Cell::Str(nested.to_string()),
    }
}

/// A capture as its declared type, or what it should have been; `-` and
/// empty are null for non-strings (the web formats write `-` for "none",
/// and so does RFC 5424 for an unknown time).
fn typed_cell(s: &str, ty: &ColumnType, read_time_ms: i64) -> Result<Cell, String> {
    if *ty != ColumnType::String && (s.is_empty() || s == "-") {
        return Ok(Cell::Null);
    }
    match ty {
        ColumnType::String => Ok(Cell::Str(s.to_owned())),
        ColumnType::Int64 => s
            .parse()
            .map(Cell::I64)
            .map_err(|_| "a 64-bit integer".to_owned()),
        ColumnType::UInt64 => s
            .parse()
            .map(Cell::U64)
            .map_err(|_| "an unsigned 64-bit integer".to_owned()),
        ColumnType::Float64 => s.parse().map(Cell::F64).map_err(|_| "a number".to_owned()),
        ColumnType::Boolean => match s {
            "true" | "TRUE" | "True" => Ok(Cell::Bool(true)),
            "false" | "FALSE" | "False" => Ok(Cell::Bool(false)),
            _ => Err("true or false".to_owned()),
        },
        ColumnType::Timestamp(format) => format
            .read(s, read_time_ms)
            .map(Cell::Millis)
            .map_err(|reason| format!("{} ({reason})", format.expected())),
    }
}

/// One row ready for a batch.
#[derive(Debug, Clone)]
pub struct Row {
    /// The line as text.
    pub line: String,
    /// Byte offset of its start.
    pub offset: u64,
    /// Parsed columns.
    pub cells: Vec<(String, Cell)>,
}

fn standard_fields() -> Vec<Field> {
    vec![
        Field::new(column::LINE, DataType::Utf8, false),
        Field::new(column::FILE, DataType::Utf8, false),
        Field::new(column::HOST, DataType::Utf8, false),
        Field::new(
            column::READ_TIME,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(column::OFFSET, DataType::UInt64, false),
    ]
}

/// The schema of a batch without parsed columns (and of the empty batches
/// that only move a checkpoint).
pub fn standard_schema() -> Arc<Schema> {
    Arc::new(Schema::new(standard_fields()))
}

/// Builds the batch of `rows` read from `file`.
pub fn build_batch(
    parser: &Parser,
    rows: &[Row],
    file: &str,
    host: &str,
    read_time_ms: i64,
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut fields: Vec<Field> = standard_fields();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.line.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(file, n))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(host, n))),
        Arc::new(TimestampMillisecondArray::from(vec![read_time_ms; n]).with_timezone(UTC)),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.offset))),
    ];
    let fixed = parser.fixed_columns();
    let by_position = fixed.is_some();
    let parsed = fixed.unwrap_or_else(|| infer_columns(rows));
    for (index, (name, ty)) in parsed.iter().enumerate() {
        fields.push(Field::new(name, ty.arrow(), true));
        columns.push(column_of(rows, ty, |r| {
            cell_of(r, index, name, by_position)
        }));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// The good lines of one file being gathered, with what every row of their
/// batch carries: the good rows of a bad-row
/// [`Assembly`](tributary_plugin_sdk::bad_rows::Assembly).
#[derive(Debug)]
pub struct GoodLines<'a> {
    rows: Vec<Row>,
    parser: &'a Parser,
    file: &'a str,
    host: &'a str,
    read_time_ms: i64,
}

impl<'a> GoodLines<'a> {
    /// No lines yet; their batch will name `file` and `host`.
    pub fn new(parser: &'a Parser, file: &'a str, host: &'a str, read_time_ms: i64) -> Self {
        GoodLines {
            rows: Vec::new(),
            parser,
            file,
            host,
            read_time_ms,
        }
    }

    /// Adds a line.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }
}

impl GoodRows for GoodLines<'_> {
    type Out = RecordBatch;
    type Error = ArrowError;

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        build_batch(self.parser, &rows, self.file, self.host, self.read_time_ms)
    }
}

/// Regex rows hold their cells in column order; JSON rows by name.
fn cell_of<'a>(row: &'a Row, index: usize, name: &str, by_position: bool) -> Option<&'a Cell> {
    if by_position {
        row.cells.get(index).map(|(_, c)| c)
    } else {
        row.cells.iter().find(|(k, _)| k == name).map(|(_, c)| c)
    }
}

/// JSON columns in first-seen order, each typed by every value it holds:
/// unsigned if all are, signed if all are integers, float if all are
/// numbers, boolean if all are; text otherwise.
fn infer_columns(rows: &[Row]) -> Vec<(String, ColumnType)> {
    let mut order: Vec<String> = Vec::new();
    let mut kinds: BTreeMap<String, (bool, bool, bool, bool, bool)> = BTreeMap::new();
    for row in rows {
        for (name, cell) in &row.cells {
            let k = kinds.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                (false, false, false, false, false)
            });
            match cell {
                Cell::Null => {}
                Cell::U64(_) => k.0 = true,
                Cell::I64(_) => k.1 = true,
                Cell::F64(_) => k.2 = true,
                Cell::Bool(_) => k.3 = true,
                // JSON values are never times; one would be text.
                Cell::Str(_) | Cell::Millis(_) => k.4 = true,
            }
        }
    }
    order
        .into_iter()
        .map(|name| {
            let (u, i, f, b, s) = kinds.get(&name).copied().unwrap_or_default();
            let ty = if s || (b && (u || i || f)) {
                ColumnType::String
            } else if b {
                ColumnType::Boolean
            } else if f {
                ColumnType::Float64
            } else if i {
                ColumnType::Int64
            } else if u {
                ColumnType::UInt64
            } else {
                ColumnType::String
            };
            (name, ty)
        })
        .collect()
}

fn column_of<'a>(
    rows: &'a [Row],
    ty: &ColumnType,
    cell_of: impl Fn(&'a Row) -> Option<&'a Cell>,
) -> ArrayRef {
    match ty {
        ColumnType::String => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
            for r in rows {
                match cell_of(r) {
                    None | Some(Cell::Null) => b.append_null(),
                    Some(Cell::Str(s)) => b.append_value(s),
                    Some(Cell::U64(v)) => b.append_value(v.to_string()),
                    Some(Cell::I64(v)) => b.append_value(v.to_string()),
                    Some(Cell::F64(v)) => b.append_value(v.to_string()),
                    Some(Cell::Bool(v)) => b.append_value(v.to_string()),
                    Some(Cell::Millis(v)) => b.append_value(time::rfc3339(*v)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::UInt64 => {
            let mut b = UInt64Builder::with_capacity(rows.len());
            for r in rows {
                match cell_of(r) {
                    Some(Cell::U64(v)) => b.append_value(*v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for r in rows {
                match cell_of(r) {
                    Some(Cell::I64(v)) => b.append_value(*v),
                    Some(Cell::U64(v)) => b.append_option(i64::try_from(*v).ok()),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float64 => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for r in rows {
                match cell_of(r) {
                    Some(Cell::F64(v)) => b.append_value(*v),
                    Some(Cell::U64(v)) => b.append_value(*v as f64),
                    Some(Cell::I64(v)) => b.append_value(*v as f64),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for r in rows {
                match cell_of(r) {
                    Some(Cell::Bool(v)) => b.append_value(*v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Timestamp(_) => {
            let mut b = TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone(UTC);
            for r in rows {
                match cell_of(r) {
                    Some(Cell::Millis(v)) => b.append_value(*v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType, UInt64Type};

    fn row(p: &Parser, line: &str) -> Row {
        Row {
            line: line.into(),
            offset: 0,
            cells: p.parse(line).unwrap(),
        }
    }

    #[test]
    fn json_lines_become_typed_columns() {
        let p = Parser::Json;
        let rows = vec![
            row(
                &p,
                r#"{"seq": 1, "n": -2, "x": 1.5, "ok": true, "m": "a", "line": "l", "o": {"k": 1}}"#,
            ),
            row(&p, r#"{"seq": 2, "n": 3, "x": 2, "m": 4}"#),
        ];
        let b = build_batch(&p, &rows, "/f", "h", 5).unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        assert_eq!(col("seq").as_primitive::<UInt64Type>().values(), &[1, 2]);
        assert_eq!(col("n").as_primitive::<Int64Type>().values(), &[-2, 3]);
        assert_eq!(col("x").as_primitive::<Float64Type>().values(), &[1.5, 2.0]);
        assert!(col("ok").as_boolean().value(0));
        assert!(col("ok").is_null(1));
        assert_eq!(col("m").as_string::<i32>().value(1), "4");
        assert_eq!(col("parsed_line").as_string::<i32>().value(0), "l");
        assert_eq!(col("o").as_string::<i32>().value(0), r#"{"k":1}"#);
        assert_eq!(col("line").as_string::<i32>().value(1), rows[1].line);
        assert_eq!(col("file").as_string::<i32>().value(0), "/f");
    }

    #[test]
    fn json_errors_are_classified() {
        assert_eq!(Parser::Json.parse("[1]").unwrap_err().0, "invalid_json");
        assert_eq!(Parser::Json.parse("{oops").unwrap_err().0, "invalid_json");
    }

    #[test]
    fn regex_captures_are_typed_and_bad_values_are_errors() {
        let types = BTreeMap::from([("n".to_owned(), ColumnType::UInt64)]);
        let p = Parser::build(
            "regex",
            Some(Regex::new(r"^(?P<level>\w+) n=(?P<n>\S+)(?: (?P<rest>.*))?$").unwrap()),
            types,
        )
        .unwrap();
        let rows = vec![row(&p, "INFO n=5 hi"), row(&p, "WARN n=-")];
        let b = build_batch(&p, &rows, "/f", "h", 5).unwrap();
        assert_eq!(b.num_columns(), 8);
        let n = b.column_by_name("n").unwrap().as_primitive::<UInt64Type>();
        assert_eq!(n.value(0), 5);
        assert!(n.is_null(1));
        assert!(b.column_by_name("rest").unwrap().is_null(1));
        assert_eq!(p.parse("INFO n=x").unwrap_err().0, "parse_error");
        assert_eq!(p.parse("nothing").unwrap_err().0, "no_match");
    }

    #[test]
    fn built_in_formats_parse_their_examples() {
        let none = BTreeMap::new;
        let nginx = Parser::build("nginx_combined", None, none()).unwrap();
        let cells = nginx
            .parse(r#"127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/8.0""#)
            .unwrap();
        assert!(cells.contains(&("status".to_owned(), Cell::U64(200))));
        assert!(cells.contains(&("path".to_owned(), Cell::Str("/a?b=1".into()))));
        let s3164 = Parser::build("syslog_rfc3164", None, none()).unwrap();
        let cells = s3164
            .parse("<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed")
            .unwrap();
        assert!(cells.contains(&("pri".to_owned(), Cell::U64(34))));
        assert!(cells.contains(&("appname".to_owned(), Cell::Str("su".into()))));
        assert!(s3164.parse("Nov  1 02:03:04 host cron: ran").is_ok());
        let s5424 = Parser::build("syslog_rfc5424", None, none()).unwrap();
        let cells = s5424
            .parse(r#"<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#)
            .unwrap();
        assert!(cells.contains(&("msgid".to_owned(), Cell::Str("ID47".into()))));
        assert!(cells.contains(&(
            "message".to_owned(),
            Cell::Str("An application event".into())
        )));
    }

    /// The timestamp column `name` of `lines` parsed by the built-in
    /// `parser` and read at `read_time_ms`, checked to be UTC milliseconds.
    fn times(parser: &str, name: &str, lines: &[&str], read_time_ms: i64) -> Vec<Option<i64>> {
        let p = Parser::build(parser, None, BTreeMap::new()).unwrap();
        let rows: Vec<Row> = lines
            .iter()
            .map(|l| Row {
                line: (*l).into(),
                offset: 0,
                cells: p.parse_at(l, read_time_ms).unwrap(),
            })
            .collect();
        let b = build_batch(&p, &rows, "/f", "h", read_time_ms).unwrap();
        let col = b.column_by_name(name).unwrap();
        assert_eq!(
            col.data_type(),
            b.column_by_name(column::READ_TIME).unwrap().data_type(),
            "{parser} `{name}` is typed like read_time"
        );
        col.as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect()
    }

    #[test]
    fn web_time_local_is_a_utc_timestamp_with_the_line_offset_applied() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "-" "-""#;
        for parser in ["nginx_combined", "apache_combined"] {
            // 13:55:36 at UTC-7 is 20:55:36 UTC.
            assert_eq!(
                times(parser, "time_local", &[line], 0),
                [Some(971_211_336_000)]
            );
        }
    }

    #[test]
    fn rfc5424_timestamps_keep_fractions_and_offsets_and_nil_is_null() {
        let lines = [
            "<165>1 2003-10-11T22:14:15.003Z host app - ID47 - zulu",
            "<165>1 2003-10-11T22:14:15.003+02:00 host app - ID47 - plus two",
            "<165>1 - host app - ID47 - nil",
        ];
        assert_eq!(
            times("syslog_rfc5424", "timestamp", &lines, 0),
            [Some(1_065_910_455_003), Some(1_065_903_255_003), None]
        );
    }

    #[test]
    fn rfc3164_a_december_line_read_on_new_year_belongs_to_the_previous_year() {
        // Read at 2025-01-01T00:00:30Z.
        let read = 1_735_689_630_000;
        assert_eq!(
            times(
                "syslog_rfc3164",
                "timestamp",
                &["<34>Dec 31 23:59:59 host su: late"],
                read
            ),
            [Some(1_735_689_599_000)]
        );
        // The same line read a day earlier is from the same year.
        let read = read - 86_400_000;
        assert_eq!(
            times(
                "syslog_rfc3164",
                "timestamp",
                &["Dec 31 23:59:59 host su: late"],
                read
            ),
            [Some(1_735_689_599_000)]
        );
    }

    #[test]
    fn a_regex_timestamp_pattern_without_a_zone_is_utc() {
        let types = BTreeMap::from([(
            "t".to_owned(),
            ColumnType::parse("timestamp:%Y-%m-%d %H:%M:%S%.3f").unwrap(),
        )]);
        let p = Parser::build(
            "regex",
            Some(Regex::new(r"^(?P<t>\S+ \S+) (?P<msg>.*)$").unwrap()),
            types,
        )
        .unwrap();
        let rows = vec![row(&p, "2024-01-02 03:04:05.678 started")];
        let b = build_batch(&p, &rows, "/f", "h", 5).unwrap();
        let t = b.column_by_name("t").unwrap();
        assert_eq!(
            t.data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        assert_eq!(
            t.as_primitive::<TimestampMillisecondType>().value(0),
            1_704_164_645_678
        );
    }

    #[test]
    fn a_bad_time_is_a_parse_error_naming_column_text_and_format() {
        let nginx = Parser::build("nginx_combined", None, BTreeMap::new()).unwrap();
        let (class, message) = nginx
            .parse(r#"1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "-""#)
            .unwrap_err();
        assert_eq!(class, "parse_error");
        for part in [
            "column `time_local`",
            "`10/Foo/2000:13:55:36 -0700`",
            "`%d/%b/%Y:%H:%M:%S %z`",
        ] {
            assert!(message.contains(part), "{part} in {message}");
        }
        let s5424 = Parser::build("syslog_rfc5424", None, BTreeMap::new()).unwrap();
        let (class, message) = s5424
            .parse("<165>1 2003-10-11T22:14:15 host app - - - no offset")
            .unwrap_err();
        assert_eq!(class, "parse_error");
        assert!(message.contains("RFC 3339"), "{message}");
    }

    #[test]
    fn timestamp_types_parse_in_both_spellings_and_bad_formats_are_explained() {
        let colon = ColumnType::parse("timestamp:%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(ColumnType::parse("timestamp(%Y-%m-%d %H:%M:%S)"), Ok(colon));
        assert_eq!(
            ColumnType::parse("timestamp"),
            Ok(ColumnType::Timestamp(TimeFormat::Rfc3339))
        );
        assert!(
            ColumnType::parse("timestamp:%Q")
                .unwrap_err()
                .contains("%Q")
        );
        assert!(
            ColumnType::parse("date")
                .unwrap_err()
                .contains("timestamp:<chrono format")
        );
    }

    #[test]
    fn regex_without_captures_or_with_unknown_types_is_refused() {
        let e =
            Parser::build("regex", Some(Regex::new("x").unwrap()), BTreeMap::new()).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("regex"));
        let types = BTreeMap::from([("y".to_owned(), ColumnType::UInt64)]);
        let e = Parser::build("regex", Some(Regex::new("(?P<x>.)").unwrap()), types).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("regex_types"));
    }
}
