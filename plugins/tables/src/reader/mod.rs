//! Readers, one per format, all streaming: a reader holds one batch of rows
//! at most, whatever the size of its file.
//!
//! A reader hands out [`Chunk`]s: good rows as a typed batch, or a run of bad
//! rows as dead letters (never both in one chunk, so a dead-letter batch's
//! checkpoint lies after its bad rows and the good rows before them went in
//! an earlier batch), and finally [`Chunk::End`]. [`TableReader::position`]
//! is the checkpoint after the last chunk. The text readers judge bad rows
//! with the SDK's [`Policy`](tributary_plugin_sdk::bad_rows::Policy) and
//! gather chunks in its [`Assembly`].

pub mod columnar;
pub mod csv;
pub mod ndjson;
pub mod prefetch;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use tributary_plugin_sdk::bad_rows::{Assembly, BadRow, GoodRows, Place, Run};
use tributary_plugin_sdk::dead_letter::DeadLetter;
use tributary_plugin_sdk::{Error, ErrorCategory};

use crate::checkpoint::Checkpoint;
use crate::config::Compression;
use crate::types::{BatchBuilder, CellError};

/// The most bytes of a bad row kept as its raw dead-letter value.
pub const MAX_RAW_BYTES: usize = 1024 * 1024;
/// Most rows one chunk looks at, counting skipped ones.
pub const SCAN_LIMIT: usize = 65_536;
/// Read buffer size for text files.
const BUFFER_BYTES: usize = 256 * 1024;

/// What one read returns.
#[derive(Debug)]
pub enum Chunk {
    /// Good rows.
    Rows(RecordBatch),
    /// Bad rows, for the dead-letter topic.
    Dead(Vec<DeadLetter>),
    /// Every row was read.
    End,
}

/// A file that cannot be read on (or a bad row under `on_error = "fail"`):
/// the message, and whether retrying could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError(pub String, pub ErrorCategory);

impl ReadError {
    /// The file's content is wrong; reading it again gives the same error.
    pub fn data(message: String) -> Self {
        ReadError(message, ErrorCategory::InvalidData)
    }

    /// Reading failed; the category follows the I/O error's kind.
    pub fn io(context: impl std::fmt::Display, e: &std::io::Error) -> Self {
        ReadError(format!("{context}: {e}"), ErrorCategory::of_io(e.kind()))
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ArrowError> for ReadError {
    fn from(e: ArrowError) -> Self {
        ReadError::data(e.to_string())
    }
}

/// A bad row under `on_error = "fail"`, from the bad-row policy.
impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError(e.message().to_owned(), e.category())
    }
}

/// A reader of one file.
pub trait TableReader {
    /// The next chunk, at most `max_rows` rows.
    fn next_chunk(&mut self, max_rows: usize) -> Result<Chunk, ReadError>;
    /// The checkpoint after the last chunk returned.
    fn position(&self) -> Checkpoint;
    /// Bytes (text) or rows (columnar) not yet read, when known: the unit
    /// of [`Format::lag_unit`](crate::config::Format::lag_unit).
    fn lag(&self) -> Option<u64>;
    /// Bad rows met so far, and their log lines not yet taken.
    fn bad_rows(&mut self) -> (u64, Vec<String>);
    /// The schema of the file's rows.
    fn schema(&self) -> arrow_schema::SchemaRef;
}

/// The bad row of a cell that did not parse, in column `name`: its class
/// is one of [`CellError`]'s; readers add `ragged_row` and `invalid_json`.
pub fn bad_cell(e: CellError, column: usize, name: &str, line: u64, raw: Vec<u8>) -> BadRow {
    BadRow {
        class: e.class,
        message: format!("column {} (`{name}`): {}", column + 1, e.message),
        place: Place::Line(line),
        raw,
    }
}

/// Good rows of a text file, built column by column.
impl GoodRows for BatchBuilder {
    type Out = RecordBatch;
    type Error = ArrowError;

    fn len(&self) -> usize {
        BatchBuilder::len(self)
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        BatchBuilder::finish(self)
    }
}

