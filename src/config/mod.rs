//! The configuration: read the YAML file, validate it, resolve every target.
//!
//! Two stages, as the data flows: [`raw`] mirrors the file and rejects unknown keys and
//! bad values with their line and column; `resolve` merges target > module >
//! `defaults` > built-in into immutable [`TargetSpec`]s, loads PEM files and reports
//! every remaining problem at once, each a [`SettingError`] placed at its line and
//! column. Nothing downstream sees an unfilled `Option`, and every number is within
//! the bounds below, so nothing downstream can overflow on one.
//!
//! Files are read through `crate::fileread` (bounded, never a FIFO or a device);
//! loading is blocking and belongs off the async workers.

mod error;
mod files;
mod locate;
pub mod raw;
pub mod reach;
mod resolve;
mod types;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, Problem, SettingError};
pub use files::{FileSpec, PathGlob};
pub use locate::Position;
pub(crate) use locate::Positions;
pub use reach::{Discover, DnsSettings, Proxy, ProxyKind, ProxyUrl, Secret};
pub use resolve::{AllowRule, ProbeLimits, Reach, TargetSpec, DEFAULT_PROBE_MAX_IN_FLIGHT};
pub(crate) use types::deserialize_from_str;
pub use types::{
    Address, AddressProblem, FileFormat, Host, IpFamily, KeyType, LabelName, Legacy, PromDuration,
    ResolveMode, StartTls, TlsName, Trust, ValueError, XmppDomain,
};

/// Where certwatch looks for a configuration when `--config` is not given, in order.
pub const DEFAULT_PATHS: [&str; 2] = ["./certwatch.yml", "/etc/certwatch/certwatch.yml"];

/// The built-in listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9798";
/// The built-in number of probes in flight at most.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The built-in probe interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// The built-in probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most probes in flight `concurrency` accepts (the contract's bound; the
/// scheduler's semaphore panics past `usize::MAX >> 3`).
pub const MAX_CONCURRENCY: usize = 100_000;
/// The most concurrent `GET /probe` requests `probe.max_in_flight` accepts.
pub const MAX_PROBE_MAX_IN_FLIGHT: usize = 100_000;
/// The shortest probe interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest probe interval accepted: 30 days. Certificates live 47 to 398 days, so
/// probing less often would miss most renewals and failed deployments; and every
/// `Instant + interval` downstream stays far from overflowing.
pub const MAX_INTERVAL: Duration = Duration::from_secs(30 * 86_400);
/// The longest probe timeout accepted: 10 minutes. A probe holds one of
/// `concurrency`'s slots for as long as it runs; the slowest STARTTLS servers answer
/// within a minute.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The slowest `probe.rate_limit` accepted, per second: `1/h` (a slower one would
/// tell clients to retry hours later).
pub const MIN_RATE_PER_SECOND: f64 = 1.0 / 3600.0;
/// The fastest `probe.rate_limit` accepted, per second (faster is no limit at all:
/// remove the setting instead).
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;
/// The largest configuration file read: 64 MiB. A target written out in full
/// (address, name, module, server_name, a `tls:` block with three paths, two labels)
/// takes about 330 bytes, so 100,000 targets take 33 MB
/// (measured: `config check` of such a file peaks at 474 MB of memory); the limit
/// leaves twice that for comments and longer names, and stops a device or a runaway
/// file long before memory runs out.
pub const CONFIG_FILE_LIMIT: u64 = 64 * crate::fileread::MIB;

/// The target name of certwatch's own serving certificate, which no configured
/// target may take.
pub const SELF_TARGET: &str = "certwatch-self";

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it came from; `None` for the empty built-in configuration.
    pub source: Option<PathBuf>,
    /// The HTTP listen address.
    pub listen: SocketAddr,
    /// Probes in flight at most.
    pub concurrency: usize,
    /// Every target, in file order.
    pub targets: Vec<Arc<TargetSpec>>,
    /// Limits on `GET /probe`.
    pub probe_limits: ProbeLimits,
    resolver: resolve::Resolver,
    /// Every `files:` source, in file order.
    pub files: Vec<Arc<FileSpec>>,
    /// `thresholds:`, for the status page.
    pub thresholds: ExpiryThresholds,
}

