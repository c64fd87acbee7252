//! One read of a source: expand its globs, read each file that changed, keep the
//! others, and hold back an error until it has lasted. Blocking; `files::Reader` runs
//! it on the blocking pool.
//!
//! **Unchanged files are not read.** Each file's [`FileKey`] (device, inode, size,
//! modification and change times) is taken with one `stat`; when it is the key of the
//! last read, the last report is kept as it is (the same `Arc`). A re-read when
//! nothing changed costs a directory walk and a `stat` per file.
//!
//! **A file being written is not an error yet.** A writer that truncates and rewrites
//! in place, a copy under way, a `rm` before a `cp`, all show a file for a moment that
//! does not parse or does not exist. So an error is reported only once it has lasted
//! [`SETTLE`] with the file unchanged (the same key and the same error); until then
//! the file's last good report stands (or, if it never read well, it has no series
//! yet), and the reader asks to be run again when the error would settle
//! ([`ReadState::retry_at`]). A file that changes keeps restarting that wait, so a
//! slow write is never reported half-done. A file that a glob no longer matches is
//! forgotten: it loses its series with the next read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::time::Instant;

use super::outcome::{FileError, FileReport, FilesOutcome};
use super::parse;
use crate::config::{FileFormat, Secret};
use crate::fileread::glob::{Expansion, Limits, Pattern};
use crate::fileread::{self, FileKey, ReadError};
use crate::trust::TlsMaterial;

/// How long an error must last, the file unchanged, before it is reported.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The largest file read: the contract's 4 MiB.
pub const FILE_LIMIT: u64 = 4 * fileread::MIB;

/// The most directories watched for where symbolic links point, per source.
pub const MAX_LINK_DIRS: usize = 1024;

/// What to read and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The globs.
    pub patterns: Vec<Pattern>,
    /// How files are parsed.
    pub format: FileFormat,
    /// The PKCS#12 password.
    pub password: Option<Secret>,
    /// Anchors to verify each bundle against.
    pub trust: Option<Arc<TlsMaterial>>,
    /// Stop at the first file that holds a certificate (`served_from`).
    pub first_only: bool,
    /// Bounds on the walk.
    pub limits: Limits,
}

/// What a source remembers between reads.
#[derive(Debug, Default)]
pub struct ReadState {
    pub(super) cache: HashMap<PathBuf, Cached>,
    /// When the next read should run to settle an error, if one is pending.
    pub retry_at: Option<Instant>,
}

#[derive(Debug)]
pub(super) struct Cached {
    key: Option<FileKey>,
    report: Read,
    good: Option<Read>,
    failing_since: Option<Instant>,
}

/// A report, with its certificates' DER per bundle when they are to be verified.
#[derive(Debug, Clone)]
struct Read {
    report: Arc<FileReport>,
    ders: Option<Arc<Vec<Vec<Vec<u8>>>>>,
}

/// What to watch for a source, and which changes concern it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchSet {
    /// Directories to watch: (path, recursive).
    pub dirs: Vec<(PathBuf, bool)>,
    /// The globs: a change on the way to what they match concerns the source.
    pub patterns: Vec<Pattern>,
    /// The paths symbolic links of matched files go through, with their ancestors: a
    /// change there (a Kubernetes `..data` swap) changes what a file holds.
    pub through: std::collections::HashSet<PathBuf>,
}

impl WatchSet {
    /// Whether a change at `path` concerns the source: not a log file written beside
    /// its certificates, which would otherwise make every read trigger the next.
    pub fn concerns(&self, path: &Path) -> bool {
        self.through.contains(path) || self.patterns.iter().any(|p| p.concerns(path))
    }
}

/// The most paths remembered for links per source.
const MAX_THROUGH: usize = 100_000;

/// Reads what `plan` names, at `now` (for settling) and `wall` (for verification).
pub fn read_all(
    plan: &Plan,
    state: &mut ReadState,
    now: Instant,
    wall: SystemTime,
) -> (FilesOutcome, WatchSet) {
    let started = Instant::now();
    let mut found = Expansion::default();
    for pattern in &plan.patterns {
        pattern.expand(&plan.limits, &mut found);
    }
    for (dir, kind) in &found.unreadable_dirs {
        tracing::warn!(directory = %dir.display(), error = ?kind, "cannot list a directory a glob goes through; its files are not seen");
    }
    if found.walk_cut {
        tracing::warn!(
            entries = plan.limits.max_entries,
            depth = plan.limits.max_depth,
            "a glob walk stopped at its bound; some files may not be seen"
        );
    }
    let mut paths = std::mem::take(&mut found.files);
    paths.sort();
    state.retry_at = None;
    let mut files = Vec::with_capacity(paths.len());
    let mut link_dirs: Vec<PathBuf> = Vec::new();
    let mut through = std::collections::HashSet::new();
    for path in &paths {
        note_link(path, &mut link_dirs, &mut through);
        let Some(read) = read_one(plan, state, path, now) else {
            continue;
        };
        let report = match (&plan.trust, &read.ders) {
            (Some(trust), Some(ders)) => Arc::new(verified(&read.report, ders, trust, wall)),
            _ => read.report,
        };
        let done = plan.first_only && report.leaf().is_some();
        files.push(report);
        if done {
            break;
        }
    }
    // Files no longer matched are forgotten.
    if state.cache.len() > paths.len() {
        let kept: std::collections::HashSet<&PathBuf> = paths.iter().collect();
        state.cache.retain(|path, _| kept.contains(path));
    }
    let mut dirs: Vec<(PathBuf, bool)> = plan.patterns.iter().map(Pattern::watch_root).collect();
    dirs.extend(link_dirs.into_iter().map(|d| (d, false)));
    dirs.sort();
    dirs.dedup();
    let watch = WatchSet {
        dirs,
        patterns: plan.patterns.clone(),
        through,
    };
    let outcome = FilesOutcome {
        files,
        matched: found.matched,
        skipped: found.skipped,
        finished_at: Some(SystemTime::now()),
        duration: started.elapsed(),
    };
    (outcome, watch)
}

