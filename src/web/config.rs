//! The web configuration file (`--web.config.file`), as the Prometheus exporter-toolkit
//! defines it for node_exporter and blackbox_exporter: `tls_server_config`,
//! `http_server_config` and `basic_auth_users`.
//!
//! Two stages, as for `certwatch.yml`: the `Raw*` types mirror the file, deny unknown
//! keys and validate single values while serde_yaml still knows their line and column
//! (a TLS version, a cipher suite, a curve, a bcrypt hash); [`parse`] then checks what
//! needs several keys (a client CA without a client-auth policy, SAN checks without a
//! required certificate...) and [`load_tls`] has `web::tls` load the files named. Every
//! problem is reported at once, placed by `config::locate`. Keys of the toolkit that
//! certwatch cannot honour are refused with the reason, never ignored. The TLS value
//! types live in `web::settings`, shared with `web::tls` and `web::client_auth`.
//!
//! The web configuration has no numeric setting: nothing here needs a range check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use axum::http::{HeaderName, HeaderValue};
use rustls::SupportedCipherSuite;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::auth::{PasswordHash, Users};
pub use super::settings::{CipherSuite, ClientAuthType, Curve, TlsSettings, TlsVersion};
use super::tls::{self, Serving, ServingError};
use crate::config::{deserialize_from_str, ConfigError, Positions, Problem};
use crate::fileread::MIB;

/// The largest web configuration file read: 1 MiB (the toolkit's own examples are a
/// few hundred bytes; a thousand bcrypt users take about 80 KiB).
pub const WEB_CONFIG_LIMIT: u64 = MIB;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebConfig {
    /// TLS on certwatch's own listener.
    pub tls_server_config: Option<RawTlsServerConfig>,
    /// HTTP settings.
    pub http_server_config: Option<RawHttpServerConfig>,
    /// User name → bcrypt hash.
    pub basic_auth_users: Option<BTreeMap<String, PasswordHash>>,
    /// The toolkit's global request limiter: refused (see [`UNSUPPORTED`]).
    pub rate_limit: Option<IgnoredAny>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsServerConfig {
    /// The served certificate chain (PEM), leaf first.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Inline certificate: refused.
    pub cert: Option<IgnoredAny>,
    /// Inline key: refused.
    pub key: Option<IgnoredAny>,
    /// Inline client CA: refused.
    pub client_ca: Option<IgnoredAny>,
    /// The client certificate policy.
    pub client_auth_type: Option<ClientAuthType>,
    /// The CAs client certificates must chain to (PEM).
    pub client_ca_file: Option<PathBuf>,
    /// The oldest TLS version accepted.
    pub min_version: Option<TlsVersion>,
    /// The newest TLS version accepted.
    pub max_version: Option<TlsVersion>,
    /// Cipher suites, by their Go (IANA) names.
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// Key exchange groups, by their Go names, in preference order.
    pub curve_preferences: Option<Vec<Curve>>,
    /// Whether the server's order of `cipher_suites` wins over the client's.
    pub prefer_server_cipher_suites: Option<bool>,
    /// The client certificate must carry one of these SANs (DNS, e-mail, IP or URI).
    pub client_allowed_sans: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpServerConfig {
    /// Offer HTTP/2 over TLS (ALPN `h2`); default true.
    pub http2: Option<bool>,
    /// Extra response headers.
    pub headers: Option<RawHeaders>,
}

/// The response headers the toolkit lets a configuration set, and only those.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// `Content-Security-Policy`.
    #[serde(rename = "Content-Security-Policy")]
    pub content_security_policy: Option<HeaderText>,
    /// `X-Frame-Options`: `deny` or `sameorigin`.
    #[serde(rename = "X-Frame-Options")]
    pub x_frame_options: Option<FrameOptions>,
    /// `X-Content-Type-Options`: `nosniff`.
    #[serde(rename = "X-Content-Type-Options")]
    pub x_content_type_options: Option<ContentTypeOptions>,
    /// `X-XSS-Protection`.
    #[serde(rename = "X-XSS-Protection")]
    pub x_xss_protection: Option<HeaderText>,
    /// `Strict-Transport-Security`.
    #[serde(rename = "Strict-Transport-Security")]
    pub strict_transport_security: Option<HeaderText>,
}

/// Toolkit keys certwatch refuses, with what to do instead.
pub const UNSUPPORTED: [(&str, &str); 4] = [
    ("rate_limit", "rate_limit (the toolkit's global request limiter) is not supported by certwatch: limit GET /probe per client with probe.rate_limit in certwatch.yml"),
    ("tls_server_config.cert", "inline `cert` is not supported by certwatch: write the PEM to a file and name it with cert_file (a file can be rotated without a restart)"),
    ("tls_server_config.key", "inline `key` is not supported by certwatch: write the PEM to a file and name it with key_file (a file can be rotated without a restart)"),
    ("tls_server_config.client_ca", "inline `client_ca` is not supported by certwatch: write the PEM to a file and name it with client_ca_file"),
];

/// A header value that HTTP can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderText(pub HeaderValue);

/// A header value certwatch cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Control characters or line breaks.
    #[error(
        "{text:?} cannot be sent in an HTTP header: remove control characters and line breaks"
    )]
    NotSendable {
        /// As written.
        text: String,
    },
    /// Not `deny` or `sameorigin`.
    #[error("invalid X-Frame-Options {text:?}: use deny or sameorigin")]
    FrameOptions {
        /// As written.
        text: String,
    },
    /// Not `nosniff`.
    #[error("invalid X-Content-Type-Options {text:?}: the only value is nosniff")]
    ContentTypeOptions {
        /// As written.
        text: String,
    },
}

