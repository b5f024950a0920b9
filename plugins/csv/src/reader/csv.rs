//! Delimited text (CSV, TSV, …) with the `csv` crate: quoted fields with
//! delimiters and line breaks, CRLF, comments, any delimiter, quote and
//! escape. Records are read as bytes so a row with invalid UTF-8 is a bad
//! row, not a failed file; positions come from the parser, so the checkpoint
//! is the exact byte and line where the next record starts.

use std::fs::File;
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use super::{
    Assembly, BadRow, Chunk, Policy, ReadError, SCAN_LIMIT, TableReader, Verdict, open_text_at,
    raw_bytes,
};
use crate::checkpoint::Checkpoint;
use crate::config::{Config, OnError};
use crate::types::{BatchBuilder, Cell, ColumnType, Columns, Inference, parse_bytes, shorten};

/// A CSV file being read.
pub struct CsvReader {
    path: PathBuf,
    columns: Columns,
    null_values: Vec<Vec<u8>>,
    rdr: csv::Reader<Box<dyn std::io::BufRead + Send>>,
    /// Offset of the reader's byte 0 in the file, and the line of its line 1.
    base_byte: u64,
    base_line: u64,
    /// Where the next unread row starts.
    pos: Checkpoint,
    record: ByteRecord,
    /// `record` holds a row read but not yet taken (it starts a new chunk).
    pending: bool,
    /// Plain files re-read a bad row's bytes for its dead letter; gzip files
    /// rebuild it from the fields.
    raw_source: Option<File>,
    dialect: crate::config::CsvDialect,
    policy: Policy,
    assembly: Assembly,
    cells: Vec<Cell>,
    ended: bool,
    /// Plain files only: the size, for the lag.
    size: Option<u64>,
}

impl std::fmt::Debug for CsvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReader")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

fn builder(config: &Config) -> csv::ReaderBuilder {
    let d = &config.csv;
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .delimiter(d.delimiter)
        .quote(d.quote)
        .comment(d.comment);
    match d.escape {
        Some(e) => b.escape(Some(e)).double_quote(false),
        None => b.escape(None).double_quote(true),
    };
    b
}

/// The header: names and where the first data row starts.
struct Header {
    names: Vec<String>,
    data_byte: u64,
    data_line: u64,
}

impl CsvReader {
    /// Opens `path`, reads its header and a sample for type inference, and
    /// positions at `resume` (or the first data row). `warnings` receives
    /// what the operator should know about the file.
    pub fn open(
        path: &Path,
        config: &Config,
        resume: Checkpoint,
        warnings: &mut Vec<String>,
    ) -> Result<CsvReader, ReadError> {
        let display = path.display();
        let input = open_text_at(path, config.compression, 0)?;
        let gzip = input.gzip;
        let start = input.start;
        let mut rdr = builder(config).from_reader(input.reader);
        let mut record = ByteRecord::new();
        let header = read_header(&mut rdr, &mut record, config, path, start)?;
        let names = header.names;

        // Types: configured, else inferred from a sample of rows.
        let configured: Vec<Option<ColumnType>> = names
            .iter()
            .map(|n| {
                config
                    .columns
                    .iter()
                    .find(|(c, _)| c == n)
                    .map(|(_, t)| t.clone())
            })
            .collect();
        for (name, _) in &config.columns {
            if !names.contains(name) {
                warnings.push(format!(
                    "{display}: configured column `{name}` is not in the file (columns: {})",
                    names.join(", ")
                ));
            }
        }
        let null_values: Vec<Vec<u8>> = config
            .csv
            .null_values
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let mut inference = vec![Inference::default(); names.len()];
        let mut sampled = 0;
        while sampled < config.infer_rows && configured.iter().any(Option::is_none) {
            match rdr.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(ReadError(format!("{display}: {e}"))),
            }
            sampled += 1;
            if record.len() != names.len() {
                continue;
            }
            for (i, cell) in record.iter().enumerate() {
                if configured[i].is_some() || null_values.iter().any(|n| n == cell) {
                    continue;
                }
                match std::str::from_utf8(cell) {
                    Ok(text) => inference[i].observe(text),
                    Err(_) => inference[i].observe_text_only(),
                }
            }
        }
        let types: Vec<ColumnType> = configured
            .into_iter()
            .zip(&inference)
            .map(|(c, inf)| {
                c.unwrap_or_else(|| {
                    if config.infer_rows == 0 {
                        ColumnType::String
                    } else {
                        inf.result()
                    }
                })
            })
            .collect();
        let columns = Columns::new(names, types);

