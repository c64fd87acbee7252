//! Serving the router on certwatch's own listener, over plain TCP or TLS.
//!
//! One loop for both: accept a connection, then in its own task run the TLS handshake
//! (when a web configuration enables TLS) bounded by [`HANDSHAKE_TIMEOUT`], and serve
//! HTTP/1.1, or HTTP/2 when ALPN chose `h2`, with hyper. Each request carries the
//! client's address as axum's `ConnectInfo<SocketAddr>`. Every connection takes the
//! rustls configuration current when it is accepted, so a reloaded certificate serves
//! new handshakes at once. On shutdown the loop stops accepting, handshakes under way
//! are dropped, connections are asked to close once their responses are done, and
//! [`serve`] returns when the last one has; bounding that drain is the caller's.
//!
//! Every connection is bounded whatever the client does: HTTP/1.1 must send a request's
//! headers within [`HEADER_READ_TIMEOUT`]; HTTP/2 gets at most [`MAX_STREAMS`]
//! concurrent streams, bounded headers and send buffers, and keep-alive pings; either
//! is closed after [`IDLE_TIMEOUT`] without a request in flight, and dropped when a
//! response it has begun makes no progress for [`STALLED_RESPONSE_TIMEOUT`] (answers
//! stuck behind an HTTP/2 window that stays shut would otherwise count as in flight
//! forever, and the connection would never be idle). A connection dropped that way, or
//! aborted by a handler, is reset rather than closed, so that the kernel does not keep
//! sending what it had buffered to a client that does not read. Each request carries
//! its connection's [`Connection`] handle, with which a handler drops a connection whose
//! response its client stopped reading.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use futures_util::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use super::{tls, Web};
use crate::audit;
use crate::http::Connection;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (HTTP/1.1).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay open with no request in flight.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a response body may go without producing its next bytes, because its
/// client does not take them, before the connection is dropped: as long as the longest
/// `/metrics` response may last without a scrape timeout, so `/metrics` keeps its own
/// bound and this one catches every other answer (a `401`, a `503`, `/-/healthy`).
pub const STALLED_RESPONSE_TIMEOUT: Duration = crate::http::scrape::DEFAULT_DEADLINE;
/// Concurrent HTTP/2 streams per connection.
pub const MAX_STREAMS: u32 = 16;
/// The largest HTTP/2 header list accepted.
const MAX_HEADER_LIST: u32 = 16 * 1024;
/// Bytes buffered per HTTP/2 stream for a client that does not read.
const MAX_SEND_BUFFER: usize = 256 * 1024;
/// HTTP/2 keep-alive: a ping after this much silence, and the wait for its answer.
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused TLS client's last bytes are read after the alert, so that the
/// close does not reset the connection and lose the alert (a TLS 1.3 client sends its
/// request before the server has judged its certificate).
const LINGER: Duration = Duration::from_secs(1);
/// The pause after an accept error that is not the client's (e.g. out of file
/// descriptors), before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown`, then until the last connection
/// closes. With `web` and TLS enabled in it, every connection is TLS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<Arc<Web>>,
    shutdown: CancellationToken,
) {
    let mut make_service: IntoMakeServiceWithConnectInfo<Router, SocketAddr> =
        router.into_make_service_with_connect_info::<SocketAddr>();
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (tcp, client) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "accepting a connection failed; pausing before the next");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    }
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        // `IntoMakeServiceWithConnectInfo` is always ready and never fails.
        let service = match make_service.call(client).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let tls = web.as_ref().and_then(|w| w.server_config());
        let open = open_rx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            connection(tcp, client, tls, service, shutdown).await;
            drop(open);
        });
    }
    drop(open_rx);
    drop(listener);
    // Every connection task holds a receiver; this returns when the last is gone.
    open_tx.closed().await;
}

type ConnService = axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<SocketAddr>>;

async fn connection(
    tcp: TcpStream,
    client: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    service: ConnService,
    shutdown: CancellationToken,
) {
    let Some(config) = tls else {
        return http(tcp, false, service, shutdown).await;
    };
    let accept = TlsAcceptor::from(config).accept(tcp).into_fallible();
    let handshake = tokio::select! {
        () = shutdown.cancelled() => return,
        shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept) => shake,
    };
    match handshake {
        Ok(Ok(stream)) => {
            let h2 = tls::negotiated_h2(stream.get_ref().1.alpn_protocol());
            http(stream, h2, service, shutdown).await;
        }
        Ok(Err((e, tcp))) => {
            handshake_failed(client, &e);
            linger(tcp).await;
        }
        Err(_) => {
            tracing::debug!(%client, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake not completed in time; connection closed")
        }
    }
}

/// Closes our side and reads what the client still sends, for at most [`LINGER`].
async fn linger(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(1..) = tcp.read(&mut sink).await {}
    })
    .await;
}

