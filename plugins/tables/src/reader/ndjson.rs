//! NDJSON: one JSON object per line. Columns are the keys of the sampled
//! lines in order of first appearance, plus any configured column; types
//! come from the config or from the JSON values (numbers stay numbers;
//! objects and arrays become their JSON text; strings stay strings unless
//! every one is a timestamp as the serializers write it back). Keys that
//! first appear after the sample are not columns of the file. A value
//! after the sample that its column's inferred type would change (a
//! string in a number column, a timestamp written another way) is a bad
//! row.

use std::borrow::Cow;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tributary_plugin_sdk::bad_rows::{Assembly, BadRow, Place, Policy, Verdict};

use super::{Chunk, ReadError, SCAN_LIMIT, TableReader, assembled, bad_cell, open_text_at};
use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::types::{
    BatchBuilder, Cell, CellError, ColumnType, Columns, Inference, Origin, parse_exact, parse_text,
    shorten,
};

/// An NDJSON file being read.
pub struct NdjsonReader {
    path: PathBuf,
    columns: Columns,
    input: Box<dyn BufRead + Send>,
    pos: Checkpoint,
    line: Vec<u8>,
    /// `line` holds a row read but not yet taken.
    pending: bool,
    policy: Policy,
    assembly: Assembly<BatchBuilder>,
    cells: Vec<Cell>,
    texts: Vec<String>,
    ended: bool,
    size: Option<u64>,
}

impl std::fmt::Debug for NdjsonReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonReader")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// Reads one line (with its terminator) into `buf`; the byte count, 0 at
/// the end.
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>, path: &Path) -> Result<u64, ReadError> {
    buf.clear();
    let n = input
        .read_until(b'\n', buf)
        .map_err(|e| super::io_error(path, &e))?;
    Ok(n as u64)
}

fn trimmed(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

impl NdjsonReader {
    /// Opens `path`, samples it for its columns and types, and positions at
    /// `resume`.
    pub fn open(
        path: &Path,
        config: &Config,
        resume: Checkpoint,
    ) -> Result<NdjsonReader, ReadError> {
        let mut sample = open_text_at(path, config.compression, 0)?;
        let data_start = sample.start;
        let mut names: Vec<String> = Vec::new();
        let mut inference: Vec<Inference> = Vec::new();
        let mut buf = Vec::new();
        let mut sampled = 0;
        while sampled < config.infer_rows {
            if read_line(sample.reader.as_mut(), &mut buf, path)? == 0 {
                break;
            }
            let text = trimmed(&buf);
            if text.is_empty() {
                continue;
            }
            sampled += 1;
            let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(text) else {
                continue;
            };
            for (key, value) in &obj {
                let i = match names.iter().position(|n| n == key) {
                    Some(i) => i,
                    None => {
                        names.push(key.clone());
                        inference.push(Inference::default());
                        names.len() - 1
                    }
                };
                match value {
                    Value::Null => {}
                    Value::Bool(_) => inference[i].observe_bool(),
                    Value::Number(n) => inference[i].observe_number(n),
                    Value::String(s) => inference[i].observe_json_string(s),
                    Value::Array(_) | Value::Object(_) => inference[i].observe_text_only(),
                }
            }
        }
        for (name, _) in &config.columns {
            if !names.contains(name) {
                names.push(name.clone());
                inference.push(Inference::default());
            }
        }
        let (types, origins): (Vec<ColumnType>, Vec<Origin>) = names
            .iter()
            .zip(&inference)
            .map(|(n, inf)| {
                config.columns.iter().find(|(c, _)| c == n).map_or_else(
                    || (inf.result(), Origin::Inferred),
                    |(_, t)| (t.clone(), Origin::Declared),
                )
            })
            .unzip();
        let columns = Columns::with_origins(names, types, origins);
        let resume = if resume.next_row == 0 && resume.byte_pos == 0 {
            Checkpoint {
                next_row: 0,
                byte_pos: data_start,
                next_line: 1,
                ..Checkpoint::default()
            }
        } else {
            resume
        };
        let input = open_text_at(path, config.compression, resume.byte_pos)?;
        let size = if input.gzip {
            None
        } else {
            std::fs::metadata(path).ok().map(|m| m.len())
        };
        let capacity = config.batch_rows.min(65_536);
        Ok(NdjsonReader {
            path: path.to_path_buf(),
            cells: Vec::with_capacity(columns.names.len()),
            texts: vec![String::new(); columns.names.len()],
            assembly: Assembly::new(BatchBuilder::new(&columns, capacity)),
            columns,
            input: input.reader,
            pos: Checkpoint {
                byte_pos: input.start,
                next_line: resume.next_line.max(1),
                ..resume
            },
            line: Vec::new(),
            pending: false,
            policy: Policy::new(config.on_error, path.display().to_string()),
            ended: false,
            size,
        })
    }

    /// The file's columns.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    fn parse(&mut self) -> Result<(), BadRow> {
        let line_no = self.pos.next_line;
        let mut raw = self.line.clone();
        while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            raw.pop();
        }
        raw.truncate(super::MAX_RAW_BYTES);
        if let Err(e) = std::str::from_utf8(&self.line) {
            return Err(BadRow {
                class: "invalid_utf8",
                message: format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
                place: Place::Line(line_no),
                raw,
            });
        }
        let obj: Map<String, Value> = match serde_json::from_slice::<Value>(trimmed(&self.line)) {
            Ok(Value::Object(obj)) => obj,
            Ok(other) => {
                return Err(BadRow {
                    class: "invalid_json",
                    message: format!(
                        "expected a JSON object, got {}",
                        shorten(&other.to_string())
                    ),
                    place: Place::Line(line_no),
                    raw,
                });
            }
            Err(e) => {
                return Err(BadRow {
                    class: "invalid_json",
                    message: format!("invalid JSON: {e}"),
                    place: Place::Line(line_no),
                    raw,
                });
            }
        };
        self.cells.clear();
        let columns = &self.columns;
        for (i, ((name, ty), origin)) in columns
            .names
            .iter()
            .zip(&columns.types)
            .zip(&columns.origins)
            .enumerate()
        {
            let value = obj.get(name).unwrap_or(&Value::Null);
            match cell(ty, *origin, value) {
                Ok((cell, text)) => {
                    if let Some(t) = text {
                        self.texts[i].clear();
                        self.texts[i].push_str(&t);
                    }
                    self.cells.push(cell);
                }
                Err(e) => return Err(bad_cell(e, i, name, line_no, raw)),
            }
        }
        Ok(())
    }
}

