//! certwatch's own endpoint, secured as the Prometheus exporter-toolkit's
//! `--web.config.file` secures node_exporter's: TLS (with client certificates), basic
//! authentication and extra response headers; and serving it.
//!
//! ```text
//! web.yml ──► config ──► tls (+ client_auth) ──► Active ──► serve (each handshake)
//!                    └─► auth (users) ─────────────┘    └──► layer (each request)
//! watch (files' stamps) / SIGHUP / POST /-/reload ──► Web::reload ──► self_cert
//! ```
//!
//! - [`config`] reads and validates the file; [`tls`] builds the rustls configuration
//!   and [`client_auth`] the client certificate policy, from the values of
//!   [`settings`]; [`auth`] checks credentials. Every file is read through
//!   `crate::fileread` (bounded, never a FIFO or a device).
//! - [`Web`] holds the running configuration ([`Active`]) and swaps in a new one on
//!   reload: a file that does not load leaves the running one, and the certificate in
//!   service, in place. [`Web::run`] polls the files named ([`watch`]) and reloads when
//!   they change; [`self_cert`] is the source the scheduler runs to report
//!   `certwatch-self`, again after each reload.
//! - [`serve`] accepts connections (plain or TLS) for the router; [`layer`] applies
//!   authentication and headers to every request.

pub mod auth;
pub mod client_auth;
pub mod config;
pub mod layer;
pub mod self_cert;
pub mod serve;
pub mod settings;
pub mod tls;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::ServerConfig;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, Trigger};
use crate::config::ConfigError;
use auth::Authenticator;
use config::WebConfig;
use tls::Serving;
use watch::{Stamp, Stamps};

/// Why a reload of the web configuration was refused; the running one stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file or a file it names does not load.
    #[error("{0}")]
    Invalid(ConfigError),
    /// The new file turns TLS on or off, which the open listener cannot do.
    #[error("{}: switching between HTTP and HTTPS needs a restart; the listener keeps serving {serving}", path.display())]
    SchemeChange {
        /// The web configuration file.
        path: PathBuf,
        /// What the listener keeps serving.
        serving: &'static str,
    },
}

impl ReloadError {
    /// Every problem, one per line, each with its position when known.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ReloadError::Invalid(error) => error.problems(),
            ReloadError::SchemeChange { .. } => vec![self.to_string()],
        }
    }
}

/// A web configuration in service, with the TLS material it named.
#[derive(Debug)]
pub struct Active {
    /// The settings.
    pub config: WebConfig,
    /// The rustls configurations, with TLS.
    pub serving: Option<Serving>,
    /// The web configuration file and the files it names, as they were when read.
    stamps: Stamps,
}

/// The web layer: the running configuration and how to reload it.
#[derive(Debug)]
pub struct Web {
    path: PathBuf,
    active: RwLock<Arc<Active>>,
    /// Checks basic-auth credentials; its cache outlives reloads.
    pub authenticator: Authenticator,
    reloading: Mutex<()>,
    changed: Notify,
}

impl Web {
    /// Reads the web configuration at `path` and every file it names.
    pub fn load(path: &Path) -> Result<Web, ConfigError> {
        let active = read(path)?;
        announce(path, &active);
        Ok(Web {
            path: path.to_owned(),
            active: RwLock::new(Arc::new(active)),
            authenticator: Authenticator::new(),
            reloading: Mutex::new(()),
            changed: Notify::new(),
        })
    }

