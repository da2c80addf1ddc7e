//! `client_session`: a scripted user and a driver run the whole client the
//! way the crate doc's run loop says (drain `poll_output`, do what it says),
//! while the server's bytes and the clock are whatever the fuzzer likes.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_sansio::{
    Auth, BodyTransfer, BodyType, Client, CommandId, CommandKind, Config, CramMd5Auth, Domain,
    DsnNotify, DsnReturn, Envelope, Error, Event, LoginAuth, MailParams, Mailbox, MessageId,
    OAuthBearer, Output, PlainAuth, ProtocolError, RcptParams, Reply, ReplyCode, ReversePath,
    ScramAuth, Security, SendError, SendReport, ServerInfo, Timeouts, Timestamp, TlsPolicy,
    UsageError, XOAuth2, normalize_line_endings,
};

use crate::alloc::Meter;
use crate::input::header;
use crate::wire::Wire;

const USER: &str = "user@example.com";
const PASSWORD: &str = "pw-s3cr3t-9f8e";
const TOKEN: &str = "tok-s3cr3t-7d6c";
const PORT: u16 = 587;
/// SCRAM's client nonce (a real client draws a fresh random one).
const NONCE: &str = "fuzz-nonce-4kq2LmZ0pR7s";
const FROM: &str = "sender@example.com";

/// Bodies with every dot-stuffing hazard: leading dots, a lone `.` line,
/// bare LF and CR, a missing final line end, the empty message.
const BODIES: [&[u8]; 8] = [
    b"Subject: hi\r\n\r\nHello\r\n",
    b".\r\n",
    b"a\n.\nb",
    b"line\r\n.\r\nafter",
    b"\r.\r\r\n..",
    b"",
    b"..\n..\r",
    b"Subject: t\r\n\r\nbody\n.\n\n.\r\nend.",
];

const HELLO: &[CommandKind] = &[CommandKind::Ehlo, CommandKind::Helo, CommandKind::Lhlo];
/// What the id of `end_body` (or the last `bdat`) completes as.
const BODY_END: &[CommandKind] = &[CommandKind::DataEnd, CommandKind::Bdat];

/// The header's length.
const HEADER: usize = 12;
/// In the server's bytes, this byte and the next are the driver's, not the
/// server's: a silence, a broken connection, or an abandoning driver.
const MARK: u8 = 0xFE;

/// The clock steps a header nibble or a mark chooses from: just below and
/// just above each RFC 5321 timeout (TLS 30 s, DATA 2 min, a data block
/// 3 min, commands 5 min, the final reply 10 min).
const DELAYS_MS: [u64; 16] = [
    0, 1, 1_000, 10_000, 29_000, 31_000, 60_000, 119_000, 121_000, 179_000, 181_000, 299_000,
    301_000, 599_000, 601_000, 3_600_000,
];

fn delay(code: u8) -> Duration {
    Duration::from_millis(DELAYS_MS[usize::from(code & 0x0f)])
}

/// Header (12 bytes), then the server's bytes.
///
/// - `h[0]` session: 0x01 pipelining off, 0x02 LMTP, 0x04 implicit TLS,
///   0x08 `prefer_chunking` off, 0x10 small limits, 0x20 transcript, 0x40
///   `Security::AlreadyTls` (without 0x04), 0x80 a rogue driver that keeps
///   reading plaintext during the TLS pause instead of the handshake.
/// - `h[1]` AUTH: bits 0–5 try PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER,
///   SCRAM-SHA-256 in turn (one `auth` each); 0x40 allow PLAIN/LOGIN
///   without TLS; 0x80 server name `localhost` (else `mx.example.com`).
/// - `h[2]` setup and user: bits 0–1 the hello: 0 `hello`, 1
///   `ensure_hello`, 2 none (the session's own), 3 `establish`
///   (authenticating with the first mechanism of `h[1]`, if any); bits 2–3
///   `Config::tls_policy`: 1 required, 2 disabled, else opportunistic; 0x10
///   an explicit `starttls` after the hello; 0x20 an eager user, who queues
///   each step without waiting for the previous one; 0x40 VRFY, NOOP and
///   RSET pipelined before QUIT; 0x80 no QUIT.
/// - `h[3]` messages queued at once with `send`: bits 0–2 how many (0–7),
///   bits 3–4 recipients − 1 (the fourth is a UTF-8 address), 0x20
///   `require_all_recipients`, 0x40 DSN, SIZE and MT-PRIORITY options (on
///   the step-by-step transactions too), 0x80 the first message (and the
///   first step-by-step one) is BINARYMIME.
/// - `h[4]` bodies: bits 0–2 which body (message `k` gets body `b + k`,
///   step-by-step transaction `k` body `b + k + 3`), bits 3–5 how it is cut
///   into `push_body` calls, bits 6–7 the window: 0 the defaults (256 KiB
///   chunks, 2 in flight, 8 messages), 1 5-byte chunks, window 1, 1
///   message, 2 3-byte chunks, window 2, 2 messages, 3 1-byte chunks,
///   window 3, 3 messages.
/// - `h[5]` step-by-step transactions (`mail`, `rcpt`s, then a body): bits
///   0–1 how many (0–3); bits 2–3 the body: 0 `data` + `push_body` /
///   `end_body`, 1 `start_bdat` + `push_body` / `end_body`, 2 raw `bdat`
///   chunks, 3 each in turn; 0x10 abandon (RSET instead of DATA, RSET after
///   the first raw chunk, an RSET refused in the middle of a `start_bdat`
///   body); 0x20 a NOOP inside the transaction; 0x40 these before the
///   `send` messages (else after); 0x80 the user does not wait for the reply
///   to the end of the message.
/// - `h[6..10]` the sizes the server's bytes are cut into (0: the rest); all
///   zero: one line at a time, as a server writes (what the seeds use, so
///   that real transcripts replay).
/// - `h[10]` clock: bits 0–3 the server's silence before each of its
///   chunks (a trickling server); bits 4–5 `Config::timeouts`: 0 RFC 5321,
///   1 every one 30 s, 2 every one `Duration::MAX`, 3 every one zero; 0x40 a
///   restless driver: before each read, an early `handle_timeout` and calls
///   out of turn (`push_body`, `end_body`, `handle_tls_established`,
///   `handle_auth`), each of which must change nothing; 0x80 the TLS
///   handshake fails (`handle_transport_error`).
/// - `h[11]` durations: bits 0–3 each write, bits 4–7 the TLS handshake.
///
/// The delays are 0, 1 ms, 1 s, 10 s, 29 s, 31 s, 1 min, 1:59, 2:01, 2:59,
/// 3:01, 4:59, 5:01, 9:59, 10:01 and 1 h. In the server's bytes, `0xFE d`
/// is the driver's: `d = 0xFF` the connection fails
/// (`handle_transport_error`), `d = 0xFD` the driver abandons (`abandon`),
/// any other `d` a silence of delay `d & 15` plus `d >> 4` minutes (ended
/// by an early `handle_timeout`, or by the deadline's).
///
/// Checked: no panic; a bounded number of steps; every command id completes
/// at most once, with its own kind, and the ids of a message's commands
/// never as events; every message gets exactly one `MessageDone`, with one
/// report per recipient, success only with a recipient accepted (all with
/// `require_all_recipients`) and the body ended, and `body_sent` once a
/// DATA body began; once `Closed`, every command and message was reported;
/// nothing stalls (`Wait(None)` only when nothing is outstanding); a
/// refused call changes nothing (so writes nothing); `NeedBody` offers
/// bounded room (`push_body` takes 1 to `max` bytes, `max` at most a DATA
/// block or a BDAT chunk), for bodies in queue order, within
/// `max_messages_in_flight`, and for a DATA body only after its 354; every
/// byte written is a valid command line, a correctly stuffed DATA body or a
/// BDAT chunk of the announced size holding the caller's message, and no
/// success is reported for more messages than the wire carried; nothing is
/// written during the TLS pause, the hello comes first after it and the
/// old capabilities are gone; STARTTLS succeeds only with a 220 and after
/// the handshake, AUTH only with 235, `establish` only with the TLS and
/// AUTH it was asked for; no secret in the transcript, an event or
/// `Debug`, and no password on the wire without TLS to a remote host
/// (unless allowed); after a fatal error every call returns exactly
/// `client.error()`, which never changes; a timeout only when the time has
/// reached a deadline the session handed out, always when it has reached
/// the one it waits on, and never from an early call; heap growth per
/// input byte is bounded.
pub fn client_session(data: &[u8]) {
    Session::new(data, false).run();
}

