//! One probe of one target: discover and resolve → connect (directly or through a
//! proxy) → STARTTLS → TLS handshake → chain.
//!
//! [`run`] orders the stages and bounds the whole probe by the target's `timeout`; each
//! stage lives in its own module ([`discover`] with [`dns`] and [`resolve`] plans the
//! hosts and addresses, [`connect`] and [`proxy`] open the connections) and every await
//! is bounded by the probe's deadline through [`with_deadline`]. [`run`] is
//! [`discover::plan`] then [`execute`], so that a caller (`GET /probe`) may check the
//! plan before any connection is made. The result is a [`ProbeOutcome`] value:
//! storing it, logging it and turning it into metrics are left to the callers.

pub mod connect;
pub mod discover;
pub mod dns;
pub mod legacy;
pub mod line_io;
pub mod outcome;
pub mod proxy;
pub mod resolve;
pub mod starttls;
pub mod tls;
pub mod verify;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::UnixTime;
use tokio::time::Instant;

use crate::cert::ParsedCert;
use crate::config::TargetSpec;
use connect::{Connection, Dest};
use discover::{HostPlan, Plan};
use outcome::{AddressOutcome, Failure, FailureKind, Phase, PhaseTimes, ProbeOutcome};

/// Awaits `future` until `deadline`; past it, the probe fails with a timeout in `phase`.
pub async fn with_deadline<F: Future>(
    phase: Phase,
    deadline: Instant,
    future: F,
) -> Result<F::Output, Failure> {
    tokio::time::timeout_at(deadline, future)
        .await
        .map_err(|_| {
            Failure::new(
                FailureKind::timeout_in(phase),
                format!("no answer before the probe timeout, during {phase}"),
            )
        })
}

/// The most connections one probe has open at once (a discovered target may have
/// 16 hosts of 16 addresses each).
pub const MAX_PARALLEL: usize = 16;

/// Probes every address of `spec` once.
pub async fn run(spec: &TargetSpec) -> ProbeOutcome {
    let deadline = Instant::now() + spec.timeout;
    let plan = discover::plan(spec, deadline).await;
    execute(spec, plan, deadline).await
}

/// Connects to every destination of `plan` (at most [`MAX_PARALLEL`] at once) and
/// runs STARTTLS and the handshake over each, all by `deadline`.
pub async fn execute(spec: &TargetSpec, plan: Plan, deadline: Instant) -> ProbeOutcome {
    use futures_util::stream::{self, StreamExt};

    let setup = tls::setup_for(&spec.tls);
    let hosts = match plan.hosts {
        Err(failure) => {
            return ProbeOutcome {
                addresses: vec![unresolved(None, failure, plan.took)],
                cut: plan.cut,
            }
        }
        Ok(hosts) => hosts,
    };
    let dns = if spec.dns.servers.is_empty() {
        None
    } else {
        dns::Dns::new(&spec.dns).ok()
    };
    let names = match &dns {
        Some(dns) => resolve::Names::Dns(dns),
        None => resolve::Names::System {
            timeout: spec.dns.timeout,
        },
    };
    let mut jobs: Vec<(&HostPlan, Option<&Dest>)> = Vec::new();
    for host in &hosts {
        match &host.dests {
            Err(_) => jobs.push((host, None)),
            Ok(dests) => jobs.extend(dests.iter().map(|dest| (host, Some(dest)))),
        }
    }
    let setup = &setup;
    let probes: Vec<_> = jobs
        .into_iter()
        .map(|(host, dest)| one(spec, setup, host, dest, names, deadline))
        .collect();
    let addresses = stream::iter(probes).buffered(MAX_PARALLEL).collect().await;
    ProbeOutcome {
        addresses,
        cut: plan.cut,
    }
}

