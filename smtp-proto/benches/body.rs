//! Dot-stuffing throughput.
//!
//! ```sh
//! cargo bench -p smtp-sansio --bench body
//! ```
//!
//! One group per body (1 KiB, 100 KiB and 10 MiB of 78-character CRLF
//! lines; 100 KiB where every line starts with a dot; 100 KiB of bare-LF
//! lines). In each group:
//! - `dot_stuffer`: [`DotStuffer`] into a reused `Vec<u8>`;
//! - `dot_stuffer_bytesmut`: the same into a reused `BytesMut`, the buffer
//!   type `Client::push_body` writes to;
//! - `mirror_memchr2` / `mirror_position`: copies of the stuffer's algorithm
//!   in this file, finding CR/LF with `memchr2` or with `iter().position`:
//!   their ratio is what the `memchr` dependency buys;
//! - `baseline_memchr_copy`: the floor, a `memchr` newline scan that copies
//!   each line into a reused `Vec` (no stuffing, no normalisation).

use std::hint::black_box;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_sansio::DotStuffer;

#[path = "common/mod.rs"]
mod common;

use common::{dot_heavy_body, lines_body};

fn stuff(stuffer: &mut DotStuffer, input: &[u8], out: &mut impl BufMut) {
    stuffer.encode(input, out);
    stuffer.finish(out);
}

/// The baseline: scan for LF with `memchr` and copy line by line.
fn memchr_copy(input: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', input) {
        out.extend_from_slice(&input[start..=end]);
        start = end + 1;
    }
    out.extend_from_slice(&input[start..]);
}

fn bench_body(c: &mut Criterion, name: &str, input: &[u8]) {
    // The mirrors must produce exactly what the real stuffer produces.
    let mut want = Vec::new();
    stuff(&mut DotStuffer::new(), input, &mut want);
    for find in [mirror::find_memchr2, mirror::find_position] {
        let mut got = Vec::new();
        mirror::stuff(input, &mut got, find);
        assert!(got == want, "mirror differs from DotStuffer on {name}");
    }

    let mut group = c.benchmark_group(format!("dot_stuff/{name}"));
    group.throughput(Throughput::Bytes(input.len() as u64));
    if input.len() > 1 << 20 {
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(8));
    }
    let capacity = want.len() + 64;
    group.bench_function("dot_stuffer", |b| {
        let mut out = Vec::with_capacity(capacity);
        let mut stuffer = DotStuffer::new();
        b.iter(|| {
            out.clear();
            stuff(&mut stuffer, black_box(input), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("dot_stuffer_bytesmut", |b| {
        let mut out = BytesMut::with_capacity(capacity);
        let mut stuffer = DotStuffer::new();
        b.iter(|| {
            out.clear();
            stuff(&mut stuffer, black_box(input), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("mirror_memchr2", |b| {
        let mut out = Vec::with_capacity(capacity);
        b.iter(|| {
            out.clear();
            mirror::stuff(black_box(input), &mut out, mirror::find_memchr2);
            black_box(out.len())
        });
    });
    group.bench_function("mirror_position", |b| {
        let mut out = Vec::with_capacity(capacity);
        b.iter(|| {
            out.clear();
            mirror::stuff(black_box(input), &mut out, mirror::find_position);
            black_box(out.len())
        });
    });
    group.bench_function("baseline_memchr_copy", |b| {
        let mut out = Vec::with_capacity(capacity);
        b.iter(|| {
            out.clear();
            memchr_copy(black_box(input), &mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

fn bodies(c: &mut Criterion) {
    bench_body(c, "lines_1KiB", &lines_body(1024, b"\r\n"));
    bench_body(c, "lines_100KiB", &lines_body(100 * 1024, b"\r\n"));
    bench_body(c, "lines_10MiB", &lines_body(10 << 20, b"\r\n"));
    bench_body(c, "dot_heavy_100KiB", &dot_heavy_body(100 * 1024));
    bench_body(c, "bare_lf_100KiB", &lines_body(100 * 1024, b"\n"));
}

/// A copy of `LineNormalizer::encode` with dot-stuffing on (one chunk, then
/// `finish`), parameterised by the CR/LF search.
mod mirror {
    pub(crate) fn find_memchr2(haystack: &[u8]) -> Option<usize> {
        memchr::memchr2(b'\r', b'\n', haystack)
    }

    pub(crate) fn find_position(haystack: &[u8]) -> Option<usize> {
        haystack.iter().position(|&b| b == b'\r' || b == b'\n')
    }

    pub(crate) fn stuff(input: &[u8], out: &mut Vec<u8>, find: impl Fn(&[u8]) -> Option<usize>) {
        let mut at_line_start = true;
        let mut i = 0;
        while i < input.len() {
            if at_line_start {
                if input[i] == b'.' {
                    out.push(b'.');
                }
                at_line_start = false;
            }
            let rest = &input[i..];
            let Some(k) = find(rest) else {
                out.extend_from_slice(rest);
                break;
            };
            out.extend_from_slice(&rest[..k]);
            let end = i + k;
            i = if input[end] == b'\r' && input.get(end + 1) == Some(&b'\n') {
                end + 2
            } else {
                end + 1
            };
            out.extend_from_slice(b"\r\n");
            at_line_start = true;
        }
        if !at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

criterion_group!(benches, bodies);
criterion_main!(benches);
