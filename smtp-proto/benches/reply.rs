//! Reply parsing and EHLO capability parsing.
//!
//! ```sh
//! cargo bench -p smtp-sansio --bench reply
//! ```
//!
//! Groups:
//! - `reply/ehlo` and `reply/short`: [`ReplyParser`] over a corpus of real
//!   replies, fed whole (owned replies, and `parse_borrowed`'s allocation-free
//!   views) and in 7-byte chunks (every CRLF split somewhere),
//!   against the baseline `memchr_line_split` (a `memchr` newline scan of the
//!   same bytes that touches every line, the floor any parser pays).
//!   `mirror_memchr` and `mirror_position` are copies of the parser's
//!   algorithm in this file, one finding line ends with `memchr`, one with
//!   `iter().position`: they answer whether the `memchr` dependency pays.
//!   `proposed_tuned` and `proposed_one_buffer` are the mirror with the
//!   changes proposed from the profile (see `mirror::TUNED`,
//!   `mirror::ONE_BUFFER`), to measure them before touching the parser.
//! - `capabilities`: [`Capabilities::from_ehlo`] on the parsed EHLO corpus.
//! - `capabilities_64k`: the largest EHLO reply the default limits accept
//!   (64 KiB), as an ordinary reply (127 extension lines) and as the
//!   hostile one of issue 14 item 5 (AUTH lines with 16,336 distinct
//!   mechanism names), each as `from_ehlo` on the parsed reply and as the
//!   session pays it (`ReplyParser` then `from_ehlo`). The hostile case
//!   must stay within twice the ordinary one.
//! - `enhanced_code`: the enhanced-status-code detection run on every reply
//!   once the server advertised ENHANCEDSTATUSCODES, as it is and as
//!   proposed (a byte-wise parser).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_sansio::{Capabilities, Reply, ReplyParser};

#[path = "common/mod.rs"]
mod common;

use common::{
    EHLO_REPLIES, SHORT_REPLIES, concat, ehlo_64k_many_mechanisms, ehlo_64k_ordinary, reply_count,
};

/// How many times the corpus is repeated in one input: big enough that the
/// per-iteration overhead vanishes, small enough to stay in L2.
const REPEAT: usize = 16;

fn parse_whole(parser: &mut ReplyParser, mut input: &[u8]) -> usize {
    let mut replies = 0;
    while !input.is_empty() {
        let (used, reply) = parser.parse(input).expect("the corpus is valid");
        input = &input[used..];
        if let Some(reply) = reply {
            black_box(&reply);
            replies += 1;
        }
    }
    replies
}

/// The borrowed path: a view for each reply that arrived whole, nothing
/// allocated (the corpus arrives whole).
fn parse_borrowed_whole(parser: &mut ReplyParser, mut input: &[u8]) -> usize {
    let mut replies = 0;
    while !input.is_empty() {
        let (used, reply) = parser.parse_borrowed(input).expect("the corpus is valid");
        input = &input[used..];
        if let Some(reply) = reply {
            black_box(&reply);
            replies += 1;
        }
    }
    replies
}

fn parse_chunked(parser: &mut ReplyParser, input: &[u8], chunk: usize) -> usize {
    input
        .chunks(chunk)
        .map(|piece| parse_whole(parser, piece))
        .sum()
}

/// The baseline: find every line end with `memchr` and look at the line.
fn memchr_line_split(input: &[u8]) -> usize {
    let mut start = 0;
    let mut lines = 0;
    for end in memchr::memchr_iter(b'\n', input) {
        black_box(&input[start..end]);
        start = end + 1;
        lines += 1;
    }
    lines
}

