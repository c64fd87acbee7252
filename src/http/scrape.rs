//! `GET /metrics`: the exposition, produced as the client reads it, within a memory
//! budget and a deadline, so that no client can starve the others or the process.
//!
//! When the client accepts it (`Accept-Encoding`, negotiated as client_golang does:
//! `http::encoding`), each chunk is gzip-compressed as it is rendered, at level 1
//! (miniz_oxide, flate2's own backend: at level 1 it compresses this text as fast as
//! zlib-rs and about a seventh smaller, to 6-7% of its size); the compressor's state
//! is counted in the scrape's share of the budget. Without it the body is the text
//! itself, byte for byte. Every answer says `Vary: Accept-Encoding`.
//!
//! A scrape takes a store snapshot, has the collector prepare and copy what it renders
//! into a self-contained frame, and then writes the body a chunk at a time as the
//! client takes it, on the runtime's workers (each chunk is a fraction of a millisecond
//! of CPU, with a yield between chunks): no thread waits on a client, so slow readers
//! cannot take the blocking pool that name resolution needs.
//!
//! Bounds, all kept by [`ScrapeGate`]:
//! - Memory: the frames of the scrapes in flight, plus a fixed cost per scrape for its
//!   buffers, share [`BUDGET`]. A scrape that finds the budget taken waits for its share
//!   until its deadline, then gets 503.
//! - Time: every response ends by its deadline, the client's scrape timeout
//!   (`X-Prometheus-Scrape-Timeout-Seconds`) or [`DEFAULT_DEADLINE`]: past it the
//!   connection is dropped, wherever the response is stuck (a write that never
//!   completes, an HTTP/2 window that stays shut).
//! - Starvation: while a scrape waits, responses that made no progress for [`STALL`]
//!   (their client stopped reading) are cut, and their client is *penalized* for
//!   [`PENALTY`]: while the budget is short, it is refused at once instead of queueing
//!   again ahead of clients that read. A client has at most [`MAX_PER_CLIENT`] scrapes
//!   admitted or waiting (clients are told apart by IPv4 address or IPv6 /64). So
//!   clients that never read cost the others a short wait, not their scrape; when the
//!   budget is free, everybody is served.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::connection::Connection;
use super::encoding::{self, Encoding};
use super::{scrape_timeout, HttpState};
use crate::metrics::collector::{Frame, Render, Scope};
use crate::metrics::CONTENT_TYPE;
use crate::probe_gate::client_key;

/// Bytes that the scrapes in flight may hold together (frames and buffers).
pub const BUDGET: usize = 64 * 1024 * 1024;
/// What each scrape is counted for beside its frame: its chunk and hyper's buffers.
pub const PER_SCRAPE: usize = 512 * 1024;
/// The bound on a response when the client sends no scrape timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a response may make no progress before it is cut when others wait.
pub const STALL: Duration = Duration::from_secs(1);
/// How long a client whose response was cut is refused while the budget is short.
pub const PENALTY: Duration = Duration::from_secs(30);
/// Scrapes admitted or waiting per client at most.
pub const MAX_PER_CLIENT: usize = 16;
/// Bytes of exposition per chunk of the body.
pub const CHUNK: usize = 64 * 1024;
/// What a gzip scrape is counted for beside [`PER_SCRAPE`]: the compressor's state
/// (miniz_oxide's dictionary, hash chains and code buffers, about 300 KiB: measured by
/// `cargo bench --bench render`) and the compressed bytes waiting to be sent.
pub const PER_GZIP: usize = 512 * 1024;
/// The gzip level: the fastest. Level 2 is a quarter smaller and half as fast.
const GZIP_LEVEL: u32 = 1;

/// The budget unit: permits are KiB.
const UNIT: usize = 1024;
/// How often a waiting scrape looks for stalled responses to cut.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// Clients remembered at most (counts and penalties); idle ones are forgotten first.
const MAX_CLIENTS: usize = 4096;

/// The memory budget of `/metrics` and the responses in flight.
#[derive(Debug)]
pub struct ScrapeGate {
    budget: Arc<Semaphore>,
    units: usize,
    epoch: Instant,
    responses: Mutex<Vec<Weak<Progress>>>,
    clients: Arc<Mutex<HashMap<IpAddr, Client>>>,
}

impl Default for ScrapeGate {
    fn default() -> Self {
        Self::new(BUDGET)
    }
}

/// What the gate knows of one client.
#[derive(Debug, Default)]
struct Client {
    /// Scrapes admitted or waiting.
    active: usize,
    /// Refused while the budget is short, until then.
    penalized_until: Option<Instant>,
}

