//! File identity and checkpoints.
//!
//! A file is known by its content, not its name: the identity is a hash of
//! its first and last [`FINGERPRINT_BYTES`] plus its size. A file dropped
//! again under the same name with new content is a new file; a file renamed
//! (or moved into a spool directory under another name) is the same one and
//! resumes where it was. The identity is the source partition the daemon
//! tracks checkpoints under.
//!
//! The checkpoint says where the next batch of that file starts: the next
//! logical row, and for CSV and NDJSON the byte offset and line of that row
//! in the (decompressed) stream, so a resume seeks instead of re-parsing.
//! A `done` flag marks the checkpoint after the file's last row.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How many bytes at each end of a file go into its fingerprint.
pub const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// The version byte of the checkpoint encoding.
const VERSION: u8 = 1;
/// The encoded size: version, flags, three `u64`s.
const ENCODED_LEN: usize = 2 + 3 * 8;
const FLAG_DONE: u8 = 1;
const FLAG_FAILED: u8 = 2;

/// What identifies a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    /// FNV-1a 64 of the first and last bytes.
    pub fingerprint: u64,
    /// The file's size in bytes.
    pub size: u64,
}

impl Identity {
    /// Reads the identity of the file at `path`.
    pub fn of_path(path: &Path) -> std::io::Result<Identity> {
        let mut file = File::open(path)?;
        Identity::of_file(&mut file)
    }

    /// Reads the identity of an open file, leaving its position undefined.
    pub fn of_file(file: &mut File) -> std::io::Result<Identity> {
        let size = file.metadata()?.len();
        let mut hash = Fnv::new();
        let mut buf = vec![0u8; FINGERPRINT_BYTES as usize];
        file.seek(SeekFrom::Start(0))?;
        let head = read_up_to(file, &mut buf)?;
        hash.write(&buf[..head]);
        if size > FINGERPRINT_BYTES {
            let tail_start = size
                .saturating_sub(FINGERPRINT_BYTES)
                .max(FINGERPRINT_BYTES);
            file.seek(SeekFrom::Start(tail_start))?;
            let tail = read_up_to(file, &mut buf)?;
            hash.write(&buf[..tail]);
        }
        hash.write(&size.to_le_bytes());
        Ok(Identity {
            fingerprint: hash.finish(),
            size,
        })
    }

    /// The source partition: readable in the offset file.
    pub fn partition(&self) -> Vec<u8> {
        format!("{:016x}-{}", self.fingerprint, self.size).into_bytes()
    }

    /// The identity a partition names, if it is one of ours.
    pub fn from_partition(partition: &[u8]) -> Option<Identity> {
        let text = std::str::from_utf8(partition).ok()?;
        let (fp, size) = text.split_once('-')?;
        if fp.len() != 16 {
            return None;
        }
        Some(Identity {
            fingerprint: u64::from_str_radix(fp, 16).ok()?,
            size: size.parse().ok()?,
        })
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// FNV-1a, 64 bit: stable across builds and platforms, unlike std's hasher.
#[derive(Debug)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Where reading a file resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// The 0-based index of the next data row (bad rows count too).
    pub next_row: u64,
    /// The byte offset of that row in the decompressed stream; 0 for
    /// formats read by row (Parquet, Arrow).
    pub byte_pos: u64,
    /// The 1-based line that row starts on; 0 when not line-based.
    pub next_line: u64,
    /// Every row of the file was read (or, with `failed`, reading it
    /// stopped for good).
    pub done: bool,
    /// The file could not be read to its end; it belongs in `error/`.
    pub failed: bool,
}

impl Checkpoint {
    /// The bytes the daemon stores.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.push(VERSION);
        out.push((u8::from(self.done) * FLAG_DONE) | (u8::from(self.failed) * FLAG_FAILED));
        out.extend_from_slice(&self.next_row.to_le_bytes());
        out.extend_from_slice(&self.byte_pos.to_le_bytes());
        out.extend_from_slice(&self.next_line.to_le_bytes());
        out
    }

    /// Decodes stored bytes; the error says what was wrong, since guessing a
    /// resume point would duplicate or lose rows.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        if bytes.len() != ENCODED_LEN {
            return Err(format!(
                "checkpoint is {} bytes, expected {ENCODED_LEN}",
                bytes.len()
            ));
        }
        if bytes[0] != VERSION {
            return Err(format!(
                "checkpoint version {} is not supported (expected {VERSION})",
                bytes[0]
            ));
        }
        if bytes[1] & !(FLAG_DONE | FLAG_FAILED) != 0 {
            return Err(format!("checkpoint has unknown flags {:#04x}", bytes[1]));
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[2 + 8 * i..10 + 8 * i]);
            u64::from_le_bytes(w)
        };
        Ok(Checkpoint {
            next_row: word(0),
            byte_pos: word(1),
            next_line: word(2),
            done: bytes[1] & FLAG_DONE != 0,
            failed: bytes[1] & FLAG_FAILED != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_bad_bytes_are_refused() {
        let c = Checkpoint {
            next_row: 7,
            byte_pos: 1234,
            next_line: 9,
            done: true,
            failed: true,
        };
        assert_eq!(Checkpoint::decode(&c.encode()), Ok(c));
        assert!(
            Checkpoint::decode(&[1, 0])
                .unwrap_err()
                .contains("expected 26")
        );
        let mut bad = c.encode();
        bad[0] = 9;
        assert!(Checkpoint::decode(&bad).unwrap_err().contains("version 9"));
        bad[0] = 1;
        bad[1] = 4;
        assert!(Checkpoint::decode(&bad).unwrap_err().contains("flags"));
    }

    #[test]
    fn identity_follows_content_not_name() {
        let dir = std::env::temp_dir().join(format!("tributary-tables-id-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a.csv"), dir.join("b.csv"), dir.join("c.csv"));
        std::fs::write(&a, b"id\n1\n2\n").unwrap();
        std::fs::write(&b, b"id\n1\n2\n").unwrap();
        std::fs::write(&c, b"id\n1\n3\n").unwrap();
        let ia = Identity::of_path(&a).unwrap();
        assert_eq!(ia, Identity::of_path(&b).unwrap());
        assert_ne!(ia, Identity::of_path(&c).unwrap());
        assert_eq!(Identity::from_partition(&ia.partition()), Some(ia));
        // Same head, different tail, beyond the fingerprinted head.
        let mut big = vec![b'x'; 200_000];
        std::fs::write(&a, &big).unwrap();
        big[150_000] = b'y';
        std::fs::write(&b, &big).unwrap();
        assert_ne!(
            Identity::of_path(&a).unwrap(),
            Identity::of_path(&b).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
