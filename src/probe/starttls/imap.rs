//! IMAP STARTTLS (RFC 3501 §6.2.1, RFC 9051 §6.2.1).
//!
//! `* OK` (or `* PREAUTH`) greeting → capabilities, taken from the greeting's
//! `[CAPABILITY ...]` code when present, else `a001 CAPABILITY` → `* CAPABILITY ...` lines
//! and `a001 OK` → STARTTLS must be listed → `a002 STARTTLS` → `a002 OK`.
//!
//! A `* BYE` greeting, or `NO`/`BAD`/`* BYE` to CAPABILITY, is unavailable; `NO`, `BAD`
//! or `* BYE` to STARTTLS is a rejection. Only the lines of these exchanges are
//! understood: a literal (`{n}`), a continuation request (`+`) or a foreign tag is a
//! malformed reply. Each response is bounded to [`MAX_REPLY_LINES`] lines; `LineIo`
//! bounds each line and the time.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError, MAX_REPLY_LINES};
use crate::probe::line_io::LineIo;

const CAPABILITY_TAG: &str = "a001";
const STARTTLS_TAG: &str = "a002";

/// One response line, split by its first token.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// `* KIND text`: the first word and what follows it.
    Untagged { kind: &'a str, text: &'a str },
    /// `tag STATUS text`: the completion of a command.
    Tagged {
        tag: &'a str,
        status: &'a str,
        text: &'a str,
    },
}

/// Speaks IMAP until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    let offered = match read_greeting(io).await? {
        Some(offered) => offered,
        None => query_capabilities(io).await?,
    };
    if !offered {
        return Err(StartTlsError::NotOffered {
            evidence: "its CAPABILITY list has no STARTTLS".into(),
        });
    }
    io.write_all(format!("{STARTTLS_TAG} STARTTLS\r\n").as_bytes())
        .await?;
    let (status, line) = read_completion(io, STARTTLS_TAG, |_| {}).await?;
    match status {
        Status::Ok => Ok(()),
        Status::No | Status::Bad | Status::Bye => Err(StartTlsError::Rejected {
            reply: evidence(&line),
        }),
    }
}

/// Reads the greeting; `Some(offered)` when it carried a `[CAPABILITY ...]` code.
async fn read_greeting<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<Option<bool>, StartTlsError> {
    let line = io.read_line().await?;
    let Some(Line::Untagged { kind, text }) = parse_line(&line) else {
        return Err(StartTlsError::malformed(&line));
    };
    if kind.eq_ignore_ascii_case("OK") || kind.eq_ignore_ascii_case("PREAUTH") {
        Ok(capability_code(text).map(lists_starttls))
    } else if kind.eq_ignore_ascii_case("BYE") {
        Err(StartTlsError::Unavailable {
            reply: evidence(&line),
        })
    } else {
        Err(StartTlsError::malformed(&line))
    }
}

/// Sends `CAPABILITY` and reports whether any `* CAPABILITY` line lists STARTTLS.
async fn query_capabilities<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<bool, StartTlsError> {
    io.write_all(format!("{CAPABILITY_TAG} CAPABILITY\r\n").as_bytes())
        .await?;
    let mut offered = false;
    let (status, line) = read_completion(io, CAPABILITY_TAG, |(kind, text)| {
        if kind.eq_ignore_ascii_case("CAPABILITY") {
            offered |= lists_starttls(text);
        }
    })
    .await?;
    match status {
        Status::Ok => Ok(offered),
        Status::No | Status::Bad | Status::Bye => Err(StartTlsError::Unavailable {
            reply: evidence(&line),
        }),
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bad,
    /// An untagged `* BYE`: the server is closing the connection.
    Bye,
}

impl Status {
    fn parse(word: &str) -> Option<Status> {
        [("OK", Status::Ok), ("NO", Status::No), ("BAD", Status::Bad)]
            .into_iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map(|(_, status)| status)
    }
}

/// Reads untagged lines, handing each `(kind, text)` to `untagged`, until the
/// completion tagged `tag` (or a `* BYE`); returns its status and the line.
async fn read_completion<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
    tag: &str,
    mut untagged: impl FnMut((&str, &str)),
) -> Result<(Status, String), StartTlsError> {
    for _ in 0..MAX_REPLY_LINES {
        let line = io.read_line().await?;
        match parse_line(&line) {
            Some(Line::Untagged { kind, .. }) if kind.eq_ignore_ascii_case("BYE") => {
                return Ok((Status::Bye, line));
            }
            Some(Line::Untagged { kind, text }) if !ends_with_literal(text) => {
                untagged((kind, text));
            }
            Some(Line::Tagged {
                tag: this, status, ..
            }) if this == tag => {
                let status =
                    Status::parse(status).ok_or_else(|| StartTlsError::malformed(&line))?;
                return Ok((status, line));
            }
            _ => return Err(StartTlsError::malformed(&line)),
        }
    }
    Err(StartTlsError::TooManyLines {
        limit: MAX_REPLY_LINES,
    })
}

/// Splits a response line; `None` for a continuation request or an empty line.
fn parse_line(line: &str) -> Option<Line<'_>> {
    let (first, rest) = split_word(line);
    if first.is_empty() || first == "+" {
        return None;
    }
    if first == "*" {
        let (kind, text) = split_word(rest);
        return (!kind.is_empty()).then_some(Line::Untagged { kind, text });
    }
    if !first.bytes().all(is_tag_char) {
        return None;
    }
    let (status, text) = split_word(rest);
    Some(Line::Tagged {
        tag: first,
        status,
        text,
    })
}

/// The word before the first space, and the rest after it.
fn split_word(s: &str) -> (&str, &str) {
    s.split_once(' ').unwrap_or((s, ""))
}

