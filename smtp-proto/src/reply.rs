//! Server replies (RFC 5321 §4.2) and their incremental, bounded parser.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::sync::Arc;
use core::fmt;

use crate::error::ProtocolError;
use crate::text::Escaped;

/// A three-digit SMTP reply code, always in the range 200–599.
///
/// RFC 5321 §4.2 defines the first digit as the class of the reply:
/// 2 = positive completion, 3 = positive intermediate, 4 = transient
/// negative, 5 = permanent negative. Codes with any other first digit are
/// refused by the parser as a protocol violation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// `220 <domain> Service ready`.
    pub const SERVICE_READY: Self = Self(220);
    /// `221 <domain> Service closing transmission channel`.
    pub const CLOSING: Self = Self(221);
    /// `235 Authentication succeeded` (RFC 4954).
    pub const AUTH_SUCCEEDED: Self = Self(235);
    /// `250 Requested mail action okay, completed`.
    pub const OK: Self = Self(250);
    /// `251 User not local; will forward`.
    pub const WILL_FORWARD: Self = Self(251);
    /// `252 Cannot VRFY user, but will accept message and attempt delivery`.
    pub const CANNOT_VERIFY: Self = Self(252);
    /// `334` server challenge (RFC 4954).
    pub const AUTH_CHALLENGE: Self = Self(334);
    /// `354 Start mail input; end with <CRLF>.<CRLF>`.
    pub const START_MAIL_INPUT: Self = Self(354);
    /// `421 Service not available, closing transmission channel`.
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);

    /// Makes a reply code from a number, if it is in 200–599.
    pub const fn new(code: u16) -> Option<Self> {
        if code >= 200 && code <= 599 {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The numeric value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2, 3, 4 or 5.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// 2xx: the command was accepted and completed.
    pub const fn is_positive_completion(self) -> bool {
        self.class() == 2
    }

    /// 3xx: the command was accepted and the server waits for more (354, 334).
    pub const fn is_positive_intermediate(self) -> bool {
        self.class() == 3
    }

    /// 4xx: the command failed, but trying again later may succeed.
    pub const fn is_transient(self) -> bool {
        self.class() == 4
    }

    /// 5xx: the command failed and repeating it as is will fail again.
    pub const fn is_permanent(self) -> bool {
        self.class() == 5
    }
}

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced mail system status code (RFC 3463), such as `5.1.1`.
///
/// Present on a [`Reply`] only when the server advertised
/// `ENHANCEDSTATUSCODES` (RFC 2034) and the code's class matches the reply
/// code's first digit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl EnhancedCode {
    /// Makes a code; `class` must be 2, 4 or 5 and the others at most 999.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Option<Self> {
        if (class == 2 || class == 4 || class == 5) && subject <= 999 && detail <= 999 {
            Some(Self {
                class,
                subject,
                detail,
            })
        } else {
            None
        }
    }

    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub const fn class(self) -> u8 {
        self.class
    }

    /// The subject: 0 other, 1 addressing, 2 mailbox, 3 mail system, 4 network,
    /// 5 protocol, 6 content, 7 security or policy.
    pub const fn subject(self) -> u16 {
        self.subject
    }

    /// The detail number within the subject.
    pub const fn detail(self) -> u16 {
        self.detail
    }

    /// Parses `class.subject.detail` at the start of `text`, followed by a
    /// space or the end of the text. Returns the code and the rest of the text.
    /// One pass over the bytes: every reply of a server with
    /// ENHANCEDSTATUSCODES goes through here, so it must be cheap (it was
    /// 15% of the core's instructions per message when built on `split`).
    fn parse_prefix(text: &str) -> Option<(Self, &str)> {
        let b = text.as_bytes();
        let class = match b.first()? {
            c @ (b'2' | b'4' | b'5') => c - b'0',
            _ => return None,
        };
        if b.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, i) = parse_digits(b, 2)?;
        if b.get(i) != Some(&b'.') {
            return None;
        }
        let (detail, end) = parse_digits(b, i + 1)?;
        if !matches!(b.get(end), None | Some(b' ')) {
            return None;
        }
        let code = Self::new(class, subject, detail)?;
        Some((code, text[end..].trim_start_matches(' ')))
    }
}

/// One to three digits at `start`; the value and the index after them.
fn parse_digits(b: &[u8], start: usize) -> Option<(u16, usize)> {
    let mut value = 0u16;
    let mut i = start;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        if i - start == 3 {
            return None;
        }
        value = value * 10 + u16::from(d - b'0');
        i += 1;
    }
    (i > start).then_some((value, i))
}

