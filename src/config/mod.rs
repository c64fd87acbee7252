//! The configuration: read the YAML file, validate it, resolve every target.
//!
//! Two stages, as the data flows: [`raw`] mirrors the file and rejects unknown keys and
//! bad values with their line and column; `resolve` merges target > module >
//! `defaults` > built-in into immutable [`TargetSpec`]s, loads PEM files and reports
//! every remaining problem at once. Nothing downstream sees an unfilled `Option`.

mod error;
mod locate;
pub mod raw;
mod resolve;
mod types;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, Problem};
pub use locate::Position;
pub(crate) use locate::Positions;
pub use resolve::{ProbeLimits, TargetSpec};
pub(crate) use types::deserialize_from_str;
pub use types::{
    Address, Host, IpFamily, LabelName, PromDuration, ResolveMode, StartTls, TlsName, Trust,
    XmppDomain,
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
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
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

    /// The spec for an ad-hoc probe of `address` with `module` (for `GET /probe` and
    /// `check`), resolved as a target with only those settings would be.
    pub fn adhoc_target(
        &self,
        address: Address,
        module: Option<&str>,
        server_name: Option<TlsName>,
    ) -> Result<TargetSpec, String> {
        self.resolver.adhoc(address, module, server_name)
    }
}

/// The spec of a one-off probe with `settings` (as `certwatch check` builds them);
/// relative file paths start at the current directory.
pub fn one_off_target(
    address: Address,
    server_name: Option<TlsName>,
    settings: raw::RawSettings,
) -> Result<TargetSpec, String> {
    resolve::Resolver::standalone(Path::new(".")).unscheduled(address, server_name, settings)
}
