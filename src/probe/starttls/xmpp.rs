//! XMPP STARTTLS (RFC 6120 §5), on client-to-server and server-to-server streams.
//!
//! ```text
//! → <?xml version='1.0'?><stream:stream to='DOMAIN' version='1.0' xmlns='jabber:client' ...>
//! ← <stream:stream ...>  <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>…
//! → <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
//! ← <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>   (or <failure/>: rejected)
//! ```
//!
//! A `<stream:error>` instead of the features is `Unavailable`, with the condition
//! (`host-unknown`, …) as evidence; features without `<starttls/>` are `NotOffered`.
//!
//! The server's XML is read by a small tokenizer, not a full XML parser. It knows the
//! restricted XML that XMPP allows (RFC 6120 §11.1): tags with single- or double-quoted
//! attributes, character data, CDATA and the XML declaration; comments, DTDs and other
//! processing instructions are a protocol error. Elements are matched by namespace URI and
//! local name, resolved through the `xmlns` declarations in scope, never by prefix or
//! substring, and only where RFC 6120 puts them (`<starttls/>` as a child of
//! `<stream:features>`). A `>` always ends a tag: XML allows it raw in an attribute
//! value, but XMPP servers escape it, and the rule keeps the reader linear; such a tag
//! fails to parse. Everything read before TLS is bounded by [`MAX_STREAM_BYTES`] and by
//! the probe deadline (`LineIo`). Reads stop at each `>`, so bytes the server sends after
//! `<proceed/>` stay in `LineIo`, whose `into_inner` refuses them.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, Context, StartTlsError};
use crate::probe::line_io::{LineError, LineIo};

/// The most bytes read before TLS: stream header, features and the STARTTLS reply.
/// Real features (prosody, ejabberd) take one or two KiB.
pub const MAX_STREAM_BYTES: usize = 64 * 1024;

/// The deepest nesting accepted; features nest three or four elements deep.
const MAX_DEPTH: usize = 32;

const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// Which stream is opened.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// `jabber:client`.
    Client,
    /// `jabber:server`.
    Server,
}

impl Stream {
    fn namespace(self) -> &'static str {
        match self {
            Stream::Client => "jabber:client",
            Stream::Server => "jabber:server",
        }
    }
}

/// Speaks XMPP until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
    stream: Stream,
    context: Context<'_>,
) -> Result<(), StartTlsError> {
    let domain = context.xmpp_domain.unwrap_or(context.server_name);
    io.write_all(stream_header(stream, domain).as_bytes())
        .await?;
    let mut reader = XmlReader::default();
    if !read_header(&mut reader, io).await? || !read_features(&mut reader, io).await? {
        return Err(StartTlsError::NotOffered {
            evidence: "its stream features have no <starttls/>".into(),
        });
    }
    io.write_all(STARTTLS.as_bytes()).await?;
    read_starttls_reply(&mut reader, io).await?;
    reader.finish()
}

/// The opening stream header, addressed to `domain`.
fn stream_header(stream: Stream, domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' \
         xmlns='{}' xmlns:stream='{NS_STREAMS}'>",
        escape_attribute(domain),
        stream.namespace()
    )
}

/// Escapes `value` for a single-quoted attribute. Control characters, which no domain
/// holds, go as character references: the server answers those it cannot take with a
/// stream error (`not-well-formed`), reported as such, and nothing is sent raw.
fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push_str(&format!("&#x{:X};", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Reads the server's stream header; `false` for a pre-1.0 stream, which has no features.
async fn read_header<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut XmlReader,
    io: &mut LineIo<S>,
) -> Result<bool, StartTlsError> {
    match reader.next(io).await? {
        Event::Open { name, attrs, .. } if name.is(NS_STREAMS, "stream") => {
            supports_features(attribute(&attrs, "version"))
        }
        other => Err(unexpected("a <stream:stream> header", &other)),
    }
}

/// Whether a stream `version` (RFC 6120 §4.7.5) is 1.0 or later; absent means 0.9.
fn supports_features(version: Option<&str>) -> Result<bool, StartTlsError> {
    let Some(version) = version else {
        return Ok(false);
    };
    let major = version
        .split_once('.')
        .and_then(|(major, minor)| minor.parse::<u32>().ok().and(major.parse::<u32>().ok()));
    match major {
        Some(major) => Ok(major >= 1),
        None => Err(StartTlsError::malformed(&format!(
            "stream version {version:?}"
        ))),
    }
}

/// Reads `<stream:features>` to its end; whether it lists `<starttls/>`.
async fn read_features<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut XmlReader,
    io: &mut LineIo<S>,
) -> Result<bool, StartTlsError> {
    match reader.next(io).await? {
        Event::Open { name, depth: 1, .. } if name.is(NS_STREAMS, "features") => {}
        Event::Open { name, depth: 1, .. } if name.is(NS_STREAMS, "error") => {
            let condition = stream_error_condition(reader, io).await?;
            return Err(StartTlsError::Unavailable { reply: condition });
        }
        Event::Close { depth: 0, .. } => {
            return Err(StartTlsError::Unavailable {
                reply: "</stream:stream> before any features".into(),
            })
        }
        other => return Err(unexpected("<stream:features>", &other)),
    }
    let mut offered = false;
    loop {
        match reader.next(io).await? {
            Event::Open { name, depth: 2, .. } => offered |= name.is(NS_TLS, "starttls"),
            Event::Close { depth: 1, .. } => return Ok(offered),
            Event::Open { .. } | Event::Close { .. } => {}
        }
    }
}

