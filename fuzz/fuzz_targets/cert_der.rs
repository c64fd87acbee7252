//! Fuzzes the certificate path with any bytes as a certificate: `ParsedCert::from_der`,
//! `verify_chain` (as the leaf, as the intermediate, alone) and the `/metrics` series.
//!
//! Properties: no panic; the fingerprint is the SHA-256 of the bytes; a parsed
//! certificate's facts are bounded; only the leaf `fuzz/fixtures` holds (signed by its
//! intermediate and root) ever verifies as a leaf; every rendered line is a well-formed
//! sample. Verification runs at two fixed times: inside every fixture's validity, and
//! after the leaf's notAfter (the "expired" explanation with its date arithmetic).

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use certwatch::cert::{ParsedCert, MAX_SANS};
use certwatch::config::{Config, TargetSpec};
use certwatch::metrics::collector::render_outcome;
use certwatch::probe::outcome::{AddressOutcome, PhaseTimes, ProbeOutcome, TlsParams, Verdict};
use certwatch::probe::verify::{verify_chain, TrustStore};
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

struct Fixtures {
    leaf: Vec<u8>,
    intermediate: Vec<u8>,
    trust: TrustStore,
    spec: TargetSpec,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let read = |name: &str| std::fs::read(dir.join(name)).expect("fuzz/fixtures");
        let root = CertificateDer::from(read("root.der"));
        let config = Config::from_yaml(
            "targets:\n  - address: \"127.0.0.1:443\"\n    name: t\n    trust: none\n",
            "fuzz.yml",
            &dir,
        )
        .expect("a valid configuration");
        Fixtures {
            leaf: read("leaf.der"),
            intermediate: read("intermediate.der"),
            trust: TrustStore::default()
                .with_extra(&[root])
                .expect("the fixture root is an anchor"),
            spec: (*config.targets[0]).clone(),
        }
    })
}

/// 2030-03-17, inside every fixture's validity; and 2103, after the leaf's notAfter.
const TIMES: [u64; 2] = [1_900_000_000, 4_200_000_000];

/// Whether `line` is `name{label="value",...} number` with escaped label values.
fn well_formed_sample(line: &str) -> bool {
    let Some(name_end) = line.find(['{', ' ']) else {
        return false;
    };
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        loop {
            // A label name, `=`, a quoted value; then `,` or `}`.
            let mut name_len = 0;
            let close = loop {
                match chars.next() {
                    Some((_, '=')) if name_len > 0 => break None,
                    Some((i, '}')) if name_len == 0 => break Some(i),
                    Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => name_len += 1,
                    _ => return false,
                }
            };
            if let Some(i) = close {
                rest = &body[i + 1..];
                break;
            }
            if !matches!(chars.next(), Some((_, '"'))) {
                return false;
            }
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => {
                        if !matches!(chars.next(), Some((_, '\\' | '"' | 'n'))) {
                            return false;
                        }
                    }
                    Some((_, '\n')) | None => return false,
                    Some(_) => {}
                }
            }
            match chars.next() {
                Some((_, ',')) => {}
                Some((i, '}')) => {
                    rest = &body[i + 1..];
                    break;
                }
                _ => return false,
            }
        }
    }
    rest.strip_prefix(' ')
        .is_some_and(|value| value.parse::<f64>().is_ok())
}

fuzz_target!(|data: &[u8]| {
    let fx = fixtures();
    let parsed = ParsedCert::from_der(data);
    assert_eq!(parsed.fingerprint_sha256.len(), 64);
    if let Ok(info) = &parsed.info {
        assert!(info.dns_names.len() <= MAX_SANS);
        assert!(info
            .ip_addresses
            .iter()
            .all(|ip| ip.parse::<IpAddr>().is_ok()));
        let _ = certwatch::cert::rfc3339(info.not_before);
        let _ = certwatch::cert::rfc3339(info.not_after);
        let _ = info.key.is_weak();
    }

    let names = [
        ServerName::try_from("localhost").expect("a name"),
        ServerName::try_from("192.0.2.7").expect("an address"),
    ];
    let chains: [Vec<&[u8]>; 3] = [
        vec![data, &fx.intermediate],
        vec![&fx.leaf, data],
        vec![data],
    ];
    let mut first = None;
    for chain in &chains {
        let ders: Vec<CertificateDer<'_>> =
            chain.iter().map(|d| CertificateDer::from(*d)).collect();
        let parsed: Vec<Arc<ParsedCert>> = chain
            .iter()
            .map(|d| Arc::new(ParsedCert::from_der(d)))
            .collect();
        for name in &names {
            for secs in TIMES {
                let now = UnixTime::since_unix_epoch(Duration::from_secs(secs));
                let verdict = verify_chain(&ders, &parsed, name, &fx.trust, now);
                match &verdict {
                    Verdict::Verified { .. } => {
                        assert_eq!(
                            chain[0],
                            fx.leaf.as_slice(),
                            "a leaf the CA did not sign verified"
                        )
                    }
                    Verdict::Failed { reason, detail } => {
                        assert!(!detail.is_empty());
                        assert!(!reason.as_label().is_empty());
                    }
                }
                first.get_or_insert_with(|| (parsed.clone(), verdict));
            }
        }
    }

    // The series of the first chain (the bytes as leaf, then the true intermediate).
    let (chain, verdict) = first.expect("a verdict");
    let outcome = ProbeOutcome {
        addresses: vec![AddressOutcome {
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(TIMES[0]),
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
    let text = render_outcome(
        &fx.spec,
        &outcome,
        SystemTime::UNIX_EPOCH + Duration::from_secs(TIMES[0]),
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(well_formed_sample(line), "malformed sample line: {line:?}");
    }
});
