//! Fetching an OCSP response or a CRL over plain HTTP/1.1, as RFC 6960 and RFC 5280
//! intend, and safely:
//!
//! - only `http://` URLs, without user information, with a host of letters, digits,
//!   dots, hyphens and underscores or an IP literal ([`HttpUrl`]);
//! - every address the host resolves to that is loopback, private, link-local or
//!   unspecified ([`super::address::is_inward`]) is refused unless
//!   `allow_private_addresses`, and the address actually connected to is checked again,
//!   so a name that resolves inward is refused before any connection is made;
//! - the whole exchange, redirects included, ends by the probe's deadline;
//! - a body larger than the limit is refused as soon as its `Content-Length` says so,
//!   or as soon as it has read past the limit;
//! - a redirect is followed (at most [`MAX_REDIRECTS`]) only for a GET and only to the
//!   same host and port.
//!
//! The HTTP itself is hyper's client connection, driven in the calling task: nothing is
//! spawned, and dropping the future closes the connection.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{
    HeaderValue, ACCEPT, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT,
};
use hyper::{Method as HttpMethod, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::address::is_inward;
use super::{Failure, Reason};

/// Redirects followed at most (same host only).
pub const MAX_REDIRECTS: usize = 2;
/// Addresses of one name tried at most.
pub const MAX_ADDRESSES: usize = 4;
/// The longest URL accepted.
pub const MAX_URL: usize = 2048;

/// An `http://` URL taken from a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    host: UrlHost,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum UrlHost {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

impl HttpUrl {
    /// Reads `text`; refuses anything but a plain `http://` URL.
    pub fn parse(text: &str) -> Result<HttpUrl, Failure> {
        let bad = |why: &str| {
            Failure::new(
                Reason::FetchFailed,
                format!(
                    "the certificate's URL {:?} is not usable: {why}",
                    shorten(text)
                ),
            )
        };
        if text.len() > MAX_URL {
            return Err(bad("too long"));
        }
        let rest = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &text[7..],
            _ => return Err(bad("not an http:// URL")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, mut path) = rest.split_at(end);
        if let Some(hash) = path.find('#') {
            path = &path[..hash];
        }
        if authority.contains('@') {
            return Err(bad("user information is not allowed"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| bad("bad IPv6 address"))?;
            (UrlHost::Ip(IpAddr::V6(ip)), after)
        } else {
            let (name, after) = match authority.find(':') {
                Some(i) => authority.split_at(i),
                None => (authority, ""),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(bad("bad host name"));
            }
            match name.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => (UrlHost::Ip(IpAddr::V4(ip)), after),
                Err(_) => (UrlHost::Name(name.to_ascii_lowercase()), after),
            }
        };
        let port = match port {
            "" | ":" => 80,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        if path.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return Err(bad("the path has spaces or control characters"));
        }
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(HttpUrl { host, port, path })
    }

    /// `host[:port]` as the `Host` header has it.
    pub fn authority(&self) -> String {
        let host = self.host_text();
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The same host and port with another path (`/` joined as needed).
    pub fn with_path(&self, path: &str) -> HttpUrl {
        let mut joined = self.path.clone();
        if !joined.ends_with('/') {
            joined.push('/');
        }
        joined.push_str(path.trim_start_matches('/'));
        HttpUrl {
            path: joined,
            ..self.clone()
        }
    }

    /// Where a redirect from `self` to `location` goes: an absolute `http://` URL or an
    /// absolute path on the same host.
    fn follow(&self, location: &str) -> Result<HttpUrl, Failure> {
        if location.starts_with('/') && !location.starts_with("//") {
            return HttpUrl::parse(&format!("http://{}{location}", self.authority()));
        }
        HttpUrl::parse(location)
    }

    /// The origin, `host:port`: what a failing responder is known by.
    pub fn origin(&self) -> String {
        format!("{}:{}", self.host_text(), self.port)
    }

    fn host_text(&self) -> String {
        match &self.host {
            UrlHost::Name(n) => n.clone(),
            UrlHost::Ip(IpAddr::V4(ip)) => ip.to_string(),
            UrlHost::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        }
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(120).collect()
}

/// What to send.
#[derive(Clone, Copy, Debug)]
pub enum Method<'a> {
    /// A GET.
    Get,
    /// A POST of `body` as `content_type`.
    Post {
        /// The `Content-Type`.
        content_type: &'static str,
        /// The body.
        body: &'a [u8],
    },
}

/// How to fetch.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The `Accept` header.
    pub accept: &'static str,
    /// The largest body accepted.
    pub max_bytes: usize,
    /// Whether inward addresses may be fetched from.
    pub allow_private: bool,
    /// When to give up.
    pub deadline: Instant,
}

/// Fetches `url` and returns the body of its `200 OK`.
pub async fn fetch(url: &HttpUrl, method: Method<'_>, limits: Limits) -> Result<Vec<u8>, Failure> {
    match tokio::time::timeout_at(limits.deadline, follow(url, method, limits)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::new(
            Reason::Timeout,
            format!("no complete answer from {url} before the probe's deadline"),
        )),
    }
}