/// Reads the answer to `<starttls/>`, through the end of `<proceed/>`.
async fn read_starttls_reply<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut XmlReader,
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    match reader.next(io).await? {
        Event::Open { name, depth: 1, .. } if name.is(NS_TLS, "proceed") => {
            reader.skip_to_close(io, 1).await
        }
        Event::Open { name, depth: 1, .. } if name.is(NS_TLS, "failure") => {
            Err(StartTlsError::Rejected {
                reply: "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".into(),
            })
        }
        Event::Open { name, depth: 1, .. } if name.is(NS_STREAMS, "error") => {
            let condition = stream_error_condition(reader, io).await?;
            Err(StartTlsError::Rejected { reply: condition })
        }
        Event::Close { depth: 0, .. } => Err(StartTlsError::Rejected {
            reply: "</stream:stream>".into(),
        }),
        other => Err(unexpected("<proceed/> or <failure/>", &other)),
    }
}

/// Reads the rest of a `<stream:error>`; its condition element's name (RFC 6120 §4.9.3).
/// A server that closes the connection right after the condition still has its say.
async fn stream_error_condition<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut XmlReader,
    io: &mut LineIo<S>,
) -> Result<String, StartTlsError> {
    let mut condition = None;
    loop {
        match reader.next(io).await {
            Ok(Event::Open { name, depth: 2, .. })
                if condition.is_none() && name.ns == NS_STREAM_ERRORS && name.local != "text" =>
            {
                condition = Some(name.local);
            }
            Ok(Event::Close { depth: 1, .. }) => break,
            Ok(_) => {}
            Err(StartTlsError::Line(LineError::Closed)) if condition.is_some() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(evidence(&condition.unwrap_or_else(|| {
        "<stream:error> without a condition".into()
    })))
}

/// A malformed-reply error naming what was expected and what came.
fn unexpected(expected: &str, got: &Event) -> StartTlsError {
    let got = match got {
        Event::Open { name, .. } => format!("<{}> in namespace {:?}", name.local, name.ns),
        Event::Close { name, .. } => format!("</{}>", name.local),
    };
    StartTlsError::malformed(&format!("expected {expected}, got {got}"))
}

fn attribute<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// An element name resolved to its namespace.
#[derive(Debug, PartialEq, Eq)]
struct Name {
    /// The namespace URI; empty for none.
    ns: String,
    /// The local name, without prefix.
    local: String,
}

impl Name {
    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }
}

/// An element boundary; `depth` 0 is `<stream:stream>`, 1 its children, and so on.
/// An empty element (`<x/>`) gives an `Open` and then a `Close`.
#[derive(Debug)]
enum Event {
    Open {
        name: Name,
        attrs: Vec<(String, String)>,
        depth: usize,
    },
    Close {
        name: Name,
        depth: usize,
    },
}

/// An element still open, with the namespace prefixes it declares.
#[derive(Debug)]
struct OpenElement {
    qname: String,
    bindings: Vec<(String, String)>,
}

/// Turns the server's bytes into [`Event`]s, tracking nesting and namespaces.
#[derive(Debug, Default)]
struct XmlReader {
    /// Received, not yet tokenized; ends at a `>` or mid-token.
    pending: Vec<u8>,
    /// Bytes received in all.
    received: usize,
    open: Vec<OpenElement>,
    /// The last event opened an empty element, whose `Close` comes next.
    close_empty: bool,
    /// The root element has been opened.
    started: bool,
}

impl XmlReader {
    /// The next element boundary, reading from `io` as needed.
    async fn next<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut LineIo<S>,
    ) -> Result<Event, StartTlsError> {
        if self.close_empty {
            self.close_empty = false;
            return self.close_top().map_err(|what| self.malformed(what));
        }
        loop {
            match next_token(&self.pending) {
                Err(what) => return Err(self.malformed(what)),
                Ok(None) => self.fill(io).await?,
                Ok(Some((token, used))) => {
                    let event = self.apply(token).map_err(|what| self.malformed(what))?;
                    self.pending.drain(..used);
                    if let Some(event) = event {
                        return Ok(event);
                    }
                }
            }
        }
    }

    /// Reads events until the element open at `depth` closes.
    async fn skip_to_close<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut LineIo<S>,
        depth: usize,
    ) -> Result<(), StartTlsError> {
        loop {
            if let Event::Close { depth: d, .. } = self.next(io).await? {
                if d == depth {
                    return Ok(());
                }
            }
        }
    }

    /// Reads until `pending` may hold a whole token (see [`may_be_complete`]).
    async fn fill<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut LineIo<S>,
    ) -> Result<(), StartTlsError> {
        loop {
            let chunk = io.read_chunk(b'>').await?;
            self.received += chunk.len();
            if self.received > MAX_STREAM_BYTES {
                return Err(StartTlsError::Malformed {
                    line: format!("over {MAX_STREAM_BYTES} bytes without reaching TLS"),
                });
            }
            self.pending.extend_from_slice(&chunk);
            if may_be_complete(&self.pending) {
                return Ok(());
            }
        }
    }

    /// Applies a token to the nesting state; the event it makes, if any.
    fn apply(&mut self, token: Token) -> Result<Option<Event>, &'static str> {
        match token {
            Token::Text { blank } if !self.started && !blank => Err("text before the stream"),
            Token::Declaration if self.started => Err("an XML declaration inside the stream"),
            Token::Text { .. } | Token::Declaration => Ok(None),
            Token::Start { .. } | Token::End { .. } if self.started && self.open.is_empty() => {
                Err("content after the stream closed")
            }
            Token::Start {
                qname,
                attrs,
                empty,
            } => self.open_element(qname, attrs, empty).map(Some),
            Token::End { qname } => match self.open.last() {
                Some(top) if top.qname == qname => self.close_top().map(Some),
                _ => Err("an end tag that does not match the open element"),
            },
        }
    }

    fn open_element(
        &mut self,
        qname: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    ) -> Result<Event, &'static str> {
        if self.open.len() == MAX_DEPTH {
            return Err("elements nested too deep");
        }
        let bindings = attrs
            .iter()
            .filter_map(|(n, v)| match n.strip_prefix("xmlns") {
                Some("") => Some((String::new(), v.clone())),
                Some(rest) => rest.strip_prefix(':').map(|p| (p.to_owned(), v.clone())),
                None => None,
            })
            .collect();
        self.open.push(OpenElement {
            qname: qname.clone(),
            bindings,
        });
        self.started = true;
        self.close_empty = empty;
        Ok(Event::Open {
            name: self.resolve(&qname)?,
            attrs,
            depth: self.open.len() - 1,
        })
    }

    /// Closes the innermost open element.
    fn close_top(&mut self) -> Result<Event, &'static str> {
        let qname = match self.open.last() {
            Some(top) => top.qname.clone(),
            None => return Err("an end tag outside any element"),
        };
        let name = self.resolve(&qname)?;
        self.open.pop();
        Ok(Event::Close {
            name,
            depth: self.open.len(),
        })
    }

    /// Resolves `prefix:local` (or `local`) against the declarations in scope.
    fn resolve(&self, qname: &str) -> Result<Name, &'static str> {
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        let declared = self
            .open
            .iter()
            .rev()
            .flat_map(|e| e.bindings.iter())
            .find(|(p, _)| p == prefix)
            .map(|(_, ns)| ns.as_str());
        let ns = match (prefix, declared) {
            (_, Some(ns)) => ns,
            ("xml", None) => NS_XML,
            ("", None) => "",
            (_, None) => return Err("an undeclared namespace prefix"),
        };
        Ok(Name {
            ns: ns.to_owned(),
            local: local.to_owned(),
        })
    }

    /// The error for bytes that are not XMPP's XML, with the bytes as evidence.
    fn malformed(&self, what: &str) -> StartTlsError {
        let shown = &self.pending[..self.pending.len().min(200)];
        StartTlsError::malformed(&format!("{what}: {}", String::from_utf8_lossy(shown)))
    }

    /// Succeeds when nothing read is left over: the server said nothing after `<proceed/>`.
    fn finish(self) -> Result<(), StartTlsError> {
        match self.pending.len() {
            0 => Ok(()),
            count => Err(LineError::Unexpected { count }.into()),
        }
    }
}

