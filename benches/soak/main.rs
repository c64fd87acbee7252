//! The soak: the real `certwatch` binary, for a bounded time, against hostile peers and
//! hostile clients at once, with assertions on what an honest scraper sees.
//!
//! ```text
//! peers.rs     good / expired / silent / endless SMTP banner / garbage / reset /
//!              40-certificate chain / one byte a second / N refused targets
//!                  ▲ probed by
//! certwatch serve --web.config.file (TLS + basic auth, bcrypt cost 10) --log-format json
//!                  ▲ attacked by                         ▲ checked by
//! attacks.rs   slow readers, slow openers,      checks.rs  127.0.0.1: /-/healthy every 1 s
//!              HTTP/2 zero windows, scrape                 (≤ 1 s), /metrics every 10 s
//!              storms, password flood                      (≤ 2 s, promtool, every
//!              (127.0.0.2 to .9)                           target's series)
//! reloads.rs   reload storm: SIGHUP and POST /-/reload, valid and invalid versions,
//!              FIFOs, /dev/zero, a 4 GiB sparse file, a half-written file (127.0.0.9,
//!              and 127.0.0.10 to look at the result)
//! main.rs      RSS (VmRSS and VmHWM) every second, the log, the stop (SIGTERM), the
//!              summary and the verdict
//! ```
//!
//! Run it:
//!
//! ```sh
//! cargo bench --bench soak                                   # full: 10 minutes, release build
//! CERTWATCH_SOAK_SECONDS=60 cargo test --locked --bench soak # smoke (CI): 1 minute, debug build
//! ```
//!
//! Environment: `CERTWATCH_SOAK_SECONDS` (600 under `cargo bench`, 60 otherwise),
//! `CERTWATCH_SOAK_CLOSED` (refused targets, 300), `CERTWATCH_SOAK_RSS_MB` (the RSS
//! bound, [`RSS_BOUND_MB`]), `CERTWATCH_BIN` (another binary than the one cargo built),
//! `CERTWATCH_SOAK_KEEP=1` (keep the temporary directory with the log). It exits 1,
//! naming every assertion that failed, or 0; the figures are printed either way.

// The soak measures real time; there is no paused tokio clock to drive here.
#![allow(clippy::disallowed_types)]

#[path = "../../tests/support/mod.rs"]
mod support;

mod attacks;
mod checks;
mod peers;
mod reloads;
mod stats;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::ClientConfig;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use stats::{ms, Findings};
use support::pki::{Ca, Validity};
use support::scrape::Scrape;
use support::web_client::{basic_auth, read_answer, request_head, tls_config, tls_from, Answer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The honest scraper.
pub const CHECKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Where the reload storm's `POST /-/reload` come from.
pub const RELOADER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
/// Where the reload storm looks at the result of a reload from: an address no slow
/// reader uses, so that its scrapes are not refused for theirs.
pub const OPERATOR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));
/// The user every client with credentials uses, and its password.
pub const USER: &str = "prometheus";
const PASSWORD: &str = "soak-scrape-secret";
/// bcrypt cost of the password hash: a real deployment's.
const BCRYPT_COST: u32 = 10;
/// The bound on the peak resident memory (VmHWM) of certwatch during the soak, in MiB.
///
/// What certwatch may hold by design under this soak: about 15 MiB with the targets
/// probed and nobody scraping; the `/metrics` budget (`http::scrape::BUDGET`, 64 MiB),
/// which caps the frames and buffers of every response in flight; the HTTP/2 send
/// buffers (4 connections × 16 streams × 256 KiB = 16 MiB); TLS and HTTP buffers of
/// about 150 connections (under 10 MiB): about 105 MiB. Measured peaks: 97 MiB in the
/// full run (release build), 84 MiB in smoke runs (debug build). 160 MiB leaves room
/// for the allocator keeping freed memory, and still fails long before the failure
/// modes this soak guards against (issue 11: 1 GB for 200 honest concurrent scrapes,
/// 2.3 GB for clients that never read).
pub const RSS_BOUND_MB: u64 = 160;
/// How long certwatch may take to exit after SIGTERM: its grace for responses under
/// way plus a second.
const EXIT_BOUND: Duration = Duration::from_secs(certwatch::app::SHUTDOWN_GRACE.as_secs() + 1);

