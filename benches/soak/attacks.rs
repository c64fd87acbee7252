//! The hostile clients, from 127.0.0.2 to 127.0.0.9 (certwatch tells clients apart by
//! address), all at once for the whole soak:
//!
//! - slow readers: HTTP/1.1 `/metrics` requests over TLS whose client never reads
//!   (a 4 KiB receive buffer), or reads 256 bytes every half second;
//! - slow openers: TCP connections that never start TLS, and TLS connections that
//!   send their request headers one byte a second;
//! - HTTP/2 connections with a zero flow-control window opening as many `/metrics`
//!   streams as they are let;
//! - scrape storms: bursts of concurrent full scrapes;
//! - a password flood: wrong basic-auth passwords over keep-alive connections, as fast
//!   as certwatch answers (with a short pause after a busy answer).
//!
//! The slow readers and the HTTP/2 connections stay until certwatch has stopped, so
//! that the stop is tried with them holding responses open.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::{sleep, timeout, Instant};

use crate::stats::{Latencies, Tally};
use crate::support::web_client::{
    get_request_with, h2_handshake, read_answer, request_head, tcp_from, tls_from,
};
use crate::Ctx;

/// How many of each.
const NEVER_READERS: usize = 32;
const TRICKLE_READERS: usize = 16;
const SILENT_OPENERS: usize = 16;
const HEADER_DRIPPERS: usize = 16;
const H2_CONNECTIONS: usize = 4;
const H2_STREAMS: usize = 200;
const STORM_SIZE: usize = 32;
const STORM_EVERY: Duration = Duration::from_secs(5);
const FLOODERS: usize = 16;
/// How long a reader that never reads keeps its connection before opening another.
const NEVER_HOLD: Duration = Duration::from_secs(70);
/// How long an HTTP/2 connection is kept when the server does not close it.
const H2_HOLD: Duration = Duration::from_secs(70);
/// Pause after a failed connection or a busy answer.
const BACKOFF: Duration = Duration::from_millis(50);

/// The `i`th attacker address: 127.0.0.2 to 127.0.0.9.
pub fn attacker(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8))
}

/// What the attackers did and what they were answered.
#[derive(Debug, Default)]
pub struct AttackStats {
    pub never_readers: Tally,
    pub trickle: Tally,
    /// How long a trickling reader's response lasted before the server ended it.
    pub trickle_lasted: Latencies,
    pub silent: Tally,
    pub silent_closed_after: Latencies,
    pub drip: Tally,
    pub drip_closed_after: Latencies,
    pub h2: Tally,
    pub h2_streams_sent: AtomicU64,
    pub h2_streams_answered: AtomicU64,
    /// How long an HTTP/2 connection lasted before the server closed it.
    pub h2_closed_after: Latencies,
    pub storm: Tally,
    pub storm_ok: Latencies,
    pub storm_bursts: AtomicU64,
    pub flood: Tally,
    pub flood_answers: Latencies,
}

/// Starts every attacker on the current runtime.
pub fn start(ctx: &Arc<Ctx>, stats: &Arc<AttackStats>) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..NEVER_READERS {
        set.spawn(never_reader(ctx.clone(), stats.clone(), attacker(i)));
    }
    for i in 0..TRICKLE_READERS {
        set.spawn(trickle_reader(ctx.clone(), stats.clone(), attacker(i)));
    }
    for i in 0..SILENT_OPENERS {
        set.spawn(silent_opener(ctx.clone(), stats.clone(), attacker(i)));
    }
    for i in 0..HEADER_DRIPPERS {
        set.spawn(header_dripper(ctx.clone(), stats.clone(), attacker(i)));
    }
    for i in 0..H2_CONNECTIONS {
        set.spawn(h2_zero_window(ctx.clone(), stats.clone(), attacker(i)));
    }
    set.spawn(scrape_storms(ctx.clone(), stats.clone()));
    for i in 0..FLOODERS {
        set.spawn(flooder(ctx.clone(), stats.clone(), i));
    }
    set
}

fn metrics_request(ctx: &Ctx) -> String {
    request_head("GET", "/metrics", "1.1", &[ctx.auth_header()])
}

