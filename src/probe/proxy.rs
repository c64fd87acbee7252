//! Reaching an endpoint through a proxy: SOCKS5 (with tokio-socks) or HTTP CONNECT
//! (over the bounded line reader), giving a [`Connection`] the later stages use as if
//! it were direct.
//!
//! Every reply is read by the probe's deadline and within a size limit: a SOCKS5 reply
//! has a fixed shape (at most 262 bytes), an HTTP reply at most [`MAX_REPLY_LINES`]
//! lines of [`MAX_LINE`](super::line_io::MAX_LINE) bytes. A proxy that stalls, refuses, asks for credentials or
//! answers garbage ends the probe with a `connect` failure: [`ProxyError`] says which,
//! with the proxy's own words as evidence. The password goes to the proxy and nowhere
//! else: no error or detail quotes the request.
//!
//! The proxy's own address is resolved like the endpoint's; connecting to it fails as
//! any connect does (`refused`, `unreachable`, ...), with the proxy named in the detail.
//! A transcript being recorded (`probe::transcript`) notes the connect to the proxy,
//! and the lines of an HTTP CONNECT exchange (`line_io` records them, the
//! `Proxy-Authorization` value redacted).

use std::net::SocketAddr;

use base64::Engine;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_socks::tcp::Socks5Stream;

use super::connect::{self, Connection, Dest};
#[cfg(test)]
use super::line_io::MAX_LINE;
use super::line_io::{LineError, LineIo};
use super::outcome::{ConnectReason, Failure, FailureKind};
use super::resolve::{self, Names};
use super::transcript;
use crate::config::{IpFamily, Proxy, ProxyKind, ResolveMode};
use crate::printable::Printable;

/// The most lines of an HTTP CONNECT reply (status line and headers).
pub const MAX_REPLY_LINES: usize = 64;

/// The most characters of a proxy's reply kept as evidence.
const EVIDENCE_CHARS: usize = 200;

/// Why a proxy did not open the tunnel.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The proxy's rules refused the destination.
    #[error("the proxy {proxy} refused the connection: {evidence}")]
    Refused {
        /// The proxy URL (no password).
        proxy: String,
        /// What it answered.
        evidence: String,
    },
    /// The proxy asked for credentials, or refused those given.
    #[error("the proxy {proxy} did not accept the credentials: {evidence}")]
    Auth {
        /// The proxy URL (no password).
        proxy: String,
        /// What it answered.
        evidence: String,
    },
    /// The proxy could not reach the destination.
    #[error("the proxy {proxy} could not connect to {dest}: {evidence}")]
    Destination {
        /// The proxy URL (no password).
        proxy: String,
        /// The destination asked for.
        dest: String,
        /// The class of the proxy's answer.
        reason: ConnectReason,
        /// What it answered.
        evidence: String,
    },
    /// The reply was not the protocol, or too long.
    #[error("the proxy {proxy} answered something that is not {protocol}: {evidence}")]
    Protocol {
        /// The proxy URL (no password).
        proxy: String,
        /// `SOCKS5` or `HTTP`.
        protocol: &'static str,
        /// What was wrong.
        evidence: String,
    },
    /// No complete reply before the deadline.
    #[error("the proxy {proxy} did not answer before the probe timeout")]
    Timeout {
        /// The proxy URL (no password).
        proxy: String,
    },
    /// The proxy closed or reset the connection.
    #[error("the proxy {proxy} closed the connection: {detail}")]
    Closed {
        /// The proxy URL (no password).
        proxy: String,
        /// How.
        detail: String,
    },
}

impl ProxyError {
    /// The `connect` failure reason.
    pub fn reason(&self) -> ConnectReason {
        match self {
            ProxyError::Refused { .. } => ConnectReason::ProxyRefused,
            ProxyError::Auth { .. } => ConnectReason::ProxyAuthFailed,
            ProxyError::Destination { reason, .. } => *reason,
            ProxyError::Protocol { .. } => ConnectReason::ProxyProtocolError,
            ProxyError::Timeout { .. } => ConnectReason::Timeout,
            ProxyError::Closed { .. } => ConnectReason::Reset,
        }
    }
}

