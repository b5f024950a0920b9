//! Stop signals: the first SIGTERM or SIGINT starts a graceful drain (stop
//! polling, deliver, commit); a second one ends the process at once with the
//! signal's default action, for an operator who cannot wait.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on the first stop signal.
pub fn install(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
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
    Ok(())
}
