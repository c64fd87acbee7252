//! `GET /probe`: one ad-hoc probe, answered with that probe's metrics only.
//!
//! The request is admitted by `probe_gate` (allow list, rate per client, requests in
//! flight), then waits for a slot of the scheduler's concurrency limit and probes, all
//! within one deadline: the scrape timeout Prometheus sends, minus a margin for the
//! answer, or the module's `timeout` when it sends none. No slot in time is a 503, so
//! the client gets an answer before it gives up, never after.
//!
//! `target=host:port` probes one endpoint; `mx=DOMAIN` (with `port=`, 25 by default)
//! or `srv=_service._proto.domain` every host DNS names. With `probe.allow` set, the
//! probe's plan is checked before any connection: every host discovered and every
//! address a name resolved to must be allowed (a glob matching the host, or a CIDR
//! range holding the address), or the request is refused with 403.
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
use crate::config::reach::{ReachValueError, DEFAULT_MX_PORT};
use crate::config::{ProbeLimits, Reach, TlsName};
use crate::metrics::{collector, CONTENT_TYPE};
use crate::probe::connect::Dest;
use crate::probe::discover::Plan;
use crate::probe::transcript;
use crate::probe_gate::ProbeGate;

/// The most refused destinations named in a 403.
const REFUSALS_SHOWN: usize = 8;

/// The destinations of `plan` that `probe.allow` does not allow, as `host:port (ip)`.
fn refused(limits: &ProbeLimits, plan: &Plan) -> Vec<String> {
    let Ok(hosts) = &plan.hosts else {
        return Vec::new();
    };
    let mut refused = Vec::new();
    for host in hosts {
        let Ok(dests) = &host.dests else { continue };
        for dest in dests {
            let ip = match dest {
                Dest::Ip(ip) => Some(*ip),
                Dest::Name(_) => None,
            };
            if !ProbeGate::allowed_at(limits, &host.name, host.port, ip) {
                let at = match (&host.name, ip) {
                    (crate::config::Host::Name(name), Some(ip)) => {
                        format!("{name}:{} ({ip})", host.port)
                    }
                    (name, _) => match name {
                        crate::config::Host::Ip(std::net::IpAddr::V6(v6)) => {
                            format!("[{v6}]:{}", host.port)
                        }
                        other => format!("{other}:{}", host.port),
                    },
                };
                refused.push(at);
            }
        }
    }
    if refused.len() > REFUSALS_SHOWN {
        let more = refused.len() - REFUSALS_SHOWN;
        refused.truncate(REFUSALS_SHOWN);
        refused.push(format!("{more} more"));
    }
    refused
}

/// The query of `GET /probe`.
#[derive(Debug, Deserialize)]
pub(super) struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    server_name: Option<String>,
    mx: Option<String>,
    srv: Option<String>,
    port: Option<String>,
    /// `true`: answer with the probe's transcript, then its metrics, as text.
    debug: Option<String>,
}

impl ProbeQuery {
    /// What the query asks to probe, or what is wrong with it.
    fn reach(&self) -> Result<Reach, String> {
        let given: Vec<(&str, &str)> = [
            ("target", &self.target),
            ("mx", &self.mx),
            ("srv", &self.srv),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_deref().filter(|v| !v.is_empty()).map(|v| (key, v)))
        .collect();
        let reach = match given.as_slice() {
            [] => return Err("the `target` parameter is missing: use /probe?target=host:port[&module=NAME], /probe?mx=DOMAIN[&port=N] or /probe?srv=_service._proto.domain".into()),
            [("target", text)] => Reach::Address(text.parse().map_err(|e: crate::config::ValueError| e.to_string())?),
            [("mx", text)] => {
                let port = match self.port.as_deref() {
                    None | Some("") => DEFAULT_MX_PORT,
                    Some(p) => p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| format!("invalid port {p:?}: use a number from 1 to 65535"))?,
                };
                Reach::Mx {
                    domain: text.parse().map_err(|e: ReachValueError| e.to_string())?,
                    port,
                }
            }
            [("srv", text)] => Reach::Srv(text.parse().map_err(|e: ReachValueError| e.to_string())?),
            _ => {
                let keys: Vec<&str> = given.iter().map(|(k, _)| *k).collect();
                return Err(format!("give one of target, mx and srv, not {}", keys.join(" and ")));
            }
        };
        if self.port.as_deref().is_some_and(|p| !p.is_empty()) && !matches!(reach, Reach::Mx { .. })
        {
            return Err("`port` goes with `mx` only: a target carries its port (host:port), SRV records carry theirs".into());
        }
        Ok(reach)
    }

    /// What was asked, for the audit log.
    fn asked(&self) -> &str {
        [&self.target, &self.mx, &self.srv]
            .into_iter()
            .find_map(|v| v.as_deref().filter(|v| !v.is_empty()))
            .unwrap_or("")
    }
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
    let asked = query.asked().to_owned();
    let asked = asked.as_str();
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
    let reach = match query.reach() {
        Ok(reach) => reach,
        Err(message) => return bad(message),
    };
    let target = asked;
    let server_name = match query
        .server_name
        .as_deref()
        .map(|n| n.parse::<TlsName>())
        .transpose()
    {
        Ok(n) => n,
        Err(e) => return bad(e.to_string()),
    };
    if let Reach::Address(address) = &reach {
        if !ProbeGate::may_allow(limits, address) {
            audit::probe_refused(client, target, "not_allowed", 403, 0);
            return (
                StatusCode::FORBIDDEN,
                format!("{address} is not allowed by probe.allow\n"),
            )
                .into_response();
        }
    }
    let mut spec = match config.adhoc_reach(reach, query.module.as_deref(), server_name) {
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
        audit::probe_refused(client, target, "too_many_in_flight", 503, 0);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many /probe requests in flight (probe.max_in_flight: {}); retry later\n",
                limits.max_in_flight
            ),
        )
            .into_response();
    };
    let limits = limits.clone();
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
        audit::probe_refused(client, target, "no_probe_slot", 503, 0);
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
    let deadline = Instant::now() + spec.timeout;
    // The plan is checked against probe.allow before any connection is made.
    let probe = async {
        let plan = crate::probe::discover::plan(&spec, deadline).await;
        let refused = refused(&limits, &plan);
        if !refused.is_empty() {
            return Err(refused);
        }
        Ok(crate::probe::execute(&spec, plan, deadline).await)
    };
    let probe = async {
        if debug {
            let (outcome, transcript) = transcript::recorded(probe).await;
            outcome.map(|outcome| (outcome, Some(transcript)))
        } else {
            probe.await.map(|outcome| (outcome, None))
        }
    };
    let probed = tokio::select! {
        probed = probe => probed,
        () = state.shutdown.cancelled() => {
            return (StatusCode::SERVICE_UNAVAILABLE, "certwatch is shutting down\n").into_response();
        }
    };
    let (outcome, transcript) = match probed {
        Ok(probed) => probed,
        Err(refused) => {
            audit::probe_refused(client, target, "not_allowed", 403, 0);
            return (
                StatusCode::FORBIDDEN,
                format!(
                    "probe.allow does not allow connecting to {}\n",
                    refused.join(", ")
                ),
            )
                .into_response();
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
