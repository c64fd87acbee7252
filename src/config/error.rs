//! Configuration errors: each names the file, the line and column, and what to do.
//!
//! [`SettingError`] is what is wrong with one setting, as a value with its evidence;
//! `config::resolve` collects them with the path of the setting (`targets[3].timeout`),
//! and [`Problem`] places each at its line and column for [`ConfigError`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::locate::Position;
use super::types::{PromDuration, ValueError};
use crate::fileread::{PemError, ReadError};
use crate::trust::{AnchorError, IdentityError, SystemTrustError};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all (missing, not a regular file, too large...).
    #[error("{source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ReadError,
    },
    /// The file was read and has problems, all of which are listed.
    #[error("{}", Listing(origin, problems))]
    Invalid {
        /// The file name, as shown in messages.
        origin: String,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem, one per line, each as `file:line:column: message`.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { origin, problems } => {
                problems.iter().map(|p| format_problem(origin, p)).collect()
            }
        }
    }
}

struct Listing<'a>(&'a String, &'a Vec<Problem>);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&format_problem(self.0, problem))?;
        }
        Ok(())
    }
}

fn format_problem(origin: &str, problem: &Problem) -> String {
    match problem.position {
        Some(Position { line, column }) => format!("{origin}:{line}:{column}: {}", problem.message),
        None => format!("{origin}: {}", problem.message),
    }
}

