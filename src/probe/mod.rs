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
//!
//! When the modern handshake fails on the version or finds nothing in common (or the
//! server drops the connection before any certificate), and `legacy` is on, a fresh
//! connection (through the proxy when there is one, STARTTLS again) carries the legacy
//! second hello ([`legacy`]), which reads the chain from the cleartext Certificate
//! message of TLS 1.0-1.2; when the full legacy hello meets an alert or a closed
//! connection, one more connection tries the cautious one. The probe then still
//! reports the modern failure, with the chain, its verdict and what the server chose.
//! [`hygiene`] judges the chain and its keys. [`transcript`] records each step when a
//! person asked for it (`/probe?debug=true`, `check --verbose`).

pub mod connect;
pub mod discover;
pub mod dns;
pub mod hygiene;
pub mod legacy;
pub mod line_io;
pub mod outcome;
pub mod proxy;
pub mod resolve;
pub mod starttls;
pub mod tls;
pub mod transcript;
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

    note_plan(spec, &plan);
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

/// Notes `plan` in the transcript, when one is being recorded: the MX or SRV answer,
/// each host's addresses (or the name left to a `socks5h` proxy), what the caps left
/// out.
fn note_plan(spec: &TargetSpec, plan: &Plan) {
    use transcript::{note, Topic};

    if !transcript::is_recording() {
        return;
    }
    let millis = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
    let hosts = match &plan.hosts {
        Err(failure) => {
            note(Topic::Resolve, || match &spec.discover {
                Some(discover) => format!(
                    "the {} lookup of {} failed in {}: {failure}",
                    discover.record(),
                    discover.name(),
                    millis(plan.took)
                ),
                None => format!("failed in {}: {failure}", millis(plan.took)),
            });
            return;
        }
        Ok(hosts) => hosts,
    };
    if let Some(discover) = &spec.discover {
        note(Topic::Resolve, || {
            let named: Vec<&str> = hosts
                .iter()
                .filter_map(|h| h.host.as_ref().map(|h| h.label.as_str()))
                .collect();
            format!(
                "the {} records of {} name {} host(s) in {}: {}",
                discover.record(),
                discover.name(),
                plan.cut.hosts_named.unwrap_or(named.len()),
                millis(plan.took),
                if named.is_empty() {
                    "none".to_owned()
                } else {
                    named.join(", ")
                }
            )
        });
        if !plan.cut.hosts_left_out.is_empty() {
            note(Topic::Resolve, || {
                format!(
                    "{} host(s) left out (at most {} are probed), among them {}",
                    plan.cut
                        .hosts_named
                        .unwrap_or_default()
                        .saturating_sub(discover::MAX_HOSTS),
                    discover::MAX_HOSTS,
                    plan.cut.hosts_left_out.join(", ")
                )
            });
        }
    }
    for host in hosts {
        note(Topic::Resolve, || {
            let who = match &host.host {
                Some(discovered) => format!("{}: ", discovered.label),
                None => String::new(),
            };
            let took = millis(host.took);
            match &host.dests {
                Err(failure) => format!("{who}failed in {took}: {failure}"),
                Ok(dests) => {
                    let shown: Vec<String> = dests
                        .iter()
                        .map(|dest| match dest {
                            Dest::Ip(ip) => ip.to_string(),
                            Dest::Name(name) => format!("{name}, left for the proxy to resolve"),
                        })
                        .collect();
                    format!("{who}{} in {took}", shown.join(", "))
                }
            }
        });
    }
    for (host, name, left_out) in &plan.cut.addresses {
        note(Topic::Resolve, || {
            let who = host.as_ref().map_or(name.as_str(), |h| h.label.as_str());
            format!(
                "{who}: {left_out} more address(es) left out (at most {} are probed)",
                resolve::MAX_ADDRESSES
            )
        });
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
        (Some(dest), _) => {
            let place = transcript::Place {
                host: host.host.as_ref().map(|h| h.label.clone()),
                dest: dest.clone(),
            };
            let probe = probe_address(spec, setup, host, dest, names, deadline);
            transcript::for_address(place, probe).await
        }
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
        legacy: None,
        chain_cut: None,
        chain_issues: Vec::new(),
        weaknesses: Vec::new(),
        revocation: None,
        host,
    }
}

/// Where the connections of one destination go: the target, its host, the address
/// (or name) and who resolves the proxy's name.
#[derive(Clone, Copy)]
struct Route<'a> {
    spec: &'a TargetSpec,
    host: &'a HostPlan,
    dest: &'a Dest,
    names: resolve::Names<'a>,
}