/// Sends a `/metrics` request and never reads the answer.
async fn never_reader(ctx: Arc<Ctx>, stats: Arc<AttackStats>, from: IpAddr) {
    while !ctx.release.is_cancelled() && !ctx.stop.is_cancelled() {
        let conn = timeout(
            Duration::from_secs(10),
            tls_from(ctx.addr, from, ctx.http1.clone(), Some(4096)),
        )
        .await;
        let Ok(Ok(mut tls)) = conn else {
            stats.never_readers.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        if tls
            .write_all(metrics_request(&ctx).as_bytes())
            .await
            .is_err()
        {
            stats.never_readers.add("write failed");
            continue;
        }
        stats.never_readers.add("requests");
        tokio::select! {
            () = ctx.release.cancelled() => return,
            () = sleep(NEVER_HOLD) => {}
        }
    }
    // Held until certwatch has stopped.
    ctx.release.cancelled().await;
}

/// Reads its `/metrics` answer 256 bytes every half second, until the server ends it.
async fn trickle_reader(ctx: Arc<Ctx>, stats: Arc<AttackStats>, from: IpAddr) {
    while !ctx.stop.is_cancelled() {
        let conn = timeout(
            Duration::from_secs(10),
            tls_from(ctx.addr, from, ctx.http1.clone(), Some(4096)),
        )
        .await;
        let Ok(Ok(mut tls)) = conn else {
            stats.trickle.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        if tls
            .write_all(metrics_request(&ctx).as_bytes())
            .await
            .is_err()
        {
            stats.trickle.add("write failed");
            continue;
        }
        stats.trickle.add("requests");
        let started = Instant::now();
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                () = ctx.stop.cancelled() => return,
                () = sleep(Duration::from_millis(500)) => {}
            }
            match timeout(Duration::from_secs(120), tls.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                Ok(Ok(_)) => stats.trickle.add("ended by the server"),
                Ok(Err(_)) => stats.trickle.add("cut by the server"),
                Err(_) => stats.trickle.add("stalled 120 s"),
            }
            break;
        }
        stats.trickle_lasted.record(started.elapsed());
    }
}

