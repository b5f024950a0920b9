//! Running the real `tributary` binary.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use crate::paths::daemon_bin;
use crate::process;

/// How much of the daemon's log a panicking test prints: enough for the last
/// error and its context, short enough to read in CI output.
const LOG_LINES_ON_PANIC: usize = 40;

/// Sets `RUST_LOG=info` unless the caller's environment chose a level, so the
/// daemon's log says enough to debug a failure without drowning it; and
/// `NO_COLOR=1` unless set, so the log holds plain text that tests can search
/// (`tracing-subscriber` otherwise writes ANSI colours even into a file).
fn default_log_env(cmd: &mut Command) {
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    if std::env::var_os("NO_COLOR").is_none() {
        cmd.env("NO_COLOR", "1");
    }
}

/// A `tributary run --config <path>` process.
///
/// Dropping it SIGKILLs at once and reaps the process (a test that wants a
/// clean stop says so with [`Daemon::sigterm_and_wait`]), so a panicking test never
/// leaves a daemon behind; when the drop happens during a panic the tail of
/// the daemon's log is printed to help explain the failure.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `tributary run --config <config>`, appending stdout and stderr
    /// to `log` (so restart rounds sharing one log keep every round).
    ///
    /// # Panics
    /// If the binary is missing (see [`daemon_bin`]) or cannot be spawned.
    pub fn start(config: &Path, log: &Path) -> Daemon {
        Daemon::start_with_args(config, log, &[])
    }

    /// [`Daemon::start`] with extra `run` arguments, e.g.
    /// `["--exit-when-finished"]` for finite inputs.
    pub fn start_with_args(config: &Path, log: &Path, args: &[&str]) -> Daemon {
        Daemon::start_with_env(config, log, args, &[])
    }

    /// [`Daemon::start_with_args`] with extra environment variables, e.g.
    /// systemd's `NOTIFY_SOCKET`.
    pub fn start_with_env(
        config: &Path,
        log: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        let mut cmd = Command::new(daemon_bin());
        cmd.arg("run").arg("--config").arg(config).args(args);
        cmd.envs(env.iter().copied());
        default_log_env(&mut cmd);
        let child = process::spawn_logged(&mut cmd, log);
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    /// The process id, e.g. for `kill -HUP`-style tests.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file this daemon writes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8), for assertions on log lines.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Sends an arbitrary signal (e.g. `libc::SIGHUP` for a reload).
    pub fn signal(&mut self, signal: libc::c_int) {
        process::signal(&mut self.child, signal);
    }

    /// `kill -9` and reap: the crash the offset store must survive.
    pub fn kill9(&mut self) -> ExitStatus {
        process::kill9(&mut self.child)
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit. `None` means the
    /// daemon did not stop in time and was SIGKILLed — a failed clean stop
    /// that the caller will usually assert against.
    pub fn sigterm_and_wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        process::terminate(&mut self.child, timeout)
    }

    /// Waits up to `timeout` for the daemon to exit by itself (e.g. after a
    /// fatal config error); `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        process::wait_timeout(&mut self.child, timeout)
    }

    /// Whether the process is still running (not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let status = process::kill9(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "--- daemon pid {} ({status}), last lines of {} ---\n{}\n---",
                self.child.id(),
                self.log.display(),
                process::log_tail(&self.log, LOG_LINES_ON_PANIC)
            );
        }
    }
}

/// Runs `tributary run --config <config> --exit-when-finished`: the daemon
/// as a batch job, which must end by itself within `timeout`.
///
/// # Panics
/// As [`run_cli`], if it does not end in time.
pub fn run_until_finished(config: &std::path::Path, timeout: Duration) -> Output {
    run_cli(
        &[
            "run".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--exit-when-finished".as_ref(),
        ],
        timeout,
    )
}

/// Runs a one-shot `tributary <args>` (e.g. `validate --config x`) and returns
/// its output.
///
/// `tributary validate --config CONFIG`, which must refuse the
/// configuration (exit code 2); its output.
///
/// # Panics
/// If it exits otherwise.
pub fn validate_refuses(config: &std::path::Path) -> String {
    let out = run_cli(
        &["validate".as_ref(), "--config".as_ref(), config.as_os_str()],
        Duration::from_secs(30),
    );
    let text = crate::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    text
}

/// # Panics
/// If the command does not exit within `timeout` (it is then killed): a CLI
/// that hangs is a bug the test should report, not wait out.
pub fn run_cli<S: AsRef<std::ffi::OsStr>>(args: &[S], timeout: Duration) -> Output {
    let mut cmd = Command::new(daemon_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    default_log_env(&mut cmd);
    process::set_parent_death_signal(&mut cmd);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    // Drain both pipes on their own threads: a child blocked on a full pipe
    // would otherwise look like a hang.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let Some(status) = process::wait_timeout(&mut child, timeout) else {
        process::kill9(&mut child);
        let err = stderr.join().unwrap_or_default();
        panic!(
            "{cmd:?} did not exit within {timeout:?}; stderr:\n{}",
            String::from_utf8_lossy(&err)
        );
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader does not panic"),
        stderr: stderr.join().expect("stderr reader does not panic"),
    }
}
