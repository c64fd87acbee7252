//! Test certificates made by rcgen: roots, intermediates and leaves with chosen
//! validity, names and issuers.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// A validity window, relative to now.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid since yesterday, for `days` from now.
    pub fn days(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(days),
        }
    }

    /// Expired yesterday.
    pub fn expired() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(90),
            not_after: now - Duration::days(1),
        }
    }

    /// Valid from tomorrow.
    pub fn not_yet_valid() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(90),
        }
    }
}

/// A certificate authority that can sign intermediates and leaves.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate.
    pub cert: CertificateDer<'static>,
    /// Its certificate, PEM.
    pub pem: String,
    /// Its notAfter, Unix seconds.
    pub not_after: i64,
    /// Its private key, PEM (for tools that sign as this CA, e.g. `openssl ocsp`).
    pub key_pem: String,
}

/// What a leaf offers to revocation checking (`Ca::leaf_with`).
#[derive(Clone, Debug, Default)]
pub struct Revocable {
    /// The OCSP responder URL (authority information access).
    pub ocsp_url: Option<String>,
    /// The CRL distribution point URL.
    pub crl_url: Option<String>,
    /// The TLS feature status_request (RFC 7633).
    pub must_staple: bool,
}

/// A DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

impl Revocable {
    fn apply(&self, params: &mut CertificateParams) {
        if let Some(url) = &self.ocsp_url {
            // AuthorityInfoAccess: SEQUENCE { SEQUENCE { id-ad-ocsp, [6] URI } }
            let id_ad_ocsp = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
            let mut desc = id_ad_ocsp.to_vec();
            desc.extend(tlv(0x86, url.as_bytes()));
            let aia = tlv(0x30, &tlv(0x30, &desc));
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    aia,
                ));
        }
        if let Some(url) = &self.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        if self.must_staple {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 24],
                    vec![0x30, 0x03, 0x02, 0x01, 0x05],
                ));
        }
    }
}

/// A leaf certificate with its key.
pub struct Leaf {
    /// The leaf certificate.
    pub cert: CertificateDer<'static>,
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// Its key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// Its key, PEM.
    pub key_pem: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// The serial, lowercase hex.
    pub serial_hex: String,
}

impl Leaf {
    /// The private key for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// This leaf followed by `issuers`' certificates, as a server presents them.
    pub fn chain(&self, issuers: &[&Ca]) -> Vec<CertificateDer<'static>> {
        std::iter::once(self.cert.clone())
            .chain(issuers.iter().map(|ca| ca.cert.clone()))
            .collect()
    }

    /// The chain as one PEM text.
    pub fn chain_pem(&self, issuers: &[&Ca]) -> String {
        std::iter::once(self.cert_pem.clone())
            .chain(issuers.iter().map(|ca| ca.pem.clone()))
            .collect()
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "certwatch tests");
    dn
}

fn serial() -> (SerialNumber, String) {
    let bytes: [u8; 8] = rand_bytes();
    let mut bytes = bytes.to_vec();
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
    (SerialNumber::from_slice(&bytes), hex)
}

fn rand_bytes() -> [u8; 8] {
    let mut out = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
        .expect("random bytes");
    out
}

impl Ca {
    /// A self-signed root valid for ten years.
    pub fn root(cn: &str) -> Ca {
        Self::make(cn, Validity::days(3650), None)
    }

    /// An intermediate signed by `self`.
    pub fn intermediate(&self, cn: &str, validity: Validity) -> Ca {
        Self::make(cn, validity, Some(self))
    }

    fn make(cn: &str, validity: Validity, parent: Option<&Ca>) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = name(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(serial().0);
        let key = KeyPair::generate().expect("key");
        let cert = match parent {
            None => params.self_signed(&key).expect("self-signed"),
            Some(parent) => params.signed_by(&key, &parent.issuer).expect("signed"),
        };
        Ca {
            pem: cert.pem(),
            cert: cert.der().clone(),
            not_after: validity.not_after.unix_timestamp(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server leaf for `names` signed by `self`, pointing at an OCSP responder and a
    /// CRL, and perhaps must-staple.
    pub fn leaf_with(&self, names: &[&str], validity: Validity, revocable: &Revocable) -> Leaf {
        make_leaf_with(
            names,
            validity,
            Some(self),
            ExtendedKeyUsagePurpose::ServerAuth,
            |params| revocable.apply(params),
        )
    }

    /// An OCSP responder certificate signed by `self` (id-kp-OCSPSigning).
    pub fn ocsp_responder(&self, cn: &str) -> Leaf {
        make_leaf(
            &[cn],
            Validity::days(30),
            Some(self),
            ExtendedKeyUsagePurpose::OcspSigning,
        )
    }

    /// A CRL signed by `self` listing `revoked` (lowercase hex serials), valid from
    /// `this_update` to `next_update`, DER.
    pub fn crl(
        &self,
        revoked: &[&str],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Vec<u8> {
        let revoked_certs = revoked
            .iter()
            .map(|hex| rcgen::RevokedCertParams {
                serial_number: SerialNumber::from_slice(&from_hex(hex)),
                revocation_time: this_update - Duration::hours(1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect();
        rcgen::CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .expect("a CRL")
        .der()
        .to_vec()
    }

    /// A server leaf for `names` signed by `self`.
    pub fn leaf(&self, names: &[&str], validity: Validity) -> Leaf {
        make_leaf(
            names,
            validity,
            Some(self),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate signed by `self`.
    pub fn client(&self, cn: &str) -> Leaf {
        make_leaf(
            &[cn],
            Validity::days(30),
            Some(self),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}

/// A self-signed server leaf.
pub fn self_signed_leaf(names: &[&str], validity: Validity) -> Leaf {
    make_leaf(names, validity, None, ExtendedKeyUsagePurpose::ServerAuth)
}

/// The bytes of a hex string.
pub fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn make_leaf(
    names: &[&str],
    validity: Validity,
    issuer: Option<&Ca>,
    usage: ExtendedKeyUsagePurpose,
) -> Leaf {
    make_leaf_with(names, validity, issuer, usage, |_| {})
}

fn make_leaf_with(
    names: &[&str],
    validity: Validity,
    issuer: Option<&Ca>,
    usage: ExtendedKeyUsagePurpose,
    customize: impl FnOnce(&mut CertificateParams),
) -> Leaf {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = name(names.first().copied().unwrap_or("leaf"));
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.extended_key_usages = vec![usage];
    let (serial, serial_hex) = serial();
    params.serial_number = Some(serial);
    customize(&mut params);
    let key = KeyPair::generate().expect("key");
    let cert = match issuer {
        None => params.self_signed(&key).expect("self-signed"),
        Some(ca) => params.signed_by(&key, &ca.issuer).expect("signed"),
    };
    Leaf {
        cert_pem: cert.pem(),
        cert: cert.der().clone(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
        not_after: validity.not_after.unix_timestamp(),
        not_before: validity.not_before.unix_timestamp(),
        serial_hex,
    }
}
