//! Signals: the first SIGTERM or SIGINT starts a graceful drain (stop
//! polling, deliver, commit); a second one ends the process at once with the
//! signal's default action, for an operator who cannot wait. SIGHUP asks for
//! a configuration reload.

use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Signalled on every SIGHUP. Several signals before the reloader looks
/// collapse into one reload, which reads the files as they are then.
pub type ReloadRequests = Arc<Notify>;

/// Cancels `shutdown` on the first stop signal, and returns what SIGHUP
/// signals. Installed before anything else, so that a SIGHUP during start-up
/// is a reload request rather than the default action (termination).
pub fn install(shutdown: CancellationToken) -> std::io::Result<ReloadRequests> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let reload = Arc::new(Notify::new());
    let requests = reload.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    tracing::info!(signal, "Reload requested.");
                    reload.notify_one();
                    continue;
                }
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        signal,
                        "Stopping: finishing deliveries and committing offsets."
                    );
                    shutdown.cancel();
                } else {
                    tracing::warn!(
                        signal,
                        "Second stop signal: exiting without waiting for deliveries."
                    );
                    // Falls back to the default action: terminate. Offsets
                    // committed so far stay valid; the rest is sent again.
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                }
            }
        })?;
    Ok(requests)
}
