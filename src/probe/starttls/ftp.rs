//! FTP AUTH TLS (RFC 4217 §4, with FEAT from RFC 2389 and replies per RFC 959 §4.2).
//!
//! `220` greeting (after any `120` "ready in nnn minutes") → `FEAT` → `211` feature list,
//! which must name `AUTH TLS` → `AUTH TLS` → `234`.
//!
//! A multi-line reply starts `ddd-` and ends at the first line starting `ddd ` with the
//! same code; the lines between may hold anything. A `5xx` to FEAT (not implemented)
//! leaves no list, so AUTH TLS is tried anyway; any other non-`2xx` (`421` closing) is
//! unavailable. Refusals of `AUTH TLS` are classified by code: `500`/`502`/`504`
//! ("unknown command", "not implemented", "not implemented for that parameter") mean
//! TLS is not offered; any other reply (`534` policy, `431`, `421` ...) is a rejection.
//! Each reply is bounded to [`MAX_REPLY_LINES`] lines; `LineIo` bounds each line and
//! the time.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError, MAX_REPLY_LINES};
use crate::probe::line_io::LineIo;

/// The most `120` replies accepted before the `220`; more is a server not yet ready.
const MAX_PRELIMINARY_REPLIES: usize = 3;

/// A complete (possibly multi-line) reply.
#[derive(Debug)]
struct Reply {
    code: u16,
    /// Every line, as received.
    lines: Vec<String>,
}

impl Reply {
    fn summary(&self) -> String {
        evidence(self.lines.last().map(String::as_str).unwrap_or(""))
    }
}

/// Speaks FTP until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    read_greeting(io).await?;
    io.write_all(b"FEAT\r\n").await?;
    let features = read_reply(io).await?;
    match features.code {
        200..=299 if !lists_auth_tls(&features) => {
            return Err(StartTlsError::NotOffered {
                evidence: format!("its FEAT reply lists {}", feature_names(&features)),
            })
        }
        200..=299 | 500..=599 => {}
        _ => {
            return Err(StartTlsError::Unavailable {
                reply: features.summary(),
            })
        }
    }
    io.write_all(b"AUTH TLS\r\n").await?;
    let ready = read_reply(io).await?;
    match ready.code {
        234 => Ok(()),
        500 | 502 | 504 => Err(StartTlsError::NotOffered {
            evidence: format!("it answered AUTH TLS with {}", ready.summary()),
        }),
        _ => Err(StartTlsError::Rejected {
            reply: ready.summary(),
        }),
    }
}

/// Reads the greeting, after at most [`MAX_PRELIMINARY_REPLIES`] `120`s; anything but
/// `220` is unavailable.
async fn read_greeting<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    let mut greeting = read_reply(io).await?;
    for _ in 0..MAX_PRELIMINARY_REPLIES {
        if greeting.code != 120 {
            break;
        }
        greeting = read_reply(io).await?;
    }
    match greeting.code {
        220 => Ok(()),
        _ => Err(StartTlsError::Unavailable {
            reply: greeting.summary(),
        }),
    }
}

/// Reads one reply: a single `ddd text` line, or `ddd-` ... `ddd text`.
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<Reply, StartTlsError> {
    let first = io.read_line().await?;
    let Some((code, last)) = parse_first(&first) else {
        return Err(StartTlsError::malformed(&first));
    };
    let mut lines = vec![first];
    if last {
        return Ok(Reply { code, lines });
    }
    while lines.len() < MAX_REPLY_LINES {
        let line = io.read_line().await?;
        let done = ends_reply(&line, code);
        lines.push(line);
        if done {
            return Ok(Reply { code, lines });
        }
    }
    Err(StartTlsError::TooManyLines {
        limit: MAX_REPLY_LINES,
    })
}

/// The code of a reply's first line and whether it is also the last:
/// `220 text` / `220` → (220, true), `220-text` → (220, false).
fn parse_first(line: &str) -> Option<(u16, bool)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'1'..=b'5').contains(&bytes[0])
    {
        return None;
    }
    let code = line[..3].parse().ok()?;
    match bytes.get(3) {
        None | Some(b' ') => Some((code, true)),
        Some(b'-') => Some((code, false)),
        Some(_) => None,
    }
}

/// Whether `line` ends a multi-line reply with `code`: the code, then a space or nothing.
fn ends_reply(line: &str, code: u16) -> bool {
    let code = code.to_string();
    line.strip_prefix(code.as_str())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// Whether a FEAT reply lists `AUTH` with the `TLS` (or `TLS-C`) mechanism. Feature
/// lines start with a space (RFC 2389 §3.2); servers separate mechanisms with spaces,
/// semicolons or commas (` AUTH TLS`, ` AUTH SSL;TLS`).
/// The features of a FEAT reply: the lines between its first and its last.
fn feature_lines(reply: &Reply) -> impl Iterator<Item = &str> {
    let inner = reply.lines.len().saturating_sub(1);
    reply.lines.iter().take(inner).skip(1).map(String::as_str)
}

/// What a FEAT reply lists, as evidence.
fn feature_names(reply: &Reply) -> String {
    let names: Vec<&str> = feature_lines(reply).map(str::trim).collect();
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        evidence(&names.join(", "))
    }
}