impl FromStr for HeaderText {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HeaderValue::from_str(s)
            .map(HeaderText)
            .map_err(|_| HeaderError::NotSendable { text: s.to_owned() })
    }
}

deserialize_from_str!(HeaderText, "a header value");

/// `X-Frame-Options`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameOptions(pub HeaderValue);

impl FromStr for FrameOptions {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deny" | "sameorigin" => Ok(FrameOptions(HeaderValue::from_static(if s == "deny" {
                "deny"
            } else {
                "sameorigin"
            }))),
            _ => Err(HeaderError::FrameOptions { text: s.to_owned() }),
        }
    }
}

deserialize_from_str!(FrameOptions, "deny or sameorigin");

/// `X-Content-Type-Options`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentTypeOptions;

impl FromStr for ContentTypeOptions {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nosniff" => Ok(ContentTypeOptions),
            _ => Err(HeaderError::ContentTypeOptions { text: s.to_owned() }),
        }
    }
}

deserialize_from_str!(ContentTypeOptions, "nosniff");

/// What is wrong with a web configuration beyond single values.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// A toolkit key certwatch refuses (see [`UNSUPPORTED`]).
    #[error("{}", unsupported_message(key))]
    Unsupported {
        /// The key, as a path (`tls_server_config.cert`).
        key: &'static str,
    },
    /// A basic-auth user name HTTP cannot carry.
    #[error("invalid user name {user:?}: basic authentication cannot carry an empty name or one with ':'")]
    UserName {
        /// As written.
        user: String,
    },
    /// `cert_file` or `key_file` missing.
    #[error("tls_server_config needs {key}: the PEM file of the {}", if *key == "cert_file" { "certificate chain certwatch serves, leaf first" } else { "private key of that certificate" })]
    Missing {
        /// `cert_file` or `key_file`.
        key: &'static str,
    },
    /// `min_version` newer than `max_version`.
    #[error("min_version is newer than max_version: no TLS version is left")]
    NoVersionLeft,
    /// `client_ca_file` with no policy using it.
    #[error("client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type (e.g. RequireAndVerifyClientCert) or remove client_ca_file")]
    UnusedClientCa,
    /// A verifying policy without CAs.
    #[error("{} verifies client certificates: set client_ca_file to the CAs they must chain to", policy.as_str())]
    NoClientCa {
        /// The policy.
        policy: ClientAuthType,
    },
    /// SAN checks on connections that may carry no certificate.
    #[error("client_allowed_sans needs a client certificate on every connection: set client_auth_type to RequireAndVerifyClientCert or RequireAnyClientCert")]
    SansWithoutCertificate,
    /// Only TLS 1.3 suites while TLS 1.2 is allowed.
    #[error("cipher_suites names no TLS 1.2 suite but min_version allows TLS 1.2: add TLS 1.2 suites or set min_version: TLS13")]
    NoTls12Suite,
    /// A file named did not load.
    #[error(transparent)]
    Serving(#[from] ServingError),
}

