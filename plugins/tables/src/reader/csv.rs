//! Delimited text (CSV, TSV, …) with `csv_core`, the parser of the `csv`
//! crate: quoted fields with delimiters and line breaks, CRLF, comments,
//! any delimiter, quote and escape. Records are read as bytes so a row
//! with invalid UTF-8 is a bad row, not a failed file; positions come from
//! the parser, so the checkpoint is the exact byte and line where the next
//! record starts.

use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use csv_core::ReadRecordResult;
use tributary_plugin_sdk::bad_rows::{Assembly, BadRow, Place, Policy, Verdict};

use super::{
    Chunk, ReadError, SCAN_LIMIT, TableReader, assembled, bad_cell, open_text_at, raw_bytes,
};
use crate::checkpoint::Checkpoint;
use crate::config::{Config, CsvDialect};
use crate::types::{
    BatchBuilder, CellError, ColumnType, Columns, Inference, Origin, shorten, utf8_error,
};

/// A CSV file being read.
pub struct CsvReader {
    path: PathBuf,
    columns: Columns,
    null_values: Vec<Vec<u8>>,
    records: Records,
    /// Offset of the reader's byte 0 in the file, and the line of its line 1.
    base_byte: u64,
    base_line: u64,
    /// Where the next unread row starts.
    pos: Checkpoint,
    /// `records` holds a row read but not yet taken (it starts a new chunk).
    pending: bool,
    /// Plain files re-read a bad row's bytes for its dead letter; gzip files
    /// rebuild it from the fields.
    raw_source: Option<File>,
    dialect: CsvDialect,
    policy: Policy,
    assembly: Assembly<BatchBuilder>,
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

/// The parser for a dialect.
fn parser(d: &CsvDialect) -> csv_core::Reader {
    let mut b = csv_core::ReaderBuilder::new();
    b.delimiter(d.delimiter).quote(d.quote).comment(d.comment);
    match d.escape {
        Some(e) => b.escape(Some(e)).double_quote(false),
        None => b.escape(None).double_quote(true),
    };
    b.build()
}

/// The records of a text stream, one at a time, as `csv::Reader` reads
/// them (the same parser, the same loop, the same positions), but without
/// its costs per row: it buffers the stream a second time and keeps a
/// record's field bounds behind a pointer, followed again for each field.
/// Here the stream is parsed where it is buffered and the bounds are a
/// plain vector.
struct Records {
    parser: csv_core::Reader,
    input: Box<dyn BufRead + Send>,
    /// The fields of the current record, one after the other.
    fields: Vec<u8>,
    /// Where each field of the current record ends in `fields`: the
    /// first `len` entries (the rest is room to grow).
    ends: Vec<usize>,
    len: usize,
    /// Where the current record starts: bytes into the stream, and line
    /// (1-based).
    start: (u64, u64),
    /// Where it ends and the next one starts.
    end: (u64, u64),
    ended: bool,
}

impl Records {
    fn new(parser: csv_core::Reader, input: Box<dyn BufRead + Send>) -> Records {
        Records {
            parser,
            input,
            fields: vec![0; 1024],
            ends: vec![0; 64],
            len: 0,
            start: (0, 1),
            end: (0, 1),
            ended: false,
        }
    }

    /// Reads the next record; `false` at the end of the stream.
    fn read(&mut self) -> std::io::Result<bool> {
        self.len = 0;
        self.start = self.end;
        if self.ended {
            return Ok(false);
        }
        let (mut out, mut ends) = (0, 0);
        loop {
            let input = self.input.fill_buf()?;
            let (result, read, written, ended) =
                self.parser
                    .read_record(input, &mut self.fields[out..], &mut self.ends[ends..]);
            self.input.consume(read);
            self.end = (self.end.0 + read as u64, self.parser.line());
            out += written;
            ends += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = self.fields.len() * 2;
                    self.fields.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::Record => {
                    self.len = ends;
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    self.ended = true;
                    return Ok(false);
                }
            }
        }
    }

