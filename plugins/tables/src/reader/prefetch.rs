//! Reads a file one chunk ahead on its own thread.
//!
//! The daemon polls, serialises and sends on one thread per source, so
//! every microsecond spent parsing CSV is a microsecond not spent sending.
//! With the reader on a thread of its own, the next chunk is parsed while
//! the previous one is serialised and sent. At most [`AHEAD`] chunks wait in
//! between, so memory stays bounded by a few batches.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use tributary_plugin_sdk::ErrorCategory;

use arrow_schema::SchemaRef;

use super::{Chunk, ReadError, TableReader};
use crate::checkpoint::Checkpoint;

/// Chunks read ahead of the consumer.
const AHEAD: usize = 2;

/// One chunk and the reader's state right after it.
struct Ahead {
    chunk: Result<Chunk, ReadError>,
    position: Checkpoint,
    lag: Option<u64>,
    bad: u64,
    logs: Vec<String>,
}

/// A [`TableReader`] fed by a reader running on its own thread.
pub struct Prefetch {
    rx: Option<Receiver<Ahead>>,
    thread: Option<JoinHandle<()>>,
    schema: SchemaRef,
    position: Checkpoint,
    lag: Option<u64>,
    bad: u64,
    logs: Vec<String>,
    ended: bool,
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch")
            .field("position", &self.position)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Prefetch {
    /// Moves `reader` to a new thread that reads chunks of at most
    /// `max_rows` rows until the end of the file or an error.
    pub fn start(
        mut reader: Box<dyn TableReader + Send>,
        max_rows: usize,
        name: String,
    ) -> Result<Prefetch, ReadError> {
        let schema = reader.schema();
        let position = reader.position();
        let lag = reader.lag();
        let (tx, rx): (SyncSender<Ahead>, Receiver<Ahead>) = sync_channel(AHEAD);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                loop {
                    let chunk = reader.next_chunk(max_rows);
                    let last = matches!(chunk, Ok(Chunk::End) | Err(_));
                    let (bad, logs) = reader.bad_rows();
                    let ahead = Ahead {
                        chunk,
                        position: reader.position(),
                        lag: reader.lag(),
                        bad,
                        logs,
                    };
                    // A closed channel means the file was dropped: stop.
                    if tx.send(ahead).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|e| ReadError::io("cannot start a reader thread", &e))?;
        Ok(Prefetch {
            rx: Some(rx),
            thread: Some(thread),
            schema,
            position,
            lag,
            bad: 0,
            logs: Vec::new(),
            ended: false,
        })
    }
}

impl TableReader for Prefetch {
    fn next_chunk(&mut self, _max_rows: usize) -> Result<Chunk, ReadError> {
        if self.ended {
            return Ok(Chunk::End);
        }
        let Some(ahead) = self.rx.as_ref().and_then(|rx| rx.recv().ok()) else {
            self.ended = true;
            return Err(ReadError(
                "the reader thread stopped without finishing the file".into(),
                ErrorCategory::Internal,
            ));
        };
        self.position = ahead.position;
        self.lag = ahead.lag;
        self.bad = ahead.bad;
        self.logs.extend(ahead.logs);
        if matches!(ahead.chunk, Ok(Chunk::End) | Err(_)) {
            self.ended = true;
        }
        ahead.chunk
    }

    fn position(&self) -> Checkpoint {
        self.position
    }

    fn lag(&self) -> Option<u64> {
        self.lag
    }

    fn bad_rows(&mut self) -> (u64, Vec<String>) {
        (self.bad, std::mem::take(&mut self.logs))
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the channel first makes a thread blocked on a full channel
        // return; it then finishes at most the chunk it is reading.
        self.rx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    /// Endless rows, or a panic at row `panic_at`.
    struct Endless {
        next: i64,
        panic_at: Option<i64>,
        schema: SchemaRef,
    }

    impl Endless {
        fn new(panic_at: Option<i64>) -> Box<Endless> {
            let schema = Arc::new(Schema::new(vec![Field::new("seq", DataType::Int64, false)]));
            Box::new(Endless {
                next: 0,
                panic_at,
                schema,
            })
        }
    }

    impl TableReader for Endless {
        fn next_chunk(&mut self, max_rows: usize) -> Result<Chunk, ReadError> {
            assert!(self.panic_at != Some(self.next), "reader bug");
            let start = self.next;
            self.next += max_rows as i64;
            let col = Int64Array::from_iter_values(start..self.next);
            Ok(Chunk::Rows(
                RecordBatch::try_new(self.schema.clone(), vec![Arc::new(col)]).unwrap(),
            ))
        }
        fn position(&self) -> Checkpoint {
            Checkpoint {
                next_row: self.next as u64,
                ..Checkpoint::default()
            }
        }
        fn lag(&self) -> Option<u64> {
            None
        }
        fn bad_rows(&mut self) -> (u64, Vec<String>) {
            (0, Vec::new())
        }
        fn schema(&self) -> SchemaRef {
            self.schema.clone()
        }
    }

    #[test]
    fn positions_follow_the_chunks_handed_out_not_the_ones_read_ahead() {
        let mut p = Prefetch::start(Endless::new(None), 10, "t".into()).unwrap();
        for i in 1..=5 {
            assert!(matches!(p.next_chunk(10).unwrap(), Chunk::Rows(_)));
            assert_eq!(p.position().next_row, i * 10);
        }
        // Dropping it mid-file stops the thread (the drop joins it).
        drop(p);
    }

    #[test]
    fn a_panicking_reader_is_an_error_not_a_crash() {
        let mut p = Prefetch::start(Endless::new(Some(20)), 10, "t".into()).unwrap();
        assert!(p.next_chunk(10).is_ok());
        assert!(p.next_chunk(10).is_ok());
        let err = p.next_chunk(10).unwrap_err();
        assert!(err.0.contains("stopped"), "{err}");
        assert_eq!(p.position().next_row, 20);
        assert!(matches!(p.next_chunk(10), Ok(Chunk::End)));
    }
}