/// Connects and never starts TLS.
async fn silent_opener(ctx: Arc<Ctx>, stats: Arc<AttackStats>, from: IpAddr) {
    while !ctx.stop.is_cancelled() {
        let Ok(Ok(mut tcp)) =
            timeout(Duration::from_secs(10), tcp_from(ctx.addr, from, None)).await
        else {
            stats.silent.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        stats.silent.add("connections");
        let started = Instant::now();
        let mut sink = [0u8; 64];
        tokio::select! {
            () = ctx.stop.cancelled() => return,
            read = timeout(Duration::from_secs(120), tcp.read(&mut sink)) => {
                match read {
                    Ok(_) => stats.silent.add("closed by the server"),
                    Err(_) => stats.silent.add("open after 120 s"),
                }
                stats.silent_closed_after.record(started.elapsed());
            }
        }
    }
}

/// Completes TLS, then sends its request headers one byte a second.
async fn header_dripper(ctx: Arc<Ctx>, stats: Arc<AttackStats>, from: IpAddr) {
    while !ctx.stop.is_cancelled() {
        let conn = timeout(
            Duration::from_secs(10),
            tls_from(ctx.addr, from, ctx.http1.clone(), None),
        )
        .await;
        let Ok(Ok(tls)) = conn else {
            stats.drip.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        stats.drip.add("connections");
        let started = Instant::now();
        let (mut reader, mut writer) = tokio::io::split(tls);
        let drip = async {
            let _ = writer
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n")
                .await;
            loop {
                if writer.write_all(b"x").await.is_err() || writer.flush().await.is_err() {
                    return;
                }
                sleep(Duration::from_secs(1)).await;
            }
        };
        let mut sink = vec![0u8; 4096];
        tokio::select! {
            () = ctx.stop.cancelled() => return,
            () = drip => stats.drip.add("write failed"),
            read = timeout(Duration::from_secs(120), reader.read(&mut sink)) => match read {
                Ok(_) => stats.drip.add("closed by the server"),
                Err(_) => stats.drip.add("open after 120 s"),
            },
        }
        stats.drip_closed_after.record(started.elapsed());
    }
}

/// HTTP/2 with every stream's window shut, as many `/metrics` streams as allowed.
async fn h2_zero_window(ctx: Arc<Ctx>, stats: Arc<AttackStats>, from: IpAddr) {
    let auth = ctx.auth.clone();
    while !ctx.release.is_cancelled() && !ctx.stop.is_cancelled() {
        let conn = timeout(
            Duration::from_secs(10),
            tls_from(ctx.addr, from, ctx.h2.clone(), None),
        )
        .await;
        let Ok(Ok(tls)) = conn else {
            stats.h2.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        let Ok((mut send, mut driver)) = h2_handshake(tls, 0).await else {
            stats.h2.add("handshake failed");
            sleep(BACKOFF).await;
            continue;
        };
        stats.h2.add("connections");
        let opened = Instant::now();
        let mut streams = Vec::new();
        for _ in 0..H2_STREAMS {
            let Ok(Ok(ready)) = timeout(Duration::from_millis(500), send.ready()).await else {
                break;
            };
            send = ready;
            match send.send_request(
                get_request_with("/metrics", &[("authorization", &auth)]),
                true,
            ) {
                Ok((response, _)) => streams.push(response),
                Err(_) => break,
            }
        }
        stats
            .h2_streams_sent
            .fetch_add(streams.len() as u64, Ordering::Relaxed);
        let ended = tokio::select! {
            () = ctx.release.cancelled() => return,
            _ = &mut driver => true,
            () = sleep(H2_HOLD) => false,
        };
        let answered = streams
            .iter_mut()
            .filter_map(futures_util::FutureExt::now_or_never)
            .filter(Result::is_ok)
            .count();
        stats
            .h2_streams_answered
            .fetch_add(answered as u64, Ordering::Relaxed);
        if ended {
            stats.h2.add("closed by the server");
            stats.h2_closed_after.record(opened.elapsed());
        } else {
            stats.h2.add("held 70 s");
        }
        driver.abort();
    }
    ctx.release.cancelled().await;
}

/// Every few seconds, a burst of concurrent full scrapes from the attacker addresses.
async fn scrape_storms(ctx: Arc<Ctx>, stats: Arc<AttackStats>) {
    let mut bursts = tokio::time::interval(STORM_EVERY);
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => return,
            _ = bursts.tick() => {}
        }
        stats.storm_bursts.fetch_add(1, Ordering::Relaxed);
        let mut scrapes = tokio::task::JoinSet::new();
        for k in 0..STORM_SIZE {
            let (ctx, stats) = (ctx.clone(), stats.clone());
            scrapes.spawn(async move {
                let headers = ["X-Prometheus-Scrape-Timeout-Seconds: 10".to_owned()];
                match ctx
                    .request(
                        attacker(k),
                        "GET",
                        "/metrics",
                        &headers,
                        256 << 20,
                        Duration::from_secs(90),
                    )
                    .await
                {
                    Ok((answer, took)) => {
                        stats.storm.add(format!("{}", answer.status));
                        if answer.status == 200 {
                            stats.storm_ok.record(took);
                        }
                    }
                    Err(why) => stats.storm.add(format!("error: {}", short(&why))),
                }
            });
        }
        while scrapes.join_next().await.is_some() {}
    }
}

/// Wrong passwords (an existing user's and unknown users'), a new one each time.
async fn flooder(ctx: Arc<Ctx>, stats: Arc<AttackStats>, id: usize) {
    let from = attacker(id);
    let mut attempt = 0u64;
    while !ctx.stop.is_cancelled() {
        let conn = timeout(
            Duration::from_secs(10),
            tls_from(ctx.addr, from, ctx.http1.clone(), None),
        )
        .await;
        let Ok(Ok(tls)) = conn else {
            stats.flood.add("connect failed");
            sleep(BACKOFF).await;
            continue;
        };
        let mut conn = BufReader::new(tls);
        while !ctx.stop.is_cancelled() {
            attempt += 1;
            let user = if attempt.is_multiple_of(2) {
                crate::USER.to_owned()
            } else {
                format!("guess{id}")
            };
            let auth = format!(
                "Authorization: {}",
                crate::support::web_client::basic_auth(&user, &format!("wrong-{id}-{attempt}"))
            );
            let head = request_head("GET", "/metrics", "1.1", &[auth]);
            let started = Instant::now();
            if conn.get_mut().write_all(head.as_bytes()).await.is_err() {
                stats.flood.add("write failed");
                break;
            }
            match timeout(Duration::from_secs(30), read_answer(&mut conn, 1 << 20)).await {
                Ok(Ok(answer)) => {
                    stats.flood_answers.record(started.elapsed());
                    stats.flood.add(format!("{}", answer.status));
                    if answer.status == 200 {
                        ctx.findings.fail(
                            "a wrong password is never let in",
                            format!("{user} from {from}"),
                        );
                    }
                    if answer.status != 401 {
                        sleep(BACKOFF).await;
                    }
                    if answer.closed {
                        break;
                    }
                }
                Ok(Err(_)) => {
                    stats.flood.add("connection ended");
                    break;
                }
                Err(_) => {
                    stats.flood.add("no answer in 30 s");
                    break;
                }
            }
        }
    }
}

fn short(why: &str) -> String {
    why.chars().take(60).collect()
}
