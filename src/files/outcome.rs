//! What reading a `files:` source found: per file, its certificates (grouped in
//! bundles, one per kubeconfig entry) or why it could not be read. The reason is a
//! closed enum with a `const` label; the free-text detail goes to logs and the status
//! page, never to a label. No I/O here.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cert::ParsedCert;
use crate::probe::outcome::Verdict;

/// Why a file could not be read, or not wholly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadReason {
    /// Nothing at the path (or a symbolic link to nothing).
    NotFound,
    /// The file (or a directory on its path) may not be read.
    PermissionDenied,
    /// Over the size limit.
    TooLarge,
    /// The content is broken: PEM, DER, PKCS#12 structure or YAML.
    ParseError,
    /// Readable, and holds no certificate.
    NoCertificate,
    /// A PKCS#12 file whose integrity check fails with the password given.
    BadPassword,
    /// Not something certwatch reads: not a regular file, an encryption or format it
    /// does not support, or a file-system error.
    Unsupported,
}

impl ReadReason {
    /// Every reason, in label order.
    pub const ALL: [ReadReason; 7] = [
        ReadReason::NotFound,
        ReadReason::PermissionDenied,
        ReadReason::TooLarge,
        ReadReason::ParseError,
        ReadReason::NoCertificate,
        ReadReason::BadPassword,
        ReadReason::Unsupported,
    ];

    /// The `reason` label.
    pub const fn as_label(self) -> &'static str {
        match self {
            ReadReason::NotFound => "not_found",
            ReadReason::PermissionDenied => "permission_denied",
            ReadReason::TooLarge => "too_large",
            ReadReason::ParseError => "parse_error",
            ReadReason::NoCertificate => "no_certificate",
            ReadReason::BadPassword => "bad_password",
            ReadReason::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ReadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

/// A reason with what exactly went wrong, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The label.
    pub reason: ReadReason,
    /// In words; never a key's content.
    pub detail: String,
}

impl FileError {
    /// An error of `reason` explained by `detail`.
    pub fn new(reason: ReadReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl FileError {
    /// The read health of a file that could not be read.
    pub fn from_read(e: &crate::fileread::ReadError) -> FileError {
        let reason = match e {
            crate::fileread::ReadError::NotFound { .. } => ReadReason::NotFound,
            crate::fileread::ReadError::PermissionDenied { .. } => ReadReason::PermissionDenied,
            crate::fileread::ReadError::TooLarge { .. } => ReadReason::TooLarge,
            crate::fileread::ReadError::NotText { .. } => ReadReason::ParseError,
            crate::fileread::ReadError::NotRegular { .. } => ReadReason::Unsupported,
            // A symbolic link loop points nowhere.
            crate::fileread::ReadError::Io { source, .. }
                if source.raw_os_error() == Some(libc_eloop()) =>
            {
                ReadReason::NotFound
            }
            crate::fileread::ReadError::Io { .. } => ReadReason::Unsupported,
        };
        FileError::new(reason, e.to_string())
    }
}

#[cfg(unix)]
fn libc_eloop() -> i32 {
    libc::ELOOP
}

#[cfg(not(unix))]
fn libc_eloop() -> i32 {
    -1
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// The certificates of one file, or of one kubeconfig entry, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// `users/NAME` or `clusters/NAME` in a kubeconfig; `None` elsewhere.
    pub entry: Option<String>,
    /// The certificates; `depth` is the position here.
    pub certs: Vec<Arc<ParsedCert>>,
    /// The chain's verdict, with `trust` other than `none`.
    pub verdict: Option<Verdict>,
}

/// One file as read.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReport {
    /// As the glob matched it (symbolic links not resolved).
    pub path: PathBuf,
    /// What it holds (what could be read, when `error` is set).
    pub bundles: Vec<Bundle>,
    /// Why it was not read and parsed whole.
    pub error: Option<FileError>,
}

impl FileReport {
    /// A file that could not be read at all.
    pub fn failed(path: PathBuf, error: FileError) -> Self {
        Self {
            path,
            bundles: Vec::new(),
            error: Some(error),
        }
    }

    /// The first certificate of the file, if it holds one.
    pub fn leaf(&self) -> Option<&Arc<ParsedCert>> {
        self.bundles.iter().find_map(|b| b.certs.first())
    }
}

/// What one read of a source found.
#[derive(Clone, Debug, Default)]
pub struct FilesOutcome {
    /// Every file kept, by path.
    pub files: Vec<Arc<FileReport>>,
    /// Files found (a missing literal path is not counted).
    pub matched: usize,
    /// Files found but not read because of the bound on files per source.
    pub skipped: usize,
    /// When the read finished.
    pub finished_at: Option<SystemTime>,
    /// How long it took.
    pub duration: Duration,
}

/// What `served_from` holds: the files read, in order, up to the first that holds a
/// certificate, and that certificate.
#[derive(Clone, Debug, Default)]
pub struct ServedFile {
    /// The files read, with their read health.
    pub files: Vec<Arc<FileReport>>,
    /// The file's leaf: the first certificate of the first file that holds one.
    pub leaf: Option<Arc<ParsedCert>>,
}

impl ServedFile {
    /// What `outcome` says of `served_from`.
    pub fn from_outcome(outcome: &FilesOutcome) -> Self {
        let mut files = Vec::new();
        let mut leaf = None;
        for file in &outcome.files {
            files.push(file.clone());
            if let Some(cert) = file.leaf() {
                leaf = Some(cert.clone());
                break;
            }
        }
        Self { files, leaf }
    }

    /// Whether `served` (the leaf a server presented) is the file's leaf; `None` when
    /// either is unknown.
    pub fn is_current(&self, served: Option<&Arc<ParsedCert>>) -> Option<bool> {
        Some(served?.fingerprint_sha256 == self.leaf.as_ref()?.fingerprint_sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_snake_case() {
        let labels: std::collections::HashSet<&str> =
            ReadReason::ALL.iter().map(|r| r.as_label()).collect();
        assert_eq!(labels.len(), ReadReason::ALL.len());
        assert!(labels
            .iter()
            .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    #[test]
    fn the_served_leaf_is_the_first_certificate_of_the_first_file_holding_one() {
        let cert = |n: u8| ParsedCert::shared(&[0x30, 0x03, 0x02, 0x01, n]);
        let report = |name: &str, certs: Vec<Arc<ParsedCert>>| {
            Arc::new(FileReport {
                path: name.into(),
                bundles: vec![Bundle {
                    entry: None,
                    certs,
                    verdict: None,
                }],
                error: None,
            })
        };
        let outcome = FilesOutcome {
            files: vec![
                report("a", vec![]),
                report("b", vec![cert(1), cert(2)]),
                report("c", vec![cert(3)]),
            ],
            matched: 3,
            ..FilesOutcome::default()
        };
        let served = ServedFile::from_outcome(&outcome);
        assert_eq!(
            served.files.len(),
            2,
            "reading stops at the first certificate"
        );
        assert_eq!(served.is_current(Some(&cert(1))), Some(true));
        assert_eq!(served.is_current(Some(&cert(3))), Some(false));
        assert_eq!(served.is_current(None), None);
        assert_eq!(ServedFile::default().is_current(Some(&cert(1))), None);
    }
}
