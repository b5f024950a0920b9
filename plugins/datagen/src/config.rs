//! The `datagen` options: their declaration and the checks that turn the
//! host's JSON into a [`Config`].

use serde_json::{Map, Value};
use tributary_plugin_sdk::{ConfigIssue, OptionKind, OptionSpec, options_object, unknown_options};

use crate::generate::Kind;

/// The largest accepted `batch_size`: a million rows of orders is already
/// hundreds of megabytes in one Arrow batch.
pub const MAX_BATCH_SIZE: i64 = 1_000_000;
/// The largest accepted `rate_per_sec`; far above what one source can
/// produce, it only rules out typos that would overflow arithmetic.
pub const MAX_RATE_PER_SEC: i64 = 1_000_000_000;
/// The largest accepted `customers` pool.
pub const MAX_CUSTOMERS: i64 = 1_000_000_000;

// Defaults, repeated as TOML literals in `options()`.
const DEFAULT_RATE_PER_SEC: u64 = 1000;
const DEFAULT_BATCH_SIZE: u64 = 1000;
const DEFAULT_CUSTOMERS: u64 = 1000;

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
        ),
        OptionSpec::new(
            "batch_size",
            OptionKind::Integer,
            Some("1000"),
            "Most rows per batch (1 to 1000000). At low rates batches are smaller so rows \
             still flow every few milliseconds.",
        ),
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
        ),
        OptionSpec::new(
            "customers",
            OptionKind::Integer,
            Some("1000"),
            "Size of the pool customer and user ids are drawn from (orders, clicks, logs).",
        ),
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
    /// Reads and checks the options, reporting every problem, not the first.
    pub fn from_json(config: &Value) -> Result<Config, Vec<ConfigIssue>> {
        let obj = options_object(config)?;
        let known: Vec<&str> = options().iter().map(|o| o.name).collect();
        let mut issues = unknown_options(obj, &known);

        let kind = match obj.get("kind") {
            None | Some(Value::Null) => Kind::Orders,
            Some(Value::String(s)) => Kind::parse(s).unwrap_or_else(|| {
                issues.push(ConfigIssue::key(
                    "kind",
                    format!("expected one of {}, got \"{s}\"", Kind::NAMES.join(", ")),
                ));
                Kind::Orders
            }),
            Some(other) => {
                issues.push(ConfigIssue::key(
                    "kind",
                    format!(
                        "expected a string ({}), got {other}",
                        Kind::NAMES.join(", ")
                    ),
                ));
                Kind::Orders
            }
        };
        // Each reader records an issue and yields `None` for a bad value; the
        // values are only used when no issue was recorded.
        let mut int = |key: &str, min: i64, max: i64, what: &str| {
            integer(obj, key, min, max, what, &mut issues)
        };
        let rate_per_sec = int(
            "rate_per_sec",
            0,
            MAX_RATE_PER_SEC,
            "rows per second, 0 for unlimited",
        );
        let batch_size = int("batch_size", 1, MAX_BATCH_SIZE, "rows per batch");
        let seed = int("seed", i64::MIN, i64::MAX, "the generator's seed");
        let count = int("count", 0, i64::MAX, "total number of rows");
        let customers = int("customers", 1, MAX_CUSTOMERS, "size of the customer pool");
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Config {
            kind,
            rate_per_sec: rate_per_sec.map_or(DEFAULT_RATE_PER_SEC, i64::unsigned_abs),
            batch_size: batch_size.map_or(DEFAULT_BATCH_SIZE, i64::unsigned_abs),
            // Negative seeds are as good as any: keep their bits.
            seed: seed.map_or(0, |s| s as u64),
            count: count.map(i64::unsigned_abs),
            customers: customers.map_or(DEFAULT_CUSTOMERS, i64::unsigned_abs),
        })
    }
}

/// Reads integer option `key`, if present; records an issue and returns
/// `None` when it is not an integer in `min..=max`.
fn integer(
    obj: &Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
    what: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<i64> {
    let value = obj.get(key).filter(|v| !v.is_null())?;
    if let Some(v) = value.as_i64().filter(|v| (min..=max).contains(v)) {
        return Some(v);
    }
    let expected = match (min, max) {
        (i64::MIN, i64::MAX) => "an integer".to_owned(),
        (min, i64::MAX) => format!("an integer of at least {min}"),
        (min, max) => format!("an integer from {min} to {max}"),
    };
    issues.push(ConfigIssue::key(
        key,
        format!("expected {expected} ({what}), got {value}"),
    ));
    None
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
            "expected an integer from 1 to 1000000 (rows per batch), got 0"
        );
    }

    #[test]
    fn negative_seeds_are_accepted() {
        let c = Config::from_json(&json!({"seed": -1, "kind": "clicks", "count": 0})).unwrap();
        assert_eq!((c.seed, c.kind, c.count), (u64::MAX, Kind::Clicks, Some(0)));
    }
}