impl fmt::Debug for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete server reply: the code, the enhanced status code when the
/// server uses them, and the text of every line.
///
/// The text is the server's, so it may hold anything but CR, LF and NUL:
/// [`lines`](Self::lines), [`text`](Self::text) and
/// [`message`](Self::message) give it as sent, for programs that parse it;
/// `Display` (and so every error's `Display`) shows it with control
/// characters escaped ([`escape_controls`](crate::escape_controls)), so that
/// printing a reply cannot drive the terminal that shows it.
///
/// ```
/// use smtp_sansio::{Reply, ReplyCode};
///
/// let reply = Reply::new(ReplyCode::OK, vec!["queued \x1b]0;pwned\x07".into()]);
/// assert_eq!(reply.text(), "queued \x1b]0;pwned\x07");
/// assert_eq!(reply.to_string(), "250 queued \\x1b]0;pwned\\x07");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    /// Shared, not copied, by clones: a reply is kept in every result
    /// that reports it (the command's, the message's, each recipient's).
    lines: Arc<[String]>,
}

impl Reply {
    /// Builds a reply from its parts; `lines` holds the text after the code
    /// and separator of each line. An empty `lines` is treated as one empty
    /// line.
    pub fn new(code: ReplyCode, mut lines: Vec<String>) -> Self {
        if lines.len() <= 1 {
            return Self::one_line(code, lines.pop().unwrap_or_default());
        }
        Self {
            code,
            enhanced: None,
            lines: lines.into(),
        }
    }

    /// A one-line reply: one allocation for the line list, none to copy it.
    fn one_line(code: ReplyCode, text: String) -> Self {
        Self {
            code,
            enhanced: None,
            lines: Arc::new([text]),
        }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code (RFC 3463), if the server advertised
    /// `ENHANCEDSTATUSCODES` and the first line carries one.
    pub fn enhanced_code(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The text of each line, as sent (after `NNN-` / `NNN `), including any
    /// enhanced status code, control characters and all (unlike `Display`).
    /// Invalid UTF-8 is replaced with U+FFFD.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text of all lines joined with `\n`, as sent (not escaped).
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The text of all lines with the enhanced status code removed from each
    /// line, joined with `\n`. Falls back to [`Reply::text`] when the reply
    /// has no enhanced code.
    pub fn message(&self) -> String {
        if self.enhanced.is_none() {
            return self.text();
        }
        let stripped: Vec<&str> = self
            .lines
            .iter()
            .map(|l| EnhancedCode::parse_prefix(l).map_or(l.as_str(), |(_, rest)| rest))
            .collect();
        stripped.join("\n")
    }

    /// 2xx.
    pub fn is_positive_completion(&self) -> bool {
        self.code.is_positive_completion()
    }

    /// 3xx.
    pub fn is_positive_intermediate(&self) -> bool {
        self.code.is_positive_intermediate()
    }

    /// 4xx: a transient failure; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        self.code.is_transient()
    }

    /// 5xx: a permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.code.is_permanent()
    }

    /// Parses the enhanced code from the first line if its class matches the
    /// reply class (RFC 3463 §2: they must agree).
    pub(crate) fn detect_enhanced_code(&mut self) {
        self.enhanced = self
            .lines
            .first()
            .and_then(|l| EnhancedCode::parse_prefix(l))
            .map(|(code, _)| code)
            .filter(|code| code.class() == self.code.class());
    }

    /// Writes the reply as it appeared on the wire, without CRLFs, one line
    /// per call to `line`.
    pub(crate) fn for_each_wire_line(&self, mut line: impl FnMut(String)) {
        let last = self.lines.len().saturating_sub(1);
        for (i, text) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            line(format!("{}{}{}", self.code, sep, text));
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("enhanced", &self.enhanced)
            .field("lines", &self.lines)
            .finish()
    }
}

/// The code and every line's text, separated by spaces, with control
/// characters escaped as [`escape_controls`](crate::escape_controls) does.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for line in self.lines.iter() {
            write!(f, " {}", Escaped(line))?;
        }
        Ok(())
    }
}

/// A reply checked in place, borrowing the bytes it arrived in: what
/// [`ReplyParser::parse_borrowed`] returns for a reply that arrived whole,
/// with no allocation. [`to_reply`](Self::to_reply) makes the owned
/// [`Reply`] for a reply that is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReplyView<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    /// The whole reply as it arrived, every line with its line end.
    wire: &'a [u8],
    lines: usize,
}

impl<'a> ReplyView<'a> {
    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code, as [`Reply::enhanced_code`].
    pub fn enhanced_code(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// How many lines the reply has (at least one).
    pub fn line_count(&self) -> usize {
        self.lines
    }

    /// Each line's text as sent, after `NNN-` / `NNN `, without its line
    /// end: raw bytes (not escaped, not UTF-8 checked).
    pub fn lines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let wire = self.wire;
        wire.split(|&b| b == b'\n')
            .take(self.lines)
            .map(|raw| line_text(raw.strip_suffix(b"\r").unwrap_or(raw)))
    }

