//! certwatch's own serving certificate as a target, `certwatch-self`, so that the
//! shipped expiry alerts cover it too: a [`Source`] the scheduler runs like any other.
//!
//! [`check`] runs a real TLS handshake of certwatch's probe client (`probe::tls`)
//! against the serving configuration, in process over an in-memory pipe and without
//! client authentication, so it needs no client certificate and no network, and sees
//! exactly the chain, version and cipher a client would. The observation has the same
//! series as any target's: `target="certwatch-self"`, `ip` the listen address.
//! `certwatch_chain_verified` is absent (so `certwatch_probe_success` is 0): certwatch
//! cannot know which CA its scrapers trust, and a guess would raise false alerts for
//! private CAs. The check runs every [`INTERVAL`], which
//! `certwatch_probe_interval_seconds` reports, so the staleness alert works as for other
//! targets, and at once after every reload of the web configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use futures_util::future::BoxFuture;

use super::tls::Serving;
use super::Web;
use crate::cert::ParsedCert;
use crate::config::raw::RawSettings;
use crate::config::{self, Address, Host, PromDuration, SettingError, TargetSpec, Trust};
use crate::metrics::names::SELF_TARGET;
use crate::probe::legacy::KeyType;
use crate::probe::outcome::{AddressOutcome, Phase, PhaseTimes, ProbeOutcome};
use crate::probe::tls::{handshake, setup_for};
use crate::source::Source;
use crate::store::Observation;

/// How often the serving certificate is checked when nothing changes.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Bound on one check.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The in-memory pipe's buffer.
const PIPE_BUFFER: usize = 64 * 1024;

/// The spec of `certwatch-self` for a listener at `listen`.
pub fn spec(listen: SocketAddr) -> Result<TargetSpec, SettingError> {
    let address = Address {
        host: Host::Ip(listen.ip()),
        port: listen.port(),
    };
    let settings = RawSettings {
        interval: Some(PromDuration::from_duration(INTERVAL)),
        timeout: Some(PromDuration::from_duration(TIMEOUT)),
        trust: Some(Trust::None),
        ..RawSettings::default()
    };
    let mut spec = config::one_off_target(address, None, settings)?;
    spec.name = SELF_TARGET.to_owned();
    Ok(spec)
}

/// Handshakes with `serving` as a client would and describes what it saw.
pub async fn check(spec: &TargetSpec, serving: &Serving, listen: SocketAddr) -> ProbeOutcome {
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let (client_io, server_io) = tokio::io::duplex(PIPE_BUFFER);
    let acceptor = TlsAcceptor::from(serving.self_check.clone());
    let server = async {
        // The client side reports the outcome; the server side only has to run.
        let _ = tokio::time::timeout_at(deadline, acceptor.accept(server_io)).await;
    };
    let setup = setup_for(&spec.tls);
    let client = handshake(
        client_io,
        &setup,
        spec.server_name.server_name(),
        KeyType::Any,
        true,
        deadline,
    );
    let ((), shake) = tokio::join!(server, client);
    let took = started.elapsed();
    let mut phases = PhaseTimes::default();
    phases.set(Phase::Handshake, took);
    let chain: Vec<Arc<ParsedCert>> = shake
        .chain
        .iter()
        .map(|der| ParsedCert::shared(der))
        .collect();
    ProbeOutcome {
        addresses: vec![AddressOutcome {
            ip: Some(listen.ip()),
            finished_at: SystemTime::now(),
            duration: took,
            phases,
            handshake: shake.result,
            weaknesses: crate::probe::hygiene::weaknesses(&chain),
            chain,
            verdict: None,
            legacy: None,
            chain_cut: None,
            chain_issues: Vec::new(),
            revocation: None,
            host: None,
        }],
        cut: Default::default(),
    }
}

/// certwatch's own serving certificate, observed by the scheduler.
#[derive(Debug)]
pub struct SelfCheck {
    web: Arc<Web>,
    spec: Arc<TargetSpec>,
    listen: SocketAddr,
}

impl SelfCheck {
    /// The check of `web`'s serving certificate for a listener at `listen`.
    pub fn new(web: Arc<Web>, listen: SocketAddr) -> Result<Self, SettingError> {
        Ok(Self {
            web,
            spec: Arc::new(spec(listen)?),
            listen,
        })
    }
}

impl Source for SelfCheck {
    fn name(&self) -> &str {
        SELF_TARGET
    }

    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn same_as(&self, other: &dyn Source) -> bool {
        other
            .as_any()
            .downcast_ref::<SelfCheck>()
            .is_some_and(|other| Arc::ptr_eq(&self.web, &other.web) && self.listen == other.listen)
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            let outcome = match self.web.active().serving.clone() {
                Some(serving) => check(&self.spec, &serving, self.listen).await,
                None => ProbeOutcome {
                    addresses: vec![],
                    cut: Default::default(),
                },
            };
            Observation::Endpoint {
                spec: self.spec.clone(),
                outcome,
                served: None,
            }
        })
    }

    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        Some(Box::pin(self.web.reloaded()))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
