//! `client_session`: a scripted user drives the whole client while the
//! server's bytes are whatever the fuzzer likes.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_proto::{
    Auth, BodyTransfer, BodyType, Client, CommandId, CommandKind, Config, CramMd5Auth, Direction,
    Domain, DsnNotify, DsnReturn, Envelope, Error, Event, LoginAuth, OAuthBearer, PlainAuth,
    ProtocolError, ReplyCode, ServerInfo, UsageError, XOAuth2, normalize_line_endings,
};

use crate::alloc::Meter;
use crate::input::{Chunks, header};
use crate::wire::Wire;

const USER: &str = "user@example.com";
const PASSWORD: &str = "pw-s3cr3t-9f8e";
const TOKEN: &str = "tok-s3cr3t-7d6c";
const PORT: u16 = 587;

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

/// Header (8 bytes), then the server's bytes.
///
/// - `h[0]` session flags: 0x01 pipelining off, 0x02 LMTP, 0x04 implicit
///   TLS, 0x08 `prefer_chunking` off, 0x10 small limits, 0x20 transcript,
///   0x40 lazy hello (no explicit `hello`), 0x80 a driver that keeps reading
///   plaintext instead of doing the TLS handshake after STARTTLS.
/// - `h[1]` AUTH: bits 0–4 try PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER
///   in turn; 0x20 allow PLAIN/LOGIN/XOAUTH2/OAUTHBEARER without TLS; 0x40
///   server name `localhost` (else `mx.example.com`); 0x80 try STARTTLS
///   first.
/// - `h[2]` transactions: bits 0–1 count (xor 1, so 0 means one), bits 2–3
///   recipients − 1 (the fourth is a UTF-8 address), 0x10 first body by BDAT
///   (then alternating), 0x20 let `body_transfer` choose, 0x40 VRFY, NOOP
///   and RSET pipelined before QUIT, 0x80 no QUIT.
/// - `h[3]` body: bits 0–2 which body, bits 3–5 how it is cut into
///   chunks, 0x40 DSN/SIZE/priority options, 0x80 first body BINARYMIME.
/// - `h[4..8]` the sizes the server's bytes are cut into (0: the rest); all
///   zero: one line at a time, as a server writes (what the seeds use, so
///   that real transcripts replay).
/// - `h[8]` more: 0x01 `require_all_recipients`, 0x02 MAIL/RCPT/DATA by
///   hand instead of `send_envelope`, 0x04 a NOOP queued inside the
///   transaction, 0x08 `ensure_hello` instead of `hello`, 0x10 an RSET
///   after the first BDAT chunk (the message abandoned), 0x20 the next
///   step without waiting for the reply to the end of a message.
///
/// Checked: no panic; a bounded number of steps; every command id completes
/// exactly once and with its own kind; nothing stalls (an outstanding
/// command always has a reply awaited); every byte written is a valid
/// command line, a correctly stuffed DATA body or a BDAT payload of the
/// announced size holding the caller's message; no secret in the
/// transcript; heap growth per input byte is bounded.
pub fn client_session(data: &[u8]) {
    let (h, stream) = header::<9>(data);
    let mut session = Session::new(h);
    let chunks = if h[4..8] == [0; 4] {
        Chunks::lines(stream)
    } else {
        Chunks::new(stream, &h[4..8])
    };
    session.run(chunks);
}

/// Runs [`client_session`] and returns what happened: each completion as
/// `kind ok|error`, for checking that the seeds drive the session as far as
/// they mean to.
pub fn client_session_trace(data: &[u8]) -> Vec<String> {
    let (h, stream) = header::<9>(data);
    let mut session = Session::new(h);
    session.trace = Some(Vec::new());
    let chunks = if h[4..8] == [0; 4] {
        Chunks::lines(stream)
    } else {
        Chunks::new(stream, &h[4..8])
    };
    session.run(chunks);
    session.trace.unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Hello,
    StartTls,
    Auth(u8),
    Txn(usize),
    Extras,
    Quit,
}

