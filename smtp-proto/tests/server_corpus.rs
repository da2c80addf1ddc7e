//! The transcript corpus in the other direction: client bytes in, the exact
//! bytes our [`Server`] must write out (`tests/corpus/server/*.smtp`).
//!
//! Each case is replayed three ways: every input step given whole, byte by
//! byte, and cut in two at every offset. Given whole, the writes must also
//! fall where the script says (a pipelined group is answered in one write);
//! the other feeds compare each step's bytes.
//!
//! # Format
//!
//! ```text
//! === name of the case
//! config lmtp                     # the server configuration, see `configure`
//! app refuse rcpt x@y 550 5.1.1 No such user   # the application, see `App`
//! S: 220 mx.example ESMTP         # before any input: the greeting
//! C: EHLO c.example               # client input: the line + CRLF
//! C+ raw\r\nbytes                 # ... or raw bytes (\r \n \t \0 \\ \xHH)
//!                                 # consecutive C lines are one input step
//! S: 250-mx.example               # the step's expected output; consecutive
//! S: 250 PIPELINING               # S lines are one write ...
//! --                              # ... and `--` starts the next write
//! tls                             # the driver's TLS handshake completes
//! eof                             # the client closes its side
//! wait 301s                       # time passes (also `ms`); a deadline of
//!                                 # the session's inside it fires
//! = message Subject: x\r\n        # an event the step must produce (in order)
//! = closed quit                   # the session ended, for this reason
//! whole-only                      # not replayed byte by byte nor split
//! known-bug TEXT                  # the server gets this case wrong: it
//!                                 # must fail (and is listed) until fixed
//! ```
//!
//! A step with no `S:` lines must write nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use smtp_sansio::server::{
    AbortReason, BareLineEnding, CloseReason, ConnectionInfo, Credentials, Handler, HelloKind,
    Response, Server, ServerConfig, ServerEvent, ServerMechanism, ServerOutput, Transaction,
};
use smtp_sansio::{
    EnhancedCode, MailParams, Mailbox, RcptParams, ReplyCode, ReversePath, Timestamp,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// The connection is accepted: the greeting.
    Start,
    Input(Vec<u8>),
    Tls,
    Eof,
    Wait(Duration),
}

#[derive(Debug, Clone)]
struct Step {
    action: Action,
    /// Expected writes, in order.
    writes: Vec<Vec<u8>>,
    /// Expected events, in order (a subsequence of what happened).
    events: Vec<String>,
    line: usize,
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    location: String,
    config: Vec<String>,
    app: Vec<String>,
    /// `known-bug TEXT`: the case says what the server should do and it
    /// does not yet; the case must fail until the bug is fixed.
    known_bug: Option<String>,
    /// `whole-only`: the case's outcome depends on the input steps
    /// arriving whole (or it is too long to replay at every split).
    whole_only: bool,
    steps: Vec<Step>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/server")
}

fn load() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "smtp"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read corpus file");
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        cases.extend(parse(&file, &text));
    }
    cases
}

