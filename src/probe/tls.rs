//! The TLS client: one rustls configuration per distinct TLS setting, and the handshake.
//!
//! This module owns the runtime cache of TLS setups: a target's spec carries plain
//! [`TlsMaterial`] (anchors, client certificate and key, loaded and checked with the
//! configuration), and [`setup_for`] turns it into a rustls configuration and a trust
//! store on first use, shared by every probe of the same content. No file is read at
//! probe time.
//!
//! The handshake never aborts on the server's certificate: a capturing verifier records
//! the presented chain and accepts it, and `probe::verify` judges the chain afterwards.
//! The configuration is shared by every probe of a setting; what one handshake
//! captures goes to a slot of that handshake's own task (`HANDSHAKE`), so no
//! configuration is built per probe.
//! Session resumption is disabled, so every probe sees the full chain. Chain parsing is
//! left to `cert`, verification to `probe::verify`.
//!
//! Each setup holds one configuration per `key_type` (every scheme and suite, or only
//! an RSA or an EC key's) and per `sni` setting. The chain kept is bounded as the
//! legacy reader bounds it ([`legacy::bound_chain`]), and a cut is reported. A failed
//! handshake says whether the legacy second hello may still read the chain
//! ([`Handshake::calls_for_legacy`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, ClientConfig, DigitallySignedStruct, PeerIncompatible, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::legacy::{self, ChainLimit, KeyType};
use super::outcome::{Failure, FailureKind, HandshakeReason, Phase, TlsParams};
use super::with_deadline;
use crate::trust::{ClientIdentity, MaterialId, TlsMaterial, TrustStore};

/// The most certificates kept from one presented chain (and the bytes:
/// [`legacy::MAX_CHAIN_BYTES`]); a longer chain is cut and reported.
pub const MAX_CHAIN_LEN: usize = legacy::MAX_CERTIFICATES;

/// How long to wait, after a TLS 1.3 handshake in which the server asked for a client
/// certificate, for the server to reject it. In TLS 1.3 the client finishes its side
/// of the handshake before the server has judged the client certificate, so a server
/// that requires one reports it only with an alert after the handshake.
pub const CLIENT_AUTH_VERDICT_WAIT: Duration = Duration::from_millis(500);

pub use crate::trust::provider;

/// Everything TLS a target needs at probe time, built once per distinct
/// [`TlsMaterial`] (see [`setup_for`]) and shared.
#[derive(Debug)]
pub struct TlsSetup {
    /// One per key type and SNI setting ([`TlsSetup::config`]), shared by every probe
    /// of this setting.
    configs: [Arc<ClientConfig>; 6],
    /// The anchors chains are verified against.
    pub trust: Arc<TrustStore>,
}

/// The key types, in the order of [`TlsSetup::configs`].
const KEY_TYPES: [KeyType; 3] = [KeyType::Any, KeyType::Rsa, KeyType::Ecdsa];

impl TlsSetup {
    /// Builds the rustls configurations for `trust` and an optional client identity.
    pub fn new(trust: Arc<TrustStore>, identity: Option<ClientIdentity>) -> Self {
        let build = |index: usize| {
            let key_type = KEY_TYPES[index / 2];
            let sni = index.is_multiple_of(2);
            let mut config = ClientConfig::builder_with_provider(provider_for(key_type))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainCapture {
                    schemes: schemes_for(key_type),
                }))
                .with_client_cert_resolver(Arc::new(ClientAuth {
                    identity: identity.clone(),
                }));
            config.resumption = Resumption::disabled();
            config.enable_sni = sni;
            Arc::new(config)
        };
        Self {
            configs: std::array::from_fn(build),
            trust,
        }
    }

    /// Builds the setup `material` describes. Reads no file: the material holds the
    /// anchors and the client certificate as loaded with the configuration.
    pub fn from_material(material: &TlsMaterial) -> Self {
        Self::new(material.trust_store(), material.client_identity())
    }

    /// The configuration offering `key_type`'s schemes and suites, with or without SNI.
    pub fn config(&self, key_type: KeyType, sni: bool) -> &Arc<ClientConfig> {
        let index = match key_type {
            KeyType::Any => 0,
            KeyType::Rsa => 2,
            KeyType::Ecdsa => 4,
        } + usize::from(!sni);
        &self.configs[index]
    }
}

/// The crypto provider with only `key_type`'s TLS 1.2 suites (TLS 1.3 suites do not
/// depend on the key; the signature schemes offered do: [`schemes_for`]).
fn provider_for(key_type: KeyType) -> Arc<rustls::crypto::CryptoProvider> {
    let base = provider();
    let wanted = match key_type {
        KeyType::Any => return base,
        KeyType::Rsa => SignatureScheme::RSA_PKCS1_SHA256,
        KeyType::Ecdsa => SignatureScheme::ECDSA_NISTP256_SHA256,
    };
    let mut filtered = (*base).clone();
    filtered.cipher_suites.retain(|suite| match suite {
        rustls::SupportedCipherSuite::Tls12(s) => s.sign.contains(&wanted),
        rustls::SupportedCipherSuite::Tls13(_) => true,
    });
    Arc::new(filtered)
}

