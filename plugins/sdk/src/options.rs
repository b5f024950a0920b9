//! Options declared once: a source type lists its [`OptionSpec`]s, and
//! everything else is read from that list — the descriptor the daemon shows
//! in `tributary plugins describe`, the host's checks of a config file, and
//! the [`Options`] a plugin reads its values from, with defaults applied and
//! types, choices and ranges already checked.

use serde_json::{Map, Value};

use crate::source::ConfigIssue;

/// The type of an option's value, as written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A number; integers are accepted.
    Float,
    /// `true` or `false`.
    Boolean,
    /// An array.
    Array,
    /// A table.
    Table,
}

impl OptionKind {
    /// The name used in messages and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionKind::String => "string",
            OptionKind::Integer => "integer",
            OptionKind::Float => "float",
            OptionKind::Boolean => "boolean",
            OptionKind::Array => "array",
            OptionKind::Table => "table",
        }
    }

    /// The `OPTION_*` code of the ABI.
    pub fn code(self) -> u32 {
        use crate::abi;
        match self {
            OptionKind::String => abi::OPTION_STRING,
            OptionKind::Integer => abi::OPTION_INTEGER,
            OptionKind::Float => abi::OPTION_FLOAT,
            OptionKind::Boolean => abi::OPTION_BOOLEAN,
            OptionKind::Array => abi::OPTION_ARRAY,
            OptionKind::Table => abi::OPTION_TABLE,
        }
    }

    /// The kind of an `OPTION_*` code.
    pub fn from_code(code: u32) -> Option<Self> {
        use crate::abi;
        Some(match code {
            abi::OPTION_STRING => OptionKind::String,
            abi::OPTION_INTEGER => OptionKind::Integer,
            abi::OPTION_FLOAT => OptionKind::Float,
            abi::OPTION_BOOLEAN => OptionKind::Boolean,
            abi::OPTION_ARRAY => OptionKind::Array,
            abi::OPTION_TABLE => OptionKind::Table,
            _ => return None,
        })
    }

    /// Whether `value` has this type (an integer is a float too).
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            OptionKind::String => value.is_string(),
            OptionKind::Integer => value.is_i64(),
            OptionKind::Float => value.is_number(),
            OptionKind::Boolean => value.is_boolean(),
            OptionKind::Array => value.is_array(),
            OptionKind::Table => value.is_object(),
        }
    }
}

/// The declaration of one option: the only place its name, type, default,
/// range, choices and documentation are written.
#[derive(Debug, Clone)]
pub struct OptionSpec {
    /// The key.
    pub name: &'static str,
    /// The value's type.
    pub kind: OptionKind,
    /// The default as a literal valid in both TOML and JSON (`1000`,
    /// `"orders"`, `[]`), if any.
    pub default: Option<&'static str>,
    /// What the option does.
    pub doc: &'static str,
    /// Allowed values of a string option.
    pub choices: &'static [&'static str],
    /// Whether the key must be present.
    pub required: bool,
    /// The smallest accepted value of a number option.
    pub minimum: Option<f64>,
    /// The largest accepted value of a number option.
    pub maximum: Option<f64>,
}

impl OptionSpec {
    /// An optional key with a default.
    pub const fn new(
        name: &'static str,
        kind: OptionKind,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        OptionSpec {
            name,
            kind,
            default,
            doc,
            choices: &[],
            required: false,
            minimum: None,
            maximum: None,
        }
    }

