//! Property tests of every STARTTLS reader, over real loopback sockets (issue 7, item 6).
//!
//! For each dialect of `StartTls::ALL` a scripted server plays the replies of a real
//! server (greetings and capability lists as Postfix, Dovecot, vsftpd, slapd, MySQL,
//! PostgreSQL, Prosody and INN send them), then the properties vary them:
//!
//! - split at any bytes and sent in step with the client's commands, the true replies
//!   always reach TLS;
//! - bytes the server sends with its last reply are refused (STARTTLS injection);
//! - mutated replies (flipped, cut, repeated, spliced with fragments of the protocol
//!   and junk), followed by a close, a reset or silence, always end in `Ok` or a failure
//!   of stage `starttls`, never a panic, and never later than the deadline.
//!
//! The hostile cases run on a paused clock, so a server that goes silent costs no real
//! time; a real-time watchdog catches a reader that spins without awaiting.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use certwatch::config::StartTls;
use certwatch::probe::outcome::{Failure, FailureKind, Phase, StartTlsReason};
use certwatch::probe::starttls::{upgrade, Context};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config as Cases;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

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

const CONTEXT: Context<'static> = Context {
    server_name: "example.org",
    xmpp_domain: None,
};

/// The probe deadline of every exchange.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How far past the deadline an answer may come: the timer's granularity.
const MARGIN: Duration = Duration::from_millis(5);

/// Real time one whole case may take before it is called a hang.
const WATCHDOG: Duration = Duration::from_secs(60);

// ---- The true replies of each dialect ------------------------------------------------

/// What a server sends: `steps[0]` first (after the client's first bytes when
/// `client_first`), then each next step after the client's next command.
#[derive(Clone, Debug)]
struct Script {
    client_first: bool,
    steps: Vec<Vec<u8>>,
}

fn lines(text: &[&str]) -> Vec<u8> {
    text.iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect()
}

/// One BER TLV, short or long form.
fn tlv(tag: u8, value: &[u8], long: bool) -> Vec<u8> {
    let mut out = vec![tag];
    if long || value.len() > 0x7f {
        out.push(0x84);
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    } else {
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
    out
}

/// An LDAP ExtendedResponse to message `id` with `code` and an optional name.
fn ldap_response(id: u8, code: u8, diagnostic: &str, name: Option<&str>, long: bool) -> Vec<u8> {
    let mut op = tlv(0x0a, &[code], false);
    op.extend(tlv(0x04, b"", false));
    op.extend(tlv(0x04, diagnostic.as_bytes(), false));
    if let Some(name) = name {
        op.extend(tlv(0x8a, name.as_bytes(), false));
    }
    let mut body = tlv(0x02, &[id], false);
    body.extend(tlv(0x78, &op, long));
    tlv(0x30, &body, long)
}

const LDAP_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// A MySQL packet with sequence id `seq`.
fn mysql_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(payload);
    out
}

/// A protocol-10 initial handshake with capability flags `caps` (`short`: 4.0 style,
/// ending after the lower flags).
fn mysql_handshake(version: &str, caps: u32, short: bool) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(version.as_bytes());
    p.push(0);
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    if !short {
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    }
    mysql_packet(0, &p)
}

const XMPP_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='c2s-1' from='example.org' \
    version='1.0' xml:lang='en'>";
const XMPP_S2S_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    id='s2s-1' from='example.org' version='1.0'>";
const XMPP_FEATURES: &str = "<stream:features><starttls \
    xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms \
    xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
    <mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
const XMPP_PREFIXED_FEATURES: &str = "<stream:features>\n  <tls:starttls \
    xmlns:tls='urn:ietf:params:xml:ns:xmpp-tls'/>\n  <![CDATA[ ]]>\n</stream:features>";