/// Runs [`client_session`] and returns what happened: each completion as
/// `kind ok|error`, each message as `message #n ok|error`, the bytes each
/// way as `C:`/`S:` lines and the driver's doings as `-- …`, for checking
/// that the seeds drive the session as far as they mean to.
pub fn client_session_trace(data: &[u8]) -> Vec<String> {
    let mut session = Session::new(data, true);
    session.run();
    session.trace.unwrap_or_default()
}

// ----- the server's side: bytes, silences, a failing connection -----

/// What the server (or the connection) does next.
#[derive(Debug, Clone, Copy)]
enum Feed<'a> {
    Bytes(&'a [u8]),
    Silence(Duration),
    Fail,
    Abandon,
}

#[derive(Debug)]
enum Item<'a> {
    Data(&'a [u8]),
    Mark(u8),
}

/// The server's bytes, cut into chunks, with the driver's marks.
struct Script<'a> {
    items: VecDeque<Item<'a>>,
    data: &'a [u8],
    sizes: [u8; 4],
    next_size: usize,
}

impl<'a> Script<'a> {
    fn new(stream: &'a [u8], sizes: [u8; 4]) -> Self {
        let mut parts = stream.split(|&b| b == MARK);
        let mut items = VecDeque::new();
        items.push_back(Item::Data(parts.next().unwrap_or_default()));
        for part in parts {
            match part.split_first() {
                Some((&d, rest)) => {
                    items.push_back(Item::Mark(d));
                    items.push_back(Item::Data(rest));
                }
                None => items.push_back(Item::Mark(0)),
            }
        }
        Self {
            items,
            data: &[],
            sizes,
            next_size: 0,
        }
    }

    fn chunk(&mut self) -> Option<&'a [u8]> {
        if self.data.is_empty() {
            return None;
        }
        let n = if self.sizes == [0; 4] {
            // One line at a time.
            self.data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.data.len(), |i| i + 1)
        } else {
            let size = usize::from(self.sizes[self.next_size % 4]);
            self.next_size += 1;
            if size == 0 {
                self.data.len()
            } else {
                size.min(self.data.len())
            }
        };
        let (chunk, rest) = self.data.split_at(n);
        self.data = rest;
        Some(chunk)
    }
}

impl<'a> Iterator for Script<'a> {
    type Item = Feed<'a>;

    fn next(&mut self) -> Option<Feed<'a>> {
        loop {
            if let Some(chunk) = self.chunk() {
                return Some(Feed::Bytes(chunk));
            }
            match self.items.pop_front()? {
                Item::Data(d) => self.data = d,
                Item::Mark(0xFF) => return Some(Feed::Fail),
                Item::Mark(0xFD) => return Some(Feed::Abandon),
                Item::Mark(d) => {
                    let minutes = Duration::from_secs(u64::from(d >> 4) * 60);
                    return Some(Feed::Silence(delay(d) + minutes));
                }
            }
        }
    }
}

// ----- the user's side -----

#[derive(Debug, Clone, Copy)]
enum Step {
    Hello,
    StartTls,
    Auth(u8),
    Send,
    Txn(usize),
    Extras,
    Quit,
}

/// What the user waits for before its next step.
#[derive(Debug, Clone, Copy)]
enum Awaited {
    Command(CommandId),
    Message(MessageId),
}

/// A command id the session handed out.
#[derive(Debug)]
struct Issued {
    kinds: &'static [CommandKind],
    done: u32,
    /// A command of a message queued with `send` (its `end_body`): its
    /// outcome goes into the message's report, never into an event.
    of_message: bool,
    /// Its success means a whole message was delivered.
    ends_message: bool,
    /// TLS handshakes done when it was issued (STARTTLS must add one).
    handshakes: usize,
    /// `establish(true)`.
    authenticate: bool,
}

/// A message queued with `send`.
#[derive(Debug)]
struct Message {
    to: Vec<Mailbox>,
    require_all: bool,
    body_type: BodyType,
    /// What is left to give, piece by piece.
    pieces: VecDeque<Vec<u8>>,
    /// What `push_body` took.
    accepted: Vec<u8>,
    /// How the body goes, from its first `NeedBody`.
    transfer: Option<BodyTransfer>,
    ended: bool,
    done: u32,
}

/// A body given step by step (after `data` or `start_bdat`).
#[derive(Debug)]
struct StepBody {
    transfer: BodyTransfer,
    binary: bool,
    /// DATA's id, and whether its 354 came.
    data: Option<(CommandId, bool)>,
    pieces: VecDeque<Vec<u8>>,
    accepted: Vec<u8>,
    begun: bool,
    /// Try an RSET in the middle of the body (it must be refused).
    try_rset: bool,
}

/// The deadlines the session handed out that may still be running.
#[derive(Debug, Default)]
struct Live {
    /// The last `Wait`'s.
    wait: Option<Timestamp>,
    /// The last `StartTls`'s, until the handshake is reported.
    tls: Option<Timestamp>,
    /// The last `Transmit`'s, until the next `poll_output`.
    write: Option<Timestamp>,
}

impl Live {
    fn earliest(&self) -> Option<Timestamp> {
        [self.wait, self.tls, self.write]
            .into_iter()
            .flatten()
            .min()
    }
}

struct Session<'a> {
    h: [u8; HEADER],
    client: Client,
    wire: Wire,
    now: Timestamp,
    script: Script<'a>,
    trickle: Duration,
    write_time: Duration,
    handshake_time: Duration,
    restless: bool,
    eager: bool,

    steps: VecDeque<Step>,
    waiting: Vec<Awaited>,
    issued: HashMap<CommandId, Issued>,
    messages: HashMap<MessageId, Message>,
    /// Message ids in the order `send` returned them.
    order: Vec<MessageId>,
    /// The position in `order` of the last message asked for its body.
    body_turn: usize,
    step_bodies: VecDeque<StepBody>,
    /// The mechanism of each `auth`, and of `establish`.
    mechanisms: HashMap<CommandId, Box<dyn Auth>>,
    establish_mechanism: Option<Box<dyn Auth>>,
    establishing: Option<CommandId>,

    live: Live,
    /// Between `StartTls` and the handshake: nothing may be written.
    tls_pause: bool,
    /// Implicit TLS whose handshake is still to come.
    implicit_tls: bool,
    sticky: Option<Error>,
    closed: bool,
    handshakes: usize,
    /// Messages reported delivered (by `MessageDone` or a body end's id).
    delivered: usize,
    secrets: Vec<String>,
    /// Secrets that carry the password (LOGIN's and PLAIN's responses):
    /// never on the wire without TLS to a remote host, unless allowed.
    passwords: Vec<String>,
    /// The server never sent a secret, so none may appear anywhere.
    check_secrets: bool,
    rounds: usize,
    max_rounds: usize,
    trace: Option<Vec<String>>,
}

