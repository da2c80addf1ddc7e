//! Characters that can fool a peer or a terminal, and the escaped form in
//! which server text is displayed.
//!
//! Two uses, one list:
//! - command arguments (domains, addresses, ESMTP parameters, the VRFY
//!   argument) refuse these characters, so none reaches the server;
//! - the `Display` of a [`Reply`](crate::Reply) and of every error that
//!   carries server text shows them escaped, so a hostile server cannot set a
//!   terminal's title, clear its screen, write its clipboard or reorder what
//!   it shows.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::borrow::Cow;
use core::fmt;

/// True for the Unicode characters that end, break or reorder a line
/// without being ASCII controls:
///
/// - the C1 controls U+0080–U+009F, NEL (U+0085) and CSI (U+009B, an escape
///   sequence on its own for some terminals) among them;
/// - LINE SEPARATOR U+2028 and PARAGRAPH SEPARATOR U+2029;
/// - the bidirectional embeddings and overrides U+202A–U+202E and the
///   isolates U+2066–U+2069 (the "Trojan Source" characters), which make
///   text display in another order than it is read.
pub(crate) fn is_unicode_control(c: char) -> bool {
    matches!(
        c,
        '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// True for the characters [`escape_controls`] escapes: the C0 controls
/// except tab (ESC among them), DEL, and the Unicode line and format
/// controls listed at [`is_unicode_control`].
fn needs_escape(c: char) -> bool {
    (c.is_ascii_control() && c != '\t') || is_unicode_control(c)
}

/// Server text made safe to print on a terminal: every control character
/// is replaced by an escape, everything else is kept as is.
///
/// - C0 controls (U+0000–U+001F) except tab, and DEL (U+007F), become
///   `\xHH` with two lower-case hex digits: ESC is `\x1b`, a bare LF `\x0a`.
/// - The C1 controls U+0080–U+009F, LINE and PARAGRAPH SEPARATOR
///   (U+2028, U+2029) and the bidirectional embeddings, overrides and
///   isolates (U+202A–U+202E, U+2066–U+2069) become `\u{H…}`, as Rust
///   writes them: NEL is `\u{85}`, RIGHT-TO-LEFT OVERRIDE `\u{202e}`.
///
/// A backslash already in the text is not doubled, so the form is for
/// people, not for parsing back: programs that need the exact text use
/// [`Reply::lines`](crate::Reply::lines) or [`Reply::text`](crate::Reply::text),
/// which stay raw. Borrowed when nothing needed escaping.
///
/// ```
/// use smtp_sansio::escape_controls;
///
/// assert_eq!(escape_controls("250 ok\tfine"), "250 ok\tfine");
/// assert_eq!(escape_controls("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
/// assert_eq!(escape_controls("a\u{85}b\u{202e}c"), "a\\u{85}b\\u{202e}c");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, text);
    Cow::Owned(out)
}

/// Writes `text` to `out` with [`escape_controls`]' escapes, without
/// allocating.
pub(crate) fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some((i, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
        out.write_str(&rest[..i])?;
        if c.is_ascii() {
            write!(out, "\\x{:02x}", u32::from(c))?;
        } else {
            write!(out, "\\u{{{:x}}}", u32::from(c))?;
        }
        rest = &rest[i + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// A `Display` adapter for [`write_escaped`].
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_is_escaped_and_nothing_else() {
        for b in 0u8..=0x7f {
            let c = char::from(b);
            let s = c.to_string();
            let escaped = escape_controls(&s);
            if c.is_ascii_control() && c != '\t' {
                assert_eq!(escaped, format!("\\x{b:02x}"));
            } else {
                assert_eq!(escaped, s);
            }
        }
        for c in [
            '\u{80}', '\u{85}', '\u{9b}', '\u{9f}', '\u{2028}', '\u{2029}',
        ] {
            assert_eq!(
                escape_controls(&c.to_string()),
                format!("\\u{{{:x}}}", u32::from(c))
            );
        }
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert!(escape_controls(&c.to_string()).starts_with("\\u{20"));
        }
        for s in [
            "é", "用户", "\u{a0}", "\u{200b}", "\u{2027}", "\u{202f}", "\u{2065}", "\u{206a}",
        ] {
            assert_eq!(escape_controls(s), s);
        }
        assert!(matches!(escape_controls("plain"), Cow::Borrowed("plain")));
        assert_eq!(
            escape_controls("\x1b[2J\x1b]52;c;aGk=\x07 end"),
            "\\x1b[2J\\x1b]52;c;aGk=\\x07 end"
        );
        assert_eq!(Escaped("a\rb").to_string(), "a\\x0db");
        // Escaping is idempotent: the escapes themselves are printable.
        let once = escape_controls("\x1b\u{85}\u{202e}").into_owned();
        assert_eq!(escape_controls(&once), once);
    }
}
