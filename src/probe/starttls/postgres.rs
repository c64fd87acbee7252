//! PostgreSQL SSLRequest (PostgreSQL documentation, "Frontend/Backend Protocol",
//! §53.2.10 SSL Session Encryption, and the SSLRequest message format).
//!
//! The client sends SSLRequest (int32 length 8, int32 code 80877103) before any
//! startup packet; the server answers with one byte: `S` (the TLS handshake follows)
//! or `N` (no TLS: not offered).
//!
//! A server may instead answer `E` and an error. The documentation names servers that
//! predate SSL support; in practice it is a postmaster that could not start a backend
//! ("could not fork new process for connection"), which writes a protocol-2 error: the
//! text ending with a NUL. A protocol-3 ErrorResponse (int32 length, then fields) is
//! read as well. Either way the server refused to serve the connection: unavailable,
//! with its message as evidence. Any other byte is not PostgreSQL: malformed.
//!
//! Exactly one byte is read before TLS, so bytes a server sends after its `S` are left
//! unread and refused by `LineIo::into_inner` (CVE-2021-23222, plaintext injection).

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError};
use crate::probe::line_io::{LineError, LineIo};

/// The SSLRequest code: 1234 in the high 16 bits, 5679 in the low.
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// The most error text read after an `E`; real messages are one line.
pub const MAX_ERROR: usize = 4096;

/// Speaks PostgreSQL until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    io.write_all(&ssl_request()).await?;
    let mut answer = [0u8; 1];
    io.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err(StartTlsError::NotOffered {
            evidence: "it answered N to SSLRequest (ssl is off on the server)".into(),
        }),
        b'E' => Err(read_error(io).await?),
        other => Err(StartTlsError::Malformed {
            line: format!("PostgreSQL: 0x{other:02x} in answer to SSLRequest, not S, N or E"),
        }),
    }
}

/// SSLRequest: int32 length 8, int32 code, both big-endian.
fn ssl_request() -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&8u32.to_be_bytes());
    out[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
    out
}

/// Reads the error after `E` and returns it as `Unavailable`.
async fn read_error<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<StartTlsError, StartTlsError> {
    let mut first = [0u8; 1];
    io.read_exact(&mut first).await?;
    let text = if first[0] == 0 {
        // Protocol 3: an int32 length (counting itself) whose high byte is this zero.
        let mut rest = [0u8; 3];
        io.read_exact(&mut rest).await?;
        let len = error_length([first[0], rest[0], rest[1], rest[2]])?;
        let mut fields = vec![0u8; len];
        io.read_exact(&mut fields).await?;
        error_fields(&fields)
    } else {
        // Protocol 2: NUL-terminated text, often followed by the server closing.
        let mut text = vec![first[0]];
        read_until_nul(io, &mut text).await?;
        String::from_utf8_lossy(&text).trim_end().to_owned()
    };
    Ok(StartTlsError::Unavailable {
        reply: evidence(&text),
    })
}

/// The length of a protocol-3 ErrorResponse body, without the length field itself.
fn error_length(field: [u8; 4]) -> Result<usize, StartTlsError> {
    let declared = u32::from_be_bytes(field);
    match usize::try_from(declared) {
        Ok(len) if (5..=MAX_ERROR + 4).contains(&len) => Ok(len - 4),
        _ => Err(StartTlsError::Malformed {
            line: format!("PostgreSQL: an ErrorResponse of declared length {declared}"),
        }),
    }
}

