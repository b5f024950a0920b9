//! `${…}` substitution in string values, so secrets never have to be written
//! into a config file.
//!
//! - `${env:NAME}`: the environment variable `NAME`.
//! - `${file:/path}`: the file's content, one trailing newline removed. A
//!   relative path is resolved against the main file's directory.
//! - `${cred:NAME}`: the systemd credential `NAME`, i.e. the file
//!   `$CREDENTIALS_DIRECTORY/NAME` (`LoadCredential=` in the unit).
//! - `$${` is a literal `${`; any other `$` is literal.
//!
//! Substituted text is not scanned again, and errors never contain it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Looks up an environment variable; the loader passes `std::env::var_os`,
/// tests pass a fixed map (changing the real environment is `unsafe` and
/// races with parallel tests).
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Why a `${…}` could not be replaced. Names the variable or path, never the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubstError {
    #[error("environment variable `{name}` (from `${{env:{name}}}`) is not set")]
    EnvUnset { name: String },
    #[error("environment variable `{name}` (from `${{env:{name}}}`) is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error(
        "`${{cred:{name}}}` needs $CREDENTIALS_DIRECTORY, which systemd sets for units with LoadCredential=; it is not set"
    )]
    NoCredentialsDirectory { name: String },
    #[error("`${{cred:{name}}}`: a credential name cannot contain `/` or be `.` or `..`")]
    BadCredentialName { name: String },
    #[error("cannot read `{}` (from `${{{kind}:…}}`): {reason}", path.display())]
    FileUnreadable {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("`{}` (from `${{{kind}:…}}`) is not valid UTF-8", path.display())]
    FileNotUnicode { kind: &'static str, path: PathBuf },
    #[error("`{}` (from `${{{kind}:…}}`) is larger than {} bytes; a secret or a setting never is (a device or a log file?)", path.display(), MAX_SUBSTITUTED_FILE_BYTES)]
    FileTooLarge { kind: &'static str, path: PathBuf },
    #[error("empty name in `${{{kind}:}}`")]
    Empty { kind: String },
    #[error(
        "unknown substitution `${{{text}}}`; expected `${{env:NAME}}`, `${{file:/path}}` or `${{cred:NAME}}` (write `$${{` for a literal `${{`)"
    )]
    Unknown { text: String },
    #[error("`${{` is not closed by `}}` (write `$${{` for a literal `${{`)")]
    Unterminated,
}

/// What substitution needs besides the string itself.
#[derive(Clone, Copy)]
pub(crate) struct Substitutor<'a> {
    /// Environment lookup.
    pub(crate) env: EnvLookup<'a>,
    /// Directory that relative `${file:…}` paths are resolved against.
    pub(crate) base_dir: &'a Path,
}