fn unsupported_message(key: &str) -> &'static str {
    UNSUPPORTED
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("this key is not supported by certwatch", |(_, m)| m)
}

/// A validated web configuration; the files it names are not read yet.
#[derive(Debug, Default)]
pub struct WebConfig {
    /// TLS settings; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Basic-auth users; empty: no authentication.
    pub users: Users,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Offer HTTP/2 over TLS.
    pub http2: bool,
}

/// Loads the TLS material `config` names (nothing without TLS); `text` and `origin`
/// are the file it came from, to place problems at the keys naming the files.
pub fn load_tls(
    text: &str,
    origin: &str,
    config: &WebConfig,
) -> Result<Option<Serving>, ConfigError> {
    let Some(settings) = &config.tls else {
        return Ok(None);
    };
    tls::load(settings, config.http2)
        .map(Some)
        .map_err(|problems| {
            place(
                text,
                origin,
                problems
                    .into_iter()
                    .map(|(key, error)| {
                        let path = if key.is_empty() {
                            "tls_server_config".to_owned()
                        } else {
                            format!("tls_server_config.{key}")
                        };
                        (path, error.into())
                    })
                    .collect(),
            )
        })
}

/// Validates `text`; relative paths start at `base_dir`. Reads no file.
pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<WebConfig, ConfigError> {
    let raw: RawWebConfig = if text.trim().is_empty() {
        RawWebConfig::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.to_owned(),
            problems: vec![Problem::from_yaml(&e)],
        })?
    };
    let mut problems = Vec::new();
    let config = build(raw, base_dir, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(place(text, origin, problems))
    }
}

/// Places each `(path, error)` at its line and column.
fn place(text: &str, origin: &str, problems: Vec<(String, WebConfigError)>) -> ConfigError {
    let positions = Positions::index(text);
    let mut located: Vec<Problem> = problems
        .into_iter()
        .map(|(path, error)| Problem {
            position: positions.find(&path),
            message: error.to_string(),
        })
        .collect();
    located.sort_by_key(|p| p.position);
    ConfigError::Invalid {
        origin: origin.to_owned(),
        problems: located,
    }
}

fn build(
    raw: RawWebConfig,
    base_dir: &Path,
    problems: &mut Vec<(String, WebConfigError)>,
) -> WebConfig {
    let mut add = |path: &str, error: WebConfigError| problems.push((path.to_owned(), error));
    let refused = |present: bool, key: &'static str, add: &mut dyn FnMut(&str, WebConfigError)| {
        if present {
            add(key, WebConfigError::Unsupported { key });
        }
    };
    refused(raw.rate_limit.is_some(), "rate_limit", &mut add);

    let http = raw.http_server_config.unwrap_or_default();
    let headers = headers(http.headers.unwrap_or_default());

    let mut users = BTreeMap::new();
    for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
        if user.is_empty() || user.contains(':') {
            add(
                &format!("basic_auth_users.{user}"),
                WebConfigError::UserName { user },
            );
        } else {
            users.insert(user, hash);
        }
    }

    let tls = raw.tls_server_config.and_then(|raw| {
        refused(raw.cert.is_some(), "tls_server_config.cert", &mut add);
        refused(raw.key.is_some(), "tls_server_config.key", &mut add);
        refused(
            raw.client_ca.is_some(),
            "tls_server_config.client_ca",
            &mut add,
        );
        tls_settings(raw, base_dir, &mut add)
    });
    WebConfig {
        tls,
        users: Users::new(users),
        headers,
        http2: http.http2.unwrap_or(true),
    }
}

fn headers(raw: RawHeaders) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let mut set = |name: &'static str, value: Option<HeaderValue>| {
        // The toolkit leaves a header unset when its value is blank.
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push((HeaderName::from_static(name), value));
        }
    };
    set(
        "content-security-policy",
        raw.content_security_policy.map(|h| h.0),
    );
    set("x-frame-options", raw.x_frame_options.map(|h| h.0));
    set(
        "x-content-type-options",
        raw.x_content_type_options
            .map(|_| HeaderValue::from_static("nosniff")),
    );
    set("x-xss-protection", raw.x_xss_protection.map(|h| h.0));
    set(
        "strict-transport-security",
        raw.strict_transport_security.map(|h| h.0),
    );
    out
}

