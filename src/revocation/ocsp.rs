//! OCSP (RFC 6960): requests for one certificate, and the verification of a response,
//! stapled or fetched.
//!
//! The ASN.1 is RustCrypto's `x509-ocsp` (on `der` and `x509-cert`): its types mirror
//! the RFC's modules one to one and its DER decoder is strict, so a response that
//! decodes is the DER that was signed. The signed bytes are taken from the response
//! as received ([`super::signature::Signed`]), not re-encoded.
//!
//! A response is accepted when it:
//! - says `successful` and carries a BasicOCSPResponse;
//! - has a SingleResponse whose CertID names this certificate's issuer (name and key
//!   hashes, in whichever hash the responder used) and serial; one for another serial
//!   is `malformed`;
//! - is signed by the issuer's key, or by a certificate in the response that the
//!   issuer signed for id-kp-OCSPSigning and that is valid now (checked by webpki, as
//!   a path of one certificate to the issuer as its anchor); else `bad_signature`;
//! - has `thisUpdate` no later than [`super::CLOCK_SKEW`] from now and a `nextUpdate`,
//!   when it has one, not past ([`OcspAnswer::judge`]); else `stale`.
//!
//! No nonce is sent or required (RFC 5019: responses are pre-signed and cached). The
//! request's CertID uses SHA-1, which every responder accepts (RFC 5019 2.1.1).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use der::asn1::{AnyRef, Null, OctetString};
use der::oid::db::{rfc5912, rfc6960};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, SliceReader, Tag, Tagged};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::time::Instant;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest, Version,
};

use super::cache::{Cache, Weigh};
use super::fetch::{self, HttpUrl, Limits, Method};
use super::signature::{self, Signed, Spki};
use super::{unix, Failure, Issuer, Lookup, Reason, Revoked, Status, CLOCK_SKEW, MAX_OCSP_BYTES};

/// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9), the OID's DER content.
const OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
/// The longest GET URL path an encoded request may make; longer requests are POSTed
/// (RFC 5019 5: GET for requests under 255 bytes once encoded).
const MAX_GET: usize = 255;

/// What a responder says about a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertState {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked(Revoked),
    /// The responder does not know the certificate.
    Unknown,
}

/// A verified response, before its dates are judged against a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The certificate's status.
    pub state: CertState,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds, when given.
    pub next_update: Option<i64>,
}

