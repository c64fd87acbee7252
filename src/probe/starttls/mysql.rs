//! MySQL / MariaDB SSL request (MySQL client/server protocol: "Protocol::HandshakeV10",
//! "Protocol::SSLRequest", "ERR_Packet"; MariaDB's "Connection" page describes the same).
//!
//! The server speaks first: one packet (3-byte little-endian payload length, 1-byte
//! sequence id 0) holding the initial handshake, protocol version 10, whose capability
//! flags include `CLIENT_SSL` when the server offers TLS. The client answers with the
//! SSL Request packet (sequence id 1): the head of a handshake response without the
//! user name, telling the server to start TLS at once. The server sends nothing more
//! in plaintext; the TLS ClientHello follows.
//!
//! How answers are classified:
//! - a handshake without `CLIENT_SSL`: not offered.
//! - an ERR packet (0xff) instead of the handshake, e.g. 1130 "Host ... is not allowed to
//!   connect" or 1040 "Too many connections": unavailable, with the code and message.
//! - a packet over [`MAX_PACKET`], another protocol version, or a truncated handshake:
//!   malformed. The length is checked before the payload is read.
//!
//! A server without `CLIENT_PROTOCOL_41` (MySQL before 4.1) gets the short, 4.0 form of
//! the request, as libmysqlclient sends it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError};
use crate::probe::line_io::LineIo;

/// The largest packet accepted; an initial handshake is about 100 bytes.
pub const MAX_PACKET: usize = 16 * 1024;

/// Capability flags (MySQL `include/mysql_com.h`).
mod cap {
    pub const LONG_PASSWORD: u32 = 0x0000_0001;
    pub const PROTOCOL_41: u32 = 0x0000_0200;
    pub const SSL: u32 = 0x0000_0800;
    pub const SECURE_CONNECTION: u32 = 0x0000_8000;
    pub const PLUGIN_AUTH: u32 = 0x0008_0000;
}

/// The capabilities asked for, of those the server has.
const CLIENT_CAPABILITIES: u32 =
    cap::LONG_PASSWORD | cap::PROTOCOL_41 | cap::SSL | cap::SECURE_CONNECTION | cap::PLUGIN_AUTH;
/// The max_packet_size announced: 16 MiB, as the mysql client does.
const CLIENT_MAX_PACKET: u32 = 0x0100_0000;
/// `utf8_general_ci`, known to every server since 4.1.
const CLIENT_CHARSET: u8 = 33;

/// Speaks MySQL until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    let payload = read_packet(io).await?;
    let capabilities = match parse_greeting(&payload).map_err(malformed)? {
        Greeting::Handshake { capabilities } => capabilities,
        Greeting::Error { code, message } => {
            return Err(StartTlsError::Unavailable {
                reply: evidence(&format!("{code}: {message}")),
            })
        }
    };
    if capabilities & cap::SSL == 0 {
        return Err(StartTlsError::NotOffered {
            evidence: "its handshake packet does not set the CLIENT_SSL capability".into(),
        });
    }
    io.write_all(&ssl_request(capabilities)).await?;
    Ok(())
}

fn malformed(what: String) -> StartTlsError {
    StartTlsError::malformed(&format!("MySQL: {what}"))
}

/// Reads the server's first packet and returns its payload.
async fn read_packet<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<Vec<u8>, StartTlsError> {
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await?;
    let len = payload_length(header).map_err(malformed)?;
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await?;
    Ok(payload)
}

/// The payload length from a packet header, which must be the first packet (id 0).
fn payload_length(header: [u8; 4]) -> Result<usize, String> {
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if header[3] != 0 {
        return Err(format!(
            "a first packet with sequence id {}, not 0",
            header[3]
        ));
    }
    if len == 0 || len > MAX_PACKET {
        return Err(format!(
            "a first packet of {len} bytes, not 1 to {MAX_PACKET}"
        ));
    }
    Ok(len)
}

/// What the server's first packet says.
#[derive(Debug, PartialEq, Eq)]
enum Greeting {
    /// A protocol-10 handshake, with its capability flags.
    Handshake { capabilities: u32 },
    /// An ERR packet.
    Error { code: u16, message: String },
}

/// A cursor over a payload; every read past its end is an error.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("a handshake that ends before its {what}"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16_le(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A NUL-terminated string, without its NUL.
    fn c_string(&mut self, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .0
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("a {what} without its NUL"))?;
        let text = self.take(end, what)?;
        self.take(1, what)?;
        Ok(text)
    }
}

