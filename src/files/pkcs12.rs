//! The certificates of a PKCS#12 (PFX) file, and never its keys.
//!
//! Built on RustCrypto's `pkcs12` (the ASN.1 types and the PKCS#12 key derivation),
//! `cms`, `pkcs5` (PBES2) and the block ciphers, rather than a keystore crate: a
//! keystore decrypts every bag, private keys included, while certwatch must never
//! parse a key. Here the file's integrity is checked with its MAC, then only the
//! certificate bags are decrypted and read; key bags (`keyBag`,
//! `pkcs8ShroudedKeyBag`) are passed over without being decrypted or decoded.
//!
//! Both generations of encryption that `openssl pkcs12` writes are read:
//! - legacy (OpenSSL 1.x, `-legacy`, Java 8, Windows): certificates under
//!   `pbeWithSHAAnd40BitRC2-CBC` (or 128-bit RC2, 2- and 3-key triple DES), a SHA-1
//!   HMAC, keys derived by the PKCS#12 KDF from the password as BMPString;
//! - modern (OpenSSL 3): PBES2 with PBKDF2 (HMAC-SHA-256) and AES-256-CBC, a SHA-256
//!   HMAC (SHA-384 and SHA-512 too).
//!
//! Every iteration count is bounded by [`MAX_ITERATIONS`] before any work, so a
//! hostile file cannot make certwatch derive keys for minutes; such a file, an RC4 or
//! scrypt one, and one whose integrity is a signature rather than a password MAC are
//! `unsupported`. A MAC that does not verify is `bad_password`, and so is a file
//! without a MAC whose certificates do not decrypt.

use der::asn1::{ContextSpecific, OctetString};
use der::{Decode, Encode};
use hmac::{Hmac, Mac};
use pkcs12::cert_type::CertBag;
use pkcs12::kdf::{derive_key, derive_key_utf8, Pkcs12KeyType};
use pkcs12::pbe_params::Pkcs12PbeParams;
use pkcs12::pfx::Pfx;
use pkcs12::safe_bag::SafeContents;

use super::outcome::{FileError, ReadReason};

/// The most key-derivation iterations accepted (MAC, PKCS#12 KDF or PBKDF2). OpenSSL
/// writes 2048, Java 10,000 to 100,000; a million takes about half a second here.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// How deep `safeContentsBag`s may nest.
const MAX_NESTING: usize = 4;

const ID_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const ID_SIGNED_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const X509_CERTIFICATE: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const PBES2: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const SHA1: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

fn parse_error(what: &str, e: impl std::fmt::Display) -> FileError {
    FileError::new(
        ReadReason::ParseError,
        format!("not a complete PKCS#12 file: {what}: {e}"),
    )
}

fn unsupported(what: impl Into<String>) -> FileError {
    FileError::new(ReadReason::Unsupported, what)
}

fn bad_password(what: &str) -> FileError {
    FileError::new(
        ReadReason::BadPassword,
        format!("{what}; check password_file (an empty password is tried when none is set)"),
    )
}

/// Whether `bytes` look like a PFX: a SEQUENCE whose first element is INTEGER 3.
pub fn looks_like(bytes: &[u8]) -> bool {
    let Some(content) = super::der::der_content(bytes) else {
        return false;
    };
    content.starts_with(&[0x02, 0x01, 0x03])
}

/// The DER certificates of the PFX `bytes`, in file order.
pub fn certificates(bytes: &[u8], password: &str) -> Result<Vec<Vec<u8>>, FileError> {
    let pfx = Pfx::from_der(bytes).map_err(|e| parse_error("the outer structure", e))?;
    if pfx.auth_safe.content_type == ID_SIGNED_DATA {
        return Err(unsupported(
            "a PKCS#12 file protected by a signature rather than a password is not supported",
        ));
    }
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(unsupported(format!(
            "a PKCS#12 file whose content is {} is not supported",
            pfx.auth_safe.content_type
        )));
    }
    let auth_safe = octets(&pfx.auth_safe.content).map_err(|e| parse_error("the content", e))?;
    let verified = match &pfx.mac_data {
        Some(mac) => {
            verify_mac(mac, &auth_safe, password)?;
            true
        }
        None => false,
    };
    let contents = Vec::<cms::content_info::ContentInfo>::from_der(&auth_safe)
        .map_err(|e| parse_error("the authenticated safe", e))?;
    let mut certs = Vec::new();
    for info in &contents {
        let bags = if info.content_type == ID_DATA {
            octets(&info.content).map_err(|e| parse_error("a safe", e))?
        } else if info.content_type == ID_ENCRYPTED_DATA {
            decrypt(&info.content, password, verified)?
        } else {
            // envelopedData (public-key privacy mode) and others: nothing readable.
            continue;
        };
        collect(&bags, &mut certs, 0)?;
    }
    Ok(certs)
}