/// One piece of the server's XML.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// `<qname attr='v'>`, or `<qname .../>` when `empty`.
    Start {
        qname: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    /// `</qname>`.
    End { qname: String },
    /// Character data or a CDATA section; `blank` when only whitespace.
    Text { blank: bool },
    /// `<?xml ...?>`.
    Declaration,
}

/// Whether `pending` may hold a whole token: text always, markup once it ends with its
/// terminator. Reads stop at each `>`, so a long token is scanned once, not once per
/// chunk.
fn may_be_complete(pending: &[u8]) -> bool {
    let terminator: &[u8] = match pending {
        [b'<', b'?', ..] => b"?>",
        [b'<', b'!', b'[', ..] => b"]]>",
        [b'<', ..] => b">",
        _ => return true,
    };
    pending.ends_with(terminator)
}

/// The first token of `buf` and its length; `None` when `buf` ends inside it.
fn next_token(buf: &[u8]) -> Result<Option<(Token, usize)>, &'static str> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'<' {
        let len = buf.iter().position(|b| *b == b'<').unwrap_or(buf.len());
        let blank = buf[..len].iter().all(|b| is_space(*b));
        return Ok(Some((Token::Text { blank }, len)));
    }
    match buf.get(1) {
        None => Ok(None),
        Some(b'?') => declaration(buf),
        Some(b'!') => cdata(buf),
        Some(b'/') => end_tag(buf),
        Some(_) => start_tag(buf),
    }
}

