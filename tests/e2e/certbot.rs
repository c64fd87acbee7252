//! "Renewed but not reloaded", end to end with the real tools: Debian's `pebble` (Let's
//! Encrypt's ACME test server) issues a certificate to `certbot` into a private config
//! directory; a private nginx serves it; certwatch watches certbot's `live/` directory
//! as a `files:` source and the nginx endpoint with `served_from`. Then
//! `certbot renew --force-renewal` must show `certwatch_served_cert_current 0` and the
//! file's new notAfter within seconds, and `nginx -s reload` bring it back to 1.
//!
//! Everything stays on loopback: pebble listens on 127.0.0.1 with a certificate made
//! here, certbot talks to it at `https://127.0.0.1:PORT/dir` (trusting that certificate
//! through `REQUESTS_CA_BUNDLE`), and pebble's validation resolves the made-up name
//! `shop.certwatch.test` through `pebble-challtestsrv`, started here as a DNS server on
//! 127.0.0.1 that answers every A query with 127.0.0.1 (and no AAAA), so the HTTP-01
//! challenge reaches certbot's standalone server on a loopback port given to pebble as
//! its `httpPort`. No public DNS, no system resolver for that name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certwatch::cert::ParsedCert;
use certwatch::metrics::names::*;

use crate::support::daemon::{self, Daemon, Instance, Launch, Ready};
use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Validity};
use crate::support::tools::{program_runs, trial, Need, Remedy, Trial};
use crate::support::Scrape;

const NGINX: &str = "/usr/sbin/nginx";
const PEBBLE_BIN: &str = "/usr/bin/pebble";
const CHALLTESTSRV_BIN: &str = "/usr/bin/pebble-challtestsrv";
const DOMAIN: &str = "shop.certwatch.test";

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[PEBBLE, CERTBOT, NGINX_NEED],
        async a_renewal_not_reloaded_is_seen_within_seconds_and_a_reload_clears_it
    )]
}

/// `pebble` and `pebble-challtestsrv` (Debian package `pebble`).
const PEBBLE: Need = Need {
    name: "pebble",
    remedy: Remedy::Install("pebble"),
    check: || {
        daemon::require_program(PEBBLE_BIN, "pebble")?;
        daemon::require_program(CHALLTESTSRV_BIN, "pebble")
    },
};

/// `certbot` (Debian package `certbot`).
const CERTBOT: Need = Need {
    name: "certbot",
    remedy: Remedy::Install("certbot"),
    check: || program_runs("certbot", &["--version"]),
};

/// nginx (any flavour; `nginx-light` is the smallest).
const NGINX_NEED: Need = Need {
    name: "nginx",
    remedy: Remedy::Install("nginx-light"),
    check: || daemon::require_program(NGINX, "nginx"),
};

/// The DNS server pebble asks: every name is 127.0.0.1.
async fn start_dns() -> Result<(Daemon, u16), String> {
    daemon::start_with_retries("pebble-challtestsrv", || async {
        let mut instance = Instance::new("challtestsrv")?;
        let ports = instance.ports(2)?;
        let (dns, management) = (ports[0], ports[1]);
        let launch = Launch::new(CHALLTESTSRV_BIN).args([
            "-dns01".to_owned(),
            format!("127.0.0.1:{dns}"),
            "-http01".to_owned(),
            String::new(),
            "-https01".to_owned(),
            String::new(),
            "-tlsalpn01".to_owned(),
            String::new(),
            "-management".to_owned(),
            format!("127.0.0.1:{management}"),
            "-defaultIPv4".to_owned(),
            "127.0.0.1".to_owned(),
            "-defaultIPv6".to_owned(),
            String::new(),
        ]);
        let daemon = instance.spawn(launch, &[Ready::Port(management)]).await?;
        Ok((daemon, dns))
    })
    .await
}

/// pebble, on 127.0.0.1, validating HTTP-01 on `http_port`; its certificate's CA.
struct Pebble {
    daemon: Daemon,
    directory: String,
    http_port: u16,
}

