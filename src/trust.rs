//! Trust anchors and TLS client material: what both `config` (which loads and
//! validates it) and `probe` (which uses it) need, owned by neither.
//!
//! - [`provider`]: the one crypto provider of certwatch's TLS client and verifier.
//! - [`TrustStore`]: anchors with the notAfter of each, built from the bundled
//!   Mozilla roots ([`TrustStore::webpki`]), from the operating system's store
//!   ([`SystemRoots`], read once per configuration load, never at probe time), and
//!   from `tls.ca_file`.
//! - [`TlsMaterial`]: the plain data of one TLS setting of a target: the base
//!   anchors, the extra anchors and the client certificate and key as DER, validated
//!   when built (an unusable anchor or a key that does not match its certificate is
//!   refused), with a [`MaterialId`] naming its content. `probe::tls` turns material
//!   into a rustls configuration and a trust store, and caches them by that id.
//!
//! Nothing here reads a file but [`SystemRoots::load`], and nothing here touches the
//! network.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, TrustAnchor};

use crate::cert::ParsedCert;

/// The crypto provider every probe and every verification uses.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A certificate that cannot serve as a trust anchor.
#[derive(Debug, Clone, thiserror::Error)]
#[error("certificate #{number} is not usable as a trust anchor: {source}; name CA certificates (PEM) only")]
pub struct AnchorError {
    /// Its position in the file, from 1.
    pub number: usize,
    /// webpki's reason.
    pub source: webpki::Error,
}

/// Trust anchors, with the validity end of each anchor whose certificate is known.
#[derive(Debug, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    /// notAfter of each anchor, by the anchor's subject.
    not_after: HashMap<Vec<u8>, i64>,
}

impl TrustStore {
    /// The Mozilla root program, as bundled at build time; built once per process.
    pub fn webpki() -> Arc<TrustStore> {
        static STORE: OnceLock<Arc<TrustStore>> = OnceLock::new();
        STORE
            .get_or_init(|| {
                let mut store = TrustStore::default();
                // The bundled roots are known good; a root that fails to load is skipped.
                let _ = store.add_all(webpki_root_certs::TLS_SERVER_ROOT_CERTS);
                Arc::new(store)
            })
            .clone()
    }

    /// A store of exactly `certs`.
    pub fn from_certificates(certs: &[CertificateDer<'_>]) -> Result<TrustStore, AnchorError> {
        let mut store = TrustStore::default();
        store.add_all(certs)?;
        Ok(store)
    }

    /// A copy of `self` with `extra` anchors added.
    pub fn with_extra(&self, extra: &[CertificateDer<'_>]) -> Result<TrustStore, AnchorError> {
        let mut store = TrustStore {
            anchors: self.anchors.clone(),
            not_after: self.not_after.clone(),
        };
        store.add_all(extra)?;
        Ok(store)
    }

    /// The anchors.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The notAfter (Unix seconds) of the anchor with `subject`, when known.
    pub fn anchor_not_after(&self, subject: &[u8]) -> Option<i64> {
        self.not_after.get(subject).copied()
    }

    /// How many anchors the store holds.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the store holds no anchor.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    fn add_all(&mut self, certs: &[CertificateDer<'_>]) -> Result<(), AnchorError> {
        for (i, der) in certs.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|source| AnchorError {
                    number: i + 1,
                    source,
                })?
                .to_owned();
            if let Some(not_after) = ParsedCert::from_der(der).not_after() {
                self.not_after.insert(anchor.subject.to_vec(), not_after);
            }
            self.anchors.push(anchor);
        }
        Ok(())
    }
}

/// Checks that every certificate of `certs` can serve as a trust anchor.
pub fn check_anchors(certs: &[CertificateDer<'_>]) -> Result<(), AnchorError> {
    for (i, der) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(der).map_err(|source| AnchorError {
            number: i + 1,
            source,
        })?;
    }
    Ok(())
}

/// Why `trust: system` cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SystemTrustError {
    /// The operating system's store yielded no certificate.
    #[error("trust: system found no certificates in the operating system's store ({first_error}); install ca-certificates or use trust: webpki")]
    Empty {
        /// The first error the loader reported, if any.
        first_error: String,
    },
    /// A certificate of the store is not usable as an anchor.
    #[error("trust: system: the operating system's store holds an unusable {source}")]
    Unusable {
        /// Which and why.
        #[from]
        source: AnchorError,
    },
}

/// The operating system's trust store, as read at one configuration load.
#[derive(Clone)]
pub struct SystemRoots {
    certs: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for SystemRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemRoots({} certificates)", self.certs.len())
    }
}