/// `<?xml ...?>`; any other processing instruction is refused (RFC 6120 §11.1).
fn declaration(buf: &[u8]) -> Result<Option<(Token, usize)>, &'static str> {
    let Some(end) = find(&buf[2..], b"?>").map(|p| p + 2) else {
        return Ok(None);
    };
    let target_end = buf[2..end]
        .iter()
        .position(|b| is_space(*b))
        .map_or(end, |p| p + 2);
    if &buf[2..target_end] != b"xml" {
        return Err("a processing instruction");
    }
    Ok(Some((Token::Declaration, end + 2)))
}

/// `<![CDATA[...]]>`; comments and DTDs are refused (RFC 6120 §11.1).
fn cdata(buf: &[u8]) -> Result<Option<(Token, usize)>, &'static str> {
    const OPEN: &[u8] = b"<![CDATA[";
    if buf.len() < OPEN.len() && OPEN.starts_with(buf) {
        return Ok(None);
    }
    if !buf.starts_with(OPEN) {
        return Err("a comment or DTD");
    }
    let Some(end) = find(&buf[OPEN.len()..], b"]]>") else {
        return Ok(None);
    };
    let body = &buf[OPEN.len()..OPEN.len() + end];
    let blank = body.iter().all(|b| is_space(*b));
    Ok(Some((Token::Text { blank }, OPEN.len() + end + 3)))
}

/// `</qname>`, whitespace allowed before the `>`.
fn end_tag(buf: &[u8]) -> Result<Option<(Token, usize)>, &'static str> {
    let Some(gt) = buf.iter().position(|b| *b == b'>') else {
        return Ok(None);
    };
    let inner = std::str::from_utf8(&buf[2..gt]).map_err(|_| "a tag that is not UTF-8")?;
    let qname = inner.trim_end_matches(is_space_char);
    if !is_qname(qname) {
        return Err("an invalid end tag");
    }
    let token = Token::End {
        qname: qname.to_owned(),
    };
    Ok(Some((token, gt + 1)))
}

