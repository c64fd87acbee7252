//! CRLs (RFC 5280 section 5): read in one pass, verified, and kept as a compact set of
//! revoked serials.
//!
//! A CRL may be 32 MiB (about 800,000 entries). [`read`] walks the DER with `der`'s
//! borrowing reader: it never builds a parsed entry list, and what it keeps is a
//! [`RevokedSerials`]: each serial's bytes once, sorted, in one buffer per serial
//! length, with its revocation date and reason: the serial plus 5 bytes an entry. That set is
//! built once per CRL (per URL and issuer) and shared through the cache by every target
//! whose certificate points at the CRL; the DER is dropped once read. Reading runs on
//! the blocking pool, at most [`MAX_PARALLEL_READS`] at a time.
//!
//! A CRL is accepted for a certificate when it is signed by the certificate's issuer
//! (whose key, when its certificate is known, may sign CRLs), names that issuer, covers
//! the certificate (its issuing distribution point, when present, names one of the
//! certificate's distribution points and does not exclude its kind), has no critical
//! extension certwatch does not understand (a delta CRL or an indirect CRL), and is
//! current: `thisUpdate` not in the future, `nextUpdate` not past.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::time::Time;

use super::cache::{Cache, Weigh};
use super::fetch::{self, HttpUrl, Limits, Method};
use super::signature::{self, Signed};
use super::{
    unix, Failure, Issuer, Lookup, Pointers, Reason, Revoked, Status, CLOCK_SKEW, MAX_CRL_BYTES,
};

/// CRLs read at once at most, on the blocking pool.
pub const MAX_PARALLEL_READS: usize = 2;

/// The revoked serials of one CRL, sorted, grouped by length.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RevokedSerials {
    groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    /// The length of every serial in this group.
    len: usize,
    /// The serials back to back, sorted.
    serials: Box<[u8]>,
    /// The revocation date of each, Unix seconds (clamped to `u32`).
    dates: Box<[u32]>,
    /// The CRLReason of each, 255 when absent.
    reasons: Box<[u8]>,
}

const NO_REASON: u8 = 255;

impl RevokedSerials {
    /// The set of `entries` (canonical serial bytes, date, reason); duplicates keep one.
    pub fn new(mut entries: Vec<(&[u8], i64, Option<u8>)>) -> Self {
        entries.sort_unstable_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
        entries.dedup_by(|a, b| a.0 == b.0);
        let mut groups: Vec<Group> = Vec::new();
        for chunk in entries.chunk_by(|a, b| a.0.len() == b.0.len()) {
            let len = chunk[0].0.len();
            let mut serials = Vec::with_capacity(chunk.len() * len);
            for (serial, ..) in chunk {
                serials.extend_from_slice(serial);
            }
            groups.push(Group {
                len,
                serials: serials.into_boxed_slice(),
                dates: chunk
                    .iter()
                    .map(|(_, date, _)| u32::try_from((*date).max(0)).unwrap_or(u32::MAX))
                    .collect(),
                reasons: chunk.iter().map(|(.., r)| r.unwrap_or(NO_REASON)).collect(),
            });
        }
        Self { groups }
    }

    /// The revocation of `serial` (canonical INTEGER content bytes), if listed.
    pub fn find(&self, serial: &[u8]) -> Option<Revoked> {
        let group = self.groups.iter().find(|g| g.len == serial.len())?;
        let n = group.dates.len();
        let at = |i: usize| &group.serials[i * group.len..(i + 1) * group.len];
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match at(mid).cmp(serial) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Some(Revoked {
                        at: i64::from(group.dates[mid]),
                        reason_code: Some(group.reasons[mid]).filter(|r| *r != NO_REASON),
                    })
                }
            }
        }
        None
    }

    /// How many serials.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.dates.len()).sum()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|g| {
                g.serials.len() + g.dates.len() * 4 + g.reasons.len() + std::mem::size_of::<Group>()
            })
            .sum()
    }
}

