//! Reading what the servers stored.
//!
//! Every test uses recipients nobody else uses, and finds its message by
//! them. aiosmtpd, nodemailer and Postfix write `<n>.json` (the envelope)
//! and `<n>.eml` (the exact bytes; the `.json` is renamed into place first,
//! so the `.eml` appears last). smtp-sink writes one dump file per message:
//! `X-*` headers with the envelope, a three-line `Received:` header, the
//! message with LF line ends, and one extra empty line. Dovecot's LMTP
//! writes one maildir per recipient (`ADDRESS/Maildir/new/FILE`), each
//! message with its own `Return-Path:` and `Received:` headers in front.
//! Exim and OpenSMTPD deliver through `spool_deliver.pl`, which writes the
//! JSON format (with a `group` naming the message when an MTA delivers per
//! recipient, as OpenSMTPD does). Haraka's queue plugin writes the JSON
//! format with the message as Haraka queues it (its own headers first).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde_json::Value;

use super::servers::{Kind, Server};

/// A stored message.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The file it came from.
    pub(crate) path: PathBuf,
    /// MAIL FROM.
    pub(crate) from: String,
    /// The recipients the server recorded.
    pub(crate) rcpts: Vec<String>,
    /// The JSON envelope (aiosmtpd, nodemailer, Postfix), else `Null`.
    pub(crate) meta: Value,
    /// The message: for JSON spools the exact bytes; for smtp-sink the
    /// message as dumped (LF line ends, without the sink's own headers and
    /// trailing empty line).
    pub(crate) data: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Entry {
    from: String,
    rcpts: Vec<String>,
    meta: Value,
}

/// Parsed envelopes by file, so each file is parsed once per process.
fn cache() -> &'static Mutex<HashMap<PathBuf, Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Entry>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn json_entry(path: &Path) -> Option<Entry> {
    let text = std::fs::read(path).ok()?;
    let meta: Value = serde_json::from_slice(&text).ok()?;
    let (from, rcpts) = if meta.get("mailFrom").is_some() {
        // nodemailer
        let from = meta["mailFrom"]["address"].as_str()?.to_owned();
        let rcpts = meta["rcptTo"]
            .as_array()?
            .iter()
            .filter_map(|r| r["address"].as_str().map(str::to_owned))
            .collect();
        (from, rcpts)
    } else {
        // aiosmtpd, Postfix
        let from = meta["mail_from"].as_str()?.to_owned();
        let rcpts = meta["rcpt_tos"]
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        (from, rcpts)
    };
    Some(Entry { from, rcpts, meta })
}

/// The envelope of an smtp-sink dump, once its header is complete (the
/// file exists from the first RCPT on; the `Received:` header is written
/// with the message).
fn sink_entry(path: &Path) -> Option<Entry> {
    use std::io::Read;
    let mut head = vec![0; 16 * 1024];
    let mut file = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    head.truncate(n);
    let mut from = None;
    let mut rcpts = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        if let Some(args) = line.strip_prefix("X-Mail-Args: ") {
            from = Some(angle(args));
        } else if let Some(args) = line.strip_prefix("X-Rcpt-Args: ") {
            rcpts.push(angle(args));
        } else if line.starts_with("Received: ") {
            return Some(Entry {
                from: from?,
                rcpts,
                meta: Value::Null,
            });
        }
    }
    None
}

/// `<addr> PARAMS` → `addr`.
fn angle(args: &str) -> String {
    let s = args.trim_start();
    match s.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((addr, _)) => addr.to_owned(),
        None => s.split(' ').next().unwrap_or("").to_owned(),
    }
}

/// The message part of a sink dump: after the `X-*` lines and the
/// three-line `Received:` header, without the extra final empty line.
fn sink_message(dump: &[u8]) -> Vec<u8> {
    let mut rest = dump;
    let mut received_lines = 0;
    loop {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            panic!("sink dump without a complete header");
        };
        let line = &rest[..end];
        if received_lines == 0 && line.starts_with(b"X-") {
        } else if received_lines == 0 && line.starts_with(b"Received: ") {
            received_lines = 1;
        } else if received_lines > 0 && received_lines < 3 && line.starts_with(b"\t") {
            received_lines += 1;
        } else {
            panic!(
                "unexpected sink dump header line {:?}",
                String::from_utf8_lossy(line)
            );
        }
        rest = &rest[end + 1..];
        if received_lines == 3 {
            break;
        }
    }
    let body = rest
        .strip_suffix(b"\n")
        .expect("sink dump ends with its extra empty line");
    body.to_vec()
}

