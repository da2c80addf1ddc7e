//! `server_session`: arbitrary client bytes, a virtual clock and the
//! application's decisions drive the sans-IO server session the way a
//! driver does (drain `poll_output`, do what it says).

use std::sync::Arc;
use std::time::Duration;

use smtp_sansio::server::{
    AbortReason, BareLineEnding, ConnectionInfo, Credentials, Handler, HelloKind, Response, Server,
    ServerConfig, ServerEvent, ServerLimits, ServerMechanism, ServerOutput, ServerTimeouts,
    ServerUsageError, Transaction,
};
use smtp_sansio::{
    EnhancedCode, MailParams, Mailbox, RcptParams, ReplyCode, ReversePath, Timestamp, dot_unstuff,
};

use crate::alloc::Meter;
use crate::commands::is_unicode_control;
use crate::input::{Chunks, header};

/// The header's length.
const HEADER: usize = 7;
/// In the client's bytes, this byte and the next are the driver's.
const MARK: u8 = 0xFE;
/// Ends the decisions, which come first after the header.
const DECISIONS_END: u8 = 0xFF;
/// The server's DATA reader passes on a line this long before its end.
const PARTIAL_LINE: usize = 4000;

/// Clock steps: around the RFC 5321 timeouts and the harness's 30 s.
const DELAYS_MS: [u64; 16] = [
    0, 1, 1_000, 10_000, 29_000, 31_000, 60_000, 119_000, 121_000, 179_000, 181_000, 299_000,
    301_000, 599_000, 601_000, 3_600_000,
];

fn delay(code: u8) -> Duration {
    Duration::from_millis(DELAYS_MS[usize::from(code & 0x0f)])
}

const HOST: &str = "mx.example";

