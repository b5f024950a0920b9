//! Parquet and Arrow IPC: the files carry their own schema, and their
//! batches pass through with their own types. The checkpoint is the next
//! row; Parquet skips to it through its row-group index, Arrow IPC by
//! slicing. Batches are cut to `batch_rows` so a file written as one huge
//! batch still goes out in bounded pieces.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_ipc::reader::{FileReader, StreamReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Chunk, ReadError, TableReader, io_error};
use crate::checkpoint::Checkpoint;

/// The magic bytes at the start of an Arrow IPC file (not a stream).
const ARROW_FILE_MAGIC: &[u8; 6] = b"ARROW1";

/// A Parquet or Arrow IPC file being read.
pub struct ColumnarReader {
    path: PathBuf,
    batches: Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>> + Send>,
    schema: arrow_schema::SchemaRef,
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
    pub fn parquet(
        path: &Path,
        batch_rows: usize,
        resume: Checkpoint,
    ) -> Result<ColumnarReader, ReadError> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        let err = |e: parquet::errors::ParquetError| {
            ReadError::data(format!(
                "{}: not a readable Parquet file: {e}",
                path.display()
            ))
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
            schema: reader.schema(),
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
            ReadError::data(format!(
                "{}: not a readable Arrow IPC file: {e}",
                path.display()
            ))
        };
        type Batches =
            Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>> + Send>;
        let (batches, schema): (Batches, _) = if is_file {
            let reader = FileReader::try_new_buffered(file, None).map_err(err)?;
            let schema = reader.schema();
            (Box::new(reader), schema)
        } else {
            let reader = StreamReader::try_new(BufReader::new(file), None).map_err(err)?;
            let schema = reader.schema();
            (Box::new(reader), schema)
        };
        Ok(ColumnarReader {
            path: path.to_path_buf(),
            schema,
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
                        return Err(ReadError::data(format!(
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
        self.total_rows.map(|t| t.saturating_sub(self.pos.next_row))
    }

    fn schema(&self) -> arrow_schema::SchemaRef {
        self.schema.clone()
    }

    fn bad_rows(&mut self) -> (u64, Vec<String>) {
        (0, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
        StringArray, TimestampMicrosecondArray,
    };
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::*;

    /// Rows with several column types and nulls, as a DataFrame library
    /// would write them.
    fn sample(rows: i64) -> RecordBatch {
        let n = rows as usize;
        let schema = Arc::new(Schema::new(vec![
            Field::new("seq", DataType::Int64, false),
            Field::new("price", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("paid", DataType::Boolean, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("day", DataType::Date32, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| (i % 5 != 0).then_some(i as f64 * 1.25)),
            )),
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 7 != 0).then(|| format!("name {i}"))),
            )),
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0)))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..rows).map(|i| 1_700_000_000_000_000 + i),
                )
                .with_timezone("+00:00"),
            ),
            Arc::new(
                Decimal128Array::from_iter(
                    (0..rows).map(|i| (i % 3 != 0).then_some(i as i128 * 101)),
                )
                .with_precision_and_scale(10, 2)
                .unwrap(),
            ),
            Arc::new(Date32Array::from_iter_values(
                (0..n as i32).map(|i| 19_000 + i),
            )),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn read_all(mut r: ColumnarReader, max: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        loop {
            match r.next_chunk(max).unwrap() {
                Chunk::Rows(b) => {
                    assert!(b.num_rows() <= max);
                    out.push(b);
                }
                Chunk::End => return out,
                Chunk::Dead(_) => panic!("columnar files have no bad rows"),
            }
        }
    }

    fn concat(batches: &[RecordBatch]) -> RecordBatch {
        arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tributary-tables-col-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn parquet_round_trip_keeps_types_and_resumes_at_a_row() {
        let data = sample(1000);
        let path = scratch("rows.parquet");
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(300))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(&path).unwrap(),
            data.schema(),
            Some(props),
        )
        .unwrap();
        w.write(&data).unwrap();
        w.close().unwrap();

        let r = ColumnarReader::parquet(&path, 64, Checkpoint::default()).unwrap();
        assert_eq!(r.lag(), Some(1000));
        assert_eq!(concat(&read_all(r, 64)), data);
        let resume = Checkpoint {
            next_row: 613,
            ..Checkpoint::default()
        };
        let rest = read_all(ColumnarReader::parquet(&path, 64, resume).unwrap(), 64);
        assert_eq!(concat(&rest), data.slice(613, 387));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn arrow_ipc_files_and_streams_round_trip_and_resume() {
        let data = sample(500);
        let file_path = scratch("rows.arrow");
        let mut w = arrow_ipc::writer::FileWriter::try_new(
            File::create(&file_path).unwrap(),
            &data.schema(),
        )
        .unwrap();
        // One big batch and a small one: cut to the batch size on reading.
        w.write(&data.slice(0, 450)).unwrap();
        w.write(&data.slice(450, 50)).unwrap();
        w.finish().unwrap();
        let stream_path = scratch("rows.arrows");
        let mut w = arrow_ipc::writer::StreamWriter::try_new(
            File::create(&stream_path).unwrap(),
            &data.schema(),
        )
        .unwrap();
        w.write(&data).unwrap();
        w.finish().unwrap();

        for path in [&file_path, &stream_path] {
            let all = read_all(
                ColumnarReader::arrow(path, Checkpoint::default()).unwrap(),
                100,
            );
            assert_eq!(concat(&all), data, "{}", path.display());
            let resume = Checkpoint {
                next_row: 455,
                ..Checkpoint::default()
            };
            let rest = read_all(ColumnarReader::arrow(path, resume).unwrap(), 100);
            assert_eq!(concat(&rest), data.slice(455, 45), "{}", path.display());
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let path = scratch("bad.parquet");
        std::fs::write(&path, "PAR1 nope").unwrap();
        let err = ColumnarReader::parquet(&path, 10, Checkpoint::default()).unwrap_err();
        assert!(
            err.0.contains("bad.parquet") && err.0.contains("not a readable Parquet"),
            "{err}"
        );
        let err = ColumnarReader::arrow(&path, Checkpoint::default()).unwrap_err();
        assert!(err.0.contains("not a readable Arrow IPC"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