        let resume = if resume.next_row == 0 && resume.byte_pos == 0 {
            Checkpoint {
                next_row: 0,
                byte_pos: header.data_byte,
                next_line: header.data_line,
                ..Checkpoint::default()
            }
        } else {
            resume
        };
        let input = open_text_at(path, config.compression, resume.byte_pos)?;
        let base_byte = input.start;
        let rdr = builder(config).from_reader(input.reader);
        let raw_source = if gzip { None } else { File::open(path).ok() };
        let size = if gzip {
            None
        } else {
            std::fs::metadata(path).ok().map(|m| m.len())
        };
        let capacity = config.batch_rows.min(65_536);
        Ok(CsvReader {
            path: path.to_path_buf(),
            cells: Vec::with_capacity(columns.names.len()),
            assembly: Assembly {
                rows: BatchBuilder::new(&columns, capacity),
                dead: Vec::new(),
            },
            columns,
            null_values,
            rdr,
            base_byte,
            base_line: resume.next_line.max(1),
            pos: Checkpoint {
                byte_pos: base_byte,
                ..resume
            },
            record,
            pending: false,
            raw_source,
            dialect: config.csv.clone(),
            policy: Policy::new(config.on_error, path),
            ended: false,
            size,
        })
    }

    /// The file's columns.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The position after the record in `self.record`.
    fn after_record(&self) -> (u64, u64) {
        let p = self.rdr.position();
        (
            self.base_byte + p.byte(),
            self.base_line + p.line().saturating_sub(1),
        )
    }

    /// The raw bytes of the record in `self.record`, for a dead letter.
    fn raw(&self, start: u64, end: u64) -> Vec<u8> {
        if let Some(bytes) = self
            .raw_source
            .as_ref()
            .and_then(|f| raw_bytes(f, start, end))
        {
            return bytes;
        }
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.dialect.delimiter)
            .quote(self.dialect.quote)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let _ = w.write_byte_record(&self.record);
        let mut out = w.into_inner().unwrap_or_default();
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        out.truncate(super::MAX_RAW_BYTES);
        out
    }

    /// Parses `self.record` into `self.cells`.
    fn parse(&mut self, line: u64, start: u64, end: u64) -> Result<(), BadRow> {
        let n = self.columns.names.len();
        if self.record.len() != n {
            return Err(BadRow {
                class: "ragged_row",
                message: format!(
                    "{} fields, expected {n} ({})",
                    self.record.len(),
                    shorten(&self.columns.names.join(", "))
                ),
                line,
                raw: self.raw(start, end),
            });
        }
        self.cells.clear();
        for (i, bytes) in self.record.iter().enumerate() {
            if self.null_values.iter().any(|v| v == bytes) {
                self.cells.push(Cell::Null);
                continue;
            }
            match parse_bytes(&self.columns.types[i], bytes) {
                Ok(cell) => self.cells.push(cell),
                Err(e) => {
                    let name = self.columns.names[i].clone();
                    return Err(BadRow::cell(e, i, &name, line, self.raw(start, end)));
                }
            }
        }
        Ok(())
    }
}