struct Session {
    h: [u8; 9],
    client: Client,
    wire: Wire,
    steps: VecDeque<Step>,
    /// The command the user waits for before its next step.
    waiting: Option<CommandId>,
    /// STARTTLS succeeded; the handshake is due.
    tls_due: bool,
    mechanism: Option<Box<dyn Auth>>,
    /// The DATA command waiting for its 354, with the body's chunks.
    data: Option<(CommandId, Vec<Vec<u8>>)>,
    issued: HashMap<CommandId, &'static [CommandKind]>,
    completed: HashMap<CommandId, u32>,
    secrets: Vec<String>,
    rounds: usize,
    trace: Option<Vec<String>>,
}

impl Session {
    fn new(h: [u8; 9]) -> Self {
        let server = if h[1] & 0x40 != 0 {
            "localhost"
        } else {
            "mx.example.com"
        };
        let mut config = Config::new(server);
        config.pipelining = h[0] & 0x01 == 0;
        config.lmtp = h[0] & 0x02 != 0;
        config.tls = h[0] & 0x04 != 0;
        config.prefer_chunking = h[0] & 0x08 == 0;
        if h[0] & 0x10 != 0 {
            config.limits.max_line_len = 128;
            config.limits.max_lines = 8;
            config.limits.max_reply_len = 512;
            config.limits.max_auth_rounds = 3;
        }
        config.transcript = h[0] & 0x20 != 0;

        let mut steps = VecDeque::new();
        if h[0] & 0x40 == 0 {
            steps.push_back(Step::Hello);
        }
        if h[1] & 0x80 != 0 {
            steps.push_back(Step::StartTls);
        }
        for m in 0..5 {
            if h[1] & (1 << m) != 0 {
                steps.push_back(Step::Auth(m));
            }
        }
        for k in 0..usize::from(h[2] & 0x03 ^ 1) {
            steps.push_back(Step::Txn(k));
        }
        if h[2] & 0x40 != 0 {
            steps.push_back(Step::Extras);
        }
        if h[2] & 0x80 == 0 {
            steps.push_back(Step::Quit);
        }

        let mut secrets = vec![
            PASSWORD.to_owned(),
            TOKEN.to_owned(),
            BASE64.encode(PASSWORD),
        ];
        for m in [0, 3, 4] {
            let info = ServerInfo {
                name: server,
                tls: true,
                mechanisms: &[],
            };
            if let Ok(start) = mechanism(m, server, true).start(&info)
                && let Some(resp) = start.initial_response
            {
                secrets.push(BASE64.encode(resp.expose()));
            }
        }

        let mut issued: HashMap<CommandId, &'static [CommandKind]> = HashMap::new();
        issued.insert(CommandId::GREETING, &[CommandKind::Greeting]);
        Self {
            h,
            client: Client::new(config),
            wire: Wire::new(),
            steps,
            waiting: None,
            tls_due: false,
            mechanism: None,
            data: None,
            issued,
            completed: HashMap::new(),
            secrets,
            rounds: 0,
            trace: None,
        }
    }

    fn run(&mut self, mut chunks: Chunks<'_>) {
        let max_rounds = chunks.rest().len() + 8;
        loop {
            self.rounds += 1;
            assert!(
                self.rounds <= max_rounds,
                "the session neither ended nor used its input in {max_rounds} rounds"
            );
            self.settle();
            if self.client.is_closed() {
                break;
            }
            if self.client.is_awaiting_tls_handshake() {
                self.tls_handshake(&mut chunks);
                continue;
            }
            self.check_not_stalled();
            match chunks.next() {
                Some(chunk) => self.input(chunk),
                None => {
                    let result = self.client.handle_eof();
                    assert!(
                        result.is_err() && self.client.is_closed(),
                        "end of stream left the session open: {result:?}"
                    );
                }
            }
        }
        self.settle();
        self.wire.finish();
        for (id, kinds) in &self.issued {
            let n = self.completed.get(id).copied().unwrap_or(0);
            assert_eq!(n, 1, "{id:?} ({kinds:?}) completed {n} times");
        }
        assert!(
            self.client.poll_transmit().is_none(),
            "a closed session still has bytes to send"
        );
    }

