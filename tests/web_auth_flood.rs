//! Basic authentication under a password flood, through the real binary with
//! `--web.config.file` and `basic_auth_users` at bcrypt cost 10.
//!
//! A hundred clients send wrong passwords (a new one each time, as a guesser would) in
//! a loop for a few seconds, over keep-alive connections. Meanwhile a scraper that
//! authenticated before the flood keeps scraping `/metrics` and must get every answer,
//! 200, within a second (it never pays bcrypt again), and scrapers with credentials
//! certwatch has not checked yet arrive one a second during the flood and must get an
//! answer (200, or 503 when authentication is busy) within a stated bound, never a
//! stall. Two floods: from a hundred addresses (127.0.0.2 to 127.0.0.101), which keeps
//! the queue full, so newcomers are mostly told 503 at once; and from one address,
//! which the per-client share confines to one check at a time, so newcomers from
//! elsewhere (127.0.1.x) wait for at most that one and are checked (200). The
//! latencies seen are printed (`cargo test --test web_auth_flood -- --nocapture`).

mod support;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use support::exporter::Exporter;
use support::Harness;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};

/// The scraper that authenticates before the flood, and its password.
const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-secret-4711";
/// Users whose first request comes during the flood (`newcomer-0`, ...), all with
/// [`PASSWORD`].
const NEWCOMERS: usize = 5;
/// How far apart newcomers arrive: apart enough that each finds no other newcomer's
/// check ahead of it, only the flood's.
const NEWCOMER_EVERY: Duration = Duration::from_secs(1);
/// The bcrypt cost of every hash: a real deployment's, tens of milliseconds a check.
const COST: u32 = 10;

/// How many clients flood, and for how long.
const FLOODERS: u8 = 100;
const FLOOD: Duration = Duration::from_secs(5);
/// How often the established scraper scrapes during the flood.
const SCRAPE_EVERY: Duration = Duration::from_millis(100);

/// The longest an established scraper may wait for `/metrics`: well inside Prometheus'
/// 10 s scrape timeout, with room for a CI machine busy with other tests (on a quiet
/// machine the answers take milliseconds: see the figures printed).
const ESTABLISHED_BOUND: Duration = Duration::from_secs(3);
/// The longest a newcomer may wait for its answer: certwatch's wait for a turn
/// (`web::auth::WAIT_DEADLINE`, 1 s) or one flooder's check ahead of it, then its own
/// check, each slowed down by the flood keeping the machine's cores busy.
const NEWCOMER_BOUND: Duration = Duration::from_secs(5);
/// A client gives up after this long and records a stall.
const STALL: Duration = Duration::from_secs(30);

/// One flood at a time: two would share the machine's cores and each other's timings.
static ONE_FLOOD: Mutex<()> = Mutex::new(());

/// Where the established scraper comes from.
const SCRAPER_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Where each newcomer comes from: a host of its own, as another Prometheus would.
fn newcomer_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, u8::try_from(i).expect("few newcomers"))
}

/// Where the flooders come from.
#[derive(Clone, Copy, Debug)]
enum Sources {
    /// Each flooder its own address, 127.0.0.2 and up.
    Many,
    /// Every flooder from 127.0.0.2.
    One,
}

impl Sources {
    fn address(self, flooder: u8) -> Ipv4Addr {
        match self {
            Sources::Many => Ipv4Addr::new(127, 0, 0, 2 + flooder),
            Sources::One => Ipv4Addr::new(127, 0, 0, 2),
        }
    }
}

fn authorization(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn request(user: &str, password: &str, keep_alive: bool) -> String {
    format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nConnection: {}\r\n\r\n",
        authorization(user, password),
        if keep_alive { "keep-alive" } else { "close" }
    )
}

async fn connect(from: Ipv4Addr, to: SocketAddr) -> io::Result<BufReader<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    Ok(BufReader::new(socket.connect(to).await?))
}

/// One answer: the status, whether the server will close the connection, and the
/// `Retry-After` header.
#[derive(Debug)]
struct Answer {
    status: u16,
    close: bool,
    retry_after: Option<String>,
}

/// Sends `request` and reads one answer (head at most 64 KiB, body by
/// `Content-Length`, else to the end).
async fn exchange(conn: &mut BufReader<TcpStream>, request: &str) -> io::Result<Answer> {
    conn.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    let mut head = Vec::new();
    let mut read = 0;
    loop {
        line.clear();
        read += conn.read_line(&mut line).await?;
        if line.is_empty() || read > 65536 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no answer"));
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_owned());
    }
    let status = head
        .first()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status"))?;
    let header = |name: &str| {
        head.iter().skip(1).find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let close = header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
    let mut body = Vec::new();
    match header("content-length").and_then(|l| l.parse::<u64>().ok()) {
        Some(length) => {
            (&mut *conn).take(length).read_to_end(&mut body).await?;
        }
        None => {
            conn.read_to_end(&mut body).await?;
        }
    }
    Ok(Answer {
        status,
        close: close || header("content-length").is_none(),
        retry_after: header("retry-after"),
    })
}

