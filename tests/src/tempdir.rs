//! Per-test scratch directories.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Set this variable (to anything) to keep test directories for inspection.
pub const KEEP_ENV: &str = "TRIBUTARY_KEEP_TEST_DIRS";

/// A fresh directory under [`std::env::temp_dir()`], removed on drop.
///
/// Every config, offset store, broker log and daemon log of a test goes in
/// here, so tests running in parallel never share state and a failed test
/// leaves nothing behind — unless [`KEEP_ENV`] is set, which keeps the
/// directory for a post-mortem.
///
/// Declare it *before* the brokers and daemons that write into it: locals
/// drop in reverse order, so the processes stop before their directory goes.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/tributary-<label>-<pid>-<n>`; `label` names the test so
    /// a kept directory can be found again.
    ///
    /// # Panics
    /// If the directory cannot be created.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("tributary-{label}-{pid}-{n}"));
            // `create_dir`, not `create_dir_all`: failing on an existing
            // directory (left by an earlier process with the same pid) is what
            // makes the directory ours alone.
            match std::fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create test dir {}: {e}", path.display()),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`, for brevity in tests.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let keep = std::env::var_os(KEEP_ENV).is_some();
        if std::thread::panicking() {
            if keep {
                eprintln!("test dir kept: {}", self.path.display());
            } else {
                eprintln!(
                    "test dir {} removed; set {KEEP_ENV}=1 to keep it",
                    self.path.display()
                );
            }
        }
        if !keep {
            // Best effort: a failure to clean up must not mask the test result.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
