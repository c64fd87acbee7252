//! Client certificate policies: the five `client_auth_type` values of Go's
//! `crypto/tls`, as rustls `ClientCertVerifier`s, and `client_allowed_sans`.
//!
//! | `client_auth_type`           | asked | required | chain verified against `client_ca_file` |
//! |------------------------------|-------|----------|------------------------------------------|
//! | `NoClientCert`               | no    | no       | –                                        |
//! | `RequestClientCert`          | yes   | no       | no ([`AnyClientCert`])                   |
//! | `RequireAnyClientCert`       | yes   | yes      | no ([`AnyClientCert`])                   |
//! | `VerifyClientCertIfGiven`    | yes   | no       | yes (webpki, unauthenticated allowed)    |
//! | `RequireAndVerifyClientCert` | yes   | yes      | yes (webpki)                             |
//!
//! rustls has no built-in "accept any certificate" policy, so [`AnyClientCert`]
//! provides it, as Go does: the chain is not judged, but the client must still prove it
//! holds the certificate's key (the handshake signature is verified). That proves
//! nothing about who the client is: use these two policies only with
//! `client_allowed_sans` or behind another check. [`AllowedSans`] wraps any policy and
//! then requires the leaf to carry one of the listed SANs (DNS, e-mail, IP or URI,
//! compared exactly, as the toolkit does).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::settings::{ClientAuthType, TlsSettings};

/// Why a client certificate policy cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy verifies certificates and no CA is configured.
    #[error("{} verifies client certificates: set client_ca_file", policy.as_str())]
    NoClientCa {
        /// The policy.
        policy: ClientAuthType,
    },
    /// rustls refused the CAs.
    #[error(
        "the client CAs cannot be used: {source}; name CA certificates (PEM) in client_ca_file"
    )]
    UnusableCas {
        /// rustls' reason.
        source: rustls::server::VerifierBuilderError,
    },
}

/// The verifier for `settings`' policy; `roots` are the client CAs, when configured.
pub fn verifier(
    settings: &TlsSettings,
    roots: Option<Arc<RootCertStore>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, PolicyError> {
    let hints = roots.as_ref().map(|r| r.subjects()).unwrap_or_default();
    let webpki = |roots: Option<Arc<RootCertStore>>, optional: bool| {
        let roots = roots.ok_or(PolicyError::NoClientCa {
            policy: settings.client_auth,
        })?;
        let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map_err(|source| PolicyError::UnusableCas { source })
    };
    let policy: Arc<dyn ClientCertVerifier> = match settings.client_auth {
        ClientAuthType::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuthType::RequestClientCert => Arc::new(AnyClientCert::new(false, hints, provider)),
        ClientAuthType::RequireAnyClientCert => Arc::new(AnyClientCert::new(true, hints, provider)),
        ClientAuthType::VerifyClientCertIfGiven => webpki(roots, true)?,
        ClientAuthType::RequireAndVerifyClientCert => webpki(roots, false)?,
    };
    Ok(match &settings.client_allowed_sans {
        None => policy,
        Some(sans) => Arc::new(AllowedSans {
            inner: policy,
            sans: sans.clone(),
        }),
    })
}

/// Asks for a client certificate and accepts any (or, unless `mandatory`, none),
/// checking only that the client holds its key.
#[derive(Debug)]
pub struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCert {
    /// `hints` are the CA names sent in the certificate request (from
    /// `client_ca_file`, when set).
    pub fn new(mandatory: bool, hints: Vec<DistinguishedName>, provider: &CryptoProvider) -> Self {
        Self {
            mandatory,
            hints,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Runs `inner`, then requires the client's leaf to carry one of `sans`.
#[derive(Debug)]
pub struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    sans: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let presented = subject_alt_names(end_entity);
        if presented.iter().any(|san| self.sans.contains(san)) {
            Ok(verified)
        } else {
            Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The DNS, e-mail, IP and URI SANs of `der`, as text; none if it does not parse.
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(sans)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    sans.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => {
                Some((*n).to_owned())
            }
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