    /// The configuration in service.
    pub fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.active().serving.is_some()
    }

    /// The rustls configuration for a new connection, with TLS.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.active().serving.as_ref().map(|s| s.config.clone())
    }

    /// Re-reads the web configuration and its files and puts them in service; on any
    /// problem keeps the running ones. Logs an audit event either way.
    pub fn reload(&self, who: Trigger) -> Result<(), ReloadError> {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = self.active();
        let fingerprint = |a: &Active| {
            a.serving
                .as_ref()
                .map(|s| s.fingerprint.clone())
                .unwrap_or_default()
        };
        let result = read(&self.path)
            .map_err(ReloadError::Invalid)
            .and_then(|next| {
                if next.serving.is_some() != previous.serving.is_some() {
                    return Err(ReloadError::SchemeChange {
                        path: self.path.clone(),
                        serving: if previous.serving.is_some() {
                            "HTTPS"
                        } else {
                            "HTTP"
                        },
                    });
                }
                Ok(next)
            });
        match result {
            Ok(next) => {
                audit::web_reloaded(who, &fingerprint(&next), &fingerprint(&previous));
                *self
                    .active
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
                self.changed.notify_one();
                Ok(())
            }
            Err(error) => {
                audit::web_reload_failed(who, &error.problems());
                Err(error)
            }
        }
    }

    /// Resolves at the next successful reload (one waiter: `certwatch-self`).
    pub async fn reloaded(&self) {
        self.changed.notified().await;
    }

    /// Until `shutdown`: reloads when a watched file changes, once it has stayed the
    /// same for one poll, so that a certificate and its key written one after the
    /// other load together. Files are read on the blocking pool; `reported` hears
    /// whether each reload succeeded.
    pub async fn run(
        self: Arc<Self>,
        shutdown: CancellationToken,
        reported: impl Fn(bool) + Send + 'static,
    ) {
        let mut polls = tokio::time::interval(watch::POLL_INTERVAL);
        polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: Option<Stamps> = None;
        let mut failed: Option<Stamps> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = polls.tick() => {}
            }
            let active = self.active();
            let paths = active.stamps.paths();
            let Ok(now) = tokio::task::spawn_blocking(move || Stamps::of(&paths)).await else {
                continue;
            };
            let settled = seen.as_ref() == Some(&now);
            if now != active.stamps && settled && failed.as_ref() != Some(&now) {
                let web = self.clone();
                let reloaded =
                    tokio::task::spawn_blocking(move || web.reload(Trigger::FileChange)).await;
                reported(matches!(reloaded, Ok(Ok(()))));
                failed = match reloaded {
                    Ok(Ok(())) => None,
                    // A failed or panicked reload is not retried until the files change again.
                    Ok(Err(_)) | Err(_) => Some(now.clone()),
                };
            }
            seen = Some(now);
        }
    }
}

/// Reads the configuration at `path` and its files, stamping each before reading it so
/// that a change made while reading is seen at the next poll.
fn read(path: &Path) -> Result<Active, ConfigError> {
    let mut stamps = Stamps::default();
    stamps.push(path.to_owned(), Stamp::of(path));
    let text = crate::fileread::read_text(path, config::WEB_CONFIG_LIMIT).map_err(|source| {
        ConfigError::Read {
            path: path.to_owned(),
            source,
        }
    })?;
    let origin = path.display().to_string();
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let config = config::parse(&text, &origin, base_dir)?;
    for file in config.tls.as_ref().map(|t| t.files()).unwrap_or_default() {
        let stamp = Stamp::of(&file);
        stamps.push(file, stamp);
    }
    let serving = config::load_tls(&text, &origin, &config)?;
    Ok(Active {
        config,
        serving,
        stamps,
    })
}

fn announce(path: &Path, active: &Active) {
    let users = active.config.users.len();
    match (&active.config.tls, &active.serving) {
        (Some(tls), Some(serving)) => tracing::info!(
            web_config = %path.display(),
            client_auth_type = tls.client_auth.as_str(),
            certificate = %serving.fingerprint,
            basic_auth_users = users,
            http2 = active.config.http2,
            "web configuration loaded: serving HTTPS"
        ),
        _ => {
            tracing::info!(web_config = %path.display(), basic_auth_users = users, "web configuration loaded: serving plain HTTP");
            if users > 0 {
                tracing::warn!(
                    web_config = %path.display(),
                    "basic_auth_users without tls_server_config: passwords cross the network in clear text; add tls_server_config"
                );
            }
        }
    }
}