async fn start_pebble(dns: u16, ca: &Ca) -> Result<Pebble, String> {
    let leaf = ca.leaf(&["127.0.0.1", "localhost"], Validity::days(30));
    daemon::start_with_retries("pebble", || async {
        let mut instance = Instance::new("pebble")?;
        let ports = instance.ports(4)?;
        let (acme, management, http, tls) = (ports[0], ports[1], ports[2], ports[3]);
        let cert = instance.write("pebble.pem", &leaf.cert_pem, None, 0o644)?;
        let key = instance.write("pebble.key", &leaf.key_pem, None, 0o600)?;
        let config = instance.write_config(
            "pebble.json",
            &format!(
                "{{\"pebble\": {{\"listenAddress\": \"127.0.0.1:{acme}\", \"managementListenAddress\": \"127.0.0.1:{management}\", \"certificate\": \"{cert}\", \"privateKey\": \"{key}\", \"httpPort\": {http}, \"tlsPort\": {tls}, \"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false}}}}\n",
                cert = cert.display(),
                key = key.display(),
            ),
        )?;
        let launch = Launch::new(PEBBLE_BIN)
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns}"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0");
        let daemon = instance.spawn(launch, &[Ready::Port(acme)]).await?;
        Ok(Pebble {
            daemon,
            directory: format!("https://127.0.0.1:{acme}/dir"),
            http_port: http,
        })
    })
    .await
}

/// Runs certbot with its directories under `dir`, bounded; its output on failure.
fn certbot(dir: &Path, ca_bundle: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("certbot")
        .args(args)
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .args(["--non-interactive", "--no-random-sleep-on-renew"])
        .env("REQUESTS_CA_BUNDLE", ca_bundle)
        .output()
        .map_err(|e| format!("certbot does not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "certbot {args:?} failed ({}):\n{}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("logs/letsencrypt.log")).unwrap_or_default()
        ))
    }
}

struct Nginx {
    daemon: Daemon,
    port: u16,
    conf: PathBuf,
}

async fn start_nginx(live: &Path) -> Result<Nginx, String> {
    daemon::start_with_retries("nginx", || async {
        let mut instance = Instance::new("nginx-certbot")?;
        let port = instance.port()?;
        let dir = instance.path().to_owned();
        instance.mkdir("temp", None, 0o777)?;
        let conf = instance.write_config(
            "nginx.conf",
            &format!(
                "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n    access_log {dir}/access.log;\n    client_body_temp_path {dir}/temp/body;\n    proxy_temp_path {dir}/temp/proxy;\n    fastcgi_temp_path {dir}/temp/fastcgi;\n    uwsgi_temp_path {dir}/temp/uwsgi;\n    scgi_temp_path {dir}/temp/scgi;\n    server {{\n        listen 127.0.0.1:{port} ssl;\n        server_name {DOMAIN};\n        ssl_certificate {live}/fullchain.pem;\n        ssl_certificate_key {live}/privkey.pem;\n        location / {{ return 200 \"certwatch e2e\\n\"; }}\n    }}\n}}\n",
                dir = dir.display(),
                live = live.display(),
            ),
        )?;
        instance.log_file("error.log");
        let launch = Launch::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"]);
        let daemon = instance.spawn(launch, &[Ready::Port(port)]).await?;
        Ok(Nginx { daemon, port, conf })
    })
    .await
}

/// The leaf of a PEM file, parsed as certwatch parses it.
fn leaf_of(path: &Path) -> ParsedCert {
    let pem = std::fs::read(path).expect("the certificate file");
    let der = rustls_pki_types::pem::PemObject::pem_slice_iter(&pem)
        .map(|c: Result<rustls_pki_types::CertificateDer<'static>, _>| c.expect("PEM"))
        .next()
        .expect("a certificate");
    ParsedCert::from_der(&der)
}

/// Scrapes after each probe or read until `holds`, for at most `within`; how long it
/// took, or the last scrape.
fn until(
    exporter: &Exporter,
    within: Duration,
    holds: impl Fn(&Scrape) -> bool,
) -> Result<Duration, String> {
    let started = tokio::time::Instant::now();
    loop {
        let (_, body) = exporter.get("/metrics");
        let scrape = Scrape::parse(&body);
        if holds(&scrape) {
            return Ok(started.elapsed());
        }
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(scrape.text);
        }
        // The next observation stored: a probe of the endpoint or a read of files.
        let _ = exporter.logs.recv_timeout(left);
    }
}

