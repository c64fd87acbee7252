//! Wiring: load the configuration (and the web configuration), start the scheduler and
//! the HTTP server, reload on SIGHUP or `POST /-/reload`, and stop everything on one
//! cancellation token.
//!
//! Both configurations are loaded and validated before any port is bound, so a bad
//! file stops start-up with its errors. A reload re-reads both; each keeps running as it
//! was when its new version does not load. Files are read on the blocking pool, never
//! on the runtime's workers, and a reload that fails in any way (a bad file, a panic)
//! is reported as failed by the metric, the log and the HTTP answer, and leaves the
//! reload path working. With `--config.auto-reload` the same reload runs when the
//! configuration's files change ([`auto_reload`] decides when). The details of each
//! stage belong to its module.

pub mod auto_reload;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, Trigger};
use crate::cli::ServeArgs;
use crate::config::{Config, ConfigError, DEFAULT_PATHS};
use crate::files::watch::Hub;
use crate::http::scrape::ScrapeGate;
use crate::http::{self, HttpState, ReloadRequest};
use crate::metrics::{Collector, ExporterMetrics};
use crate::probe_gate::ProbeGate;
use crate::scheduler::Scheduler;
use crate::shard::Shard;
use crate::source::{self, Source};
use crate::store::Store;
use crate::web::self_cert::SelfCheck;
use crate::web::{self, Web};
use auto_reload::{Fingerprint, Watch};

/// How long HTTP responses under way may take to finish after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the exporter could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The web configuration (`--web.config.file`) is invalid.
    #[error("{0}")]
    WebConfig(ConfigError),
    /// Loading a configuration panicked (a bug: please report it).
    #[error(
        "loading {what} failed unexpectedly: {why}; this is a bug in certwatch, please report it"
    )]
    Panicked {
        /// Which configuration.
        what: &'static str,
        /// The panic's message.
        why: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; is another process using the port? choose another with --listen")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
enum ConfigSource {
    /// A file, given or found.
    File(PathBuf),
    /// None was given and none of the default paths exists.
    Defaults,
}

impl ConfigSource {
    fn find(given: Option<PathBuf>) -> ConfigSource {
        given
            .or_else(|| DEFAULT_PATHS.iter().map(PathBuf::from).find(|p| p.exists()))
            .map_or(ConfigSource::Defaults, ConfigSource::File)
    }

    fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::File(path) => Config::load(path),
            ConfigSource::Defaults => Ok(Config::empty()),
        }
    }

    /// Loads the configuration and, when `watched` is given (the files the running
    /// configuration was loaded from), what the files held: read before loading, so
    /// that a change made while loading shows at the next look. Blocking.
    fn load_watched(
        &self,
        watched: Option<Vec<PathBuf>>,
    ) -> (Result<Config, ConfigError>, Option<Fingerprint>) {
        let before = watched.map(|paths| Fingerprint::of(&paths));
        let config = self.load();
        let files = match (&config, before) {
            (Ok(config), Some(before)) => Some(before.for_loaded(config)),
            (_, before) => before,
        };
        (config, files)
    }
}

/// Work on the blocking pool that panicked (a bug), with the panic's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Panicked(String);

