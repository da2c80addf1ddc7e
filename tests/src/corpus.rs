//! The shared transcript corpus: scripted server lines in, exact client bytes
//! out, with the caller's actions and their expected outcomes.
//!
//! One format, three runners: the core's in-memory runner
//! (`smtp-proto/tests/corpus.rs`, which includes this file by path, so it
//! must only use `std` and `smtp_sansio`) and each adapter's runner over
//! loopback TCP (`tests/tests/corpus_*.rs`).
//!
//! # Format (`tests/corpus/*.smtp`)
//!
//! ```text
//! === name of the case
//! option pipelining off        # also: lmtp, chunking off, server-name NAME, no-bytewise
//! S: 220 mx ESMTP              # server sends the line + CRLF; consecutive S lines = one write
//! S+ raw\r\nbytes              # server sends raw bytes (escapes: \r \n \t \0 \\ \xHH)
//! > hello client.example       # the caller's action
//! C: EHLO client.example       # the client must send exactly this line + CRLF
//! C+ raw                       # ... or exactly these raw bytes
//! TLS                          # the server does the TLS handshake here
//! CLOSE                        # the server closes the connection
//! wait 301s                    # the server does nothing for this long (also `ms`)
//! = ok 250                     # expected outcome of the last action
//! ```
//!
//! Time is virtual in the core's runner (a `wait` advances the clock the
//! session is given, and a silent server at the end of a script lets the
//! clock run to the session's next deadline); the adapters' runners use
//! real time with every timeout and wait divided by [`TIME_SCALE`].
//!
//! Outcomes are token strings; an expectation matches when its tokens are a
//! prefix of the actual outcome's, and `|` separates alternatives. Forms:
//! `ok [CODE [ENHANCED]]`, `ok CODE refused=a,b` (send), `ok valid|will-forward|cannot-verify`
//! (verify), `value PARAMS` / `none` (extension), and
//! `error rejected CODE [ENHANCED]`, `error protocol`, `error input ARG`,
//! `error usage`, `error unsupported`, `error auth`, `error norcpt`,
//! `error closed`, `error tls`, `error timeout`, `error io`.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

/// The adapters' runners divide every timeout and `wait` by this, so a
/// script's five-minute wait takes three seconds of real time.
pub const TIME_SCALE: u32 = 100;

/// The RFC 5321 default timeouts divided by [`TIME_SCALE`], for the
/// adapters' runners.
pub fn scaled_timeouts() -> smtp_sansio::Timeouts {
    let d = smtp_sansio::Timeouts::default();
    let mut t = smtp_sansio::Timeouts::uniform(Duration::ZERO);
    t.connect = d.connect / TIME_SCALE;
    t.tls_handshake = d.tls_handshake / TIME_SCALE;
    t.greeting = d.greeting / TIME_SCALE;
    t.mail = d.mail / TIME_SCALE;
    t.rcpt = d.rcpt / TIME_SCALE;
    t.data_init = d.data_init / TIME_SCALE;
    t.data_block = d.data_block / TIME_SCALE;
    t.data_termination = d.data_termination / TIME_SCALE;
    t.command = d.command / TIME_SCALE;
    t
}

/// One scripted case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The name after `===`.
    pub name: String,
    /// `file:line` of the header.
    pub location: String,
    /// Options.
    pub options: CaseOptions,
    /// Items in order.
    pub items: Vec<Item>,
}

/// Per-case options.
#[derive(Debug, Clone)]
pub struct CaseOptions {
    /// Use PIPELINING when offered (default true).
    pub pipelining: bool,
    /// LMTP mode.
    pub lmtp: bool,
    /// Prefer BDAT when CHUNKING is offered (default true).
    pub prefer_chunking: bool,
    /// The server name given to the client (default `127.0.0.1`).
    pub server_name: String,
    /// Also run with the server's bytes one at a time (default true).
    pub bytewise: bool,
    /// The name the lazy hello sends (default `localhost`).
    pub local_name: String,
    /// Run through the adapters with the server's bytes one per packet
    /// too (default true). Off for cases whose outcome depends on bytes
    /// being there at once: over a socket, bytes trickling in after the
    /// client moved on are indistinguishable from bytes sent later.
    pub adapter_bytewise: bool,
}

impl Default for CaseOptions {
    fn default() -> Self {
        Self {
            pipelining: true,
            lmtp: false,
            prefer_chunking: true,
            server_name: "127.0.0.1".into(),
            bytewise: true,
            local_name: "localhost".into(),
            adapter_bytewise: true,
        }
    }
}

