//! The engine of every table source: finds files (a path, a glob or a spool
//! directory), reads them one at a time through the format's reader, and
//! moves spool files away once their last checkpoint is committed.
//!
//! A file's last batch carries a checkpoint with the `done` flag (an empty
//! batch when the file ended on a bad row, or had no rows at all), so the
//! daemon's commit of that checkpoint is the proof that every row of the file
//! is delivered. Only then, in [`Tables::committed`], does a spool file move.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use arrow_array::RecordBatch;
use tributary_plugin_sdk::dead_letter::dead_letter_batch;
use tributary_plugin_sdk::{self as sdk, Batch, Error, Logger, Poll};

use crate::checkpoint::{Checkpoint, Identity};
use crate::config::{Config, Format, Input, SpoolConfig};
use crate::reader::columnar::ColumnarReader;
use crate::reader::csv::CsvReader;
use crate::reader::ndjson::NdjsonReader;
use crate::reader::prefetch::Prefetch;
use crate::reader::{Chunk, ReadError, TableReader};

/// How long an idle poll sleeps between looks for new files.
const IDLE_SLEEP: Duration = Duration::from_millis(20);

/// The file being read.
struct OpenFile {
    path: PathBuf,
    partition: Vec<u8>,
    reader: Box<dyn TableReader>,
    first_row: u64,
}

/// Where a file read to its end goes once its last checkpoint is committed.
#[derive(Debug, Clone)]
struct Awaiting {
    path: PathBuf,
    /// `Some(reason)` for `error/`.
    failure: Option<String>,
}

/// The state of one table source.
pub struct Tables {
    config: Config,
    log: Logger,
    /// The last committed checkpoint of every file identity.
    committed: HashMap<Vec<u8>, Checkpoint>,
    current: Option<OpenFile>,
    /// Spool files read to their end, by partition, awaiting the commit of
    /// their last checkpoint.
    awaiting: HashMap<Vec<u8>, Awaiting>,
    /// Spool: size, modification time and since when they held, per file.
    settling: HashMap<PathBuf, (u64, Option<SystemTime>, Instant)>,
    /// Path mode: files already handled, with the size and time they had.
    handled: HashMap<PathBuf, (u64, Option<SystemTime>)>,
    /// Path mode: files found and not yet read.
    queue: Vec<PathBuf>,
    last_scan: Option<Instant>,
    /// Path mode without `watch`: the one scan happened.
    scanned_once: bool,
    /// A spool directory that cannot be listed is reported once.
    spool_warned: bool,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("format", &self.config.format)
            .field("current", &self.current.as_ref().map(|c| &c.path))
            .field("awaiting", &self.awaiting.len())
            .finish_non_exhaustive()
    }
}

impl Tables {
    /// A source resuming after `checkpoints`. Checkpoints that are not ours
    /// are refused: guessing a resume point would repeat or lose rows.
    pub fn new(
        config: Config,
        checkpoints: &[sdk::Checkpoint],
        log: Logger,
    ) -> Result<Tables, Error> {
        let mut committed = HashMap::new();
        for c in checkpoints {
            let partition = &c.partition;
            if Identity::from_partition(partition).is_none() {
                return Err(Error::invalid_data(format!(
                    "partition `{}` is not a file identity (<fingerprint>-<size>); \
                     refusing to guess where to resume",
                    String::from_utf8_lossy(partition)
                )));
            }
            let cp = Checkpoint::decode(&c.checkpoint).map_err(|e| {
                Error::invalid_data(format!(
                    "the checkpoint of file `{}`: {e}; refusing to guess where to resume",
                    String::from_utf8_lossy(partition)
                ))
            })?;
            committed.insert(partition.clone(), cp);
        }
        Ok(Tables {
            config,
            log,
            committed,
            current: None,
            awaiting: HashMap::new(),
            settling: HashMap::new(),
            handled: HashMap::new(),
            queue: Vec::new(),
            last_scan: None,
            scanned_once: false,
            spool_warned: false,
        })
    }

