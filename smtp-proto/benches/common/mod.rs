//! Inputs shared by the benches: real server replies and message bodies.
//!
//! Each bench includes this file with `#[path]`; not every bench uses every
//! item, hence the `dead_code` allowance.
#![allow(dead_code)]

/// EHLO replies as real servers send them (host names and addresses
/// replaced by documentation values, everything else verbatim).
pub(crate) const EHLO_REPLIES: &[&[u8]] = &[
    // Postfix smtp-sink, as seen on this machine.
    b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n\
      250-XCLIENT NAME HELO\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n\
      250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 \r\n",
    // Gmail submission (smtp.gmail.com:587) before STARTTLS.
    b"250-smtp.gmail.com at your service, [203.0.113.5]\r\n250-SIZE 35882577\r\n\
      250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n\
      250-CHUNKING\r\n250 SMTPUTF8\r\n",
    // Microsoft 365 (smtp.office365.com:587).
    b"250-AM0PR02CA0001.outlook.office365.com Hello [203.0.113.5]\r\n\
      250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
      250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n",
    // Postfix smtpd with the usual submission settings.
    b"250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
      250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-AUTH=PLAIN LOGIN\r\n\
      250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n\
      250 CHUNKING\r\n",
    // Exim 4.9x.
    b"250-mx.example.net Hello client.example.com [192.0.2.1]\r\n250-SIZE 52428800\r\n\
      250-8BITMIME\r\n250-PIPELINING\r\n250-PIPE_CONNECT\r\n250-AUTH PLAIN LOGIN\r\n\
      250-CHUNKING\r\n250-STARTTLS\r\n250-PRDR\r\n250 HELP\r\n",
    // Amazon SES.
    b"250-email-smtp.amazonaws.com\r\n250-8BITMIME\r\n250-STARTTLS\r\n\
      250-AUTH PLAIN LOGIN\r\n250 Ok\r\n",
    // Sendmail 8.15.
    b"250-mail.example.com Hello client.example.com [192.0.2.1], pleased to meet you\r\n\
      250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-EXPN\r\n250-VERB\r\n\
      250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250-ETRN\r\n250-AUTH DIGEST-MD5 CRAM-MD5\r\n\
      250-DELIVERBY\r\n250 HELP\r\n",
];

/// Single-line (and two short multi-line) replies from a transaction, as
/// Postfix, smtp-sink and Gmail send them.
pub(crate) const SHORT_REPLIES: &[&[u8]] = &[
    b"220 smtp-sink ESMTP\r\n",
    b"220 mx.google.com ESMTP d9443c01a7336-21a1b2c3d4e5f-20si1234567pfb.123 - gsmtp\r\n",
    b"250 2.1.0 Ok\r\n",
    b"250 2.1.5 Ok\r\n",
    b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"250 2.0.0 Ok: queued as 4Z5Xk71yQbz9vB6\r\n",
    b"250 2.1.0 OK d9443c01a7336-21a1b2c3d4e5f-20si1234567pfb.123 - gsmtp\r\n",
    b"550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local \
      recipient table\r\n",
    b"550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n\
      550-5.1.1 double-checking the recipient's email address for typos or\r\n\
      550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp\r\n",
    b"451 4.7.1 Service unavailable - try again later\r\n",
    b"235 2.7.0 Authentication successful\r\n",
    b"221 2.0.0 Bye\r\n",
];

/// Every reply of a corpus, concatenated, `repeat` times over: what a
/// server would send down one connection.
pub(crate) fn concat(corpus: &[&[u8]], repeat: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..repeat {
        for reply in corpus {
            out.extend_from_slice(reply);
        }
    }
    out
}

/// The number of replies in `concat(corpus, repeat)`.
pub(crate) fn reply_count(corpus: &[&[u8]], repeat: usize) -> usize {
    corpus.len() * repeat
}

/// A body of `len` bytes made of 78-character lines ending with `eol`, the
/// shape of real mail (RFC 5322 recommends at most 78 characters).
pub(crate) fn lines_body(len: usize, eol: &[u8]) -> Vec<u8> {
    const TEXT: &[u8] =
        b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs";
    let mut line = Vec::with_capacity(80);
    while line.len() < 78 {
        let take = (78 - line.len()).min(TEXT.len());
        line.extend_from_slice(&TEXT[..take]);
    }
    line.extend_from_slice(eol);
    line.iter().copied().cycle().take(len).collect()
}

/// A body of `len` bytes where every line starts with a dot, and half the
/// lines are a lone dot: the worst case for dot-stuffing.
pub(crate) fn dot_heavy_body(len: usize) -> Vec<u8> {
    const PATTERN: &[u8] = b".\r\n..leading dots everywhere\r\n.\r\n.a\r\n";
    PATTERN.iter().copied().cycle().take(len).collect()
}

/// The largest EHLO reply the default `Limits` let through: 64 KiB, no
/// line over 4096 bytes (code and CRLF included), at most 128 lines. The
/// first line is `250-mx.example`; `fill` writes the text of each further
/// line into the room it is given (the bytes between `250-` and CRLF) and
/// returns false when it wants no more lines.
fn ehlo_64k(max_lines: usize, mut fill: impl FnMut(usize, &mut String, usize) -> bool) -> Vec<u8> {
    const MAX_LINE: usize = 4096;
    const MAX_REPLY: usize = 64 * 1024;
    let mut lines = vec!["mx.example".to_owned()];
    let mut used = 4 + lines[0].len() + 2;
    for i in 1..max_lines {
        let room = (MAX_LINE - 6).min(MAX_REPLY - used - 6);
        if room < 16 {
            break;
        }
        let mut text = String::new();
        let more = fill(i, &mut text, room);
        assert!(text.len() <= room);
        used += 4 + text.len() + 2;
        lines.push(text);
        if !more {
            break;
        }
    }
    let last = lines.len() - 1;
    let mut wire = Vec::with_capacity(used);
    for (i, text) in lines.iter().enumerate() {
        let sep = if i == last { ' ' } else { '-' };
        wire.extend_from_slice(format!("250{sep}{text}\r\n").as_bytes());
    }
    assert!(wire.len() <= MAX_REPLY);
    wire
}

/// Issue 14 item 5's hostile reply: AUTH lines listing as many distinct
/// three-character mechanism names as 64 KiB holds (16,336). Parsing it
/// used to be quadratic in the number of names.
pub(crate) fn ehlo_64k_many_mechanisms() -> Vec<u8> {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut n = 0usize;
    ehlo_64k(128, |_, text, room| {
        text.push_str("AUTH");
        while text.len() + 4 <= room {
            let name = [
                DIGITS[n / (36 * 36) % 36],
                DIGITS[n / 36 % 36],
                DIGITS[n % 36],
            ];
            text.push(' ');
            text.push_str(std::str::from_utf8(&name).expect("ASCII"));
            n += 1;
        }
        true
    })
}

/// An ordinary reply of the same size: 127 distinct extension lines of
/// about 510 bytes (a keyword and space-separated parameters), the shape of
/// a real EHLO reply, only longer.
pub(crate) fn ehlo_64k_ordinary() -> Vec<u8> {
    let per_line = 64 * 1024 / 128 - 6;
    ehlo_64k(128, |i, text, room| {
        text.push_str(&format!("X-EXTENSION-{i:03}"));
        let mut p = 0;
        while text.len() + 8 <= per_line.min(room) {
            text.push_str(&format!(" PARAM{p:02}"));
            p += 1;
        }
        true
    })
}