/// One line of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Bytes the server sends in one write.
    Server(Vec<u8>),
    /// Bytes the client must send (a line with its CRLF, or raw bytes).
    Client(Vec<u8>),
    /// The server starts TLS.
    Tls,
    /// The server closes the connection.
    Close,
    /// The server does nothing for this long.
    Wait(Duration),
    /// The caller does something.
    Action(Action),
    /// The expected outcome of the previous action.
    Expect(String),
}

/// What the caller does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connect and read the greeting (implicit at the start of every case).
    Connect,
    /// `hello NAME`.
    Hello(String),
    /// `starttls`.
    StartTls,
    /// `auth MECH USER SECRET`.
    Auth {
        /// plain, login, cram-md5, xoauth2, oauthbearer, plain-insecure.
        mechanism: String,
        /// User name.
        user: String,
        /// Password or token.
        secret: String,
    },
    /// `mail FROM [key=value...]`.
    Mail(String, Vec<String>),
    /// `rcpt TO [key=value...]`.
    Rcpt(String, Vec<String>),
    /// `data "BODY"`: DATA, the body, the final reply.
    Data(Vec<u8>),
    /// `bdat "BODY"`: the body by BDAT.
    Bdat(Vec<u8>),
    /// `send FROM TO[,TO] "BODY" [key=value...] [require-all]`: a whole transaction.
    Send {
        /// Reverse path.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// Message.
        body: Vec<u8>,
        /// MAIL options.
        params: Vec<String>,
    },
    /// `batch COUNT FROM TO[,TO] "BODY"`: the same message COUNT times
    /// through the adapters' batch send (each message's envelope pipelined
    /// behind the previous message's final dot). The outcome is each
    /// message's outcome, joined with ` / `.
    Batch {
        /// How many messages.
        count: usize,
        /// Reverse path.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// Message.
        body: Vec<u8>,
    },
    /// `verify ADDR`.
    Verify(String),
    /// `noop`.
    Noop,
    /// `reset`.
    Reset,
    /// `quit`.
    Quit,
    /// `extension NAME`.
    Extension(String),
}

/// Reads every `*.smtp` file in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus dir {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "smtp"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        cases.extend(parse(&name, &text));
    }
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    cases
}

/// The corpus directory, given a crate's manifest dir inside the workspace.
pub fn corpus_dir(manifest_dir: &str) -> std::path::PathBuf {
    let here = Path::new(manifest_dir);
    let in_tests = here.join("corpus");
    if in_tests.is_dir() {
        in_tests
    } else {
        here.join("../tests/corpus")
    }
}

/// Parses a corpus file.
pub fn parse(file: &str, text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = || format!("{file}:{}", n + 1);
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("=== ") {
            cases.push(Case {
                name: name.trim().into(),
                location: at(),
                options: CaseOptions::default(),
                items: Vec::new(),
            });
            continue;
        }
        let case = cases
            .last_mut()
            .unwrap_or_else(|| panic!("{}: line before the first ===", at()));
        if let Some(opt) = line.strip_prefix("option ") {
            let mut words = opt.split_whitespace();
            match (words.next(), words.next()) {
                (Some("pipelining"), Some("off")) => case.options.pipelining = false,
                (Some("chunking"), Some("off")) => case.options.prefer_chunking = false,
                (Some("lmtp"), None) => case.options.lmtp = true,
                (Some("no-bytewise"), None) => case.options.bytewise = false,
                (Some("no-adapter-bytewise"), None) => case.options.adapter_bytewise = false,
                (Some("server-name"), Some(name)) => case.options.server_name = name.into(),
                (Some("local-name"), Some(name)) => case.options.local_name = name.into(),
                _ => panic!("{}: unknown option {opt:?}", at()),
            }
        } else if let Some(text) = line.strip_prefix("S: ") {
            let mut bytes = text.as_bytes().to_vec();
            bytes.extend_from_slice(b"\r\n");
            push_server(&mut case.items, bytes);
        } else if line == "S:" {
            push_server(&mut case.items, b"\r\n".to_vec());
        } else if let Some(text) = line.strip_prefix("S+ ") {
            push_server(&mut case.items, unescape(text));
        } else if let Some(text) = line.strip_prefix("C: ") {
            let mut bytes = text.as_bytes().to_vec();
            bytes.extend_from_slice(b"\r\n");
            case.items.push(Item::Client(bytes));
        } else if line == "C:" {
            case.items.push(Item::Client(b"\r\n".to_vec()));
        } else if let Some(text) = line.strip_prefix("C+ ") {
            case.items.push(Item::Client(unescape(text)));
        } else if line == "TLS" {
            case.items.push(Item::Tls);
        } else if line == "CLOSE" {
            case.items.push(Item::Close);
        } else if let Some(d) = line.strip_prefix("wait ") {
            let d = parse_duration(d.trim()).unwrap_or_else(|| panic!("{}: bad wait {d:?}", at()));
            case.items.push(Item::Wait(d));
        } else if let Some(action) = line.strip_prefix("> ") {
            case.items.push(Item::Action(
                parse_action(action).unwrap_or_else(|e| panic!("{}: {e}", at())),
            ));
        } else if let Some(outcome) = line.strip_prefix("= ") {
            case.items.push(Item::Expect(outcome.trim().into()));
        } else {
            panic!("{}: cannot parse {line:?}", at());
        }
    }
    cases
}