fn bench_corpus(c: &mut Criterion, name: &str, corpus: &[&[u8]]) {
    let input = concat(corpus, REPEAT);
    let expected = reply_count(corpus, REPEAT);
    // Check every variant once, outside the measurement.
    assert_eq!(parse_whole(&mut ReplyParser::default(), &input), expected);
    assert_eq!(
        parse_borrowed_whole(&mut ReplyParser::default(), &input),
        expected
    );
    assert_eq!(
        parse_chunked(&mut ReplyParser::default(), &input, 7),
        expected
    );
    assert_eq!(
        mirror::parse_all::<{ mirror::CURRENT }>(&input, mirror::find_memchr),
        expected
    );
    assert_eq!(
        mirror::parse_all::<{ mirror::CURRENT }>(&input, mirror::find_position),
        expected
    );

    let mut group = c.benchmark_group(format!("reply/{name}"));
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("parser_whole", |b| {
        let mut parser = ReplyParser::default();
        b.iter(|| parse_whole(&mut parser, black_box(&input)));
    });
    group.bench_function("parser_borrowed_whole", |b| {
        let mut parser = ReplyParser::default();
        b.iter(|| parse_borrowed_whole(&mut parser, black_box(&input)));
    });
    group.bench_function("parser_chunks_7", |b| {
        let mut parser = ReplyParser::default();
        b.iter(|| parse_chunked(&mut parser, black_box(&input), 7));
    });
    group.bench_function("mirror_memchr", |b| {
        b.iter(|| mirror::parse_all::<{ mirror::CURRENT }>(black_box(&input), mirror::find_memchr));
    });
    group.bench_function("mirror_position", |b| {
        b.iter(|| {
            mirror::parse_all::<{ mirror::CURRENT }>(black_box(&input), mirror::find_position)
        });
    });
    group.bench_function("proposed_tuned", |b| {
        b.iter(|| mirror::parse_all::<{ mirror::TUNED }>(black_box(&input), mirror::find_memchr));
    });
    group.bench_function("proposed_one_buffer", |b| {
        b.iter(|| {
            mirror::parse_all::<{ mirror::ONE_BUFFER }>(black_box(&input), mirror::find_memchr)
        });
    });
    group.bench_function("baseline_memchr_line_split", |b| {
        b.iter(|| memchr_line_split(black_box(&input)));
    });
    group.finish();
}

fn replies(c: &mut Criterion) {
    bench_corpus(c, "ehlo", EHLO_REPLIES);
    bench_corpus(c, "short", SHORT_REPLIES);
}

fn capabilities(c: &mut Criterion) {
    let parsed: Vec<Reply> = EHLO_REPLIES
        .iter()
        .map(|r| {
            let (_, reply) = ReplyParser::default().parse(r).expect("valid");
            reply.expect("one whole reply")
        })
        .collect();
    let mut group = c.benchmark_group("capabilities");
    group.throughput(Throughput::Elements(parsed.len() as u64));
    group.bench_function("from_ehlo", |b| {
        b.iter(|| {
            for reply in &parsed {
                black_box(Capabilities::from_ehlo(black_box(reply)));
            }
        });
    });
    group.bench_function("from_ehlo_and_query", |b| {
        b.iter(|| {
            for reply in &parsed {
                let caps = Capabilities::from_ehlo(black_box(reply));
                black_box((
                    caps.pipelining(),
                    caps.max_message_size(),
                    caps.supports_auth("PLAIN"),
                    caps.chunking(),
                ));
            }
        });
    });
    group.finish();
}

fn parse_one(wire: &[u8]) -> Reply {
    let (used, reply) = ReplyParser::default()
        .parse(wire)
        .expect("within the default limits");
    assert_eq!(used, wire.len());
    reply.expect("one whole reply")
}

fn capabilities_64k(c: &mut Criterion) {
    let mut group = c.benchmark_group("capabilities_64k");
    for (name, wire) in [
        ("ordinary", ehlo_64k_ordinary()),
        ("many_mechanisms", ehlo_64k_many_mechanisms()),
    ] {
        let reply = parse_one(&wire);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(format!("from_ehlo/{name}"), |b| {
            b.iter(|| black_box(Capabilities::from_ehlo(black_box(&reply))));
        });
        group.bench_function(format!("parse_and_from_ehlo/{name}"), |b| {
            b.iter(|| black_box(Capabilities::from_ehlo(&parse_one(black_box(&wire)))));
        });
    }
    group.finish();
}

