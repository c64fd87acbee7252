//! POP3 STLS (RFC 2595 §4, with CAPA from RFC 2449).
//!
//! `+OK` greeting → `CAPA` → `+OK` and capability lines up to `.`, which must list STLS
//! → `STLS` → `+OK`.
//!
//! A server that answers `CAPA` with `-ERR` gave no list, so STLS is tried anyway; POP3's
//! `-ERR` does not say whether a command is unknown or refused, so a `-ERR` to `STLS` is
//! always a rejection, with the server's words kept. The capability list is bounded to
//! [`MAX_REPLY_LINES`] lines; `LineIo` bounds each line and the time.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError, MAX_REPLY_LINES};
use crate::probe::line_io::LineIo;

/// A status line: `+OK ...` or `-ERR ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Err,
}

/// Speaks POP3 until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    let (status, greeting) = read_status(io).await?;
    if status == Status::Err {
        return Err(StartTlsError::Unavailable {
            reply: evidence(&greeting),
        });
    }
    io.write_all(b"CAPA\r\n").await?;
    let (status, _) = read_status(io).await?;
    if status == Status::Ok && !read_capabilities(io).await? {
        return Err(StartTlsError::NotOffered);
    }
    io.write_all(b"STLS\r\n").await?;
    match read_status(io).await? {
        (Status::Ok, _) => Ok(()),
        (Status::Err, reply) => Err(StartTlsError::Rejected {
            reply: evidence(&reply),
        }),
    }
}

/// Reads one status line.
async fn read_status<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(Status, String), StartTlsError> {
    let line = io.read_line().await?;
    match parse_status(&line) {
        Some(status) => Ok((status, line)),
        None => Err(StartTlsError::Malformed {
            line: evidence(&line),
        }),
    }
}

/// Reads the multi-line CAPA list up to its `.` and reports whether it names STLS.
async fn read_capabilities<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<bool, StartTlsError> {
    let mut offered = false;
    for _ in 0..MAX_REPLY_LINES {
        let line = io.read_line().await?;
        if line == "." {
            return Ok(offered);
        }
        offered |= names_stls(unstuff(&line));
    }
    Err(StartTlsError::TooManyLines {
        limit: MAX_REPLY_LINES,
    })
}

/// `+OK`/`-ERR`, alone or followed by a space and text (RFC 1939 §3).
fn parse_status(line: &str) -> Option<Status> {
    let (word, _) = line.split_once(' ').unwrap_or((line, ""));
    if word.eq_ignore_ascii_case("+OK") {
        Some(Status::Ok)
    } else if word.eq_ignore_ascii_case("-ERR") {
        Some(Status::Err)
    } else {
        None
    }
}

/// Removes the byte-stuffed leading `.` of a multi-line response line.
fn unstuff(line: &str) -> &str {
    line.strip_prefix('.').unwrap_or(line)
}

/// Whether a capability line is the STLS capability.
fn names_stls(line: &str) -> bool {
    line.split_ascii_whitespace()
        .next()
        .is_some_and(|c| c.eq_ignore_ascii_case("STLS"))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::probe::starttls::testing::converse_with;

    /// Runs `negotiate` against the scripted peer of [`converse_with`].
    async fn converse(
        greeting: &str,
        exchange: &[(&str, &str)],
    ) -> (Result<(), StartTlsError>, bool) {
        converse_with(greeting, exchange, async |io| negotiate(io).await).await
    }

    const CAPA: &str = "+OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\nSASL PLAIN\r\n.\r\n";

    #[test]
    fn status_lines_parse_by_their_first_word() {
        assert_eq!(parse_status("+OK POP3 ready"), Some(Status::Ok));
        assert_eq!(parse_status("+OK"), Some(Status::Ok));
        assert_eq!(parse_status("-ERR no"), Some(Status::Err));
        for bad in ["", "+OKAY", "OK", "* OK imap", "220 smtp"] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
        assert!(names_stls("stls"));
        assert!(!names_stls("SASL STLS"));
        assert_eq!(unstuff("..x"), ".x");
    }

    #[tokio::test]
    async fn stls_listed_by_capa_succeeds() {
        let (result, clean) = converse(
            "+OK POP3 ready\r\n",
            &[("CAPA", CAPA), ("STLS", "+OK Begin TLS negotiation\r\n")],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(clean);
    }

    #[tokio::test]
    async fn a_server_without_capa_is_asked_for_stls_anyway() {
        let (result, _) = converse(
            "+OK ready\r\n",
            &[("CAPA", "-ERR unknown command\r\n"), ("STLS", "+OK go\r\n")],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn capa_without_stls_is_not_offered() {
        let (result, _) = converse(
            "+OK ready\r\n",
            &[("CAPA", "+OK\r\nUSER\r\n.STLSX\r\n.\r\n")],
        )
        .await;
        assert!(
            matches!(result, Err(StartTlsError::NotOffered)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn refusals_are_classified_by_where_they_come() {
        let (greeting, _) = converse("-ERR maintenance\r\n", &[]).await;
        assert!(
            matches!(greeting, Err(StartTlsError::Unavailable { reply }) if reply == "-ERR maintenance")
        );
        let (stls, _) = converse(
            "+OK ready\r\n",
            &[("CAPA", CAPA), ("STLS", "-ERR TLS unavailable\r\n")],
        )
        .await;
        assert!(
            matches!(stls, Err(StartTlsError::Rejected { reply }) if reply == "-ERR TLS unavailable")
        );
    }

    #[tokio::test]
    async fn foreign_formats_are_malformed() {
        for (greeting, exchange) in [
            ("* OK IMAP4rev1 ready\r\n", &[][..]),
            ("+OK ready\r\n", &[("CAPA", "250 ok\r\n")][..]),
            (
                "+OK ready\r\n",
                &[("CAPA", CAPA), ("STLS", "220 go\r\n")][..],
            ),
        ] {
            let (result, _) = converse(greeting, exchange).await;
            assert!(
                matches!(result, Err(StartTlsError::Malformed { .. })),
                "{greeting:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_endless_capability_list_is_cut_off() {
        let flood = format!("+OK\r\n{}", "TOP\r\n".repeat(MAX_REPLY_LINES + 1));
        let (result, _) = converse("+OK ready\r\n", &[("CAPA", &flood)]).await;
        assert!(matches!(
            result,
            Err(StartTlsError::TooManyLines {
                limit: MAX_REPLY_LINES
            })
        ));
    }
}
