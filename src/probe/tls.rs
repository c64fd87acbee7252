//! The TLS client: one rustls configuration per distinct TLS setting, and the handshake.
//!
//! The handshake never aborts on the server's certificate: a capturing verifier records
//! the presented chain and accepts it, and `probe::verify` judges the chain afterwards.
//! The configuration is shared by every probe of a setting; what one handshake
//! captures goes to a slot of that handshake's own task (`HANDSHAKE`), so no
//! configuration is built per probe.
//! Session resumption is disabled, so every probe sees the full chain. Chain parsing is
//! left to `cert`, verification to `probe::verify`.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, PeerIncompatible, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::outcome::{Failure, FailureKind, HandshakeReason, Phase, TlsParams};
use super::verify::TrustStore;
use super::with_deadline;

/// The most certificates kept from one presented chain.
pub const MAX_CHAIN_LEN: usize = 16;

/// How long to wait, after a TLS 1.3 handshake in which the server asked for a client
/// certificate, for the server to reject it. In TLS 1.3 the client finishes its side
/// of the handshake before the server has judged the client certificate, so a server
/// that requires one reports it only with an alert after the handshake.
pub const CLIENT_AUTH_VERDICT_WAIT: Duration = Duration::from_millis(500);

/// The crypto provider every probe uses.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A client certificate and key to present when a server asks for one.
#[derive(Debug, Clone)]
pub struct ClientIdentity(Arc<CertifiedKey>);

impl ClientIdentity {
    /// Pairs a chain with its key, checking that they match.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, String> {
        CertifiedKey::from_der(chain, key, &provider())
            .map(|k| Self(Arc::new(k)))
            .map_err(|e| format!("the client certificate and key do not form a usable pair: {e}"))
    }
}

/// Everything TLS a target needs, built once per distinct setting and shared.
#[derive(Debug)]
pub struct TlsSetup {
    /// Shared by every probe of this setting.
    config: Arc<ClientConfig>,
    /// The anchors chains are verified against.
    pub trust: Arc<TrustStore>,
}

impl TlsSetup {
    /// Builds the rustls configuration for `trust` and an optional client identity.
    pub fn new(trust: Arc<TrustStore>, identity: Option<ClientIdentity>) -> Self {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainCapture))
            .with_client_cert_resolver(Arc::new(ClientAuth {
                identity: identity.clone(),
            }));
        config.resumption = Resumption::disabled();
        config.enable_sni = true;
        Self {
            config: Arc::new(config),
            trust,
        }
    }
}

/// What one handshake observed, beside its result.
#[derive(Debug, Default)]
struct Observed {
    /// The presented chain, as the server sent it.
    chain: Vec<CertificateDer<'static>>,
    /// Whether the server asked for a client certificate.
    client_auth_requested: bool,
}

tokio::task_local! {
    /// The observations of the handshake running in this task. rustls calls the
    /// verifier and the client-certificate resolver from inside the handshake's poll,
    /// so they reach the slot of the probe that is running them.
    static HANDSHAKE: RefCell<Observed>;
}

/// Records the presented chain and accepts it; the verdict comes later.
#[derive(Debug)]
struct ChainCapture;

impl ServerCertVerifier for ChainCapture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Outside a probe's handshake there is nothing to record.
        let _ = HANDSHAKE.try_with(|observed| {
            observed.borrow_mut().chain = std::iter::once(end_entity)
                .chain(intermediates)
                .take(MAX_CHAIN_LEN)
                .map(|c| c.clone().into_owned())
                .collect();
        });
        Ok(ServerCertVerified::assertion())
    }

    /// Accepted unverified: the probe observes, it does not authenticate, so a key or
    /// signature algorithm that ring refuses (RSA under 2048 bits, SHA-1, Ed448...)
    /// must not end the handshake. Whether the chain is trustworthy is
    /// `probe::verify`'s verdict.
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    /// Accepted unverified, as in TLS 1.2.
    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    /// Every scheme rustls knows, so that the server can sign with whatever its key
    /// and the negotiated version allow.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ALL_SIGNATURE_SCHEMES.to_vec()
    }
}

/// Every signature scheme rustls names, strongest first.
const ALL_SIGNATURE_SCHEMES: [SignatureScheme; 16] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::ED25519,
    SignatureScheme::ED448,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::ML_DSA_44,
    SignatureScheme::ML_DSA_65,
    SignatureScheme::ML_DSA_87,
    SignatureScheme::RSA_PKCS1_SHA1,
    SignatureScheme::ECDSA_SHA1_Legacy,
];

/// Presents the configured client certificate, if any, and notes that one was asked for.
#[derive(Debug)]
struct ClientAuth {
    identity: Option<ClientIdentity>,
}