/// One request on a new connection from `from`: the answer (or why none) and how long
/// it took.
async fn once(
    from: Ipv4Addr,
    to: SocketAddr,
    user: &str,
    password: &str,
) -> (Result<Answer, String>, Duration) {
    let start = Instant::now();
    let answer = timeout(STALL, async {
        let mut conn = connect(from, to).await?;
        exchange(&mut conn, &request(user, password, false)).await
    })
    .await;
    let answer = match answer {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {STALL:?}")),
    };
    (answer, start.elapsed())
}

/// Statuses the flooders saw, and how many.
type Tally = Arc<Mutex<BTreeMap<u16, usize>>>;

/// Wrong passwords, a new one each time, until `stop`; answers tallied.
async fn flooder(id: u8, from: Ipv4Addr, to: SocketAddr, stop: Instant, tally: Tally) {
    let mut conn = None;
    let mut attempt = 0u64;
    while Instant::now() < stop {
        if conn.is_none() {
            match connect(from, to).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    tokio::task::yield_now().await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        attempt += 1;
        let guess = format!("guess-{id}-{attempt}");
        match timeout(STALL, exchange(c, &request(USER, &guess, true))).await {
            Ok(Ok(answer)) => {
                *tally.lock().unwrap().entry(answer.status).or_default() += 1;
                if answer.close {
                    conn = None;
                }
            }
            _ => conn = None,
        }
    }
}

/// Latencies in milliseconds: p50, p99 and the maximum.
fn summary(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    format!(
        "n={} p50={:.1}ms p99={:.1}ms max={:.1}ms",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// What one flood showed.
struct Flood {
    established: Vec<(Result<Answer, String>, Duration)>,
    newcomers: Vec<(Result<Answer, String>, Duration)>,
    tally: BTreeMap<u16, usize>,
    logs: Vec<serde_json::Value>,
}

fn run_flood(sources: Sources) -> Flood {
    let _one = ONE_FLOOD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let h = Harness::new();
    let hash = bcrypt::hash(PASSWORD, COST).expect("bcrypt");
    let mut users = format!("basic_auth_users:\n  {USER}: \"{hash}\"\n");
    for i in 0..NEWCOMERS {
        users.push_str(&format!("  newcomer-{i}: \"{hash}\"\n"));
    }
    h.write("web.yml", &users);
    h.write("certwatch.yml", "defaults:\n  interval: 1h\n");
    let exporter = Exporter::start(
        h.path(),
        &["--config", "certwatch.yml", "--web.config.file", "web.yml"],
    );
    let to = exporter.addr;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (established, newcomers, tally) = runtime.block_on(async {
        let (first, took) = once(SCRAPER_ADDRESS, to, USER, PASSWORD).await;
        assert_eq!(first.expect("an answer").status, 200, "before the flood");
        eprintln!("first authentication (bcrypt cost {COST}): {took:?}");

        let start = Instant::now();
        let stop = start + FLOOD;
        let tally = Tally::default();
        let flooders: Vec<_> = (0..FLOODERS)
            .map(|id| tokio::spawn(flooder(id, sources.address(id), to, stop, tally.clone())))
            .collect();
        // Let the flood build up before anyone legitimate arrives.
        tokio::time::sleep_until(start + Duration::from_millis(500)).await;

        let scraper = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut next = Instant::now();
            while next < stop {
                seen.push(once(SCRAPER_ADDRESS, to, USER, PASSWORD).await);
                next += SCRAPE_EVERY;
                tokio::time::sleep_until(next).await;
            }
            seen
        });
        let newcomers: Vec<_> = (0..NEWCOMERS)
            .map(|i| {
                let at = start + Duration::from_millis(500) + NEWCOMER_EVERY * i as u32;
                tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    once(newcomer_address(i), to, &format!("newcomer-{i}"), PASSWORD).await
                })
            })
            .collect();

        let established = scraper.await.expect("scraper");
        let mut arrived = Vec::new();
        for newcomer in newcomers {
            arrived.push(newcomer.await.expect("newcomer"));
        }
        for flooder in &flooders {
            flooder.abort();
        }
        let tally = tally.lock().unwrap().clone();
        (established, arrived, tally)
    });
    let (_, lines) = exporter.stop_with_logs();
    let logs = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    report(sources, &established, &newcomers, &tally);
    Flood {
        established,
        newcomers,
        tally,
        logs,
    }
}

