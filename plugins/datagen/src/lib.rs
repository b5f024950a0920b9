//! `datagen`: a tributary source plugin that generates realistic orders,
//! application logs, host metrics and click events, replacing the Python
//! scripts people write to feed a test topic.
//!
//! * [`generate`]: the engine, turning `(seed, seq)` into Arrow rows;
//! * [`pacing`]: the drift-free rate limiter;
//! * [`config`]: the options;
//! * this file: the thin glue to the plugin SDK: resume, pace, stop.
//!
//! Every row carries `seq`, the source's sequence number from 0, so a test
//! reading the topic can tell exactly which rows arrived. The checkpoint of
//! partition `seq` is the next `seq` as a little-endian `u64`; a restart
//! resumes there and, because rows are a pure function of `(seed, seq)`,
//! regenerates exactly the rows that were not yet committed.

pub mod config;
pub mod generate;
pub mod pacing;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tributary_plugin_sdk::{
    Batch, Checkpoint, ConfigIssue, CreateContext, Error, LagUnit, OptionSpec, Options, Poll,
    Source, SourceType,
};

use crate::config::Config;
use crate::generate::RowGenerator;
use crate::pacing::{Pace, Pacer};

/// The one partition of a `datagen` source.
pub const PARTITION: &[u8] = b"seq";

/// The `datagen` source type.
#[derive(Debug)]
pub struct Generator {
    rows: RowGenerator,
    /// `None` when `rate_per_sec` is 0: every poll returns a full batch.
    pacer: Option<Pacer>,
    /// The `seq` of the next row.
    next_seq: u64,
    /// One past the last `seq` to generate; `u64::MAX` when endless (a
    /// source that got there would have run for centuries).
    end_seq: u64,
    batch_size: u64,
}

impl Generator {
    /// Builds a source from checked options, resuming at `next_seq`.
    pub fn new(config: &Config, next_seq: u64) -> Self {
        Generator {
            rows: RowGenerator::new(config.kind, config.seed, config.customers),
            pacer: (config.rate_per_sec > 0)
                .then(|| Pacer::new(config.rate_per_sec, config.batch_size)),
            next_seq,
            end_seq: config.count.unwrap_or(u64::MAX),
            batch_size: config.batch_size,
        }
    }

    /// The `seq` the next batch starts at.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Waits (within `timeout`) until the pacer releases rows; `None` when
    /// it is not yet time.
    fn paced_rows(pacer: &mut Pacer, limit: u64, timeout: Duration) -> Option<u64> {
        let mut now = Instant::now();
        let deadline = now.checked_add(timeout).unwrap_or(now);
        loop {
            match pacer.poll(now, limit) {
                Pace::Release(n) => return Some(n),
                // Sleep to the deadline, not just return: the host calls
                // again at once, and an early return would make it spin.
                Pace::NotBefore(at) if at > deadline => {
                    std::thread::sleep(deadline.saturating_duration_since(now));
                    return None;
                }
                Pace::NotBefore(at) => {
                    std::thread::sleep(at.saturating_duration_since(now));
                    now = Instant::now();
                }
            }
        }
    }
}

