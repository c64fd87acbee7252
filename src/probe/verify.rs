//! Chain verification, separate from the handshake.
//!
//! The handshake only captures the presented chain (see `probe::tls`); this module then
//! verifies it against a [`TrustStore`] (built by `crate::trust`) at a time given by the
//! caller, and turns webpki's error into a [`VerifyReason`]. It never touches the
//! network.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use super::outcome::{Verdict, VerifyReason};
use crate::cert::ParsedCert;
use crate::revocation::{Issuer, Link};
pub use crate::trust::TrustStore;

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
    verify_chain_links(chain, parsed, name, trust, now).0
}

/// [`verify_chain`], and for a chain that verifies, each certificate of the verified
/// path below the trust anchor with its issuer, for revocation checking.
pub fn verify_chain_links(
    chain: &[CertificateDer<'_>],
    parsed: &[Arc<ParsedCert>],
    name: &ServerName<'_>,
    trust: &TrustStore,
    now: UnixTime,
) -> (Verdict, Vec<Link>) {
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return no_links(failed(
            VerifyReason::Other,
            "the server presented no certificate".into(),
        ));
    };
    let leaf = match EndEntityCert::try_from(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => {
            return no_links(failed(
                reason_for(&e, parsed),
                format!("leaf certificate: {e}"),
            ))
        }
    };
    let algorithms = crate::trust::provider()
        .signature_verification_algorithms
        .all;
    let path = match leaf.verify_for_usage(
        algorithms,
        trust.anchors(),
        intermediates,
        now,
        KeyUsage::server_auth(),
        None,
        None,
    ) {
        Ok(path) => path,
        Err(e) => return no_links(failed(reason_for(&e, parsed), explain(&e, parsed))),
    };
    if let Err(e) = leaf.verify_is_valid_for_subject_name(name) {
        return no_links(failed(VerifyReason::NameMismatch, explain(&e, parsed)));
    }
    judge_path(&path, chain, parsed, trust)
}

/// A verdict with no verified path to check for revocation.
fn no_links(verdict: Verdict) -> (Verdict, Vec<Link>) {
    (verdict, Vec::new())
}

/// Verifies a certificate file's bundle (`chain`, the first certificate as the leaf) at
/// `now`, with no name to check: for a server (the leaf's extended key usage, if any,
/// allows TLS servers) or else for a client (it allows TLS clients), as a bundle on
/// disk may be either. Otherwise as [`verify_chain`].
pub fn verify_bundle(
    chain: &[CertificateDer<'_>],
    parsed: &[Arc<ParsedCert>],
    trust: &TrustStore,
    now: UnixTime,
) -> Verdict {
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return failed(VerifyReason::Other, "the file holds no certificate".into());
    };
    let leaf = match EndEntityCert::try_from(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => return failed(reason_for(&e, parsed), format!("leaf certificate: {e}")),
    };
    let algorithms = crate::trust::provider()
        .signature_verification_algorithms
        .all;
    let attempt = |usage| {
        leaf.verify_for_usage(
            algorithms,
            trust.anchors(),
            intermediates,
            now,
            usage,
            None,
            None,
        )
    };
    #[allow(deprecated)]
    let path = match attempt(KeyUsage::server_auth()) {
        Ok(path) => path,
        Err(webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_)) => {
            match attempt(KeyUsage::client_auth()) {
                Ok(path) => path,
                Err(e) => return failed(reason_for(&e, parsed), explain(&e, parsed)),
            }
        }
        Err(e) => return failed(reason_for(&e, parsed), explain(&e, parsed)),
    };
    judge_path(&path, chain, parsed, trust).0
}

/// The verdict on a verified path of `chain` (leaf first): a weak key on it fails it;
/// otherwise its earliest notAfter, trust anchor included, and its links for
/// revocation checking.
fn judge_path(
    path: &webpki::VerifiedPath<'_>,
    chain: &[CertificateDer<'_>],
    parsed: &[Arc<ParsedCert>],
    trust: &TrustStore,
) -> (Verdict, Vec<Link>) {
    let intermediates = chain.get(1..).unwrap_or_default();
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
        return no_links(failed(
            VerifyReason::WeakKey,
            format!(
                "{} key of {} bits in {}",
                weak.key.algorithm,
                weak.key.bits.unwrap_or(0),
                weak.subject
            ),
        ));
    }
    // Revocation checks the path below the anchor: a presented copy of the anchor,
    // added to the path next, is not checked (nothing can revoke a trust anchor).
    let anchor = path.anchor();
    let links = links(chain, &in_path, anchor);
    // A presented self-signed copy of the anchor is the anchor: on the path. A
    // cross-signed copy (same subject and key, another issuer) is not.
    for (i, der) in intermediates.iter().enumerate() {
        let self_issued = parsed
            .get(i + 1)
            .and_then(|c| c.info.as_ref().ok())
            .is_some_and(|c| c.self_issued);
        let is_anchor = self_issued
            && webpki::anchor_from_trusted_cert(der).is_ok_and(|a| {
                a.subject.as_ref() == anchor.subject.as_ref()
                    && a.subject_public_key_info.as_ref() == anchor.subject_public_key_info.as_ref()
            });
        if is_anchor && !in_path.contains(&(i + 1)) {
            in_path.push(i + 1);
        }
    }
    let anchor_not_after = trust.anchor_not_after(anchor.subject.as_ref());
    let path_not_after = in_path
        .iter()
        .filter_map(|i| parsed.get(*i)?.not_after())
        .chain(anchor_not_after)
        .min();
    match path_not_after {
        Some(path_not_after) => (
            Verdict::Verified {
                path_not_after,
                path: in_path,
            },
            links,
        ),
        None => no_links(failed(
            VerifyReason::Other,
            "the verified path has no readable validity dates".into(),
        )),
    }
}

/// Each certificate of the path (by presented position, leaf first) with its issuer:
/// the next certificate of the path, or the trust anchor.
fn links(
    chain: &[CertificateDer<'_>],
    in_path: &[usize],
    anchor: &rustls_pki_types::TrustAnchor<'_>,
) -> Vec<Link> {
    use x509_parser::prelude::FromDer;
    let issuer_of = |position: Option<&usize>| -> Option<Issuer> {
        match position {
            Some(i) => {
                let der = chain.get(*i)?;
                let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
                Some(Issuer {
                    name: cert.tbs_certificate.subject.as_raw().to_vec(),
                    spki: cert.public_key().raw.to_vec(),
                    cert: Some(der.clone().into_owned()),
                })
            }
            None => Some(Issuer {
                name: crate::revocation::tlv(0x30, anchor.subject.as_ref()),
                spki: crate::revocation::tlv(0x30, anchor.subject_public_key_info.as_ref()),
                cert: None,
            }),
        }
    };
    in_path
        .iter()
        .enumerate()
        .map_while(|(k, depth)| {
            Some(Link {
                depth: *depth,
                cert: chain.get(*depth)?.clone().into_owned(),
                issuer: issuer_of(in_path.get(k + 1))?,
            })
        })
        .collect()
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
