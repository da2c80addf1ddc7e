//! Checks what a client writes: command lines, DATA bodies, BDAT payloads.
//!
//! The client's output is one byte stream. [`Wire`] follows it as a server
//! would: lines up to CRLF, BDAT payloads of the announced length, and DATA
//! bodies up to the end-of-data marker (the harness says when it is sending
//! a body, since only the caller knows). Whatever breaks the grammar panics.

use std::collections::VecDeque;

use smtp_proto::{dot_unstuff, normalize_line_endings};

/// Commands that are a whole line by themselves.
const BARE: &[&[u8]] = &[b"STARTTLS", b"DATA", b"RSET", b"NOOP", b"QUIT", b"*"];
/// Commands followed by an argument.
const WITH_ARGUMENT: &[&[u8]] = &[
    b"EHLO ",
    b"HELO ",
    b"LHLO ",
    b"AUTH ",
    b"MAIL FROM:<",
    b"RCPT TO:<",
    b"VRFY ",
    b"BDAT ",
];

/// Index just past the first end-of-data marker (`.` CRLF at the start of a
/// line) in DATA wire bytes that begin at the start of a line.
pub fn end_of_data(wire: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    while line_start < wire.len() {
        if wire[line_start..].starts_with(b".\r\n") {
            return Some(line_start + 3);
        }
        let nl = memchr(b'\n', &wire[line_start..])?;
        line_start += nl + 1;
    }
    None
}

/// True when every CR is followed by LF and every LF follows a CR.
pub fn only_crlf_pairs(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        _ => true,
    })
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Follows the client's output stream and checks it.
#[derive(Debug, Default)]
pub struct Wire {
    /// The unfinished command line.
    line: Vec<u8>,
    /// The last complete command line.
    last_line: Vec<u8>,
    /// Lines completed since the last [`Wire::take_lines`].
    lines: Vec<Vec<u8>>,
    /// Bytes of a BDAT payload still to come, and whether it is LAST.
    bdat: Option<(usize, bool)>,
    /// The BDAT payloads of the current transaction.
    bdat_message: Vec<u8>,
    /// Messages the caller sent by BDAT, as the wire should carry them, and
    /// whether each is BINARYMIME (sent as is, not normalised).
    bdat_expected: VecDeque<(Vec<u8>, bool)>,
    /// The current transaction's body is BINARYMIME.
    binary: bool,
    /// A DATA body is being written.
    in_body: bool,
    /// The DATA body's wire bytes so far.
    body: Vec<u8>,
}

impl Wire {
    /// A checker at the start of a session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes written outside a DATA body.
    pub fn commands(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        assert!(
            !self.in_body,
            "the client wrote {:?} in the middle of a DATA body",
            String::from_utf8_lossy(bytes)
        );
        let mut rest = bytes;
        while !rest.is_empty() {
            if let Some((remaining, last)) = self.bdat {
                let n = remaining.min(rest.len());
                self.bdat_message.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                self.bdat = Some((remaining - n, last));
                if remaining == n {
                    self.end_bdat_chunk(last);
                }
                continue;
            }
            let n = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            self.line.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.line.ends_with(b"\n") {
                let line = std::mem::take(&mut self.line);
                self.check_line(line);
            }
        }
    }

    /// The body of a DATA command begins (the harness got the `354`).
    pub fn begin_body(&mut self) {
        assert!(self.line.is_empty() && self.bdat.is_none());
        self.in_body = true;
        self.body.clear();
    }

    /// Bytes written by `send_body`.
    pub fn body(&mut self, bytes: &[u8]) {
        assert!(self.in_body, "body bytes outside a body");
        self.body.extend_from_slice(bytes);
        if let Some(end) = end_of_data(&self.body) {
            panic!(
                "the end-of-data marker appeared before finish_body: {:?}",
                String::from_utf8_lossy(&self.body[..end])
            );
        }
    }