/// Runs `work` on the blocking pool: file reads and parsing never hold a worker.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        Panicked(match e.try_into_panic() {
            Ok(panic) => panic_message(&*panic),
            Err(e) => e.to_string(),
        })
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs the exporter until `shutdown` is cancelled.
pub async fn serve(args: ServeArgs, shutdown: CancellationToken) -> Result<(), AppError> {
    raise_open_file_limit();
    let config_source = ConfigSource::find(args.config.clone());
    let loading = config_source.clone();
    let watched = auto_reload_files(&args, &config_source);
    let (config, fingerprint) = blocking(move || loading.load_watched(watched))
        .await
        .map_err(|why| AppError::Panicked {
            what: "the configuration",
            why: why.0,
        })?;
    let config = config?;
    announce(&config_source, &config);
    let watch = fingerprint.map(|files| {
        let interval = args
            .config_auto_reload_interval
            .map_or(auto_reload::DEFAULT_INTERVAL, |i| i.get());
        tracing::info!(files = ?files.paths(), interval = ?interval, "--config.auto-reload: watching the configuration");
        Watch::new(interval, files)
    });
    let web = match args.web_config_file.clone() {
        Some(path) => {
            let loaded =
                blocking(move || Web::load(&path))
                    .await
                    .map_err(|why| AppError::Panicked {
                        what: "the web configuration",
                        why: why.0,
                    })?;
            Some(Arc::new(loaded.map_err(AppError::WebConfig)?))
        }
        None => None,
    };
    let listen = args.listen.unwrap_or(config.listen);

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    let tls = web.as_ref().is_some_and(|w| w.is_tls());
    tracing::info!(listen = %local, tls, "serving /metrics");

    let store = Arc::new(Store::default());
    let exporter = ExporterMetrics::new();
    if web.is_some() {
        exporter.web_config_loaded(true);
    }
    // certwatch's own serving certificate is a source like the targets.
    let own: Vec<Arc<dyn Source>> = match web.as_ref().filter(|w| w.is_tls()) {
        None => Vec::new(),
        Some(web) => match SelfCheck::new(web.clone(), local) {
            Ok(check) => vec![Arc::new(check)],
            Err(e) => {
                tracing::error!(error = %e, "cannot describe certwatch's own certificate as a target");
                Vec::new()
            }
        },
    };
    // One file-system watcher for every source that reads files.
    let hub = Hub::new();
    let shard = args.shard;
    exporter.shard(shard.index(), shard.count());
    let mut scheduler = Scheduler::new(config.concurrency, store.clone(), shutdown.child_token());
    scheduler.record_start_delays(exporter.start_delay());
    let (sources, share) = sources(&config, shard, &own, &hub);
    if shard.count() > 1 {
        tracing::info!(%shard, targets = share, configured = config.targets.len(), "probing this shard's share of the targets");
    }
    scheduler.apply(sources, config.concurrency);
    exporter.loaded(share, SystemTime::now());

    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let state = HttpState {
        store,
        collector: Arc::new(Collector::default()),
        exporter: exporter.clone(),
        probe_gate: Arc::new(ProbeGate::default()),
        scrapes: Arc::new(ScrapeGate::default()),
        config: Arc::new(RwLock::new(Arc::new(config))),
        limit: scheduler.limit(),
        reload: reload_tx,
        shutdown: shutdown.clone(),
    };
    let reloader = Reloader {
        config_source,
        shard,
        scheduler,
        config: state.config.clone(),
        exporter: exporter.clone(),
        web: web.clone(),
        own,
        hub,
        watch,
    };
    tokio::spawn(reloader.run(reload_rx, shutdown.clone()));

    let mut router = http::router(state);
    if let Some(web) = &web {
        let reported = exporter.clone();
        tokio::spawn(
            web.clone()
                .run(shutdown.clone(), move |ok| reported.web_config_loaded(ok)),
        );
        router = router.layer(axum::middleware::from_fn_with_state(
            web.clone(),
            web::layer::guard,
        ));
    }
    let server = web::serve::serve(listener, router, web, shutdown.clone());
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = server => Ok(()),
        () = drain_deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "HTTP responses still under way at the end of the grace period were dropped");
            Ok(())
        }
    }
}

/// The file `--config.auto-reload` starts watching, when it is on and there is one.
fn auto_reload_files(args: &ServeArgs, source: &ConfigSource) -> Option<Vec<PathBuf>> {
    if !args.config_auto_reload {
        return None;
    }
    match source {
        ConfigSource::File(path) => Some(vec![path.clone()]),
        ConfigSource::Defaults => {
            tracing::warn!(
                "--config.auto-reload: no configuration file to watch; give one with --config"
            );
            None
        }
    }
}

