//! Paces row generation at a steady rate without drift.
//!
//! The pacer never sleeps itself; it is a pure function of the instants it
//! is given, which is what makes it testable with a simulated clock. It counts
//! how many rows the rate allows since its origin (`elapsed × rate`) and how
//! many it has released; a poll releases the difference. Because the allowance
//! is computed from the origin rather than by adding up sleeps, late wake-ups
//! and slow polls are made up for and never accumulate into drift.

use std::time::{Duration, Instant};

/// How long a row may wait for company before its batch is released.
///
/// At high rates batches fill to `batch_size` long before this; at low rates
/// it groups a few rows per batch instead of sending one row per batch (at
/// 1000 rows/s: 10 rows every 10 ms rather than one every millisecond), while
/// a rate of 10 rows/s still sends a row every 100 ms.
pub const LINGER: Duration = Duration::from_millis(10);

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// What a poll at a given instant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Release this many rows now (already counted as released).
    Release(u64),
    /// Nothing to release before this instant.
    NotBefore(Instant),
}

/// A drift-free rate limiter for one source instance.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Rows per second; never 0 (an unlimited source has no pacer).
    rate: u64,
    /// Rows to wait for before releasing a batch; see [`LINGER`].
    min_batch: u64,
    /// The most rows a poll may catch up on after a stall.
    max_backlog: u64,
    /// The instant the allowance is counted from; set by the first poll, so
    /// time spent between `create` and the first poll (the host connecting
    /// to Kafka) does not turn into a burst.
    origin: Option<Instant>,
    /// Rows released (or forgiven, see [`Pacer::poll`]) since `origin`.
    released: u64,
}

impl Pacer {
    /// A pacer for `rate` rows per second (at least 1) releasing at most
    /// `batch_size` rows per poll.
    pub fn new(rate: u64, batch_size: u64) -> Self {
        let rate = rate.max(1);
        let batch_size = batch_size.max(1);
        let linger_rows = u128::from(rate) * LINGER.as_nanos() / NANOS_PER_SEC;
        Pacer {
            rate,
            min_batch: u64::try_from(linger_rows)
                .unwrap_or(u64::MAX)
                .clamp(1, batch_size),
            max_backlog: rate.max(batch_size),
            origin: None,
            released: 0,
        }
    }

    /// Decides what a poll at `now` may release, at most `limit` rows
    /// (`limit` ≥ 1).
    ///
    /// If the host stopped polling for longer than a second (Kafka pushing
    /// back, the daemon paused), the allowance beyond one second's worth of
    /// rows is forgiven: the source catches up by at most a second, then
    /// continues at its rate instead of bursting for the whole stall.
    pub fn poll(&mut self, now: Instant, limit: u64) -> Pace {
        let origin = *self.origin.get_or_insert(now);
        let mut due = self.allowed(origin, now).saturating_sub(self.released);
        if due > self.max_backlog {
            self.released += due - self.max_backlog;
            due = self.max_backlog;
        }
        let want = self.min_batch.min(limit).max(1);
        if due >= want {
            let n = due.min(limit);
            self.released += n;
            Pace::Release(n)
        } else {
            Pace::NotBefore(self.instant_of(origin, self.released + want))
        }
    }

    /// Rows the rate allows at `now` that are not released yet.
    pub fn backlog(&self, now: Instant) -> u64 {
        self.origin.map_or(0, |origin| {
            self.allowed(origin, now).saturating_sub(self.released)
        })
    }

    /// Rows the rate allows between `origin` and `now`.
    fn allowed(&self, origin: Instant, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(origin).as_nanos();
        u64::try_from(nanos * u128::from(self.rate) / NANOS_PER_SEC).unwrap_or(u64::MAX)
    }

    /// The first instant at which `rows` rows are allowed.
    fn instant_of(&self, origin: Instant, rows: u64) -> Instant {
        let nanos = (u128::from(rows) * NANOS_PER_SEC).div_ceil(u128::from(self.rate));
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Centuries away if this overflows; a far instant means "not soon".
        origin
            .checked_add(offset)
            .unwrap_or_else(|| origin + Duration::from_secs(u64::from(u32::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a pacer the way `Generator::poll` does, with a simulated clock:
    /// returns the rows released and the simulated time when the poll returns.
    fn simulated_poll(
        p: &mut Pacer,
        now: Instant,
        timeout: Duration,
        limit: u64,
    ) -> (u64, Instant) {
        let deadline = now + timeout;
        let mut now = now;
        loop {
            match p.poll(now, limit) {
                Pace::Release(n) => return (n, now),
                Pace::NotBefore(at) if at > deadline => return (0, deadline),
                Pace::NotBefore(at) => now = at,
            }
        }
    }

    #[test]
    fn releases_the_rate_without_drift() {
        for (rate, batch) in [(10, 1000), (1000, 1000), (7919, 500), (1_000_000, 1000)] {
            let mut p = Pacer::new(rate, batch);
            let start = Instant::now();
            let mut now = start;
            let mut total = 0;
            let mut host_jitter = 0u64;
            // Ten simulated minutes of polls with a 100 ms timeout and up to
            // 0.5 ms of host work between polls.
            while now < start + Duration::from_secs(600) {
                let (n, t) = simulated_poll(&mut p, now, Duration::from_millis(100), batch);
                assert!(n <= batch);
                total += n;
                host_jitter = (host_jitter * 31 + 7) % 500;
                now = t + Duration::from_micros(host_jitter);
            }
            let expected = (now - start).as_secs_f64() * rate as f64;
            let slack = Pacer::new(rate, batch).min_batch as f64 + rate as f64 * 0.0005 + 1.0;
            assert!(
                total as f64 <= expected + 1.0,
                "rate {rate}: {total} > {expected}"
            );
            assert!(
                total as f64 >= expected - slack,
                "rate {rate}: {total} << {expected}"
            );
        }
    }

    #[test]
    fn low_rates_release_single_rows_on_time() {
        let mut p = Pacer::new(10, 1000);
        let start = Instant::now();
        assert_eq!(
            p.poll(start, 1000),
            Pace::NotBefore(start + Duration::from_millis(100))
        );
        assert_eq!(
            p.poll(start + Duration::from_millis(100), 1000),
            Pace::Release(1)
        );
        assert_eq!(
            p.poll(start + Duration::from_millis(150), 1000),
            Pace::NotBefore(start + Duration::from_millis(200))
        );
    }

    #[test]
    fn a_stall_catches_up_at_most_one_second() {
        let mut p = Pacer::new(1000, 100);
        let start = Instant::now();
        assert!(matches!(p.poll(start, 100), Pace::NotBefore(_)));
        let later = start + Duration::from_secs(30);
        assert_eq!(p.backlog(later), 30_000);
        let mut caught_up = 0;
        while let Pace::Release(n) = p.poll(later, 100) {
            caught_up += n;
        }
        assert_eq!(caught_up, 1000);
        assert_eq!(p.backlog(later), 0);
        // And then it is back at the rate.
        assert_eq!(
            p.poll(later + Duration::from_millis(10), 100),
            Pace::Release(10)
        );
    }

    #[test]
    fn limit_caps_a_release() {
        let mut p = Pacer::new(1000, 1000);
        let start = Instant::now();
        let _ = p.poll(start, 1000);
        assert_eq!(
            p.poll(start + Duration::from_millis(500), 3),
            Pace::Release(3)
        );
        assert_eq!(p.backlog(start + Duration::from_millis(500)), 497);
    }
}
