//! Noticing that a watched file changed, by polling its metadata.
//!
//! A [`Stamp`] is what `stat` says of a path: modification time, size, and on Unix the
//! device and inode. The path is followed through symbolic links, so an atomic rename
//! over it (certbot, cert-manager, `mv new.pem cert.pem`) and a swapped symlink
//! (Kubernetes secret volumes) both show as a change: the path is watched, not the
//! inode. Polling a few files every few seconds costs nothing and needs no platform
//! notification API; deciding what a change means is `web`'s.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often watched files are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What `stat` said of one path; `None` when it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp(Option<Facts>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Facts {
    modified: Option<SystemTime>,
    len: u64,
    device: u64,
    inode: u64,
}

impl Stamp {
    /// Stats `path` now.
    pub fn of(path: &Path) -> Stamp {
        Stamp(std::fs::metadata(path).ok().map(|m| {
            #[cfg(unix)]
            let (device, inode) = {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            };
            #[cfg(not(unix))]
            let (device, inode) = (0, 0);
            Facts {
                modified: m.modified().ok(),
                len: m.len(),
                device,
                inode,
            }
        }))
    }
}

/// The stamps of several paths, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamps(Vec<(PathBuf, Stamp)>);

impl Stamps {
    /// Stats every path of `paths` now.
    pub fn of(paths: &[PathBuf]) -> Stamps {
        Stamps(paths.iter().map(|p| (p.clone(), Stamp::of(p))).collect())
    }

    /// Adds `path` as stamped earlier.
    pub fn push(&mut self, path: PathBuf, stamp: Stamp) {
        self.0.push((path, stamp));
    }

    /// The paths, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.0.iter().map(|(p, _)| p.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_rename_over_the_path_is_a_change_even_with_equal_size_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, "aaaa").unwrap();
        let before = Stamps::of(std::slice::from_ref(&path));
        assert_eq!(
            before,
            Stamps::of(std::slice::from_ref(&path)),
            "nothing changed"
        );
        let next = dir.path().join("cert.pem.new");
        std::fs::write(&next, "bbbb").unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&next)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_ne!(
            before,
            Stamps::of(std::slice::from_ref(&path)),
            "a new inode"
        );
        std::fs::remove_file(&path).unwrap();
        assert_ne!(before, Stamps::of(&[path]), "gone");
    }
}
