//! What makes a file the same file: device, inode and a fingerprint of its
//! first bytes; and the checkpoint a file's partition carries.
//!
//! The inode alone is not enough (a deleted file's inode is reused by the
//! next file created), the content alone is not enough (two files may start
//! with the same header). Both together are. A file shorter than
//! `fingerprint_bytes` when first seen is fingerprinted over the bytes it
//! has; the length used is part of the identity, so the same prefix is
//! checked when it has grown. An empty file has no identity until it has a
//! byte (there is nothing to read from it before that anyway).

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

pub use crate::config::MAX_FINGERPRINT_BYTES;
use crate::lines::Position;

/// A file's identity, fixed when it is first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// How many leading bytes the fingerprint covers.
    pub fp_len: u32,
    /// CRC-32 of those bytes.
    pub fp_crc: u32,
}

impl FileId {
    /// The source partition: readable in the offsets file.
    pub fn partition(&self) -> Vec<u8> {
        format!(
            "{:x}:{:x}:{:x}:{:08x}",
            self.dev, self.ino, self.fp_len, self.fp_crc
        )
        .into_bytes()
    }

    /// Parses [`FileId::partition`]; `None` for anything else.
    pub fn from_partition(bytes: &[u8]) -> Option<FileId> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(':');
        let dev = u64::from_str_radix(parts.next()?, 16).ok()?;
        let ino = u64::from_str_radix(parts.next()?, 16).ok()?;
        let fp_len = u32::from_str_radix(parts.next()?, 16).ok()?;
        let fp_crc = u32::from_str_radix(parts.next()?, 16).ok()?;
        // The fingerprint length sizes a buffer: never trust more than the
        // largest `fingerprint_bytes` accepted.
        if parts.next().is_some() || fp_len == 0 || fp_len > MAX_FINGERPRINT_BYTES {
            return None;
        }
        Some(FileId {
            dev,
            ino,
            fp_len,
            fp_crc,
        })
    }

    /// The identity of an open file, fingerprinting up to `max` bytes;
    /// `None` when the file is empty.
    pub fn of(file: &File, max: usize) -> std::io::Result<Option<FileId>> {
        let meta = file.metadata()?;
        let mut buf = vec![0u8; max];
        let n = read_prefix(file, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: u32::try_from(n).unwrap_or(u32::MAX),
            fp_crc: crc32fast::hash(&buf[..n]),
        }))
    }

    /// Whether `file` (same device and inode) still starts with the bytes
    /// this identity was made from. A truncated and rewritten file, or a
    /// reused inode, does not.
    pub fn content_matches(&self, file: &File) -> std::io::Result<bool> {
        let mut buf = vec![0u8; self.fp_len as usize];
        let n = read_prefix(file, &mut buf)?;
        Ok(n == buf.len() && crc32fast::hash(&buf) == self.fp_crc)
    }
}