impl<'a> Session<'a> {
    fn new(data: &'a [u8], trace: bool) -> Self {
        let (h, stream) = header::<HEADER>(data);
        let server = if h[1] & 0x80 != 0 {
            "localhost"
        } else {
            "mx.example.com"
        };
        let config = config(&h);
        let security = if h[0] & 0x04 != 0 {
            Security::ImplicitTls
        } else if h[0] & 0x40 != 0 {
            Security::AlreadyTls
        } else {
            Security::Plaintext
        };

        let mut steps = VecDeque::new();
        steps.push_back(Step::Hello);
        if h[2] & 0x10 != 0 {
            steps.push_back(Step::StartTls);
        }
        let mut mechanisms = (0..6).filter(|m| h[1] & (1 << m) != 0);
        if h[2] & 0x03 == 3 {
            // `establish` authenticates with the first.
            mechanisms.next();
        }
        steps.extend(mechanisms.map(Step::Auth));
        let txns = (0..usize::from(h[5] & 0x03)).map(Step::Txn);
        if h[5] & 0x40 != 0 {
            steps.extend(txns);
            steps.push_back(Step::Send);
        } else {
            steps.push_back(Step::Send);
            steps.extend(txns);
        }
        if h[2] & 0x40 != 0 {
            steps.push_back(Step::Extras);
        }
        if h[2] & 0x80 == 0 {
            steps.push_back(Step::Quit);
        }

        // What each mechanism would send first, base64 as on the wire.
        let initial = |m: u8| {
            let info = ServerInfo {
                name: server,
                tls: true,
                mechanisms: &[],
            };
            let start = mechanism(m, server, true).start(&info).ok()?;
            Some(BASE64.encode(start.initial_response?.expose()))
        };
        let mut secrets = vec![
            PASSWORD.to_owned(),
            TOKEN.to_owned(),
            BASE64.encode(PASSWORD),
        ];
        secrets.extend([0, 3, 4].into_iter().filter_map(initial));
        let mut passwords = vec![BASE64.encode(PASSWORD)];
        passwords.extend(initial(0));
        if h[1] & 0x40 != 0 || smtp_sansio::is_localhost(server) {
            // Allowed: the caller opted out, or the server is this host.
            passwords.clear();
        }
        let check_secrets = !secrets
            .iter()
            .any(|s| stream.windows(s.len()).any(|w| w == s.as_bytes()));

        let mut issued = HashMap::new();
        issued.insert(
            CommandId::GREETING,
            Issued {
                kinds: &[CommandKind::Greeting],
                done: 0,
                of_message: false,
                ends_message: false,
                handshakes: 0,
                authenticate: false,
            },
        );
        let bodies: usize = BODIES.iter().map(|b| b.len()).sum();
        let now = Timestamp::ZERO;
        Self {
            h,
            client: Client::new(config, server, security, now),
            wire: Wire::new(),
            now,
            script: Script::new(stream, [h[6], h[7], h[8], h[9]]),
            trickle: delay(h[10]),
            write_time: delay(h[11]),
            handshake_time: delay(h[11] >> 4),
            restless: h[10] & 0x40 != 0,
            eager: h[2] & 0x20 != 0,
            steps,
            waiting: Vec::new(),
            issued,
            messages: HashMap::new(),
            order: Vec::new(),
            body_turn: 0,
            step_bodies: VecDeque::new(),
            mechanisms: HashMap::new(),
            establish_mechanism: None,
            establishing: None,
            live: Live::default(),
            tls_pause: false,
            implicit_tls: security == Security::ImplicitTls,
            sticky: None,
            closed: false,
            handshakes: 0,
            delivered: 0,
            secrets,
            passwords,
            check_secrets,
            rounds: 0,
            max_rounds: 4000 + 64 * stream.len() + 64 * bodies,
            trace: trace.then(Vec::new),
        }
    }

    /// The run loop: drain `poll_output` and do what it says.
    fn run(&mut self) {
        loop {
            self.rounds += 1;
            assert!(
                self.rounds <= self.max_rounds,
                "the session neither ended nor used its input in {} rounds",
                self.max_rounds
            );
            self.check_sticky();
            let output = self.client.poll_output(self.now);
            // Asking again means the last transmit was written.
            self.live.write = None;
            match output {
                Output::Transmit { bytes, deadline } => self.transmit(&bytes, deadline),
                Output::Event(event) => self.on_event(event),
                Output::StartTls { deadline } => self.tls_pause(deadline),
                Output::NeedBody { message, max } => self.need_body(message, max),
                Output::Closed => break,
                Output::Wait(deadline) => {
                    self.live.wait = deadline;
                    if self.user_turn() {
                        continue;
                    }
                    if deadline.is_none() {
                        self.check_not_stalled();
                    }
                    self.server_turn(deadline);
                }
                other => panic!("an output this driver does not know: {other:?}"),
            }
        }
        self.check_sticky();
        self.closed_checks();
    }

    // ----- the driver -----

