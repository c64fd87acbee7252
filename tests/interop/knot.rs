//! DNS discovery against a real authoritative server: a private Knot DNS instance
//! (started by the test on a loopback port with its own configuration and zone) serves
//! `example.test`, certwatch's `dns.servers` points at it, and real Postfix instances
//! on 127.0.0.2, 127.0.0.3 and 127.0.0.4 are the mail hosts:
//!
//! - `mx1` (preference 10) has two addresses, each its own Postfix with its own
//!   certificate; `mx2` (20) has one; `dead` (30) points at 127.0.0.5, where nothing
//!   listens. Each host and address gets exactly its own series, and a removed MX
//!   record removes its host's series at the next probe.
//! - SRV targets are verified for the service's domain.
//! - A null MX, a missing domain and a CNAME loop are `resolve` failures; answers over
//!   the caps (16 hosts, 16 addresses) are cut and counted.
//! - `GET /probe?mx=` on the real binary refuses a domain whose hosts resolve outside
//!   `probe.allow`'s ranges, and probes one whose hosts are all inside.
//!
//! Needs Knot (`knot`), root and Postfix (`postfix`) for the mail hosts; without them
//! the tests are ignored, and fail under `CI=true`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use certwatch::config::Config;
use certwatch::metrics::names::*;
use certwatch::metrics::Collector;
use certwatch::store::{Observation, Store};

use crate::support::daemon::{self, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Leaf, Validity};
use crate::support::postfix::{Postfix, POSTFIX};
use crate::support::tools::{trial, Need, Remedy, Trial, ROOT};
use crate::support::Scrape;

/// The Knot server and its control tool.
const KNOTD: &str = "/usr/sbin/knotd";
const KNOTC: &str = "/usr/sbin/knotc";

/// Knot DNS installed (Debian package `knot`).
pub const KNOT: Need = Need {
    name: "knot",
    remedy: Remedy::Install("knot"),
    check: knot_installed,
};

fn knot_installed() -> Result<(), String> {
    daemon::require_program(KNOTD, "knot")?;
    daemon::require_program(KNOTC, "knot")
}

pub fn trials() -> Vec<Trial> {
    let mail = &[KNOT, POSTFIX, ROOT];
    vec![
        trial!(mail, async every_mx_host_and_address_has_its_own_series_until_its_record_goes),
        trial!(mail, async srv_targets_are_verified_for_the_services_domain),
        trial!(mail, async probe_endpoint_checks_what_mx_hosts_resolve_to_against_the_allow_list),
        trial!(&[KNOT], async null_mx_missing_domains_and_cname_loops_are_resolve_failures),
        trial!(&[KNOT], async answers_over_the_caps_are_cut_and_counted),
    ]
}

/// A private Knot instance serving one zone, `example.test`, on 127.0.0.1.
struct Knot {
    daemon: Daemon,
    port: u16,
    conf: PathBuf,
    zone: PathBuf,
}

impl Knot {
    /// Starts Knot serving `records` (zone file lines after the SOA and NS).
    async fn start(records: &str) -> Knot {
        daemon::running(
            daemon::start_with_retries("knot", || async { Self::try_start(records).await }).await,
        )
    }

    async fn try_start(records: &str) -> Result<Knot, StartError> {
        let mut instance = Instance::new("knot")?;
        let port = instance.port()?;
        let dir = instance.path().to_owned();
        instance.mkdir("db", None, 0o700)?;
        let conf = instance.write_config(
            "knot.conf",
            &format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir}\n    pidfile: {dir}/knot.pid\n\
                 control:\n    listen: {dir}/knot.sock\n\
                 database:\n    storage: {dir}/db\n\
                 log:\n  - target: stderr\n    any: info\n\
                 template:\n  - id: default\n    storage: {dir}\n    file: \"%s.zone\"\n    zonefile-sync: -1\n    journal-content: none\n\
                 zone:\n  - domain: example.test\n",
                dir = dir.display()
            ),
        )?;
        let zone = instance.write_config("example.test.zone", &zone_text(1, records))?;
        let launch = Launch::new(KNOTD).arg("-c").arg(&conf);
        let ready = [
            Ready::Port(port),
            Ready::Log("server.out".into(), "[example.test.] loaded".into()),
        ];
        let daemon = instance.spawn(launch, &ready).await?;
        Ok(Knot {
            daemon,
            port,
            conf,
            zone,
        })
    }

    /// `127.0.0.1:PORT`, for `dns.servers`.
    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Serves `records` from now on, as serial `serial` (higher than before).
    fn replace(&self, serial: u32, records: &str) {
        std::fs::write(&self.zone, zone_text(serial, records)).expect("write the zone");
        let output = Command::new("timeout")
            .args(["30", KNOTC, "-c"])
            .arg(&self.conf)
            .args(["-b", "-t", "20", "zone-reload", "example.test"])
            .output()
            .expect("run knotc");
        assert!(
            output.status.success(),
            "knotc zone-reload: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.daemon.log()
        );
    }
}