/// Header (7 bytes), the application's decisions up to the first `0xFF`,
/// then the client's bytes with the driver's marks.
///
/// - `h[0]` session: 0x01 LMTP, 0x02 STARTTLS offered, 0x04
///   `auth_without_tls`, 0x08 CHUNKING off, 0x10 bare line endings
///   normalised (else refused), 0x20 implicit TLS, 0x40 a nonce (so
///   CRAM-MD5 is offered), 0x80 PIPELINING and ENHANCEDSTATUSCODES off.
/// - `h[1]` AUTH and policy: bits 0–2 offer PLAIN, LOGIN, CRAM-MD5; 0x08
///   `require_auth`, 0x10 `require_tls`, 0x20 DSN, 0x40
///   `accept_unknown_params`, 0x80 REQUIRETLS on and SMTPUTF8 off.
/// - `h[2]` limits: bits 0–2 `max_line_len` 64 + 64 k (64 … 512), bits 3–5
///   `max_recipients` k % 5 + 1, bits 6–7 `max_errors` 2, 3, 5 or 20.
/// - `h[3]` bits 0–2 `max_message_size` 0, 1, 16, 64, 256, 1024, 5000 or
///   the default; bits 3–4 timeouts: the defaults, all 30 s, all zero, all
///   `Duration::MAX`; bits 5–6 `max_idle_commands` 2, 5, 20, 100; 0x80
///   `max_auth_failures` 1 (else 3).
/// - `h[4]`, `h[5]` the sizes the client's bytes are cut into, in turn (0:
///   the rest of the segment).
/// - `h[6]` TLS: bits 0–1 the handshake: 0 at once, 1 after delay `h[6] >>
///   4`, 2 it fails, 3 a pause: the driver first does the next step of the
///   script (plaintext in the pause, or time passing); bits 2–3 unused.
///
/// Decision bytes are used in turn, one per request event (none: accept
/// everything at once): bits 0–2 the response (0, 1 accept, 2
/// `accept_with`, 3 `temporary`, 4 `permanent`, 5 a refusal coded 354, 6 a
/// multi-line refusal full of controls, 7 a refusal coded 250); 0x08
/// through `dispatch` and a `Handler`; bits 4–5 for an LMTP message: 0
/// `respond_each` (recipient `i` gets the response of the decision `i`
/// further on), 1 one `respond` for all, 2 `respond_each` with one too
/// many first, 3 one too few first (each refused, changing nothing); 0x40
/// defer: answer only after the next step of the script; 0x80 wrong calls
/// around the answer (`respond_each(&[])` before, `respond` after), which
/// must be refused.
///
/// In the client's bytes, `0xFE d` is the driver's: `d < 0x80` time passes
/// (delay `d & 15` plus `d >> 4` minutes) and `handle_timeout` is called;
/// `0x80..=0x8F` the next write takes delay `d & 15`; `0xFA` an early
/// `handle_timeout`; `0xFB` the client closes (EOF; the rest is ignored);
/// `0xFC` `shutdown`; `0xFD` the connection fails; `0xFE` a literal `0xFE`.
/// After the script the client closes.
///
/// Checked: no panic; bounded steps; every `Transmit` is whole replies of
/// well-formed lines (`ddd[ -]text CRLF`, 2xx–5xx, the same code on every
/// line of a reply, `-` on all but the last, text printable: no C0, DEL, C1
/// or Unicode line or format control), the first the 220 greeting, within
/// 1000 + 64 bytes per input byte in all, and its deadline not in the past;
/// heap growth bounded per input byte; the session's transaction is always
/// the one the application's answers made (the recipients it accepted);
/// `Mail` only without a transaction and with the TLS and AUTH the
/// configuration requires, `Rcpt` only with one and under
/// `max_recipients`, `Auth` only over TLS or with `auth_without_tls`,
/// `TlsStarted` with TLS up and nobody authenticated; `Body` only while a
/// transaction with a recipient is open, never empty, its total within
/// `max_message_size`; `Message` only with a recipient, its size the body
/// given; `Aborted(BareLineEnding)` only under `Refuse`; a DATA body
/// (sessions without BDAT) never holds a bare CR or LF and equals
/// `dot_unstuff` of the raw bytes between a `DATA` line and the next
/// `CRLF.CRLF`, in order; wrong calls are refused with the right error;
/// nothing is written after `Closed`, EOF or a failed connection, and
/// `Closed` is final; `AwaitingResponse` only while an answer is deferred;
/// a `Wait` or `StartTls` deadline is never before the last input, answer
/// or handshake; with no whole line sent since the last `Wait` (and no
/// answer, handshake or BDAT), the deadline does not move later.
pub fn server_session(data: &[u8]) {
    Run::new(data, false).run();
}

/// Runs [`server_session`] and returns what happened: `C:` the client's
/// bytes, `S:` each reply line, `E:` each event, `-- …` the driver's
/// doings, and last `closed <reason>`.
pub fn server_session_trace(data: &[u8]) -> Vec<String> {
    let mut run = Run::new(data, true);
    run.run();
    run.trace.unwrap_or_default()
}

/// Runs [`server_session`], printing the trace of
/// [`server_session_trace`] as it goes (for `examples/replay.rs`: a
/// failing input shows what led to the failure).
pub fn server_session_print(data: &[u8]) {
    let mut run = Run::new(data, true);
    run.echo = true;
    run.run();
}

#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Input(&'a [u8]),
    Time(u8),
    SlowWrite(u8),
    EarlyTimeout,
    Eof,
    Shutdown,
    Fail,
}

fn steps(script: &[u8]) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut rest = script;
    while !rest.is_empty() {
        let Some(i) = rest.iter().position(|&b| b == MARK) else {
            out.push(Step::Input(rest));
            break;
        };
        if i > 0 {
            out.push(Step::Input(&rest[..i]));
        }
        let Some(&d) = rest.get(i + 1) else { break };
        rest = &rest[i + 2..];
        out.push(match d {
            0x00..=0x7f => Step::Time(d),
            0x80..=0x8f => Step::SlowWrite(d),
            0xfa => Step::EarlyTimeout,
            0xfb => Step::Eof,
            0xfc => Step::Shutdown,
            0xfd => Step::Fail,
            0xfe => Step::Input(&[MARK]),
            _ => continue,
        });
    }
    out
}