    /// The reply exactly as it arrived, line ends included.
    pub fn wire(&self) -> &'a [u8] {
        self.wire
    }

    /// 2xx.
    pub fn is_positive_completion(&self) -> bool {
        self.code.is_positive_completion()
    }

    /// The owned reply, equal to what [`ReplyParser::parse`] returns for
    /// the same bytes.
    pub fn to_reply(&self) -> Reply {
        let lines = self.lines().map(owned_text).collect();
        let mut reply = Reply::new(self.code, lines);
        reply.enhanced = self.enhanced;
        reply
    }
}

impl fmt::Debug for ReplyView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyView")
            .field("code", &self.code)
            .field("enhanced", &self.enhanced)
            .field(
                "lines",
                &self
                    .lines()
                    .map(String::from_utf8_lossy)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What [`ReplyParser::parse_borrowed`] returns: a view of a reply that
/// arrived whole, or the reply assembled across calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedReply<'a> {
    /// Arrived whole in the input: checked in place, not copied.
    Borrowed(ReplyView<'a>),
    /// Assembled from more than one input.
    Owned(Reply),
}

impl ParsedReply<'_> {
    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        match self {
            Self::Borrowed(v) => v.code(),
            Self::Owned(r) => r.code(),
        }
    }

    /// The owned reply (copied out of the input if borrowed).
    pub fn into_owned(self) -> Reply {
        match self {
            Self::Borrowed(v) => v.to_reply(),
            Self::Owned(r) => r,
        }
    }
}

/// Bounds on what the reply parser accepts, and on the command lines the
/// client writes. Every reply limit is enforced while bytes arrive, so the
/// parser never holds more than these in memory; the command-line limit is
/// checked before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest reply line, counting the code and the line ending.
    /// Default 4096: RFC 5321 §4.5.3.1.5 says 512, but real servers send
    /// longer EHLO and error lines, so the default is generous yet bounded.
    pub max_line_len: usize,
    /// Most lines in one reply. Default 128: the largest EHLO replies seen in
    /// the field have about 30 lines.
    pub max_lines: usize,
    /// Most bytes in one reply, all lines together. Default 64 KiB.
    pub max_reply_len: usize,
    /// Most `334` challenges answered in one AUTH exchange before the client
    /// cancels it. Default 16: the multi-step mechanisms in use need 2–3.
    pub max_auth_rounds: u32,
    /// Longest `MAIL` or `RCPT` command line the client writes, counting
    /// the command word and the CRLF, before the extensions' allowances.
    /// Default 512, RFC 5321 §4.5.3.1.4's limit for a command line.
    ///
    /// Each ESMTP parameter the core writes for an extension raises the
    /// limit by the allowance that extension's RFC grants it: `SIZE` 26
    /// (RFC 1870), `BODY` 16 (RFC 3030), `SMTPUTF8` 10 (RFC 6531),
    /// `REQUIRETLS` 11 (RFC 8689), and for those whose RFC bounds the
    /// parameter instead, its longest legal form: `RET` 9, `ENVID` 107,
    /// `NOTIFY` 29, `ORCPT` 501 (RFC 3461), `MT-PRIORITY` 15 (RFC 6710),
    /// `BY` 17 (RFC 2852). Parameters given in `extra` get no allowance.
    /// A longer line fails with [`Error::CommandTooLong`](crate::Error)
    /// before anything is sent; raise this for a server known to take
    /// longer lines.
    pub max_command_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_len: 4096,
            max_lines: 128,
            max_reply_len: 64 * 1024,
            max_auth_rounds: 16,
            max_command_line_len: 512,
        }
    }
}

/// An incremental reply parser: feed it bytes in chunks of any size, get
/// complete replies out.
///
/// Lines end with CRLF; a bare LF is accepted as a line ending too (as Go's
/// `textproto` and most clients do), while a CR anywhere else in a line, a NUL
/// byte, a code outside 200–599, a separator other than `-` or space, and a
/// continuation line whose code differs from the first line's are protocol
/// errors. A line holding only the code (`250`) ends a reply.
///
/// ```
/// use smtp_sansio::ReplyParser;
///
/// let mut parser = ReplyParser::default();
/// let input = b"250-mail.example.com\r\n250 SIZE 1000\r\n";
/// let (used, reply) = parser.parse(&input[..10]).unwrap();
/// assert_eq!((used, reply), (10, None));
/// let (used, reply) = parser.parse(&input[10..]).unwrap();
/// let reply = reply.unwrap();
/// assert_eq!(used, input.len() - 10);
/// assert_eq!(reply.code().get(), 250);
/// assert_eq!(reply.lines(), ["mail.example.com", "SIZE 1000"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplyParser {
    limits: Limits,
    /// Bytes of an unfinished line.
    partial: Vec<u8>,
    /// The reply being assembled, if at least one continuation line arrived.
    current: Option<Partial>,
    enhanced_codes: bool,
}