    fn transmit(&mut self, bytes: &[u8], deadline: Timestamp) {
        assert!(!bytes.is_empty(), "an empty transmit");
        assert!(deadline >= self.now, "a write deadline in the past");
        self.note(|| format!("C: {:?}", String::from_utf8_lossy(bytes)));
        assert!(
            !self.tls_pause,
            "the session wrote {bytes:?} during the TLS pause"
        );
        assert!(
            !(bytes.ends_with(b"STARTTLS\r\n")
                && format!("{:?}", self.client).contains("phase: TlsPause")),
            "STARTTLS handed out after its 220: the handshake's deadline already runs, unseen"
        );
        if !self.client.is_tls() {
            for secret in &self.passwords {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the password went out without TLS to {}",
                    self.client.server_name()
                );
            }
        }
        self.wire.write(bytes);
        self.live.write = Some(deadline);
        if self.write_time > Duration::ZERO {
            // A slow write: the session's write deadline may pass first.
            self.now = self.now.saturating_add(self.write_time);
            if self.now >= deadline {
                self.timeout(true);
            } else if self.restless {
                self.early_timeout();
            }
        }
    }

    /// The TLS handshake the session asked for; or, from a rogue driver,
    /// more plaintext, which the session must refuse.
    fn tls_pause(&mut self, deadline: Timestamp) {
        self.live.tls = Some(deadline);
        self.tls_pause = true;
        if self.h[0] & 0x80 != 0 {
            match self.script.next() {
                Some(Feed::Bytes(chunk)) => {
                    self.input(chunk);
                    assert!(
                        self.client.is_closed()
                            && self.client.error()
                                == Some(&Error::Protocol(ProtocolError::DataAfterStartTls)),
                        "plaintext during the TLS pause gave {:?}",
                        self.client.error()
                    );
                }
                Some(Feed::Silence(d)) => {
                    self.now = self.now.saturating_add(d);
                    if self.now >= deadline {
                        self.timeout(true);
                    } else {
                        self.early_timeout();
                    }
                }
                Some(Feed::Fail) => self.transport_error(),
                Some(Feed::Abandon) => self.abandon(),
                None => self.eof(),
            }
            return;
        }
        self.now = self.now.saturating_add(self.handshake_time);
        if self.now >= deadline {
            self.timeout(true);
            return;
        }
        if self.h[10] & 0x80 != 0 {
            self.transport_error();
            return;
        }
        if let Err(e) = self.client.handle_tls_established(self.now) {
            panic!("the session asked for a handshake but refused it: {e:?}");
        }
        self.note(|| "-- TLS established".into());
        self.handshakes += 1;
        self.live.tls = None;
        self.tls_pause = false;
        assert!(self.client.is_tls(), "TLS established, but is_tls is false");
        assert!(
            self.client.capabilities().is_none(),
            "capabilities survived the TLS handshake"
        );
        if !std::mem::take(&mut self.implicit_tls) {
            self.wire.expect_hello_next();
        }
    }

    /// The server's turn while the session waits (until `deadline`).
    fn server_turn(&mut self, deadline: Option<Timestamp>) {
        if self.restless {
            self.out_of_turn();
            self.early_timeout();
        }
        match self.script.next() {
            Some(Feed::Bytes(chunk)) => {
                let arrival = self.now.saturating_add(self.trickle);
                match deadline {
                    Some(at) if arrival >= at => {
                        // The read gives up at the deadline.
                        self.now = self.now.max(at);
                        self.timeout(true);
                    }
                    _ => {
                        self.now = arrival;
                        self.input(chunk);
                    }
                }
            }
            Some(Feed::Silence(d)) => {
                let until = self.now.saturating_add(d);
                match deadline {
                    Some(at) if until >= at => {
                        self.now = self.now.max(at);
                        self.timeout(true);
                    }
                    _ => {
                        self.now = until;
                        self.early_timeout();
                    }
                }
            }
            Some(Feed::Fail) => self.transport_error(),
            Some(Feed::Abandon) => self.abandon(),
            None => self.eof(),
        }
    }

    fn input(&mut self, chunk: &[u8]) {
        let limits = &self.client.config().limits;
        let bound = 512 * chunk.len() + 4 * limits.max_line_len + 4 * limits.max_reply_len + 65536;
        self.note(|| format!("S: {:?}", String::from_utf8_lossy(chunk)));
        let meter = Meter::start();
        self.client.handle_input(self.now, chunk);
        let grown = meter.growth();
        assert!(
            grown <= bound,
            "{} input bytes made the session grow by {grown} bytes",
            chunk.len()
        );
    }

    fn eof(&mut self) {
        self.note(|| "-- end of stream".into());
        self.client.handle_eof(self.now);
        assert!(
            self.client.is_closed(),
            "the end of the stream left the session open"
        );
    }

    fn transport_error(&mut self) {
        self.note(|| "-- transport error".into());
        let open = !self.client.is_closed();
        self.client.handle_transport_error();
        assert!(self.client.is_closed());
        if open {
            assert_eq!(self.client.error(), Some(&Error::Transport));
        }
    }

    fn abandon(&mut self) {
        self.note(|| "-- abandoned".into());
        let open = !self.client.is_closed();
        self.client.abandon();
        assert!(self.client.is_closed());
        if open {
            assert_eq!(self.client.error(), Some(&Error::Abandoned));
        }
    }

    /// `handle_timeout` at `now`; `due`: `now` has reached the deadline of
    /// the output the driver is acting on, so the session must end.
    fn timeout(&mut self, due: bool) {
        let open = !self.client.is_closed();
        let earliest = self.live.earliest();
        self.client.handle_timeout(self.now);
        let fired = open && self.client.is_closed();
        if fired {
            let (now, error) = (self.now, self.client.error().cloned());
            self.note(|| format!("-- timeout at {now:?}: {error:?}"));
            assert!(
                matches!(self.client.error(), Some(Error::Timeout { .. })),
                "handle_timeout ended the session with {:?}",
                self.client.error()
            );
            assert!(
                earliest.is_some_and(|at| self.now >= at),
                "a timeout at {:?}, before every deadline handed out ({:?})",
                self.now,
                self.live
            );
        }
        if due && open {
            assert!(
                fired,
                "at {:?}, past the deadline of {:?}, handle_timeout did nothing",
                self.now, self.live
            );
        }
    }

    /// A wake-up before any deadline handed out: it must change nothing.
    fn early_timeout(&mut self) {
        if self.client.is_closed() || self.live.earliest().is_some_and(|at| self.now >= at) {
            return;
        }
        let before = format!("{:?}", self.client);
        self.client.handle_timeout(self.now);
        assert_eq!(
            format!("{:?}", self.client),
            before,
            "an early handle_timeout at {:?} (deadlines {:?}) changed the session",
            self.now,
            self.live
        );
    }

    /// Calls a restless driver makes while the session waits: none is due,
    /// so each must change nothing.
    fn out_of_turn(&mut self) {
        if self.client.is_in_body() {
            // The session is waiting for room: it takes nothing.
            let taken = self.call("push_body while waiting", |c| c.push_body(b"x"));
            assert_eq!(taken.ok(), Some(0), "push_body took bytes while waiting");
        } else {
            assert!(self.call("push_body", |c| c.push_body(b"x")).is_err());
            assert!(self.call("end_body", Client::end_body).is_err());
        }
        let now = self.now;
        assert!(
            self.call("handle_tls_established", |c| c.handle_tls_established(now))
                .is_err()
        );
        let mut plain = PlainAuth::new("", USER, PASSWORD, "localhost");
        assert!(
            self.call("handle_auth", |c| c.handle_auth(&mut plain))
                .is_err()
        );
    }

    fn need_body(&mut self, message: Option<MessageId>, max: usize) {
        assert!(max >= 1, "NeedBody with no room");
        // The body is taken in bounded blocks: a DATA block, or a chunk.
        let bound = (64 * 1024).max(self.client.config().bdat_chunk_size);
        assert!(max <= bound, "NeedBody for {max} bytes at once");
        match message {
            Some(m) => self.message_body(m, max),
            None => self.step_body(max),
        }
    }

    fn message_body(&mut self, m: MessageId, max: usize) {
        let window = self.client.config().max_messages_in_flight.max(1);
        let pos = self
            .order
            .iter()
            .position(|&id| id == m)
            .unwrap_or_else(|| panic!("NeedBody for {m:?}, never queued"));
        // Bodies go in queue order: once a later message was asked for,
        // an earlier one never is again (its transaction may have failed
        // without the caller ending it).
        assert!(
            self.body_turn <= pos,
            "NeedBody for {m:?} after the body of {:?}",
            self.order[self.body_turn]
        );
        self.body_turn = pos;
        let msg = self.messages.get_mut(&m).expect("a queued message");
        assert!(!msg.ended, "NeedBody for {m:?}, whose body ended");
        assert_eq!(msg.done, 0, "NeedBody for {m:?}, already reported");
        if msg.transfer.is_none() {
            let transfer = self.client.body_transfer(msg.body_type);
            msg.transfer = Some(transfer);
            if transfer == BodyTransfer::Data {
                self.wire.begin_body();
            }
            let started = self
                .messages
                .values()
                .filter(|m| m.transfer.is_some() && m.done == 0)
                .count();
            assert!(
                started <= window,
                "{started} messages in flight, more than the window of {window}"
            );
        }
        let msg = self.messages.get_mut(&m).expect("a queued message");
        if let Some(piece) = msg.pieces.pop_front() {
            let taken = match self.client.push_body(&piece) {
                Ok(n) => n,
                Err(e) => panic!("push_body refused at NeedBody for {m:?}: {e:?}"),
            };
            check_taken(taken, piece.len(), max);
            let msg = self.messages.get_mut(&m).expect("a queued message");
            msg.accepted.extend_from_slice(&piece[..taken]);
            if taken < piece.len() {
                msg.pieces.push_front(piece[taken..].to_vec());
            }
            return;
        }
        let id = match self.client.end_body() {
            Ok(id) => id,
            Err(e) => panic!("end_body refused at NeedBody for {m:?}: {e:?}"),
        };
        let msg = self.messages.get_mut(&m).expect("a queued message");
        msg.ended = true;
        let (transfer, binary) = (msg.transfer, msg.body_type == BodyType::BinaryMime);
        let accepted = std::mem::take(&mut msg.accepted);
        self.body_ended(transfer, binary, &accepted);
        self.issue(id, BODY_END);
        if let Some(i) = self.issued.get_mut(&id) {
            i.of_message = true;
        }
    }

    fn step_body(&mut self, max: usize) {
        // A body started with `start_bdat` is asked for at once; a DATA
        // body only after its 354, so one queued behind an earlier DATA
        // still waiting for it goes first.
        let waiting_data = self
            .step_bodies
            .front()
            .is_some_and(|b| b.data.is_some_and(|(_, ok)| !ok));
        if waiting_data
            && let Some(i) = self
                .step_bodies
                .iter()
                .position(|b| b.transfer == BodyTransfer::Bdat)
        {
            let stream = self.step_bodies.remove(i).expect("a step body");
            self.step_bodies.push_front(stream);
        }
        let Some(b) = self.step_bodies.front_mut() else {
            panic!("NeedBody for a step-by-step body nobody started");
        };
        if !b.begun {
            b.begun = true;
            if let Some((id, ok)) = b.data {
                assert!(ok, "NeedBody for the body of {id:?} before its 354");
                self.wire.begin_body();
            }
            if b.try_rset {
                let r = self.call("RSET in a body", Client::rset);
                assert_eq!(
                    r.err(),
                    Some(Error::Usage(UsageError::BodyInProgress)),
                    "RSET in the middle of a body"
                );
            }
        }
        let b = self.step_bodies.front_mut().expect("a step body");
        if let Some(piece) = b.pieces.pop_front() {
            match self.client.push_body(&piece) {
                Ok(taken) => {
                    check_taken(taken, piece.len(), max);
                    let b = self.step_bodies.front_mut().expect("a step body");
                    b.accepted.extend_from_slice(&piece[..taken]);
                    if taken < piece.len() {
                        b.pieces.push_front(piece[taken..].to_vec());
                    }
                }
                Err(e) => self.step_body_failed(&e),
            }
            return;
        }
        match self.client.end_body() {
            Ok(id) => {
                let b = self.step_bodies.pop_front().expect("a step body");
                self.body_ended(Some(b.transfer), b.binary, &b.accepted);
                let kinds: &'static [CommandKind] = match b.transfer {
                    BodyTransfer::Data => &[CommandKind::DataEnd],
                    BodyTransfer::Bdat => &[CommandKind::Bdat],
                };
                self.issue(id, kinds);
                if let Some(i) = self.issued.get_mut(&id) {
                    i.ends_message = true;
                }
                self.wait_for_end(id);
            }
            Err(e) => self.step_body_failed(&e),
        }
    }

    /// The transaction failed while its body was being given: the body is
    /// over, with that failure.
    fn step_body_failed(&mut self, e: &Error) {
        self.note(|| format!("-- body refused: {e:?}"));
        assert!(
            !self.client.is_in_body(),
            "push_body/end_body failed with {e:?}, but the body goes on"
        );
        assert!(
            self.client.error().is_none(),
            "a body refused after a fatal error was asked for"
        );
        self.step_bodies.pop_front();
    }

    /// The caller ended a body: what the wire must carry.
    fn body_ended(&mut self, transfer: Option<BodyTransfer>, binary: bool, accepted: &[u8]) {
        match transfer {
            Some(BodyTransfer::Data) => self.wire.end_body(accepted),
            _ if binary => self.wire.expect_bdat(accepted.to_vec()),
            _ => self.wire.expect_bdat(normalize_line_endings(accepted)),
        }
    }

    fn on_event(&mut self, event: Event) {
        if self.check_secrets {
            let shown = format!("{event:?}");
            for secret in &self.secrets {
                assert!(!shown.contains(secret.as_str()), "a secret in {shown}");
            }
        }
        match event {
            Event::Completed { id, kind, result } => self.completed(id, kind, result),
            Event::AuthNeeded { id } => {
                let mechanism = match self.mechanisms.get_mut(&id) {
                    Some(m) => m,
                    None => {
                        assert!(
                            self.establishing.is_some(),
                            "AuthNeeded for {id:?}, but no AUTH was asked for"
                        );
                        self.establish_mechanism.get_or_insert_with(|| {
                            // `establish(true)` needs a mechanism.
                            mechanism(0, "localhost", false)
                        })
                    }
                };
                let result = self.client.handle_auth(mechanism.as_mut());
                assert!(
                    result.is_ok() || result.as_ref().err() == self.client.error(),
                    "handle_auth after AuthNeeded: {result:?}"
                );
            }
            Event::MessageDone { id, result } => self.message_done(id, result),
            Event::LmtpDelivery {
                data, recipient, ..
            } => {
                assert!(self.client.config().lmtp, "an LMTP delivery in SMTP");
                let end = self.issued.get(&data);
                assert!(
                    end.is_some_and(|i| i.ends_message && i.done == 0),
                    "LMTP delivery for {data:?}, a {end:?}"
                );
                let rcpt = self.issued.get(&recipient).map(|i| i.kinds);
                assert_eq!(rcpt, Some(&[CommandKind::Rcpt][..]));
            }
            Event::Transcript(line) => {
                assert!(!line.text.contains(['\r', '\n']), "{line:?}");
            }
            _ => {}
        }
    }

    fn completed(&mut self, id: CommandId, kind: CommandKind, result: Result<Reply, Error>) {
        self.note(|| match &result {
            Ok(r) => format!("{kind} ok {}", r.code()),
            Err(e) => format!("{kind} error {e:?}"),
        });
        let handshakes = self.handshakes;
        let issued = self
            .issued
            .get_mut(&id)
            .unwrap_or_else(|| panic!("{id:?} ({kind}) completed but was never issued"));
        assert!(
            !issued.of_message,
            "{id:?}, a command of a message, completed as an event"
        );
        assert!(
            issued.kinds.contains(&kind),
            "{id:?} issued as {:?} completed as {kind}",
            issued.kinds
        );
        issued.done += 1;
        assert_eq!(
            issued.done, 1,
            "{id:?} ({kind}) completed twice, now with {result:?}"
        );
        let (ends_message, at_issue, authenticate) =
            (issued.ends_message, issued.handshakes, issued.authenticate);
        if let Ok(reply) = &result {
            let code = reply.code();
            match kind {
                CommandKind::Greeting => assert_eq!(code, ReplyCode::SERVICE_READY),
                CommandKind::Auth => assert!(
                    code == ReplyCode::AUTH_SUCCEEDED && self.client.is_authenticated(),
                    "AUTH succeeded with {reply:?}"
                ),
                CommandKind::StartTls => assert!(
                    code == ReplyCode::SERVICE_READY
                        && handshakes > at_issue
                        && self.client.is_tls(),
                    "STARTTLS succeeded with {reply:?} without a TLS handshake"
                ),
                CommandKind::Establish => {
                    if self.client.config().tls_policy == TlsPolicy::Required {
                        assert!(self.client.is_tls(), "established without the TLS required");
                    }
                    if authenticate {
                        assert!(
                            self.client.is_authenticated(),
                            "established without the AUTH asked for"
                        );
                    }
                }
                CommandKind::Data => {
                    assert_eq!(code, ReplyCode::START_MAIL_INPUT, "DATA succeeded");
                    let stream_open = self
                        .step_bodies
                        .iter()
                        .any(|b| b.transfer == BodyTransfer::Bdat && b.begun)
                        || self.messages.values().any(|m| {
                            m.transfer == Some(BodyTransfer::Bdat) && !m.ended && m.done == 0
                        });
                    assert!(
                        !stream_open,
                        "the 354 to {id:?} arrived while a body stream opened after it is \
                         still being given"
                    );
                    if let Some(b) = self
                        .step_bodies
                        .iter_mut()
                        .find(|b| b.data.is_some_and(|(d, _)| d == id))
                    {
                        b.data = Some((id, true));
                    }
                }
                _ => assert!(
                    reply.is_positive_completion(),
                    "{kind} succeeded with {reply:?}"
                ),
            }
            if ends_message {
                self.delivered += 1;
            }
        } else if kind == CommandKind::Data {
            self.step_bodies
                .retain(|b| b.data.is_none_or(|(d, _)| d != id));
        }
        if kind == CommandKind::Establish {
            self.establishing = None;
        }
    }

    fn message_done(&mut self, id: MessageId, result: Result<SendReport, SendError>) {
        self.note(|| match &result {
            Ok(r) => format!("message #{} ok {}", id.get(), r.reply.code()),
            Err(e) => format!("message #{} error {:?}", id.get(), e.error),
        });
        let lmtp = self.client.config().lmtp;
        let msg = self
            .messages
            .get_mut(&id)
            .unwrap_or_else(|| panic!("MessageDone for {id:?}, never queued"));
        msg.done += 1;
        assert_eq!(msg.done, 1, "{id:?} reported twice, now with {result:?}");
        let addresses = |reports: &[smtp_sansio::RecipientReport]| {
            reports
                .iter()
                .map(|r| r.address.clone())
                .collect::<Vec<_>>()
        };
        match &result {
            Ok(report) => {
                assert!(msg.ended, "{id:?} delivered before its body ended");
                assert_eq!(addresses(&report.recipients), msg.to, "{id:?}'s report");
                assert!(
                    report.accepted().count() >= 1,
                    "{id:?} delivered to nobody: {report:?}"
                );
                assert!(report.reply.is_positive_completion(), "{report:?}");
                for r in &report.recipients {
                    assert!(r.rcpt.is_some(), "{id:?} delivered, a RCPT unanswered");
                    if msg.require_all {
                        assert!(
                            matches!(r.rcpt, Some(Ok(_))),
                            "{id:?} sent with a recipient refused: {report:?}"
                        );
                    }
                    if !lmtp {
                        assert!(r.delivery.is_none(), "an LMTP delivery in SMTP");
                    } else if matches!(r.rcpt, Some(Ok(_))) {
                        assert!(r.delivery.is_some(), "{id:?}: an LMTP delivery missing");
                    }
                }
                self.delivered += 1;
            }
            Err(e) => {
                assert!(
                    e.recipients.is_empty() || addresses(&e.recipients) == msg.to,
                    "{id:?}'s failure report: {e:?}"
                );
                if msg.transfer == Some(BodyTransfer::Data) {
                    assert!(e.body_sent, "{id:?} got its 354, but no body_sent: {e:?}");
                }
            }
        }
    }

    // ----- the user -----

    /// Runs the user's next step if it is free; whether it did.
    fn user_turn(&mut self) -> bool {
        if self.client.is_closed() || !self.user_free() {
            return false;
        }
        let Some(&step) = self.steps.front() else {
            return false;
        };
        if matches!(step, Step::Txn(_)) && self.data_awaits_354() {
            // The core refuses a new transaction while a DATA's body is to
            // come (it would take that body's place): check that it does,
            // then wait for the `354`.
            let from = envelope(1).from;
            let refused = self.call("mail", |c| c.mail(from, MailParams::default()));
            assert!(
                refused.is_err(),
                "MAIL accepted while a DATA awaits its 354"
            );
            return false;
        }
        self.steps.pop_front();
        self.step(step);
        true
    }

    /// A step-by-step DATA of the user's waits for its `354`.
    fn data_awaits_354(&self) -> bool {
        self.step_bodies
            .iter()
            .any(|b| b.data.is_some_and(|(_, ok)| !ok))
    }

    fn user_free(&self) -> bool {
        if self.eager {
            return true;
        }
        self.step_bodies.is_empty()
            && self.waiting.iter().all(|w| match *w {
                Awaited::Command(id) => self.issued.get(&id).is_none_or(|i| i.done > 0),
                Awaited::Message(id) => self.messages.get(&id).is_none_or(|m| m.done > 0),
            })
    }

    fn step(&mut self, step: Step) {
        self.note(|| format!("-- step {step:?}"));
        match step {
            Step::Hello => self.hello(),
            Step::StartTls => {
                if let Ok(id) = self.call("starttls", Client::starttls) {
                    self.issue(id, &[CommandKind::StartTls]);
                    self.wait(id);
                }
            }
            Step::Auth(m) => {
                let server = self.client.server_name().to_owned();
                let insecure = self.h[1] & 0x40 != 0;
                if let Ok(id) = self.call("auth", Client::auth) {
                    self.issue(id, &[CommandKind::Auth]);
                    self.mechanisms.insert(id, mechanism(m, &server, insecure));
                    self.wait(id);
                }
            }
            Step::Send => self.send_messages(),
            Step::Txn(k) => self.transaction(k),
            Step::Extras => {
                let calls = [
                    (
                        self.call("verify", |c| c.verify("postmaster")),
                        CommandKind::Vrfy,
                    ),
                    (self.call("noop", Client::noop), CommandKind::Noop),
                    (self.call("rset", Client::rset), CommandKind::Rset),
                ];
                for (result, kind) in calls {
                    if let Ok(id) = result {
                        self.issue(id, kind_slice(kind));
                        self.wait(id);
                    }
                }
            }
            Step::Quit => {
                if let Ok(id) = self.call("quit", Client::quit) {
                    self.issue(id, &[CommandKind::Quit]);
                    self.wait(id);
                }
            }
        }
    }

    fn hello(&mut self) {
        match self.h[2] & 0x03 {
            0 => {
                let domain = Domain::new("client.example").unwrap_or_else(|_| Domain::localhost());
                if let Ok(id) = self.call("hello", |c| c.hello(domain)) {
                    self.issue(id, HELLO);
                    self.wait(id);
                }
            }
            1 => {
                if let Ok(Some(id)) = self.call("ensure_hello", Client::ensure_hello) {
                    self.issue(id, HELLO);
                    self.wait(id);
                }
            }
            2 => {}
            _ => {
                let first = (0..6).find(|m| self.h[1] & (1 << m) != 0);
                let authenticate = first.is_some();
                if let Ok(id) = self.call("establish", |c| c.establish(authenticate)) {
                    self.issue(id, &[CommandKind::Establish]);
                    if let Some(i) = self.issued.get_mut(&id) {
                        i.authenticate = authenticate;
                    }
                    let server = self.client.server_name().to_owned();
                    let insecure = self.h[1] & 0x40 != 0;
                    self.establish_mechanism = first.map(|m| mechanism(m, &server, insecure));
                    self.establishing = Some(id);
                    self.wait(id);
                }
            }
        }
    }

    /// Every `send` message at once, so they share the window.
    fn send_messages(&mut self) {
        for k in 0..usize::from(self.h[3] & 0x07) {
            let rcpts = usize::from(self.h[3] >> 3 & 0x03) + 1;
            let body = BODIES[(usize::from(self.h[4] & 0x07) + k) % BODIES.len()];
            let binary = k == 0 && self.h[3] & 0x80 != 0;
            let mut envelope = envelope(rcpts);
            if binary {
                envelope.params.body = BodyType::BinaryMime;
            }
            if self.h[3] & 0x40 != 0 {
                dsn_options(&mut envelope.params, &mut envelope.to, body.len(), k);
            }
            envelope.require_all_recipients = self.h[3] & 0x20 != 0;
            let to = envelope.to.iter().map(|(m, _)| m.clone()).collect();
            let require_all = envelope.require_all_recipients;
            let body_type = envelope.params.body;
            let Ok(id) = self.call("send", |c| c.send(envelope)) else {
                continue;
            };
            assert!(
                !self.issued.keys().any(|c| c.get() == id.get()),
                "{id:?} has a command's number"
            );
            let old = self.messages.insert(
                id,
                Message {
                    to,
                    require_all,
                    body_type,
                    pieces: cut(body, self.h[4] >> 3 & 0x07).into(),
                    accepted: Vec::new(),
                    transfer: None,
                    ended: false,
                    done: 0,
                },
            );
            assert!(old.is_none(), "{id:?} handed out twice");
            self.order.push(id);
            self.waiting.push(Awaited::Message(id));
        }
    }

    /// One transaction step by step: MAIL, each RCPT, then the body.
    fn transaction(&mut self, k: usize) {
        let mode = match self.h[5] >> 2 & 0x03 {
            3 => k % 3,
            m => usize::from(m),
        };
        let abandon = self.h[5] & 0x10 != 0;
        let binary = k == 0 && self.h[3] & 0x80 != 0;
        let rcpts = usize::from(self.h[3] >> 3 & 0x03) + 1;
        let body = BODIES[(usize::from(self.h[4] & 0x07) + k + 3) % BODIES.len()];
        let mut envelope = envelope(rcpts);
        if binary {
            envelope.params.body = BodyType::BinaryMime;
        }
        if self.h[3] & 0x40 != 0 {
            dsn_options(&mut envelope.params, &mut envelope.to, body.len(), 10 + k);
        }
        let Envelope {
            from, to, params, ..
        } = envelope;
        let Ok(mail) = self.call("mail", |c| c.mail(from, params)) else {
            return;
        };
        self.issue(mail, &[CommandKind::Mail]);
        if self.h[5] & 0x20 != 0
            && let Ok(id) = self.call("noop", Client::noop)
        {
            self.issue(id, &[CommandKind::Noop]);
        }
        for (mailbox, params) in to {
            if let Ok(id) = self.call("rcpt", |c| c.rcpt(mailbox, params)) {
                self.issue(id, &[CommandKind::Rcpt]);
            }
        }
        let pieces: VecDeque<Vec<u8>> = cut(body, self.h[4] >> 3 & 0x07).into();
        match mode {
            0 if abandon => self.rset(),
            0 => match self.call("data", Client::data) {
                Ok(id) => {
                    self.issue(id, &[CommandKind::Data]);
                    self.step_bodies.push_back(StepBody {
                        transfer: BodyTransfer::Data,
                        binary,
                        data: Some((id, false)),
                        pieces,
                        accepted: Vec::new(),
                        begun: false,
                        try_rset: false,
                    });
                    self.wait(id);
                }
                Err(_) => self.rset(),
            },
            1 => match self.call("start_bdat", Client::start_bdat) {
                Ok(()) => self.step_bodies.push_back(StepBody {
                    transfer: BodyTransfer::Bdat,
                    binary,
                    data: None,
                    pieces,
                    accepted: Vec::new(),
                    begun: false,
                    try_rset: abandon,
                }),
                Err(_) => self.rset(),
            },
            _ => self.raw_bdat(pieces.into(), binary, abandon),
        }
    }

    /// The body as explicit `bdat` chunks, the last with LAST.
    fn raw_bdat(&mut self, mut chunks: Vec<Vec<u8>>, binary: bool, abandon: bool) {
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let n = chunks.len();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == n;
            let Ok(id) = self.call("bdat", |c| c.bdat(chunk, last)) else {
                // Leave the half-sent transaction behind cleanly.
                return self.rset();
            };
            self.issue(id, &[CommandKind::Bdat]);
            if !last && abandon {
                return self.rset();
            }
            if last {
                let whole = chunks.concat();
                self.body_ended(Some(BodyTransfer::Bdat), binary, &whole);
                if let Some(i) = self.issued.get_mut(&id) {
                    i.ends_message = true;
                }
                self.wait_for_end(id);
            }
        }
    }

    fn rset(&mut self) {
        if let Ok(id) = self.call("rset", Client::rset) {
            self.issue(id, &[CommandKind::Rset]);
            self.wait(id);
        }
    }

    fn wait(&mut self, id: CommandId) {
        self.waiting.push(Awaited::Command(id));
    }

    /// After the end of a message: wait for its reply, unless `h[5]` says
    /// to go on at once (so the next envelope is queued behind it).
    fn wait_for_end(&mut self, id: CommandId) {
        if self.h[5] & 0x80 == 0 {
            self.wait(id);
        }
    }

    // ----- the checks -----

    /// Makes a call as the user; a refused call must change nothing (so
    /// write nothing: "nothing is sent for a refused call"), and after a
    /// fatal error it must return that error.
    fn call<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let before = format!("{:?}", self.client);
        if self.check_secrets {
            for secret in &self.secrets {
                assert!(!before.contains(secret.as_str()), "a secret in {before}");
            }
        }
        let result = f(&mut self.client);
        if let Err(e) = &result {
            assert_eq!(
                format!("{:?}", self.client),
                before,
                "{what} refused with {e:?} changed the session"
            );
            if let Some(sticky) = self.client.error() {
                assert_eq!(e, sticky, "{what} after the fatal error");
            }
        }
        result
    }

    fn issue(&mut self, id: CommandId, kinds: &'static [CommandKind]) {
        let handshakes = self.handshakes;
        assert!(
            !self.messages.keys().any(|m| m.get() == id.get()),
            "{id:?} has a message's number"
        );
        let old = self.issued.insert(
            id,
            Issued {
                kinds,
                done: 0,
                of_message: false,
                ends_message: false,
                handshakes,
                authenticate: false,
            },
        );
        assert!(old.is_none(), "{id:?} was handed out twice");
    }

    /// The first fatal error is kept, and a closed session stays closed.
    fn check_sticky(&mut self) {
        match (&self.sticky, self.client.error()) {
            (None, e) => self.sticky = e.cloned(),
            (Some(first), now) => assert_eq!(Some(first), now, "the fatal error changed"),
        }
        if self.closed {
            assert!(self.client.is_closed(), "a closed session opened again");
        }
        self.closed = self.client.is_closed();
    }

    fn check_not_stalled(&self) {
        let commands: Vec<&CommandId> = self
            .issued
            .iter()
            .filter(|(_, i)| i.done == 0 && !i.of_message)
            .map(|(id, _)| id)
            .collect();
        let messages: Vec<&MessageId> = self
            .messages
            .iter()
            .filter(|(_, m)| m.done == 0)
            .map(|(id, _)| id)
            .collect();
        assert!(
            commands.is_empty() && messages.is_empty(),
            "stalled: Wait(None) with {commands:?} and {messages:?} outstanding"
        );
    }

    /// `Closed`: everything was reported, nothing more is written, and the
    /// error (if any) is what every call returns.
    fn closed_checks(&mut self) {
        for (id, i) in &self.issued {
            let want = u32::from(!i.of_message);
            assert_eq!(
                i.done, want,
                "{id:?} ({:?}) completed {} times by the end",
                i.kinds, i.done
            );
        }
        for (id, m) in &self.messages {
            assert_eq!(m.done, 1, "{id:?} reported {} times by the end", m.done);
        }
        if !self.wire.in_body() {
            self.wire.finish();
        }
        assert!(
            self.delivered <= self.wire.messages(),
            "{} messages reported delivered, {} on the wire",
            self.delivered,
            self.wire.messages()
        );
        let shown = format!("{:?}", self.client);
        if self.check_secrets {
            for secret in &self.secrets {
                assert!(!shown.contains(secret.as_str()), "a secret in {shown}");
            }
        }
        let error = self.client.error().cloned();
        let now = self.now;
        let check = |what: &str, e: Option<Error>| {
            let e = e.unwrap_or_else(|| panic!("{what} succeeded on a closed session"));
            if let Some(first) = &error {
                assert_eq!(&e, first, "{what} on a session that failed");
            }
        };
        let envelope = envelope(1);
        let c = &mut self.client;
        check("send", c.send(envelope).err());
        check("establish", c.establish(true).err());
        check("hello", c.hello(Domain::localhost()).err());
        check("ensure_hello", c.ensure_hello().err());
        check("starttls", c.starttls().err());
        check("auth", c.auth().err());
        let from = ReversePath::new(FROM).expect("the harness's sender");
        check("mail", c.mail(from, MailParams::default()).err());
        let to = Mailbox::new("rcpt@example.com").expect("the harness's recipient");
        check("rcpt", c.rcpt(to, RcptParams::default()).err());
        check("data", c.data().err());
        check("start_bdat", c.start_bdat().err());
        check("bdat", c.bdat(b"x", true).err());
        check("push_body", c.push_body(b"x").err());
        check("end_body", c.end_body().err());
        check("rset", c.rset().err());
        check("noop", c.noop().err());
        check("verify", c.verify("postmaster").err());
        check("quit", c.quit().err());
        check(
            "handle_tls_established",
            c.handle_tls_established(now).err(),
        );
        let mut plain = PlainAuth::new("", USER, PASSWORD, "localhost");
        check("handle_auth", c.handle_auth(&mut plain).err());
        assert_eq!(
            format!("{c:?}"),
            shown,
            "a refused call changed the session"
        );
        c.handle_input(now, b"250 ok\r\n");
        c.handle_eof(now);
        c.handle_timeout(Timestamp::MAX);
        if error.is_some() {
            c.handle_transport_error();
            c.abandon();
            assert_eq!(c.error(), error.as_ref(), "the fatal error changed");
        }
        assert_eq!(
            c.poll_output(now),
            Output::Closed,
            "a closed session woke up"
        );
    }

    /// Records a line of the trace (and prints it, so a panic shows how the
    /// session got there), when tracing.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let line = line();
            eprintln!("  {line}");
            trace.push(line);
        }
    }
}

