//! `dot_stuff`: the DATA dot-stuffer and the BDAT line normaliser.

use smtp_sansio::{DotStuffer, LineNormalizer, dot_unstuff, normalize_line_endings};

use crate::input::{Chunks, header};
use crate::wire::{end_of_data, only_crlf_pairs};

/// Header: `[chunk sizes × 4]`, then the message body.
///
/// The body goes through [`DotStuffer`] whole, in the header's chunks, and
/// one byte at a time: the wire bytes must be the same each time, contain
/// only CRLF line ends, end with the only end-of-data marker, and un-stuff to
/// the CRLF-normalised body. [`LineNormalizer`] must likewise give the
/// normalised body whatever the chunking. A stuffer reused after `finish`
/// must behave as a new one.
pub fn dot_stuff(data: &[u8]) {
    let (h, body) = header::<4>(data);
    let normalized = normalize_line_endings(body);
    assert!(only_crlf_pairs(&normalized), "{normalized:?}");
    assert!(
        normalized.is_empty() || normalized.ends_with(b"\r\n"),
        "{normalized:?}"
    );

    let whole = stuff(Chunks::new(body, &[]), &mut DotStuffer::new());
    let end = end_of_data(&whole);
    assert_eq!(
        end,
        Some(whole.len()),
        "the end-of-data marker is not (only) at the end of {whole:?}"
    );
    assert!(only_crlf_pairs(&whole), "bare CR or LF in {whole:?}");
    assert_eq!(
        dot_unstuff(&whole).as_deref(),
        Some(&normalized[..]),
        "un-stuffing does not give the normalised body back"
    );

    let mut reused = DotStuffer::new();
    let chunked = stuff(Chunks::new(body, &h), &mut reused);
    assert_eq!(chunked, whole, "chunking changed the stuffed body");
    let again = stuff(Chunks::new(body, &h[1..]), &mut reused);
    assert_eq!(again, whole, "a reused stuffer gave different bytes");
    if body.len() <= 4096 {
        let bytewise = stuff(Chunks::new(body, &[1]), &mut DotStuffer::new());
        assert_eq!(bytewise, whole, "bytewise stuffing changed the body");
    }

    let mut normalizer = LineNormalizer::new();
    for sizes in [&h[..], &[1], &[]] {
        let mut out = Vec::new();
        for chunk in Chunks::new(body, sizes) {
            normalizer.encode(chunk, &mut out);
        }
        let before = out.len();
        let promised = normalizer.pending_finish_len();
        normalizer.finish(&mut out);
        assert_eq!(out.len() - before, promised, "pending_finish_len was wrong");
        assert_eq!(out, normalized, "LineNormalizer changed with chunking");
    }
}

fn stuff(chunks: Chunks<'_>, stuffer: &mut DotStuffer) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        stuffer.encode(chunk, &mut out);
    }
    stuffer.finish(&mut out);
    out
}
