//! LDAP StartTLS (RFC 4511 §4.14, extended operations §4.12).
//!
//! No greeting: the client sends an ExtendedRequest for 1.3.6.1.4.1.1466.20037 as
//! message 1 and reads one LDAPMessage back, an ExtendedResponse whose resultCode is
//! `success` (0) when the server is ready for the TLS handshake.
//!
//! The BER is encoded and decoded here by hand: it is a few dozen bytes. A message is
//! read as its tag and length header first, and its body only when the length is
//! definite and at most [`MAX_MESSAGE`], so a hostile length costs nothing.
//!
//! How answers are classified:
//! - `success` (0): ready for TLS.
//! - `protocolError` (2): the server does not know the StartTLS operation, which is
//!   how RFC 4511 §4.12 says an unrecognized request name is answered: not offered.
//! - any other resultCode (`operationsError`, `unavailable`, `unwillingToPerform` ...):
//!   the server knows StartTLS and refused it (RFC 4511 §4.14.2): rejected.
//! - an unsolicited notification (messageID 0), such as the Notice of Disconnection
//!   (1.3.6.1.4.1.1466.20036, §4.4.1): the server will not serve us: unavailable.
//! - anything else, including a response to another operation: malformed.
//!
//! The resultCode and diagnosticMessage are kept as evidence.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{evidence, StartTlsError};
use crate::probe::line_io::LineIo;

/// The StartTLS extended operation (RFC 4511 §4.14.1).
pub const START_TLS_OID: &str = "1.3.6.1.4.1.1466.20037";
/// The Notice of Disconnection unsolicited notification (RFC 4511 §4.4.1).
pub const NOTICE_OF_DISCONNECTION_OID: &str = "1.3.6.1.4.1.1466.20036";
/// The largest LDAPMessage accepted; a StartTLS response is well under 1 KiB.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// The messageID of our one request.
const MESSAGE_ID: u8 = 1;

/// BER tags (RFC 4511 §4.2, §4.12, §5.1).
mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const ENUMERATED: u8 = 0x0a;
    pub const SEQUENCE: u8 = 0x30;
    /// `[APPLICATION 23]` constructed.
    pub const EXTENDED_REQUEST: u8 = 0x77;
    /// `[APPLICATION 24]` constructed.
    pub const EXTENDED_RESPONSE: u8 = 0x78;
    /// `[0]` primitive, ExtendedRequest.requestName.
    pub const REQUEST_NAME: u8 = 0x80;
    /// `[10]` primitive, ExtendedResponse.responseName.
    pub const RESPONSE_NAME: u8 = 0x8a;
}

/// Speaks LDAP until the server is ready for the TLS handshake.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<(), StartTlsError> {
    io.write_all(&start_tls_request()).await?;
    let body = read_message(io).await?;
    let response = decode_response(&body).map_err(malformed)?;
    classify(&response)
}

/// The ExtendedRequest: `SEQUENCE { INTEGER 1, [APPLICATION 23] { [0] oid } }`.
fn start_tls_request() -> Vec<u8> {
    let name = tlv(tag::REQUEST_NAME, START_TLS_OID.as_bytes());
    let op = tlv(tag::EXTENDED_REQUEST, &name);
    let mut body = tlv(tag::INTEGER, &[MESSAGE_ID]);
    body.extend_from_slice(&op);
    tlv(tag::SEQUENCE, &body)
}

/// One TLV with a short-form length; our request never needs more than 127 bytes.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    debug_assert!(value.len() < 0x80);
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(tag);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
    out
}

/// Why bytes are not the expected BER.
#[derive(Debug, PartialEq, Eq)]
struct BerError(String);

fn malformed(error: BerError) -> StartTlsError {
    StartTlsError::malformed(&format!("LDAP: {}", error.0))
}