async fn follow(url: &HttpUrl, method: Method<'_>, limits: Limits) -> Result<Vec<u8>, Failure> {
    let mut current = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let stream = connect(&current, limits.allow_private).await?;
        match exchange(stream, &current, method, limits).await? {
            Answer::Body(body) => return Ok(body),
            Answer::Redirect(location) => {
                let next = current.follow(&location)?;
                if matches!(method, Method::Post { .. }) {
                    return Err(Failure::new(
                        Reason::FetchFailed,
                        format!("{current} redirected a POST to {next}; not followed"),
                    ));
                }
                if next.host != current.host || next.port != current.port {
                    return Err(Failure::new(
                        Reason::FetchFailed,
                        format!("{current} redirected to another host, {next}; not followed"),
                    ));
                }
                current = next;
            }
        }
    }
    Err(Failure::new(
        Reason::FetchFailed,
        format!("{url}: more than {MAX_REDIRECTS} redirects"),
    ))
}

/// Resolves `url`'s host, refuses inward addresses, and connects to the first allowed
/// address that answers.
async fn connect(url: &HttpUrl, allow_private: bool) -> Result<TcpStream, Failure> {
    let addresses: Vec<SocketAddr> = match &url.host {
        UrlHost::Ip(ip) => vec![SocketAddr::new(*ip, url.port)],
        UrlHost::Name(name) => tokio::net::lookup_host((name.as_str(), url.port))
            .await
            .map_err(|e| {
                Failure::new(
                    Reason::FetchFailed,
                    format!("{url}: cannot resolve {name}: {e}"),
                )
            })?
            .collect(),
    };
    let refused = |ip: IpAddr| {
        Failure::new(
            Reason::RefusedAddress,
            format!(
                "{url}: {ip} is a loopback, private, link-local or unspecified address; \
                 set allow_private_addresses: true to fetch from it"
            ),
        )
    };
    let allowed: Vec<SocketAddr> = addresses
        .iter()
        .copied()
        .filter(|a| allow_private || !is_inward(a.ip()))
        .take(MAX_ADDRESSES)
        .collect();
    let Some(first) = allowed.first() else {
        return Err(match addresses.first() {
            Some(a) => refused(a.ip()),
            None => Failure::new(
                Reason::FetchFailed,
                format!("{url}: the host has no address"),
            ),
        });
    };
    let mut last_error = None;
    for address in &allowed {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let peer = stream.peer_addr().map_err(|e| {
                    Failure::new(Reason::FetchFailed, format!("{url}: {address}: {e}"))
                })?;
                if !allow_private && is_inward(peer.ip()) {
                    return Err(refused(peer.ip()));
                }
                return Ok(stream);
            }
            Err(e) => last_error = Some((address, e)),
        }
    }
    let (address, error) = last_error.map_or((*first, String::new()), |(a, e)| (*a, e.to_string()));
    Err(Failure::new(
        Reason::FetchFailed,
        format!("{url}: cannot connect to {address}: {error}"),
    ))
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