fn parse(file: &str, text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("=== ") {
            cases.push(Case {
                name: name.trim().into(),
                location: at,
                config: Vec::new(),
                app: Vec::new(),
                known_bug: None,
                whole_only: false,
                steps: vec![Step {
                    action: Action::Start,
                    writes: Vec::new(),
                    events: Vec::new(),
                    line: n + 1,
                }],
            });
            continue;
        }
        let case = cases
            .last_mut()
            .unwrap_or_else(|| panic!("{at}: line before the first ==="));
        let new_step = |case: &mut Case, action: Action| {
            case.steps.push(Step {
                action,
                writes: Vec::new(),
                events: Vec::new(),
                line: n + 1,
            });
        };
        let input = |case: &mut Case, bytes: Vec<u8>| {
            let last = case.steps.last_mut().expect("a step");
            if let (Action::Input(prev), true, true) = (
                &mut last.action,
                last.writes.is_empty(),
                last.events.is_empty(),
            ) {
                prev.extend_from_slice(&bytes);
            } else {
                new_step(case, Action::Input(bytes));
            }
        };
        let output = |case: &mut Case, bytes: Vec<u8>| {
            let last = case.steps.last_mut().expect("a step");
            match last.writes.last_mut() {
                Some(w) => w.extend_from_slice(&bytes),
                None => last.writes.push(bytes),
            }
        };
        if line == "whole-only" {
            case.whole_only = true;
        } else if let Some(b) = line.strip_prefix("known-bug ") {
            case.known_bug = Some(b.trim().into());
        } else if let Some(c) = line.strip_prefix("config ") {
            case.config.push(c.trim().into());
        } else if let Some(a) = line.strip_prefix("app ") {
            case.app.push(a.trim().into());
        } else if let Some(t) = line.strip_prefix("C: ") {
            input(case, [t.as_bytes(), b"\r\n"].concat());
        } else if line == "C:" {
            input(case, b"\r\n".to_vec());
        } else if let Some(t) = line.strip_prefix("C+ ") {
            input(case, unescape(t));
        } else if let Some(t) = line.strip_prefix("S: ") {
            output(case, [t.as_bytes(), b"\r\n"].concat());
        } else if let Some(t) = line.strip_prefix("S+ ") {
            output(case, unescape(t));
        } else if line == "--" {
            case.steps
                .last_mut()
                .expect("a step")
                .writes
                .push(Vec::new());
        } else if let Some(e) = line.strip_prefix("= ") {
            case.steps
                .last_mut()
                .expect("a step")
                .events
                .push(e.trim().into());
        } else if line == "tls" {
            new_step(case, Action::Tls);
        } else if line == "eof" {
            new_step(case, Action::Eof);
        } else if let Some(d) = line.strip_prefix("wait ") {
            let d = d.trim();
            let d = if let Some(ms) = d.strip_suffix("ms") {
                ms.parse().ok().map(Duration::from_millis)
            } else {
                d.strip_suffix('s')
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs)
            };
            new_step(
                case,
                Action::Wait(d.unwrap_or_else(|| panic!("{at}: bad wait"))),
            );
        } else {
            panic!("{at}: cannot parse {line:?}");
        }
    }
    cases
}