impl Weigh for OcspAnswer {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl OcspAnswer {
    /// The status at `now` (Unix seconds): `stale` when `thisUpdate` is in the future
    /// or `nextUpdate` past, `unknown_status` when the responder does not know it.
    pub fn judge(&self, now: i64) -> Result<Status, Failure> {
        if self.this_update > now + CLOCK_SKEW {
            return Err(Failure::new(
                Reason::Stale,
                format!(
                    "the response's thisUpdate {} is in the future",
                    crate::cert::rfc3339(self.this_update)
                ),
            ));
        }
        if let Some(next) = self.next_update.filter(|next| *next < now) {
            return Err(Failure::new(
                Reason::Stale,
                format!(
                    "the response's nextUpdate {} has passed",
                    crate::cert::rfc3339(next)
                ),
            ));
        }
        let revoked = match self.state {
            CertState::Good => None,
            CertState::Revoked(revoked) => Some(revoked),
            CertState::Unknown => {
                return Err(Failure::new(
                    Reason::UnknownStatus,
                    "the responder answered \"unknown\" for this certificate",
                ))
            }
        };
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

/// Verifies `der`, a response about the certificate with serial `serial` (INTEGER
/// content bytes) issued by `issuer`. `now` (Unix seconds) judges a delegated
/// responder's certificate; the response's own dates are judged by
/// [`OcspAnswer::judge`].
pub fn verify(der: &[u8], serial: &[u8], issuer: &Issuer, now: i64) -> Result<OcspAnswer, Failure> {
    if der.len() > MAX_OCSP_BYTES {
        return Err(Failure::new(
            Reason::TooLarge,
            format!(
                "the response has {} bytes, more than the limit of {MAX_OCSP_BYTES}",
                der.len()
            ),
        ));
    }
    let response =
        OcspResponse::from_der(der).map_err(|e| malformed(format!("not an OCSP response: {e}")))?;
    match response.response_status {
        OcspResponseStatus::Successful => {}
        OcspResponseStatus::Unauthorized => {
            return Err(Failure::new(
                Reason::UnknownStatus,
                "the responder answered \"unauthorized\": it does not answer for this certificate",
            ))
        }
        other => {
            return Err(Failure::new(
                Reason::FetchFailed,
                format!("the responder answered {other:?} instead of a status"),
            ))
        }
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| malformed("a successful response without responseBytes"))?;
    if bytes.response_type != rfc6960::ID_PKIX_OCSP_BASIC {
        return Err(malformed(format!(
            "the response type is {}, not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der)
        .map_err(|e| malformed(format!("the BasicOCSPResponse does not decode: {e}")))?;
    let signed = signed_parts(basic_der)
        .map_err(|e| malformed(format!("the BasicOCSPResponse does not decode: {e}")))?;

    let single = find_single(&basic, serial, issuer)?;
    check_signature(&basic, &signed, issuer, now)?;

    let state = match single.cert_status {
        CertStatus::Good(_) => CertState::Good,
        CertStatus::Revoked(info) => CertState::Revoked(Revoked {
            at: seconds(&info.revocation_time),
            reason_code: info.revocation_reason.map(|r| r as u32 as u8),
        }),
        CertStatus::Unknown(_) => CertState::Unknown,
    };
    Ok(OcspAnswer {
        state,
        this_update: seconds(&single.this_update),
        next_update: single.next_update.as_ref().map(seconds),
    })
}

fn seconds(time: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    i64::try_from(time.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn signed_parts(basic_der: &[u8]) -> der::Result<Signed<'_>> {
    let outer = AnyRef::from_der(basic_der)?;
    outer.tag().assert_eq(Tag::Sequence)?;
    Signed::read(&mut SliceReader::new(outer.value())?)
}

/// The SingleResponse about this certificate.
fn find_single<'a>(
    basic: &'a BasicOcspResponse,
    serial: &[u8],
    issuer: &Issuer,
) -> Result<&'a x509_ocsp::SingleResponse, Failure> {
    let want_serial = super::canonical_integer(serial);
    let key = Spki::parse(&issuer.spki)
        .map_err(|e| malformed(format!("the issuer's key: {e}")))?
        .key;
    let mut other_serial = None;
    let mut other_issuer = false;
    for single in &basic.tbs_response_data.responses {
        let id = &single.cert_id;
        let Some(digest) = digest_for(&id.hash_algorithm.oid) else {
            other_issuer = true;
            continue;
        };
        let same_issuer = id.issuer_name_hash.as_bytes() == hash(digest, &issuer.name)
            && id.issuer_key_hash.as_bytes() == hash(digest, key);
        if !same_issuer {
            other_issuer = true;
        } else if super::canonical_integer(id.serial_number.as_bytes()) == want_serial {
            return Ok(single);
        } else {
            other_serial = Some(super::hex(id.serial_number.as_bytes()));
        }
    }
    Err(malformed(match (other_serial, other_issuer) {
        (Some(other), _) => format!(
            "the response is for serial {other}, not for this certificate's {}",
            super::hex(want_serial)
        ),
        (None, true) => "the response is about a certificate of another issuer".to_owned(),
        (None, false) => "the response has no status for any certificate".to_owned(),
    }))
}

fn digest_for(oid: &ObjectIdentifier) -> Option<&'static ring::digest::Algorithm> {
    if *oid == rfc5912::ID_SHA_1 {
        Some(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY)
    } else if *oid == rfc5912::ID_SHA_256 {
        Some(&ring::digest::SHA256)
    } else if *oid == rfc5912::ID_SHA_384 {
        Some(&ring::digest::SHA384)
    } else if *oid == rfc5912::ID_SHA_512 {
        Some(&ring::digest::SHA512)
    } else {
        None
    }
}

fn hash(digest: &'static ring::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(digest, data).as_ref().to_vec()
}

/// Accepts a signature by the issuer, or by a responder certificate in the response
/// that the issuer certified for OCSP signing.
fn check_signature(
    basic: &BasicOcspResponse,
    signed: &Signed<'_>,
    issuer: &Issuer,
    now: i64,
) -> Result<(), Failure> {
    let by_issuer = signature::verify(&issuer.spki, signed.algorithm, signed.tbs, signed.signature);
    if by_issuer.is_ok() {
        return Ok(());
    }
    let mut why = vec![format!(
        "not by the issuer's key: {}",
        by_issuer.unwrap_err()
    )];
    for cert in basic.certs.iter().flatten() {
        let der = match cert.to_der() {
            Ok(der) => der,
            Err(e) => {
                why.push(format!("an included certificate does not encode: {e}"));
                continue;
            }
        };
        if let Err(e) = delegated(&der, issuer, now) {
            why.push(format!(
                "an included certificate is not a responder the issuer certified: {e}"
            ));
            continue;
        }
        let spki = match cert.tbs_certificate.subject_public_key_info.to_der() {
            Ok(spki) => spki,
            Err(e) => {
                why.push(format!("a responder's key does not encode: {e}"));
                continue;
            }
        };
        match signature::verify(&spki, signed.algorithm, signed.tbs, signed.signature) {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("not by the delegated responder's key: {e}")),
        }
    }
    Err(Failure::new(
        Reason::BadSignature,
        format!(
            "the response is not signed by the issuer or a responder it certified ({})",
            why.join("; ")
        ),
    ))
}

/// Whether `der` is a certificate the issuer signed for id-kp-OCSPSigning, valid at
/// `now`.
fn delegated(der: &[u8], issuer: &Issuer, now: i64) -> Result<(), webpki::Error> {
    let contents = |tlv: &[u8]| -> Result<Vec<u8>, webpki::Error> {
        AnyRef::from_der(tlv)
            .map(|any| any.value().to_vec())
            .map_err(|_| webpki::Error::BadDer)
    };
    let (subject, spki) = (contents(&issuer.name)?, contents(&issuer.spki)?);
    let anchor = match &issuer.cert {
        Some(cert) => webpki::anchor_from_trusted_cert(cert)?.to_owned(),
        None => rustls_pki_types::TrustAnchor {
            subject: subject.into(),
            subject_public_key_info: spki.into(),
            name_constraints: None,
        },
    };
    let cert = CertificateDer::from(der);
    let responder = webpki::EndEntityCert::try_from(&cert)?;
    let algorithms = crate::trust::provider()
        .signature_verification_algorithms
        .all;
    responder.verify_for_usage(
        algorithms,
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0))),
        webpki::KeyUsage::required(OCSP_SIGNING),
        None,
        None,
    )?;
    Ok(())
}

/// The DER OCSPRequest for the certificate with serial `serial` issued by `issuer`:
/// one SHA-1 CertID, no nonce, unsigned.
pub fn request(serial: &[u8], issuer: &Issuer) -> Result<Vec<u8>, Failure> {
    let key = Spki::parse(&issuer.spki)
        .map_err(|e| malformed(format!("the issuer's key: {e}")))?
        .key;
    let sha1 = &ring::digest::SHA1_FOR_LEGACY_USE_ONLY;
    let serial = SerialNumber::from_der(&super::tlv(0x02, serial)).map_err(|e| {
        malformed(format!(
            "the certificate's serial {} cannot be put in an OCSP request: {e}",
            super::hex(serial)
        ))
    })?;
    let octets = |bytes: Vec<u8>| OctetString::new(bytes).map_err(|e| malformed(e.to_string()));
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_SHA_1,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: octets(hash(sha1, &issuer.name))?,
        issuer_key_hash: octets(hash(sha1, key))?,
        serial_number: serial,
    };
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(|e| malformed(format!("the request does not encode: {e}")))
}