/// Reads from offset 0 until `buf` is full or the file ends.
pub fn read_prefix(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// CRC-32 of the first `len` bytes of `file`, or `None` if it is shorter.
pub fn prefix_crc(file: &File, len: u64) -> std::io::Result<Option<u32>> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < len {
        let want = usize::try_from((len - at).min(buf.len() as u64)).unwrap_or(buf.len());
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => return Ok(None),
            Ok(k) => {
                hasher.update(&buf[..k]);
                at += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(hasher.finalize()))
}

const CHECKPOINT_VERSION: u8 = 1;
const FLAG_SKIP_TO_NEWLINE: u8 = 1;

/// Encodes a file's checkpoint: version, flags, offset, prefix CRC, and
/// the path last seen (for the operator and for log messages).
pub fn encode_checkpoint(at: Position, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + path.len());
    out.push(CHECKPOINT_VERSION);
    out.push(if at.skip_to_newline {
        FLAG_SKIP_TO_NEWLINE
    } else {
        0
    });
    out.extend_from_slice(&at.offset.to_le_bytes());
    out.extend_from_slice(&at.crc.to_le_bytes());
    let path = &path.as_bytes()[..path.len().min(4096)];
    out.extend_from_slice(&u32::try_from(path.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(path);
    out
}

/// Decodes [`encode_checkpoint`]; an error says what is wrong, never a
/// panic, whatever the bytes.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<(Position, String), String> {
    let (&version, rest) = bytes.split_first().ok_or("empty checkpoint")?;
    if version != CHECKPOINT_VERSION {
        return Err(format!(
            "checkpoint version {version}, this plugin reads version {CHECKPOINT_VERSION}"
        ));
    }
    if rest.len() < 17 {
        return Err(format!("checkpoint too short ({} bytes)", bytes.len()));
    }
    let flags = rest[0];
    let take8 = |s: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&s[..8]);
        a
    };
    let take4 = |s: &[u8]| -> [u8; 4] {
        let mut a = [0u8; 4];
        a.copy_from_slice(&s[..4]);
        a
    };
    let offset = u64::from_le_bytes(take8(&rest[1..9]));
    let crc = u32::from_le_bytes(take4(&rest[9..13]));
    let path_len = u32::from_le_bytes(take4(&rest[13..17])) as usize;
    let path_bytes = &rest[17..];
    if path_bytes.len() != path_len {
        return Err(format!(
            "checkpoint path length {path_len} but {} bytes follow",
            path_bytes.len()
        ));
    }
    if flags & !FLAG_SKIP_TO_NEWLINE != 0 {
        return Err(format!("unknown checkpoint flags {flags:#x}"));
    }
    Ok((
        Position {
            offset,
            crc,
            skip_to_newline: flags & FLAG_SKIP_TO_NEWLINE != 0,
        },
        String::from_utf8_lossy(path_bytes).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("logfile-id-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn partitions_round_trip_and_garbage_is_refused() {
        let id = FileId {
            dev: 0x803,
            ino: 123_456,
            fp_len: 256,
            fp_crc: 0xdead_beef,
        };
        assert_eq!(FileId::from_partition(&id.partition()), Some(id));
        for bad in [
            &b"1:2:ffffffff:4"[..],
            b"",
            b"1:2:3",
            b"1:2:0:4",
            b"x:2:3:4",
            b"1:2:3:4:5",
            b"\xff",
        ] {
            assert_eq!(FileId::from_partition(bad), None);
        }
    }

    #[test]
    fn checkpoints_round_trip_and_any_bytes_decode_without_panic() {
        let at = Position {
            offset: 1 << 40,
            crc: 7,
            skip_to_newline: true,
        };
        let bytes = encode_checkpoint(at, "/var/log/a.log");
        assert_eq!(
            decode_checkpoint(&bytes).unwrap(),
            (at, "/var/log/a.log".to_owned())
        );
        for cut in 0..bytes.len() {
            assert!(decode_checkpoint(&bytes[..cut]).is_err());
        }
        let mut state = 1u32;
        for _ in 0..2000 {
            let len = (state % 40) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|i| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (state >> 16) as u8 ^ i as u8
                })
                .collect();
            let _ = decode_checkpoint(&junk);
        }
    }

    #[test]
    fn a_short_file_is_fingerprinted_over_what_it_has_and_checked_as_it_grows() {
        let p = temp("short");
        std::fs::write(&p, b"hi\n").unwrap();
        let f = File::open(&p).unwrap();
        let id = FileId::of(&f, 256).unwrap().unwrap();
        assert_eq!(id.fp_len, 3);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"more\n")
            .unwrap();
        assert!(id.content_matches(&f).unwrap());
        std::fs::write(&p, b"ho\n").unwrap();
        assert!(!id.content_matches(&f).unwrap(), "rewritten in place");
        std::fs::write(&p, b"").unwrap();
        assert!(
            FileId::of(&f, 256).unwrap().is_none(),
            "empty: no identity yet"
        );
        assert!(!id.content_matches(&f).unwrap());
        assert_eq!(prefix_crc(&f, 1).unwrap(), None);
        let _ = std::fs::remove_file(&p);
    }
}
