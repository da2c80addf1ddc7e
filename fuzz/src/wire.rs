//! Checks what a client writes: command lines, DATA bodies, BDAT payloads.
//!
//! The client's output is one byte stream. [`Wire`] follows it as a server
//! would: lines up to CRLF, BDAT payloads of the announced length, and DATA
//! bodies up to the end-of-data marker (the harness says when a body begins,
//! at its first [`NeedBody`](smtp_sansio::Output::NeedBody), and what the
//! caller passed once it ends it, since only the caller knows). Whatever
//! breaks the grammar panics.

use std::collections::VecDeque;

use smtp_sansio::{dot_unstuff, normalize_line_endings};

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
    /// The last complete command line (empty after a DATA body).
    last_line: Vec<u8>,
    /// Lines completed since the last [`Wire::take_lines`].
    lines: Vec<Vec<u8>>,
    /// Bytes of a BDAT payload still to come, and whether it is LAST.
    bdat: Option<(usize, bool)>,
    /// The BDAT payloads of the current transaction.
    bdat_message: Vec<u8>,
    /// Messages the caller ended by BDAT, as the wire should carry them, in
    /// the order they were ended.
    bdat_expected: VecDeque<Vec<u8>>,
    /// The current transaction's MAIL declared `BODY=BINARYMIME`.
    binary: bool,
    /// The DATA body being written.
    body: Option<DataBody>,
    /// Whole messages seen: DATA bodies with their final dot, BDAT LASTs.
    messages: usize,
    /// The next line must be EHLO or LHLO (the first after STARTTLS's
    /// handshake).
    hello_next: bool,
}

#[derive(Debug, Default)]
struct DataBody {
    /// Its wire bytes so far.
    wire: Vec<u8>,
    /// Everything the caller passed, once it ended the body.
    ended: Option<Vec<u8>>,
}

impl Wire {
    /// A checker at the start of a session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes the client wrote (an [`Output::Transmit`](smtp_sansio::Output)).
    pub fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.body.is_some() {
                return self.body_bytes(rest);
            }
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

    /// The body of a DATA command begins: the session asked for it after
    /// the `354`, so the last thing written must be the DATA line.
    pub fn begin_body(&mut self) {
        assert!(
            self.line.is_empty() && self.bdat.is_none() && self.body.is_none(),
            "a DATA body begins in the middle of something: {self:?}"
        );
        assert_eq!(
            self.last_line,
            b"DATA",
            "a DATA body begins after {:?}",
            String::from_utf8_lossy(&self.last_line)
        );
        self.body = Some(DataBody::default());
    }

    /// The caller ended the DATA body; `message` is everything it passed.
    /// The end-of-data marker may come now, and nowhere before.
    pub fn end_body(&mut self, message: &[u8]) {
        let body = self.body.as_mut().expect("end of a DATA body outside one");
        assert!(body.ended.is_none(), "a DATA body ended twice");
        body.ended = Some(message.to_vec());
    }

    /// The TLS handshake after STARTTLS is done: the next line must be the
    /// hello again, before any command queued meanwhile.
    pub fn expect_hello_next(&mut self) {
        assert!(
            self.line.is_empty() && self.bdat.is_none() && self.body.is_none(),
            "the TLS handshake began in the middle of something: {self:?}"
        );
        self.hello_next = true;
    }

    /// Whether a DATA body is being written.
    pub fn in_body(&self) -> bool {
        self.body.is_some()
    }

    /// The caller queued a whole BDAT message: `wire` is how it must appear.
    pub fn expect_bdat(&mut self, wire: Vec<u8>) {
        self.bdat_expected.push_back(wire);
    }

    /// Whole messages written so far (a DATA body with its final dot, or a
    /// `BDAT … LAST` chunk), each checked against what the caller passed.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Command lines completed since the last call, without CRLF.
    pub fn take_lines(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.lines)
    }

    /// At the end of a session: nothing may be half written (a DATA body
    /// cut short by a fatal error is fine: the connection is dropped).
    pub fn finish(&self) {
        assert!(
            self.line.is_empty(),
            "the client left a partial line: {:?}",
            String::from_utf8_lossy(&self.line)
        );
        assert!(self.bdat.is_none(), "a BDAT payload was cut short");
    }

    fn body_bytes(&mut self, bytes: &[u8]) {
        let Some(body) = self.body.as_mut() else {
            return;
        };
        body.wire.extend_from_slice(bytes);
        let Some(end) = end_of_data(&body.wire) else {
            return;
        };
        let Some(message) = &body.ended else {
            panic!(
                "the end-of-data marker appeared before end_body: {:?}",
                String::from_utf8_lossy(&body.wire[..end])
            );
        };
        let rest = body.wire.split_off(end);
        let want = normalize_line_endings(message);
        let got = dot_unstuff(&body.wire);
        assert!(
            got.as_deref() == Some(&want[..]),
            "DATA body {:?} does not un-stuff to the message {:?}",
            String::from_utf8_lossy(&body.wire),
            String::from_utf8_lossy(&want)
        );
        self.body = None;
        self.messages += 1;
        self.last_line.clear();
        self.write(&rest);
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
        if std::mem::take(&mut self.hello_next) {
            assert!(
                content.starts_with(b"EHLO ") || content.starts_with(b"LHLO "),
                "after STARTTLS's handshake the first line is {show:?}, not the hello"
            );
        }
        if content == b"." {
            // Only the empty message the client ends itself (RFC 2920 §3.1:
            // every RCPT failed, DATA still got 354).
            assert_eq!(
                self.last_line, b"DATA",
                "a lone '.' line not right after DATA"
            );
        } else if let Some(args) = content.strip_prefix(b"BDAT ") {
            self.start_bdat_chunk(args, &show);
        } else if content.starts_with(b"MAIL FROM:<") {
            self.bdat_message.clear();
            self.binary = content
                .split(|&b| b == b' ')
                .any(|p| p == b"BODY=BINARYMIME");
        } else if content == b"RSET" {
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
        if !self.binary {
            assert!(
                message.is_empty() || message.ends_with(b"\r\n"),
                "a BDAT message without its final CRLF: {:?}",
                String::from_utf8_lossy(&message)
            );
        }
        // Messages whose LAST chunk was never sent (the transaction failed
        // first) are skipped; the one sent must be one the caller ended.
        while let Some(want) = self.bdat_expected.pop_front() {
            if want == message {
                self.messages += 1;
                return;
            }
        }
        panic!(
            "the BDAT message {:?} is none the caller sent",
            String::from_utf8_lossy(&message)
        );
    }
}
