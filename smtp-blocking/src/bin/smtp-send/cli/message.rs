//! The composed message (`--subject`, `--header`, `--body`, `--html`,
//! `--attach`, built with `mail-builder`), the headers added to a `--data`
//! message, and the progress line.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mail_builder::MessageBuilder;
use mail_builder::headers::Header as _;
use mail_builder::headers::HeaderType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;

use super::{Failure, Out};

const DEFAULT_BODY: &str = "This is a test message sent by smtp-send, \
the command-line program of the smtp-blocking crate.\n";

/// The subject of the composed message without `--subject`.
const DEFAULT_SUBJECT: &str = "smtp-send test message";

/// The largest header section of a `--data` message read to add headers.
pub(crate) const MAX_DATA_HEADER: usize = 1 << 20;

/// What to compose.
#[derive(Debug)]
pub(crate) struct Compose<'a> {
    /// The envelope sender (the From header unless `--header From:`).
    pub(crate) from: &'a str,
    /// The envelope recipients (the To header unless `--header To:`).
    pub(crate) to: &'a [String],
    /// `--header` values.
    pub(crate) headers: &'a [String],
    /// `--subject`.
    pub(crate) subject: Option<&'a str>,
    /// `--body`.
    pub(crate) body: Option<&'a str>,
    /// `--html FILE`.
    pub(crate) html: Option<&'a Path>,
    /// `--attach FILE[:TYPE]` values.
    pub(crate) attach: &'a [String],
    /// The domain of the Message-ID.
    pub(crate) id_domain: &'a str,
}

/// A `--header` value, checked.
#[derive(Debug)]
struct Extra {
    name: String,
    value: String,
}

/// Header names the composer writes itself and `--header` may not set.
const MIME_HEADERS: [&str; 2] = ["MIME-Version", "Content-"];

/// Checks `--header` values: `Name: value`, the name printable ASCII
/// without spaces or colons, the value without CR, LF or NUL (that would
/// inject headers). Date, Message-ID, From, To and Subject get their usual
/// spelling, so that they replace the composer's own.
fn extra_headers(headers: &[String]) -> Result<Vec<Extra>, Failure> {
    let mut extra = Vec::with_capacity(headers.len());
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(Failure::usage(format!(
                "--header {h:?}: expected 'Name: value'"
            )));
        };
        let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !name_ok {
            return Err(Failure::usage(format!(
                "--header {h:?}: malformed header name"
            )));
        }
        if value.contains(['\r', '\n', '\0']) {
            return Err(Failure::usage(format!(
                "--header {name}: CR, LF or NUL in the value"
            )));
        }
        let name = ["Date", "Message-ID", "From", "To", "Subject"]
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map_or_else(|| name.to_owned(), str::to_owned);
        extra.push(Extra {
            name,
            value: value.trim().to_owned(),
        });
    }
    Ok(extra)
}

