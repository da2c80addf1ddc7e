//! `reply` and `ehlo`: the reply parser and EHLO capability parsing.

use smtp_sansio::{
    Capabilities, Limits, ParsedReply, ProtocolError, Reply, ReplyCode, ReplyParser,
};

use crate::alloc::Meter;
use crate::commands::is_unicode_control;
use crate::input::{Chunks, header};

/// Header: `[limits, chunk sizes × 4]`, then the server's bytes.
///
/// The stream is parsed whole, then in the chunks the header names (with the
/// heap measured), then one byte at a time: the replies and the first error
/// must be the same every time, each reply must be well-formed, and the heap
/// must never grow past what the limits allow.
pub fn reply(data: &[u8]) {
    let (h, stream) = header::<5>(data);
    let limits = limits_from(h[0]);
    let enhanced = h[0] & 0x80 != 0;

    let (whole, whole_err) = parse_all(&limits, enhanced, Chunks::new(stream, &[]));
    for r in &whole {
        check_reply(r, &limits, enhanced);
    }

    // Chunked, measured, each reply compared and dropped at once so only
    // the parser's own buffers are live.
    let bound = memory_bound(&limits);
    let mut parser = ReplyParser::new(limits.clone());
    parser.set_enhanced_codes(enhanced);
    let mut seen = 0;
    let mut err = None;
    let meter = Meter::start();
    'chunks: for chunk in Chunks::new(stream, &h[1..]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let result = parser.parse(rest);
            let peak = meter.peak_growth();
            assert!(
                peak <= bound,
                "reply parser used {peak} bytes of heap, more than {bound} for {limits:?}"
            );
            match result {
                Ok((used, reply)) => {
                    check_progress(used, rest.len(), reply.is_some());
                    rest = &rest[used..];
                    if let Some(r) = reply {
                        assert_eq!(Some(&r), whole.get(seen), "chunking changed reply #{seen}");
                        seen += 1;
                    }
                }
                Err(e) => {
                    err = Some(e);
                    break 'chunks;
                }
            }
        }
    }
    drop(parser);
    assert_eq!(seen, whole.len(), "chunking changed the number of replies");
    assert_eq!(err, whole_err, "chunking changed the error");

    // The borrowed path, on the same chunks: the same bytes used, the same
    // replies (a view equal to the owned reply once copied out), the same
    // error; a view only for a reply that arrived whole while idle.
    let mut parser = ReplyParser::new(limits.clone());
    parser.set_enhanced_codes(enhanced);
    let (mut seen, mut err) = (0, None);
    'borrowed: for chunk in Chunks::new(stream, &h[1..]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let idle = parser.is_idle();
            match parser.parse_borrowed(rest) {
                Ok((used, reply)) => {
                    check_progress(used, rest.len(), reply.is_some());
                    if let Some(reply) = reply {
                        if let ParsedReply::Borrowed(view) = &reply {
                            assert!(idle, "a view of a reply that began in an earlier chunk");
                            assert_eq!(view.wire(), &rest[..used]);
                            assert_eq!(view.line_count(), view.lines().count());
                        }
                        let r = reply.into_owned();
                        assert_eq!(Some(&r), whole.get(seen), "borrowed reply #{seen}");
                        seen += 1;
                    }
                    rest = &rest[used..];
                }
                Err(e) => {
                    err = Some(e);
                    break 'borrowed;
                }
            }
        }
    }
    assert_eq!(
        seen,
        whole.len(),
        "the borrowed path changed the number of replies"
    );
    assert_eq!(err, whole_err, "the borrowed path changed the error");

    if stream.len() <= 2048 {
        let (bytewise, bytewise_err) = parse_all(&limits, enhanced, Chunks::new(stream, &[1]));
        assert_eq!(bytewise, whole, "bytewise parsing changed the replies");
        assert_eq!(
            bytewise_err, whole_err,
            "bytewise parsing changed the error"
        );
    }
}

/// Limits from one header byte: the defaults, or small ones (some zero) so
/// every limit is reached often.
fn limits_from(b: u8) -> Limits {
    let mut limits = Limits::default();
    if b & 0x40 != 0 {
        limits.max_line_len = usize::from(b & 0x0f) * 9;
        limits.max_lines = usize::from(b >> 4 & 0x03) * 2;
        limits.max_reply_len = usize::from(b & 0x0f) * 17 + usize::from(b >> 4 & 0x03) * 5;
    }
    limits
}