const XMPP_PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// The replies of a server that offers STARTTLS; `variant` picks among real servers'
/// ways of saying it. The match is exhaustive: a new dialect needs a script here.
fn true_script(protocol: StartTls, variant: usize) -> Script {
    let server_first = |steps: Vec<Vec<u8>>| Script {
        client_first: false,
        steps,
    };
    let client_first = |steps: Vec<Vec<u8>>| Script {
        client_first: true,
        steps,
    };
    match protocol {
        StartTls::None => server_first(Vec::new()),
        StartTls::Smtp | StartTls::Lmtp => server_first(match variant % 2 {
            0 => vec![
                lines(&["220 mx.example.org ESMTP Postfix (Debian/GNU)"]),
                lines(&[
                    "250-mx.example.org",
                    "250-PIPELINING",
                    "250-SIZE 10240000",
                    "250-VRFY",
                    "250-ETRN",
                    "250-STARTTLS",
                    "250-ENHANCEDSTATUSCODES",
                    "250-8BITMIME",
                    "250-DSN",
                    "250-SMTPUTF8",
                    "250 CHUNKING",
                ]),
                lines(&["220 2.0.0 Ready to start TLS"]),
            ],
            _ => vec![
                lines(&[
                    "220-mx.example.org ESMTP",
                    "220-no UCE",
                    "220 ready",
                ]),
                lines(&["250-mx.example.org hello", "250 starttls"]),
                lines(&["220"]),
            ],
        }),
        StartTls::Imap => server_first(match variant % 2 {
            0 => vec![
                lines(&["* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready."]),
                lines(&["a002 OK Begin TLS negotiation now."]),
            ],
            _ => vec![
                lines(&["* OK IMAP4rev1 Service Ready"]),
                lines(&[
                    "* CAPABILITY IMAP4rev1 starttls AUTH=PLAIN",
                    "* OK still here",
                    "a001 OK CAPABILITY completed",
                ]),
                lines(&["a002 OK Begin TLS negotiation now"]),
            ],
        }),
        StartTls::Pop3 => server_first(match variant % 2 {
            0 => vec![
                lines(&["+OK Dovecot (Debian) ready."]),
                lines(&[
                    "+OK",
                    "CAPA",
                    "TOP",
                    "UIDL",
                    "RESP-CODES",
                    "PIPELINING",
                    "AUTH-RESP-CODE",
                    "STLS",
                    "USER",
                    "SASL PLAIN",
                    ".",
                ]),
                lines(&["+OK Begin TLS negotiation now."]),
            ],
            _ => vec![
                lines(&["+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"]),
                lines(&["-ERR unknown command"]),
                lines(&["+OK"]),
            ],
        }),
        StartTls::Ftp => server_first(match variant % 2 {
            0 => vec![
                lines(&["220 (vsFTPd 3.0.3)"]),
                lines(&[
                    "211-Features:",
                    " AUTH TLS",
                    " EPRT",
                    " EPSV",
                    " MDTM",
                    " PASV",
                    " PBSZ",
                    " PROT",
                    " REST STREAM",
                    " SIZE",
                    " TVFS",
                    " UTF8",
                    "211 End",
                ]),
                lines(&["234 Proceed with negotiation."]),
            ],
            _ => vec![
                lines(&["120 ready in 1 minute", "220-Welcome", "220 ready"]),
                lines(&["502 FEAT not implemented"]),
                lines(&["234 AUTH TLS successful"]),
            ],
        }),
        StartTls::Ldap => client_first(vec![ldap_response(
            1,
            0,
            "",
            Some(LDAP_STARTTLS),
            variant % 2 == 1,
        )]),
        StartTls::Postgres => client_first(vec![b"S".to_vec()]),
        StartTls::Mysql => server_first(vec![match variant % 3 {
            0 => mysql_handshake("8.0.36", 0xdfff_ffff, false),
            1 => mysql_handshake("10.11.6-MariaDB-0+deb12u1", 0x00a0_fffe, false),
            _ => mysql_handshake("4.0.30", 0x0000_0800 | 0x0000_0001, true),
        }]),
        StartTls::Xmpp => client_first(match variant % 2 {
            0 => vec![
                format!("{XMPP_HEADER}{XMPP_FEATURES}").into_bytes(),
                XMPP_PROCEED.as_bytes().to_vec(),
            ],
            _ => vec![
                format!("{XMPP_HEADER}\n{XMPP_PREFIXED_FEATURES}").into_bytes(),
                b"<proceed xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"></proceed>".to_vec(),
            ],
        }),
        StartTls::XmppServer => client_first(vec![
            format!("{XMPP_S2S_HEADER}{XMPP_FEATURES}").into_bytes(),
            XMPP_PROCEED.as_bytes().to_vec(),
        ]),
        StartTls::Nntp => server_first(vec![
            lines(&["200 news.example.org InterNetNews NNRP server INN 2.7.1 ready (posting ok)"]),
            lines(&[
                "101 Capability list:",
                "VERSION 2",
                "IMPLEMENTATION INN 2.7.1",
                "AUTHINFO",
                "HDR",
                "LIST ACTIVE ACTIVE.TIMES COUNTS DISTRIB.PATS HEADERS MODERATORS MOTD NEWSGROUPS OVERVIEW.FMT SUBSCRIPTIONS",
                "NEWNEWS",
                "OVER",
                "POST",
                "READER",
                "STARTTLS",
                "XPAT",
                ".",
            ]),
            lines(&["382 Begin TLS negotiation now"]),
        ]),
        StartTls::Sieve => server_first(vec![
            lines(&[
                "\"IMPLEMENTATION\" \"Dovecot (Debian) Pigeonhole\"",
                "\"SIEVE\" \"fileinto reject envelope encoded-character vacation subaddress\"",
                "\"NOTIFY\" \"mailto\"",
                "\"SASL\" \"\"",
                "\"STARTTLS\"",
                "\"VERSION\" \"1.0\"",
                "OK \"Dovecot (Debian) ready.\"",
            ]),
            lines(&["OK \"Begin TLS negotiation now.\""]),
        ]),
    }
}