/// Parses the initial handshake (or ERR) packet as far as the capability flags.
fn parse_greeting(payload: &[u8]) -> Result<Greeting, String> {
    let mut c = Cursor(payload);
    match c.take(1, "protocol version")?[0] {
        10 => {}
        0xff => {
            let code = c.u16_le("error code")?;
            return Ok(Greeting::Error {
                code,
                message: error_message(c.0),
            });
        }
        other => return Err(format!("protocol version {other}, not 10")),
    }
    c.c_string("server version")?;
    c.take(4, "connection id")?;
    c.take(8, "auth-plugin-data")?;
    c.take(1, "filler")?;
    let lower = u32::from(c.u16_le("capability flags")?);
    // Servers may stop after the lower flags (MySQL 3.23 / 4.0).
    if c.0.is_empty() {
        return Ok(Greeting::Handshake {
            capabilities: lower,
        });
    }
    c.take(1, "character set")?;
    c.take(2, "status flags")?;
    let upper = u32::from(c.u16_le("upper capability flags")?);
    Ok(Greeting::Handshake {
        capabilities: upper << 16 | lower,
    })
}

/// An ERR packet's message, with the SQL state when it carries one (`#HY000...`).
fn error_message(rest: &[u8]) -> String {
    match rest {
        [b'#', state @ ..] if state.len() >= 5 => format!(
            "({}) {}",
            String::from_utf8_lossy(&state[..5]),
            String::from_utf8_lossy(&state[5..])
        ),
        _ => String::from_utf8_lossy(rest).into_owned(),
    }
}

