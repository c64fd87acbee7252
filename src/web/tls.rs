//! The rustls server configuration of certwatch's own listener, built from
//! `tls_server_config`: protocol versions, cipher suites and key exchange groups (by
//! their Go names, mapped onto rustls' ring provider), the served certificate and key,
//! the client CAs, and ALPN (`h2` when HTTP/2 is on).
//!
//! [`load`] reads the files (through `crate::fileread`: at most [`PEM_LIMIT`] each,
//! never a FIFO or a device) and builds a whole new [`Serving`]; a reload swaps it in,
//! so new handshakes see the new certificate, CAs and settings together while
//! connections already established keep theirs. Client certificate policies are
//! `web::client_auth`'s; reading the YAML is `web::config`'s; the names of suites and
//! curves are `web::settings`'.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::CertificateDer;

use super::client_auth::{self, PolicyError};
use super::settings::{TlsSettings, TlsVersion};
use crate::cert;
use crate::fileread::{read_certificates, read_private_key, PemError, ReadError};

/// ALPN protocol ids, in the server's order of preference.
const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Everything the listener needs to serve TLS with one set of files.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The configuration each connection's handshake uses.
    pub config: Arc<ServerConfig>,
    /// The same certificate, versions and suites without client authentication, for
    /// certwatch's in-process check of its own certificate.
    pub self_check: Arc<ServerConfig>,
    /// The served chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// SHA-256 of the served leaf, lowercase hex.
    pub fingerprint: String,
}

/// Reads the files of `settings` and builds the rustls configurations. Problems come
/// as `(key of tls_server_config, error)`; an empty key means the section. Blocking.
pub fn load(
    settings: &TlsSettings,
    http2: bool,
) -> Result<Serving, Vec<(&'static str, ServingError)>> {
    let mut problems = Vec::new();
    let chain = read_certificates(&settings.cert_file)
        .map_err(|e| problems.push(("cert_file", e.into())))
        .ok();
    let key = read_private_key(&settings.key_file)
        .map_err(|e| problems.push(("key_file", e.into())))
        .ok();
    let roots = match &settings.client_ca_file {
        None => None,
        Some(file) => read_roots(file)
            .map_err(|e| problems.push(("client_ca_file", e)))
            .ok(),
    };
    let (Some(chain), Some(key)) = (chain, key) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let provider = provider(settings);
    let certified = CertifiedKey::from_der(chain.clone(), key, &provider).map_err(|source| {
        vec![(
            "key_file",
            ServingError::Pair {
                cert: settings.cert_file.clone(),
                key: settings.key_file.clone(),
                source,
            },
        )]
    })?;
    let resolver: Arc<dyn ResolvesServerCert> =
        Arc::new(SingleCertAndKey::from(Arc::new(certified)));
    let verifier = client_auth::verifier(settings, roots.map(Arc::new), &provider)
        .map_err(|e| vec![("client_ca_file", e.into())])?;
    let versions = versions(settings);
    let builder = || {
        ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|source| vec![("", ServingError::NoHandshake { source })])
    };
    let mut config = builder()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver.clone());
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    config.alpn_protocols = if http2 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]
    } else {
        vec![ALPN_HTTP1.to_vec()]
    };
    let mut self_check = builder()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    self_check.ignore_client_order = settings.prefer_server_cipher_suites;
    self_check.send_tls13_tickets = 0;
    let fingerprint = cert::ParsedCert::from_der(&chain[0]).fingerprint_sha256;
    Ok(Serving {
        config: Arc::new(config),
        self_check: Arc::new(self_check),
        chain,
        fingerprint,
    })
}

/// Whether a connection negotiated HTTP/2 through ALPN.
pub fn negotiated_h2(alpn: Option<&[u8]>) -> bool {
    alpn == Some(ALPN_H2)
}

fn provider(settings: &TlsSettings) -> Arc<CryptoProvider> {
    let base = rustls::crypto::ring::default_provider();
    let cipher_suites = if settings.cipher_suites.is_empty() {
        base.cipher_suites.clone()
    } else {
        // As in Go, naming only TLS 1.2 suites leaves TLS 1.3's at their defaults;
        // naming TLS 1.3 suites too restricts those as well.
        let listed_13: Vec<SupportedCipherSuite> = settings
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .collect();
        let tls13 = if listed_13.is_empty() {
            base.cipher_suites
                .iter()
                .copied()
                .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
                .collect()
        } else {
            listed_13
        };
        tls13
            .into_iter()
            .chain(
                settings
                    .cipher_suites
                    .iter()
                    .copied()
                    .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_))),
            )
            .collect()
    };
    let kx_groups = if settings.curves.is_empty() {
        base.kx_groups.clone()
    } else {
        settings.curves.clone()
    };
    Arc::new(CryptoProvider {
        cipher_suites,
        kx_groups,
        ..base
    })
}

fn versions(settings: &TlsSettings) -> Vec<&'static SupportedProtocolVersion> {
    [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
    .map(|(_, supported)| supported)
    .collect()
}

/// The web configuration's PEM files are read with the same bounds as every other.
pub use crate::fileread::PEM_LIMIT;

/// Why the listener's TLS material did not load.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// A PEM file did not load.
    #[error("{source}{}", pem_hint(source))]
    Pem {
        /// Why.
        source: PemError,
    },
    /// The key is not the one of the certificate.
    #[error("{} and {} do not form a usable pair: {source}; the key must be the one of the first certificate of cert_file", key.display(), cert.display())]
    Pair {
        /// `cert_file`.
        cert: PathBuf,
        /// `key_file`.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// A client CA certificate cannot be a trust anchor.
    #[error("{}: a CA certificate is not usable: {source}; name CA certificates (PEM) only", file.display())]
    ClientCa {
        /// `client_ca_file`.
        file: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The client certificate policy cannot be built.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The versions, suites and curves leave nothing to negotiate.
    #[error("no TLS handshake is possible with these settings: {source}; check min_version, max_version, cipher_suites and curve_preferences")]
    NoHandshake {
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl From<PemError> for ServingError {
    fn from(source: PemError) -> Self {
        ServingError::Pem { source }
    }
}

fn pem_hint(error: &PemError) -> &'static str {
    match error {
        PemError::Read(ReadError::NotFound { .. }) => {
            " (relative paths start at the web configuration file's directory)"
        }
        _ => "",
    }
}

fn read_roots(path: &Path) -> Result<RootCertStore, ServingError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(path)? {
        roots.add(cert).map_err(|source| ServingError::ClientCa {
            file: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}