fn zone_text(serial: u32, records: &str) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns hostmaster {serial} 3600 600 86400 3600\n@ NS ns\nns A 127.0.0.1\n{records}\n"
    )
}

/// One port free on each of `ips` a moment ago, for servers that share it.
fn shared_port(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..20 {
        let first = std::net::TcpListener::bind((ips[0], 0)).expect("bind");
        let port = first.local_addr().expect("local address").port();
        let others: Vec<_> = ips[1..]
            .iter()
            .map(|ip| std::net::TcpListener::bind((*ip, port)))
            .collect();
        if others.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}")
}

/// The certificates of the mail hosts: one root, one intermediate, and a leaf per
/// Postfix instance naming its host and the domain.
struct Pki {
    root: Ca,
    intermediate: Ca,
}

impl Pki {
    fn new() -> Pki {
        let root = Ca::root("certwatch discovery root");
        let intermediate =
            root.intermediate("certwatch discovery intermediate", Validity::days(365));
        Pki { root, intermediate }
    }

    fn leaf(&self, host: &str) -> Leaf {
        self.intermediate
            .leaf(&[host, "example.test"], Validity::days(90))
    }

    fn server_tls(&self, leaf: &Leaf) -> ServerTls {
        ServerTls {
            chain_pem: leaf.chain_pem(&[&self.intermediate]),
            key_pem: leaf.key_pem.clone(),
            ca_pem: self.root.pem.clone(),
        }
    }
}

/// The mail hosts: Postfix on 127.0.0.2 and 127.0.0.3 (`mx1`) and 127.0.0.4 (`mx2`),
/// all on one port, each with its own leaf.
struct MailHosts {
    port: u16,
    servers: Vec<(Postfix, Leaf)>,
}

const MX1_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const MX1_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const MX2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const DEAD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

impl MailHosts {
    async fn start(pki: &Pki) -> MailHosts {
        let port = shared_port(&[MX1_A, MX1_B, MX2, DEAD]);
        let mut servers = Vec::new();
        for (ip, host) in [
            (MX1_A, "mx1.example.test"),
            (MX1_B, "mx1.example.test"),
            (MX2, "mx2.example.test"),
        ] {
            let leaf = pki.leaf(host);
            let server =
                daemon::running(Postfix::start_at(ip, port, Some(&pki.server_tls(&leaf))).await);
            servers.push((server, leaf));
        }
        MailHosts { port, servers }
    }

    /// The serial of the leaf served at `ip`.
    fn serial(&self, ip: Ipv4Addr) -> &str {
        let (_, leaf) = self
            .servers
            .iter()
            .find(|(s, _)| s.address() == format!("{ip}:{}", self.port))
            .expect("a server at that address");
        &leaf.serial_hex
    }

    fn logs(&self) -> String {
        self.servers.iter().map(|(s, _)| s.log()).collect()
    }
}

/// The zone of the MX test: three hosts, one with two addresses, one that does not
/// answer; an SRV name for submission; `with_mx2: false` removes mx2's MX record.
fn mail_zone(port: u16, with_mx2: bool) -> String {
    let mx2 = if with_mx2 { "@ MX 20 mx2\n" } else { "" };
    format!(
        "@ MX 10 mx1\n{mx2}@ MX 30 dead\n\
         mx1 A {MX1_A}\nmx1 A {MX1_B}\nmx2 A {MX2}\ndead A {DEAD}\n\
         _submission._tcp SRV 10 5 {port} mx2\n_submission._tcp SRV 0 1 {port} mx1\n"
    )
}

/// A store and collector, as the exporter keeps them across probes.
struct Exposition {
    store: Store,
    collector: Collector,
}