    fn tls_handshake(&mut self, chunks: &mut Chunks<'_>) {
        if self.h[0] & 0x80 == 0 {
            let id = self
                .client
                .handle_tls_established()
                .expect("the session asked for a handshake but refused it");
            self.issue(id, HELLO);
            self.tls_due = false;
            self.waiting = Some(id);
            return;
        }
        // A broken driver: it keeps feeding plaintext. That must kill the
        // session, never be read as replies.
        match chunks.next() {
            Some(chunk) => {
                let result = self.client.handle_input(chunk);
                assert!(
                    matches!(
                        result,
                        Err(Error::Protocol(ProtocolError::DataAfterStartTls))
                    ),
                    "plaintext during the TLS pause gave {result:?}"
                );
                assert!(self.client.is_closed());
            }
            None => {
                let _ = self.client.handle_eof();
            }
        }
    }

    fn input(&mut self, chunk: &[u8]) {
        let limits = &self.client.config().limits;
        let bound = 512 * chunk.len() + 4 * limits.max_line_len + 4 * limits.max_reply_len + 65536;
        self.note(|| format!("S: {:?}", String::from_utf8_lossy(chunk)));
        let meter = Meter::start();
        let result = self.client.handle_input(chunk);
        let grown = meter.growth();
        assert!(
            grown <= bound,
            "{} input bytes made the session grow by {grown} bytes",
            chunk.len()
        );
        if let Err(e) = result {
            assert!(
                self.client.is_closed() && self.client.error().is_some(),
                "handle_input failed with {e:?} but the session is open"
            );
        }
        self.flush();
    }