/// The signature schemes offered for `key_type`.
fn schemes_for(key_type: KeyType) -> Vec<SignatureScheme> {
    use SignatureScheme as S;
    ALL_SIGNATURE_SCHEMES
        .iter()
        .copied()
        .filter(|scheme| match key_type {
            KeyType::Any => true,
            KeyType::Rsa => matches!(
                scheme,
                S::RSA_PSS_SHA256
                    | S::RSA_PSS_SHA384
                    | S::RSA_PSS_SHA512
                    | S::RSA_PKCS1_SHA256
                    | S::RSA_PKCS1_SHA384
                    | S::RSA_PKCS1_SHA512
                    | S::RSA_PKCS1_SHA1
            ),
            KeyType::Ecdsa => matches!(
                scheme,
                S::ECDSA_NISTP256_SHA256
                    | S::ECDSA_NISTP384_SHA384
                    | S::ECDSA_NISTP521_SHA512
                    | S::ECDSA_SHA1_Legacy
                    | S::ED25519
                    | S::ED448
            ),
        })
        .collect()
}

/// The setups in use, by the content of their material. An entry lives as long as a
/// material with its content does (held by the configuration's target specs), so a
/// setup is built once per distinct TLS setting and again only after a reload that
/// changed its files' content.
static SETUPS: Mutex<Option<Setups>> = Mutex::new(None);

#[derive(Debug)]
struct Setups {
    slots: HashMap<MaterialId, Slot>,
    /// Dead entries are pruned when the map reaches this size.
    prune_at: usize,
}

#[derive(Debug)]
struct Slot {
    /// A material with this content, while one lives.
    owner: Weak<TlsMaterial>,
    setup: Arc<TlsSetup>,
}

/// Entries kept before the first pruning of those whose material is gone.
const FIRST_PRUNE: usize = 16;

/// The setup for `material`: the one in use for its content, or a new one built now
/// (building reads no file and takes well under a millisecond with the bundled roots).
pub fn setup_for(material: &Arc<TlsMaterial>) -> Arc<TlsSetup> {
    let id = material.id();
    if let Some(setup) = lookup(id, material) {
        return setup;
    }
    let built = Arc::new(TlsSetup::from_material(material));
    let mut guard = SETUPS.lock().unwrap_or_else(PoisonError::into_inner);
    let setups = guard.get_or_insert_with(|| Setups {
        slots: HashMap::new(),
        prune_at: FIRST_PRUNE,
    });
    if let Some(slot) = setups.slots.get_mut(&id) {
        // Built meanwhile by another probe of the same content: share that one.
        if slot.owner.strong_count() == 0 {
            slot.owner = Arc::downgrade(material);
        }
        return slot.setup.clone();
    }
    if setups.slots.len() >= setups.prune_at {
        setups.slots.retain(|_, slot| slot.owner.strong_count() > 0);
        setups.prune_at = (setups.slots.len() * 2).max(FIRST_PRUNE);
    }
    setups.slots.insert(
        id,
        Slot {
            owner: Arc::downgrade(material),
            setup: built.clone(),
        },
    );
    built
}

fn lookup(id: MaterialId, material: &Arc<TlsMaterial>) -> Option<Arc<TlsSetup>> {
    let mut guard = SETUPS.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = guard.as_mut()?.slots.get_mut(&id)?;
    if slot.owner.strong_count() == 0 {
        // The configuration that loaded this content was replaced by one with the
        // same content: keep the setup, owned by the new material.
        slot.owner = Arc::downgrade(material);
    }
    Some(slot.setup.clone())
}

/// What one handshake observed, beside its result.
#[derive(Debug, Default)]
struct Observed {
    /// The presented chain, as the server sent it, up to the bound.
    chain: Vec<CertificateDer<'static>>,
    /// The bound that cut the chain.
    cut: Option<ChainLimit>,
    /// Whether the server asked for a client certificate.
    client_auth_requested: bool,
    /// The OCSP response stapled to the leaf, when the server sent one.
    ocsp_response: Option<Vec<u8>>,
}

tokio::task_local! {
    /// The observations of the handshake running in this task. rustls calls the
    /// verifier and the client-certificate resolver from inside the handshake's poll,
    /// so they reach the slot of the probe that is running them.
    static HANDSHAKE: RefCell<Observed>;
}

