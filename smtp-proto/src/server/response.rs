//! The application's answers, and how replies are written.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::fmt::Write as _;

use crate::reply::{EnhancedCode, ReplyCode};

/// The application's answer to a request event: accept it with the
/// session's standard reply, or answer with a reply of its own.
///
/// ```
/// use smtp_sansio::server::Response;
/// use smtp_sansio::{EnhancedCode, ReplyCode};
///
/// let ok = Response::accept();
/// let busy = Response::temporary("Mailbox busy, try later");
/// let no = Response::refuse(ReplyCode::new(550).unwrap(), EnhancedCode::new(5, 1, 1), "No such user");
/// assert!(ok.is_accept() && !busy.is_accept() && !no.is_accept());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    kind: ResponseKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ResponseKind {
    Accept(Option<String>),
    Refuse {
        code: ReplyCode,
        enhanced: Option<EnhancedCode>,
        text: String,
    },
}

impl Response {
    /// Accept, with the session's standard reply (`250 2.1.0 Sender OK`,
    /// `235 2.7.0 Authentication successful`, …).
    pub fn accept() -> Self {
        Self {
            kind: ResponseKind::Accept(None),
        }
    }

    /// Accept, with this text after the standard code (a queue id, say).
    pub fn accept_with(text: impl Into<String>) -> Self {
        Self {
            kind: ResponseKind::Accept(Some(text.into())),
        }
    }

    /// Refuse with this reply. A code that is not 4xx or 5xx is taken as
    /// `451` (a refusal must never read as success); an enhanced code of
    /// the wrong class is left out. `text` may hold several lines,
    /// separated by `\n`; control characters in it are written as `?`.
    pub fn refuse(
        code: ReplyCode,
        enhanced: Option<EnhancedCode>,
        text: impl Into<String>,
    ) -> Self {
        let code = if code.is_transient() || code.is_permanent() {
            code
        } else {
            ReplyCode::new(451).unwrap_or(ReplyCode::SERVICE_NOT_AVAILABLE)
        };
        let enhanced = enhanced.filter(|e| u16::from(e.class()) == code.get() / 100);
        Self {
            kind: ResponseKind::Refuse {
                code,
                enhanced,
                text: text.into(),
            },
        }
    }

    /// `451 4.3.0 text`: try again later.
    pub fn temporary(text: impl Into<String>) -> Self {
        Self::refuse(code(451), EnhancedCode::new(4, 3, 0), text)
    }

    /// `550 5.7.1 text`: refused for good.
    pub fn permanent(text: impl Into<String>) -> Self {
        Self::refuse(code(550), EnhancedCode::new(5, 7, 1), text)
    }

    /// True for an acceptance.
    pub fn is_accept(&self) -> bool {
        matches!(self.kind, ResponseKind::Accept(_))
    }

    /// An acceptance with the application's own text
    /// ([`accept_with`](Self::accept_with)), not the standard one.
    pub(crate) fn is_accept_with_text(&self) -> bool {
        matches!(self.kind, ResponseKind::Accept(Some(_)))
    }

    /// Writes the reply: `standard` (code, enhanced code, text) for an
    /// acceptance, the refusal as given otherwise.
    pub(crate) fn encode(
        &self,
        standard: (u16, (u8, u16, u16), &str),
        enhanced_codes: bool,
        out: &mut Vec<u8>,
    ) {
        match &self.kind {
            ResponseKind::Accept(text) => {
                let (c, (class, subject, detail), default) = standard;
                let text = text.as_deref().unwrap_or(default);
                encode_reply(
                    code(c),
                    EnhancedCode::new(class, subject, detail).filter(|_| enhanced_codes),
                    text,
                    out,
                );
            }
            ResponseKind::Refuse {
                code,
                enhanced,
                text,
            } => {
                encode_reply(*code, enhanced.filter(|_| enhanced_codes), text, out);
            }
        }
    }
}

/// A reply code known to be valid (every caller passes a literal).
pub(crate) fn code(n: u16) -> ReplyCode {
    ReplyCode::new(n).unwrap_or(ReplyCode::SERVICE_NOT_AVAILABLE)
}

/// Writes a reply: one line per `\n`-separated line of `text`, `code-` on
/// all but the last (RFC 5321 §4.2.1), the enhanced code on each
/// (RFC 2034 §4). Control characters in the text are written as `?`, so an
/// application's text can never end a line early.
pub fn encode_reply(
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    text: &str,
    out: &mut Vec<u8>,
) {
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .peekable();
    while let Some(line) = lines.next() {
        let sep = if lines.peek().is_some() { '-' } else { ' ' };
        let mut head = String::with_capacity(12);
        let _ = write!(head, "{}{}", code.get(), sep);
        if let Some(e) = enhanced {
            let _ = write!(head, "{e} ");
        }
        out.extend_from_slice(head.as_bytes());
        push_text(line, out);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends text with every control character (C0, DEL, and the Unicode
/// line and format controls) as `?`.
pub(crate) fn push_text(text: &str, out: &mut Vec<u8>) {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        if c.is_control() || crate::text::is_unicode_control(c) {
            out.push(b'?');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_one_line_per_text_line_and_never_split_by_controls() {
        let mut out = Vec::new();
        encode_reply(
            code(250),
            EnhancedCode::new(2, 0, 0),
            "first\nsecond\r\nthird\rx",
            &mut out,
        );
        assert_eq!(
            out,
            b"250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 third?x\r\n"
        );
        out.clear();
        encode_reply(code(221), None, "bye\u{85}\u{2028}", &mut out);
        assert_eq!(out, b"221 bye??\r\n");
    }

    #[test]
    fn a_refusal_never_reads_as_success() {
        let mut out = Vec::new();
        Response::refuse(code(250), EnhancedCode::new(2, 0, 0), "no").encode(
            (250, (2, 0, 0), "x"),
            true,
            &mut out,
        );
        assert_eq!(out, b"451 no\r\n");
    }
}