/// `<qname attr='v' ...>` or `<qname .../>`.
fn start_tag(buf: &[u8]) -> Result<Option<(Token, usize)>, &'static str> {
    let Some(gt) = buf.iter().position(|b| *b == b'>') else {
        return Ok(None);
    };
    let inner = std::str::from_utf8(&buf[1..gt]).map_err(|_| "a tag that is not UTF-8")?;
    let (inner, empty) = match inner.strip_suffix('/') {
        Some(inner) => (inner, true),
        None => (inner, false),
    };
    let name_end = inner.find(is_space_char).unwrap_or(inner.len());
    let (qname, rest) = inner.split_at(name_end);
    if !is_qname(qname) {
        return Err("an invalid element name");
    }
    let token = Token::Start {
        qname: qname.to_owned(),
        attrs: attributes(rest)?,
        empty,
    };
    Ok(Some((token, gt + 1)))
}

/// The attributes of a start tag: ` name='value'` or ` name = "value"`, each preceded
/// by whitespace, names unique, values unescaped.
fn attributes(mut rest: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut attrs: Vec<(String, String)> = Vec::new();
    loop {
        let trimmed = rest.trim_start_matches(is_space_char);
        if trimmed.is_empty() {
            return Ok(attrs);
        }
        if trimmed.len() == rest.len() {
            return Err("attributes not separated by whitespace");
        }
        let (name, value, after) = attribute_pair(trimmed)?;
        if attrs.iter().any(|(n, _)| n == name) {
            return Err("a duplicate attribute");
        }
        attrs.push((name.to_owned(), value));
        rest = after;
    }
}

/// One `name='value'` at the start of `s`, and what follows it.
fn attribute_pair(s: &str) -> Result<(&str, String, &str), &'static str> {
    let (name, rest) = s.split_once('=').ok_or("an attribute without a value")?;
    let name = name.trim_end_matches(is_space_char);
    if !is_qname(name) {
        return Err("an invalid attribute name");
    }
    let rest = rest.trim_start_matches(is_space_char);
    let quote = match rest.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => return Err("an unquoted attribute value"),
    };
    let body = &rest[1..];
    let close = body.find(quote).ok_or("an unterminated attribute value")?;
    let raw = &body[..close];
    if raw.contains('<') {
        return Err("a '<' in an attribute value");
    }
    Ok((name, unescape(raw)?, &body[close + 1..]))
}