/// For a symbolic link: the directory of the file it ends at, to be watched too (a
/// rewrite of `archive/x/cert1.pem` through `live/x/cert.pem` happens there), and
/// every path the link goes through, with their ancestors, to `through`.
fn note_link(
    path: &Path,
    dirs: &mut Vec<PathBuf>,
    through: &mut std::collections::HashSet<PathBuf>,
) {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return;
    }
    let mut hop = path.to_owned();
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&hop) else {
            break;
        };
        let next = normalize(&hop.parent().unwrap_or(Path::new("/")).join(target));
        for ancestor in next.ancestors() {
            if through.len() >= MAX_THROUGH || !through.insert(ancestor.to_owned()) {
                break;
            }
        }
        hop = next;
    }
    if let Ok(canonical) = std::fs::canonicalize(path) {
        for ancestor in canonical.ancestors() {
            if through.len() >= MAX_THROUGH || !through.insert(ancestor.to_owned()) {
                break;
            }
        }
        if let Some(dir) = canonical.parent() {
            if dirs.len() < MAX_LINK_DIRS && !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
        }
    }
}

/// `path` with `.` and `..` taken out by their names alone.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The report on `path` to publish now, if any; see the module docs.
fn read_one(plan: &Plan, state: &mut ReadState, path: &Path, now: Instant) -> Option<Read> {
    let cached = state.cache.remove(path);
    let failed = |e: &ReadError| Read {
        report: Arc::new(FileReport::failed(path.to_owned(), FileError::from_read(e))),
        ders: None,
    };
    let (key, fresh) = match fileread::file_key(path, FILE_LIMIT) {
        Ok(key) => match &cached {
            Some(c) if c.key == Some(key) => (Some(key), c.report.clone()),
            _ => match fileread::read_file_keyed(path, FILE_LIMIT) {
                Ok((bytes, key)) => {
                    let password = plan.password.as_ref().map_or("", Secret::expose);
                    let parsed = parse::parse(path, &bytes, plan.format, password);
                    let report = FileReport {
                        path: path.to_owned(),
                        bundles: parsed.bundles,
                        error: parsed.error,
                    };
                    let ders = plan.trust.is_some().then(|| Arc::new(parsed.ders));
                    (
                        Some(key),
                        Read {
                            report: Arc::new(report),
                            ders,
                        },
                    )
                }
                Err(e) => (None, failed(&e)),
            },
        },
        Err(e) => (None, failed(&e)),
    };
    let good = cached.as_ref().and_then(|c| c.good.clone());
    if fresh.report.error.is_none() {
        state.cache.insert(
            path.to_owned(),
            Cached {
                key,
                report: fresh.clone(),
                good: Some(fresh.clone()),
                failing_since: None,
            },
        );
        return Some(fresh);
    }
    let since = match &cached {
        Some(c) if c.key == key && c.report.report.error == fresh.report.error => {
            c.failing_since.unwrap_or(now)
        }
        _ => now,
    };
    let settled = now.saturating_duration_since(since) >= SETTLE;
    if !settled {
        let at = since + SETTLE;
        state.retry_at = Some(state.retry_at.map_or(at, |r| r.min(at)));
    }
    state.cache.insert(
        path.to_owned(),
        Cached {
            key,
            report: fresh.clone(),
            good: good.clone(),
            failing_since: Some(since),
        },
    );
    if settled {
        Some(fresh)
    } else {
        good
    }
}

/// `report` with each bundle's verdict at `wall`.
fn verified(
    report: &FileReport,
    ders: &[Vec<Vec<u8>>],
    trust: &TlsMaterial,
    wall: SystemTime,
) -> FileReport {
    let store = trust.trust_store();
    let now = UnixTime::since_unix_epoch(
        wall.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let mut report = report.clone();
    for (bundle, ders) in report.bundles.iter_mut().zip(ders) {
        let chain: Vec<CertificateDer<'_>> = ders
            .iter()
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        if !chain.is_empty() {
            bundle.verdict = Some(crate::probe::verify::verify_bundle(
                &chain,
                &bundle.certs,
                &store,
                now,
            ));
        }
    }
    report
}