/// Records the presented chain and accepts it; the verdict comes later.
#[derive(Debug)]
struct ChainCapture {
    /// The signature schemes offered.
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for ChainCapture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Outside a probe's handshake there is nothing to record.
        let _ = HANDSHAKE.try_with(|observed| {
            let all: Vec<&CertificateDer<'_>> =
                std::iter::once(end_entity).chain(intermediates).collect();
            let (kept, cut) = legacy::bound_chain(&all);
            let mut observed = observed.borrow_mut();
            observed.chain = all[..kept]
                .iter()
                .map(|c| (*c).clone().into_owned())
                .collect();
            observed.cut = cut;
            // rustls bounds the handshake message that carries it; revocation judges
            // its size and content.
            observed.ocsp_response = (!ocsp_response.is_empty()).then(|| ocsp_response.to_vec());
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

    /// Every scheme rustls knows (of the key type asked for), so that the server can
    /// sign with whatever its key and the negotiated version allow.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
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
        self.identity.as_ref().map(|id| id.certified_key().clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What a handshake produced: the chain whenever the server sent one, and the result.
#[derive(Debug)]
pub struct Handshake {
    /// The presented certificates, leaf first, up to the bound; empty when none arrived.
    pub chain: Vec<CertificateDer<'static>>,
    /// The bound that cut the chain.
    pub cut: Option<ChainLimit>,
    /// The negotiated parameters, or why the handshake failed.
    pub result: Result<TlsParams, Failure>,
    /// Whether the handshake failed in a way that the legacy second hello may get
    /// past: no version or nothing in common ([`legacy::calls_for_legacy_hello`]), or
    /// a close or reset before any certificate arrived (an old server that drops a
    /// hello it does not understand).
    pub calls_for_legacy: bool,
    /// The OCSP response the server stapled, when it sent one.
    pub ocsp_response: Option<Vec<u8>>,
}

/// Runs a TLS handshake over `io` with SNI `name` (sent unless `sni` is false),
/// offering `key_type`'s schemes and suites, bounded by `deadline`.
pub async fn handshake<IO>(
    io: IO,
    setup: &TlsSetup,
    name: &ServerName<'static>,
    key_type: KeyType,
    sni: bool,
    deadline: Instant,
) -> Handshake
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    HANDSHAKE
        .scope(RefCell::default(), async {
            super::transcript::note(super::transcript::Topic::Tls, || match name {
                _ if !sni => "handshake without SNI (sni: false)".to_owned(),
                ServerName::DnsName(dns) => format!("handshake with SNI {}", dns.as_ref()),
                _ => "handshake without SNI (the server name is an IP address)".to_owned(),
            });
            let connector = TlsConnector::from(setup.config(key_type, sni).clone());
            let connected = with_deadline(
                Phase::Handshake,
                deadline,
                connector.connect(name.clone(), io),
            )
            .await;
            let client_auth_requested = HANDSHAKE.with(|o| o.borrow().client_auth_requested);
            let alpn = match &connected {
                Ok(Ok(stream)) => stream.get_ref().1.alpn_protocol(),
                _ => None,
            };
            super::transcript::handshake_observed(alpn, client_auth_requested);
            let mut calls_for_legacy = false;
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
                Ok(Err(e)) => {
                    calls_for_legacy = legacy_may_help(&e);
                    Err(classify(&e))
                }
                Err(timeout) => Err(timeout),
            };
            let (chain, cut, ocsp_response) = HANDSHAKE.with(|o| {
                let mut o = o.borrow_mut();
                (
                    std::mem::take(&mut o.chain),
                    o.cut.take(),
                    o.ocsp_response.take(),
                )
            });
            // Say what happened to the certificate, never a bare "no certificate".
            let result = match result {
                Err(mut failure) if chain.is_empty() => {
                    let what = match failure.kind {
                        FailureKind::Handshake(
                            HandshakeReason::Reset
                            | HandshakeReason::ProtocolVersion
                            | HandshakeReason::HandshakeFailure
                            | HandshakeReason::TlsAlert,
                        ) => Some("the server ended the handshake before its certificate arrived"),
                        FailureKind::Handshake(HandshakeReason::ProtocolError) => {
                            Some("no certificate arrived")
                        }
                        _ => None,
                    };
                    if let Some(what) = what {
                        failure.detail = format!("{what}: {}", failure.detail);
                    }
                    Err(failure)
                }
                other => other,
            };
            Handshake {
                calls_for_legacy: calls_for_legacy && chain.is_empty(),
                chain,
                cut,
                result,
                ocsp_response,
            }
        })
        .await
}

/// Whether a handshake that failed with `error` may still have a chain for the legacy
/// hello to read.
fn legacy_may_help(error: &io::Error) -> bool {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => legacy::calls_for_legacy_hello(tls),
        None => matches!(
            error.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
    }
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
        let offered = ChainCapture {
            schemes: schemes_for(KeyType::Any),
        }
        .supported_verify_schemes();
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

    #[test]
    fn one_setup_per_material_content_kept_across_a_reload_with_the_same_content() {
        use crate::trust::BaseAnchors;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["ca.example".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap().der().clone();
        let material =
            || Arc::new(TlsMaterial::new(BaseAnchors::None, vec![ca.clone()], None).unwrap());
        let first = material();
        let a = setup_for(&first);
        assert!(Arc::ptr_eq(&a, &setup_for(&first)), "built once");
        assert_eq!(a.trust.len(), 1);
        // A reload loads the same content into a new material: the setup is kept.
        let reloaded = material();
        drop(first);
        assert!(Arc::ptr_eq(&a, &setup_for(&reloaded)));
        // Other content, another setup.
        let webpki = Arc::new(TlsMaterial::webpki());
        let b = setup_for(&webpki);
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(
            Arc::ptr_eq(&b.trust, &TrustStore::webpki()),
            "the bundled roots are shared"
        );
    }
}
