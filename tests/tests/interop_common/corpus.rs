//! The message corpus: every message the interop tests deliver byte for
//! byte, by name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A message of the corpus.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The bytes given to the client.
    pub(crate) bytes: Vec<u8>,
    /// Request SMTPUTF8 (UTF-8 in the header).
    pub(crate) utf8_header: bool,
    /// Use UTF-8 envelope addresses.
    pub(crate) utf8_envelope: bool,
}

fn headers(subject: &str) -> String {
    format!(
        "From: Interop Sender <sender@example.org>\r\n\
         To: Interop Rcpt <rcpt@example.com>\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{subject}@interop.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n"
    )
}

fn text(subject: &str, body: &str) -> Vec<u8> {
    let mut m = headers(subject).into_bytes();
    m.extend_from_slice(body.as_bytes());
    m
}

/// A deterministic pseudo-random generator (xorshift64*).
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A message of about `size` bytes: headers, then lines of 0 to 998 octets
/// (CRLF-terminated) of printable ASCII and UTF-8, some starting with a dot,
/// some lone dots.
pub(crate) fn big(subject: &str, size: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "lorem",
        "ipsum",
        "smtp",
        "relay",
        "Grüße",
        "日本語",
        "naïve",
        "€uro",
        "..",
        ".",
        "dot.",
        "\t",
        "mañana",
        "a",
        "longerwordhere",
        "x",
    ];
    let mut rng = Rng::new(seed);
    let mut m = headers(subject).into_bytes();
    while m.len() < size {
        let target = match rng.below(10) {
            0 => 0,
            1 => 998,
            2 => rng.below(999) as usize,
            _ => rng.below(120) as usize,
        };
        let mut line: Vec<u8> = Vec::with_capacity(target);
        match rng.below(12) {
            0 => line.push(b'.'),
            1 => line.extend_from_slice(b".."),
            _ => {}
        }
        while line.len() < target {
            let w = WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes();
            if line.len() + w.len() + 1 > target {
                let fill = target - line.len();
                line.extend(std::iter::repeat_n(b'z', fill));
                break;
            }
            line.extend_from_slice(w);
            line.push(b' ');
        }
        if rng.below(50) == 0 {
            line.clear();
            line.push(b'.');
        }
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// The message called `name`, generated once per process (the big ones
/// take a while in a debug build).
pub(crate) fn message(name: &'static str) -> Arc<Message> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Message>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return m.clone();
    }
    let m = Arc::new(generate(name));
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name)
        .or_insert(m)
        .clone()
}

fn generate(name: &'static str) -> Message {
    let mut utf8_header = false;
    let mut utf8_envelope = false;
    let bytes = match name {
        "plain" => text(
            "plain",
            "Hello,\r\n\r\nthis is a plain text message.\r\nIt has three lines.\r\n",
        ),
        // `\r\n.\r\n` inside the body: must not end the message.
        "dot_lone_line" => text(
            "dot_lone_line",
            "before\r\n.\r\nafter the lone dot\r\n.\r\n\r\n.\r\nQUIT\r\n",
        ),
        "dot_double" => text(
            "dot_double",
            "..\r\n...\r\n..two dots first\r\n. dot space\r\nmid.dle\r\nend.\r\n",
        ),
        // The very first byte of the message is a dot.
        "dot_first_byte" => {
            b".first byte is a dot\r\nSubject: dot_first_byte\r\n\r\nbody\r\n.\r\n".to_vec()
        }
        // Bare LF/CR around a dot (SMTP smuggling): normalised to CRLF and
        // stuffed, so it stays in the body.
        "dot_bare_lf_smuggle" => text(
            "dot_bare_lf_smuggle",
            "one\n.\nMAIL FROM:<smuggled@example.org>\r\ntwo\r.\rthree\r\n.\nfour\n.\r\nfive\r\n",
        ),
        "raw_8bit" => {
            let mut m = headers("raw_8bit").into_bytes();
            m.extend_from_slice(b"every octet 0x80-0xff in 8-bit lines:\r\n");
            for row in (0x80u8..=0xff).collect::<Vec<_>>().chunks(32) {
                m.extend_from_slice(row);
                m.extend_from_slice(b"\r\n");
            }
            m.extend_from_slice(b"invalid UTF-8: \xc3\x28 \xa0\xa1 \xe2\x82 \xf0\x90\x28\xbc\r\n");
            m.extend_from_slice(b"latin-1: caf\xe9 na\xefve\r\n");
            m
        }
        "utf8_headers" => {
            utf8_header = true;
            "From: Jörg Müller <joerg@example.org>\r\n\
             To: 山田太郎 <yamada@example.com>\r\n\
             Subject: Grüße aus Köln – 日本語の件名 🚀\r\n\
             X-Unicode-Value: ÆØÅ ñ ß Ω (RFC 6532: UTF-8 in values, ASCII names)\r\n\
             \r\n\
             Body with UTF-8: ça va? Ελληνικά. Русский. 中文.\r\n"
                .as_bytes()
                .to_vec()
        }
        "line_998" => {
            let mut m = headers("line_998").into_bytes();
            let line: Vec<u8> = (0..998).map(|i| b'a' + (i % 26) as u8).collect();
            m.extend_from_slice(&line);
            m.extend_from_slice(b"\r\nafter\r\n");
            m
        }
        // 998 octets starting with a dot: 999 on the wire after stuffing,
        // 1001 with CRLF (aiosmtpd's exact limit).
        "line_998_dot" => {
            let mut m = headers("line_998_dot").into_bytes();
            m.push(b'.');
            m.extend((1..998).map(|i| b'a' + (i % 26) as u8));
            m.extend_from_slice(b"\r\nafter\r\n");
            m
        }
        "empty" => Vec::new(),
        "no_final_crlf" => text("no_final_crlf", "the last line has no line end"),
        "one_mib" => big("one_mib", 1 << 20, 1),
        "twenty_mib" => big("twenty_mib", 20 << 20, 20),
        "utf8_envelope" => {
            utf8_envelope = true;
            utf8_header = true;
            "From: Jörg <jörg@bücher.example>\r\n\
             To: Zoë <zoë@例え.example>\r\n\
             Subject: utf8_envelope ✉\r\n\
             \r\n\
             UTF-8 envelope addresses with SMTPUTF8.\r\n"
                .as_bytes()
                .to_vec()
        }
        other => panic!("no corpus message {other}"),
    };
    Message {
        bytes,
        utf8_header,
        utf8_envelope,
    }
}