#[derive(Debug, Clone)]
struct Partial {
    code: ReplyCode,
    lines: Vec<String>,
    len: usize,
}

impl ReplyParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Whether to detect RFC 3463 enhanced status codes in the replies that
    /// follow (set once the server advertised `ENHANCEDSTATUSCODES`).
    pub fn set_enhanced_codes(&mut self, on: bool) {
        self.enhanced_codes = on;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True when no partial line or partial reply is buffered.
    pub fn is_idle(&self) -> bool {
        self.partial.is_empty() && self.current.is_none()
    }

    /// Forgets any partial line or reply (used when the transport changes, as
    /// after STARTTLS, so nothing from before carries over).
    pub fn reset(&mut self) {
        self.partial = Vec::new();
        self.current = None;
    }

    /// Consumes bytes up to and including the end of the first complete
    /// reply and returns how many bytes were used and that reply. When no
    /// reply completes, all of `input` is used (and buffered, within the
    /// limits) and `None` is returned. Stopping after each reply lets the
    /// caller act between replies (for example, refuse bytes that follow the
    /// `220` to STARTTLS).
    ///
    /// After an error the parser's state is unspecified; the session that
    /// owns it treats every parse error as fatal.
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, Option<Reply>), ProtocolError> {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            if self.partial.is_empty()
                && let Some(clean) = self.clean_line(rest)?
            {
                // The common case, in one pass: a whole line, no CR or NUL.
                pos += clean.used;
                let reply = self.add_line(clean.text, clean.code, clean.last)?;
                if reply.is_some() {
                    return Ok((pos, reply));
                }
                continue;
            }
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                if self.partial.len() + rest.len() >= self.limits.max_line_len {
                    return Err(ProtocolError::LineTooLong {
                        limit: self.limits.max_line_len,
                    });
                }
                self.partial.extend_from_slice(rest);
                return Ok((input.len(), None));
            };
            pos += nl + 1;
            if self.partial.len() + nl + 1 > self.limits.max_line_len {
                return Err(ProtocolError::LineTooLong {
                    limit: self.limits.max_line_len,
                });
            }
            let reply = if self.partial.is_empty() {
                self.handle_line(&rest[..nl])?
            } else {
                let mut line = core::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..nl]);
                let reply = self.handle_line(&line);
                // Keep the allocation for the next partial line.
                line.clear();
                self.partial = line;
                reply?
            };
            if reply.is_some() {
                return Ok((pos, reply));
            }
        }
        Ok((pos, None))
    }

    /// [`parse`](Self::parse) without allocating when it can: a reply that
    /// arrives whole in `input` while nothing is buffered (the common case:
    /// a server writes each reply at once) comes back as a [`ReplyView`]
    /// borrowing `input`; a reply assembled across calls comes back owned.
    /// Same bytes used, same limits, same errors as `parse`.
    ///
    /// ```
    /// use smtp_sansio::{ParsedReply, ReplyParser};
    ///
    /// let mut parser = ReplyParser::default();
    /// let input = b"250-mx.example\r\n250 PIPELINING\r\n";
    /// let (used, reply) = parser.parse_borrowed(input).unwrap();
    /// assert_eq!(used, input.len());
    /// let Some(ParsedReply::Borrowed(view)) = reply else { panic!("whole") };
    /// assert_eq!(view.code().get(), 250);
    /// assert!(view.lines().eq([&b"mx.example"[..], b"PIPELINING"]));
    /// // Split across reads: buffered, then owned.
    /// assert!(parser.parse_borrowed(b"250 o").unwrap().1.is_none());
    /// let (_, reply) = parser.parse_borrowed(b"k\r\n").unwrap();
    /// assert_eq!(reply.unwrap().into_owned().lines(), ["ok"]);
    /// ```
    pub fn parse_borrowed<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<ParsedReply<'a>>), ProtocolError> {
        if self.is_idle()
            && let Some(view) = self.scan_whole(input)?
        {
            return Ok((view.wire.len(), Some(ParsedReply::Borrowed(view))));
        }
        let (used, reply) = self.parse(input)?;
        Ok((used, reply.map(ParsedReply::Owned)))
    }

    /// The first reply of `input` checked in place, if its last line is in
    /// `input`; `None` (nothing kept) if it is not, for `parse` to buffer.
    /// The checks and their order are `parse`'s, so a bad reply gets the
    /// same error either way.
    ///
    /// A line holding a bare CR or a NUL is left to `parse` as well: `None`
    /// here, and `parse` finds the same error with its full checks.
    fn scan_whole<'a>(&self, input: &'a [u8]) -> Result<Option<ReplyView<'a>>, ProtocolError> {
        let mut pos = 0;
        let mut first: Option<ReplyCode> = None;
        let mut len = 0;
        let mut lines = 0;
        loop {
            let Some(CleanLine {
                text,
                used,
                code,
                last,
            }) = self.clean_line(&input[pos..])?
            else {
                return Ok(None);
            };
            len = self.check_growth(first, code, len, lines, text)?;
            first = Some(code);
            lines += 1;
            pos += used;
            if last {
                let wire = &input[..pos];
                let mut view = ReplyView {
                    code,
                    enhanced: None,
                    wire,
                    lines,
                };
                if self.enhanced_codes {
                    view.enhanced = view.lines().next().and_then(|text| {
                        EnhancedCode::parse_prefix(&String::from_utf8_lossy(text))
                            .map(|(e, _)| e)
                            .filter(|e| e.class() == code.class())
                    });
                }
                return Ok(Some(view));
            }
        }
    }

    fn handle_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (code, last) = check_line(line)?;
        self.add_line(line, code, last)
    }

    /// Adds a checked line (CR stripped) to the reply being assembled;
    /// the reply, if this was its last line.
    fn add_line(
        &mut self,
        line: &[u8],
        code: ReplyCode,
        last: bool,
    ) -> Result<Option<Reply>, ProtocolError> {
        let text = owned_text(line_text(line));
        let (first, len, count) = self
            .current
            .as_ref()
            .map_or((None, 0, 0), |p| (Some(p.code), p.len, p.lines.len()));
        let len = self.check_growth(first, code, len, count, line)?;
        if last && self.current.is_none() {
            // A one-line reply, the common case: nothing to assemble.
            return Ok(Some(self.finish(Reply::one_line(code, text))));
        }
        let partial = self.current.get_or_insert_with(|| Partial {
            code,
            lines: Vec::new(),
            len: 0,
        });
        partial.len = len;
        partial.lines.push(text);
        if !last {
            return Ok(None);
        }
        let Some(done) = self.current.take() else {
            return Ok(None);
        };
        Ok(Some(self.finish(Reply::new(done.code, done.lines))))
    }

    /// The checks a reply's next line (CR stripped) passes, in both
    /// parsing paths and in this order: the code of the reply's `first`
    /// line, if any; the reply's length with it, `len` so far; its line
    /// count, `lines` so far. The reply's length with this line.
    fn check_growth(
        &self,
        first: Option<ReplyCode>,
        code: ReplyCode,
        len: usize,
        lines: usize,
        line: &[u8],
    ) -> Result<usize, ProtocolError> {
        if let Some(first) = first
            && first != code
        {
            return Err(ProtocolError::MismatchedCodes { first, line: code });
        }
        let len = len + line.len() + 2;
        if len > self.limits.max_reply_len {
            return Err(ProtocolError::ReplyTooLong {
                limit: self.limits.max_reply_len,
            });
        }
        if lines >= self.limits.max_lines {
            return Err(ProtocolError::TooManyLines {
                limit: self.limits.max_lines,
            });
        }
        Ok(len)
    }

    /// The next line of `rest`, checked in one pass, if it is whole and
    /// holds no CR or NUL; `None` leaves it to the full checks of `parse`.
    fn clean_line<'a>(&self, rest: &'a [u8]) -> Result<Option<CleanLine<'a>>, ProtocolError> {
        let LineScan::Clean { text_end, nl } = scan_line(rest) else {
            return Ok(None);
        };
        if nl + 1 > self.limits.max_line_len {
            return Err(ProtocolError::LineTooLong {
                limit: self.limits.max_line_len,
            });
        }
        let text = &rest[..text_end];
        Ok(Some(CleanLine {
            text,
            used: nl + 1,
            code: parse_code(text)?,
            last: line_is_last(text)?,
        }))
    }

    /// A finished reply, with its enhanced code if those are on.
    fn finish(&self, mut reply: Reply) -> Reply {
        if self.enhanced_codes {
            reply.detect_enhanced_code();
        }
        reply
    }
}

