//! Tools for the log file tests: a writer that appends numbered lines the
//! oracle can count, the real `logrotate`, and the `logfile` drop-in.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::toml_str;

/// A `[[source]]` drop-in for the logfile plugin reading `include` (a glob).
/// `extra` is raw TOML appended to the table (more options, `format`, `key`).
pub fn logfile_source(name: &str, topic: &str, include: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = {}\ntype = \"logfile\"\ntopic = {}\ninclude = [{}]\n{extra}\n",
        toml_str(name),
        toml_str(topic),
        toml_str(include),
    )
}

/// The line with sequence number `seq`: a JSON object the oracle reads
/// whether the record value is the raw line (`format = "string"`) or the
/// row's JSON with a parsed `seq` column (`parser = "json"`).
pub fn seq_line(seq: u64) -> String {
    format!("{{\"seq\":{seq}}}\n")
}

/// The sequence numbers of every `seq_line` held by the files directly in
/// `dir`: what reached a disk and stayed there.
///
/// # Panics
/// If `dir` cannot be read.
pub fn seqs_in_files(dir: &Path) -> std::collections::BTreeSet<u64> {
    let mut seqs = std::collections::BTreeSet::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(seq) = line
                .strip_prefix("{\"seq\":")
                .and_then(|rest| rest.strip_suffix('}'))
                .and_then(|n| n.parse().ok())
            {
                seqs.insert(seq);
            }
        }
    }
    seqs
}

/// Appends `seq_line(n)` for every `n` in `range` to `path` (created if
/// missing).
///
/// # Panics
/// On any I/O error.
pub fn append_seqs(path: &Path, range: std::ops::Range<u64>) {
    let text: String = range.map(seq_line).collect();
    append(path, text.as_bytes());
}

/// Appends raw bytes to `path` (created if missing).
///
/// # Panics
/// On any I/O error.
pub fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap_or_else(|e| panic!("cannot append to {}: {e}", path.display()));
}

/// A thread appending numbered lines to a file at a steady rate, the way an
/// application that reopens its log by name writes: each small burst opens
/// the path (without creating it: during a rename rotation the new file is
/// created by `logrotate`), writes, closes.
#[derive(Debug)]
pub struct LineWriter {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    /// Held while a burst is written; a rotation that must not interleave
    /// with writes (copytruncate) takes it.
    pub gate: Arc<Mutex<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LineWriter {
    /// Starts writing `total` lines (sequence numbers from `first`) to
    /// `path` at `per_sec` lines per second.
    pub fn start(path: &Path, first: u64, total: u64, per_sec: u64) -> LineWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Mutex::new(()));
        let (path, s, w, g) = (
            path.to_path_buf(),
            stop.clone(),
            written.clone(),
            gate.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("line-writer".into())
            .spawn(move || write_loop(&path, first, total, per_sec, &s, &w, &g))
            .expect("spawn the line writer");
        LineWriter {
            stop,
            written,
            gate,
            thread: Some(thread),
        }
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Whether all lines are written.
    pub fn is_done(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until every line is written (or `timeout`); returns the count.
    ///
    /// # Panics
    /// If the writer panicked or did not finish in time.
    pub fn join(mut self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while !self.is_done() {
            assert!(Instant::now() < deadline, "line writer did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("line writer panicked");
        }
        self.written()
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    path: &Path,
    first: u64,
    total: u64,
    per_sec: u64,
    stop: &AtomicBool,
    written: &AtomicU64,
    gate: &Mutex<()>,
) {
    const TICK: Duration = Duration::from_millis(5);
    let start = Instant::now();
    let mut next = 0u64;
    let mut text = String::new();
    while next < total && !stop.load(Ordering::Relaxed) {
        let due = ((start.elapsed().as_secs_f64() * per_sec as f64) as u64).min(total);
        if due > next {
            text.clear();
            for n in next..due {
                text.push_str(&seq_line(first + n));
            }
            let _held = gate.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match std::fs::OpenOptions::new().append(true).open(path) {
                    Ok(mut f) => {
                        f.write_all(text.as_bytes())
                            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                        break;
                    }
                    // Between a rotation's rename and its create.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => panic!("open {}: {e}", path.display()),
                }
            }
            next = due;
            written.store(next, Ordering::Relaxed);
        }
        std::thread::sleep(TICK);
    }
}

/// The real `logrotate`, run as an unprivileged-style one-shot with its own
/// config and state file.
#[derive(Debug)]
pub struct Logrotate {
    config: PathBuf,
    state: PathBuf,
}

impl Logrotate {
    /// A config rotating `log` with `directives` (e.g. `"create\nrotate 3"`
    /// or `"copytruncate\nrotate 3"`), written into `dir`.
    pub fn new(dir: &Path, log: &Path, directives: &str) -> Logrotate {
        let config = dir.join("logrotate.conf");
        let state = dir.join("logrotate.state");
        let text = format!(
            "{} {{\n    missingok\n    nocompress\n    {}\n}}\n",
            log.display(),
            directives.replace('\n', "\n    ")
        );
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        Logrotate { config, state }
    }

    /// The `logrotate` binary: `LOGROTATE_BIN` or the Debian path.
    pub fn bin() -> PathBuf {
        std::env::var_os("LOGROTATE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/logrotate"))
    }

    /// Forces one rotation.
    ///
    /// # Panics
    /// If `logrotate` is missing or fails.
    pub fn rotate(&self) {
        let out = std::process::Command::new(Self::bin())
            .arg("--force")
            .arg("--state")
            .arg(&self.state)
            .arg(&self.config)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}); install it with `apt-get install logrotate`",
                    Self::bin().display()
                )
            });
        assert!(
            out.status.success(),
            "logrotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