/// Converts one JSON value to a cell of `ty`, with its text for strings.
///
/// A declared type converts what it can (the string `"7"` is the int64 7);
/// an inferred one takes what the sample had: the JSON type it was
/// inferred from, and strings only in the form the serializers write back.
fn cell<'a>(
    ty: &ColumnType,
    origin: Origin,
    value: &'a Value,
) -> Result<(Cell, Option<Cow<'a, str>>), CellError> {
    let wrong = |what: &str| CellError {
        class: "parse_error",
        message: format!("{what} is not a valid {}", ty.name()),
    };
    Ok(match (ty, value) {
        (_, Value::Null) => (Cell::Null, None),
        (ColumnType::String, Value::String(s)) => (Cell::Text, Some(Cow::Borrowed(s))),
        (ColumnType::String, other) => (Cell::Text, Some(Cow::Owned(other.to_string()))),
        (ColumnType::Timestamp(_), Value::String(s)) if origin == Origin::Inferred => {
            (parse_exact(ty, s)?, None)
        }
        (_, Value::String(s)) if origin == Origin::Inferred => {
            return Err(CellError {
                class: "parse_error",
                message: format!(
                    "the JSON string `\"{}\"` is not a valid {}: the column's type was \
                     inferred from JSON {}s in the sample (declare it in `columns` to convert \
                     strings)",
                    shorten(s),
                    ty.name(),
                    if *ty == ColumnType::Bool {
                        "boolean"
                    } else {
                        "number"
                    }
                ),
            });
        }
        (_, Value::String(s)) => (parse_text(ty, s)?, None),
        (ColumnType::Int64, Value::Number(n)) => match n.as_i64() {
            Some(v) => (Cell::Int(v), None),
            None if n.is_u64() => {
                return Err(CellError {
                    class: "out_of_range",
                    message: format!("{n} is out of range for int64"),
                });
            }
            None => return Err(wrong(&format!("{n}"))),
        },
        (ColumnType::Float64 | ColumnType::Decimal(..), Value::Number(n)) => {
            (parse_text(ty, &n.to_string())?, None)
        }
        (ColumnType::Bool, Value::Bool(b)) => (Cell::Bool(*b), None),
        (_, Value::Number(n)) => return Err(wrong(&format!("the number {n}"))),
        (_, Value::Bool(b)) => return Err(wrong(&format!("`{b}`"))),
        (_, Value::Array(_)) => return Err(wrong("an array")),
        (_, Value::Object(_)) => return Err(wrong("an object")),
    })
}

impl TableReader for NdjsonReader {
    fn next_chunk(&mut self, max_rows: usize) -> Result<Chunk, ReadError> {
        if self.ended {
            return Ok(Chunk::End);
        }
        // Skipped rows count too, so a long run of them cannot keep a poll
        // from returning; the chunk is then empty and only moves the
        // checkpoint.
        let mut scanned = 0;
        loop {
            if self.assembly.len() >= max_rows || scanned >= SCAN_LIMIT.max(max_rows) {
                break;
            }
            scanned += 1;
            if !self.pending {
                if read_line(self.input.as_mut(), &mut self.line, &self.path)? == 0 {
                    self.ended = true;
                    break;
                }
                if trimmed(&self.line).is_empty() {
                    self.pos.byte_pos += self.line.len() as u64;
                    self.pos.next_line += 1;
                    continue;
                }
            }
            match self.parse() {
                Ok(()) => {
                    if self.assembly.has_dead() {
                        self.pending = true;
                        break;
                    }
                    let texts = &self.texts;
                    self.assembly
                        .rows_mut()
                        .append(&self.cells, |i| texts[i].as_str());
                }
                Err(bad) => {
                    if self.assembly.bad_row_waits(self.policy.on_error()) {
                        self.pending = true;
                        break;
                    }
                    match self.policy.judge(bad)? {
                        Verdict::Skip => {}
                        Verdict::Dead(letter) => self.assembly.push_dead(letter),
                    }
                }
            }
            self.pending = false;
            self.pos.next_row += 1;
            self.pos.byte_pos += self.line.len() as u64;
            self.pos.next_line += 1;
        }
        assembled(&mut self.assembly, self.ended)
    }

    fn position(&self) -> Checkpoint {
        self.pos
    }

    fn lag(&self) -> Option<u64> {
        self.size.map(|s| s.saturating_sub(self.pos.byte_pos))
    }

    fn schema(&self) -> arrow_schema::SchemaRef {
        self.columns.schema.clone()
    }

    fn bad_rows(&mut self) -> (u64, Vec<String>) {
        (self.policy.bad(), self.policy.take_logs())
    }
}
