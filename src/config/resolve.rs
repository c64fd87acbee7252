//! From the raw file to immutable target specs.
//!
//! Settings resolve as: the target's own > its module's > `defaults` > built-in. Problems
//! that need the whole file (unknown modules, duplicate names, unreadable PEM files,
//! numbers out of range) are all collected as [`SettingError`]s, then placed at their
//! line and column with `config::locate`. PEM files are read once per path (through
//! `crate::fileread`: bounded, and never a FIFO or a device), and targets with the same
//! TLS settings share one [`TlsMaterial`]: plain data (anchors, client certificate and
//! key) that `probe::tls` turns into a rustls configuration when first used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{ConfigError, Problem, SettingError};
use super::files::{file_trust, FileSpec};
use super::locate::Positions;
use super::raw::{
    RawConfig, RawDns, RawFiles, RawProbeLimits, RawSettings, RawTarget, RawThresholds, RawTls,
};
use super::reach::{
    read_password, Discover, DnsSettings, MxDomain, Proxy, ProxyKind, ProxySetting, Secret,
    SrvName, DEFAULT_DNS_TIMEOUT, DEFAULT_MX_PORT, MAX_DNS_SERVERS, MAX_SOCKS_CREDENTIAL,
};
use super::types::{
    Address, Host, IpFamily, KeyType, LabelName, Legacy, PromDuration, ResolveMode, StartTls,
    TlsName, Trust,
};
use super::{
    Config, ExpiryThresholds, DEFAULT_CONCURRENCY, DEFAULT_INTERVAL, DEFAULT_LISTEN,
    DEFAULT_TIMEOUT, MAX_CONCURRENCY, MAX_INTERVAL, MAX_PROBE_MAX_IN_FLIGHT, MAX_RATE_PER_SECOND,
    MAX_TIMEOUT, MIN_INTERVAL, MIN_RATE_PER_SECOND, SELF_TARGET,
};
use crate::fileread::glob::Pattern;
use crate::fileread::{self, PemError};
use crate::trust::{
    BaseAnchors, MaterialError, SystemRoots, SystemTrustError, TlsMaterial, TrustStore,
};

/// The built-in cap on concurrent `GET /probe` requests.
pub const DEFAULT_PROBE_MAX_IN_FLIGHT: usize = 32;

/// Everything needed to probe one target, fully resolved. Plain data: the TLS material
/// is loaded and checked, and `probe::tls` owns what is built from it.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The `target` label: the configured name, or the address.
    pub name: String,
    /// Where to connect.
    pub address: Address,
    /// SNI and the name verified.
    pub server_name: TlsName,
    /// The STARTTLS dialect.
    pub starttls: StartTls,
    /// The XMPP domain for `starttls: xmpp`, when it differs from `server_name`.
    pub xmpp_domain: Option<String>,
    /// Which addresses of the name are probed.
    pub resolve: ResolveMode,
    /// Which address families are probed.
    pub ip_family: IpFamily,
    /// How often.
    pub interval: Duration,
    /// Bound on one whole probe.
    pub timeout: Duration,
    /// User labels, sorted by name.
    pub labels: Vec<(LabelName, String)>,
    /// The trust anchors and client identity, as loaded; shared by every target with
    /// the same TLS settings.
    pub tls: Arc<TlsMaterial>,
    /// Which key type's signature schemes and suites are offered.
    pub key_type: KeyType,
    /// Whether SNI is sent.
    pub sni: bool,
    /// Whether the legacy second hello is sent when the modern handshake fails on the
    /// version or finds nothing in common.
    pub legacy: Legacy,
    /// The file (or glob) whose certificate the server should be serving.
    pub served_from: Option<Pattern>,
    /// OCSP and CRL checking.
    pub revocation: crate::revocation::Settings,
    /// For an `mx` or `srv` target, how its hosts are found; `address` then holds the
    /// domain (or SRV name) and the port (0 for SRV, whose records carry the ports), and
    /// `server_name` the name hosts are verified for unless each uses its own.
    pub discover: Option<Discover>,
    /// The proxy connections go through.
    pub proxy: Option<Arc<Proxy>>,
    /// How names are resolved; shared by every target of a configuration.
    pub dns: Arc<DnsSettings>,
}

/// What a target reaches: one address, or the hosts that DNS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// `host:port`.
    Address(Address),
    /// Every MX host of `domain`, at `port`.
    Mx {
        /// The domain.
        domain: MxDomain,
        /// The port probed on each host.
        port: u16,
    },
    /// Every target of an SRV name.
    Srv(SrvName),
}

impl Reach {
    /// The `target` label of a target that has no `name`.
    pub fn default_name(&self) -> String {
        match self {
            Reach::Address(address) => address.to_string(),
            Reach::Mx { domain, .. } => domain.to_string(),
            Reach::Srv(name) => name.to_string(),
        }
    }
}

impl TargetSpec {
    /// Whether probing `other` would be the same as probing `self`, so that a reload
    /// can keep this target's schedule and series. TLS material is compared by
    /// content: a `ca_file` rewritten in place is a change.
    pub fn same_probe(&self, other: &TargetSpec) -> bool {
        self.name == other.name
            && self.address == other.address
            && self.server_name == other.server_name
            && self.starttls == other.starttls
            && self.xmpp_domain == other.xmpp_domain
            && self.resolve == other.resolve
            && self.ip_family == other.ip_family
            && self.interval == other.interval
            && self.timeout == other.timeout
            && self.labels == other.labels
            && self.tls.id() == other.tls.id()
            && self.key_type == other.key_type
            && self.sni == other.sni
            && self.legacy == other.legacy
            && self.revocation == other.revocation
            && self.discover == other.discover
            && self.proxy == other.proxy
            && self.dns == other.dns
            && self.served_from == other.served_from
    }
}

/// The TLS settings of a target, after merging: what its material is loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TlsKey {
    trust: Trust,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
}

/// Limits on `GET /probe`.
#[derive(Debug, Clone)]
pub struct ProbeLimits {
    /// When set, only these targets may be probed.
    pub allow: Option<Vec<AllowRule>>,
    /// Requests per second per client address.
    pub rate_per_second: Option<f64>,
    /// Concurrent `/probe` requests at most.
    pub max_in_flight: usize,
}

/// One `probe.allow` entry: a host glob or CIDR range, and a port or any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Glob(String),
    Cidr { network: IpAddr, prefix: u8 },
}

