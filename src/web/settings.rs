//! The TLS settings of certwatch's own listener, as values: the client certificate
//! policy, the TLS versions, and Go's cipher suite and curve names mapped onto rustls'
//! ring provider, with [`TlsSettings`] holding them resolved.
//!
//! Shared by `web::config` (which reads them from the YAML), `web::tls` (which builds
//! the rustls configuration) and `web::client_auth` (which builds the client
//! certificate policy); it imports none of them, so none of them imports another in
//! a circle. Each value is checked as it is parsed and a bad one is a [`ValueError`]
//! that serde_yaml places at its line and column.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rustls::crypto::SupportedKxGroup;
use rustls::SupportedCipherSuite;

use crate::config::deserialize_from_str;

/// A TLS setting's value that certwatch cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not one of Go's five policies.
    #[error("unknown client_auth_type {text:?}: use NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert")]
    ClientAuthType {
        /// As written.
        text: String,
    },
    /// TLS 1.0 or 1.1.
    #[error("{text} is not supported: certwatch's TLS library (rustls) implements TLS 1.2 and 1.3 only; use TLS12 (the default) or TLS13")]
    OldTlsVersion {
        /// As written.
        text: String,
    },
    /// Not a TLS version.
    #[error("unknown TLS version {text:?}: use TLS12 or TLS13")]
    TlsVersion {
        /// As written.
        text: String,
    },
    /// A suite Go knows and rustls does not implement.
    #[error("cipher suite {name} is not available: certwatch's TLS library (rustls) does not implement it ({why}); choose from {}", known_suites())]
    UnimplementedSuite {
        /// As written.
        name: String,
        /// Why rustls leaves it out.
        why: &'static str,
    },
    /// Not a suite name.
    #[error(
        "unknown cipher suite {name:?}: use Go's names, one of {}",
        known_suites()
    )]
    UnknownSuite {
        /// As written.
        name: String,
    },
    /// A curve Go knows and rustls (ring) does not implement.
    #[error("curve {name} is not available: certwatch's TLS library (rustls with ring) does not implement it; choose from X25519, CurveP256, CurveP384")]
    UnavailableCurve {
        /// As written.
        name: String,
    },
    /// Not a curve name.
    #[error("unknown curve {name:?}: use X25519, CurveP256 or CurveP384")]
    UnknownCurve {
        /// As written.
        name: String,
    },
}

/// `client_auth_type`: the five policies of Go's `crypto/tls`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// One is asked for; any certificate, or none, is accepted.
    RequestClientCert,
    /// One is required; any certificate is accepted (its chain is not verified).
    RequireAnyClientCert,
    /// One is asked for; when given, it must chain to `client_ca_file`.
    VerifyClientCertIfGiven,
    /// One is required and must chain to `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// The name as written in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientAuthType::NoClientCert => "NoClientCert",
            ClientAuthType::RequestClientCert => "RequestClientCert",
            ClientAuthType::RequireAnyClientCert => "RequireAnyClientCert",
            ClientAuthType::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuthType::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }

    /// Whether certificates are verified against `client_ca_file`.
    pub const fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }

    /// Whether a handshake without a client certificate fails.
    pub const fn requires(self) -> bool {
        matches!(
            self,
            ClientAuthType::RequireAnyClientCert | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

impl FromStr for ClientAuthType {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "" | "NoClientCert" => ClientAuthType::NoClientCert,
            "RequestClientCert" => ClientAuthType::RequestClientCert,
            // The toolkit keeps the old name for compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuthType::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuthType::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerifyClientCert,
            _ => return Err(ValueError::ClientAuthType { text: s.to_owned() }),
        })
    }
}

deserialize_from_str!(ClientAuthType, "a client_auth_type");

/// `min_version` / `max_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl FromStr for TlsVersion {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(ValueError::OldTlsVersion { text: s.to_owned() }),
            _ => Err(ValueError::TlsVersion { text: s.to_owned() }),
        }
    }
}

deserialize_from_str!(TlsVersion, "a TLS version");

/// One of `cipher_suites`, by its Go name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CipherSuite(pub SupportedCipherSuite);

impl FromStr for CipherSuite {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        cipher_suite(s).map(CipherSuite)
    }
}

deserialize_from_str!(CipherSuite, "a cipher suite name");