impl From<ProxyError> for Failure {
    fn from(error: ProxyError) -> Self {
        Failure::new(FailureKind::Connect(error.reason()), error.to_string())
    }
}

/// Opens a tunnel to `dest`:`port` through `proxy`, all by `deadline`. `names`
/// resolves the proxy's own name, when it has one.
pub async fn through(
    proxy: &Proxy,
    names: Names<'_>,
    dest: &Dest,
    port: u16,
    deadline: Instant,
) -> Result<Connection, Failure> {
    let tcp = reach_proxy(proxy, names, deadline).await?;
    let shown = proxy.url.to_string();
    let tunnel = async {
        match proxy.url.kind {
            ProxyKind::Socks5 | ProxyKind::Socks5h => socks5(tcp, proxy, dest, port).await,
            ProxyKind::Http => http_connect(tcp, proxy, dest, port, deadline).await,
        }
    };
    match tokio::time::timeout_at(deadline, tunnel).await {
        Err(_) => Err(ProxyError::Timeout { proxy: shown }.into()),
        Ok(result) => result.map_err(Failure::from),
    }
}

/// A TCP connection to the proxy: its addresses tried in turn.
async fn reach_proxy(
    proxy: &Proxy,
    names: Names<'_>,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let in_detail = |failure: Failure| {
        Failure::new(
            failure.kind,
            format!("proxy {}: {}", proxy.url, failure.detail),
        )
    };
    let resolved = resolve::resolve(
        &proxy.url.host,
        IpFamily::Any,
        ResolveMode::All,
        names,
        deadline,
    )
    .await
    .map_err(in_detail)?;
    let mut last = None;
    for ip in resolved.addresses {
        let addr = SocketAddr::new(ip, proxy.url.port);
        match transcript::connect(addr, connect::connect(addr, deadline)).await {
            Ok(tcp) => return Ok(tcp),
            Err(failure) => last = Some(failure),
        }
    }
    Err(in_detail(
        last.expect("resolve returns at least one address"),
    ))
}

/// The SOCKS5 handshake (RFC 1928), with user and password (RFC 1929) when the URL
/// names a user. The replies have fixed shapes, so nothing past them is read.
async fn socks5(
    tcp: TcpStream,
    proxy: &Proxy,
    dest: &Dest,
    port: u16,
) -> Result<Connection, ProxyError> {
    let target = match dest {
        Dest::Ip(ip) => tokio_socks::TargetAddr::Ip(SocketAddr::new(*ip, port)),
        Dest::Name(name) => tokio_socks::TargetAddr::Domain(name.as_str().into(), port),
    };
    let connected = match &proxy.url.user {
        None => Socks5Stream::connect_with_socket(tcp, target).await,
        Some(user) => {
            let password = proxy.password.as_ref().map_or("", |p| p.expose());
            Socks5Stream::connect_with_password_and_socket(tcp, target, user, password).await
        }
    };
    match connected {
        Ok(stream) => Ok(Connection::direct(stream.into_inner())),
        Err(error) => Err(socks_error(proxy, dest, port, error)),
    }
}

