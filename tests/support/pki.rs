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
            issuer: Issuer::new(params, key),
        }
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

fn make_leaf(
    names: &[&str],
    validity: Validity,
    issuer: Option<&Ca>,
    usage: ExtendedKeyUsagePurpose,
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
