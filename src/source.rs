//! Sources: what the scheduler runs on a schedule and the store keeps the latest
//! observation of.
//!
//! A [`Source`] has a name (the `target` label), an interval, a way to observe once,
//! and optionally a signal that it should be observed before its next round (a watched
//! file changed). [`Endpoint`] probes a configured network target through
//! [`crate::probe::run`] (and reads its `served_from` file through [`crate::files`]);
//! [`Files`] reads a `files:` source through [`crate::files`]; certwatch's own serving
//! certificate is a source of `web::self_cert`. The scheduler knows only this trait, so
//! a new kind of source plugs in without touching it.
//!
//! `served_from` is read by the endpoint's own source, beside its probe, and the two
//! leaves are compared in the collector from that one observation: "what did the
//! server serve, and what did the file hold, at one moment" is one fact about one
//! target. So the comparison needs no second source to exist (a `served_from` file need
//! not be under `files:`), no join across store entries (whose prepared series are
//! cached per entry), and a change of the file is seen at once: the file is watched,
//! and its change re-probes the server, so the answer is fresh on both sides.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::{FileSpec, TargetSpec};
use crate::files::watch::Hub;
use crate::files::{Plan, Reader, ServedFile};
use crate::printable::Printable;
use crate::probe::outcome::{AddressOutcome, Cut, Verdict};
use crate::store::Observation;

/// Something observed on a schedule.
pub trait Source: fmt::Debug + Send + Sync + 'static {
    /// The unique name, used as the `target` label.
    fn name(&self) -> &str;

    /// How often it is observed.
    fn interval(&self) -> Duration;

    /// Whether observing `other` would do exactly what observing `self` does, so that a
    /// reload keeps the running schedule and the latest observation.
    fn same_as(&self, other: &dyn Source) -> bool;

    /// Observes once. The future must end on its own (every wait in it bounded).
    fn observe(&self) -> BoxFuture<'_, Observation>;

    /// A future that resolves when the source should be observed before its next
    /// round, called again after each; `None` (the default) for a source that never
    /// says so, which then costs the scheduler no task.
    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        None
    }

    /// `self`, for [`Source::same_as`] to compare sources of one type.
    fn as_any(&self) -> &dyn Any;
}

/// A configured network endpoint, probed by [`crate::probe::run`].
#[derive(Debug)]
pub struct Endpoint {
    spec: Arc<TargetSpec>,
    /// The reader of `served_from`, if set.
    served_from: Option<Reader>,
}

impl Endpoint {
    /// The source of `spec`, watching its `served_from` through `hub`.
    pub fn new(spec: Arc<TargetSpec>, hub: Option<Arc<Hub>>) -> Self {
        let served_from = spec
            .served_from
            .as_ref()
            .map(|pattern| Reader::new(Plan::of_served_from(pattern), spec.timeout, hub));
        Self { spec, served_from }
    }

    /// The target.
    pub fn spec(&self) -> &Arc<TargetSpec> {
        &self.spec
    }
}

impl Source for Endpoint {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn interval(&self) -> Duration {
        self.spec.interval
    }

