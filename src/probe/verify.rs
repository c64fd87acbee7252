//! Chain verification, separate from the handshake.
//!
//! The handshake only captures the presented chain (see `probe::tls`); this module then
//! verifies it against a [`TrustStore`] at a time given by the caller, and turns
//! webpki's error into a [`VerifyReason`]. It never touches the network.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use super::outcome::{Verdict, VerifyReason};
use crate::cert::ParsedCert;

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

    /// The operating system's store; errors name what could not be loaded.
    pub fn system() -> Result<TrustStore, String> {
        let loaded = rustls_native_certs::load_native_certs();
        if loaded.certs.is_empty() {
            let why = loaded
                .errors
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(format!(
                "trust: system found no certificates in the operating system's store ({why}); \
                 install ca-certificates or use trust: webpki"
            ));
        }
        let mut store = TrustStore::default();
        store.add_all(&loaded.certs)?;
        Ok(store)
    }

    /// A copy of `self` with `extra` anchors added.
    pub fn with_extra(&self, extra: &[CertificateDer<'_>]) -> Result<TrustStore, String> {
        let mut store = TrustStore {
            anchors: self.anchors.clone(),
            not_after: self.not_after.clone(),
        };
        store.add_all(extra)?;
        Ok(store)
    }

    /// How many anchors the store holds.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the store holds no anchor.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    fn add_all(&mut self, certs: &[CertificateDer<'_>]) -> Result<(), String> {
        for (i, der) in certs.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|e| {
                    format!(
                        "certificate #{} is not usable as a trust anchor: {e}",
                        i + 1
                    )
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

/// Verifies `chain` (leaf first, as presented) for `name` at `now`.
///
/// `parsed` holds the same certificates as `chain`, parsed, so the verified path's
/// earliest notAfter can be found without parsing twice.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    parsed: &[Arc<ParsedCert>],
    name: &ServerName<'_>,
    trust: &TrustStore,
    now: UnixTime,
) -> Verdict {
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return failed(
            VerifyReason::Other,
            "the server presented no certificate".into(),
        );
    };
    let leaf = match EndEntityCert::try_from(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => return failed(reason_for(&e, parsed), format!("leaf certificate: {e}")),
    };
    let algorithms = super::tls::provider().signature_verification_algorithms.all;
    let path = match leaf.verify_for_usage(
        algorithms,
        &trust.anchors,
        intermediates,
        now,
        KeyUsage::server_auth(),
        None,
        None,
    ) {
        Ok(path) => path,
        Err(e) => return failed(reason_for(&e, parsed), explain(&e, parsed)),
    };
    if let Err(e) = leaf.verify_is_valid_for_subject_name(name) {
        return failed(VerifyReason::NameMismatch, explain(&e, parsed));
    }

    // Map the path back to the presented certificates to read their parsed facts.
    let mut in_path = vec![0usize];
    for cert in path.intermediate_certificates() {
        if let Some(i) = intermediates
            .iter()
            .position(|c| c.as_ref() == cert.der().as_ref())
        {
            in_path.push(i + 1);
        }
    }
    if let Some(weak) = in_path
        .iter()
        .filter_map(|i| parsed.get(*i)?.info.as_ref().ok())
        .find(|c| c.key.is_weak())
    {
        return failed(
            VerifyReason::WeakKey,
            format!(
                "{} key of {} bits in {}",
                weak.key.algorithm,
                weak.key.bits.unwrap_or(0),
                weak.subject
            ),
        );
    }
    let anchor_not_after = trust.not_after.get(path.anchor().subject.as_ref()).copied();
    let path_not_after = in_path
        .iter()
        .filter_map(|i| parsed.get(*i)?.not_after())
        .chain(anchor_not_after)
        .min();
    match path_not_after {
        Some(path_not_after) => Verdict::Verified { path_not_after },
        None => failed(
            VerifyReason::Other,
            "the verified path has no readable validity dates".into(),
        ),
    }
}

fn failed(reason: VerifyReason, detail: String) -> Verdict {
    Verdict::Failed { reason, detail }
}

