//! The numbers of the legacy hello: cipher suites (with their IANA names), named
//! groups, signature schemes and alert descriptions.
//!
//! Static data only; `probe::legacy` decides what to offer and how to read the reply.

/// What certificate a server that chooses a suite presents, which decides whether
/// the suite is offered and for which `key_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Auth {
    /// An RSA key: RSA key transport, (EC)DHE signed with RSA.
    Rsa,
    /// An EC key: ECDHE signed with ECDSA, or static ECDH (whatever signed the certificate).
    Ecdsa,
    /// Another key (DSA, static DH, GOST): offered only for `key_type: any`.
    OtherKey,
    /// No certificate at all (anonymous, PSK, SRP, Kerberos, TLS 1.3, signalling values):
    /// never offered, named only.
    NoCertificate,
}

/// A cipher suite: its code point, its IANA name and the certificate it implies.
#[derive(Clone, Copy, Debug)]
pub(super) struct SuiteEntry {
    pub id: u16,
    pub name: &'static str,
    pub auth: Auth,
}

const fn suite(id: u16, name: &'static str, auth: Auth) -> SuiteEntry {
    SuiteEntry { id, name, auth }
}

use Auth::{Ecdsa, NoCertificate, OtherKey, Rsa};

/// How many entries of [`SUITES`] are offered (they come first).
pub(super) const OFFERED_SUITES: usize = 201;

