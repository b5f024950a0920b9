//! Where a configuration problem is and what it is.
//!
//! Every error names the file, line and column (1-based, so editors and
//! terminals can jump to it) and the dotted key. Messages never contain a
//! value that came from `${env:…}`, `${file:…}` or `${cred:…}`: those may be
//! secrets, and errors end up in logs.

use std::fmt;
use std::path::PathBuf;

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file as it was opened (main file as given, drop-ins joined onto
    /// the drop-in directory), so the message matches what the user typed.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters, not bytes.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in the configuration.
///
/// Displays as `<file>:<line>:<col>: `<key>`: <message>`, leaving out the
/// parts that are `None`. Keys of sources are written
/// `source[<name>].<key>`, or `source[#<n>].<key>` (n-th `[[source]]` of its
/// file, from 1) when the source has no usable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{prefix}{message}", prefix = Prefix { location: location.as_ref(), key: key.as_deref() })]
pub struct ConfigError {
    /// Where the problem is; `None` only for whole-file problems such as a
    /// main file that cannot be read (the message names the path then).
    pub location: Option<Location>,
    /// The dotted key, e.g. `kafka.topic_partitions` or
    /// `source[orders].rate_per_sec`; `None` for syntax errors.
    pub key: Option<String>,
    /// What is wrong, and where useful what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error at a place in a file, about a key.
    pub fn new(
        location: Option<Location>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            location,
            key,
            message: message.into(),
        }
    }
}

/// Formats the optional `file:line:col: ` and `` `key`: `` parts.
struct Prefix<'a> {
    location: Option<&'a Location>,
    key: Option<&'a str>,
}

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = self.location {
            write!(f, "{location}: ")?;
        }
        if let Some(key) = self.key {
            write!(f, "`{key}`: ")?;
        }
        Ok(())
    }
}

/// All the problems found in one load, in file order.
///
/// Loading never stops at the first problem, so a user fixes a config in one
/// round instead of one error per restart. Displays one error per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_omits_missing_parts() {
        let location = Location {
            file: PathBuf::from("/etc/t.toml"),
            line: 3,
            column: 7,
        };
        let full = ConfigError::new(Some(location), Some("kafka.acks".into()), "bad");
        assert_eq!(full.to_string(), "/etc/t.toml:3:7: `kafka.acks`: bad");
        let bare = ConfigError::new(None, None, "cannot read");
        assert_eq!(bare.to_string(), "cannot read");
        let all = ConfigErrors(vec![full, bare]);
        assert_eq!(
            all.to_string(),
            "/etc/t.toml:3:7: `kafka.acks`: bad\ncannot read"
        );
    }
}
