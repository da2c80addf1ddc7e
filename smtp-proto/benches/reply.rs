//! Reply parsing and EHLO capability parsing.
//!
//! ```sh
//! cargo bench -p smtp-proto --bench reply
//! ```
//!
//! Groups:
//! - `reply/ehlo` and `reply/short`: [`ReplyParser`] over a corpus of real
//!   replies, fed whole and in 7-byte chunks (every CRLF split somewhere),
//!   against the baseline `memchr_line_split` (a `memchr` newline scan of the
//!   same bytes that touches every line, the floor any parser pays).
//!   `mirror_memchr` and `mirror_position` are copies of the parser's
//!   algorithm in this file, one finding line ends with `memchr`, one with
//!   `iter().position`: they answer whether the `memchr` dependency pays.
//! - `capabilities`: [`Capabilities::from_ehlo`] on the parsed EHLO corpus.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::{Capabilities, Reply, ReplyParser};

#[path = "common/mod.rs"]
mod common;

use common::{EHLO_REPLIES, SHORT_REPLIES, concat, reply_count};

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
        parse_chunked(&mut ReplyParser::default(), &input, 7),
        expected
    );
    assert_eq!(mirror::parse_all(&input, mirror::find_memchr), expected);
    assert_eq!(mirror::parse_all(&input, mirror::find_position), expected);

    let mut group = c.benchmark_group(format!("reply/{name}"));
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("parser_whole", |b| {
        let mut parser = ReplyParser::default();
        b.iter(|| parse_whole(&mut parser, black_box(&input)));
    });
    group.bench_function("parser_chunks_7", |b| {
        let mut parser = ReplyParser::default();
        b.iter(|| parse_chunked(&mut parser, black_box(&input), 7));
    });
    group.bench_function("mirror_memchr", |b| {
        b.iter(|| mirror::parse_all(black_box(&input), mirror::find_memchr));
    });
    group.bench_function("mirror_position", |b| {
        b.iter(|| mirror::parse_all(black_box(&input), mirror::find_position));
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

    struct Parser {
        partial: Vec<u8>,
        code: u16,
        lines: Vec<String>,
        len: usize,
    }

    pub(crate) fn parse_all(input: &[u8], find: impl Fn(&[u8]) -> Option<usize>) -> usize {
        let mut p = Parser {
            partial: Vec::new(),
            code: 0,
            lines: Vec::new(),
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
                p.line(&rest[..nl])
            } else {
                let mut line = std::mem::take(&mut p.partial);
                line.extend_from_slice(&rest[..nl]);
                let done = p.line(&line);
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
        fn line(&mut self, line: &[u8]) -> Option<(u16, Vec<String>)> {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(!line.contains(&0) && !line.contains(&b'\r'));
            let digits = &line[..3];
            assert!(digits.iter().all(u8::is_ascii_digit));
            let code = digits
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            let last = matches!(line.get(3), None | Some(b' '));
            let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned();
            if self.lines.is_empty() {
                self.code = code;
            }
            assert_eq!(self.code, code);
            self.len += line.len() + 2;
            assert!(self.len <= MAX_REPLY && self.lines.len() < MAX_LINES);
            self.lines.push(text);
            if !last {
                return None;
            }
            self.len = 0;
            Some((self.code, std::mem::take(&mut self.lines)))
        }
    }
}

criterion_group!(benches, replies, capabilities);
criterion_main!(benches);
