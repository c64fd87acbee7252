//! Seeing a file change within a second: one file-system watcher for the whole process,
//! shared by every source that reads files.
//!
//! A [`Hub`] owns one `notify` watcher (inotify on Linux). Each reader holds a
//! [`Subscription`]: the directories it wants watched (recursively or not) and a
//! `Notify` that is woken when anything changes under one of them. The hub counts how
//! many subscriptions want each directory, so one directory watched by two sources is
//! watched once, and unwatched when the last lets go (a subscription lets go when it
//! is dropped). One watcher, not one per source: a user has at most 128 inotify
//! instances by default, shared with every other program.
//!
//! Watching directories, not files, is what sees the ways certificates are replaced:
//! an atomic rename over a file, certbot repointing `live/x/cert.pem` to a new file in
//! `archive/`, Kubernetes renaming a new `..data` symlink over the old one in a
//! mounted secret's directory. Symbolic links are not followed by the watcher; the
//! reader adds the directories links point into.
//!
//! Access events (our own reads open files) are ignored. A lost event (the kernel's
//! queue overflowed) wakes every subscriber. When the kernel refuses more watches
//! (`max_user_watches`) or inotify is unavailable, the hub falls back to polling every
//! [`POLL_INTERVAL`], once, for all directories, and says so in the log; the readers'
//! `interval` re-read is there in any case.
//!
//! The watcher's thread only takes the subscribers' lock (a read lock); adding and
//! removing watches takes another, so a watch call that waits for the watcher's thread
//! can never deadlock with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::read::WatchSet;

/// How often the polling fallback looks at the watched directories.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The process's file-system watcher.
#[derive(Debug)]
pub struct Hub {
    subscribers: Arc<RwLock<HashMap<u64, Subscriber>>>,
    watcher: Mutex<Watching>,
    next: AtomicU64,
}

#[derive(Debug)]
struct Subscriber {
    watch: Arc<WatchSet>,
    wake: Arc<Notify>,
}

/// How the hub watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The kernel tells of changes (inotify).
    Native,
    /// Directories are looked at every [`POLL_INTERVAL`] (or the given interval).
    Polling(Duration),
    /// Nothing works; only the readers' intervals see changes.
    Off,
}

struct Watching {
    /// Made at the first directory watched: a configuration without file sources
    /// starts no watcher thread.
    watcher: Option<Box<dyn Watcher + Send>>,
    started: bool,
    mode: Mode,
    /// Per directory: how many subscriptions watch it recursively, and plainly.
    dirs: HashMap<PathBuf, (usize, usize)>,
}

impl std::fmt::Debug for Watching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watching")
            .field("mode", &self.mode)
            .field("dirs", &self.dirs.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub that watches with the kernel's notifications, or polls if it cannot.
    pub fn new() -> Arc<Hub> {
        Self::with_mode(Mode::Native)
    }

    /// A hub that polls every `interval` (the fallback; also for tests).
    pub fn polling(interval: Duration) -> Arc<Hub> {
        Self::with_mode(Mode::Polling(interval))
    }

    fn with_mode(mode: Mode) -> Arc<Hub> {
        Arc::new(Hub {
            subscribers: Arc::default(),
            watcher: Mutex::new(Watching {
                watcher: None,
                started: false,
                mode,
                dirs: HashMap::new(),
            }),
            next: AtomicU64::new(0),
        })
    }

    /// How the hub watches now (as asked, until the first directory is watched).
    pub fn mode(&self) -> Mode {
        self.watching().mode
    }

    /// A subscription that wakes `wake` on changes under the directories it watches.
    pub fn subscribe(self: &Arc<Self>, wake: Arc<Notify>) -> Subscription {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                Subscriber {
                    watch: Arc::default(),
                    wake,
                },
            );
        Subscription {
            hub: self.clone(),
            id,
            dirs: Vec::new(),
        }
    }

    fn watching(&self) -> std::sync::MutexGuard<'_, Watching> {
        self.watcher.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more watcher of `dir`, watching it if it is new (or newly recursive).
    fn hold(&self, dir: &Path, recursive: bool) {
        let mut w = self.watching();
        let (rec, plain) = w.dirs.get(dir).copied().unwrap_or((0, 0));
        let was = mode_of(rec, plain);
        let now = if recursive {
            (rec + 1, plain)
        } else {
            (rec, plain + 1)
        };
        w.dirs.insert(dir.to_owned(), now);
        let want = mode_of(now.0, now.1);
        if was != want {
            if was.is_some() {
                w.unwatch(dir);
            }
            if let Some(mode) = want {
                self.watch(&mut w, dir, mode);
            }
        }
    }

    /// Counts one watcher of `dir` fewer, unwatching it when none is left.
    fn release(&self, dir: &Path, recursive: bool) {
        let mut w = self.watching();
        let Some((rec, plain)) = w.dirs.get(dir).copied() else {
            return;
        };
        let was = mode_of(rec, plain);
        let now = if recursive {
            (rec.saturating_sub(1), plain)
        } else {
            (rec, plain.saturating_sub(1))
        };
        let want = mode_of(now.0, now.1);
        if want.is_none() {
            w.dirs.remove(dir);
        } else {
            w.dirs.insert(dir.to_owned(), now);
        }
        if was != want {
            w.unwatch(dir);
            if let Some(mode) = want {
                self.watch(&mut w, dir, mode);
            }
        }
    }

    fn watch(&self, w: &mut Watching, dir: &Path, mode: RecursiveMode) {
        if !w.started {
            w.started = true;
            (w.watcher, w.mode) = make_watcher(w.mode, &self.subscribers);
        }
        let Some(watcher) = w.watcher.as_mut() else {
            return;
        };
        let Err(e) = watcher.watch(dir, mode) else {
            return;
        };
        let exhausted = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
            || matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(28));
        if exhausted && w.mode == Mode::Native {
            tracing::warn!(directory = %dir.display(), error = %e, "the kernel refuses more file watches (see /proc/sys/fs/inotify/max_user_watches); looking for changes every {}s instead", POLL_INTERVAL.as_secs());
            let (watcher, mode) = make_watcher(Mode::Polling(POLL_INTERVAL), &self.subscribers);
            w.watcher = watcher;
            w.mode = mode;
            let dirs: Vec<(PathBuf, RecursiveMode)> = w
                .dirs
                .iter()
                .filter_map(|(d, (r, p))| mode_of(*r, *p).map(|m| (d.clone(), m)))
                .collect();
            if let Some(watcher) = w.watcher.as_mut() {
                for (d, m) in dirs {
                    let _ = watcher.watch(&d, m);
                }
            }
        } else {
            // A directory that vanished between the walk and the watch: the next read
            // sees it gone.
            tracing::debug!(directory = %dir.display(), error = %e, "cannot watch a directory");
        }
    }
}