/// Pieces of each protocol that mutations splice in: replies that end an exchange
/// early, lines that are almost right, and the protocol's own delimiters.
fn fragments(protocol: StartTls) -> Vec<Vec<u8>> {
    let text =
        |items: &[&str]| -> Vec<Vec<u8>> { items.iter().map(|s| s.as_bytes().to_vec()).collect() };
    let mut own = match protocol {
        StartTls::None => Vec::new(),
        StartTls::Smtp | StartTls::Lmtp => text(&[
            "220 ", "220-", "250-STARTTLS\r\n", "250 STARTTLS\r\n", "250-", "250", "421 4.3.2 shutting down\r\n",
            "554 5.7.1 go away\r\n", "454 4.7.0 TLS not available\r\n", "2201", "999 x\r\n", "250-x\r\n",
        ]),
        StartTls::Imap => text(&[
            "* OK ", "* BYE shutting down\r\n", "* PREAUTH [CAPABILITY STARTTLS] hi\r\n", "* CAPABILITY STARTTLS\r\n",
            "a001 OK\r\n", "a001 NO\r\n", "a002 BAD\r\n", "a002 OK\r\n", "+ go ahead\r\n", "* 1 FETCH {5}\r\n",
            "[CAPABILITY ", "]", "a00\x7f OK\r\n", "* \r\n",
        ]),
        StartTls::Pop3 => text(&["+OK\r\n", "-ERR no\r\n", "STLS\r\n", ".\r\n", "..STLS\r\n", "+OK capa\r\n", "+ok"]),
        StartTls::Ftp => text(&[
            "220 ready\r\n", "120 wait\r\n", "211-", "211 End\r\n", " AUTH TLS\r\n", " AUTH SSL;TLS\r\n",
            "234 go\r\n", "502 no\r\n", "534 policy\r\n", "500 ?\r\n", "421 bye\r\n", "220-",
        ]),
        StartTls::Nntp => text(&[
            "200 ", "201 ", "101 caps\r\n", "STARTTLS\r\n", ".\r\n", "382 go\r\n", "500 what\r\n", "580 no\r\n",
            "502 no\r\n", "400 bye\r\n",
        ]),
        StartTls::Sieve => text(&[
            "\"STARTTLS\"\r\n", "OK\r\n", "NO \"x\"\r\n", "BYE\r\n", "\"SASL\" \"PLAIN\"\r\n", "{5}\r\n",
            "\"unterminated\r\n", "\"a\\\"b\"\r\n", "\"\\", "ok ",
        ]),
        StartTls::Ldap => vec![
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            vec![0x30, 0x80],
            vec![0x30, 0x81],
            vec![0x30, 0x85, 0, 0, 0, 0, 1],
            vec![0x02, 0x01, 0x00],
            vec![0x02, 0x05, 0x80, 0, 0, 0, 1],
            vec![0x0a, 0x01, 0x02],
            vec![0x0a, 0x01, 0x34],
            vec![0x1f, 0x01, 0x00],
            vec![0x8a, 0x00],
            vec![0x30, 0x00],
            ldap_response(0, 52, "shutting down", Some("1.3.6.1.4.1.1466.20036"), false),
            ldap_response(1, 2, "unsupported extended operation", None, false),
            ldap_response(1, 53, "", Some(LDAP_STARTTLS), true),
            ldap_response(2, 0, "", None, false),
        ],
        StartTls::Postgres => vec![
            b"S".to_vec(),
            b"N".to_vec(),
            b"E".to_vec(),
            b"\0\0\0\x08".to_vec(),
            b"\0\0\x10\x05".to_vec(),
            b"\0\0\0\x04".to_vec(),
            b"SFATAL\0C53300\0Msorry, too many clients already\0\0".to_vec(),
            b"\xff\xff\xff\xff".to_vec(),
            b"could not fork new process for connection: Resource temporarily unavailable\n\0".to_vec(),
        ],
        StartTls::Mysql => vec![
            vec![0xff, 0xff, 0xff, 0x00],
            vec![0x00, 0x00, 0x00, 0x00],
            vec![0x05, 0x00, 0x00, 0x01],
            mysql_packet(0, b"\xff\x69\x04#HY000Host '10.0.0.1' is not allowed to connect"),
            mysql_packet(0, b"\xff\x10\x04Too many connections"),
            mysql_packet(0, b"\x09"),
            mysql_handshake("5.5.5", 0x0000_f7ff, false),
            mysql_handshake("8.0", 0xffff_ffff, true),
            vec![0x00, 0x08],
        ],
        StartTls::Xmpp | StartTls::XmppServer => text(&[
            "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            "<stream:error><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>x</text></stream:error>",
            "</stream:stream>", "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", "<!-- comment -->",
            "<![CDATA[x]]>", "<![CDATA[", "<?pi x?>", "<?xml", "<a:b>", " xmlns:x='y'", "&amp;", "&bogus;",
            "&#x0;", "&#1114112;", "<x/>", "</x>", "<stream:features/>", " version='0.9'", " version='x.y'",
            "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>", "'", "\"", ">", "<", "/>",
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", XMPP_PROCEED, " a='1' a='2'", "=",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        ]),
    };
    own.extend([
        b"\r\n".to_vec(),
        b"\n".to_vec(),
        b"\r".to_vec(),
        b"\0".to_vec(),
        b"\xff\xfe\xc3".to_vec(),
        "é☃".as_bytes().to_vec(),
        b"\x16\x03\x01\x00\x05".to_vec(),
    ]);
    own
}

// ---- Mutations -----------------------------------------------------------------------

/// What a mutation splices in.
#[derive(Clone, Debug)]
enum Piece {
    /// One of the protocol's [`fragments`].
    Fragment(Index),
    /// Random bytes.
    Bytes(Vec<u8>),
    /// A run of `a` this long (past `MAX_LINE` when over 8192).
    Run(usize),
}

impl Piece {
    fn bytes(&self, pool: &[Vec<u8>]) -> Vec<u8> {
        match self {
            Piece::Fragment(i) if !pool.is_empty() => pool[i.index(pool.len())].clone(),
            Piece::Fragment(_) => Vec::new(),
            Piece::Bytes(b) => b.clone(),
            Piece::Run(n) => vec![b'a'; *n],
        }
    }
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => any::<Index>().prop_map(Piece::Fragment),
        2 => prop::collection::vec(any::<u8>(), 1..16).prop_map(Piece::Bytes),
        1 => prop_oneof![1usize..300, 8000usize..8300, 16_300usize..16_500].prop_map(Piece::Run),
    ]
}

/// One edit of a script; indexes apply to whatever script the earlier edits left.
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, Index, u8),
    Insert(Index, Index, Piece),
    Replace(Index, Piece),
    Truncate(Index, Index),
    DropStep(Index),
    /// Repeats a line of a step this many times (reply-length limits).
    RepeatLine(Index, Index, usize),
    /// Adds a step at the end.
    Append(Piece),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => (any::<Index>(), any::<Index>(), 1u8..).prop_map(|(s, b, x)| Edit::Flip(s, b, x)),
        4 => (any::<Index>(), any::<Index>(), piece()).prop_map(|(s, at, p)| Edit::Insert(s, at, p)),
        2 => (any::<Index>(), piece()).prop_map(|(s, p)| Edit::Replace(s, p)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(s, at)| Edit::Truncate(s, at)),
        1 => any::<Index>().prop_map(Edit::DropStep),
        1 => (any::<Index>(), any::<Index>(), 2usize..300).prop_map(|(s, l, n)| Edit::RepeatLine(s, l, n)),
        1 => piece().prop_map(Edit::Append),
    ]
}

