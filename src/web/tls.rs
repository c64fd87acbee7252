//! The rustls server configuration of certwatch's own listener, built from
//! `tls_server_config`: protocol versions, cipher suites and key exchange groups (by
//! their Go names, mapped onto rustls' ring provider), the served certificate and key,
//! the client CAs, and ALPN (`h2` when HTTP/2 is on).
//!
//! [`load`] reads the files and builds a whole new [`Serving`]; a reload swaps it in,
//! so new handshakes see the new certificate, CAs and settings together while
//! connections already established keep theirs. Client certificate policies are
//! `web::client_auth`'s; reading the YAML is `web::config`'s.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::client_auth;
use super::config::{TlsSettings, TlsVersion};
use crate::cert;

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
/// as `(key of tls_server_config, message)`; an empty key means the section.
pub fn load(settings: &TlsSettings, http2: bool) -> Result<Serving, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let chain = read_certs(&settings.cert_file)
        .map_err(|m| problems.push(("cert_file", m)))
        .ok();
    let key = read_key(&settings.key_file)
        .map_err(|m| problems.push(("key_file", m)))
        .ok();
    let roots = match &settings.client_ca_file {
        None => None,
        Some(file) => read_roots(file)
            .map_err(|m| problems.push(("client_ca_file", m)))
            .ok(),
    };
    let (Some(chain), Some(key)) = (chain, key) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let provider = provider(settings);
    let certified = CertifiedKey::from_der(chain.clone(), key, &provider).map_err(|e| {
        vec![(
            "key_file",
            format!(
                "{} and {} do not form a usable pair: {e}; the key must be the one of the first certificate of cert_file",
                settings.key_file.display(),
                settings.cert_file.display()
            ),
        )]
    })?;
    let resolver: Arc<dyn ResolvesServerCert> =
        Arc::new(SingleCertAndKey::from(Arc::new(certified)));
    let verifier = client_auth::verifier(settings, roots.map(Arc::new), &provider)
        .map_err(|m| vec![("client_ca_file", m)])?;
    let versions = versions(settings);
    let builder = || {
        ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| vec![("", format!("no TLS handshake is possible with these settings: {e}; check min_version, max_version, cipher_suites and curve_preferences"))])
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

/// The cipher suites rustls (ring) implements, by their Go and IANA names.
const SUITES: [(&str, &SupportedCipherSuite); 9] = [
    (
        "TLS_AES_128_GCM_SHA256",
        &rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        &rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        &rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        &rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        &rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        &rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        &rustls::crypto::ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        &rustls::crypto::ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        &rustls::crypto::ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Suites Go knows and rustls deliberately does not implement.
const UNIMPLEMENTED_SUITES: [&str; 16] = [
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// The suite named `name` (Go's names; Go's older `..._CHACHA20_POLY1305` without
/// `_SHA256` too), or why it cannot be used.
pub fn cipher_suite(name: &str) -> Result<SupportedCipherSuite, String> {
    let canonical = match name {
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        other => other,
    };
    if let Some((_, suite)) = SUITES.iter().find(|(n, _)| *n == canonical) {
        return Ok(**suite);
    }
    let known: Vec<&str> = SUITES.iter().map(|(n, _)| *n).collect();
    if UNIMPLEMENTED_SUITES.contains(&name) {
        let why = if name.starts_with("TLS_RSA_") {
            "it uses RSA key exchange, which has no forward secrecy"
        } else {
            "it uses RC4, 3DES or CBC mode; only AEAD suites are implemented"
        };
        Err(format!(
            "cipher suite {name} is not available: certwatch's TLS library (rustls) does not implement it ({why}); choose from {}",
            known.join(", ")
        ))
    } else {
        Err(format!(
            "unknown cipher suite {name:?}: use Go's names, one of {}",
            known.join(", ")
        ))
    }
}

/// The key exchange group named `name` (Go's `CurveID` names), or why it cannot be used.
pub fn kx_group(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    match name {
        "X25519" => Ok(rustls::crypto::ring::kx_group::X25519),
        "CurveP256" => Ok(rustls::crypto::ring::kx_group::SECP256R1),
        "CurveP384" => Ok(rustls::crypto::ring::kx_group::SECP384R1),
        "CurveP521" | "X25519MLKEM768" => Err(format!(
            "curve {name} is not available: certwatch's TLS library (rustls with ring) does not implement it; choose from X25519, CurveP256, CurveP384"
        )),
        _ => Err(format!(
            "unknown curve {name:?}: use X25519, CurveP256 or CurveP384"
        )),
    }
}

/// A PEM error in words (the library shows the expected END line as bytes).
fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section has no end line ({})",
            String::from_utf8_lossy(end_marker)
        ),
        rustls_pki_types::pem::Error::IllegalSectionStart { line } => format!(
            "a PEM section starts with an invalid line ({})",
            String::from_utf8_lossy(line)
        ),
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; check the path (relative paths start at the web configuration file's directory)",
            path.display()
        )
    })
}

/// Every certificate of a PEM file, at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{} does not hold PEM certificates: {}",
                path.display(),
                pem_error(&e)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "{} does not hold a PEM private key: {}",
            path.display(),
            pem_error(&e)
        )
    })
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: a CA certificate is not usable: {e}", path.display()))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_cipher_names_map_onto_rustls_or_say_why_not() {
        assert!(cipher_suite("TLS_AES_128_GCM_SHA256").is_ok());
        assert_eq!(
            cipher_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305").unwrap(),
            cipher_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256").unwrap()
        );
        let cbc = cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA").unwrap_err();
        assert!(
            cbc.contains("does not implement") && cbc.contains("CBC"),
            "{cbc}"
        );
        let rsa = cipher_suite("TLS_RSA_WITH_AES_128_GCM_SHA256").unwrap_err();
        assert!(rsa.contains("forward secrecy"), "{rsa}");
        assert!(cipher_suite("TLS_MADE_UP").unwrap_err().contains("unknown"));
    }

    #[test]
    fn go_curve_names_map_onto_rustls_or_say_why_not() {
        assert!(kx_group("X25519").is_ok());
        assert!(kx_group("CurveP384").is_ok());
        assert!(kx_group("CurveP521")
            .unwrap_err()
            .contains("does not implement"));
        assert!(kx_group("P-256").unwrap_err().contains("unknown"));
    }
}