async fn http<S: Socket>(socket: S, h2: bool, service: ConnService, shutdown: CancellationToken) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buf_size(MAX_SEND_BUFFER)
        .max_pending_accept_reset_streams(MAX_STREAMS as usize)
        .keep_alive_interval(PING_INTERVAL)
        .keep_alive_timeout(PING_TIMEOUT);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let control = Connection::new();
    let io = ResetOnAbort {
        socket,
        connection: control.clone(),
    };
    let activity = Arc::new(Activity::new());
    let service = PerConnection {
        inner: service,
        connection: control.clone(),
        activity: activity.clone(),
    };
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = control.aborted() => return,
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(IDLE_TIMEOUT), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = activity.stalled_for(STALLED_RESPONSE_TIMEOUT) => {
                tracing::debug!(after = ?STALLED_RESPONSE_TIMEOUT, "a response made no progress: its client does not take it; connection dropped");
                control.abort();
                return;
            }
        }
    }
}

/// A client connection's socket: TCP, or TLS over TCP.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP stream underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// A connection's socket, reset rather than closed when the connection is dropped
/// after an abort (a response its client stopped taking): a close would leave the rest
/// of the response in the kernel's send buffer (several MiB per connection, as Linux
/// grows it) for as long as the client keeps its end open without reading, memory an
/// attacker could pin connection after connection. A reset discards it at once, as
/// nginx's `reset_timedout_connection` does.
struct ResetOnAbort<S: Socket> {
    socket: S,
    connection: Connection,
}

impl<S: Socket> Drop for ResetOnAbort<S> {
    fn drop(&mut self) {
        if self.connection.is_aborted() {
            if let Err(e) = self.socket.tcp().set_zero_linger() {
                tracing::trace!(error = %e, "cannot reset an aborted connection; it is closed");
            }
        }
    }
}

impl<S: Socket> AsyncRead for ResetOnAbort<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl<S: Socket> AsyncWrite for ResetOnAbort<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

/// The requests in flight on one connection, and whether their responses move.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    /// Each response body begun and not finished: when it last produced bytes (or
    /// began), in milliseconds since `epoch`.
    bodies: Mutex<Vec<Weak<AtomicU64>>>,
    epoch: Instant,
    changed: Notify,
}

/// One request in flight, until its response body is done or dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// One response body begun, until it is done or dropped.
#[derive(Debug)]
struct BodyProgress {
    activity: Arc<Activity>,
    last: Arc<AtomicU64>,
}

impl BodyProgress {
    /// The body produced bytes.
    fn progressed(&self) {
        self.last.store(self.activity.now_ms(), Ordering::Release);
    }
}

impl Drop for BodyProgress {
    fn drop(&mut self) {
        self.activity.changed.notify_waiters();
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// A response body begins.
    fn body_begun(self: &Arc<Self>) -> BodyProgress {
        let last = Arc::new(AtomicU64::new(self.now_ms()));
        let mut bodies = self
            .bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bodies.retain(|b| b.strong_count() > 0);
        bodies.push(Arc::downgrade(&last));
        drop(bodies);
        self.changed.notify_waiters();
        BodyProgress {
            activity: self.clone(),
            last,
        }
    }

    /// When the body that has gone longest without producing bytes last did, if any
    /// body is under way.
    fn oldest_progress(&self) -> Option<u64> {
        let mut bodies = self
            .bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bodies.retain(|b| b.strong_count() > 0);
        bodies
            .iter()
            .filter_map(Weak::upgrade)
            .map(|last| last.load(Ordering::Acquire))
            .min()
    }

    /// Resolves once a response body under way has produced no bytes for `limit`.
    async fn stalled_for(&self, limit: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let Some(oldest) = self.oldest_progress() else {
                changed.await;
                continue;
            };
            let due = self.epoch + Duration::from_millis(oldest) + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = changed => {}
            }
        }
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(idle) => return,
                () = changed => {}
            }
        }
    }
}

/// The router of one connection: gives each request the connection's handle and
/// counts it in flight until its response body ends.
#[derive(Debug, Clone)]
struct PerConnection {
    inner: ConnService,
    connection: Connection,
    activity: Arc<Activity>,
}

impl<B> Service<Request<B>> for PerConnection
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, std::convert::Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<Body>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let in_flight = self.activity.start();
        request.extensions_mut().insert(self.connection.clone());
        let response = self.inner.call(request.map(Body::new));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(Counted {
                    body,
                    progress: in_flight.0.body_begun(),
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A response body that keeps its request counted in flight until it is done, and
/// tells its connection when it produces bytes.
struct Counted {
    body: Body,
    progress: BodyProgress,
    _in_flight: InFlight,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if frame.is_ready() {
            self.progress.progressed();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Logs a failed handshake: an audit event when the client's certificate was missing
/// or refused, a debug line otherwise (scanners, clients that reject certwatch's
/// certificate, plain HTTP sent to the TLS port).
fn handshake_failed(client: SocketAddr, error: &io::Error) {
    let tls = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::NoCertificatesPresented) => audit::auth_failed(
            client,
            audit::Method::ClientCertificate,
            "",
            "no_client_certificate",
            "the client presented no certificate and client_auth_type requires one",
        ),
        Some(e @ rustls::Error::InvalidCertificate(_)) => audit::auth_failed(
            client,
            audit::Method::ClientCertificate,
            "",
            "client_certificate_rejected",
            &e.to_string(),
        ),
        _ => tracing::debug!(%client, error = %error, "TLS handshake failed"),
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
