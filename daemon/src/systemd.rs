//! The systemd notification protocol (`sd_notify`), spoken directly: one
//! datagram per state change to the socket named by `NOTIFY_SOCKET`.
//!
//! With `Type=notify` systemd considers the service started only on
//! `READY=1`, shows `RELOADING=1` … `READY=1` around a reload, and with
//! `WatchdogSec=` restarts the service when `WATCHDOG=1` stops arriving.
//! The watchdog is fed only while every running source's thread keeps
//! coming back from its plugin (see [`SourceStatus::heartbeat_age`]), so a
//! daemon whose pipeline is wedged is restarted, while one that waits for a
//! broker or for input is not.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op. The protocol
//! is small enough that a dependency would not pay for itself.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::pipeline::{SourceState, SourceStatus, Supervisor};

/// Why the notification socket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` names neither a path nor an abstract socket.
    #[error("NOTIFY_SOCKET `{0}` is not an absolute path or an abstract socket name (`@…`)")]
    BadAddress(String),
    /// The socket could not be created or addressed.
    #[error("cannot use NOTIFY_SOCKET `{path}`: {source}")]
    Socket {
        /// The socket's name.
        path: String,
        /// The system's error.
        source: io::Error,
    },
}

/// Sends state changes to systemd, when it is listening.
#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the
    /// environment. An unusable socket is logged and notifications are off:
    /// systemd will then time the start out and say why, which is clearer
    /// than refusing to run.
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::default();
        };
        let path = path.to_string_lossy().into_owned();
        let target = match connect(&path) {
            Ok(target) => Some(target),
            Err(e) => {
                tracing::error!(error = %e, "Cannot notify systemd.");
                None
            }
        };
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// Whether systemd is listening.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog timeout systemd set, if any.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled())
    }

    /// Start-up is complete: config loaded, sources started.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload begins. systemd requires the monotonic time with it, so it
    /// can tell this reload from an older one.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=Reloading the configuration.",
            monotonic_usec()
        ));
    }

    /// Shutdown begins: draining deliveries and committing.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=Draining deliveries and committing offsets.");
    }

    /// The pipelines are alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// A free-form status line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    fn send(&self, message: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
            tracing::warn!(error = %e, "Cannot notify systemd.");
        }
    }
}

fn connect(path: &str) -> Result<(UnixDatagram, SocketAddr), NotifyError> {
    let socket_error = |source| NotifyError::Socket {
        path: path.to_owned(),
        source,
    };
    let addr = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(socket_error)?
    } else if path.starts_with('/') {
        SocketAddr::from_pathname(path).map_err(socket_error)?
    } else {
        return Err(NotifyError::BadAddress(path.to_owned()));
    };
    let socket = UnixDatagram::unbound().map_err(socket_error)?;
    Ok((socket, addr))
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares against.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs * 1_000_000 + nanos / 1_000
}

/// Whether every running source's thread came back from its plugin within
/// `limit`. Sources starting, backing off, finished or stopped are idle by
/// choice (or by the broker's doing), which a restart would not cure.
pub fn pipelines_alive(statuses: &[Arc<SourceStatus>], limit: Duration) -> Result<(), String> {
    for status in statuses {
        if status.state() == SourceState::Running
            && status.heartbeat_age().is_some_and(|age| age > limit)
        {
            return Err(status.name.clone());
        }
    }
    Ok(())
}

/// Feeds the watchdog at half its timeout while [`pipelines_alive`] holds;
/// returns at `shutdown`. A source whose thread is stuck stops the feeding,
/// and systemd restarts the service after the timeout.
pub async fn feed_watchdog(
    notifier: Arc<Notifier>,
    supervisor: Arc<Supervisor>,
    shutdown: CancellationToken,
) {
    let Some(timeout) = notifier.watchdog_timeout() else {
        return;
    };
    let mut ticker = tokio::time::interval(timeout / 2);
    let mut stalled: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        // Re-read each time: a reload adds and removes sources.
        match pipelines_alive(&supervisor.statuses(), timeout / 2) {
            Ok(()) => {
                if stalled.take().is_some() {
                    tracing::info!("Every source is making progress again.");
                }
                notifier.watchdog();
            }
            Err(source) => {
                if stalled.as_ref() != Some(&source) {
                    tracing::error!(
                        source = %source,
                        "A source's thread has not come back from its plugin; not feeding the systemd watchdog."
                    );
                    notifier.status(&format!("Source `{source}` is stuck in its plugin."));
                    stalled = Some(source);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_as_systemd_expects_them() {
        let dir = std::env::temp_dir().join(format!("tributary-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some(connect(path.to_str().unwrap()).unwrap()),
            watchdog: Some(Duration::from_secs(2)),
        };
        let mut buf = [0u8; 512];
        let mut next = || {
            let n = listener.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        notifier.ready("Running.");
        assert_eq!(next(), "READY=1\nSTATUS=Running.");
        let before = monotonic_usec();
        notifier.reloading();
        let reloading = next();
        let usec: u64 = reloading
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(reloading.starts_with("RELOADING=1\n"), "{reloading}");
        assert!(usec >= before && usec <= monotonic_usec());
        notifier.watchdog();
        assert_eq!(next(), "WATCHDOG=1");
        notifier.stopping();
        assert!(next().starts_with("STOPPING=1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn abstract_and_relative_socket_names() {
        assert!(connect("@tributary-test-abstract").is_ok());
        assert!(matches!(
            connect("relative/path"),
            Err(NotifyError::BadAddress(_))
        ));
    }

    #[test]
    fn a_running_source_without_a_heartbeat_is_stalled() {
        let status = Arc::new(SourceStatus::new("s", "t"));
        status.set_state(SourceState::Running);
        status.beat();
        let statuses = vec![status.clone()];
        assert!(pipelines_alive(&statuses, Duration::from_secs(60)).is_ok());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            pipelines_alive(&statuses, Duration::from_millis(10)),
            Err("s".to_owned())
        );
        // Waiting for a broker at start-up is not a stall.
        status.set_state(SourceState::Starting);
        assert!(pipelines_alive(&statuses, Duration::from_millis(10)).is_ok());
    }
}
