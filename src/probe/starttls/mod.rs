//! STARTTLS: the plaintext exchange that upgrades a connection to TLS.
//!
//! Each dialect is one module with one entry point, `negotiate(&mut LineIo, ..)`, that
//! speaks the protocol up to the point where the server expects a TLS ClientHello.
//! [`upgrade`] picks the dialect, bounds it with the probe deadline, and hands the
//! stream back only when no unread plaintext is left. The TLS handshake is `probe::tls`'s.

mod smtp;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::line_io::{LineError, LineIo};
use super::outcome::{Failure, FailureKind, StartTlsReason};
use crate::config::StartTls;

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
    #[error("the server does not offer STARTTLS")]
    NotOffered,
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
    /// The failure class for the metrics.
    pub fn reason(&self) -> StartTlsReason {
        match self {
            StartTlsError::Unavailable { .. } => StartTlsReason::ServiceUnavailable,
            StartTlsError::NotOffered => StartTlsReason::NotOffered,
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

/// Server text kept as evidence, cut to a readable length.
pub(crate) fn evidence(line: &str) -> String {
    const MAX: usize = 200;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Runs the `protocol` exchange on `stream` and returns it ready for the TLS handshake.
pub async fn upgrade(
    protocol: StartTls,
    stream: TcpStream,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let mut io = LineIo::new(stream, deadline);
    match protocol {
        StartTls::None => {}
        StartTls::Smtp => smtp::negotiate(&mut io, smtp::Hello::Ehlo).await?,
    }
    io.into_inner().map_err(|e| StartTlsError::from(e).into())
}