    /// The next batch, `Idle` when no file is ready, `Finished` once every
    /// file of a non-watched path is read.
    pub fn poll(&mut self, timeout: Duration) -> Result<Poll, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(batch) = self.read_current()? {
                return Ok(Poll::Batch(batch));
            }
            if self.open_next()? {
                continue;
            }
            if let Input::Path { watch: false, .. } = self.config.input
                && self.scanned_once
                && self.queue.is_empty()
            {
                return Ok(Poll::Finished);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Poll::Idle);
            }
            std::thread::sleep(IDLE_SLEEP.min(deadline - now));
        }
    }

    /// `checkpoint` of `partition` is durable: a spool file whose last
    /// checkpoint it is moves to `finished/` (or `error/`).
    pub fn committed(&mut self, partition: &[u8], checkpoint: &[u8]) -> Result<(), Error> {
        let cp = Checkpoint::decode(checkpoint).map_err(Error::invalid_data)?;
        self.committed.insert(partition.to_vec(), cp);
        if cp.done
            && let Some(file) = self.awaiting.remove(partition)
            && let Input::Spool(spool) = &self.config.input
        {
            move_away(spool, &file.path, file.failure.as_deref(), self.log);
        }
        Ok(())
    }

    /// Reads the next chunk of the current file, if any.
    fn read_current(&mut self) -> Result<Option<Batch>, Error> {
        let Some(file) = self.current.as_mut() else {
            return Ok(None);
        };
        let result = file.reader.next_chunk(self.config.batch_rows);
        let (_, logs) = file.reader.bad_rows();
        for line in logs {
            self.log.warn(&line);
        }
        let records = match result {
            Ok(Chunk::Rows(records)) => records,
            Ok(Chunk::Dead(rows)) => dead_letter_batch(&rows)?,
            Ok(Chunk::End) => {
                let file = self.current.take();
                return Ok(file.map(|f| self.finish(f, None)));
            }
            Err(e) => {
                let file = self.current.take();
                return file.map(|f| self.fail(f, e)).transpose();
            }
        };
        Ok(Some(Batch {
            records,
            partition: file.partition.clone(),
            checkpoint: file.reader.position().encode(),
            lag: file.reader.lag(),
        }))
    }

    /// Ends a file; its last checkpoint goes out in an empty batch.
    fn finish(&mut self, mut file: OpenFile, failure: Option<String>) -> Batch {
        let mut cp = file.reader.position();
        cp.done = true;
        cp.failed = failure.is_some();
        let (bad, logs) = file.reader.bad_rows();
        for line in logs {
            self.log.warn(&line);
        }
        if failure.is_none() {
            self.log.info(&format!(
                "Read {}: {} rows ({} bad) up to row {}.",
                file.path.display(),
                cp.next_row - file.first_row,
                bad,
                cp.next_row
            ));
        }
        if let Input::Spool(_) = self.config.input {
            self.awaiting.insert(
                file.partition.clone(),
                Awaiting {
                    path: file.path.clone(),
                    failure,
                },
            );
        }
        Batch {
            // The file's own columns, so a configured key column is there.
            records: RecordBatch::new_empty(file.reader.schema()),
            partition: file.partition,
            checkpoint: cp.encode(),
            lag: Some(0),
        }
    }

    /// A file that cannot be read on: in a spool it goes to `error/` (once
    /// what was read of it is committed); otherwise the source fails.
    fn fail(&mut self, file: OpenFile, e: ReadError) -> Result<Batch, Error> {
        if let Input::Spool(_) = self.config.input {
            self.log.error(&format!(
                "Cannot read a spool file; it goes to the error directory: {e}."
            ));
            Ok(self.finish(file, Some(e.0)))
        } else {
            Err(Error::with(e.1, e.0))
        }
    }

    /// Opens the next ready file; `false` when there is none.
    fn open_next(&mut self) -> Result<bool, Error> {
        let Some(path) = self.next_path() else {
            return Ok(false);
        };
        let identity = match Identity::of_path(&path) {
            Ok(i) => i,
            // Gone between listing and opening: it is no longer ours.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => {
                return self.unreadable(&path, Error::io(path.display(), &e));
            }
        };
        let partition = identity.partition();
        if self.awaiting.contains_key(&partition) {
            // The same content is waiting for its commit under another name.
            return Ok(true);
        }
        let resume = self.committed.get(&partition).copied().unwrap_or_default();
        if resume.done {
            self.already_read(&path, resume);
            return Ok(true);
        }
        let mut warnings = Vec::new();
        let reader: Result<Box<dyn TableReader + Send>, ReadError> = match self.config.format {
            Format::Csv => CsvReader::open(&path, &self.config, resume, &mut warnings)
                .map(|r| Box::new(r) as Box<dyn TableReader + Send>),
            Format::Ndjson => NdjsonReader::open(&path, &self.config, resume)
                .map(|r| Box::new(r) as Box<dyn TableReader + Send>),
            Format::Parquet => ColumnarReader::parquet(&path, self.config.batch_rows, resume)
                .map(|r| Box::new(r) as Box<dyn TableReader + Send>),
            Format::Arrow => ColumnarReader::arrow(&path, resume)
                .map(|r| Box::new(r) as Box<dyn TableReader + Send>),
        };
        let reader = reader
            .and_then(|r| Prefetch::start(r, self.config.batch_rows, "tables-reader".to_owned()));
        for w in warnings {
            self.log.warn(&format!("{w}."));
        }
        match reader {
            Ok(reader) => {
                if resume.next_row > 0 {
                    self.log.info(&format!(
                        "Resuming {} at row {} (line {}).",
                        path.display(),
                        resume.next_row,
                        resume.next_line
                    ));
                }
                self.current = Some(OpenFile {
                    path,
                    partition,
                    reader: Box::new(reader),
                    first_row: resume.next_row,
                });
                Ok(true)
            }
            Err(e) => self.unreadable(&path, Error::with(e.1, e.0)),
        }
    }

    /// A file that cannot even be opened: in a spool it goes to `error/` at
    /// once (nothing of it is in flight: it never opened in this run, and
    /// an earlier run's rows are committed or would fail the same way);
    /// otherwise the source fails.
    fn unreadable(&mut self, path: &Path, reason: Error) -> Result<bool, Error> {
        let Input::Spool(spool) = &self.config.input else {
            return Err(reason);
        };
        self.log.error(&format!(
            "Cannot read a spool file; it goes to the error directory: {reason}."
        ));
        move_away(spool, path, Some(reason.message()), self.log);
        Ok(true)
    }

    /// A file whose last checkpoint is already committed: in a spool it was
    /// read but not yet moved when the daemon stopped.
    fn already_read(&mut self, path: &Path, cp: Checkpoint) {
        match &self.config.input {
            Input::Spool(spool) => {
                let failure = cp
                    .failed
                    .then_some("reading stopped on an error in an earlier run; see its log");
                move_away(spool, path, failure, self.log);
            }
            Input::Path { .. } => self.log.debug(&format!(
                "Skipping {}: already read (same content).",
                path.display()
            )),
        }
    }

    /// The next file to read, scanning when due.
    fn next_path(&mut self) -> Option<PathBuf> {
        match self.config.input.clone() {
            Input::Path { pattern, watch } => {
                if self.queue.is_empty() && (watch || !self.scanned_once) && self.scan_due() {
                    self.scan_paths(&pattern);
                    self.scanned_once = true;
                }
                if self.queue.is_empty() {
                    None
                } else {
                    Some(self.queue.remove(0))
                }
            }
            Input::Spool(spool) => {
                if self.scan_due() {
                    self.scan_spool(&spool)
                } else {
                    None
                }
            }
        }
    }

    fn scan_due(&mut self) -> bool {
        let interval = match &self.config.input {
            Input::Spool(s) => s.scan_interval_ms,
            Input::Path { .. } => 500,
        };
        let now = Instant::now();
        if self
            .last_scan
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(interval))
        {
            return false;
        }
        self.last_scan = Some(now);
        true
    }

    /// Lists the glob's matches not yet handled, in name order.
    fn scan_paths(&mut self, pattern: &str) {
        let paths = match glob::glob(pattern) {
            Ok(paths) => paths,
            Err(e) => {
                self.log.error(&format!("Invalid glob `{pattern}`: {e}."));
                return;
            }
        };
        for entry in paths {
            let path = match entry {
                Ok(p) => p,
                Err(e) => {
                    self.log
                        .warn(&format!("Cannot list a match of `{pattern}`: {e}."));
                    continue;
                }
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            // Another unit's file when the source is split (`shards`).
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !self.config.shard.owns(name) {
                continue;
            }
            let stamp = (meta.len(), meta.modified().ok());
            if self.handled.get(&path) == Some(&stamp) {
                continue;
            }
            self.handled.insert(path.clone(), stamp);
            self.queue.push(path);
        }
        if self.queue.is_empty() && !self.scanned_once {
            self.log.warn(&format!("No file matches `{pattern}`."));
        }
    }

    /// Lists the spool directory and returns the first complete file, in
    /// name order, that is not being read or awaiting its commit.
    fn scan_spool(&mut self, spool: &SpoolConfig) -> Option<PathBuf> {
        let entries = match std::fs::read_dir(&spool.dir) {
            Ok(e) => {
                self.spool_warned = false;
                e
            }
            Err(e) => {
                if !self.spool_warned {
                    self.log.warn(&format!(
                        "Cannot list the spool directory {}: {e}; retrying.",
                        spool.dir.display()
                    ));
                    self.spool_warned = true;
                }
                return None;
            }
        };
        let taken: HashSet<&PathBuf> = self
            .awaiting
            .values()
            .map(|a| &a.path)
            .chain(self.current.as_ref().map(|c| &c.path))
            .collect();
        let now = Instant::now();
        let mut present = HashSet::new();
        let mut ready = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.starts_with('.')
                || name.ends_with(".reason")
                || spool
                    .marker_suffix
                    .as_deref()
                    .is_some_and(|m| name.ends_with(m))
                || !spool.pattern.matches(name)
                // Another unit's file when the source is split (`shards`):
                // never read, moved or renamed by this one.
                || !self.config.shard.owns(name)
            {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() || taken.contains(&path) {
                continue;
            }
            present.insert(path.clone());
            let complete = match &spool.marker_suffix {
                Some(suffix) => {
                    let mut marker = path.clone().into_os_string();
                    marker.push(suffix);
                    Path::new(&marker).exists()
                }
                None => {
                    let stamp = (meta.len(), meta.modified().ok());
                    match self.settling.get(&path) {
                        Some((len, modified, since)) if (*len, *modified) == stamp => {
                            now.duration_since(*since) >= Duration::from_millis(spool.settle_ms)
                        }
                        _ => {
                            self.settling.insert(path.clone(), (stamp.0, stamp.1, now));
                            spool.settle_ms == 0
                        }
                    }
                }
            };
            if complete {
                ready.push(path);
            }
        }
        self.settling.retain(|p, _| present.contains(p));
        ready.sort();
        let next = ready.into_iter().next();
        if let Some(p) = &next {
            self.settling.remove(p);
        }
        next
    }
}

