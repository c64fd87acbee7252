//! `--config.auto-reload`: noticing that the configuration changed on disk.
//!
//! The watched files are the configuration file and every PEM file the running
//! configuration named (CA, client certificate and key) and every proxy password file,
//! since those are read at load too. Each is looked at by its path, through symbolic links, and compared by content
//! (SHA-256), never by inode: a Kubernetes ConfigMap update swaps the `..data` symlink
//! above the file, an editor writes a new file and renames it over the old one, and
//! both are changes only when the content differs. Reading every file at every look
//! would cost a large configuration its size in reads every few seconds, so a file is
//! read again only when `stat` says something changed (modification time, size,
//! device, inode), and every file is read anyway every [`FULL_CHECK_EVERY`] looks, for
//! file systems whose times are too coarse to show a quick rewrite.
//!
//! A change is applied once two looks in a row agree on it, so that a file written in
//! place is not loaded half-written, and a content that failed to load is not tried
//! again until it changes (the failure was reported once, as a failed SIGHUP is).
//! [`Watch`] only decides; reading happens on the blocking pool and reloading through
//! the app's one `Reloader`, which runs reloads one at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::digest::{digest, SHA256};

use crate::config::{Config, CONFIG_FILE_LIMIT};
use crate::fileread::{self, PEM_LIMIT};
use crate::web::watch::Stamp;

/// How often the files are looked at, unless `--config.auto-reload-interval` says.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Every this many looks, every file is read whatever `stat` says.
pub const FULL_CHECK_EVERY: u32 = 15;

/// What one watched file held when it was looked at.
#[derive(Clone, Debug)]
struct FileState {
    path: PathBuf,
    stamp: Stamp,
    /// SHA-256 of the content; `None` when the file could not be read.
    digest: Option<[u8; 32]>,
}

impl FileState {
    fn read(path: &Path) -> FileState {
        // Stamped before reading: a change made while reading shows at the next look.
        let stamp = Stamp::of(path);
        let limit = CONFIG_FILE_LIMIT.max(PEM_LIMIT);
        let digest = fileread::read_file(path, limit).ok().map(|bytes| {
            let mut out = [0u8; 32];
            out.copy_from_slice(digest(&SHA256, &bytes).as_ref());
            out
        });
        FileState {
            path: path.to_owned(),
            stamp,
            digest,
        }
    }
}

/// The contents of the watched files, by path.
#[derive(Clone, Debug, Default)]
pub struct Fingerprint(Vec<FileState>);

impl Fingerprint {
    /// Reads every file of `paths` now. Blocking.
    pub fn of(paths: &[PathBuf]) -> Fingerprint {
        Fingerprint(paths.iter().map(|p| FileState::read(p)).collect())
    }

    /// The files now: a file whose `stat` is unchanged since `self` keeps its digest
    /// unread, unless `full`. Blocking.
    pub fn refresh(&self, full: bool) -> Fingerprint {
        Fingerprint(
            self.0
                .iter()
                .map(|known| {
                    if !full && Stamp::of(&known.path) == known.stamp {
                        known.clone()
                    } else {
                        FileState::read(&known.path)
                    }
                })
                .collect(),
        )
    }

    /// `self` for the configuration `config` just loaded: its own file (the first of
    /// `self`) and the files it reads ([`Config::read_files`]), those not in `self`
    /// read now. Blocking.
    pub fn for_loaded(&self, config: &Config) -> Fingerprint {
        let mut files: Vec<FileState> = self.0.iter().take(1).cloned().collect();
        for path in config.read_files() {
            if files.iter().any(|f| f.path == path) {
                continue;
            }
            match self.0.iter().find(|f| f.path == path) {
                Some(known) => files.push(known.clone()),
                None => files.push(FileState::read(&path)),
            }
        }
        Fingerprint(files)
    }

    /// Whether both name the same files with the same contents.
    pub fn same_content(&self, other: &Fingerprint) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.path == b.path && a.digest == b.digest)
    }

    /// The files of `self` that `stat` shows replaced or touched since `earlier`
    /// although their content is the same (a ConfigMap swap of another key, an editor
    /// saving without a change).
    pub fn replaced_unchanged(&self, earlier: &Fingerprint) -> Vec<PathBuf> {
        self.0
            .iter()
            .filter(|f| {
                earlier
                    .0
                    .iter()
                    .any(|e| e.path == f.path && e.digest == f.digest && e.stamp != f.stamp)
            })
            .map(|f| f.path.clone())
            .collect()
    }

    /// The files, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.0.iter().map(|f| f.path.clone()).collect()
    }

    /// The files whose content differs from `other`'s, or that only one of them names.
    pub fn changed_since(&self, other: &Fingerprint) -> Vec<PathBuf> {
        let mut changed: Vec<PathBuf> = self
            .0
            .iter()
            .filter(|f| {
                !other
                    .0
                    .iter()
                    .any(|o| o.path == f.path && o.digest == f.digest)
            })
            .map(|f| f.path.clone())
            .collect();
        changed.extend(
            other
                .0
                .iter()
                .filter(|o| !self.0.iter().any(|f| f.path == o.path))
                .map(|o| o.path.clone()),
        );
        changed
    }
}