fn tls_settings(
    raw: RawTlsServerConfig,
    base_dir: &Path,
    add: &mut dyn FnMut(&str, WebConfigError),
) -> Option<TlsSettings> {
    let key = |k: &str| format!("tls_server_config.{k}");
    let client_auth = raw.client_auth_type.unwrap_or_default();
    let min_version = raw.min_version.unwrap_or(TlsVersion::Tls12);
    let max_version = raw.max_version.unwrap_or(TlsVersion::Tls13);
    let mut ok = true;
    let mut problem = |k: &str, error: WebConfigError| {
        ok = false;
        add(&key(k), error);
    };
    if raw.cert_file.is_none() {
        problem("cert_file", WebConfigError::Missing { key: "cert_file" });
    }
    if raw.key_file.is_none() {
        problem("key_file", WebConfigError::Missing { key: "key_file" });
    }
    if min_version > max_version {
        problem("min_version", WebConfigError::NoVersionLeft);
    }
    if raw.client_ca_file.is_some() && client_auth == ClientAuthType::NoClientCert {
        problem("client_ca_file", WebConfigError::UnusedClientCa);
    }
    if client_auth.verifies() && raw.client_ca_file.is_none() {
        problem(
            "client_auth_type",
            WebConfigError::NoClientCa {
                policy: client_auth,
            },
        );
    }
    if raw.client_allowed_sans.is_some() && !client_auth.requires() {
        problem(
            "client_allowed_sans",
            WebConfigError::SansWithoutCertificate,
        );
    }
    let cipher_suites: Vec<SupportedCipherSuite> = raw
        .cipher_suites
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.0)
        .collect();
    if min_version == TlsVersion::Tls12
        && !cipher_suites.is_empty()
        && !cipher_suites
            .iter()
            .any(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
    {
        problem("cipher_suites", WebConfigError::NoTls12Suite);
    }
    if !ok {
        return None;
    }
    Some(TlsSettings {
        cert_file: base_dir.join(raw.cert_file?),
        key_file: base_dir.join(raw.key_file?),
        client_ca_file: raw.client_ca_file.map(|f| base_dir.join(f)),
        client_auth,
        min_version,
        max_version,
        cipher_suites,
        curves: raw
            .curve_preferences
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.0)
            .collect(),
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
        client_allowed_sans: raw.client_allowed_sans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse(text, "web.yml", Path::new("/etc/certwatch")) {
            Ok(config) => panic!("expected problems, got {config:?}"),
            Err(e) => e.problems(),
        }
    }

    fn one_problem(text: &str) -> String {
        let problems = problems(text);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        problems.into_iter().next().unwrap()
    }

    /// `problem` is at `position` (`web.yml:L:C`) and says `what`.
    fn assert_at(problem: &str, position: &str, what: &str) {
        assert!(
            problem.starts_with(&format!("{position}: ")) && problem.contains(what),
            "expected {what:?} at {position}, got: {problem}"
        );
    }

    const HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

    #[test]
    fn every_supported_key_is_read() {
        let text = format!(
            "tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: /abs/key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n  max_version: TLS13\n  cipher_suites: [TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n  client_allowed_sans: [prometheus.example.com]\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=31536000\n    Content-Security-Policy: \"\"\nbasic_auth_users:\n  prometheus: \"{HASH}\"\n"
        );
        let config = parse(&text, "web.yml", Path::new("/etc/certwatch")).unwrap();
        let tls = config.tls.expect("tls");
        assert_eq!(tls.cert_file, Path::new("/etc/certwatch/tls/cert.pem"));
        assert_eq!(tls.key_file, Path::new("/abs/key.pem"));
        assert_eq!(
            tls.client_ca_file.as_deref(),
            Some(Path::new("/etc/certwatch/ca.pem"))
        );
        assert_eq!(tls.client_auth, ClientAuthType::RequireAndVerifyClientCert);
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::Tls13, TlsVersion::Tls13)
        );
        assert_eq!(tls.cipher_suites.len(), 2);
        assert_eq!(tls.curves.len(), 2);
        assert!(!tls.prefer_server_cipher_suites);
        assert_eq!(
            tls.client_allowed_sans,
            Some(vec!["prometheus.example.com".to_owned()])
        );
        assert!(!config.http2);
        let names: Vec<&str> = config.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-frame-options",
                "x-content-type-options",
                "strict-transport-security"
            ],
            "a blank header stays unset"
        );
        assert_eq!(config.users.len(), 1);
    }

    #[test]
    fn the_shipped_example_is_valid_and_every_mapping_rejects_an_unknown_key() {
        let shipped = include_str!("../../config/web.yml");
        let config = parse(shipped, "config/web.yml", Path::new("/etc/certwatch")).unwrap();
        let tls = config.tls.expect("the example serves TLS");
        assert_eq!(tls.client_auth, ClientAuthType::RequireAndVerifyClientCert);
        assert_eq!(config.users.len(), 1);
        for mapping in [
            "tls_server_config:\n",
            "http_server_config:\n",
            "  headers:\n",
            "basic_auth_users:\n",
        ] {
            let indent = " ".repeat(mapping.len() - mapping.trim_start().len() + 2);
            let text = shipped.replacen(mapping, &format!("{mapping}{indent}surprise: 1\n"), 1);
            assert_ne!(text, shipped, "{mapping:?} is in the example");
            let problems = match parse(&text, "web.yml", Path::new(".")) {
                Ok(_) => panic!("an unknown key under {mapping:?} was accepted"),
                Err(e) => e.problems(),
            };
            assert!(
                problems.iter().any(|p| p.contains("surprise")),
                "{mapping:?}: {problems:#?}"
            );
        }
    }

    #[test]
    fn an_empty_file_serves_plain_http_without_authentication() {
        let config = parse("", "web.yml", Path::new(".")).unwrap();
        assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty());
        assert!(config.http2);
    }

    #[test]
    fn defaults_are_tls12_to_tls13_no_client_cert_and_server_order() {
        let config = parse(
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
            "web.yml",
            Path::new("."),
        )
        .unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::Tls12, TlsVersion::Tls13)
        );
        assert_eq!(tls.client_auth, ClientAuthType::NoClientCert);
        assert!(tls.prefer_server_cipher_suites);
    }

    #[test]
    fn unknown_keys_are_rejected_in_every_mapping_with_their_position() {
        for (text, at) in [
            (
                "tls_config: {}\n",
                "web.yml:1:1: unknown field `tls_config`",
            ),
            (
                "tls_server_config:\n  cert_file: c\n  keyfile: k\n",
                "web.yml:3:3: unknown field `keyfile`",
            ),
            (
                "http_server_config:\n  http3: true\n",
                "web.yml:2:3: unknown field `http3`",
            ),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: certwatch\n",
                "web.yml:3:5: unknown field `X-Powered-By`",
            ),
        ] {
            let problem = one_problem(text);
            let (position, what) = at.split_once(": ").unwrap();
            assert_at(&problem, position, what);
            assert!(problem.contains("remove the key"), "{problem}");
        }
    }

    #[test]
    fn values_rustls_cannot_honour_are_refused_where_they_are_written() {
        let problem = one_problem(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n",
        );
        assert_at(&problem, "web.yml:4:16", "TLS10 is not supported");
        let problem = one_problem(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites:\n    - TLS_AES_128_GCM_SHA256\n    - TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n",
        );
        assert_at(
            &problem,
            "web.yml:6:7",
            "cipher suite TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not available",
        );
        let problem = one_problem(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  curve_preferences: [X25519, CurveP521]\n",
        );
        assert_at(&problem, "web.yml:4:31", "curve CurveP521 is not available");
        let problem = one_problem(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireSomeCert\n",
        );
        assert_at(&problem, "web.yml:4:21", "unknown client_auth_type");
    }

    #[test]
    fn inconsistent_settings_are_all_reported_at_their_keys() {
        let problems = problems(
            "tls_server_config:\n  cert_file: c\n  client_ca_file: ca.pem\n  client_allowed_sans: [a]\n  min_version: TLS13\n  max_version: TLS12\n",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert_at(
            &problems[0],
            "web.yml:2:3",
            "tls_server_config needs key_file",
        );
        assert_at(
            &problems[1],
            "web.yml:3:19",
            "client_ca_file is set but client_auth_type is NoClientCert",
        );
        assert_at(
            &problems[2],
            "web.yml:4:24",
            "client_allowed_sans needs a client certificate",
        );
        assert_at(
            &problems[3],
            "web.yml:5:16",
            "min_version is newer than max_version",
        );
        let problem = one_problem(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: VerifyClientCertIfGiven\n",
        );
        assert_at(
            &problem,
            "web.yml:4:21",
            "VerifyClientCertIfGiven verifies client certificates: set client_ca_file",
        );
        let problem = one_problem(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
        );
        assert_at(
            &problem,
            "web.yml:4:18",
            "cipher_suites names no TLS 1.2 suite",
        );
    }

    #[test]
    fn toolkit_keys_certwatch_does_not_support_are_refused_with_the_alternative() {
        let problems = problems(
            "rate_limit:\n  burst: 10\n  interval: 1s\ntls_server_config:\n  cert: |\n    PEM\n  key_file: k\n",
        );
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_at(&problems[0], "web.yml:2:3", "probe.rate_limit");
        assert_at(
            &problems[1],
            "web.yml:5:3",
            "tls_server_config needs cert_file",
        );
        assert_at(
            &problems[2],
            "web.yml:6:5",
            "inline `cert` is not supported",
        );
    }

    #[test]
    fn users_and_headers_are_checked_where_they_are_written() {
        let problem = one_problem("basic_auth_users:\n  alice: plaintext\n");
        assert_at(&problem, "web.yml:2:10", "not a bcrypt hash");
        assert!(
            !problem.contains("plaintext"),
            "the value is not echoed: {problem}"
        );
        let problem = one_problem(&format!("basic_auth_users:\n  \"a:b\": \"{HASH}\"\n"));
        assert_at(&problem, "web.yml:2:10", "invalid user name");
        let problem = one_problem("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert_at(
            &problem,
            "web.yml:3:22",
            "invalid X-Frame-Options \"allow\"",
        );
        let problem =
            one_problem("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n");
        assert_at(&problem, "web.yml:3:29", "invalid X-Content-Type-Options");
    }

    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let make = |name: &str| {
                let key = rcgen::KeyPair::generate().unwrap();
                let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
                    .unwrap()
                    .self_signed(&key)
                    .unwrap();
                (cert.pem(), key.serialize_pem())
            };
            let (cert, key) = make("localhost");
            let (_, other_key) = make("other");
            for (file, text) in [
                ("cert.pem", cert.as_str()),
                ("key.pem", &key),
                ("other.key", &other_key),
                ("junk.pem", "not PEM\n"),
            ] {
                std::fs::write(dir.path().join(file), text).unwrap();
            }
            Self { dir }
        }

        fn load(&self, text: &str) -> Result<Option<Serving>, Vec<String>> {
            let config = parse(text, "web.yml", self.dir.path()).map_err(|e| e.problems())?;
            load_tls(text, "web.yml", &config).map_err(|e| e.problems())
        }
    }

    #[test]
    fn files_that_do_not_load_are_reported_at_the_key_naming_them() {
        let pki = Pki::new();
        let serving = pki
            .load("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")
            .unwrap()
            .expect("TLS");
        assert_eq!(serving.chain.len(), 1);
        assert_eq!(
            serving.config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );

        let problems = pki
            .load("tls_server_config:\n  cert_file: missing.pem\n  key_file: junk.pem\n")
            .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_at(&problems[0], "web.yml:2:14", "cannot read ");
        assert_at(&problems[1], "web.yml:3:13", "private key");

        let problems = pki
            .load("tls_server_config:\n  cert_file: cert.pem\n  key_file: other.key\n")
            .unwrap_err();
        assert_at(&problems[0], "web.yml:3:13", "do not form a usable pair");

        let problems = pki
            .load("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: junk.pem\n")
            .unwrap_err();
        assert_at(&problems[0], "web.yml:5:19", "holds no PEM certificate");
    }
}
