//! The configuration file as written: a serde mirror of the YAML.
//!
//! Every mapping denies unknown keys, and every value is one of the validated types of
//! `config::types`, so serde_yaml reports a bad key or value with its line and column.
//! Nothing here applies defaults, merges settings or opens files: `config::resolve` does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::files::PathGlob;
use super::reach::{DnsServer, MxDomain, ProxySetting, SrvName};
use super::types::{
    Address, FileFormat, IpFamily, KeyType, LabelName, Legacy, PromDuration, ResolveMode, StartTls,
    TlsName, Trust, XmppDomain,
};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address the HTTP server listens on.
    pub listen: Option<String>,
    /// Probes in flight at most, over all targets.
    pub concurrency: Option<usize>,
    /// Settings every target inherits.
    #[serde(default)]
    pub defaults: RawSettings,
    /// Named bundles of settings.
    #[serde(default)]
    pub modules: BTreeMap<String, RawSettings>,
    /// Limits on `GET /probe`.
    pub probe: Option<RawProbeLimits>,
    /// The endpoints to watch.
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    /// Certificate files to watch.
    #[serde(default)]
    pub files: Vec<RawFiles>,
    /// The expiry thresholds of the status page (and the shipped rules' numbers).
    pub thresholds: Option<RawThresholds>,
    /// How names are resolved.
    pub dns: Option<RawDns>,
}

/// `thresholds:`: when a certificate that counts becomes a warning or critical.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    /// A warning when the first notAfter that counts is less than this away.
    pub warning: Option<PromDuration>,
    /// Critical when it is less than this away.
    pub critical: Option<PromDuration>,
}

/// `dns:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// The servers every lookup is asked of; default: the system's configuration.
    pub servers: Option<Vec<DnsServer>>,
    /// The longest one lookup may take.
    pub timeout: Option<PromDuration>,
}

/// Probe settings that `defaults`, a module or a target may set.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// How often the target is probed.
    pub interval: Option<PromDuration>,
    /// Bound on one whole probe.
    pub timeout: Option<PromDuration>,
    /// Trust anchors.
    pub trust: Option<Trust>,
    /// STARTTLS dialect.
    pub starttls: Option<StartTls>,
    /// The XMPP domain sent in the stream header (`starttls: xmpp`); default: server_name.
    pub xmpp_domain: Option<XmppDomain>,
    /// Which resolved addresses are probed.
    pub resolve: Option<ResolveMode>,
    /// Which address families are probed.
    pub ip_family: Option<IpFamily>,
    /// Extra anchors and client identity.
    pub tls: Option<RawTls>,
    /// Which key type's signature schemes and suites to offer.
    pub key_type: Option<KeyType>,
    /// Whether to send SNI.
    pub sni: Option<bool>,
    /// Whether to send the legacy second hello.
    pub legacy: Option<Legacy>,
    /// The proxy connections go through, or `none`.
    pub proxy: Option<ProxySetting>,
    /// The file holding the proxy password (the user is in the URL).
    pub proxy_password_file: Option<PathBuf>,
    /// OCSP and CRL checking.
    pub revocation: Option<RawRevocation>,
}

/// `revocation:`, each setting inherited on its own.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    /// `stapled`, `fetch` or `off`.
    pub ocsp: Option<crate::revocation::OcspMode>,
    /// `leaf` or `chain`.
    pub depth: Option<crate::revocation::Depth>,
    /// `off` or `fetch`.
    pub crl: Option<crate::revocation::CrlMode>,
    /// Fetch from loopback, private, link-local or unspecified addresses too.
    pub allow_private_addresses: Option<bool>,
}

impl RawRevocation {
    fn or(self, fallback: RawRevocation) -> RawRevocation {
        RawRevocation {
            ocsp: self.ocsp.or(fallback.ocsp),
            depth: self.depth.or(fallback.depth),
            crl: self.crl.or(fallback.crl),
            allow_private_addresses: self
                .allow_private_addresses
                .or(fallback.allow_private_addresses),
        }
    }

    /// The settings, with the built-in defaults for what is unset.
    pub fn resolve(self) -> crate::revocation::Settings {
        crate::revocation::Settings {
            ocsp: self.ocsp.unwrap_or_default(),
            depth: self.depth.unwrap_or_default(),
            crl: self.crl.unwrap_or_default(),
            allow_private_addresses: self.allow_private_addresses.unwrap_or(false),
        }
    }
}

/// TLS files.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Extra trust anchors (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM).
    pub client_cert_file: Option<PathBuf>,
    /// Client private key (PEM).
    pub client_key_file: Option<PathBuf>,
}

/// Limits on `GET /probe`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbeLimits {
    /// Host globs or CIDRs with a port or `*`.
    pub allow: Option<Vec<String>>,
    /// Requests per second per client, written `10/s`.
    pub rate_limit: Option<String>,
    /// Concurrent `/probe` requests at most.
    pub max_in_flight: Option<usize>,
}