impl AllowRule {
    fn parse(text: &str) -> Result<Self, SettingError> {
        let hint = || SettingError::AllowRule {
            text: text.to_owned(),
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(hint)?;
        let port = match port {
            "*" => None,
            p => Some(p.parse::<u16>().map_err(|_| hint())?),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = match host.split_once('/') {
            Some((net, prefix)) => {
                let network: IpAddr = net.parse().map_err(|_| hint())?;
                let max = if network.is_ipv4() { 32 } else { 128 };
                let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(hint)?;
                HostPattern::Cidr { network, prefix }
            }
            None if host.is_empty() => return Err(hint()),
            None => HostPattern::Glob(host.to_ascii_lowercase()),
        };
        Ok(Self { host, port })
    }

    /// Whether `address` is allowed by this rule.
    pub fn permits(&self, address: &Address) -> bool {
        if self.port.is_some_and(|p| p != address.port) {
            return false;
        }
        match (&self.host, &address.host) {
            (HostPattern::Glob(glob), host) => {
                glob_matches(glob.as_bytes(), host.to_string().as_bytes())
            }
            (HostPattern::Cidr { network, prefix }, Host::Ip(ip)) => {
                in_network(*ip, *network, *prefix)
            }
            (HostPattern::Cidr { .. }, Host::Name(_)) => false,
        }
    }

    /// Whether this rule allows connecting to `ip` (when certwatch resolved the name
    /// itself) for `host` at `port`: a glob must match the host, or a CIDR range
    /// contain the address. A name that a proxy resolves (`ip` is `None`) can only
    /// match a glob.
    pub fn permits_resolved(&self, host: &Host, port: u16, ip: Option<IpAddr>) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.host, ip) {
            (HostPattern::Glob(glob), _) => {
                glob_matches(glob.as_bytes(), host.to_string().as_bytes())
            }
            (HostPattern::Cidr { network, prefix }, Some(ip)) => {
                in_network(ip.to_canonical(), *network, *prefix)
            }
            (HostPattern::Cidr { .. }, None) => false,
        }
    }

    /// Whether this rule is a CIDR range that allows `port`: one that a name can
    /// match once resolved.
    pub fn is_cidr_for(&self, port: u16) -> bool {
        matches!(self.host, HostPattern::Cidr { .. }) && self.port.is_none_or(|p| p == port)
    }
}

/// Whether `text` matches `glob`, where `*` stands for any run of bytes. Greedy with
/// one backtrack point (the last `*`), so the time is at most `glob.len() * text.len()`
/// whatever the pattern: a client of `/probe` chooses `text`.
fn glob_matches(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                last_star = Some((g + 1, t));
                g += 1;
            }
            Some(c) if *c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match last_star {
                // Let the last `*` take one more byte, and retry from there.
                Some((after_star, taken)) => {
                    last_star = Some((after_star, taken + 1));
                    g = after_star;
                    t = taken + 1;
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|c| *c == b'*')
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let (ip, network, bits) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    shift >= bits || (ip >> shift) == (network >> shift)
}

/// Resolves targets from settings; kept after loading for ad-hoc probes, which reuse
/// the TLS material loaded with the configuration and read no file.
#[derive(Debug, Default)]
pub(super) struct Resolver {
    defaults: RawSettings,
    modules: BTreeMap<String, RawSettings>,
    base_dir: PathBuf,
    /// Certificate files read, by path.
    certs: HashMap<PathBuf, Result<Arc<[CertificateDer<'static>]>, SettingError>>,
    /// Whether each `ca_file` holds only usable anchors, by path.
    anchors: HashMap<PathBuf, Result<(), SettingError>>,
    /// Key files read, by path.
    keys: HashMap<PathBuf, Result<Arc<PrivateKeyDer<'static>>, SettingError>>,
    /// The operating system's store, read at most once per load.
    system: Option<Result<SystemRoots, SystemTrustError>>,
    /// The material of each TLS setting met.
    materials: HashMap<TlsKey, Result<Arc<TlsMaterial>, SettingError>>,
    /// Proxy password files read, by path.
    passwords: HashMap<PathBuf, Result<Secret, SettingError>>,
    /// How names are resolved.
    dns: Arc<DnsSettings>,
}

/// Problems found so far, each at a path in the file.
#[derive(Default)]
struct Problems(Vec<(String, SettingError)>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, error: SettingError) {
        self.0.push((path.into(), error));
    }
}

pub(super) fn resolve(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let invalid = |problems: Vec<Problem>| ConfigError::Invalid {
        origin: origin.to_owned(),
        problems,
    };
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| invalid(vec![Problem::from_yaml(&e)]))?
    };
    let mut problems = Problems::default();
    let config = build(raw, base_dir, &mut problems);
    if problems.0.is_empty() {
        return Ok(config);
    }
    let positions = Positions::index(text);
    let mut located: Vec<Problem> = problems
        .0
        .into_iter()
        .map(|(path, error)| Problem {
            position: positions.find(&path),
            message: error.to_string(),
        })
        .collect();
    located.sort_by_key(|p| p.position);
    Err(invalid(located))
}