impl Watching {
    fn unwatch(&mut self, dir: &Path) {
        if let Some(watcher) = self.watcher.as_mut() {
            let _ = watcher.unwatch(dir);
        }
    }
}

fn mode_of(recursive: usize, plain: usize) -> Option<RecursiveMode> {
    if recursive > 0 {
        Some(RecursiveMode::Recursive)
    } else if plain > 0 {
        Some(RecursiveMode::NonRecursive)
    } else {
        None
    }
}

fn make_watcher(
    mode: Mode,
    subscribers: &Arc<RwLock<HashMap<u64, Subscriber>>>,
) -> (Option<Box<dyn Watcher + Send>>, Mode) {
    let config = notify::Config::default().with_follow_symlinks(false);
    let handler = {
        let subscribers = Arc::downgrade(subscribers);
        move |event: notify::Result<notify::Event>| {
            let Some(subscribers) = subscribers.upgrade() else {
                return;
            };
            dispatch(&subscribers, event);
        }
    };
    match mode {
        Mode::Native => match notify::RecommendedWatcher::new(handler.clone(), config) {
            Ok(w) => (Some(Box::new(w)), Mode::Native),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files for changes; looking for changes every {}s instead", POLL_INTERVAL.as_secs());
                make_watcher(Mode::Polling(POLL_INTERVAL), subscribers)
            }
        },
        Mode::Polling(interval) => {
            match notify::PollWatcher::new(handler, config.with_poll_interval(interval)) {
                Ok(w) => (Some(Box::new(w)), Mode::Polling(interval)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot poll files for changes; they are re-read every interval only");
                    (None, Mode::Off)
                }
            }
        }
        Mode::Off => (None, Mode::Off),
    }
}

fn dispatch(subscribers: &RwLock<HashMap<u64, Subscriber>>, event: notify::Result<notify::Event>) {
    let subscribers = subscribers.read().unwrap_or_else(PoisonError::into_inner);
    let event = match event {
        Ok(event) => event,
        Err(_) => {
            // Something was lost: everyone looks again.
            subscribers.values().for_each(|s| s.wake.notify_one());
            return;
        }
    };
    if matches!(event.kind, EventKind::Access(_)) {
        return;
    }
    if event.need_rescan() {
        subscribers.values().for_each(|s| s.wake.notify_one());
        return;
    }
    for subscriber in subscribers.values() {
        let concerned = event.paths.iter().any(|p| {
            subscriber.watch.dirs.iter().any(|(d, _)| p.starts_with(d))
                && subscriber.watch.concerns(p)
        });
        if concerned {
            subscriber.wake.notify_one();
        }
    }
}