/// Builds the message with `mail-builder`: Date, From, To, Subject,
/// Message-ID, the `--header`s, then a text part (`--body`), an HTML part
/// beside it (`--html`, multipart/alternative) and the attachments
/// (multipart/mixed). The text body's line ends become CRLF.
pub(crate) fn compose(c: &Compose<'_>) -> Result<Vec<u8>, Failure> {
    let extra = extra_headers(c.headers)?;
    for e in &extra {
        let lower = e.name.to_ascii_lowercase();
        if MIME_HEADERS
            .iter()
            .any(|m| lower.starts_with(&m.to_ascii_lowercase()))
        {
            return Err(Failure::usage(format!(
                "--header {}: the composed message sets its MIME headers itself \
                 (send a message of your own with --data FILE)",
                e.name
            )));
        }
    }
    let overridden = |n: &str| extra.iter().any(|e| e.name == n);

    let mut builder = MessageBuilder::new();
    if !overridden("Date") {
        builder = builder.date(Date::now());
    }
    // The null sender has no From header of its own.
    if !overridden("From") && !c.from.is_empty() {
        builder = builder.header("From", Raw::new(c.from));
    }
    if !overridden("To") {
        builder = builder.header("To", Raw::new(c.to.join(", ")));
    }
    if !overridden("Subject") {
        builder = builder.subject(c.subject.unwrap_or(DEFAULT_SUBJECT));
    }
    if !overridden("Message-ID") {
        builder = builder.message_id(MessageId::new(message_id(c.id_domain)));
    }
    for e in &extra {
        builder = builder.header(e.name.as_str(), header_value(&e.value));
    }

    let body = c.body.unwrap_or(DEFAULT_BODY);
    let mut text = String::with_capacity(body.len() + 16);
    for line in body.split_inclusive('\n') {
        text.push_str(line.trim_end_matches('\n').trim_end_matches('\r'));
        text.push_str("\r\n");
    }
    builder = builder.text_body(text);
    if let Some(path) = c.html {
        let bytes = std::fs::read(path).map_err(|e| Failure::input(path, e))?;
        let html =
            String::from_utf8(bytes).map_err(|_| Failure::input(path, "the HTML is not UTF-8"))?;
        builder = builder.html_body(html);
    }
    for spec in c.attach {
        let attachment = Attachment::parse(spec)?;
        let bytes =
            std::fs::read(&attachment.path).map_err(|e| Failure::input(&attachment.path, e))?;
        builder = builder.attachment(attachment.content_type, attachment.filename, bytes);
    }
    builder
        .write_to_vec()
        .map_err(|e| Failure::usage(format!("composing the message: {e}")))
}

/// A header value as written: as is when ASCII, else RFC 2047 encoded.
fn header_value(value: &str) -> HeaderType<'_> {
    if value.is_ascii() {
        Raw::new(value).into()
    } else {
        Text::new(value).into()
    }
}

/// One `--attach FILE[:TYPE]`.
#[derive(Debug)]
struct Attachment {
    path: PathBuf,
    filename: String,
    content_type: String,
}

impl Attachment {
    /// `FILE:type/subtype` names the type; otherwise it comes from the
    /// extension ([`content_type_for`]). A file whose name itself ends in
    /// `:x/y` needs its type given explicitly.
    fn parse(spec: &str) -> Result<Self, Failure> {
        let (path, content_type) = match spec.rsplit_once(':') {
            Some((path, ty)) if !path.is_empty() && is_mime_type(ty) => {
                (PathBuf::from(path), ty.to_ascii_lowercase())
            }
            _ => {
                let path = PathBuf::from(spec);
                let ty = content_type_for(&path).to_owned();
                (path, ty)
            }
        };
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Failure::usage(format!("--attach {spec:?}: not a file name")))?;
        Ok(Self {
            path,
            filename,
            content_type,
        })
    }
}

/// `type/subtype`, both RFC 2045 tokens.
fn is_mime_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    s.split_once('/')
        .is_some_and(|(ty, sub)| token(ty) && token(sub))
}

/// The MIME type for a file name's extension; `application/octet-stream`
/// for the unknown.
pub(crate) fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "text" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "md" => "text/markdown",
        "ics" => "text/calendar",
        "xml" => "application/xml",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "eml" => "message/rfc822",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        _ => "application/octet-stream",
    }
}