impl Route<'_> {
    /// A connection to the destination, direct or through the target's proxy,
    /// upgraded with STARTTLS when the target uses it, each step timed into `phases`.
    async fn open(self, deadline: Instant, phases: &mut PhaseTimes) -> Result<Connection, Failure> {
        let stream = timed(phases, Phase::Connect, self.connect(deadline)).await?;
        if self.spec.starttls == crate::config::StartTls::None {
            return Ok(stream);
        }
        let context = starttls::Context {
            server_name: self.host.server_name.as_str(),
            xmpp_domain: self.spec.xmpp_domain.as_deref(),
        };
        timed(
            phases,
            Phase::StartTls,
            starttls::upgrade(self.spec.starttls, stream, deadline, context),
        )
        .await
    }

    /// The connection itself: a TCP connect, or a tunnel through the proxy.
    async fn connect(self, deadline: Instant) -> Result<Connection, Failure> {
        let port = self.host.port;
        match (&self.spec.proxy, self.dest) {
            (Some(proxy), dest) => {
                let to = match dest {
                    Dest::Ip(ip) => SocketAddr::new(*ip, port).to_string(),
                    Dest::Name(name) => format!("{name}:{port}"),
                };
                let tunnel = proxy::through(proxy, self.names, dest, port, deadline);
                transcript::through(&proxy.url.to_string(), &to, tunnel).await
            }
            (None, Dest::Ip(ip)) => {
                let addr = SocketAddr::new(*ip, port);
                transcript::connect(addr, connect::connect(addr, deadline))
                    .await
                    .map(Connection::direct)
            }
            // Only a plan for a socks5h proxy holds names; without one, say so rather
            // than resolve behind the plan's back.
            (None, Dest::Name(name)) => Err(Failure::new(
                FailureKind::Resolve(outcome::ResolveReason::Error),
                format!("{name} was left for a proxy to resolve, and the target has none"),
            )),
        }
    }
}

/// The legacy module's key type for the target's `key_type`.
fn legacy_key_type(key_type: crate::config::KeyType) -> legacy::KeyType {
    match key_type {
        crate::config::KeyType::Any => legacy::KeyType::Any,
        crate::config::KeyType::Rsa => legacy::KeyType::Rsa,
        crate::config::KeyType::Ecdsa => legacy::KeyType::Ecdsa,
    }
}

/// Whether the cautious legacy hello is worth a connection after the full one failed
/// with `error`: the server refused the hello itself (an alert, a close or a reset).
fn calls_for_cautious(error: &legacy::LegacyError) -> bool {
    matches!(
        error,
        legacy::LegacyError::Alert { .. } | legacy::LegacyError::Ended { .. }
    )
}

/// The legacy second hello over fresh connections along `route` (through the proxy
/// when there is one, STARTTLS redone): the full hello, then the cautious one when
/// the full one met an alert or a closed connection.
async fn legacy_capture(
    route: Route<'_>,
    deadline: Instant,
) -> Result<legacy::LegacyCapture, String> {
    let spec = route.spec;
    let name = spec
        .sni
        .then(|| route.host.server_name.server_name().clone());
    let hello = legacy::LegacyHello::new(name, legacy_key_type(spec.key_type));
    transcript::note(transcript::Topic::Tls, || {
        "the modern handshake cannot reach the server: a new connection for the legacy hello (TLS 1.0-1.2, every suite)".to_owned()
    });
    let mut ignored = PhaseTimes::default();
    let full = match route.open(deadline, &mut ignored).await {
        Ok(stream) => legacy::capture(stream, &hello, deadline).await,
        Err(failure) => return Err(format!("the legacy hello could not connect: {failure}")),
    };
    let full_error = match full {
        Ok(capture) => return Ok(capture),
        Err(e) if calls_for_cautious(&e) && Instant::now() < deadline => e,
        Err(e) => return Err(format!("the legacy hello: {e}")),
    };
    transcript::note(transcript::Topic::Tls, || {
        format!("the legacy hello: {full_error}; one more connection for the cautious hello")
    });
    let cautious = match route.open(deadline, &mut ignored).await {
        Ok(stream) => legacy::capture(stream, &hello.cautious(), deadline).await,
        Err(failure) => {
            return Err(format!(
                "the legacy hello: {full_error}; the cautious one could not connect: {failure}"
            ))
        }
    };
    cautious.map_err(|e| format!("the legacy hello: {full_error}; the cautious one: {e}"))
}

