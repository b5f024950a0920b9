//! The file offset store: one small file per source in a state directory.
//!
//! Format (two lines, so an operator can read it):
//!
//! ```text
//! {"version":1,"source":"orders","partitions":[{"partition":"736571","checkpoint":"10270000000000000"}]}
//! crc32=1a2b3c4d
//! ```
//!
//! Partition and checkpoint bytes are hex. The second line is the CRC-32 of
//! the first, so a torn or edited file is detected instead of trusted.
//! Writes go to a temporary file that is synced, renamed over the old one,
//! and then the directory is synced: after a crash the file is either the old
//! version or the new one, never a mix, and the rename itself survives power
//! loss.
//!
//! Between commits, acknowledged checkpoints are also noted in
//! `source-<name>.json.recent`, same format, written and renamed without a
//! sync: a write that reaches the page cache survives the process, so a
//! `kill -9` repeats only what was in flight rather than up to a commit
//! interval of records. A commit removes the note. Loading prefers a note
//! that decodes; after a power loss it may be missing, torn (its checksum
//! fails and the commit is used) or older than the commit, and any of those
//! is a position Kafka acknowledged, so the worst case is repeating records,
//! never skipping them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Checkpoints, OffsetError, OffsetStore, hex, unhex};

const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    source: String,
    partitions: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    partition: String,
    checkpoint: String,
}

/// Stores each source's checkpoints in `<dir>/source-<name>.json`.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Uses `dir`, creating it when missing.
    pub fn open(dir: PathBuf) -> Result<Self, OffsetError> {
        fs::create_dir_all(&dir).map_err(|e| OffsetError::Io {
            path: dir.clone(),
            source: e,
        })?;
        Ok(FileStore { dir })
    }

    /// The file of `source`. Source names are restricted by the config to
    /// `[A-Za-z0-9_.-]`; the prefix keeps names like `..` harmless.
    pub fn path_of(&self, source: &str) -> PathBuf {
        self.dir.join(format!("source-{source}.json"))
    }

    /// The note of `source` (see the module documentation).
    fn recent_path_of(&self, source: &str) -> PathBuf {
        self.dir.join(format!("source-{source}.json.recent"))
    }

    /// The noted checkpoints of `source`, if a note is there and intact.
    fn load_recent(&self, source: &str) -> Option<Checkpoints> {
        let path = self.recent_path_of(source);
        let data = fs::read(&path).ok()?;
        decode(source, &data)
            .inspect_err(|reason| {
                tracing::warn!(
                    path = %path.display(),
                    reason = %reason,
                    "Ignoring a checkpoint note that does not decode; resuming from the last commit."
                );
            })
            .ok()
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OffsetError + '_ {
        move |e| OffsetError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Encodes checkpoints in the file format.
/// An empty checkpoint ends a partition (a file source's file that is gone
/// for good): it is not written, so the file stays bounded however many
/// files come and go, and loading finds nothing to resume there, which is
/// what an empty checkpoint means.
fn encode(source: &str, checkpoints: &Checkpoints) -> Vec<u8> {
    let body = FileV1 {
        version: VERSION,
        source: source.to_owned(),
        partitions: checkpoints
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(p, c)| Entry {
                partition: hex(p),
                checkpoint: hex(c),
            })
            .collect(),
    };
    // Serialising plain strings and numbers cannot fail.
    let line = serde_json::to_string(&body).unwrap_or_default();
    format!("{line}\ncrc32={:08x}\n", crc32fast::hash(line.as_bytes())).into_bytes()
}

/// Decodes the file format; any deviation is an error with its reason.
fn decode(source: &str, data: &[u8]) -> Result<Checkpoints, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_owned())?;
    let mut lines = text.split('\n');
    let body = lines.next().unwrap_or_default();
    let crc_line = lines.next().ok_or("missing checksum line")?;
    if lines.any(|l| !l.is_empty()) {
        return Err("unexpected content after the checksum line".into());
    }
    let crc = crc_line
        .strip_prefix("crc32=")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or("malformed checksum line")?;
    if crc != crc32fast::hash(body.as_bytes()) {
        return Err("checksum mismatch".into());
    }
    let version: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("invalid JSON: {e}"))?;
    match version.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "version {v} is not supported (this daemon reads version {VERSION})"
            ));
        }
        None => return Err("missing version".into()),
    }
    let file: FileV1 = serde_json::from_value(version).map_err(|e| format!("invalid: {e}"))?;
    if file.source != source {
        return Err(format!("it belongs to source `{}`", file.source));
    }
    file.partitions
        .into_iter()
        .map(|e| match (unhex(&e.partition), unhex(&e.checkpoint)) {
            (Some(p), Some(c)) => Ok((p, c)),
            _ => Err("invalid hex in an entry".to_owned()),
        })
        .collect()
}

