//! Revocation at scale: 10,000 targets whose certificates share one CA's CRL and OCSP
//! responder, checked as the probes would check them (`certwatch::revocation::check`,
//! at most 64 at a time, as `concurrency: 64` allows).
//!
//! An in-process HTTP server on 127.0.0.1 serves the CRL (rcgen, `REVOKED` entries,
//! signed by the intermediate) and an OCSP response (made by `openssl ocsp` for the one
//! leaf every OCSP target presents; skipped without `openssl`), and counts requests.
//! Then one 32 MiB-class CRL is read on its own. Prints one JSON line per phase: the
//! requests the server saw, the process CPU time (utime + stime from /proc/self/stat),
//! wall time, resident memory growth (VmRSS and VmHWM from /proc/self/status), and the
//! cache's entries and bytes. It asserts only that one fetch served every target.
//!
//! `cargo bench --bench revocation` (`REVOCATION_TARGETS`, default 10000;
//! `REVOCATION_REVOKED`, default 100000).

// A benchmark measures real time; there is no paused tokio clock to drive here.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use certwatch::revocation::{self, CrlMode, Depth, Issuer, Link, OcspMode, Settings};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CrlDistributionPoint, CustomExtension,
    DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::prelude::FromDer;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of this process, seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// VmRSS and VmHWM, KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn issuer_of(der: &CertificateDer<'static>) -> Issuer {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).expect("parses");
    Issuer {
        name: cert.tbs_certificate.subject.as_raw().to_vec(),
        spki: cert.public_key().raw.to_vec(),
        cert: Some(der.clone()),
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    certwatch::revocation::tlv(tag, content)
}

/// A leaf of `ca` with serial `serial`, pointing at `base`'s CRL and responder.
fn leaf(
    ca: &CertifiedIssuer<'_, KeyPair>,
    key: &KeyPair,
    serial: u64,
    base: &str,
) -> CertificateDer<'static> {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.distinguished_name = dn("localhost");
    params.serial_number = Some(SerialNumber::from(serial));
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![format!("{base}/ca.crl")],
    }];
    let mut desc = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    desc.extend(tlv(0x86, format!("{base}/ocsp").as_bytes()));
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            tlv(0x30, &tlv(0x30, &desc)),
        ));
    params.signed_by(key, ca).expect("signed").der().clone()
}

fn crl(ca: &CertifiedIssuer<'_, KeyPair>, revoked: usize) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    rcgen::CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: (0..revoked as u64)
            .map(|i| rcgen::RevokedCertParams {
                serial_number: SerialNumber::from((1u64 << 62) + i),
                revocation_time: now - time::Duration::days(1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(ca)
    .expect("a CRL")
    .der()
    .to_vec()
}

/// The OCSP response `openssl ocsp` makes for `leaf` (good), or `None` without openssl.
fn ocsp_response(
    ca_pem: &str,
    ca_key: &str,
    leaf: &CertificateDer<'_>,
    serial: u64,
) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().ok()?;
    let path = |n: &str| dir.path().join(n);
    std::fs::write(path("ca.pem"), ca_pem).ok()?;
    std::fs::write(path("ca.key"), ca_key).ok()?;
    let leaf_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(leaf)
    );
    std::fs::write(path("leaf.pem"), leaf_pem).ok()?;
    std::fs::write(
        path("index.txt"),
        format!("V\t301231000000Z\t\t{serial:X}\tunknown\t/CN=localhost\n"),
    )
    .ok()?;
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = run(&[
        "ocsp",
        "-no_nonce",
        "-issuer",
        "ca.pem",
        "-cert",
        "leaf.pem",
        "-reqout",
        "req.der",
    ]) && run(&[
        "ocsp",
        "-index",
        "index.txt",
        "-rsigner",
        "ca.pem",
        "-rkey",
        "ca.key",
        "-CA",
        "ca.pem",
        "-reqin",
        "req.der",
        "-respout",
        "resp.der",
        "-ndays",
        "1",
    ]);
    ok.then(|| std::fs::read(path("resp.der")).ok()).flatten()
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Serves `crl` at `/ca.crl` and `ocsp` anywhere else, counting requests.
async fn serve(
    listener: tokio::net::TcpListener,
    crl: Arc<Vec<u8>>,
    ocsp: Arc<Vec<u8>>,
    seen: Arc<AtomicUsize>,
) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let (crl, ocsp, seen) = (crl.clone(), ocsp.clone(), seen.clone());
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let (body, kind) = if head.starts_with(b"GET /ca.crl") {
                (crl, "application/pkix-crl")
            } else {
                (ocsp, "application/ocsp-response")
            };
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        });
    }
}