/// One reader's directories on the [`Hub`]; released when dropped.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    dirs: Vec<(PathBuf, bool)>,
}

impl Subscription {
    /// Watches what `set` says: its new directories are watched, gone ones released,
    /// and only changes that concern it wake it. Blocking (adding a recursive watch
    /// lists the tree).
    pub fn watch(&mut self, set: WatchSet) {
        let mut dirs = set.dirs.clone();
        dirs.sort();
        dirs.dedup();
        // Tell the dispatcher first, so no event between the two is missed.
        if let Some(s) = self
            .hub
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&self.id)
        {
            if *s.watch != set {
                s.watch = Arc::new(set);
            }
        }
        if dirs == self.dirs {
            return;
        }
        for (dir, recursive) in &dirs {
            if !self.dirs.contains(&(dir.clone(), *recursive)) {
                self.hub.hold(dir, *recursive);
            }
        }
        for (dir, recursive) in &self.dirs {
            if !dirs.contains(&(dir.clone(), *recursive)) {
                self.hub.release(dir, *recursive);
            }
        }
        self.dirs = dirs;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        for (dir, recursive) in std::mem::take(&mut self.dirs) {
            self.hub.release(&dir, recursive);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn woken(wake: &Notify) -> bool {
        tokio::time::timeout(Duration::from_secs(20), wake.notified())
            .await
            .is_ok()
    }

    fn subscribed(hub: &Arc<Hub>, dir: &Path, recursive: bool) -> (Subscription, Arc<Notify>) {
        let wake = Arc::new(Notify::new());
        let mut sub = hub.subscribe(wake.clone());
        let pattern = if recursive { "**/*.pem" } else { "*" };
        sub.watch(WatchSet {
            dirs: vec![(dir.to_owned(), recursive)],
            patterns: vec![crate::fileread::glob::Pattern::parse(pattern, dir).unwrap()],
            through: Default::default(),
        });
        (sub, wake)
    }

    #[tokio::test]
    async fn a_rename_over_a_file_wakes_its_directorys_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "old").unwrap();
        let hub = Hub::new();
        let (_sub, wake) = subscribed(&hub, dir.path(), false);
        std::fs::write(dir.path().join(".tmp"), "new").unwrap();
        std::fs::rename(dir.path().join(".tmp"), dir.path().join("cert.pem")).unwrap();
        assert!(woken(&wake).await, "mode {:?}", hub.mode());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlink_swap_in_a_subdirectory_wakes_a_recursive_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live/x");
        std::fs::create_dir_all(&live).unwrap();
        std::os::unix::fs::symlink("a1.pem", live.join("cert.pem")).unwrap();
        let hub = Hub::new();
        let (_sub, wake) = subscribed(&hub, &dir.path().join("live"), true);
        std::os::unix::fs::symlink("a2.pem", live.join("cert.pem.new")).unwrap();
        std::fs::rename(live.join("cert.pem.new"), live.join("cert.pem")).unwrap();
        assert!(woken(&wake).await);
    }

    #[tokio::test]
    async fn reading_a_file_wakes_nobody_and_other_directories_are_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        let hub = Hub::new();
        let (_sub, wake) = subscribed(&hub, dir.path(), false);
        // A write we do watch first, and its events drained.
        std::fs::write(dir.path().join("marker"), "z").unwrap();
        assert!(woken(&wake).await);
        for _ in 0..20 {
            if tokio::time::timeout(Duration::from_millis(300), wake.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = std::fs::read(dir.path().join("cert.pem")).unwrap();
        let _ = std::fs::read_dir(dir.path()).unwrap().count();
        std::fs::write(other.path().join("x"), "y").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(500), wake.notified())
                .await
                .is_err(),
            "woken by a read or by another directory"
        );
    }

    #[tokio::test]
    async fn the_polling_fallback_sees_a_change_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "old").unwrap();
        let hub = Hub::polling(Duration::from_millis(100));
        assert_eq!(hub.mode(), Mode::Polling(Duration::from_millis(100)));
        let (_sub, wake) = subscribed(&hub, dir.path(), false);
        std::fs::write(dir.path().join("new.pem"), "new").unwrap();
        assert!(woken(&wake).await);
    }

    #[test]
    fn a_directory_watched_twice_is_released_when_the_last_subscription_goes() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::new();
        let (a, _) = subscribed(&hub, dir.path(), false);
        let (b, _) = subscribed(&hub, dir.path(), true);
        assert_eq!(hub.watching().dirs.get(dir.path()), Some(&(1, 1)));
        drop(b);
        assert_eq!(hub.watching().dirs.get(dir.path()), Some(&(0, 1)));
        drop(a);
        assert!(hub.watching().dirs.is_empty());
        assert!(hub.subscribers.read().unwrap().is_empty());
    }
}
