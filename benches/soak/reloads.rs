//! The reload storm and the hostile file system: the configuration rewritten and
//! reloaded (by SIGHUP and `POST /-/reload`, alternately) through a cycle of valid and
//! invalid versions (an out-of-range `concurrency`, a `ca_file` that is a FIFO,
//! `/dev/zero` or missing, the configuration file itself replaced by a FIFO, a symbolic
//! link to `/dev/zero`, a 4 GiB sparse file or half of itself, and the web
//! configuration replaced by a FIFO), then a burst of concurrent reloads; between
//! cycles the full valid configuration stays in force.
//!
//! Every reload must report what happened, within [`RELOAD_BOUND`]: a valid version is
//! applied (200, or a `config_reload` audit event with `result=success`), an invalid
//! one is refused with the reason (500 naming the file and the problem) and the
//! running configuration stays. When the smaller valid version is applied, its
//! dropped targets must be gone from `/metrics` at once; when the full one comes back,
//! every target must be probed again before the configuration counts as settled
//! ([`ConfigState`]), which is when the checker compares targets' series.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, Instant};

use crate::peers::{Entry, Expect, INTERVAL, TIMEOUT};
use crate::stats::{Latencies, Tally};
use crate::support::scrape::Scrape;
use crate::{Ctx, OPERATOR, RELOADER};

/// The longest a reload may take to answer (POST) or to be logged (SIGHUP).
pub const RELOAD_BOUND: Duration = Duration::from_secs(5);
/// How long the full configuration stays in force between two storms.
pub const HOLD: Duration = Duration::from_secs(15);
/// How long re-added targets may take to be probed again.
const REPROBE_BOUND: Duration = Duration::from_secs(30);
/// Concurrent `POST /-/reload` in the burst that ends each cycle.
const BURST: usize = 16;
/// `concurrency` of the full and the smaller configuration, and of the resize step.
const CONCURRENCY: usize = 32;
const SMALL_CONCURRENCY: usize = 4;

/// Whether the full valid configuration is in force and settled: an even number when
/// it is, odd while a storm runs. The checker compares targets' series only when the
/// number is even and the same before and after its scrape.
#[derive(Debug, Default)]
pub struct ConfigState(AtomicU64);

impl ConfigState {
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn unsettle(&self) {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        debug_assert!(n.is_multiple_of(2));
    }
    fn settle(&self) {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        debug_assert!(n % 2 == 1);
    }
}

/// The configuration texts and the files the storm plays with.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    /// `certwatch.yml`, as certwatch was started with it.
    pub config: PathBuf,
    web: PathBuf,
    web_text: String,
    pub full: String,
    resized: String,
    small: String,
    out_of_range: String,
    ca_fifo: String,
    ca_zero: String,
    ca_missing: String,
}

/// The configuration of `entries` with `ca_file` and `concurrency`; `small` drops the
/// targets the smaller configuration drops.
pub fn config_text(
    entries: &[Entry],
    expects: &[Expect],
    concurrency: &str,
    ca_file: &str,
    small: bool,
) -> String {
    let mut yaml = format!(
        "# certwatch soak: generated\nconcurrency: {concurrency}\ndefaults:\n  interval: {}s\n  timeout: {}s\n  trust: none\n  tls: {{ca_file: \"{ca_file}\"}}\ntargets:\n",
        INTERVAL.as_secs(),
        TIMEOUT.as_secs()
    );
    for (entry, expect) in entries.iter().zip(expects) {
        if small && expect.dropped_by_small {
            continue;
        }
        let extra = if entry.extra.is_empty() {
            String::new()
        } else {
            format!(", {}", entry.extra)
        };
        yaml.push_str(&format!(
            "  - {{name: {}, address: \"{}\"{extra}}}\n",
            entry.name, entry.address
        ));
    }
    yaml
}

impl Files {
    /// Writes the full configuration, the web configuration and the CA, and makes the
    /// FIFO the invalid versions name.
    pub fn create(
        dir: &Path,
        entries: &[Entry],
        expects: &[Expect],
        web_text: &str,
        root_pem: &str,
    ) -> Files {
        std::fs::write(dir.join("root.pem"), root_pem).expect("write root.pem");
        mkfifo(&dir.join("ca.fifo"));
        let text = |concurrency: &str, ca: &str, small: bool| {
            config_text(entries, expects, concurrency, ca, small)
        };
        let files = Files {
            dir: dir.to_owned(),
            config: dir.join("certwatch.yml"),
            web: dir.join("web.yml"),
            web_text: web_text.to_owned(),
            full: text(&CONCURRENCY.to_string(), "root.pem", false),
            resized: text(&SMALL_CONCURRENCY.to_string(), "root.pem", false),
            small: text(&CONCURRENCY.to_string(), "root.pem", true),
            // 2^61: `config check` passed it and `serve` panicked on it (issue 11).
            out_of_range: text("2305843009213693952", "root.pem", false),
            ca_fifo: text(&CONCURRENCY.to_string(), "ca.fifo", false),
            ca_zero: text(&CONCURRENCY.to_string(), "/dev/zero", false),
            ca_missing: text(&CONCURRENCY.to_string(), "missing.pem", false),
        };
        files.replace_config(&files.full);
        files.replace(&files.web, &files.web_text);
        files
    }

