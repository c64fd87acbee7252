//! The honest client, from 127.0.0.1 with valid credentials, on a runtime of its own:
//! `/-/healthy` every second (answered within [`HEALTHY_BOUND`]), and `/metrics` every
//! ten seconds (answered within [`METRICS_BOUND`], parsed by a strict parser and by
//! `promtool check metrics`, and, when the full configuration is settled, every
//! target's series compared with what its peer must produce).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certwatch::metrics::names::*;
use tokio::time::{interval, MissedTickBehavior};

use crate::peers::Expect;
use crate::stats::{Latencies, Tally};
use crate::support::scrape::Scrape;
use crate::{Ctx, CHECKER};

/// `/-/healthy` must answer within this, every second.
pub const HEALTHY_BOUND: Duration = Duration::from_secs(1);
/// `/metrics` must answer (the whole body) within this, every ten seconds.
pub const METRICS_BOUND: Duration = Duration::from_secs(2);
pub const HEALTHY_EVERY: Duration = Duration::from_secs(1);
pub const METRICS_EVERY: Duration = Duration::from_secs(10);
/// A check that has no answer after this is recorded as a stall.
const GIVE_UP: Duration = Duration::from_secs(30);
/// How much later than its interval plus its timeout a target's last probe may be.
const STALE_SLACK: Duration = Duration::from_secs(10);

/// What the checker saw.
#[derive(Debug, Default)]
pub struct CheckStats {
    pub healthy: Latencies,
    /// `ok`, `slow` (over the bound), or what went wrong.
    pub healthy_outcomes: Tally,
    pub metrics: Latencies,
    /// When the first byte of a `/metrics` answer came: the wait for the budget.
    pub metrics_first_byte: Latencies,
    pub metrics_outcomes: Tally,
    /// Scrapes whose targets were compared, and scrapes taken while a storm ran.
    pub compared: AtomicU64,
    pub not_compared: AtomicU64,
    pub promtool: Tally,
    pub largest_body: AtomicUsize,
    /// The last `certwatch_probes_total` of each series, to see that none goes back.
    counters: Mutex<HashMap<String, f64>>,
}

/// Runs both checks until the soak stops.
pub async fn run(ctx: Arc<Ctx>, expects: Arc<Vec<Expect>>, stats: Arc<CheckStats>) {
    let healthy = tokio::spawn(healthy_loop(ctx.clone(), stats.clone()));
    let metrics = tokio::spawn(metrics_loop(ctx.clone(), expects, stats.clone()));
    let _ = healthy.await;
    let _ = metrics.await;
}

async fn healthy_loop(ctx: Arc<Ctx>, stats: Arc<CheckStats>) {
    let mut ticks = interval(HEALTHY_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut checks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        // Each check in its own task: one that hangs does not delay the next second's.
        let (ctx, stats) = (ctx.clone(), stats.clone());
        checks.spawn(async move { healthy_once(&ctx, &stats).await });
        while checks.try_join_next().is_some() {}
    }
    while checks.join_next().await.is_some() {}
}

/// One `/-/healthy` check, recorded.
pub async fn healthy_once(ctx: &Ctx, stats: &CheckStats) {
    let at = ctx.elapsed();
    match ctx
        .request(CHECKER, "GET", "/-/healthy", &[], 4096, GIVE_UP)
        .await
    {
        Ok((answer, took)) => {
            stats.healthy.record(took);
            if answer.status != 200 || answer.text() != "Healthy\n" {
                stats
                    .healthy_outcomes
                    .add(format!("status {}", answer.status));
                ctx.findings.fail(
                    "/-/healthy answers 200 every second",
                    format!("at {at:.0?}: {} {:?}", answer.status, answer.text()),
                );
            } else if took > HEALTHY_BOUND {
                stats.healthy_outcomes.add("slow");
                ctx.findings.fail(
                    "/-/healthy answers within 1 s every second",
                    format!("at {at:.0?}: {took:?}"),
                );
            } else {
                stats.healthy_outcomes.add("ok");
            }
        }
        Err(why) => {
            stats.healthy.record(GIVE_UP);
            stats.healthy_outcomes.add("no answer");
            ctx.findings.fail(
                "/-/healthy answers 200 every second",
                format!("at {at:.0?}: {why}"),
            );
        }
    }
}

