//! The engine: finds files, follows them through rotation, truncation and
//! deletion, and turns what they gain into batches with checkpoints.
//!
//! Every tracked file is one source partition (its [`FileId`]). A batch's
//! checkpoint is the position after its last complete line (or multiline
//! event): what was read but not yet sent (a partial last line, a pending
//! multiline event) is read again after a restart, never skipped. A file
//! that is gone for good (deleted and drained, renamed out of the globs and
//! idle, truncated) ends with an empty checkpoint, a tombstone that tells the
//! daemon the partition can be forgotten.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use tributary_plugin_sdk::bad_rows::{Assembly, BadRow, Place, Policy, Run, Throttle, Verdict};
use tributary_plugin_sdk::{Batch, Checkpoint, Error, Logger};

use crate::config::{Config, ReadFrom};
use crate::identity::{FileId, decode_checkpoint, encode_checkpoint, prefix_crc};
use crate::lines::{Event, Joiner, Line, Position, Splitter};
use crate::parse::{GoodLines, Row};
use crate::time::now_ms;
use crate::watch::{Watcher, static_dir};

/// A partition holding no file, committed once on the first run, so that
/// `read_from` applies to the first run only even after every file's own
/// checkpoint was forgotten.
const STARTED_PARTITION: &[u8] = b"started";
/// Bytes read from one file per turn before others get theirs.
const READ_BUDGET: usize = 1 << 20;
/// Size of one read.
const CHUNK: usize = 64 * 1024;
/// How many truncated or vanished files are remembered for recognising
/// their copies.
const RETIRED_KEPT: usize = 64;
/// How many read positions of a file are kept for recognising a copy
/// that ends before where the file was read to.
const MARKS_KEPT: usize = 256;
/// Longest wait between looks at open files: deleted files being drained
/// raise no directory events.
const MAX_WAIT: Duration = Duration::from_millis(250);
/// Longest wait without inotify.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// A `read_from = "end"` start computes the prefix CRC (for recognising
/// copies) only for files up to this size.
const END_CRC_LIMIT: u64 = 64 << 20;
/// How soon the globs are expanded again when files were left out for
/// lack of a free handle.
const ROOM_RETRY: Duration = Duration::from_millis(50);
/// How often a repeated warning is logged at most.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// One file being followed.
#[derive(Debug)]
struct Tracked {
    id: FileId,
    partition: Vec<u8>,
    path: PathBuf,
    path_text: String,
    /// Closed when idle beyond `max_open_files`; reopened by path.
    file: Option<File>,
    splitter: Splitter,
    joiner: Joiner,
    /// The checkpoint of the last batch handed out.
    emitted: Position,
    /// The last checkpoints handed out (line starts with the CRC of the
    /// bytes before them), oldest first: a copy made while the file was
    /// read is recognised at the last of them it reaches.
    marks: VecDeque<Position>,
    /// Size at the last look.
    size: u64,
    /// When the file last grew (or was first seen).
    last_growth: Instant,
    /// Since when no glob matches it (renamed away or deleted).
    gone_since: Option<Instant>,
    /// Since when its link count is zero (deleted while open).
    deleted_since: Option<Instant>,
    /// Marked during a scan.
    seen: bool,
}

impl Tracked {
    /// Where a reader resumes without losing anything read but unsent.
    fn safe_position(&self) -> Position {
        self.joiner
            .pending_start()
            .unwrap_or_else(|| self.splitter.line_start())
    }

    /// Records the checkpoint of a batch handed out.
    fn set_emitted(&mut self, at: Position) {
        self.emitted = at;
        if self.marks.back().is_none_or(|m| m.offset < at.offset) {
            if self.marks.len() >= MARKS_KEPT {
                self.marks.pop_front();
            }
            self.marks.push_back(at);
        }
    }

    /// What is kept of it once it is gone, read to `at`.
    fn into_known(self, at: Position) -> Known {
        let mut marks = self.marks;
        if marks.back().is_none_or(|m| m.offset < at.offset) {
            marks.push_back(at);
        }
        Known {
            id: self.id,
            at,
            marks,
            path: self.path_text,
        }
    }
}

/// A file that is gone (truncated, released) or a checkpoint no file
/// matched: kept to recognise a copy of it.
#[derive(Debug, Clone)]
struct Known {
    id: FileId,
    at: Position,
    /// Earlier read positions, `at` last.
    marks: VecDeque<Position>,
    path: String,
}

/// A new file held back because it may be a copy of a tracked one.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    /// When it was first held back.
    since: Instant,
    /// Its size at the last look, and when that size was first seen.
    size: u64,
    grown: Instant,
    /// The live file it holds the same bytes as (copytruncate between the
    /// copy and the truncation): it waits until that file is truncated or
    /// gone, then is read from where the original's reading stopped.
    original: Option<FileId>,
}

/// Counters logged with rate limiting.
#[derive(Debug)]
struct Counters {
    overlong: u64,
    parse_errors: u64,
    /// Lets each kind of warning through once per [`WARN_INTERVAL`].
    warnings: Throttle,
}

/// The engine of one `logfile` source.
#[derive(Debug)]
pub struct Tailer {
    config: Config,
    host: String,
    log: Logger,
    watcher: Watcher,
    files: Vec<Tracked>,
    /// Checkpoints loaded at start, by (device, inode), until the first scan.
    restored: HashMap<(u64, u64), (FileId, Position, String)>,
    /// Whether this source never committed anything before.
    first_run: bool,
    /// Whether the first scan has happened.
    started: bool,
    retired: VecDeque<Known>,
    /// New files waiting to be told apart from a copy in progress.
    deferred: HashMap<(u64, u64), Deferred>,
    out: VecDeque<Batch>,
    /// An `on_error = "fail"` error, raised once the rows before it are out.
    failure: Option<Error>,
    next_scan: Instant,
    scan_now: bool,
    /// A matched file was empty at the last scan: a write is a reason to
    /// scan again at once.
    empty_pending: bool,
    cursor: usize,
    buf: Vec<u8>,
    counters: Counters,
}

/// The kernel's host name, or `None` if it cannot be read.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    (!name.is_empty()).then_some(name)
}

