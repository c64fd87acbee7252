//! Certificates at rest: reading certificate files, as `probe` reads endpoints.
//!
//! A [`Reader`] reads what a [`Plan`] names (a `files:` source's globs, or a target's
//! `served_from`) into a [`FilesOutcome`], and says when it should be read again
//! ([`Reader::changed`]): a file under one of its directories changed (the process's
//! one watcher, [`watch::Hub`]), or an error it holds back is due to settle. The
//! sources (`crate::source`) run readers on the scheduler's rounds and store what they
//! find; nothing here knows of the store or the metrics.
//!
//! - [`read`] expands the globs (`crate::fileread::glob`: bounded, loop-safe), reads
//!   each changed file through `crate::fileread` (bounded, never a FIFO, never held
//!   open), keeps unchanged ones, and holds back errors of files being written;
//! - [`parse`] tells the format and reads PEM, DER and kubeconfigs, [`pkcs12`] reads
//!   PKCS#12; private keys are never decoded;
//! - [`outcome`] is what a read found, with closed `reason` labels.
//!
//! Reading is blocking: it runs on the blocking pool, at most [`MAX_BLOCKING_READS`]
//! reads of all sources at once and one per reader, each awaited for at most its
//! deadline. A read that overruns (a hung network file system) is left to finish on
//! its own, holding its permits, while the source reports its last outcome, whose
//! timestamp then stops advancing (the staleness alert's signal).

mod der;
pub mod outcome;
pub mod parse;
pub mod pkcs12;
pub mod read;
pub mod watch;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

pub use outcome::{Bundle, FileError, FileReport, FilesOutcome, ReadReason, ServedFile};
pub use read::Plan;

use crate::config::{FileFormat, FileSpec};
use crate::fileread::glob::{Limits, Pattern};

/// Reads of all sources running on the blocking pool at once, at most.
pub const MAX_BLOCKING_READS: usize = 4;

/// How long a burst of changes is let settle before the read it triggers.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// The longest a read is awaited.
pub const MAX_READ_DEADLINE: Duration = Duration::from_secs(60);

fn blocking_reads() -> Arc<Semaphore> {
    static READS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    READS
        .get_or_init(|| Arc::new(Semaphore::new(MAX_BLOCKING_READS)))
        .clone()
}

impl Plan {
    /// The plan of a `files:` source.
    pub fn of_source(spec: &FileSpec) -> Plan {
        Plan {
            patterns: spec.patterns.clone(),
            format: spec.format,
            password: spec.password.clone(),
            trust: spec.trust.clone(),
            first_only: false,
            limits: Limits::DEFAULT,
        }
    }

    /// The plan of a target's `served_from`: read up to the first certificate.
    pub fn of_served_from(pattern: &Pattern) -> Plan {
        Plan {
            patterns: vec![pattern.clone()],
            format: FileFormat::Auto,
            password: None,
            trust: None,
            first_only: true,
            limits: Limits::DEFAULT,
        }
    }
}

/// Reads one plan, again and again, remembering what it read.
#[derive(Debug)]
pub struct Reader {
    plan: Arc<Plan>,
    deadline: Duration,
    hub: Option<Arc<watch::Hub>>,
    wake: Arc<Notify>,
    /// Held by a read for its whole length.
    shared: Arc<Mutex<Shared>>,
    /// Held only to copy in or out, so never waited on for long.
    published: Arc<Mutex<Published>>,
    /// One read of this reader at a time, held by the blocking task itself.
    running: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Shared {
    state: read::ReadState,
    subscription: Option<watch::Subscription>,
}

#[derive(Debug, Default)]
struct Published {
    last: Option<FilesOutcome>,
    retry_at: Option<Instant>,
}

impl Reader {
    /// A reader of `plan` that waits at most `deadline` for a read (capped at
    /// [`MAX_READ_DEADLINE`]) and watches through `hub`, if given.
    pub fn new(plan: Plan, deadline: Duration, hub: Option<Arc<watch::Hub>>) -> Reader {
        Reader {
            plan: Arc::new(plan),
            deadline: deadline.min(MAX_READ_DEADLINE),
            hub,
            wake: Arc::new(Notify::new()),
            shared: Arc::default(),
            published: Arc::default(),
            running: Arc::new(Semaphore::new(1)),
        }
    }

    /// What the plan names.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Reads now: files that changed are read, the others kept.
    pub async fn read(&self) -> FilesOutcome {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let read = async {
            let own = self.running.clone().acquire_owned().await.ok()?;
            let all = blocking_reads().acquire_owned().await.ok()?;
            let plan = self.plan.clone();
            let shared = self.shared.clone();
            let published = self.published.clone();
            let hub = self.hub.clone();
            let wake = self.wake.clone();
            let now = Instant::now();
            let task = tokio::task::spawn_blocking(move || {
                let _permits = (own, all);
                let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
                let shared = &mut *shared;
                let (outcome, dirs) =
                    read::read_all(&plan, &mut shared.state, now, SystemTime::now());
                if let Some(hub) = hub {
                    shared
                        .subscription
                        .get_or_insert_with(|| hub.subscribe(wake))
                        .watch(dirs);
                }
                let mut published = published.lock().unwrap_or_else(PoisonError::into_inner);
                published.last = Some(outcome.clone());
                published.retry_at = shared.state.retry_at;
                outcome
            });
            match task.await {
                Ok(outcome) => Some(outcome),
                Err(e) => {
                    tracing::error!(error = %e, "reading certificate files failed unexpectedly; this is a bug in certwatch, please report it");
                    None
                }
            }
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => self.last(),
            Err(_) => {
                tracing::warn!(
                    after = ?self.deadline,
                    "reading certificate files is taking too long (a hung file system?); reporting the last read until it ends"
                );
                self.last()
            }
        }
    }