/// Headers to put before a `--data` message's own: Date and Message-ID
/// when its header section has none, and the `--header`s (which replace
/// the message's headers of the same name).
///
/// Reads the message's header section (its header lines up to the empty
/// line, at most [`MAX_DATA_HEADER`] bytes) from `reader` and returns the
/// new header section to send instead; the rest of the message follows
/// unchanged. A message that starts with a line that is no header has no
/// header section: it gets one, and the empty line after it.
pub(crate) fn data_headers(
    reader: &mut dyn Read,
    headers: &[String],
    id_domain: &str,
    path: &Path,
) -> Result<DataHead, Failure> {
    let extra = extra_headers(headers)?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    // Where the section ends, and whether an empty line ends it.
    let mut at = 0;
    let mut eof = false;
    let (end, blank) = loop {
        match head[at..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                let line = &head[at..=at + n];
                if line == b"\n" || line == b"\r\n" {
                    break (at + n + 1, true);
                }
                if !is_header_line(line, at > 0) {
                    break (at, false);
                }
                at += n + 1;
                continue;
            }
            None if eof => {
                // The last line, without a line end.
                let last = &head[at..];
                let end = if last.is_empty() || is_header_line(last, at > 0) {
                    head.len()
                } else {
                    at
                };
                break (end, false);
            }
            None => {}
        }
        if head.len() > MAX_DATA_HEADER {
            return Err(Failure::input(
                path,
                "a header section of more than 1 MiB (no empty line after it)",
            ));
        }
        let n = reader
            .read(&mut chunk)
            .map_err(|e| Failure::input(path, e))?;
        eof = n == 0;
        head.extend_from_slice(&chunk[..n]);
    };
    let rest = head.split_off(end);
    let section = head;
    let lines = header_lines(&section);
    let has = |name: &str| {
        lines
            .iter()
            .any(|(n, _)| n.is_some_and(|n| n.eq_ignore_ascii_case(name)))
            || extra.iter().any(|e| e.name.eq_ignore_ascii_case(name))
    };
    let mut out = Vec::with_capacity(section.len() + 256);
    if !has("Date") {
        write_header(&mut out, "Date", &Date::now().to_rfc822());
    }
    if !has("Message-ID") {
        let id = format!("<{}>", message_id(id_domain));
        write_header(&mut out, "Message-ID", &id);
    }
    for e in &extra {
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(b": ");
        header_value(&e.value).write_header(&mut out, e.name.len() + 2);
    }
    // The message's own header lines, less those a --header replaces
    // (with their continuation lines).
    let replaced = |n: &str| extra.iter().any(|e| e.name.eq_ignore_ascii_case(n));
    let mut dropping = false;
    for (name, line) in &lines {
        if let Some(name) = name {
            dropping = replaced(name);
        } else if line.iter().all(|b| b.is_ascii_whitespace()) {
            dropping = false;
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    if !section.is_empty() && !section.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    // A body follows a section that no empty line ended: add one.
    if !blank && !rest.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    Ok(DataHead {
        head: out,
        rest,
        replaced: section.len(),
    })
}

/// A `--data` message's new header section.
#[derive(Debug)]
pub(crate) struct DataHead {
    /// The header section to send.
    pub(crate) head: Vec<u8>,
    /// What was read past the message's own header section.
    pub(crate) rest: Vec<u8>,
    /// The length of the message's own header section, which `head`
    /// replaces.
    pub(crate) replaced: usize,
}

/// Whether `line` is a header line (`Name:` with a printable ASCII name)
/// or, after one (`continued`), a continuation line.
fn is_header_line(line: &[u8], continued: bool) -> bool {
    if continued && line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return true;
    }
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(colon) => line[..colon]
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b':'),
    }
}

fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The header section's lines (with their line ends), each with its
/// header name, or `None` for a continuation line or the empty line.
fn header_lines(section: &[u8]) -> Vec<(Option<&str>, &[u8])> {
    section
        .split_inclusive(|&b| b == b'\n')
        .map(|line| {
            let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            let name = if folded {
                None
            } else {
                line.iter()
                    .position(|&b| b == b':')
                    .and_then(|at| std::str::from_utf8(&line[..at]).ok())
                    .map(str::trim)
            };
            (name, line)
        })
        .collect()
}

/// `time.pid.counter@domain` (without the angle brackets): unique per
/// process run and per message.
fn message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}.{}.{n}@{domain}", std::process::id())
}

/// Wraps the message reader and, for a message of at least
/// [`Progress::THRESHOLD`] bytes, keeps a `\r`-refreshed progress line on
/// stderr (only used when stderr is a terminal).
pub(crate) struct Progress<R> {
    inner: R,
    out: Option<Out>,
    total: Option<u64>,
    sent: u64,
    last: Option<Instant>,
    shown: bool,
}