/// The sources of `config` that `shard` observes (endpoints, then certificate files),
/// then certwatch's own (which every process checks for itself); and how many of them
/// are the configuration's targets.
fn sources(
    config: &Config,
    shard: Shard,
    own: &[Arc<dyn Source>],
    hub: &Arc<Hub>,
) -> (Vec<Arc<dyn Source>>, usize) {
    let mut all = source::endpoints(&config.targets, Some(hub));
    all.retain(|source| shard.owns(source.name()));
    let share = all.len();
    let mut files = source::files(&config.files, Some(hub));
    files.retain(|source| shard.owns(source.name()));
    all.extend(files);
    all.extend(own.iter().cloned());
    (all, share)
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for
/// every Prometheus exporter: probes and scrapers each hold a descriptor, and running
/// out of them refuses scrapes.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open file limit; many targets or clients may exhaust it")
        }
    }
}

fn announce(source: &ConfigSource, config: &Config) {
    match source {
        ConfigSource::File(path) => tracing::info!(config = %path.display(), targets = config.targets.len(), files = config.files.len(), "configuration loaded"),
        ConfigSource::Defaults => tracing::info!(
            "no configuration file: none given with --config and none at {}; running with no targets. \
             Copy config/certwatch.yml to ./certwatch.yml, list your endpoints under `targets:`, and reload (SIGHUP)",
            DEFAULT_PATHS.join(" or ")
        ),
    }
}

/// Owns the scheduler and applies reloads, one at a time.
struct Reloader {
    config_source: ConfigSource,
    shard: Shard,
    scheduler: Scheduler,
    config: Arc<RwLock<Arc<Config>>>,
    exporter: ExporterMetrics,
    web: Option<Arc<Web>>,
    /// Sources that are not the configuration's (certwatch's own certificate).
    own: Vec<Arc<dyn Source>>,
    /// The file-system watcher the sources share.
    hub: Arc<Hub>,
    /// With `--config.auto-reload`: the watched files.
    watch: Option<Watch>,
}