/// What is wrong with one setting.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SettingError {
    /// `listen` does not parse.
    #[error(
        "invalid listen address {text:?}: write ip:port, e.g. \"0.0.0.0:9798\" or \"[::]:9798\""
    )]
    Listen {
        /// As written.
        text: String,
    },
    /// A number outside its range.
    #[error("{setting} is {value}, out of range: use {min} to {max}; {why}")]
    OutOfRange {
        /// The key.
        setting: &'static str,
        /// As written.
        value: u64,
        /// The least accepted.
        min: u64,
        /// The most accepted.
        max: u64,
        /// Why the range is what it is.
        why: &'static str,
    },
    /// `interval` below the minimum.
    #[error("interval {value} is too short: use at least {min}")]
    IntervalTooShort {
        /// As written.
        value: PromDuration,
        /// The shortest accepted.
        min: PromDuration,
    },
    /// `interval` above the maximum.
    #[error("interval {value} is too long: use at most {max} (probing less often would miss most of a certificate's renewals)")]
    IntervalTooLong {
        /// As written.
        value: PromDuration,
        /// The longest accepted.
        max: PromDuration,
    },
    /// `timeout: 0`.
    #[error("timeout must be longer than 0s")]
    TimeoutZero,
    /// `timeout` above the maximum.
    #[error("timeout {value} is too long: use at most {max} (a probe holds one of `concurrency`'s slots for as long as it runs)")]
    TimeoutTooLong {
        /// As written.
        value: PromDuration,
        /// The longest accepted.
        max: PromDuration,
    },
    /// `timeout` longer than `interval`, after merging.
    #[error("timeout ({timeout}) is longer than interval ({interval}): a probe could still run when the next one is due; lower timeout or raise interval")]
    TimeoutOverInterval {
        /// The timeout.
        timeout: PromDuration,
        /// The interval.
        interval: PromDuration,
    },
    /// `thresholds.critical` above `thresholds.warning`.
    #[error("thresholds.critical ({critical}) is longer than thresholds.warning ({warning}): a certificate would be critical before it is a warning; lower critical or raise warning")]
    ThresholdsInverted {
        /// The warning threshold.
        warning: PromDuration,
        /// The critical threshold.
        critical: PromDuration,
    },
    /// Only one of `client_cert_file` and `client_key_file`.
    #[error("client_cert_file and client_key_file go together: set both or neither")]
    ClientPairIncomplete,
    /// A `probe.allow` entry does not parse.
    #[error("invalid probe.allow entry {text:?}: write a host glob or CIDR range, a colon, and a port or *, e.g. \"*.example.com:443\" or \"10.1.0.0/16:*\"")]
    AllowRule {
        /// As written.
        text: String,
    },
    /// `probe.rate_limit` does not parse.
    #[error("invalid rate_limit {text:?}: write requests per second, minute or hour, e.g. \"10/s\" or \"60/m\"")]
    Rate {
        /// As written.
        text: String,
    },
    /// `probe.rate_limit` outside its range.
    #[error("rate_limit {text:?} is out of range: use from 1/h to {max_per_second}/s (remove rate_limit for no limit)")]
    RateOutOfRange {
        /// As written.
        text: String,
        /// The highest rate accepted, per second.
        max_per_second: u64,
    },
    /// Two targets with one name.
    #[error("duplicate target name {name:?}: give each target a unique `name:`")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The name of certwatch's own certificate.
    #[error("the target name {name:?} is reserved for certwatch's own serving certificate: choose another `name:`")]
    ReservedName {
        /// The name.
        name: String,
    },
    /// `name: ""`.
    #[error("name is empty: remove it to use the address, or give a name")]
    EmptyName,
    /// `module:` names no module.
    #[error(
        "unknown module {name:?} ({}); define it under `modules:`",
        known_modules(known)
    )]
    UnknownModule {
        /// As written.
        name: String,
        /// The modules defined.
        known: Vec<String>,
    },
    /// No `server_name` and the address's host is not a valid one.
    #[error("{source}; set server_name for address {address}")]
    ServerName {
        /// The address.
        address: String,
        /// Why its host is not a name.
        source: ValueError,
    },
    /// A PEM file did not load.
    #[error("{source}{}", pem_hint(source))]
    Pem {
        /// Why.
        source: Arc<PemError>,
    },
    /// A `ca_file` certificate cannot be an anchor.
    #[error("{}: {source}", file.display())]
    Anchor {
        /// The file.
        file: PathBuf,
        /// Which certificate and why.
        source: AnchorError,
    },
    /// The client certificate and key do not pair.
    #[error("{} and {}: {source}", cert.display(), key.display())]
    ClientPair {
        /// `client_cert_file`.
        cert: PathBuf,
        /// `client_key_file`.
        key: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// `trust: system` and the operating system's store is unusable.
    #[error(transparent)]
    SystemTrust(#[from] SystemTrustError),
    /// An ad-hoc probe asked for TLS files that were not loaded with the configuration.
    #[error("the TLS files of this module were not loaded with the configuration; reload the configuration")]
    NotLoaded,
    /// A `files:` source's `password_file` cannot be read.
    #[error("password_file: {source}")]
    PasswordFile {
        /// Why.
        source: Arc<ReadError>,
    },
    /// Not exactly one of `address`, `mx` and `srv`.
    #[error("{}", reach_problem(given))]
    Reach {
        /// The keys that are set.
        given: Vec<&'static str>,
    },
    /// `port` on a target that is not `mx`.
    #[error("port applies to mx targets only: an address carries its port (host:port), and SRV records carry theirs")]
    PortWithoutMx,
    /// `port: 0`.
    #[error("the port must be a number from 1 to 65535")]
    PortZero,
    /// `proxy_password_file` did not load.
    #[error("proxy_password_file: {source}")]
    ProxyPasswordFile {
        /// Why.
        source: Arc<ReadError>,
    },
    /// A password without a user to go with it.
    #[error("proxy_password_file is set but the proxy URL {url} names no user: write it as scheme://user@host:port")]
    ProxyPasswordWithoutUser {
        /// The URL.
        url: String,
    },
    /// A SOCKS5 user without a password.
    #[error("the SOCKS5 proxy {url} names a user but no password: SOCKS5 sends both (RFC 1929); name a file holding the password with proxy_password_file, or remove the user")]
    SocksPasswordMissing {
        /// The URL.
        url: String,
    },
    /// A SOCKS5 user or password over 255 bytes (RFC 1929).
    #[error("the SOCKS5 {what} is longer than {max} bytes, the most RFC 1929 allows")]
    SocksCredentialTooLong {
        /// `user` or `password`.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

fn reach_problem(given: &[&str]) -> String {
    match given {
        [] => "a target needs one of address (host:port), mx (a domain) or srv (_service._proto.domain)".to_owned(),
        keys => format!(
            "a target has exactly one of address, mx and srv, not {}",
            keys.join(" and ")
        ),
    }
}

impl SettingError {
    /// Whether this error is reported where the file or setting it comes from is
    /// written (a PEM file, a `ca_file`, `trust: system`), so a target inheriting it
    /// need not repeat it.
    pub fn reported_where_named(&self) -> bool {
        matches!(
            self,
            SettingError::Pem { .. }
                | SettingError::Anchor { .. }
                | SettingError::SystemTrust(_)
                | SettingError::ProxyPasswordFile { .. }
        )
    }
}

fn known_modules(known: &[String]) -> String {
    if known.is_empty() {
        "none is defined".to_owned()
    } else {
        format!("defined: {}", known.join(", "))
    }
}

fn pem_hint(error: &PemError) -> &'static str {
    match error {
        PemError::Read(ReadError::NotFound { .. }) => {
            " (relative paths start at the configuration file's directory)"
        }
        _ => "",
    }
}

impl Problem {
    /// A problem that serde_yaml found, with its position taken out of the message.
    pub fn from_yaml(error: &serde_yaml::Error) -> Self {
        let text = error.to_string();
        let message = match text.rsplit_once(" at line ") {
            Some((message, _)) if error.location().is_some() => message.to_owned(),
            _ => text,
        };
        let message = explain_unknown_field(message);
        Self {
            position: error.location().map(|l| Position {
                line: l.line(),
                column: l.column(),
            }),
            message,
        }
    }
}

/// serde says "unknown field `x`, expected one of ..."; add what to do.
fn explain_unknown_field(message: String) -> String {
    if message.contains("unknown field") {
        format!("{message}; remove the key or fix its spelling")
    } else {
        message
    }
}