/// Connects to one destination of a host and runs STARTTLS and the handshake over it,
/// and the legacy second hello when the modern handshake cannot reach the server.
async fn probe_address(
    spec: &TargetSpec,
    setup: &tls::TlsSetup,
    host: &HostPlan,
    dest: &Dest,
    names: resolve::Names<'_>,
    deadline: Instant,
) -> AddressOutcome {
    let started = Instant::now();
    let route = Route {
        spec,
        host,
        dest,
        names,
    };
    let mut phases = PhaseTimes::default();
    phases.set(Phase::Resolve, host.took);
    let mut chain_der = Vec::new();
    let mut cut = None;
    let mut calls_for_legacy = false;
    let mut staple = None;
    let server_name = host.server_name.server_name();
    let handshake = async {
        let stream = route.open(deadline, &mut phases).await?;
        let shake = timed(
            &mut phases,
            Phase::Handshake,
            tls::handshake(
                stream,
                setup,
                server_name,
                legacy_key_type(spec.key_type),
                spec.sni,
                deadline,
            ),
        )
        .await;
        chain_der = shake.chain;
        cut = shake.cut;
        calls_for_legacy = shake.calls_for_legacy;
        staple = shake.ocsp_response;
        shake.result
    }
    .await;
    let mut handshake = handshake;
    let mut legacy_params = None;
    if calls_for_legacy && spec.legacy == crate::config::Legacy::On {
        let legacy_started = Instant::now();
        match legacy_capture(route, deadline).await {
            Ok(capture) => {
                legacy_params = Some(capture.tls_params());
                cut = capture.truncated;
                chain_der = capture.chain;
            }
            Err(why) => {
                if let Err(failure) = &mut handshake {
                    failure.detail = format!("{}; {why}", failure.detail);
                }
            }
        }
        let before = phases.get(Phase::Handshake).unwrap_or_default();
        phases.set(Phase::Handshake, before + legacy_started.elapsed());
    }
    let chain: Vec<Arc<ParsedCert>> = chain_der
        .iter()
        .map(|der| ParsedCert::shared(der))
        .collect();
    let (verdict, links) = if chain_der.is_empty() {
        (None, Vec::new())
    } else {
        let (verdict, links) = verify::verify_chain_links(
            &chain_der,
            &chain,
            server_name,
            &setup.trust,
            UnixTime::now(),
        );
        (Some(verdict), links)
    };
    // Hygiene judges the chain as presented and the path that verified it, before a
    // revocation turns the verdict into a failure: a revoked chain's issues stay.
    let chain_issues = hygiene::chain_issues(
        &chain_der,
        &chain,
        verdict.as_ref(),
        &setup.trust,
        cut.is_some(),
    );
    let weaknesses = hygiene::weaknesses(&chain);
    let chain_cut = cut.map(|limit| outcome::ChainCut {
        kept: chain.len(),
        detail: limit.to_string(),
    });
    let mut verdict = verdict;
    let revocation = if spec.revocation.enabled() && !chain_der.is_empty() {
        let revocation_started = Instant::now();
        let mut revocation = crate::revocation::check(
            &spec.revocation,
            &links,
            staple.as_deref(),
            deadline,
            SystemTime::now(),
        )
        .await;
        if legacy_params.is_some() {
            // The legacy hello asks for no staple: whether the server staples is unknown.
            revocation.stapled = None;
        }
        if let Some(failed) = revoked_verdict(&revocation, &chain) {
            verdict = Some(failed);
        }
        transcript::note(transcript::Topic::Revocation, || {
            format!(
                "{} check(s) in {:.1}ms",
                revocation.checks.len(),
                revocation_started.elapsed().as_secs_f64() * 1000.0
            )
        });
        Some(revocation)
    } else {
        None
    };
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
        legacy: legacy_params,
        chain_cut,
        chain_issues,
        weaknesses,
        revocation,
        host: host.host.clone(),
    }
}

/// The verdict for a chain with a revoked certificate, naming it and the source.
fn revoked_verdict(
    revocation: &crate::revocation::Revocation,
    chain: &[Arc<ParsedCert>],
) -> Option<outcome::Verdict> {
    let (check, revoked) = revocation.first_revoked()?;
    let who = chain
        .get(check.depth)
        .and_then(|c| c.info.as_ref().ok())
        .map_or_else(String::new, |c| format!(" ({})", c.subject));
    let reason = revoked
        .reason_code
        .map(|code| format!(", reason {}", crate::revocation::reason_name(code)))
        .unwrap_or_default();
    Some(outcome::Verdict::Failed {
        reason: outcome::VerifyReason::Revoked,
        detail: format!(
            "the certificate at depth {}{who} was revoked at {}{reason} (source {})",
            check.depth,
            crate::cert::rfc3339(revoked.at),
            check.source
        ),
    })
}

/// Runs `future`, recording how long it took as `phase`.
async fn timed<F: Future>(phases: &mut PhaseTimes, phase: Phase, future: F) -> F::Output {
    let started = Instant::now();
    let output = future.await;
    phases.set(phase, started.elapsed());
    output
}