/// The fetched OCSP answers, by responder URL, request and `allow_private_addresses`.
static ANSWERS: Cache<OcspAnswer> = Cache::new(200_000, 64 << 20);

/// The fetched-answer cache, for tests and benchmarks.
pub fn cache() -> &'static Cache<OcspAnswer> {
    &ANSWERS
}

/// Asks the responder at `url` about the certificate with `serial` issued by `issuer`,
/// through the cache, and judges the answer at `now`.
pub async fn fetch(
    url: &str,
    serial: &[u8],
    issuer: &Issuer,
    allow_private: bool,
    deadline: Instant,
    now: SystemTime,
) -> Lookup {
    let failed = |failure: Failure| Lookup {
        result: Err(failure),
        url: url.to_owned(),
        fetched_at: None,
        cached: false,
    };
    let responder = match HttpUrl::parse(url) {
        Ok(responder) => responder,
        Err(f) => return failed(f),
    };
    let request = match request(serial, issuer) {
        Ok(request) => request,
        Err(f) => return failed(f),
    };
    let mut key = vec![u8::from(allow_private)];
    key.extend_from_slice(url.as_bytes());
    key.push(0);
    key.extend_from_slice(&request);
    let origin = responder.origin();
    let (serial, issuer) = (serial.to_vec(), issuer.clone());
    let ask = async move {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
        let escaped = encoded
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let limits = Limits {
            accept: "application/ocsp-response",
            max_bytes: MAX_OCSP_BYTES,
            allow_private,
            deadline,
        };
        let body = if escaped.len() <= MAX_GET {
            fetch::fetch(&responder.with_path(&escaped), Method::Get, limits).await?
        } else {
            let post = Method::Post {
                content_type: "application/ocsp-request",
                body: &request,
            };
            fetch::fetch(&responder, post, limits).await?
        };
        let fetched = SystemTime::now();
        let answer = verify(&body, &serial, &issuer, unix(fetched))?;
        // An answer that is of no use now is a failure, retried after a back-off.
        answer.judge(unix(fetched))?;
        let fresh_until = answer.next_update.map_or(
            fetched + Duration::from_secs(super::MAX_AGE as u64),
            |next| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(next).unwrap_or(0)),
        );
        Ok((answer, fresh_until))
    };
    let answer = ANSWERS.get(key, &origin, now, deadline, ask).await;
    Lookup {
        result: answer.result.and_then(|a| a.judge(unix(now))),
        url: url.to_owned(),
        fetched_at: answer.fetched_at,
        cached: answer.cached,
    }
}