/// A copy of `ReplyParser`'s algorithm (line buffering, CR/NUL checks, code
/// parsing, one `String` per line, limits), parameterised by the function
/// that finds the next LF. Only the line search differs between the two
/// instantiations, so their ratio is what `memchr` buys the parser.
mod mirror {
    use std::hint::black_box;

    const MAX_LINE: usize = 4096;
    const MAX_LINES: usize = 128;
    const MAX_REPLY: usize = 64 * 1024;

    pub(crate) fn find_memchr(haystack: &[u8]) -> Option<usize> {
        memchr::memchr(b'\n', haystack)
    }

    pub(crate) fn find_position(haystack: &[u8]) -> Option<usize> {
        haystack.iter().position(|&b| b == b'\n')
    }

    /// The parser as it is.
    pub(crate) const CURRENT: u8 = 0;
    /// Proposed: one `memchr2` pass for NUL and CR instead of two
    /// `contains`, and `str::from_utf8` (ASCII fast path) before the lossy
    /// conversion.
    pub(crate) const TUNED: u8 = 1;
    /// `TUNED`, and the reply's text in one `String` with line offsets
    /// instead of one `String` per line (an API change: `lines()` would
    /// yield `&str`).
    pub(crate) const ONE_BUFFER: u8 = 2;

    struct Parser {
        partial: Vec<u8>,
        code: u16,
        lines: Vec<String>,
        text: String,
        ends: Vec<u32>,
        len: usize,
    }

    /// A parsed reply: the code and either its lines or its text and the
    /// end offset of each line.
    type Parsed = (u16, Vec<String>, String, Vec<u32>);

    pub(crate) fn parse_all<const MODE: u8>(
        input: &[u8],
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> usize {
        let mut p = Parser {
            partial: Vec::new(),
            code: 0,
            lines: Vec::new(),
            text: String::new(),
            ends: Vec::new(),
            len: 0,
        };
        let mut replies = 0;
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let Some(nl) = find(rest) else {
                assert!(p.partial.len() + rest.len() < MAX_LINE);
                p.partial.extend_from_slice(rest);
                break;
            };
            pos += nl + 1;
            assert!(p.partial.len() + nl < MAX_LINE);
            let done = if p.partial.is_empty() {
                p.line::<MODE>(&rest[..nl])
            } else {
                let mut line = std::mem::take(&mut p.partial);
                line.extend_from_slice(&rest[..nl]);
                let done = p.line::<MODE>(&line);
                line.clear();
                p.partial = line;
                done
            };
            if let Some(reply) = done {
                black_box(&reply);
                replies += 1;
            }
        }
        replies
    }

    impl Parser {
        fn line<const MODE: u8>(&mut self, line: &[u8]) -> Option<Parsed> {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if MODE == CURRENT {
                assert!(!line.contains(&0) && !line.contains(&b'\r'));
            } else {
                assert!(memchr::memchr2(0, b'\r', line).is_none());
            }
            let digits = &line[..3];
            assert!(digits.iter().all(u8::is_ascii_digit));
            let code = digits
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            let last = matches!(line.get(3), None | Some(b' '));
            let bytes = line.get(4..).unwrap_or_default();
            if self.lines.is_empty() && self.ends.is_empty() {
                self.code = code;
            }
            assert_eq!(self.code, code);
            self.len += line.len() + 2;
            assert!(self.len <= MAX_REPLY && self.lines.len() + self.ends.len() < MAX_LINES);
            match MODE {
                CURRENT => self.lines.push(String::from_utf8_lossy(bytes).into_owned()),
                TUNED => self.lines.push(match std::str::from_utf8(bytes) {
                    Ok(s) => s.to_owned(),
                    Err(_) => String::from_utf8_lossy(bytes).into_owned(),
                }),
                _ => {
                    if self.text.capacity() == 0 {
                        // Most replies are one line: size for it, grow
                        // for EHLO.
                        self.text.reserve(bytes.len());
                    }
                    match std::str::from_utf8(bytes) {
                        Ok(s) => self.text.push_str(s),
                        Err(_) => self.text.push_str(&String::from_utf8_lossy(bytes)),
                    }
                    self.ends.push(self.text.len() as u32);
                }
            }
            if !last {
                return None;
            }
            self.len = 0;
            Some((
                self.code,
                std::mem::take(&mut self.lines),
                std::mem::take(&mut self.text),
                std::mem::take(&mut self.ends),
            ))
        }
    }