/// Why a scrape was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client has [`MAX_PER_CLIENT`] scrapes admitted or waiting.
    TooManyFromClient,
    /// The client's last response was cut, and the budget is short.
    Penalized,
    /// No share of the budget came before the deadline.
    Busy,
}

impl Refused {
    fn message(self) -> &'static str {
        match self {
            Refused::TooManyFromClient => "too many /metrics requests from your address are in flight; retry when one is done\n",
            Refused::Penalized => "a /metrics response to your address was cut because it was not read; certwatch is busy, retry shortly\n",
            Refused::Busy => "too many /metrics responses in flight hold certwatch's memory budget; retry\n",
        }
    }
}

/// One response in flight: when it last moved, whose it is, and how to cut it.
#[derive(Debug)]
struct Progress {
    /// Milliseconds since the gate's epoch.
    last: AtomicU64,
    client: IpAddr,
    connection: Connection,
}

/// A client's place among the scrapes admitted or waiting; freed when dropped.
#[derive(Debug)]
struct ClientSlot {
    clients: Arc<Mutex<HashMap<IpAddr, Client>>>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut clients = lock(&self.clients);
        if let Some(state) = clients.get_mut(&self.client) {
            state.active = state.active.saturating_sub(1);
        }
    }
}

/// A scrape's share of the budget, and its place among the responses in flight.
#[derive(Debug)]
struct Admitted {
    _share: OwnedSemaphorePermit,
    _slot: ClientSlot,
    progress: Arc<Progress>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while these locks are held; the data stays consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ScrapeGate {
    /// A gate sharing `budget` bytes.
    pub fn new(budget: usize) -> Self {
        let units = (budget / UNIT).clamp(1, u32::MAX as usize);
        Self {
            budget: Arc::new(Semaphore::new(units)),
            units,
            epoch: Instant::now(),
            responses: Mutex::new(Vec::new()),
            clients: Arc::default(),
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from((at - self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts a scrape of `client`, unless it has too many.
    fn enter(&self, client: IpAddr) -> Result<ClientSlot, Refused> {
        let mut clients = lock(&self.clients);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let now = Instant::now();
            clients.retain(|_, c| c.active > 0 || c.penalized_until.is_some_and(|t| t > now));
        }
        let state = clients.entry(client).or_default();
        if state.active >= MAX_PER_CLIENT {
            return Err(Refused::TooManyFromClient);
        }
        state.active += 1;
        Ok(ClientSlot {
            clients: self.clients.clone(),
            client,
        })
    }

    fn penalized(&self, client: IpAddr, now: Instant) -> bool {
        lock(&self.clients)
            .get(&client)
            .and_then(|c| c.penalized_until)
            .is_some_and(|until| until > now)
    }

    fn penalize(&self, client: IpAddr, now: Instant) {
        if let Some(state) = lock(&self.clients).get_mut(&client) {
            state.penalized_until = Some(now + PENALTY);
        }
    }

    /// Admits a scrape needing `bytes` of the budget (all of it at most) before
    /// `deadline`.
    async fn admit(
        &self,
        client: IpAddr,
        bytes: usize,
        deadline: Instant,
        connection: Connection,
    ) -> Result<Admitted, Refused> {
        let client = client_key(client);
        let slot = self.enter(client)?;
        let units =
            u32::try_from((bytes + PER_SCRAPE).div_ceil(UNIT).min(self.units)).unwrap_or(u32::MAX);
        let share = match self.budget.clone().try_acquire_many_owned(units) {
            Ok(share) => share,
            Err(_) => self.wait_for_share(client, units, deadline).await?,
        };
        let progress = Arc::new(Progress {
            last: AtomicU64::new(self.millis(Instant::now())),
            client,
            connection,
        });
        let mut responses = lock(&self.responses);
        responses.retain(|r| r.strong_count() > 0);
        responses.push(Arc::downgrade(&progress));
        Ok(Admitted {
            _share: share,
            _slot: slot,
            progress,
        })
    }

    /// The budget is short: waits for a share, cutting stalled responses meanwhile;
    /// a penalized client is refused at once.
    async fn wait_for_share(
        &self,
        client: IpAddr,
        units: u32,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, Refused> {
        let acquire = self.budget.clone().acquire_many_owned(units);
        tokio::pin!(acquire);
        loop {
            let now = Instant::now();
            self.cut_stalled(now);
            if self.penalized(client, now) {
                return Err(Refused::Penalized);
            }
            if now >= deadline {
                return Err(Refused::Busy);
            }
            if let Ok(share) =
                tokio::time::timeout_at(deadline.min(now + CHECK_EVERY), &mut acquire).await
            {
                // The semaphore is never closed.
                let share = share.map_err(|_| Refused::Busy)?;
                if self.penalized(client, Instant::now()) {
                    return Err(Refused::Penalized);
                }
                return Ok(share);
            }
        }
    }

    /// Aborts the connections of the responses that made no progress for [`STALL`],
    /// and penalizes their clients.
    fn cut_stalled(&self, now: Instant) {
        let at = self.millis(now);
        let stall = u64::try_from(STALL.as_millis()).unwrap_or(u64::MAX);
        let stalled: Vec<Arc<Progress>> = lock(&self.responses)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|p| {
                at.saturating_sub(p.last.load(Ordering::Acquire)) >= stall
                    && !p.connection.is_aborted()
            })
            .collect();
        for progress in stalled {
            tracing::debug!(client = %progress.client, "cut a /metrics response whose client stopped reading, for a scrape that waits");
            self.penalize(progress.client, now);
            progress.connection.abort();
        }
    }

    /// The responses in flight.
    pub fn in_flight(&self) -> usize {
        lock(&self.responses)
            .iter()
            .filter(|r| r.strong_count() > 0)
            .count()
    }
}

/// The `/metrics` handler for a request from `client`.
pub async fn metrics(
    state: HttpState,
    client: IpAddr,
    connection: Option<Connection>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let deadline = started + scrape_timeout(&headers).unwrap_or(DEFAULT_DEADLINE);
    let connection = connection.unwrap_or_default();
    let encoding = encoding::negotiate(&headers);
    let prepared = state.collector.prepare(&state.store.snapshot());
    let compressor = match encoding {
        Encoding::Identity => 0,
        Encoding::Gzip => PER_GZIP,
    };
    let admitted = match state
        .scrapes
        .admit(
            client,
            Frame::bytes_for(&prepared) + compressor,
            deadline,
            connection.clone(),
        )
        .await
    {
        Ok(admitted) => admitted,
        Err(refused) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::RETRY_AFTER, "1"),
                    (header::VARY, "Accept-Encoding"),
                ],
                refused.message(),
            )
                .into_response()
        }
    };
    let frame = Frame::new(&prepared);
    drop(prepared);
    let mut head = String::new();
    state.exporter.render(&mut head);
    let render = Render::new(frame, SystemTime::now(), Scope::Scheduled);
    let done = CancellationToken::new();
    spawn_deadline(
        deadline,
        state.scrapes.clone(),
        admitted.progress.clone(),
        done.clone(),
    );
    let body = Streaming {
        head: Some(head),
        render,
        gzip: match encoding {
            Encoding::Identity => None,
            Encoding::Gzip => Some(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
        },
        finished: false,
        deadline,
        started,
        sent: 0,
        gate: state.scrapes.clone(),
        admitted,
        _done: done.drop_guard(),
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::VARY, "Accept-Encoding"),
        ],
        Body::from_stream(futures_util::stream::unfold(body, Streaming::next)),
    )
        .into_response();
    if encoding == Encoding::Gzip {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(Encoding::Gzip.token()),
        );
    }
    response
}