/// The most heap a parser may hold under `limits`: its partial line (a
/// `Vec` may have twice the capacity it needs), the lines of a partial reply
/// (invalid UTF-8 expands threefold into U+FFFD), and the slack of the
/// containers.
fn memory_bound(limits: &Limits) -> usize {
    4 * limits.max_line_len + 4 * limits.max_reply_len + 64 * limits.max_lines + 4096
}

fn parse_all(
    limits: &Limits,
    enhanced: bool,
    chunks: Chunks<'_>,
) -> (Vec<Reply>, Option<ProtocolError>) {
    let mut parser = ReplyParser::new(limits.clone());
    parser.set_enhanced_codes(enhanced);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        while !rest.is_empty() {
            match parser.parse(rest) {
                Ok((used, reply)) => {
                    check_progress(used, rest.len(), reply.is_some());
                    rest = &rest[used..];
                    out.extend(reply);
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// `parse` always makes progress, and uses everything unless it stopped
/// after a reply.
fn check_progress(used: usize, available: usize, got_reply: bool) {
    assert!(
        used >= 1 && used <= available,
        "parse used {used} of {available} bytes"
    );
    assert!(
        got_reply || used == available,
        "parse stopped at {used} of {available} bytes without a reply"
    );
}

/// What every parsed reply must satisfy.
pub(crate) fn check_reply(r: &Reply, limits: &Limits, enhanced: bool) {
    let code = r.code().get();
    assert!((200..=599).contains(&code), "reply code {code}");
    assert!(!r.lines().is_empty(), "a reply without lines");
    assert!(
        r.lines().len() <= limits.max_lines,
        "{} lines, limit {}",
        r.lines().len(),
        limits.max_lines
    );
    for line in r.lines() {
        assert!(
            !line.contains(['\r', '\n', '\0']),
            "reply line with CR, LF or NUL: {line:?}"
        );
    }
    let classes = [
        r.is_positive_completion(),
        r.is_positive_intermediate(),
        r.is_transient(),
        r.is_permanent(),
    ];
    assert_eq!(classes.iter().filter(|&&c| c).count(), 1, "{r:?}");
    if let Some(e) = r.enhanced_code() {
        assert!(enhanced, "enhanced code detected while off: {r:?}");
        assert_eq!(e.class(), r.code().class(), "{r:?}");
        assert!(e.subject() <= 999 && e.detail() <= 999, "{r:?}");
    }
    // Display escapes every control character (C0 but tab, DEL, C1, the
    // Unicode line and format controls); the raw text stays in `lines`.
    let shown = r.to_string();
    assert!(
        !shown
            .chars()
            .any(|c| (c.is_control() && c != '\t') || is_unicode_control(c)),
        "a control character in a reply's Display: {shown:?}"
    );
    assert_eq!(r.text(), r.lines().join("\n"));
    if !r
        .text()
        .chars()
        .any(|c| c.is_control() || is_unicode_control(c))
    {
        let raw = format!("{} {}", r.code(), r.lines().join(" "));
        assert_eq!(
            shown, raw,
            "Display changed text without a control character"
        );
    }
    let _ = (r.message(), format!("{r:?}"));
}

/// The input's lines (LF-separated, a CR before the LF dropped) are the
/// lines of an EHLO reply; the capabilities parsed from it must agree with
/// themselves. The same lines sent as a wire reply through the parser must
/// give the same capabilities.
pub fn ehlo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect();
    let reply = Reply::new(ReplyCode::OK, lines.clone());
    let caps = Capabilities::from_ehlo(&reply);
    check_capabilities(&caps, &reply);
    for line in &lines {
        // Probing with arbitrary names never panics.
        let _ = (caps.extension(line), caps.supports_auth(line));
    }

    let mut wire = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        wire.extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
    }
    let mut parser = ReplyParser::default();
    if let Ok((used, Some(parsed))) = parser.parse(&wire) {
        assert_eq!(used, wire.len());
        assert_eq!(parsed.lines(), reply.lines());
        assert_eq!(Capabilities::from_ehlo(&parsed), caps);
    }
}

/// Self-consistency of parsed capabilities.
pub(crate) fn check_capabilities(caps: &Capabilities, reply: &Reply) {
    let first = reply
        .lines()
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(!caps.domain().contains(' '), "{caps:?}");
    let rebuilt = if caps.greeting().is_empty() {
        caps.domain().to_owned()
    } else {
        format!("{} {}", caps.domain(), caps.greeting())
    };
    assert!(
        first == rebuilt || first == format!("{rebuilt} "),
        "domain {:?} + greeting {:?} do not make the first line {first:?}",
        caps.domain(),
        caps.greeting()
    );

    let mut keywords: Vec<&str> = Vec::new();
    for (keyword, params) in caps.iter() {
        let mut bytes = keyword.bytes();
        assert!(
            bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "invalid keyword {keyword:?}"
        );
        assert_eq!(keyword, keyword.to_ascii_uppercase());
        assert!(!keywords.contains(&keyword), "keyword {keyword} twice");
        keywords.push(keyword);
        assert_eq!(caps.extension(keyword), Some(params));
        assert_eq!(caps.extension(&keyword.to_ascii_lowercase()), Some(params));
        assert!(caps.supports(keyword));
    }

    // Bounded whatever the server sends (issue 14 item 5): at most 256
    // lines read after the first, at most 64 AUTH names.
    assert!(
        caps.iter().count() <= 256,
        "{} extensions",
        caps.iter().count()
    );
    let mechanisms = caps.auth_mechanisms();
    assert!(mechanisms.len() <= 64, "{} mechanisms", mechanisms.len());
    // An independent reading of the AUTH lines: under the bound nothing is
    // dropped, every listed name is kept once, in order.
    let (mut listed, mut distinct) = (0, Vec::<String>::new());
    for l in reply.lines().iter().skip(1).take(256) {
        let l = l.trim_end();
        let params = match l.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("AUTH=") => &l[5..],
            _ => match l.split_once(' ') {
                Some((k, p)) if k.eq_ignore_ascii_case("AUTH") => p,
                _ => continue,
            },
        };
        for m in params.split_ascii_whitespace() {
            listed += 1;
            let m = m.to_ascii_uppercase();
            if !distinct.contains(&m) {
                distinct.push(m);
            }
        }
    }
    if listed <= 64 {
        assert_eq!(mechanisms, distinct.as_slice(), "{caps:?}");
    } else {
        assert!(mechanisms.iter().all(|m| distinct.contains(m)), "{caps:?}");
    }
    for (i, m) in mechanisms.iter().enumerate() {
        assert!(!m.is_empty(), "empty mechanism");
        assert_eq!(*m, m.to_ascii_uppercase());
        assert!(!m.bytes().any(|b| b.is_ascii_whitespace()), "{m:?}");
        assert!(!mechanisms[..i].contains(m), "mechanism {m} twice");
        assert!(caps.supports_auth(&m.to_ascii_lowercase()));
    }
    if !mechanisms.is_empty() {
        assert!(caps.supports("AUTH"), "mechanisms without AUTH: {caps:?}");
    }
    if let Some(n) = caps.max_message_size() {
        assert!(n > 0 && caps.size());
    }
    let named = [
        (caps.size(), "SIZE"),
        (caps.pipelining(), "PIPELINING"),
        (caps.eight_bit_mime(), "8BITMIME"),
        (caps.smtputf8(), "SMTPUTF8"),
        (caps.starttls(), "STARTTLS"),
        (caps.chunking(), "CHUNKING"),
        (caps.binary_mime(), "BINARYMIME"),
        (caps.dsn(), "DSN"),
        (caps.enhanced_status_codes(), "ENHANCEDSTATUSCODES"),
        (caps.requiretls(), "REQUIRETLS"),
        (caps.mt_priority(), "MT-PRIORITY"),
        (caps.deliver_by(), "DELIVERBY"),
    ];
    for (got, name) in named {
        assert_eq!(got, keywords.contains(&name), "{name}: {caps:?}");
    }
}
