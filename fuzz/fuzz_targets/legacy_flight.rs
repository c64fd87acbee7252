//! Fuzzes the legacy hello's reader with what a server sends back.
//!
//! Input: byte 0 sets how the reply is cut into reads (1 to 256 bytes, then the whole
//! rest when 0); the rest is the server's reply. The corpus seeds are flights of real
//! certificates (TLS 1.0 and 1.2, split over many records, with warnings between
//! them), alerts and garbage.
//!
//! Properties: `FlightReader::feed` never panics; a capture keeps the bounds (at most
//! `MAX_CERTIFICATES` certificates and `MAX_CHAIN_BYTES` of them, and says when it cut
//! the chain); no error comes after more than `MAX_BYTES` without being
//! `TooMuchData`; every error renders with evidence and maps to a handshake reason.
//! `FlightReader` does no I/O, so this target runs without sockets or a runtime.

#![no_main]

use certwatch::probe::legacy::{
    FlightReader, LegacyError, MAX_BYTES, MAX_CERTIFICATES, MAX_CHAIN_BYTES,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [cut, reply @ ..] = data else {
        return;
    };
    let chunk = match usize::from(*cut) {
        0 => reply.len().max(1),
        n => n,
    };
    let mut reader = FlightReader::new();
    let mut fed = 0;
    for piece in reply.chunks(chunk) {
        fed += piece.len();
        match reader.feed(piece) {
            Ok(None) => {}
            Ok(Some(capture)) => {
                assert!(!capture.chain.is_empty());
                assert!(capture.chain.len() <= MAX_CERTIFICATES);
                let bytes: usize = capture.chain.iter().map(|c| c.len()).sum();
                assert!(bytes <= MAX_CHAIN_BYTES);
                let _ = capture.tls_params();
                return;
            }
            Err(error) => {
                assert!(!error.to_string().is_empty());
                let _ = error.reason();
                if fed > MAX_BYTES {
                    assert!(
                        matches!(error, LegacyError::TooMuchData { .. }),
                        "{error:?}"
                    );
                }
                return;
            }
        }
    }
    // The reply ended without a verdict: the reader can say how far it got.
    let _ = reader
        .ended(certwatch::probe::legacy::Ending::Closed)
        .to_string();
});