impl ResolvesClientCert for ClientAuth {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let _ = HANDSHAKE.try_with(|observed| observed.borrow_mut().client_auth_requested = true);
        self.identity.as_ref().map(|id| id.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What a handshake produced: the chain whenever the server sent one, and the result.
#[derive(Debug)]
pub struct Handshake {
    /// The presented certificates, leaf first; empty when none arrived.
    pub chain: Vec<CertificateDer<'static>>,
    /// The negotiated parameters, or why the handshake failed.
    pub result: Result<TlsParams, Failure>,
}

/// Runs a TLS handshake over `io` with SNI `name`, bounded by `deadline`.
pub async fn handshake<IO>(
    io: IO,
    setup: &TlsSetup,
    name: &ServerName<'static>,
    deadline: Instant,
) -> Handshake
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    HANDSHAKE
        .scope(RefCell::default(), async {
            let connector = TlsConnector::from(setup.config.clone());
            let connected = with_deadline(
                Phase::Handshake,
                deadline,
                connector.connect(name.clone(), io),
            )
            .await;
            let client_auth_requested = HANDSHAKE.with(|o| o.borrow().client_auth_requested);
            let result = match connected {
                Ok(Ok(mut stream)) => {
                    let (_, conn) = stream.get_ref();
                    let params = negotiated(conn);
                    let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
                    if tls13 && client_auth_requested {
                        await_client_auth_verdict(&mut stream, deadline)
                            .await
                            .and(params)
                    } else {
                        params
                    }
                }
                Ok(Err(e)) => Err(classify(&e)),
                Err(timeout) => Err(timeout),
            };
            let chain = HANDSHAKE.with(|o| std::mem::take(&mut o.borrow_mut().chain));
            Handshake { chain, result }
        })
        .await
}

/// Reads briefly after the handshake to see whether the server rejects the client's
/// certificate (or its absence) with an alert.
async fn await_client_auth_verdict<S>(stream: &mut S, deadline: Instant) -> Result<(), Failure>
where
    S: AsyncRead + Unpin,
{
    let wait_until = deadline.min(Instant::now() + CLIENT_AUTH_VERDICT_WAIT);
    let mut byte = [0u8; 1];
    match tokio::time::timeout_at(wait_until, stream.read(&mut byte)).await {
        // Silence, application data or a clean close: the server accepted us.
        Err(_) | Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

fn negotiated(conn: &rustls::ClientConnection) -> Result<TlsParams, Failure> {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        other => {
            return Err(Failure::new(
                FailureKind::Handshake(HandshakeReason::ProtocolVersion),
                format!("unexpected protocol version {other:?}"),
            ))
        }
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| iana_cipher_name(s.suite()))
        .unwrap_or("unknown");
    Ok(TlsParams { version, cipher })
}

/// The IANA name of a suite; rustls names TLS 1.3 suites `TLS13_*`, IANA `TLS_*`.
fn iana_cipher_name(suite: rustls::CipherSuite) -> &'static str {
    let name = suite.as_str().unwrap_or("unknown");
    name.strip_prefix("TLS13_").map_or(name, |rest| {
        // Static names only: the TLS 1.3 suites rustls implements.
        match rest {
            "AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
            "AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
            "CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
            "AES_128_CCM_SHA256" => "TLS_AES_128_CCM_SHA256",
            "AES_128_CCM_8_SHA256" => "TLS_AES_128_CCM_8_SHA256",
            _ => name,
        }
    })
}

/// The failure class of a handshake I/O error.
pub fn classify(error: &io::Error) -> Failure {
    let kind = match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => classify_tls(tls),
        None => match error.kind() {
            io::ErrorKind::TimedOut => HandshakeReason::Timeout,
            _ => HandshakeReason::Reset,
        },
    };
    let detail = match error.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".to_owned()
        }
        _ => error.to_string(),
    };
    Failure::new(FailureKind::Handshake(kind), detail)
}

fn classify_tls(error: &rustls::Error) -> HandshakeReason {
    use rustls::Error as E;
    match error {
        E::AlertReceived(AlertDescription::ProtocolVersion) => HandshakeReason::ProtocolVersion,
        E::AlertReceived(
            AlertDescription::HandshakeFailure | AlertDescription::CertificateRequired,
        ) => HandshakeReason::HandshakeFailure,
        E::AlertReceived(_) => HandshakeReason::TlsAlert,
        E::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled,
        ) => HandshakeReason::ProtocolVersion,
        E::PeerIncompatible(_) => HandshakeReason::HandshakeFailure,
        _ => HandshakeReason::ProtocolError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signature_scheme_rustls_knows_is_offered() {
        let known: Vec<SignatureScheme> = (0..=u16::MAX)
            .map(SignatureScheme::from)
            .filter(|s| !matches!(s, SignatureScheme::Unknown(_)))
            .collect();
        let offered = ChainCapture.supported_verify_schemes();
        for scheme in &known {
            assert!(offered.contains(scheme), "{scheme:?} is not offered");
        }
        assert_eq!(offered.len(), known.len(), "no duplicates, nothing unknown");
    }

    #[test]
    fn tls13_suites_get_their_iana_names() {
        assert_eq!(
            iana_cipher_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            iana_cipher_name(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        );
    }
}