    /// Restricts a string option to `choices`.
    pub const fn one_of(mut self, choices: &'static [&'static str]) -> Self {
        self.choices = choices;
        self
    }

    /// Makes the key mandatory.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Restricts a number option to `minimum..=maximum`.
    pub const fn range(mut self, minimum: f64, maximum: f64) -> Self {
        self.minimum = Some(minimum);
        self.maximum = Some(maximum);
        self
    }

    /// Restricts a number option to `minimum` and above.
    pub const fn at_least(mut self, minimum: f64) -> Self {
        self.minimum = Some(minimum);
        self
    }

    /// A bound as a literal for the descriptor: integers without a fraction.
    pub fn bound_literal(&self, bound: f64) -> String {
        if self.kind == OptionKind::Integer && bound.fract() == 0.0 {
            format!("{}", bound as i64)
        } else {
            format!("{bound}")
        }
    }

    fn expected(&self) -> String {
        let what = match self.kind {
            OptionKind::String if !self.choices.is_empty() => {
                return format!("one of {}", self.choices.join(", "));
            }
            OptionKind::Integer => "an integer",
            OptionKind::Float => "a number",
            OptionKind::String => "a string",
            OptionKind::Boolean => "true or false",
            OptionKind::Array => "an array",
            OptionKind::Table => "a table",
        };
        match (self.minimum, self.maximum) {
            (Some(lo), Some(hi)) => format!(
                "{what} from {} to {}",
                self.bound_literal(lo),
                self.bound_literal(hi)
            ),
            (Some(lo), None) => format!("{what} of at least {}", self.bound_literal(lo)),
            (None, Some(hi)) => format!("{what} of at most {}", self.bound_literal(hi)),
            (None, None) => what.to_owned(),
        }
    }

    /// Checks one value against the declaration.
    fn check(&self, value: &Value) -> Result<(), String> {
        let in_range =
            |n: f64| self.minimum.is_none_or(|lo| n >= lo) && self.maximum.is_none_or(|hi| n <= hi);
        let fits = self.kind.accepts(value)
            && match value {
                Value::String(s) => self.choices.is_empty() || self.choices.contains(&s.as_str()),
                Value::Number(n) => n.as_f64().is_some_and(in_range),
                _ => true,
            };
        if fits {
            Ok(())
        } else {
            Err(format!("expected {}, got {value}", self.expected()))
        }
    }
}

/// The plugin options as a JSON object. The host sends `{}` when a source
/// has no options; `null` is accepted as the same.
pub fn options_object(config: &Value) -> Result<&Map<String, Value>, Vec<ConfigIssue>> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match config {
        Value::Object(obj) => Ok(obj),
        Value::Null => Ok(EMPTY.get_or_init(Map::new)),
        other => Err(vec![ConfigIssue {
            key: None,
            message: format!("expected the options as a table, got {other}"),
        }]),
    }
}

/// A source's options, checked against their declarations, defaults applied.
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: Map<String, Value>,
    /// The keys the configuration set itself (not filled from a default).
    given: Vec<String>,
}

impl Options {
    /// Checks `config` against `specs` and applies the defaults, reporting
    /// every problem at once: unknown keys (a typo must never fall back to a
    /// default silently), wrong types, values outside their choices or
    /// range, missing required keys.
    pub fn parse(specs: &[OptionSpec], config: &Value) -> Result<Options, Vec<ConfigIssue>> {
        let (options, issues) = Options::check(specs, config);
        if issues.is_empty() {
            Ok(options)
        } else {
            Err(issues)
        }
    }