impl Tailer {
    /// An engine resuming from the committed `checkpoints`.
    pub fn new(config: Config, checkpoints: &[Checkpoint], log: Logger) -> Tailer {
        let first_run = !checkpoints.iter().any(|c| c.partition == STARTED_PARTITION);
        let host = config
            .host
            .clone()
            .or_else(host_name)
            .unwrap_or_else(|| "unknown".to_owned());
        let mut restored = HashMap::new();
        for c in checkpoints {
            let (partition, checkpoint) = (&c.partition, &c.checkpoint);
            if c.ends_partition() || partition == STARTED_PARTITION {
                continue; // a file already released, or the marker
            }
            let Some(id) = FileId::from_partition(partition) else {
                log.warn(&format!(
                    "Ignoring a checkpoint with an unreadable partition {:?}; the file it \
                     belonged to is read as new.",
                    String::from_utf8_lossy(partition)
                ));
                continue;
            };
            match decode_checkpoint(checkpoint) {
                Ok((at, path)) => {
                    restored.insert((id.dev, id.ino), (id, at, path));
                }
                Err(e) => log.warn(&format!(
                    "Ignoring an unreadable checkpoint of partition {}: {e}; the file is \
                     read as new.",
                    String::from_utf8_lossy(partition)
                )),
            }
        }
        let watcher = Watcher::new(config.inotify);
        let mut out = VecDeque::new();
        if first_run {
            out.push_back(Batch {
                records: RecordBatch::new_empty(crate::parse::standard_schema()),
                partition: STARTED_PARTITION.to_vec(),
                checkpoint: b"1".to_vec(),
                lag: None,
            });
        }
        Tailer {
            first_run,
            host,
            log,
            watcher,
            files: Vec::new(),
            restored,
            started: false,
            retired: VecDeque::new(),
            deferred: HashMap::new(),
            out,
            failure: None,
            next_scan: Instant::now(),
            scan_now: true,
            empty_pending: false,
            cursor: 0,
            buf: vec![0u8; CHUNK],
            counters: Counters {
                overlong: 0,
                parse_errors: 0,
                warnings: Throttle::new(WARN_INTERVAL),
            },
            config,
        }
    }