impl Exposition {
    fn new() -> Self {
        Exposition {
            store: Store::default(),
            collector: Collector::default(),
        }
    }

    /// Probes the first target of `config` and returns `/metrics` as it is then.
    async fn probe(&self, config: &Config) -> Scrape {
        let spec = config.targets[0].clone();
        let outcome = certwatch::probe::run(&spec).await;
        self.store.record(
            Observation::Endpoint {
                spec,
                outcome,
                served: None,
            },
            || true,
        );
        let mut text = String::new();
        self.collector
            .render(&self.store.snapshot(), SystemTime::now(), &mut text);
        Scrape::parse(&text)
    }
}

fn config(dir: &Path, yaml: &str) -> Config {
    Config::from_yaml(yaml, "test.yml", dir).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// `(host, ip) -> value` of every sample of `name` for target `t`.
fn by_host(scrape: &Scrape, name: &str) -> Vec<(String, String, f64)> {
    let mut rows: Vec<(String, String, f64)> = scrape
        .find(name, &[(LABEL_TARGET, "t")])
        .into_iter()
        .map(|(labels, value)| {
            (
                labels.get(LABEL_HOST).cloned().unwrap_or_default(),
                labels.get(LABEL_IP).cloned().unwrap_or_default(),
                value,
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

fn row(host: &str, ip: Ipv4Addr, value: f64) -> (String, String, f64) {
    (host.to_owned(), ip.to_string(), value)
}

async fn every_mx_host_and_address_has_its_own_series_until_its_record_goes() {
    let pki = Pki::new();
    let hosts = MailHosts::start(&pki).await;
    let knot = Knot::start(&mail_zone(hosts.port, true)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.pem"), &pki.root.pem).unwrap();
    let config = config(
        dir.path(),
        &format!(
            "dns:\n  servers: [\"{}\"]\n  timeout: 3s\ntargets:\n  - name: t\n    mx: example.test\n    port: {}\n    timeout: 20s\n    trust: none\n    tls:\n      ca_file: root.pem\n",
            knot.server(),
            hosts.port
        ),
    );
    let exposition = Exposition::new();
    let scrape = exposition.probe(&config).await;
    let context = || format!("{}\n{}\n{}", scrape.text, hosts.logs(), knot.daemon.log());
    let p = hosts.port;
    let (mx1, mx2, dead) = (
        format!("mx1.example.test:{p}"),
        format!("mx2.example.test:{p}"),
        format!("dead.example.test:{p}"),
    );
    assert_eq!(
        by_host(&scrape, HANDSHAKE_SUCCESS),
        [
            row(&dead, DEAD, 0.0),
            row(&mx1, MX1_A, 1.0),
            row(&mx1, MX1_B, 1.0),
            row(&mx2, MX2, 1.0)
        ],
        "{}",
        context()
    );
    assert_eq!(
        by_host(&scrape, CHAIN_VERIFIED),
        [
            row(&mx1, MX1_A, 1.0),
            row(&mx1, MX1_B, 1.0),
            row(&mx2, MX2, 1.0)
        ],
        "each host verified for its own name: {}",
        context()
    );
    assert_eq!(
        scrape.label(
            PROBE_FAILURE_INFO,
            &[(LABEL_HOST, &dead), (LABEL_IP, "127.0.0.5")],
            LABEL_REASON
        ),
        "refused"
    );
    assert_eq!(
        scrape.label(
            PROBE_FAILURE_INFO,
            &[(LABEL_HOST, &dead), (LABEL_IP, "127.0.0.5")],
            LABEL_STAGE
        ),
        "connect"
    );
    // Each address presents its own certificate.
    for ip in [MX1_A, MX1_B, MX2] {
        let ip_text = ip.to_string();
        let serial = scrape.label(
            CERT_INFO,
            &[(LABEL_IP, &ip_text), (LABEL_DEPTH, "0")],
            "serial",
        );
        assert_eq!(serial, hosts.serial(ip), "{ip}: {}", context());
    }
    assert_eq!(scrape.value(DISCOVERED_HOSTS, &[(LABEL_TARGET, "t")]), 3.0);
    let counted: Vec<(String, String, f64)> = by_host(&scrape, PROBES_TOTAL)
        .into_iter()
        .filter(|(_, _, v)| *v > 0.0)
        .collect();
    assert_eq!(
        counted,
        [
            row(&dead, DEAD, 1.0),
            row(&mx1, MX1_A, 1.0),
            row(&mx1, MX1_B, 1.0),
            row(&mx2, MX2, 1.0)
        ]
    );

    // mx2's record goes: its series go at the next probe, the others stay.
    knot.replace(2, &mail_zone(hosts.port, false));
    let scrape = exposition.probe(&config).await;
    assert_eq!(
        by_host(&scrape, HANDSHAKE_SUCCESS),
        [
            row(&dead, DEAD, 0.0),
            row(&mx1, MX1_A, 1.0),
            row(&mx1, MX1_B, 1.0)
        ],
        "{}",
        scrape.text
    );
    assert!(
        !scrape.text.contains("mx2.example.test"),
        "no series of the removed host: {}",
        scrape.text
    );
    assert_eq!(scrape.value(DISCOVERED_HOSTS, &[(LABEL_TARGET, "t")]), 2.0);
    assert_eq!(
        scrape.value(
            PROBES_TOTAL,
            &[
                (LABEL_HOST, &mx1),
                (LABEL_IP, "127.0.0.2"),
                (LABEL_RESULT, "success")
            ]
        ),
        2.0,
        "the remaining series count on"
    );

    // `certwatch check --mx` reports every host and address and exits with the worst
    // status: dead's refused connection is CRITICAL.
    let root = dir.path().join("root.pem");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(["check", "--mx", "example.test", "--port", &p.to_string()])
        .args(["--dns-server", &knot.server(), "--timeout", "20s", "--json"])
        .arg("--ca-file")
        .arg(&root)
        .output()
        .expect("run certwatch check");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(output.status.code(), Some(2), "{report:#}");
    let rows: Vec<(String, String, String)> = report["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| {
            (
                a["host"].as_str().unwrap_or("").to_owned(),
                a["ip"].as_str().unwrap_or("").to_owned(),
                a["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let status = |host: &str, ip: Ipv4Addr, status: &str| {
        (host.to_owned(), ip.to_string(), status.to_owned())
    };
    assert_eq!(
        rows,
        [
            status(&mx1, MX1_A, "OK"),
            status(&mx1, MX1_B, "OK"),
            status(&dead, DEAD, "CRITICAL")
        ],
        "{report:#}"
    );
    assert_eq!(report["addresses"][0]["server_name"], "mx1.example.test");
}

async fn srv_targets_are_verified_for_the_services_domain() {
    let pki = Pki::new();
    let hosts = MailHosts::start(&pki).await;
    let knot = Knot::start(&mail_zone(hosts.port, true)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.pem"), &pki.root.pem).unwrap();
    let config = config(
        dir.path(),
        &format!(
            "dns:\n  servers: [\"{}\"]\ntargets:\n  - name: t\n    srv: _submission._tcp.example.test\n    starttls: smtp\n    timeout: 20s\n    trust: none\n    tls:\n      ca_file: root.pem\n",
            knot.server(),
        ),
    );
    let scrape = Exposition::new().probe(&config).await;
    let p = hosts.port;
    let (mx1, mx2) = (
        format!("mx1.example.test:{p}"),
        format!("mx2.example.test:{p}"),
    );
    assert_eq!(
        by_host(&scrape, PROBE_SUCCESS),
        [
            row(&mx1, MX1_A, 1.0),
            row(&mx1, MX1_B, 1.0),
            row(&mx2, MX2, 1.0)
        ],
        "every target verifies for example.test: {}\n{}",
        scrape.text,
        hosts.logs()
    );
    assert_eq!(scrape.value(DISCOVERED_HOSTS, &[(LABEL_TARGET, "t")]), 2.0);

    // A server_name replaces the domain: the leaves do not name it.
    let config = config_with_server_name(dir.path(), &knot);
    let scrape = Exposition::new().probe(&config).await;
    let reasons: Vec<String> = scrape
        .find(VERIFY_ERROR_INFO, &[(LABEL_TARGET, "t")])
        .into_iter()
        .map(|(labels, _)| labels[LABEL_REASON].clone())
        .collect();
    assert_eq!(reasons, ["name_mismatch"; 3], "{}", scrape.text);
}

fn config_with_server_name(dir: &Path, knot: &Knot) -> Config {
    config(
        dir,
        &format!(
            "dns:\n  servers: [\"{}\"]\ntargets:\n  - name: t\n    srv: _submission._tcp.example.test\n    server_name: other.test\n    starttls: smtp\n    timeout: 20s\n    trust: none\n    tls:\n      ca_file: root.pem\n",
            knot.server(),
        ),
    )
}

async fn null_mx_missing_domains_and_cname_loops_are_resolve_failures() {
    let knot = Knot::start(
        "null MX 0 .\nloop MX 10 loop1\nloop1 CNAME loop2\nloop2 CNAME loop1\n_noservice._tcp SRV 0 0 0 .\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = |key: &str, name: &str| {
        format!(
            "dns:\n  servers: [\"{}\"]\n  timeout: 3s\ntargets:\n  - name: t\n    {key}: {name}\n    timeout: 10s\n",
            knot.server()
        )
    };
    for (key, name, reason) in [
        ("mx", "null.example.test", "not_found"),
        ("mx", "nowhere.example.test", "not_found"),
        ("mx", "ns.example.test", "not_found"),
        ("srv", "_noservice._tcp.example.test", "not_found"),
    ] {
        let started = tokio::time::Instant::now();
        let scrape = Exposition::new()
            .probe(&config(dir.path(), &yaml(key, name)))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{name}: answered, not timed out"
        );
        let failures = scrape.find(PROBE_FAILURE_INFO, &[(LABEL_TARGET, "t")]);
        assert_eq!(failures.len(), 1, "{name}: {}", scrape.text);
        let (labels, _) = &failures[0];
        assert_eq!(
            (labels[LABEL_STAGE].as_str(), labels[LABEL_REASON].as_str()),
            ("resolve", reason),
            "{name}: {}",
            scrape.text
        );
        assert_eq!(labels[LABEL_IP], "", "{name}");
        assert!(
            !labels.contains_key(LABEL_HOST),
            "{name}: no host was found"
        );
        assert!(!scrape.has(DISCOVERED_HOSTS, &[]), "{name}");
    }
    // The loop is the host's failure: the MX answer named it, its address lookup ends.
    let started = tokio::time::Instant::now();
    let scrape = Exposition::new()
        .probe(&config(dir.path(), &yaml("mx", "loop.example.test")))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the loop ends, it does not time out"
    );
    let failures = scrape.find(PROBE_FAILURE_INFO, &[(LABEL_TARGET, "t")]);
    assert_eq!(failures.len(), 1, "{}", scrape.text);
    let (labels, _) = &failures[0];
    assert_eq!(labels[LABEL_HOST], "loop1.example.test:25");
    assert_eq!(labels[LABEL_STAGE], "resolve");
    assert_eq!(labels[LABEL_REASON], "not_found", "{}", scrape.text);
}

async fn answers_over_the_caps_are_cut_and_counted() {
    // 18 MX hosts, all at one address where nothing listens; and a host with 20
    // addresses.
    let mut records = String::new();
    for i in 0..18 {
        records.push_str(&format!(
            "many MX {} h{i:02}.many\nh{i:02}.many A 127.0.0.9\n",
            10 + i
        ));
    }
    records.push_str("wide MX 10 host.wide\n");
    for i in 1..=20 {
        records.push_str(&format!("host.wide A 127.0.1.{i}\n"));
    }
    let knot = Knot::start(&records).await;
    let port = shared_port(&[Ipv4Addr::new(127, 0, 0, 9)]);
    let dir = tempfile::tempdir().unwrap();
    let yaml = |name: &str| {
        format!(
            "dns:\n  servers: [\"{}\"]\ntargets:\n  - name: t\n    mx: {name}\n    port: {port}\n    timeout: 10s\n",
            knot.server()
        )
    };
    let scrape = Exposition::new()
        .probe(&config(dir.path(), &yaml("many.example.test")))
        .await;
    assert_eq!(scrape.value(DISCOVERED_HOSTS, &[(LABEL_TARGET, "t")]), 18.0);
    let probed: Vec<String> = by_host(&scrape, HANDSHAKE_SUCCESS)
        .into_iter()
        .map(|(host, _, _)| host)
        .collect();
    let expected: Vec<String> = (0..16)
        .map(|i| format!("h{i:02}.many.example.test:{port}"))
        .collect();
    assert_eq!(probed, expected, "the 16 most preferred: {}", scrape.text);

    let scrape = Exposition::new()
        .probe(&config(dir.path(), &yaml("wide.example.test")))
        .await;
    let host = format!("host.wide.example.test:{port}");
    assert_eq!(
        by_host(&scrape, HANDSHAKE_SUCCESS).len(),
        16,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            ADDRESSES_SKIPPED,
            &[(LABEL_TARGET, "t"), (LABEL_HOST, &host)]
        ),
        4.0,
        "{}",
        scrape.text
    );
    assert!(
        scrape
            .find(ADDRESSES_SKIPPED, &[])
            .iter()
            .all(|(l, _)| !l.contains_key(LABEL_IP)),
        "a count per host, not per address"
    );
}

async fn probe_endpoint_checks_what_mx_hosts_resolve_to_against_the_allow_list() {
    let pki = Pki::new();
    let hosts = MailHosts::start(&pki).await;
    let knot = Knot::start(&format!(
        "{}inside MX 10 mx1\n",
        mail_zone(hosts.port, true)
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.pem"), &pki.root.pem).unwrap();
    // 127.0.0.0/30 holds mx1's two addresses, not mx2's or dead's.
    std::fs::write(
        dir.path().join("certwatch.yml"),
        format!(
            "dns:\n  servers: [\"{}\"]\nprobe:\n  allow: [\"127.0.0.0/30:*\"]\nmodules:\n  mail:\n    trust: none\n    timeout: 20s\n    tls:\n      ca_file: root.pem\n",
            knot.server()
        ),
    )
    .unwrap();
    let exporter = Exporter::start(dir.path(), &["--config", "certwatch.yml"]);
    let p = hosts.port;
    let (status, body) = exporter.get(&format!("/probe?mx=example.test&port={p}&module=mail"));
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("mx2.example.test:{p} (127.0.0.4)"))
            && body.contains(&format!("dead.example.test:{p} (127.0.0.5)")),
        "{body}"
    );
    let (status, body) = exporter.get(&format!(
        "/probe?mx=inside.example.test&port={p}&module=mail"
    ));
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(&body);
    let mx1 = format!("mx1.example.test:{p}");
    for ip in ["127.0.0.2", "127.0.0.3"] {
        assert_eq!(
            scrape.value(PROBE_SUCCESS, &[(LABEL_HOST, &mx1), (LABEL_IP, ip)]),
            1.0,
            "{body}\n{}",
            hosts.logs()
        );
    }
    // The transcript shows the plan, then each address under its host.
    let (status, body) = exporter.get(&format!(
        "/probe?mx=inside.example.test&port={p}&module=mail&debug=true"
    ));
    assert_eq!(status, 200, "{body}");
    let order = [
        "discover:     every host of the MX records of inside.example.test\n".to_owned(),
        "resolve: the MX records of inside.example.test name 1 host(s) in ".to_owned(),
        format!("ms: mx1.example.test:{p}\n"),
        format!("resolve: mx1.example.test:{p}: 127.0.0.2, 127.0.0.3 in "),
        format!("address 127.0.0.2 of mx1.example.test:{p}:\n"),
        format!("connect: to 127.0.0.2:{p}\n"),
        "C: STARTTLS\n".to_owned(),
        "tls: handshake with SNI mx1.example.test".to_owned(),
        format!("address 127.0.0.3 of mx1.example.test:{p}:\n"),
        format!("connect: to 127.0.0.3:{p}\n"),
        "Metrics that would have been returned:".to_owned(),
    ];
    let mut from = 0;
    for step in &order {
        let at = body[from..]
            .find(step.as_str())
            .unwrap_or_else(|| panic!("{step:?} missing after byte {from}:\n{body}"));
        from += at + step.len();
    }
    // debug=true is refused by the allow list like any other request.
    let (status, body) = exporter.get(&format!(
        "/probe?mx=example.test&port={p}&module=mail&debug=true"
    ));
    assert_eq!(status, 403, "{body}");
    let (status, body) = exporter.get(&format!(
        "/probe?srv=_submission._tcp.example.test&port={p}"
    ));
    assert_eq!(status, 400, "port goes with mx only: {body}");
    let (status, body) = exporter.get("/probe?target=a.example.test:25&mx=example.test");
    assert_eq!(status, 400, "{body}");
}