fn octets(any: &der::Any) -> der::Result<Vec<u8>> {
    let der = any.to_der()?;
    Ok(OctetString::from_der(&der)?.as_bytes().to_vec())
}

fn iterations(count: i64, what: &str) -> Result<u32, FileError> {
    match u32::try_from(count) {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(n),
        _ => Err(unsupported(format!(
            "the {what} asks for {count} key-derivation iterations; certwatch derives keys with at most {MAX_ITERATIONS}"
        ))),
    }
}

fn verify_mac(
    mac: &pkcs12::mac_data::MacData,
    data: &[u8],
    password: &str,
) -> Result<(), FileError> {
    let rounds = iterations(i64::from(mac.iterations), "integrity check")? as i32;
    let salt = mac.mac_salt.as_bytes();
    let expected = mac.mac.digest.as_bytes();
    let oid = mac.mac.algorithm.oid;
    let matches = |pass: &[u8]| -> Result<bool, FileError> {
        macro_rules! check {
            ($digest:ty) => {{
                let key = derive_key::<$digest>(
                    pass,
                    salt,
                    Pkcs12KeyType::Mac,
                    rounds,
                    <$digest as sha2::digest::OutputSizeUser>::output_size(),
                );
                let mut hmac = <Hmac<$digest> as Mac>::new_from_slice(&key)
                    .map_err(|e| parse_error("the integrity key", e))?;
                hmac.update(data);
                Ok(hmac.verify_slice(expected).is_ok())
            }};
        }
        if oid == SHA1 {
            check!(sha1::Sha1)
        } else if oid == SHA256 {
            check!(sha2::Sha256)
        } else if oid == SHA384 {
            check!(sha2::Sha384)
        } else if oid == SHA512 {
            check!(sha2::Sha512)
        } else {
            Err(unsupported(format!(
                "the integrity check uses digest {oid}, not SHA-1 or SHA-2"
            )))
        }
    };
    // The password as a NUL-terminated BMPString (RFC 7292 appendix B.1). An empty
    // password is also tried as no bytes at all, as OpenSSL does.
    let mut bmp: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    bmp.extend([0, 0]);
    if matches(&bmp)? || (password.is_empty() && matches(&[])?) {
        Ok(())
    } else {
        Err(bad_password(
            "the integrity check (MAC) fails with this password",
        ))
    }
}