impl OffsetStore for FileStore {
    fn load(&self, source: &str) -> Result<Checkpoints, OffsetError> {
        if let Some(recent) = self.load_recent(source) {
            return Ok(recent);
        }
        let path = self.path_of(source);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoints::new()),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        decode(source, &data).map_err(|reason| OffsetError::Corrupt {
            path,
            source_name: source.to_owned(),
            reason,
        })
    }

    fn commit(&self, source: &str, checkpoints: &Checkpoints) -> Result<(), OffsetError> {
        let path = self.path_of(source);
        let tmp = self.dir.join(format!(".source-{source}.json.tmp"));
        let data = encode(source, checkpoints);
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            Ok(())
        };
        if let Err(e) = write() {
            // Leave no half-written temporary behind (e.g. on ENOSPC).
            let _ = fs::remove_file(&tmp);
            return Err(Self::io(&tmp)(e));
        }
        fs::rename(&tmp, &path).map_err(Self::io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(Self::io(&self.dir))?;
        // The commit holds everything the note did (both come from the same
        // acknowledged positions, which only move forward).
        match fs::remove_file(self.recent_path_of(source)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Self::io(&self.recent_path_of(source))(e))
            }
            _ => Ok(()),
        }
    }

    fn note(&self, source: &str, checkpoints: &Checkpoints) -> Result<(), OffsetError> {
        let path = self.recent_path_of(source);
        let tmp = self.dir.join(format!(".source-{source}.json.recent.tmp"));
        fs::write(&tmp, encode(source, checkpoints)).map_err(Self::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(Self::io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tributary-offsets-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn sample() -> Checkpoints {
        let mut c = Checkpoints::new();
        c.insert(b"seq".to_vec(), 42u64.to_le_bytes().to_vec());
        // Binary partition bytes round-trip through hex; an empty checkpoint
        // is not stored (see `empty_checkpoints_end_their_partition...`).
        c.insert(vec![0, 255, 7], vec![0]);
        c
    }

    #[test]
    fn empty_checkpoints_end_their_partition_and_are_not_stored() {
        let dir = temp_dir("tombstones");
        let store = FileStore::open(dir.clone()).unwrap();
        let mut state = sample();
        state.insert(b"gone".to_vec(), Vec::new());
        store.commit("logs", &state).unwrap();
        assert_eq!(store.load("logs").unwrap(), sample());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_note_is_loaded_until_the_next_commit_replaces_it() {
        let dir = temp_dir("note");
        let store = FileStore::open(dir.clone()).unwrap();
        store.commit("orders", &sample()).unwrap();
        let mut noted = sample();
        noted.insert(b"seq".to_vec(), 50u64.to_le_bytes().to_vec());
        store.note("orders", &noted).unwrap();
        assert_eq!(store.load("orders").unwrap(), noted, "the note is newer");
        let mut committed = noted.clone();
        committed.insert(b"seq".to_vec(), 60u64.to_le_bytes().to_vec());
        store.commit("orders", &committed).unwrap();
        assert!(
            !store.recent_path_of("orders").exists(),
            "a commit removes the note"
        );
        assert_eq!(store.load("orders").unwrap(), committed);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_note_falls_back_to_the_commit() {
        let dir = temp_dir("torn-note");
        let store = FileStore::open(dir.clone()).unwrap();
        store.commit("orders", &sample()).unwrap();
        let mut noted = sample();
        noted.insert(b"seq".to_vec(), 50u64.to_le_bytes().to_vec());
        store.note("orders", &noted).unwrap();
        let path = store.recent_path_of("orders");
        let data = fs::read(&path).unwrap();
        // What a power loss can leave of an unsynced write: a prefix, or
        // nothing at all.
        for torn in [&data[..data.len() / 2], &[][..]] {
            fs::write(&path, torn).unwrap();
            assert_eq!(store.load("orders").unwrap(), sample());
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_note_without_any_commit_is_loaded() {
        let dir = temp_dir("note-only");
        let store = FileStore::open(dir.clone()).unwrap();
        store.note("orders", &sample()).unwrap();
        assert_eq!(store.load("orders").unwrap(), sample());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn committed_checkpoints_load_back_identically() {
        let dir = temp_dir("roundtrip");
        let store = FileStore::open(dir.clone()).unwrap();
        assert!(store.load("orders").unwrap().is_empty());
        store.commit("orders", &sample()).unwrap();
        assert_eq!(store.load("orders").unwrap(), sample());
        let mut next = sample();
        next.insert(b"seq".to_vec(), 43u64.to_le_bytes().to_vec());
        store.commit("orders", &next).unwrap();
        assert_eq!(store.load("orders").unwrap(), next);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file remains: {leftovers:?}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_reported_by_name_and_never_reset() {
        let dir = temp_dir("corrupt");
        let store = FileStore::open(dir.clone()).unwrap();
        store.commit("orders", &sample()).unwrap();
        let path = store.path_of("orders");
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = store.load("orders").unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        // The damaged file is still there for the operator to inspect.
        assert_eq!(fs::read(&path).unwrap(), bytes);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_truncation_of_a_file_is_detected() {
        let data = encode("orders", &sample());
        for len in 0..data.len() - 1 {
            assert!(
                decode("orders", &data[..len]).is_err(),
                "a file cut at {len} bytes was accepted"
            );
        }
        assert_eq!(decode("orders", &data).unwrap(), sample());
    }

    #[test]
    fn a_file_of_another_source_or_version_is_refused() {
        let data = encode("orders", &sample());
        assert!(decode("clicks", &data).unwrap_err().contains("belongs to"));
        let body = r#"{"version":2,"source":"orders","partitions":[]}"#;
        let file = format!("{body}\ncrc32={:08x}\n", crc32fast::hash(body.as_bytes()));
        assert!(
            decode("orders", file.as_bytes())
                .unwrap_err()
                .contains("version 2")
        );
    }

    #[test]
    fn failed_write_leaves_the_previous_version_readable() {
        let dir = temp_dir("failedwrite");
        let store = FileStore::open(dir.clone()).unwrap();
        store.commit("orders", &sample()).unwrap();
        // A directory where the temporary file must go makes the write fail,
        // for root too (unlike a read-only directory).
        fs::create_dir(dir.join(".source-orders.json.tmp")).unwrap();
        let mut next = sample();
        next.clear();
        assert!(store.commit("orders", &next).is_err());
        assert_eq!(store.load("orders").unwrap(), sample());
        fs::remove_dir_all(dir).unwrap();
    }
}
