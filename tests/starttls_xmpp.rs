//! XMPP STARTTLS against scripted servers: client and server streams, missing and
//! refused STARTTLS, stream errors, endless features and silence, each ending in its
//! failure class within the probe's bounds.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use certwatch::metrics::names::*;
use rustls::ServerConfig;
use support::hostile::{Behaviour, HostileServer};
use support::pki::{Ca, Validity};
use support::tls_server::{serve_until_closed, ServerSpec};
use support::transcript::dialogue;
use support::{Harness, Scrape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='c2s-1' from='example.org' \
    version='1.0' xml:lang='en'>";
const STARTTLS_FEATURE: &str =
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// What a scripted server says.
#[derive(Clone)]
struct XmppScript {
    /// Sent once the client's stream header has arrived: a header and features.
    opening: String,
    /// Sent once `<starttls/>` has arrived; a TLS handshake follows `<proceed/>`.
    reply: String,
    /// After the opening, send `<mechanism>` elements forever.
    endless: bool,
}

impl XmppScript {
    /// A prosody-like server that requires and grants STARTTLS.
    fn good() -> Self {
        Self::with_features(&format!(
            "{STARTTLS_FEATURE}<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
             node='http://prosody.im' ver='x4nL+Yk='/>"
        ))
    }

    fn with_features(features: &str) -> Self {
        Self {
            opening: format!("{SERVER_HEADER}<stream:features>{features}</stream:features>"),
            reply: PROCEED.into(),
            endless: false,
        }
    }
}

/// A running scripted server; stops when dropped.
struct XmppServer {
    addr: SocketAddr,
    /// The stream header each client sent.
    headers: mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
}

impl XmppServer {
    async fn start(script: XmppScript, tls: Arc<ServerConfig>) -> XmppServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, headers) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let conn = serve(
                    tcp,
                    script.clone(),
                    TlsAcceptor::from(tls.clone()),
                    tx.clone(),
                );
                tokio::spawn(conn);
            }
        });
        XmppServer {
            addr,
            headers,
            task,
        }
    }
}

impl Drop for XmppServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut tcp: TcpStream,
    script: XmppScript,
    acceptor: TlsAcceptor,
    headers: mpsc::UnboundedSender<String>,
) {
    let Some(header) = read_until(&mut tcp, |s| {
        s.find("<stream:stream")
            .is_some_and(|at| s[at..].contains('>'))
    })
    .await
    else {
        return;
    };
    let _ = headers.send(header);
    if tcp.write_all(script.opening.as_bytes()).await.is_err() {
        return;
    }
    if script.endless {
        while tcp.write_all(b"<mechanism>PLAIN</mechanism>").await.is_ok() {}
        return;
    }
    if read_until(&mut tcp, |s| s.contains("<starttls") && s.contains("/>"))
        .await
        .is_none()
        || tcp.write_all(script.reply.as_bytes()).await.is_err()
    {
        return;
    }
    if script.reply.starts_with("<proceed") {
        if let Ok(tls) = acceptor.accept(tcp).await {
            serve_until_closed(tls).await;
        }
    }
}

/// Reads until what arrived satisfies `done`; `None` if the client closes first.
async fn read_until(tcp: &mut TcpStream, done: impl Fn(&str) -> bool) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while seen.len() < 16 * 1024 {
        let n = tcp.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if done(&text) {
            return Some(text.into_owned());
        }
    }
    None
}

struct Pki {
    root: Ca,
    spec: ServerSpec,
    not_after: i64,
}

fn pki() -> Pki {
    let root = Ca::root("xmpp root");
    let inter = root.intermediate("xmpp intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(45));
    Pki {
        spec: ServerSpec::new(leaf.chain(&[&inter]), leaf.key()),
        not_after: leaf.not_after,
        root,
    }
}

/// One target at `addr`; `extra` holds more indented target keys.
fn yaml(h: &Harness, root: &Ca, addr: SocketAddr, starttls: &str, extra: &str) -> String {
    h.write("root.pem", &root.pem);
    format!(
        "targets:\n  - address: \"{addr}\"\n    name: t\n    server_name: localhost\n    \
         starttls: {starttls}\n{extra}    trust: none\n    tls:\n      ca_file: root.pem\n"
    )
}

/// Probes a scripted server; the scrape, the header the server received and the
/// leaf's notAfter.
async fn probe_xmpp(script: XmppScript, starttls: &str, extra: &str) -> (Scrape, String, i64) {
    let pki = pki();
    let mut server = XmppServer::start(script, pki.spec.config()).await;
    let h = Harness::new();
    let (_, scrape) = h
        .probe(&yaml(&h, &pki.root, server.addr, starttls, extra))
        .await;
    let header = server.headers.try_recv().unwrap_or_default();
    (scrape, header, pki.not_after)
}

fn failure(scrape: &Scrape) -> (String, String) {
    let t = [(LABEL_TARGET, "t")];
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t), 0.0, "{}", scrape.text);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t), 0.0);
    assert!(!scrape.has(CERT_INFO, &[]));
    (
        scrape.label(PROBE_FAILURE_INFO, &t, LABEL_STAGE),
        scrape.label(PROBE_FAILURE_INFO, &t, LABEL_REASON),
    )
}