    /// `EnhancedCode::parse_prefix` as it is: `str::find`, `split('.')` and
    /// `str::parse` for each part.
    pub(crate) fn enhanced_current(text: &str) -> Option<((u8, u16, u16), &str)> {
        fn digits(s: &str, max_len: usize) -> Option<u16> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        let end = text.find(' ').unwrap_or(text.len());
        let mut parts = text[..end].split('.');
        let class = digits(parts.next()?, 1)?;
        let subject = digits(parts.next()?, 3)?;
        let detail = digits(parts.next()?, 3)?;
        if parts.next().is_some() || ![2, 4, 5].contains(&class) {
            return None;
        }
        Some((
            (class as u8, subject, detail),
            text[end..].trim_start_matches(' '),
        ))
    }

    /// Proposed: one pass over the bytes; a reply that does not start with
    /// `2.`, `4.` or `5.` (354's text, most EHLO lines) is refused at the
    /// first byte.
    pub(crate) fn enhanced_bytewise(text: &str) -> Option<((u8, u16, u16), &str)> {
        fn digits(b: &[u8], start: usize) -> Option<(u16, usize)> {
            let mut value = 0u16;
            let mut i = start;
            while i < b.len() && i - start < 3 && b[i].is_ascii_digit() {
                value = value * 10 + u16::from(b[i] - b'0');
                i += 1;
            }
            (i > start).then_some((value, i))
        }
        let b = text.as_bytes();
        let class = match b.first()? {
            c @ (b'2' | b'4' | b'5') => c - b'0',
            _ => return None,
        };
        if b.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, i) = digits(b, 2)?;
        if b.get(i) != Some(&b'.') {
            return None;
        }
        let (detail, j) = digits(b, i + 1)?;
        if !matches!(b.get(j), None | Some(b' ')) {
            return None;
        }
        Some(((class, subject, detail), text[j..].trim_start_matches(' ')))
    }
}

/// The first lines of the replies a transaction gets once the server
/// advertised ENHANCEDSTATUSCODES (the session then looks for a code in
/// every reply).
const FIRST_LINES: &[&str] = &[
    "2.1.0 Ok",
    "2.1.5 Ok",
    "End data with <CR><LF>.<CR><LF>",
    "2.0.0 Ok: queued as 4Z5Xk71yQbz9vB6",
    "5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
    "smtp-sink",
    "4.7.1 Service unavailable - try again later",
    "2.0.0 Bye",
];

fn enhanced_codes(c: &mut Criterion) {
    let odd = [
        "2.1.0",
        "2.1.0.1 x",
        "2.1000.0 x",
        "22.1.0 x",
        "3.1.0 x",
        "2.1.0x",
        "2..0 x",
        "",
    ];
    for text in FIRST_LINES.iter().chain(&odd) {
        assert_eq!(
            mirror::enhanced_current(text),
            mirror::enhanced_bytewise(text),
            "{text:?}"
        );
    }
    let mut group = c.benchmark_group("enhanced_code");
    group.throughput(Throughput::Elements(FIRST_LINES.len() as u64));
    group.bench_function("parse_prefix_current", |b| {
        b.iter(|| {
            for text in FIRST_LINES {
                black_box(mirror::enhanced_current(black_box(text)));
            }
        });
    });
    group.bench_function("proposed_bytewise", |b| {
        b.iter(|| {
            for text in FIRST_LINES {
                black_box(mirror::enhanced_bytewise(black_box(text)));
            }
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    replies,
    capabilities,
    capabilities_64k,
    enhanced_codes
);
criterion_main!(benches);