    /// The host name in the `host` column.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The next batch, or `None` when nothing arrived within `timeout`.
    pub fn poll(&mut self, timeout: Duration) -> Result<Option<Batch>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(b) = self.out.pop_front() {
                return Ok(Some(b));
            }
            if let Some(e) = self.failure.take() {
                return Err(e);
            }
            let now = Instant::now();
            if self.scan_now || now >= self.next_scan {
                self.scan_now = false;
                self.next_scan = now + Duration::from_millis(self.config.glob_interval_ms);
                self.scan(now);
            }
            self.read_round(now)?;
            if !self.out.is_empty() || self.failure.is_some() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let cap = if self.watcher.is_inotify() {
                MAX_WAIT
            } else {
                POLL_WAIT
            };
            let mut wait = (deadline - now).min(cap);
            wait = wait.min(self.next_scan.saturating_duration_since(now));
            if let Some(t) = self.next_timer() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            let woken = self.watcher.wait(wait);
            if woken.names_changed || (woken.modified && self.empty_pending) {
                self.scan_now = true;
            }
        }
    }

    /// The earliest partial-line or multiline deadline.
    fn next_timer(&self) -> Option<Instant> {
        let partial = Duration::from_millis(self.config.partial_line_timeout_ms);
        self.files
            .iter()
            .flat_map(|t| {
                let p = (partial > Duration::ZERO && t.splitter.has_partial())
                    .then(|| t.last_growth + partial);
                [p, t.joiner.due_at()]
            })
            .flatten()
            .min()
    }

    /// Expands the globs: new files are tracked, renamed ones followed,
    /// vanished ones marked gone.
    fn scan(&mut self, now: Instant) {
        let mut paths: Vec<PathBuf> = Vec::new();
        for pattern in &self.config.include {
            self.watcher.watch(&static_dir(pattern.as_str()));
            let Ok(found) = glob::glob(pattern.as_str()) else {
                continue;
            };
            for path in found.flatten() {
                if self.config.exclude.iter().any(|x| x.matches_path(&path)) {
                    continue;
                }
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        for t in &mut self.files {
            t.seen = false;
        }
        self.empty_pending = false;
        let mut fresh: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if let Some(parent) = path.parent() {
                self.watcher.watch(parent);
            }
            let key = (meta.dev(), meta.ino());
            if let Some(t) = self
                .files
                .iter_mut()
                .find(|t| (t.id.dev, t.id.ino) == key && !t.seen)
            {
                t.seen = true;
                t.gone_since = None;
                if t.path != path {
                    t.path_text = path.to_string_lossy().into_owned();
                    t.path = path;
                }
                t.size = meta.len();
                continue;
            }
            if self.files.iter().any(|t| (t.id.dev, t.id.ino) == key) {
                continue; // a second name (hard link) of a tracked file
            }
            fresh.push((path, meta));
        }
        for t in &mut self.files {
            if !t.seen && t.gone_since.is_none() {
                t.gone_since = Some(now);
            }
        }
        // Known inodes first, so that a restored checkpoint is matched to
        // its own file before anything is taken for a copy of it.
        fresh.sort_by_key(|(_, m)| !self.restored.contains_key(&(m.dev(), m.ino())));
        for (path, meta) in fresh {
            self.track(path, &meta, now);
        }
        if !self.started {
            self.started = true;
            // Checkpoints no file matched: their files are gone. Forget
            // them, but remember them for recognising a copy.
            let leftovers: Vec<_> = self.restored.drain().map(|(_, v)| v).collect();
            for (id, at, path) in leftovers {
                self.log.info(&format!(
                    "File {path} (last read to byte {}) is no longer found; forgetting its \
                     checkpoint.",
                    at.offset
                ));
                self.tombstone(&id);
                self.remember(Known {
                    id,
                    at,
                    marks: VecDeque::from([at]),
                    path,
                });
            }
        }
        self.deferred
            .retain(|_, d| now.duration_since(d.since) < Duration::from_secs(3600));
    }

    /// Starts following a file not tracked yet.
    fn track(&mut self, path: PathBuf, meta: &std::fs::Metadata, now: Instant) {
        let key = (meta.dev(), meta.ino());
        if self.follows_live_original(key, meta.len(), now) {
            return;
        }
        let restored = self.restored.remove(&key);
        if meta.len() == 0 && restored.is_none() {
            // Nothing to identify or read yet: its first write triggers a
            // scan instead of waiting for the next interval.
            self.empty_pending = true;
            return;
        }
        if !self.make_room() {
            if let Some(r) = restored {
                self.restored.insert(key, r);
            }
            // Look again soon: handles free up as files are read to their end.
            self.next_scan = self.next_scan.min(now + ROOM_RETRY);
            return;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                self.warn_once("open", &format!("Cannot open {}: {e}.", path.display()));
                if let Some(r) = restored {
                    self.restored.insert(key, r);
                }
                return;
            }
        };
        let path_text = path.to_string_lossy().into_owned();
        let size = file.metadata().map_or(meta.len(), |m| m.len());

        if let Some((id, at, _)) = restored {
            match id.content_matches(&file) {
                Ok(true) if size >= at.offset => {
                    self.log.info(&format!(
                        "Resuming {path_text} at byte {} of {size}.",
                        at.offset
                    ));
                    self.add(id, path, path_text, file, at, size, now);
                    return;
                }
                Ok(true) => {
                    self.log.info(&format!(
                        "{path_text} is shorter ({size} bytes) than where reading stopped \
                         ({}): it was truncated; reading it from the start.",
                        at.offset
                    ));
                }
                _ => {
                    self.log.info(&format!(
                        "{path_text} has the inode of a file read before but other content: \
                         reading it from the start."
                    ));
                }
            }
            self.tombstone(&id);
        }

        let Ok(Some(id)) = FileId::of(&file, self.config.fingerprint_bytes) else {
            self.empty_pending = true; // emptied since: picked up once it has a byte
            return;
        };
        match self.copy_of(&file, key, size, now) {
            Copy::Of(at, original) => {
                self.log.info(&format!(
                    "{path_text} is a copy of {original}; reading it from byte {}, where \
                     reading of the original stopped.",
                    at.offset
                ));
                self.deferred.remove(&key);
                self.add(id, path, path_text, file, at, size, now);
                return;
            }
            Copy::Follow(original) => {
                self.log.info(&format!(
                    "{path_text} is a copy of {original}, which is still read: it waits until \
                     the original is truncated or gone."
                ));
                return;
            }
            Copy::Wait => return,
            Copy::No => {}
        }
        self.deferred.remove(&key);
        let start = if !self.started && self.first_run && self.config.read_from == ReadFrom::End {
            end_position(&file, size)
        } else {
            Position::default()
        };
        self.add(id, path, path_text, file, start, size, now);
    }

    /// Whether a held-back copy of a live file keeps waiting: its original
    /// is still tracked and the copy grew within `copy_wait_ms`. Cheap: no
    /// byte of the copy is read while it waits.
    fn follows_live_original(&mut self, key: (u64, u64), size: u64, now: Instant) -> bool {
        let copy_wait = Duration::from_millis(self.config.copy_wait_ms);
        let Some(d) = self.deferred.get_mut(&key) else {
            return false;
        };
        if d.size != size {
            d.size = size;
            d.grown = now;
        }
        let Some(original) = d.original else {
            return false;
        };
        let waiting = now.duration_since(d.grown) < copy_wait;
        let grown = d.grown;
        if waiting && self.files.iter().any(|t| t.id == original) {
            self.next_scan = self.next_scan.min(grown + copy_wait);
            return true;
        }
        false
    }

    /// Whether a new file holds the same bytes as a known file up to where
    /// that file was read, i.e. is its copy (copytruncate, or a copy made
    /// while the daemon was stopped).
    ///
    /// A copy of a file still being read is held back until the original
    /// is truncated or gone ([`Copy::Follow`]): only then is it known how
    /// far the original was read, and the copy is read from there. A copy
    /// that ends before that point (the original was read past the end of
    /// the copy) holds nothing unread.
    fn copy_of(&mut self, file: &File, key: (u64, u64), size: u64, now: Instant) -> Copy {
        let copy_wait = Duration::from_millis(self.config.copy_wait_ms);
        let followed_long = self
            .deferred
            .get(&key)
            .is_some_and(|d| d.original.is_some() && now.duration_since(d.grown) >= copy_wait);
        let live = self.files.iter().map(|t| {
            let at = t.safe_position();
            let mut marks = t.marks.clone();
            if marks.back().is_none_or(|m| m.offset < at.offset) {
                marks.push_back(at);
            }
            (t.id, at, marks, t.path_text.clone(), true)
        });
        let gone = self
            .retired
            .iter()
            .map(|k| (k.id, k.at, k.marks.clone(), k.path.clone(), false));
        let candidates: Vec<_> = live
            .chain(gone)
            .filter(|(id, at, ..)| (id.dev, id.ino) != key && at.offset > 0)
            .collect();
        let mut wait = false;
        for (id, at, marks, path, is_live) in candidates {
            if !id.content_matches(file).unwrap_or(false) {
                continue;
            }
            // The last read position the new file reaches, if its bytes
            // up to there are the original's.
            let mark = marks
                .iter()
                .rev()
                .find(|m| m.offset <= size)
                .copied()
                .filter(|m| prefix_crc(file, m.offset).ok().flatten() == Some(m.crc));
            if is_live {
                if mark.is_some() && !followed_long {
                    let d = self.deferred.entry(key).or_insert(Deferred {
                        since: now,
                        size,
                        grown: now,
                        original: None,
                    });
                    d.original = Some(id);
                    return Copy::Follow(path);
                }
                if size < at.offset {
                    let d = self.deferred.entry(key).or_insert(Deferred {
                        since: now,
                        size,
                        grown: now,
                        original: None,
                    });
                    if now.duration_since(d.since) < copy_wait {
                        wait = true;
                    }
                    continue;
                }
                if mark == Some(at) {
                    return Copy::Of(at, path);
                }
                continue;
            }
            match mark {
                Some(m) if m == at => {
                    let at = Position {
                        skip_to_newline: at.skip_to_newline,
                        ..at
                    };
                    return Copy::Of(at, path);
                }
                // The original was read beyond the end of its copy:
                // nothing in the copy is unread.
                Some(_) if at.offset > size => {
                    if let Ok(Some(crc)) = prefix_crc(file, size) {
                        let end = Position {
                            offset: size,
                            crc,
                            skip_to_newline: false,
                        };
                        return Copy::Of(end, path);
                    }
                }
                _ => {}
            }
        }
        if wait { Copy::Wait } else { Copy::No }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        id: FileId,
        path: PathBuf,
        path_text: String,
        file: File,
        at: Position,
        size: u64,
        now: Instant,
    ) {
        let c = &self.config;
        self.files.push(Tracked {
            partition: id.partition(),
            id,
            path,
            path_text,
            file: Some(file),
            splitter: Splitter::new(c.max_line_bytes, c.line_overflow, at),
            joiner: Joiner::new(
                c.multiline.as_ref(),
                Duration::from_millis(c.multiline_timeout_ms),
                c.max_line_bytes,
            ),
            emitted: at,
            marks: VecDeque::from([at]),
            size,
            last_growth: now,
            gone_since: None,
            deleted_since: None,
            seen: true,
        });
    }

    /// Closes idle handles until one more fits under `max_open_files`.
    fn make_room(&mut self) -> bool {
        let open = self.files.iter().filter(|t| t.file.is_some()).count();
        if open < self.config.max_open_files {
            return true;
        }
        // Only a file that is still reachable by its path and fully read
        // can be closed: a deleted one could not be reopened.
        let victim = self
            .files
            .iter_mut()
            .filter(|t| {
                t.file.is_some()
                    && t.gone_since.is_none()
                    && t.deleted_since.is_none()
                    && t.splitter.offset() >= t.size
            })
            .min_by_key(|t| t.last_growth);
        match victim {
            Some(t) => {
                t.file = None;
                true
            }
            None => false,
        }
    }

    /// Reads files in turn until one yields batches or all were looked at.
    fn read_round(&mut self, now: Instant) -> Result<(), Error> {
        let n = self.files.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if i >= self.files.len() {
                break;
            }
            self.read_file(i, now)?;
            if !self.out.is_empty() || self.failure.is_some() {
                self.cursor = (i + 1) % n.max(1);
                break;
            }
        }
        self.release_finished(now);
        Ok(())
    }

    /// Reads what file `i` gained and queues its batches.
    fn read_file(&mut self, i: usize, now: Instant) -> Result<(), Error> {
        if self.files[i].file.is_none() && !self.reopen(i) {
            return Ok(());
        }
        let t = &mut self.files[i];
        let Some(file) = &t.file else { return Ok(()) };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Err(Error::new(format!("cannot stat {}: {e}", t.path_text))),
        };
        if meta.nlink() == 0 {
            t.deleted_since.get_or_insert(now);
        }
        let size = meta.len();
        t.size = size;
        let offset = t.splitter.offset();
        if size < offset || (size > offset && !t.id.content_matches(file).unwrap_or(false)) {
            self.truncated(i, now);
            return Ok(());
        }
        let mut events = Vec::new();
        let mut lines: Vec<Line> = Vec::new();
        let mut read = 0usize;
        let mut at = offset;
        while read < READ_BUDGET && events.len() < self.config.max_batch_lines {
            let n = match file.read_at(&mut self.buf, at) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::new(format!("cannot read {}: {e}", t.path_text))),
            };
            t.splitter.feed(&self.buf[..n], &mut lines);
            for line in lines.drain(..) {
                t.joiner.push(line, now, &mut events);
            }
            read += n;
            at += n as u64;
        }
        if read > 0 {
            t.last_growth = now;
        }
        let partial = Duration::from_millis(self.config.partial_line_timeout_ms);
        if partial > Duration::ZERO
            && t.splitter.has_partial()
            && now.duration_since(t.last_growth) >= partial
            && let Some(line) = t.splitter.flush_partial()
        {
            t.joiner.push(line, now, &mut events);
        }
        t.joiner.flush_due(now, &mut events);
        let overlong = t.splitter.overlong;
        t.splitter.overlong = 0;
        self.count_overlong(overlong, i);
        let lag = size.saturating_sub(self.files[i].splitter.offset());
        let at = self.files[i].safe_position();
        self.emit(i, events, at, Some(lag))
    }

    /// Reopens an idle file closed for the handle limit, if it grew.
    fn reopen(&mut self, i: usize) -> bool {
        let t = &self.files[i];
        let Ok(meta) = std::fs::metadata(&t.path) else {
            return false;
        };
        if (meta.dev(), meta.ino()) != (t.id.dev, t.id.ino) || meta.len() == t.splitter.offset() {
            return false;
        }
        if !self.make_room() {
            return false;
        }
        let t = &mut self.files[i];
        match File::open(&t.path) {
            Ok(f) => {
                t.file = Some(f);
                true
            }
            Err(_) => false,
        }
    }

    /// File `i` shrank or its first bytes changed: what was read of it is
    /// done; it is read again from the start as a new file.
    fn truncated(&mut self, i: usize, now: Instant) {
        let mut events = Vec::new();
        let t = &mut self.files[i];
        t.joiner.flush(&mut events);
        let at = t.safe_position();
        let path = t.path_text.clone();
        self.log.info(&format!(
            "{path} was truncated or rewritten; reading it again from the start."
        ));
        // Lines completed before the truncation are sent; an unfinished
        // last line was cut by the truncation and is not.
        if let Err(e) = self.emit(i, events, at, None) {
            self.failure = Some(e);
        }
        let mut t = self.files.remove(i);
        self.tombstone(&t.id);
        let (file, path, path_text) = (t.file.take(), t.path.clone(), t.path_text.clone());
        self.remember(t.into_known(at));
        if let Some(file) = file
            && let Ok(Some(id)) = FileId::of(&file, self.config.fingerprint_bytes)
        {
            let size = file.metadata().map_or(0, |m| m.len());
            self.add(id, path, path_text, file, Position::default(), size, now);
        }
        // An empty file is picked up by the next scan once it has data.
        self.scan_now = true;
    }

    /// Releases files that left the globs (or were deleted), are read to
    /// their end and have not grown for `rotate_wait_ms`, counted from
    /// when they were noticed away at the earliest: a writer holding the
    /// file open may still append right after a rotation or deletion.
    fn release_finished(&mut self, now: Instant) {
        let wait = Duration::from_millis(self.config.rotate_wait_ms);
        let mut i = 0;
        while i < self.files.len() {
            let t = &mut self.files[i];
            let away_since = match (t.gone_since, t.deleted_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let quiet =
                away_since.is_some_and(|away| now.duration_since(away.max(t.last_growth)) >= wait);
            if quiet && let Some(file) = &t.file {
                // The size of the last look may be stale: look again.
                if let Ok(meta) = file.metadata() {
                    t.size = meta.len();
                }
            }
            let drained = t.splitter.offset() >= t.size;
            if !(quiet && drained) {
                i += 1;
                continue;
            }
            // Nobody will complete a partial line now: send it.
            let mut events = Vec::new();
            let t = &mut self.files[i];
            if let Some(line) = t.splitter.flush_partial() {
                t.joiner.push(line, now, &mut events);
            }
            t.joiner.flush(&mut events);
            let at = t.safe_position();
            self.log.info(&format!(
                "Released {} ({}): read to its end.",
                t.path_text,
                if t.deleted_since.is_some() {
                    "deleted"
                } else {
                    "no longer matched"
                }
            ));
            if let Err(e) = self.emit(i, events, at, None) {
                self.failure = Some(e);
            }
            let t = self.files.remove(i);
            self.tombstone(&t.id);
            self.remember(t.into_known(at));
            // A copy held back for this file is read now.
            if !self.deferred.is_empty() {
                self.scan_now = true;
            }
        }
    }

    fn remember(&mut self, known: Known) {
        if self.retired.len() >= RETIRED_KEPT {
            self.retired.pop_front();
        }
        self.retired.push_back(known);
    }

    /// Queues the empty checkpoint that ends a partition.
    fn tombstone(&mut self, id: &FileId) {
        self.out.push_back(Batch {
            records: RecordBatch::new_empty(crate::parse::standard_schema()),
            partition: id.partition(),
            checkpoint: Vec::new(),
            lag: None,
        });
    }

    /// Parses `events` of file `i` into batches: rows, dead letters, and a
    /// checkpoint-only batch when only dropped lines moved the position.
    fn emit(
        &mut self,
        i: usize,
        events: Vec<Event>,
        at: Position,
        lag: Option<u64>,
    ) -> Result<(), Error> {
        let t = &self.files[i];
        if events.is_empty() {
            if at != t.emitted {
                let batch = Batch {
                    records: RecordBatch::new_empty(crate::parse::standard_schema()),
                    partition: t.partition.clone(),
                    checkpoint: encode_checkpoint(at, &t.path_text),
                    lag,
                };
                self.files[i].set_emitted(at);
                self.out.push_back(batch);
            }
            return Ok(());
        }
        let path = t.path_text.clone();
        let partition = t.partition.clone();
        // Lines are not counted here (a file may be read from its end), so a
        // bad line is placed by its byte offset; skipped lines are reported
        // in one throttled warning, not a log line each.
        let mut policy = Policy::new(self.config.on_error, path.clone()).logging(0);
        // One read time per batch: the `read_time` column, and what dates
        // a line whose own time has no year.
        let read_time_ms = now_ms();
        let mut assembly = Assembly::new(GoodLines::new(
            &self.config.parser,
            &path,
            &self.host,
            read_time_ms,
        ));
        let mut last_end = t.emitted;
        let mut batches: Vec<Batch> = Vec::new();
        let batch = |run: Run<RecordBatch>, end: Position, lag: Option<u64>| {
            Ok::<_, Error>(Batch {
                records: run.into_records()?,
                partition: partition.clone(),
                checkpoint: encode_checkpoint(end, &path),
                lag,
            })
        };
        let mut failure = None;
        let mut skipped = 0u64;
        let total = events.len();
        for (n, event) in events.into_iter().enumerate() {
            let line = match String::from_utf8(event.text) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            let end = if n + 1 == total && at.offset >= event.end.offset {
                at
            } else {
                event.end
            };
            match self.config.parser.parse_at(&line, read_time_ms) {
                Ok(cells) => {
                    if assembly.has_dead()
                        && let Some(run) = assembly.take()?
                    {
                        batches.push(batch(run, last_end, None)?);
                    }
                    assembly.rows_mut().push(Row {
                        line,
                        offset: event.start,
                        cells,
                    });
                }
                Err((class, message)) => {
                    let bad = BadRow {
                        class,
                        message,
                        place: Place::Byte(event.start),
                        raw: line.into_bytes(),
                    };
                    match policy.judge(bad) {
                        Ok(Verdict::Skip) => skipped += 1,
                        Ok(Verdict::Dead(letter)) => {
                            if assembly.has_rows()
                                && let Some(run) = assembly.take()?
                            {
                                batches.push(batch(run, last_end, None)?);
                            }
                            assembly.push_dead(letter);
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            last_end = end;
        }
        if let Some(run) = assembly.take()? {
            batches.push(batch(run, last_end, lag)?);
        }
        if batches.is_empty() && last_end != self.files[i].emitted {
            // Every line was skipped: only the position moves.
            let empty = RecordBatch::new_empty(crate::parse::standard_schema());
            batches.push(batch(Run::Rows(empty), last_end, lag)?);
        }
        self.files[i].set_emitted(last_end);
        self.out.extend(batches);
        if skipped > 0 {
            self.counters.parse_errors += skipped;
            let total = self.counters.parse_errors;
            self.warn_once(
                "parse",
                &format!(
                    "Skipped {skipped} line(s) of {path} the parser could not read \
                     ({total} since start; on_error = \"skip\")."
                ),
            );
        }
        if let Some(e) = failure {
            self.failure = Some(e);
        }
        Ok(())
    }

    fn count_overlong(&mut self, n: u64, i: usize) {
        if n == 0 {
            return;
        }
        self.counters.overlong += n;
        let total = self.counters.overlong;
        let msg = format!(
            "{n} line(s) of {} longer than max_line_bytes = {} were {} ({total} since start).",
            self.files[i].path_text,
            self.config.max_line_bytes,
            match self.config.line_overflow {
                crate::config::Overflow::Truncate => "truncated",
                crate::config::Overflow::Skip => "skipped",
            }
        );
        self.warn_once("overlong", &msg);
    }

    /// Logs a warning of `kind` at most once per [`WARN_INTERVAL`].
    fn warn_once(&mut self, kind: &'static str, msg: &str) {
        self.counters.warnings.warn(&self.log, kind, msg);
    }

    /// Paths followed now, for tests and diagnostics.
    pub fn tracked_paths(&self) -> Vec<&Path> {
        self.files.iter().map(|t| t.path.as_path()).collect()
    }

    /// Handles open now.
    pub fn open_handles(&self) -> usize {
        self.files.iter().filter(|t| t.file.is_some()).count()
    }
}

enum Copy {
    /// A copy: start at this position; the original's path.
    Of(Position, String),
    /// A copy of a file still being read, held back until the original is
    /// truncated or gone; the original's path.
    Follow(String),
    /// Maybe a copy still being written: look again later.
    Wait,
    /// Not a copy.
    No,
}

/// Where `read_from = "end"` starts: after the last newline, so a last
/// line being written is read whole.
fn end_position(file: &File, size: u64) -> Position {
    let window = size.min(CHUNK as u64);
    let mut buf = vec![0u8; usize::try_from(window).unwrap_or(CHUNK)];
    let start = size - window;
    let offset = match file.read_at(&mut buf, start) {
        Ok(n) => match memchr::memrchr(b'\n', &buf[..n]) {
            Some(p) => start + p as u64 + 1,
            None => size,
        },
        Err(_) => size,
    };
    let crc = if offset <= END_CRC_LIMIT {
        prefix_crc(file, offset).ok().flatten().unwrap_or(0)
    } else {
        0
    };
    Position {
        offset,
        crc,
        skip_to_newline: false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use arrow_array::cast::AsArray;
    use serde_json::json;

    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("logfile-tail-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
        fn glob(&self, pattern: &str) -> String {
            self.0.join(pattern).to_string_lossy().into_owned()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// What a test saw: lines in order, and each partition's last checkpoint
    /// (the daemon's view once everything is delivered).
    #[derive(Default)]
    struct Seen {
        lines: Vec<String>,
        checkpoints: BTreeMap<Vec<u8>, Vec<u8>>,
        started: bool,
    }

    impl Seen {
        fn committed(&self) -> Vec<Checkpoint> {
            let marker = self
                .started
                .then(|| Checkpoint::new(STARTED_PARTITION, b"1"));
            self.checkpoints
                .iter()
                .map(|(p, c)| Checkpoint::new(p.clone(), c.clone()))
                .chain(marker)
                .collect()
        }
    }

    fn tailer(options: serde_json::Value, seen: &Seen) -> Tailer {
        let config = Config::from_json(&options).unwrap();
        Tailer::new(config, &seen.committed(), Logger::none())
    }

    /// Polls until a poll of `quiet` returns nothing.
    fn drain(t: &mut Tailer, seen: &mut Seen, quiet: Duration) {
        while let Some(b) = t.poll(quiet).unwrap() {
            if let Some(col) = b.records.column_by_name("line") {
                for v in col.as_string::<i32>().iter() {
                    seen.lines.push(v.unwrap().to_owned());
                }
            }
            if b.partition != STARTED_PARTITION {
                seen.checkpoints.insert(b.partition, b.checkpoint);
            } else {
                seen.started = true;
            }
        }
    }

    /// Empties `path` in place, as copytruncate does.
    fn truncate(path: &Path) {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
    }

    fn numbered(range: std::ops::Range<u32>) -> String {
        range.map(|n| format!("line {n}\n")).collect()
    }

    fn expect(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|n| format!("line {n}")).collect()
    }

    const QUIET: Duration = Duration::from_millis(300);

    #[test]
    fn rename_rotation_reads_the_rest_of_the_old_file_and_all_of_the_new() {
        let d = Dir::new("rename");
        let log = d.path("app.log");
        append(&log, &numbered(0..10));
        let mut seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("app.log*")], "rotate_wait_ms": 0}),
            &seen,
        );
        drain(&mut t, &mut seen, QUIET);
        append(&log, &numbered(10..20));
        std::fs::rename(&log, d.path("app.log.1")).unwrap();
        append(&d.path("app.log.1"), &numbered(20..25));
        append(&log, &numbered(25..30));
        drain(&mut t, &mut seen, Duration::from_millis(1500));
        let mut lines = seen.lines.clone();
        lines.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
        assert_eq!(lines, expect(0..30));
        assert_eq!(seen.lines.len(), 30, "no duplicates");
    }

    #[test]
    fn restart_resumes_after_the_last_checkpoint_and_reads_rotated_remainders() {
        let d = Dir::new("restart");
        let log = d.path("app.log");
        append(&log, &numbered(0..10));
        let mut seen = Seen::default();
        let mut t = tailer(json!({"include": [d.glob("app.log*")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        drop(t);
        // Stopped: three rotations happen.
        for r in 0..3u32 {
            append(&log, &numbered(10 + r * 10..20 + r * 10));
            for k in (1..=r + 1).rev() {
                let from = if k == 1 {
                    log.clone()
                } else {
                    d.path(&format!("app.log.{}", k - 1))
                };
                let _ = std::fs::rename(from, d.path(&format!("app.log.{k}")));
            }
        }
        append(&log, &numbered(40..45));
        let mut t = tailer(
            json!({"include": [d.glob("app.log*")], "read_from": "end"}),
            &seen,
        );
        drain(&mut t, &mut seen, Duration::from_millis(800));
        let mut lines = seen.lines.clone();
        lines.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
        assert_eq!(lines, expect(0..45));
    }

    #[test]
    fn truncation_in_place_reads_the_new_content_once() {
        let d = Dir::new("truncate");
        let log = d.path("app.log");
        append(&log, &numbered(0..10));
        let mut seen = Seen::default();
        let mut t = tailer(json!({"include": [d.glob("*.log")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        // Truncate and write past the old offset before the tailer looks.
        truncate(&log);
        append(&log, &numbered(100..120));
        drain(&mut t, &mut seen, QUIET);
        let mut want = expect(0..10);
        want.extend(expect(100..120));
        assert_eq!(seen.lines, want);
    }

    /// `app.log` with lines 0..10, followed by `app.log*` and read.
    fn reading_app_log(label: &str) -> (Dir, PathBuf, Tailer, Seen) {
        let d = Dir::new(label);
        let log = d.path("app.log");
        append(&log, &numbered(0..10));
        let mut seen = Seen::default();
        let mut t = tailer(json!({"include": [d.glob("app.log*")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        (d, log, t, seen)
    }

    #[test]
    fn a_copy_is_read_from_where_the_original_stopped() {
        let (d, log, mut t, mut seen) = reading_app_log("copy");
        // copytruncate: lines 10..15 reach the file, it is copied, then
        // truncated, then the writer goes on.
        append(&log, &numbered(10..15));
        std::fs::copy(&log, d.path("app.log.1")).unwrap();
        truncate(&log);
        append(&log, &numbered(15..20));
        drain(&mut t, &mut seen, QUIET);
        assert_eq!(sorted(&seen), expect(0..20));
    }

    /// copytruncate with writes going on: lines 10..15 are copied (to
    /// `copy_name`) before the reader saw them, 15..18 reach the original
    /// after the copy and are read from it before the truncation, 18..20
    /// come after it. Returns the directory, the tailer and what it read.
    fn copy_while_writing(label: &str, copy_name: &str) -> (Dir, Tailer, Seen) {
        let (d, log, mut t, mut seen) = reading_app_log(label);
        append(&log, &numbered(10..15));
        std::fs::copy(&log, d.path(copy_name)).unwrap();
        append(&log, &numbered(15..18));
        drain(&mut t, &mut seen, QUIET);
        truncate(&log);
        append(&log, &numbered(18..20));
        drain(&mut t, &mut seen, QUIET);
        (d, t, seen)
    }

    fn sorted(seen: &Seen) -> Vec<String> {
        let mut lines = seen.lines.clone();
        lines.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
        lines
    }

    #[test]
    fn a_copy_made_while_the_original_is_read_repeats_nothing_the_original_gave() {
        let (_d, _t, seen) = copy_while_writing("copy-live", "app.log.1");
        assert_eq!(sorted(&seen), expect(0..20));
    }

    #[test]
    fn a_copy_found_after_the_original_was_read_past_its_end_is_not_read_again() {
        // The copy appears under a matching name only after the original
        // was read to line 18 and truncated.
        let (d, mut t, mut seen) = copy_while_writing("copy-short", "copy.tmp");
        std::fs::rename(d.path("copy.tmp"), d.path("app.log.1")).unwrap();
        append(&d.path("app.log"), &numbered(20..22));
        drain(&mut t, &mut seen, QUIET);
        assert_eq!(sorted(&seen), expect(0..22));
    }

    #[test]
    fn a_deleted_file_is_drained_then_released_and_its_partition_forgotten() {
        let d = Dir::new("delete");
        let log = d.path("app.log");
        append(&log, &numbered(0..5));
        let mut seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("*.log")], "rotate_wait_ms": 0}),
            &seen,
        );
        drain(&mut t, &mut seen, QUIET);
        let mut writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        writer.write_all(numbered(5..8).as_bytes()).unwrap();
        writer.write_all(b"no newline").unwrap();
        drop(writer);
        drain(&mut t, &mut seen, Duration::from_millis(1200));
        let mut want = expect(0..8);
        want.push("no newline".into());
        assert_eq!(seen.lines, want);
        assert_eq!(t.open_handles(), 0);
        assert!(seen.checkpoints.values().all(Vec::is_empty), "tombstoned");
    }

    #[test]
    fn a_write_right_after_deletion_is_read_before_release() {
        let d = Dir::new("delete-late");
        let log = d.path("app.log");
        append(&log, &numbered(0..5));
        let mut seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("*.log")], "rotate_wait_ms": 300}),
            &seen,
        );
        drain(&mut t, &mut seen, QUIET);
        let mut writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        // The tailer notices the deletion while the file has been idle for
        // longer than rotate_wait_ms; the writer appends only after that.
        assert!(t.poll(Duration::from_millis(50)).unwrap().is_none());
        writer.write_all(numbered(5..8).as_bytes()).unwrap();
        drop(writer);
        drain(&mut t, &mut seen, Duration::from_millis(1200));
        assert_eq!(seen.lines, expect(0..8));
        assert_eq!(t.open_handles(), 0);
    }

    #[test]
    fn a_reused_inode_with_new_content_is_read_from_its_start() {
        let d = Dir::new("inode");
        let log = d.path("app.log");
        append(&log, &numbered(0..5));
        let mut seen = Seen::default();
        let mut t = tailer(json!({"include": [d.glob("*.log")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        drop(t);
        // While stopped, the file is replaced by one with the same inode
        // and other, longer content.
        let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(0).unwrap();
        drop(f);
        append(&log, &numbered(50..60));
        let mut t = tailer(json!({"include": [d.glob("*.log")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        let mut want = expect(0..5);
        want.extend(expect(50..60));
        assert_eq!(seen.lines, want);
    }

    #[test]
    fn files_with_the_same_first_bytes_and_tiny_files_are_tracked_apart() {
        let d = Dir::new("same");
        let header = "# header line shared by both files, long enough\n";
        append(&d.path("a.log"), &format!("{header}{}", numbered(0..3)));
        let mut seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("*.log")], "copy_wait_ms": 200}),
            &seen,
        );
        drain(&mut t, &mut seen, QUIET);
        append(&d.path("b.log"), &format!("{header}{}", numbered(3..4)));
        append(&d.path("c.log"), "x\n");
        append(&d.path("a.log"), &numbered(4..5));
        drain(&mut t, &mut seen, Duration::from_millis(800));
        append(&d.path("c.log"), "y\n");
        drain(&mut t, &mut seen, QUIET);
        let mut lines = seen.lines.clone();
        lines.sort();
        let mut want = vec![header.trim_end().to_owned(); 2];
        want.extend(expect(0..5));
        want.extend(["x".to_owned(), "y".to_owned()]);
        want.sort();
        assert_eq!(lines, want);
        assert_eq!(seen.checkpoints.len(), 3);
    }

    #[test]
    fn a_partial_last_line_is_held_across_a_restart_and_read_whole() {
        let d = Dir::new("partial");
        let log = d.path("app.log");
        append(&log, "one\ntw");
        let mut seen = Seen::default();
        let mut t = tailer(json!({"include": [d.glob("*.log")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        drop(t);
        append(&log, "o\n");
        let mut t = tailer(json!({"include": [d.glob("*.log")]}), &seen);
        drain(&mut t, &mut seen, QUIET);
        assert_eq!(seen.lines, ["one", "two"]);
    }

    #[test]
    fn a_partial_line_sent_after_its_timeout_is_never_sent_twice() {
        let d = Dir::new("partial-timeout");
        let log = d.path("app.log");
        append(&log, "one\ntw");
        let mut seen = Seen::default();
        let opts = json!({"include": [d.glob("*.log")], "partial_line_timeout_ms": 100});
        let mut t = tailer(opts.clone(), &seen);
        drain(&mut t, &mut seen, QUIET);
        drop(t);
        append(&log, "o\nthree\n");
        let mut t = tailer(opts, &seen);
        drain(&mut t, &mut seen, QUIET);
        assert_eq!(seen.lines, ["one", "tw", "o", "three"]);
    }

    #[test]
    fn read_from_end_applies_to_the_first_run_even_when_every_file_was_forgotten() {
        let d = Dir::new("end-forgotten");
        append(&d.path("a.log"), &numbered(0..3));
        let opts = json!({"include": [d.glob("*.log")], "read_from": "end", "rotate_wait_ms": 0});
        let mut seen = Seen::default();
        let mut t = tailer(opts.clone(), &seen);
        drain(&mut t, &mut seen, QUIET);
        assert!(seen.started);
        std::fs::remove_file(d.path("a.log")).unwrap();
        drain(&mut t, &mut seen, Duration::from_millis(600));
        assert!(seen.checkpoints.values().all(Vec::is_empty));
        drop(t);
        // The store drops empty checkpoints: only the marker is left.
        seen.checkpoints.clear();
        append(&d.path("b.log"), &numbered(3..5));
        let mut t = tailer(opts, &seen);
        drain(&mut t, &mut seen, QUIET);
        assert_eq!(seen.lines, expect(3..5));
    }

    #[test]
    fn read_from_end_skips_what_exists_on_the_first_run_only() {
        let d = Dir::new("end");
        append(&d.path("a.log"), &numbered(0..3));
        let mut seen = Seen::default();
        let opts = json!({"include": [d.glob("*.log")], "read_from": "end"});
        let mut t = tailer(opts.clone(), &seen);
        drain(&mut t, &mut seen, QUIET);
        append(&d.path("a.log"), &numbered(3..4));
        append(&d.path("b.log"), &numbered(4..5));
        drain(&mut t, &mut seen, Duration::from_millis(1200));
        drop(t);
        append(&d.path("c.log"), &numbered(5..6));
        let mut t = tailer(opts, &seen);
        drain(&mut t, &mut seen, QUIET);
        assert_eq!(seen.lines, expect(3..6));
    }

    #[test]
    fn open_handles_stay_under_the_limit_with_many_files() {
        let d = Dir::new("many");
        for n in 0..40u32 {
            append(&d.path(&format!("f{n}.log")), &numbered(n..n + 1));
        }
        let mut seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("*.log")], "max_open_files": 8}),
            &seen,
        );
        for _ in 0..20 {
            drain(&mut t, &mut seen, Duration::from_millis(50));
            assert!(t.open_handles() <= 8);
        }
        for n in 0..40u32 {
            append(&d.path(&format!("f{n}.log")), &numbered(100 + n..101 + n));
        }
        for _ in 0..40 {
            drain(&mut t, &mut seen, Duration::from_millis(50));
            assert!(t.open_handles() <= 8);
        }
        let mut lines = seen.lines.clone();
        lines.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
        let mut want = expect(0..40);
        want.extend(expect(100..140));
        assert_eq!(lines, want);
    }

    #[test]
    fn dead_letters_carry_unparsable_lines_in_order() {
        let d = Dir::new("dlq");
        append(&d.path("a.log"), "{\"seq\": 1}\nnot json\n{\"seq\": 2}\n");
        let mut seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("*.log")], "parser": "json", "on_error": "dead_letter"}),
            &seen,
        );
        let mut kinds = Vec::new();
        while let Some(b) = t.poll(QUIET).unwrap() {
            if b.partition == STARTED_PARTITION {
                continue;
            }
            let dl = tributary_plugin_sdk::dead_letter::is_dead_letter(b.records.schema().as_ref());
            kinds.push((
                dl,
                b.records.num_rows(),
                decode_checkpoint(&b.checkpoint).unwrap().0.offset,
            ));
        }
        assert_eq!(kinds, [(false, 1, 11), (true, 1, 20), (false, 1, 31)]);
        let _ = &mut seen;
    }

    #[test]
    fn a_bad_line_time_follows_on_error_like_any_parse_error() {
        use tributary_plugin_sdk::dead_letter::{column, is_dead_letter};
        // The middle line's month is 13.
        let text = "2024-01-02 03:04:05 one\n2024-13-02 03:04:06 two\n2024-01-02 03:04:07 three\n";
        let options = |d: &Dir, on_error: &str| {
            json!({
                "include": [d.glob("*.log")],
                "parser": "regex",
                "regex": r"^(?P<at>\S+ \S+) (?P<msg>.*)$",
                "regex_types": {"at": "timestamp:%Y-%m-%d %H:%M:%S"},
                "on_error": on_error,
            })
        };
        // Per policy: (kind, rows) of each batch, and the failure, if any.
        let run = |on_error: &str| {
            let d = Dir::new(&format!("bad-time-{on_error}"));
            append(&d.path("a.log"), text);
            let mut t = tailer(options(&d, on_error), &Seen::default());
            let mut batches = Vec::new();
            let failure = loop {
                match t.poll(QUIET) {
                    Ok(None) => break None,
                    Ok(Some(b)) if b.partition == STARTED_PARTITION => {}
                    Ok(Some(b)) => batches.push(b.records),
                    Err(e) => break Some(e.message().to_owned()),
                }
            };
            (batches, failure)
        };
        let times = |b: &RecordBatch| -> Vec<i64> {
            b.column_by_name("at")
                .unwrap()
                .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                .values()
                .to_vec()
        };

        let (batches, failure) = run("skip");
        assert!(failure.is_none());
        let all: Vec<i64> = batches.iter().flat_map(times).collect();
        assert_eq!(all, [1_704_164_645_000, 1_704_164_647_000]);

        let (batches, failure) = run("dead_letter");
        assert!(failure.is_none());
        let kinds: Vec<(bool, usize)> = batches
            .iter()
            .map(|b| (is_dead_letter(b.schema().as_ref()), b.num_rows()))
            .collect();
        assert_eq!(kinds, [(false, 1), (true, 1), (false, 1)]);
        let dead = &batches[1];
        let message = dead
            .column_by_name(column::ERROR_MESSAGE)
            .unwrap()
            .as_string::<i32>()
            .value(0);
        for part in [
            "column `at`",
            "`2024-13-02 03:04:06`",
            "`%Y-%m-%d %H:%M:%S`",
        ] {
            assert!(message.contains(part), "{part} in {message}");
        }
        let class = dead.column_by_name(column::ERROR_CLASS).unwrap();
        assert_eq!(class.as_string::<i32>().value(0), "parse_error");

        let (batches, failure) = run("fail");
        let failure = failure.expect("on_error = fail stops the source");
        assert!(failure.contains("a.log: the line at byte 24"), "{failure}");
        let all: Vec<i64> = batches.iter().flat_map(times).collect();
        assert_eq!(
            all,
            [1_704_164_645_000],
            "the line before the bad one is sent"
        );
    }

    #[test]
    fn on_error_fail_stops_after_the_good_lines() {
        let d = Dir::new("fail");
        append(&d.path("a.log"), "{\"seq\": 1}\nnot json\n");
        let seen = Seen::default();
        let mut t = tailer(
            json!({"include": [d.glob("*.log")], "parser": "json", "on_error": "fail"}),
            &seen,
        );
        let first = t.poll(QUIET).unwrap().unwrap();
        assert_eq!(first.partition, STARTED_PARTITION);
        assert!(matches!(t.poll(QUIET), Ok(Some(_))));
        let e = t.poll(QUIET).unwrap_err();
        assert!(e.message().contains("a.log: the line at byte 11"), "{e}");
    }
}