/// A whole reply line without CR or NUL, checked: what
/// [`ReplyParser::clean_line`] returns.
struct CleanLine<'a> {
    /// The line without its line end.
    text: &'a [u8],
    /// Bytes of the input it took, line end included.
    used: usize,
    code: ReplyCode,
    /// Whether it ends its reply.
    last: bool,
}

/// Where the next line of some input ends, found in one pass.
enum LineScan {
    /// A whole line with no CR or NUL in its text: the text ends at
    /// `text_end`, the LF is at `nl`.
    Clean { text_end: usize, nl: usize },
    /// A CR or NUL before the line end, or a CR with nothing after it:
    /// for the full checks of [`check_line`].
    Unclear,
    /// No line end, CR or NUL at all.
    Open,
}

/// One `memchr3` pass finds the line end and any CR or NUL before it (the
/// full checks scan twice: for the LF, then for CR and NUL).
fn scan_line(rest: &[u8]) -> LineScan {
    let Some(stop) = memchr::memchr3(b'\n', b'\r', 0, rest) else {
        return LineScan::Open;
    };
    match rest[stop] {
        b'\n' => LineScan::Clean {
            text_end: stop,
            nl: stop,
        },
        b'\r' if rest.get(stop + 1) == Some(&b'\n') => LineScan::Clean {
            text_end: stop,
            nl: stop + 1,
        },
        _ => LineScan::Unclear,
    }
}

