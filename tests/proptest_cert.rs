//! Property tests of the certificate path: DER → `ParsedCert` → `verify_chain` →
//! `/metrics` (issue 7, item 6).
//!
//! The inputs are real certificates made by rcgen (a root, an intermediate and a leaf;
//! self-signed Ed25519 and P-384 leaves; a leaf whose names need escaping and whose SAN
//! list runs past `MAX_SANS`), mutated byte by byte: flipped, cut, spliced with pieces
//! of each other, their length octets bent. Whatever the bytes, parsing gives a value,
//! verification gives a verdict, only the CA's own leaf verifies, and the rendered
//! series parse as exposition text with the certificate's names intact. On the true
//! chain, the verdict follows the clock it is given.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use certwatch::cert::{ParsedCert, MAX_SANS};
use certwatch::config::TargetSpec;
use certwatch::metrics::collector::{render_outcome, MAX_LABEL_VALUE};
use certwatch::metrics::names::{CERT_INFO, CERT_NOT_AFTER, LABEL_DEPTH, LABEL_TARGET};
use certwatch::probe::outcome::{
    AddressOutcome, PhaseTimes, ProbeOutcome, TlsParams, Verdict, VerifyReason,
};
use certwatch::probe::verify::{verify_chain, TrustStore};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config as Cases;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use support::pki::{self_signed_leaf, Ca, Validity};
use support::{Harness, Scrape};

/// `n` cases, or `PROPTEST_CASES` when set (for a longer run by hand).
fn cases(n: u32) -> Cases {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    Cases {
        failure_persistence: None,
        ..Cases::with_cases(n)
    }
}

/// A common name that needs every escape of the exposition format, and more.
const AWKWARD_CN: &str = "a \"quoted\" \\ back\nslash\r, {brace} é ☃ 𝄞";

/// The certificates every case starts from, made once.
struct Certs {
    root: Vec<u8>,
    chain: Vec<Vec<u8>>,
    /// notBefore and notAfter of the leaf.
    leaf_validity: (i64, i64),
    others: Vec<Vec<u8>>,
    trust: TrustStore,
    spec: TargetSpec,
    _harness: Harness,
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let root = Ca::root("proptest root");
        let inter = root.intermediate("proptest intermediate", Validity::days(365));
        let leaf = inter.leaf(
            &["localhost", "www.example.org", "192.0.2.7"],
            Validity::days(60),
        );
        let chain = leaf.chain(&[&inter]).iter().map(|c| c.to_vec()).collect();
        let mut others = vec![self_signed_leaf(&["self.example"], Validity::expired())
            .cert
            .to_vec()];
        for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P384_SHA384] {
            let key = KeyPair::generate_for(alg).expect("key");
            let params = CertificateParams::new(vec!["alg.example".to_owned()]).expect("params");
            others.push(params.self_signed(&key).expect("cert").der().to_vec());
        }
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, AWKWARD_CN);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "o=\"x\"");
        // The SAN list past MAX_SANS: four other names first, then DNS names.
        params.subject_alt_names = [
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            SanType::IpAddress("2001:db8::1".parse().expect("ip")),
            SanType::Rfc822Name("a@example.org".try_into().expect("email")),
            SanType::URI("https://example.org/".try_into().expect("uri")),
        ]
        .into_iter()
        .chain(
            (0..MAX_SANS + 20)
                .map(|i| SanType::DnsName(format!("n{i}.example.org").try_into().expect("name"))),
        )
        .collect();
        let key = KeyPair::generate().expect("key");
        others.push(params.self_signed(&key).expect("cert").der().to_vec());

        let harness = Harness::new();
        let config = harness
            .config("targets:\n  - address: \"127.0.0.1:443\"\n    name: t\n    trust: none\n");
        Certs {
            trust: TrustStore::default()
                .with_extra(std::slice::from_ref(&root.cert))
                .expect("an anchor"),
            root: root.cert.to_vec(),
            chain,
            leaf_validity: (leaf.not_before, leaf.not_after),
            others,
            spec: (*config.targets[0]).clone(),
            _harness: harness,
        }
    })
}

// ---- Mutations -------------------------------------------------------------------------