fn build(raw: RawConfig, base_dir: &Path, problems: &mut Problems) -> Config {
    let listen =
        parse_listen(raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN)).unwrap_or_else(|e| {
            problems.add("listen", e);
            DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses")
        });
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    check_count(
        "concurrency",
        concurrency,
        MAX_CONCURRENCY,
        "each probe in flight holds a connection and a task, and the scheduler's semaphore has a hard limit",
        problems,
    );
    let probe_limits = probe_limits(raw.probe.unwrap_or_default(), problems);
    let dns = dns_settings(raw.dns.unwrap_or_default(), problems);
    let thresholds = thresholds(raw.thresholds.unwrap_or_default(), problems);

    let mut resolver = Resolver {
        defaults: raw.defaults,
        modules: raw.modules,
        base_dir: base_dir.to_owned(),
        dns: Arc::new(dns),
        ..Default::default()
    };
    check_settings(&resolver.defaults, "defaults", problems);
    for (name, module) in &resolver.modules {
        check_settings(module, &format!("modules.{name}"), problems);
    }
    resolver.load_files(&raw.targets, problems);

    let mut names = HashSet::new();
    let mut targets = Vec::with_capacity(raw.targets.len());
    for (i, target) in raw.targets.iter().enumerate() {
        let path = format!("targets[{i}]");
        check_settings(&target.own_settings(), &path, problems);
        let Some(reach) = reach(target, &path, problems) else {
            continue;
        };
        let name = target.name.clone().unwrap_or_else(|| reach.default_name());
        if !names.insert(name.clone()) {
            let at = match (&target.name, &reach) {
                (Some(_), _) => "name",
                (None, Reach::Address(_)) => "address",
                (None, Reach::Mx { .. }) => "mx",
                (None, Reach::Srv(_)) => "srv",
            };
            problems.add(format!("{path}.{at}"), SettingError::DuplicateName { name });
            continue;
        }
        if name == SELF_TARGET {
            problems.add(format!("{path}.name"), SettingError::ReservedName { name });
            continue;
        }
        if let Some(spec) = resolver.target(target, reach, &path, problems) {
            targets.push(Arc::new(spec));
        }
    }
    let mut files = Vec::with_capacity(raw.files.len());
    for (i, source) in raw.files.iter().enumerate() {
        let path = format!("files[{i}]");
        if source.name.trim().is_empty() {
            problems.add(format!("{path}.name"), SettingError::EmptyName);
            continue;
        }
        if !names.insert(source.name.clone()) {
            problems.add(
                format!("{path}.name"),
                SettingError::DuplicateName {
                    name: source.name.clone(),
                },
            );
            continue;
        }
        if source.name == SELF_TARGET {
            problems.add(
                format!("{path}.name"),
                SettingError::ReservedName {
                    name: source.name.clone(),
                },
            );
            continue;
        }
        if let Some(spec) = resolver.file_source(source, &path, problems) {
            files.push(Arc::new(spec));
        }
    }
    if problems.0.is_empty() {
        resolver.prepare_unscheduled_materials();
    }
    Config {
        source: None,
        listen,
        concurrency,
        targets,
        probe_limits,
        resolver,
        thresholds,
        files,
    }
}

fn thresholds(raw: RawThresholds, problems: &mut Problems) -> ExpiryThresholds {
    let warning = raw
        .warning
        .map_or(ExpiryThresholds::DEFAULT.warning, |d| d.get());
    let critical = raw
        .critical
        .map_or(ExpiryThresholds::DEFAULT.critical, |d| d.get());
    if critical > warning {
        let at = if raw.critical.is_some() {
            "thresholds.critical"
        } else {
            "thresholds.warning"
        };
        problems.add(
            at,
            SettingError::ThresholdsInverted {
                warning: PromDuration::from_duration(warning),
                critical: PromDuration::from_duration(critical),
            },
        );
        return ExpiryThresholds::DEFAULT;
    }
    ExpiryThresholds { warning, critical }
}

/// Adds a problem at `setting` unless `1 <= value <= max`.
fn check_count(
    setting: &'static str,
    value: usize,
    max: usize,
    why: &'static str,
    problems: &mut Problems,
) {
    if value == 0 || value > max {
        problems.add(
            setting,
            SettingError::OutOfRange {
                setting,
                value: value as u64,
                min: 1,
                max: max as u64,
                why,
            },
        );
    }
}

fn parse_listen(text: &str) -> Result<SocketAddr, SettingError> {
    let text = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    text.parse()
        .map_err(|_| SettingError::Listen { text: text.clone() })
}

fn probe_limits(raw: RawProbeLimits, problems: &mut Problems) -> ProbeLimits {
    let allow = raw.allow.map(|entries| {
        entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                AllowRule::parse(e)
                    .map_err(|m| problems.add(format!("probe.allow[{i}]"), m))
                    .ok()
            })
            .collect()
    });
    let rate_per_second = raw.rate_limit.and_then(|r| {
        parse_rate(&r)
            .map_err(|m| problems.add("probe.rate_limit", m))
            .ok()
    });
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_PROBE_MAX_IN_FLIGHT);
    check_count(
        "probe.max_in_flight",
        max_in_flight,
        MAX_PROBE_MAX_IN_FLIGHT,
        "each /probe request in flight holds a connection and waits for one of `concurrency`'s slots",
        problems,
    );
    ProbeLimits {
        allow,
        rate_per_second,
        max_in_flight,
    }
}

/// `dns:` checked, with the system resolver configuration read when no server is set.
fn dns_settings(raw: RawDns, problems: &mut Problems) -> DnsSettings {
    let servers: Vec<SocketAddr> = raw
        .servers
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.0)
        .collect();
    if servers.len() > MAX_DNS_SERVERS {
        problems.add(
            "dns.servers",
            SettingError::OutOfRange {
                setting: "dns.servers",
                value: servers.len() as u64,
                min: 1,
                max: MAX_DNS_SERVERS as u64,
                why: "each lookup may be asked of each server in turn",
            },
        );
    }
    let timeout = raw.timeout.map_or(DEFAULT_DNS_TIMEOUT, |t| t.get());
    if timeout.is_zero() {
        problems.add("dns.timeout", SettingError::TimeoutZero);
    } else if timeout > MAX_TIMEOUT {
        problems.add(
            "dns.timeout",
            SettingError::TimeoutTooLong {
                value: PromDuration::from_duration(timeout),
                max: PromDuration::from_duration(MAX_TIMEOUT),
            },
        );
    }
    DnsSettings::load(servers, timeout)
}