fn apply(script: &mut Script, edit: &Edit, pool: &[Vec<u8>]) {
    let steps = &mut script.steps;
    if steps.is_empty() {
        if let Edit::Append(p) = edit {
            steps.push(p.bytes(pool));
        }
        return;
    }
    let n = steps.len();
    match edit {
        Edit::Flip(s, b, x) => {
            let step = &mut steps[s.index(n)];
            if !step.is_empty() {
                let at = b.index(step.len());
                step[at] ^= x;
            }
        }
        Edit::Insert(s, at, p) => {
            let step = &mut steps[s.index(n)];
            let at = at.index(step.len() + 1);
            step.splice(at..at, p.bytes(pool));
        }
        Edit::Replace(s, p) => steps[s.index(n)] = p.bytes(pool),
        Edit::Truncate(s, at) => {
            let step = &mut steps[s.index(n)];
            let at = at.index(step.len() + 1);
            step.truncate(at);
        }
        Edit::DropStep(s) => {
            steps.remove(s.index(n));
        }
        Edit::RepeatLine(s, l, count) => {
            let step = &mut steps[s.index(n)];
            let lines: Vec<Vec<u8>> = step
                .split_inclusive(|b| *b == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            if !lines.is_empty() {
                let at = l.index(lines.len());
                let repeated = lines[at].repeat(*count);
                let mut out = lines[..at].concat();
                out.extend(repeated);
                out.extend(lines[at + 1..].concat());
                *step = out;
            }
        }
        Edit::Append(p) => steps.push(p.bytes(pool)),
    }
}

// ---- The exchange --------------------------------------------------------------------

/// How the scripted server ends after its last step.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Closes its side and reads what the client still sends.
    Close,
    /// Sends nothing more and keeps the connection open.
    Silent,
    /// Resets the connection.
    Reset,
}