/// Reads bytes into `text` up to a NUL, the connection's end or [`MAX_ERROR`].
async fn read_until_nul<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
    text: &mut Vec<u8>,
) -> Result<(), StartTlsError> {
    let mut byte = [0u8; 1];
    while text.len() < MAX_ERROR {
        match io.read_exact(&mut byte).await {
            Ok(()) if byte[0] == 0 => return Ok(()),
            Ok(()) => text.push(byte[0]),
            Err(LineError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `SEVERITY CODE: message` from ErrorResponse fields (a type byte, a C string, ...).
fn error_fields(fields: &[u8]) -> String {
    let mut severity = None;
    let mut code = None;
    let mut message = None;
    for field in fields.split(|b| *b == 0) {
        let Some((&kind, value)) = field.split_first() else {
            break;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        match kind {
            b'S' => severity = Some(value),
            b'C' => code = Some(value),
            b'M' => message = Some(value),
            _ => {}
        }
    }
    let head: Vec<String> = [severity, code].into_iter().flatten().collect();
    match (head.is_empty(), message) {
        (true, None) => "an ErrorResponse without a message".to_owned(),
        (true, Some(message)) => message,
        (false, None) => head.join(" "),
        (false, Some(message)) => format!("{}: {message}", head.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[test]
    fn the_request_is_length_8_and_code_80877103() {
        assert_eq!(ssl_request(), [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    }

    #[test]
    fn error_lengths_are_bounded() {
        assert_eq!(error_length([0, 0, 0, 5]).ok(), Some(1));
        assert_eq!(error_length([0, 0, 0x10, 0x04]).ok(), Some(MAX_ERROR));
        for bad in [
            [0, 0, 0, 0],
            [0, 0, 0, 4],
            [0, 0, 0x10, 0x05],
            [0, 0xff, 0xff, 0xff],
        ] {
            assert!(
                matches!(error_length(bad), Err(StartTlsError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn error_fields_give_severity_code_and_message() {
        let fields = b"SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0Fpostmaster.c\0\0";
        assert_eq!(
            error_fields(fields),
            "FATAL 53300: sorry, too many clients already"
        );
        assert_eq!(error_fields(b"Monly this\0\0"), "only this");
        assert_eq!(error_fields(b"\0"), "an ErrorResponse without a message");
        assert_eq!(error_fields(b""), "an ErrorResponse without a message");
        assert_eq!(error_fields(b"SERROR"), "ERROR");
    }

    /// Runs `negotiate` against a peer that answers `reply` and then closes.
    async fn answer(reply: &[u8]) -> (Result<(), StartTlsError>, Vec<u8>) {
        let (client, mut server) = duplex(64 * 1024);
        server.write_all(reply).await.unwrap();
        server.shutdown().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut io = LineIo::new(client, deadline);
        let result = negotiate(&mut io).await;
        drop(io);
        let mut sent = Vec::new();
        server.read_to_end(&mut sent).await.unwrap();
        (result, sent)
    }

    #[tokio::test]
    async fn answers_classify_by_their_first_byte() {
        let (result, sent) = answer(b"S").await;
        assert!(result.is_ok());
        assert_eq!(sent, ssl_request());
        assert!(matches!(
            answer(b"N").await.0,
            Err(StartTlsError::NotOffered { .. })
        ));
        assert!(matches!(
            answer(b"H").await.0,
            Err(StartTlsError::Malformed { .. })
        ));
        assert!(matches!(
            answer(b"").await.0,
            Err(StartTlsError::Line(LineError::Closed))
        ));
    }

    #[tokio::test]
    async fn errors_in_either_protocol_version_are_unavailable_with_their_text() {
        let v2 =
            b"Ecould not fork new process for connection: Resource temporarily unavailable\n\0";
        match answer(v2).await.0 {
            Err(StartTlsError::Unavailable { reply }) => assert_eq!(
                reply,
                "could not fork new process for connection: Resource temporarily unavailable"
            ),
            other => panic!("{other:?}"),
        }
        let fields = b"SFATAL\0C53300\0Msorry, too many clients already\0\0";
        let mut v3 = vec![b'E'];
        v3.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        v3.extend_from_slice(fields);
        match answer(&v3).await.0 {
            Err(StartTlsError::Unavailable { reply }) => {
                assert_eq!(reply, "FATAL 53300: sorry, too many clients already")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer(b"E\0\x7f\xff\xff").await.0,
            Err(StartTlsError::Malformed { .. })
        ));
        // Protocol-2 text without a NUL stops at the limit.
        let endless = [vec![b'E'], vec![b'x'; MAX_ERROR * 2]].concat();
        match answer(&endless).await.0 {
            Err(StartTlsError::Unavailable { reply }) => assert!(reply.len() < MAX_ERROR),
            other => panic!("{other:?}"),
        }
    }
}