/// The session's settings from the header.
fn config(h: &[u8; HEADER]) -> Config {
    let mut config = Config::default();
    config.pipelining = h[0] & 0x01 == 0;
    config.lmtp = h[0] & 0x02 != 0;
    config.prefer_chunking = h[0] & 0x08 == 0;
    if h[0] & 0x10 != 0 {
        config.limits.max_line_len = 128;
        config.limits.max_lines = 8;
        config.limits.max_reply_len = 512;
        config.limits.max_auth_rounds = 3;
    }
    config.transcript = h[0] & 0x20 != 0;
    config.tls_policy = match h[2] >> 2 & 0x03 {
        1 => TlsPolicy::Required,
        2 => TlsPolicy::Disabled,
        _ => TlsPolicy::Opportunistic,
    };
    let (chunk, window, messages) = match h[4] >> 6 {
        0 => (256 * 1024, 2, 8),
        1 => (5, 1, 1),
        2 => (3, 2, 2),
        _ => (1, 3, 3),
    };
    config.bdat_chunk_size = chunk;
    config.bdat_window = window;
    config.max_messages_in_flight = messages;
    config.timeouts = match h[10] >> 4 & 0x03 {
        0 => Timeouts::default(),
        1 => Timeouts::uniform(Duration::from_secs(30)),
        2 => Timeouts::uniform(Duration::MAX),
        _ => Timeouts::uniform(Duration::ZERO),
    };
    config
}