/// One edit of a DER certificate; indexes apply to whatever bytes the earlier edits left.
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    /// Sets a byte to a value that means something in BER lengths or tags.
    Bend(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, Index),
    Truncate(Index),
    /// Copies a run of bytes of another certificate in.
    Splice(Index, Index, Index, Index),
    /// Repeats a run of bytes (a TLV, often) in place.
    Repeat(Index, Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let bent = select(vec![
        0x00u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1e, 0x30, 0x31,
        0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0xa0, 0xa3, 0xff,
    ]);
    prop_oneof![
        3 => (any::<Index>(), 1u8..).prop_map(|(at, x)| Edit::Flip(at, x)),
        3 => (any::<Index>(), bent).prop_map(|(at, v)| Edit::Bend(at, v)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Edit::Insert(at, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(at, from, start, len)| Edit::Splice(at, from, start, len)),
        1 => (any::<Index>(), any::<Index>(), 2usize..40).prop_map(|(at, len, n)| Edit::Repeat(at, len, n)),
    ]
}

fn apply(der: &mut Vec<u8>, edit: &Edit, donors: &[&[u8]]) {
    let n = der.len();
    match edit {
        _ if n == 0 => {}
        Edit::Flip(at, x) => der[at.index(n)] ^= x,
        Edit::Bend(at, v) => der[at.index(n)] = *v,
        Edit::Insert(at, bytes) => {
            let at = at.index(n + 1);
            der.splice(at..at, bytes.iter().copied());
        }
        Edit::Delete(at, len) => {
            let at = at.index(n);
            let end = at + 1 + len.index((n - at).min(16));
            der.drain(at..end.min(n));
        }
        Edit::Truncate(at) => der.truncate(at.index(n)),
        Edit::Splice(at, from, start, len) => {
            let donor = donors[from.index(donors.len())];
            let start = start.index(donor.len());
            let end = start + 1 + len.index((donor.len() - start).min(64));
            let at = at.index(n + 1);
            der.splice(at..at, donor[start..end.min(donor.len())].iter().copied());
        }
        Edit::Repeat(at, len, count) => {
            let at = at.index(n);
            let end = (at + 1 + len.index(16)).min(n);
            let run = der[at..end].repeat(*count);
            der.splice(at..end, run);
        }
    }
}

/// A chain as presented: the true leaf and intermediate (or another certificate as
/// leaf), with edits applied to one of them.
fn mutated_chain() -> impl Strategy<Value = (Vec<Vec<u8>>, usize)> {
    (
        any::<Index>(),
        any::<Index>(),
        prop::collection::vec(edit(), 0..5),
    )
        .prop_map(|(base, target, edits)| {
            let c = certs();
            let mut chain = match base.index(c.others.len() + 2) {
                0 | 1 => c.chain.clone(),
                i => vec![c.others[i - 2].clone(), c.chain[1].clone()],
            };
            let mut donors: Vec<&[u8]> = c.others.iter().map(Vec::as_slice).collect();
            donors.extend(c.chain.iter().map(Vec::as_slice));
            donors.push(&c.root);
            let which = target.index(chain.len());
            for e in &edits {
                apply(&mut chain[which], e, &donors);
            }
            (chain, edits.len())
        })
}

/// One certificate of a chain, parsed as the probe holds it.
fn parse(der: &[u8]) -> Arc<ParsedCert> {
    Arc::new(ParsedCert::from_der(der))
}

fn now() -> UnixTime {
    UnixTime::now()
}

fn render(chain: Vec<Arc<ParsedCert>>, verdict: Verdict) -> Scrape {
    let outcome = ProbeOutcome {
        addresses: vec![AddressOutcome {
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            finished_at: SystemTime::now(),
            duration: Duration::from_millis(12),
            phases: PhaseTimes::default(),
            handshake: Ok(TlsParams {
                version: "TLSv1.3",
                cipher: "TLS13_AES_128_GCM_SHA256",
            }),
            chain,
            verdict: Some(verdict),
            legacy: None,
            chain_cut: None,
            chain_issues: Vec::new(),
            weaknesses: Vec::new(),
            revocation: None,
            host: None,
        }],
        cut: Default::default(),
    };
    Scrape::parse(&render_outcome(&certs().spec, &outcome, SystemTime::now()))
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_LABEL_VALUE).collect()
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any bytes give a value with their fingerprint; parsed facts are well-formed.
    #[test]
    fn any_bytes_parse_to_a_value(
        der in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            mutated_chain().prop_map(|(chain, _)| chain[0].clone()),
        ],
    ) {
        let parsed = ParsedCert::from_der(&der);
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        prop_assert_eq!(&parsed.fingerprint_sha256, &hex);
        match &parsed.info {
            Ok(info) => {
                prop_assert!(info.dns_names.len() <= MAX_SANS);
                prop_assert!(info.ip_addresses.iter().all(|ip| ip.parse::<IpAddr>().is_ok()));
                // Whole bytes of magnitude, minimal, `-` before a negative one; empty
                // only for an INTEGER without content octets.
                let digits = info.serial_hex.strip_prefix('-').unwrap_or(&info.serial_hex);
                prop_assert!(digits.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                prop_assert!(digits.len() % 2 == 0);
                prop_assert!(digits.len() == 2 || !digits.starts_with("00"));
                prop_assert!(digits != "00" || !info.serial_hex.starts_with('-'));
                prop_assert!(!digits.is_empty() || info.serial_hex.is_empty());
                prop_assert_eq!(parsed.not_after(), Some(info.not_after));
                // Every date read is one RFC 3339 can write.
                prop_assert!(!certwatch::cert::rfc3339(info.not_before).starts_with("Unix"));
                prop_assert!(!certwatch::cert::rfc3339(info.not_after).starts_with("Unix"));
            }
            Err(message) => prop_assert!(message.to_string().starts_with("certificate does not parse")),
        }
    }

    /// Mutated chains get a verdict; only the leaf the CA signed verifies; the series
    /// parse as exposition text and carry each certificate's names.
    #[test]
    fn mutated_chains_get_a_verdict_and_render(
        (chain, edits) in mutated_chain(),
        name in select(vec!["localhost", "www.example.org", "elsewhere.example", "192.0.2.7"]),
    ) {
        let c = certs();
        let ders: Vec<CertificateDer<'_>> = chain.iter().map(|d| CertificateDer::from(d.as_slice())).collect();
        let parsed: Vec<Arc<ParsedCert>> = chain.iter().map(|d| parse(d)).collect();
        let server_name = ServerName::try_from(name).expect("a name");
        let verdict = verify_chain(&ders, &parsed, &server_name, &c.trust, now());
        match &verdict {
            Verdict::Verified { path_not_after, .. } => {
                prop_assert_eq!(&chain[0], &c.chain[0], "a leaf the CA did not sign verified");
                prop_assert_eq!(*path_not_after, c.leaf_validity.1);
                prop_assert!(name != "elsewhere.example");
            }
            Verdict::Failed { reason, detail } => {
                prop_assert!(!detail.is_empty());
                prop_assert!(!reason.as_label().is_empty());
                if edits == 0 && chain == c.chain {
                    prop_assert_eq!(*reason, VerifyReason::NameMismatch);
                }
            }
        }
        let scrape = render(parsed.clone(), verdict);
        let infos = scrape.find(CERT_INFO, &[(LABEL_TARGET, "t")]);
        prop_assert_eq!(infos.len(), chain.len());
        for (depth, cert) in parsed.iter().enumerate() {
            let depth = depth.to_string();
            let labels = [(LABEL_TARGET, "t"), (LABEL_DEPTH, depth.as_str())];
            let info = scrape.label(CERT_INFO, &labels, "fingerprint_sha256");
            prop_assert_eq!(&info, &cert.fingerprint_sha256);
            let cn = scrape.label(CERT_INFO, &labels, "subject_cn");
            let want = cert.info.as_ref().ok().and_then(|i| i.subject_cn.as_deref()).unwrap_or("");
            prop_assert_eq!(cn, bounded(want));
            prop_assert_eq!(scrape.has(CERT_NOT_AFTER, &labels), cert.info.is_ok());
        }
    }

    /// On the true chain the verdict follows the clock given: not yet valid before the
    /// leaf's notBefore, verified in its window (until the leaf's notAfter, the earliest
    /// of the path), expired after.
    #[test]
    fn the_verdict_follows_the_clock(days in -400i64..4000) {
        let c = certs();
        let ders: Vec<CertificateDer<'_>> = c.chain.iter().map(|d| CertificateDer::from(d.as_slice())).collect();
        let parsed: Vec<Arc<ParsedCert>> = c.chain.iter().map(|d| parse(d)).collect();
        // Half a day off the whole days keeps clear of the validity boundaries.
        let (not_before, not_after) = c.leaf_validity;
        let at = not_before + 86_400 + days * 86_400 + 43_200;
        let clock = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));
        let server_name = ServerName::try_from("www.example.org").expect("a name");
        let verdict = verify_chain(&ders, &parsed, &server_name, &c.trust, clock);
        let reason = match &verdict {
            Verdict::Verified { path_not_after, .. } => {
                prop_assert_eq!(*path_not_after, not_after);
                None
            }
            Verdict::Failed { reason, .. } => Some(*reason),
        };
        let want = if at < not_before {
            Some(VerifyReason::NotYetValid)
        } else if at > not_after {
            Some(VerifyReason::Expired)
        } else {
            None
        };
        prop_assert_eq!(reason, want, "{:?}", verdict);
    }
}