/// What `target` reaches: exactly one of `address`, `mx` and `srv`, and `port` only
/// with `mx`.
fn reach(target: &RawTarget, path: &str, problems: &mut Problems) -> Option<Reach> {
    let given: Vec<&'static str> = [
        ("address", target.address.is_some()),
        ("mx", target.mx.is_some()),
        ("srv", target.srv.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    if given.len() != 1 {
        let at = match given.get(1) {
            Some(second) => format!("{path}.{second}"),
            None => path.to_owned(),
        };
        problems.add(at, SettingError::Reach { given });
        return None;
    }
    if let Some(port) = target.port {
        if target.mx.is_none() {
            problems.add(format!("{path}.port"), SettingError::PortWithoutMx);
            return None;
        }
        if port == 0 {
            problems.add(format!("{path}.port"), SettingError::PortZero);
            return None;
        }
    }
    Some(match (&target.address, &target.mx, &target.srv) {
        (Some(address), _, _) => Reach::Address(address.clone()),
        (_, Some(domain), _) => Reach::Mx {
            domain: domain.clone(),
            port: target.port.unwrap_or(DEFAULT_MX_PORT),
        },
        (_, _, Some(name)) => Reach::Srv(name.clone()),
        (None, None, None) => unreachable!("exactly one is set"),
    })
}

fn parse_rate(text: &str) -> Result<f64, SettingError> {
    let hint = || SettingError::Rate {
        text: text.to_owned(),
    };
    let (count, unit) = text.split_once('/').ok_or_else(hint)?;
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(hint)?;
    let per_second = match unit.trim() {
        "s" => count,
        "m" => count / 60.0,
        "h" => count / 3600.0,
        _ => return Err(hint()),
    };
    if !(MIN_RATE_PER_SECOND..=MAX_RATE_PER_SECOND).contains(&per_second) {
        return Err(SettingError::RateOutOfRange {
            text: text.to_owned(),
            max_per_second: MAX_RATE_PER_SECOND as u64,
        });
    }
    Ok(per_second)
}

/// Every problem of the single values of `settings`.
fn setting_errors(settings: &RawSettings) -> Vec<(&'static str, SettingError)> {
    let mut errors = Vec::new();
    if let Some(interval) = settings.interval {
        if interval.get() < MIN_INTERVAL {
            errors.push((
                "interval",
                SettingError::IntervalTooShort {
                    value: interval,
                    min: PromDuration::from_duration(MIN_INTERVAL),
                },
            ));
        } else if interval.get() > MAX_INTERVAL {
            errors.push((
                "interval",
                SettingError::IntervalTooLong {
                    value: interval,
                    max: PromDuration::from_duration(MAX_INTERVAL),
                },
            ));
        }
    }
    if let Some(timeout) = settings.timeout {
        if timeout.get().is_zero() {
            errors.push(("timeout", SettingError::TimeoutZero));
        } else if timeout.get() > MAX_TIMEOUT {
            errors.push((
                "timeout",
                SettingError::TimeoutTooLong {
                    value: timeout,
                    max: PromDuration::from_duration(MAX_TIMEOUT),
                },
            ));
        }
    }
    if let Some(tls) = &settings.tls {
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            errors.push(("tls", SettingError::ClientPairIncomplete));
        }
    }
    errors
}

fn check_settings(settings: &RawSettings, path: &str, problems: &mut Problems) {
    for (key, error) in setting_errors(settings) {
        problems.add(format!("{path}.{key}"), error);
    }
}

impl Resolver {
    /// Reads every file named anywhere (and the system store, when `trust: system` is
    /// written), once each, reporting each problem where the file is named.
    fn load_files(&mut self, targets: &[RawTarget], problems: &mut Problems) {
        /// Where settings are written, and the files they name.
        type Named = (String, Option<Trust>, Option<RawTls>, Option<PathBuf>);
        let mut named: Vec<Named> = vec![(
            "defaults".into(),
            self.defaults.trust,
            self.defaults.tls.clone(),
            self.defaults.proxy_password_file.clone(),
        )];
        named.extend(self.modules.iter().map(|(n, m)| {
            (
                format!("modules.{n}"),
                m.trust,
                m.tls.clone(),
                m.proxy_password_file.clone(),
            )
        }));
        named.extend(targets.iter().enumerate().map(|(i, t)| {
            (
                format!("targets[{i}]"),
                t.trust,
                t.tls.clone(),
                t.proxy_password_file.clone(),
            )
        }));
        let mut system_reported = false;
        for (path, trust, tls, password_file) in named {
            if let Some(file) = &password_file {
                let full = self.base_dir.join(file);
                if let Err(e) = self.password(&full) {
                    problems.add(format!("{path}.proxy_password_file"), e);
                }
            }
            if trust == Some(Trust::System) && !system_reported {
                if let Err(e) = self.system_roots() {
                    problems.add(format!("{path}.trust"), e.into());
                    system_reported = true;
                }
            }
            let Some(tls) = tls else { continue };
            if let Some(file) = &tls.ca_file {
                let full = self.base_dir.join(file);
                if let Err(e) = self.anchors(&full) {
                    problems.add(format!("{path}.tls.ca_file"), e);
                }
            }
            if let Some(file) = &tls.client_cert_file {
                let full = self.base_dir.join(file);
                if let Err(e) = self.certs(&full) {
                    problems.add(format!("{path}.tls.client_cert_file"), e);
                }
            }
            if let Some(file) = &tls.client_key_file {
                let full = self.base_dir.join(file);
                if let Err(e) = self.key(&full) {
                    problems.add(format!("{path}.tls.client_key_file"), e);
                }
            }
        }
    }

    fn target(
        &mut self,
        target: &RawTarget,
        reach: Reach,
        path: &str,
        problems: &mut Problems,
    ) -> Option<TargetSpec> {
        let module = match &target.module {
            None => None,
            Some(name) => match self.modules.get(name) {
                Some(module) => Some(module.clone()),
                None => {
                    problems.add(
                        format!("{path}.module"),
                        SettingError::UnknownModule {
                            name: name.clone(),
                            known: self.modules.keys().cloned().collect(),
                        },
                    );
                    return None;
                }
            },
        };
        let settings = match module {
            Some(module) => target.own_settings().or(&module).or(&self.defaults),
            None => target.own_settings().or(&self.defaults),
        };
        let name = match &target.name {
            Some(name) if name.trim().is_empty() => {
                problems.add(format!("{path}.name"), SettingError::EmptyName);
                return None;
            }
            Some(name) => name.clone(),
            None => reach.default_name(),
        };
        let labels = target
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let material = self.material(&self.tls_key(&settings));
        let proxy = match self.proxy(&settings) {
            Ok(proxy) => proxy,
            Err(error) => {
                if !error.reported_where_named() {
                    problems.add(format!("{path}.proxy"), error);
                }
                return None;
            }
        };
        let reached = Reached {
            reach,
            proxy,
            dns: self.dns.clone(),
        };
        match spec(
            name,
            reached,
            target.server_name.clone(),
            &settings,
            labels,
            material,
        ) {
            Ok(mut spec) => {
                spec.served_from = target
                    .served_from
                    .as_ref()
                    .map(|glob| glob.pattern(&self.base_dir));
                Some(spec)
            }
            Err(error) => {
                if !error.reported_where_named() {
                    problems.add(path, error);
                }
                None
            }
        }
    }

