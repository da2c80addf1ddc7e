//! Message body encoding: streaming dot-stuffing for DATA (RFC 5321
//! §4.5.2) and line-ending normalisation for BDAT.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use bytes::BufMut;

/// A streaming body encoder for DATA.
///
/// Feed the message in chunks of any size; it writes wire bytes in which
///
/// - every line starting with `.` gets a second `.`, including the first
///   line and lines whose start falls in a later chunk;
/// - bare LF and bare CR become CRLF, so `\n.\n` or `\r.\r` can never act as
///   an end-of-data marker at a lenient server (SMTP smuggling);
/// - a missing final CRLF is added and the terminator `.\r\n` appended once,
///   by [`DotStuffer::finish`].
///
/// It keeps two bits of state, so memory does not grow with the message.
///
/// ```
/// use smtp_sansio::DotStuffer;
///
/// let mut out = Vec::new();
/// let mut stuffer = DotStuffer::new();
/// stuffer.encode(b".hidden\n", &mut out);
/// stuffer.encode(b"line\r", &mut out);
/// stuffer.encode(b"\n.", &mut out);
/// stuffer.finish(&mut out);
/// assert_eq!(out, b"..hidden\r\nline\r\n..\r\n.\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DotStuffer {
    normalizer: LineNormalizer,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// A stuffer at the start of a message.
    pub fn new() -> Self {
        Self {
            normalizer: LineNormalizer {
                stuff_dots: true,
                ..LineNormalizer::new()
            },
        }
    }

    /// Encodes one chunk of the message.
    pub fn encode(&mut self, input: &[u8], out: &mut impl BufMut) {
        self.normalizer.encode(input, out);
    }

    /// Ends the message: completes the last line and appends `.\r\n`. The
    /// stuffer is then ready for a new message.
    pub fn finish(&mut self, out: &mut impl BufMut) {
        self.normalizer.finish(out);
        out.put_slice(b".\r\n");
    }
}

/// A streaming line-ending normaliser: bare LF and bare CR become CRLF, and
/// [`LineNormalizer::finish`] adds a final CRLF when the message lacks one.
/// Used for BDAT bodies that are not `BINARYMIME`, so the message arrives in
/// canonical form whichever way it is sent.
#[derive(Debug, Clone, Default)]
pub struct LineNormalizer {
    stuff_dots: bool,
    at_line_start: bool,
    pending_cr: bool,
}

impl LineNormalizer {
    /// A normaliser at the start of a message.
    pub fn new() -> Self {
        Self {
            stuff_dots: false,
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Encodes one chunk.
    pub fn encode(&mut self, input: &[u8], out: &mut impl BufMut) {
        let mut i = 0;
        if self.pending_cr && !input.is_empty() {
            // A CR ended the previous chunk: it was a line end either way.
            self.pending_cr = false;
            out.put_slice(b"\r\n");
            self.at_line_start = true;
            if input[0] == b'\n' {
                i = 1;
            }
        }
        // Bytes that go out as they came (text, CRLF line ends) are copied
        // in spans: `start` is the first byte of the span not yet copied.
        let mut start = i;
        while i < input.len() {
            if self.at_line_start {
                if self.stuff_dots && input[i] == b'.' {
                    out.put_slice(&input[start..i]);
                    out.put_u8(b'.');
                    start = i;
                }
                self.at_line_start = false;
            }
            let Some(k) = memchr::memchr2(b'\r', b'\n', &input[i..]) else {
                break;
            };
            let end = i + k;
            if input[end] == b'\r' && input.get(end + 1) == Some(&b'\n') {
                // A CRLF line end, as it must go out: stays in the span.
                i = end + 2;
            } else if input[end] == b'\r' && end + 1 == input.len() {
                // CR at the end of the chunk: wait to see if LF follows.
                out.put_slice(&input[start..end]);
                self.pending_cr = true;
                return;
            } else {
                // A bare LF or CR: CRLF goes out in its place.
                out.put_slice(&input[start..end]);
                out.put_slice(b"\r\n");
                i = end + 1;
                start = i;
            }
            self.at_line_start = true;
        }
        out.put_slice(&input[start..]);
    }

    /// Completes the last line with CRLF if needed, and resets for the next
    /// message.
    pub fn finish(&mut self, out: &mut impl BufMut) {
        if self.pending_cr || !self.at_line_start {
            out.put_slice(b"\r\n");
        }
        self.at_line_start = true;
        self.pending_cr = false;
    }

    /// Bytes the normaliser will add at `finish` (0 or 2), used to size the
    /// last BDAT chunk.
    pub fn pending_finish_len(&self) -> usize {
        if self.pending_cr || !self.at_line_start {
            2
        } else {
            0
        }
    }
}

/// Reverses dot-stuffing: takes DATA wire bytes up to and including the
/// terminating `.\r\n` and returns the message. `None` if the input is not a
/// well-formed stuffed body (a bare CR or LF, a missing terminator, or bytes
/// after it). Meant for test servers and property tests.
///
/// ```
/// assert_eq!(smtp_sansio::dot_unstuff(b"..a\r\nb\r\n.\r\n").unwrap(), b".a\r\nb\r\n");
/// ```
pub fn dot_unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(wire.len());
    let mut rest = wire;
    loop {
        let end = memchr::memchr(b'\n', rest)?;
        if end == 0 || rest[end - 1] != b'\r' {
            return None;
        }
        let line = &rest[..end - 1];
        if line.contains(&b'\r') {
            return None;
        }
        rest = &rest[end + 1..];
        if line == b"." {
            return rest.is_empty().then_some(out);
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
}

/// The CRLF-normalised form of a message as [`DotStuffer`] sends it: bare LF
/// and CR become CRLF and a final CRLF is added to a non-empty message that
/// lacks one. For tests: `dot_unstuff(stuffed(m)) == normalize_line_endings(m)`.
pub fn normalize_line_endings(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    let mut n = LineNormalizer::new();
    n.encode(message, &mut out);
    n.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        for c in chunks {
            s.encode(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"..", b"...\r\n.\r\n"),
            (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\n.\nb\n", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r\r\n\n", b"a\r\n\r\n\r\n.\r\n"),
            (b"x.y\r\n", b"x.y\r\n.\r\n"),
            (b"\r\n", b"\r\n.\r\n"),
            (b"\r", b"\r\n.\r\n"),
        ];
        for (input, want) in cases {
            assert_eq!(stuff_chunks(&[input]), *want, "{input:?}");
            // Every split point gives the same bytes.
            for split in 0..=input.len() {
                let got = stuff_chunks(&[&input[..split], &input[split..]]);
                assert_eq!(got, *want, "{input:?} split at {split}");
            }
            let bytewise: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(stuff_chunks(&bytewise), *want);
            assert_eq!(dot_unstuff(want).unwrap(), normalize_line_endings(input));
        }
    }

    #[test]
    fn unstuff_rejects_malformed() {
        assert_eq!(dot_unstuff(b"a\r\n"), None);
        assert_eq!(dot_unstuff(b"a\n.\r\n"), None);
        assert_eq!(dot_unstuff(b"a\r\n.\r\nextra"), None);
        assert_eq!(dot_unstuff(b"a\rb\r\n.\r\n"), None);
    }

    #[test]
    fn normalizer_without_dots() {
        let mut out = Vec::new();
        let mut n = LineNormalizer::new();
        n.encode(b".a\nb\r", &mut out);
        assert_eq!(n.pending_finish_len(), 2);
        n.finish(&mut out);
        assert_eq!(out, b".a\r\nb\r\n");
    }
}