/// Decodes `\r \n \t \0 \\ \xHH`.
fn unescape(s: &str) -> Vec<u8> {
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

/// The escaped form of bytes, as events show bodies (`\r`, `\n`, `\t`,
/// `\\`, `\xHH` for other controls and non-ASCII).
fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..0x7f => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// The server configuration from `config` lines:
/// `hostname NAME`, `greeting TEXT`, `lmtp`, `pipelining off`,
/// `chunking off`, `binarymime off`, `8bitmime off`, `smtputf8 off`, `dsn`,
/// `enhanced-codes off`, `requiretls`, `starttls`, `auth MECH...`,
/// `auth-without-tls`, `require-auth`, `require-tls`,
/// `accept-unknown-params`, `bare-lf normalize`, `max-line-len N`,
/// `max-recipients N`, `max-message-size N`, `max-errors N`,
/// `max-idle-commands N`, `max-auth-failures N`, `max-buffered-input N`,
/// `command-timeout S`, `data-timeout S`, `message-timeout S`,
/// `tls-timeout S`; and for the connection `implicit-tls` and
/// `nonce TEXT` (default `n0nce`), `no-nonce`.
fn configure(lines: &[String]) -> Result<(ServerConfig, ConnectionInfo), String> {
    let mut c = ServerConfig::new("mx.example");
    let mut tls = false;
    let mut nonce = Some(String::from("n0nce"));
    for line in lines {
        let (key, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let num = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("config {key}: bad number {value:?}"))
        };
        match (key, value) {
            ("hostname", v) => c.hostname = v.into(),
            ("greeting", v) => c.greeting = v.into(),
            ("lmtp", "") => c.lmtp = true,
            ("pipelining", "off") => c.pipelining = false,
            ("chunking", "off") => c = c.with_chunking(false),
            ("binarymime", "off") => c.binary_mime = false,
            ("8bitmime", "off") => c.eight_bit_mime = false,
            ("smtputf8", "off") => c.smtputf8 = false,
            ("dsn", "") => c.dsn = true,
            ("enhanced-codes", "off") => c.enhanced_status_codes = false,
            ("requiretls", "") => c.requiretls = true,
            ("starttls", "") => c.starttls = true,
            ("auth", v) => {
                c.auth_mechanisms = v
                    .split_whitespace()
                    .map(|m| match m {
                        "PLAIN" => Ok(ServerMechanism::Plain),
                        "LOGIN" => Ok(ServerMechanism::Login),
                        "CRAM-MD5" => Ok(ServerMechanism::CramMd5),
                        _ => Err(format!("unknown mechanism {m}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            ("auth-without-tls", "") => c.auth_without_tls = true,
            ("require-auth", "") => c.require_auth = true,
            ("require-tls", "") => c.require_tls = true,
            ("accept-unknown-params", "") => c.accept_unknown_params = true,
            ("bare-lf", "normalize") => c.bare_line_ending = BareLineEnding::Normalize,
            ("bare-lf", "refuse") => c.bare_line_ending = BareLineEnding::Refuse,
            ("max-line-len", _) => c.limits.max_line_len = num()? as usize,
            ("max-recipients", _) => c.limits.max_recipients = num()? as usize,
            ("max-message-size", _) => c.limits.max_message_size = num()?,
            ("max-errors", _) => c.limits.max_errors = num()? as u32,
            ("max-idle-commands", _) => c.limits.max_idle_commands = num()? as u32,
            ("max-auth-failures", _) => c.limits.max_auth_failures = num()? as u32,
            ("max-buffered-input", _) => c.limits.max_buffered_input = num()? as usize,
            ("command-timeout", _) => c.timeouts.command = Duration::from_secs(num()?),
            ("data-timeout", _) => c.timeouts.data_block = Duration::from_secs(num()?),
            ("message-timeout", _) => c.timeouts.message = Duration::from_secs(num()?),
            ("tls-timeout", _) => c.timeouts.tls_handshake = Duration::from_secs(num()?),
            ("implicit-tls", "") => tls = true,
            ("nonce", v) => nonce = Some(v.into()),
            ("no-nonce", "") => nonce = None,
            _ => return Err(format!("unknown config {line:?}")),
        }
    }
    let mut conn = ConnectionInfo::new().with_tls(tls);
    if let Some(n) = nonce {
        conn = conn.with_nonce(n);
    }
    Ok((c, conn))
}

/// A refusal in `app` lines: `CODE ENHANCED|- TEXT...`.
fn refusal(words: &[&str]) -> Result<Response, String> {
    let code = words
        .first()
        .and_then(|c| c.parse().ok())
        .and_then(ReplyCode::new)
        .ok_or("app: bad reply code")?;
    let enhanced = match words.get(1) {
        Some(&"-") | None => None,
        Some(e) => {
            let n: Vec<u16> = e.split('.').filter_map(|p| p.parse().ok()).collect();
            match n[..] {
                [c, s, d] => EnhancedCode::new(c as u8, s, d),
                _ => return Err(format!("app: bad enhanced code {e}")),
            }
        }
    };
    let text = words.get(2..).map(|w| w.join(" ")).unwrap_or_default();
    Ok(Response::refuse(code, enhanced, text.replace("\\n", "\n")))
}

/// The application: accepts everything unless an `app` line says
/// otherwise, and writes down what it hears as event strings.
///
/// `app refuse hello|mail|rcpt|verify ADDR CODE ENH TEXT` (ADDR `*` for any),
/// `app refuse message CODE ENH TEXT`, `app lmtp refuse ADDR CODE ENH TEXT`
/// (that recipient's reply after the message), `app message-text TEXT`
/// (the acceptance's text), `app verify ADDR TEXT` (a `250` answer),
/// `app password USER PASS`, `app cram-secret SECRET`.
#[derive(Default)]
struct App {
    refusals: Vec<(String, String, Response)>,
    message: Option<Response>,
    message_text: Option<String>,
    lmtp: Vec<(String, Response)>,
    verify: Vec<(String, String)>,
    passwords: Vec<(String, String)>,
    cram_secret: Option<String>,
    body: Vec<u8>,
    log: Vec<String>,
}

impl App {
    fn new(lines: &[String]) -> Result<Self, String> {
        let mut app = Self::default();
        for line in lines {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w[..] {
                ["refuse", "message", ref rest @ ..] => app.message = Some(refusal(rest)?),
                ["refuse", what, who, ref rest @ ..] => {
                    app.refusals.push((what.into(), who.into(), refusal(rest)?));
                }
                ["lmtp", "refuse", who, ref rest @ ..] => {
                    app.lmtp.push((who.into(), refusal(rest)?));
                }
                ["message-text", ref rest @ ..] => app.message_text = Some(rest.join(" ")),
                ["verify", who, ref rest @ ..] => app.verify.push((who.into(), rest.join(" "))),
                ["password", user, pass] => app.passwords.push((user.into(), pass.into())),
                ["cram-secret", secret] => app.cram_secret = Some(secret.into()),
                _ => return Err(format!("unknown app line {line:?}")),
            }
        }
        Ok(app)
    }

    fn decide(&self, what: &str, who: &str) -> Response {
        self.refusals
            .iter()
            .find(|(w, a, _)| w == what && (a == who || a == "*"))
            .map_or_else(Response::accept, |(_, _, r)| r.clone())
    }

    fn accept_message(&self) -> Response {
        if let Some(r) = &self.message {
            return r.clone();
        }
        match &self.message_text {
            Some(t) => Response::accept_with(t.clone()),
            None => Response::accept(),
        }
    }
}

fn mail_params(p: &MailParams) -> String {
    let mut s = String::new();
    if let Some(n) = p.size {
        s.push_str(&format!(" size={n}"));
    }
    if !matches!(
        p.body,
        smtp_sansio::BodyType::Omit | smtp_sansio::BodyType::Auto
    ) {
        s.push_str(&format!(" body={:?}", p.body));
    }
    if p.smtputf8 {
        s.push_str(" smtputf8");
    }
    if let Some(r) = p.ret {
        s.push_str(&format!(" ret={r:?}"));
    }
    if let Some(e) = &p.envid {
        s.push_str(&format!(" envid={e}"));
    }
    if p.requiretls {
        s.push_str(" requiretls");
    }
    for x in &p.extra {
        s.push_str(&format!(" {}={}", x.keyword(), x.value().unwrap_or("")));
    }
    s
}

fn rcpt_params(p: &RcptParams) -> String {
    let mut s = String::new();
    if let Some(n) = &p.notify {
        s.push_str(&format!(" notify={n:?}"));
    }
    if let Some(o) = &p.orcpt {
        s.push_str(&format!(" orcpt={o}"));
    }
    for x in &p.extra {
        s.push_str(&format!(" {}={}", x.keyword(), x.value().unwrap_or("")));
    }
    s
}

impl Handler for App {
    fn hello(&mut self, kind: HelloKind, domain: &str) -> Response {
        self.log.push(format!("hello {kind:?} {domain}"));
        self.decide("hello", domain)
    }
    fn auth(&mut self, credentials: &Credentials) -> Response {
        let (mech, ok) = match credentials {
            Credentials::Password { mechanism, .. } => (
                mechanism.name(),
                self.passwords
                    .iter()
                    .any(|(u, p)| credentials.verify_password(u, p)),
            ),
            Credentials::CramMd5 { .. } => (
                "CRAM-MD5",
                self.cram_secret
                    .as_deref()
                    .is_some_and(|s| credentials.verify_cram_md5(s)),
            ),
            _ => ("?", false),
        };
        self.log.push(format!(
            "auth {mech} {} {}",
            credentials.username(),
            if ok { "ok" } else { "bad" }
        ));
        if ok {
            Response::accept()
        } else {
            Response::refuse(
                ReplyCode::new(535).expect("code"),
                EnhancedCode::new(5, 7, 8),
                "Authentication credentials invalid",
            )
        }
    }
    fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Response {
        self.log
            .push(format!("mail <{}>{}", from.as_str(), mail_params(params)));
        self.decide("mail", from.as_str())
    }
    fn rcpt(&mut self, to: &Mailbox, params: &RcptParams) -> Response {
        self.log.push(format!("rcpt <{to}>{}", rcpt_params(params)));
        self.decide("rcpt", to.as_str())
    }
    fn body(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
    }
    fn message(&mut self, t: &Transaction) -> Response {
        let body = std::mem::take(&mut self.body);
        let event = format!("message {}", escape(&body));
        self.log.push(event.trim_end().into());
        let _ = t;
        self.accept_message()
    }
    fn lmtp_message(&mut self, t: &Transaction) -> Vec<Response> {
        let first = self.message(t);
        t.recipients
            .iter()
            .map(|(to, _)| {
                self.lmtp
                    .iter()
                    .find(|(who, _)| who == to.as_str())
                    .map_or_else(|| first.clone(), |(_, r)| r.clone())
            })
            .collect()
    }
    fn verify(&mut self, argument: &str) -> Response {
        self.log.push(format!("verify {argument}"));
        if let Some((_, text)) = self.verify.iter().find(|(w, _)| w == argument) {
            return Response::accept_with(text.clone());
        }
        self.decide("verify", argument)
    }
    fn reset(&mut self) {
        self.body.clear();
        self.log.push("reset".into());
    }
    fn aborted(&mut self, reason: AbortReason) {
        self.body.clear();
        let r = match reason {
            AbortReason::TooLarge => "too-large",
            AbortReason::BareLineEnding => "bare-line-ending",
            AbortReason::ConnectionLost => "connection-lost",
            AbortReason::Timeout => "timeout",
            _ => "other",
        };
        self.log.push(format!("aborted {r}"));
    }
    fn tls_started(&mut self) {
        self.log.push("tls-started".into());
    }
}

fn close_reason(r: Option<CloseReason>) -> String {
    match r {
        Some(CloseReason::Quit) => "quit",
        Some(CloseReason::Eof) => "eof",
        Some(CloseReason::Timeout) => "timeout",
        Some(CloseReason::TooManyErrors) => "too-many-errors",
        Some(CloseReason::TooManyIdleCommands) => "too-many-idle-commands",
        Some(CloseReason::TooManyAuthFailures) => "too-many-auth-failures",
        Some(CloseReason::InputAfterStartTls) => "input-after-starttls",
        Some(CloseReason::InputOverflow) => "input-overflow",
        Some(CloseReason::Transport) => "transport",
        Some(CloseReason::Shutdown) => "shutdown",
        Some(_) => "other",
        None => "none",
    }
    .into()
}

#[derive(Debug, Clone, Copy)]
enum Feed {
    Whole,
    Bytewise,
    Split(usize),
}

struct Run {
    server: Server,
    app: App,
    now: Timestamp,
    /// The deadline of the last Wait or StartTls.
    deadline: Option<Timestamp>,
    starttls: bool,
    closed: bool,
}

impl Run {
    /// Runs the session until it waits; the writes.
    fn run(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let mut writes = Vec::new();
        for _ in 0..100_000 {
            match self.server.poll_output(self.now) {
                ServerOutput::Transmit { bytes, .. } => writes.push(bytes.to_vec()),
                ServerOutput::Event(e) => {
                    if matches!(e, ServerEvent::Message { .. }) {
                        // The transaction's envelope, as the application sees it.
                        if let Some(t) = self.server.transaction() {
                            let to: Vec<String> =
                                t.recipients.iter().map(|(m, _)| m.to_string()).collect();
                            self.app.log.push(format!(
                                "envelope <{}> {}",
                                t.from.as_str(),
                                to.join(",")
                            ));
                        }
                    }
                    self.server.dispatch(e, &mut self.app);
                }
                ServerOutput::AwaitingResponse => {
                    return Err("AwaitingResponse after dispatch".into());
                }
                ServerOutput::StartTls { deadline } => {
                    self.starttls = true;
                    self.deadline = Some(deadline);
                    return Ok(writes);
                }
                ServerOutput::Closed => {
                    if !self.closed {
                        self.closed = true;
                        let r = close_reason(self.server.close_reason());
                        self.app.log.push(format!("closed {r}"));
                    }
                    return Ok(writes);
                }
                ServerOutput::Wait(d) => {
                    self.deadline = Some(d);
                    return Ok(writes);
                }
                other => return Err(format!("unexpected output {other:?}")),
            }
        }
        Err("the session never waits".into())
    }
}

fn show(writes: &[Vec<u8>]) -> String {
    let parts: Vec<String> = writes.iter().map(|w| escape(w)).collect();
    format!("[{}]", parts.join(" | "))
}

fn run_case(case: &Case, feed: Feed) -> Result<(), String> {
    let (config, conn) = configure(&case.config)?;
    let app = App::new(&case.app)?;
    let mut r = Run {
        server: Server::new(Arc::new(config), conn, Timestamp::ZERO),
        app,
        now: Timestamp::ZERO,
        deadline: None,
        starttls: false,
        closed: false,
    };
    for step in &case.steps {
        let logged = r.app.log.len();
        let mut writes = Vec::new();
        match &step.action {
            Action::Start => writes = r.run()?,
            Action::Input(bytes) => {
                if r.closed {
                    return Err(format!(
                        "line {}: input after the session closed",
                        step.line
                    ));
                }
                let pieces: Vec<&[u8]> = match feed {
                    Feed::Whole => vec![bytes],
                    Feed::Bytewise => bytes.chunks(1).collect(),
                    Feed::Split(k) if k < bytes.len() => vec![&bytes[..k], &bytes[k..]],
                    Feed::Split(_) => vec![bytes],
                };
                for p in pieces {
                    r.server.handle_input(r.now, p);
                    writes.extend(r.run()?);
                }
            }
            Action::Tls => {
                if !std::mem::take(&mut r.starttls) {
                    return Err(format!("line {}: tls, but no StartTls asked", step.line));
                }
                r.server.handle_tls_established(r.now);
                writes = r.run()?;
            }
            Action::Eof => {
                r.server.handle_eof(r.now);
                writes = r.run()?;
            }
            Action::Wait(d) => {
                let later = r.now.saturating_add(*d);
                match r.deadline {
                    Some(at) if at <= later && !r.closed => {
                        r.now = at;
                        r.server.handle_timeout(r.now);
                        writes = r.run()?;
                    }
                    _ => r.now = later,
                }
            }
        }
        let ok = match feed {
            Feed::Whole => writes == step.writes,
            _ => writes.concat() == step.writes.concat(),
        };
        if !ok {
            return Err(format!(
                "line {} ({}):\n  expected {}\n  actual   {}",
                step.line,
                match &step.action {
                    Action::Input(b) => escape(b),
                    other => format!("{other:?}"),
                },
                show(&step.writes),
                show(&writes)
            ));
        }
        let got = &r.app.log[logged..];
        let mut it = got.iter();
        for want in &step.events {
            if !it.any(|g| g == want) {
                return Err(format!(
                    "line {}: expected event `{want}` (in order) among {got:?}",
                    step.line
                ));
            }
        }
    }
    Ok(())
}

fn check(feed_name: &str, runs: impl Fn(&Case) -> Result<(), String>) {
    let cases = load();
    let mut failures = Vec::new();
    for case in &cases {
        match (runs(case), &case.known_bug) {
            (Err(e), None) => {
                failures.push(format!(
                    "{} ({}) [{feed_name}]: {e}",
                    case.name, case.location
                ));
            }
            (Ok(()), Some(bug)) => failures.push(format!(
                "{} ({}) [{feed_name}]: passes: the known bug ({bug}) is fixed, \
                 remove the known-bug line",
                case.name, case.location
            )),
            (Err(e), Some(bug)) => {
                println!("known bug: {} ({}): {bug}\n  {e}", case.name, case.location);
            }
            (Ok(()), None) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn server_corpus_whole() {
    check("whole", |c| run_case(c, Feed::Whole));
    let cases = load();
    assert!(cases.len() >= 40, "only {} server cases", cases.len());
}

#[test]
fn server_corpus_bytewise() {
    check("bytewise", |c| {
        if c.whole_only {
            return run_case(c, Feed::Whole);
        }
        run_case(c, Feed::Bytewise)
    });
}

#[test]
fn server_corpus_split_at_every_offset() {
    check("split", |c| {
        if c.whole_only {
            return run_case(c, Feed::Whole);
        }
        let longest = c
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Input(b) => b.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        for k in 1..longest {
            run_case(c, Feed::Split(k)).map_err(|e| format!("split at {k}: {e}"))?;
        }
        Ok(())
    });
}

#[test]
fn every_command_is_covered() {
    // Guard against the corpus losing whole areas by accident.
    let cases = load();
    let input: Vec<u8> = cases
        .iter()
        .flat_map(|c| c.steps.iter())
        .filter_map(|s| match &s.action {
            Action::Input(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let text = String::from_utf8_lossy(&input).to_ascii_uppercase();
    for word in [
        "EHLO",
        "HELO",
        "LHLO",
        "MAIL FROM",
        "RCPT TO",
        "DATA",
        "BDAT",
        "RSET",
        "VRFY",
        "EXPN",
        "HELP",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "AUTH PLAIN",
        "AUTH LOGIN",
        "AUTH CRAM-MD5",
        "SIZE=",
        "BODY=",
        "SMTPUTF8",
        "RET=",
        "ENVID=",
        "NOTIFY=",
        "ORCPT=",
        "REQUIRETLS",
    ] {
        assert!(text.contains(word), "no case sends {word}");
    }
    let all =
        |f: &dyn Fn(&Action) -> bool| cases.iter().any(|c| c.steps.iter().any(|s| f(&s.action)));
    assert!(all(&|a| matches!(a, Action::Tls)));
    assert!(all(&|a| matches!(a, Action::Eof)));
    assert!(all(&|a| matches!(a, Action::Wait(_))));
}