    /// The spec of one `files:` source: interval from its own or `defaults`, trust its
    /// own or none, the password read now.
    fn file_source(
        &mut self,
        source: &RawFiles,
        path: &str,
        problems: &mut Problems,
    ) -> Option<FileSpec> {
        let own = RawSettings {
            interval: source.interval,
            ..RawSettings::default()
        };
        check_settings(&own, path, problems);
        let interval = source
            .interval
            .or(self.defaults.interval)
            .map_or(DEFAULT_INTERVAL, |d| d.get());
        let trust = file_trust(source.trust);
        let material = match trust {
            Trust::None => None,
            trust => match self.material(&TlsKey {
                trust,
                ca_file: None,
                client_cert_file: None,
                client_key_file: None,
            }) {
                Ok(material) => Some(material),
                Err(e) => {
                    problems.add(format!("{path}.trust"), e);
                    return None;
                }
            },
        };
        let password = match &source.password_file {
            None => None,
            Some(file) => match super::files::read_password(&self.base_dir, file) {
                Ok(password) => Some(password),
                Err(e) => {
                    problems.add(format!("{path}.password_file"), e);
                    return None;
                }
            },
        };
        Some(FileSpec {
            name: source.name.clone(),
            patterns: source
                .paths
                .iter()
                .map(|glob| glob.pattern(&self.base_dir))
                .collect(),
            format: source.format.unwrap_or(super::types::FileFormat::Auto),
            password,
            password_file: source.password_file.clone(),
            interval,
            trust: material,
            labels: source
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The TLS settings `settings` resolve to, with file paths made absolute.
    fn tls_key(&self, settings: &RawSettings) -> TlsKey {
        let tls = settings.tls.clone().unwrap_or_default();
        TlsKey {
            trust: settings.trust.unwrap_or(Trust::Webpki),
            ca_file: tls.ca_file.map(|f| self.base_dir.join(f)),
            client_cert_file: tls.client_cert_file.map(|f| self.base_dir.join(f)),
            client_key_file: tls.client_key_file.map(|f| self.base_dir.join(f)),
        }
    }

    /// Loads the TLS material of `defaults` and of every module now, so that `/probe`
    /// finds it ready instead of reading CA files on a request. Their problems were
    /// already reported where the files are named.
    fn prepare_unscheduled_materials(&mut self) {
        let mut keys = vec![self.tls_key(&self.defaults)];
        keys.extend(
            self.modules
                .values()
                .map(|m| self.tls_key(&m.clone().or(&self.defaults))),
        );
        for key in keys {
            let _ = self.material(&key);
        }
    }

    /// The material of `key`, loaded once per load.
    fn material(&mut self, key: &TlsKey) -> Result<Arc<TlsMaterial>, SettingError> {
        if let Some(material) = self.materials.get(key) {
            return material.clone();
        }
        let material = self.load_material(key);
        self.materials.insert(key.clone(), material.clone());
        material
    }

    fn load_material(&mut self, key: &TlsKey) -> Result<Arc<TlsMaterial>, SettingError> {
        let base = match key.trust {
            Trust::Webpki => BaseAnchors::Webpki,
            Trust::None => BaseAnchors::None,
            Trust::System => BaseAnchors::System(self.system_roots()?),
        };
        let extra = match &key.ca_file {
            None => Vec::new(),
            Some(file) => {
                self.anchors(file)?;
                self.certs(file)?.to_vec()
            }
        };
        let client = match (&key.client_cert_file, &key.client_key_file) {
            (Some(cert), Some(key_file)) => {
                Some((self.certs(cert)?.to_vec(), self.key(key_file)?.clone_key()))
            }
            _ => None,
        };
        TlsMaterial::new(base, extra, client)
            .map(Arc::new)
            .map_err(|e| match e {
                MaterialError::Anchor(source) => SettingError::Anchor {
                    file: key.ca_file.clone().unwrap_or_default(),
                    source,
                },
                MaterialError::Identity(source) => SettingError::ClientPair {
                    cert: key.client_cert_file.clone().unwrap_or_default(),
                    key: key.client_key_file.clone().unwrap_or_default(),
                    source,
                },
            })
    }

    /// The password in `file`, read once per load.
    fn password(&mut self, file: &Path) -> Result<Secret, SettingError> {
        self.passwords
            .entry(file.to_owned())
            .or_insert_with(|| {
                read_password(file).map_err(|source| SettingError::ProxyPasswordFile {
                    source: Arc::new(source),
                })
            })
            .clone()
    }

    /// The proxy `settings` resolve to, with the password read from its file.
    fn proxy(&mut self, settings: &RawSettings) -> Result<Option<Arc<Proxy>>, SettingError> {
        let password = match &settings.proxy_password_file {
            None => None,
            Some(file) => Some(self.password(&self.base_dir.join(file))?),
        };
        proxy(settings, password)
    }

    fn system_roots(&mut self) -> Result<SystemRoots, SystemTrustError> {
        self.system.get_or_insert_with(SystemRoots::load).clone()
    }

    fn certs(&mut self, file: &Path) -> Result<Arc<[CertificateDer<'static>]>, SettingError> {
        self.certs
            .entry(file.to_owned())
            .or_insert_with(|| {
                fileread::read_certificates(file)
                    .map(Arc::from)
                    .map_err(pem_error)
            })
            .clone()
    }

    /// Whether every certificate of `file` is a usable trust anchor.
    fn anchors(&mut self, file: &Path) -> Result<(), SettingError> {
        if let Some(checked) = self.anchors.get(file) {
            return checked.clone();
        }
        let checked = self.certs(file).and_then(|certs| {
            TrustStore::from_certificates(&certs)
                .map(drop)
                .map_err(|source| SettingError::Anchor {
                    file: file.to_owned(),
                    source,
                })
        });
        self.anchors.insert(file.to_owned(), checked.clone());
        checked
    }

    fn key(&mut self, file: &Path) -> Result<Arc<PrivateKeyDer<'static>>, SettingError> {
        self.keys
            .entry(file.to_owned())
            .or_insert_with(|| {
                fileread::read_private_key(file)
                    .map(Arc::new)
                    .map_err(pem_error)
            })
            .clone()
    }

    /// `file` as found from the configuration's directory.
    pub(super) fn path(&self, file: &Path) -> PathBuf {
        self.base_dir.join(file)
    }

    /// Every PEM file and proxy password file read, sorted.
    pub(super) fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .certs
            .keys()
            .chain(self.keys.keys())
            .chain(self.passwords.keys())
            .cloned()
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// The spec of an ad-hoc probe (`GET /probe`), with the TLS material loaded with
    /// the configuration: no file is read.
    pub(super) fn adhoc(
        &self,
        reach: Reach,
        module: Option<&str>,
        server_name: Option<TlsName>,
    ) -> Result<TargetSpec, SettingError> {
        let settings = match module {
            None => self.defaults.clone(),
            Some(name) => self
                .modules
                .get(name)
                .ok_or_else(|| SettingError::UnknownModule {
                    name: name.to_owned(),
                    known: self.modules.keys().cloned().collect(),
                })?
                .clone()
                .or(&self.defaults),
        };
        let material = self
            .materials
            .get(&self.tls_key(&settings))
            .cloned()
            .unwrap_or(Err(SettingError::NotLoaded));
        let password = match &settings.proxy_password_file {
            None => None,
            Some(file) => Some(
                self.passwords
                    .get(&self.base_dir.join(file))
                    .cloned()
                    .unwrap_or(Err(SettingError::NotLoaded))?,
            ),
        };
        let proxy = proxy(&settings, password)?;
        let reached = Reached {
            reach,
            proxy,
            dns: self.dns.clone(),
        };
        unscheduled(reached, server_name, settings, material)
    }

    /// The spec of a one-off probe (`certwatch check`): its files are read now.
    pub(super) fn one_off(
        &mut self,
        reach: Reach,
        server_name: Option<TlsName>,
        settings: RawSettings,
    ) -> Result<TargetSpec, SettingError> {
        if let Some((_, error)) = setting_errors(&settings).into_iter().next() {
            return Err(error);
        }
        let material = self.material(&self.tls_key(&settings));
        let password = match &settings.proxy_password_file {
            None => None,
            Some(file) => Some(self.password(&self.base_dir.join(file))?),
        };
        let proxy = proxy(&settings, password)?;
        let reached = Reached {
            reach,
            proxy,
            dns: self.dns.clone(),
        };
        unscheduled(reached, server_name, settings, material)
    }

    /// A resolver with nothing loaded, for one-off probes from the command line.
    pub(super) fn standalone(base_dir: &Path, dns: DnsSettings) -> Self {
        Resolver {
            base_dir: base_dir.to_owned(),
            dns: Arc::new(dns),
            ..Default::default()
        }
    }
}

fn pem_error(error: PemError) -> SettingError {
    SettingError::Pem {
        source: Arc::new(error),
    }
}

/// The proxy `settings` name, with the password read from its file (`password`).
fn proxy(
    settings: &RawSettings,
    password: Option<Secret>,
) -> Result<Option<Arc<Proxy>>, SettingError> {
    let url = match &settings.proxy {
        None | Some(ProxySetting::None) => return Ok(None),
        Some(ProxySetting::Url(url)) => url.clone(),
    };
    if password.is_some() && url.user.is_none() {
        return Err(SettingError::ProxyPasswordWithoutUser {
            url: url.to_string(),
        });
    }
    if matches!(url.kind, ProxyKind::Socks5 | ProxyKind::Socks5h) {
        let user = url.user.as_deref().map_or(0, str::len);
        let pass = password.as_ref().map_or(0, |p| p.expose().len());
        if user > 0 && pass == 0 {
            return Err(SettingError::SocksPasswordMissing {
                url: url.to_string(),
            });
        }
        if user > MAX_SOCKS_CREDENTIAL || pass > MAX_SOCKS_CREDENTIAL {
            return Err(SettingError::SocksCredentialTooLong {
                what: if user > MAX_SOCKS_CREDENTIAL {
                    "user"
                } else {
                    "password"
                },
                max: MAX_SOCKS_CREDENTIAL,
            });
        }
    }
    Ok(Some(Arc::new(Proxy { url, password })))
}

/// What a spec reaches and how: its address or discovery, proxy and resolver.
struct Reached {
    reach: Reach,
    proxy: Option<Arc<Proxy>>,
    dns: Arc<DnsSettings>,
}

/// The spec of a probe that is not scheduled: named after what it reaches, with no
/// labels, and an interval that only must not undercut its timeout.
fn unscheduled(
    reached: Reached,
    server_name: Option<TlsName>,
    mut settings: RawSettings,
    material: Result<Arc<TlsMaterial>, SettingError>,
) -> Result<TargetSpec, SettingError> {
    let timeout = settings.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get());
    let interval = settings.interval.map_or(DEFAULT_INTERVAL, |i| i.get());
    settings.interval = Some(PromDuration::from_duration(interval.max(timeout)));
    spec(
        reached.reach.default_name(),
        reached,
        server_name,
        &settings,
        Vec::new(),
        material,
    )
}

fn spec(
    name: String,
    reached: Reached,
    server_name: Option<TlsName>,
    settings: &RawSettings,
    labels: Vec<(LabelName, String)>,
    material: Result<Arc<TlsMaterial>, SettingError>,
) -> Result<TargetSpec, SettingError> {
    let Reached { reach, proxy, dns } = reached;
    let (address, discover, starttls) = match reach {
        Reach::Address(address) => (address, None, StartTls::None),
        Reach::Mx { domain, port } => (
            Address {
                host: Host::Name(domain.to_string()),
                port,
            },
            Some(Discover::Mx {
                domain,
                port,
                server_name: server_name.clone(),
            }),
            StartTls::Smtp,
        ),
        Reach::Srv(name) => (
            Address {
                host: Host::Name(name.domain().to_owned()),
                port: 0,
            },
            Some(Discover::Srv { name }),
            StartTls::None,
        ),
    };
    let server_name = match server_name {
        Some(n) => n,
        None => TlsName::for_host(&address.host).map_err(|source| SettingError::ServerName {
            address: address.to_string(),
            source,
        })?,
    };
    let interval = settings.interval.map_or(DEFAULT_INTERVAL, |d| d.get());
    let timeout = settings.timeout.map_or(DEFAULT_TIMEOUT, |d| d.get());
    if timeout > interval {
        return Err(SettingError::TimeoutOverInterval {
            timeout: PromDuration::from_duration(timeout),
            interval: PromDuration::from_duration(interval),
        });
    }
    Ok(TargetSpec {
        name,
        address,
        server_name,
        starttls: settings.starttls.unwrap_or(starttls),
        xmpp_domain: settings.xmpp_domain.as_ref().map(|d| d.as_str().to_owned()),
        resolve: settings.resolve.unwrap_or(ResolveMode::All),
        ip_family: settings.ip_family.unwrap_or(IpFamily::Any),
        interval,
        timeout,
        labels,
        tls: material?,
        key_type: settings.key_type.unwrap_or(KeyType::Any),
        sni: settings.sni.unwrap_or(true),
        legacy: settings.legacy.unwrap_or(Legacy::On),
        revocation: settings.revocation.unwrap_or_default().resolve(),
        discover,
        proxy,
        dns,
        served_from: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_rules_match_globs_cidrs_and_ports() {
        let rule = AllowRule::parse("*.example.com:443").unwrap();
        assert!(rule.permits(&"a.example.com:443".parse().unwrap()));
        assert!(!rule.permits(&"a.example.com:25".parse().unwrap()));
        assert!(!rule.permits(&"example.org:443".parse().unwrap()));
        let rule = AllowRule::parse("10.1.0.0/16:*").unwrap();
        assert!(rule.permits(&"10.1.200.3:25".parse().unwrap()));
        assert!(!rule.permits(&"10.2.0.1:25".parse().unwrap()));
        let rule = AllowRule::parse("[::1/128]:443").unwrap();
        assert!(rule.permits(&"[::1]:443".parse().unwrap()));
        for bad in ["example.com", "10.0.0.0/33:*", ":443", "a:port"] {
            assert!(AllowRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs_match_any_run_of_bytes_at_each_star() {
        assert!(glob_matches(b"*.example.com", b"a.b.example.com"));
        assert!(glob_matches(b"*", b""));
        assert!(glob_matches(b"a*b*c", b"aXXbYYc"));
        assert!(glob_matches(b"a*b*c", b"abbbc"));
        assert!(!glob_matches(b"a*b*c", b"aXXbYY"));
        assert!(!glob_matches(b"*.example.com", b"example.com"));
        assert!(glob_matches(b"exact", b"exact"));
        assert!(!glob_matches(b"exact", b"exactly"));
    }

    #[test]
    fn rates_accept_per_second_and_per_minute() {
        assert_eq!(parse_rate("10/s").unwrap(), 10.0);
        assert_eq!(parse_rate("60/m").unwrap(), 1.0);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("10").is_err());
    }

    /// The problems of `yaml`, each as `c.yml:L:C: message`; empty when valid.
    fn problems(yaml: &str) -> Vec<String> {
        match resolve(yaml, "c.yml", Path::new("/nonexistent-dir")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems(),
        }
    }

    /// `yaml` has exactly one problem, at `position`, saying `what`.
    fn refused(yaml: &str, position: &str, what: &str) {
        let found = problems(yaml);
        assert_eq!(found.len(), 1, "{yaml}: {found:#?}");
        assert!(
            found[0].starts_with(&format!("c.yml:{position}: ")) && found[0].contains(what),
            "{yaml}: expected {what:?} at {position}, got {found:#?}"
        );
    }

    fn accepted(yaml: &str) {
        let found = problems(yaml);
        assert!(found.is_empty(), "{yaml}: {found:#?}");
    }

    #[test]
    fn key_type_sni_and_legacy_resolve_target_over_module_over_defaults() {
        let yaml = "defaults:\n  sni: false\n  legacy: off\nmodules:\n  rsa:\n    key_type: rsa\n    legacy: on\ntargets:\n  - {address: \"127.0.0.1:1\", name: plain}\n  - {address: \"127.0.0.1:2\", name: via-module, module: rsa}\n  - {address: \"127.0.0.1:3\", name: own, module: rsa, key_type: ecdsa, sni: true}\n";
        let config = resolve(yaml, "c.yml", Path::new(".")).expect("valid");
        let got: Vec<(&str, KeyType, bool, Legacy)> = config
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.key_type, t.sni, t.legacy))
            .collect();
        assert_eq!(
            got,
            [
                ("plain", KeyType::Any, false, Legacy::Off),
                ("via-module", KeyType::Rsa, false, Legacy::On),
                ("own", KeyType::Ecdsa, true, Legacy::On),
            ]
        );
        let built_in = resolve(
            "targets:\n  - {address: \"127.0.0.1:1\"}\n",
            "c.yml",
            Path::new("."),
        )
        .expect("valid");
        let t = &built_in.targets[0];
        assert_eq!(
            (t.key_type, t.sni, t.legacy),
            (KeyType::Any, true, Legacy::On)
        );
        assert!(!t.same_probe(&config.targets[0]));
        refused("defaults:\n  key_type: dsa\n", "2:13", "key_type");
        refused("defaults:\n  legacy: maybe\n", "2:11", "legacy");
        refused("defaults:\n  sni: sometimes\n", "2:8", "sni");
    }

    #[test]
    fn thresholds_default_to_21_and_7_days_and_critical_may_not_pass_warning() {
        let config = resolve("{}", "c.yml", Path::new(".")).expect("valid");
        assert_eq!(config.thresholds, ExpiryThresholds::DEFAULT);
        assert_eq!(
            ExpiryThresholds::DEFAULT.warning,
            Duration::from_secs(21 * 86_400)
        );
        let config = resolve(
            "thresholds: {warning: 30d, critical: 10d}\n",
            "c.yml",
            Path::new("."),
        )
        .expect("valid");
        assert_eq!(
            config.thresholds,
            ExpiryThresholds {
                warning: Duration::from_secs(30 * 86_400),
                critical: Duration::from_secs(10 * 86_400)
            }
        );
        accepted("thresholds: {warning: 7d, critical: 7d}\n");
        refused(
            "thresholds:\n  critical: 30d\n",
            "2:13",
            "thresholds.critical (30d) is longer than thresholds.warning (21d)",
        );
        refused(
            "thresholds:\n  warning: 1d\n",
            "2:12",
            "thresholds.critical (7d) is longer than thresholds.warning (1d)",
        );
        refused("thresholds:\n  often: 1d\n", "2:3", "unknown field");
    }

    #[test]
    fn concurrency_is_from_1_to_100000() {
        accepted("concurrency: 1\n");
        accepted("concurrency: 100000\n");
        refused("concurrency: 0\n", "1:14", "use 1 to 100000");
        refused(
            "concurrency: 100001\n",
            "1:14",
            "concurrency is 100001, out of range",
        );
        // Passed `config check` and panicked `serve` (the semaphore's limit).
        refused("concurrency: 2305843009213693952\n", "1:14", "out of range");
        let negative = problems("concurrency: -1\n");
        assert!(negative[0].starts_with("c.yml:1:14: "), "{negative:?}");
    }

    #[test]
    fn probe_max_in_flight_is_from_1_to_100000() {
        accepted("probe:\n  max_in_flight: 1\n");
        accepted("probe:\n  max_in_flight: 100000\n");
        refused(
            "probe:\n  max_in_flight: 0\n",
            "2:18",
            "probe.max_in_flight is 0",
        );
        refused(
            "probe:\n  max_in_flight: 100001\n",
            "2:18",
            "use 1 to 100000",
        );
    }

    #[test]
    fn probe_rate_limit_is_from_one_an_hour_to_a_million_a_second() {
        accepted("probe:\n  rate_limit: 1/h\n");
        accepted("probe:\n  rate_limit: 1000000/s\n");
        refused(
            "probe:\n  rate_limit: 0.5/h\n",
            "2:15",
            "rate_limit \"0.5/h\" is out of range: use from 1/h",
        );
        refused("probe:\n  rate_limit: 1000001/s\n", "2:15", "out of range");
        // Retry-After of 1e300 seconds would not fit a Duration.
        refused("probe:\n  rate_limit: 1e-300/s\n", "2:15", "out of range");
        refused(
            "probe:\n  rate_limit: inf/s\n",
            "2:15",
            "invalid rate_limit",
        );
    }

    #[test]
    fn interval_is_from_1s_to_30d_wherever_it_is_set() {
        accepted("defaults:\n  interval: 1s\n");
        accepted("defaults:\n  interval: 30d\n");
        refused(
            "defaults:\n  interval: 999ms\n",
            "2:13",
            "interval 999ms is too short: use at least 1s",
        );
        refused(
            "defaults:\n  interval: 30d1ms\n",
            "2:13",
            "interval 2592000001ms is too long: use at most 30d",
        );
        refused(
            "modules:\n  m:\n    interval: 1000y\n",
            "3:15",
            "too long: use at most 30d",
        );
        refused(
            "targets:\n  - address: a.example:443\n    interval: 31d\n",
            "3:15",
            "too long",
        );
    }

    #[test]
    fn timeout_is_above_0_at_most_10m_and_at_most_the_interval() {
        accepted("defaults:\n  timeout: 1ms\n");
        accepted("defaults:\n  interval: 1h\n  timeout: 10m\n");
        refused(
            "defaults:\n  timeout: 0\n",
            "2:12",
            "timeout must be longer than 0s",
        );
        refused(
            "defaults:\n  interval: 1h\n  timeout: 10m1ms\n",
            "3:12",
            "timeout 600001ms is too long: use at most 10m",
        );
        refused(
            "targets:\n  - address: a.example:443\n    interval: 10s\n    timeout: 11s\n",
            "2:5",
            "timeout (11s) is longer than interval (10s)",
        );
    }

    #[test]
    fn a_duration_too_large_to_represent_is_refused_where_written() {
        // u64 milliseconds overflow: 213503982334601y is just past u64::MAX ms.
        refused(
            "defaults:\n  interval: 213503982334601y\n",
            "2:13",
            "too large",
        );
        refused(
            "defaults:\n  timeout: 99999999999999999999999s\n",
            "2:12",
            "invalid duration",
        );
    }

    #[test]
    fn a_one_off_probe_refuses_the_same_values_as_a_file() {
        let address: Address = "127.0.0.1:443".parse().unwrap();
        let settings = |timeout: &str| RawSettings {
            timeout: Some(timeout.parse().unwrap()),
            ..RawSettings::default()
        };
        let e = Resolver::standalone(Path::new("."), DnsSettings::default())
            .one_off(Reach::Address(address.clone()), None, settings("1000y"))
            .unwrap_err();
        assert!(matches!(e, SettingError::TimeoutTooLong { .. }), "{e:?}");
        let e = Resolver::standalone(Path::new("."), DnsSettings::default())
            .one_off(Reach::Address(address.clone()), None, settings("0"))
            .unwrap_err();
        assert!(matches!(e, SettingError::TimeoutZero), "{e:?}");
        let ok = Resolver::standalone(Path::new("."), DnsSettings::default())
            .one_off(Reach::Address(address), None, settings("10m"))
            .unwrap();
        assert_eq!(ok.timeout, MAX_TIMEOUT);
        assert!(ok.interval >= ok.timeout);
    }

    #[test]
    fn an_adhoc_probe_reads_no_file_and_names_unknown_modules() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["ca.example".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let config = resolve(
            "modules:\n  internal:\n    trust: none\n    tls:\n      ca_file: ca.pem\n",
            "c.yml",
            dir.path(),
        )
        .unwrap();
        // The file is gone: an ad-hoc probe must use what was loaded, not re-read it.
        std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
        let address: Address = "127.0.0.1:443".parse().unwrap();
        let spec = config
            .adhoc_target(address.clone(), Some("internal"), None)
            .unwrap();
        assert_eq!(spec.tls.extra_anchors().len(), 1);
        let e = config
            .adhoc_target(address, Some("nope"), None)
            .unwrap_err();
        assert!(
            matches!(&e, SettingError::UnknownModule { name, known } if name == "nope" && known == &["internal"]),
            "{e:?}"
        );
    }

    #[test]
    fn targets_with_the_same_tls_settings_share_one_material_and_content_decides_sameness() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["ca.example".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let yaml = "defaults:\n  tls:\n    ca_file: ca.pem\ntargets:\n  - address: a.example:443\n  - address: b.example:443\n";
        let first = resolve(yaml, "c.yml", dir.path()).unwrap();
        assert!(Arc::ptr_eq(&first.targets[0].tls, &first.targets[1].tls));
        let again = resolve(yaml, "c.yml", dir.path()).unwrap();
        assert!(first.targets[0].same_probe(&again.targets[0]));
        // The same path with new content is a different probe.
        let other = rcgen::CertificateParams::new(vec!["other.example".to_owned()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), other.pem()).unwrap();
        let rewritten = resolve(yaml, "c.yml", dir.path()).unwrap();
        assert!(!first.targets[0].same_probe(&rewritten.targets[0]));
    }

    #[test]
    fn trust_system_is_read_when_the_configuration_loads() {
        let yaml = "defaults:\n  trust: system\ntargets:\n  - address: a.example:443\n  - address: b.example:443\n";
        match resolve(yaml, "c.yml", Path::new(".")) {
            Ok(config) => {
                // The store was read here, once: both targets hold the same material,
                // and building a setup from it reads nothing.
                let (a, b) = (&config.targets[0].tls, &config.targets[1].tls);
                assert!(Arc::ptr_eq(a, b));
                match a.base() {
                    BaseAnchors::System(roots) => assert!(!roots.certificates().is_empty()),
                    other => panic!("{other:?}"),
                }
                assert!(!a.trust_store().is_empty());
            }
            // A machine without ca-certificates: one problem, where `trust: system` is.
            Err(e) => {
                let problems = e.problems();
                assert_eq!(problems.len(), 1, "{problems:#?}");
                assert!(
                    problems[0].starts_with("c.yml:2:10: trust: system found no certificates"),
                    "{problems:#?}"
                );
            }
        }
    }
}
