//! One probe of one target: resolve → connect → STARTTLS → TLS handshake → chain.
//!
//! [`run`] orders the stages and bounds the whole probe by the target's `timeout`; each
//! stage lives in its own module and every await is bounded by the probe's deadline
//! through [`with_deadline`]. The result is a [`ProbeOutcome`] value: storing it,
//! logging it and turning it into metrics are left to the callers.

pub mod connect;
pub mod legacy;
pub mod line_io;
pub mod outcome;
pub mod resolve;
pub mod starttls;
pub mod tls;
pub mod verify;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::UnixTime;
use tokio::time::Instant;

use crate::cert::ParsedCert;
use crate::config::TargetSpec;
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

/// Probes every address of `spec` once.
pub async fn run(spec: &TargetSpec) -> ProbeOutcome {
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let setup = tls::setup_for(&spec.tls);
    let resolved =
        resolve::resolve(&spec.address.host, spec.ip_family, spec.resolve, deadline).await;
    let resolve_took = started.elapsed();
    let addresses = match resolved {
        Err(failure) => vec![unresolved(failure, resolve_took)],
        Ok(ips) => {
            let probes = ips
                .into_iter()
                .map(|ip| probe_address(spec, &setup, ip, deadline, resolve_took));
            futures_util::future::join_all(probes).await
        }
    };
    ProbeOutcome { addresses }
}

fn unresolved(failure: Failure, took: Duration) -> AddressOutcome {
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
        revocation: None,
    }
}

/// Connects to one address and runs STARTTLS and the handshake over it.
async fn probe_address(
    spec: &TargetSpec,
    setup: &tls::TlsSetup,
    ip: IpAddr,
    deadline: Instant,
    resolve_took: Duration,
) -> AddressOutcome {
    let started = Instant::now();
    let mut phases = PhaseTimes::default();
    phases.set(Phase::Resolve, resolve_took);
    let mut chain_der = Vec::new();
    let mut staple = None;
    let handshake = async {
        let stream = timed(
            &mut phases,
            Phase::Connect,
            connect::connect(SocketAddr::new(ip, spec.address.port), deadline),
        )
        .await?;
        let stream = if spec.starttls == crate::config::StartTls::None {
            stream
        } else {
            timed(
                &mut phases,
                Phase::StartTls,
                starttls::upgrade(spec.starttls, stream, deadline, starttls_context(spec)),
            )
            .await?
        };
        let shake = timed(
            &mut phases,
            Phase::Handshake,
            tls::handshake(stream, setup, spec.server_name.server_name(), deadline),
        )
        .await;
        chain_der = shake.chain;
        staple = shake.ocsp_response;
        shake.result
    }
    .await;
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
            spec.server_name.server_name(),
            &setup.trust,
            UnixTime::now(),
        );
        (Some(verdict), links)
    };
    let mut verdict = verdict;
    let revocation = if spec.revocation.enabled() && !chain_der.is_empty() {
        let revocation = crate::revocation::check(
            &spec.revocation,
            &links,
            staple.as_deref(),
            deadline,
            SystemTime::now(),
        )
        .await;
        if let Some(failed) = revoked_verdict(&revocation, &chain) {
            verdict = Some(failed);
        }
        Some(revocation)
    } else {
        None
    };
    AddressOutcome {
        ip: Some(ip),
        finished_at: SystemTime::now(),
        duration: resolve_took + started.elapsed(),
        phases,
        handshake,
        chain,
        verdict,
        revocation,
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

fn starttls_context(spec: &TargetSpec) -> starttls::Context<'_> {
    starttls::Context {
        server_name: spec.server_name.as_str(),
        xmpp_domain: spec.xmpp_domain.as_deref(),
    }
}

/// Runs `future`, recording how long it took as `phase`.
async fn timed<F: Future>(phases: &mut PhaseTimes, phase: Phase, future: F) -> F::Output {
    let started = Instant::now();
    let output = future.await;
    phases.set(phase, started.elapsed());
    output
}
