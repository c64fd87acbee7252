//! The HTTP endpoints: `/metrics`, `/probe`, `/`, `/-/healthy`, `/-/ready`, `/-/reload`.
//!
//! [`router`] builds them over [`HttpState`]. `/metrics` ([`scrape`]) renders from the
//! store as the client reads, within a memory budget and a deadline, and never waits on
//! a probe; `/probe` (`http::probe`) runs `probe::run` under the shared concurrency limit,
//! once `probe_gate` has admitted the request, all within the scrape timeout. Reloads
//! are sent to the app, which owns the configuration. Handlers read the client's
//! address from `ConnectInfo<SocketAddr>` and their [`Connection`] from the request's
//! extensions, which `web::serve` provides; authentication and TLS are `web`'s.

pub mod connection;
mod encoding;
mod probe;
pub mod scrape;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::limit::Limit;
use crate::metrics::{Collector, ExporterMetrics};
use crate::probe_gate::ProbeGate;
use crate::status;
use crate::store::Store;
pub use connection::Connection;
use scrape::ScrapeGate;

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
    /// Latest observations.
    pub store: Arc<Store>,
    /// The prepared series of the store's entries.
    pub collector: Arc<Collector>,
    /// Exporter-wide metrics.
    pub exporter: ExporterMetrics,
    /// The running configuration.
    pub config: Arc<RwLock<Arc<Config>>>,
    /// The probe concurrency limit shared with the scheduler.
    pub limit: Limit,
    /// The `/probe` limits' state (rate per client, requests in flight).
    pub probe_gate: Arc<ProbeGate>,
    /// The `/metrics` memory budget and responses in flight.
    pub scrapes: Arc<ScrapeGate>,
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
        .route("/probe", get(probe::probe))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload))
        .with_state(state)
}

async fn metrics(
    State(state): State<HttpState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    connection: Option<Extension<Connection>>,
    headers: HeaderMap,
) -> Response {
    let client = client.map_or(
        std::net::Ipv4Addr::UNSPECIFIED.into(),
        |Extension(ConnectInfo(c))| c.ip(),
    );
    scrape::metrics(state, client, connection.map(|Extension(c)| c), headers).await
}

async fn status_page(State(state): State<HttpState>) -> Html<String> {
    let configured = state.config().thresholds;
    let thresholds = crate::severity::Thresholds {
        warning: configured.warning,
        critical: configured.critical,
    };
    Html(status::render(
        &state.store.snapshot(),
        thresholds,
        SystemTime::now(),
    ))
}

/// Prometheus' scrape timeout header.
const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// The scrape timeout Prometheus sent, if any.
fn scrape_timeout(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(SCRAPE_TIMEOUT_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
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
