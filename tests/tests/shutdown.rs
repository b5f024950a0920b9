//! Stopping is bounded: a SIGTERM is honoured even while the broker is
//! unreachable and the daemon is still starting.

use std::time::{Duration, Instant};

use tributary_tests::*;

#[test]
fn sigterm_during_startup_with_unreachable_broker_exits_promptly() {
    let dir = TempDir::new("unreachable");
    // Port 1 on loopback: nothing listens, connections are refused.
    let spec = ConfigSpec::new("127.0.0.1:1", dir.path()).drop_in(
        "orders.toml",
        datagen_source("orders", "orders", 100, 100, 1),
    );
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let status = daemon.sigterm_and_wait(Duration::from_secs(10));
    let took = asked.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?} after {took:?}:\n{}",
        daemon.log_text()
    );
    // Generous against CI jitter, far below librdkafka's metadata timeouts.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        !dir.join("offsets/source-orders.json").exists(),
        "nothing was delivered, so nothing may be committed"
    );
}