/// `301s`, `1500ms`.
fn parse_duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    s.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}

fn push_server(items: &mut Vec<Item>, bytes: Vec<u8>) {
    if let Some(Item::Server(prev)) = items.last_mut() {
        prev.extend_from_slice(&bytes);
    } else {
        items.push(Item::Server(bytes));
    }
}

/// Decodes `\r \n \t \0 \\ \" \xHH`.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'x' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    out.push(hex.unwrap_or_else(|| panic!("bad \\x escape in {s:?}")));
                    i += 2;
                }
                other => out.push(other),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

/// Splits on spaces, keeping `"quoted strings"` (with escapes) whole.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        word.push('\\');
                        word.push(chars.next().ok_or("dangling escape")?);
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                return Err("unterminated quote".into());
            }
            // Quoted words stay escaped; the action decides what they are.
            out.push(format!("\"{word}"));
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push(word);
        }
    }
    Ok(out)
}

/// A word as text: quoted words are unescaped.
fn text(word: &str) -> String {
    match word.strip_prefix('"') {
        Some(q) => String::from_utf8_lossy(&unescape(q)).into_owned(),
        None => word.to_owned(),
    }
}

fn bytes(word: &str) -> Vec<u8> {
    match word.strip_prefix('"') {
        Some(q) => unescape(q),
        None => word.as_bytes().to_vec(),
    }
}

fn parse_action(s: &str) -> Result<Action, String> {
    let w = words(s)?;
    let arg = |i: usize| {
        w.get(i)
            .map(|s| text(s))
            .ok_or_else(|| format!("{s:?}: missing argument {i}"))
    };
    let rest = |from: usize| w.iter().skip(from).map(|s| text(s)).collect::<Vec<_>>();
    Ok(match w.first().map(String::as_str) {
        Some("connect") => Action::Connect,
        Some("hello") => Action::Hello(arg(1)?),
        Some("starttls") => Action::StartTls,
        Some("auth") => Action::Auth {
            mechanism: arg(1)?,
            user: arg(2)?,
            secret: arg(3)?,
        },
        Some("mail") => Action::Mail(arg(1)?, rest(2)),
        Some("rcpt") => Action::Rcpt(arg(1)?, rest(2)),
        Some("data") => Action::Data(bytes(w.get(1).ok_or("data needs a body")?)),
        Some("bdat") => Action::Bdat(bytes(w.get(1).ok_or("bdat needs a body")?)),
        Some("send") => Action::Send {
            from: arg(1)?,
            to: arg(2)?.split(',').map(str::to_owned).collect(),
            body: bytes(w.get(3).ok_or("send needs a body")?),
            params: rest(4),
        },
        Some("batch") => Action::Batch {
            count: arg(1)?.parse().map_err(|_| "batch COUNT")?,
            from: arg(2)?,
            to: arg(3)?.split(',').map(str::to_owned).collect(),
            body: bytes(w.get(4).ok_or("batch needs a body")?),
        },
        Some("verify") => Action::Verify(arg(1)?),
        Some("noop") => Action::Noop,
        Some("reset") => Action::Reset,
        Some("quit") => Action::Quit,
        Some("extension") => Action::Extension(arg(1)?),
        _ => return Err(format!("unknown action {s:?}")),
    })
}

/// Whether `actual` satisfies `expected` (token prefix; `|` alternatives).
pub fn outcome_matches(expected: &str, actual: &str) -> bool {
    let got: Vec<&str> = actual.split_whitespace().collect();
    expected.split('|').any(|alt| {
        let want: Vec<&str> = alt.split_whitespace().collect();
        want.len() <= got.len() && want.iter().zip(&got).all(|(a, b)| a == b)
    })
}

/// `ok CODE [ENHANCED]`.
pub fn reply_outcome(reply: &smtp_sansio::Reply) -> String {
    match reply.enhanced_code() {
        Some(e) => format!("ok {} {e}", reply.code()),
        None => format!("ok {}", reply.code()),
    }
}

