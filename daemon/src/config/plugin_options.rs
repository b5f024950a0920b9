//! Checking a source's plugin options against what the plugin declares.
//!
//! This runs after the plugin is loaded (loading the config needs no
//! plugins), and is what `tributary validate` and a reload use to refuse a
//! drop-in before it runs. Messages never echo option values: they may have
//! come from `${env:…}` or `${file:…}`.

use serde_json::Value as Json;

use super::{ConfigError, SourceConfig, source_key, source_label};

/// One option a plugin declares, borrowed from the plugin's descriptor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionSchema<'a> {
    /// The key in the `[[source]]` table.
    pub name: &'a str,
    /// `string`, `integer`, `float`, `boolean`, `array` or `table`. An
    /// integer is accepted where a float is expected (`rate = 5`).
    pub kind: &'a str,
    /// Whether the source must set it (the plugin has no default).
    pub required: bool,
    /// Allowed values of a string option; empty means any.
    pub choices: &'a [String],
    /// The smallest accepted value of a number option.
    pub minimum: Option<f64>,
    /// The largest accepted value of a number option.
    pub maximum: Option<f64>,
}

impl OptionSchema<'_> {
    /// Whether a number is inside the declared range.
    fn in_range(&self, n: f64) -> bool {
        self.minimum.is_none_or(|lo| n >= lo) && self.maximum.is_none_or(|hi| n <= hi)
    }

    /// The declared range in words, for a number option that has one.
    fn range(&self) -> Option<String> {
        let show = |b: f64| {
            if self.kind == "integer" && b.fract() == 0.0 {
                format!("{}", b as i64)
            } else {
                format!("{b}")
            }
        };
        match (self.minimum, self.maximum) {
            (Some(lo), Some(hi)) => Some(format!("from {} to {}", show(lo), show(hi))),
            (Some(lo), None) => Some(format!("of at least {}", show(lo))),
            (None, Some(hi)) => Some(format!("of at most {}", show(hi))),
            (None, None) => None,
        }
    }
}

/// Checks one source's plugin options against the plugin's declared options:
/// unknown options (listing the known ones), wrong kinds, missing required
/// options, strings outside `choices` and numbers outside their range. Returns every problem, ordered by
/// position in the file.
pub fn check_plugin_options(
    source: &SourceConfig,
    schema: &[OptionSchema<'_>],
) -> Vec<ConfigError> {
    let label = source_label(&source.name);
    let plugin = &source.source_type;
    let mut errors = Vec::new();
    let at = |option: &str| {
        Some(
            source
                .option_locations
                .get(option)
                .unwrap_or(&source.location)
                .clone(),
        )
    };

    for declared in schema {
        if expected(declared.kind).is_none() {
            errors.push(ConfigError::new(
                Some(source.location.clone()),
                Some(source_key(&label, declared.name)),
                format!(
                    "plugin `{plugin}` declares this option with unknown kind `{}`; this is a bug in the plugin",
                    declared.kind
                ),
            ));
        }
    }

    for (option, value) in &source.options {
        let key = Some(source_key(&label, option));
        let declared = schema.iter().find(|declared| declared.name == *option);
        if declared.is_none() && super::VALUE_COLUMN_KEYS.contains(&option.as_str()) {
            // The host's `include`/`exclude`: a list of column names.
            let names = value
                .as_array()
                .is_some_and(|a| a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())));
            if !names {
                errors.push(ConfigError::new(
                    at(option),
                    key,
                    format!(
                        "expected an array of column names, found {}",
                        describe(value)
                    ),
                ));
            }
            continue;
        }
        let Some(declared) = declared else {
            let message = if schema.is_empty() {
                format!("unknown option; plugin `{plugin}` takes no options")
            } else {
                let known: Vec<&str> = schema.iter().map(|declared| declared.name).collect();
                // A misspelt common key lands here too.
                let hint = super::suggest::did_you_mean(
                    option,
                    known
                        .iter()
                        .copied()
                        .chain(super::SOURCE_KEYS.iter().copied()),
                );
                format!(
                    "unknown option for plugin `{plugin}`{hint}; known options: {}",
                    known.join(", ")
                )
            };
            errors.push(ConfigError::new(at(option), key, message));
            continue;
        };
        let Some(expected) = expected(declared.kind) else {
            continue;
        };
        if !kind_matches(declared.kind, value) {
            errors.push(ConfigError::new(
                at(option),
                key,
                format!("expected {expected}, found {}", describe(value)),
            ));
        } else if let Json::String(text) = value
            && !declared.choices.is_empty()
            && !declared.choices.iter().any(|choice| choice == text)
        {
            errors.push(ConfigError::new(
                at(option),
                key,
                format!("expected one of: {}", declared.choices.join(", ")),
            ));
        } else if let Json::Number(n) = value
            && let Some(range) = declared.range()
            && !n.as_f64().is_some_and(|n| declared.in_range(n))
        {
            errors.push(ConfigError::new(
                at(option),
                key,
                format!("expected {expected} {range}"),
            ));
        }
    }

    for declared in schema.iter().filter(|declared| declared.required) {
        if !source.options.contains_key(declared.name) {
            let what = expected(declared.kind).unwrap_or("a value");
            errors.push(ConfigError::new(
                Some(source.location.clone()),
                Some(source_key(&label, declared.name)),
                format!("required option of plugin `{plugin}` is missing (expected {what})"),
            ));
        }
    }

    errors.sort_by(|a, b| a.location.cmp(&b.location));
    errors
}