/// One reply line (CR stripped) checked as both parsing paths check it:
/// its code, and whether it is the reply's last line.
fn check_line(line: &[u8]) -> Result<(ReplyCode, bool), ProtocolError> {
    // One scan for both bytes a reply line may not hold.
    if memchr::memchr2(0, b'\r', line).is_some() {
        return Err(if line.contains(&0) {
            ProtocolError::NulInReply
        } else {
            ProtocolError::MalformedReply {
                detail: "bare CR inside a reply line",
            }
        });
    }
    let code = parse_code(line)?;
    Ok((code, line_is_last(line)?))
}

/// Whether a line whose code checked is its reply's last: what follows the
/// code is a space or nothing (last), or `-` (more to come).
fn line_is_last(line: &[u8]) -> Result<bool, ProtocolError> {
    match line.get(3) {
        None | Some(b' ') => Ok(true),
        Some(b'-') => Ok(false),
        Some(_) => Err(ProtocolError::MalformedReply {
            detail: "the reply code must be followed by a space, '-' or the line end",
        }),
    }
}

/// A line's text as an owned string, invalid UTF-8 replaced with U+FFFD.
/// Valid text (nearly all of it) takes `from_utf8`'s word-at-a-time check
/// instead of the byte-wise scan of `from_utf8_lossy`.
fn owned_text(text: &[u8]) -> String {
    match core::str::from_utf8(text) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(text).into_owned(),
    }
}

/// The text of a checked line: after `NNN-` / `NNN `.
fn line_text(line: &[u8]) -> &[u8] {
    line.get(4..).unwrap_or_default()
}

