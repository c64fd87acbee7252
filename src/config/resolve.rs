//! From the raw file to immutable target specs.
//!
//! Settings resolve as: the target's own > its module's > `defaults` > built-in. Problems
//! that need the whole file (unknown modules, duplicate names, unreadable PEM files) are
//! all collected, then placed at their line and column with `config::locate`. PEM files
//! are read once per path, and targets with the same TLS settings share one
//! [`TlsSetup`] (one rustls configuration and one trust store).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{ConfigError, Problem};
use super::locate::Positions;
use super::raw::{RawConfig, RawProbeLimits, RawSettings, RawTarget, RawTls};
use super::types::{Address, Host, IpFamily, LabelName, ResolveMode, StartTls, TlsName, Trust};
use super::{Config, DEFAULT_CONCURRENCY, DEFAULT_INTERVAL, DEFAULT_LISTEN, DEFAULT_TIMEOUT};
use crate::metrics::names::SELF_TARGET;
use crate::probe::tls::{ClientIdentity, TlsSetup};
use crate::probe::verify::TrustStore;

/// The shortest probe interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The built-in cap on concurrent `GET /probe` requests.
pub const DEFAULT_PROBE_MAX_IN_FLIGHT: usize = 32;

/// Everything needed to probe one target, fully resolved.
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
    /// The TLS client configuration and trust anchors.
    pub tls: Arc<TlsSetup>,
    /// What identifies `tls`: equal keys, equal TLS behaviour.
    pub tls_key: TlsKey,
}

impl TargetSpec {
    /// Whether probing `other` would be the same as probing `self`, so that a reload
    /// can keep this target's schedule and series.
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
            && self.tls_key == other.tls_key
    }
}

