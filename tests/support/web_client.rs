//! A client of certwatch's own endpoint, as hostile and honest clients use it: TCP from
//! a chosen loopback address (certwatch tells clients apart by address), TLS against a
//! test CA, basic-auth headers, HTTP/1.x requests read to their end or by their framing,
//! and HTTP/2 connections with a chosen flow-control window.
//!
//! Every read here is bounded in size; bounding it in time is the caller's (each call
//! site knows its own deadline).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::Request;
use base64::Engine as _;
use rustls::ClientConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use super::pki::Ca;

/// The largest response head read.
pub const MAX_HEAD: usize = 64 * 1024;

/// A rustls client configuration trusting only `ca`, offering `alpn`.
pub fn tls_config(ca: &Ca, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).expect("the test CA");
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TCP connection to `addr` from `from` (any port), with a receive buffer of
/// `recv_buffer` bytes when given (set before the connection, so that the window the
/// client advertises stays small).
pub async fn tcp_from(
    addr: SocketAddr,
    from: IpAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// A TLS connection to `addr` (as `localhost`) from `from`.
pub async fn tls_from(
    addr: SocketAddr,
    from: IpAddr,
    config: Arc<ClientConfig>,
    recv_buffer: Option<u32>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = tcp_from(addr, from, recv_buffer).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The value of an `Authorization` header for basic authentication.
pub fn basic_auth(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A request head: `METHOD path HTTP/version`, `Host`, the `headers` (each `Name: value`)
/// and, for a `POST`, an empty body.
pub fn request_head(method: &str, path: &str, version: &str, headers: &[String]) -> String {
    let mut head = format!("{method} {path} HTTP/{version}\r\nHost: localhost\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    if method == "POST" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    head
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The head's header lines, without the status line.
    pub headers: Vec<String>,
    /// The body, decoded from its framing.
    pub body: Vec<u8>,
    /// Whether the connection cannot carry another request.
    pub closed: bool,
}

impl Answer {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one answer from `conn`: the head (at most [`MAX_HEAD`] bytes), then the body
/// by `Content-Length`, chunked encoding, or to the end of the connection; at most
/// `max_body` bytes of body.
pub async fn read_answer<S: AsyncRead + Unpin>(
    conn: &mut BufReader<S>,
    max_body: usize,
) -> io::Result<Answer> {
    let mut lines = Vec::new();
    let mut read = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut *conn)
            .take((MAX_HEAD - read.min(MAX_HEAD)) as u64 + 1)
            .read_line(&mut line)
            .await?;
        read += n;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection ended before an answer",
            ));
        }
        if read > MAX_HEAD {
            return Err(invalid("an answer head over 64 KiB"));
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        lines.push(line.trim_end().to_owned());
    }
    let status_line = lines.first().ok_or_else(|| invalid("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status code"))?;
    let http10 = status_line.starts_with("HTTP/1.0");
    let mut answer = Answer {
        status,
        headers: lines[1..].to_vec(),
        body: Vec::new(),
        closed: false,
    };
    let close = answer
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let length = answer
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok());
    if chunked {
        answer.body = read_chunked(conn, max_body).await?;
        answer.closed = close || http10;
    } else if let Some(length) = length {
        if length > max_body {
            return Err(invalid("a body over the limit"));
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).await?;
        answer.body = body;
        answer.closed = close || http10;
    } else {
        (&mut *conn)
            .take(max_body as u64 + 1)
            .read_to_end(&mut answer.body)
            .await?;
        if answer.body.len() > max_body {
            return Err(invalid("a body over the limit"));
        }
        answer.closed = true;
    }
    Ok(answer)
}

async fn read_chunked<S: AsyncRead + Unpin>(
    conn: &mut BufReader<S>,
    max_body: usize,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        (&mut *conn).take(1024).read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| invalid("a bad chunk size"))?;
        if size == 0 {
            // Trailers, if any, then the empty line.
            loop {
                line.clear();
                if (&mut *conn).take(1024).read_line(&mut line).await? == 0
                    || line.trim().is_empty()
                {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > max_body {
            return Err(invalid("a body over the limit"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        line.clear();
        (&mut *conn).take(2).read_line(&mut line).await?;
    }
}

/// Sends `head` on a new stream `conn` and reads one answer; the connection is then
/// done with (HTTP/1.0 or `Connection: close` requests).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: S,
    head: &str,
    max_body: usize,
) -> io::Result<Answer> {
    let mut conn = BufReader::new(conn);
    conn.get_mut().write_all(head.as_bytes()).await?;
    read_answer(&mut conn, max_body).await
}

/// An HTTP/2 connection over TLS from `from`, with `window` as every stream's initial
/// flow-control window; the connection is driven by a task whose handle is returned.
pub async fn h2_connect(
    addr: SocketAddr,
    from: IpAddr,
    ca: &Ca,
    window: u32,
) -> (
    h2::client::SendRequest<axum::body::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tls = tls_from(addr, from, tls_config(ca, &[b"h2"]), None)
        .await
        .expect("TLS");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2_handshake(tls, window).await.expect("HTTP/2 handshake")
}

/// The HTTP/2 handshake on `tls`, with `window` as every stream's initial window.
pub async fn h2_handshake(
    tls: TlsStream<TcpStream>,
    window: u32,
) -> Result<
    (
        h2::client::SendRequest<axum::body::Bytes>,
        tokio::task::JoinHandle<Result<(), h2::Error>>,
    ),
    h2::Error,
> {
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake(tls)
        .await?;
    Ok((send, tokio::spawn(connection)))
}

/// `GET path` as an HTTP/2 request, with `headers` (name, value).
pub fn get_request(path: &str) -> Request<()> {
    get_request_with(path, &[])
}

/// [`get_request`] with extra headers.
pub fn get_request_with(path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut request = Request::get(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).expect("a request")
}

/// `GET path` over HTTP/2, reading the whole body.
pub async fn h2_get(
    send: &mut h2::client::SendRequest<axum::body::Bytes>,
    path: &str,
) -> (u16, String) {
    send.clone().ready().await.expect("ready");
    let (response, _) = send.send_request(get_request(path), true).expect("send");
    let response = response.await.expect("response");
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("data");
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}