fn config(h: &[u8; HEADER]) -> ServerConfig {
    let mut mechanisms = Vec::new();
    for (bit, m) in [
        ServerMechanism::Plain,
        ServerMechanism::Login,
        ServerMechanism::CramMd5,
    ]
    .into_iter()
    .enumerate()
    {
        if h[1] & (1 << bit) != 0 {
            mechanisms.push(m);
        }
    }
    let mut limits = ServerLimits::default();
    limits.max_line_len = 64 + 64 * usize::from(h[2] & 7);
    limits.max_recipients = usize::from((h[2] >> 3) & 7) % 5 + 1;
    limits.max_errors = [2, 3, 5, 20][usize::from(h[2] >> 6)];
    limits.max_message_size =
        [0, 1, 16, 64, 256, 1024, 5000, limits.max_message_size][usize::from(h[3] & 7)];
    limits.max_idle_commands = [2, 5, 20, 100][usize::from((h[3] >> 5) & 3)];
    limits.max_auth_failures = if h[3] & 0x80 != 0 { 1 } else { 3 };
    let mut timeouts = ServerTimeouts::default();
    let all = match (h[3] >> 3) & 3 {
        1 => Some(Duration::from_secs(30)),
        2 => Some(Duration::ZERO),
        3 => Some(Duration::MAX),
        _ => None,
    };
    if let Some(t) = all {
        timeouts.command = t;
        timeouts.data_block = t;
        timeouts.message = t;
        timeouts.write = t;
        timeouts.tls_handshake = t;
    }
    let mut c = ServerConfig::new(HOST)
        .with_lmtp(h[0] & 0x01 != 0)
        .with_starttls(h[0] & 0x02 != 0)
        .with_chunking(h[0] & 0x08 == 0)
        .with_bare_line_ending(if h[0] & 0x10 != 0 {
            BareLineEnding::Normalize
        } else {
            BareLineEnding::Refuse
        })
        .with_pipelining(h[0] & 0x80 == 0)
        .with_auth(&mechanisms)
        .with_require_auth(h[1] & 0x08 != 0)
        .with_dsn(h[1] & 0x20 != 0)
        .with_limits(limits)
        .with_timeouts(timeouts);
    c.auth_without_tls = h[0] & 0x04 != 0;
    c.enhanced_status_codes = h[0] & 0x80 == 0;
    c.require_tls = h[1] & 0x10 != 0;
    c.accept_unknown_params = h[1] & 0x40 != 0;
    c.requiretls = h[1] & 0x80 != 0;
    c.smtputf8 = h[1] & 0x80 == 0;
    c
}

fn code(n: u16) -> ReplyCode {
    ReplyCode::new(n).expect("a valid code")
}

/// The response a decision byte's low bits pick.
fn response(d: u8, serial: usize) -> Response {
    match d & 7 {
        0 | 1 => Response::accept(),
        2 => Response::accept_with(format!("queued as Q{serial}")),
        3 => Response::temporary("Try again later"),
        4 => Response::permanent("No"),
        5 => Response::refuse(code(354), EnhancedCode::new(2, 0, 0), "Go ahead?"),
        6 => Response::refuse(
            code(554),
            EnhancedCode::new(4, 7, 1),
            "first\nsecond\r\nthird\rx\u{0}\u{1b}[2J\u{7f}\u{85}\u{2028}\u{202e}\n\nend",
        ),
        _ => Response::refuse(code(250), EnhancedCode::new(2, 0, 0), "Ok?"),
    }
}

/// The application as a [`Handler`], answering what it was told to.
struct App {
    response: Response,
    lmtp: Vec<Response>,
}

impl Handler for App {
    fn hello(&mut self, _: HelloKind, _: &str) -> Response {
        self.response.clone()
    }
    fn auth(&mut self, _: &Credentials) -> Response {
        self.response.clone()
    }
    fn mail(&mut self, _: &ReversePath, _: &MailParams) -> Response {
        self.response.clone()
    }
    fn rcpt(&mut self, _: &Mailbox, _: &RcptParams) -> Response {
        self.response.clone()
    }
    fn message(&mut self, _: &Transaction) -> Response {
        self.response.clone()
    }
    fn lmtp_message(&mut self, _: &Transaction) -> Vec<Response> {
        self.lmtp.clone()
    }
    fn verify(&mut self, _: &str) -> Response {
        self.response.clone()
    }
}