/// When a certificate that counts becomes a warning or critical (`thresholds:`).
/// Plain durations: `severity::Thresholds` is built from them where it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryThresholds {
    /// A warning below this.
    pub warning: Duration,
    /// Critical below this.
    pub critical: Duration,
}

impl ExpiryThresholds {
    /// 21 days and 7 days: the status page's, `check --warn/--crit`'s and the shipped
    /// rules' and dashboard's numbers.
    pub const DEFAULT: ExpiryThresholds = ExpiryThresholds {
        warning: Duration::from_secs(21 * 86_400),
        critical: Duration::from_secs(7 * 86_400),
    };
}

impl Config {
    /// Reads and validates the file at `path` (at most [`CONFIG_FILE_LIMIT`] bytes;
    /// a FIFO, a device or a directory is refused before anything is read) and the PEM
    /// files it names. Blocking.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::fileread::read_text(path, CONFIG_FILE_LIMIT).map_err(|source| {
            ConfigError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let mut config = Config::from_yaml(&text, &path.display().to_string(), base_dir)?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Validates `text`; `origin` names it in messages and relative PEM paths are taken
    /// from `base_dir`.
    pub fn from_yaml(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        resolve::resolve(text, origin, base_dir)
    }

    /// The configuration with no targets, used when no file exists.
    pub fn empty() -> Config {
        Config::from_yaml("{}", "built-in", Path::new("."))
            .expect("the empty configuration is valid")
    }

    /// The files this configuration read besides itself: every PEM file it named
    /// (CA, client certificate and key), every proxy password file and every `files:`
    /// source's `password_file`,
    /// as found from the current directory. What `--config.auto-reload` watches with
    /// the file itself. (Not the certificate files of `files:` sources: those are
    /// read and watched by their sources.)
    pub fn read_files(&self) -> Vec<PathBuf> {
        let mut files = self.resolver.files();
        files.extend(
            self.files
                .iter()
                .filter_map(|source| source.password_file.as_ref())
                .map(|file| self.resolver.path(file)),
        );
        files.sort();
        files.dedup();
        files
    }

    /// The spec for an ad-hoc probe of `address` with `module` (for `GET /probe`),
    /// resolved as a target with only those settings would be. Reads no file: the TLS
    /// material of `defaults` and of every module was loaded with the configuration.
    pub fn adhoc_target(
        &self,
        address: Address,
        module: Option<&str>,
        server_name: Option<TlsName>,
    ) -> Result<TargetSpec, SettingError> {
        self.resolver
            .adhoc(Reach::Address(address), module, server_name)
    }

    /// [`Config::adhoc_target`] for an address or a discovered target (`GET
    /// /probe?mx=` or `?srv=`).
    pub fn adhoc_reach(
        &self,
        reach: Reach,
        module: Option<&str>,
        server_name: Option<TlsName>,
    ) -> Result<TargetSpec, SettingError> {
        self.resolver.adhoc(reach, module, server_name)
    }
}

/// The spec of a one-off probe with `settings` (as `certwatch check` builds them);
/// relative file paths start at the current directory. Reads the files named
/// (blocking); bad values are refused as in a configuration file.
pub fn one_off_target(
    address: Address,
    server_name: Option<TlsName>,
    settings: raw::RawSettings,
) -> Result<TargetSpec, SettingError> {
    resolve::Resolver::standalone(Path::new("."), DnsSettings::default()).one_off(
        Reach::Address(address),
        server_name,
        settings,
    )
}

/// The spec of a one-off probe of `reach` (`certwatch check`), resolving names with
/// `dns_servers` (the system's resolver when empty: `/etc/resolv.conf` is read now)
/// and `dns_timeout`. Reads the files named (blocking).
pub fn one_off_reach(
    reach: Reach,
    server_name: Option<TlsName>,
    settings: raw::RawSettings,
    dns_servers: Vec<SocketAddr>,
    dns_timeout: Duration,
) -> Result<TargetSpec, SettingError> {
    let dns = DnsSettings::load(dns_servers, dns_timeout);
    resolve::Resolver::standalone(Path::new("."), dns).one_off(reach, server_name, settings)
}
