//! Leaving the process safely while librdkafka may still be working.
//!
//! `exit(3)` runs the C library's exit handlers, OpenSSL's cleanup among
//! them. A Kafka client whose broker threads are still alive at that
//! moment (a metadata call blocked on an unreachable broker holds its
//! client past the daemon's stop, or a TLS handshake is being retried)
//! then works on freed OpenSSL state and the process dies of SIGSEGV
//! instead of exiting with its status. So the process waits for every
//! client to be destroyed, for a bounded time, and if one is still alive
//! it leaves without running those handlers: every source has already
//! drained and committed, and nothing else needs them.

use std::io::Write as _;
use std::os::raw::c_int;
use std::time::Duration;

/// Waits up to `timeout` until no Kafka client and no librdkafka thread is
/// left in the process; says whether that happened.
pub fn clients_closed(timeout: Duration) -> bool {
    let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: takes no pointer; it only polls librdkafka's global counts of
    // live handles and threads.
    unsafe { rdkafka::bindings::rd_kafka_wait_destroyed(ms) == 0 }
}

/// Ends the process with `code` without running the C exit handlers (see
/// the module documentation); standard output and error are flushed first.
pub fn exit_now(code: u8) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; nothing of Rust's runs
    // afterwards, so no invariant can be observed broken.
    unsafe { libc::_exit(c_int::from(code)) }
}