/// True when every CR is followed by LF and every LF preceded by CR.
fn no_bare_line_ending(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| match c {
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && b[i - 1] == b'\r',
        _ => true,
    })
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether `line` (its LF included) could be a DATA command: liberal, so
/// that the candidates are a superset of the real ones.
fn is_data_line(line: &[u8]) -> bool {
    let mut l = line.strip_suffix(b"\n").unwrap_or(line);
    while let [head @ .., b'\r' | b' ' | b'\t'] = l {
        l = head;
    }
    l.eq_ignore_ascii_case(b"DATA")
}

/// Where the DATA body starting at `start` ends (just past its `.CRLF`).
fn data_end(sent: &[u8], start: usize) -> Option<usize> {
    let body = &sent[start..];
    if body.starts_with(b".\r\n") {
        return Some(start + 3);
    }
    body.windows(5)
        .position(|w| w == b"\r\n.\r\n")
        .map(|i| start + i + 5)
}

struct Run<'a> {
    server: Server,
    config: Arc<ServerConfig>,
    steps: Vec<Step<'a>>,
    sizes: [u8; 2],
    tls: u8,
    now: Timestamp,
    decisions: &'a [u8],
    next_decision: usize,
    serial: usize,
    deferred: Option<(ServerEvent, u8)>,
    tls_paused: bool,
    slow_write: Option<Duration>,
    input_len: usize,
    polls: usize,
    max_polls: usize,
    transmitted: usize,
    greeted: bool,
    closed_seen: bool,
    dead: bool,
    sent: Vec<u8>,
    since_lf: usize,
    last_activity: Timestamp,
    last_wait: Option<Timestamp>,
    dribbling: bool,
    /// The transaction as the application's answers made it: `Some(n)`
    /// with `n` recipients accepted.
    txn: Option<usize>,
    /// The body delivered of the message being received.
    body: Vec<u8>,
    /// DATA bodies are checked against the raw bytes (no BDAT possible).
    check_data: bool,
    scan_from: usize,
    trace: Option<Vec<String>>,
    echo: bool,
}

