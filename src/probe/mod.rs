//! One probe of one target: resolve → connect → STARTTLS → TLS handshake → chain.
//!
//! [`run`] orders the stages and bounds the whole probe by the target's `timeout`; each
//! stage lives in its own module and every await is bounded by the probe's deadline
//! through [`with_deadline`]. The result is a [`ProbeOutcome`] value: storing it,
//! logging it and turning it into metrics are left to the callers.
//!
//! When the modern handshake fails on the version or finds nothing in common (or the
//! server drops the connection before any certificate), and `legacy` is on, a fresh
//! connection (STARTTLS again) carries the legacy second hello ([`legacy`]), which
//! reads the chain from the cleartext Certificate message of TLS 1.0-1.2; when the full
//! legacy hello meets an alert or a closed connection, one more connection tries the
//! cautious one. The probe then still reports the modern failure, with the chain, its
//! verdict and what the server chose. [`hygiene`] judges the chain and its keys.

pub mod connect;
pub mod hygiene;
pub mod legacy;
pub mod line_io;
pub mod outcome;
pub mod resolve;
pub mod starttls;
pub mod tls;
pub mod transcript;
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
    transcript::resolved(&resolved, resolve_took);
    let addresses = match resolved {
        Err(failure) => vec![unresolved(failure, resolve_took)],
        Ok(ips) => {
            let probes = ips.into_iter().map(|ip| {
                transcript::for_address(ip, probe_address(spec, &setup, ip, deadline, resolve_took))
            });
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
        legacy: None,
        chain_cut: None,
        chain_issues: Vec::new(),
        weaknesses: Vec::new(),
        revocation: None,
    }
}

/// A connection to `ip`, upgraded with STARTTLS when the target uses it, each step
/// timed into `phases`.
async fn open(
    spec: &TargetSpec,
    ip: IpAddr,
    deadline: Instant,
    phases: &mut PhaseTimes,
) -> Result<tokio::net::TcpStream, Failure> {
    let stream = timed(phases, Phase::Connect, {
        let addr = SocketAddr::new(ip, spec.address.port);
        transcript::connect(addr, connect::connect(addr, deadline))
    })
    .await?;
    if spec.starttls == crate::config::StartTls::None {
        return Ok(stream);
    }
    timed(
        phases,
        Phase::StartTls,
        starttls::upgrade(spec.starttls, stream, deadline, starttls_context(spec)),
    )
    .await
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

/// The legacy second hello over fresh connections: the full hello, then the cautious
/// one when the full one met an alert or a closed connection.
async fn legacy_capture(
    spec: &TargetSpec,
    ip: IpAddr,
    deadline: Instant,
) -> Result<legacy::LegacyCapture, String> {
    let name = spec.sni.then(|| spec.server_name.server_name().clone());
    let hello = legacy::LegacyHello::new(name, legacy_key_type(spec.key_type));
    transcript::note(transcript::Topic::Tls, || {
        "the modern handshake cannot reach the server: a new connection for the legacy hello (TLS 1.0-1.2, every suite)".to_owned()
    });
    let mut ignored = PhaseTimes::default();
    let full = match open(spec, ip, deadline, &mut ignored).await {
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
    let cautious = match open(spec, ip, deadline, &mut ignored).await {
        Ok(stream) => legacy::capture(stream, &hello.cautious(), deadline).await,
        Err(failure) => {
            return Err(format!(
                "the legacy hello: {full_error}; the cautious one could not connect: {failure}"
            ))
        }
    };
    cautious.map_err(|e| format!("the legacy hello: {full_error}; the cautious one: {e}"))
}

/// Connects to one address and runs STARTTLS and the handshake over it, and the
/// legacy second hello when the modern handshake cannot reach the server.
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
    let mut cut = None;
    let mut calls_for_legacy = false;
    let mut staple = None;
    let handshake = async {
        let stream = open(spec, ip, deadline, &mut phases).await?;
        let shake = timed(
            &mut phases,
            Phase::Handshake,
            tls::handshake(
                stream,
                setup,
                spec.server_name.server_name(),
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
        match legacy_capture(spec, ip, deadline).await {
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
            spec.server_name.server_name(),
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
        ip: Some(ip),
        finished_at: SystemTime::now(),
        duration: resolve_took + started.elapsed(),
        phases,
        handshake,
        chain,
        verdict,
        legacy: legacy_params,
        chain_cut,
        chain_issues,
        weaknesses,
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