async fn metrics_loop(ctx: Arc<Ctx>, expects: Arc<Vec<Expect>>, stats: Arc<CheckStats>) {
    let mut ticks = interval(METRICS_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut checks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let (ctx, expects, stats) = (ctx.clone(), expects.clone(), stats.clone());
        checks.spawn(async move { metrics_once(&ctx, &expects, &stats).await });
        while checks.try_join_next().is_some() {}
    }
    while checks.join_next().await.is_some() {}
}

/// One `/metrics` check, recorded: timing, validity, and (when the full configuration
/// is settled) every target's series.
pub async fn metrics_once(ctx: &Arc<Ctx>, expects: &Arc<Vec<Expect>>, stats: &Arc<CheckStats>) {
    let at = ctx.elapsed();
    let before = ctx.state.now();
    let answer = ctx
        .request_timed(
            CHECKER,
            "GET",
            "/metrics",
            &["X-Prometheus-Scrape-Timeout-Seconds: 10".to_owned()],
            256 << 20,
            GIVE_UP,
        )
        .await;
    let settled = before.is_multiple_of(2) && ctx.state.now() == before;
    let now = crate::unix_now();
    let (answer, took, first_byte) = match answer {
        Ok(t) => {
            stats.metrics_first_byte.record(t.first_byte);
            (t.answer, t.took, t.first_byte)
        }
        Err(why) => {
            stats.metrics.record(GIVE_UP);
            stats.metrics_outcomes.add("no answer");
            ctx.findings.fail(
                "/metrics answers 200 every 10 s",
                format!("at {at:.0?}: {why}"),
            );
            return;
        }
    };
    stats.metrics.record(took);
    if answer.status != 200 {
        stats
            .metrics_outcomes
            .add(format!("status {}", answer.status));
        ctx.findings.fail(
            "/metrics answers 200 every 10 s",
            format!("at {at:.0?}: {} {}", answer.status, answer.text()),
        );
        return;
    }
    if took > METRICS_BOUND {
        stats.metrics_outcomes.add("slow");
        ctx.findings.fail(
            "/metrics answers within 2 s every 10 s",
            format!("at {at:.0?}: {took:?}, the first byte after {first_byte:?}"),
        );
    } else {
        stats.metrics_outcomes.add("ok");
    }
    stats
        .largest_body
        .fetch_max(answer.body.len(), Ordering::Relaxed);
    let (ctx, expects, stats) = (ctx.clone(), expects.clone(), stats.clone());
    let _ = tokio::task::spawn_blocking(move || {
        validate(&ctx, &expects, &stats, &answer.text(), settled, now, at)
    })
    .await;
}

fn validate(
    ctx: &Ctx,
    expects: &[Expect],
    stats: &CheckStats,
    body: &str,
    settled: bool,
    now: f64,
    at: Duration,
) {
    match promtool(body) {
        Promtool::Clean => stats.promtool.add("clean"),
        Promtool::Missing => {
            stats.promtool.add("not installed");
            if crate::support::tools::in_ci() {
                ctx.findings.fail(
                    "promtool check metrics is clean",
                    "CI=true and promtool is not installed (Debian package `prometheus`)",
                );
            }
        }
        Promtool::Complaint(report) => {
            stats.promtool.add("complaint");
            ctx.findings.fail(
                "promtool check metrics is clean",
                format!("at {at:.0?}: {report}"),
            );
        }
    }
    let _ = std::fs::write(ctx.dir.join("metrics-last.txt"), body);
    let scrape = match std::panic::catch_unwind(|| Scrape::parse(body)) {
        Ok(s) => s,
        Err(_) => {
            ctx.findings.fail(
                "/metrics parses",
                format!("at {at:.0?}: a malformed line (see above)"),
            );
            return;
        }
    };
    if !settled {
        stats.not_compared.fetch_add(1, Ordering::Relaxed);
        return;
    }
    stats.compared.fetch_add(1, Ordering::Relaxed);
    let mut problems = Vec::new();
    for expect in expects {
        compare(&scrape, expect, now, &mut problems);
    }
    let known: BTreeSet<&str> = expects.iter().map(|e| e.name.as_str()).collect();
    let unknown: BTreeSet<String> = scrape
        .find(LAST_PROBE_TIMESTAMP, &[])
        .into_iter()
        .filter_map(|(labels, _)| labels.get(LABEL_TARGET).cloned())
        .filter(|t| !known.contains(t.as_str()))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!("series of targets not configured: {unknown:?}"));
    }
    let configured = expects.iter().filter(|e| e.name != SELF_TARGET).count() as f64;
    if scrape.find(TARGETS, &[]).first().map(|s| s.1) != Some(configured) {
        problems.push(format!(
            "{TARGETS} is {:?}, not {configured}",
            scrape.find(TARGETS, &[])
        ));
    }
    if scrape
        .find(CONFIG_LAST_RELOAD_SUCCESSFUL, &[])
        .first()
        .map(|s| s.1)
        != Some(1.0)
    {
        problems.push(format!(
            "{CONFIG_LAST_RELOAD_SUCCESSFUL} is not 1 with the full configuration in force"
        ));
    }
    check_counters(&scrape, expects, stats, &mut problems);
    if !problems.is_empty() {
        let _ = std::fs::write(
            ctx.dir
                .join(format!("metrics-failed-at-{}s.txt", at.as_secs())),
            body,
        );
        ctx.findings.fail(
            "every target's series are as expected",
            format!(
                "at {at:.0?}: {} problem(s), first: {}",
                problems.len(),
                problems[..problems.len().min(5)].join(" | ")
            ),
        );
    }
}