    /// The number of fields of the current record.
    fn len(&self) -> usize {
        self.len
    }

    /// Where each field of the current record ends in [`Self::as_slice`].
    fn ends(&self) -> &[usize] {
        &self.ends[..self.len]
    }

    /// The fields of the current record, one after the other.
    fn as_slice(&self) -> &[u8] {
        &self.fields[..self.ends().last().copied().unwrap_or(0)]
    }

    /// The fields of the current record.
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let fields = self.as_slice();
        let mut start = 0;
        self.ends().iter().map(move |&end| {
            let field = &fields[start..end];
            start = end;
            field
        })
    }
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
        let mut records = Records::new(parser(&config.csv), input.reader);
        let header = read_header(&mut records, config, path, start)?;
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
            match records.read() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(ReadError::io(&display, &e)),
            }
            sampled += 1;
            if records.len() != names.len() {
                continue;
            }
            for (i, cell) in records.iter().enumerate() {
                if configured[i].is_some() || null_values.iter().any(|n| n == cell) {
                    continue;
                }
                match std::str::from_utf8(cell) {
                    Ok(text) => inference[i].observe(text),
                    Err(_) => inference[i].observe_text_only(),
                }
            }
        }
        let (types, origins): (Vec<ColumnType>, Vec<Origin>) = configured
            .into_iter()
            .zip(&inference)
            .map(|(c, inf)| match c {
                Some(ty) => (ty, Origin::Declared),
                None if config.infer_rows == 0 => (ColumnType::String, Origin::Inferred),
                None => (inf.result(), Origin::Inferred),
            })
            .unzip();
        let columns = Columns::with_origins(names, types, origins);

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
        let records = Records::new(parser(&config.csv), input.reader);
        let raw_source = if gzip { None } else { File::open(path).ok() };
        let size = if gzip {
            None
        } else {
            std::fs::metadata(path).ok().map(|m| m.len())
        };
        let capacity = config.batch_rows.min(65_536);
        Ok(CsvReader {
            path: path.to_path_buf(),
            assembly: Assembly::new(BatchBuilder::new(&columns, capacity)),
            columns,
            null_values,
            records,
            base_byte,
            base_line: resume.next_line.max(1),
            pos: Checkpoint {
                byte_pos: base_byte,
                ..resume
            },
            pending: false,
            raw_source,
            dialect: config.csv.clone(),
            policy: Policy::new(config.on_error, path.display().to_string()),
            ended: false,
            size,
        })
    }

    /// The file's columns.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// A position in the stream as a byte and line of the file.
    fn in_file(&self, (byte, line): (u64, u64)) -> (u64, u64) {
        (
            self.base_byte + byte,
            self.base_line + line.saturating_sub(1),
        )
    }

    /// The raw bytes of the current record, for a dead letter.
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
        let record: ByteRecord = self.records.iter().collect();
        let _ = w.write_byte_record(&record);
        let mut out = w.into_inner().unwrap_or_default();
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        out.truncate(super::MAX_RAW_BYTES);
        out
    }

    /// The bad row for the current record: a ragged row (no
    /// cell error) or a cell that did not parse.
    fn bad_row(&self, cell: Option<(usize, CellError)>, line: u64, start: u64, end: u64) -> BadRow {
        let raw = self.raw(start, end);
        match cell {
            Some((i, e)) => bad_cell(e, i, &self.columns.names[i], line, raw),
            None => BadRow {
                class: "ragged_row",
                message: format!(
                    "{} fields, expected {} ({})",
                    self.records.len(),
                    self.columns.names.len(),
                    shorten(&self.columns.names.join(", "))
                ),
                place: Place::Line(line),
                raw,
            },
        }
    }
}

