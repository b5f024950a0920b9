//! Parquet and Arrow IPC: the files carry their own schema, and their
//! batches pass through with their own types. The checkpoint is the next
//! row; Parquet skips to it through its row-group index, Arrow IPC by
//! slicing. Batches are cut to `batch_rows` so a file written as one huge
//! batch still goes out in bounded pieces.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::reader::{FileReader, StreamReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Chunk, ReadError, TableReader, io_error};
use crate::checkpoint::Checkpoint;

/// The magic bytes at the start of an Arrow IPC file (not a stream).
const ARROW_FILE_MAGIC: &[u8; 6] = b"ARROW1";

/// A Parquet or Arrow IPC file being read.
pub struct ColumnarReader {
    path: PathBuf,
    batches: Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>>,
    /// The rest of the current batch.
    current: Option<RecordBatch>,
    /// Rows to drop from the start of the stream (Arrow IPC resume).
    skip: usize,
    pos: Checkpoint,
    total_rows: Option<u64>,
    ended: bool,
}

impl std::fmt::Debug for ColumnarReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnarReader")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl ColumnarReader {
    /// Opens a Parquet file at row `resume.next_row`.
    pub fn parquet(path: &Path, batch_rows: usize, resume: Checkpoint) -> Result<ColumnarReader, ReadError> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        let err = |e: parquet::errors::ParquetError| {
            ReadError(format!("{}: not a readable Parquet file: {e}", path.display()))
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(err)?;
        let total = builder.metadata().file_metadata().num_rows();
        let offset = usize::try_from(resume.next_row).unwrap_or(usize::MAX);
        let reader = builder
            .with_batch_size(batch_rows)
            .with_offset(offset)
            .build()
            .map_err(err)?;
        Ok(ColumnarReader {
            path: path.to_path_buf(),
            batches: Box::new(reader),
            current: None,
            skip: 0,
            pos: resume,
            total_rows: u64::try_from(total).ok(),
            ended: false,
        })
    }

    /// Opens an Arrow IPC file or stream at row `resume.next_row`.
    pub fn arrow(path: &Path, resume: Checkpoint) -> Result<ColumnarReader, ReadError> {
        let mut file = File::open(path).map_err(|e| io_error(path, &e))?;
        let mut magic = [0u8; 6];
        let is_file = file.read_exact(&mut magic).is_ok() && &magic == ARROW_FILE_MAGIC;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error(path, &e))?;
        let err = |e: arrow_schema::ArrowError| {
            ReadError(format!("{}: not a readable Arrow IPC file: {e}", path.display()))
        };
        let batches: Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>> =
            if is_file {
                let reader = FileReader::try_new_buffered(file, None).map_err(err)?;
                Box::new(reader)
            } else {
                let reader = StreamReader::try_new(BufReader::new(file), None).map_err(err)?;
                Box::new(reader)
            };
        Ok(ColumnarReader {
            path: path.to_path_buf(),
            batches,
            current: None,
            skip: usize::try_from(resume.next_row).unwrap_or(usize::MAX),
            pos: resume,
            total_rows: None,
            ended: false,
        })
    }
}

impl TableReader for ColumnarReader {
    fn next_chunk(&mut self, max_rows: usize) -> Result<Chunk, ReadError> {
        loop {
            if self.ended {
                return Ok(Chunk::End);
            }
            let batch = match self.current.take() {
                Some(b) => b,
                None => match self.batches.next() {
                    None => {
                        self.ended = true;
                        return Ok(Chunk::End);
                    }
                    Some(Err(e)) => {
                        return Err(ReadError(format!(
                            "{} after row {}: {e}",
                            self.path.display(),
                            self.pos.next_row
                        )));
                    }
                    Some(Ok(b)) => b,
                },
            };
            let mut batch = batch;
            if self.skip > 0 {
                let drop = self.skip.min(batch.num_rows());
                self.skip -= drop;
                batch = batch.slice(drop, batch.num_rows() - drop);
            }
            if batch.num_rows() == 0 {
                continue;
            }
            let take = batch.num_rows().min(max_rows);
            if take < batch.num_rows() {
                self.current = Some(batch.slice(take, batch.num_rows() - take));
            }
            self.pos.next_row += take as u64;
            return Ok(Chunk::Rows(batch.slice(0, take)));
        }
    }

    fn position(&self) -> Checkpoint {
        self.pos
    }

    fn lag(&self) -> Option<u64> {
        self.total_rows
            .map(|t| t.saturating_sub(self.pos.next_row))
    }

    fn bad_rows(&mut self) -> (u64, Vec<String>) {
        (0, Vec::new())
    }
}
