//! Waking up when a watched directory changes: inotify where the kernel
//! has it, plain sleeping otherwise.
//!
//! The watcher only says "something changed" (and whether names were
//! added or removed); the engine then reads the files and, for name
//! changes, expands the globs again. Losing an event therefore costs at
//! most the polling interval, never a line: inotify's queue may overflow,
//! and polling is the ground truth.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a wait observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Woken {
    /// A file was written.
    pub modified: bool,
    /// A name was created, moved or deleted (or events were lost).
    pub names_changed: bool,
}

/// Waits for changes in a set of directories.
#[derive(Debug)]
pub struct Watcher {
    fd: Option<OwnedFd>,
    watched: BTreeSet<PathBuf>,
    buf: Vec<u8>,
}

impl Watcher {
    /// A watcher using inotify when `use_inotify` and the kernel allow it.
    pub fn new(use_inotify: bool) -> Watcher {
        let fd = if use_inotify {
            // SAFETY: plain syscall with constant flags; the result is
            // checked before use.
            let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            // SAFETY: `raw` is a fresh descriptor we own when non-negative.
            (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
        } else {
            None
        };
        Watcher {
            fd,
            watched: BTreeSet::new(),
            buf: vec![0u8; 64 * 1024],
        }
    }

    /// Whether inotify is in use.
    pub fn is_inotify(&self) -> bool {
        self.fd.is_some()
    }

    /// Watches `dir` if it is not watched yet; a missing directory is
    /// tried again on the next call (polling covers it meanwhile).
    pub fn watch(&mut self, dir: &Path) {
        let Some(fd) = &self.fd else { return };
        if self.watched.contains(dir) {
            return;
        }
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return;
        };
        let mask = libc::IN_MODIFY
            | libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_ATTRIB
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF;
        // SAFETY: `fd` is our inotify descriptor and `c` a valid C string.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
        if wd >= 0 {
            self.watched.insert(dir.to_owned());
        }
    }

    /// Waits up to `timeout` for a change; returns what was seen (nothing
    /// on timeout, or always nothing without inotify after sleeping).
    pub fn wait(&mut self, timeout: Duration) -> Woken {
        let Some(fd) = &self.fd else {
            std::thread::sleep(timeout);
            return Woken::default();
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return Woken::default();
        }
        self.drain()
    }

    /// Reads every queued event without blocking.
    fn drain(&mut self) -> Woken {
        let mut woken = Woken::default();
        let Some(fd) = &self.fd else { return woken };
        loop {
            // SAFETY: reading into our own buffer of the given length.
            let n =
                unsafe { libc::read(fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len()) };
            let Ok(n) = usize::try_from(n) else { break };
            if n == 0 {
                break;
            }
            let mut at = 0;
            // struct inotify_event { int wd; u32 mask; u32 cookie; u32 len; char name[len]; }
            while at + 16 <= n {
                let word = |o: usize| {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&self.buf[at + o..at + o + 4]);
                    u32::from_ne_bytes(b)
                };
                let mask = word(4);
                let len = word(12) as usize;
                if mask & libc::IN_MODIFY != 0 {
                    woken.modified = true;
                }
                if mask
                    & (libc::IN_CREATE
                        | libc::IN_DELETE
                        | libc::IN_MOVED_FROM
                        | libc::IN_MOVED_TO
                        | libc::IN_Q_OVERFLOW
                        | libc::IN_DELETE_SELF
                        | libc::IN_MOVE_SELF
                        | libc::IN_IGNORED
                        | libc::IN_ATTRIB)
                    != 0
                {
                    woken.names_changed = true;
                }
                if mask & (libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF) != 0 {
                    // The directory went away: watch it again once it is back.
                    self.watched.clear();
                }
                at += 16 + len;
            }
        }
        woken
    }
}

/// The directory to watch for a glob: its longest leading part without
/// wildcard characters.
pub fn static_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::from("/");
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() || part.contains(['*', '?', '[']) {
            break;
        }
        dir.push(part);
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_part_of_a_glob_is_watched() {
        assert_eq!(static_dir("/var/log/app.log"), PathBuf::from("/var/log"));
        assert_eq!(static_dir("/var/log/*/x.log"), PathBuf::from("/var/log"));
        assert_eq!(static_dir("/var/l?g/x"), PathBuf::from("/var"));
        assert_eq!(static_dir("/x"), PathBuf::from("/"));
    }

    #[test]
    fn inotify_reports_new_names_and_writes() {
        let dir = std::env::temp_dir().join(format!("logfile-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = Watcher::new(true);
        if !w.is_inotify() {
            return; // no inotify in this sandbox: polling is the fallback
        }
        w.watch(&dir);
        assert_eq!(w.wait(Duration::from_millis(10)), Woken::default());
        std::fs::write(dir.join("a.log"), b"x\n").unwrap();
        let woken = w.wait(Duration::from_secs(5));
        assert!(woken.names_changed, "{woken:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
