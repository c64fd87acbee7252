//! The HTTP endpoints: `/metrics`, `/probe`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`.
//!
//! [`router`] builds them over [`HttpState`]. `/metrics` renders from the store in a
//! blocking task and never waits on a probe; `/probe` runs `probe::run` under the shared
//! concurrency limit. Reloads are sent to the app, which owns the configuration.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::{Address, Config, TlsName};
use crate::metrics::{collector, ExporterMetrics, CONTENT_TYPE};
use crate::status;
use crate::store::Store;

/// A reload request and where to send its result.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

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
    /// The cap on concurrent `/probe` requests.
    pub probe_slots: Arc<Semaphore>,
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

async fn metrics(State(state): State<HttpState>) -> Response {
    let rendered = tokio::task::spawn_blocking(move || {
        let entries = state.store.snapshot();
        let mut out = String::with_capacity(entries.len() * 4096 + 2048);
        state.exporter.render(&mut out);
        collector::render(&entries, SystemTime::now(), &mut out);
        out
    })
    .await;
    match rendered {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering metrics failed: {e}\n"),
        )
            .into_response(),
    }
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
    headers: HeaderMap,
    Query(query): Query<ProbeQuery>,
) -> Response {
    let bad = |message: String| (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
    let Some(target) = query.target.filter(|t| !t.is_empty()) else {
        return bad(
            "the `target` parameter is missing: use /probe?target=host:port[&module=NAME]".into(),
        );
    };
    let address: Address = match target.parse() {
        Ok(a) => a,
        Err(e) => return bad(e),
    };
    let server_name = match query.server_name.map(|n| n.parse::<TlsName>()).transpose() {
        Ok(n) => n,
        Err(e) => return bad(e),
    };
    let config = state.config();
    if let Some(allow) = &config.probe_limits.allow {
        if !allow.iter().any(|rule| rule.permits(&address)) {
            tracing::warn!(target = %address, "refused /probe of a target outside probe.allow");
            return (
                StatusCode::FORBIDDEN,
                format!("{address} is not allowed by probe.allow\n"),
            )
                .into_response();
        }
    }
    let mut spec = match config.adhoc_target(address, query.module.as_deref(), server_name) {
        Ok(spec) => spec,
        Err(e) => return bad(e),
    };
    if let Some(limit) = scrape_timeout(&headers) {
        spec.timeout = spec.timeout.min(
            limit
                .saturating_sub(SCRAPE_TIMEOUT_MARGIN)
                .max(Duration::from_millis(100)),
        );
    }
    let Ok(_slot) = state.probe_slots.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many /probe requests in flight; retry later\n",
        )
            .into_response();
    };
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

async fn reload(State(state): State<HttpState>) -> Response {
    let (reply, answer) = oneshot::channel();
    if state.reload.send(reply).await.is_err() {
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