/// Reads the header row (or takes `column_names`) and checks the names.
fn read_header(
    rdr: &mut csv::Reader<Box<dyn std::io::BufRead + Send>>,
    record: &mut ByteRecord,
    config: &Config,
    path: &Path,
    start: u64,
) -> Result<Header, ReadError> {
    let display = path.display();
    let mut names: Vec<String> = Vec::new();
    let (mut data_byte, mut data_line) = (start, 1);
    if config.csv.has_header {
        match rdr.read_byte_record(record) {
            Ok(true) => {
                for (i, cell) in record.iter().enumerate() {
                    let name = std::str::from_utf8(cell).map_err(|e| {
                        ReadError(format!(
                            "{display} line 1: header column {} is not valid UTF-8 ({e})",
                            i + 1
                        ))
                    })?;
                    let name = name.trim();
                    names.push(if name.is_empty() {
                        format!("column_{}", i + 1)
                    } else {
                        name.to_owned()
                    });
                }
                let p = rdr.position();
                data_byte = start + p.byte();
                data_line = p.line();
            }
            Ok(false) => {}
            Err(e) => return Err(ReadError(format!("{display}: {e}"))),
        }
    }
    if let Some(given) = &config.csv.column_names {
        if config.csv.has_header && !names.is_empty() && names.len() != given.len() {
            return Err(ReadError(format!(
                "{display} line 1: the header has {} columns but `column_names` names {}",
                names.len(),
                given.len()
            )));
        }
        names = given.clone();
    }
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(ReadError(format!(
            "{display} line 1: the header names column `{}` twice",
            w[0]
        )));
    }
    Ok(Header {
        names,
        data_byte,
        data_line,
    })
}

impl TableReader for CsvReader {
    fn next_chunk(&mut self, max_rows: usize) -> Result<Chunk, ReadError> {
        if self.ended {
            return Ok(Chunk::End);
        }
        let display = self.path.display().to_string();
        // Skipped rows count too, so a long run of them cannot keep a poll
        // from returning; the chunk is then empty and only moves the
        // checkpoint.
        let mut scanned = 0;
        loop {
            if self.assembly.rows.len() >= max_rows
                || self.assembly.dead.len() >= max_rows
                || scanned >= SCAN_LIMIT.max(max_rows)
            {
                break;
            }
            scanned += 1;
            if !self.pending {
                match self.rdr.read_byte_record(&mut self.record) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.ended = true;
                        break;
                    }
                    Err(e) => return Err(ReadError(format!("{display}: {e}"))),
                }
            }
            let (start_byte, line) =
                self.record
                    .position()
                    .map_or((self.pos.byte_pos, self.pos.next_line), |p| {
                        (
                            self.base_byte + p.byte(),
                            self.base_line + p.line().saturating_sub(1),
                        )
                    });
            let (end_byte, end_line) = self.after_record();
            if self.columns.names.is_empty() {
                // A file with neither header nor data: nothing can be a row.
                self.pending = false;
                self.pos.byte_pos = end_byte;
                self.pos.next_line = end_line;
                continue;
            }
            match self.parse(line, start_byte, end_byte) {
                Ok(()) => {
                    if !self.assembly.dead.is_empty() {
                        // A good row ends a run of bad ones; it starts the next chunk.
                        self.pending = true;
                        break;
                    }
                    let record = &self.record;
                    self.assembly.rows.append(&self.cells, |i| {
                        std::str::from_utf8(record.get(i).unwrap_or_default()).unwrap_or_default()
                    });
                }
                Err(bad) => {
                    if self.policy.on_error != OnError::Skip && !self.assembly.rows.is_empty() {
                        // A bad row ends a run of good ones: the good ones go out first,
                        // then the bad one starts the next chunk (or fails the file).
                        self.pending = true;
                        break;
                    }
                    match self.policy.judge(bad)? {
                        Verdict::Skip => {}
                        Verdict::Dead(letter) => self.assembly.dead.push(letter),
                    }
                }
            }
            self.pending = false;
            self.pos.next_row += 1;
            self.pos.byte_pos = end_byte;
            self.pos.next_line = end_line;
        }
        match self.assembly.take()? {
            Some(chunk) => Ok(chunk),
            None if !self.ended => Ok(Chunk::Rows(self.assembly.rows.finish()?)),
            None => Ok(Chunk::End),
        }
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
        (self.policy.bad, std::mem::take(&mut self.policy.logs))
    }
}