impl<R: Read> Progress<R> {
    /// Messages smaller than this get no progress line.
    pub(crate) const THRESHOLD: u64 = 1 << 20;
    const EVERY: Duration = Duration::from_millis(200);

    /// `out` is `None` when no progress should be shown.
    pub(crate) fn new(inner: R, total: Option<u64>, out: Option<Out>) -> Self {
        Self {
            inner,
            out,
            total,
            sent: 0,
            last: None,
            shown: false,
        }
    }

    fn show(&mut self, done: bool) {
        let Some(out) = &self.out else { return };
        if self.sent < Self::THRESHOLD && !self.shown {
            return;
        }
        let now = Instant::now();
        if !done
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let mib = |n: u64| n as f64 / f64::from(1 << 20);
        let line = match self.total {
            Some(total) if total > 0 => format!(
                "\rsending message: {:.1} of {:.1} MiB ({}%)",
                mib(self.sent),
                mib(total),
                self.sent.saturating_mul(100) / total
            ),
            _ => format!("\rsending message: {:.1} MiB", mib(self.sent)),
        };
        out.write_str(&line);
        if done {
            out.write_str("\n");
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        self.show(n == 0);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The new header section and what follows it, as text.
    fn data(message: &[u8], headers: &[&str]) -> (String, String) {
        let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        let mut reader = message;
        let d = data_headers(&mut reader, &headers, "example.com", Path::new("m"));
        let d = d.map_err(|f| f.message);
        let d = d.as_ref().map(|d| {
            let rest = [&d.rest[..], reader].concat();
            (
                String::from_utf8_lossy(&d.head).into_owned(),
                String::from_utf8_lossy(&rest).into_owned(),
            )
        });
        d.unwrap_or_else(|e| (format!("error: {e}"), String::new()))
    }

    #[test]
    fn data_headers_added_when_missing_and_replaced() {
        let (head, rest) = data(b"Subject: a\r\n b\r\nX: 1\r\n\r\nbody\r\n", &[]);
        assert!(head.starts_with("Date: "), "{head}");
        assert!(head.contains("\r\nMessage-ID: <"), "{head}");
        assert!(
            head.ends_with("\r\nSubject: a\r\n b\r\nX: 1\r\n\r\n"),
            "{head}"
        );
        assert_eq!(rest, "body\r\n");

        let m = b"Date: x\r\nMessage-ID: <y@z>\r\nSubject: a\r\n b\r\n\r\nbody\r\n";
        let (head, rest) = data(m, &["subject: new"]);
        assert_eq!(head, "Subject: new\r\nDate: x\r\nMessage-ID: <y@z>\r\n\r\n");
        assert_eq!(rest, "body\r\n");

        // No header section: one is made, with the empty line after it.
        let (head, rest) = data(b"just a body\n", &[]);
        assert!(head.ends_with(">\r\n\r\n"), "{head}");
        assert_eq!(rest, "just a body\n");
        // Headers only, the last without a line end.
        let (head, rest) = data(b"Date: x\nMessage-ID: <y@z>", &[]);
        assert_eq!(head, "Date: x\nMessage-ID: <y@z>\r\n");
        assert_eq!(rest, "");
    }

    #[test]
    fn attachment_types() {
        let a = Attachment::parse("dir/report.PDF").map_err(|f| f.message);
        assert_eq!(a.map(|a| a.content_type).as_deref(), Ok("application/pdf"));
        let a = Attachment::parse("notes:text/x-notes").map_err(|f| f.message);
        let a = a.map(|a| (a.path, a.content_type));
        assert_eq!(a, Ok((PathBuf::from("notes"), "text/x-notes".to_owned())));
        let a = Attachment::parse("C:\\file.bin").map_err(|f| f.message);
        let a = a.map(|a| a.content_type);
        assert_eq!(a.as_deref(), Ok("application/octet-stream"));
    }
}