/// The encoded time for these components: a UTCTime (two-digit year) or a
/// GeneralizedTime, with `Z` or, for a UTCTime, a `±HHMM` offset.
fn time_text(
    utc: bool,
    (y, mo, d, h, mi, s): (u16, u8, u8, u8, u8, u8),
    offset: Option<(char, u8, u8)>,
) -> String {
    let year = if utc {
        format!("{:02}", y % 100)
    } else {
        format!("{y:04}")
    };
    let zone = match offset {
        None => "Z".to_owned(),
        Some((sign, oh, om)) => format!("{sign}{oh:02}{om:02}"),
    };
    format!("{year}{mo:02}{d:02}{h:02}{mi:02}{s:02}{zone}")
}

fn x509_parser_time(tag: u8, text: &str) -> Option<i64> {
    use x509_parser::prelude::FromDer as _;
    let mut der = vec![tag, u8::try_from(text.len()).ok()?];
    der.extend_from_slice(text.as_bytes());
    x509_parser::time::ASN1Time::from_der(&der)
        .ok()
        .map(|(_, t)| t.timestamp())
}

proptest! {
    #![proptest_config(cases(512))]

    /// Whatever the bytes of a validity time, reading it gives a value or a reason,
    /// and every value is a date RFC 3339 can write.
    #[test]
    fn any_time_bytes_are_read_or_refused(
        tag in select(vec![0x17u8, 0x18, 0x13, 0x04]),
        text in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..24),
            prop::collection::vec(select(b"0123456789Z+-.,".to_vec()), 8..22),
        ],
    ) {
        use certwatch::cert::read_time;
        use x509_parser::asn1_rs::Tag;
        if let Ok(unix) = read_time(Tag(u32::from(tag)), &text) {
            prop_assert!(!certwatch::cert::rfc3339(unix).starts_with("Unix"));
            prop_assert!(tag == 0x17 || tag == 0x18);
        }
    }

    /// Where x509-parser 0.18 reads a time right, certwatch reads the same instant and
    /// refuses what it refuses; they differ only on x509-parser's mistakes: a `-00MM`
    /// offset taken as `+00:MM`, and offsets of 24 and 25 hours.
    #[test]
    fn times_agree_with_x509_parser_but_for_its_mistakes(
        utc in any::<bool>(),
        parts in (0u16..=9999, 0u8..=13, 0u8..=32, 0u8..=24, 0u8..=60, 0u8..=60),
        offset in prop::option::of((select(vec!['+', '-']), 0u8..=26, 0u8..=60)),
    ) {
        use certwatch::cert::read_time;
        use x509_parser::asn1_rs::Tag;
        let (tag, offset) = if utc { (0x17u8, offset) } else { (0x18u8, None) };
        let text = time_text(utc, parts, offset);
        let ours = read_time(Tag(u32::from(tag)), text.as_bytes()).ok();
        let theirs = x509_parser_time(tag, &text);
        match offset {
            Some(('-', 0, m)) if m > 0 && m <= 59 => {
                if let (Some(ours), Some(theirs)) = (ours, theirs) {
                    prop_assert_eq!(ours - theirs, 2 * 60 * i64::from(m), "{}", text);
                } else {
                    prop_assert_eq!(ours.is_some(), theirs.is_some(), "{}", text);
                }
            }
            Some((_, 24..=25, m)) if m <= 59 => prop_assert_eq!(ours, None, "{}", text),
            _ => prop_assert_eq!(ours, theirs, "{}", text),
        }
    }
}

/// The awkward certificate's names come out of `/metrics` as they went in.
#[test]
fn names_that_need_escaping_survive_the_exposition_format() {
    let c = certs();
    let awkward = c.others.last().expect("the awkward certificate");
    let parsed = ParsedCert::from_der(awkward);
    let info = parsed.info.as_ref().expect("parses");
    assert_eq!(info.subject_cn.as_deref(), Some(AWKWARD_CN));
    assert_eq!(
        info.dns_names.len(),
        MAX_SANS - 4,
        "names past MAX_SANS are left out"
    );
    assert_eq!(info.ip_addresses, ["192.0.2.1", "2001:db8::1"]);
    let verdict = Verdict::Failed {
        reason: VerifyReason::SelfSigned,
        detail: "self-signed".into(),
    };
    let scrape = render(vec![Arc::new(parsed)], verdict);
    let labels = [(LABEL_TARGET, "t"), (LABEL_DEPTH, "0")];
    assert_eq!(scrape.label(CERT_INFO, &labels, "subject_cn"), AWKWARD_CN);
}
