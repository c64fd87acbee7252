//! NNTP STARTTLS (RFC 4642 §2, with CAPABILITIES from RFC 3977 §5.2).
//!
//! `200`/`201` greeting → `CAPABILITIES` → `101` and capability lines up to `.`, which
//! must list STARTTLS → `STARTTLS` → `382`.
//!
//! RFC 4642 requires STARTTLS to be advertised, so a server that does not know
//! CAPABILITIES (`500`, a server older than RFC 3977) does not offer it; any other
//! refusal of CAPABILITIES is unavailable. Any reply to STARTTLS but `382` (`580` "can
//! not initiate TLS", `502` "command unavailable") is a rejection. The capability list is
//! bounded to [`MAX_REPLY_LINES`](super::MAX_REPLY_LINES) lines; `LineIo` bounds each line and the time.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{dot_list_names, evidence, read_status, StartTlsError};
use crate::probe::line_io::LineIo;

/// Speaks NNTP until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    let (code, greeting) = read_status(io, parse_status).await?;
    if !matches!(code, 200 | 201) {
        return Err(StartTlsError::Unavailable {
            reply: evidence(&greeting),
        });
    }
    io.write_all(b"CAPABILITIES\r\n").await?;
    match read_status(io, parse_status).await? {
        (101, _) => dot_list_names(io, "STARTTLS")
            .await?
            .require("CAPABILITIES")?,
        (500, reply) => {
            return Err(StartTlsError::NotOffered {
                evidence: format!("it does not know CAPABILITIES ({})", evidence(&reply)),
            })
        }
        (_, reply) => {
            return Err(StartTlsError::Unavailable {
                reply: evidence(&reply),
            })
        }
    }
    io.write_all(b"STARTTLS\r\n").await?;
    match read_status(io, parse_status).await? {
        (382, _) => Ok(()),
        (_, reply) => Err(StartTlsError::Rejected {
            reply: evidence(&reply),
        }),
    }
}

/// The code of a status line: three digits, the first 1-5, then a space or nothing
/// (RFC 3977 §3.2).
fn parse_status(line: &str) -> Option<u16> {
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'1'..=b'5').contains(&bytes[0])
        || bytes.get(3).is_some_and(|b| *b != b' ')
    {
        return None;
    }
    line[..3].parse().ok()
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

    const CAPABILITIES: &str =
        "101 Capability list:\r\nVERSION 2\r\nREADER\r\nSTARTTLS\r\nLIST ACTIVE NEWSGROUPS\r\n.\r\n";

    #[test]
    fn status_lines_parse_to_their_code() {
        assert_eq!(parse_status("200 news.test ready"), Some(200));
        assert_eq!(parse_status("382"), Some(382));
        for bad in ["", "20", "200-x", "2000", "abc", "* OK", "600 x"] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn starttls_listed_by_capabilities_succeeds() {
        for greeting in ["200 posting allowed\r\n", "201 no posting\r\n"] {
            let (result, clean) = converse(
                greeting,
                &[
                    ("CAPABILITIES", CAPABILITIES),
                    ("STARTTLS", "382 Continue with TLS negotiation\r\n"),
                ],
            )
            .await;
            assert!(result.is_ok(), "{result:?}");
            assert!(clean);
        }
    }

    #[tokio::test]
    async fn capabilities_without_starttls_are_not_offered() {
        let (result, _) = converse(
            "200 ready\r\n",
            &[(
                "CAPABILITIES",
                "101 list\r\nVERSION 2\r\n..STARTTLS\r\n.\r\n",
            )],
        )
        .await;
        assert!(
            matches!(result, Err(StartTlsError::NotOffered { .. })),
            "{result:?}"
        );
        let (old, _) = converse("200 ready\r\n", &[("CAPABILITIES", "500 What?\r\n")]).await;
        assert!(
            matches!(old, Err(StartTlsError::NotOffered { .. })),
            "{old:?}"
        );
    }

    #[tokio::test]
    async fn refusals_are_classified_by_where_they_come() {
        for greeting in ["400 service discontinued\r\n", "502 access denied\r\n"] {
            let (result, _) = converse(greeting, &[]).await;
            assert!(
                matches!(result, Err(StartTlsError::Unavailable { .. })),
                "{result:?}"
            );
        }
        for refusal in ["580 Can not initiate TLS negotiation", "502 not now"] {
            let (result, _) = converse(
                "200 ready\r\n",
                &[
                    ("CAPABILITIES", CAPABILITIES),
                    ("STARTTLS", &format!("{refusal}\r\n")),
                ],
            )
            .await;
            assert!(
                matches!(&result, Err(StartTlsError::Rejected { reply }) if reply == refusal),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn foreign_formats_are_malformed() {
        for (greeting, exchange) in [
            ("+OK POP3 ready\r\n", &[][..]),
            ("200-ready\r\n", &[][..]),
            ("200 ready\r\n", &[("CAPABILITIES", "* CAPABILITY\r\n")][..]),
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
        let flood = format!("101 list\r\n{}", "READER\r\n".repeat(MAX_REPLY_LINES + 1));
        let (result, _) = converse("200 ready\r\n", &[("CAPABILITIES", &flood)]).await;
        assert!(matches!(
            result,
            Err(StartTlsError::TooManyLines {
                limit: MAX_REPLY_LINES
            })
        ));
    }
}
