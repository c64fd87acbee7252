//! Signatures of OCSP responses and CRLs, checked with the algorithms rustls and webpki
//! use for certificates (`crate::trust::provider`), chosen as webpki chooses them: by
//! the exact AlgorithmIdentifier of the signature and of the signer's key. Pure.

use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Reader, SliceReader, Tag, Tagged};

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signer's SubjectPublicKeyInfo does not parse.
    #[error("the signer's public key does not parse: {0}")]
    Key(String),
    /// No supported algorithm has this signature algorithm and key type.
    #[error("unsupported signature algorithm {signature} for a key of algorithm {key}")]
    Unsupported {
        /// The signature's AlgorithmIdentifier content, hex.
        signature: String,
        /// The key's AlgorithmIdentifier content, hex.
        key: String,
    },
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the signer's key")]
    Invalid,
}

/// The parts of a SubjectPublicKeyInfo a verifier needs.
#[derive(Debug, Clone, Copy)]
pub struct Spki<'a> {
    /// The AlgorithmIdentifier's content (without its SEQUENCE header).
    pub algorithm: &'a [u8],
    /// The subjectPublicKey BIT STRING's bits.
    pub key: &'a [u8],
}

impl<'a> Spki<'a> {
    /// Reads a DER SubjectPublicKeyInfo (tag and length included).
    pub fn parse(der: &'a [u8]) -> Result<Self, SignatureError> {
        let bad = |e: der::Error| SignatureError::Key(e.to_string());
        let outer = AnyRef::from_der(der).map_err(bad)?;
        outer.tag().assert_eq(Tag::Sequence).map_err(bad)?;
        let mut reader = SliceReader::new(outer.value()).map_err(bad)?;
        let algorithm: AnyRef<'a> = reader.decode().map_err(bad)?;
        algorithm.tag().assert_eq(Tag::Sequence).map_err(bad)?;
        let key: BitStringRef<'a> = reader.decode().map_err(bad)?;
        reader.finish(()).map_err(bad)?;
        Ok(Spki {
            algorithm: algorithm.value(),
            key: key
                .as_bytes()
                .ok_or_else(|| SignatureError::Key("the key has unused bits".into()))?,
        })
    }
}

/// Checks that `signature`, made with the algorithm whose AlgorithmIdentifier content is
/// `algorithm`, signs `message` with the key of `spki` (DER).
pub fn verify(
    spki: &[u8],
    algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let spki = Spki::parse(spki)?;
    let provider = crate::trust::provider();
    let mut candidates = provider
        .signature_verification_algorithms
        .all
        .iter()
        .filter(|alg| {
            alg.public_key_alg_id().as_ref() == spki.algorithm
                && alg.signature_alg_id().as_ref() == algorithm
        })
        .peekable();
    if candidates.peek().is_none() {
        return Err(SignatureError::Unsupported {
            signature: super::hex(algorithm),
            key: super::hex(spki.algorithm),
        });
    }
    // Several entries may share identifiers (e.g. one per RSA key size range).
    if candidates.any(|alg| alg.verify_signature(spki.key, message, signature).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// The three parts of a signed structure (`SEQUENCE { tbs, AlgorithmIdentifier,
/// BIT STRING }`: a CRL, a BasicOCSPResponse's first three fields).
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The signed bytes: the first element, tag and length included.
    pub tbs: &'a [u8],
    /// The signature AlgorithmIdentifier's content.
    pub algorithm: &'a [u8],
    /// The signature bits.
    pub signature: &'a [u8],
}

impl<'a> Signed<'a> {
    /// Reads the first three elements of the SEQUENCE in `reader`'s input, leaving the
    /// reader after them.
    pub fn read(reader: &mut SliceReader<'a>) -> der::Result<Self> {
        let tbs = reader.tlv_bytes()?;
        let algorithm: AnyRef<'a> = reader.decode()?;
        algorithm.tag().assert_eq(Tag::Sequence)?;
        let signature: BitStringRef<'a> = reader.decode()?;
        Ok(Signed {
            tbs,
            algorithm: algorithm.value(),
            signature: signature.as_bytes().ok_or_else(|| {
                der::Error::from(der::ErrorKind::Noncanonical {
                    tag: Tag::BitString,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        // A certificate is a signed structure: verify it with its own key.
        let der = cert.der().to_vec();
        let outer = AnyRef::from_der(&der).unwrap();
        let mut reader = SliceReader::new(outer.value()).unwrap();
        let signed = Signed::read(&mut reader).unwrap();
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        verify(&spki, signed.algorithm, signed.tbs, signed.signature).unwrap();
        assert_eq!(
            verify(
                &rcgen::PublicKeyData::subject_public_key_info(&other),
                signed.algorithm,
                signed.tbs,
                signed.signature
            ),
            Err(SignatureError::Invalid)
        );
        let mut changed = signed.tbs.to_vec();
        *changed.last_mut().unwrap() ^= 1;
        assert_eq!(
            verify(&spki, signed.algorithm, &changed, signed.signature),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify(&spki, &[0x06, 0x01, 0x00], signed.tbs, signed.signature),
            Err(SignatureError::Unsupported { .. })
        ));
    }
}
