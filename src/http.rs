//! The HTTP endpoints: `/metrics`, `/probe`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`.
//!
//! [`router`] builds them over [`HttpState`]. `/metrics` renders from the store in a
//! blocking task and never waits on a probe; `/probe` runs `probe::run` under the shared
//! concurrency limit, once `probe_gate` has admitted the request (a refusal is an audit
//! event). Reloads are sent to the app, which owns the configuration. Handlers read the
//! client's address from `ConnectInfo<SocketAddr>`, which `web::serve` provides;
//! authentication and TLS are `web`'s.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audit;
use crate::config::{Address, Config, TlsName};
use crate::metrics::{collector, ExporterMetrics, CONTENT_TYPE};
use crate::probe_gate::ProbeGate;
use crate::status;
use crate::store::Store;

/// A reload request from `POST /-/reload`: who asked, and where to send the result.
#[derive(Debug)]
pub struct ReloadRequest {
    /// The client that asked.
    pub from: SocketAddr,
    /// Where the summary (or the problems) go.
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// Latest outcomes.
    pub store: Arc<Store>,
    /// Exporter-wide metrics.
    pub exporter: ExporterMetrics,
    /// The running configuration.
    pub config: Arc<RwLock<Arc<Config>>>,
    /// The probe concurrency limit shared with the scheduler.
    pub permits: Arc<Semaphore>,
    /// The `/probe` limits' state (rate per client, requests in flight).
    pub probe_gate: Arc<ProbeGate>,
    /// Where reload requests go.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Cancelled when certwatch stops: `/probe` requests under way end at once.
    pub shutdown: CancellationToken,
}

impl HttpState {
    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Every endpoint.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/probe", get(probe))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload))
        .with_state(state)
}

/// Bytes of exposition per chunk of the `/metrics` body: the body is streamed as it
/// is rendered, so a scrape of many targets never holds the whole text in memory.
const METRICS_CHUNK: usize = 256 * 1024;

async fn metrics(State(state): State<HttpState>) -> Response {
    let (chunks, receiver) = mpsc::channel::<String>(2);
    // Rendering is CPU work: it runs beside the runtime, not on it.
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let entries = state.store.snapshot();
        let mut out = String::with_capacity(METRICS_CHUNK + METRICS_CHUNK / 4);
        state.exporter.render(&mut out);
        let (mut bytes, mut waited) = (0, Duration::ZERO);
        // A client that went away only makes the sends fail; rendering ends anyway.
        let mut send = |chunk: String| {
            bytes += chunk.len();
            let before = Instant::now();
            let _ = chunks.blocking_send(chunk);
            waited += before.elapsed();
        };
        collector::render_chunked(
            &entries,
            SystemTime::now(),
            &mut out,
            METRICS_CHUNK,
            &mut send,
        );
        send(out);
        tracing::debug!(
            targets = entries.len(),
            bytes,
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            waiting_on_client_ms = waited.as_secs_f64() * 1e3,
            "rendered /metrics"
        );
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

async fn status_page(State(state): State<HttpState>) -> Html<String> {
    Html(status::render(&state.store.snapshot(), SystemTime::now()))
}

/// The query of `GET /probe`.
#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    server_name: Option<String>,
}

/// Prometheus' scrape timeout header.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";
/// Time kept back from the scrape timeout to write the answer.
const SCRAPE_TIMEOUT_MARGIN: Duration = Duration::from_millis(500);

async fn probe(
    State(state): State<HttpState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<ProbeQuery>,
) -> Response {
    let config = state.config();
    let limits = &config.probe_limits;
    let asked = query.target.as_deref().unwrap_or("");
    if let Err(limited) = state.probe_gate.rate(
        client.ip(),
        limits.rate_per_second,
        tokio::time::Instant::now(),
    ) {
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
    if let Some(limit) = scrape_timeout(&headers) {
        spec.timeout = spec.timeout.min(
            limit
                .saturating_sub(SCRAPE_TIMEOUT_MARGIN)
                .max(Duration::from_millis(100)),
        );
    }
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
    let Ok(_permit) = state.permits.clone().acquire_owned().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    };
    let outcome = tokio::select! {
        outcome = crate::probe::run(&spec) => outcome,
        () = state.shutdown.cancelled() => {
            return (StatusCode::SERVICE_UNAVAILABLE, "certwatch is shutting down\n").into_response();
        }
    };
    let body = collector::render_outcome(&spec, &outcome, SystemTime::now());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

fn scrape_timeout(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(SCRAPE_TIMEOUT_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

async fn reload(
    State(state): State<HttpState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
) -> Response {
    let (reply, answer) = oneshot::channel();
    if state
        .reload
        .send(ReloadRequest { from, reply })
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match answer.await {
        Ok(Ok(summary)) => (StatusCode::OK, format!("{summary}\n")).into_response(),
        Ok(Err(problems)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{problems}\n")).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}