/// Parses the current record, which has a field per column, into `rows`;
/// on a bad cell, its column and error, the first bad cell of the row as
/// when every field was checked in turn.
fn append_record(
    rows: &mut BatchBuilder,
    records: &Records,
    types: &[ColumnType],
    null_values: &[Vec<u8>],
) -> Result<(), (usize, CellError)> {
    match row_text(records) {
        Some(text) => rows.append_text(cells(records, text, null_values)),
        None => append_field_by_field(rows, records, types, null_values),
    }
}

/// The current record as text, if each of its fields is UTF-8.
///
/// Validating a row once is much cheaper than validating each field. The
/// fields are then UTF-8 exactly when each ends on a character boundary:
/// a character cut in two by a delimiter is whole in the row but in
/// neither field.
fn row_text(records: &Records) -> Option<&str> {
    let text = std::str::from_utf8(records.as_slice()).ok()?;
    let whole = records.ends().iter().all(|&end| text.is_char_boundary(end));
    whole.then_some(text)
}

/// The cells of a record whose fields are UTF-8 (`text` is the whole
/// record): a null for a null spelling, else the text.
fn cells<'a>(
    records: &'a Records,
    text: &'a str,
    null_values: &'a [Vec<u8>],
) -> impl Iterator<Item = Option<&'a str>> + 'a {
    let mut start = 0;
    records.ends().iter().map(move |&end| {
        let cell = text.get(start..end).unwrap_or_default();
        start = end;
        let null = null_values.iter().any(|v| v.as_slice() == cell.as_bytes());
        (!null).then_some(cell)
    })
}

/// [`append_record`] for a record with a field that is not UTF-8, which
/// makes it a bad row: the error is that field's, unless a cell before it
/// does not parse.
fn append_field_by_field(
    rows: &mut BatchBuilder,
    records: &Records,
    types: &[ColumnType],
    null_values: &[Vec<u8>],
) -> Result<(), (usize, CellError)> {
    let mut cells = Vec::with_capacity(records.len());
    for (i, (bytes, ty)) in records.iter().zip(types).enumerate() {
        if null_values.iter().any(|v| v == bytes) {
            cells.push(None);
            continue;
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => cells.push(Some(text)),
            Err(e) => {
                for (j, cell) in cells.iter().enumerate() {
                    if let Some(text) = cell {
                        rows.parse(j, text).map_err(|e| (j, e))?;
                    }
                }
                return Err((i, utf8_error(ty, &e)));
            }
        }
    }
    rows.append_text(cells)
}