    /// Replaces `path` atomically (write aside, rename over), as editors and
    /// configuration management do.
    fn replace(&self, path: &Path, text: &str) {
        let aside = self.dir.join(".next");
        std::fs::write(&aside, text).expect("write the next version");
        std::fs::rename(&aside, path).expect("rename over");
    }

    fn replace_config(&self, text: &str) {
        self.replace(&self.config, text);
    }

    /// Puts a new FIFO at `path`.
    fn fifo_over(&self, path: &Path) {
        let aside = self.dir.join(".fifo");
        let _ = std::fs::remove_file(&aside);
        mkfifo(&aside);
        std::fs::rename(&aside, path).expect("rename the FIFO over");
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// One reload of the cycle: what is put in place, and what certwatch must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    OutOfRange,
    CaFifo,
    Resize,
    CaDevZero,
    ConfigFifo,
    CaMissing,
    ConfigDevZero,
    ConfigTruncated,
    ConfigSparse,
    WebFifo,
    Small,
    Full,
}

const CYCLE: [Step; 12] = [
    Step::OutOfRange,
    Step::CaFifo,
    Step::Resize,
    Step::CaDevZero,
    Step::ConfigFifo,
    Step::CaMissing,
    Step::ConfigDevZero,
    Step::ConfigTruncated,
    Step::ConfigSparse,
    Step::WebFifo,
    Step::Small,
    Step::Full,
];

impl Step {
    fn label(self) -> &'static str {
        match self {
            Step::OutOfRange => "concurrency_out_of_range",
            Step::CaFifo => "ca_file_fifo",
            Step::Resize => "valid_concurrency_4",
            Step::CaDevZero => "ca_file_dev_zero",
            Step::ConfigFifo => "config_is_fifo",
            Step::CaMissing => "ca_file_missing",
            Step::ConfigDevZero => "config_links_to_dev_zero",
            Step::ConfigTruncated => "config_half_written",
            Step::ConfigSparse => "config_4gib_sparse",
            Step::WebFifo => "web_config_is_fifo",
            Step::Small => "valid_fewer_targets",
            Step::Full => "valid_full",
        }
    }

    /// `None` when the reload must succeed; otherwise text its report must contain.
    fn refusal(self) -> Option<&'static str> {
        match self {
            Step::Resize | Step::Small | Step::Full => None,
            Step::OutOfRange => Some("concurrency is 2305843009213693952, out of range"),
            Step::CaFifo | Step::ConfigFifo | Step::WebFifo => Some("named pipe (FIFO)"),
            Step::CaDevZero | Step::ConfigDevZero => Some("character device"),
            Step::CaMissing => Some("no such file"),
            Step::ConfigSparse => Some("larger than 64 MiB"),
            Step::ConfigTruncated => Some("unexpected end of stream"),
        }
    }

    fn prepare(self, files: &Files) {
        match self {
            Step::OutOfRange => files.replace_config(&files.out_of_range),
            Step::CaFifo => files.replace_config(&files.ca_fifo),
            Step::Resize => files.replace_config(&files.resized),
            Step::CaDevZero => files.replace_config(&files.ca_zero),
            Step::ConfigFifo => files.fifo_over(&files.config),
            Step::CaMissing => files.replace_config(&files.ca_missing),
            Step::ConfigDevZero => {
                let aside = files.dir.join(".link");
                let _ = std::fs::remove_file(&aside);
                std::os::unix::fs::symlink("/dev/zero", &aside).expect("symlink");
                std::fs::rename(&aside, &files.config).expect("rename the link over");
            }
            Step::ConfigTruncated => {
                // Written in place, as a naive editor does, and caught half-way.
                let _ = std::fs::remove_file(&files.config);
                let half = &files.full[..files.full.len() / 2];
                let cut = half
                    .rfind("address: \"")
                    .map_or(half, |at| &half[..at + 12]);
                std::fs::write(&files.config, cut).expect("write half");
            }
            Step::ConfigSparse => {
                let aside = files.dir.join(".sparse");
                let file = std::fs::File::create(&aside).expect("create");
                file.set_len(4 << 30).expect("a sparse 4 GiB file");
                drop(file);
                std::fs::rename(&aside, &files.config).expect("rename over");
            }
            Step::WebFifo => {
                files.replace_config(&files.full);
                files.fifo_over(&files.web);
            }
            Step::Small => files.replace_config(&files.small),
            Step::Full => files.replace_config(&files.full),
        }
    }

    /// Puts back what only this step breaks.
    fn restore(self, files: &Files) {
        if self == Step::WebFifo {
            files.replace(&files.web, &files.web_text);
        }
    }
}