/// The state of the watch: what the running configuration was loaded from, what the
/// last look saw, and which content last failed to load.
#[derive(Debug)]
pub struct Watch {
    interval: Duration,
    loaded: Fingerprint,
    seen: Option<Fingerprint>,
    failed: Option<Fingerprint>,
    looks: u32,
}

impl Watch {
    /// A watch of the files of `loaded`, looked at every `interval`.
    pub fn new(interval: Duration, loaded: Fingerprint) -> Watch {
        Watch {
            interval,
            loaded,
            seen: None,
            failed: None,
            looks: 0,
        }
    }

    /// How often to look.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The files watched, and whether the next look must read every one of them.
    pub fn next_look(&mut self) -> (Fingerprint, bool) {
        self.looks = self.looks.wrapping_add(1);
        let base = self.seen.clone().unwrap_or_else(|| self.loaded.clone());
        (base, self.looks.is_multiple_of(FULL_CHECK_EVERY))
    }

    /// What a look saw: the files that changed when a reload is due, else `None`.
    pub fn saw(&mut self, now: Fingerprint) -> Option<Vec<PathBuf>> {
        let settled = self.seen.as_ref().is_some_and(|s| s.same_content(&now));
        self.seen = Some(now.clone());
        if now.same_content(&self.loaded) {
            // Back to what runs (an edit undone): nothing failed any more.
            self.failed = None;
            return None;
        }
        if !settled || self.failed.as_ref().is_some_and(|f| f.same_content(&now)) {
            return None;
        }
        Some(now.changed_since(&self.loaded))
    }

    /// A reload (of any trigger) loaded `files`.
    pub fn loaded(&mut self, files: Fingerprint) {
        self.loaded = files;
        self.failed = None;
        // The files watched may have changed with the configuration.
        self.seen = None;
    }

    /// A reload (of any trigger) failed on `files`: not tried again until they change.
    pub fn failed(&mut self, files: Fingerprint) {
        self.failed = Some(files);
        self.seen = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn content_not_inode_decides_and_a_change_waits_for_a_second_look() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("certwatch.yml");
        write(&config, "targets: []\n");
        let mut watch = Watch::new(
            DEFAULT_INTERVAL,
            Fingerprint::of(std::slice::from_ref(&config)),
        );
        let look = |watch: &mut Watch| {
            let (base, full) = watch.next_look();
            watch.saw(base.refresh(full))
        };
        assert_eq!(look(&mut watch), None, "nothing changed");
        // The same content under a new inode (a rename, a ConfigMap swap) is no change.
        let next = dir.path().join("next.yml");
        write(&next, "targets: []\n");
        std::fs::rename(&next, &config).unwrap();
        assert_eq!(look(&mut watch), None);
        assert_eq!(look(&mut watch), None);
        // New content: due at the second look that sees it.
        write(&next, "targets: []\nconcurrency: 3\n");
        std::fs::rename(&next, &config).unwrap();
        assert_eq!(look(&mut watch), None, "not settled yet");
        assert_eq!(look(&mut watch), Some(vec![config.clone()]));
        // It failed to load: not tried again while it stays the same.
        let failed = Fingerprint::of(std::slice::from_ref(&config));
        watch.failed(failed);
        for _ in 0..3 {
            assert_eq!(look(&mut watch), None);
        }
        // Fixed: due again.
        write(&config, "targets: []\nconcurrency: 4\n");
        assert_eq!(look(&mut watch), None);
        assert_eq!(look(&mut watch), Some(vec![config.clone()]));
        watch.loaded(Fingerprint::of(std::slice::from_ref(&config)));
        assert_eq!(look(&mut watch), None);
        // Gone: a change, whose reload will fail and be reported.
        std::fs::remove_file(&config).unwrap();
        assert_eq!(look(&mut watch), None);
        assert_eq!(look(&mut watch), Some(vec![config]));
    }

    #[test]
    fn an_unchanged_stamp_skips_the_read_until_a_full_check() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("certwatch.yml");
        write(&config, "aaaa");
        let modified = std::fs::metadata(&config).unwrap().modified().unwrap();
        let before = Fingerprint::of(std::slice::from_ref(&config));
        // Rewritten in place with the same size and time: stat cannot tell.
        write(&config, "bbbb");
        std::fs::File::options()
            .write(true)
            .open(&config)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert!(before.refresh(false).same_content(&before), "not read");
        assert!(!before.refresh(true).same_content(&before), "read");
    }
}