/// What the soak is told by its environment.
#[derive(Debug)]
struct Settings {
    seconds: u64,
    closed: usize,
    padding: usize,
    rss_bound_mb: u64,
    binary: PathBuf,
    keep: bool,
    full: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let full = std::env::args().any(|a| a == "--bench");
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
                })
                .unwrap_or(default)
        };
        Settings {
            seconds: number("CERTWATCH_SOAK_SECONDS", if full { 600 } else { 60 }),
            closed: number("CERTWATCH_SOAK_CLOSED", 300) as usize,
            padding: number("CERTWATCH_SOAK_PADDING", 2048) as usize,
            rss_bound_mb: number("CERTWATCH_SOAK_RSS_MB", RSS_BOUND_MB),
            binary: std::env::var_os("CERTWATCH_BIN").map_or_else(
                || PathBuf::from(env!("CARGO_BIN_EXE_certwatch")),
                PathBuf::from,
            ),
            keep: std::env::var("CERTWATCH_SOAK_KEEP").is_ok_and(|v| v == "1"),
            full,
        }
    }
}

/// Unix seconds now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// An answer, when it was complete and when its first byte came (the rest is the
/// body's transfer).
pub struct Timed {
    pub answer: Answer,
    pub took: Duration,
    pub first_byte: Duration,
}

/// What every part of the soak shares.
pub struct Ctx {
    pub addr: SocketAddr,
    pub pid: u32,
    pub http1: Arc<ClientConfig>,
    pub h2: Arc<ClientConfig>,
    /// The `Authorization` value with the right password.
    pub auth: String,
    /// Cancelled when the soak's time is up: checks, storms and floods end.
    pub stop: CancellationToken,
    /// Cancelled once certwatch has stopped: the connections held open are let go.
    pub release: CancellationToken,
    pub state: reloads::ConfigState,
    pub log: Arc<LogState>,
    pub findings: Arc<Findings>,
    pub started: Instant,
    /// The temporary directory: the last `/metrics` body is kept there
    /// (`metrics-last.txt`), and those whose comparison failed.
    pub dir: PathBuf,
}

impl Ctx {
    pub fn auth_header(&self) -> String {
        format!("Authorization: {}", self.auth)
    }

    /// Time since the soak started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// One HTTP/1.0 request over a new TLS connection from `from`, with the right
    /// credentials: the answer and how long it took, or why there was none within
    /// `give_up`.
    pub async fn request(
        &self,
        from: IpAddr,
        method: &str,
        path: &str,
        extra: &[String],
        max_body: usize,
        give_up: Duration,
    ) -> Result<(Answer, Duration), String> {
        self.request_timed(from, method, path, extra, max_body, give_up)
            .await
            .map(|t| (t.answer, t.took))
    }

    /// [`Ctx::request`], also telling when the answer's first byte came.
    pub async fn request_timed(
        &self,
        from: IpAddr,
        method: &str,
        path: &str,
        extra: &[String],
        max_body: usize,
        give_up: Duration,
    ) -> Result<Timed, String> {
        let mut headers = vec![self.auth_header()];
        headers.extend_from_slice(extra);
        let head = request_head(method, path, "1.0", &headers);
        let started = Instant::now();
        let answer = tokio::time::timeout(give_up, async {
            let tls = tls_from(self.addr, from, self.http1.clone(), None).await?;
            let mut conn = BufReader::new(tls);
            conn.get_mut().write_all(head.as_bytes()).await?;
            conn.fill_buf().await?;
            let first_byte = started.elapsed();
            read_answer(&mut conn, max_body)
                .await
                .map(|answer| (answer, first_byte))
        })
        .await;
        match answer {
            Ok(Ok((answer, first_byte))) => Ok(Timed {
                answer,
                took: started.elapsed(),
                first_byte,
            }),
            Ok(Err(e)) => Err(format!("{method} {path} from {from}: {e}")),
            Err(_) => Err(format!(
                "{method} {path} from {from}: no answer within {give_up:?}"
            )),
        }
    }