impl<'a> Run<'a> {
    fn new(data: &'a [u8], trace: bool) -> Self {
        let (h, rest) = header::<HEADER>(data);
        let (decisions, script) = match rest.iter().position(|&b| b == DECISIONS_END) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&[][..], rest),
        };
        let config = Arc::new(config(&h));
        let mut conn = ConnectionInfo::new().with_tls(h[0] & 0x20 != 0);
        if h[0] & 0x40 != 0 {
            conn = conn.with_nonce("fuzz.n0nce");
        }
        let steps = steps(script);
        let stream: Vec<u8> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Input(b) => Some(*b),
                _ => None,
            })
            .flatten()
            .copied()
            .collect();
        let check_data = !config.chunking || !contains_ignore_case(&stream, b"BDAT");
        Self {
            server: Server::new(Arc::clone(&config), conn, Timestamp::ZERO),
            config,
            steps,
            sizes: [h[4], h[5]],
            tls: h[6],
            now: Timestamp::ZERO,
            decisions,
            next_decision: 0,
            serial: 0,
            deferred: None,
            tls_paused: false,
            slow_write: None,
            input_len: data.len(),
            polls: 0,
            max_polls: 1000 + 50 * data.len(),
            transmitted: 0,
            greeted: false,
            closed_seen: false,
            dead: false,
            sent: Vec::new(),
            since_lf: 0,
            last_activity: Timestamp::ZERO,
            last_wait: None,
            dribbling: false,
            txn: None,
            body: Vec::new(),
            check_data,
            scan_from: 0,
            trace: trace.then(Vec::new),
            echo: false,
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let line = line();
            if self.echo {
                println!("{line}");
            }
            t.push(line);
        }
    }

    fn run(&mut self) {
        let meter = Meter::start();
        self.drain();
        let steps = core::mem::take(&mut self.steps);
        let mut eof = false;
        for step in steps {
            match step {
                Step::Input(bytes) => {
                    let sizes = self.sizes;
                    for chunk in Chunks::new(bytes, &sizes) {
                        self.input(chunk);
                        self.drain();
                    }
                    continue;
                }
                Step::Time(d) => {
                    let d = delay(d) + Duration::from_secs(60 * u64::from(d >> 4));
                    self.now = self.now.saturating_add(d);
                    self.note(|| format!("-- {d:?} later, timeout"));
                    self.server.handle_timeout(self.now);
                }
                Step::SlowWrite(d) => self.slow_write = Some(delay(d)),
                Step::EarlyTimeout => {
                    self.note(|| "-- early timeout".into());
                    self.server.handle_timeout(self.now);
                }
                Step::Eof => {
                    eof = true;
                    break;
                }
                Step::Shutdown => {
                    self.note(|| "-- shutdown".into());
                    self.server.shutdown();
                }
                Step::Fail => {
                    self.note(|| "-- connection fails".into());
                    self.dead = true;
                    self.server.handle_transport_error(self.now);
                }
            }
            self.drain();
        }
        let _ = eof;
        self.note(|| "-- EOF".into());
        self.server.handle_eof(self.now);
        self.dead = true;
        self.drain();
        assert!(self.closed_seen, "no Closed after EOF");
        for _ in 0..3 {
            match self.server.poll_output(self.now) {
                ServerOutput::Closed => {}
                other => panic!("after EOF and Closed: {other:?}"),
            }
        }
        let reason = self.server.close_reason();
        self.note(|| format!("closed {reason:?}"));
        let growth = meter.peak_growth();
        let bound = 256 * 1024 + 64 * self.input_len;
        assert!(
            growth <= bound,
            "heap grew {growth} bytes for {} input bytes",
            self.input_len
        );
    }

    fn input(&mut self, chunk: &[u8]) {
        self.note(|| format!("C: {:?}", String::from_utf8_lossy(chunk)));
        self.server.handle_input(self.now, chunk);
        self.sent.extend_from_slice(chunk);
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                self.since_lf = chunk.len() - i - 1;
                self.dribbling = false;
            }
            None => self.since_lf += chunk.len(),
        }
        self.last_activity = self.now;
    }

    fn decision(&mut self) -> u8 {
        if self.decisions.is_empty() {
            return 0;
        }
        let d = self.decisions[self.next_decision % self.decisions.len()];
        self.next_decision += 1;
        d
    }

    /// Polls until the session waits for the client (or the application
    /// deferred an answer, or the session closed).
    fn drain(&mut self) {
        if let Some((event, d)) = self.deferred.take() {
            self.note(|| "-- deferred answer".into());
            self.answer(event, d);
        }
        loop {
            self.polls += 1;
            assert!(self.polls <= self.max_polls, "too many polls");
            let out = self.server.poll_output(self.now);
            if self.closed_seen {
                match &out {
                    ServerOutput::Closed => return,
                    other => panic!("{other:?} after Closed"),
                }
            }
            match out {
                ServerOutput::Transmit { bytes, deadline } => {
                    assert!(!self.dead, "Transmit after EOF or a failed connection");
                    assert!(deadline >= self.now, "write deadline in the past");
                    self.check_replies(&bytes);
                    if let Some(d) = self.slow_write.take() {
                        self.now = self.now.saturating_add(d);
                        self.note(|| format!("-- the write took {d:?}"));
                        self.server.handle_timeout(self.now);
                    }
                }
                ServerOutput::Event(event) => self.event(event),
                ServerOutput::AwaitingResponse => {
                    assert!(
                        self.deferred.is_some(),
                        "AwaitingResponse, nothing deferred"
                    );
                    return;
                }
                ServerOutput::StartTls { deadline } => {
                    assert!(
                        deadline >= self.last_activity,
                        "handshake deadline {deadline:?} in the past"
                    );
                    if self.tls & 3 == 3 && !self.tls_paused {
                        self.tls_paused = true;
                        self.note(|| "-- TLS pause".into());
                        return;
                    }
                    self.tls_paused = false;
                    self.handshake(deadline);
                }
                ServerOutput::Closed => {
                    self.closed_seen = true;
                    return;
                }
                ServerOutput::Wait(deadline) => {
                    assert!(
                        deadline >= self.last_activity,
                        "Wait({deadline:?}) before the last input or answer at {:?}",
                        self.last_activity
                    );
                    if self.dribbling && self.check_data && self.since_lf < PARTIAL_LINE {
                        let prev = self.last_wait.unwrap_or(Timestamp::MAX);
                        assert!(
                            deadline <= prev,
                            "a dribbled line moved the deadline from {prev:?} to {deadline:?}"
                        );
                    }
                    self.last_wait = Some(deadline);
                    self.dribbling = true;
                    self.check_model();
                    return;
                }
                other => panic!("unknown output {other:?}"),
            }
        }
    }

    fn handshake(&mut self, deadline: Timestamp) {
        match self.tls & 3 {
            1 => {
                let d = delay(self.tls >> 4);
                self.now = self.now.saturating_add(d);
                self.note(|| format!("-- handshake takes {d:?}"));
            }
            2 => {
                self.note(|| "-- handshake fails".into());
                self.dead = true;
                self.server.handle_transport_error(self.now);
                return;
            }
            _ => {}
        }
        if self.now >= deadline {
            self.note(|| "-- handshake timeout".into());
            self.server.handle_timeout(self.now);
            match self.server.poll_output(self.now) {
                ServerOutput::Closed => self.closed_seen = true,
                other => panic!("a handshake past its deadline gave {other:?}"),
            }
            return;
        }
        self.note(|| "-- TLS up".into());
        self.server.handle_tls_established(self.now);
        self.last_activity = self.now;
        self.dribbling = false;
    }

    /// The session's transaction is the one the answers made.
    fn check_model(&self) {
        let t = self.server.transaction();
        assert_eq!(
            t.map(|t| t.recipients.len()),
            self.txn,
            "the session's transaction is not the application's"
        );
    }

    fn check_replies(&mut self, bytes: &[u8]) {
        assert!(!bytes.is_empty(), "an empty Transmit");
        self.transmitted += bytes.len();
        let bound = 1000 + 64 * self.input_len;
        assert!(
            self.transmitted <= bound,
            "{} bytes written for {} input bytes",
            self.transmitted,
            self.input_len
        );
        assert!(
            bytes.ends_with(b"\r\n"),
            "a Transmit ends mid-line: {bytes:?}"
        );
        let mut open: Option<&[u8]> = None;
        let mut rest = bytes;
        while let Some(lf) = memchr(b'\n', rest) {
            let (full, tail) = rest.split_at(lf + 1);
            rest = tail;
            let line = full
                .strip_suffix(b"\r\n")
                .unwrap_or_else(|| panic!("bare LF in a reply: {bytes:?}"));
            assert!(!line.contains(&b'\r'), "bare CR in a reply: {bytes:?}");
            self.note(|| format!("S: {}", String::from_utf8_lossy(line)));
            assert!(line.len() >= 4, "short reply line {line:?}");
            let (c, sep, text) = (&line[..3], line[3], &line[4..]);
            assert!(
                (b'2'..=b'5').contains(&c[0]) && c[1..].iter().all(u8::is_ascii_digit),
                "bad reply code in {line:?}"
            );
            assert!(sep == b' ' || sep == b'-', "bad separator in {line:?}");
            if let Some(prev) = open {
                assert_eq!(prev, c, "a multi-line reply changed its code: {bytes:?}");
            }
            open = (sep == b'-').then_some(c);
            let text = core::str::from_utf8(text)
                .unwrap_or_else(|_| panic!("reply text not UTF-8: {line:?}"));
            assert!(
                !text
                    .chars()
                    .any(|ch| ch.is_control() || is_unicode_control(ch)),
                "a control in reply text {text:?}"
            );
            if !self.greeted {
                assert_eq!(c, b"220", "the first reply is not the greeting");
                self.greeted = true;
            }
        }
        assert!(
            rest.is_empty() && open.is_none(),
            "a Transmit ends inside a reply: {bytes:?}"
        );
    }

    fn event(&mut self, event: ServerEvent) {
        self.note(|| match &event {
            ServerEvent::Body(b) => format!("E: Body({})", b.len()),
            ServerEvent::Auth(c) => format!("E: Auth({})", c.username()),
            e => format!("E: {e:?}"),
        });
        let limits = &self.config.limits;
        match &event {
            ServerEvent::Hello { .. } | ServerEvent::Verify(_) => {}
            ServerEvent::Auth(_) => {
                assert!(
                    self.server.is_tls() || self.config.auth_without_tls,
                    "AUTH credentials in plaintext"
                );
                assert!(self.server.authenticated().is_none(), "AUTH twice");
            }
            ServerEvent::Mail { .. } => {
                assert!(self.server.transaction().is_none(), "nested MAIL");
                assert!(self.txn.is_none());
                assert!(
                    !self.config.require_tls || self.server.is_tls(),
                    "MAIL without TLS"
                );
                assert!(
                    !self.config.require_auth || self.server.authenticated().is_some(),
                    "MAIL without AUTH"
                );
            }
            ServerEvent::Rcpt { .. } => {
                let n = self.txn.expect("RCPT without a transaction");
                assert!(n < limits.max_recipients, "more than max_recipients");
                self.check_model();
            }
            ServerEvent::Body(b) => {
                assert!(!b.is_empty(), "an empty Body");
                assert!(
                    self.txn.is_some_and(|n| n > 0),
                    "Body without a transaction with a recipient"
                );
                self.body.extend_from_slice(b);
                assert!(
                    self.body.len() as u64 <= limits.max_message_size,
                    "Body beyond max_message_size"
                );
            }
            ServerEvent::Message { size } => {
                let n = self.txn.expect("Message without a transaction");
                assert!(n > 0, "Message without a recipient");
                self.check_model();
                assert_eq!(
                    *size,
                    self.body.len() as u64,
                    "Message size is not the body's"
                );
                assert!(*size <= limits.max_message_size);
                if self.check_data {
                    self.check_data_body();
                }
            }
            ServerEvent::Reset => {
                self.txn = None;
                self.body.clear();
            }
            ServerEvent::Aborted(reason) => {
                if *reason == AbortReason::BareLineEnding {
                    assert_eq!(self.config.bare_line_ending, BareLineEnding::Refuse);
                }
                self.txn = None;
                self.body.clear();
            }
            ServerEvent::TlsStarted => {
                assert!(self.server.is_tls() && self.server.authenticated().is_none());
                assert!(self.txn.is_none(), "a transaction across STARTTLS");
            }
            _ => {}
        }
        if !event.needs_response() {
            if self.serial % 2 == 1 {
                let mut app = App {
                    response: Response::accept(),
                    lmtp: Vec::new(),
                };
                self.server.dispatch(event, &mut app);
            }
            self.serial += 1;
            return;
        }
        let d = self.decision();
        if d & 0x40 != 0 {
            self.note(|| "-- answer deferred".into());
            self.deferred = Some((event, d));
            return;
        }
        self.answer(event, d);
    }

    /// The delivered DATA body is `dot_unstuff` of a raw body sent after a
    /// DATA line, later than the last one matched.
    fn check_data_body(&mut self) {
        let refuse = self.config.bare_line_ending == BareLineEnding::Refuse;
        assert!(
            no_bare_line_ending(&self.body),
            "bare CR or LF in a DATA body"
        );
        let mut unclean = false;
        let mut pos = self.scan_from;
        while pos < self.sent.len() {
            let line_end = memchr(b'\n', &self.sent[pos..]).map(|i| pos + i + 1);
            let Some(line_end) = line_end else { break };
            if is_data_line(&self.sent[pos..line_end])
                && let Some(end) = data_end(&self.sent, line_end)
            {
                match dot_unstuff(&self.sent[line_end..end]) {
                    Some(b) if b == self.body => {
                        self.scan_from = end;
                        return;
                    }
                    Some(_) => {}
                    None => unclean = true,
                }
            }
            pos = line_end;
        }
        assert!(
            unclean && !refuse,
            "a DATA body {:?} that no DATA on the wire sent",
            String::from_utf8_lossy(&self.body)
        );
    }

    fn answer(&mut self, event: ServerEvent, d: u8) {
        self.serial += 1;
        let resp = response(d, self.serial);
        let accept = resp.is_accept();
        let closing = self.server.close_reason().is_some();
        self.last_activity = self.now;
        self.dribbling = false;
        if d & 0x80 != 0 && !closing {
            assert_eq!(
                self.server.respond_each(&[]),
                Err(ServerUsageError::WrongResponseCount)
            );
        }
        let via_handler = d & 0x08 != 0;
        let kind = match &event {
            ServerEvent::Mail { .. } => 1,
            ServerEvent::Rcpt { .. } => 2,
            ServerEvent::Message { .. } => 3,
            ServerEvent::Auth(c) => {
                if accept {
                    self.note(|| format!("-- {} accepted", c.username()));
                }
                4
            }
            _ => 0,
        };
        let username = match &event {
            ServerEvent::Auth(c) => Some(c.username().to_owned()),
            _ => None,
        };
        let result = if kind == 3 && self.config.lmtp {
            let n = self.txn.unwrap_or(0);
            let each: Vec<Response> = (0..n)
                .map(|i| {
                    let di = if self.decisions.is_empty() {
                        0
                    } else {
                        self.decisions[(self.next_decision + i) % self.decisions.len()]
                    };
                    response(di, self.serial + i)
                })
                .collect();
            let wrong = |extra: bool| -> Vec<Response> {
                if extra {
                    vec![Response::accept(); n + 1]
                } else {
                    vec![Response::accept(); n.saturating_sub(1)]
                }
            };
            let mode = (d >> 4) & 3;
            if via_handler {
                let lmtp = match mode {
                    0 | 1 => each,
                    m => wrong(m == 2),
                };
                let mut app = App {
                    response: resp,
                    lmtp,
                };
                self.server.dispatch(event, &mut app);
                Ok(())
            } else {
                if mode >= 2 && !closing {
                    assert_eq!(
                        self.server.respond_each(&wrong(mode == 2)),
                        Err(ServerUsageError::WrongResponseCount),
                        "respond_each with {} responses for {n} recipients",
                        if mode == 2 {
                            n + 1
                        } else {
                            n.saturating_sub(1)
                        }
                    );
                }
                if mode == 1 || mode == 3 {
                    self.server.respond(resp)
                } else {
                    self.server.respond_each(&each)
                }
            }
        } else if kind == 3 && d & 0x30 == 0 && !via_handler {
            if !closing {
                assert_eq!(
                    self.server.respond_each(core::slice::from_ref(&resp)),
                    Err(ServerUsageError::WrongResponseCount),
                    "respond_each for an SMTP message"
                );
            }
            self.server.respond(resp)
        } else if via_handler {
            let mut app = App {
                response: resp,
                lmtp: Vec::new(),
            };
            self.server.dispatch(event, &mut app);
            Ok(())
        } else {
            self.server.respond(resp)
        };
        match result {
            Ok(()) => {}
            // A session that ended (EOF, shutdown, an overflow) may have
            // dropped the request or its transaction.
            Err(_) if closing => return,
            Err(e) => panic!("answering: {e:?}"),
        }
        if closing {
            return;
        }
        match kind {
            1 if accept => self.txn = Some(0),
            2 if accept => {
                if let Some(n) = &mut self.txn {
                    *n += 1;
                }
            }
            3 => {
                self.txn = None;
                self.body.clear();
            }
            4 if accept => {
                assert_eq!(self.server.authenticated(), username.as_deref());
            }
            _ => {}
        }
        if d & 0x80 != 0 {
            assert_eq!(
                self.server.respond(Response::accept()),
                Err(ServerUsageError::NoRequest),
                "a second answer"
            );
        }
    }
}

fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}
