//! The hostile peers certwatch probes during the soak, each on 127.0.0.1, and the exact
//! series each must have: a good TLS server (root → intermediate → leaf), an expired
//! leaf, a server that never speaks, an SMTP server whose `220-` greeting never ends, a
//! server that answers the ClientHello with garbage, one that resets, one presenting a
//! 40-certificate chain, one that drips its greeting a byte a second, and a few hundred
//! targets on a port that refuses connections.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::support::hostile::{Behaviour, HostileServer};
use crate::support::pki::{Ca, Validity};
use crate::support::tls_server::{ServerSpec, TlsServer};

/// Every target's interval and timeout.
pub const INTERVAL: Duration = Duration::from_secs(15);
pub const TIMEOUT: Duration = Duration::from_secs(4);
/// Padding certificates after the leaf and its issuer in the huge chain: 40 in all.
const PADDING: usize = 38;

/// The series one target must have whenever the valid configuration is in force.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The `target` label.
    pub name: String,
    /// `certwatch_handshake_success`.
    pub handshake: bool,
    /// `certwatch_probe_failure_info{stage, reason}`, or none.
    pub failure: Option<(&'static str, &'static str)>,
    /// `certwatch_chain_verified`, or absent.
    pub verified: Option<bool>,
    /// `certwatch_verify_error_info{reason}`, or none.
    pub verify_reason: Option<&'static str>,
    /// Certificates reported (`certwatch_cert_info` per depth).
    pub certs: usize,
    /// The leaf's notAfter, when one is presented.
    pub leaf_not_after: Option<i64>,
    /// Whether the reload storm's smaller valid configuration drops it.
    pub dropped_by_small: bool,
    /// Its interval and timeout.
    pub interval: Duration,
    pub timeout: Duration,
    /// `certwatch_chain_issue_info{issue}`, exactly these.
    pub issues: &'static [&'static str],
}

impl Expect {
    fn failed(name: &str, stage: &'static str, reason: &'static str) -> Expect {
        Expect {
            name: name.to_owned(),
            handshake: false,
            failure: Some((stage, reason)),
            verified: None,
            verify_reason: None,
            certs: 0,
            leaf_not_after: None,
            dropped_by_small: false,
            interval: INTERVAL,
            timeout: TIMEOUT,
            issues: &[],
        }
    }
}

/// One peer as a configuration entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub address: SocketAddr,
    /// Extra YAML flow-mapping keys (`starttls: smtp`, `server_name: localhost`).
    pub extra: String,
}

/// The running peers; stopped when dropped.
pub struct Peers {
    pub entries: Vec<Entry>,
    pub expects: Vec<Expect>,
    /// The root every chain ends at: the targets' `ca_file`.
    pub root_pem: String,
    _tls: Vec<TlsServer>,
    _hostile: Vec<HostileServer>,
    _drip: JoinHandle<()>,
    /// Bound and never listening: connections to it are refused, and no other process
    /// can take the port during the soak.
    _closed: TcpSocket,
}

