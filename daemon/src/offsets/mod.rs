//! Where committed source checkpoints live.
//!
//! A checkpoint is written only after Kafka acknowledged every record before
//! it (see `pipeline::ack`), so whatever a store returns at start is safe to
//! resume from: nothing before it is lost, and at most what came after the
//! last commit is sent again.

mod file;
pub mod kafka;
pub mod tool;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pub use file::FileStore;
pub use kafka::KafkaStore;

/// The committed checkpoint of each partition of one source.
pub type Checkpoints = BTreeMap<Vec<u8>, Vec<u8>>;

/// Errors of the offset stores.
#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    /// Reading or writing the store failed (full disk, read-only, permissions).
    #[error("offset store {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored file is damaged. It is never reset silently: resuming from
    /// the wrong place would lose or repeat data.
    #[error(
        "offset file {} is corrupt ({reason}); refusing to guess where source `{source_name}` \
         stopped. Move the file aside to start the source from the beginning",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The source it belongs to.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The Kafka offsets topic cannot be read or written, or is gone.
    #[error("offsets topic `{topic}`: {message}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What failed.
        message: String,
    },
}

/// Bytes as lowercase hex, the form checkpoints and partitions take in the
/// offset files, the Kafka offset records, exports and the API.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Lowercase hex back to bytes; `None` for anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// Locks a mutex, recovering from poisoning: the stores keep plain maps that
/// a panic cannot leave half-updated in a way that matters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A place to keep checkpoints. Implementations are called from blocking
/// contexts (they may fsync).
pub trait OffsetStore: Send + Sync + std::fmt::Debug {
    /// The last committed checkpoints of `source`; empty when it never committed.
    fn load(&self, source: &str) -> Result<Checkpoints, OffsetError>;
    /// Replaces the checkpoints of `source`, durably, atomically.
    fn commit(&self, source: &str, checkpoints: &Checkpoints) -> Result<(), OffsetError>;
    /// Records acknowledged checkpoints of `source` between commits, cheaply:
    /// they survive the process (a `kill -9`, a crash) but not necessarily
    /// the machine, and [`OffsetStore::load`] prefers them to the last
    /// commit. A store without such a record ignores the call.
    fn note(&self, source: &str, checkpoints: &Checkpoints) -> Result<(), OffsetError> {
        let _ = (source, checkpoints);
        Ok(())
    }
    /// For a store kept in Kafka: the records that commit `checkpoints` of
    /// `source` when the caller's transactional producer sends them inside
    /// its transaction; `None` for a store outside Kafka, which cannot take
    /// part in a transaction.
    fn in_transaction(
        &self,
        source: &str,
        checkpoints: &Checkpoints,
    ) -> Option<Result<TransactionalOffsets, OffsetError>> {
        let _ = (source, checkpoints);
        None
    }
    /// The transaction holding the records of [`OffsetStore::in_transaction`]
    /// committed: `checkpoints` are now the stored ones.
    fn committed_in_transaction(&self, source: &str, checkpoints: &Checkpoints) {
        let _ = (source, checkpoints);
    }
}

/// One record of the Kafka offset store: its key and its value (`None` for a
/// tombstone).
pub type OffsetRecordBytes = (Vec<u8>, Option<Vec<u8>>);

/// Offset records for a Kafka transaction: keys and values (`None` for a
/// tombstone) for `topic`.
#[derive(Debug)]
pub struct TransactionalOffsets {
    /// The offsets topic.
    pub topic: String,
    /// `(key, value)` pairs.
    pub records: Vec<OffsetRecordBytes>,
}