async fn exchange(
    stream: TcpStream,
    url: &HttpUrl,
    method: Method<'_>,
    limits: Limits,
) -> Result<Answer, Failure> {
    let failed = |what: String| Failure::new(Reason::FetchFailed, format!("{url}: {what}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("HTTP: {e}")))?;
    let (http_method, body) = match method {
        Method::Get => (HttpMethod::GET, Bytes::new()),
        Method::Post { body, .. } => (HttpMethod::POST, Bytes::copy_from_slice(body)),
    };
    let mut request = hyper::Request::builder()
        .method(http_method)
        .uri(url.path.as_str())
        .header(HOST, url.authority())
        .header(USER_AGENT, concat!("certwatch/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT, limits.accept)
        .header(CONNECTION, "close");
    if let Method::Post { content_type, .. } = method {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| failed(format!("cannot build the request: {e}")))?;
    let work = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed(format!("HTTP: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| failed(format!("{status} without a usable Location")))?;
            return Ok(Answer::Redirect(location.to_owned()));
        }
        if status != StatusCode::OK {
            return Err(failed(format!("the server answered {status}")));
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v: &HeaderValue| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(declared) = declared {
            if declared > limits.max_bytes as u64 {
                return Err(too_large(url, limits.max_bytes, declared));
            }
        }
        let mut body = response.into_body();
        let mut out = Vec::with_capacity(declared.map_or(0, |d| d as usize).min(limits.max_bytes));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failed(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limits.max_bytes {
                    return Err(too_large(
                        url,
                        limits.max_bytes,
                        (out.len() + data.len()) as u64,
                    ));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Answer::Body(out))
    };
    let mut connection = std::pin::pin!(connection);
    let mut work = std::pin::pin!(work);
    let mut connection_done = false;
    loop {
        tokio::select! {
            biased;
            answer = &mut work => return answer,
            done = &mut connection, if !connection_done => {
                connection_done = true;
                if let Err(e) = done {
                    return Err(failed(format!("HTTP: {e}")));
                }
            }
        }
    }
}

fn too_large(url: &HttpUrl, limit: usize, seen: u64) -> Failure {
    Failure::new(
        Reason::TooLarge,
        format!("{url}: the answer has at least {seen} bytes, more than the limit of {limit}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_clean_host_are_accepted() {
        let url = HttpUrl::parse("http://ocsp.Example.com/").unwrap();
        assert_eq!(url.to_string(), "http://ocsp.example.com/");
        assert_eq!(url.origin(), "ocsp.example.com:80");
        let url = HttpUrl::parse("HTTP://127.0.0.1:8080/ca.crl?x=1#frag").unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:8080/ca.crl?x=1");
        let url = HttpUrl::parse("http://[::1]:81").unwrap();
        assert_eq!(url.to_string(), "http://[::1]:81/");
        assert_eq!(url.with_path("abc").to_string(), "http://[::1]:81/abc");
        for bad in [
            "https://ocsp.example.com/",
            "ldap://ldap.example.com/cn=CA",
            "http://user@ocsp.example.com/",
            "http://ocsp.example.com:0/",
            "http://ocsp.example.com:99999/",
            "http://ocsp example.com/",
            "http:///path",
            "http://a.example/with space",
            "http://a.example/\r\nX-Injected: 1",
            "http://[::1/",
        ] {
            let e = HttpUrl::parse(bad).unwrap_err();
            assert_eq!(e.reason, Reason::FetchFailed, "{bad}");
        }
    }

    #[test]
    fn redirects_resolve_relative_paths_on_the_same_host() {
        let url = HttpUrl::parse("http://crl.example:8080/a/b.crl").unwrap();
        assert_eq!(
            url.follow("/c.crl").unwrap().to_string(),
            "http://crl.example:8080/c.crl"
        );
        assert_eq!(
            url.follow("http://other.example/c.crl")
                .unwrap()
                .to_string(),
            "http://other.example/c.crl"
        );
        assert!(url.follow("//other.example/c.crl").is_err());
    }

    #[tokio::test]
    async fn an_inward_address_is_refused_without_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let limits = Limits {
            accept: "*/*",
            max_bytes: 10,
            allow_private: false,
            deadline: Instant::now() + std::time::Duration::from_secs(5),
        };
        let e = fetch(&url, Method::Get, limits).await.unwrap_err();
        assert_eq!(e.reason, Reason::RefusedAddress, "{e}");
        // `localhost` resolves inward too.
        let url = HttpUrl::parse(&format!("http://localhost:{port}/")).unwrap();
        let e = fetch(&url, Method::Get, limits).await.unwrap_err();
        assert_eq!(e.reason, Reason::RefusedAddress, "{e}");
        // Nothing connected: the first connection the listener accepts is ours.
        let ours = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(
            peer,
            ours.local_addr().unwrap(),
            "a connection was made before ours"
        );
    }
}