fn socks_error(proxy: &Proxy, dest: &Dest, port: u16, error: tokio_socks::Error) -> ProxyError {
    use tokio_socks::Error as E;
    let proxy_text = proxy.url.to_string();
    let evidence = error.to_string();
    let destination = |reason| ProxyError::Destination {
        proxy: proxy_text.clone(),
        dest: dest_text(dest, port),
        reason,
        evidence: evidence.clone(),
    };
    let protocol = || ProxyError::Protocol {
        proxy: proxy_text.clone(),
        protocol: "SOCKS5",
        evidence: evidence.clone(),
    };
    match error {
        E::Io(e) => ProxyError::Closed {
            proxy: proxy_text.clone(),
            detail: match e.kind() {
                std::io::ErrorKind::UnexpectedEof => "before its reply was complete".into(),
                _ => e.to_string(),
            },
        },
        E::ConnectionNotAllowedByRuleset
        | E::CommandNotSupported
        | E::AddressTypeNotSupported
        | E::IdentdAuthFailure
        | E::InvalidUserIdAuthFailure => ProxyError::Refused {
            proxy: proxy_text.clone(),
            evidence: evidence.clone(),
        },
        E::NoAcceptableAuthMethods | E::AuthorizationRequired | E::PasswordAuthFailure(_) => {
            ProxyError::Auth {
                proxy: proxy_text.clone(),
                evidence: if proxy.url.user.is_none() {
                    format!(
                        "{evidence}: the proxy wants a user and password (socks5h://user@host:port and proxy_password_file)"
                    )
                } else {
                    evidence.clone()
                },
            }
        }
        E::ConnectionRefused => destination(ConnectReason::Refused),
        E::HostUnreachable
        | E::NetworkUnreachable
        | E::GeneralSocksServerFailure
        | E::ProxyServerUnreachable => destination(ConnectReason::Unreachable),
        E::TtlExpired => destination(ConnectReason::Timeout),
        // tokio-socks reports an unknown reply code as an unknown method.
        E::InvalidResponseVersion
        | E::InvalidReservedByte
        | E::UnknownAddressType
        | E::UnknownAuthMethod
        | E::UnknownError
        | E::InvalidTargetAddress(_)
        | E::InvalidAuthValues(_)
        | E::ParseError(_) => protocol(),
    }
}