/// The chunk a text reader returns once it stops reading: what `assembly`
/// gathered; else, before the end of the file, an empty batch that only
/// moves the checkpoint past skipped rows; else [`Chunk::End`].
pub fn assembled(assembly: &mut Assembly<BatchBuilder>, ended: bool) -> Result<Chunk, ReadError> {
    Ok(match assembly.take()? {
        Some(Run::Rows(records)) => Chunk::Rows(records),
        Some(Run::Dead(letters)) => Chunk::Dead(letters),
        None if !ended => Chunk::Rows(assembly.rows_mut().finish()?),
        None => Chunk::End,
    })
}

/// The UTF-8 byte order mark some tools write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Opens a text file for reading from its start, decompressing as
/// configured. Returns the stream and whether it is compressed.
fn open_text(
    path: &Path,
    compression: Compression,
) -> Result<(Box<dyn BufRead + Send>, bool), ReadError> {
    let mut file = File::open(path).map_err(|e| io_error(path, &e))?;
    let gzip = match compression {
        Compression::None => false,
        Compression::Gzip => true,
        Compression::Auto => {
            let mut magic = [0u8; 2];
            let n = crate::checkpoint::read_up_to(&mut file, &mut magic)
                .map_err(|e| io_error(path, &e))?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| io_error(path, &e))?;
            n == 2 && magic == [0x1f, 0x8b]
        }
    };
    let reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUFFER_BYTES, file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(BUFFER_BYTES, file))
    };
    Ok((reader, gzip))
}

/// A text stream positioned for reading.
pub struct TextInput {
    /// The stream.
    pub reader: Box<dyn BufRead + Send>,
    /// The offset of the stream's next byte in the decompressed file: the
    /// requested position, or 3 at the start of a file with a BOM.
    pub start: u64,
    /// Whether the file is gzip-compressed.
    pub gzip: bool,
}

impl std::fmt::Debug for TextInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextInput")
            .field("start", &self.start)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

/// Opens a text file positioned at `byte_pos` of its decompressed stream
/// (a seek for a plain file, decompressing and discarding for gzip). At
/// position 0 a UTF-8 byte order mark is skipped.
pub fn open_text_at(
    path: &Path,
    compression: Compression,
    byte_pos: u64,
) -> Result<TextInput, ReadError> {
    let (mut reader, gzip) = open_text(path, compression)?;
    if byte_pos == 0 {
        let buf = reader.fill_buf().map_err(|e| io_error(path, &e))?;
        let start = if buf.starts_with(BOM) {
            reader.consume(BOM.len());
            BOM.len() as u64
        } else {
            0
        };
        return Ok(TextInput {
            reader,
            start,
            gzip,
        });
    }
    if gzip {
        let skipped = std::io::copy(&mut (&mut reader).take(byte_pos), &mut std::io::sink())
            .map_err(|e| io_error(path, &e))?;
        if skipped != byte_pos {
            return Err(ReadError::data(format!(
                "{}: the checkpoint is at byte {byte_pos} but the file has only {skipped} \
                 bytes decompressed",
                path.display()
            )));
        }
        return Ok(TextInput {
            reader,
            start: byte_pos,
            gzip,
        });
    }
    let mut file = File::open(path).map_err(|e| io_error(path, &e))?;
    file.seek(SeekFrom::Start(byte_pos))
        .map_err(|e| io_error(path, &e))?;
    Ok(TextInput {
        reader: Box::new(BufReader::with_capacity(BUFFER_BYTES, file)),
        start: byte_pos,
        gzip,
    })
}

/// Reads the raw bytes `range` of a plain file for a dead letter, without
/// the line terminator and at most [`MAX_RAW_BYTES`].
pub fn raw_bytes(file: &File, start: u64, end: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = usize::try_from(end.checked_sub(start)?)
        .ok()?
        .min(MAX_RAW_BYTES);
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, start).ok()?;
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Some(buf)
}

/// An I/O error naming the file.
pub fn io_error(path: &Path, e: &std::io::Error) -> ReadError {
    ReadError::io(path.display(), e)
}
