//! Wiring: load the configuration (and the web configuration), start the scheduler and
//! the HTTP server, reload on SIGHUP or `POST /-/reload`, and stop everything on one
//! cancellation token.
//!
//! Both configurations are loaded and validated before any port is bound, so a bad
//! file stops start-up with its errors. A reload re-reads both; each keeps running as it
//! was when its new version does not load. The details of each stage belong to its
//! module.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, Trigger};
use crate::cli::ServeArgs;
use crate::config::{Config, ConfigError, DEFAULT_PATHS};
use crate::http::{self, HttpState, ReloadRequest};
use crate::metrics::ExporterMetrics;
use crate::probe_gate::ProbeGate;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::web::{self, Web};

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
enum Source {
    /// A file, given or found.
    File(PathBuf),
    /// None was given and none of the default paths exists.
    Defaults,
}

impl Source {
    fn find(given: Option<PathBuf>) -> Source {
        given
            .or_else(|| DEFAULT_PATHS.iter().map(PathBuf::from).find(|p| p.exists()))
            .map_or(Source::Defaults, Source::File)
    }

    fn load(&self) -> Result<Config, ConfigError> {
        match self {
            Source::File(path) => Config::load(path),
            Source::Defaults => Ok(Config::empty()),
        }
    }
}

/// Runs the exporter until `shutdown` is cancelled.
pub async fn serve(args: ServeArgs, shutdown: CancellationToken) -> Result<(), AppError> {
    let source = Source::find(args.config.clone());
    let config = source.load()?;
    announce(&source, &config);
    let web = match &args.web_config_file {
        Some(path) => Some(Arc::new(Web::load(path).map_err(AppError::WebConfig)?)),
        None => None,
    };
    let listen = args.listen.unwrap_or(config.listen);

    let store = Arc::new(Store::default());
    let exporter = ExporterMetrics::new();
    let mut scheduler = Scheduler::new(config.concurrency, store.clone(), shutdown.child_token());
    scheduler.apply(&config.targets, config.concurrency);
    exporter.loaded(config.targets.len(), SystemTime::now());

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    let tls = web.as_ref().is_some_and(|w| w.is_tls());
    tracing::info!(listen = %local, tls, "serving /metrics");

    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let state = HttpState {
        store: store.clone(),
        exporter: exporter.clone(),
        probe_gate: Arc::new(ProbeGate::default()),
        config: Arc::new(RwLock::new(Arc::new(config))),
        permits: scheduler.permits(),
        reload: reload_tx,
        shutdown: shutdown.clone(),
    };
    let reloader = Reloader {
        source,
        scheduler,
        config: state.config.clone(),
        exporter,
        web: web.clone(),
    };
    tokio::spawn(reloader.run(reload_rx, shutdown.clone()));

    let mut router = http::router(state);
    if let Some(web) = &web {
        tokio::spawn(web.clone().run(store, local, shutdown.clone()));
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

fn announce(source: &Source, config: &Config) {
    match source {
        Source::File(path) => tracing::info!(config = %path.display(), targets = config.targets.len(), "configuration loaded"),
        Source::Defaults => tracing::info!(
            "no configuration file: none given with --config and none at {}; running with no targets. \
             Copy config/certwatch.yml to ./certwatch.yml, list your endpoints under `targets:`, and reload (SIGHUP)",
            DEFAULT_PATHS.join(" or ")
        ),
    }
}

/// Owns the scheduler and applies reloads, one at a time.
struct Reloader {
    source: Source,
    scheduler: Scheduler,
    config: Arc<RwLock<Arc<Config>>>,
    exporter: ExporterMetrics,
    web: Option<Arc<Web>>,
}

impl Reloader {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<ReloadRequest>,
        shutdown: CancellationToken,
    ) {
        let mut hangups = hangup_signals();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = next_hangup(&mut hangups) => {
                    let _ = self.reload(Trigger::Signal);
                }
                Some(request) = requests.recv() => {
                    let _ = request.reply.send(self.reload(Trigger::Http(request.from)));
                }
            }
        }
    }

    /// Reloads the configuration, then the web configuration; the summary of both,
    /// or every problem of either.
    fn reload(&mut self, who: Trigger) -> Result<String, String> {
        let config = self.reload_config(who);
        let web = match &self.web {
            None => Ok(None),
            Some(web) => web
                .reload(who)
                .map(|()| Some("web configuration reloaded".to_owned()))
                .map_err(|problems| problems.join("\n")),
        };
        match (config, web) {
            (Ok(summary), Ok(None)) => Ok(summary),
            (Ok(summary), Ok(Some(web))) => Ok(format!("{summary}\n{web}")),
            (Err(problems), Ok(_)) | (Ok(_), Err(problems)) => Err(problems),
            (Err(config), Err(web)) => Err(format!("{config}\n{web}")),
        }
    }

    fn reload_config(&mut self, who: Trigger) -> Result<String, String> {
        match self.source.load() {
            Err(error) => {
                self.exporter.reload_failed();
                let problems = error.problems();
                for problem in &problems {
                    tracing::error!(trigger = %who, problem = %problem, "configuration reload failed; keeping the running configuration");
                }
                audit::config_reload_failed(who, &problems);
                Err(error.to_string())
            }
            Ok(config) => {
                let changes = self.scheduler.apply(&config.targets, config.concurrency);
                self.exporter
                    .loaded(config.targets.len(), SystemTime::now());
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
        }
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

/// The names of `targets`, for set operations.
pub fn names(targets: &[Arc<crate::config::TargetSpec>]) -> HashSet<&str> {
    targets.iter().map(|t| t.name.as_str()).collect()
}
