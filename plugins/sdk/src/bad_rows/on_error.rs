//! The `on_error` option: its choices, its declaration and its value.

use crate::options::{OptionKind, OptionSpec, Options};
use crate::source::ConfigIssue;

/// What to do with a row that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Stop with an [`ErrorCategory::InvalidData`](crate::ErrorCategory)
    /// error naming the input and the row, once the good rows before it are
    /// out.
    Fail,
    /// Count it, go on.
    Skip,
    /// Return it in a dead-letter batch for the source's dead-letter topic.
    DeadLetter,
}

impl OnError {
    /// The option's key.
    pub const KEY: &'static str = "on_error";

    /// Every policy, in the order of [`OnError::NAMES`].
    pub const ALL: [OnError; 3] = [OnError::Fail, OnError::Skip, OnError::DeadLetter];

    /// The policies' names, as written in a config file.
    pub const NAMES: [&'static str; 3] = ["fail", "skip", "dead_letter"];

    /// The name, as written in a config file.
    pub const fn name(self) -> &'static str {
        match self {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
            OnError::DeadLetter => "dead_letter",
        }
    }

    /// The policy named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The name as a TOML and JSON literal, for a declared default.
    const fn literal(self) -> &'static str {
        match self {
            OnError::Fail => "\"fail\"",
            OnError::Skip => "\"skip\"",
            OnError::DeadLetter => "\"dead_letter\"",
        }
    }

    /// The declaration of `on_error`: a string, one of [`OnError::NAMES`],
    /// `default` when unset. `doc` says what a bad row is for this source
    /// and what each choice does with it.
    pub const fn option(default: OnError, doc: &'static str) -> OptionSpec {
        OptionSpec::new(Self::KEY, OptionKind::String, Some(default.literal()), doc)
            .one_of(&Self::NAMES)
    }

    /// The policy `options` set, or `default` when they have no `on_error`
    /// (a source type that does not declare it). A value that is not one
    /// of the names is an issue naming the key; options checked against
    /// [`OnError::option`] never have one.
    pub fn from_options(options: &Options, default: OnError) -> Result<OnError, ConfigIssue> {
        let Some(value) = options.get(Self::KEY) else {
            return Ok(default);
        };
        value.as_str().and_then(Self::from_name).ok_or_else(|| {
            ConfigIssue::key(
                Self::KEY,
                format!("expected one of {}, got {value}", Self::NAMES.join(", ")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn on_error_names_and_parsing_agree() {
        for policy in OnError::ALL {
            assert_eq!(OnError::from_name(policy.name()), Some(policy));
            let literal = serde_json::from_str::<String>(policy.literal()).unwrap();
            assert_eq!(literal, policy.name());
        }
        assert_eq!(OnError::NAMES, OnError::ALL.map(OnError::name));
        assert_eq!(OnError::from_name("explode"), None);
    }

    #[test]
    fn on_error_is_declared_once_with_its_choices_and_the_given_default() {
        let spec = OnError::option(OnError::Skip, "What a bad line becomes.");
        assert_eq!(spec.name, "on_error");
        assert_eq!(spec.kind, OptionKind::String);
        assert_eq!(spec.choices, ["fail", "skip", "dead_letter"]);
        assert_eq!(spec.doc, "What a bad line becomes.");
        let specs = [spec];
        let defaulted = Options::parse(&specs, &json!({})).unwrap();
        assert_eq!(
            OnError::from_options(&defaulted, OnError::Fail),
            Ok(OnError::Skip)
        );
        let set = Options::parse(&specs, &json!({"on_error": "dead_letter"})).unwrap();
        assert_eq!(
            OnError::from_options(&set, OnError::Fail),
            Ok(OnError::DeadLetter)
        );
        let issues = Options::parse(&specs, &json!({"on_error": "explode"})).unwrap_err();
        assert_eq!(issues[0].key.as_deref(), Some("on_error"));
    }

    #[test]
    fn on_error_falls_back_to_the_default_when_undeclared_and_reports_a_wrong_value() {
        assert_eq!(
            OnError::from_options(&Options::default(), OnError::Fail),
            Ok(OnError::Fail)
        );
        let wrong = Options::from_values(json!({"on_error": 3}).as_object().unwrap().clone());
        let issue = OnError::from_options(&wrong, OnError::Fail).unwrap_err();
        assert_eq!(issue.key.as_deref(), Some("on_error"));
        assert_eq!(
            issue.message,
            "expected one of fail, skip, dead_letter, got 3"
        );
    }
}