/// Which certificates a CRL covers (its issuing distribution point).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The distribution point URIs it names; empty when it names none.
    pub names: Vec<String>,
    /// Only end-entity certificates.
    pub only_user: bool,
    /// Only CA certificates.
    pub only_ca: bool,
    /// Only some revocation reasons: a serial missing from it may be revoked for
    /// another reason.
    pub only_some_reasons: bool,
}

/// A verified CRL, reduced to what a lookup needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSet {
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds, when given.
    pub next_update: Option<i64>,
    /// Its scope.
    pub scope: Scope,
    /// The serials it lists.
    pub revoked: RevokedSerials,
    /// The size of the DER it was read from.
    pub der_bytes: usize,
}

impl Weigh for Arc<CrlSet> {
    fn weight(&self) -> usize {
        self.revoked.heap_bytes() + std::mem::size_of::<CrlSet>()
    }
}

impl CrlSet {
    /// Whether the CRL is current at `now` (Unix seconds).
    pub fn current(&self, now: i64) -> Result<(), Failure> {
        if self.this_update > now + CLOCK_SKEW {
            return Err(Failure::new(
                Reason::Stale,
                format!(
                    "the CRL's thisUpdate {} is in the future",
                    crate::cert::rfc3339(self.this_update)
                ),
            ));
        }
        if let Some(next) = self.next_update.filter(|next| *next < now) {
            return Err(Failure::new(
                Reason::Stale,
                format!(
                    "the CRL's nextUpdate {} has passed",
                    crate::cert::rfc3339(next)
                ),
            ));
        }
        Ok(())
    }

    /// What the CRL says about the certificate of `pointers` at `now`.
    pub(super) fn status_of(&self, pointers: &Pointers, now: i64) -> Result<Status, Failure> {
        let out_of_scope = |why: String| {
            Failure::new(
                Reason::Malformed,
                format!("the CRL does not cover this certificate: {why}"),
            )
        };
        if self.scope.only_user && pointers.is_ca {
            return Err(out_of_scope("it lists only end-entity certificates".into()));
        }
        if self.scope.only_ca && !pointers.is_ca {
            return Err(out_of_scope("it lists only CA certificates".into()));
        }
        if !self.scope.names.is_empty()
            && !self
                .scope
                .names
                .iter()
                .any(|n| pointers.crl_names.contains(n))
        {
            return Err(out_of_scope(format!(
                "it is the CRL of {}, the certificate's distribution points are {}",
                self.scope.names.join(", "),
                pointers.crl_names.join(", ")
            )));
        }
        self.current(now)?;
        let revoked = self
            .revoked
            .find(super::canonical_integer(&pointers.serial));
        if revoked.is_none() && self.scope.only_some_reasons {
            return Err(Failure::new(
                Reason::UnknownStatus,
                "the CRL lists only some revocation reasons",
            ));
        }
        Ok(Status {
            revoked,
            this_update: self.this_update,
            next_update: self.next_update,
        })
    }
}

fn malformed(detail: impl Into<String>) -> Failure {
    Failure::new(Reason::Malformed, detail)
}

fn bad_der(e: der::Error) -> Failure {
    malformed(format!("the CRL does not decode: {e}"))
}

const ID_CE: [u64; 3] = [2, 5, 29];

/// The number of an `id-ce` (2.5.29.x) extension.
fn id_ce(oid: &ObjectIdentifier) -> Option<u64> {
    let mut arcs = oid.arcs();
    for want in ID_CE {
        if arcs.next().map(u64::from) != Some(want) {
            return None;
        }
    }
    let last = arcs.next().map(u64::from);
    arcs.next().is_none().then_some(last).flatten()
}