/// The plaintext of an `EncryptedData`.
fn decrypt(content: &der::Any, password: &str, verified: bool) -> Result<Vec<u8>, FileError> {
    let der = content
        .to_der()
        .map_err(|e| parse_error("encrypted data", e))?;
    let data = cms::encrypted_data::EncryptedData::from_der(&der)
        .map_err(|e| parse_error("encrypted data", e))?;
    let info = data.enc_content_info;
    let Some(ciphertext) = info.encrypted_content else {
        return Ok(Vec::new());
    };
    let algorithm = info.content_enc_alg;
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| parse_error("encryption", "no parameters"))?
        .to_der()
        .map_err(|e| parse_error("encryption parameters", e))?;
    // With a verified MAC, a failure to decrypt is a broken file; without one, it is
    // the first sign of a wrong password.
    let wrong = |what: &str| {
        if verified {
            parse_error(what, "the certificates do not decrypt")
        } else {
            bad_password("the certificates do not decrypt with this password")
        }
    };
    if algorithm.oid == PBES2 {
        let params = pkcs5::pbes2::Parameters::from_der(&params)
            .map_err(|e| parse_error("PBES2 parameters", e))?;
        match &params.kdf {
            pkcs5::pbes2::Kdf::Pbkdf2(kdf) => {
                iterations(i64::from(kdf.iteration_count), "PBKDF2 key derivation")?;
            }
            _ => {
                return Err(unsupported(
                    "the certificates are encrypted with a key derived by scrypt; certwatch reads PBKDF2",
                ))
            }
        }
        let mut buffer = ciphertext.as_bytes().to_vec();
        let len = pkcs5::EncryptionScheme::Pbes2(params)
            .decrypt_in_place(password.as_bytes(), &mut buffer)
            .map_err(|_| wrong("PBES2"))?
            .len();
        buffer.truncate(len);
        return Ok(buffer);
    }
    let pbe =
        Pkcs12PbeParams::from_der(&params).map_err(|e| parse_error("PKCS#12 PBE parameters", e))?;
    let rounds = iterations(i64::from(pbe.iterations), "certificate encryption")? as i32;
    let salt = pbe.salt.as_bytes();
    let derive = |kind, len| {
        derive_key_utf8::<sha1::Sha1>(password, salt, kind, rounds, len)
            .map_err(|e| parse_error("the password", e))
    };
    let mut buffer = ciphertext.as_bytes().to_vec();
    let plaintext_len = if algorithm.oid == pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC
        || algorithm.oid == pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC
    {
        let bits = if algorithm.oid == pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC {
            40
        } else {
            128
        };
        let key = derive(Pkcs12KeyType::EncryptionKey, bits / 8)?;
        let iv = derive(Pkcs12KeyType::Iv, 8)?;
        let cipher = rc2::Rc2::new_with_eff_key_len(&key, bits);
        cbc_decrypt(cipher, &iv, &mut buffer)
    } else if algorithm.oid == pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC {
        let key = derive(Pkcs12KeyType::EncryptionKey, 24)?;
        let iv = derive(Pkcs12KeyType::Iv, 8)?;
        use cbc::cipher::KeyInit;
        let cipher = des::TdesEde3::new_from_slice(&key).map_err(|_| wrong("3DES"))?;
        cbc_decrypt(cipher, &iv, &mut buffer)
    } else if algorithm.oid == pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC {
        let key = derive(Pkcs12KeyType::EncryptionKey, 16)?;
        let iv = derive(Pkcs12KeyType::Iv, 8)?;
        use cbc::cipher::KeyInit;
        let cipher = des::TdesEde2::new_from_slice(&key).map_err(|_| wrong("3DES"))?;
        cbc_decrypt(cipher, &iv, &mut buffer)
    } else {
        return Err(unsupported(format!(
            "the certificates are encrypted with {}, which certwatch does not read (it reads PBES2/AES, RC2 and triple DES)",
            algorithm.oid
        )));
    };
    match plaintext_len {
        Some(len) => {
            buffer.truncate(len);
            Ok(buffer)
        }
        None => Err(wrong("the certificate encryption")),
    }
}

/// Decrypts `buffer` in place with `cipher` in CBC mode and PKCS#7 padding; the
/// plaintext's length, or `None` when the padding is wrong.
fn cbc_decrypt<C>(cipher: C, iv: &[u8], buffer: &mut [u8]) -> Option<usize>
where
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher + Clone,
{
    use cbc::cipher::{BlockDecryptMut, InnerIvInit};
    let decryptor = cbc::Decryptor::<C>::inner_iv_slice_init(cipher, iv).ok()?;
    decryptor
        .decrypt_padded_mut::<cbc::cipher::block_padding::Pkcs7>(buffer)
        .ok()
        .map(|plain| plain.len())
}

/// Adds the X.509 certificates of the SafeContents `der` to `certs`; key bags are
/// passed over unread.
fn collect(der: &[u8], certs: &mut Vec<Vec<u8>>, depth: usize) -> Result<(), FileError> {
    let bags = SafeContents::from_der(der).map_err(|e| parse_error("a safe", e))?;
    for bag in bags {
        if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
            let bag: ContextSpecific<CertBag> = ContextSpecific::from_der(&bag.bag_value)
                .map_err(|e| parse_error("a certificate bag", e))?;
            if bag.value.cert_id == X509_CERTIFICATE {
                certs.push(bag.value.cert_value.as_bytes().to_vec());
            }
        } else if bag.bag_id == pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID && depth < MAX_NESTING {
            let inner: ContextSpecific<der::Any> = ContextSpecific::from_der(&bag.bag_value)
                .map_err(|e| parse_error("a nested safe", e))?;
            let inner = inner
                .value
                .to_der()
                .map_err(|e| parse_error("a nested safe", e))?;
            collect(&inner, certs, depth + 1)?;
        }
        // keyBag, pkcs8ShroudedKeyBag, crlBag, secretBag: not ours to open.
    }
    Ok(())
}