/// Every TLS cipher suite of the IANA registry, plus the 1024-bit export suites
/// (0x0060-0x0066) OpenSSL 0.9 servers chose.
///
/// The first [`OFFERED_SUITES`] carry a certificate and are listed in the order the
/// legacy hello offers them: AEAD with ephemeral keys first, then CBC, the other
/// block ciphers, 3DES, RC4 and DES, export, NULL; then DSA, static ECDH, static DH
/// and GOST. A server that honours the client's order picks the first it supports;
/// the 127 first are the ones sent when the hello must stay under 128 suites. The rest
/// carry no certificate (anonymous, PSK, SRP, Kerberos, TLS 1.3, signalling values),
/// sorted by code point, and are never offered.
pub(super) const SUITES: [SuiteEntry; 359] = [
    suite(0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Ecdsa),
    suite(0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Ecdsa),
    suite(
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Ecdsa,
    ),
    suite(0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Rsa),
    suite(0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Rsa),
    suite(0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Rsa),
    suite(0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", Rsa),
    suite(0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", Rsa),
    suite(0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Rsa),
    suite(0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", Rsa),
    suite(0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", Rsa),
    suite(0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", Ecdsa),
    suite(0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", Ecdsa),
    suite(0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Ecdsa),
    suite(0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Ecdsa),
    suite(0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Rsa),
    suite(0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", Rsa),
    suite(0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Rsa),
    suite(0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Rsa),
    suite(0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", Rsa),
    suite(0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", Rsa),
    suite(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", Rsa),
    suite(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", Rsa),
    suite(0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", Rsa),
    suite(0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256", Rsa),
    suite(0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", Rsa),
    suite(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", Rsa),
    suite(0xc048, "TLS_ECDHE_ECDSA_WITH_ARIA_128_CBC_SHA256", Ecdsa),
    suite(0xc049, "TLS_ECDHE_ECDSA_WITH_ARIA_256_CBC_SHA384", Ecdsa),
    suite(0xc05c, "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256", Ecdsa),
    suite(0xc05d, "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384", Ecdsa),
    suite(
        0xc072,
        "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256",
        Ecdsa,
    ),
    suite(
        0xc073,
        "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
        Ecdsa,
    ),
    suite(
        0xc086,
        "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256",
        Ecdsa,
    ),
    suite(
        0xc087,
        "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384",
        Ecdsa,
    ),
    suite(0xc0ac, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", Ecdsa),
    suite(0xc0ad, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", Ecdsa),
    suite(0xc0ae, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", Ecdsa),
    suite(0xc0af, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", Ecdsa),
    suite(0xc04c, "TLS_ECDHE_RSA_WITH_ARIA_128_CBC_SHA256", Rsa),
    suite(0xc04d, "TLS_ECDHE_RSA_WITH_ARIA_256_CBC_SHA384", Rsa),
    suite(0xc060, "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256", Rsa),
    suite(0xc061, "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384", Rsa),
    suite(0xc076, "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256", Rsa),
    suite(0xc077, "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384", Rsa),
    suite(0xc08a, "TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256", Rsa),
    suite(0xc08b, "TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384", Rsa),
    suite(0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", Rsa),
    suite(0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA", Rsa),
    suite(0x009a, "TLS_DHE_RSA_WITH_SEED_CBC_SHA", Rsa),
    suite(0x00be, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256", Rsa),
    suite(0x00c4, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256", Rsa),
    suite(0xc044, "TLS_DHE_RSA_WITH_ARIA_128_CBC_SHA256", Rsa),
    suite(0xc045, "TLS_DHE_RSA_WITH_ARIA_256_CBC_SHA384", Rsa),
    suite(0xc052, "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256", Rsa),
    suite(0xc053, "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384", Rsa),
    suite(0xc07c, "TLS_DHE_RSA_WITH_CAMELLIA_128_GCM_SHA256", Rsa),
    suite(0xc07d, "TLS_DHE_RSA_WITH_CAMELLIA_256_GCM_SHA384", Rsa),
    suite(0xc09e, "TLS_DHE_RSA_WITH_AES_128_CCM", Rsa),
    suite(0xc09f, "TLS_DHE_RSA_WITH_AES_256_CCM", Rsa),
    suite(0xc0a2, "TLS_DHE_RSA_WITH_AES_128_CCM_8", Rsa),
    suite(0xc0a3, "TLS_DHE_RSA_WITH_AES_256_CCM_8", Rsa),
    suite(0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", Rsa),
    suite(0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", Rsa),
    suite(0x0096, "TLS_RSA_WITH_SEED_CBC_SHA", Rsa),
    suite(0x00ba, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256", Rsa),
    suite(0x00c0, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256", Rsa),
    suite(0xc03c, "TLS_RSA_WITH_ARIA_128_CBC_SHA256", Rsa),
    suite(0xc03d, "TLS_RSA_WITH_ARIA_256_CBC_SHA384", Rsa),
    suite(0xc050, "TLS_RSA_WITH_ARIA_128_GCM_SHA256", Rsa),
    suite(0xc051, "TLS_RSA_WITH_ARIA_256_GCM_SHA384", Rsa),
    suite(0xc07a, "TLS_RSA_WITH_CAMELLIA_128_GCM_SHA256", Rsa),
    suite(0xc07b, "TLS_RSA_WITH_CAMELLIA_256_GCM_SHA384", Rsa),
    suite(0xc09c, "TLS_RSA_WITH_AES_128_CCM", Rsa),
    suite(0xc09d, "TLS_RSA_WITH_AES_256_CCM", Rsa),
    suite(0xc0a0, "TLS_RSA_WITH_AES_128_CCM_8", Rsa),
    suite(0xc0a1, "TLS_RSA_WITH_AES_256_CCM_8", Rsa),
    suite(0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", Ecdsa),
    suite(0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Rsa),
    suite(0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", Rsa),
    suite(0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Rsa),
    suite(0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", Ecdsa),
    suite(0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", Rsa),
    suite(0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", Rsa),
    suite(0x0004, "TLS_RSA_WITH_RC4_128_MD5", Rsa),
    suite(0x0005, "TLS_RSA_WITH_RC4_128_SHA", Rsa),
    suite(0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA", Rsa),
    suite(0x0009, "TLS_RSA_WITH_DES_CBC_SHA", Rsa),
    suite(0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", Rsa),
    suite(0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", Rsa),
    suite(0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", Rsa),
    suite(0x0060, "TLS_RSA_EXPORT1024_WITH_RC4_56_MD5", Rsa),
    suite(0x0061, "TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5", Rsa),
    suite(0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA", Rsa),
    suite(0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", Rsa),
    suite(0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", Rsa),
    suite(0xc006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA", Ecdsa),
    suite(0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA", Rsa),
    suite(0x0001, "TLS_RSA_WITH_NULL_MD5", Rsa),
    suite(0x0002, "TLS_RSA_WITH_NULL_SHA", Rsa),
    suite(0x003b, "TLS_RSA_WITH_NULL_SHA256", Rsa),
    suite(0x00a2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", OtherKey),
    suite(0x00a3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384", OtherKey),
    suite(0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256", OtherKey),
    suite(0x006a, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256", OtherKey),
    suite(0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA", OtherKey),
    suite(0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA", OtherKey),
    suite(0x0044, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA", OtherKey),
    suite(0x0087, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA", OtherKey),
    suite(0x0099, "TLS_DHE_DSS_WITH_SEED_CBC_SHA", OtherKey),
    suite(0x00bd, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256", OtherKey),
    suite(0x00c3, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256", OtherKey),
    suite(0xc042, "TLS_DHE_DSS_WITH_ARIA_128_CBC_SHA256", OtherKey),
    suite(0xc043, "TLS_DHE_DSS_WITH_ARIA_256_CBC_SHA384", OtherKey),
    suite(0xc056, "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256", OtherKey),
    suite(0xc057, "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384", OtherKey),
    suite(0xc080, "TLS_DHE_DSS_WITH_CAMELLIA_128_GCM_SHA256", OtherKey),
    suite(0xc081, "TLS_DHE_DSS_WITH_CAMELLIA_256_GCM_SHA384", OtherKey),
    suite(0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", OtherKey),
    suite(0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA", OtherKey),
    suite(0x0066, "TLS_DHE_DSS_WITH_RC4_128_SHA", OtherKey),
    suite(0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA", OtherKey),
    suite(0x0063, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA", OtherKey),
    suite(0x0065, "TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA", OtherKey),
    suite(0xc02d, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", Ecdsa),
    suite(0xc02e, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", Ecdsa),
    suite(0xc031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", Ecdsa),
    suite(0xc032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", Ecdsa),
    suite(0xc025, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256", Ecdsa),
    suite(0xc026, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384", Ecdsa),
    suite(0xc004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", Ecdsa),
    suite(0xc005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA", Ecdsa),
    suite(0xc029, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256", Ecdsa),
    suite(0xc02a, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384", Ecdsa),
    suite(0xc00e, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", Ecdsa),
    suite(0xc00f, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA", Ecdsa),
    suite(0xc04a, "TLS_ECDH_ECDSA_WITH_ARIA_128_CBC_SHA256", Ecdsa),
    suite(0xc04b, "TLS_ECDH_ECDSA_WITH_ARIA_256_CBC_SHA384", Ecdsa),
    suite(0xc05e, "TLS_ECDH_ECDSA_WITH_ARIA_128_GCM_SHA256", Ecdsa),
    suite(0xc05f, "TLS_ECDH_ECDSA_WITH_ARIA_256_GCM_SHA384", Ecdsa),
    suite(0xc074, "TLS_ECDH_ECDSA_WITH_CAMELLIA_128_CBC_SHA256", Ecdsa),
    suite(0xc075, "TLS_ECDH_ECDSA_WITH_CAMELLIA_256_CBC_SHA384", Ecdsa),
    suite(0xc088, "TLS_ECDH_ECDSA_WITH_CAMELLIA_128_GCM_SHA256", Ecdsa),
    suite(0xc089, "TLS_ECDH_ECDSA_WITH_CAMELLIA_256_GCM_SHA384", Ecdsa),
    suite(0xc04e, "TLS_ECDH_RSA_WITH_ARIA_128_CBC_SHA256", Ecdsa),
    suite(0xc04f, "TLS_ECDH_RSA_WITH_ARIA_256_CBC_SHA384", Ecdsa),
    suite(0xc062, "TLS_ECDH_RSA_WITH_ARIA_128_GCM_SHA256", Ecdsa),
    suite(0xc063, "TLS_ECDH_RSA_WITH_ARIA_256_GCM_SHA384", Ecdsa),
    suite(0xc078, "TLS_ECDH_RSA_WITH_CAMELLIA_128_CBC_SHA256", Ecdsa),
    suite(0xc079, "TLS_ECDH_RSA_WITH_CAMELLIA_256_CBC_SHA384", Ecdsa),
    suite(0xc08c, "TLS_ECDH_RSA_WITH_CAMELLIA_128_GCM_SHA256", Ecdsa),
    suite(0xc08d, "TLS_ECDH_RSA_WITH_CAMELLIA_256_GCM_SHA384", Ecdsa),
    suite(0xc003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA", Ecdsa),
    suite(0xc00d, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA", Ecdsa),
    suite(0xc002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA", Ecdsa),
    suite(0xc00c, "TLS_ECDH_RSA_WITH_RC4_128_SHA", Ecdsa),
    suite(0xc001, "TLS_ECDH_ECDSA_WITH_NULL_SHA", Ecdsa),
    suite(0xc00b, "TLS_ECDH_RSA_WITH_NULL_SHA", Ecdsa),
    suite(0x00a0, "TLS_DH_RSA_WITH_AES_128_GCM_SHA256", OtherKey),
    suite(0x00a1, "TLS_DH_RSA_WITH_AES_256_GCM_SHA384", OtherKey),
    suite(0x00a4, "TLS_DH_DSS_WITH_AES_128_GCM_SHA256", OtherKey),
    suite(0x00a5, "TLS_DH_DSS_WITH_AES_256_GCM_SHA384", OtherKey),
    suite(0x003f, "TLS_DH_RSA_WITH_AES_128_CBC_SHA256", OtherKey),
    suite(0x0069, "TLS_DH_RSA_WITH_AES_256_CBC_SHA256", OtherKey),
    suite(0x0031, "TLS_DH_RSA_WITH_AES_128_CBC_SHA", OtherKey),
    suite(0x0037, "TLS_DH_RSA_WITH_AES_256_CBC_SHA", OtherKey),
    suite(0x003e, "TLS_DH_DSS_WITH_AES_128_CBC_SHA256", OtherKey),
    suite(0x0068, "TLS_DH_DSS_WITH_AES_256_CBC_SHA256", OtherKey),
    suite(0x0030, "TLS_DH_DSS_WITH_AES_128_CBC_SHA", OtherKey),
    suite(0x0036, "TLS_DH_DSS_WITH_AES_256_CBC_SHA", OtherKey),
    suite(0x0043, "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA", OtherKey),
    suite(0x0086, "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA", OtherKey),
    suite(0x0098, "TLS_DH_RSA_WITH_SEED_CBC_SHA", OtherKey),
    suite(0x00bc, "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA256", OtherKey),
    suite(0x00c2, "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA256", OtherKey),
    suite(0xc040, "TLS_DH_RSA_WITH_ARIA_128_CBC_SHA256", OtherKey),
    suite(0xc041, "TLS_DH_RSA_WITH_ARIA_256_CBC_SHA384", OtherKey),
    suite(0xc054, "TLS_DH_RSA_WITH_ARIA_128_GCM_SHA256", OtherKey),
    suite(0xc055, "TLS_DH_RSA_WITH_ARIA_256_GCM_SHA384", OtherKey),
    suite(0xc07e, "TLS_DH_RSA_WITH_CAMELLIA_128_GCM_SHA256", OtherKey),
    suite(0xc07f, "TLS_DH_RSA_WITH_CAMELLIA_256_GCM_SHA384", OtherKey),
    suite(0x0042, "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA", OtherKey),
    suite(0x0085, "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA", OtherKey),
    suite(0x0097, "TLS_DH_DSS_WITH_SEED_CBC_SHA", OtherKey),
    suite(0x00bb, "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA256", OtherKey),
    suite(0x00c1, "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA256", OtherKey),
    suite(0xc03e, "TLS_DH_DSS_WITH_ARIA_128_CBC_SHA256", OtherKey),
    suite(0xc03f, "TLS_DH_DSS_WITH_ARIA_256_CBC_SHA384", OtherKey),
    suite(0xc058, "TLS_DH_DSS_WITH_ARIA_128_GCM_SHA256", OtherKey),
    suite(0xc059, "TLS_DH_DSS_WITH_ARIA_256_GCM_SHA384", OtherKey),
    suite(0xc082, "TLS_DH_DSS_WITH_CAMELLIA_128_GCM_SHA256", OtherKey),
    suite(0xc083, "TLS_DH_DSS_WITH_CAMELLIA_256_GCM_SHA384", OtherKey),
    suite(0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA", OtherKey),
    suite(0x000d, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA", OtherKey),
    suite(0x000f, "TLS_DH_RSA_WITH_DES_CBC_SHA", OtherKey),
    suite(0x000c, "TLS_DH_DSS_WITH_DES_CBC_SHA", OtherKey),
    suite(0x000e, "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA", OtherKey),
    suite(0x000b, "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA", OtherKey),
    suite(
        0xc100,
        "TLS_GOSTR341112_256_WITH_KUZNYECHIK_CTR_OMAC",
        OtherKey,
    ),
    suite(0xc101, "TLS_GOSTR341112_256_WITH_MAGMA_CTR_OMAC", OtherKey),
    suite(0xc102, "TLS_GOSTR341112_256_WITH_28147_CNT_IMIT", OtherKey),
    suite(0x0000, "TLS_NULL_WITH_NULL_NULL", NoCertificate),
    suite(0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", NoCertificate),
    suite(0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", NoCertificate),
    suite(
        0x0019,
        "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA",
        NoCertificate,
    ),
    suite(0x001a, "TLS_DH_anon_WITH_DES_CBC_SHA", NoCertificate),
    suite(0x001b, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0x001e, "TLS_KRB5_WITH_DES_CBC_SHA", NoCertificate),
    suite(0x001f, "TLS_KRB5_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0x0020, "TLS_KRB5_WITH_RC4_128_SHA", NoCertificate),
    suite(0x0021, "TLS_KRB5_WITH_IDEA_CBC_SHA", NoCertificate),
    suite(0x0022, "TLS_KRB5_WITH_DES_CBC_MD5", NoCertificate),
    suite(0x0023, "TLS_KRB5_WITH_3DES_EDE_CBC_MD5", NoCertificate),
    suite(0x0024, "TLS_KRB5_WITH_RC4_128_MD5", NoCertificate),
    suite(0x0025, "TLS_KRB5_WITH_IDEA_CBC_MD5", NoCertificate),
    suite(0x0026, "TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA", NoCertificate),
    suite(0x0027, "TLS_KRB5_EXPORT_WITH_RC2_CBC_40_SHA", NoCertificate),
    suite(0x0028, "TLS_KRB5_EXPORT_WITH_RC4_40_SHA", NoCertificate),
    suite(0x0029, "TLS_KRB5_EXPORT_WITH_DES_CBC_40_MD5", NoCertificate),
    suite(0x002a, "TLS_KRB5_EXPORT_WITH_RC2_CBC_40_MD5", NoCertificate),
    suite(0x002b, "TLS_KRB5_EXPORT_WITH_RC4_40_MD5", NoCertificate),
    suite(0x002c, "TLS_PSK_WITH_NULL_SHA", NoCertificate),
    suite(0x002d, "TLS_DHE_PSK_WITH_NULL_SHA", NoCertificate),
    suite(0x002e, "TLS_RSA_PSK_WITH_NULL_SHA", NoCertificate),
    suite(0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(0x003a, "TLS_DH_anon_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(
        0x0046,
        "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA",
        NoCertificate,
    ),
    suite(0x006c, "TLS_DH_anon_WITH_AES_128_CBC_SHA256", NoCertificate),
    suite(0x006d, "TLS_DH_anon_WITH_AES_256_CBC_SHA256", NoCertificate),
    suite(
        0x0089,
        "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA",
        NoCertificate,
    ),
    suite(0x008a, "TLS_PSK_WITH_RC4_128_SHA", NoCertificate),
    suite(0x008b, "TLS_PSK_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0x008c, "TLS_PSK_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(0x008d, "TLS_PSK_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(0x008e, "TLS_DHE_PSK_WITH_RC4_128_SHA", NoCertificate),
    suite(0x008f, "TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0x0090, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(0x0091, "TLS_DHE_PSK_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(0x0092, "TLS_RSA_PSK_WITH_RC4_128_SHA", NoCertificate),
    suite(0x0093, "TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0x0094, "TLS_RSA_PSK_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(0x0095, "TLS_RSA_PSK_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(0x009b, "TLS_DH_anon_WITH_SEED_CBC_SHA", NoCertificate),
    suite(0x00a6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256", NoCertificate),
    suite(0x00a7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384", NoCertificate),
    suite(0x00a8, "TLS_PSK_WITH_AES_128_GCM_SHA256", NoCertificate),
    suite(0x00a9, "TLS_PSK_WITH_AES_256_GCM_SHA384", NoCertificate),
    suite(0x00aa, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", NoCertificate),
    suite(0x00ab, "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384", NoCertificate),
    suite(0x00ac, "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256", NoCertificate),
    suite(0x00ad, "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384", NoCertificate),
    suite(0x00ae, "TLS_PSK_WITH_AES_128_CBC_SHA256", NoCertificate),
    suite(0x00af, "TLS_PSK_WITH_AES_256_CBC_SHA384", NoCertificate),
    suite(0x00b0, "TLS_PSK_WITH_NULL_SHA256", NoCertificate),
    suite(0x00b1, "TLS_PSK_WITH_NULL_SHA384", NoCertificate),
    suite(0x00b2, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256", NoCertificate),
    suite(0x00b3, "TLS_DHE_PSK_WITH_AES_256_CBC_SHA384", NoCertificate),
    suite(0x00b4, "TLS_DHE_PSK_WITH_NULL_SHA256", NoCertificate),
    suite(0x00b5, "TLS_DHE_PSK_WITH_NULL_SHA384", NoCertificate),
    suite(0x00b6, "TLS_RSA_PSK_WITH_AES_128_CBC_SHA256", NoCertificate),
    suite(0x00b7, "TLS_RSA_PSK_WITH_AES_256_CBC_SHA384", NoCertificate),
    suite(0x00b8, "TLS_RSA_PSK_WITH_NULL_SHA256", NoCertificate),
    suite(0x00b9, "TLS_RSA_PSK_WITH_NULL_SHA384", NoCertificate),
    suite(
        0x00bf,
        "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0x00c5,
        "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256",
        NoCertificate,
    ),
    suite(0x00c6, "TLS_SM4_GCM_SM3", NoCertificate),
    suite(0x00c7, "TLS_SM4_CCM_SM3", NoCertificate),
    suite(0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV", NoCertificate),
    suite(0x1301, "TLS_AES_128_GCM_SHA256", NoCertificate),
    suite(0x1302, "TLS_AES_256_GCM_SHA384", NoCertificate),
    suite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", NoCertificate),
    suite(0x1304, "TLS_AES_128_CCM_SHA256", NoCertificate),
    suite(0x1305, "TLS_AES_128_CCM_8_SHA256", NoCertificate),
    suite(0x1306, "TLS_AEGIS_256_SHA512", NoCertificate),
    suite(0x1307, "TLS_AEGIS_128L_SHA256", NoCertificate),
    suite(0x5600, "TLS_FALLBACK_SCSV", NoCertificate),
    suite(0xc015, "TLS_ECDH_anon_WITH_NULL_SHA", NoCertificate),
    suite(0xc016, "TLS_ECDH_anon_WITH_RC4_128_SHA", NoCertificate),
    suite(0xc017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(0xc019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(0xc01a, "TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(
        0xc01b,
        "TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA",
        NoCertificate,
    ),
    suite(
        0xc01c,
        "TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA",
        NoCertificate,
    ),
    suite(0xc01d, "TLS_SRP_SHA_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(
        0xc01e,
        "TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA",
        NoCertificate,
    ),
    suite(
        0xc01f,
        "TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA",
        NoCertificate,
    ),
    suite(0xc020, "TLS_SRP_SHA_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(
        0xc021,
        "TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA",
        NoCertificate,
    ),
    suite(
        0xc022,
        "TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA",
        NoCertificate,
    ),
    suite(0xc033, "TLS_ECDHE_PSK_WITH_RC4_128_SHA", NoCertificate),
    suite(0xc034, "TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA", NoCertificate),
    suite(0xc035, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA", NoCertificate),
    suite(0xc036, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA", NoCertificate),
    suite(
        0xc037,
        "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc038,
        "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(0xc039, "TLS_ECDHE_PSK_WITH_NULL_SHA", NoCertificate),
    suite(0xc03a, "TLS_ECDHE_PSK_WITH_NULL_SHA256", NoCertificate),
    suite(0xc03b, "TLS_ECDHE_PSK_WITH_NULL_SHA384", NoCertificate),
    suite(
        0xc046,
        "TLS_DH_anon_WITH_ARIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc047,
        "TLS_DH_anon_WITH_ARIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(
        0xc05a,
        "TLS_DH_anon_WITH_ARIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc05b,
        "TLS_DH_anon_WITH_ARIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(0xc064, "TLS_PSK_WITH_ARIA_128_CBC_SHA256", NoCertificate),
    suite(0xc065, "TLS_PSK_WITH_ARIA_256_CBC_SHA384", NoCertificate),
    suite(
        0xc066,
        "TLS_DHE_PSK_WITH_ARIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc067,
        "TLS_DHE_PSK_WITH_ARIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(
        0xc068,
        "TLS_RSA_PSK_WITH_ARIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc069,
        "TLS_RSA_PSK_WITH_ARIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(0xc06a, "TLS_PSK_WITH_ARIA_128_GCM_SHA256", NoCertificate),
    suite(0xc06b, "TLS_PSK_WITH_ARIA_256_GCM_SHA384", NoCertificate),
    suite(
        0xc06c,
        "TLS_DHE_PSK_WITH_ARIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc06d,
        "TLS_DHE_PSK_WITH_ARIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xc06e,
        "TLS_RSA_PSK_WITH_ARIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc06f,
        "TLS_RSA_PSK_WITH_ARIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xc070,
        "TLS_ECDHE_PSK_WITH_ARIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc071,
        "TLS_ECDHE_PSK_WITH_ARIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(
        0xc084,
        "TLS_DH_anon_WITH_CAMELLIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc085,
        "TLS_DH_anon_WITH_CAMELLIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xc08e,
        "TLS_PSK_WITH_CAMELLIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc08f,
        "TLS_PSK_WITH_CAMELLIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xc090,
        "TLS_DHE_PSK_WITH_CAMELLIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc091,
        "TLS_DHE_PSK_WITH_CAMELLIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xc092,
        "TLS_RSA_PSK_WITH_CAMELLIA_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xc093,
        "TLS_RSA_PSK_WITH_CAMELLIA_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xc094,
        "TLS_PSK_WITH_CAMELLIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc095,
        "TLS_PSK_WITH_CAMELLIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(
        0xc096,
        "TLS_DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc097,
        "TLS_DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(
        0xc098,
        "TLS_RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc099,
        "TLS_RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(
        0xc09a,
        "TLS_ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256",
        NoCertificate,
    ),
    suite(
        0xc09b,
        "TLS_ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",
        NoCertificate,
    ),
    suite(0xc0a4, "TLS_PSK_WITH_AES_128_CCM", NoCertificate),
    suite(0xc0a5, "TLS_PSK_WITH_AES_256_CCM", NoCertificate),
    suite(0xc0a6, "TLS_DHE_PSK_WITH_AES_128_CCM", NoCertificate),
    suite(0xc0a7, "TLS_DHE_PSK_WITH_AES_256_CCM", NoCertificate),
    suite(0xc0a8, "TLS_PSK_WITH_AES_128_CCM_8", NoCertificate),
    suite(0xc0a9, "TLS_PSK_WITH_AES_256_CCM_8", NoCertificate),
    suite(0xc0aa, "TLS_PSK_DHE_WITH_AES_128_CCM_8", NoCertificate),
    suite(0xc0ab, "TLS_PSK_DHE_WITH_AES_256_CCM_8", NoCertificate),
    suite(0xc0b0, "TLS_ECCPWD_WITH_AES_128_GCM_SHA256", NoCertificate),
    suite(0xc0b1, "TLS_ECCPWD_WITH_AES_256_GCM_SHA384", NoCertificate),
    suite(0xc0b2, "TLS_ECCPWD_WITH_AES_128_CCM_SHA256", NoCertificate),
    suite(0xc0b3, "TLS_ECCPWD_WITH_AES_256_CCM_SHA384", NoCertificate),
    suite(0xc0b4, "TLS_SHA256_SHA256", NoCertificate),
    suite(0xc0b5, "TLS_SHA384_SHA384", NoCertificate),
    suite(
        0xc103,
        "TLS_GOSTR341112_256_WITH_KUZNYECHIK_MGM_L",
        NoCertificate,
    ),
    suite(
        0xc104,
        "TLS_GOSTR341112_256_WITH_MAGMA_MGM_L",
        NoCertificate,
    ),
    suite(
        0xc105,
        "TLS_GOSTR341112_256_WITH_KUZNYECHIK_MGM_S",
        NoCertificate,
    ),
    suite(
        0xc106,
        "TLS_GOSTR341112_256_WITH_MAGMA_MGM_S",
        NoCertificate,
    ),
    suite(
        0xccab,
        "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
        NoCertificate,
    ),
    suite(
        0xccac,
        "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        NoCertificate,
    ),
    suite(
        0xccad,
        "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        NoCertificate,
    ),
    suite(
        0xccae,
        "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256",
        NoCertificate,
    ),
    suite(
        0xd001,
        "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256",
        NoCertificate,
    ),
    suite(
        0xd002,
        "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384",
        NoCertificate,
    ),
    suite(
        0xd003,
        "TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256",
        NoCertificate,
    ),
    suite(
        0xd005,
        "TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256",
        NoCertificate,
    ),
];

/// Every named group a TLS 1.2 server may use for (EC)DHE, in the order offered:
/// the common curves first, then brainpool, the older SEC curves (binary ones
/// included), and the RFC 7919 finite-field groups.
pub(super) const NAMED_GROUPS: [u16; 35] = [
    0x001d, // x25519
    0x0017, // secp256r1
    0x0018, // secp384r1
    0x0019, // secp521r1
    0x001e, // x448
    0x001a, // brainpoolP256r1
    0x001b, // brainpoolP384r1
    0x001c, // brainpoolP512r1
    0x0016, // secp256k1
    0x0015, // secp224r1
    0x0014, // secp224k1
    0x0013, // secp192r1
    0x0012, // secp192k1
    0x0011, // secp160r2
    0x0010, // secp160r1
    0x000f, // secp160k1
    0x000e, // sect571r1
    0x000d, // sect571k1
    0x000c, // sect409r1
    0x000b, // sect409k1
    0x000a, // sect283r1
    0x0009, // sect283k1
    0x0008, // sect239k1
    0x0007, // sect233r1
    0x0006, // sect233k1
    0x0005, // sect193r2
    0x0004, // sect193r1
    0x0003, // sect163r2
    0x0002, // sect163r1
    0x0001, // sect163k1
    0x0100, // ffdhe2048
    0x0101, // ffdhe3072
    0x0102, // ffdhe4096
    0x0103, // ffdhe6144
    0x0104, // ffdhe8192
];

/// The key type a signature scheme signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SchemeKey {
    /// RSA (PKCS#1 v1.5 and PSS, for rsaEncryption and RSASSA-PSS keys).
    Rsa,
    /// ECDSA and EdDSA.
    Ecdsa,
    /// DSA.
    Dsa,
}

/// Every signature scheme a TLS 1.2 server may sign with, in the order offered:
/// the TLS 1.3 schemes, then the TLS 1.2 hash/signature pairs down to SHA-1 and MD5.
pub(super) const SIGNATURE_SCHEMES: [(u16, SchemeKey); 29] = [
    (0x0403, SchemeKey::Ecdsa), // ecdsa_secp256r1_sha256
    (0x0503, SchemeKey::Ecdsa), // ecdsa_secp384r1_sha384
    (0x0603, SchemeKey::Ecdsa), // ecdsa_secp521r1_sha512
    (0x0807, SchemeKey::Ecdsa), // ed25519
    (0x0808, SchemeKey::Ecdsa), // ed448
    (0x081a, SchemeKey::Ecdsa), // ecdsa_brainpoolP256r1tls13_sha256
    (0x081b, SchemeKey::Ecdsa), // ecdsa_brainpoolP384r1tls13_sha384
    (0x081c, SchemeKey::Ecdsa), // ecdsa_brainpoolP512r1tls13_sha512
    (0x0804, SchemeKey::Rsa),   // rsa_pss_rsae_sha256
    (0x0805, SchemeKey::Rsa),   // rsa_pss_rsae_sha384
    (0x0806, SchemeKey::Rsa),   // rsa_pss_rsae_sha512
    (0x0809, SchemeKey::Rsa),   // rsa_pss_pss_sha256
    (0x080a, SchemeKey::Rsa),   // rsa_pss_pss_sha384
    (0x080b, SchemeKey::Rsa),   // rsa_pss_pss_sha512
    (0x0401, SchemeKey::Rsa),   // rsa_pkcs1_sha256
    (0x0501, SchemeKey::Rsa),   // rsa_pkcs1_sha384
    (0x0601, SchemeKey::Rsa),   // rsa_pkcs1_sha512
    (0x0402, SchemeKey::Dsa),   // dsa_sha256
    (0x0502, SchemeKey::Dsa),   // dsa_sha384
    (0x0602, SchemeKey::Dsa),   // dsa_sha512
    (0x0303, SchemeKey::Ecdsa), // ecdsa_sha224
    (0x0301, SchemeKey::Rsa),   // rsa_sha224
    (0x0302, SchemeKey::Dsa),   // dsa_sha224
    (0x0203, SchemeKey::Ecdsa), // ecdsa_sha1
    (0x0201, SchemeKey::Rsa),   // rsa_pkcs1_sha1
    (0x0202, SchemeKey::Dsa),   // dsa_sha1
    (0x0103, SchemeKey::Ecdsa), // ecdsa_md5
    (0x0101, SchemeKey::Rsa),   // rsa_md5
    (0x0102, SchemeKey::Dsa),   // dsa_md5
];

/// The name of a TLS alert description, as the registry spells it.
pub(super) const fn alert_name(description: u8) -> Option<&'static str> {
    Some(match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => return None,
    })
}