/// The outcome of one destination of `host`, or of `host` itself when it did not
/// resolve.
async fn one(
    spec: &TargetSpec,
    setup: &tls::TlsSetup,
    host: &HostPlan,
    dest: Option<&Dest>,
    names: resolve::Names<'_>,
    deadline: Instant,
) -> AddressOutcome {
    match (dest, &host.dests) {
        (Some(dest), _) => probe_address(spec, setup, host, dest, names, deadline).await,
        (None, Err(failure)) => unresolved(host.host.clone(), failure.clone(), host.took),
        (None, Ok(_)) => unreachable!("a host with addresses has a destination each"),
    }
}

fn unresolved(
    host: Option<Arc<outcome::DiscoveredHost>>,
    failure: Failure,
    took: Duration,
) -> AddressOutcome {
    let mut phases = PhaseTimes::default();
    phases.set(Phase::Resolve, took);
    AddressOutcome {
        ip: None,
        finished_at: SystemTime::now(),
        duration: took,
        phases,
        handshake: Err(failure),
        chain: Vec::new(),
        verdict: None,
        host,
    }
}

/// Connects to one destination of a host and runs STARTTLS and the handshake over it.
async fn probe_address(
    spec: &TargetSpec,
    setup: &tls::TlsSetup,
    host: &HostPlan,
    dest: &Dest,
    names: resolve::Names<'_>,
    deadline: Instant,
) -> AddressOutcome {
    let started = Instant::now();
    let mut phases = PhaseTimes::default();
    phases.set(Phase::Resolve, host.took);
    let mut chain_der = Vec::new();
    let server_name = host.server_name.server_name();
    let handshake = async {
        let stream = timed(
            &mut phases,
            Phase::Connect,
            open(spec, names, dest, host.port, deadline),
        )
        .await?;
        let stream = if spec.starttls == crate::config::StartTls::None {
            stream
        } else {
            let context = starttls::Context {
                server_name: host.server_name.as_str(),
                xmpp_domain: spec.xmpp_domain.as_deref(),
            };
            timed(
                &mut phases,
                Phase::StartTls,
                starttls::upgrade(spec.starttls, stream, deadline, context),
            )
            .await?
        };
        let shake = timed(
            &mut phases,
            Phase::Handshake,
            tls::handshake(stream, setup, server_name, deadline),
        )
        .await;
        chain_der = shake.chain;
        shake.result
    }
    .await;
    let chain: Vec<Arc<ParsedCert>> = chain_der
        .iter()
        .map(|der| ParsedCert::shared(der))
        .collect();
    let verdict = (!chain_der.is_empty()).then(|| {
        verify::verify_chain(
            &chain_der,
            &chain,
            server_name,
            &setup.trust,
            UnixTime::now(),
        )
    });
    AddressOutcome {
        ip: match dest {
            Dest::Ip(ip) => Some(*ip),
            Dest::Name(_) => None,
        },
        finished_at: SystemTime::now(),
        duration: host.took + started.elapsed(),
        phases,
        handshake,
        chain,
        verdict,
        host: host.host.clone(),
    }
}

/// A connection to `dest`:`port`, direct or through the target's proxy.
async fn open(
    spec: &TargetSpec,
    names: resolve::Names<'_>,
    dest: &Dest,
    port: u16,
    deadline: Instant,
) -> Result<Connection, Failure> {
    match (&spec.proxy, dest) {
        (Some(proxy), dest) => proxy::through(proxy, names, dest, port, deadline).await,
        (None, Dest::Ip(ip)) => connect::connect(SocketAddr::new(*ip, port), deadline)
            .await
            .map(Connection::direct),
        // Only a plan for a socks5h proxy holds names; without one, say so rather
        // than resolve behind the plan's back.
        (None, Dest::Name(name)) => Err(Failure::new(
            FailureKind::Resolve(outcome::ResolveReason::Error),
            format!("{name} was left for a proxy to resolve, and the target has none"),
        )),
    }
}

/// Runs `future`, recording how long it took as `phase`.
async fn timed<F: Future>(phases: &mut PhaseTimes, phase: Phase, future: F) -> F::Output {
    let started = Instant::now();
    let output = future.await;
    phases.set(phase, started.elapsed());
    output
}