fn lists_auth_tls(reply: &Reply) -> bool {
    feature_lines(reply).any(|line| {
        let mut words = line
            .split(|c: char| c.is_ascii_whitespace() || c == ';' || c == ',')
            .filter(|w| !w.is_empty());
        words.next().is_some_and(|w| w.eq_ignore_ascii_case("AUTH"))
            && words.any(|w| w.eq_ignore_ascii_case("TLS") || w.eq_ignore_ascii_case("TLS-C"))
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

    const FEAT: &str = "211-Features:\r\n MDTM\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n";

    #[test]
    fn first_lines_parse_by_their_separator() {
        assert_eq!(parse_first("220 ready"), Some((220, true)));
        assert_eq!(parse_first("220"), Some((220, true)));
        assert_eq!(parse_first("220-welcome"), Some((220, false)));
        assert_eq!(parse_first("120 in 5 minutes"), Some((120, true)));
        for bad in ["", "22", "abc", "220_x", "SSH-2.0-OpenSSH", "620 x"] {
            assert_eq!(parse_first(bad), None, "{bad:?}");
        }
        assert!(ends_reply("211 End", 211));
        assert!(ends_reply("211", 211));
        assert!(!ends_reply("211-more", 211));
        assert!(!ends_reply("2110 x", 211));
        assert!(!ends_reply("220 other", 211));
    }

    #[test]
    fn auth_tls_is_found_among_the_features() {
        let reply = |lines: &[&str]| Reply {
            code: 211,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        };
        assert!(lists_auth_tls(&reply(&["211-x", " AUTH TLS", "211 End"])));
        assert!(lists_auth_tls(&reply(&[
            "211-x",
            " auth ssl;tls-c",
            "211 End"
        ])));
        assert!(!lists_auth_tls(&reply(&[
            "211-x",
            " AUTH SSL",
            " TLS",
            "211 End"
        ])));
        assert!(!lists_auth_tls(&reply(&["211-x AUTH TLS", "211 AUTH TLS"])));
        assert!(!lists_auth_tls(&reply(&["211 no-features"])));
    }

    #[tokio::test]
    async fn auth_tls_after_a_multiline_greeting_with_free_text_lines_succeeds() {
        let (result, clean) = converse(
            "220-Welcome\r\nanything at all\r\n230 not a code here\r\n220-still going\r\n220 ready\r\n",
            &[("FEAT", FEAT), ("AUTH TLS", "234 AUTH TLS OK.\r\n")],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(clean);
    }

    #[tokio::test]
    async fn a_preliminary_120_is_followed_by_the_greeting() {
        let (result, _) = converse(
            "120 ready in 1 minute\r\n220 ready\r\n",
            &[("FEAT", "502 no FEAT\r\n"), ("AUTH TLS", "234 go\r\n")],
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        let (forever, _) = converse(&"120 soon\r\n".repeat(MAX_PRELIMINARY_REPLIES + 1), &[]).await;
        assert!(
            matches!(&forever, Err(StartTlsError::Unavailable { reply }) if reply == "120 soon"),
            "{forever:?}"
        );
    }

    #[tokio::test]
    async fn features_without_auth_tls_are_not_offered() {
        let (result, _) = converse(
            "220 ready\r\n",
            &[("FEAT", "211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n")],
        )
        .await;
        assert!(
            matches!(result, Err(StartTlsError::NotOffered { .. })),
            "{result:?}"
        );
        let (unknown, _) = converse(
            "220 ready\r\n",
            &[
                ("FEAT", "500 what?\r\n"),
                ("AUTH TLS", "502 not implemented\r\n"),
            ],
        )
        .await;
        assert!(
            matches!(unknown, Err(StartTlsError::NotOffered { .. })),
            "{unknown:?}"
        );
    }

    #[tokio::test]
    async fn refusals_are_classified_by_where_they_come() {
        let (greeting, _) = converse("421 Too many connections\r\n", &[]).await;
        assert!(
            matches!(greeting, Err(StartTlsError::Unavailable { reply }) if reply == "421 Too many connections")
        );
        let (feat, _) = converse("220 ready\r\n", &[("FEAT", "421 closing\r\n")]).await;
        assert!(
            matches!(feat, Err(StartTlsError::Unavailable { .. })),
            "{feat:?}"
        );
        let (auth, _) = converse(
            "220 ready\r\n",
            &[("FEAT", FEAT), ("AUTH TLS", "534 Policy denied\r\n")],
        )
        .await;
        assert!(
            matches!(auth, Err(StartTlsError::Rejected { reply }) if reply == "534 Policy denied")
        );
    }

    #[tokio::test]
    async fn foreign_formats_are_malformed() {
        for greeting in ["SSH-2.0-OpenSSH_9.6\r\n", "* OK IMAP\r\n", "+OK POP3\r\n"] {
            let (result, _) = converse(greeting, &[]).await;
            assert!(
                matches!(result, Err(StartTlsError::Malformed { .. })),
                "{greeting:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_endless_multiline_reply_is_cut_off() {
        let flood = format!("220-hi\r\n{}", "220-more\r\n".repeat(MAX_REPLY_LINES));
        let (result, _) = converse(&flood, &[]).await;
        assert!(matches!(
            result,
            Err(StartTlsError::TooManyLines {
                limit: MAX_REPLY_LINES
            })
        ));
    }
}