async fn check_all(settings: Settings, links: Vec<Vec<Link>>) -> (usize, usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let links = Arc::new(links);
    let next = Arc::new(AtomicUsize::new(0));
    let (answered, revoked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers = (0..64).map(|_| {
        let (links, next, answered, revoked) = (
            links.clone(),
            next.clone(),
            answered.clone(),
            revoked.clone(),
        );
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(path) = links.get(i) else { break };
                let result =
                    revocation::check(&settings, path, None, deadline, SystemTime::now()).await;
                for check in &result.checks {
                    if check.result.is_ok() {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    if check.revoked().is_some() {
                        revoked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    });
    for worker in workers.collect::<Vec<_>>() {
        worker.await.expect("a worker");
    }
    (
        answered.load(Ordering::SeqCst),
        revoked.load(Ordering::SeqCst),
    )
}

fn main() {
    let targets = env("REVOCATION_TARGETS", 10_000);
    let revoked = env("REVOCATION_REVOKED", 100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("address").port());

        let root_key = KeyPair::generate().expect("key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
        root.distinguished_name = dn("bench root");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = CertifiedIssuer::self_signed(root, root_key).expect("root");
        let ca_key = KeyPair::generate().expect("key");
        let ca_key_pem = ca_key.serialize_pem();
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name = dn("bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::signed_by(ca, ca_key, &root).expect("ca");
        let ca_der = ca.der().clone();
        let issuer = issuer_of(&ca_der);

        let started = Instant::now();
        let leaf_key = KeyPair::generate().expect("key");
        let leaves: Vec<CertificateDer<'static>> = (0..targets as u64)
            .map(|i| leaf(&ca, &leaf_key, 1_000_000 + i, &base))
            .collect();
        let crl_der = crl(&ca, revoked);
        let ocsp = ocsp_response(&ca.pem(), &ca_key_pem, &leaves[0], 1_000_000);
        eprintln!(
            "setup: {targets} leaves, CRL of {revoked} entries ({} bytes) in {:.1}s",
            crl_der.len(),
            started.elapsed().as_secs_f64()
        );
        let seen = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve(
            listener,
            Arc::new(crl_der.clone()),
            Arc::new(ocsp.clone().unwrap_or_default()),
            seen.clone(),
        ));
        let link = |cert: &CertificateDer<'static>| {
            vec![Link {
                depth: 0,
                cert: cert.clone(),
                issuer: issuer.clone(),
            }]
        };

        // CRL: every target has its own leaf; they share the CRL.
        let settings = Settings {
            ocsp: OcspMode::Off,
            depth: Depth::Leaf,
            crl: CrlMode::Fetch,
            allow_private_addresses: true,
        };
        let paths: Vec<Vec<Link>> = leaves.iter().map(link).collect();
        let (rss0, _) = memory_kib();
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let (answered, revoked_found) = check_all(settings, paths.clone()).await;
        let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
        let (rss, hwm) = memory_kib();
        let (entries, bytes) = revocation::crl::cache().size();
        println!(
            "{{\"phase\":\"crl\",\"targets\":{targets},\"crl_entries\":{revoked},\"crl_bytes\":{},\"requests\":{},\"answered\":{answered},\"revoked\":{revoked_found},\"cpu_s\":{cpu:.3},\"wall_s\":{wall:.3},\"cpu_per_target_us\":{:.1},\"rss_growth_kib\":{},\"vm_hwm_kib\":{hwm},\"cache_entries\":{entries},\"cache_bytes\":{bytes}}}",
            crl_der.len(),
            seen.load(Ordering::SeqCst),
            cpu / targets as f64 * 1e6,
            rss.saturating_sub(rss0)
        );
        assert_eq!(seen.load(Ordering::SeqCst), 1, "one CRL download for every target");
        assert_eq!(answered, targets);

        // A second round: all from the cache.
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        check_all(settings, paths).await;
        let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
        println!(
            "{{\"phase\":\"crl_cached\",\"targets\":{targets},\"requests\":{},\"cpu_s\":{cpu:.3},\"wall_s\":{wall:.3},\"cpu_per_target_us\":{:.1}}}",
            seen.load(Ordering::SeqCst),
            cpu / targets as f64 * 1e6
        );

        // OCSP: every target presents the same leaf, so one request answers them all.
        if ocsp.is_some() {
            let settings = Settings {
                ocsp: OcspMode::Fetch,
                depth: Depth::Leaf,
                crl: CrlMode::Off,
                allow_private_addresses: true,
            };
            let before = seen.load(Ordering::SeqCst);
            let paths: Vec<Vec<Link>> = (0..targets).map(|_| link(&leaves[0])).collect();
            let (cpu0, wall0) = (cpu_seconds(), Instant::now());
            let (answered, _) = check_all(settings, paths).await;
            let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
            let requests = seen.load(Ordering::SeqCst) - before;
            println!(
                "{{\"phase\":\"ocsp\",\"targets\":{targets},\"requests\":{requests},\"answered\":{answered},\"cpu_s\":{cpu:.3},\"wall_s\":{wall:.3},\"cpu_per_target_us\":{:.1}}}",
                cpu / targets as f64 * 1e6
            );
            assert_eq!(requests, 1, "one OCSP request for every target");
        } else {
            eprintln!("ocsp: skipped (no openssl)");
        }

        // One CRL just under the 32 MiB limit, read on its own.
        let big = crl(&ca, 780_000);
        let (rss0, hwm0) = memory_kib();
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let set = revocation::crl::read(&big, &issuer).expect("a valid CRL");
        let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
        let (rss, hwm) = memory_kib();
        println!(
            "{{\"phase\":\"crl_32mib_read\",\"crl_bytes\":{},\"entries\":{},\"set_bytes\":{},\"cpu_s\":{cpu:.3},\"wall_s\":{wall:.3},\"rss_growth_kib\":{},\"hwm_growth_kib\":{}}}",
            big.len(),
            set.revoked.len(),
            set.revoked.heap_bytes(),
            rss.saturating_sub(rss0),
            hwm.saturating_sub(hwm0)
        );
    });
}