/// ASTRING-CHAR minus `+` (RFC 9051 `tag`): printable ASCII except specials.
fn is_tag_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"(){%*\"\\]+".contains(&b)
}

/// Whether a line announces a literal (`{n}` or `{n+}`) on the lines that follow.
fn ends_with_literal(text: &str) -> bool {
    text.strip_suffix('}')
        .and_then(|t| t.rsplit_once('{'))
        .is_some_and(|(_, n)| {
            let n = n.strip_suffix('+').unwrap_or(n);
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The capability list of a `[CAPABILITY ...]` response code at the start of `text`.
fn capability_code(text: &str) -> Option<&str> {
    let code = text.strip_prefix('[')?.split_once(']')?.0;
    let (name, list) = split_word(code);
    name.eq_ignore_ascii_case("CAPABILITY").then_some(list)
}

/// Whether a space-separated capability list names STARTTLS.
fn lists_starttls(list: &str) -> bool {
    list.split_ascii_whitespace()
        .any(|c| c.eq_ignore_ascii_case("STARTTLS"))
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

    const CAPABILITY: &str = "a001 CAPABILITY";
    const STARTTLS: &str = "a002 STARTTLS";

    #[test]
    fn response_lines_split_into_untagged_and_tagged() {
        assert_eq!(
            parse_line("* OK [CAPABILITY IMAP4rev1] hi"),
            Some(Line::Untagged {
                kind: "OK",
                text: "[CAPABILITY IMAP4rev1] hi"
            })
        );
        assert_eq!(
            parse_line("a001 OK done"),
            Some(Line::Tagged {
                tag: "a001",
                status: "OK",
                text: "done"
            })
        );
        for bad in ["", "+ go ahead", "*", "* ", "a{1 OK", " OK"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn capability_codes_and_literals_are_recognised() {
        assert_eq!(
            capability_code("[CAPABILITY IMAP4rev1 STARTTLS] ready"),
            Some("IMAP4rev1 STARTTLS")
        );
        assert_eq!(capability_code("[ALERT] hello"), None);
        assert_eq!(capability_code("[CAPABILITY STARTTLS"), None);
        assert!(lists_starttls("IMAP4rev1 starttls LOGINDISABLED"));
        assert!(!lists_starttls("IMAP4rev1 STARTTLSX AUTH=PLAIN"));
        assert!(ends_with_literal("(\"name\" {5}"));
        assert!(ends_with_literal("x {12+}"));
        assert!(!ends_with_literal("x {}"));
        assert!(!ends_with_literal("IMAP4rev1"));
    }

    #[tokio::test]
    async fn starttls_listed_by_the_capability_command_succeeds() {
        let (result, clean) = converse(
            "* OK IMAP ready\r\n",
            &[
                (
                    CAPABILITY,
                    "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na001 OK done\r\n",
                ),
                (STARTTLS, "a002 OK Begin TLS negotiation now\r\n"),
            ],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(clean);
    }

    #[tokio::test]
    async fn a_capability_code_in_the_greeting_saves_the_capability_command() {
        let (result, _) = converse(
            "* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS] Dovecot ready.\r\n",
            &[(STARTTLS, "a002 OK go\r\n")],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn capabilities_without_starttls_are_not_offered() {
        let (result, _) = converse(
            "* PREAUTH ready\r\n",
            &[(
                CAPABILITY,
                "* CAPABILITY IMAP4rev1\r\n* OK noise\r\na001 OK\r\n",
            )],
        )
        .await;
        assert!(
            matches!(result, Err(StartTlsError::NotOffered { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn refusals_are_classified_by_where_they_come() {
        let (bye, _) = converse("* BYE too busy\r\n", &[]).await;
        assert!(
            matches!(bye, Err(StartTlsError::Unavailable { reply }) if reply == "* BYE too busy")
        );
        let (no, _) = converse("* OK hi\r\n", &[(CAPABILITY, "a001 NO go away\r\n")]).await;
        assert!(
            matches!(no, Err(StartTlsError::Unavailable { .. })),
            "{no:?}"
        );
        let (bad, _) = converse(
            "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n",
            &[(STARTTLS, "a002 BAD not now\r\n")],
        )
        .await;
        assert!(
            matches!(bad, Err(StartTlsError::Rejected { reply }) if reply == "a002 BAD not now")
        );
    }

    #[tokio::test]
    async fn foreign_formats_are_malformed() {
        for (greeting, exchange) in [
            ("HTTP/1.1 400 Bad Request\r\n", &[][..]),
            ("* OK hi\r\n", &[(CAPABILITY, "a009 OK wrong tag\r\n")][..]),
            ("* OK hi\r\n", &[(CAPABILITY, "+ more\r\n")][..]),
            (
                "* OK hi\r\n",
                &[(CAPABILITY, "* ID (\"name\" {5}\r\nhello)\r\n")][..],
            ),
            ("* OK hi\r\n", &[(CAPABILITY, "a001 MAYBE\r\n")][..]),
        ] {
            let (result, _) = converse(greeting, exchange).await;
            assert!(
                matches!(result, Err(StartTlsError::Malformed { .. })),
                "{greeting:?} {exchange:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn endless_untagged_lines_are_cut_off() {
        let flood = "* CAPABILITY IMAP4rev1\r\n".repeat(MAX_REPLY_LINES + 1);
        let (result, _) = converse("* OK hi\r\n", &[(CAPABILITY, &flood)]).await;
        assert!(matches!(
            result,
            Err(StartTlsError::TooManyLines {
                limit: MAX_REPLY_LINES
            })
        ));
    }
}