/// Reads the resume point from the committed checkpoints.
///
/// A checkpoint that is not 8 bytes is an error: silently restarting from 0
/// would duplicate everything the topic already holds.
pub fn resume_seq(checkpoints: &[Checkpoint]) -> Result<u64, Error> {
    let mut next = 0;
    for c in checkpoints.iter().filter(|c| c.partition == PARTITION) {
        let bytes: [u8; 8] = c.checkpoint.as_slice().try_into().map_err(|_| {
            Error::invalid_data(format!(
                "the checkpoint of partition `{}` is {} bytes, expected 8 (the next seq as a \
                 little-endian u64); refusing to guess where to resume",
                String::from_utf8_lossy(&c.partition),
                c.checkpoint.len()
            ))
        })?;
        next = u64::from_le_bytes(bytes);
    }
    Ok(next)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Source for Generator {
    fn validate(options: &Options) -> Result<(), Vec<ConfigIssue>> {
        Config::from_options(options).map(|_| ())
    }

    fn create(ctx: CreateContext) -> Result<Self, Error> {
        let config = Config::from_options(&ctx.options).map_err(Error::from)?;
        let next_seq = resume_seq(&ctx.checkpoints)?;
        for c in ctx.checkpoints.iter().filter(|c| c.partition != PARTITION) {
            ctx.log.warn(&format!(
                "Ignoring the checkpoint of unknown partition `{}`.",
                String::from_utf8_lossy(&c.partition)
            ));
        }
        if next_seq > 0 {
            ctx.log.info(&format!(
                "Resuming {} at seq {next_seq}.",
                config.kind.as_str()
            ));
        }
        Ok(Generator::new(&config, next_seq))
    }

    fn poll(&mut self, timeout: Duration) -> Result<Poll, Error> {
        let left = self.end_seq.saturating_sub(self.next_seq);
        if left == 0 {
            return Ok(Poll::Finished);
        }
        let limit = left.min(self.batch_size);
        let (rows, lag) = match &mut self.pacer {
            None => (limit, None),
            Some(pacer) => match Self::paced_rows(pacer, limit, timeout) {
                Some(rows) => (rows, Some(pacer.backlog(Instant::now()))),
                None => return Ok(Poll::Idle),
            },
        };
        // `rows` ≤ `batch_size` ≤ 1 000 000, so the cast cannot truncate.
        let records = self
            .rows
            .batch(self.next_seq, rows as usize, now_millis())?;
        self.next_seq += rows;
        Ok(Poll::Batch(Batch {
            records,
            partition: PARTITION.to_vec(),
            checkpoint: self.next_seq.to_le_bytes().to_vec(),
            lag,
        }))
    }
}

impl SourceType for Generator {
    const NAME: &'static str = "datagen";
    const DESCRIPTION: &'static str =
        "Generates realistic orders, logs, host metrics or click events at a steady rate.";
    /// A paced source's backlog: rows the rate allows and not yet produced.
    const LAG_UNIT: Option<LagUnit> = Some(LagUnit::Rows);

    fn options() -> Vec<OptionSpec> {
        config::options()
    }
}

tributary_plugin_sdk::export_plugin!(name: "datagen", sources: [Generator]);

#[cfg(test)]
mod tests {
    use arrow_array::RecordBatch;
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    use serde_json::json;
    use tributary_plugin_sdk::Logger;

    use super::*;
    use serde_json::Value;

    fn create(config: Value, checkpoints: Vec<Checkpoint>) -> Result<Generator, Error> {
        let options = tributary_plugin_sdk::Options::parse(&config::options(), &config)
            .map_err(Error::from)?;
        Generator::create(CreateContext {
            source_name: "test".into(),
            options,
            checkpoints,
            log: Logger::none(),
        })
    }

    fn next_batch(g: &mut Generator) -> Batch {
        match g.poll(Duration::from_secs(5)).expect("poll succeeds") {
            Poll::Batch(b) => b,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    fn seqs(b: &RecordBatch) -> Vec<u64> {
        b.column(0).as_primitive::<UInt64Type>().values().to_vec()
    }

    fn without_timestamp(b: &RecordBatch) -> RecordBatch {
        assert_eq!(b.schema().fields().last().unwrap().name(), "timestamp");
        let keep: Vec<usize> = (0..b.num_columns() - 1).collect();
        b.project(&keep).unwrap()
    }

    #[test]
    fn same_seed_gives_the_same_rows() {
        for kind in generate::Kind::NAMES {
            let config = json!({"kind": kind, "rate_per_sec": 0, "batch_size": 250, "seed": 99});
            let mut a = create(config.clone(), vec![]).unwrap();
            let mut b = create(config, vec![]).unwrap();
            for _ in 0..3 {
                let (x, y) = (next_batch(&mut a), next_batch(&mut b));
                assert_eq!(without_timestamp(&x.records), without_timestamp(&y.records));
                assert_eq!(x.checkpoint, y.checkpoint);
            }
        }
    }

    #[test]
    fn resumes_at_the_checkpointed_seq() {
        let config = json!({"kind": "orders", "rate_per_sec": 0, "batch_size": 100, "seed": 5});
        let mut first = create(config.clone(), vec![]).unwrap();
        let b0 = next_batch(&mut first);
        assert_eq!(seqs(&b0.records), (0..100).collect::<Vec<_>>());
        assert_eq!(b0.partition, b"seq");
        assert_eq!(b0.checkpoint, 100u64.to_le_bytes());
        let b1 = next_batch(&mut first);
        let b2 = next_batch(&mut first);

        // Only b0 and b1 were committed when the daemon restarted.
        let mut resumed = create(config, vec![Checkpoint::new(b"seq", b1.checkpoint)]).unwrap();
        assert_eq!(resumed.next_seq(), 200);
        let r = next_batch(&mut resumed);
        assert_eq!(seqs(&r.records), (200..300).collect::<Vec<_>>());
        assert_eq!(
            without_timestamp(&r.records),
            without_timestamp(&b2.records)
        );
        assert_eq!(r.checkpoint, 300u64.to_le_bytes());
    }

    #[test]
    fn count_finishes_exactly_at_count() {
        let config = json!({"kind": "logs", "rate_per_sec": 0, "batch_size": 100, "count": 250});
        let mut g = create(config.clone(), vec![]).unwrap();
        let mut got = Vec::new();
        loop {
            match g.poll(Duration::from_millis(100)).unwrap() {
                Poll::Batch(b) => got.extend(seqs(&b.records)),
                Poll::Finished => break,
                Poll::Idle => panic!("an unpaced source is never idle"),
            }
        }
        assert_eq!(got, (0..250).collect::<Vec<_>>());
        assert!(matches!(g.poll(Duration::ZERO).unwrap(), Poll::Finished));

        // Resuming at or past the count finishes at once.
        let ckpt = Checkpoint::new(b"seq", 250u64.to_le_bytes());
        let mut done = create(config, vec![ckpt]).unwrap();
        assert!(matches!(done.poll(Duration::ZERO).unwrap(), Poll::Finished));

        // A paced source stops exactly at the count, too.
        let config = json!({"kind": "metrics", "rate_per_sec": 100_000, "count": 7});
        let mut paced = create(config, vec![]).unwrap();
        let mut total = 0;
        loop {
            match paced.poll(Duration::from_millis(50)).unwrap() {
                Poll::Batch(b) => total += b.records.num_rows(),
                Poll::Idle => {}
                Poll::Finished => break,
            }
        }
        assert_eq!(total, 7);
    }

    #[test]
    fn schema_is_stable_across_batches() {
        for kind in generate::Kind::NAMES {
            let config = json!({"kind": kind, "rate_per_sec": 0, "batch_size": 64});
            let mut g = create(config, vec![]).unwrap();
            let schema = next_batch(&mut g).records.schema();
            for _ in 0..5 {
                assert_eq!(next_batch(&mut g).records.schema(), schema, "{kind}");
            }
            assert_eq!(schema.field(0).name(), "seq");
        }
    }

    #[test]
    fn malformed_checkpoint_is_rejected() {
        for bad in [vec![], vec![1, 2, 3], vec![0; 9]] {
            let err = create(json!({}), vec![Checkpoint::new(b"seq", bad.clone())]).unwrap_err();
            assert!(err.message().contains("expected 8"), "{err}");
            assert!(
                err.message().contains(&format!("is {} bytes", bad.len())),
                "{err}"
            );
        }
        // Checkpoints of other partitions are not ours and do not matter.
        let g = create(json!({}), vec![Checkpoint::new(b"other", [1])]).unwrap();
        assert_eq!(g.next_seq(), 0);
    }

    #[test]
    fn invalid_options_fail_validate_and_create() {
        let bad = json!({"rate_per_sec": -10, "batch_size": 0});
        let issues = Options::parse(&config::options(), &bad).unwrap_err();
        let keys: Vec<_> = issues.iter().filter_map(|i| i.key.as_deref()).collect();
        assert_eq!(keys, ["rate_per_sec", "batch_size"]);
        let err = create(bad, vec![]).unwrap_err();
        assert!(err.message().contains("`batch_size`"), "{err}");
        let good = Options::parse(&config::options(), &json!({"kind": "clicks", "count": 10}));
        assert!(Generator::validate(&good.unwrap()).is_ok());
    }

    #[test]
    fn paced_source_keeps_to_its_rate() {
        // Real time, so the bounds are deliberately loose: the pacer can
        // never run ahead of the rate (exact), and it must not fall far
        // behind (generous). The exact drift check is the simulated-clock
        // test in `pacing`.
        let rate = 2000.0;
        let config = json!({"kind": "orders", "rate_per_sec": 2000, "batch_size": 1000});
        let mut g = create(config, vec![]).unwrap();
        let start = Instant::now();
        let mut rows = 0;
        let mut batches = 0;
        while rows < 600 && start.elapsed() < Duration::from_secs(30) {
            let before = Instant::now();
            let timeout = Duration::from_millis(20);
            if let Poll::Batch(b) = g.poll(timeout).unwrap() {
                rows += b.records.num_rows();
                batches += 1;
            }
            assert!(
                before.elapsed() < timeout + Duration::from_secs(2),
                "poll overran"
            );
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            rows as f64 <= rate * elapsed + 1.0,
            "{rows} rows in {elapsed} s: too fast"
        );
        assert!(
            elapsed < 600.0 / rate * 10.0,
            "{rows} rows took {elapsed} s"
        );
        // Smooth: many small batches, not one burst.
        assert!(batches >= 10, "only {batches} batches");
    }

    #[test]
    fn low_rates_send_rows_without_waiting_for_a_full_batch() {
        let config = json!({"kind": "clicks", "rate_per_sec": 50, "batch_size": 1000});
        let mut g = create(config, vec![]).unwrap();
        let start = Instant::now();
        let batch = loop {
            if let Poll::Batch(b) = g.poll(Duration::from_millis(10)).unwrap() {
                break b;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no rows at 50/s");
        };
        assert_eq!(batch.records.num_rows(), 1);
    }
}