/// How a reload is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Post,
    Signal,
}

/// What the storm did and saw.
#[derive(Debug, Default)]
pub struct StormStats {
    /// `step/trigger/result` counts.
    pub reloads: Tally,
    /// `POST /-/reload` answer times.
    pub post: Latencies,
    /// SIGHUP to its audit event in the log.
    pub signal: Latencies,
    /// The concurrent reloads of the bursts.
    pub burst: Latencies,
    pub cycles: AtomicU64,
    /// Time the full configuration was settled, and unsettled, in milliseconds.
    pub settled_ms: AtomicU64,
    pub unsettled_ms: AtomicU64,
}

/// Runs storm cycles until the soak stops, leaving the full configuration in force.
pub async fn storm(ctx: Arc<Ctx>, files: Files, expects: Arc<Vec<Expect>>, stats: Arc<StormStats>) {
    let mut cycle = 0usize;
    let mut since = Instant::now();
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => break,
            () = sleep(HOLD) => {}
        }
        ctx.state.unsettle();
        stats
            .settled_ms
            .fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
        since = Instant::now();
        for (i, step) in CYCLE.iter().enumerate() {
            let trigger = if (cycle + i).is_multiple_of(2) {
                Trigger::Post
            } else {
                Trigger::Signal
            };
            run_step(&ctx, &files, &expects, &stats, *step, trigger).await;
        }
        burst(&ctx, &stats).await;
        ensure_full(&ctx, &files, &expects, &stats).await;
        ctx.state.settle();
        stats
            .unsettled_ms
            .fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
        since = Instant::now();
        cycle += 1;
        stats.cycles.fetch_add(1, Ordering::Relaxed);
    }
    stats
        .settled_ms
        .fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
}

/// The result of one reload: success, or the problems reported.
type Reported = Result<(), String>;

async fn run_step(
    ctx: &Ctx,
    files: &Files,
    expects: &[Expect],
    stats: &StormStats,
    step: Step,
    trigger: Trigger,
) {
    step.prepare(files);
    let reported = reload(ctx, stats, trigger).await;
    step.restore(files);
    let trigger_label = match trigger {
        Trigger::Post => "POST",
        Trigger::Signal => "SIGHUP",
    };
    let reported = match reported {
        Ok(r) => r,
        Err(why) => {
            stats
                .reloads
                .add(format!("{}/{trigger_label}/no answer", step.label()));
            ctx.findings.fail(
                "every reload reports its result within the bound",
                format!("{} by {trigger_label}: {why}", step.label()),
            );
            return;
        }
    };
    let as_expected = match (step.refusal(), &reported) {
        (None, Ok(())) => true,
        (Some(needle), Err(problems)) => problems.contains(needle),
        _ => false,
    };
    stats.reloads.add(format!(
        "{}/{trigger_label}/{}",
        step.label(),
        if reported.is_ok() {
            "applied"
        } else {
            "refused"
        }
    ));
    ctx.findings.check(
        as_expected,
        "every reload reports its result truthfully",
        || {
            format!(
                "{} by {trigger_label}: expected {}, got {reported:?}",
                step.label(),
                step.refusal()
                    .map_or("success".to_owned(), |n| format!("a refusal naming {n:?}"))
            )
        },
    );
    if step == Step::Small && reported.is_ok() {
        check_pruned(ctx, expects).await;
    }
}