/// Compares one target's series with what its peer must produce.
pub fn compare(s: &Scrape, e: &Expect, now: f64, problems: &mut Vec<String>) {
    let t = [(LABEL_TARGET, e.name.as_str())];
    let name = &e.name;
    let one = |metric: &str, want: f64, problems: &mut Vec<String>| {
        let found = s.find(metric, &t);
        if found.len() != 1 || found[0].1 != want {
            problems.push(format!(
                "{name}: {metric} is {:?}, not {want}",
                found.iter().map(|f| f.1).collect::<Vec<_>>()
            ));
        }
        found.first().map(|f| f.0.clone())
    };
    let handshake = one(
        HANDSHAKE_SUCCESS,
        f64::from(u8::from(e.handshake)),
        problems,
    );
    if let Some(labels) = handshake {
        if labels.get(LABEL_IP).map(String::as_str) != Some("127.0.0.1") {
            problems.push(format!("{name}: ip is {:?}", labels.get(LABEL_IP)));
        }
    }
    one(
        PROBE_SUCCESS,
        f64::from(u8::from(e.handshake && e.verified == Some(true))),
        problems,
    );
    let failures = s.find(PROBE_FAILURE_INFO, &t);
    let failure_ok = match e.failure {
        None => failures.is_empty(),
        Some((stage, reason)) => {
            failures.len() == 1
                && failures[0].1 == 1.0
                && failures[0].0.get(LABEL_STAGE).map(String::as_str) == Some(stage)
                && failures[0].0.get(LABEL_REASON).map(String::as_str) == Some(reason)
        }
    };
    if !failure_ok {
        problems.push(format!(
            "{name}: failure is {:?}, not {:?}",
            failures
                .iter()
                .map(|f| (f.0.get(LABEL_STAGE), f.0.get(LABEL_REASON)))
                .collect::<Vec<_>>(),
            e.failure
        ));
    }
    let verified = s.find(CHAIN_VERIFIED, &t);
    match e.verified {
        None if !verified.is_empty() => problems.push(format!("{name}: {CHAIN_VERIFIED} present")),
        Some(v) if verified.len() != 1 || verified[0].1 != f64::from(u8::from(v)) => {
            problems.push(format!(
                "{name}: {CHAIN_VERIFIED} is {:?}, not {v}",
                verified.iter().map(|f| f.1).collect::<Vec<_>>()
            ))
        }
        _ => {}
    }
    let reasons_found = s.find(VERIFY_ERROR_INFO, &t);
    let reason_ok = match e.verify_reason {
        None => reasons_found.is_empty(),
        Some(r) => {
            reasons_found.len() == 1
                && reasons_found[0].0.get(LABEL_REASON).map(String::as_str) == Some(r)
        }
    };
    if !reason_ok {
        problems.push(format!(
            "{name}: verify reasons {:?}, not {:?}",
            reasons_found
                .iter()
                .map(|f| f.0.get(LABEL_REASON))
                .collect::<Vec<_>>(),
            e.verify_reason
        ));
    }
    for family in [CERT_INFO, CERT_NOT_AFTER, CERT_NOT_BEFORE, CERT_EXPIRY] {
        let depths: BTreeSet<String> = s
            .find(family, &t)
            .iter()
            .filter_map(|f| f.0.get(LABEL_DEPTH).cloned())
            .collect();
        let want: BTreeSet<String> = (0..e.certs).map(|d| d.to_string()).collect();
        if s.find(family, &t).len() != e.certs || depths != want {
            problems.push(format!(
                "{name}: {} {family} series, not {}",
                s.find(family, &t).len(),
                e.certs
            ));
        }
    }
    if let Some(not_after) = e.leaf_not_after {
        let leaf = s.find(CERT_NOT_AFTER, &[(LABEL_TARGET, name), (LABEL_DEPTH, "0")]);
        if leaf.len() != 1 || leaf[0].1 != not_after as f64 {
            problems.push(format!(
                "{name}: leaf notAfter {:?}, not {not_after}",
                leaf.iter().map(|f| f.1).collect::<Vec<_>>()
            ));
        }
    }
    let issues: BTreeSet<String> = s
        .find(CHAIN_ISSUE_INFO, &t)
        .iter()
        .filter_map(|f| f.0.get(LABEL_ISSUE).cloned())
        .collect();
    let want: BTreeSet<String> = e.issues.iter().map(|i| (*i).to_owned()).collect();
    if issues != want || s.find(CHAIN_ISSUE_INFO, &t).len() != want.len() {
        problems.push(format!("{name}: chain issues {issues:?}, not {want:?}"));
    }
    let weaknesses = s.find(CERT_WEAKNESS_INFO, &t);
    if !weaknesses.is_empty() {
        problems.push(format!(
            "{name}: weaknesses {:?} in certificates that have none",
            weaknesses
                .iter()
                .map(|f| f.0.get(LABEL_WEAKNESS))
                .collect::<Vec<_>>()
        ));
    }
    let tls = s.find(TLS_INFO, &t).len();
    if tls != usize::from(e.handshake) {
        problems.push(format!("{name}: {tls} {TLS_INFO} series"));
    }
    let interval = s.find(PROBE_INTERVAL, &t);
    if interval.len() != 1 || interval[0].1 != e.interval.as_secs_f64() {
        problems.push(format!(
            "{name}: {PROBE_INTERVAL} {:?}",
            interval.iter().map(|f| f.1).collect::<Vec<_>>()
        ));
    }
    let last = s.find(LAST_PROBE_TIMESTAMP, &t);
    let stale_after = (e.interval + e.timeout + STALE_SLACK).as_secs_f64();
    match last.first() {
        Some((_, at)) if last.len() == 1 && now - at <= stale_after => {}
        _ => problems.push(format!(
            "{name}: last probe {:?} s ago (at most {stale_after} s)",
            last.iter().map(|f| (now - f.1).round()).collect::<Vec<_>>()
        )),
    }
}