/// How the steps are sent.
#[derive(Clone, Debug)]
enum Delivery {
    /// All at once, as soon as the connection is accepted.
    Eager,
    /// Each step after the client's command, each split at these points.
    Lockstep(Vec<Index>),
}

/// Runs `upgrade(protocol)` against a server playing `script`; returns its result and
/// the (tokio) time it took.
async fn exchange(
    protocol: StartTls,
    script: Script,
    delivery: Delivery,
    ending: Ending,
) -> (Result<(), Failure>, Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (mut server, _) = listener.accept().await.expect("accept");
    server.set_nodelay(true).expect("nodelay");
    let server = tokio::spawn(async move {
        let mut commands = [0u8; 4096];
        for (i, step) in script.steps.iter().enumerate() {
            if let Delivery::Lockstep(splits) = &delivery {
                if i > 0 || script.client_first {
                    match server.read(&mut commands).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
                let mut cuts: Vec<usize> = splits.iter().map(|s| s.index(step.len() + 1)).collect();
                cuts.push(step.len());
                cuts.sort_unstable();
                let mut from = 0;
                for cut in cuts {
                    if server.write_all(&step[from..cut]).await.is_err() {
                        return;
                    }
                    from = cut;
                    tokio::task::yield_now().await;
                }
            } else if server.write_all(step).await.is_err() {
                return;
            }
        }
        match ending {
            Ending::Close => {
                let _ = server.shutdown().await;
            }
            Ending::Silent => {}
            Ending::Reset => {
                let _ = server.set_zero_linger();
                return;
            }
        }
        // Read until the client is done, so that a close is a FIN, not a reset.
        while let Ok(1..) = server.read(&mut commands).await {}
    });
    let start = Instant::now();
    let result = upgrade(protocol, client, start + TIMEOUT, CONTEXT).await;
    let took = start.elapsed();
    // Dropping the stream ends the server's reading.
    let result = result.map(drop);
    server.await.expect("the scripted server does not panic");
    (result, took)
}

/// Runs `case` on its own thread and runtime (paused clock when `paused`), failing the
/// test when it takes longer than [`WATCHDOG`] of real time.
fn run_case<F, Fut, T>(paused: bool, case: F) -> Result<T, TestCaseError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(paused)
            .build()
            .expect("runtime");
        let _ = tx.send(runtime.block_on(case()));
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => Ok(value),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "no answer after {WATCHDOG:?} of real time: a reader spins without awaiting"
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => Err(TestCaseError::fail("the case ended without an answer")),
        },
    }
}

