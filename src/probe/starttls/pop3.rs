//! POP3 STLS (RFC 2595 §4, with CAPA from RFC 2449).
//!
//! `+OK` greeting → `CAPA` → `+OK` and capability lines up to `.`, which must list STLS
//! → `STLS` → `+OK`.
//!
//! A server that answers `CAPA` with `-ERR` gave no list, so STLS is tried anyway; POP3's
//! `-ERR` does not say whether a command is unknown or refused, so a `-ERR` to `STLS` is
//! always a rejection, with the server's words kept. The capability list is bounded to
//! [`MAX_REPLY_LINES`](super::MAX_REPLY_LINES) lines; `LineIo` bounds each line and the time.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{dot_list_names, evidence, read_status, StartTlsError};
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
    let (status, greeting) = read_status(io, parse_status).await?;
    if status == Status::Err {
        return Err(StartTlsError::Unavailable {
            reply: evidence(&greeting),
        });
    }
    io.write_all(b"CAPA\r\n").await?;
    let (status, _) = read_status(io, parse_status).await?;
    if status == Status::Ok {
        dot_list_names(io, "STLS").await?.require("CAPA")?;
    }
    io.write_all(b"STLS\r\n").await?;
    match read_status(io, parse_status).await? {
        (Status::Ok, _) => Ok(()),
        (Status::Err, reply) => Err(StartTlsError::Rejected {
            reply: evidence(&reply),
        }),
    }
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

#[cfg(test)]
mod tests {

    use super::*;
    use crate::probe::starttls::testing::converse_with;
    use crate::probe::starttls::MAX_REPLY_LINES;

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
            matches!(&result, Err(StartTlsError::NotOffered { evidence }) if evidence == "its CAPA reply lists USER, STLSX"),
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
