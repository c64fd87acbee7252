//! Which content coding a `/metrics` response uses, from the request's
//! `Accept-Encoding`, as client_golang's `promhttp` chooses it.
//!
//! promhttp offers `identity` then `gzip` (then `zstd`, which certwatch does not offer)
//! and takes, in that order, the offer that an `Accept-Encoding` element names (or `*`)
//! with the strictly highest quality; a best quality of 0 means no acceptable coding,
//! and promhttp then answers uncompressed. So `gzip` gives gzip, `gzip;q=0` and
//! `identity;q=0.5, gzip;q=0.2` give identity, `identity, gzip` and `*` give identity
//! (the earlier offer wins a tie), and a request without the header gets identity.
//! Elements are parsed as `golang/gddo`'s `ParseAccept` does (a token, optionally
//! `;q=` and a quality of `0`/`1` with decimals; a malformed element ends the header
//! value), except that codings and `q` compare case-insensitively, as RFC 9110 has
//! them. At most [`MAX_ELEMENTS`] elements are weighed per request.

use axum::http::header::ACCEPT_ENCODING;
use axum::http::HeaderMap;

/// The most `Accept-Encoding` elements weighed: a hostile header costs no more.
pub const MAX_ELEMENTS: usize = 64;

/// A content coding certwatch can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Uncompressed.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
}

impl Encoding {
    /// In promhttp's order: on a tie of quality, the earlier wins.
    const OFFERS: [Encoding; 2] = [Encoding::Identity, Encoding::Gzip];

    /// The coding's token.
    pub const fn token(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }
}

/// One `Accept-Encoding` element: a coding (or `*`) and its quality.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spec<'a> {
    value: &'a [u8],
    q: f64,
}

/// The coding to answer a request with `headers` in.
pub fn negotiate(headers: &HeaderMap) -> Encoding {
    let mut specs = Vec::new();
    for value in headers.get_all(ACCEPT_ENCODING) {
        parse(value.as_bytes(), &mut specs);
        if specs.len() >= MAX_ELEMENTS {
            specs.truncate(MAX_ELEMENTS);
            break;
        }
    }
    let (mut best, mut best_q) = (Encoding::Identity, -1.0);
    for offer in Encoding::OFFERS {
        for spec in &specs {
            if spec.q > best_q
                && (spec.value == b"*" || spec.value.eq_ignore_ascii_case(offer.token().as_bytes()))
            {
                best = offer;
                best_q = spec.q;
            }
        }
    }
    if best_q == 0.0 {
        // Nothing acceptable: promhttp answers uncompressed.
        return Encoding::Identity;
    }
    best
}

/// Appends the elements of one header value to `specs`, stopping at the first
/// malformed one or at [`MAX_ELEMENTS`].
fn parse<'a>(mut s: &'a [u8], specs: &mut Vec<Spec<'a>>) {
    while specs.len() < MAX_ELEMENTS {
        let (value, rest) = token(s);
        if value.is_empty() {
            return;
        }
        let mut q = 1.0;
        s = skip_space(rest);
        if let Some(rest) = s.strip_prefix(b";") {
            s = skip_space(rest);
            match s {
                [b'q' | b'Q', b'=', rest @ ..] => match quality(rest) {
                    Some((value, rest)) => {
                        q = value;
                        s = rest;
                    }
                    None => return,
                },
                _ => return,
            }
        }
        specs.push(Spec { value, q });
        s = skip_space(s);
        match s.strip_prefix(b",") {
            Some(rest) => s = skip_space(rest),
            None => return,
        }
    }
}

/// A token (RFC 9110 `tchar`s, and `/` as gddo allows), and the rest.
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|b| !(is_tchar(*b) || *b == b'/'))
        .unwrap_or(s.len());
    s.split_at(end)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn skip_space(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(s.len());
    &s[start..]
}

