//! Chain and key hygiene (contract section 8): what is wrong with a presented chain
//! as a whole ([`chain_issues`]) and what is weak in each certificate
//! ([`weaknesses`]).
//!
//! Pure: it reads the presented certificates (DER and their parsed facts), the
//! verdict and the trust anchors, and never touches the network. The verdict itself
//! is `probe::verify`'s; which findings page is the alert rules' (a finding here never
//! fails a probe: the probe observes, it does not authenticate).
//!
//! The leaf's issuer path is followed by name among the presented certificates: from
//! the leaf, the presented certificate whose subject is the current one's issuer
//! (the next one when it fits, else the first that does), until a self-signed one or
//! one whose issuer was not presented.

use std::collections::HashSet;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::outcome::{ChainIssue, Verdict, Weakness};
use crate::cert::ParsedCert;
use crate::trust::TrustStore;

/// The longest validity of a leaf the CA/Browser Forum allows since September 2020:
/// 398 days.
pub const MAX_LEAF_LIFETIME_SECONDS: i64 = 398 * 86_400;

/// The names of one presented certificate, as DER.
#[derive(Debug, Clone, Default)]
struct Names {
    /// The subject, whole (tag and length included).
    subject: Vec<u8>,
    /// The issuer, whole.
    issuer: Vec<u8>,
}

impl Names {
    fn of(der: &[u8]) -> Option<Names> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(Names {
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
        })
    }

    fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// The value of a DER TLV (what follows its tag and length), as webpki keeps an
/// anchor's subject.
fn der_value(tlv: &[u8]) -> Option<&[u8]> {
    let first = *tlv.get(1)?;
    let header = match first {
        0..=0x7f => 2,
        0x81 => 3,
        0x82 => 4,
        0x83 => 5,
        _ => return None,
    };
    tlv.get(header..)
}

/// The depths of the leaf's issuer path among the presented certificates, leaf first.
fn issuer_path(names: &[Option<Names>]) -> Vec<usize> {
    let mut path = vec![0];
    let mut used: HashSet<usize> = HashSet::from([0]);
    while let Some(Some(current)) = names.get(*path.last().expect("never empty")) {
        if current.self_issued() {
            break;
        }
        let issues = |j: &usize| {
            !used.contains(j)
                && names[*j]
                    .as_ref()
                    .is_some_and(|n| n.subject == current.issuer)
        };
        let next = path.last().expect("never empty") + 1;
        let Some(found) = Some(next)
            .filter(|j| *j < names.len() && issues(j))
            .or_else(|| (0..names.len()).find(|j| issues(j)))
        else {
            break;
        };
        used.insert(found);
        path.push(found);
    }
    path
}