fn parse_code(line: &[u8]) -> Result<ReplyCode, ProtocolError> {
    let digits = line.get(..3).ok_or(ProtocolError::MalformedReply {
        detail: "a reply line must start with a three-digit code",
    })?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::MalformedReply {
            detail: "a reply line must start with a three-digit code",
        });
    }
    let value = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    ReplyCode::new(value).ok_or(ProtocolError::InvalidCode { code: value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(parser: &mut ReplyParser, mut input: &[u8]) -> Result<Vec<Reply>, ProtocolError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (used, reply) = parser.parse(input)?;
            input = &input[used..];
            out.extend(reply);
        }
        Ok(out)
    }

    fn parse_bytewise(input: &[u8]) -> Result<Vec<Reply>, ProtocolError> {
        let mut parser = ReplyParser::default();
        let mut out = Vec::new();
        for b in input {
            let (used, reply) = parser.parse(core::slice::from_ref(b))?;
            assert_eq!(used, 1);
            out.extend(reply);
        }
        Ok(out)
    }

    /// `parse_borrowed` agrees with `parse` on every reply and every error,
    /// whole or split at each offset (the reply fuzz target also checks
    /// that only whole replies are borrowed).
    #[test]
    fn borrowed_path_matches_owned_path() {
        let small = Limits {
            max_line_len: 12,
            max_lines: 2,
            max_reply_len: 20,
            ..Limits::default()
        };
        let inputs: &[&[u8]] = &[
            b"250-mx.example\r\n250-SIZE 10\r\n250 ok\r\n221 bye\r\n",
            b"550 5.1.1 no such user\r\n",
            b"250-a\r\n251 b\r\n",
            b"250 a\0b\r\n",
            b"25x ok\r\n",
            b"250 bare\rcr\r\n",
            b"250-one\n250-two\n250 three\n",
            b"250 \xff\xfe invalid utf-8\r\n",
        ];
        for limits in [Limits::default(), small] {
            for input in inputs {
                let owned = parse_all_results(&limits, input, false);
                let borrowed = parse_all_results(&limits, input, true);
                assert_eq!(
                    owned,
                    borrowed,
                    "{:?} {limits:?}",
                    String::from_utf8_lossy(input)
                );
                for split in 1..input.len() {
                    let mut parser = ReplyParser::new(limits.clone());
                    parser.set_enhanced_codes(true);
                    let mut got = Vec::new();
                    let mut err = None;
                    'parts: for part in [&input[..split], &input[split..]] {
                        let mut rest = part;
                        while !rest.is_empty() {
                            match parser.parse_borrowed(rest) {
                                Ok((used, reply)) => {
                                    got.extend(reply.map(ParsedReply::into_owned));
                                    rest = &rest[used..];
                                }
                                Err(e) => {
                                    err = Some(e);
                                    break 'parts;
                                }
                            }
                        }
                    }
                    assert_eq!((got, err), owned, "split at {split}");
                }
            }
        }
    }

    fn parse_all_results(
        limits: &Limits,
        mut input: &[u8],
        borrowed: bool,
    ) -> (Vec<Reply>, Option<ProtocolError>) {
        let mut parser = ReplyParser::new(limits.clone());
        parser.set_enhanced_codes(true);
        let mut replies = Vec::new();
        while !input.is_empty() {
            let result = if borrowed {
                parser
                    .parse_borrowed(input)
                    .map(|(used, r)| (used, r.map(ParsedReply::into_owned)))
            } else {
                parser.parse(input)
            };
            match result {
                Ok((used, reply)) => {
                    replies.extend(reply);
                    input = &input[used..];
                }
                Err(e) => return (replies, Some(e)),
            }
        }
        (replies, None)
    }

    #[test]
    fn single_and_multi_line() {
        let input =
            b"220 mx.example.com ESMTP\r\n250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        let replies = parse_all(&mut ReplyParser::default(), input).unwrap();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].code(), ReplyCode::SERVICE_READY);
        assert_eq!(replies[0].lines(), ["mx.example.com ESMTP"]);
        assert_eq!(
            replies[1].lines(),
            ["mx.example.com", "PIPELINING", "8BITMIME"]
        );
        assert_eq!(parse_bytewise(input).unwrap(), replies);
        for split in 0..input.len() {
            let mut p = ReplyParser::default();
            let mut got = parse_all(&mut p, &input[..split]).unwrap();
            got.extend(parse_all(&mut p, &input[split..]).unwrap());
            assert_eq!(got, replies, "split at {split}");
        }
    }

    #[test]
    fn bare_code_ends_reply_and_bare_lf_is_accepted() {
        let replies = parse_all(&mut ReplyParser::default(), b"250-a\n250\r\n354\n").unwrap();
        assert_eq!(replies[0].lines(), ["a", ""]);
        assert_eq!(replies[1].code().get(), 354);
        assert_eq!(replies[1].lines(), [""]);
    }

    #[test]
    fn stops_after_each_reply() {
        let mut p = ReplyParser::default();
        let (used, reply) = p.parse(b"220 go ahead\r\n250 AUTH EVIL\r\n").unwrap();
        assert_eq!(used, 14);
        assert_eq!(reply.unwrap().text(), "go ahead");
        assert!(p.is_idle());
    }

    #[test]
    fn protocol_errors() {
        type Check = fn(&ProtocolError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"099 x\r\n", |e| {
                matches!(e, ProtocolError::InvalidCode { code: 99 })
            }),
            (b"600 x\r\n", |e| {
                matches!(e, ProtocolError::InvalidCode { code: 600 })
            }),
            (b"2x0 x\r\n", |e| {
                matches!(e, ProtocolError::MalformedReply { .. })
            }),
            (b"25\r\n", |e| {
                matches!(e, ProtocolError::MalformedReply { .. })
            }),
            (b"250x\r\n", |e| {
                matches!(e, ProtocolError::MalformedReply { .. })
            }),
            (b"250-a\r\n251 b\r\n", |e| {
                matches!(e, ProtocolError::MismatchedCodes { .. })
            }),
            (b"250 a\0b\r\n", |e| matches!(e, ProtocolError::NulInReply)),
            (b"250 a\rb\r\n", |e| {
                matches!(e, ProtocolError::MalformedReply { .. })
            }),
        ];
        for (input, check) in cases {
            let err = parse_all(&mut ReplyParser::default(), input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
            let err = parse_bytewise(input).unwrap_err();
            assert!(check(&err), "bytewise {input:?} gave {err:?}");
        }
    }

    #[test]
    fn line_limit_fires_without_buffering_more() {
        let limits = Limits {
            max_line_len: 16,
            ..Limits::default()
        };
        let mut p = ReplyParser::new(limits.clone());
        // 14 bytes + CRLF = 16: fits exactly.
        let (_, r) = p.parse(b"250 0123456789\r\n").unwrap();
        assert!(r.is_some());
        let mut p = ReplyParser::new(limits.clone());
        assert!(matches!(
            p.parse(b"250 01234567890\r\n"),
            Err(ProtocolError::LineTooLong { limit: 16 })
        ));
        // Without any line ending, the error fires once the limit is reached.
        let mut p = ReplyParser::new(limits);
        let mut fed = 0;
        let err = loop {
            match p.parse(b"2") {
                Ok(_) => fed += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ProtocolError::LineTooLong { .. }));
        assert!(fed < 16);
    }

    #[test]
    fn line_count_and_size_limits() {
        let mut p = ReplyParser::new(Limits {
            max_lines: 3,
            ..Limits::default()
        });
        let err = parse_all(&mut p, b"250-a\r\n250-b\r\n250-c\r\n250 d\r\n").unwrap_err();
        assert!(matches!(err, ProtocolError::TooManyLines { limit: 3 }));
        let mut p = ReplyParser::new(Limits {
            max_reply_len: 20,
            ..Limits::default()
        });
        let err = parse_all(&mut p, b"250-aaaaa\r\n250-bbbbb\r\n250 c\r\n").unwrap_err();
        assert!(matches!(err, ProtocolError::ReplyTooLong { limit: 20 }));
    }

    #[test]
    fn enhanced_codes_only_when_enabled_and_matching() {
        let mut p = ReplyParser::default();
        let r = parse_all(&mut p, b"550 5.1.1 No such user\r\n")
            .unwrap()
            .remove(0);
        assert_eq!(r.enhanced_code(), None);
        p.set_enhanced_codes(true);
        let r = parse_all(&mut p, b"550-5.1.1 No such user\r\n550 5.1.1 here\r\n")
            .unwrap()
            .remove(0);
        assert_eq!(r.enhanced_code(), EnhancedCode::new(5, 1, 1));
        assert_eq!(r.message(), "No such user\nhere");
        assert_eq!(r.to_string(), "550 5.1.1 No such user 5.1.1 here");
        let r = parse_all(&mut p, b"450 5.1.1 class mismatch\r\n")
            .unwrap()
            .remove(0);
        assert_eq!(r.enhanced_code(), None);
        let r = parse_all(&mut p, b"250 2.0.0\r\n").unwrap().remove(0);
        assert_eq!(
            r.enhanced_code().map(|c| c.to_string()),
            Some("2.0.0".into())
        );
        let r = parse_all(&mut p, b"250 2.0.0.1 x\r\n").unwrap().remove(0);
        assert_eq!(r.enhanced_code(), None);
        let r = parse_all(&mut p, b"250 2.1000.0 x\r\n").unwrap().remove(0);
        assert_eq!(r.enhanced_code(), None);
    }

    /// Issue 14 item 4: a reply's text reached terminals raw through
    /// `Display` (and every error's). Now `Display` escapes control
    /// characters, and `lines`/`text` stay raw.
    #[test]
    fn display_escapes_control_characters_and_text_stays_raw() {
        let wire = "250-title \x1b]0;pwned\x07 bell\r\n250-clear \x1b[2J del \x7f tab\there\r\n\
                    250 nel \u{85} csi \u{9b}31m rlo \u{202e}txt.exe ls \u{2028}\r\n";
        let r = parse_all(&mut ReplyParser::default(), wire.as_bytes())
            .unwrap()
            .remove(0);
        assert_eq!(
            r.lines(),
            [
                "title \x1b]0;pwned\x07 bell",
                "clear \x1b[2J del \x7f tab\there",
                "nel \u{85} csi \u{9b}31m rlo \u{202e}txt.exe ls \u{2028}"
            ]
        );
        assert!(r.text().contains('\x1b') && r.message().contains('\u{202e}'));
        let shown = r.to_string();
        assert_eq!(
            shown,
            "250 title \\x1b]0;pwned\\x07 bell clear \\x1b[2J del \\x7f tab\there \
             nel \\u{85} csi \\u{9b}31m rlo \\u{202e}txt.exe ls \\u{2028}"
        );
        assert!(
            !shown
                .chars()
                .any(|c| (c.is_control() && c != '\t') || crate::text::is_unicode_control(c)),
            "{shown:?}"
        );
    }

    #[test]
    fn non_utf8_text_is_replaced() {
        let r = parse_all(&mut ReplyParser::default(), b"250 caf\xe9\r\n")
            .unwrap()
            .remove(0);
        assert_eq!(r.text(), "caf\u{fffd}");
    }
}