/// The headers a server puts in front of the message it received: each
/// name at most once, in any order, while the leading lines are such
/// headers; a `Some(marker)` header is the server's own only if it contains
/// the marker. Returns the values found and the rest of the message.
fn strip_leading_headers<'a>(
    data: &'a [u8],
    own: &[(&str, Option<&str>)],
) -> (HashMap<String, String>, &'a [u8]) {
    let mut rest = data;
    let mut found = HashMap::new();
    'outer: loop {
        // one header with its continuation lines
        let mut end = 0;
        loop {
            let Some(nl) = rest[end..].iter().position(|&b| b == b'\n') else {
                break 'outer;
            };
            end += nl + 1;
            if !matches!(rest.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        let header = String::from_utf8_lossy(&rest[..end]);
        let Some((name, value)) = header.split_once(':') else {
            break;
        };
        let name = name.to_ascii_lowercase();
        let Some((_, marker)) = own.iter().find(|(n, _)| *n == name) else {
            break;
        };
        if found.contains_key(&name) || marker.is_some_and(|m| !value.contains(m)) {
            break;
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        found.insert(name, value);
        rest = &rest[end..];
    }
    (found, rest)
}

/// Dovecot's own headers in front of an LMTP delivery.
const DOVECOT_LMTP_HEADERS: &[(&str, Option<&str>)] = &[
    ("return-path", None),
    ("delivered-to", None),
    ("received", Some("with LMTP")),
];

/// Dovecot submission's `Received:` header in front of a relayed message.
const DOVECOT_SUBMISSION_HEADERS: &[(&str, Option<&str>)] =
    &[("received", Some("by dovecot-interop.localhost"))];

/// Haraka's own headers in front of a queued message: `Received:` and,
/// after AUTH, `Authentication-Results:`.
const HARAKA_HEADERS: &[(&str, Option<&str>)] = &[
    ("received", Some("(Haraka/")),
    ("authentication-results", Some("haraka-interop.localhost")),
];

/// OpenSMTPD's host name (`hostname` in its smtpd.conf).
const OPENSMTPD_HOSTNAME: &str = "opensmtpd-interop.localhost";

/// Removes the `Date:` and `Message-ID:` headers OpenSMTPD adds at the end
/// of the header section of a message that lacks them (it does so for
/// every listener on a loopback address, and on port 587): its `Date:` is
/// the date of its own `Received:` header (stripped by spool_deliver.pl and
/// kept in the JSON), its `Message-ID:` is `<16 hex digits@HOSTNAME>`. Only
/// the first such line of each is removed, so a message's own headers
/// survive unless they are byte for byte what OpenSMTPD would have added.
fn opensmtpd_strip_added(data: &[u8], meta: &Value, path: &Path) -> Vec<u8> {
    let received = meta["stripped_headers"]["received"]
        .as_str()
        .unwrap_or_else(|| panic!("OpenSMTPD's Received header in {}", path.display()));
    let date = received
        .rsplit_once(';')
        .map(|(_, d)| d.trim())
        .unwrap_or_else(|| panic!("date in OpenSMTPD's Received header {received:?}"));
    let date_line = format!("Date: {date}\r\n");
    let is_msgid = |line: &[u8]| {
        let Some(rest) = line.strip_prefix(b"Message-ID: <") else {
            return false;
        };
        let want_tail = format!("@{OPENSMTPD_HOSTNAME}>\r\n");
        rest.len() == 16 + want_tail.len()
            && rest[..16].iter().all(|b| b.is_ascii_hexdigit())
            && rest[16..] == *want_tail.as_bytes()
    };
    let (mut date_seen, mut msgid_seen) = (false, false);
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        if !date_seen && line == date_line.as_bytes() {
            date_seen = true;
        } else if !msgid_seen && is_msgid(line) {
            msgid_seen = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// One maildir file of Dovecot's LMTP: MAIL FROM from `Return-Path:`, the
/// recipient from the directory, Dovecot's `Received: ... id ID` (one per
/// transaction) as the message's group.
fn maildir_entry(path: &Path, rcpt: &str) -> Option<Entry> {
    let data = std::fs::read(path).ok()?;
    let (found, _) = strip_leading_headers(&data, DOVECOT_LMTP_HEADERS);
    let from = found.get("return-path")?;
    let from = from
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    let received = found.get("received")?;
    let group = received
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    Some(Entry {
        from,
        rcpts: vec![rcpt.to_owned()],
        meta: serde_json::json!({ "group": group }),
    })
}

fn scan_maildirs(dir: &Path) -> Vec<(PathBuf, Entry)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for user in read.flatten() {
        let Some(rcpt) = user.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        for sub in ["new", "cur"] {
            let Ok(files) = std::fs::read_dir(user.path().join("Maildir").join(sub)) else {
                continue;
            };
            for f in files.flatten() {
                let path = f.path();
                if let Some(e) = cache.get(&path) {
                    out.push((path, e.clone()));
                } else if let Some(e) = maildir_entry(&path, &rcpt) {
                    cache.insert(path.clone(), e.clone());
                    out.push((path, e));
                }
            }
        }
    }
    out
}

fn scan(srv: &Server, dir: &Path) -> Vec<(PathBuf, Entry)> {
    if srv.kind.maildir_spool() {
        return scan_maildirs(dir);
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for item in read.flatten() {
        let path = item.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let wanted = if srv.kind.json_spool() {
            name.strip_suffix(".json")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        } else {
            !name.starts_with('.')
        };
        if !wanted {
            continue;
        }
        if let Some(e) = cache.get(&path) {
            out.push((path, e.clone()));
            continue;
        }
        let entry = if srv.kind.json_spool() {
            json_entry(&path)
        } else {
            sink_entry(&path)
        };
        if let Some(e) = entry {
            cache.insert(path.clone(), e.clone());
            out.push((path, e));
        }
    }
    out
}

/// Waits for the message whose recipients include `rcpt` and returns it.
pub(crate) fn wait_for(srv: &Server, rcpt: &str) -> Stored {
    let dir = srv
        .spool
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no spool", srv.kind.var()));
    let deadline = Instant::now() + srv.spool_wait();
    loop {
        let all = scan(srv, dir);
        let found = all
            .iter()
            .find(|(_, e)| e.rcpts.iter().any(|r| r == rcpt))
            .cloned();
        if let Some((path, mut entry)) = found {
            if srv.kind.per_recipient_spool() {
                // The message's other copies (same group), so far.
                let group = entry.meta["group"].clone();
                entry.rcpts = all
                    .iter()
                    .filter(|(_, e)| e.meta["group"] == group)
                    .flat_map(|(_, e)| e.rcpts.iter().cloned())
                    .collect();
                entry.rcpts.sort();
                entry.rcpts.dedup();
            }
            if srv.kind.maildir_spool() {
                let raw = std::fs::read(&path).expect("read maildir file");
                let (_, data) = strip_leading_headers(&raw, DOVECOT_LMTP_HEADERS);
                return Stored {
                    data: data.to_vec(),
                    path,
                    from: entry.from,
                    rcpts: entry.rcpts,
                    meta: entry.meta,
                };
            }
            if srv.kind.json_spool() {
                let eml = path.with_extension("eml");
                if let Ok(mut data) = std::fs::read(&eml) {
                    if srv.kind == Kind::Haraka {
                        let (found, rest) = strip_leading_headers(&data, HARAKA_HEADERS);
                        assert!(
                            found.contains_key("received"),
                            "Haraka's Received header in {}",
                            eml.display()
                        );
                        data = rest.to_vec();
                    }
                    if srv.kind == Kind::Opensmtpd {
                        data = opensmtpd_strip_added(&data, &entry.meta, &eml);
                    }
                    if srv.kind == Kind::DovecotSubmission {
                        let (found, rest) =
                            strip_leading_headers(&data, DOVECOT_SUBMISSION_HEADERS);
                        assert!(
                            found.contains_key("received"),
                            "Dovecot submission's Received header in {}",
                            eml.display()
                        );
                        data = rest.to_vec();
                    }
                    return Stored {
                        path: eml,
                        from: entry.from,
                        rcpts: entry.rcpts,
                        meta: entry.meta,
                        data,
                    };
                }
            } else {
                let dump = std::fs::read(&path).expect("read sink dump");
                return Stored {
                    data: sink_message(&dump),
                    path,
                    from: entry.from,
                    rcpts: entry.rcpts,
                    meta: entry.meta,
                };
            }
        }
        assert!(
            Instant::now() < deadline,
            "{}: no stored message for <{rcpt}> in {} after {:?}",
            srv.kind.var(),
            dir.display(),
            srv.spool_wait()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Asserts that no message for `rcpt` is stored (after giving an
/// asynchronous server time to deliver).
pub(crate) fn assert_absent(srv: &Server, rcpt: &str) {
    let Some(dir) = srv.spool.as_ref() else {
        return;
    };
    if srv.kind.async_spool() {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let found = scan(srv, dir)
        .into_iter()
        .find(|(_, e)| e.rcpts.iter().any(|r| r == rcpt));
    if let Some((path, _)) = found {
        panic!(
            "{}: unexpected stored message {}",
            srv.kind.var(),
            path.display()
        );
    }
}

/// Postfix's `is_header_buf()` (src/global/is_header.c): a name of
/// printable non-space ASCII, optional blanks, then `:`.
fn postfix_is_header(line: &[u8]) -> bool {
    let mut seen_name = false;
    let mut in_space = false;
    for &c in line {
        match c {
            b':' => return seen_name,
            b' ' | b'\t' if seen_name => in_space = true,
            33..=126 if !in_space => seen_name = true,
            _ => return false,
        }
    }
    false
}

/// Postfix ends the header section at the first line that is neither a
/// header nor a continuation and, unless that line is empty, inserts an
/// empty line there (its cleanup server separates the headers, at least
/// its own `Received:`, from the body). So a message whose first line is
/// not a header (such as `.first byte is a dot`) is stored with `CRLF`
/// in front of it. See tests/interop/README.md.
fn postfix_expected(sent: &[u8]) -> Vec<u8> {
    let mut pos = 0;
    let mut first = true;
    while pos < sent.len() {
        let end = sent[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(sent.len(), |k| pos + k);
        let line = &sent[pos..end];
        if line.is_empty() {
            return sent.to_vec();
        }
        let continuation = !first && matches!(line[0], b' ' | b'\t');
        if !continuation && !postfix_is_header(line) {
            let mut out = Vec::with_capacity(sent.len() + 2);
            out.extend_from_slice(&sent[..pos]);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&sent[pos..]);
            return out;
        }
        first = false;
        pos = end + 2;
    }
    sent.to_vec()
}

/// Haraka's `data_line_length` (connection.ini `[max]`, default 992).
const HARAKA_DATA_LINE_LENGTH: usize = 992;

/// What Haraka queues for `sent`: a DATA line whose line feed is not
/// within the first `data_line_length` octets on the wire (dot-stuffing
/// included) is wrapped: `CRLF` and a space are inserted after its first
/// `data_line_length - 2` octets (connection.js `_process_data`; octets,
/// not characters, so a UTF-8 sequence can be split), and the rest is
/// checked again. An empty message is queued as one empty line (the end
/// of its empty header section).
fn haraka_expected(sent: &[u8]) -> Vec<u8> {
    if sent.is_empty() {
        return b"\r\n".to_vec();
    }
    let keep = HARAKA_DATA_LINE_LENGTH - 2;
    let mut out = Vec::with_capacity(sent.len() + sent.len() / 256);
    for line in sent.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\r\n").unwrap_or(line);
        let mut rest: Vec<u8> = content.to_vec();
        // The stuffed dot counts on the wire.
        let mut stuffed = usize::from(rest.first() == Some(&b'.'));
        // Wire length + CR: the line feed's index on the wire.
        while stuffed + rest.len() + 1 >= HARAKA_DATA_LINE_LENGTH {
            let cut = keep - stuffed;
            out.extend_from_slice(&rest[..cut]);
            out.extend_from_slice(b"\r\n");
            let mut next = vec![b' '];
            next.extend_from_slice(&rest[cut..]);
            rest = next;
            stuffed = 0;
        }
        out.extend_from_slice(&rest);
        if line.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// What a server stores for `sent` (the bytes the client put on the wire
/// after dot-unstuffing): itself; for Postfix, with the empty line its
/// cleanup inserts before a non-header line in the header section; for
/// smtp-sink, with LF line ends.
pub(crate) fn expected_stored(kind: Kind, sent: &[u8]) -> Vec<u8> {
    if kind == Kind::Postfix {
        postfix_expected(sent)
    } else if kind == Kind::Exim {
        // Exim ends the header section the same way (an empty line before
        // a first non-header line), and stores an empty message as the
        // empty line that separates its (empty) header from the body.
        if sent.is_empty() {
            b"\r\n".to_vec()
        } else {
            postfix_expected(sent)
        }
    } else if kind == Kind::Haraka {
        haraka_expected(sent)
    } else if kind.json_spool() || kind.maildir_spool() {
        sent.to_vec()
    } else {
        let mut out = Vec::with_capacity(sent.len());
        let mut i = 0;
        while i < sent.len() {
            if sent[i] == b'\r' && sent.get(i + 1) == Some(&b'\n') {
                out.push(b'\n');
                i += 2;
            } else {
                out.push(sent[i]);
                i += 1;
            }
        }
        out
    }
}
