//! What librdkafka says about its connections, said once.
//!
//! One broker event reaches the daemon several times: librdkafka logs it
//! (facility `FAIL`) and raises it as an error event, every client of the
//! same broker (the producer, an exactly-once source's producer, the
//! broker probe) reports it, and it repeats with every reconnect attempt,
//! followed each time by "1/1 brokers are down". Logged as it comes, a
//! broker that goes away for a minute writes hundreds of warning lines.
//!
//! Here each distinct message is logged once, process-wide, and repeats
//! within [`WINDOW`] are counted; the next line of the same message after
//! the window says how many were held back ("… 12 more in the last
//! minute"). Once the daemon lets go of Kafka at a clean stop
//! ([`closing`]), connection errors are its own clients and its
//! in-process broker closing, and go to the debug level.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long a logged message stays logged: repeats within it are counted.
pub(super) const WINDOW: Duration = Duration::from_secs(60);

/// Most distinct messages remembered; older ones are forgotten first.
const MAX_MESSAGES: usize = 256;

/// The process's message memory.
static LOG: LazyLock<ClientLog> = LazyLock::new(ClientLog::default);

/// Whether the daemon is closing its Kafka clients.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Marks the daemon as closing its Kafka clients: every source has
/// drained and committed, so what the clients report from here on is the
/// daemon's own doing, not a fault.
pub fn closing() {
    CLOSING.store(true, Ordering::Release);
}

/// Whether [`closing`] was called.
pub(super) fn is_closing() -> bool {
    CLOSING.load(Ordering::Acquire)
}

/// Whether to log `message` now: `Some(n)` with the repeats held back since
/// its last line, or `None` to hold this one back too.
pub(super) fn admit(message: &str) -> Option<u64> {
    LOG.admit(&key(message), Instant::now())
}

#[derive(Debug, Default)]
struct ClientLog {
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged_at: Instant,
    held_back: u64,
}

impl ClientLog {
    fn admit(&self, key: &str, now: Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = seen.get_mut(key) {
            if now.duration_since(entry.logged_at) < WINDOW {
                entry.held_back += 1;
                return None;
            }
            let held_back = entry.held_back;
            *entry = Seen {
                logged_at: now,
                held_back: 0,
            };
            return Some(held_back);
        }
        if seen.len() >= MAX_MESSAGES
            && let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, s)| s.logged_at)
                .map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        seen.insert(
            key.to_owned(),
            Seen {
                logged_at: now,
                held_back: 0,
            },
        );
        Some(0)
    }
}

/// `message` without what changes from one report of the same event to
/// the next: librdkafka's thread prefix (`[thrd:…]: `) and its own
/// counters (`(after 325ms in state AUTH_REQ, 1 identical error(s)
/// suppressed)`).
fn key(message: &str) -> String {
    let mut text = message;
    if text.starts_with("[thrd:")
        && let Some(end) = text.find("]: ")
    {
        text = &text[end + 3..];
    }
    let Some(at) = text.find(" (after ") else {
        return text.to_owned();
    };
    // The clause's own closing parenthesis: it holds "error(s)".
    let mut depth = 0usize;
    let mut close = text.len();
    for (i, c) in text[at + 1..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = at + 1 + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    format!("{}{}", &text[..at], &text[close..])
}

/// `message`, saying how many repeats were held back before it.
pub(super) fn with_repeats(message: &str, held_back: u64) -> String {
    if held_back == 0 {
        message.to_owned()
    } else {
        // WINDOW is a minute.
        format!("{message} ({held_back} more in the last minute)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_of_one_event_share_a_key_whatever_librdkafka_counted() {
        let a = "[thrd:sasl_ssl://127.0.0.1:42495/bootstrap]: sasl_ssl://127.0.0.1:42495/bootstrap: \
                 SASL authentication error: Authentication failed (after 325ms in state AUTH_REQ)";
        let b = "sasl_ssl://127.0.0.1:42495/bootstrap: SASL authentication error: Authentication \
                 failed (after 321ms in state AUTH_REQ, 1 identical error(s) suppressed)";
        assert_eq!(key(a), key(b));
        assert_eq!(
            key(b),
            "sasl_ssl://127.0.0.1:42495/bootstrap: SASL authentication error: Authentication failed"
        );
        assert_ne!(
            key(a),
            key("127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed")
        );
        assert_eq!(
            key(
                "b/1: Connect failed: Connection refused (after 0ms in state CONNECT, 1 identical \
                 error(s) suppressed); this address does not answer"
            ),
            "b/1: Connect failed: Connection refused; this address does not answer"
        );
    }

    #[test]
    fn a_repeated_message_is_logged_once_a_window_with_the_count_of_repeats() {
        let log = ClientLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit("down", t0), Some(0));
        for i in 1..=12 {
            assert_eq!(log.admit("down", t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(log.admit("other", t0 + Duration::from_secs(2)), Some(0));
        assert_eq!(log.admit("down", t0 + WINDOW), Some(12));
        assert_eq!(
            log.admit("down", t0 + WINDOW + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            with_repeats("1/1 brokers are down", 12),
            "1/1 brokers are down (12 more in the last minute)"
        );
    }

    #[test]
    fn the_memory_of_messages_is_bounded() {
        let log = ClientLog::default();
        let t0 = Instant::now();
        for i in 0..(MAX_MESSAGES as u64 + 50) {
            log.admit(&format!("m{i}"), t0 + Duration::from_millis(i));
        }
        let seen = log.seen.lock().unwrap();
        assert_eq!(seen.len(), MAX_MESSAGES);
        assert!(!seen.contains_key("m0"));
    }
}
