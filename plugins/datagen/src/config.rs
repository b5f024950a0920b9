//! The `datagen` options: declared once in [`options`], read back typed
//! from the [`Options`] the SDK checked against that declaration.

use serde_json::Value;
use tributary_plugin_sdk::{ConfigIssue, OptionKind, OptionSpec, Options};

use crate::generate::Kind;

/// The largest accepted `batch_size`: a million rows of orders is already
/// hundreds of megabytes in one Arrow batch.
pub const MAX_BATCH_SIZE: i64 = 1_000_000;
/// The largest accepted `rate_per_sec`; far above what one source can
/// produce, it only rules out typos that would overflow arithmetic.
pub const MAX_RATE_PER_SEC: i64 = 1_000_000_000;
/// The largest accepted `customers` pool.
pub const MAX_CUSTOMERS: i64 = 1_000_000_000;

/// The options, as `tributary plugins describe datagen` shows them.
pub fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "kind",
            OptionKind::String,
            Some("\"orders\""),
            "Which events to generate: e-commerce orders, application logs, host metrics or \
             web clicks.",
        )
        .one_of(&Kind::NAMES),
        OptionSpec::new(
            "rate_per_sec",
            OptionKind::Integer,
            Some("1000"),
            "Rows per second, paced smoothly from the first poll; 0 generates as fast as \
             the daemon takes them.",
        )
        .range(0.0, MAX_RATE_PER_SEC as f64),
        OptionSpec::new(
            "batch_size",
            OptionKind::Integer,
            Some("1000"),
            "Most rows per batch. At low rates batches are smaller so rows still flow every \
             few milliseconds.",
        )
        .range(1.0, MAX_BATCH_SIZE as f64),
        OptionSpec::new(
            "seed",
            OptionKind::Integer,
            Some("0"),
            "Seed of the generator: the same seed gives the same rows for the same sequence \
             numbers (except `timestamp`).",
        ),
        OptionSpec::new(
            "count",
            OptionKind::Integer,
            None,
            "Total rows to generate, counting rows produced before a restart; the source \
             finishes once `seq` reaches it. Without it the source is endless.",
        )
        .at_least(0.0),
        OptionSpec::new(
            "customers",
            OptionKind::Integer,
            Some("1000"),
            "Size of the pool customer and user ids are drawn from (orders, clicks, logs).",
        )
        .range(1.0, MAX_CUSTOMERS as f64),
    ]
}

/// Validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Which events to generate.
    pub kind: Kind,
    /// Rows per second; 0 means unpaced.
    pub rate_per_sec: u64,
    /// Most rows per batch, 1..=[`MAX_BATCH_SIZE`].
    pub batch_size: u64,
    /// The seed, with negative TOML integers reinterpreted as their bits.
    pub seed: u64,
    /// Total rows, if finite.
    pub count: Option<u64>,
    /// Size of the customer id pool, at least 1.
    pub customers: u64,
}

impl Config {
    /// Reads the options. Names, types, ranges and choices were checked
    /// against [`options`], and every option but `count` has a default, so
    /// nothing here can fail except through a declaration bug, which is
    /// reported rather than papered over.
    pub fn from_options(o: &Options) -> Result<Config, Vec<ConfigIssue>> {
        let missing = |key: &str| ConfigIssue::key(key, "declared with a default but absent");
        let int = |key: &str| o.integer(key).ok_or_else(|| vec![missing(key)]);
        let kind = o
            .string("kind")
            .and_then(Kind::parse)
            .ok_or_else(|| vec![missing("kind")])?;
        Ok(Config {
            kind,
            // Non-negative by their declared ranges.
            rate_per_sec: int("rate_per_sec")?.unsigned_abs(),
            batch_size: int("batch_size")?.unsigned_abs(),
            // Negative seeds are as good as any: keep their bits.
            seed: int("seed")? as u64,
            count: o.integer("count").map(i64::unsigned_abs),
            customers: int("customers")?.unsigned_abs(),
        })
    }

    /// Checks `config` against the declarations and reads it.
    pub fn from_json(config: &Value) -> Result<Config, Vec<ConfigIssue>> {
        let (checked, declared) = Options::check(&options(), config);
        Options::merge(declared, Config::from_options(&checked))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn issue_keys(v: Value) -> Vec<String> {
        Config::from_json(&v)
            .unwrap_err()
            .into_iter()
            .map(|i| i.key.unwrap_or_default())
            .collect()
    }

    #[test]
    fn defaults_apply_to_an_empty_table() {
        let c = Config::from_json(&json!({})).unwrap();
        assert_eq!(
            c,
            Config {
                kind: Kind::Orders,
                rate_per_sec: 1000,
                batch_size: 1000,
                seed: 0,
                count: None,
                customers: 1000,
            }
        );
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let keys = issue_keys(json!({
            "kind": "trades",
            "rate_per_sec": -1,
            "batch_size": 0,
            "count": -5,
            "customers": 0,
            "colour": "blue",
        }));
        for k in [
            "kind",
            "rate_per_sec",
            "batch_size",
            "count",
            "customers",
            "colour",
        ] {
            assert!(keys.iter().any(|x| x == k), "no issue for {k}: {keys:?}");
        }
        assert_eq!(issue_keys(json!({"batch_size": 1_000_001})), ["batch_size"]);
        assert_eq!(issue_keys(json!({"seed": "x"})), ["seed"]);
        assert_eq!(issue_keys(json!({"rate_per_sec": 1.5})), ["rate_per_sec"]);
    }

    #[test]
    fn messages_say_what_was_expected() {
        let issues = Config::from_json(&json!({"batch_size": 0})).unwrap_err();
        assert_eq!(
            issues[0].message,
            "expected an integer from 1 to 1000000, got 0"
        );
    }

    #[test]
    fn negative_seeds_are_accepted() {
        let c = Config::from_json(&json!({"seed": -1, "kind": "clicks", "count": 0})).unwrap();
        assert_eq!((c.seed, c.kind, c.count), (u64::MAX, Kind::Clicks, Some(0)));
    }
}