/// The outcome form of a core error.
pub fn error_outcome(e: &smtp_sansio::Error) -> String {
    use smtp_sansio::Error as E;
    match e {
        E::Rejected(r) => match r.reply.enhanced_code() {
            Some(enh) => format!("error rejected {} {enh}", r.reply.code()),
            None => format!("error rejected {}", r.reply.code()),
        },
        E::Protocol(p) => format!("error protocol {p:?}"),
        E::InvalidInput(i) => format!("error input {}", i.argument()),
        E::Usage(smtp_sansio::UsageError::SessionClosed) => "error closed".into(),
        E::Usage(u) => format!("error usage {u:?}"),
        E::Unsupported(u) => format!("error unsupported {u:?}"),
        E::Auth(a) => format!("error auth {a:?}"),
        E::NoRecipientAccepted(n) => {
            let mut s = String::from("error norcpt");
            let codes: Vec<String> = n
                .refusals
                .iter()
                .map(|r| r.reply.code().to_string())
                .collect();
            if !codes.is_empty() {
                s.push_str(&format!(" refused={}", codes.join(",")));
            }
            if let Some(reply) = &n.data_reply {
                s.push_str(&format!(" data={}", reply.code()));
            }
            s
        }
        E::RecipientRefused(r) => format!("error refused {}", r.reply.code()),
        E::Timeout { stage } => format!("error timeout {stage:?}"),
        E::Transport => "error io".into(),
        E::Abandoned => "error abandoned".into(),
        other => format!("error other {other:?}"),
    }
}

/// The outcome of a failed message: the error, and ` delivered=a,b` for
/// recipients that already have it (LMTP).
pub fn send_error_outcome(e: &smtp_sansio::SendError) -> String {
    let mut s = error_outcome(&e.error);
    let delivered: Vec<&str> = e.delivered().map(|r| r.address.as_str()).collect();
    if !delivered.is_empty() {
        s.push_str(&format!(" delivered={}", delivered.join(",")));
    }
    s
}

/// The outcome form of an adapter's error.
pub fn driver_outcome(e: &smtp_sansio::DriverError) -> String {
    match e {
        smtp_sansio::DriverError::Smtp(e) => error_outcome(e),
        smtp_sansio::DriverError::Tls(_) => "error tls".into(),
        other => format!("error io {other}"),
    }
}

/// [`send_error_outcome`] for an adapter's failed message.
pub fn driver_send_outcome(e: &smtp_sansio::SendError<smtp_sansio::DriverError>) -> String {
    let mut s = driver_outcome(&e.error);
    let delivered: Vec<&str> = e.delivered().map(|r| r.address.as_str()).collect();
    if !delivered.is_empty() {
        s.push_str(&format!(" delivered={}", delivered.join(",")));
    }
    s
}

/// `ok CODE refused=a,b` for a send report.
pub fn report_outcome(report: &smtp_sansio::SendReport) -> String {
    let refused: Vec<&str> = report.refused().map(|r| r.address.as_str()).collect();
    let mut s = reply_outcome(&report.reply);
    if !refused.is_empty() {
        s.push_str(&format!(" refused={}", refused.join(",")));
    }
    s
}

/// `ok valid|will-forward|cannot-verify`.
pub fn verify_outcome(v: smtp_sansio::Verification) -> String {
    match v {
        smtp_sansio::Verification::Valid => "ok valid",
        smtp_sansio::Verification::WillForward => "ok will-forward",
        smtp_sansio::Verification::CannotVerify => "ok cannot-verify",
    }
    .into()
}