/// Calls `each` with every extension (id, critical, value) of an `Extensions` SEQUENCE.
fn extensions<'a>(
    sequence: AnyRef<'a>,
    mut each: impl FnMut(ObjectIdentifier, bool, &'a [u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    sequence.tag().assert_eq(Tag::Sequence).map_err(bad_der)?;
    let mut reader = SliceReader::new(sequence.value()).map_err(bad_der)?;
    while !reader.is_finished() {
        let extension: AnyRef<'a> = reader.decode().map_err(bad_der)?;
        extension.tag().assert_eq(Tag::Sequence).map_err(bad_der)?;
        let mut fields = SliceReader::new(extension.value()).map_err(bad_der)?;
        let id: ObjectIdentifier = fields.decode().map_err(bad_der)?;
        let critical = if fields.peek_tag().map_err(bad_der)? == Tag::Boolean {
            fields.decode::<bool>().map_err(bad_der)?
        } else {
            false
        };
        let value: OctetStringRef<'a> = fields.decode().map_err(bad_der)?;
        fields.finish(()).map_err(bad_der)?;
        each(id, critical, value.as_bytes())?;
    }
    Ok(())
}

fn time(reader: &mut SliceReader<'_>) -> Result<i64, Failure> {
    let time: Time = reader.decode().map_err(bad_der)?;
    Ok(i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX))
}

fn is_time(tag: Tag) -> bool {
    matches!(tag, Tag::UtcTime | Tag::GeneralizedTime)
}