/// Drops the response's connection at `deadline` unless `done` is cancelled first.
fn spawn_deadline(
    deadline: Instant,
    gate: Arc<ScrapeGate>,
    progress: Arc<Progress>,
    done: CancellationToken,
) {
    tokio::spawn(async move {
        tokio::select! {
            () = done.cancelled() => {}
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(client = %progress.client, "a /metrics response did not finish before its deadline; connection dropped");
                gate.penalize(progress.client, Instant::now());
                progress.connection.abort();
            }
        }
    });
}

/// A body being written: what is left to render, and what it holds.
struct Streaming {
    head: Option<String>,
    render: Render,
    /// The compressor, for a gzip response; it writes into its own `Vec`, which each
    /// chunk takes.
    gzip: Option<GzEncoder<Vec<u8>>>,
    finished: bool,
    deadline: Instant,
    started: Instant,
    sent: usize,
    gate: Arc<ScrapeGate>,
    admitted: Admitted,
    /// Ends the deadline's watch when the body is done or dropped.
    _done: DropGuard,
}

impl Streaming {
    async fn next(mut self) -> Option<(Result<Bytes, io::Error>, Self)> {
        loop {
            if self.finished {
                return None;
            }
            let text = match self.head.take() {
                Some(head) => head,
                None => {
                    // Each chunk is CPU work: let the worker serve others between chunks.
                    tokio::task::yield_now().await;
                    if Instant::now() >= self.deadline {
                        self.finished = true;
                        let late =
                            io::Error::new(io::ErrorKind::TimedOut, "past the scrape deadline");
                        return Some((Err(late), self));
                    }
                    let mut out = String::with_capacity(CHUNK + CHUNK / 4);
                    self.finished = !self.render.next_chunk(&mut out, CHUNK);
                    out
                }
            };
            let chunk = match self.gzip.as_mut() {
                None => Bytes::from(text),
                Some(gzip) => {
                    let compressed = gzip.write_all(text.as_bytes()).and_then(|()| {
                        if self.finished {
                            gzip.try_finish()
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(e) = compressed {
                        // Writing into a Vec does not fail; should the compressor, the
                        // response ends unfinished rather than with a corrupt stream.
                        self.finished = true;
                        return Some((Err(e), self));
                    }
                    let bytes = std::mem::take(gzip.get_mut());
                    if bytes.is_empty() {
                        // The compressor holds this chunk in its block: render more.
                        continue;
                    }
                    Bytes::from(bytes)
                }
            };
            self.sent += chunk.len();
            let now = Instant::now();
            self.admitted
                .progress
                .last
                .store(self.gate.millis(now), Ordering::Release);
            if self.finished {
                tracing::debug!(
                    bytes = self.sent,
                    gzip = self.gzip.is_some(),
                    frame_bytes = self.render.frame_bytes(),
                    took_ms = (now - self.started).as_secs_f64() * 1e3,
                    "rendered /metrics"
                );
            }
            return Some((Ok(chunk), self));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[tokio::test(start_paused = true)]
    async fn a_scrape_that_waits_cuts_the_stalled_ones_and_their_client_is_refused() {
        let gate = ScrapeGate::new(2 * PER_SCRAPE);
        let deadline = Instant::now() + Duration::from_secs(10);
        let stuck = Connection::new();
        let held = gate
            .admit(A, 0, deadline, stuck.clone())
            .await
            .expect("free");
        let held2 = gate
            .admit(A, 0, deadline, stuck.clone())
            .await
            .expect("free");
        let waiter = Connection::new();
        let started = Instant::now();
        let admit_b = gate.admit(B, 0, deadline, waiter.clone());
        tokio::pin!(admit_b);
        // B waits while A's responses have not yet stalled for STALL...
        assert!(
            tokio::time::timeout(STALL / 2, &mut admit_b).await.is_err(),
            "the budget is taken"
        );
        // ...then they count as stalled and are cut.
        let cut = tokio::time::timeout(STALL * 2, async {
            stuck.aborted().await;
            drop((held, held2));
        });
        let (admitted, cut) = tokio::join!(admit_b, cut);
        assert!(cut.is_ok() && admitted.is_ok());
        assert!(Instant::now() - started >= STALL);
        assert!(!waiter.is_aborted());
        // A's next scrape is refused while the budget is short.
        let full = gate.admit(B, 0, deadline, Connection::new()).await;
        assert!(full.is_ok(), "the budget is now full");
        assert_eq!(
            gate.admit(A, 0, deadline, Connection::new()).await.err(),
            Some(Refused::Penalized)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scrape_gets_busy_at_its_deadline_when_nothing_can_be_cut() {
        let gate = ScrapeGate::new(PER_SCRAPE);
        let far = Instant::now() + Duration::from_secs(60);
        let reading = gate
            .admit(A, 0, far, Connection::new())
            .await
            .expect("free");
        let deadline = Instant::now() + Duration::from_millis(600);
        // A response that keeps making progress is never cut.
        let keep_reading = async {
            loop {
                reading
                    .progress
                    .last
                    .store(gate.millis(Instant::now()), Ordering::Release);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let refused = tokio::select! {
            r = gate.admit(B, 0, deadline, Connection::new()) => r.err(),
            () = keep_reading => unreachable!(),
        };
        assert_eq!(refused, Some(Refused::Busy));
        assert_eq!(Instant::now(), deadline);
        assert!(!reading.progress.connection.is_aborted());
    }

    #[tokio::test]
    async fn a_client_has_a_bounded_number_of_scrapes() {
        let gate = ScrapeGate::new(BUDGET);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut held = Vec::new();
        for _ in 0..MAX_PER_CLIENT {
            held.push(
                gate.admit(A, 0, deadline, Connection::new())
                    .await
                    .expect("room"),
            );
        }
        assert_eq!(
            gate.admit(A, 0, deadline, Connection::new()).await.err(),
            Some(Refused::TooManyFromClient)
        );
        assert!(gate.admit(B, 0, deadline, Connection::new()).await.is_ok());
        held.pop();
        assert!(gate.admit(A, 0, deadline, Connection::new()).await.is_ok());
    }
}