/// The phrase for a declared kind, or `None` if the kind is unknown.
fn expected(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "string" => "a string",
        "integer" => "an integer",
        "float" => "a float",
        "boolean" => "a boolean",
        "array" => "an array",
        "table" => "a table",
        _ => return None,
    })
}

fn kind_matches(kind: &str, value: &Json) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "float" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "table" => value.is_object(),
        _ => false,
    }
}

fn describe(value: &Json) -> &'static str {
    match value {
        Json::Null => "nothing",
        Json::Bool(_) => "a boolean",
        Json::Number(number) if number.is_f64() => "a float",
        Json::Number(_) => "an integer",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::test_support::{SOURCE, parse};
    use super::*;

    fn schema<'a>(choices: &'a [String]) -> Vec<OptionSchema<'a>> {
        vec![
            OptionSchema {
                name: "rate_per_sec",
                kind: "float",
                required: true,
                choices: &[],
                minimum: None,
                maximum: None,
            },
            OptionSchema {
                name: "count",
                kind: "integer",
                required: false,
                choices: &[],
                minimum: Some(1.0),
                maximum: Some(10.0),
            },
            OptionSchema {
                name: "mode",
                kind: "string",
                required: false,
                choices,
                minimum: None,
                maximum: None,
            },
            OptionSchema {
                name: "path",
                kind: "string",
                required: true,
                choices: &[],
                minimum: None,
                maximum: None,
            },
        ]
    }

    fn check(extra: &str, schema: &[OptionSchema<'_>]) -> Vec<String> {
        let config = parse(&format!("{SOURCE}{extra}")).unwrap();
        check_plugin_options(&config.sources[0], schema)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn plugin_option_checks() {
        let choices = ["fast".to_owned(), "slow".to_owned()];
        let schema = schema(&choices);
        // Line 5 onwards; the `[[source]]` header is on line 1.
        let errors = check(
            "rate_per_sec = 5\ncount = 1.5\nmode = \"medium\"\nratee = 1\n",
            &schema,
        );
        assert_eq!(
            errors,
            [
                "/t.toml:1:1: `source[orders].path`: required option of plugin `datagen` is missing (expected a string)",
                "/t.toml:6:1: `source[orders].count`: expected an integer, found a float",
                "/t.toml:7:1: `source[orders].mode`: expected one of: fast, slow",
                "/t.toml:8:1: `source[orders].ratee`: unknown option for plugin `datagen`; known options: rate_per_sec, count, mode, path",
            ]
        );
    }

    #[test]
    fn a_misspelt_option_or_common_key_gets_a_suggestion() {
        let errors = check(
            "rate_per_sec = 5\npath = \"/x\"\ncuont = 3\ndelivry = \"exactly_once\"\n",
            &schema(&[]),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("unknown option for plugin `datagen` (did you mean `count`?)"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("(did you mean `delivery`?)"),
            "{errors:?}"
        );
    }

    #[test]
    fn include_and_exclude_are_the_hosts_column_lists_unless_the_plugin_declares_them() {
        let base = "rate_per_sec = 5\npath = \"/x\"\n";
        assert!(
            check(
                &format!("{base}include = [\"a\", \"b\"]\nexclude = [\"c\"]\n"),
                &schema(&[])
            )
            .is_empty()
        );
        let errors = check(&format!("{base}include = \"a\"\n"), &schema(&[]));
        assert_eq!(
            errors,
            [
                "/t.toml:7:1: `source[orders].include`: expected an array of column names, found a string"
            ]
        );
        let config = parse(&format!(
            "{SOURCE}{base}include = [\"a\"]\nexclude = [\"b\"]\n"
        ))
        .unwrap();
        let source = &config.sources[0];
        let host = |_: &str| false;
        assert!(!source.plugin_options(host).contains_key("include"));
        assert_eq!(
            source.value_columns(host),
            (Some(vec!["a".to_owned()]), vec!["b".to_owned()])
        );
        // A plugin that declares `include` (logfile's globs) keeps it.
        let plugin = |k: &str| k == "include";
        assert!(source.plugin_options(plugin).contains_key("include"));
        assert_eq!(source.value_columns(plugin), (None, vec!["b".to_owned()]));
    }

    #[test]
    fn numbers_outside_their_declared_range_are_refused_without_echoing_them() {
        let errors = check(
            "rate_per_sec = 5\npath = \"/x\"\ncount = 11\n",
            &schema(&[]),
        );
        assert_eq!(
            errors,
            ["/t.toml:7:1: `source[orders].count`: expected an integer from 1 to 10"]
        );
        assert!(
            check(
                "rate_per_sec = 5\npath = \"/x\"\ncount = 10\n",
                &schema(&[])
            )
            .is_empty()
        );
    }

    #[test]
    fn valid_options_pass_and_integers_count_as_floats() {
        let choices = ["fast".to_owned()];
        let errors = check(
            "rate_per_sec = 5\nmode = \"fast\"\npath = \"/x\"\n",
            &schema(&choices),
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn plugin_without_options_says_so() {
        let errors = check("rate = 1\n", &[]);
        assert_eq!(
            errors,
            [
                "/t.toml:5:1: `source[orders].rate`: unknown option; plugin `datagen` takes no options"
            ]
        );
    }

    #[test]
    fn choice_errors_do_not_echo_the_value() {
        let choices = ["a".to_owned()];
        let errors = check(
            "rate_per_sec = 1\npath = \"p\"\nmode = \"hunter2\"\n",
            &schema(&choices),
        );
        assert_eq!(errors.len(), 1);
        assert!(!errors[0].contains("hunter2"), "{errors:?}");
    }

    #[test]
    fn unknown_declared_kind_is_reported_as_a_plugin_bug() {
        let schema = [OptionSchema {
            name: "x",
            kind: "duration",
            required: false,
            choices: &[],
            minimum: None,
            maximum: None,
        }];
        let errors = check("x = 1\n", &schema);
        assert_eq!(
            errors,
            [
                "/t.toml:1:1: `source[orders].x`: plugin `datagen` declares this option with unknown kind `duration`; this is a bug in the plugin"
            ]
        );
    }
}