/// The SSL Request packet, sequence id 1, in the form the server's protocol expects.
fn ssl_request(server_capabilities: u32) -> Vec<u8> {
    let flags = CLIENT_CAPABILITIES & server_capabilities;
    let mut payload = Vec::with_capacity(32);
    if server_capabilities & cap::PROTOCOL_41 != 0 {
        payload.extend_from_slice(&flags.to_le_bytes());
        payload.extend_from_slice(&CLIENT_MAX_PACKET.to_le_bytes());
        payload.push(CLIENT_CHARSET);
        payload.extend_from_slice(&[0u8; 23]);
    } else {
        payload.extend_from_slice(&flags.to_le_bytes()[..2]);
        // Three bytes here: 16 MiB would not fit, so the largest value that does.
        payload.extend_from_slice(&(CLIENT_MAX_PACKET - 1).to_le_bytes()[..3]);
    }
    let mut packet = Vec::with_capacity(4 + payload.len());
    packet.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    packet.push(1);
    packet.extend_from_slice(&payload);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    /// Runs `negotiate` against a peer that answers `reply` and then closes; returns
    /// the result and what the client sent.
    async fn answer(reply: &[u8]) -> (Result<(), StartTlsError>, Vec<u8>) {
        let (client, mut server) = duplex(64 * 1024);
        server.write_all(reply).await.unwrap();
        server.shutdown().await.unwrap();
        let mut io = LineIo::new(client, Instant::now() + Duration::from_secs(5));
        let result = negotiate(&mut io).await;
        drop(io);
        let mut sent = Vec::new();
        server.read_to_end(&mut sent).await.unwrap();
        (result, sent)
    }

    /// A MySQL 8 initial handshake payload with `capabilities`.
    fn handshake(capabilities: u32) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"8.0.36\0");
        p.extend_from_slice(&42u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&capabilities.to_le_bytes()[..2]);
        p.push(255);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&capabilities.to_le_bytes()[2..]);
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"caching_sha2_password\0");
        p
    }

    const MYSQL8: u32 = 0xdfff_ffff;

    #[test]
    fn header_lengths_are_bounded_and_must_open_the_exchange() {
        assert_eq!(payload_length([0x4a, 0, 0, 0]), Ok(0x4a));
        assert_eq!(payload_length([0x00, 0x40, 0, 0]), Ok(MAX_PACKET));
        for bad in [
            [0, 0, 0, 0],
            [0x01, 0x40, 0, 0],
            [0xff, 0xff, 0xff, 0],
            [0x4a, 0, 0, 1],
            *b"HTTP",
        ] {
            assert!(payload_length(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn a_mysql_8_handshake_yields_all_32_capability_bits() {
        assert_eq!(
            parse_greeting(&handshake(MYSQL8)),
            Ok(Greeting::Handshake {
                capabilities: MYSQL8
            })
        );
    }

    #[test]
    fn a_handshake_that_stops_after_the_lower_flags_is_accepted() {
        let full = handshake(cap::SSL);
        let short = &full[..1 + 7 + 4 + 8 + 1 + 2];
        assert_eq!(
            parse_greeting(short),
            Ok(Greeting::Handshake {
                capabilities: cap::SSL
            })
        );
    }

    #[test]
    fn truncated_and_foreign_payloads_are_errors() {
        let full = handshake(MYSQL8);
        let lower_end = 1 + 7 + 4 + 8 + 1 + 2;
        for cut in (0..lower_end).chain(lower_end + 1..lower_end + 5) {
            assert!(parse_greeting(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_greeting(b"\x09old").is_err());
        assert!(parse_greeting(b"HTTP/1.1 400").is_err());
        assert!(parse_greeting(&[10; 200]).is_err(), "no NUL");
        assert!(parse_greeting(&[0xff, 0x6a]).is_err(), "half an error code");
    }

    #[test]
    fn err_packets_yield_code_and_message_with_or_without_sql_state() {
        let mut p = vec![0xff];
        p.extend_from_slice(&1130u16.to_le_bytes());
        p.extend_from_slice(b"Host '10.0.0.9' is not allowed to connect to this MySQL server");
        assert_eq!(
            parse_greeting(&p),
            Ok(Greeting::Error {
                code: 1130,
                message: "Host '10.0.0.9' is not allowed to connect to this MySQL server".into()
            })
        );
        let mut p = vec![0xff];
        p.extend_from_slice(&1040u16.to_le_bytes());
        p.extend_from_slice(b"#08004Too many connections");
        assert_eq!(
            parse_greeting(&p),
            Ok(Greeting::Error {
                code: 1040,
                message: "(08004) Too many connections".into()
            })
        );
    }

    #[test]
    fn the_ssl_request_asks_for_tls_with_the_servers_capabilities() {
        let packet = ssl_request(MYSQL8);
        assert_eq!(packet.len(), 36);
        assert_eq!(packet[..4], [32, 0, 0, 1]);
        let flags = u32::from_le_bytes([packet[4], packet[5], packet[6], packet[7]]);
        assert_eq!(flags, CLIENT_CAPABILITIES);
        assert_eq!(packet[8..12], CLIENT_MAX_PACKET.to_le_bytes());
        assert_eq!(packet[12], CLIENT_CHARSET);
        assert!(packet[13..].iter().all(|b| *b == 0));

        // Only what the server has is asked for.
        let packet = ssl_request(cap::PROTOCOL_41 | cap::SSL);
        assert_eq!(packet[4..8], (cap::PROTOCOL_41 | cap::SSL).to_le_bytes());
    }

    #[test]
    fn a_pre_4_1_server_gets_the_short_ssl_request() {
        let packet = ssl_request(cap::LONG_PASSWORD | cap::SSL);
        assert_eq!(packet, [5, 0, 0, 1, 0x01, 0x08, 0xff, 0xff, 0xff]);
    }

    /// `payload` as the server's first packet.
    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(0);
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn negotiate_answers_a_tls_capable_handshake_with_the_ssl_request() {
        let (result, sent) = answer(&packet(&handshake(MYSQL8))).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(sent, ssl_request(MYSQL8));
    }

    #[tokio::test]
    async fn negotiate_classifies_refusals_and_sends_nothing() {
        let (result, sent) = answer(&packet(&handshake(MYSQL8 & !cap::SSL))).await;
        assert!(matches!(result, Err(StartTlsError::NotOffered { .. })));
        assert!(sent.is_empty());
        let mut err = vec![0xff];
        err.extend_from_slice(&1040u16.to_le_bytes());
        err.extend_from_slice(b"Too many connections");
        match answer(&packet(&err)).await.0 {
            Err(StartTlsError::Unavailable { reply }) => {
                assert_eq!(reply, "1040: Too many connections")
            }
            other => panic!("{other:?}"),
        }
        for hostile in [
            &[0xff, 0xff, 0xff, 0x00, 10][..],
            b"HTTP/1.1 400 Bad Request\r\n",
        ] {
            let (result, sent) = answer(hostile).await;
            assert!(
                matches!(result, Err(StartTlsError::Malformed { .. })),
                "{result:?}"
            );
            assert!(sent.is_empty());
        }
    }
}
