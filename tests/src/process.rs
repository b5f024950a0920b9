//! Child-process plumbing shared by the daemon and the Kafka broker.
//!
//! Every process the harness starts is stopped by its own PID (never by name,
//! so parallel tests and other engineers' processes are safe), and is reaped
//! so no zombie outlives the test.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often exit is polled: short against test timeouts, long against a
/// busy loop on two cores.
const POLL: Duration = Duration::from_millis(10);

/// Spawns `cmd` with stdin closed and stdout+stderr appended to `log`.
///
/// The log is opened in append mode so a test that restarts a process many
/// times with the same log path keeps the history of every round.
///
/// The child gets `PR_SET_PDEATHSIG = SIGKILL`: if the test process itself is
/// killed (a CI timeout, ^C) no Drop runs, and this is what still stops the
/// child. The signal fires when the *thread* that spawned the child exits, so
/// spawn from the thread that owns the handle (tests here are synchronous).
pub(crate) fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot open log {}: {e}", log.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone log handle {}: {e}", log.display()));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    set_parent_death_signal(cmd);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"))
}

/// Arranges for the child to receive SIGKILL when its parent thread dies.
pub(crate) fn set_parent_death_signal(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes two
    // async-signal-safe system calls (prctl, getppid) and `_exit`; it touches
    // no locks and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Runs `cmd` to completion and returns its output.
///
/// # Panics
/// If it cannot start or exits unsuccessfully; its stderr is in the message.
pub(crate) fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits up to `timeout` for the child to exit; `None` if it is still running.
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => panic!("cannot wait for pid {}: {e}", child.id()),
        }
    }
}

/// Sends `signal` to the child unless it has already been reaped.
///
/// Checking `try_wait` first matters: once reaped, the PID may belong to an
/// unrelated process. An exited but unreaped child keeps its PID reserved, so
/// signalling it is harmless.
pub(crate) fn signal(child: &mut Child, signal: libc::c_int) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own
    // unreaped child (checked above), so it cannot name another process.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        // ESRCH: it exited between try_wait and kill; nothing to do.
        assert_eq!(
            err.raw_os_error(),
            Some(libc::ESRCH),
            "kill({pid}, {signal}): {err}"
        );
    }
}

/// SIGKILL and reap. Returns the exit status.
pub(crate) fn kill9(child: &mut Child) -> ExitStatus {
    signal(child, libc::SIGKILL);
    child
        .wait()
        .unwrap_or_else(|e| panic!("cannot reap pid {}: {e}", child.id()))
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Returns the status if the child
/// exited within `grace` on its own, `None` if it had to be killed.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    signal(child, libc::SIGTERM);
    match wait_timeout(child, grace) {
        Some(status) => Some(status),
        None => {
            kill9(child);
            None
        }
    }
}

/// The last `lines` lines of a log file (at most 64 KiB of it), for panic
/// messages; a note instead if it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(script: &str, dir: &Path) -> Child {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        spawn_logged(&mut cmd, &dir.join("child.log"))
    }

    #[test]
    fn terminate_returns_the_status_of_a_clean_stop() {
        let dir = crate::TempDir::new("process-clean");
        let mut child = spawn("exec sleep 60", dir.path());
        let status = terminate(&mut child, Duration::from_secs(10)).expect("stops on SIGTERM");
        assert!(!status.success());
    }

    #[test]
    fn terminate_kills_a_child_that_ignores_sigterm() {
        let dir = crate::TempDir::new("process-stubborn");
        // An ignored signal stays ignored across exec; "ready" shows the trap
        // is in place before SIGTERM is sent.
        let mut child = spawn("trap '' TERM; echo ready; exec sleep 60", dir.path());
        let log = dir.join("child.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ready")
        {
            assert!(Instant::now() < deadline, "child never started");
            std::thread::sleep(POLL);
        }
        assert_eq!(terminate(&mut child, Duration::from_millis(300)), None);
        // Reaped: a second signal must be a no-op, not a kill of a reused pid.
        signal(&mut child, libc::SIGKILL);
    }

    #[test]
    fn output_goes_to_the_log_and_is_appended() {
        let dir = crate::TempDir::new("process-log");
        for round in 0..2 {
            let mut child = spawn(&format!("echo out{round}; echo err{round} >&2"), dir.path());
            assert!(wait_timeout(&mut child, Duration::from_secs(10)).is_some_and(|s| s.success()));
        }
        let tail = log_tail(&dir.join("child.log"), 3);
        assert_eq!(tail.lines().count(), 3, "{tail}");
        assert!(tail.ends_with("out1\nerr1"), "{tail}");
    }
}