/// The issues of the presented chain `chain` (with `parsed`, the same certificates
/// parsed), given its verdict, the anchors it was verified against, and whether it was
/// cut at certwatch's bound. Sorted, each at most once; empty for an empty chain.
pub fn chain_issues(
    chain: &[CertificateDer<'_>],
    parsed: &[Arc<ParsedCert>],
    verdict: Option<&Verdict>,
    trust: &TrustStore,
    cut: bool,
) -> Vec<ChainIssue> {
    let mut issues = Vec::new();
    if cut {
        issues.push(ChainIssue::TooLong);
    }
    if chain.is_empty() {
        return issues;
    }
    let names: Vec<Option<Names>> = chain.iter().map(|c| Names::of(c)).collect();
    let path = issuer_path(&names);

    let verified_path = match verdict {
        Some(Verdict::Verified { path, .. }) => Some(path),
        _ => None,
    };
    if verified_path.is_none() {
        let last = path.last().and_then(|d| names[*d].as_ref());
        let reaches_anchor = last.is_some_and(|n| {
            n.self_issued()
                || der_value(&n.issuer).is_some_and(|issuer| {
                    trust.anchors().iter().any(|a| a.subject.as_ref() == issuer)
                })
        });
        if !reaches_anchor {
            issues.push(ChainIssue::Incomplete);
        }
    }
    if names
        .iter()
        .skip(1)
        .any(|n| n.as_ref().is_some_and(Names::self_issued))
    {
        issues.push(ChainIssue::RootIncluded);
    }
    if path.iter().enumerate().any(|(i, depth)| i != *depth) {
        issues.push(ChainIssue::OutOfOrder);
    }
    let mut seen = HashSet::new();
    let mut duplicated = HashSet::new();
    for cert in parsed {
        if !seen.insert(cert.fingerprint_sha256.as_str()) {
            duplicated.insert(cert.fingerprint_sha256.as_str());
        }
    }
    if !duplicated.is_empty() {
        issues.push(ChainIssue::Duplicate);
    }
    // A copy of a certificate that is used is a duplicate, not an unrelated one.
    let used: &[usize] = verified_path.map_or(&path, |p| p.as_slice());
    let used_prints: HashSet<&str> = used
        .iter()
        .filter_map(|d| parsed.get(*d))
        .map(|c| c.fingerprint_sha256.as_str())
        .collect();
    if parsed
        .iter()
        .any(|c| !used_prints.contains(c.fingerprint_sha256.as_str()))
    {
        issues.push(ChainIssue::Unrelated);
    }
    issues.sort();
    issues
}

/// The weaknesses of each presented certificate, by depth, sorted. A certificate that
/// does not parse has none (its facts are unknown, not weak).
pub fn weaknesses(parsed: &[Arc<ParsedCert>]) -> Vec<(usize, Weakness)> {
    let mut found = Vec::new();
    for (depth, cert) in parsed.iter().enumerate() {
        let Ok(info) = &cert.info else { continue };
        let key = info.key;
        match key.bits {
            Some(bits) if key.is_rsa() && bits < 2048 => {
                found.push((depth, Weakness::RsaKeyUnder2048));
            }
            Some(bits) if key.algorithm == "ECDSA" && bits < 256 => {
                found.push((depth, Weakness::EcKeyUnder256));
            }
            _ => {}
        }
        // Nobody checks the signature of a self-signed certificate (a root's is its
        // own): its hash is not a weakness of the chain.
        if !info.self_issued {
            let signature = info.signature_algorithm.to_ascii_lowercase();
            if signature.contains("sha1") {
                found.push((depth, Weakness::Sha1Signature));
            } else if signature.contains("md5") || signature.contains("md2") {
                found.push((depth, Weakness::Md5Signature));
            }
        }
        if depth == 0 {
            if info.not_after.saturating_sub(info.not_before) > MAX_LEAF_LIFETIME_SECONDS {
                found.push((depth, Weakness::LifetimeOver398Days));
            }
            if info.dns_names.is_empty() && info.ip_addresses.is_empty() {
                found.push((depth, Weakness::NoSubjectAltName));
            }
        }
    }
    found.sort();
    found
}

/// The weaknesses of a certificate file's bundle, by depth, sorted: those of the keys
/// and signatures only. The leaf-only ones are rules for the leaf a server presents
/// to browsers, and a file's first certificate is as often a CA's (a trust bundle, a
/// kubeconfig's cluster) or a client's (no subject alternative name by design); a
/// server's leaf is judged by them when the server is probed.
pub fn file_weaknesses(parsed: &[Arc<ParsedCert>]) -> Vec<(usize, Weakness)> {
    let mut found = weaknesses(parsed);
    found.retain(|(_, weakness)| !weakness.leaf_only());
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    };

    /// A CA (self-signed, or under `parent`) that can issue.
    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        der: CertificateDer<'static>,
    }

    fn dn(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn ca(cn: &str, parent: Option<&Ca>) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = dn(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = match parent {
            None => params.self_signed(&key),
            Some(p) => params.signed_by(&key, &p.issuer),
        }
        .expect("certificate");
        Ca {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(issuer: &Ca, names: &[&str], days: i64) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = dn("leaf");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days);
        let key = KeyPair::generate().expect("key");
        params
            .signed_by(&key, &issuer.issuer)
            .expect("leaf")
            .der()
            .clone()
    }

    fn parsed(chain: &[CertificateDer<'static>]) -> Vec<Arc<ParsedCert>> {
        chain.iter().map(|c| ParsedCert::shared(c)).collect()
    }

    fn trust(anchors: &[&Ca]) -> TrustStore {
        let certs: Vec<CertificateDer<'static>> = anchors.iter().map(|a| a.der.clone()).collect();
        TrustStore::from_certificates(&certs).expect("anchors")
    }

    fn verified(path: &[usize]) -> Verdict {
        Verdict::Verified {
            path_not_after: 0,
            path: path.to_vec(),
        }
    }

    fn issues(
        chain: &[CertificateDer<'static>],
        verdict: Option<&Verdict>,
        store: &TrustStore,
    ) -> Vec<&'static str> {
        chain_issues(chain, &parsed(chain), verdict, store, false)
            .into_iter()
            .map(ChainIssue::as_label)
            .collect()
    }

    #[test]
    fn a_clean_chain_has_no_issue() {
        let root = ca("root", None);
        let int = ca("int", Some(&root));
        let chain = vec![leaf(&int, &["a.example"], 90), int.der.clone()];
        assert!(issues(&chain, Some(&verified(&[0, 1])), &trust(&[&root])).is_empty());
        // Not verified (e.g. expired) but whole: still nothing.
        let failed = Verdict::Failed {
            reason: crate::probe::outcome::VerifyReason::Expired,
            detail: String::new(),
        };
        assert!(issues(&chain, Some(&failed), &trust(&[&root])).is_empty());
    }

    #[test]
    fn a_missing_intermediate_is_incomplete() {
        let root = ca("root", None);
        let int = ca("int", Some(&root));
        let chain = vec![leaf(&int, &["a.example"], 90)];
        let failed = Verdict::Failed {
            reason: crate::probe::outcome::VerifyReason::UnknownIssuer,
            detail: String::new(),
        };
        assert_eq!(
            issues(&chain, Some(&failed), &trust(&[&root])),
            ["incomplete"]
        );
        // Issued by an anchor directly: complete.
        let chain = vec![leaf(&root, &["a.example"], 90)];
        assert!(issues(&chain, Some(&failed), &trust(&[&root])).is_empty());
        // A whole private chain ending in its (untrusted) root is not incomplete.
        let chain = vec![
            leaf(&int, &["a.example"], 90),
            int.der.clone(),
            root.der.clone(),
        ];
        assert_eq!(
            issues(&chain, Some(&failed), &trust(&[])),
            ["root_included"]
        );
    }

    #[test]
    fn order_duplicates_roots_and_unrelated_certificates_are_told_apart() {
        let root = ca("root", None);
        let int = ca("int", Some(&root));
        let other = ca("other root", None);
        let l = leaf(&int, &["a.example"], 90);
        let store = trust(&[&root]);
        assert_eq!(
            issues(
                &[l.clone(), root.der.clone(), int.der.clone()],
                Some(&verified(&[0, 2, 1])),
                &store
            ),
            ["root_included", "out_of_order"]
        );
        assert_eq!(
            issues(
                &[l.clone(), int.der.clone(), int.der.clone()],
                Some(&verified(&[0, 1])),
                &store
            ),
            ["duplicate"]
        );
        assert_eq!(
            issues(
                &[l.clone(), int.der.clone(), other.der.clone()],
                Some(&verified(&[0, 1])),
                &store
            ),
            ["root_included", "unrelated"]
        );
        // Not verified: unrelated means off the leaf's issuer path by name; with no
        // anchor for `int`'s issuer (its root was not sent), it is incomplete too.
        assert_eq!(
            issues(&[l, int.der.clone(), other.der.clone()], None, &trust(&[])),
            ["incomplete", "root_included", "unrelated"]
        );
    }

    #[test]
    fn a_cut_chain_is_too_long() {
        assert_eq!(
            chain_issues(&[], &[], None, &trust(&[]), true),
            [ChainIssue::TooLong]
        );
    }

    #[test]
    fn leaf_weaknesses_are_lifetime_and_missing_names() {
        let root = ca("root", None);
        let long = leaf(&root, &["a.example"], 500);
        assert_eq!(
            weaknesses(&parsed(&[long])),
            [(0, Weakness::LifetimeOver398Days)]
        );
        let nameless = leaf(&root, &[], 90);
        assert_eq!(
            weaknesses(&parsed(&[nameless, root.der.clone()])),
            [(0, Weakness::NoSubjectAltName)],
            "the root's lifetime and names are not a leaf's"
        );
    }
}