fn ending() -> impl Strategy<Value = Ending> {
    select(vec![Ending::Close, Ending::Silent, Ending::Reset])
}

fn lockstep() -> impl Strategy<Value = Delivery> {
    prop::collection::vec(any::<Index>(), 0..4).prop_map(Delivery::Lockstep)
}

proptest! {
    #![proptest_config(cases(24))]

    /// The true replies reach TLS however TCP splits them.
    #[test]
    fn every_dialect_reaches_tls_however_the_replies_are_split(
        variant in 0usize..6,
        delivery in prop_oneof![1 => Just(Delivery::Eager), 3 => lockstep()],
    ) {
        for &protocol in StartTls::ALL {
            let script = true_script(protocol, variant);
            let delivery = delivery.clone();
            let (result, _) = run_case(false, move || {
                exchange(protocol, script, delivery, Ending::Silent)
            })?;
            prop_assert!(result.is_ok(), "{protocol}: {result:?}");
        }
    }

    /// Bytes sent with the last reply would be read by the TLS client as the server's
    /// (CVE-2021-23222 and its kin): the exchange refuses them.
    #[test]
    fn bytes_sent_with_the_last_reply_are_refused(
        variant in 0usize..6,
        junk in prop_oneof![
            prop::collection::vec(any::<u8>(), 1..64),
            Just(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec()),
            Just(b"250 PIPELINED\r\n".to_vec()),
        ],
    ) {
        for &protocol in StartTls::ALL {
            if protocol == StartTls::None {
                continue;
            }
            let mut script = true_script(protocol, variant);
            script.steps.last_mut().expect("a reply").extend_from_slice(&junk);
            let (result, _) = run_case(false, move || {
                exchange(protocol, script, Delivery::Lockstep(Vec::new()), Ending::Silent)
            })?;
            let failure = result.expect_err("injected bytes accepted");
            prop_assert_eq!(
                failure.kind,
                FailureKind::StartTls(StartTlsReason::ProtocolError),
                "{}: {}", protocol, failure.detail
            );
            prop_assert!(failure.detail.contains("unexpected bytes"), "{protocol}: {}", failure.detail);
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// Whatever the server sends, and however it stops, the exchange ends by the
    /// deadline in success or a `starttls` failure with its evidence.
    #[test]
    fn hostile_replies_end_in_a_starttls_failure_by_the_deadline(
        variant in 0usize..6,
        edits in prop::collection::vec(edit(), 1..6),
        ending in ending(),
        eager in any::<bool>(),
        splits in prop::collection::vec(any::<Index>(), 0..3),
    ) {
        for &protocol in StartTls::ALL {
            let pool = fragments(protocol);
            let mut script = true_script(protocol, variant);
            for edit in &edits {
                apply(&mut script, edit, &pool);
            }
            let delivery = if eager { Delivery::Eager } else { Delivery::Lockstep(splits.clone()) };
            let (result, took) = run_case(true, move || exchange(protocol, script, delivery, ending))?;
            prop_assert!(took <= TIMEOUT + MARGIN, "{protocol}: answered after {took:?}");
            if let Err(failure) = result {
                prop_assert_eq!(failure.kind.stage(), Phase::StartTls, "{}: {:?}", protocol, failure);
                prop_assert!(!failure.detail.is_empty(), "{protocol}: no evidence");
            }
        }
    }
}

/// `StartTls::None` reads nothing, so nothing the server sends can fail it.
#[test]
fn no_starttls_reads_nothing() {
    let script = Script {
        client_first: false,
        steps: vec![b"220 hello\r\n".to_vec()],
    };
    let (result, took) = run_case(true, move || {
        exchange(StartTls::None, script, Delivery::Eager, Ending::Silent)
    })
    .expect("answered");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(took, Duration::ZERO);
}