/// The HTTP CONNECT exchange (RFC 9110 9.3.6): the request, the status line and
/// headers, each line bounded; what follows the headers is the tunnel's.
async fn http_connect(
    tcp: TcpStream,
    proxy: &Proxy,
    dest: &Dest,
    port: u16,
    deadline: Instant,
) -> Result<Connection, ProxyError> {
    let shown = proxy.url.to_string();
    let authority = dest_text(dest, port);
    let mut request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: certwatch/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(user) = &proxy.url.user {
        let password = proxy.password.as_ref().map_or("", |p| p.expose());
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut io = LineIo::new(tcp, deadline);
    let line_error = |e: LineError| match e {
        LineError::Timeout => ProxyError::Timeout {
            proxy: shown.clone(),
        },
        LineError::Closed => ProxyError::Closed {
            proxy: shown.clone(),
            detail: "before its reply was complete".into(),
        },
        LineError::Io(e) => ProxyError::Closed {
            proxy: shown.clone(),
            detail: e.to_string(),
        },
        LineError::TooLong { limit } => ProxyError::Protocol {
            proxy: shown.clone(),
            protocol: "HTTP",
            evidence: format!("a reply line longer than {limit} bytes"),
        },
        LineError::Unexpected { count } => ProxyError::Protocol {
            proxy: shown.clone(),
            protocol: "HTTP",
            evidence: format!("{count} unexpected bytes"),
        },
    };
    io.write_all(request.as_bytes()).await.map_err(line_error)?;
    drop(request);
    let status_line = io.read_line().await.map_err(line_error)?;
    let code = status_code(&status_line).ok_or_else(|| ProxyError::Protocol {
        proxy: shown.clone(),
        protocol: "HTTP",
        evidence: format!("the status line {}", quoted(&status_line)),
    })?;
    let mut lines = 1;
    loop {
        let header = io.read_line().await.map_err(line_error)?;
        if header.is_empty() {
            break;
        }
        lines += 1;
        if lines > MAX_REPLY_LINES {
            return Err(ProxyError::Protocol {
                proxy: shown,
                protocol: "HTTP",
                evidence: format!("a reply of more than {MAX_REPLY_LINES} lines"),
            });
        }
    }
    let evidence = quoted(&status_line);
    match code {
        200..=299 => {
            let (tcp, early) = io.into_parts();
            Ok(Connection::with_early(tcp, early))
        }
        // 401 is what tinyproxy answers to wrong credentials.
        401 | 407 => Err(ProxyError::Auth {
            proxy: shown,
            evidence: if proxy.url.user.is_none() {
                format!("{evidence}: the proxy wants a user and password (http://user@host:port and proxy_password_file)")
            } else {
                evidence
            },
        }),
        500 | 502 | 503 => Err(ProxyError::Destination {
            proxy: shown,
            dest: authority,
            reason: ConnectReason::Unreachable,
            evidence,
        }),
        504 => Err(ProxyError::Destination {
            proxy: shown,
            dest: authority,
            reason: ConnectReason::Timeout,
            evidence,
        }),
        _ => Err(ProxyError::Refused {
            proxy: shown,
            evidence,
        }),
    }
}

/// The status code of `HTTP/1.x NNN reason`.
fn status_code(line: &str) -> Option<u16> {
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    let after = rest.get(3..)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// `host:port` as sent to the proxy, with an IPv6 address in brackets.
fn dest_text(dest: &Dest, port: u16) -> String {
    match dest {
        Dest::Ip(ip) => SocketAddr::new(*ip, port).to_string(),
        Dest::Name(name) => format!("{name}:{port}"),
    }
}

/// The proxy's words, printable and cut to a readable length.
fn quoted(text: &str) -> String {
    let cut = match text.char_indices().nth(EVIDENCE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    };
    format!("\"{}\"", Printable(&cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reach::ProxySetting;
    use crate::config::Secret;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn proxy(url: &str, password: Option<&str>) -> Proxy {
        let ProxySetting::Url(url) = url.parse().unwrap() else {
            panic!("a URL")
        };
        Proxy {
            url,
            password: password.map(Secret::new),
        }
    }

    const NAMES: Names<'static> = Names::System {
        timeout: Duration::from_secs(5),
    };

    /// A fake proxy on loopback that reads the request head, then sends `reply` and
    /// stays open (a reply ending in NUL: closes instead); the request it read is
    /// returned.
    async fn fake(reply: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && peer.read(&mut byte).await.unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            match reply.strip_suffix(b"\0") {
                Some(reply) => peer.write_all(reply).await.unwrap(),
                None => {
                    peer.write_all(reply).await.unwrap();
                    // Hold the connection until the client is done.
                    let _ = peer.read(&mut byte).await;
                }
            }
            request
        });
        (port, task)
    }

    async fn via_http(reply: &'static [u8], password: Option<&str>) -> Result<Connection, Failure> {
        let (port, task) = fake(reply).await;
        let p = proxy(&format!("http://monitor@127.0.0.1:{port}"), password);
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = through(&p, NAMES, &Dest::Ip([192, 0, 2, 7].into()), 443, deadline).await;
        task.abort();
        result
    }

    #[tokio::test]
    async fn http_connect_sends_the_address_and_credentials_and_keeps_early_bytes() {
        let (port, task) =
            fake(b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n220 banner\r\n").await;
        let p = proxy(&format!("http://monitor@127.0.0.1:{port}"), Some("s3cret"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut connection = through(
            &p,
            NAMES,
            &Dest::Ip("2001:db8::7".parse().unwrap()),
            25,
            deadline,
        )
        .await
        .unwrap();
        let mut banner = [0u8; 12];
        connection.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"220 banner\r\n");
        drop(connection);
        let request = String::from_utf8(task.await.unwrap()).unwrap();
        let token = base64::engine::general_purpose::STANDARD.encode("monitor:s3cret");
        assert_eq!(
            request,
            format!(
                "CONNECT [2001:db8::7]:25 HTTP/1.1\r\nHost: [2001:db8::7]:25\r\nUser-Agent: certwatch/{}\r\nProxy-Authorization: Basic {token}\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[tokio::test]
    async fn http_statuses_map_to_connect_reasons_without_the_password() {
        for (reply, reason) in [
            (&b"HTTP/1.1 403 Forbidden\r\n\r\n"[..], ConnectReason::ProxyRefused),
            (b"HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 3\r\n\r\nabc", ConnectReason::ProxyRefused),
            (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n", ConnectReason::ProxyAuthFailed),
            (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", ConnectReason::Unreachable),
            (b"HTTP/1.1 500 Unable to connect\r\n\r\n", ConnectReason::Unreachable),
            (b"HTTP/1.1 504 Gateway Timeout\r\n\r\n", ConnectReason::Timeout),
            (b"SSH-2.0-OpenSSH_9.2\r\n", ConnectReason::ProxyProtocolError),
            (b"HTTP/1.1 2000 OK\r\n\r\n", ConnectReason::ProxyProtocolError),
            (b"\x05\x00\0", ConnectReason::Reset),
            (b"HTTP/1.1 200 OK\r\nX: y\r\n\0", ConnectReason::Reset),
        ] {
            let result = via_http(reply, Some("hunter2")).await;
            let failure = result.expect_err("a failure");
            assert_eq!(failure.kind, FailureKind::Connect(reason), "{failure}");
            assert!(!failure.detail.contains("hunter2"), "{failure}");
            let token = base64::engine::general_purpose::STANDARD.encode("monitor:hunter2");
            assert!(!failure.detail.contains(&token), "{failure}");
        }
    }

    #[tokio::test]
    async fn an_endless_http_reply_is_refused_at_its_bounds() {
        static LONG_LINE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let long: &'static [u8] = LONG_LINE.get_or_init(|| {
            let mut v = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            v.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
            v
        });
        let result = via_http(long, None).await;
        assert_eq!(
            result.err().unwrap().kind,
            FailureKind::Connect(ConnectReason::ProxyProtocolError)
        );
        static MANY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let many: &'static [u8] = MANY.get_or_init(|| {
            let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
            for _ in 0..MAX_REPLY_LINES {
                v.extend_from_slice(b"X: y\r\n");
            }
            v.extend_from_slice(b"\r\n");
            v
        });
        let result = via_http(many, None).await;
        assert_eq!(
            result.err().unwrap().kind,
            FailureKind::Connect(ConnectReason::ProxyProtocolError)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_proxy_times_out_at_the_deadline() {
        for url in [
            "http://127.0.0.1",
            "socks5://127.0.0.1",
            "socks5h://u@127.0.0.1",
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let p = proxy(&format!("{url}:{port}"), Some("pw"));
            let started = Instant::now();
            let deadline = started + Duration::from_secs(3);
            let hold = tokio::spawn(async move {
                let (peer, _) = listener.accept().await.unwrap();
                std::future::pending::<()>().await;
                drop(peer);
            });
            let failure = through(&p, NAMES, &Dest::Name("example.test".into()), 443, deadline)
                .await
                .expect_err("a failure");
            hold.abort();
            assert_eq!(
                failure.kind,
                FailureKind::Connect(ConnectReason::Timeout),
                "{url}: {failure}"
            );
            assert_eq!(started.elapsed(), Duration::from_secs(3));
        }
    }

    /// A fake SOCKS5 proxy that answers the method selection with `method`, accepts or
    /// refuses a password with `auth`, and answers the request with `reply`.
    async fn socks_fake(method: u8, auth: u8, reply: u8) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 2];
            peer.read_exact(&mut head).await?;
            let mut methods = vec![0u8; usize::from(head[1])];
            peer.read_exact(&mut methods).await?;
            peer.write_all(&[5, method]).await?;
            if method == 2 {
                let mut ver_len = [0u8; 2];
                peer.read_exact(&mut ver_len).await?;
                let mut user = vec![0u8; usize::from(ver_len[1])];
                peer.read_exact(&mut user).await?;
                let mut len = [0u8; 1];
                peer.read_exact(&mut len).await?;
                let mut pass = vec![0u8; usize::from(len[0])];
                peer.read_exact(&mut pass).await?;
                peer.write_all(&[1, auth]).await?;
                if auth != 0 {
                    return Ok(());
                }
            }
            if method == 0xff {
                return Ok(());
            }
            let mut request = [0u8; 4];
            peer.read_exact(&mut request).await?;
            peer.write_all(&[5, reply, 0, 1, 127, 0, 0, 1, 0, 25])
                .await?;
            let mut rest = [0u8; 64];
            let _ = peer.read(&mut rest).await;
            Ok::<_, std::io::Error>(())
        });
        port
    }

    #[tokio::test]
    async fn socks5_replies_map_to_connect_reasons() {
        for (method, auth, reply, user, reason) in [
            (0, 0, 2, None, Some(ConnectReason::ProxyRefused)),
            (0, 0, 5, None, Some(ConnectReason::Refused)),
            (0, 0, 4, None, Some(ConnectReason::Unreachable)),
            (0, 0, 1, None, Some(ConnectReason::Unreachable)),
            (0, 0, 6, None, Some(ConnectReason::Timeout)),
            (0, 0, 9, None, Some(ConnectReason::ProxyProtocolError)),
            (0xff, 0, 0, None, Some(ConnectReason::ProxyAuthFailed)),
            (2, 0, 0, None, Some(ConnectReason::ProxyAuthFailed)),
            (2, 1, 0, Some("u"), Some(ConnectReason::ProxyAuthFailed)),
            (2, 0, 0, Some("u"), None),
            (0, 0, 0, None, None),
        ] {
            let port = socks_fake(method, auth, reply).await;
            let url = match user {
                Some(u) => format!("socks5://{u}@127.0.0.1:{port}"),
                None => format!("socks5://127.0.0.1:{port}"),
            };
            let p = proxy(&url, user.map(|_| "hunter2"));
            let deadline = Instant::now() + Duration::from_secs(5);
            let result = through(&p, NAMES, &Dest::Ip([127, 0, 0, 1].into()), 25, deadline).await;
            match (result, reason) {
                (Ok(_), None) => {}
                (Err(failure), Some(reason)) => {
                    assert_eq!(failure.kind, FailureKind::Connect(reason), "{failure}");
                    assert!(!failure.detail.contains("hunter2"), "{failure}");
                }
                (result, reason) => {
                    panic!("{method} {auth} {reply}: {:?} for {reason:?}", result.err())
                }
            }
        }
    }

    #[tokio::test]
    async fn socks5_sends_the_address_and_socks5h_the_name() {
        for (url, dest, request) in [
            (
                "socks5",
                Dest::Ip([192, 0, 2, 7].into()),
                vec![5, 1, 0, 1, 192, 0, 2, 7, 1, 187],
            ),
            (
                "socks5h",
                Dest::Name("mx1.example.test".into()),
                [&[5u8, 1, 0, 3, 16][..], b"mx1.example.test", &[1, 187]].concat(),
            ),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let expected = request.len();
            let server = tokio::spawn(async move {
                let (mut peer, _) = listener.accept().await.unwrap();
                let mut greeting = [0u8; 3];
                peer.read_exact(&mut greeting).await.unwrap();
                peer.write_all(&[5, 0]).await.unwrap();
                let mut request = vec![0u8; expected];
                peer.read_exact(&mut request).await.unwrap();
                peer.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 25])
                    .await
                    .unwrap();
                request
            });
            let p = proxy(&format!("{url}://127.0.0.1:{port}"), None);
            let deadline = Instant::now() + Duration::from_secs(5);
            through(&p, NAMES, &dest, 443, deadline).await.unwrap();
            assert_eq!(server.await.unwrap(), request, "{url}");
        }
    }

    #[tokio::test]
    async fn a_proxy_that_is_down_fails_as_a_connect_naming_the_proxy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let p = proxy(&format!("socks5h://127.0.0.1:{port}"), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let failure = through(&p, NAMES, &Dest::Name("a.test".into()), 443, deadline)
            .await
            .err()
            .unwrap();
        assert_eq!(failure.kind, FailureKind::Connect(ConnectReason::Refused));
        assert!(
            failure
                .detail
                .starts_with(&format!("proxy socks5h://127.0.0.1:{port}: ")),
            "{failure}"
        );
    }

    #[test]
    fn status_lines_parse_strictly() {
        assert_eq!(
            status_code("HTTP/1.1 200 Connection established"),
            Some(200)
        );
        assert_eq!(status_code("HTTP/1.0 407"), Some(407));
        for bad in [
            "HTTP/1.1 20",
            "HTTP/2 200 OK",
            "HTTP/1.1 2000",
            "http/1.1 200 OK",
            "HTTP/1.1 099 x",
            "HTTP/1.1 +20 x",
        ] {
            assert_eq!(status_code(bad), None, "{bad:?}");
        }
    }
}
