//! Text from peers made safe to show a person: on a terminal (`certwatch check`), in a
//! text log line, or on the status page.
//!
//! A certificate's subject, its names and a server's banner are chosen by whoever runs
//! the server. Shown raw, an ESC sequence in them drives the operator's terminal (moves
//! the cursor, rewrites earlier lines, sets the window title), a newline forges a line
//! of the report, and a bidirectional override reorders what a person reads. Every
//! such character is written as a Rust-style escape instead (`\u{1b}`, `\n`,
//! `\u{202e}`), so the text stays readable and shows that something was there.
//!
//! This module only decides which characters are unsafe and how they are written;
//! the callers apply it to each piece of peer text at the edge where it is printed.
//! HTML escaping is `status::escape`'s; JSON escaping is serde's.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal or a reader as it is: the C0 controls
/// (including ESC, CR, LF, TAB), DEL, the C1 controls (including CSI U+009B and NEL
/// U+0085), the line and paragraph separators, and every Unicode format character
/// (general category Cf: the bidirectional embeddings, overrides, isolates and marks,
/// zero-width spaces and joiners, the soft hyphen, the byte order mark, the
/// interlinear annotations and the tag characters).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() // Cc: U+0000-001F, U+007F-009F
        || matches!(
            c,
            // Zl, Zp
            '\u{2028}' | '\u{2029}'
            // Cf (Unicode 16)
            | '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
        )
}

/// Writes `text` with every [unsafe](is_unsafe) character escaped; borrowed when
/// there is none. `Display` writes the same without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(is_unsafe) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `text` with every [unsafe](is_unsafe) character escaped.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.contains(is_unsafe) {
        Cow::Owned(Printable(text).to_string())
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("CN=evil\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nok"),
            "CN=evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\r\\nok"
        );
        assert_eq!(
            printable("\u{7f}\u{9b}31m\u{85}"),
            "\\u{7f}\\u{9b}31m\\u{85}"
        );
        assert!(matches!(
            printable("CN=café ☃ 𝄞, O=\"x\\y\""),
            Cow::Borrowed("CN=café ☃ 𝄞, O=\"x\\y\"")
        ));
    }

    #[test]
    fn bidi_and_invisible_format_characters_are_escaped() {
        assert_eq!(
            printable("moc.\u{202e}elgoog\u{202c}"),
            "moc.\\u{202e}elgoog\\u{202c}"
        );
        for c in [
            '\u{200b}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{061c}',
            '\u{feff}',
            '\u{00ad}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0041}',
        ] {
            let shown = printable(&format!("a{c}b")).into_owned();
            assert_eq!(shown, format!("a\\u{{{:x}}}b", u32::from(c)), "{c:?}");
        }
        // Letters of right-to-left scripts are text, not controls.
        assert_eq!(printable("שלום مرحبا"), "שלום مرحبا");
    }

    #[test]
    fn no_unsafe_character_survives() {
        let all: String = (0..0x11_0000u32).filter_map(char::from_u32).collect();
        let shown = printable(&all);
        assert!(!shown.chars().any(is_unsafe));
        assert_eq!(Printable(&all).to_string(), shown);
    }
}