/// Moves a spool file to `finished/`, or to `error/` with a `.reason` file,
/// with its marker file removed. Never overwrites: a name already taken gets
/// a numeric suffix. Failures are logged; the file then stays in the spool
/// and, its checkpoint being committed, is moved on the next pickup.
fn move_away(spool: &SpoolConfig, path: &Path, failure: Option<&str>, log: Logger) {
    let dir = if failure.is_some() {
        &spool.error_dir
    } else {
        &spool.finished_dir
    };
    let Some(name) = path.file_name() else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        log.error(&format!("Cannot create {}: {e}.", dir.display()));
        return;
    }
    let mut target = dir.join(name);
    let mut n = 1;
    while target.exists() {
        let mut alt = name.to_os_string();
        alt.push(format!(".{n}"));
        target = dir.join(alt);
        n += 1;
    }
    if let Some(reason) = failure {
        let mut reason_path = target.clone().into_os_string();
        reason_path.push(".reason");
        if let Err(e) = std::fs::write(&reason_path, format!("{reason}\n")) {
            log.error(&format!(
                "Cannot write {}: {e}.",
                Path::new(&reason_path).display()
            ));
        }
    }
    match std::fs::rename(path, &target) {
        Ok(()) => {
            log.info(&format!(
                "Moved {} to {}.",
                path.display(),
                target.display()
            ));
            if let Some(suffix) = &spool.marker_suffix {
                let mut marker = path.to_path_buf().into_os_string();
                marker.push(suffix);
                let _ = std::fs::remove_file(&marker);
            }
        }
        Err(e) => log.error(&format!(
            "Cannot move {} to {}: {e}; it is moved when next seen.",
            path.display(),
            target.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use serde_json::json;

    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Scratch {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tributary-tables-{label}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn source(format: Format, options: serde_json::Value, cps: &[sdk::Checkpoint]) -> Tables {
        let config = Config::from_json(format, &options).unwrap();
        Tables::new(config, cps, Logger::none()).unwrap()
    }

    /// What the daemon passes back once `batch`, and every batch before
    /// it, is committed.
    fn committed_up_to(batch: &Batch) -> Vec<sdk::Checkpoint> {
        vec![sdk::Checkpoint::new(
            batch.partition.clone(),
            batch.checkpoint.clone(),
        )]
    }

    /// Polls until `Finished`, or until nothing new comes for a few polls.
    fn drain(t: &mut Tables) -> Vec<Batch> {
        let mut out = Vec::new();
        let mut idle = 0;
        while idle < 5 {
            match t.poll(Duration::from_millis(20)).unwrap() {
                Poll::Batch(b) => {
                    idle = 0;
                    out.push(b);
                }
                Poll::Idle => idle += 1,
                Poll::Finished => break,
            }
        }
        out
    }

    fn seqs(batches: &[Batch]) -> Vec<i64> {
        batches
            .iter()
            .filter(|b| b.records.num_rows() > 0)
            .flat_map(|b| {
                let col = b.records.column_by_name("seq").unwrap();
                col.as_primitive::<Int64Type>().values().to_vec()
            })
            .collect()
    }

    fn csv_text(rows: std::ops::Range<i64>) -> String {
        let mut s = String::from("seq,customer_id,note\n");
        for i in rows {
            s.push_str(&format!("{i},c-{},\"line {i}\nwith, comma\"\r\n", i % 7));
        }
        s
    }

    fn write_gzip(path: &Path, text: &str) {
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
    }

    /// Every checkpoint a first run returned, used as the resume point of a
    /// second run: the second run yields exactly the rows after it.
    fn resumes_exactly(format: Format, path: &Path, total: i64) {
        let options = json!({"path": path.to_str().unwrap(), "batch_rows": 37});
        let mut first = source(format, options.clone(), &[]);
        let batches = drain(&mut first);
        assert_eq!(seqs(&batches), (0..total).collect::<Vec<_>>(), "{format:?}");
        let last = batches.last().unwrap();
        assert!(Checkpoint::decode(&last.checkpoint).unwrap().done);
        let mut before = 0;
        for (i, b) in batches.iter().enumerate() {
            before += b.records.num_rows() as i64;
            let cps = committed_up_to(b);
            let mut resumed = source(format, options.clone(), &cps);
            let rest = drain(&mut resumed);
            assert_eq!(
                seqs(&rest),
                (before..total).collect::<Vec<_>>(),
                "{format:?}: resumed after batch {i}"
            );
        }
    }

    #[test]
    fn resume_after_any_checkpoint_repeats_and_loses_nothing() {
        let dir = Scratch::new("resume");
        let plain = dir.0.join("orders.csv");
        std::fs::write(&plain, csv_text(0..300)).unwrap();
        resumes_exactly(Format::Csv, &plain, 300);

        let gz = dir.0.join("orders.csv.gz");
        write_gzip(&gz, &format!("\u{feff}{}", csv_text(0..200)));
        resumes_exactly(Format::Csv, &gz, 200);

        let nd = dir.0.join("orders.ndjson");
        let lines: String = (0..150)
            .map(|i| {
                format!(
                    "{{\"seq\":{i},\"v\":\"x{i}\"}}\n{}",
                    if i % 10 == 0 { "\n" } else { "" }
                )
            })
            .collect();
        std::fs::write(&nd, lines).unwrap();
        resumes_exactly(Format::Ndjson, &nd, 150);
    }

    #[test]
    fn a_file_already_read_is_not_read_again_whatever_its_name() {
        let dir = Scratch::new("identity");
        let a = dir.0.join("a.csv");
        std::fs::write(&a, csv_text(0..10)).unwrap();
        let options = json!({"path": dir.0.join("*.csv").to_str().unwrap()});
        let mut first = source(Format::Csv, options.clone(), &[]);
        let batches = drain(&mut first);
        let last = batches.last().unwrap();
        let cps = committed_up_to(last);
        // Renamed: same identity, nothing to read.
        std::fs::rename(&a, dir.0.join("b.csv")).unwrap();
        let mut again = source(Format::Csv, options.clone(), &cps);
        assert!(seqs(&drain(&mut again)).is_empty());
        // Same name, new content: a new file, read from its start.
        std::fs::write(dir.0.join("b.csv"), csv_text(0..12)).unwrap();
        let mut new = source(Format::Csv, options, &cps);
        assert_eq!(seqs(&drain(&mut new)), (0..12).collect::<Vec<_>>());
    }

    fn spool_options(dir: &Path) -> serde_json::Value {
        json!({
            "spool_dir": dir.to_str().unwrap(),
            "pattern": "*.csv",
            "settle_ms": 0,
            "scan_interval_ms": 10,
            "batch_rows": 4,
        })
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn spool_files_move_only_after_commit() {
        let dir = Scratch::new("spool");
        std::fs::write(dir.0.join("a.csv"), csv_text(0..10)).unwrap();
        std::fs::write(dir.0.join("b.csv"), csv_text(10..13)).unwrap();
        std::fs::write(dir.0.join("ignored.txt"), "x").unwrap();
        let mut t = source(Format::Csv, spool_options(&dir.0), &[]);
        let batches = drain(&mut t);
        assert_eq!(seqs(&batches), (0..13).collect::<Vec<_>>());
        // Everything read, nothing committed: everything still in the spool.
        assert_eq!(names(&dir.0), ["a.csv", "b.csv", "ignored.txt"]);
        // Committing all but the last checkpoint of each file moves nothing.
        for b in &batches {
            if !Checkpoint::decode(&b.checkpoint).unwrap().done {
                t.committed(&b.partition, &b.checkpoint).unwrap();
            }
        }
        assert_eq!(names(&dir.0), ["a.csv", "b.csv", "ignored.txt"]);
        assert!(
            drain(&mut t).is_empty(),
            "files awaiting commit are not read again"
        );
        // The last checkpoint of `a` moves `a` only.
        let done: Vec<&Batch> = batches
            .iter()
            .filter(|b| Checkpoint::decode(&b.checkpoint).unwrap().done)
            .collect();
        assert_eq!(done.len(), 2);
        t.committed(&done[0].partition, &done[0].checkpoint)
            .unwrap();
        assert_eq!(names(&dir.0), ["b.csv", "ignored.txt"]);
        assert_eq!(names(&dir.0.join("finished")), ["a.csv"]);
        t.committed(&done[1].partition, &done[1].checkpoint)
            .unwrap();
        assert_eq!(names(&dir.0.join("finished")), ["a.csv", "b.csv"]);
        // The same name dropped again with new content is a new file, and
        // does not overwrite the first one in `finished/`.
        std::fs::write(dir.0.join("a.csv"), csv_text(100..102)).unwrap();
        let batches = drain(&mut t);
        assert_eq!(seqs(&batches), [100, 101]);
        let last = batches.last().unwrap();
        t.committed(&last.partition, &last.checkpoint).unwrap();
        assert_eq!(
            names(&dir.0.join("finished")),
            ["a.csv", "a.csv.1", "b.csv"]
        );
    }

    #[test]
    fn a_file_committed_but_not_moved_is_moved_without_reading() {
        let dir = Scratch::new("unmoved");
        std::fs::write(dir.0.join("a.csv"), csv_text(0..5)).unwrap();
        let mut first = source(Format::Csv, spool_options(&dir.0), &[]);
        let batches = drain(&mut first);
        let last = batches.last().unwrap();
        // The daemon died after committing, before `committed` reached us.
        let cps = committed_up_to(last);
        let mut second = source(Format::Csv, spool_options(&dir.0), &cps);
        assert!(drain(&mut second).is_empty());
        assert_eq!(names(&dir.0.join("finished")), ["a.csv"]);
    }

    #[test]
    fn marker_files_gate_pickup_and_leave_with_the_file() {
        let dir = Scratch::new("marker");
        let mut options = spool_options(&dir.0);
        options["marker_suffix"] = json!(".done");
        options["settle_ms"] = json!(0);
        std::fs::write(dir.0.join("a.csv"), csv_text(0..3)).unwrap();
        let mut t = source(Format::Csv, options, &[]);
        assert!(drain(&mut t).is_empty(), "no marker, no pickup");
        std::fs::write(dir.0.join("a.csv.done"), "").unwrap();
        let batches = drain(&mut t);
        assert_eq!(seqs(&batches), [0, 1, 2]);
        let last = batches.last().unwrap();
        t.committed(&last.partition, &last.checkpoint).unwrap();
        assert!(names(&dir.0).is_empty(), "{:?}", names(&dir.0));
        assert_eq!(names(&dir.0.join("finished")), ["a.csv"]);
    }

    #[test]
    fn a_file_still_changing_is_not_picked_up_until_it_settles() {
        let dir = Scratch::new("settle");
        let mut options = spool_options(&dir.0);
        options["settle_ms"] = json!(200);
        let path = dir.0.join("a.csv");
        let mut t = source(Format::Csv, options, &[]);
        let mut file = std::fs::File::create(&path).unwrap();
        for i in 0..10 {
            writeln!(file, "{}", if i == 0 { "seq" } else { "1" }).unwrap();
            file.flush().unwrap();
            // Keeps changing faster than it settles: never picked up.
            assert!(seqs(&drain(&mut t)).is_empty());
        }
        drop(file);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(seqs(&drain(&mut t)), [1; 9]);
    }

    #[test]
    fn unreadable_and_failing_spool_files_go_to_error_with_a_reason() {
        let dir = Scratch::new("error");
        std::fs::write(dir.0.join("a.csv"), "seq\n1\n2\nthree\n4\n").unwrap();
        let mut options = spool_options(&dir.0);
        options["columns"] = json!({"seq": "int64"});
        let mut t = source(Format::Csv, options, &[]);
        let batches = drain(&mut t);
        assert_eq!(seqs(&batches), [1, 2]);
        let last = batches.last().unwrap();
        let cp = Checkpoint::decode(&last.checkpoint).unwrap();
        assert!(cp.done && cp.failed, "{cp:?}");
        assert_eq!(names(&dir.0), ["a.csv"], "not moved before the commit");
        t.committed(&last.partition, &last.checkpoint).unwrap();
        assert_eq!(names(&dir.0.join("error")), ["a.csv", "a.csv.reason"]);
        let reason = std::fs::read_to_string(dir.0.join("error/a.csv.reason")).unwrap();
        assert!(
            reason.contains("a.csv line 4: column 1 (`seq`)"),
            "{reason}"
        );

        let pq = Scratch::new("error-parquet");
        std::fs::write(pq.0.join("x.parquet"), "not parquet").unwrap();
        let mut options = spool_options(&pq.0);
        options["pattern"] = json!("*.parquet");
        let mut t = source(Format::Parquet, options, &[]);
        assert!(drain(&mut t).is_empty());
        assert_eq!(
            names(&pq.0.join("error")),
            ["x.parquet", "x.parquet.reason"]
        );
    }

    #[test]
    fn a_long_run_of_skipped_rows_does_not_hold_a_poll() {
        let dir = Scratch::new("skips");
        let path = dir.0.join("a.csv");
        let mut text = String::from("seq,x\n");
        for _ in 0..crate::reader::SCAN_LIMIT + 10 {
            text.push_str("bad\n");
        }
        text.push_str("7,y\n");
        std::fs::write(&path, text).unwrap();
        let options = json!({
            "path": path.to_str().unwrap(),
            "on_error": "skip",
            "columns": {"seq": "int64"},
        });
        let mut t = source(Format::Csv, options, &[]);
        let batches = drain(&mut t);
        assert_eq!(seqs(&batches), [7]);
        // The first chunk stopped at the scan limit: no rows, but a checkpoint
        // past the skipped ones.
        let first = Checkpoint::decode(&batches[0].checkpoint).unwrap();
        assert_eq!(batches[0].records.num_rows(), 0);
        assert_eq!(first.next_row, crate::reader::SCAN_LIMIT as u64);
        assert!(!first.done);
        let last = Checkpoint::decode(&batches.last().unwrap().checkpoint).unwrap();
        assert_eq!(last.next_row, crate::reader::SCAN_LIMIT as u64 + 11);
        assert!(last.done);
    }

    #[test]
    fn a_bad_row_fails_a_path_source_naming_file_and_line() {
        let dir = Scratch::new("fail");
        let path = dir.0.join("a.csv");
        std::fs::write(&path, "seq,x\n1,a\n2\n").unwrap();
        let mut t = source(Format::Csv, json!({"path": path.to_str().unwrap()}), &[]);
        let err = loop {
            match t.poll(Duration::from_millis(20)) {
                Err(e) => break e,
                Ok(Poll::Finished) => panic!("finished despite a bad row"),
                Ok(_) => {}
            }
        };
        assert!(err.message().contains("a.csv line 3"), "{err}");
        assert!(err.message().contains("ragged_row"), "{err}");
    }

    #[test]
    fn foreign_or_corrupt_checkpoints_are_refused() {
        let options = json!({"path": "/nonexistent.csv"});
        let config = Config::from_json(Format::Csv, &options).unwrap();
        let err = Tables::new(
            config.clone(),
            &[sdk::Checkpoint::new(b"seq", vec![0; 8])],
            Logger::none(),
        )
        .unwrap_err();
        assert!(err.message().contains("not a file identity"), "{err}");
        let id = Identity {
            fingerprint: 1,
            size: 2,
        };
        let err = Tables::new(
            config,
            &[sdk::Checkpoint::new(id.partition(), vec![1, 2])],
            Logger::none(),
        )
        .unwrap_err();
        assert!(err.message().contains("expected 26"), "{err}");
    }
}