#[tokio::test]
async fn client_stream_with_starttls_succeeds_and_opens_to_the_configured_domain() {
    let (scrape, header, not_after) =
        probe_xmpp(XmppScript::good(), "xmpp", "    xmpp_domain: example.org\n").await;
    let t = [(LABEL_TARGET, "t")];
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t), 1.0, "{}", scrape.text);
    assert_eq!(scrape.value(CHAIN_VERIFIED, &t), 1.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t), 1.0);
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &[(LABEL_DEPTH, "0")]),
        not_after as f64
    );
    assert!(scrape.has(PROBE_PHASE_DURATION, &[(LABEL_PHASE, "starttls")]));
    assert!(header.contains("to='example.org'"), "{header}");
    assert!(header.contains("xmlns='jabber:client'"), "{header}");
    assert!(
        header.contains("xmlns:stream='http://etherx.jabber.org/streams'"),
        "{header}"
    );
}

#[tokio::test]
async fn server_stream_succeeds_and_opens_jabber_server_to_the_server_name() {
    let mut script = XmppScript::good();
    script.opening = script.opening.replace("jabber:client", "jabber:server");
    let (scrape, header, _) = probe_xmpp(script, "xmpp_server", "").await;
    let t = [(LABEL_TARGET, "t")];
    assert_eq!(scrape.value(PROBE_SUCCESS, &t), 1.0, "{}", scrape.text);
    assert_eq!(scrape.value(CHAIN_VERIFIED, &t), 1.0);
    assert!(header.contains("xmlns='jabber:server'"), "{header}");
    assert!(header.contains("to='localhost'"), "{header}");
}

#[tokio::test]
async fn features_without_starttls_report_starttls_not_offered() {
    let script = XmppScript::with_features(
        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>",
    );
    let (scrape, _, _) = probe_xmpp(script, "xmpp", "").await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "starttls_not_offered".into())
    );
}

#[tokio::test]
async fn failure_to_starttls_reports_starttls_rejected() {
    let mut script = XmppScript::good();
    script.reply = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>".into();
    let (scrape, _, _) = probe_xmpp(script, "xmpp", "").await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "starttls_rejected".into())
    );
}

#[tokio::test]
async fn a_host_unknown_stream_error_reports_service_unavailable() {
    let mut script = XmppScript::good();
    script.opening = format!(
        "{SERVER_HEADER}<stream:error>\
         <host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         </stream:error></stream:stream>"
    );
    let (scrape, _, _) = probe_xmpp(script, "xmpp", "    xmpp_domain: nowhere.test\n").await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "service_unavailable".into())
    );
}

#[tokio::test]
async fn endless_features_are_cut_off_quickly_as_a_protocol_error() {
    let mut script = XmppScript::with_features("");
    script.opening = format!("{SERVER_HEADER}<stream:features>");
    script.endless = true;
    let (scrape, _, _) = probe_xmpp(script, "xmpp", "    timeout: 10s\n").await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "protocol_error".into())
    );
    let took = scrape.value(PROBE_DURATION, &[(LABEL_TARGET, "t")]);
    assert!(took < 2.0, "the probe took {took}s to hit the size limit");
}

#[tokio::test]
async fn a_silent_server_times_out_in_starttls() {
    let server = HostileServer::start(Behaviour::Silent).await;
    let h = Harness::new();
    let root = Ca::root("unused");
    let config = yaml(&h, &root, server.addr, "xmpp", "    timeout: 1s\n");
    let (_, scrape) = tokio::time::timeout(std::time::Duration::from_secs(10), h.probe(&config))
        .await
        .expect("the probe ended by itself");
    assert_eq!(failure(&scrape), ("starttls".into(), "timeout".into()));
    let took = scrape.value(PROBE_DURATION, &[(LABEL_TARGET, "t")]);
    assert!(took < 3.0, "the probe took {took}s, past its 1s timeout");
}

// Transcripts (`/probe?debug=true`, `check --verbose`).

async fn transcript_of(script: XmppScript, extra: &str) -> (String, Vec<String>) {
    let pki = pki();
    let server = XmppServer::start(script, pki.spec.config()).await;
    let h = Harness::new();
    let (_, text) = h
        .transcript(&yaml(&h, &pki.root, server.addr, "xmpp", extra))
        .await;
    let said = dialogue(&text);
    (text, said)
}

#[tokio::test]
async fn the_xmpp_transcript_shows_each_element_in_order() {
    let (text, said) = transcript_of(XmppScript::good(), "    xmpp_domain: example.org\n").await;
    assert!(
        said[0].starts_with("C: <?xml version='1.0'?><stream:stream ")
            && said[0].contains("to='example.org'"),
        "{text}"
    );
    assert!(said[1].starts_with("S: <?xml version='1.0'?>"), "{text}");
    let server_said: Vec<&str> = said.iter().filter_map(|l| l.strip_prefix("S: ")).collect();
    let elements = server_said.concat();
    assert!(
        elements.contains(&format!("<stream:features>{STARTTLS_FEATURE}")),
        "every byte the server sent is shown, in order:\n{text}"
    );
    let starttls = said
        .iter()
        .position(|l| l.starts_with("C: <starttls"))
        .expect("the request");
    assert_eq!(said[starttls + 1], format!("S: {PROCEED}"), "{text}");
    assert_eq!(said.len(), starttls + 2, "{text}");
    assert!(text.contains("xmpp domain:  example.org\n"), "{text}");
    assert!(text.contains("  result:      success\n"), "{text}");
}

#[tokio::test]
async fn endless_xmpp_features_keep_a_bounded_transcript() {
    let mut script = XmppScript::good();
    script.opening = format!("{SERVER_HEADER}<stream:features>");
    script.endless = true;
    let (text, said) = transcript_of(script, "    timeout: 2s\n").await;
    assert_eq!(
        said.len(),
        certwatch::probe::transcript::MAX_LINES,
        "{text}"
    );
    assert!(
        text.contains(" more line(s) of dialogue not shown (a transcript keeps 200)"),
        "{text}"
    );
    assert!(
        text.contains("  result:      failed in starttls ("),
        "{text}"
    );
}