/// `certwatch_probes_total` never goes back for a target that stayed configured.
fn check_counters(s: &Scrape, expects: &[Expect], stats: &CheckStats, problems: &mut Vec<String>) {
    let mut last = stats
        .counters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for e in expects.iter().filter(|e| !e.dropped_by_small) {
        for (labels, value) in s.find(PROBES_TOTAL, &[(LABEL_TARGET, &e.name)]) {
            let key = format!(
                "{}|{}|{}",
                e.name,
                labels.get(LABEL_IP).map_or("", String::as_str),
                labels.get(LABEL_RESULT).map_or("", String::as_str)
            );
            let before = last.insert(key.clone(), value).unwrap_or(0.0);
            if value < before {
                problems.push(format!(
                    "{PROBES_TOTAL} {key} went back from {before} to {value}"
                ));
            }
        }
    }
}

enum Promtool {
    Clean,
    Missing,
    Complaint(String),
}

/// `promtool check metrics` on `body`.
fn promtool(body: &str) -> Promtool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => return Promtool::Missing,
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let body = body.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(body.as_bytes());
    });
    let out = child.wait_with_output().expect("promtool");
    let _ = writer.join();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && report.trim().is_empty() {
        Promtool::Clean
    } else {
        Promtool::Complaint(report.trim().chars().take(500).collect())
    }
}