    /// Bytes written by `finish_body` (the body's end, then possibly the
    /// next commands); `message` is everything the caller passed to
    /// `send_body`.
    pub fn end_body(&mut self, bytes: &[u8], message: &[u8]) {
        assert!(self.in_body, "end of body outside a body");
        self.body.extend_from_slice(bytes);
        let Some(end) = end_of_data(&self.body) else {
            panic!(
                "finish_body wrote no end-of-data marker: {:?}",
                String::from_utf8_lossy(&self.body)
            );
        };
        let rest = self.body.split_off(end);
        let want = normalize_line_endings(message);
        let got = dot_unstuff(&self.body);
        assert!(
            got.as_deref() == Some(&want[..]),
            "DATA body {:?} does not un-stuff to the message {:?}",
            String::from_utf8_lossy(&self.body),
            String::from_utf8_lossy(&want)
        );
        self.body.clear();
        self.in_body = false;
        self.commands(&rest);
    }

    /// The session died during a body: stop following it.
    pub fn abandon_body(&mut self) {
        self.in_body = false;
        self.body.clear();
    }

    /// The caller queued a whole BDAT message: `wire` is how it must appear.
    pub fn expect_bdat(&mut self, wire: Vec<u8>, binary: bool) {
        self.bdat_expected.push_back((wire, binary));
    }

    /// Whether the next BDAT chunks belong to a BINARYMIME message.
    pub fn set_binary(&mut self, binary: bool) {
        self.binary = binary;
    }

    /// Command lines completed since the last call, without CRLF.
    pub fn take_lines(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.lines)
    }

    /// At the end of a session: nothing may be half written.
    pub fn finish(&self) {
        assert!(
            self.line.is_empty(),
            "the client left a partial line: {:?}",
            String::from_utf8_lossy(&self.line)
        );
        assert!(self.bdat.is_none(), "a BDAT payload was cut short");
    }

    fn check_line(&mut self, line: Vec<u8>) {
        let show = String::from_utf8_lossy(&line).into_owned();
        let Some(content) = line.strip_suffix(b"\r\n") else {
            panic!("a command line ends in a bare LF: {show:?}");
        };
        assert!(
            !content.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "CR, LF or NUL inside a command line: {show:?}"
        );
        if content == b"." {
            // Only the empty message the client ends itself (RFC 2920 §3.1:
            // every RCPT failed, DATA still got 354).
            assert_eq!(
                self.last_line, b"DATA",
                "a lone '.' line not right after DATA"
            );
        } else if content.starts_with(b"BDAT ") {
            self.start_bdat_chunk(&content[5..], &show);
        } else if content.starts_with(b"MAIL FROM:<") {
            self.bdat_message.clear();
        } else if !BARE.contains(&content) && !WITH_ARGUMENT.iter().any(|v| content.starts_with(v))
        {
            // An AUTH response: base64, possibly empty.
            assert!(
                content
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
                "not a command, '*' or a base64 response: {show:?}"
            );
        }
        self.last_line = content.to_vec();
        self.lines.push(content.to_vec());
    }

    fn start_bdat_chunk(&mut self, args: &[u8], show: &str) {
        let (size, last) = match args.strip_suffix(b" LAST") {
            Some(size) => (size, true),
            None => (args, false),
        };
        assert!(
            !size.is_empty() && size.iter().all(u8::is_ascii_digit),
            "malformed BDAT line: {show:?}"
        );
        let size: usize = std::str::from_utf8(size)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("BDAT size out of range: {show:?}"));
        self.bdat = Some((size, last));
        if size == 0 {
            self.end_bdat_chunk(last);
        }
    }

    fn end_bdat_chunk(&mut self, last: bool) {
        self.bdat = None;
        if !self.binary {
            assert!(
                only_crlf_pairs(&self.bdat_message),
                "bare CR or LF in a BDAT payload: {:?}",
                String::from_utf8_lossy(&self.bdat_message)
            );
        }
        if !last {
            return;
        }
        let message = std::mem::take(&mut self.bdat_message);
        // Messages whose LAST chunk was never sent (the transaction failed
        // first) are skipped; the one sent must be one the caller queued.
        while let Some((want, binary)) = self.bdat_expected.pop_front() {
            if want == message {
                if !binary {
                    assert!(message.is_empty() || message.ends_with(b"\r\n"));
                }
                return;
            }
        }
        panic!(
            "the BDAT message {:?} is none the caller sent",
            String::from_utf8_lossy(&message)
        );
    }
}