/// Reads the header row (or takes `column_names`) and checks the names.
fn read_header(
    records: &mut Records,
    config: &Config,
    path: &Path,
    start: u64,
) -> Result<Header, ReadError> {
    let display = path.display();
    let mut names: Vec<String> = Vec::new();
    let (mut data_byte, mut data_line) = (start, 1);
    if config.csv.has_header {
        match records.read() {
            Ok(true) => {
                for (i, cell) in records.iter().enumerate() {
                    let name = std::str::from_utf8(cell).map_err(|e| {
                        ReadError::data(format!(
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
                (data_byte, data_line) = (start + records.end.0, records.end.1);
            }
            Ok(false) => {}
            Err(e) => return Err(ReadError::io(&display, &e)),
        }
    }
    if let Some(given) = &config.csv.column_names {
        if config.csv.has_header && !names.is_empty() && names.len() != given.len() {
            return Err(ReadError::data(format!(
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
        return Err(ReadError::data(format!(
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
            if self.assembly.len() >= max_rows || scanned >= SCAN_LIMIT.max(max_rows) {
                break;
            }
            scanned += 1;
            if !self.pending {
                match self.records.read() {
                    Ok(true) => {}
                    Ok(false) => {
                        self.ended = true;
                        break;
                    }
                    Err(e) => return Err(ReadError::io(&display, &e)),
                }
            }
            let (start_byte, line) = self.in_file(self.records.start);
            let (end_byte, end_line) = self.in_file(self.records.end);
            if self.columns.names.is_empty() {
                // A file with neither header nor data: nothing can be a row.
                self.pending = false;
                self.pos.byte_pos = end_byte;
                self.pos.next_line = end_line;
                continue;
            }
            let parsed = if self.records.len() == self.columns.names.len() {
                append_record(
                    self.assembly.rows_mut(),
                    &self.records,
                    &self.columns.types,
                    &self.null_values,
                )
                .map_err(Some)
            } else {
                Err(None)
            };
            match parsed {
                Ok(()) => {
                    if self.assembly.has_dead() {
                        // A good row ends a run of bad ones; it starts the next chunk.
                        self.assembly.rows_mut().pop();
                        self.pending = true;
                        break;
                    }
                }
                Err(cell) => {
                    if self.assembly.bad_row_waits(self.policy.on_error()) {
                        // A bad row ends a run of good ones: the good ones go out first,
                        // then the bad one starts the next chunk (or fails the file).
                        self.pending = true;
                        break;
                    }
                    let bad = self.bad_row(cell, line, start_byte, end_byte);
                    match self.policy.judge(bad)? {
                        Verdict::Skip => {}
                        Verdict::Dead(letter) => self.assembly.push_dead(letter),
                    }
                }
            }
            self.pending = false;
            self.pos.next_row += 1;
            self.pos.byte_pos = end_byte;
            self.pos.next_line = end_line;
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

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use super::*;
    use crate::types::tests::Rng;
    use crate::types::{Cell, parse_bytes};

    fn dialect(delimiter: u8, quote: u8, escape: Option<u8>, comment: Option<u8>) -> CsvDialect {
        CsvDialect {
            delimiter,
            quote,
            escape,
            comment,
            has_header: false,
            column_names: None,
            null_values: vec![String::new()],
        }
    }

    /// Records over `bytes`, read through a buffer of `capacity` bytes.
    fn records(d: &CsvDialect, bytes: &[u8], capacity: usize) -> Records {
        let input = BufReader::with_capacity(capacity, Cursor::new(bytes.to_vec()));
        Records::new(parser(d), Box::new(input))
    }

    /// Text full of what makes CSV hard: quotes, escapes, delimiters of
    /// other dialects, CR, LF, comments, blank lines, multi-byte and
    /// invalid UTF-8, now and then a very long field or a very wide row.
    fn messy(rng: &mut Rng) -> Vec<u8> {
        let pieces: [&[u8]; 16] = [
            b"a",
            b"bc",
            b",",
            b",",
            b"\t",
            b";",
            b"\"",
            b"'",
            b"\\",
            b"#",
            b"\r",
            b"\n",
            b"\r\n",
            b" ",
            "é".as_bytes(),
            b"\xff",
        ];
        let mut out = Vec::new();
        for _ in 0..rng.below(400) {
            match rng.below(60) {
                0 => out.extend(std::iter::repeat_n(b'x', 1000 + rng.below(3000))),
                1 => out.extend(std::iter::repeat_n(b',', 60 + rng.below(200))),
                _ => out.extend_from_slice(rng.pick::<&[u8]>(&pieces)),
            }
        }
        out
    }

    #[test]
    fn records_match_the_csv_crate_field_for_field_and_position_for_position() {
        let dialects = [
            dialect(b',', b'"', None, None),
            dialect(b'\t', b'"', None, None),
            dialect(b';', b'\'', None, Some(b'#')),
            dialect(b',', b'"', Some(b'\\'), Some(b'#')),
        ];
        let mut rng = Rng::new(5);
        for case in 0..400 {
            let d = &dialects[case % dialects.len()];
            let bytes = messy(&mut rng);
            let capacity = *rng.pick(&[1, 2, 7, 64, 4096]);
            // The `csv` crate's reader, configured as this reader used to
            // configure it.
            let mut b = csv::ReaderBuilder::new();
            b.has_headers(false)
                .flexible(true)
                .delimiter(d.delimiter)
                .quote(d.quote)
                .comment(d.comment);
            match d.escape {
                Some(e) => b.escape(Some(e)).double_quote(false),
                None => b.escape(None).double_quote(true),
            };
            let mut reference = b.from_reader(Cursor::new(bytes.clone()));
            let mut record = ByteRecord::new();
            let mut ours = records(d, &bytes, capacity);
            loop {
                let more = reference.read_byte_record(&mut record).unwrap();
                assert_eq!(ours.read().unwrap(), more, "case {case}");
                let start = record.position().unwrap();
                assert_eq!(ours.start, (start.byte(), start.line()), "case {case}");
                let end = reference.position();
                assert_eq!(ours.end, (end.byte(), end.line()), "case {case}");
                assert_eq!(ours.len(), record.len(), "case {case}");
                assert!(ours.iter().eq(record.iter()), "case {case}");
                assert_eq!(ours.as_slice(), record.as_slice(), "case {case}");
                if !more {
                    break;
                }
            }
        }
    }

    #[test]
    fn invalid_utf8_is_found_in_its_field_even_when_the_row_is_utf8() {
        // `é` is C3 A9: split across two fields the row is valid UTF-8 as a
        // whole, but neither field is.
        let pieces: [&[u8]; 8] = [
            b"a",
            b"7",
            "é".as_bytes(),
            b"\xc3",
            b"\xa9",
            b"\xff",
            b"",
            b"-",
        ];
        let names = ["a", "n", "b"].map(String::from).to_vec();
        let types = vec![ColumnType::String, ColumnType::Int64, ColumnType::String];
        let columns = Columns::new(names, types.clone());
        let nulls = [b"-".to_vec()];
        let d = dialect(b',', b'"', None, None);
        let mut rng = Rng::new(6);
        let mut text = b"\xc3,\xa9,x\n".to_vec();
        for _ in 0..5000 {
            // Mostly rows of three fields, some ragged.
            let fields = *rng.pick(&[3, 3, 3, 2, 4]);
            for field in 0..fields {
                if field > 0 {
                    text.push(b',');
                }
                for _ in 0..rng.below(3) {
                    text.extend_from_slice(rng.pick::<&[u8]>(&pieces));
                }
            }
            text.push(b'\n');
        }
        let mut rows = records(&d, &text, 4096);
        let mut built = BatchBuilder::new(&columns, 64);
        let mut expected_rows = BatchBuilder::new(&columns, 64);
        let (mut split, mut checked) = (0, 0);
        while rows.read().unwrap() {
            if rows.len() != types.len() {
                continue;
            }
            let got = append_record(&mut built, &rows, &types, &nulls);
            // Field by field, as every field used to be checked.
            let cells: Result<Vec<Cell>, (usize, CellError)> = rows
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (bytes, ty))| {
                    if nulls.iter().any(|n| n == bytes) {
                        return Ok(Cell::Null);
                    }
                    parse_bytes(ty, bytes).map_err(|e| (i, e))
                })
                .collect();
            match cells {
                Ok(cells) => {
                    assert_eq!(got, Ok(()), "{:?}", rows.as_slice());
                    let fields: Vec<&[u8]> = rows.iter().collect();
                    expected_rows.append(&cells, |i| std::str::from_utf8(fields[i]).unwrap());
                }
                Err(e) => {
                    if e.1.class == "invalid_utf8" && row_text(&rows).is_none() {
                        split += usize::from(std::str::from_utf8(rows.as_slice()).is_ok());
                    }
                    assert_eq!(got, Err(e), "{:?}", rows.as_slice());
                }
            }
            checked += 1;
        }
        assert_eq!(built.finish().unwrap(), expected_rows.finish().unwrap());
        assert!(
            checked > 2000 && split > 10,
            "{checked} rows, {split} split"
        );
    }
}
