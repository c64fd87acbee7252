//! The floor for certwatch's CPU per probe: a minimal rustls client loop.
//!
//! Full handshakes (session resumption disabled) against one TLS endpoint, `N` of
//! them with at most `C` in flight, each one capturing the presented chain (copied
//! out, as certwatch does) and verifying it against a given root with rustls' default
//! WebPKI verifier. Prints one line of JSON: the process CPU time (utime + stime from
//! /proc/self/stat) and wall time of the loop, per handshake. It asserts nothing.
//!
//! Run by `bench/run.sh`; by hand:
//! `FLOOR_ADDR=127.0.0.1:8443 FLOOR_CA=root.pem FLOOR_N=1000 FLOOR_CONC=64 cargo bench --bench floor`
//! (`FLOOR_SERVER_NAME`, default `localhost`).

// A benchmark measures real time; there is no paused tokio clock to drive here.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Copies the presented chain out (as certwatch's capture does), then verifies it.
#[derive(Debug)]
struct CaptureAndVerify {
    inner: Arc<WebPkiServerVerifier>,
    captured: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for CaptureAndVerify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let verdict =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        *self.captured.lock().expect("not poisoned") = chain;
        verdict
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// utime + stime of this process, in microseconds.
fn cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14, 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    // CLK_TCK is 100 on every Linux this runs on.
    ticks * 1e6 / 100.0
}

fn env(name: &str, default: Option<&str>) -> String {
    std::env::var(name)
        .ok()
        .or(default.map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} is required"))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let addr = env("FLOOR_ADDR", None);
    let ca = env("FLOOR_CA", None);
    let n: usize = env("FLOOR_N", Some("1000")).parse().expect("FLOOR_N");
    let conc: usize = env("FLOOR_CONC", Some("64")).parse().expect("FLOOR_CONC");
    let name = ServerName::try_from(env("FLOOR_SERVER_NAME", Some("localhost"))).expect("name");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).expect("FLOOR_CA readable") {
        roots.add(cert.expect("PEM")).expect("root");
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("verifier");
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(CaptureAndVerify {
            inner,
            captured: Mutex::new(Vec::new()),
        }))
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    let connector = TlsConnector::from(Arc::new(config));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (cpu0, t0) = (cpu_us(), Instant::now());
    rt.block_on(async {
        let mut workers = Vec::new();
        for _ in 0..conc.min(n) {
            let (connector, name, addr) = (connector.clone(), name.clone(), addr.clone());
            let (next, failed) = (next.clone(), failed.clone());
            workers.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let ok = async {
                        let tcp = TcpStream::connect(&addr).await.ok()?;
                        tcp.set_nodelay(true).ok()?;
                        let mut tls = connector.connect(name.clone(), tcp).await.ok()?;
                        let _ = tls.shutdown().await;
                        Some(())
                    }
                    .await;
                    if ok.is_none() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            w.await.expect("worker");
        }
    });
    let (cpu, wall) = (cpu_us() - cpu0, t0.elapsed().as_secs_f64());
    println!(
        "{{\"handshakes\":{n},\"failed\":{},\"concurrency\":{conc},\"cpu_us_per_handshake\":{:.1},\"handshakes_per_s\":{:.1},\"wall_s\":{:.3}}}",
        failed.load(Ordering::Relaxed),
        cpu / n as f64,
        n as f64 / wall,
        wall
    );
}