/// One of `curve_preferences`, by its Go name.
#[derive(Clone, Copy)]
pub struct Curve(pub &'static dyn SupportedKxGroup);

impl fmt::Debug for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Curve({:?})", self.0.name())
    }
}

impl FromStr for Curve {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        kx_group(s).map(Curve)
    }
}

deserialize_from_str!(Curve, "a curve name");

/// `tls_server_config`, resolved: paths are absolute or start at the web
/// configuration's directory.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The served chain.
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// The client CAs.
    pub client_ca_file: Option<PathBuf>,
    /// The client certificate policy.
    pub client_auth: ClientAuthType,
    /// The oldest version accepted.
    pub min_version: TlsVersion,
    /// The newest version accepted.
    pub max_version: TlsVersion,
    /// The cipher suites, in preference order; empty: rustls' defaults.
    pub cipher_suites: Vec<SupportedCipherSuite>,
    /// The key exchange groups, in preference order; empty: rustls' defaults.
    pub curves: Vec<&'static dyn SupportedKxGroup>,
    /// The server's suite order wins.
    pub prefer_server_cipher_suites: bool,
    /// SANs of which the client certificate must carry one.
    pub client_allowed_sans: Option<Vec<String>>,
}

impl TlsSettings {
    /// The files this configuration reads, to watch for changes.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert_file.clone(), self.key_file.clone()];
        files.extend(self.client_ca_file.clone());
        files
    }
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
pub fn cipher_suite(name: &str) -> Result<SupportedCipherSuite, ValueError> {
    let canonical = match name {
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        other => other,
    };
    if let Some((_, suite)) = SUITES.iter().find(|(n, _)| *n == canonical) {
        return Ok(**suite);
    }
    if UNIMPLEMENTED_SUITES.contains(&name) {
        let why = if name.starts_with("TLS_RSA_") {
            "it uses RSA key exchange, which has no forward secrecy"
        } else {
            "it uses RC4, 3DES or CBC mode; only AEAD suites are implemented"
        };
        Err(ValueError::UnimplementedSuite {
            name: name.to_owned(),
            why,
        })
    } else {
        Err(ValueError::UnknownSuite {
            name: name.to_owned(),
        })
    }
}

/// The suites' names, for messages.
fn known_suites() -> String {
    SUITES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key exchange group named `name` (Go's `CurveID` names), or why it cannot be used.
pub fn kx_group(name: &str) -> Result<&'static dyn SupportedKxGroup, ValueError> {
    match name {
        "X25519" => Ok(rustls::crypto::ring::kx_group::X25519),
        "CurveP256" => Ok(rustls::crypto::ring::kx_group::SECP256R1),
        "CurveP384" => Ok(rustls::crypto::ring::kx_group::SECP384R1),
        "CurveP521" | "X25519MLKEM768" => Err(ValueError::UnavailableCurve {
            name: name.to_owned(),
        }),
        _ => Err(ValueError::UnknownCurve {
            name: name.to_owned(),
        }),
    }
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
        let cbc = cipher_suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
            .unwrap_err()
            .to_string();
        assert!(
            cbc.contains("does not implement") && cbc.contains("CBC"),
            "{cbc}"
        );
        let rsa = cipher_suite("TLS_RSA_WITH_AES_128_GCM_SHA256")
            .unwrap_err()
            .to_string();
        assert!(rsa.contains("forward secrecy"), "{rsa}");
        assert!(matches!(
            cipher_suite("TLS_MADE_UP"),
            Err(ValueError::UnknownSuite { .. })
        ));
    }

    #[test]
    fn go_curve_names_map_onto_rustls_or_say_why_not() {
        assert!(kx_group("X25519").is_ok());
        assert!(kx_group("CurveP384").is_ok());
        assert!(kx_group("CurveP521")
            .unwrap_err()
            .to_string()
            .contains("does not implement"));
        assert!(matches!(
            kx_group("P-256"),
            Err(ValueError::UnknownCurve { .. })
        ));
    }

    #[test]
    fn old_and_unknown_tls_versions_are_told_apart() {
        assert_eq!("TLS13".parse::<TlsVersion>(), Ok(TlsVersion::Tls13));
        assert!(matches!(
            "TLS10".parse::<TlsVersion>(),
            Err(ValueError::OldTlsVersion { .. })
        ));
        assert!(matches!(
            "SSL3".parse::<TlsVersion>(),
            Err(ValueError::TlsVersion { .. })
        ));
    }
}
