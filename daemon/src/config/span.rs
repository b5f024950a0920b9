//! The TOML span toolkit: a file's text and its byte spans as
//! `file:line:column`, typed reads of TOML items that report into the
//! shared error list, and what a value is for "expected …, found …".

use std::ops::Range;
use std::path::PathBuf;

use toml_edit::{Item, Key, TableLike, Value};

use super::subst::Substitutor;
use super::{ConfigError, Location};

/// A file's text and where its lines start, to turn byte spans into
/// line and column.
pub(super) struct SourceText {
    path: PathBuf,
    pub(super) text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    pub(super) fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and character column of a byte offset.
    pub(super) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        // `line_starts[0] == 0 <= offset`, so at least one start qualifies.
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |before| before.chars().count());
        Location {
            file: self.path.clone(),
            line,
            column: column + 1,
        }
    }
}

/// The entries of a table with the span of each key.
pub(super) fn entries(
    table: &dyn TableLike,
) -> impl Iterator<Item = (&str, Option<Range<usize>>, &Item)> {
    table
        .iter()
        .map(move |(key, item)| (key, table.key(key).and_then(Key::span), item))
}

/// What a value is, for "expected …, found …".
pub(super) fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(value) => describe_value(value),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

pub(super) fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

/// One file being checked: its text for locations, substitution, and the
/// shared error list.
pub(super) struct FileCtx<'a> {
    pub(super) src: &'a SourceText,
    pub(super) subst: Substitutor<'a>,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl FileCtx<'_> {
    /// Location of a span; the file's start if the parser gave none, so an
    /// error always names its file.
    pub(super) fn location(&self, span: Option<Range<usize>>) -> Location {
        self.src.location(span.map_or(0, |span| span.start))
    }

    pub(super) fn error(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) {
        let location = self.location(span);
        self.errors.push(ConfigError::new(
            Some(location),
            Some(key.to_owned()),
            message,
        ));
    }

    pub(super) fn unknown_key(&mut self, span: Option<Range<usize>>, key: &str, known: &[&str]) {
        self.error(
            span,
            key,
            format!(
                "unknown key{}; expected one of: {}",
                super::suggest::did_you_mean(
                    key.rsplit('.').next().unwrap_or(key),
                    known.iter().copied()
                ),
                known.join(", ")
            ),
        );
    }

    pub(super) fn wrong_type(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        expected: &str,
        found: &str,
    ) {
        self.error(span, key, format!("expected {expected}, found {found}"));
    }

    /// Substitutes `${…}` in a raw string; errors name the reference, never
    /// the value.
    pub(super) fn substitute(
        &mut self,
        raw: &str,
        span: Option<Range<usize>>,
        key: &str,
    ) -> Option<String> {
        match self.subst.apply(raw) {
            Ok(value) => Some(value),
            Err(errors) => {
                for error in errors {
                    self.error(span.clone(), key, error.to_string());
                }
                None
            }
        }
    }

    /// A string value, substituted.
    pub(super) fn string(&mut self, item: &Item, key: &str) -> Option<String> {
        match item.as_str() {
            Some(raw) => self.substitute(raw, item.span(), key),
            None => {
                self.wrong_type(item.span(), key, "a string", describe(item));
                None
            }
        }
    }

    /// A non-empty string value, substituted.
    pub(super) fn non_empty_string(&mut self, item: &Item, key: &str) -> Option<String> {
        let value = self.string(item, key)?;
        if value.is_empty() {
            self.error(item.span(), key, "must not be empty");
            return None;
        }
        Some(value)
    }

    /// An integer within `min..=max`, converted to the field's type.
    pub(super) fn integer<T: TryFrom<i64>>(
        &mut self,
        item: &Item,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let Some(value) = item.as_integer() else {
            self.wrong_type(item.span(), key, "an integer", describe(item));
            return None;
        };
        let converted = (min..=max)
            .contains(&value)
            .then(|| T::try_from(value).ok())
            .flatten();
        if converted.is_none() {
            let range = if max == i64::MAX {
                format!("must be at least {min}")
            } else {
                format!("must be between {min} and {max}")
            };
            self.error(item.span(), key, range);
        }
        converted
    }

    pub(super) fn boolean(&mut self, item: &Item, key: &str) -> Option<bool> {
        let value = item.as_bool();
        if value.is_none() {
            self.wrong_type(item.span(), key, "a boolean", describe(item));
        }
        value
    }

    pub(super) fn table<'i>(&mut self, item: &'i Item, key: &str) -> Option<&'i dyn TableLike> {
        let table = item.as_table_like();
        if table.is_none() {
            self.wrong_type(item.span(), key, "a table", describe(item));
        }
        table
    }
}