/// Reads one LDAPMessage and returns the body of its outer SEQUENCE.
async fn read_message<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut LineIo<S>,
) -> Result<Vec<u8>, StartTlsError> {
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await?;
    if head[0] != tag::SEQUENCE {
        return Err(malformed(BerError(format!(
            "expected an LDAPMessage (tag 0x30), got 0x{:02x}",
            head[0]
        ))));
    }
    let extra = length_octets(head[1]).map_err(malformed)?;
    let mut octets = [0u8; 4];
    io.read_exact(&mut octets[..extra]).await?;
    let len = definite_length(head[1], &octets[..extra]).map_err(malformed)?;
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

/// How many length octets follow the first length byte (X.690 §8.1.3).
fn length_octets(first: u8) -> Result<usize, BerError> {
    match first {
        0x00..=0x7f => Ok(0),
        0x80 => Err(BerError("indefinite length".into())),
        0x81..=0x84 => Ok(usize::from(first & 0x7f)),
        _ => Err(BerError(format!("a length of {} octets", first & 0x7f))),
    }
}

/// The length from its first byte and the octets that follow, at most [`MAX_MESSAGE`].
fn definite_length(first: u8, octets: &[u8]) -> Result<usize, BerError> {
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        octets
            .iter()
            .fold(0usize, |len, b| (len << 8) | usize::from(*b))
    };
    if len > MAX_MESSAGE {
        return Err(BerError(format!(
            "a message of {len} bytes, over the {MAX_MESSAGE}-byte limit"
        )));
    }
    Ok(len)
}

/// Splits one TLV off the front of `input`: (tag, value, rest).
fn next_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), BerError> {
    let short = || BerError("a truncated element".into());
    let (&tag, rest) = input.split_first().ok_or_else(short)?;
    if tag & 0x1f == 0x1f {
        return Err(BerError(format!("a multi-byte tag 0x{tag:02x}")));
    }
    let (&first, rest) = rest.split_first().ok_or_else(short)?;
    let extra = length_octets(first)?;
    let octets = rest.get(..extra).ok_or_else(short)?;
    let len = definite_length(first, octets)?;
    let rest = &rest[extra..];
    let value = rest.get(..len).ok_or_else(short)?;
    Ok((tag, value, &rest[len..]))
}

/// Splits off a TLV that must carry `want`.
fn expect_tlv<'a>(input: &'a [u8], want: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), BerError> {
    let (tag, value, rest) = next_tlv(input)?;
    if tag != want {
        return Err(BerError(format!(
            "expected {what} (tag 0x{want:02x}), got tag 0x{tag:02x}"
        )));
    }
    Ok((value, rest))
}

/// A non-negative INTEGER or ENUMERATED that fits 31 bits, as LDAP's all do.
fn decode_small_int(value: &[u8], what: &str) -> Result<u32, BerError> {
    let bad = || BerError(format!("{what} is not a small non-negative integer"));
    if value.is_empty() || value.len() > 4 || value[0] & 0x80 != 0 {
        return Err(bad());
    }
    Ok(value.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)))
}

/// The parts of an ExtendedResponse that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    message_id: u32,
    result_code: u32,
    diagnostic: String,
    name: Option<String>,
}