/// Reads and verifies `der`, a CRL that must be `issuer`'s.
pub fn read(der: &[u8], issuer: &Issuer) -> Result<CrlSet, Failure> {
    if der.len() > MAX_CRL_BYTES {
        return Err(Failure::new(
            Reason::TooLarge,
            format!(
                "the CRL has {} bytes, more than the limit of {MAX_CRL_BYTES}",
                der.len()
            ),
        ));
    }
    let outer = AnyRef::from_der(der).map_err(bad_der)?;
    outer.tag().assert_eq(Tag::Sequence).map_err(bad_der)?;
    let mut reader = SliceReader::new(outer.value()).map_err(bad_der)?;
    let signed = Signed::read(&mut reader).map_err(bad_der)?;
    reader.finish(()).map_err(bad_der)?;

    signature::verify(&issuer.spki, signed.algorithm, signed.tbs, signed.signature).map_err(
        |e| {
            Failure::new(
                Reason::BadSignature,
                format!("the CRL is not signed by the certificate's issuer: {e}"),
            )
        },
    )?;
    if let Some(cert) = &issuer.cert {
        if !may_sign_crls(cert) {
            return Err(Failure::new(
                Reason::BadSignature,
                "the issuer's key usage does not allow it to sign CRLs",
            ));
        }
    }

    let tbs = AnyRef::from_der(signed.tbs).map_err(bad_der)?;
    let mut tbs = SliceReader::new(tbs.value()).map_err(bad_der)?;
    if tbs.peek_tag().map_err(bad_der)? == Tag::Integer {
        let version: u8 = tbs.decode().map_err(bad_der)?;
        if version != 1 {
            return Err(malformed(format!(
                "CRL version {} is not v2",
                u16::from(version) + 1
            )));
        }
    }
    let algorithm: AnyRef<'_> = tbs.decode().map_err(bad_der)?;
    if algorithm.value() != signed.algorithm {
        return Err(malformed(
            "the signature algorithm inside the CRL differs from the one outside",
        ));
    }
    let name = tbs.tlv_bytes().map_err(bad_der)?;
    if name != issuer.name.as_slice() {
        return Err(malformed(
            "the CRL is issued by another CA than the certificate",
        ));
    }
    let this_update = time(&mut tbs)?;
    let next_update = if !tbs.is_finished() && is_time(tbs.peek_tag().map_err(bad_der)?) {
        Some(time(&mut tbs)?)
    } else {
        None
    };
    let mut revoked_list = None;
    if !tbs.is_finished() && tbs.peek_tag().map_err(bad_der)? == Tag::Sequence {
        let list: AnyRef<'_> = tbs.decode().map_err(bad_der)?;
        revoked_list = Some(list.value());
    }
    let mut scope = Scope::default();
    if !tbs.is_finished() {
        let tagged: AnyRef<'_> = tbs.decode().map_err(bad_der)?;
        let context_0 = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        };
        if tagged.tag() != context_0 {
            return Err(malformed(format!("unexpected {} in the CRL", tagged.tag())));
        }
        let inner = AnyRef::from_der(tagged.value()).map_err(bad_der)?;
        extensions(inner, |id, critical, value| {
            match id_ce(&id) {
                // issuingDistributionPoint
                Some(28) => scope = read_scope(value)?,
                // deltaCRLIndicator
                Some(27) => return Err(malformed("delta CRLs are not supported")),
                // cRLNumber, authorityKeyIdentifier, freshestCRL
                Some(20 | 35 | 46) => {}
                _ if critical => {
                    return Err(malformed(format!(
                        "the CRL has a critical extension certwatch does not know: {id}"
                    )))
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    tbs.finish(()).map_err(bad_der)?;

    let mut entries = Vec::new();
    if let Some(list) = revoked_list {
        let mut list = SliceReader::new(list).map_err(bad_der)?;
        while !list.is_finished() {
            let entry: AnyRef<'_> = list.decode().map_err(bad_der)?;
            entry.tag().assert_eq(Tag::Sequence).map_err(bad_der)?;
            let mut fields = SliceReader::new(entry.value()).map_err(bad_der)?;
            let serial: AnyRef<'_> = fields.decode().map_err(bad_der)?;
            serial.tag().assert_eq(Tag::Integer).map_err(bad_der)?;
            if serial.value().is_empty() {
                return Err(malformed("a revoked serial has no content"));
            }
            let date = time(&mut fields)?;
            let mut reason = None;
            if !fields.is_finished() {
                let exts: AnyRef<'_> = fields.decode().map_err(bad_der)?;
                extensions(exts, |id, critical, value| {
                    match id_ce(&id) {
                        // reasonCode
                        Some(21) => {
                            let code = CrlReason::from_der(value).map_err(bad_der)?;
                            reason = Some(code as u32 as u8);
                        }
                        // certificateIssuer: an indirect CRL
                        Some(29) => return Err(malformed("indirect CRLs are not supported")),
                        _ if critical => {
                            return Err(malformed(format!(
                                "a CRL entry has a critical extension certwatch does not know: {id}"
                            )))
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            fields.finish(()).map_err(bad_der)?;
            // removeFromCRL belongs to delta CRLs, which are refused above.
            entries.push((super::canonical_integer(serial.value()), date, reason));
        }
    }
    Ok(CrlSet {
        this_update,
        next_update,
        scope,
        revoked: RevokedSerials::new(entries),
        der_bytes: der.len(),
    })
}

fn read_scope(value: &[u8]) -> Result<Scope, Failure> {
    let idp = IssuingDistributionPoint::from_der(value).map_err(|e| {
        malformed(format!(
            "the issuing distribution point does not decode: {e}"
        ))
    })?;
    if idp.indirect_crl {
        return Err(malformed("indirect CRLs are not supported"));
    }
    if idp.only_contains_attribute_certs {
        return Err(malformed("the CRL lists only attribute certificates"));
    }
    let mut names = Vec::new();
    if let Some(DistributionPointName::FullName(full)) = &idp.distribution_point {
        for name in full {
            if let GeneralName::UniformResourceIdentifier(uri) = name {
                names.push(uri.as_str().to_owned());
            }
        }
    }
    Ok(Scope {
        names,
        only_user: idp.only_contains_user_certs,
        only_ca: idp.only_contains_ca_certs,
        only_some_reasons: idp.only_some_reasons.is_some(),
    })
}

/// Whether the certificate's key usage, when it has one, includes cRLSign.
fn may_sign_crls(cert: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    match x509_parser::certificate::X509Certificate::from_der(cert) {
        Ok((_, cert)) => match cert.key_usage() {
            Ok(Some(usage)) => usage.value.crl_sign(),
            Ok(None) => true,
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// The CRLs read, by URL, issuer key and `allow_private_addresses`.
static CRLS: Cache<Arc<CrlSet>> = Cache::new(256, 512 << 20);
static READS: Semaphore = Semaphore::const_new(MAX_PARALLEL_READS);

/// The CRL cache, for tests and benchmarks.
pub fn cache() -> &'static Cache<Arc<CrlSet>> {
    &CRLS
}

/// Fetches (through the cache) the CRL at `url` for the certificate of `pointers`
/// issued by `issuer`, and looks the certificate up in it at `now`.
pub(super) async fn fetch(
    url: &str,
    pointers: &Pointers,
    issuer: &Issuer,
    allow_private: bool,
    deadline: Instant,
    now: SystemTime,
) -> Lookup {
    let location = match HttpUrl::parse(url) {
        Ok(location) => location,
        Err(f) => {
            return Lookup {
                result: Err(f),
                url: url.to_owned(),
                fetched_at: None,
                cached: false,
            }
        }
    };
    let mut key = vec![u8::from(allow_private)];
    key.extend_from_slice(url.as_bytes());
    key.push(0);
    key.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &issuer.spki).as_ref());
    let origin = location.origin();
    let issuer = issuer.clone();
    let get = async move {
        let limits = Limits {
            accept: "application/pkix-crl",
            max_bytes: MAX_CRL_BYTES,
            allow_private,
            deadline,
        };
        let body = fetch::fetch(&location, Method::Get, limits).await?;
        let _permit = READS
            .acquire()
            .await
            .map_err(|_| Failure::new(Reason::FetchFailed, "the CRL reader is closed"))?;
        let set = tokio::task::spawn_blocking(move || read(&body, &issuer))
            .await
            .map_err(|e| {
                Failure::new(Reason::Malformed, format!("reading the CRL failed: {e}"))
            })??;
        // A CRL that is of no use now is a failure, retried after a back-off.
        set.current(unix(SystemTime::now()))?;
        let fresh_until = set.next_update.map_or(
            SystemTime::now() + Duration::from_secs(super::MAX_AGE as u64),
            |next| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(next).unwrap_or(0)),
        );
        Ok((Arc::new(set), fresh_until))
    };
    let answer = CRLS.get(key, &origin, now, deadline, get).await;
    Lookup {
        result: answer
            .result
            .and_then(|set| set.status_of(pointers, unix(now))),
        url: url.to_owned(),
        fetched_at: answer.fetched_at,
        cached: answer.cached,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_found_in_their_length_group_only() {
        let serials: Vec<Vec<u8>> = (0u32..1000)
            .map(|i| (i * 7919 + 13).to_be_bytes().to_vec())
            .collect();
        let mut entries: Vec<(&[u8], i64, Option<u8>)> = serials
            .iter()
            .map(|s| (s.as_slice(), 1_700_000_000, Some(1)))
            .collect();
        entries.push((&[0x05], 1_600_000_000, None));
        entries.push((&[0x05], 1_600_000_001, None)); // a duplicate
        let set = RevokedSerials::new(entries);
        assert_eq!(set.len(), 1001);
        for s in &serials {
            assert_eq!(
                set.find(s),
                Some(Revoked {
                    at: 1_700_000_000,
                    reason_code: Some(1)
                })
            );
        }
        assert_eq!(set.find(&[0x05]).map(|r| r.reason_code), Some(None));
        assert_eq!(set.find(&8u32.to_be_bytes()), None);
        assert_eq!(
            set.find(&[0x00, 0x05]),
            None,
            "lengths differ: not canonical"
        );
        assert!(set.heap_bytes() < 1001 * 12, "{}", set.heap_bytes());
    }
}

#[cfg(test)]
mod verification {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
        DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
        SerialNumber,
    };
    use time::{Duration, OffsetDateTime};

    fn ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    fn issuer(ca: &CertifiedIssuer<'static, KeyPair>) -> Issuer {
        use x509_parser::prelude::FromDer;
        let der = ca.der().clone();
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
        Issuer {
            name: cert.tbs_certificate.subject.as_raw().to_vec(),
            spki: cert.public_key().raw.to_vec(),
            cert: Some(der.clone()),
        }
    }

    fn crl(ca: &CertifiedIssuer<'static, KeyPair>, serials: &[u64], next_days: i64) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(next_days),
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::days(2),
                    reason_code: Some(rcgen::RevocationReason::Superseded),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(ca)
        .unwrap()
        .der()
        .to_vec()
    }

    fn pointers(serial: u64) -> Pointers {
        Pointers {
            serial: SerialNumber::from(serial).as_ref().to_vec(),
            ..Pointers::default()
        }
    }

    #[test]
    fn a_crl_of_the_issuer_says_which_serials_are_revoked() {
        let ca = ca("CA");
        let set = read(&crl(&ca, &[0x1001, 0x80ff], 7), &issuer(&ca)).unwrap();
        assert_eq!(set.revoked.len(), 2);
        let now = unix(SystemTime::now());
        let revoked = set
            .status_of(&pointers(0x1001), now)
            .unwrap()
            .revoked
            .unwrap();
        assert_eq!(revoked.reason_code, Some(4), "superseded");
        assert!(set
            .status_of(&pointers(0x80ff), now)
            .unwrap()
            .revoked
            .is_some());
        assert_eq!(set.status_of(&pointers(0x1002), now).unwrap().revoked, None);
        // Past its nextUpdate, the same CRL says nothing.
        let stale = set
            .status_of(&pointers(0x1001), now + 8 * 86_400)
            .unwrap_err();
        assert_eq!(stale.reason, Reason::Stale);
    }

    #[test]
    fn a_crl_of_another_ca_or_with_another_key_is_refused() {
        let ca_a = ca("CA");
        let impostor = ca("CA"); // the same name, another key
        let other = ca("Other CA");
        let der = crl(&ca_a, &[1], 7);
        let e = read(&der, &issuer(&impostor)).unwrap_err();
        assert_eq!(e.reason, Reason::BadSignature, "{e}");
        // Signed by the key of the issuer, but naming another CA: the key is right, the
        // name is not.
        let mut renamed = issuer(&other);
        renamed.spki = issuer(&ca_a).spki;
        let e = read(&der, &renamed).unwrap_err();
        assert_eq!(e.reason, Reason::Malformed, "{e}");
        // A corrupted signature.
        let mut broken = der.clone();
        let last = broken.len() - 1;
        broken[last] ^= 0x01;
        let e = read(&broken, &issuer(&ca_a)).unwrap_err();
        assert!(
            matches!(e.reason, Reason::BadSignature | Reason::Malformed),
            "{e}"
        );
        // Garbage and truncation.
        assert_eq!(
            read(b"not a CRL", &issuer(&ca_a)).unwrap_err().reason,
            Reason::Malformed
        );
        let e = read(&der[..der.len() / 2], &issuer(&ca_a)).unwrap_err();
        assert_eq!(e.reason, Reason::Malformed);
    }

    #[test]
    fn a_crl_whose_distribution_point_is_not_the_certificates_is_out_of_scope() {
        let ca = ca("CA");
        let now = OffsetDateTime::now_utc();
        let der = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: Some(rcgen::CrlIssuingDistributionPoint {
                distribution_point: rcgen::CrlDistributionPoint {
                    uris: vec!["http://crl.example/shard-1.crl".into()],
                },
                scope: Some(rcgen::CrlScope::UserCertsOnly),
            }),
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&ca)
        .unwrap()
        .der()
        .to_vec();
        let set = read(&der, &issuer(&ca)).unwrap();
        let now = unix(SystemTime::now());
        let mut shard_1 = pointers(5);
        shard_1.crl_names = vec!["http://crl.example/shard-1.crl".into()];
        assert_eq!(set.status_of(&shard_1, now).unwrap().revoked, None);
        let mut shard_2 = pointers(5);
        shard_2.crl_names = vec!["http://crl.example/shard-2.crl".into()];
        assert_eq!(
            set.status_of(&shard_2, now).unwrap_err().reason,
            Reason::Malformed
        );
        let mut a_ca = shard_1;
        a_ca.is_ca = true;
        assert_eq!(
            set.status_of(&a_ca, now).unwrap_err().reason,
            Reason::Malformed
        );
    }
}