impl Peers {
    /// Starts every peer (on the current runtime) and `closed` targets on a refusing
    /// port, each with a label `padding` of `padding` bytes (none when 0); the last half
    /// of those are dropped by the small configuration.
    pub async fn start(closed: usize, padding: usize) -> Peers {
        let root = Ca::root("certwatch soak root");
        let intermediate = root.intermediate("certwatch soak intermediate", Validity::days(365));
        let good = intermediate.leaf(&["localhost"], Validity::days(90));
        let expired = intermediate.leaf(&["localhost"], Validity::expired());
        let huge = intermediate.leaf(&["localhost"], Validity::days(60));
        let mut huge_chain = huge.chain(&[&intermediate]);
        for i in 0..PADDING {
            huge_chain.push(Ca::root(&format!("certwatch soak padding {i}")).cert);
        }

        let good_server =
            TlsServer::start(ServerSpec::new(good.chain(&[&intermediate]), good.key())).await;
        let expired_server = TlsServer::start(ServerSpec::new(
            expired.chain(&[&intermediate]),
            expired.key(),
        ))
        .await;
        let huge_server = TlsServer::start(ServerSpec::new(huge_chain, huge.key())).await;
        let silent = HostileServer::start(Behaviour::Silent).await;
        let endless = HostileServer::start(Behaviour::EndlessContinuation).await;
        let garbage = HostileServer::start(Behaviour::Garbage).await;
        let reset = HostileServer::start(Behaviour::ResetAfterHello).await;
        let (drip_addr, drip) = drip_server().await;

        let closed_socket = TcpSocket::new_v4().expect("socket");
        closed_socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("bind");
        let closed_addr = closed_socket.local_addr().expect("addr");

        let sni = || "server_name: localhost".to_owned();
        let smtp = || "starttls: smtp".to_owned();
        let mut entries = vec![
            Entry {
                name: "good".into(),
                address: good_server.addr,
                extra: sni(),
            },
            Entry {
                name: "expired".into(),
                address: expired_server.addr,
                extra: sni(),
            },
            Entry {
                name: "silent".into(),
                address: silent.addr,
                extra: String::new(),
            },
            Entry {
                name: "smtp-endless-banner".into(),
                address: endless.addr,
                extra: smtp(),
            },
            Entry {
                name: "garbage".into(),
                address: garbage.addr,
                extra: String::new(),
            },
            Entry {
                name: "reset".into(),
                address: reset.addr,
                extra: String::new(),
            },
            Entry {
                name: "huge-chain".into(),
                address: huge_server.addr,
                extra: sni(),
            },
            Entry {
                name: "slow-drip".into(),
                address: drip_addr,
                extra: smtp(),
            },
        ];
        let mut expects = vec![
            Expect {
                name: "good".into(),
                handshake: true,
                failure: None,
                verified: Some(true),
                verify_reason: None,
                certs: 2,
                leaf_not_after: Some(good.not_after),
                dropped_by_small: false,
                interval: INTERVAL,
                timeout: TIMEOUT,
                issues: &[],
            },
            Expect {
                name: "expired".into(),
                handshake: true,
                failure: None,
                verified: Some(false),
                verify_reason: Some("expired"),
                certs: 2,
                leaf_not_after: Some(expired.not_after),
                dropped_by_small: false,
                interval: INTERVAL,
                timeout: TIMEOUT,
                issues: &[],
            },
            Expect::failed("silent", "handshake", "timeout"),
            Expect::failed("smtp-endless-banner", "starttls", "protocol_error"),
            Expect::failed("garbage", "handshake", "protocol_error"),
            Expect::failed("reset", "handshake", "reset"),
            Expect {
                name: "huge-chain".into(),
                handshake: true,
                failure: None,
                // The leaf and its issuer come first: the path is found among the
                // certificates kept (the first `MAX_CHAIN_LEN`).
                verified: Some(true),
                verify_reason: None,
                certs: certwatch::probe::tls::MAX_CHAIN_LEN,
                leaf_not_after: Some(huge.not_after),
                dropped_by_small: false,
                interval: INTERVAL,
                timeout: TIMEOUT,
                // Cut at the bound; the padding is self-signed and off the verified path.
                issues: &["root_included", "too_long", "unrelated"],
            },
            Expect::failed("slow-drip", "starttls", "timeout"),
        ];
        for i in 0..closed {
            let name = format!("closed-{i:04}");
            let extra = if padding == 0 {
                String::new()
            } else {
                format!("labels: {{padding: \"{}\"}}", "x".repeat(padding))
            };
            entries.push(Entry {
                name: name.clone(),
                address: closed_addr,
                extra,
            });
            let mut expect = Expect::failed(&name, "connect", "refused");
            expect.dropped_by_small = i >= closed / 2;
            expects.push(expect);
        }
        Peers {
            entries,
            expects,
            root_pem: root.pem.clone(),
            _tls: vec![good_server, expired_server, huge_server],
            _hostile: vec![silent, endless, garbage, reset],
            _drip: drip,
            _closed: closed_socket,
        }
    }
}

/// A server that sends an SMTP greeting one byte a second, forever: each byte comes
/// well within any per-read timeout, so only the probe's whole deadline ends it.
async fn drip_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(drip(tcp));
        }
    });
    (addr, task)
}

async fn drip(mut tcp: TcpStream) {
    let greeting = b"220-certwatch soak: one byte a second\r\n";
    for byte in greeting.iter().cycle() {
        if tcp.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
