//! STARTTLS: the plaintext exchange that upgrades a connection to TLS.
//!
//! Each dialect is one module with one entry point, `negotiate(&mut LineIo, ..)`, that
//! speaks the protocol up to the point where the server expects a TLS ClientHello.
//! [`upgrade`] picks the dialect, bounds it with the probe deadline, and hands the
//! stream back only when no unread plaintext is left. The TLS handshake is `probe::tls`'s.

mod ftp;
mod imap;
mod ldap;
mod mysql;
mod nntp;
mod pop3;
mod postgres;
mod sieve;
mod smtp;
mod xmpp;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::line_io::{LineError, LineIo};
use super::outcome::{Failure, FailureKind, StartTlsReason};
use crate::config::StartTls;

/// The most lines one reply or capability list may have; real servers send a few dozen.
pub const MAX_REPLY_LINES: usize = 128;

/// The name certwatch introduces itself with (EHLO, LHLO ...).
pub const CLIENT_NAME: &str = "certwatch.localhost";

/// Why a STARTTLS exchange failed, with the server's words as evidence.
#[derive(Debug, thiserror::Error)]
pub enum StartTlsError {
    /// The greeting or a reply before STARTTLS was not a success.
    #[error("the server answered {reply:?} where a success reply was expected")]
    Unavailable {
        /// The server's reply (truncated).
        reply: String,
    },
    /// STARTTLS is not among the server's capabilities.
    #[error("the server does not offer STARTTLS: {evidence}")]
    NotOffered {
        /// What the server offered or answered instead (truncated).
        evidence: String,
    },
    /// The server refused the STARTTLS command.
    #[error("the server refused STARTTLS: {reply:?}")]
    Rejected {
        /// The server's reply (truncated).
        reply: String,
    },
    /// The server does not speak the protocol.
    #[error("not a valid reply: {line:?}")]
    Malformed {
        /// The offending line (truncated).
        line: String,
    },
    /// A reply went on for more lines than any real server sends.
    #[error("a reply longer than {limit} lines")]
    TooManyLines {
        /// The limit.
        limit: usize,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Line(#[from] LineError),
}

impl StartTlsError {
    /// Not the protocol: `line` (or what was wrong with it) is kept as evidence.
    pub(crate) fn malformed(line: &str) -> Self {
        StartTlsError::Malformed {
            line: evidence(line),
        }
    }

    /// The failure class for the metrics.
    pub fn reason(&self) -> StartTlsReason {
        match self {
            StartTlsError::Unavailable { .. } => StartTlsReason::ServiceUnavailable,
            StartTlsError::NotOffered { .. } => StartTlsReason::NotOffered,
            StartTlsError::Rejected { .. } => StartTlsReason::Rejected,
            StartTlsError::Malformed { .. } | StartTlsError::TooManyLines { .. } => {
                StartTlsReason::ProtocolError
            }
            StartTlsError::Line(e) => match e {
                LineError::Timeout => StartTlsReason::Timeout,
                LineError::Closed | LineError::Io(_) => StartTlsReason::Reset,
                LineError::TooLong { .. } | LineError::Unexpected { .. } => {
                    StartTlsReason::ProtocolError
                }
            },
        }
    }
}

impl From<StartTlsError> for Failure {
    fn from(error: StartTlsError) -> Self {
        Failure::new(FailureKind::StartTls(error.reason()), error.to_string())
    }
}

/// The most characters of server text kept as evidence.
const EVIDENCE_CHARS: usize = 200;

/// Server text kept as evidence, cut to a readable length.
pub(crate) fn evidence(line: &str) -> String {
    match line.char_indices().nth(EVIDENCE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// What a dialect may need to know about the target.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The name the target is known by (SNI): XMPP's stream `to`, for one.
    pub server_name: &'a str,
    /// The XMPP domain, when it differs from `server_name`.
    pub xmpp_domain: Option<&'a str>,
}

/// Reads one status line and parses it with `parse`; a line it refuses is malformed.
/// Returns the parsed status and the line, kept as evidence.
pub(crate) async fn read_status<S, T>(
    io: &mut LineIo<S>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<(T, String), StartTlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let line = io.read_line().await?;
    match parse(&line) {
        Some(status) => Ok((status, line)),
        None => Err(StartTlsError::Malformed {
            line: evidence(&line),
        }),
    }
}

/// Reads a multi-line list that ends with a lone `.` (POP3 `CAPA`, NNTP
/// `CAPABILITIES`), undoing dot-stuffing, and reports whether a line names `keyword`.
pub(crate) async fn dot_list_names<S>(
    io: &mut LineIo<S>,
    keyword: &'static str,
) -> Result<Capabilities, StartTlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut listed = Capabilities::new(keyword);
    for _ in 0..MAX_REPLY_LINES {
        let line = io.read_line().await?;
        if line == "." {
            return Ok(listed);
        }
        listed.note(line.strip_prefix('.').unwrap_or(&line));
    }
    Err(StartTlsError::TooManyLines {
        limit: MAX_REPLY_LINES,
    })
}

/// The capability names a server listed, and whether the one wanted was among them:
/// when it was not, the list is the evidence of [`StartTlsError::NotOffered`].
#[derive(Debug)]
pub(crate) struct Capabilities {
    wanted: &'static str,
    offered: bool,
    /// The names seen, comma-separated, cut at [`evidence`]'s length.
    names: String,
}

impl Capabilities {
    pub(crate) fn new(wanted: &'static str) -> Self {
        Self {
            wanted,
            offered: false,
            names: String::new(),
        }
    }

    /// Notes the capability that `line` names (its first word).
    pub(crate) fn note(&mut self, line: &str) {
        let Some(name) = line.split_ascii_whitespace().next() else {
            return;
        };
        self.offered |= name.eq_ignore_ascii_case(self.wanted);
        if self.names.len() < EVIDENCE_CHARS {
            if !self.names.is_empty() {
                self.names.push_str(", ");
            }
            self.names.push_str(name);
        }
    }

    /// `Ok` when the wanted capability was listed; otherwise what `reply` listed.
    pub(crate) fn require(self, reply: &str) -> Result<(), StartTlsError> {
        if self.offered {
            return Ok(());
        }
        let names = if self.names.is_empty() {
            "nothing".to_owned()
        } else {
            evidence(&self.names)
        };
        Err(StartTlsError::NotOffered {
            evidence: format!("its {reply} reply lists {names}"),
        })
    }
}

/// Runs the `protocol` exchange on `stream` and returns it ready for the TLS handshake.
pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    protocol: StartTls,
    stream: S,
    deadline: Instant,
    context: Context<'_>,
) -> Result<S, Failure> {
    let mut io = LineIo::new(stream, deadline);
    let io_ref = &mut io;
    match protocol {
        StartTls::None => Ok(()),
        StartTls::Smtp => smtp::negotiate(io_ref, smtp::Hello::Ehlo).await,
        StartTls::Lmtp => smtp::negotiate(io_ref, smtp::Hello::Lhlo).await,
        StartTls::Imap => imap::negotiate(io_ref).await,
        StartTls::Pop3 => pop3::negotiate(io_ref).await,
        StartTls::Ftp => ftp::negotiate(io_ref).await,
        StartTls::Ldap => ldap::negotiate(io_ref).await,
        StartTls::Postgres => postgres::negotiate(io_ref).await,
        StartTls::Mysql => mysql::negotiate(io_ref).await,
        StartTls::Xmpp => xmpp::negotiate(io_ref, xmpp::Stream::Client, context).await,
        StartTls::XmppServer => xmpp::negotiate(io_ref, xmpp::Stream::Server, context).await,
        StartTls::Nntp => nntp::negotiate(io_ref).await,
        StartTls::Sieve => sieve::negotiate(io_ref).await,
    }?;
    io.into_inner().map_err(|e| StartTlsError::from(e).into())
}

/// Test support shared by the dialects' unit tests.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_match_first_words_and_keep_a_bounded_list() {
        let mut listed = Capabilities::new("STARTTLS");
        listed.note("LIST STARTTLS");
        listed.note("");
        let long = "X".repeat(150);
        listed.note(&long);
        listed.note(&long);
        let Err(StartTlsError::NotOffered { evidence }) = listed.require("CAPABILITIES") else {
            panic!("STARTTLS as a second word is not the capability");
        };
        assert!(
            evidence.starts_with("its CAPABILITIES reply lists LIST, XXX"),
            "{evidence}"
        );
        assert!(evidence.chars().count() < 240, "{evidence}");