async fn a_renewal_not_reloaded_is_seen_within_seconds_and_a_reload_clears_it() {
    let ca = Ca::root("pebble listener CA");
    let (dns, dns_port) = daemon::running(start_dns().await);
    let pebble = daemon::running(start_pebble(dns_port, &ca).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = std::path::absolute(dir.path()).unwrap();
    let bundle = d.join("pebble-listener-ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let http_port = pebble.http_port.to_string();
    let issue = certbot(
        &d,
        &bundle,
        &[
            "certonly",
            "--standalone",
            "--preferred-challenges",
            "http",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &http_port,
            "--server",
            &pebble.directory,
            "--agree-tos",
            "--register-unsafely-without-email",
            "-d",
            DOMAIN,
        ],
    );
    if let Err(e) = issue {
        panic!("{e}\n{}\n{}", pebble.daemon.log(), dns.log());
    }
    let live = d.join("config/live").join(DOMAIN);
    let fullchain = live.join("fullchain.pem");
    let first = leaf_of(&fullchain);
    let nginx = daemon::running(start_nginx(&live).await);

    std::fs::write(
        d.join("certwatch.yml"),
        format!(
            "files:\n  - name: letsencrypt\n    paths: [\"config/live/*/fullchain.pem\"]\n    interval: 1h\ntargets:\n  - address: \"127.0.0.1:{port}\"\n    name: shop\n    server_name: {DOMAIN}\n    trust: none\n    interval: 3s\n    timeout: 2s\n    served_from: {served}\n",
            port = nginx.port,
            served = fullchain.display(),
        ),
    )
    .unwrap();
    let exporter = Exporter::start(&d, &["--config", "certwatch.yml", "--log-level", "debug"]);
    let shop = [("target", "shop"), ("ip", "127.0.0.1")];
    let file = fullchain.display().to_string();
    let in_file = [
        ("target", "letsencrypt"),
        ("path", file.as_str()),
        ("depth", "0"),
    ];
    let current = |s: &Scrape, want: f64| {
        s.find(SERVED_CERT_CURRENT, &shop).first().map(|x| x.1) == Some(want)
    };
    let first_not_after = first.not_after().expect("a readable leaf") as f64;
    until(&exporter, Duration::from_secs(30), |s| {
        current(s, 1.0)
            && s.find(CERT_NOT_AFTER, &in_file).first().map(|x| x.1) == Some(first_not_after)
    })
    .unwrap_or_else(|s| panic!("nginx serves certbot's certificate, and certwatch says so:\n{s}"));

    // Renewed, not reloaded.
    let renew = certbot(&d, &bundle, &["renew", "--force-renewal"]);
    if let Err(e) = renew {
        panic!("{e}\n{}", pebble.daemon.log());
    }
    let renewed = leaf_of(&fullchain);
    assert_ne!(renewed.fingerprint_sha256, first.fingerprint_sha256);
    let renewed_not_after = renewed.not_after().expect("a readable leaf") as f64;
    let took = until(&exporter, Duration::from_secs(10), |s| {
        current(s, 0.0)
            && s.find(SERVED_FILE_NOT_AFTER, &shop).first().map(|x| x.1) == Some(renewed_not_after)
            && s.find(CERT_NOT_AFTER, &in_file).first().map(|x| x.1) == Some(renewed_not_after)
    })
    .unwrap_or_else(|s| panic!("the renewal is not seen within 10 s:\n{s}"));
    eprintln!("renewal seen in {took:?}");
    let s = Scrape::parse(&exporter.get("/metrics").1);
    assert_eq!(
        s.value(
            CERT_NOT_AFTER,
            &[("target", "shop"), ("ip", "127.0.0.1"), ("depth", "0")]
        ),
        first_not_after,
        "nginx still serves the first certificate"
    );

    // Reloaded.
    let reload = Command::new(NGINX)
        .arg("-p")
        .arg(nginx.daemon.path())
        .arg("-c")
        .arg(&nginx.conf)
        .args(["-s", "reload"])
        .output()
        .expect("nginx -s reload");
    assert!(
        reload.status.success(),
        "{reload:?}\n{}",
        nginx.daemon.log()
    );
    let took = until(&exporter, Duration::from_secs(15), |s| {
        current(s, 1.0)
            && s.find(
                CERT_NOT_AFTER,
                &[("target", "shop"), ("ip", "127.0.0.1"), ("depth", "0")],
            )
            .first()
            .map(|x| x.1)
                == Some(renewed_not_after)
    })
    .unwrap_or_else(|s| panic!("the reload is not seen:\n{s}\n{}", nginx.daemon.log()));
    eprintln!("reload seen in {took:?} (the endpoint's interval is 3 s)");
}
