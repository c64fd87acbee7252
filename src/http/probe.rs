//! `GET /probe`: one ad-hoc probe, answered with that probe's metrics only.
//!
//! The request is admitted by `probe_gate` (allow list, rate per client, requests in
//! flight), then waits for a slot of the scheduler's concurrency limit and probes, all
//! within one deadline: the scrape timeout Prometheus sends, minus a margin for the
//! answer, or the module's `timeout` when it sends none. No slot in time is a 503, so
//! the client gets an answer before it gives up, never after.
//!
//! With `debug=true` the answer is text, as blackbox_exporter's: the probe's
//! transcript (`probe::transcript`: every address, connect, line of the STARTTLS
//! dialogue, the handshake, the certificates and the verdict), then the metrics.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::time::Instant;

use super::{scrape_timeout, HttpState};
use crate::audit;
use crate::config::{Address, TlsName};
use crate::metrics::{collector, CONTENT_TYPE};
use crate::probe::transcript;
use crate::probe_gate::ProbeGate;

/// The query of `GET /probe`.
#[derive(Debug, Deserialize)]
pub(super) struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    server_name: Option<String>,
    /// `true`: answer with the probe's transcript, then its metrics, as text.
    debug: Option<String>,
}

/// Time kept back from the scrape timeout to write the answer.
pub const SCRAPE_TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// The least time a probe is given, however short the scrape timeout.
pub const MIN_PROBE_TIME: Duration = Duration::from_millis(100);

pub(super) async fn probe(
    State(state): State<HttpState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<ProbeQuery>,
) -> Response {
    let started = Instant::now();
    let config = state.config();
    let limits = &config.probe_limits;
    let asked = query.target.as_deref().unwrap_or("");
    if let Err(limited) = state
        .probe_gate
        .rate(client.ip(), limits.rate_per_second, started)
    {
        if let Some(suppressed) = limited.log {
            audit::probe_refused(client, asked, "rate_limited", 429, suppressed);
        }
        let seconds = limited.retry_after_seconds();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds.to_string())],
            format!("too many /probe requests from {}: probe.rate_limit allows {}/s; retry in {seconds}s\n", client.ip(), limits.rate_per_second.unwrap_or_default()),
        )
            .into_response();
    }
    let bad = |message: String| (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
    let debug = match query.debug.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return bad(format!(
                "debug={:?} is neither true nor false",
                crate::audit::clean(other)
            ))
        }
    };
    let Some(target) = query.target.filter(|t| !t.is_empty()) else {
        return bad(
            "the `target` parameter is missing: use /probe?target=host:port[&module=NAME]".into(),
        );
    };
    let address: Address = match target.parse() {
        Ok(a) => a,
        Err(e) => return bad(e.to_string()),
    };
    let server_name = match query.server_name.map(|n| n.parse::<TlsName>()).transpose() {
        Ok(n) => n,
        Err(e) => return bad(e.to_string()),
    };
    if !ProbeGate::allowed(limits, &address) {
        audit::probe_refused(client, &target, "not_allowed", 403, 0);
        return (
            StatusCode::FORBIDDEN,
            format!("{address} is not allowed by probe.allow\n"),
        )
            .into_response();
    }
    let mut spec = match config.adhoc_target(address, query.module.as_deref(), server_name) {
        Ok(spec) => spec,
        Err(e) => return bad(e.to_string()),
    };
    let budget = match scrape_timeout(&headers) {
        Some(limit) => spec.timeout.min(
            limit
                .saturating_sub(SCRAPE_TIMEOUT_MARGIN)
                .max(MIN_PROBE_TIME),
        ),
        None => spec.timeout,
    };
    let deadline = started + budget;
    let Some(_in_flight) = state.probe_gate.enter(limits.max_in_flight) else {
        audit::probe_refused(client, &target, "too_many_in_flight", 503, 0);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many /probe requests in flight (probe.max_in_flight: {}); retry later\n",
                limits.max_in_flight
            ),
        )
            .into_response();
    };
    drop(config);
    let slot = tokio::select! {
        slot = state.limit.acquire_until(deadline) => slot,
        () = state.shutdown.cancelled() => None,
    };
    let Some(_slot) = slot else {
        if state.shutdown.is_cancelled() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "certwatch is shutting down\n",
            )
                .into_response();
        }
        audit::probe_refused(client, &target, "no_probe_slot", 503, 0);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            format!(
                "no free probe slot within {:.1}s: all {} (`concurrency`) are busy; retry later or raise concurrency\n",
                budget.as_secs_f64(),
                state.limit.size()
            ),
        )
            .into_response();
    };
    // What is left of the deadline bounds the probe itself.
    spec.timeout = deadline
        .saturating_duration_since(Instant::now())
        .max(MIN_PROBE_TIME);
    let probe = async {
        if debug {
            let (outcome, transcript) = transcript::recorded(crate::probe::run(&spec)).await;
            (outcome, Some(transcript))
        } else {
            (crate::probe::run(&spec).await, None)
        }
    };
    let (outcome, transcript) = tokio::select! {
        done = probe => done,
        () = state.shutdown.cancelled() => {
            return (StatusCode::SERVICE_UNAVAILABLE, "certwatch is shutting down\n").into_response();
        }
    };
    let now = SystemTime::now();
    let metrics = collector::render_outcome(&spec, &outcome, now);
    match transcript {
        None => ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics).into_response(),
        Some(transcript) => {
            // As blackbox_exporter's `debug=true`: the probe's log, then the metrics.
            let body = format!(
                "{}\n\nMetrics that would have been returned:\n{metrics}",
                transcript.render(&spec, &outcome, now)
            );
            ([(header::CONTENT_TYPE, DEBUG_CONTENT_TYPE)], body).into_response()
        }
    }
}

/// The content type of a `debug=true` answer.
pub const DEBUG_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