/// The TLS settings of a target, after merging.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsKey {
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
    fn parse(text: &str) -> Result<Self, String> {
        let hint = || {
            format!("invalid probe.allow entry {text:?}: write a host glob or CIDR range, a colon, and a port or *, e.g. \"*.example.com:443\" or \"10.1.0.0/16:*\"")
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

/// Resolves targets from settings; kept after loading for ad-hoc probes.
#[derive(Debug, Default)]
pub(super) struct Resolver {
    defaults: RawSettings,
    modules: BTreeMap<String, RawSettings>,
    base_dir: PathBuf,
    pem: HashMap<PathBuf, Result<Pem, String>>,
    setups: HashMap<TlsKey, Arc<TlsSetup>>,
    system_trust: Option<Result<Arc<TrustStore>, String>>,
}

#[derive(Debug, Clone)]
enum Pem {
    Certs(Vec<CertificateDer<'static>>),
    Key(Arc<PrivateKeyDer<'static>>),
}

#[derive(Clone, Copy)]
enum PemKind {
    Certs,
    Key,
}

/// Problems found so far, each at a path in the file.
#[derive(Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((path.into(), message.into()));
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
        .map(|(path, message)| Problem {
            position: positions.find(&path),
            message,
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
    if concurrency == 0 {
        problems.add("concurrency", "concurrency must be at least 1");
    }
    let probe_limits = probe_limits(raw.probe.unwrap_or_default(), problems);

    let mut resolver = Resolver {
        defaults: raw.defaults,
        modules: raw.modules,
        base_dir: base_dir.to_owned(),
        ..Default::default()
    };
    check_settings(&resolver.defaults, "defaults", problems);
    for (name, module) in &resolver.modules {
        check_settings(module, &format!("modules.{name}"), problems);
    }
    resolver.load_pem_files(&raw.targets, problems);

    let mut names = HashSet::new();
    let mut targets = Vec::with_capacity(raw.targets.len());
    for (i, target) in raw.targets.iter().enumerate() {
        let path = format!("targets[{i}]");
        check_settings(&target.own_settings(), &path, problems);
        let name = target
            .name
            .clone()
            .unwrap_or_else(|| target.address.to_string());
        if !names.insert(name.clone()) {
            let at = if target.name.is_some() {
                "name"
            } else {
                "address"
            };
            problems.add(
                format!("{path}.{at}"),
                format!("duplicate target name {name:?}: give each target a unique `name:`"),
            );
            continue;
        }
        if name == SELF_TARGET {
            problems.add(
                format!("{path}.name"),
                format!("the target name {SELF_TARGET:?} is reserved for certwatch's own serving certificate: choose another `name:`"),
            );
            continue;
        }
        if let Some(spec) = resolver.target(target, &path, problems) {
            targets.push(Arc::new(spec));
        }
    }
    if problems.0.is_empty() {
        resolver.prepare_unscheduled_setups();
    }
    Config {
        source: None,
        listen,
        concurrency,
        targets,
        probe_limits,
        resolver,
    }
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    text.parse().map_err(|_| {
        format!("invalid listen address {text:?}: write ip:port, e.g. \"0.0.0.0:9798\" or \"[::]:9798\"")
    })
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
    if max_in_flight == 0 {
        problems.add(
            "probe.max_in_flight",
            "probe.max_in_flight must be at least 1",
        );
    }
    ProbeLimits {
        allow,
        rate_per_second,
        max_in_flight,
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let hint = || {
        format!("invalid rate_limit {text:?}: write requests per second or minute, e.g. \"10/s\" or \"60/m\"")
    };
    let (count, unit) = text.split_once('/').ok_or_else(hint)?;
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(hint)?;
    match unit.trim() {
        "s" => Ok(count),
        "m" => Ok(count / 60.0),
        "h" => Ok(count / 3600.0),
        _ => Err(hint()),
    }
}

fn check_settings(settings: &RawSettings, path: &str, problems: &mut Problems) {
    if let Some(interval) = settings.interval {
        if interval.get() < MIN_INTERVAL {
            problems.add(
                format!("{path}.interval"),
                format!("interval {interval} is too short: use at least 1s"),
            );
        }
    }
    if settings.timeout.is_some_and(|t| t.get().is_zero()) {
        problems.add(format!("{path}.timeout"), "timeout must be longer than 0s");
    }
    if let Some(tls) = &settings.tls {
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            problems.add(
                format!("{path}.tls"),
                "client_cert_file and client_key_file go together: set both or neither",
            );
        }
    }
}

impl Resolver {
    /// Reads every PEM file named anywhere, once each, reporting problems where named.
    fn load_pem_files(&mut self, targets: &[RawTarget], problems: &mut Problems) {
        let mut named: Vec<(String, Option<RawTls>)> =
            vec![("defaults".into(), self.defaults.tls.clone())];
        named.extend(
            self.modules
                .iter()
                .map(|(n, m)| (format!("modules.{n}"), m.tls.clone())),
        );
        named.extend(
            targets
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("targets[{i}]"), t.tls.clone())),
        );
        for (path, tls) in named {
            let Some(tls) = tls else { continue };
            for (key, file, kind) in [
                ("ca_file", &tls.ca_file, PemKind::Certs),
                ("client_cert_file", &tls.client_cert_file, PemKind::Certs),
                ("client_key_file", &tls.client_key_file, PemKind::Key),
            ] {
                let Some(file) = file else { continue };
                let full = self.base_dir.join(file);
                let loaded = self
                    .pem
                    .entry(full.clone())
                    .or_insert_with(|| read_pem(&full, kind));
                if let Err(message) = loaded {
                    problems.add(format!("{path}.tls.{key}"), message.clone());
                }
            }
        }
    }

    fn target(
        &mut self,
        target: &RawTarget,
        path: &str,
        problems: &mut Problems,
    ) -> Option<TargetSpec> {
        let module = match &target.module {
            None => None,
            Some(name) => match self.modules.get(name) {
                Some(module) => Some(module.clone()),
                None => {
                    let known: Vec<&str> = self.modules.keys().map(String::as_str).collect();
                    let known = if known.is_empty() {
                        "none is defined".to_owned()
                    } else {
                        format!("defined: {}", known.join(", "))
                    };
                    problems.add(
                        format!("{path}.module"),
                        format!("unknown module {name:?} ({known}); define it under `modules:`"),
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
                problems.add(
                    format!("{path}.name"),
                    "name is empty: remove it to use the address, or give a name",
                );
                return None;
            }
            Some(name) => name.clone(),
            None => target.address.to_string(),
        };
        let labels = target
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match self.spec(
            name,
            target.address.clone(),
            target.server_name.clone(),
            &settings,
            labels,
        ) {
            Ok(spec) => Some(spec),
            Err(message) => {
                // A PEM file that failed to load was reported where it is named.
                if !self
                    .pem
                    .values()
                    .any(|loaded| loaded.as_ref().err() == Some(&message))
                {
                    problems.add(path, message);
                }
                None
            }
        }
    }

    fn spec(
        &mut self,
        name: String,
        address: Address,
        server_name: Option<TlsName>,
        settings: &RawSettings,
        labels: Vec<(LabelName, String)>,
    ) -> Result<TargetSpec, String> {
        let server_name = match server_name {
            Some(n) => n,
            None => TlsName::for_host(&address.host)
                .map_err(|e| format!("{e}; set server_name for address {address}"))?,
        };
        let interval = settings.interval.map_or(DEFAULT_INTERVAL, |d| d.get());
        let timeout = settings.timeout.map_or(DEFAULT_TIMEOUT, |d| d.get());
        if timeout > interval {
            return Err(format!(
                "timeout ({}) is longer than interval ({}): a probe could still run when the next one is due; lower timeout or raise interval",
                super::PromDuration::from_duration(timeout),
                super::PromDuration::from_duration(interval)
            ));
        }
        let tls_key = self.tls_key(settings);
        let tls = self.tls_setup(&tls_key)?;
        Ok(TargetSpec {
            name,
            address,
            server_name,
            starttls: settings.starttls.unwrap_or(StartTls::None),
            xmpp_domain: settings.xmpp_domain.as_ref().map(|d| d.as_str().to_owned()),
            resolve: settings.resolve.unwrap_or(ResolveMode::All),
            ip_family: settings.ip_family.unwrap_or(IpFamily::Any),
            interval,
            timeout,
            labels,
            tls,
            tls_key,
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

    /// Builds the TLS setup of `defaults` and of every module now, so that `/probe`
    /// finds them ready instead of reading CA files on each request. Their problems
    /// were already reported where the files are named.
    fn prepare_unscheduled_setups(&mut self) {
        let mut keys = vec![self.tls_key(&self.defaults)];
        keys.extend(
            self.modules
                .values()
                .map(|m| self.tls_key(&m.clone().or(&self.defaults))),
        );
        for key in keys {
            let _ = self.tls_setup(&key);
        }
    }

    fn tls_setup(&mut self, key: &TlsKey) -> Result<Arc<TlsSetup>, String> {
        if let Some(setup) = self.setups.get(key) {
            return Ok(setup.clone());
        }
        let base = match key.trust {
            Trust::Webpki => TrustStore::webpki(),
            Trust::None => Arc::new(TrustStore::default()),
            Trust::System => self
                .system_trust
                .get_or_insert_with(|| TrustStore::system().map(Arc::new))
                .clone()?,
        };
        let trust = match &key.ca_file {
            None => base,
            Some(file) => {
                let certs = self.certs(file)?;
                Arc::new(
                    base.with_extra(&certs)
                        .map_err(|e| format!("{}: {e}", file.display()))?,
                )
            }
        };
        let identity = match (&key.client_cert_file, &key.client_key_file) {
            (Some(cert), Some(key_file)) => {
                let chain = self.certs(cert)?;
                let private = self.key(key_file)?;
                Some(
                    ClientIdentity::new(chain, private.clone_key())
                        .map_err(|e| format!("{}: {e}", cert.display()))?,
                )
            }
            _ => None,
        };
        let setup = Arc::new(TlsSetup::new(trust, identity));
        self.setups.insert(key.clone(), setup.clone());
        Ok(setup)
    }

    fn certs(&mut self, file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
        match self
            .pem
            .entry(file.to_owned())
            .or_insert_with(|| read_pem(file, PemKind::Certs))
        {
            Ok(Pem::Certs(certs)) => Ok(certs.clone()),
            Ok(Pem::Key(_)) => Err(format!("{} holds a key, not certificates", file.display())),
            Err(e) => Err(e.clone()),
        }
    }

    fn key(&mut self, file: &Path) -> Result<Arc<PrivateKeyDer<'static>>, String> {
        match self
            .pem
            .entry(file.to_owned())
            .or_insert_with(|| read_pem(file, PemKind::Key))
        {
            Ok(Pem::Key(key)) => Ok(key.clone()),
            Ok(Pem::Certs(_)) => Err(format!(
                "{} holds certificates, not a private key",
                file.display()
            )),
            Err(e) => Err(e.clone()),
        }
    }

    /// The spec of an ad-hoc probe.
    pub(super) fn adhoc(
        &self,
        address: Address,
        module: Option<&str>,
        server_name: Option<TlsName>,
    ) -> Result<TargetSpec, String> {
        let settings = match module {
            None => self.defaults.clone(),
            Some(name) => self
                .modules
                .get(name)
                .ok_or_else(|| format!("unknown module {name:?}"))?
                .clone()
                .or(&self.defaults),
        };
        // Ad-hoc probes reuse the files and setups loaded with the configuration.
        let mut resolver = Resolver {
            base_dir: self.base_dir.clone(),
            pem: self.pem.clone(),
            setups: self.setups.clone(),
            system_trust: self.system_trust.clone(),
            ..Default::default()
        };
        resolver.unscheduled(address, server_name, settings)
    }

    /// The spec of a probe that is not scheduled: named after its address, with no
    /// labels, and an interval that only must not undercut its timeout.
    pub(super) fn unscheduled(
        &mut self,
        address: Address,
        server_name: Option<TlsName>,
        mut settings: RawSettings,
    ) -> Result<TargetSpec, String> {
        let timeout = settings.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get());
        let interval = settings.interval.map_or(DEFAULT_INTERVAL, |i| i.get());
        settings.interval = Some(super::PromDuration::from_duration(interval.max(timeout)));
        self.spec(
            address.to_string(),
            address,
            server_name,
            &settings,
            Vec::new(),
        )
    }

    /// A resolver with nothing loaded, for one-off probes from the command line.
    pub(super) fn standalone(base_dir: &Path) -> Self {
        Resolver {
            base_dir: base_dir.to_owned(),
            ..Default::default()
        }
    }
}

/// The largest PEM file read: a CA bundle of every public root is about 250 KiB.
const MAX_PEM_FILE: u64 = 4 * 1024 * 1024;

/// Reads at most `limit` bytes of `path`: `/dev/zero` named by mistake must not hang
/// the configuration load.
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "the file is larger than {} MiB",
            limit / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

fn read_pem(path: &Path, kind: PemKind) -> Result<Pem, String> {
    let what = match kind {
        PemKind::Certs => "certificates",
        PemKind::Key => "a private key",
    };
    let bytes = read_bounded(path, MAX_PEM_FILE).map_err(|e| {
        format!("cannot read {}: {e}; check the path (relative paths start at the configuration file's directory)", path.display())
    })?;
    let unparsable =
        |e: &dyn std::fmt::Display| format!("{} does not hold PEM {what}: {e}", path.display());
    match kind {
        PemKind::Certs => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| unparsable(&e))?;
            if certs.is_empty() {
                return Err(format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
            Ok(Pem::Certs(certs))
        }
        PemKind::Key => PrivateKeyDer::from_pem_slice(&bytes)
            .map(|k| Pem::Key(Arc::new(k)))
            .map_err(|e| unparsable(&e)),
    }
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
        assert_eq!(parse_rate("10/s"), Ok(10.0));
        assert_eq!(parse_rate("60/m"), Ok(1.0));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("10").is_err());
    }
}
