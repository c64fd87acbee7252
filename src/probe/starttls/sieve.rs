//! ManageSieve STARTTLS (RFC 5804 §1.7, §2.2).
//!
//! On connect the server sends its capabilities, one per line (`"IMPLEMENTATION" "..."`,
//! `"SASL" "PLAIN"`, `"STARTTLS"`, ...), ending with `OK ...`; `"STARTTLS"` must be among
//! them → `STARTTLS` → `OK`.
//!
//! Capability names are quoted strings; a literal (`{n}`, `{n+}`) is legal but no server
//! sends one here, so it is a malformed reply like any other foreign line. `NO` or `BYE`
//! instead of the greeting's `OK` is unavailable; in answer to STARTTLS, a rejection.
//! The greeting is bounded to [`MAX_REPLY_LINES`] lines; `LineIo` bounds each line
//! and the time.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError, MAX_REPLY_LINES};
use crate::probe::line_io::LineIo;

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bye,
}

/// One line from the server.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A capability, by its (unquoted) name.
    Capability(String),
    /// The end of a response.
    Response(Status),
}

/// Speaks ManageSieve until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    if !read_capabilities(io).await? {
        return Err(StartTlsError::NotOffered {
            evidence: "its capability list has no \"STARTTLS\"".into(),
        });
    }
    io.write_all(b"STARTTLS\r\n").await?;
    let line = io.read_line().await?;
    match parse_line(&line) {
        Some(Line::Response(Status::Ok)) => Ok(()),
        Some(Line::Response(Status::No | Status::Bye)) => Err(StartTlsError::Rejected {
            reply: evidence(&line),
        }),
        Some(Line::Capability(_)) | None => Err(StartTlsError::malformed(&line)),
    }
}

/// Reads the greeting's capabilities up to its `OK`; reports whether STARTTLS is one.
async fn read_capabilities<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<bool, StartTlsError> {
    let mut offered = false;
    for _ in 0..MAX_REPLY_LINES {
        let line = io.read_line().await?;
        match parse_line(&line) {
            Some(Line::Capability(name)) => offered |= name.eq_ignore_ascii_case("STARTTLS"),
            Some(Line::Response(Status::Ok)) => return Ok(offered),
            Some(Line::Response(Status::No | Status::Bye)) => {
                return Err(StartTlsError::Unavailable {
                    reply: evidence(&line),
                })
            }
            None => return Err(StartTlsError::malformed(&line)),
        }
    }
    Err(StartTlsError::TooManyLines {
        limit: MAX_REPLY_LINES,
    })
}

/// A capability line (`"NAME"` or `"NAME" "value"`) or a response (`OK`, `NO`, `BYE`,
/// alone or followed by a space); `None` for anything else, literals included.
fn parse_line(line: &str) -> Option<Line> {
    if ends_with_literal(line) {
        return None;
    }
    if let Some(quoted) = line.strip_prefix('"') {
        let (name, rest) = unquote(quoted)?;
        return (rest.is_empty() || rest.starts_with(' ')).then_some(Line::Capability(name));
    }
    let (word, _) = line.split_once(' ').unwrap_or((line, ""));
    [("OK", Status::Ok), ("NO", Status::No), ("BYE", Status::Bye)]
        .into_iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map(|(_, status)| Line::Response(status))
}

/// The body of a quoted string whose opening `"` is already stripped, unescaped, and
/// what follows its closing `"`; `None` when it does not close.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// Whether a line announces a literal (`{n}` or `{n+}`) on the lines that follow.
fn ends_with_literal(line: &str) -> bool {
    line.strip_suffix('}')
        .and_then(|t| t.rsplit_once('{'))
        .is_some_and(|(_, n)| {
            let n = n.strip_suffix('+').unwrap_or(n);
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
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

    const GREETING: &str = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto reject\"\r\n\"NOTIFY\" \"mailto\"\r\n\"SASL\" \"\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n";

    #[test]
    fn lines_parse_into_capabilities_and_responses() {
        let cap = |s: &str| Some(Line::Capability(s.into()));
        assert_eq!(parse_line("\"STARTTLS\""), cap("STARTTLS"));
        assert_eq!(parse_line("\"SASL\" \"PLAIN LOGIN\""), cap("SASL"));
        assert_eq!(parse_line(r#""A\"B\\" "x""#), cap("A\"B\\"));
        assert_eq!(parse_line("OK"), Some(Line::Response(Status::Ok)));
        assert_eq!(parse_line("ok \"ready\""), Some(Line::Response(Status::Ok)));
        assert_eq!(
            parse_line("NO (TRYLATER) \"busy\""),
            Some(Line::Response(Status::No))
        );
        assert_eq!(parse_line("BYE"), Some(Line::Response(Status::Bye)));
        for bad in [
            "",
            "\"STARTTLS",
            "\"SIEVE\"x",
            "\"SIEVE\" {12}",
            "{8+}",
            "OKAY",
            "* OK imap",
            "220 smtp",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn starttls_in_the_greeting_succeeds() {
        let (result, clean) = converse(
            GREETING,
            &[("STARTTLS", "OK \"Begin TLS negotiation now.\"\r\n")],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(clean);
    }

    #[tokio::test]
    async fn a_greeting_without_starttls_is_not_offered() {
        let (result, _) = converse(
            "\"IMPLEMENTATION\" \"x\"\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n",
            &[],
        )
        .await;
        assert!(
            matches!(result, Err(StartTlsError::NotOffered { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn refusals_are_classified_by_where_they_come() {
        let (greeting, _) = converse("BYE \"Too many connections\"\r\n", &[]).await;
        assert!(
            matches!(greeting, Err(StartTlsError::Unavailable { .. })),
            "{greeting:?}"
        );
        let (no, _) = converse(GREETING, &[("STARTTLS", "NO \"TLS unavailable\"\r\n")]).await;
        assert!(
            matches!(no, Err(StartTlsError::Rejected { reply }) if reply == "NO \"TLS unavailable\"")
        );
    }

    #[tokio::test]
    async fn foreign_formats_are_malformed() {
        for (greeting, exchange) in [
            ("220 smtp ready\r\n", &[][..]),
            ("\"SIEVE\" {5}\r\nabcde\r\nOK\r\n", &[][..]),
            (GREETING, &[("STARTTLS", "\"STARTTLS\"\r\n")][..]),
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
        let flood = "\"SIEVE\" \"fileinto\"\r\n".repeat(MAX_REPLY_LINES + 1);
        let (result, _) = converse(&flood, &[]).await;
        assert!(matches!(
            result,
            Err(StartTlsError::TooManyLines {
                limit: MAX_REPLY_LINES
            })
        ));
    }
}