/// `0`, `1`, optionally followed by `.` and digits, as gddo reads a quality.
fn quality(s: &[u8]) -> Option<(f64, &[u8])> {
    let (whole, mut rest) = match s {
        [b'0', rest @ ..] => (0.0, rest),
        [b'1', rest @ ..] => (1.0, rest),
        _ => return None,
    };
    let Some(fraction) = rest.strip_prefix(b".") else {
        return Some((whole, rest));
    };
    let digits = fraction
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(fraction.len());
    let (mut n, mut d) = (0.0f64, 1.0f64);
    // Digits past the eighteenth change nothing a comparison could see.
    for b in &fraction[..digits.min(18)] {
        n = n * 10.0 + f64::from(b - b'0');
        d *= 10.0;
    }
    rest = &fraction[digits..];
    Some((whole + n / d, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(values: &[&[u8]]) -> Encoding {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_bytes(v).expect("valid"));
        }
        negotiate(&headers)
    }

    use Encoding::{Gzip, Identity};

    #[test]
    fn prometheus_and_common_clients_get_gzip() {
        assert_eq!(with(&[]), Identity);
        assert_eq!(with(&[b"gzip"]), Gzip, "what Prometheus sends");
        assert_eq!(
            with(&[b"deflate, gzip, br, zstd"]),
            Gzip,
            "curl --compressed"
        );
        assert_eq!(with(&[b"gzip, deflate, br"]), Gzip, "browsers");
        assert_eq!(with(&[b"GZip"]), Gzip);
        assert_eq!(with(&[b"br", b"gzip;q=0.8"]), Gzip, "several header lines");
        assert_eq!(with(&[b"x-gzip"]), Identity, "not an alias");
    }

    #[test]
    fn qualities_and_identity_decide_as_promhttp_does() {
        assert_eq!(with(&[b"gzip;q=0"]), Identity);
        assert_eq!(with(&[b"gzip; q=0.000"]), Identity);
        assert_eq!(with(&[b"gzip;q=0.001"]), Gzip);
        assert_eq!(with(&[b"identity;q=0.5, gzip;q=0.2"]), Identity);
        assert_eq!(with(&[b"identity;q=0.2, gzip;q=0.5"]), Gzip);
        assert_eq!(
            with(&[b"identity, gzip"]),
            Identity,
            "a tie: the earlier offer"
        );
        assert_eq!(
            with(&[b"gzip, identity"]),
            Identity,
            "offers are weighed in promhttp's order"
        );
        assert_eq!(with(&[b"*"]), Identity);
        assert_eq!(with(&[b"*;q=0.1, gzip"]), Gzip);
        assert_eq!(
            with(&[b"*;q=0"]),
            Identity,
            "nothing acceptable: uncompressed"
        );
        assert_eq!(with(&[b"identity;q=0, gzip;q=0"]), Identity);
        assert_eq!(with(&[b"identity;q=0"]), Identity);
        // promhttp lets `*` match identity too (no precedence of the named element).
        assert_eq!(with(&[b"identity;q=0, *"]), Identity);
        assert_eq!(with(&[b"gzip;Q=1.0"]), Gzip);
    }

    #[test]
    fn a_malformed_element_ends_its_header_value() {
        // As gddo: the elements before it count, the rest of that value does not.
        assert_eq!(with(&[b"br;level=3, gzip"]), Identity);
        assert_eq!(
            with(&[b"gzip;q=2"]),
            Identity,
            "qualities start with 0 or 1"
        );
        assert_eq!(with(&[b"gzip;q=x"]), Identity);
        assert_eq!(
            with(&[b"gzip;q=0.5;foo"]),
            Gzip,
            "what is after the quality is ignored"
        );
        assert_eq!(with(&[b", gzip"]), Identity);
        assert_eq!(with(&[b"gzip ,identity;q=0"]), Gzip);
        assert_eq!(with(&[b"\xff\xfe, gzip"]), Identity);
        assert_eq!(
            with(&[b"br;level=3", b"gzip"]),
            Gzip,
            "another header line counts"
        );
    }

    #[test]
    fn a_long_header_is_weighed_only_so_far() {
        let long = format!("{}gzip", "br, ".repeat(MAX_ELEMENTS));
        assert_eq!(with(&[long.as_bytes()]), Identity);
        let short = format!("{}gzip", "br, ".repeat(MAX_ELEMENTS - 1));
        assert_eq!(with(&[short.as_bytes()]), Gzip);
        let mut specs = Vec::new();
        let many = b"a, ".repeat(10_000);
        parse(&many, &mut specs);
        assert_eq!(specs.len(), MAX_ELEMENTS);
    }

    #[test]
    fn qualities_read_like_gddo() {
        assert_eq!(quality(b"0"), Some((0.0, &b""[..])));
        assert_eq!(quality(b"1"), Some((1.0, &b""[..])));
        assert_eq!(quality(b"0.25, x"), Some((0.25, &b", x"[..])));
        assert_eq!(quality(b"1."), Some((1.0, &b""[..])));
        assert_eq!(quality(b".5"), None);
        assert_eq!(quality(b""), None);
        let (tiny, _) = quality(b"0.0000000000001").expect("digits");
        assert!(tiny > 0.0 && tiny < 1e-12, "{tiny}");
        let digits = [b"0.5".as_slice(), &[b'9'; 400]].concat();
        let (long, rest) = quality(&digits).expect("digits");
        assert!((long - 0.6).abs() < 1e-9 && rest.is_empty(), "{long}");
    }
}