/// One endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Where to connect; exactly one of `address`, `mx` and `srv` is set.
    pub address: Option<Address>,
    /// The `target` label; defaults to the address.
    pub name: Option<String>,
    /// A module to inherit settings from.
    pub module: Option<String>,
    /// SNI and the name verified.
    pub server_name: Option<TlsName>,
    /// Extra labels on every series of this target.
    #[serde(default)]
    pub labels: BTreeMap<LabelName, String>,
    /// How often the target is probed.
    pub interval: Option<PromDuration>,
    /// Bound on one whole probe.
    pub timeout: Option<PromDuration>,
    /// Trust anchors.
    pub trust: Option<Trust>,
    /// STARTTLS dialect.
    pub starttls: Option<StartTls>,
    /// The XMPP domain sent in the stream header (`starttls: xmpp`); default: server_name.
    pub xmpp_domain: Option<XmppDomain>,
    /// Which resolved addresses are probed.
    pub resolve: Option<ResolveMode>,
    /// Which address families are probed.
    pub ip_family: Option<IpFamily>,
    /// Extra anchors and client identity.
    pub tls: Option<RawTls>,
    /// Which key type's signature schemes and suites to offer.
    pub key_type: Option<KeyType>,
    /// Whether to send SNI.
    pub sni: Option<bool>,
    /// Whether to send the legacy second hello.
    pub legacy: Option<Legacy>,
    /// OCSP and CRL checking.
    pub revocation: Option<RawRevocation>,
    /// Every MX host of this domain, instead of `address`.
    pub mx: Option<MxDomain>,
    /// Every target of this SRV name, instead of `address`.
    pub srv: Option<SrvName>,
    /// The port probed on each MX host.
    pub port: Option<u16>,
    /// The proxy connections go through, or `none`.
    pub proxy: Option<ProxySetting>,
    /// The file holding the proxy password (the user is in the URL).
    pub proxy_password_file: Option<PathBuf>,
    /// The file (or glob) the server should be serving the certificate of.
    pub served_from: Option<PathGlob>,
}

/// One `files:` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFiles {
    /// The `target` label.
    pub name: String,
    /// Files or globs.
    pub paths: Vec<PathGlob>,
    /// How the files are read.
    pub format: Option<FileFormat>,
    /// The file holding the PKCS#12 password.
    pub password_file: Option<PathBuf>,
    /// How often the files are re-read.
    pub interval: Option<PromDuration>,
    /// Anchors to verify each file's bundle against; none by default.
    pub trust: Option<Trust>,
    /// Extra labels on every series of this source.
    #[serde(default)]
    pub labels: BTreeMap<LabelName, String>,
}

impl RawTarget {
    /// The settings this target sets itself.
    pub fn own_settings(&self) -> RawSettings {
        RawSettings {
            interval: self.interval,
            timeout: self.timeout,
            trust: self.trust,
            starttls: self.starttls,
            xmpp_domain: self.xmpp_domain.clone(),
            resolve: self.resolve,
            ip_family: self.ip_family,
            tls: self.tls.clone(),
            key_type: self.key_type,
            sni: self.sni,
            legacy: self.legacy,
            revocation: self.revocation,
            proxy: self.proxy.clone(),
            proxy_password_file: self.proxy_password_file.clone(),
        }
    }
}

impl RawSettings {
    /// Fills every setting unset here from `fallback`.
    pub fn or(self, fallback: &RawSettings) -> RawSettings {
        RawSettings {
            interval: self.interval.or(fallback.interval),
            timeout: self.timeout.or(fallback.timeout),
            trust: self.trust.or(fallback.trust),
            starttls: self.starttls.or(fallback.starttls),
            xmpp_domain: self.xmpp_domain.or_else(|| fallback.xmpp_domain.clone()),
            resolve: self.resolve.or(fallback.resolve),
            ip_family: self.ip_family.or(fallback.ip_family),
            tls: match (self.tls, &fallback.tls) {
                (Some(own), Some(inherited)) => Some(own.or(inherited)),
                (own, inherited) => own.or_else(|| inherited.clone()),
            },
            key_type: self.key_type.or(fallback.key_type),
            sni: self.sni.or(fallback.sni),
            legacy: self.legacy.or(fallback.legacy),
            revocation: match (self.revocation, fallback.revocation) {
                (Some(own), Some(inherited)) => Some(own.or(inherited)),
                (own, inherited) => own.or(inherited),
            },
            proxy: self.proxy.or_else(|| fallback.proxy.clone()),
            proxy_password_file: self
                .proxy_password_file
                .or_else(|| fallback.proxy_password_file.clone()),
        }
    }
}

impl RawTls {
    fn or(self, fallback: &RawTls) -> RawTls {
        RawTls {
            ca_file: self.ca_file.or_else(|| fallback.ca_file.clone()),
            client_cert_file: self
                .client_cert_file
                .or_else(|| fallback.client_cert_file.clone()),
            client_key_file: self
                .client_key_file
                .or_else(|| fallback.client_key_file.clone()),
        }
    }
}