/// Replaces the predefined entities and character references (RFC 6120 §11.1 allows no
/// others).
fn unescape(raw: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or("an unterminated entity reference")?;
        out.push(entity(&after[..semi]).ok_or("an unknown entity reference")?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// A plausible `prefix:local` or `local`: not a full XML Name check, but no markup,
/// quotes or spaces, and at most one colon between non-empty parts.
fn is_qname(s: &str) -> bool {
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && !part
                .chars()
                .any(|c| is_space_char(c) || c.is_control() || "<>&'\"=/:?!".contains(c))
    };
    match s.split_once(':') {
        Some((prefix, local)) => plain(prefix) && plain(local),
        None => plain(s),
    }
}

/// XML whitespace (not form feed, unlike `is_ascii_whitespace`).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_space_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_space)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='example.org' \
        version='1.0' xml:lang='en'>";
    const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

    fn context() -> Context<'static> {
        Context {
            server_name: "localhost",
            xmpp_domain: Some("example.org"),
        }
    }

    /// Runs `negotiate` against a peer that sends `script` in `piece`-byte writes and
    /// then closes; the result, whether `into_inner` then succeeds, and what the client
    /// sent.
    async fn run(script: &str, piece: usize) -> (Result<(), StartTlsError>, bool, String) {
        let (client, server) = duplex(1024);
        let (mut from_client, mut to_client) = tokio::io::split(server);
        let script = script.as_bytes().to_vec();
        let writer = tokio::spawn(async move {
            for chunk in script.chunks(piece.max(1)) {
                if to_client.write_all(chunk).await.is_err() {
                    return;
                }
            }
            let _ = to_client.shutdown().await;
        });
        let reader = tokio::spawn(async move {
            let mut sent = Vec::new();
            let _ = from_client.read_to_end(&mut sent).await;
            String::from_utf8_lossy(&sent).into_owned()
        });
        let mut io = LineIo::new(client, Instant::now() + Duration::from_secs(5));
        let result = negotiate(&mut io, Stream::Client, context()).await;
        let clean = io.into_inner().is_ok();
        writer.await.expect("writer");
        let sent = reader.await.expect("reader");
        (result, clean, sent)
    }

    fn features(inner: &str) -> String {
        format!("{HEADER}<stream:features>{inner}</stream:features>")
    }

    #[tokio::test]
    async fn prosody_features_with_required_starttls_then_proceed_succeed() {
        let script = features(
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' ver='x+Y='/>",
        ) + PROCEED;
        let (result, clean, sent) = run(&script, 4096).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(clean);
        assert!(sent.contains("to='example.org'"), "{sent}");
        assert!(sent.contains("xmlns='jabber:client'"), "{sent}");
        assert!(sent.ends_with(STARTTLS), "{sent}");
    }

    #[tokio::test]
    async fn double_quotes_prefixes_and_one_byte_reads_are_understood() {
        let script = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
            <s:stream xmlns:s=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:client\" version=\"1.0\">\n\
            <s:features>\n  <tls:starttls xmlns:tls=\"urn:ietf:params:xml:ns:xmpp-tls\" />\n\
            <mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>PLAIN</mechanism></mechanisms>\n\
            </s:features >\n<tls:proceed xmlns:tls=\"urn:ietf:params:xml:ns:xmpp-tls\"></tls:proceed>";
        let (result, clean, _) = run(script, 1).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(clean);
    }

    #[tokio::test]
    async fn starttls_only_counts_in_its_namespace_as_a_child_of_the_features() {
        for inner in [
            "<starttls/>",
            "<starttls xmlns='urn:example:not-tls'/>",
            "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></mechanisms>",
            "<x starttls='urn:ietf:params:xml:ns:xmpp-tls'>starttls</x>",
            "<![CDATA[<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>]]>",
        ] {
            let (result, _, sent) = run(&features(inner), 4096).await;
            assert!(
                matches!(result, Err(StartTlsError::NotOffered { .. })),
                "{inner}: {result:?}"
            );
            assert!(!sent.contains("<starttls"), "{inner}: {sent}");
        }
    }

    #[tokio::test]
    async fn a_stream_error_is_unavailable_with_its_condition() {
        let script = format!(
            "{HEADER}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></stream:error></stream:stream>"
        );
        let (result, _, _) = run(&script, 4096).await;
        match result {
            Err(StartTlsError::Unavailable { reply }) => assert_eq!(reply, "host-unknown"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn failure_to_starttls_is_rejected() {
        let script = features("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            + "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>";
        let (result, _, _) = run(&script, 4096).await;
        assert!(
            matches!(result, Err(StartTlsError::Rejected { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn bytes_after_proceed_stay_buffered_for_into_inner_to_refuse() {
        let script = features("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            + PROCEED
            + "\x16\x03\x01";
        let (result, clean, _) = run(&script, 4096).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(!clean);
    }

    #[tokio::test]
    async fn a_header_without_version_is_a_pre_1_0_stream_without_starttls() {
        let script = "<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' id='1'>";
        let (result, _, _) = run(script, 4096).await;
        assert!(
            matches!(result, Err(StartTlsError::NotOffered { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn garbage_is_malformed() {
        for script in [
            "HTTP/1.1 400 Bad Request\r\n\r\n",
            "220 mail.example.org ESMTP\r\n",
            "<html><body>hi</body></html>",
            "<stream:stream version='1.0'>",
            "<!-- hello --><stream:stream>",
            "\u{0}\u{ff}<<<>>>",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0' version='1.0'>",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'></stream:features>",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='x'>",
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0' a='>'>",
        ] {
            let (result, _, _) = run(script, 7).await;
            assert!(
                matches!(result, Err(StartTlsError::Malformed { .. })),
                "{script:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn oversized_features_are_refused_at_the_limit() {
        let endless = "<mechanism>PLAIN</mechanism>".repeat(MAX_STREAM_BYTES / 20);
        let script = format!("{HEADER}<stream:features>{endless}");
        let (result, _, _) = run(&script, 4096).await;
        match result {
            Err(e @ StartTlsError::Malformed { .. }) => {
                assert!(e.to_string().contains("65536"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_connection_closed_mid_features_is_a_reset() {
        let script = format!("{HEADER}<stream:features><starttls");
        let (result, _, _) = run(&script, 4096).await;
        assert!(
            matches!(result, Err(StartTlsError::Line(LineError::Closed))),
            "{result:?}"
        );
    }

    #[test]
    fn tokens_parse_with_either_quote_and_spacing() {
        let (token, used) = next_token(b"<a:b x = \"1\" y='&lt;&#x41;&#66;'/>rest")
            .expect("valid")
            .expect("complete");
        assert_eq!(used, 34);
        assert_eq!(
            token,
            Token::Start {
                qname: "a:b".into(),
                attrs: vec![("x".into(), "1".into()), ("y".into(), "<AB".into())],
                empty: true,
            }
        );
        assert_eq!(
            next_token(b"</a:b >").expect("valid"),
            Some((
                Token::End {
                    qname: "a:b".into()
                },
                7
            ))
        );
        assert_eq!(
            next_token(b" \r\n<").expect("valid"),
            Some((Token::Text { blank: true }, 3))
        );
    }

    #[test]
    fn incomplete_tokens_wait_for_more_bytes() {
        for partial in [
            &b"<"[..],
            b"<stream:stream a='1'",
            b"</x",
            b"<?xml version='1.0'",
            b"<![CD",
            b"<![CDATA[ x ]]",
            b"<?>",
        ] {
            assert_eq!(next_token(partial), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn forbidden_and_broken_markup_is_refused() {
        for bad in [
            &b"<!-- c -->"[..],
            b"<!DOCTYPE x>",
            b"<?php x?>",
            b"<a b>",
            b"<a b='1'c='2'>",
            b"<a b=1>",
            b"<a b='1>",
            b"<a b='&bogus;'>",
            b"<a b='&#xFFFFFFFFF;'>",
            b"<a b='&amp'>",
            b"<1a>",
            b"<a:>",
            b"<:a>",
            b"<a:b:c>",
            b"< a>",
            b"</>",
            b"<\xff>",
        ] {
            assert!(
                next_token(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn markup_may_be_complete_only_at_its_terminator() {
        assert!(may_be_complete(b""));
        assert!(may_be_complete(b"text"));
        assert!(may_be_complete(b"<a b='c'>"));
        assert!(!may_be_complete(b"<a b='c"));
        assert!(!may_be_complete(b"<?xml a='>'"));
        assert!(may_be_complete(b"<?xml a='>'?>"));
        assert!(!may_be_complete(b"<![CDATA[ > ]>"));
        assert!(may_be_complete(b"<![CDATA[ > ]]>"));
    }

    /// Feeds `input` through the tokenizer and the nesting state until it errs or stops.
    fn drive(input: &[u8]) {
        let mut reader = XmlReader::default();
        let mut rest = input;
        while let Ok(Some((token, used))) = next_token(rest) {
            assert!(used > 0 && used <= rest.len(), "{input:?}");
            if reader.apply(token).is_err() {
                return;
            }
            if reader.close_empty {
                reader.close_empty = false;
                if reader.close_top().is_err() {
                    return;
                }
            }
            rest = &rest[used..];
        }
    }

    #[test]
    fn random_markup_never_panics_the_reader() {
        const ALPHABET: &[u8] = b"<>/?![]-'\"= :axmlnsCDAT&;#\xff\xc3\n";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 48).expect("small");
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[usize::try_from(next() % ALPHABET.len() as u64).expect("small")])
                .collect();
            drive(&input);
            let _ = may_be_complete(&input);
        }
        drive(format!("{HEADER}<stream:features>{}", "<a>".repeat(100)).as_bytes());
    }

    #[tokio::test]
    async fn deep_nesting_is_malformed() {
        let script = features(&"<a>".repeat(MAX_DEPTH));
        let (result, _, _) = run(&script, 4096).await;
        assert!(
            matches!(&result, Err(StartTlsError::Malformed { line }) if line.contains("deep")),
            "{result:?}"
        );
    }

    #[test]
    fn domains_are_escaped_for_the_attribute() {
        assert_eq!(
            escape_attribute("a'b\"c<d>e&f\u{1}g"),
            "a&apos;b&quot;c&lt;d&gt;e&amp;f&#x1;g"
        );
        let header = stream_header(Stream::Server, "x.org' evil='1");
        assert!(header.contains("to='x.org&apos; evil=&apos;1'"), "{header}");
        assert!(header.contains("xmlns='jabber:server'"), "{header}");
    }

    #[test]
    fn stream_versions_below_1_have_no_features() {
        assert!(matches!(supports_features(None), Ok(false)));
        assert!(matches!(supports_features(Some("0.9")), Ok(false)));
        assert!(matches!(supports_features(Some("1.0")), Ok(true)));
        assert!(matches!(supports_features(Some("2.13")), Ok(true)));
        assert!(supports_features(Some("1")).is_err());
        assert!(supports_features(Some("one.zero")).is_err());
    }
}
