//! Reading a DATA body off the wire: dot-unstuffing as the bytes stream in,
//! the end of the message only at `CRLF . CRLF`, bare CR and LF noticed.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use super::config::BareLineEnding;

/// A partial line longer than this is passed on before its end arrives, so
/// a body with endless lines still streams in bounded memory.
const PARTIAL_LINE_FLUSH: usize = 4096;

/// The receiving side of RFC 5321 §4.5.2 transparency.
#[derive(Debug, Clone)]
pub(crate) struct DataReader {
    /// The last line ended in CRLF (or nothing has been read): a `.` here
    /// is stuffing, and `.CRLF` ends the message.
    at_line_start: bool,
    /// A bare CR or LF has been seen.
    bare: bool,
    policy: BareLineEnding,
}

/// What one call to [`DataReader::feed`] did.
pub(crate) struct Fed {
    /// Bytes of input used.
    pub consumed: usize,
    /// The terminating `.CRLF` was among them.
    pub ended: bool,
}

impl DataReader {
    pub(crate) fn new(policy: BareLineEnding) -> Self {
        Self {
            at_line_start: true,
            bare: false,
            policy,
        }
    }

    /// True once a bare CR or LF has been seen.
    pub(crate) fn saw_bare_line_ending(&self) -> bool {
        self.bare
    }

    /// Reads as much of `input` as can be decided now, appending the
    /// message content to `out`. Bytes that could still turn out to be the
    /// end of the message (a `.` or a CR at the end of the input) are left
    /// unread.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Fed {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                pos += self.partial(rest, out);
                break;
            };
            let line = &rest[..=lf];
            let mut content = &line[..lf];
            if self.at_line_start {
                if line == b".\r\n" {
                    return Fed {
                        consumed: pos + 3,
                        ended: true,
                    };
                }
                if let Some(unstuffed) = content.strip_prefix(b".") {
                    content = unstuffed;
                }
            }
            let crlf = content.last() == Some(&b'\r');
            if crlf {
                content = &content[..content.len() - 1];
            }
            self.push_content(content, out);
            if crlf {
                out.extend_from_slice(b"\r\n");
            } else {
                self.bare_line_end(out);
            }
            self.at_line_start = crlf;
            pos += lf + 1;
        }
        Fed {
            consumed: pos,
            ended: false,
        }
    }

    /// A line whose LF has not arrived: wait for more unless it is long.
    fn partial(&mut self, rest: &[u8], out: &mut Vec<u8>) -> usize {
        if rest.len() < PARTIAL_LINE_FLUSH {
            return 0;
        }
        let mut content = rest;
        let mut skipped = 0;
        if self.at_line_start && content.first() == Some(&b'.') {
            content = &content[1..];
            skipped = 1;
        }
        // A trailing CR may be the first half of the line's CRLF.
        if content.last() == Some(&b'\r') {
            content = &content[..content.len() - 1];
        }
        self.push_content(content, out);
        self.at_line_start = false;
        skipped + content.len()
    }

    /// Appends line content (no line end), handling bare CRs in it.
    fn push_content(&mut self, content: &[u8], out: &mut Vec<u8>) {
        if memchr::memchr(b'\r', content).is_none() {
            out.extend_from_slice(content);
            return;
        }
        self.bare = true;
        match self.policy {
            BareLineEnding::Refuse => out.extend_from_slice(content),
            BareLineEnding::Normalize => {
                for part in content.split(|&b| b == b'\r').enumerate() {
                    if part.0 > 0 {
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(part.1);
                }
            }
        }
    }

    fn bare_line_end(&mut self, out: &mut Vec<u8>) {
        self.bare = true;
        match self.policy {
            BareLineEnding::Refuse => out.push(b'\n'),
            BareLineEnding::Normalize => out.extend_from_slice(b"\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(policy: BareLineEnding, wire: &[u8], split: usize) -> (Vec<u8>, usize, bool, bool) {
        let mut reader = DataReader::new(policy);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut used = 0;
        for chunk in wire.chunks(split.max(1)) {
            buf.extend_from_slice(chunk);
            let fed = reader.feed(&buf, &mut out);
            buf.drain(..fed.consumed);
            used += fed.consumed;
            if fed.ended {
                return (out, used, true, reader.saw_bare_line_ending());
            }
        }
        (out, used, false, reader.saw_bare_line_ending())
    }

    #[test]
    fn unstuffs_and_ends_at_crlf_dot_crlf_whatever_the_split() {
        let wire = b"a\r\n..b\r\n.\r\nMAIL";
        for split in 1..wire.len() {
            let (out, used, ended, bare) = read_all(BareLineEnding::Refuse, wire, split);
            assert_eq!(out, b"a\r\n.b\r\n", "split {split}");
            assert!(ended && !bare);
            assert_eq!(used, wire.len() - 4);
        }
    }

    #[test]
    fn a_bare_lf_dot_never_ends_the_message() {
        let wire = b"a\n.\nMAIL FROM:<x@y>\r\n.\r\n";
        for split in 1..wire.len() {
            let (out, _, ended, bare) = read_all(BareLineEnding::Normalize, wire, split);
            assert!(ended && bare, "split {split}");
            assert_eq!(out, b"a\r\n.\r\nMAIL FROM:<x@y>\r\n");
            let (out, _, ended, bare) = read_all(BareLineEnding::Refuse, wire, split);
            assert!(ended && bare);
            assert_eq!(out, b"a\n.\nMAIL FROM:<x@y>\r\n");
        }
    }

    #[test]
    fn bare_cr_is_noticed_and_normalized() {
        let (out, _, ended, bare) = read_all(BareLineEnding::Normalize, b"a\rb\r\n\r.\r\n.\r\n", 3);
        assert!(ended && bare);
        assert_eq!(out, b"a\r\nb\r\n\r\n.\r\n");
    }

    #[test]
    fn endless_lines_stream_in_bounded_pieces() {
        let mut reader = DataReader::new(BareLineEnding::Refuse);
        let mut out = Vec::new();
        let line = vec![b'x'; 10_000];
        let fed = reader.feed(&line, &mut out);
        assert_eq!(fed.consumed, 10_000);
        assert_eq!(out.len(), 10_000);
        let fed = reader.feed(b".\r\n", &mut out);
        assert!(!fed.ended, "a dot in the middle of a line is content");
    }
}