/// `push_body` at a `NeedBody { max }` takes what it may: at least one byte
/// of a non-empty piece, at most `max`.
fn check_taken(taken: usize, offered: usize, max: usize) {
    assert!(
        taken <= offered.min(max) && (taken > 0 || offered == 0),
        "push_body took {taken} of {offered} bytes at a NeedBody of {max}"
    );
}

/// An envelope from the harness's sender to `n` recipients (the fourth a
/// UTF-8 address).
fn envelope(n: usize) -> Envelope {
    let to: Vec<String> = (0..n)
        .map(|i| match i {
            3 => "用户@例子.广告".to_owned(),
            _ => format!("rcpt{i}@example.com"),
        })
        .collect();
    Envelope::new(FROM, &to).unwrap_or_else(|e| panic!("the harness's own envelope: {e}"))
}

/// DSN, SIZE and MT-PRIORITY options.
fn dsn_options(params: &mut MailParams, to: &mut [(Mailbox, RcptParams)], size: usize, k: usize) {
    params.size = Some(size as u64);
    params.ret = Some(DsnReturn::Headers);
    params.envid = Some(format!("env+{k}"));
    params.mt_priority = Some(-3);
    for (mailbox, params) in to {
        params.notify = Some(DsnNotify::On {
            success: true,
            failure: true,
            delay: false,
        });
        params.orcpt = Some(mailbox.clone());
    }
}