/// Decodes the body of an LDAPMessage that must hold an ExtendedResponse.
fn decode_response(body: &[u8]) -> Result<Response, BerError> {
    let (id, rest) = expect_tlv(body, tag::INTEGER, "a messageID")?;
    let message_id = decode_small_int(id, "the messageID")?;
    // Controls may follow the operation; they are ignored.
    let (op, _controls) = expect_tlv(rest, tag::EXTENDED_RESPONSE, "an ExtendedResponse")?;
    let (code, rest) = expect_tlv(op, tag::ENUMERATED, "a resultCode")?;
    let result_code = decode_small_int(code, "the resultCode")?;
    let (_matched_dn, rest) = expect_tlv(rest, tag::OCTET_STRING, "a matchedDN")?;
    let (diagnostic, mut rest) = expect_tlv(rest, tag::OCTET_STRING, "a diagnosticMessage")?;
    let mut name = None;
    while !rest.is_empty() {
        let (tag, value, tail) = next_tlv(rest)?;
        if tag == tag::RESPONSE_NAME {
            name = Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = tail;
    }
    Ok(Response {
        message_id,
        result_code,
        diagnostic: String::from_utf8_lossy(diagnostic).into_owned(),
        name,
    })
}

/// Turns the response into the probe's verdict.
fn classify(response: &Response) -> Result<(), StartTlsError> {
    let reply = || {
        let mut text = match (response.message_id, response.name.as_deref()) {
            (0, Some(NOTICE_OF_DISCONNECTION_OID)) => "Notice of Disconnection, ".to_owned(),
            (0, Some(name)) => format!("unsolicited notification {name}, "),
            (0, None) => "unsolicited notification, ".to_owned(),
            (_, _) => String::new(),
        };
        text.push_str(&format!(
            "{} ({})",
            result_name(response.result_code),
            response.result_code
        ));
        if !response.diagnostic.is_empty() {
            text.push_str(&format!(": {}", response.diagnostic));
        }
        evidence(&text)
    };
    match (response.message_id, response.result_code) {
        // An unsolicited notification; the Notice of Disconnection is the one defined.
        (0, _) => Err(StartTlsError::Unavailable { reply: reply() }),
        (id, _) if id != u32::from(MESSAGE_ID) => Err(StartTlsError::malformed(&format!(
            "LDAP: a response to message {id}, not 1"
        ))),
        (_, 0) => Ok(()),
        (_, 2) => Err(StartTlsError::NotOffered {
            evidence: format!(
                "it answered the StartTLS extended request with protocolError: {}",
                reply()
            ),
        }),
        (_, _) => Err(StartTlsError::Rejected { reply: reply() }),
    }
}

/// The name of the resultCodes a StartTLS response may carry (RFC 4511 §4.1.9).
fn result_name(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "resultCode",
    }
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

    /// An ExtendedResponse body (inside the outer SEQUENCE) with short-form lengths.
    fn response_body(id: u8, code: u8, diagnostic: &str, name: Option<&str>) -> Vec<u8> {
        let mut op = tlv(tag::ENUMERATED, &[code]);
        op.extend(tlv(tag::OCTET_STRING, b""));
        op.extend(tlv(tag::OCTET_STRING, diagnostic.as_bytes()));
        if let Some(name) = name {
            op.extend(tlv(tag::RESPONSE_NAME, name.as_bytes()));
        }
        let mut body = tlv(tag::INTEGER, &[id]);
        body.extend(tlv(tag::EXTENDED_RESPONSE, &op));
        body
    }

    #[test]
    fn the_request_is_the_rfc_4511_start_tls_extended_request() {
        let mut expected = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
        expected.extend_from_slice(b"1.3.6.1.4.1.1466.20037");
        assert_eq!(start_tls_request(), expected);
    }

    #[test]
    fn lengths_decode_in_short_and_long_form_and_refuse_the_rest() {
        assert_eq!(length_octets(0x05), Ok(0));
        assert_eq!(definite_length(0x05, &[]), Ok(5));
        assert_eq!(length_octets(0x82), Ok(2));
        assert_eq!(definite_length(0x82, &[0x01, 0x00]), Ok(256));
        // Active Directory writes four length octets for short messages.
        assert_eq!(definite_length(0x84, &[0, 0, 0, 0x0c]), Ok(12));
        assert!(length_octets(0x80).is_err(), "indefinite");
        assert!(length_octets(0x85).is_err(), "five octets");
        assert!(length_octets(0xff).is_err());
        assert!(definite_length(0x84, &[0x7f, 0xff, 0xff, 0xff]).is_err());
        assert!(definite_length(0x82, &[0x40, 0x01]).is_err(), "16 KiB + 1");
        assert_eq!(definite_length(0x82, &[0x40, 0x00]), Ok(MAX_MESSAGE));
    }

    #[test]
    fn a_success_response_decodes_with_its_name_and_diagnostic() {
        let body = response_body(1, 0, "go ahead", Some(START_TLS_OID));
        assert_eq!(
            decode_response(&body),
            Ok(Response {
                message_id: 1,
                result_code: 0,
                diagnostic: "go ahead".into(),
                name: Some(START_TLS_OID.into()),
            })
        );
        assert!(classify(&decode_response(&body).unwrap()).is_ok());
    }

    #[test]
    fn definite_lengths_inside_the_message_decode() {
        // `0a 84 00 00 00 01 00`: a resultCode with a four-octet length.
        let op = [0x0a, 0x84, 0, 0, 0, 1, 0, 0x04, 0x81, 0, 0x04, 0x82, 0, 0];
        let mut body = vec![0x02, 0x01, 0x01, 0x78, 0x84, 0, 0, 0, op.len() as u8];
        body.extend_from_slice(&op);
        let response = decode_response(&body).unwrap();
        assert_eq!((response.message_id, response.result_code), (1, 0));
    }

    #[test]
    fn result_codes_classify_as_not_offered_rejected_or_unavailable() {
        let classify_body = |body: Vec<u8>| classify(&decode_response(&body).unwrap());
        assert!(matches!(
            classify_body(response_body(1, 2, "unsupported extended operation", None)),
            Err(StartTlsError::NotOffered { .. })
        ));
        match classify_body(response_body(1, 52, "Could not initialize TLS", None)) {
            Err(StartTlsError::Rejected { reply }) => {
                assert_eq!(reply, "unavailable (52): Could not initialize TLS")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_body(response_body(1, 1, "TLS already started", None)),
            Err(StartTlsError::Rejected { .. })
        ));
        match classify_body(response_body(
            0,
            52,
            "shutting down",
            Some(NOTICE_OF_DISCONNECTION_OID),
        )) {
            Err(StartTlsError::Unavailable { reply }) => assert_eq!(
                reply,
                "Notice of Disconnection, unavailable (52): shutting down"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_body(response_body(7, 0, "", None)),
            Err(StartTlsError::Malformed { .. })
        ));
    }

    #[test]
    fn malformed_and_truncated_messages_are_errors() {
        let good = response_body(1, 0, "", None);
        for cut in 0..good.len() {
            assert!(decode_response(&good[..cut]).is_err(), "cut at {cut}");
        }
        let cases: &[&[u8]] = &[
            // A BindResponse instead of an ExtendedResponse.
            &[
                0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ],
            // A negative messageID.
            &[0x02, 0x01, 0xff, 0x78, 0x00],
            // A five-byte messageID.
            &[0x02, 0x05, 1, 2, 3, 4, 5, 0x78, 0x00],
            // An indefinite length.
            &[0x02, 0x01, 0x01, 0x78, 0x80, 0x00, 0x00],
            // A declared length past the end.
            &[0x02, 0x01, 0x01, 0x78, 0x84, 0x00, 0x00, 0x30, 0x00],
            // A length over the limit.
            &[0x02, 0x01, 0x01, 0x78, 0x84, 0x7f, 0xff, 0xff, 0xff],
            // A multi-byte tag.
            &[0x02, 0x01, 0x01, 0x7f, 0x01, 0x00],
            // An empty resultCode.
            &[
                0x02, 0x01, 0x01, 0x78, 0x06, 0x0a, 0x00, 0x04, 0x00, 0x04, 0x00,
            ],
        ];
        for case in cases {
            assert!(decode_response(case).is_err(), "{case:02x?}");
        }
    }

    #[tokio::test]
    async fn negotiate_sends_the_request_and_accepts_a_long_form_success() {
        let body = response_body(1, 0, "", Some(START_TLS_OID));
        let mut reply = vec![0x30, 0x84, 0, 0, 0, body.len() as u8];
        reply.extend_from_slice(&body);
        let (result, sent) = answer(&reply).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(sent, start_tls_request());
    }

    #[tokio::test]
    async fn negotiate_refuses_hostile_headers_before_reading_a_body() {
        for reply in [
            &[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff][..],
            &[0x30, 0x80, 0x02, 0x01, 0x01],
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
        ] {
            assert!(
                matches!(answer(reply).await.0, Err(StartTlsError::Malformed { .. })),
                "{reply:02x?}"
            );
        }
        assert!(matches!(
            answer(&[0x30, 0x10, 0x02]).await.0,
            Err(StartTlsError::Line(
                crate::probe::line_io::LineError::Closed
            ))
        ));
    }
}
