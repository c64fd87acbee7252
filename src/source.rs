//! Sources: what the scheduler runs on a schedule and the store keeps the latest
//! observation of.
//!
//! A [`Source`] has a name (the `target` label), an interval, a way to observe once,
//! and optionally a signal that it should be observed before its next round (a watched
//! file changed). [`Endpoint`] probes a configured network target through
//! [`crate::probe::run`]; certwatch's own serving certificate is a source of
//! `web::self_cert`. The scheduler knows only this trait, so a new kind of source plugs
//! in without touching it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::TargetSpec;
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

    /// Resolves when the source should be observed before its next round; never, by
    /// default.
    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    /// `self`, for [`Source::same_as`] to compare sources of one type.
    fn as_any(&self) -> &dyn Any;
}

/// A configured network endpoint, probed by [`crate::probe::run`].
#[derive(Debug)]
pub struct Endpoint(pub Arc<TargetSpec>);

impl Source for Endpoint {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn interval(&self) -> Duration {
        self.0.interval
    }

    fn same_as(&self, other: &dyn Source) -> bool {
        other
            .as_any()
            .downcast_ref::<Endpoint>()
            .is_some_and(|other| self.0.same_probe(&other.0))
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            Observation::Endpoint {
                spec: self.0.clone(),
                outcome: crate::probe::run(&self.0).await,
            }
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The sources of `targets`.
pub fn endpoints(targets: &[Arc<TargetSpec>]) -> Vec<Arc<dyn Source>> {
    targets
        .iter()
        .map(|spec| Arc::new(Endpoint(spec.clone())) as Arc<dyn Source>)
        .collect()
}

/// Logs what an observation found wrong: one line per failed probe of an address
/// (target, ip, stage, reason, detail), a debug line per success. The detail may quote
/// a server (a banner): it is made printable first.
pub fn log(observation: &Observation) {
    match observation {
        Observation::Endpoint { spec, outcome } => {
            for address in &outcome.addresses {
                log_address(&spec.name, address);
            }
            log_cut(spec, &outcome.cut, outcome.addresses.len());
        }
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