fn report(
    sources: Sources,
    established: &[(Result<Answer, String>, Duration)],
    newcomers: &[(Result<Answer, String>, Duration)],
    tally: &BTreeMap<u16, usize>,
) {
    let statuses = |seen: &[(Result<Answer, String>, Duration)]| {
        let mut counts = BTreeMap::new();
        for (answer, _) in seen {
            let key = match answer {
                Ok(a) => a.status.to_string(),
                Err(e) => e.clone(),
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    };
    let latencies = |seen: &[(Result<Answer, String>, Duration)]| {
        summary(seen.iter().map(|(_, took)| *took).collect())
    };
    eprintln!("flood from {sources:?} addresses: flooders saw {tally:?}");
    eprintln!(
        "  established scraper: {} {:?}",
        latencies(established),
        statuses(established)
    );
    eprintln!(
        "  newcomers:           {} {:?}",
        latencies(newcomers),
        statuses(newcomers)
    );
}

fn audit_events<'a>(logs: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    logs.iter()
        .filter(|l| l["module"] == "certwatch::audit" && l["event"] == event)
        .collect()
}

/// Every established scrape answered 200 within [`ESTABLISHED_BOUND`].
fn assert_established_unharmed(flood: &Flood) {
    assert!(flood.established.len() >= 10, "the scraper kept scraping");
    for (answer, took) in &flood.established {
        let answer = answer.as_ref().expect("an answer");
        assert_eq!(answer.status, 200);
        assert!(
            *took <= ESTABLISHED_BOUND,
            "an established scraper waited {took:?}"
        );
    }
}

#[test]
fn a_flood_from_many_addresses_never_stalls_a_scrape_and_busy_answers_are_503() {
    let flood = run_flood(Sources::Many);
    assert_established_unharmed(&flood);
    for (answer, took) in &flood.newcomers {
        let answer = answer.as_ref().expect("an answer, not a stall");
        assert!(
            matches!(answer.status, 200 | 503),
            "a newcomer got {}",
            answer.status
        );
        if answer.status == 503 {
            assert_eq!(answer.retry_after.as_deref(), Some("1"));
        }
        assert!(*took <= NEWCOMER_BOUND, "a newcomer waited {took:?}");
    }
    // The flood was checked as fast as bcrypt allows, and the rest refused.
    assert!(
        flood.tally.get(&401).copied().unwrap_or(0) > 0,
        "{:?}",
        flood.tally
    );
    assert!(
        flood.tally.get(&503).copied().unwrap_or(0) > 0,
        "{:?}",
        flood.tally
    );
    let refused = flood.tally.get(&503).copied().unwrap_or(0);
    let logged = audit_events(&flood.logs, "auth_refused");
    assert!(!logged.is_empty(), "busy refusals are audited");
    assert!(
        logged.len() <= 2,
        "{} auth_refused lines for {refused} refusals in {FLOOD:?}: the log is rate-limited",
        logged.len()
    );
    let event = logged[0];
    assert_eq!(event["status"], 503);
    assert_eq!(event["method"], "basic");
    assert_eq!(event["user"], USER);
    assert!(matches!(
        event["reason"].as_str(),
        Some("busy" | "wait_deadline")
    ));
    assert!(
        !flood.logs.iter().any(|l| l.to_string().contains("guess-")),
        "passwords are never logged"
    );
    let failures = audit_events(&flood.logs, "auth_failure");
    assert!(failures.iter().any(|e| e["reason"] == "wrong_password"));
}

#[test]
fn a_flood_from_one_address_is_confined_and_others_are_checked() {
    let flood = run_flood(Sources::One);
    assert_established_unharmed(&flood);
    let mut checked = 0;
    for (answer, took) in &flood.newcomers {
        let answer = answer.as_ref().expect("an answer, not a stall");
        // A check slowed past certwatch's 1 s wait by a loaded machine is answered 503;
        // the flood itself never takes the turns from another address.
        assert!(
            matches!(answer.status, 200 | 503),
            "a newcomer got {}",
            answer.status
        );
        checked += usize::from(answer.status == 200);
        assert!(*took <= NEWCOMER_BOUND, "a newcomer waited {took:?}");
    }
    assert!(checked > 0, "no newcomer from another address was checked");
    assert!(
        flood.tally.get(&401).copied().unwrap_or(0) > 0,
        "{:?}",
        flood.tally
    );
    assert!(
        flood.tally.get(&429).copied().unwrap_or(0) > 0,
        "the flooding address is held to its share: {:?}",
        flood.tally
    );
    let logged = audit_events(&flood.logs, "auth_refused");
    assert!(!logged.is_empty() && logged.len() <= 2, "{logged:?}");
    assert_eq!(logged[0]["status"], 429);
    assert_eq!(logged[0]["reason"], "client_busy");
}
