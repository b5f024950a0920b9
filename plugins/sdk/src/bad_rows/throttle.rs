//! Repeated warnings logged at most once per interval per kind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::source::Logger;

/// Logs a repeated warning at most once per interval per kind and counts
/// the ones held back. A warning that is logged should carry its own
/// totals (`12 since start`), so nothing is lost in between.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    kinds: HashMap<&'static str, Held>,
}

/// The state of one kind of warning.
#[derive(Debug)]
struct Held {
    /// When the last one was logged.
    logged_at: Instant,
    /// How many were held back since.
    suppressed: u64,
}

impl Throttle {
    /// A throttle letting one warning of each kind through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            kinds: HashMap::new(),
        }
    }

    /// Whether a warning of `kind` may be logged at `now`: `Some` with the
    /// number held back since the last one logged, which starts a new
    /// interval; `None` (and counted) when the last one was logged less
    /// than an interval ago.
    pub fn admit(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(kind) {
            Some(held) if now.duration_since(held.logged_at) < self.interval => {
                held.suppressed += 1;
                None
            }
            Some(held) => {
                held.logged_at = now;
                Some(std::mem::take(&mut held.suppressed))
            }
            None => {
                let held = Held {
                    logged_at: now,
                    suppressed: 0,
                };
                self.kinds.insert(kind, held);
                Some(0)
            }
        }
    }

    /// Logs `message` as a warning if a warning of `kind` is due now; the
    /// number held back since the last one when it was logged.
    pub fn warn(&mut self, log: &Logger, kind: &'static str, message: &str) -> Option<u64> {
        let admitted = self.admit(kind, Instant::now());
        if admitted.is_some() {
            log.warn(message);
        }
        admitted
    }

    /// Warnings of `kind` held back since the last one logged.
    pub fn suppressed(&self, kind: &str) -> u64 {
        self.kinds.get(kind).map_or(0, |held| held.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_kind_is_let_through_once_per_interval_and_the_rest_are_counted() {
        let mut throttle = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(throttle.admit("parse", at(0)), Some(0));
        assert_eq!(throttle.admit("parse", at(1)), None);
        assert_eq!(throttle.admit("parse", at(59)), None);
        assert_eq!(throttle.suppressed("parse"), 2);
        // Another kind has its own interval.
        assert_eq!(throttle.admit("overlong", at(30)), Some(0));
        assert_eq!(throttle.admit("parse", at(60)), Some(2));
        assert_eq!(throttle.suppressed("parse"), 0);
        // The interval runs from the last warning let through.
        assert_eq!(throttle.admit("parse", at(100)), None);
        assert_eq!(throttle.admit("parse", at(120)), Some(1));
        assert_eq!(throttle.suppressed("unknown"), 0);
    }

    #[test]
    fn a_throttled_warning_reports_whether_it_was_logged() {
        let mut throttle = Throttle::new(Duration::from_secs(3600));
        let log = Logger::none();
        assert_eq!(throttle.warn(&log, "parse", "Skipped 1 line."), Some(0));
        assert_eq!(throttle.warn(&log, "parse", "Skipped 2 lines."), None);
        assert_eq!(throttle.suppressed("parse"), 1);
    }
}
