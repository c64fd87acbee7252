//! The configuration of certificate files: `files:` sources and a target's
//! `served_from`.
//!
//! [`PathGlob`] checks a glob's syntax while the YAML is read, so a bad one is
//! reported at its line and column; `resolve` then makes it a [`Pattern`] from the
//! configuration file's directory. A source's settings resolve as: its own >
//! `defaults` (the interval) > built-in; `trust` is its own or `none`, since a bundle
//! of CA certificates or a client certificate checked against the web PKI would fail
//! for no fault of its own. The PKCS#12 password is read from `password_file` when
//! the configuration loads, once, and never printed (a [`Secret`], read like a proxy's
//! password).
//! Reading the files themselves is `crate::files`'.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::error::SettingError;
use super::reach::Secret;
use super::types::{deserialize_from_str, FileFormat, LabelName, Trust};
use crate::fileread::glob::{Pattern, PatternError};
use crate::trust::TlsMaterial;

/// A glob as written, its syntax checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathGlob(String);

impl PathGlob {
    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pattern, relative paths starting at `base`.
    pub fn pattern(&self, base: &Path) -> Pattern {
        Pattern::parse(&self.0, base).expect("the syntax was checked when it was read")
    }
}

impl FromStr for PathGlob {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s, Path::new("/"))?;
        Ok(PathGlob(s.to_owned()))
    }
}

deserialize_from_str!(PathGlob, "a path or a glob");

/// One `files:` source, resolved.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// The `target` label.
    pub name: String,
    /// What to read.
    pub patterns: Vec<Pattern>,
    /// How.
    pub format: FileFormat,
    /// For PKCS#12 files; the empty password when `None`.
    pub password: Option<Secret>,
    /// `password_file` as written, for messages.
    pub password_file: Option<PathBuf>,
    /// How often the files are re-read.
    pub interval: Duration,
    /// The anchors each file's bundle is verified against; `None` for `trust: none`.
    pub trust: Option<Arc<TlsMaterial>>,
    /// User labels, sorted by name.
    pub labels: Vec<(LabelName, String)>,
}

impl FileSpec {
    /// Whether reading `other` would be the same as reading `self`, so a reload keeps
    /// the schedule and the series.
    pub fn same_read(&self, other: &FileSpec) -> bool {
        self.name == other.name
            && self.patterns == other.patterns
            && self.format == other.format
            && self.password == other.password
            && self.interval == other.interval
            && self.trust.as_ref().map(|t| t.id()) == other.trust.as_ref().map(|t| t.id())
            && self.labels == other.labels
    }
}

/// The trust setting of a `files:` source: its own, else none.
pub(super) fn file_trust(own: Option<Trust>) -> Trust {
    own.unwrap_or(Trust::None)
}

/// Reads `password_file` (relative to `base`).
pub(super) fn read_password(base: &Path, file: &Path) -> Result<Secret, SettingError> {
    super::reach::read_password(&base.join(file)).map_err(|source| SettingError::PasswordFile {
        source: Arc::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_syntax_is_checked_when_read() {
        assert!("/etc/ssl/**/*.pem".parse::<PathGlob>().is_ok());
        assert!("/etc/[ssl".parse::<PathGlob>().is_err());
    }
}