/// Builds MAIL options from `key=value` words: `size=N`,
/// `body=7bit|8bitmime|binarymime|omit`, `smtputf8`, `ret=full|hdrs`,
/// `envid=X`, `requiretls`, `priority=N`, `by=SECONDS;R|N[T]`, `x-KEY=VALUE`.
pub fn mail_params(words: &[String]) -> Result<smtp_sansio::MailParams, String> {
    let mut p = smtp_sansio::MailParams::default();
    for w in words {
        let (k, v) = w.split_once('=').unwrap_or((w.as_str(), ""));
        match k {
            "size" => p.size = Some(v.parse().map_err(|_| format!("bad size {v}"))?),
            "body" => {
                p.body = match v {
                    "7bit" => smtp_sansio::BodyType::SevenBit,
                    "8bitmime" => smtp_sansio::BodyType::EightBitMime,
                    "binarymime" => smtp_sansio::BodyType::BinaryMime,
                    "omit" => smtp_sansio::BodyType::Omit,
                    _ => return Err(format!("bad body {v}")),
                }
            }
            "smtputf8" => p.smtputf8 = true,
            "ret" => {
                p.ret = Some(if v == "full" {
                    smtp_sansio::DsnReturn::Full
                } else {
                    smtp_sansio::DsnReturn::Headers
                })
            }
            "envid" => p.envid = Some(v.to_owned()),
            "requiretls" => p.requiretls = true,
            "priority" => p.mt_priority = Some(v.parse().map_err(|_| format!("bad priority {v}"))?),
            "by" => {
                let (secs, mode) = v.split_once(';').ok_or("by=SECONDS;MODE")?;
                p.deliver_by = Some(smtp_sansio::DeliverBy {
                    seconds: secs.parse().map_err(|_| "bad by seconds")?,
                    return_if_late: mode.starts_with('R'),
                    trace: mode.ends_with('T'),
                });
            }
            _ => {
                let value = if v.is_empty() {
                    None
                } else {
                    Some(v.to_owned())
                };
                p.extra
                    .push(smtp_sansio::EsmtpParam::new(k, value).map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(p)
}

/// Builds RCPT options: `notify=never|success,failure,delay`, `orcpt=ADDR`,
/// `x-KEY=VALUE`.
pub fn rcpt_params(words: &[String]) -> Result<smtp_sansio::RcptParams, String> {
    let mut p = smtp_sansio::RcptParams::default();
    for w in words {
        let (k, v) = w.split_once('=').unwrap_or((w.as_str(), ""));
        match k {
            "notify" if v == "never" => p.notify = Some(smtp_sansio::DsnNotify::Never),
            "notify" => {
                p.notify = Some(smtp_sansio::DsnNotify::On {
                    success: v.contains("success"),
                    failure: v.contains("failure"),
                    delay: v.contains("delay"),
                })
            }
            "orcpt" => p.orcpt = Some(smtp_sansio::Mailbox::new(v).map_err(|e| e.to_string())?),
            _ => {
                let value = if v.is_empty() {
                    None
                } else {
                    Some(v.to_owned())
                };
                p.extra
                    .push(smtp_sansio::EsmtpParam::new(k, value).map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(p)
}

/// Builds an auth mechanism from an `auth` action.
pub fn mechanism(
    name: &str,
    user: &str,
    secret: &str,
    host: &str,
) -> Box<dyn smtp_sansio::Auth + Send> {
    match name {
        "plain" => Box::new(smtp_sansio::PlainAuth::new("", user, secret, host)),
        "plain-insecure" => {
            Box::new(smtp_sansio::PlainAuth::new("", user, secret, host).allow_insecure_transport())
        }
        "login" => Box::new(smtp_sansio::LoginAuth::new(user, secret, host)),
        "cram-md5" => Box::new(smtp_sansio::CramMd5Auth::new(user, secret)),
        "xoauth2" => Box::new(smtp_sansio::XOAuth2::new(user, secret)),
        "oauthbearer" => Box::new(smtp_sansio::OAuthBearer::new(user, secret, host, 587)),
        other => panic!("unknown mechanism {other}"),
    }
}

/// The envelope of a `send` action.
pub fn envelope(
    from: &str,
    to: &[String],
    params: &[String],
) -> Result<smtp_sansio::Envelope, smtp_sansio::Error> {
    let mut env = smtp_sansio::Envelope::new(from, to)?;
    env.require_all_recipients = params.iter().any(|p| p == "require-all");
    let params: Vec<String> = params
        .iter()
        .filter(|p| *p != "require-all")
        .cloned()
        .collect();
    let mut extra = mail_params(&params).map_err(|_| {
        smtp_sansio::Error::InvalidInput(smtp_sansio::InvalidInput::new("params", "bad"))
    })?;
    extra.smtputf8 |= env.params.smtputf8;
    env.params = extra;
    Ok(env)
}

/// The actions of a case with their expectations (`ok` when none given).
pub fn actions(case: &Case) -> Vec<(Action, String)> {
    let mut out: Vec<(Action, String)> = Vec::new();
    if !matches!(
        case.items.iter().find(|i| matches!(i, Item::Action(_))),
        Some(Item::Action(Action::Connect))
    ) {
        out.push((Action::Connect, "ok".into()));
    }
    for item in &case.items {
        match item {
            Item::Action(a) => out.push((a.clone(), "ok".into())),
            Item::Expect(e) => {
                if let Some(last) = out.last_mut() {
                    last.1 = e.clone();
                }
            }
            _ => {}
        }
    }
    out
}