/// Asks for one reload and waits for its result.
async fn reload(ctx: &Ctx, stats: &StormStats, trigger: Trigger) -> Result<Reported, String> {
    let started = Instant::now();
    match trigger {
        Trigger::Post => {
            let (answer, took) = ctx
                .request(
                    RELOADER,
                    "POST",
                    "/-/reload",
                    &[],
                    1 << 20,
                    Duration::from_secs(60),
                )
                .await?;
            stats.post.record(took);
            if took > RELOAD_BOUND {
                ctx.findings.fail(
                    "every reload reports its result within the bound",
                    format!("POST /-/reload answered after {took:?}"),
                );
            }
            match answer.status {
                200 => Ok(Ok(())),
                500 => Ok(Err(answer.text())),
                other => Err(format!(
                    "POST /-/reload answered {other}: {}",
                    answer.text()
                )),
            }
        }
        Trigger::Signal => {
            let seen = ctx.log.reload_events();
            ctx.signal("HUP");
            let deadline = started + Duration::from_secs(60);
            loop {
                if let Some(result) = ctx.log.signal_reload_since(seen) {
                    let took = started.elapsed();
                    stats.signal.record(took);
                    if took > RELOAD_BOUND {
                        ctx.findings.fail(
                            "every reload reports its result within the bound",
                            format!("SIGHUP reload logged after {took:?}"),
                        );
                    }
                    return Ok(result);
                }
                if Instant::now() > deadline {
                    return Err("no audit event for the SIGHUP within 60 s".into());
                }
                sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The smaller configuration in force: its dropped targets are gone from `/metrics`.
async fn check_pruned(ctx: &Ctx, expects: &[Expect]) {
    let scrape = match ctx.scrape(OPERATOR).await {
        Ok(s) => s,
        Err(why) => {
            ctx.findings
                .fail("the operator's scrapes are answered", why);
            return;
        }
    };
    let left: Vec<&str> = expects
        .iter()
        .filter(|e| e.dropped_by_small)
        .filter(|e| {
            scrape.has(
                certwatch::metrics::names::LAST_PROBE_TIMESTAMP,
                &[("target", &e.name)],
            )
        })
        .map(|e| e.name.as_str())
        .collect();
    ctx.findings.check(
        left.is_empty(),
        "removed targets lose their series at reload",
        || {
            format!(
                "{} removed targets still have series, e.g. {:?}",
                left.len(),
                &left[..left.len().min(3)]
            )
        },
    );
    let kept = expects.iter().filter(|e| !e.dropped_by_small).count() as f64;
    let targets = scrape.find(certwatch::metrics::names::TARGETS, &[]);
    ctx.findings.check(
        targets.len() == 1 && targets[0].1 == kept,
        "certwatch_targets counts the configuration in force",
        || format!("after the smaller configuration ({kept} targets): {targets:?}"),
    );
}

/// Concurrent reloads of the full configuration, and a SIGHUP among them: each must
/// be answered within the bound.
async fn burst(ctx: &Arc<Ctx>, stats: &StormStats) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            ctx.request(
                RELOADER,
                "POST",
                "/-/reload",
                &[],
                1 << 20,
                Duration::from_secs(60),
            )
            .await
        });
    }
    ctx.signal("HUP");
    while let Some(done) = tasks.join_next().await {
        match done.expect("a burst request") {
            Ok((answer, took)) => {
                stats.burst.record(took);
                stats.reloads.add(format!("burst/POST/{}", answer.status));
                ctx.findings.check(
                    took <= RELOAD_BOUND * 4,
                    "every reload reports its result within the bound",
                    || format!("a reload of a burst of {BURST} answered after {took:?}"),
                );
            }
            Err(why) => {
                stats.reloads.add("burst/POST/no answer");
                ctx.findings.fail(
                    "every reload reports its result within the bound",
                    format!("burst: {why}"),
                );
            }
        }
    }
}

/// Puts the full configuration in force (again, after the burst), and waits until
/// every target was probed since, so that its series are the full configuration's.
async fn ensure_full(ctx: &Ctx, files: &Files, expects: &[Expect], stats: &StormStats) {
    files.replace_config(&files.full);
    files.replace(&files.web, &files.web_text);
    let mut applied = false;
    for _ in 0..5 {
        if let Ok(Ok(())) = reload(ctx, stats, Trigger::Post).await {
            applied = true;
            break;
        }
    }
    ctx.findings.check(
        applied,
        "the full configuration can always be put back",
        || "five POST /-/reload of the full configuration in a row failed".into(),
    );
    let deadline = Instant::now() + REPROBE_BOUND;
    let mut last_missing = Vec::new();
    while Instant::now() < deadline {
        if let Ok(scrape) = ctx.scrape(OPERATOR).await {
            last_missing = not_probed(&scrape, expects);
            if last_missing.is_empty() {
                return;
            }
        }
        sleep(Duration::from_millis(250)).await;
    }
    ctx.findings.fail(
        "re-added targets are probed again at once",
        format!(
            "{} targets without a probe {REPROBE_BOUND:?} after the full configuration came back, e.g. {:?}",
            last_missing.len(),
            &last_missing[..last_missing.len().min(3)]
        ),
    );
}

/// Targets of `expects` without a probe's series: those the smaller configuration
/// dropped lost theirs at that reload, so any they have now is from a probe since.
fn not_probed(scrape: &Scrape, expects: &[Expect]) -> Vec<String> {
    expects
        .iter()
        .filter(|e| {
            !scrape.has(
                certwatch::metrics::names::LAST_PROBE_TIMESTAMP,
                &[("target", &e.name)],
            )
        })
        .map(|e| e.name.clone())
        .collect()
}