/// A sentence for people: what failed, on which certificate, with the dates or names.
fn explain(error: &webpki::Error, parsed: &[Arc<ParsedCert>]) -> String {
    use webpki::Error as E;
    let by_not_after = |t: UnixTime| describe_cert(parsed, |c| c.not_after == unix(t));
    let by_not_before = |t: UnixTime| describe_cert(parsed, |c| c.not_before == unix(t));
    match error {
        E::CertExpired { time, not_after } => format!(
            "{} expired {:.1} days ago, at {}",
            by_not_after(*not_after),
            (unix(*time) - unix(*not_after)) as f64 / 86_400.0,
            crate::cert::rfc3339(unix(*not_after))
        ),
        E::CertNotValidYet { time, not_before } => format!(
            "{} is not valid until {}, {:.1} days from now",
            by_not_before(*not_before),
            crate::cert::rfc3339(unix(*not_before)),
            (unix(*not_before) - unix(*time)) as f64 / 86_400.0
        ),
        E::CertNotValidForName(context) => format!(
            "the certificate is valid for {}, not for {}",
            if context.presented.is_empty() {
                "no name".to_owned()
            } else {
                context
                    .presented
                    .iter()
                    .map(|n| presented_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            match &context.expected {
                ServerName::DnsName(name) => name.as_ref().to_owned(),
                other => format!("{other:?}"),
            }
        ),
        E::UnknownIssuer => {
            let last = parsed.last().and_then(|c| c.info.as_ref().ok());
            match last {
                Some(c) if c.self_issued && parsed.len() == 1 => {
                    format!("the certificate is self-signed ({}) and not trusted", c.subject)
                }
                Some(c) => format!("no trusted root for the chain: its last certificate is issued by {}, which is not a trust anchor", c.issuer),
                None => "no trusted root for the chain".to_owned(),
            }
        }
        other => format!("{other}"),
    }
}

/// webpki lists presented names in their Debug form (`DnsName("a.example")`).
fn presented_name(debug: &str) -> &str {
    debug
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(debug)
}

/// `depth N (subject CN)` of the first certificate matching `matches`.
fn describe_cert(
    parsed: &[Arc<ParsedCert>],
    matches: impl Fn(&crate::cert::CertInfo) -> bool,
) -> String {
    parsed
        .iter()
        .enumerate()
        .find_map(|(depth, c)| {
            let info = c.info.as_ref().ok().filter(|i| matches(i))?;
            Some(format!(
                "the certificate at depth {depth} ({})",
                info.subject_cn.as_deref().unwrap_or(&info.subject)
            ))
        })
        .unwrap_or_else(|| "a certificate of the chain".to_owned())
}

fn unix(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// The label reason for a webpki error.
// webpki still returns its deprecated context-less variants in places; match them too.
#[allow(deprecated)]
fn reason_for(error: &webpki::Error, parsed: &[Arc<ParsedCert>]) -> VerifyReason {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => VerifyReason::Expired,
        E::CertNotValidYet { .. } => VerifyReason::NotYetValid,
        E::UnknownIssuer => {
            let leaf_self_issued = parsed
                .first()
                .and_then(|c| c.info.as_ref().ok())
                .is_some_and(|c| c.self_issued);
            if leaf_self_issued {
                VerifyReason::SelfSigned
            } else {
                VerifyReason::UnknownIssuer
            }
        }
        E::CertNotValidForName(_) => VerifyReason::NameMismatch,
        E::InvalidSignatureForPublicKey | E::SignatureAlgorithmMismatch => {
            VerifyReason::BadSignature
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            VerifyReason::UnsupportedAlgorithm
        }
        E::RequiredEkuNotFound
        | E::RequiredEkuNotFoundContext(_)
        | E::CaUsedAsEndEntity
        | E::EndEntityUsedAsCa => VerifyReason::InvalidPurpose,
        E::CertRevoked => VerifyReason::Revoked,
        // webpki's error is non-exhaustive: anything new is reported as `other`.
        _ => VerifyReason::Other,
    }
}