    /// Drains events and lets the user act until nothing more happens.
    fn settle(&mut self) {
        for round in 0.. {
            assert!(round < 1000, "events kept coming");
            self.flush();
            let mut progressed = false;
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                self.on_event(event);
                self.flush();
            }
            progressed |= self.advance();
            if !progressed {
                return;
            }
        }
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            self.note(|| format!("C: {:?}", String::from_utf8_lossy(&bytes)));
            self.wire.commands(&bytes);
        }
    }

    /// Makes a command call; a refused call must write nothing (the run
    /// loop's contract: "nothing is sent for a refused call").
    fn call<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, Error>) -> Result<T, Error> {
        let before = self.client.transmit_len();
        let result = f(&mut self.client);
        if let Err(e) = &result {
            assert_eq!(
                self.client.transmit_len(),
                before,
                "a call refused with {e:?} wrote bytes"
            );
        }
        result
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

    fn issue(&mut self, id: CommandId, kinds: &'static [CommandKind]) {
        let old = self.issued.insert(id, kinds);
        assert!(old.is_none(), "{id:?} was handed out twice");
    }

    fn check_not_stalled(&self) {
        let c = &self.client;
        let _ = (
            c.read_timeout(),
            c.write_timeout(),
            c.is_tls(),
            c.capabilities(),
        );
        if c.read_stage().is_some() {
            assert!(c.has_outstanding(), "a reply is awaited for nothing");
        }
        let outstanding: Vec<&CommandId> = self
            .issued
            .keys()
            .filter(|id| !self.completed.contains_key(id))
            .collect();
        assert!(
            outstanding.is_empty() || c.read_stage().is_some(),
            "stalled: {outstanding:?} outstanding, but no reply is awaited"
        );
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Completed { id, kind, result } => {
                self.note(|| match &result {
                    Ok(r) => format!("{kind} ok {}", r.code()),
                    Err(e) => format!("{kind} error {e:?}"),
                });
                let n = self.completed.entry(id).or_insert(0);
                *n += 1;
                assert_eq!(
                    *n, 1,
                    "{id:?} ({kind}) completed twice, now with {result:?}"
                );
                let kinds = self
                    .issued
                    .get(&id)
                    .unwrap_or_else(|| panic!("{id:?} ({kind}) completed but was never issued"));
                assert!(
                    kinds.contains(&kind),
                    "{id:?} issued as {kinds:?} completed as {kind}"
                );
                if self.waiting == Some(id) {
                    self.waiting = None;
                }
                if let (CommandKind::Auth, Ok(reply)) = (kind, &result) {
                    assert_eq!(
                        reply.code(),
                        ReplyCode::AUTH_SUCCEEDED,
                        "AUTH succeeded with {reply:?}"
                    );
                }
                if kind == CommandKind::StartTls
                    && let Ok(reply) = &result
                {
                    assert!(
                        reply.code() == ReplyCode::SERVICE_READY
                            && self.client.is_awaiting_tls_handshake(),
                        "STARTTLS succeeded with {reply:?} without a TLS pause"
                    );
                    self.tls_due = true;
                }
                if kind == CommandKind::Data
                    && self.data.as_ref().is_some_and(|d| d.0 == id)
                    && let Some((_, chunks)) = self.data.take()
                    && result.is_ok()
                {
                    self.send_body(chunks);
                }
            }
            Event::AuthNeeded { id } => {
                assert_eq!(
                    self.issued.get(&id).copied(),
                    Some(&[CommandKind::Auth][..])
                );
                let mechanism = self
                    .mechanism
                    .as_mut()
                    .expect("AuthNeeded, but no AUTH was asked for");
                let result = self.client.handle_auth(mechanism.as_mut());
                if let Err(Error::Usage(UsageError::NoAuthPending)) = result {
                    assert!(self.client.is_closed(), "AuthNeeded, then NoAuthPending");
                }
            }
            Event::LmtpDelivery {
                data, recipient, ..
            } => {
                let kinds = self.issued.get(&data).copied().unwrap_or_default();
                assert!(
                    kinds.contains(&CommandKind::DataEnd) || kinds.contains(&CommandKind::Bdat),
                    "LMTP delivery for {data:?}, a {kinds:?}"
                );
                let kinds = self.issued.get(&recipient).copied().unwrap_or_default();
                assert_eq!(kinds, &[CommandKind::Rcpt][..]);
            }
            Event::Transcript(line) => {
                assert!(!line.text.contains(['\r', '\n']), "{line:?}");
                if line.direction == Direction::Client {
                    for secret in &self.secrets {
                        assert!(
                            !line.text.contains(secret.as_str()),
                            "a secret in the transcript: {line:?}"
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn send_body(&mut self, chunks: Vec<Vec<u8>>) {
        if self.client.is_closed() {
            return;
        }
        assert!(
            self.client.is_in_body(),
            "DATA got its 354 but the session is not in the body"
        );
        self.flush();
        self.wire.begin_body();
        let mut message = Vec::new();
        for chunk in &chunks {
            if let Err(e) = self.client.send_body(chunk) {
                panic!("send_body refused in the body: {e:?}");
            }
            message.extend_from_slice(chunk);
            while let Some(bytes) = self.client.poll_transmit() {
                self.wire.body(&bytes);
            }
        }
        match self.client.finish_body() {
            Ok(id) => {
                self.issue(id, &[CommandKind::DataEnd]);
                let mut bytes = Vec::new();
                while let Some(b) = self.client.poll_transmit() {
                    bytes.extend_from_slice(&b);
                }
                self.wire.end_body(&bytes, &message);
                self.wait_for_end(id);
            }
            Err(e) => panic!("finish_body refused in the body: {e:?}"),
        }
    }

    /// Runs the user's next steps while it is not waiting for anything.
    fn advance(&mut self) -> bool {
        let mut acted = false;
        while self.waiting.is_none() && !self.tls_due && !self.client.is_closed() {
            let Some(step) = self.steps.pop_front() else {
                break;
            };
            acted = true;
            self.step(step);
            self.flush();
        }
        acted
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Hello if self.h[8] & 0x08 != 0 => {
                if let Ok(Some(id)) = self.call(Client::ensure_hello) {
                    self.issue(id, HELLO);
                    self.waiting = Some(id);
                }
            }
            Step::Hello => {
                let domain = Domain::new("client.example").unwrap_or_else(|_| Domain::localhost());
                if let Ok(id) = self.call(|c| c.hello(domain)) {
                    self.issue(id, HELLO);
                    self.waiting = Some(id);
                }
            }
            Step::StartTls => {
                if let Ok(id) = self.call(Client::starttls) {
                    self.issue(id, &[CommandKind::StartTls]);
                    self.waiting = Some(id);
                }
            }
            Step::Auth(m) => {
                let server = self.client.config().server_name.clone();
                self.mechanism = Some(mechanism(m, &server, self.h[1] & 0x20 != 0));
                if let Ok(id) = self.call(Client::auth) {
                    self.issue(id, &[CommandKind::Auth]);
                    self.waiting = Some(id);
                }
            }
            Step::Txn(k) => self.transaction(k),
            Step::Extras => {
                let calls = [
                    (self.call(|c| c.verify("postmaster")), CommandKind::Vrfy),
                    (self.call(Client::noop), CommandKind::Noop),
                    (self.call(Client::rset), CommandKind::Rset),
                ];
                for (result, kind) in calls {
                    if let Ok(id) = result {
                        self.issue(id, kind_slice(kind));
                        self.waiting = Some(id);
                    }
                }
            }
            Step::Quit => {
                if let Ok(id) = self.call(Client::quit) {
                    self.issue(id, &[CommandKind::Quit]);
                    self.waiting = Some(id);
                }
            }
        }
    }

    fn transaction(&mut self, k: usize) {
        let rcpts = usize::from(self.h[2] >> 2 & 0x03) + 1;
        let to: Vec<String> = (0..rcpts)
            .map(|i| match i {
                3 => "用户@例子.广告".to_owned(),
                _ => format!("rcpt{i}@example.com"),
            })
            .collect();
        let Ok(mut envelope) = Envelope::new("sender@example.com", &to) else {
            panic!("the harness's own envelope was refused");
        };
        let body = BODIES[(usize::from(self.h[3] & 0x07) + k) % BODIES.len()];
        let binary = k == 0 && self.h[3] & 0x80 != 0;
        if binary {
            envelope.params.body = BodyType::BinaryMime;
        }
        if self.h[3] & 0x40 != 0 {
            envelope.params.size = Some(body.len() as u64);
            envelope.params.ret = Some(DsnReturn::Headers);
            envelope.params.envid = Some(format!("env+{k}"));
            envelope.params.mt_priority = Some(-3);
            for (mailbox, params) in &mut envelope.to {
                params.notify = Some(DsnNotify::On {
                    success: true,
                    failure: true,
                    delay: false,
                });
                params.orcpt = Some(mailbox.clone());
            }
        }
        let transfer = if self.h[2] & 0x20 != 0 {
            self.client.body_transfer(envelope.params.body)
        } else if (k + usize::from(self.h[2] >> 4 & 1)) % 2 == 1 {
            BodyTransfer::Bdat
        } else {
            BodyTransfer::Data
        };
        envelope.require_all_recipients = self.h[8] & 0x01 != 0;
        let chunks = cut(body, self.h[3] >> 3 & 0x07);
        let data = if self.h[8] & 0x02 != 0 {
            match self.by_hand(&envelope, transfer) {
                Some(data) => data,
                None => return,
            }
        } else {
            let Ok(ids) = self.call(|c| c.send_envelope(&envelope, transfer)) else {
                return;
            };
            self.issue(ids.mail, &[CommandKind::Mail]);
            for id in &ids.rcpts {
                self.issue(*id, &[CommandKind::Rcpt]);
            }
            self.noop_inside();
            ids.data
        };
        if let Some(data) = data {
            self.issue(data, &[CommandKind::Data]);
            self.data = Some((data, chunks));
            self.waiting = Some(data);
            return;
        }
        self.wire.set_binary(binary);
        let chunks = if chunks.is_empty() {
            vec![Vec::new()]
        } else {
            chunks
        };
        let n = chunks.len();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == n;
            match self.call(|c| c.bdat(chunk, last)) {
                Ok(id) => {
                    self.issue(id, &[CommandKind::Bdat]);
                    if !last && self.h[8] & 0x10 != 0 {
                        // Abandon the message after its first chunk.
                        if let Ok(id) = self.call(Client::rset) {
                            self.issue(id, &[CommandKind::Rset]);
                            self.waiting = Some(id);
                        }
                        return;
                    }
                    if last {
                        let wire = if binary {
                            body.to_vec()
                        } else {
                            normalize_line_endings(body)
                        };
                        self.wire.expect_bdat(wire, binary);
                        self.wait_for_end(id);
                    }
                }
                Err(_) => {
                    // Leave the half-sent transaction behind cleanly.
                    if let Ok(id) = self.call(Client::rset) {
                        self.issue(id, &[CommandKind::Rset]);
                        self.waiting = Some(id);
                    }
                    return;
                }
            }
        }
    }
}

impl Session {
    /// MAIL, each RCPT and DATA (for a DATA transfer) called one by one;
    /// `None` when MAIL was refused, else DATA's id if DATA was queued.
    fn by_hand(
        &mut self,
        envelope: &Envelope,
        transfer: BodyTransfer,
    ) -> Option<Option<CommandId>> {
        let mail = self
            .call(|c| c.mail(envelope.from.clone(), envelope.params.clone()))
            .ok()?;
        self.issue(mail, &[CommandKind::Mail]);
        self.noop_inside();
        for (to, params) in &envelope.to {
            if let Ok(id) = self.call(|c| c.rcpt(to.clone(), params.clone())) {
                self.issue(id, &[CommandKind::Rcpt]);
            }
        }
        if transfer == BodyTransfer::Bdat {
            return Some(None);
        }
        match self.call(Client::data) {
            Ok(id) => Some(Some(id)),
            Err(_) => {
                // Nothing to wait for: end the transaction.
                if let Ok(id) = self.call(Client::rset) {
                    self.issue(id, &[CommandKind::Rset]);
                    self.waiting = Some(id);
                }
                None
            }
        }
    }

    /// After the end of a message: wait for its reply, or (header flag
    /// 0x20) go on at once, so the next envelope is queued while the
    /// message's reply is outstanding (RFC 2920 lets it share the write).
    fn wait_for_end(&mut self, id: CommandId) {
        if self.h[8] & 0x20 == 0 {
            self.waiting = Some(id);
        }
    }

    /// A NOOP queued inside the transaction, when the header asks for one.
    fn noop_inside(&mut self) {
        if self.h[8] & 0x04 != 0
            && let Ok(id) = self.call(Client::noop)
        {
            self.issue(id, &[CommandKind::Noop]);
        }
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
        3 if insecure => Box::new(XOAuth2::new(USER, TOKEN).allow_insecure_transport()),
        3 => Box::new(XOAuth2::new(USER, TOKEN)),
        _ if insecure => {
            Box::new(OAuthBearer::new(USER, TOKEN, server, PORT).allow_insecure_transport())
        }
        _ => Box::new(OAuthBearer::new(USER, TOKEN, server, PORT)),
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