    /// [`Options::parse`] that always returns the options, with every value
    /// that failed its declaration replaced by its default (or left out),
    /// so a plugin's own checks can still run and a config file's problems
    /// are all reported in one go.
    pub fn check(specs: &[OptionSpec], config: &Value) -> (Options, Vec<ConfigIssue>) {
        let obj = match options_object(config) {
            Ok(obj) => obj,
            Err(issues) => return (Options::default(), issues),
        };
        let mut issues = Vec::new();
        let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                issues.push(ConfigIssue::key(
                    key,
                    format!("unknown option; expected one of {}", known.join(", ")),
                ));
            }
        }
        let mut values = Map::new();
        let mut given = Vec::new();
        for spec in specs {
            if let Some(value) = obj.get(spec.name).filter(|v| !v.is_null()) {
                match spec.check(value) {
                    Ok(()) => {
                        values.insert(spec.name.to_owned(), value.clone());
                        given.push(spec.name.to_owned());
                        continue;
                    }
                    Err(message) => issues.push(ConfigIssue::key(spec.name, message)),
                }
            } else if spec.required {
                issues.push(ConfigIssue::key(
                    spec.name,
                    format!("required option is missing; expected {}", spec.expected()),
                ));
            }
            let Some(literal) = spec.default else {
                continue;
            };
            match serde_json::from_str::<Value>(literal) {
                Ok(value) if spec.kind.accepts(&value) => {
                    values.insert(spec.name.to_owned(), value);
                }
                _ => issues.push(ConfigIssue::key(
                    spec.name,
                    format!(
                        "the plugin declares the default `{literal}`, which is not {}; \
                         this is a bug in the plugin",
                        spec.expected()
                    ),
                )),
            }
        }
        (Options { values, given }, issues)
    }

    /// Runs a plugin's own checks on options from [`Options::check`] and
    /// reports both lists: the declaration's issues first, then the
    /// plugin's about keys not already named.
    pub fn merge<T>(
        declared: Vec<ConfigIssue>,
        own: Result<T, Vec<ConfigIssue>>,
    ) -> Result<T, Vec<ConfigIssue>> {
        match own {
            Ok(value) if declared.is_empty() => Ok(value),
            Ok(_) => Err(declared),
            Err(more) => {
                let mut all = declared;
                for issue in more {
                    let named = issue.key.is_some() && all.iter().any(|i| i.key == issue.key);
                    if !named {
                        all.push(issue);
                    }
                }
                Err(all)
            }
        }
    }

    /// Options made of `values` as they are, for tests of a plugin's own
    /// rules.
    pub fn from_values(values: Map<String, Value>) -> Options {
        let given = values.keys().cloned().collect();
        Options { values, given }
    }

    /// Every value, defaults included, as one JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.values
    }

    /// The value of `name`, if it is set or has a default.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Whether the configuration set `name` itself.
    pub fn is_given(&self, name: &str) -> bool {
        self.given.iter().any(|g| g == name)
    }

    /// A string option.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// An integer option.
    pub fn integer(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    /// A float option.
    pub fn float(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }

    /// A boolean option.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    /// An array option.
    pub fn array(&self, name: &str) -> Option<&Vec<Value>> {
        self.get(name).and_then(Value::as_array)
    }

    /// A table option.
    pub fn table(&self, name: &str) -> Option<&Map<String, Value>> {
        self.get(name).and_then(Value::as_object)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn specs() -> Vec<OptionSpec> {
        vec![
            OptionSpec::new("kind", OptionKind::String, Some("\"orders\""), "k")
                .one_of(&["orders", "logs"]),
            OptionSpec::new("rate", OptionKind::Integer, Some("1000"), "r").range(0.0, 10.0e6),
            OptionSpec::new("ratio", OptionKind::Float, None, "f").range(0.0, 1.0),
            OptionSpec::new("paths", OptionKind::Array, None, "p").required(),
        ]
    }

    #[test]
    fn defaults_apply_and_given_keys_are_known() {
        let o = Options::parse(&specs(), &json!({"paths": ["/a"]})).unwrap();
        assert_eq!(o.string("kind"), Some("orders"));
        assert_eq!(o.integer("rate"), Some(1000));
        assert_eq!(o.float("ratio"), None);
        assert!(o.is_given("paths") && !o.is_given("rate"));
        let o = Options::parse(&specs(), &json!({"paths": [], "ratio": 1})).unwrap();
        assert_eq!(o.float("ratio"), Some(1.0));
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_what_was_expected() {
        let issues = Options::parse(
            &specs(),
            &json!({"kind": "clicks", "rate": -1, "ratio": "half", "colour": 1}),
        )
        .unwrap_err();
        let text: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.key.as_deref().unwrap_or("-"), i.message))
            .collect();
        assert_eq!(
            text,
            [
                "colour: unknown option; expected one of kind, rate, ratio, paths",
                "kind: expected one of orders, logs, got \"clicks\"",
                "rate: expected an integer from 0 to 10000000, got -1",
                "ratio: expected a number from 0 to 1, got \"half\"",
                "paths: required option is missing; expected an array",
            ]
        );
    }

    #[test]
    fn own_checks_run_on_what_passed_and_keys_are_named_once() {
        let (options, declared) = Options::check(&specs(), &json!({"rate": "fast"}));
        // The bad value fell back to its default for the plugin's checks.
        assert_eq!(options.integer("rate"), Some(1000));
        let own: Result<(), _> = Err(vec![
            ConfigIssue::key("paths", "is required"),
            ConfigIssue::key("kind", "does not go with rate"),
        ]);
        let keys: Vec<_> = Options::merge(declared, own)
            .unwrap_err()
            .into_iter()
            .map(|i| i.key.unwrap_or_default())
            .collect();
        assert_eq!(keys, ["rate", "paths", "kind"]);
    }

    #[test]
    fn a_default_that_contradicts_its_declaration_is_a_plugin_bug() {
        let bad = [OptionSpec::new(
            "n",
            OptionKind::Integer,
            Some("\"ten\""),
            "n",
        )];
        let issues = Options::parse(&bad, &json!({})).unwrap_err();
        assert!(
            issues[0].message.contains("bug in the plugin"),
            "{issues:?}"
        );
    }

    #[test]
    fn options_are_an_object_and_null_counts_as_empty() {
        assert!(
            Options::parse(&[], &Value::Null)
                .unwrap()
                .as_map()
                .is_empty()
        );
        let issues = Options::parse(&[], &json!([1])).unwrap_err();
        assert_eq!(issues[0].key, None);
        assert!(
            issues[0]
                .message
                .contains("expected the options as a table")
        );
    }
}