    fn same_as(&self, other: &dyn Source) -> bool {
        other
            .as_any()
            .downcast_ref::<Endpoint>()
            .is_some_and(|other| self.spec.same_probe(&other.spec))
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            let probe = crate::probe::run(&self.spec);
            let (outcome, served) = match &self.served_from {
                None => (probe.await, None),
                Some(reader) => {
                    let (outcome, files) = tokio::join!(probe, reader.read());
                    (outcome, Some(ServedFile::from_outcome(&files)))
                }
            };
            Observation::Endpoint {
                spec: self.spec.clone(),
                outcome,
                served,
            }
        })
    }

    /// When `served_from` changes: the server is probed again at once, to see whether
    /// it serves the new certificate yet.
    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        let reader = self.served_from.as_ref()?;
        Some(Box::pin(reader.changed()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The sources of `targets`.
pub fn endpoints(targets: &[Arc<TargetSpec>], hub: Option<&Arc<Hub>>) -> Vec<Arc<dyn Source>> {
    targets
        .iter()
        .map(|spec| Arc::new(Endpoint::new(spec.clone(), hub.cloned())) as Arc<dyn Source>)
        .collect()
}

/// A `files:` source: certificate files, read through [`crate::files`].
#[derive(Debug)]
pub struct Files {
    spec: Arc<FileSpec>,
    reader: Reader,
}

impl Files {
    /// The source of `spec`, watching its files through `hub`.
    pub fn new(spec: Arc<FileSpec>, hub: Option<Arc<Hub>>) -> Self {
        let reader = Reader::new(Plan::of_source(&spec), spec.interval, hub);
        Self { spec, reader }
    }
}

impl Source for Files {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn interval(&self) -> Duration {
        self.spec.interval
    }

    fn same_as(&self, other: &dyn Source) -> bool {
        other
            .as_any()
            .downcast_ref::<Files>()
            .is_some_and(|other| self.spec.same_read(&other.spec))
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            Observation::Files {
                spec: self.spec.clone(),
                outcome: self.reader.read().await,
            }
        })
    }

    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        Some(Box::pin(self.reader.changed()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The sources of `files`.
pub fn files(files: &[Arc<FileSpec>], hub: Option<&Arc<Hub>>) -> Vec<Arc<dyn Source>> {
    files
        .iter()
        .map(|spec| Arc::new(Files::new(spec.clone(), hub.cloned())) as Arc<dyn Source>)
        .collect()
}

/// Logs what an observation found wrong: one line per failed probe of an address
/// (target, ip, stage, reason, detail), a debug line per success. The detail may quote
/// a server (a banner): it is made printable first.
pub fn log(observation: &Observation) {
    match observation {
        Observation::Endpoint {
            spec,
            outcome,
            served,
        } => {
            for address in &outcome.addresses {
                log_address(&spec.name, address);
            }
            log_cut(spec, &outcome.cut, outcome.addresses.len());
            if let Some(served) = served {
                for file in &served.files {
                    log_file(&spec.name, file);
                }
            }
        }
        Observation::Files { spec, outcome } => {
            for file in &outcome.files {
                log_file(&spec.name, file);
            }
            tracing::debug!(
                target = spec.name.as_str(),
                matched = outcome.matched,
                reported = outcome.files.len(),
                "files read"
            );
            if outcome.skipped > 0 {
                tracing::warn!(
                    target = spec.name.as_str(),
                    matched = outcome.matched,
                    skipped = outcome.skipped,
                    limit = crate::fileread::glob::Limits::DEFAULT.max_files,
                    "more files match than are read; the rest are counted in certwatch_files_skipped"
                );
            }
        }
    }
}

fn log_file(target: &str, file: &crate::files::FileReport) {
    let path = file.path.display().to_string();
    match &file.error {
        Some(error) => tracing::warn!(
            target = target,
            path = %Printable(&path),
            reason = error.reason.as_label(),
            detail = %Printable(&error.detail),
            "certificate file not read"
        ),
        None => tracing::debug!(target = target, path = %Printable(&path), "certificate file read"),
    }
}

/// Logs what the caps on hosts and addresses left out, at every probe that cut.
fn log_cut(spec: &TargetSpec, cut: &Cut, rows: usize) {
    if let (Some(named), Some(discover)) = (cut.hosts_named, &spec.discover) {
        if named > crate::probe::discover::MAX_HOSTS {
            let shown = cut.hosts_left_out.join(", ");
            let more = named - crate::probe::discover::MAX_HOSTS - cut.hosts_left_out.len();
            tracing::warn!(
                target = spec.name.as_str(),
                named,
                probed = crate::probe::discover::MAX_HOSTS,
                left_out = %Printable(&if more > 0 { format!("{shown} and {more} more") } else { shown }),
                rows,
                "the {} answer of {} names more hosts than are probed",
                discover.record(),
                discover.name(),
            );
        }
    }
    for (host, name, left_out) in &cut.addresses {
        tracing::warn!(
            target = spec.name.as_str(),
            host = host.as_ref().map(|h| h.label.as_str()),
            name = %Printable(name),
            left_out,
            probed = crate::probe::resolve::MAX_ADDRESSES,
            "a name resolves to more addresses than are probed"
        );
    }
}

fn log_address(target: &str, address: &AddressOutcome) {
    let ip = address.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let host = address.host.as_ref().map(|h| h.label.as_str());
    match (&address.handshake, &address.verdict) {
        (Err(failure), _) => tracing::warn!(
            target = target,
            host,
            ip,
            stage = failure.kind.stage().as_label(),
            reason = failure.kind.reason_label(),
            detail = %Printable(&failure.detail),
            "probe failed"
        ),
        (Ok(_), Some(Verdict::Failed { reason, detail })) => tracing::warn!(
            target = target,
            host,
            ip,
            stage = "verify",
            reason = reason.as_label(),
            detail = %Printable(detail),
            "chain does not verify"
        ),
        (Ok(_), _) => tracing::debug!(target = target, host, ip, "probe succeeded"),
    }
    if let Some(legacy) = &address.legacy {
        tracing::warn!(
            target = target,
            host,
            ip,
            version = legacy.version,
            cipher = legacy.cipher,
            "only the legacy hello reached the server; its chain was read from the legacy handshake"
        );
    }
    if let Some(cut) = &address.chain_cut {
        tracing::warn!(
            target = target,
            host,
            ip,
            kept = cut.kept,
            detail = %Printable(&cut.detail),
            "the presented chain is longer than certwatch keeps: cut"
        );
    }
}