    /// The last complete read (empty before the first). Never waits on a read.
    fn last(&self) -> FilesOutcome {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last
            .clone()
            .unwrap_or_default()
    }

    /// Resolves when the files should be read again before the next round: something
    /// changed under a watched directory (after [`DEBOUNCE`], so that a burst of
    /// writes is read once), or a held-back error is due to settle.
    pub async fn changed(&self) {
        let retry_at = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retry_at;
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.wake.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                // The burst's other events: consumed, they are part of this read.
                let _ = self.wake.notified().now_or_never();
            }
            () = retry => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cert(cn: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).unwrap().pem()
    }

    fn reader(dir: &Path, glob: &str, hub: Option<Arc<watch::Hub>>) -> Reader {
        let pattern = Pattern::parse(glob, dir).unwrap();
        let plan = Plan {
            patterns: vec![pattern],
            format: FileFormat::Auto,
            password: None,
            trust: None,
            first_only: false,
            limits: Limits::DEFAULT,
        };
        Reader::new(plan, Duration::from_secs(30), hub)
    }

    fn subject(outcome: &FilesOutcome, i: usize) -> Option<String> {
        outcome.files[i].bundles[0].certs[0]
            .info
            .as_ref()
            .ok()
            .and_then(|i| i.subject_cn.clone())
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_written_file_is_held_back_then_reported_once_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pem");
        let good = cert("good");
        std::fs::write(&path, &good).unwrap();
        let reader = reader(dir.path(), "*.pem", None);
        let first = reader.read().await;
        assert_eq!(subject(&first, 0).as_deref(), Some("good"));

        // Caught half-written: the last good report stands, and a retry is asked for.
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let during = reader.read().await;
        assert_eq!(during.files.len(), 1);
        assert!(during.files[0].error.is_none(), "{:?}", during.files[0]);
        assert_eq!(subject(&during, 0).as_deref(), Some("good"));
        let retry = reader.published.lock().unwrap().retry_at.expect("a retry");

        // Still broken once settled: now it is reported.
        tokio::time::sleep_until(retry).await;
        let settled = reader.read().await;
        let error = settled.files[0].error.as_ref().expect("reported");
        assert_eq!(error.reason, ReadReason::ParseError);
        assert!(settled.files[0].bundles.is_empty());

        // Written whole: good at once.
        std::fs::write(&path, cert("renewed")).unwrap();
        let renewed = reader.read().await;
        assert_eq!(subject(&renewed, 0).as_deref(), Some("renewed"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_that_keeps_changing_is_never_reported_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pem");
        let good = cert("good");
        let reader = reader(dir.path(), "a.pem", None);
        for cut in [10, 200, 400] {
            std::fs::write(&path, &good[..cut]).unwrap();
            let outcome = reader.read().await;
            assert!(
                outcome.files.is_empty(),
                "no series before it ever read well"
            );
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_files_are_not_read_again_and_vanished_ones_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), cert("a")).unwrap();
        std::fs::write(dir.path().join("b.pem"), cert("b")).unwrap();
        let reader = reader(dir.path(), "*.pem", None);
        let first = reader.read().await;
        let again = reader.read().await;
        assert_eq!(first.matched, 2);
        assert!(first
            .files
            .iter()
            .zip(&again.files)
            .all(|(a, b)| Arc::ptr_eq(a, b)));
        std::fs::remove_file(dir.path().join("a.pem")).unwrap();
        let after = reader.read().await;
        assert_eq!(after.files.len(), 1);
        assert!(after.files[0].path.ends_with("b.pem"));
        assert_eq!(reader.shared.lock().unwrap().state.cache.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_literal_file_is_not_found_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let reader = reader(dir.path(), "gone.pem", None);
        assert!(reader.read().await.files.is_empty());
        tokio::time::advance(read::SETTLE).await;
        let outcome = reader.read().await;
        assert_eq!(outcome.matched, 0);
        assert_eq!(
            outcome.files[0].error.as_ref().map(|e| e.reason),
            Some(ReadReason::NotFound)
        );
    }

    #[tokio::test]
    async fn a_change_is_seen_through_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), cert("a")).unwrap();
        let reader = reader(dir.path(), "*.pem", Some(watch::Hub::new()));
        reader.read().await;
        let tmp = dir.path().join(".new");
        std::fs::write(&tmp, cert("b")).unwrap();
        std::fs::rename(&tmp, dir.path().join("a.pem")).unwrap();
        tokio::time::timeout(Duration::from_secs(20), reader.changed())
            .await
            .expect("the rename is seen");
        assert_eq!(subject(&reader.read().await, 0).as_deref(), Some("b"));
    }
}