fn kind_slice(kind: CommandKind) -> &'static [CommandKind] {
    match kind {
        CommandKind::Vrfy => &[CommandKind::Vrfy],
        CommandKind::Noop => &[CommandKind::Noop],
        _ => &[CommandKind::Rset],
    }
}

/// The built-in mechanism number `m` with the harness's credentials.
pub(crate) fn mechanism(m: u8, server: &str, insecure: bool) -> Box<dyn Auth> {
    match m {
        0 if insecure => {
            Box::new(PlainAuth::new("", USER, PASSWORD, server).allow_insecure_transport())
        }
        0 => Box::new(PlainAuth::new("", USER, PASSWORD, server)),
        1 if insecure => {
            Box::new(LoginAuth::new(USER, PASSWORD, server).allow_insecure_transport())
        }
        1 => Box::new(LoginAuth::new(USER, PASSWORD, server)),
        2 => Box::new(CramMd5Auth::new(USER, PASSWORD)),
        3 => Box::new(XOAuth2::new(USER, TOKEN)),
        4 => Box::new(OAuthBearer::new(USER, TOKEN, server, PORT)),
        // RFC 7677's 4096 iterations at most: each costs two HMACs.
        _ => Box::new(ScramAuth::sha256(USER, PASSWORD, NONCE).with_max_iterations(4096)),
    }
}

/// Cuts a body into chunks by one of eight patterns.
fn cut(body: &[u8], pattern: u8) -> Vec<Vec<u8>> {
    let n = body.len();
    let parts: Vec<&[u8]> = match pattern {
        0 => vec![body],
        1 => body.chunks(1).collect(),
        2 => vec![&body[..n.min(1)], &body[n.min(1)..]],
        3 => vec![&body[..n.saturating_sub(1)], &body[n.saturating_sub(1)..]],
        4 => body.chunks(n.div_ceil(3).max(1)).collect(),
        5 => body.chunks(2).collect(),
        6 => vec![body, b"", b""],
        _ => body.chunks(3).collect(),
    };
    parts
        .into_iter()
        .filter(|p| !p.is_empty() || pattern == 6)
        .map(<[u8]>::to_vec)
        .collect()
}