impl std::fmt::Debug for Substitutor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Substitutor")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl Substitutor<'_> {
    /// Replaces every `${…}` in `raw`. Reports every failing reference in the
    /// string, not only the first.
    pub(crate) fn apply(&self, raw: &str) -> Result<String, Vec<SubstError>> {
        if !raw.contains('$') {
            return Ok(raw.to_owned());
        }
        let mut out = String::with_capacity(raw.len());
        let mut errors = Vec::new();
        let mut rest = raw;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let tail = &rest[dollar..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(after) = tail.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    errors.push(SubstError::Unterminated);
                    rest = "";
                    break;
                };
                match self.resolve(&after[..end]) {
                    Ok(value) => out.push_str(&value),
                    Err(error) => errors.push(error),
                }
                rest = &after[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Resolves the text between `${` and `}`.
    fn resolve(&self, reference: &str) -> Result<String, SubstError> {
        let Some((kind, arg)) = reference.split_once(':') else {
            return Err(SubstError::Unknown {
                text: reference.to_owned(),
            });
        };
        if arg.is_empty() && matches!(kind, "env" | "file" | "cred") {
            return Err(SubstError::Empty {
                kind: kind.to_owned(),
            });
        }
        match kind {
            "env" => match (self.env)(arg) {
                None => Err(SubstError::EnvUnset {
                    name: arg.to_owned(),
                }),
                Some(value) => value.into_string().map_err(|_| SubstError::EnvNotUnicode {
                    name: arg.to_owned(),
                }),
            },
            "file" => read_secret_file("file", &self.base_dir.join(arg)),
            "cred" => {
                if arg.contains('/') || arg == "." || arg == ".." {
                    return Err(SubstError::BadCredentialName {
                        name: arg.to_owned(),
                    });
                }
                let dir = (self.env)("CREDENTIALS_DIRECTORY")
                    .filter(|dir| !dir.is_empty())
                    .ok_or_else(|| SubstError::NoCredentialsDirectory {
                        name: arg.to_owned(),
                    })?;
                read_secret_file("cred", &Path::new(&dir).join(arg))
            }
            _ => Err(SubstError::Unknown {
                text: reference.to_owned(),
            }),
        }
    }
}

/// The most a `${file:…}` or `${cred:…}` reference reads. A path to a
/// device (`/dev/zero`) or a growing log must not make loading a
/// configuration read without end.
const MAX_SUBSTITUTED_FILE_BYTES: u64 = 1 << 20;

/// Reads a file whose content replaces a reference, minus one trailing
/// newline (files written with `echo` end in one; secrets never do).
fn read_secret_file(kind: &'static str, path: &Path) -> Result<String, SubstError> {
    use std::io::Read as _;
    let unreadable = |error: std::io::Error| SubstError::FileUnreadable {
        kind,
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_SUBSTITUTED_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SUBSTITUTED_FILE_BYTES {
        return Err(SubstError::FileTooLarge {
            kind,
            path: path.to_path_buf(),
        });
    }
    let mut text = String::from_utf8(bytes).map_err(|_| SubstError::FileNotUnicode {
        kind,
        path: path.to_path_buf(),
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env<T>(vars: &[(&str, &str)], f: impl FnOnce(Substitutor<'_>) -> T) -> T {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(*v)))
            .collect();
        let lookup = move |name: &str| map.get(name).cloned();
        let base = std::env::temp_dir();
        f(Substitutor {
            env: &lookup,
            base_dir: &base,
        })
    }

    #[test]
    fn a_file_reference_to_an_endless_file_is_refused_not_read_forever() {
        with_env(&[], |s| {
            let errors = s.apply("${file:/dev/zero}").unwrap_err();
            assert!(
                matches!(errors.as_slice(), [SubstError::FileTooLarge { .. }]),
                "{errors:?}"
            );
        });
    }

    #[test]
    fn plain_strings_and_lone_dollars_are_unchanged() {
        with_env(&[], |s| {
            assert_eq!(s.apply("abc").unwrap(), "abc");
            assert_eq!(s.apply("a$b$").unwrap(), "a$b$");
            assert_eq!(s.apply("$$").unwrap(), "$$");
        });
    }

    #[test]
    fn double_dollar_brace_is_a_literal() {
        with_env(&[("X", "1")], |s| {
            assert_eq!(s.apply("$${env:X}").unwrap(), "${env:X}");
            // Scanning is left to right: the first `$` is plain, the rest
            // is the escape.
            assert_eq!(s.apply("a$$${env:X}").unwrap(), "a$${env:X}");
            assert_eq!(s.apply("$${env:X}-${env:X}").unwrap(), "${env:X}-1");
        });
    }

    #[test]
    fn env_references_are_replaced_and_not_rescanned() {
        with_env(&[("A", "x"), ("B", "${env:A}")], |s| {
            assert_eq!(s.apply("<${env:A}|${env:B}>").unwrap(), "<x|${env:A}>");
        });
    }

    #[test]
    fn every_failing_reference_is_reported() {
        with_env(&[], |s| {
            let errors = s.apply("${env:A}${nope}${env:}${env:B").unwrap_err();
            assert_eq!(
                errors,
                vec![
                    SubstError::EnvUnset { name: "A".into() },
                    SubstError::Unknown {
                        text: "nope".into()
                    },
                    SubstError::Empty { kind: "env".into() },
                    SubstError::Unterminated,
                ]
            );
        });
    }

    #[test]
    fn credentials_come_from_the_credentials_directory() {
        let dir = std::env::temp_dir().join(format!("tributary-subst-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "hunter2\r\n").unwrap();
        let dir_str = dir.to_str().unwrap().to_owned();
        with_env(&[("CREDENTIALS_DIRECTORY", &dir_str)], |s| {
            assert_eq!(s.apply("${cred:pw}").unwrap(), "hunter2");
            assert!(matches!(
                s.apply("${cred:../pw}").unwrap_err()[0],
                SubstError::BadCredentialName { .. }
            ));
        });
        with_env(&[], |s| {
            assert!(matches!(
                s.apply("${cred:pw}").unwrap_err()[0],
                SubstError::NoCredentialsDirectory { .. }
            ));
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