        let mut listed = Capabilities::new("STARTTLS");
        listed.note("starttls");
        assert!(listed.require("EHLO").is_ok());
        let Err(StartTlsError::NotOffered { evidence }) = Capabilities::new("STLS").require("CAPA")
        else {
            panic!("an empty list offers nothing");
        };
        assert_eq!(evidence, "its CAPA reply lists nothing");
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use tokio::io::{duplex, AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
    use tokio::time::Instant;

    use super::StartTlsError;
    use crate::probe::line_io::LineIo;

    /// Runs `negotiate` against a peer that sends `greeting`, then expects each command
    /// of `exchange` in turn (CRLF-terminated) and answers it. Also reports whether the
    /// stream was left with no unread bytes, as the TLS handshake requires.
    pub async fn converse_with(
        greeting: &str,
        exchange: &[(&str, &str)],
        negotiate: impl AsyncFnOnce(&mut LineIo<DuplexStream>) -> Result<(), StartTlsError>,
    ) -> (Result<(), StartTlsError>, bool) {
        let (client, server) = duplex(1 << 16);
        let peer = async move {
            let mut server = BufReader::new(server);
            server.write_all(greeting.as_bytes()).await?;
            for (command, reply) in exchange {
                let mut line = String::new();
                if server.read_line(&mut line).await? == 0 {
                    break;
                }
                assert_eq!(line, format!("{command}\r\n"));
                server.write_all(reply.as_bytes()).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let client = async move {
            let mut io = LineIo::new(client, Instant::now() + Duration::from_secs(60));
            let result = negotiate(&mut io).await;
            (result, io.into_inner().is_ok())
        };
        tokio::join!(client, peer).0
    }
}
