//! SMTP STARTTLS (RFC 3207) and, with `LHLO`, LMTP (RFC 2033).
//!
//! 220 greeting → EHLO (LHLO) → 250 capabilities listing STARTTLS → STARTTLS → 220.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, Capabilities, StartTlsError, CLIENT_NAME, MAX_REPLY_LINES};
use crate::probe::line_io::LineIo;

/// The greeting command.
#[derive(Clone, Copy, Debug)]
pub enum Hello {
    /// SMTP.
    Ehlo,
    /// LMTP.
    Lhlo,
}

impl Hello {
    fn command(self) -> &'static str {
        match self {
            Hello::Ehlo => "EHLO",
            Hello::Lhlo => "LHLO",
        }
    }
}

/// A complete (possibly multi-line) reply.
#[derive(Debug)]
struct Reply {
    code: u16,
    /// The text of each line, after the code and separator.
    lines: Vec<String>,
}

impl Reply {
    fn summary(&self) -> String {
        evidence(&format!(
            "{} {}",
            self.code,
            self.lines.last().map(String::as_str).unwrap_or("")
        ))
    }
}

/// Speaks SMTP until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
    hello: Hello,
) -> Result<(), StartTlsError> {
    let greeting = read_reply(io).await?;
    if greeting.code != 220 {
        return Err(StartTlsError::Unavailable {
            reply: greeting.summary(),
        });
    }
    io.write_all(format!("{} {CLIENT_NAME}\r\n", hello.command()).as_bytes())
        .await?;
    let capabilities = read_reply(io).await?;
    if capabilities.code != 250 {
        return Err(StartTlsError::Unavailable {
            reply: capabilities.summary(),
        });
    }
    // The first line is the server's greeting text; capabilities follow.
    let mut listed = Capabilities::new("STARTTLS");
    capabilities
        .lines
        .iter()
        .skip(1)
        .for_each(|line| listed.note(line));
    listed.require(hello.command())?;
    io.write_all(b"STARTTLS\r\n").await?;
    let ready = read_reply(io).await?;
    if ready.code != 220 {
        return Err(StartTlsError::Rejected {
            reply: ready.summary(),
        });
    }
    Ok(())
}

/// Reads one reply: `ddd-text` lines up to a final `ddd text` (or bare `ddd`) line.
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<Reply, StartTlsError> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        if lines.len() == MAX_REPLY_LINES {
            return Err(StartTlsError::TooManyLines {
                limit: MAX_REPLY_LINES,
            });
        }
        let line = io.read_line().await?;
        let (this_code, last, text) =
            parse_line(&line).ok_or_else(|| StartTlsError::malformed(&line))?;
        if code.is_some_and(|c| c != this_code) {
            return Err(StartTlsError::malformed(&line));
        }
        code = Some(this_code);
        lines.push(text.to_owned());
        if last {
            return Ok(Reply {
                code: this_code,
                lines,
            });
        }
    }
}

/// Splits `250-text` into (250, false, "text") and `250 text` / `250` into (250, true, ..).
fn parse_line(line: &str) -> Option<(u16, bool, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&bytes[0])
    {
        return None;
    }
    let code = line[..3].parse().ok()?;
    match bytes.get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::converse_with;
    use super::*;

    #[tokio::test]
    async fn an_ehlo_reply_without_starttls_is_reported_with_what_it_lists() {
        let ehlo = "250-mail.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
        let (result, _) = converse_with(
            "220 mail.test ESMTP\r\n",
            &[(&format!("EHLO {CLIENT_NAME}"), ehlo)],
            async |io| negotiate(io, Hello::Ehlo).await,
        )
        .await;
        let error = result.expect_err("STARTTLS is not offered");
        assert_eq!(
            error.to_string(),
            "the server does not offer STARTTLS: its EHLO reply lists PIPELINING, SIZE, 8BITMIME"
        );
    }

    #[test]
    fn reply_lines_parse_by_their_separator() {
        assert_eq!(
            parse_line("250-PIPELINING"),
            Some((250, false, "PIPELINING"))
        );
        assert_eq!(parse_line("250 STARTTLS"), Some((250, true, "STARTTLS")));
        assert_eq!(parse_line("220"), Some((220, true, "")));
        for bad in [
            "",
            "25",
            "abc",
            "250_x",
            "HTTP/1.1 200 OK",
            "999 x",
            "\u{1F600}bc",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }
}