impl Reloader {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<ReloadRequest>,
        shutdown: CancellationToken,
    ) {
        let mut hangups = hangup_signals();
        let mut looks = self.watch.as_ref().map(|w| {
            let mut looks = tokio::time::interval(w.interval());
            looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            looks
        });
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = next_look(&mut looks) => {
                    if let Some(changed) = self.look().await {
                        let changed: Vec<String> =
                            changed.iter().map(|p| p.display().to_string()).collect();
                        tracing::info!(changed = ?changed, "--config.auto-reload: the configuration changed; reloading");
                        let _ = self.reload_config(Trigger::AutoReload).await;
                    }
                }
                Some(()) = next_hangup(&mut hangups) => {
                    let _ = self.reload(Trigger::Signal).await;
                }
                Some(request) = requests.recv() => {
                    let result = self.reload(Trigger::Http(request.from)).await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }

    /// Reloads the configuration, then the web configuration; the summary of both,
    /// or every problem of either.
    async fn reload(&mut self, who: Trigger) -> Result<String, String> {
        let config = self.reload_config(who).await;
        let web = match self.web.clone() {
            None => Ok(None),
            Some(web) => {
                let result = match blocking(move || web.reload(who)).await {
                    Ok(result) => result.map_err(|e| e.problems()),
                    Err(why) => Err(vec![format!("reloading the web configuration failed unexpectedly: {why}; this is a bug in certwatch, please report it")]),
                };
                self.exporter.web_config_loaded(result.is_ok());
                result
                    .map(|()| Some("web configuration reloaded".to_owned()))
                    .map_err(|problems| problems.join("\n"))
            }
        };
        match (config, web) {
            (Ok(summary), Ok(None)) => Ok(summary),
            (Ok(summary), Ok(Some(web))) => Ok(format!("{summary}\n{web}")),
            (Err(problems), Ok(_)) | (Ok(_), Err(problems)) => Err(problems),
            (Err(config), Err(web)) => Err(format!("{config}\n{web}")),
        }
    }

    /// Looks at the watched files (on the blocking pool): the files that changed,
    /// when a reload is due.
    async fn look(&mut self) -> Option<Vec<PathBuf>> {
        let (base, full) = self.watch.as_mut()?.next_look();
        let (now, base) = blocking(move || (base.refresh(full), base)).await.ok()?;
        let same = now.replaced_unchanged(&base);
        if !same.is_empty() {
            let same: Vec<String> = same.iter().map(|p| p.display().to_string()).collect();
            tracing::debug!(files = ?same, "--config.auto-reload: replaced with the same content; nothing to reload");
        }
        self.watch.as_mut()?.saw(now)
    }

    async fn reload_config(&mut self, who: Trigger) -> Result<String, String> {
        let source = self.config_source.clone();
        let watched = self.watch.as_ref().map(|_| self.watched_paths());
        let loaded = blocking(move || source.load_watched(watched)).await;
        if let (Some(watch), Ok((result, Some(files)))) = (self.watch.as_mut(), &loaded) {
            match result {
                Ok(_) => watch.loaded(files.clone()),
                Err(_) => watch.failed(files.clone()),
            }
        }
        let config = match loaded.map(|(config, _)| config) {
            Ok(Ok(config)) => config,
            Ok(Err(error)) => return Err(self.failed(who, error.problems())),
            Err(why) => {
                return Err(self.failed(
                    who,
                    vec![format!("loading the configuration failed unexpectedly: {why}; this is a bug in certwatch, please report it")],
                ))
            }
        };
        let (sources, share) = sources(&config, self.shard, &self.own, &self.hub);
        let concurrency = config.concurrency;
        let scheduler = &mut self.scheduler;
        let changes = match std::panic::catch_unwind(AssertUnwindSafe(|| {
            scheduler.apply(sources, concurrency)
        })) {
            Ok(changes) => changes,
            Err(panic) => {
                let why = panic_message(&*panic);
                return Err(self.failed(
                    who,
                    vec![format!("applying the configuration failed unexpectedly: {why}; this is a bug in certwatch, please report it")],
                ));
            }
        };
        self.exporter.loaded(share, SystemTime::now());
        audit::config_reloaded(who, &changes.added, &changes.removed, &changes.changed);
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        Ok(format!(
            "configuration reloaded: {} added, {} removed, {} changed, {} unchanged",
            changes.added.len(),
            changes.removed.len(),
            changes.changed.len(),
            changes.kept
        ))
    }

    /// The files the running configuration was read from.
    fn watched_paths(&self) -> Vec<PathBuf> {
        let running = self
            .config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut paths: Vec<PathBuf> = match &self.config_source {
            ConfigSource::File(path) => vec![path.clone()],
            ConfigSource::Defaults => Vec::new(),
        };
        paths.extend(running.read_files());
        paths
    }

    /// Reports a failed reload everywhere; the problems, one per line.
    fn failed(&self, who: Trigger, problems: Vec<String>) -> String {
        self.exporter.reload_failed();
        for problem in &problems {
            tracing::error!(trigger = %who, problem = %problem, "configuration reload failed; keeping the running configuration");
        }
        audit::config_reload_failed(who, &problems);
        problems.join("\n")
    }
}

/// The next tick of `looks`; never, without `--config.auto-reload`.
async fn next_look(looks: &mut Option<tokio::time::Interval>) -> Option<()> {
    match looks {
        Some(looks) => {
            looks.tick().await;
            Some(())
        }
        None => std::future::pending().await,
    }
}

#[cfg(unix)]
fn hangup_signals() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(unix)]
async fn next_hangup(signals: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signals {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Option<()> {
    None
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Option<()>) -> Option<()> {
    std::future::pending().await
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
pub fn cancel_on_signals(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        shutdown.cancel();
        tracing::info!("stop signal received; finishing responses under way");
    });
}

/// `certwatch config check FILE`: every problem, one per line.
pub fn check_config(path: &Path) -> Result<usize, Vec<String>> {
    Config::load(path)
        .map(|c| c.targets.len())
        .map_err(|e| e.problems())
}