impl SystemRoots {
    /// Reads the operating system's store (files under /etc/ssl and the like, or
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`) and checks every certificate. Blocking: call it
    /// while loading a configuration, never from a probe.
    pub fn load() -> Result<SystemRoots, SystemTrustError> {
        let loaded = rustls_native_certs::load_native_certs();
        if loaded.certs.is_empty() {
            return Err(SystemTrustError::Empty {
                first_error: loaded
                    .errors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            });
        }
        check_anchors(&loaded.certs)?;
        Ok(SystemRoots {
            certs: loaded.certs.into(),
        })
    }

    /// The certificates.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

/// The anchors a chain is verified against before `ca_file` adds its own.
#[derive(Debug, Clone)]
pub enum BaseAnchors {
    /// The bundled Mozilla roots.
    Webpki,
    /// The operating system's store, as read at load.
    System(SystemRoots),
    /// None: only the extra anchors.
    None,
}

/// A client certificate and key whose pairing has been checked.
#[derive(Debug, Clone)]
pub struct ClientIdentity(Arc<CertifiedKey>);

/// Why a client certificate and key cannot be presented.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the client certificate and key do not form a usable pair: {source}; the key must be the one of the first certificate of client_cert_file")]
pub struct IdentityError {
    /// rustls' reason.
    pub source: rustls::Error,
}

impl ClientIdentity {
    /// Pairs a chain with its key, checking that they match.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        CertifiedKey::from_der(chain, key, &provider())
            .map(|k| Self(Arc::new(k)))
            .map_err(|source| IdentityError { source })
    }

    /// The rustls form, to present in a handshake.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.0
    }
}

/// A private key whose `Debug` never shows it.
pub struct SecretKey(PrivateKeyDer<'static>);

impl SecretKey {
    /// A copy of the key, for rustls.
    pub fn clone_key(&self) -> PrivateKeyDer<'static> {
        self.0.clone_key()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// A client certificate chain and its key, as DER.
#[derive(Debug)]
pub struct ClientMaterial {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The key of the leaf.
    pub key: SecretKey,
}

/// What names a [`TlsMaterial`]'s content: SHA-256 over the base anchors, the extra
/// anchors and the client chain and key. Equal ids, equal TLS behaviour.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaterialId([u8; 32]);

impl fmt::Display for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaterialId({self})")
    }
}

/// Why TLS material was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MaterialError {
    /// An extra anchor is unusable.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// The client certificate and key do not pair.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// Everything TLS one target needs, as plain data: validated when built, turned into a
/// rustls configuration and a trust store by `probe::tls`. Its `Debug` names the
/// content (id, base, counts), never the key.
pub struct TlsMaterial {
    base: BaseAnchors,
    extra_anchors: Vec<CertificateDer<'static>>,
    client: Option<ClientMaterial>,
    id: MaterialId,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match &self.base {
            BaseAnchors::Webpki => "webpki".to_owned(),
            BaseAnchors::System(roots) => format!("system ({} certificates)", roots.certs.len()),
            BaseAnchors::None => "none".to_owned(),
        };
        f.debug_struct("TlsMaterial")
            .field("id", &self.id)
            .field("base", &base)
            .field("extra_anchors", &self.extra_anchors.len())
            .field(
                "client",
                &self
                    .client
                    .as_ref()
                    .map(|c| format!("chain of {} certificate(s), key [redacted]", c.chain.len())),
            )
            .finish()
    }
}

impl TlsMaterial {
    /// Checks `extra_anchors` and the client pair, and names the content.
    pub fn new(
        base: BaseAnchors,
        extra_anchors: Vec<CertificateDer<'static>>,
        client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Result<TlsMaterial, MaterialError> {
        check_anchors(&extra_anchors)?;
        if let Some((chain, key)) = &client {
            ClientIdentity::new(chain.clone(), key.clone_key())?;
        }
        let client = client.map(|(chain, key)| ClientMaterial {
            chain,
            key: SecretKey(key),
        });
        let id = content_id(&base, &extra_anchors, client.as_ref());
        Ok(TlsMaterial {
            base,
            extra_anchors,
            client,
            id,
        })
    }

    /// Verification against the bundled Mozilla roots, no extra anchor, no client
    /// certificate: the built-in setting.
    pub fn webpki() -> TlsMaterial {
        TlsMaterial::new(BaseAnchors::Webpki, Vec::new(), None)
            .expect("no anchors and no client pair to check")
    }

    /// What names the content.
    pub fn id(&self) -> MaterialId {
        self.id
    }

    /// The base anchors.
    pub fn base(&self) -> &BaseAnchors {
        &self.base
    }

    /// The anchors added to the base (`ca_file`).
    pub fn extra_anchors(&self) -> &[CertificateDer<'static>] {
        &self.extra_anchors
    }

    /// The client certificate and key, when one is presented.
    pub fn client(&self) -> Option<&ClientMaterial> {
        self.client.as_ref()
    }

    /// The trust store this material describes. Anchors were checked when the material
    /// was built; one that fails now (it cannot) is left out. Without extra anchors the
    /// bundled roots are shared, not copied.
    pub fn trust_store(&self) -> Arc<TrustStore> {
        let base = match &self.base {
            BaseAnchors::Webpki => TrustStore::webpki(),
            BaseAnchors::System(roots) => {
                Arc::new(lenient_store(&TrustStore::default(), roots.certificates()))
            }
            BaseAnchors::None => Arc::new(TrustStore::default()),
        };
        if self.extra_anchors.is_empty() {
            base
        } else {
            Arc::new(lenient_store(&base, &self.extra_anchors))
        }
    }

    /// The client identity this material describes, when it has one. The pair was
    /// checked when the material was built, so `None` here means no client certificate.
    pub fn client_identity(&self) -> Option<ClientIdentity> {
        let client = self.client.as_ref()?;
        ClientIdentity::new(client.chain.clone(), client.key.clone_key()).ok()
    }
}

fn lenient_store(base: &TrustStore, extra: &[CertificateDer<'_>]) -> TrustStore {
    let mut store = TrustStore {
        anchors: base.anchors.clone(),
        not_after: base.not_after.clone(),
    };
    for der in extra {
        let _ = store.add_all(std::slice::from_ref(der));
    }
    store
}

fn content_id(
    base: &BaseAnchors,
    extra: &[CertificateDer<'_>],
    client: Option<&ClientMaterial>,
) -> MaterialId {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut item = |tag: &[u8], bytes: &[u8]| {
        hash.update(tag);
        hash.update(&(bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    match base {
        BaseAnchors::Webpki => item(b"base", b"webpki"),
        BaseAnchors::None => item(b"base", b"none"),
        BaseAnchors::System(roots) => {
            item(b"base", b"system");
            for cert in roots.certificates() {
                item(b"system", cert);
            }
        }
    }
    for cert in extra {
        item(b"anchor", cert);
    }
    if let Some(client) = client {
        for cert in &client.chain {
            item(b"chain", cert);
        }
        item(b"key", client.key.0.secret_der());
    }
    let digest = hash.finish();
    let mut id = [0u8; 32];
    id.copy_from_slice(digest.as_ref());
    MaterialId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str, ca: bool) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
    }

    #[test]
    fn equal_content_has_equal_ids_and_any_change_changes_it() {
        let (ca, _) = self_signed("ca.example", true);
        let (other_ca, _) = self_signed("other.example", true);
        let (leaf, key) = self_signed("client.example", false);
        let with = |base: BaseAnchors, extra: &[CertificateDer<'static>], client: bool| {
            TlsMaterial::new(
                base,
                extra.to_vec(),
                client.then(|| (vec![leaf.clone()], key.clone_key())),
            )
            .unwrap()
            .id()
        };
        let a = with(BaseAnchors::Webpki, std::slice::from_ref(&ca), false);
        assert_eq!(
            a,
            with(BaseAnchors::Webpki, std::slice::from_ref(&ca), false)
        );
        assert_ne!(a, with(BaseAnchors::None, std::slice::from_ref(&ca), false));
        assert_ne!(a, with(BaseAnchors::Webpki, &[other_ca], false));
        assert_ne!(
            a,
            with(BaseAnchors::Webpki, std::slice::from_ref(&ca), true)
        );
        assert_ne!(a, with(BaseAnchors::Webpki, &[], false));
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_refused() {
        let (leaf, _) = self_signed("client.example", false);
        let (_, other_key) = self_signed("other.example", false);
        let e = TlsMaterial::new(BaseAnchors::None, Vec::new(), Some((vec![leaf], other_key)))
            .unwrap_err();
        assert!(matches!(e, MaterialError::Identity(_)), "{e:?}");
        assert!(e.to_string().contains("do not form a usable pair"), "{e}");
    }

    #[test]
    fn an_unusable_anchor_is_refused_with_its_number() {
        let (ca, _) = self_signed("ca.example", true);
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let e = TlsMaterial::new(BaseAnchors::Webpki, vec![ca, garbage], None).unwrap_err();
        assert!(
            matches!(e, MaterialError::Anchor(AnchorError { number: 2, .. })),
            "{e:?}"
        );
    }

    #[test]
    fn debug_never_shows_the_client_key() {
        let (leaf, key) = self_signed("client.example", false);
        let secret = key.secret_der().to_vec();
        let material =
            TlsMaterial::new(BaseAnchors::None, Vec::new(), Some((vec![leaf], key))).unwrap();
        let debug = format!("{material:?}");
        assert!(debug.contains("key [redacted]"), "{debug}");
        let client = format!("{:?}", material.client().unwrap());
        assert!(client.contains("SecretKey([redacted])"), "{client}");
        let decimal = format!("{:?}", &secret[secret.len() - 16..]);
        let inner = decimal.trim_start_matches('[').trim_end_matches(']');
        assert!(!debug.contains(inner), "key bytes in Debug: {debug}");
        assert!(!client.contains(inner), "key bytes in Debug: {client}");
    }

    #[test]
    fn the_store_of_a_material_holds_its_base_and_extra_anchors() {
        let (ca, _) = self_signed("ca.example", true);
        let none = TlsMaterial::new(BaseAnchors::None, vec![ca.clone()], None).unwrap();
        assert_eq!(none.trust_store().len(), 1);
        let webpki = TlsMaterial::new(BaseAnchors::Webpki, vec![ca], None).unwrap();
        assert_eq!(webpki.trust_store().len(), TrustStore::webpki().len() + 1);
    }
}