    /// `GET /metrics` from `from`, parsed.
    pub async fn scrape(&self, from: IpAddr) -> Result<Scrape, String> {
        let (answer, _) = self
            .request(
                from,
                "GET",
                "/metrics",
                &[],
                256 << 20,
                Duration::from_secs(30),
            )
            .await?;
        if answer.status != 200 {
            return Err(format!(
                "/metrics from {from}: {} {}",
                answer.status,
                answer.text()
            ));
        }
        let text = answer.text();
        std::panic::catch_unwind(|| Scrape::parse(&text))
            .map_err(|_| "a malformed /metrics".to_owned())
    }

    /// Sends SIG`signal` to certwatch.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid, signal);
    }
}

fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args([
            "-c",
            &format!("kill -{signal} \"$1\""),
            "sh",
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .status();
}

/// What certwatch's log said, read as it is written.
#[derive(Debug, Default)]
pub struct LogState(Mutex<LogInner>);

#[derive(Debug, Default)]
struct LogInner {
    bytes: u64,
    lines: u64,
    not_json: u64,
    panics: Vec<String>,
    levels: BTreeMap<String, u64>,
    /// `event/result` of audit events.
    audit: BTreeMap<String, u64>,
    /// Warnings and errors by message, for the summary.
    messages: BTreeMap<String, u64>,
    reloads: Vec<ReloadEvent>,
    listen: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct ReloadEvent {
    web: bool,
    who: String,
    ok: bool,
    problems: String,
}

impl LogState {
    fn inner(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many reload audit events were logged so far.
    pub fn reload_events(&self) -> usize {
        self.inner().reloads.len()
    }

    /// The result of the first SIGHUP reload logged after the first `seen` reload
    /// events, once both its events (configuration, then web configuration) are in.
    pub fn signal_reload_since(&self, seen: usize) -> Option<Result<(), String>> {
        let inner = self.inner();
        let events = &inner.reloads[seen.min(inner.reloads.len())..];
        let web_at = events.iter().position(|e| e.web && e.who == "SIGHUP")?;
        let config = events[..web_at]
            .iter()
            .rev()
            .find(|e| !e.web && e.who == "SIGHUP");
        let web = &events[web_at];
        let mut problems = Vec::new();
        match config {
            Some(c) if !c.ok => problems.push(c.problems.clone()),
            Some(_) => {}
            None => problems.push("(no config_reload event before the web one)".into()),
        }
        if !web.ok {
            problems.push(web.problems.clone());
        }
        Some(if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        })
    }

    fn listen(&self) -> Option<SocketAddr> {
        self.inner().listen
    }

    fn take_line(&self, line: &str) {
        let mut inner = self.inner();
        inner.lines += 1;
        inner.bytes += line.len() as u64 + 1;
        if line.contains("panicked") {
            inner.panics.push(line.chars().take(500).collect());
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
            inner.not_json += 1;
            return;
        };
        let level = json["level"].as_str().unwrap_or("?").to_owned();
        if level == "WARN" || level == "ERROR" {
            let message = json["message"]
                .as_str()
                .unwrap_or("?")
                .chars()
                .take(90)
                .collect::<String>();
            *inner
                .messages
                .entry(format!("{level} {message}"))
                .or_default() += 1;
        }
        *inner.levels.entry(level).or_default() += 1;
        if let Some(listen) = json["listen"].as_str().and_then(|l| l.parse().ok()) {
            inner.listen = Some(listen);
        }
        if json["audit"] == true {
            let event = json["event"].as_str().unwrap_or("?").to_owned();
            let result = json["result"]
                .as_str()
                .or(json["reason"].as_str())
                .unwrap_or("")
                .to_owned();
            *inner.audit.entry(format!("{event}/{result}")).or_default() += 1;
            if event == "config_reload" || event == "web_config_reload" {
                inner.reloads.push(ReloadEvent {
                    web: event == "web_config_reload",
                    who: json["who"].as_str().unwrap_or("").to_owned(),
                    ok: result == "success",
                    problems: json["problems"].as_str().unwrap_or("").to_owned(),
                });
            }
        }
    }
}

/// Follows the log file until `done` is set and the file has no more.
fn tail(path: PathBuf, state: Arc<LogState>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut file = std::fs::File::open(&path).expect("the log file");
        let mut offset = 0u64;
        let mut pending = Vec::new();
        loop {
            let finished = done.load(Ordering::SeqCst);
            let mut chunk = Vec::new();
            let _ = file.seek(SeekFrom::Start(offset));
            let n = file.read_to_end(&mut chunk).unwrap_or(0);
            offset += n as u64;
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                state.take_line(String::from_utf8_lossy(&line[..line.len() - 1]).as_ref());
            }
            if finished && n == 0 {
                if !pending.is_empty() {
                    state.take_line(&String::from_utf8_lossy(&pending));
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One sample of certwatch's process.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at: Duration,
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
    fds: u64,
}

fn sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Sample {
        at,
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
        threads: field("Threads:")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64),
    })
}

/// Samples the process every second until it exits or `done` is set.
fn sampler(
    pid: u32,
    started: Instant,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !done.load(Ordering::SeqCst) {
            match sample(pid, started.elapsed()) {
                Some(s) => samples.push(s),
                None => break,
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        samples
    })
}

/// certwatch, started in `dir`.
struct Certwatch {
    child: Child,
}

impl Drop for Certwatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> ExitCode {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let findings = Arc::new(Findings::default());
    let summary = runtime.block_on(soak(&settings, findings.clone()));
    println!("{summary}");
    if findings.is_empty() {
        println!("soak: PASSED");
        ExitCode::SUCCESS
    } else {
        println!("{}", findings.report());
        println!("soak: FAILED");
        ExitCode::FAILURE
    }
}

/// The web configuration, and the CA its certificate is issued by.
fn web_files(dir: &Path) -> (String, Ca, i64) {
    let ca = Ca::root("certwatch soak web root");
    let leaf = ca.leaf(&["localhost"], Validity::days(30));
    std::fs::write(dir.join("web.pem"), leaf.chain_pem(&[])).expect("write");
    std::fs::write(dir.join("web.key"), &leaf.key_pem).expect("write");
    let hash = bcrypt::hash(PASSWORD, BCRYPT_COST).expect("bcrypt");
    let text = format!(
        "tls_server_config:\n  cert_file: web.pem\n  key_file: web.key\nbasic_auth_users:\n  {USER}: \"{hash}\"\n"
    );
    (text, ca, leaf.not_after)
}

async fn soak(settings: &Settings, findings: Arc<Findings>) -> String {
    let dir = tempfile::Builder::new()
        .prefix("certwatch-soak-")
        .tempdir()
        .expect("a temporary directory");
    let peers = peers::Peers::start(settings.closed, settings.padding).await;
    let (web_text, web_ca, web_not_after) = web_files(dir.path());
    let files = reloads::Files::create(
        dir.path(),
        &peers.entries,
        &peers.expects,
        &web_text,
        &peers.root_pem,
    );

    let log_path = dir.path().join("certwatch.log");
    let log_file = std::fs::File::create(&log_path).expect("the log file");
    let out_file = std::fs::File::create(dir.path().join("certwatch.out")).expect("stdout file");
    let child = Command::new(&settings.binary)
        .current_dir(dir.path())
        .args([
            "serve",
            "--config",
            "certwatch.yml",
            "--web.config.file",
            "web.yml",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", settings.binary.display()));
    let mut certwatch = Certwatch { child };
    let pid = certwatch.child.id();
    let started = Instant::now();
    let log = Arc::new(LogState::default());
    let log_done = Arc::new(AtomicBool::new(false));
    let log_thread = tail(log_path.clone(), log.clone(), log_done.clone());
    let addr = loop {
        if let Some(addr) = log.listen() {
            break addr;
        }
        if started.elapsed() > Duration::from_secs(30)
            || certwatch.child.try_wait().ok().flatten().is_some()
        {
            panic!(
                "certwatch did not start: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        sleep(Duration::from_millis(50)).await;
    };
    let sampler_done = Arc::new(AtomicBool::new(false));
    let samples = sampler(pid, started, sampler_done.clone());

    let ctx = Arc::new(Ctx {
        addr,
        pid,
        http1: tls_config(&web_ca, &[]),
        h2: tls_config(&web_ca, &[b"h2"]),
        auth: basic_auth(USER, PASSWORD),
        stop: CancellationToken::new(),
        release: CancellationToken::new(),
        state: reloads::ConfigState::default(),
        log: log.clone(),
        findings: findings.clone(),
        started,
        dir: dir.path().to_owned(),
    });

    // Warm-up: the right password checked once (and then remembered), every target
    // probed once.
    let mut expects = peers.expects.clone();
    expects.push(peers::Expect {
        name: certwatch::metrics::names::SELF_TARGET.to_owned(),
        handshake: true,
        failure: None,
        verified: None,
        verify_reason: None,
        certs: 1,
        leaf_not_after: Some(web_not_after),
        dropped_by_small: false,
        interval: certwatch::web::self_cert::INTERVAL,
        timeout: certwatch::web::self_cert::TIMEOUT,
        issues: &[],
    });
    let expects = Arc::new(expects);
    let warm = loop {
        if let Ok(scrape) = ctx.scrape(CHECKER).await {
            let missing = expects
                .iter()
                .filter(|e| {
                    !scrape.has(
                        certwatch::metrics::names::LAST_PROBE_TIMESTAMP,
                        &[("target", &e.name)],
                    )
                })
                .count();
            if missing == 0 {
                break started.elapsed();
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            findings.fail(
                "every target is probed within a minute of the start",
                "not all were".to_owned(),
            );
            break started.elapsed();
        }
        sleep(Duration::from_millis(250)).await;
    };
    let rss_before_attack = sample(pid, started.elapsed()).map_or(0, |s| s.rss_kb);
    eprintln!(
        "soak: certwatch {} (pid {pid}) on {addr}; {} targets probed after {}; soaking for {} s; load average {}",
        settings.binary.display(),
        expects.len(),
        ms(warm),
        settings.seconds,
        load_average()
    );

    // The soak.
    let soak_started = Instant::now();
    let check_stats = Arc::new(checks::CheckStats::default());
    let checker = {
        let (ctx, expects, stats) = (ctx.clone(), expects.clone(), check_stats.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the checker's runtime")
                .block_on(checks::run(ctx, expects, stats));
        })
    };
    let attack_stats = Arc::new(attacks::AttackStats::default());
    let mut attackers = attacks::start(&ctx, &attack_stats);
    let storm_stats = Arc::new(reloads::StormStats::default());
    let storm = tokio::spawn(reloads::storm(
        ctx.clone(),
        files,
        Arc::new(peers.expects.clone()),
        storm_stats.clone(),
    ));
    let mut progress = tokio::time::interval(Duration::from_secs(60));
    progress.tick().await;
    let end = soak_started + Duration::from_secs(settings.seconds);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(end) => break,
            _ = progress.tick() => {
                let s = sample(pid, started.elapsed()).unwrap_or_default();
                eprintln!(
                    "soak: {:>4} s: RSS {} MiB (peak {} MiB), {} threads, {} fds; healthy {}; metrics {}; load {}",
                    soak_started.elapsed().as_secs(),
                    s.rss_kb / 1024,
                    s.hwm_kb / 1024,
                    s.threads,
                    s.fds,
                    check_stats.healthy.summary(),
                    check_stats.metrics.summary(),
                    load_average(),
                );
            }
        }
        if certwatch.child.try_wait().ok().flatten().is_some() {
            findings.fail(
                "certwatch runs until it is stopped",
                "it exited during the soak".to_owned(),
            );
            break;
        }
    }

    // The end: storms and floods stop, slow readers and HTTP/2 connections stay.
    ctx.stop.cancel();
    let _ = storm.await;
    let _ = checker.join();
    // A last look, with the held connections still open and the full configuration
    // settled.
    let web_reload_ok = match ctx.scrape(CHECKER).await {
        Ok(scrape) => scrape
            .find(
                certwatch::metrics::names::WEB_CONFIG_LAST_RELOAD_SUCCESSFUL,
                &[],
            )
            .first()
            .map(|s| s.1),
        Err(_) => None,
    };
    findings.check(
        web_reload_ok == Some(1.0),
        "the web configuration ends loaded",
        || {
            format!(
                "{} is {web_reload_ok:?} at the end",
                certwatch::metrics::names::WEB_CONFIG_LAST_RELOAD_SUCCESSFUL
            )
        },
    );
    checks::healthy_once(&ctx, &check_stats).await;
    checks::metrics_once(&ctx, &expects, &check_stats).await;
    let dropped_logs = ctx.scrape(CHECKER).await.ok().and_then(|s| {
        s.find(certwatch::metrics::names::LOG_MESSAGES_DROPPED, &[])
            .first()
            .map(|s| s.1)
    });

    // SIGTERM with responses held open.
    let term = Instant::now();
    send_signal(pid, "TERM");
    let exit = loop {
        if let Ok(Some(status)) = certwatch.child.try_wait() {
            break Some((status, term.elapsed()));
        }
        if term.elapsed() > Duration::from_secs(60) {
            break None;
        }
        sleep(Duration::from_millis(10)).await;
    };
    match exit {
        Some((status, took)) => {
            findings.check(
                status.code() == Some(0),
                "certwatch exits 0 on SIGTERM",
                || format!("{status}"),
            );
            findings.check(
                took <= EXIT_BOUND,
                "certwatch exits within its grace on SIGTERM",
                || format!("exited after {took:?} (bound {EXIT_BOUND:?})"),
            );
        }
        None => findings.fail(
            "certwatch exits within its grace on SIGTERM",
            "still running 60 s after SIGTERM".to_owned(),
        ),
    }
    ctx.release.cancel();
    attackers.abort_all();
    while attackers.join_next().await.is_some() {}
    sampler_done.store(true, Ordering::SeqCst);
    let samples = samples.join().expect("the sampler");
    log_done.store(true, Ordering::SeqCst);
    let _ = log_thread.join();
    drop(certwatch);

    // Verdicts on the whole run.
    let peak_kb = samples.iter().map(|s| s.hwm_kb).max().unwrap_or(0);
    findings.check(
        peak_kb <= settings.rss_bound_mb * 1024,
        "RSS stays under the bound",
        || {
            format!(
                "peak {} MiB > {} MiB",
                peak_kb / 1024,
                settings.rss_bound_mb
            )
        },
    );
    let inner = log.inner();
    findings.check(inner.panics.is_empty(), "no panic in the log", || {
        inner.panics.join("\n")
    });
    let compared = check_stats.compared.load(Ordering::Relaxed);
    let not_compared = check_stats.not_compared.load(Ordering::Relaxed);
    findings.check(
        compared >= 1 && compared * 2 >= compared + not_compared,
        "targets are compared in most /metrics checks",
        || format!("{compared} compared, {not_compared} taken during a storm"),
    );
    let healthy = check_stats.healthy.summary();
    findings.check(
        healthy.n as u64 + 2 >= settings.seconds,
        "/-/healthy is checked every second",
        || format!("{} checks in {} s", healthy.n, settings.seconds),
    );

    let summary = summarize(
        settings,
        &samples,
        rss_before_attack,
        warm,
        &check_stats,
        &attack_stats,
        &storm_stats,
        &inner,
        exit.map(|(s, t)| (s.code(), t)),
        dropped_logs,
    );
    drop(inner);
    if settings.keep {
        let kept = dir.keep();
        println!("soak: files kept in {}", kept.display());
    }
    drop(peers);
    summary
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    settings: &Settings,
    samples: &[Sample],
    rss_before_attack: u64,
    warm: Duration,
    checks: &checks::CheckStats,
    attacks: &attacks::AttackStats,
    storm: &reloads::StormStats,
    log: &LogInner,
    exit: Option<(Option<i32>, Duration)>,
    dropped_logs: Option<f64>,
) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let mib = |kb: u64| format!("{:.1} MiB", kb as f64 / 1024.0);
    line(format!(
        "=== certwatch soak: {} s ({} mode), {} refused targets (label of {} bytes each) + 8 hostile peers + certwatch-self; binary {}",
        settings.seconds,
        if settings.full { "full" } else { "smoke" },
        settings.closed,
        settings.padding,
        settings.binary.display()
    ));
    line(format!("start-up: every target probed after {}", ms(warm)));
    line(format!(
        "machine: {} cores; load average at the end {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    ));
    line(format!(
        "/-/healthy  (bound {}): {} ; outcomes: {}",
        ms(checks::HEALTHY_BOUND),
        checks.healthy.summary(),
        checks.healthy_outcomes
    ));
    line(format!(
        "/metrics    (bound {}): {} ; first byte {} ; outcomes: {} ; largest body {} KiB",
        ms(checks::METRICS_BOUND),
        checks.metrics.summary(),
        checks.metrics_first_byte.summary(),
        checks.metrics_outcomes,
        checks.largest_body.load(Ordering::Relaxed) / 1024
    ));
    line(format!(
        "  targets compared in {} scrapes ({} taken during a storm, not compared); promtool: {}",
        checks.compared.load(Ordering::Relaxed),
        checks.not_compared.load(Ordering::Relaxed),
        checks.promtool
    ));
    let peak_rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let peak_hwm = samples.iter().map(|s| s.hwm_kb).max().unwrap_or(0);
    let quarter = |q: usize| {
        samples
            .get(samples.len().saturating_sub(1) * q / 4)
            .map_or("-".to_owned(), |s| {
                format!("{} at {} s", mib(s.rss_kb), s.at.as_secs())
            })
    };
    line(format!(
        "RSS: before the attacks {}; sampled max {}; peak (VmHWM) {} (bound {} MiB); at 1/4 {}, 2/4 {}, 3/4 {}, end {}",
        mib(rss_before_attack),
        mib(peak_rss),
        mib(peak_hwm),
        settings.rss_bound_mb,
        quarter(1),
        quarter(2),
        quarter(3),
        quarter(4)
    ));
    line(format!(
        "threads max {}; open fds max {}",
        samples.iter().map(|s| s.threads).max().unwrap_or(0),
        samples.iter().map(|s| s.fds).max().unwrap_or(0)
    ));
    line(format!(
        "attack: never-reading /metrics clients: {}",
        attacks.never_readers
    ));
    line(format!(
        "attack: trickling readers (256 B / 0.5 s): {} ; response lasted {}",
        attacks.trickle,
        attacks.trickle_lasted.summary()
    ));
    line(format!(
        "attack: TCP without TLS: {} ; closed after {}",
        attacks.silent,
        attacks.silent_closed_after.summary()
    ));
    line(format!(
        "attack: headers a byte a second: {} ; closed after {}",
        attacks.drip,
        attacks.drip_closed_after.summary()
    ));
    line(format!(
        "attack: HTTP/2 zero window: {} ; streams sent {}, answered (headers) {} ; closed after {}",
        attacks.h2,
        attacks.h2_streams_sent.load(Ordering::Relaxed),
        attacks.h2_streams_answered.load(Ordering::Relaxed),
        attacks.h2_closed_after.summary()
    ));
    line(format!(
        "attack: scrape storms: {} bursts; answers {} ; 200s took {}",
        attacks.storm_bursts.load(Ordering::Relaxed),
        attacks.storm,
        attacks.storm_ok.summary()
    ));
    line(format!(
        "attack: password flood: answers {} ; answered in {}",
        attacks.flood,
        attacks.flood_answers.summary()
    ));
    line(format!(
        "reload storm: {} cycles; full configuration settled {:.0}% of the time",
        storm.cycles.load(Ordering::Relaxed),
        {
            let s = storm.settled_ms.load(Ordering::Relaxed) as f64;
            let u = storm.unsettled_ms.load(Ordering::Relaxed) as f64;
            if s + u > 0.0 {
                100.0 * s / (s + u)
            } else {
                0.0
            }
        }
    ));
    line(format!("  reloads: {}", storm.reloads));
    line(format!(
        "  POST /-/reload answered in {} ; SIGHUP result logged in {} ; burst of 16 POSTs answered in {}",
        storm.post.summary(),
        storm.signal.summary(),
        storm.burst.summary()
    ));
    line(format!(
        "log: {} lines ({} KiB), {} not JSON, levels {:?}, lines dropped by certwatch {}",
        log.lines,
        log.bytes / 1024,
        log.not_json,
        log.levels,
        dropped_logs.map_or("?".to_owned(), |d| d.to_string())
    ));
    line(format!("  audit events: {:?}", log.audit));
    let mut top: Vec<(&String, &u64)> = log.messages.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    for (message, count) in top.iter().take(8) {
        line(format!("  {count:>7} × {message}"));
    }
    line(format!("  panics: {}", log.panics.len()));
    line(match exit {
        Some((code, took)) => format!(
            "stop: SIGTERM → exit code {code:?} after {} (bound {})",
            ms(took),
            ms(EXIT_BOUND)
        ),
        None => "stop: no exit within 60 s of SIGTERM".to_owned(),
    });
    out
}
