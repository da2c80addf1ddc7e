//! The client side of the corpus runners: runs a case's client operations
//! (`>` lines) with [`Client`] against some other side, a [`Peer`]: the
//! scripted server of `corpus.rs` or our server core in
//! `client_vs_server.rs`.
//!
//! The runner is a driver like the adapters: it drains
//! [`Client::poll_output`] and does what it says, so a case tests the
//! session's own flows (`send`, the batch window, BDAT chunking, the
//! deadlines), not a copy of them. What the other side does when the
//! client writes, waits or starts TLS is the peer's.

use std::collections::HashMap;

use crate::corpus::{self, Action, Case};
use smtp_sansio::{
    Auth, BodyType, Client, CommandId, Config, Domain, Envelope, Error, Event, Mailbox, MessageId,
    Output, Reply, ReversePath, Security, SendError, SendReport, Timestamp, Verification,
};

/// The other side of the connection, as the drive loop sees it.
pub(crate) trait Peer {
    /// Takes the bytes the client wrote.
    fn receive(&mut self, bytes: &[u8]);

    /// The session starts: a peer that speaks first may do so now.
    fn connect(&mut self, _client: &mut Client) {}

    /// Fails the drive once the peer knows the run went wrong.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Hands the client what the peer already put on the wire; called
    /// before the client gives body or starts TLS, since those bytes
    /// arrive first.
    fn deliver_pending(&mut self, _client: &mut Client, _now: Timestamp) {}

    /// The client asks for a step-by-step body nobody gives: whether the
    /// peer wrote something that may move the session on.
    fn answer_body_request(&mut self, _client: &mut Client) -> bool {
        false
    }

    /// The client starts TLS: the peer's side of the handshake. Whether
    /// the handshake completes now; the peer may instead advance the
    /// clock to the session's `deadline`.
    fn start_tls(
        &mut self,
        client: &mut Client,
        now: &mut Timestamp,
        deadline: Timestamp,
    ) -> Result<bool, String>;

    /// The client waits for the peer (until `deadline`, if any): the
    /// peer's next move.
    fn respond(
        &mut self,
        client: &mut Client,
        now: &mut Timestamp,
        deadline: Option<Timestamp>,
    ) -> Result<(), String>;

    /// The client reports a message delivered: its body as given and
    /// whether it went as BINARYMIME.
    fn message_delivered(&mut self, _body: &[u8], _binary: bool) {}
}

/// What a drive waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    Command(CommandId),
    /// Every listed message's report.
    Messages,
    /// The session asks for more of the current step-by-step body.
    BodyRoom,
}

/// A message queued with `send`, and how far its body went.
struct QueuedBody {
    bytes: Vec<u8>,
    sent: usize,
    /// MAIL's BODY=BINARYMIME.
    binary: bool,
}

/// The client session of one case, driven against `peer`.
pub(crate) struct Runner<'a, P> {
    pub(crate) client: Client,
    pub(crate) peer: P,
    /// The virtual clock; only the peer moves it.
    pub(crate) now: Timestamp,
    case: &'a Case,
    bodies: HashMap<MessageId, QueuedBody>,
    reports: HashMap<MessageId, Result<SendReport, SendError>>,
    /// MAIL's BODY=BINARYMIME, for the step-by-step body that follows.
    binary: bool,
}

/// The client configuration a case asks for.
pub(crate) fn client_config(case: &Case) -> Result<Config, String> {
    let mut config = Config::default();
    config.pipelining = case.options.pipelining;
    config.lmtp = case.options.lmtp;
    config.prefer_chunking = case.options.prefer_chunking;
    config.local_name = Domain::new(case.options.local_name.as_str()).map_err(|e| e.to_string())?;
    Ok(config)
}

/// An argument the corpus gives that the client's types refuse.
fn bad(argument: &'static str) -> Error {
    Error::InvalidInput(smtp_sansio::InvalidInput::new(argument, "unparseable"))
}

impl<'a, P: Peer> Runner<'a, P> {
    /// A plaintext session to the case's server, at time zero.
    pub(crate) fn new(case: &'a Case, config: Config, peer: P) -> Self {
        let now = Timestamp::ZERO;
        let client = Client::new(
            config,
            case.options.server_name.clone(),
            Security::Plaintext,
            now,
        );
        Self {
            client,
            peer,
            now,
            case,
            bodies: HashMap::new(),
            reports: HashMap::new(),
            binary: false,
        }
    }

    /// Drains the session's outputs and lets the peer answer until `until`.
    pub(crate) fn drive(
        &mut self,
        until: Until,
        mut auth: Option<&mut (dyn Auth + Send)>,
    ) -> Result<Option<Result<Reply, Error>>, String> {
        let mut done: Option<Result<Reply, Error>> = None;
        let mut finished = false;
        // Bounded, so that two sides that keep each other busy fail
        // instead of hanging the test.
        for _ in 0..1_000_000 {
            self.peer.check()?;
            match self.client.poll_output(self.now) {
                Output::Transmit { bytes, .. } => self.peer.receive(&bytes),
                Output::Event(Event::AuthNeeded { .. }) => {
                    let mech = auth
                        .as_deref_mut()
                        .ok_or("AuthNeeded without a mechanism")?;
                    self.client.handle_auth(mech).map_err(|e| e.to_string())?;
                }
                Output::Event(Event::Completed { id, result, .. }) => {
                    if until == Until::Command(id) {
                        done = Some(result);
                        finished = true;
                    }
                }
                Output::Event(Event::MessageDone { id, result }) => {
                    self.reports.insert(id, result);
                    if until == Until::Messages && self.reports.len() == self.bodies.len() {
                        finished = true;
                    }
                }
                Output::Event(_) => {}
                Output::NeedBody { message, max } => {
                    self.peer.deliver_pending(&mut self.client, self.now);
                    if self.client.is_closed() {
                        continue;
                    }
                    match message {
                        Some(m) => self.supply(m, max)?,
                        None if until == Until::BodyRoom => return Ok(None),
                        None if finished => return Ok(done),
                        None => {
                            if !self.peer.answer_body_request(&mut self.client) {
                                return Err("NeedBody for a body nobody gives".into());
                            }
                        }
                    }
                }
                Output::StartTls { deadline } => {
                    // Whatever the server already sent goes to the session
                    // first, which refuses it.
                    self.peer.deliver_pending(&mut self.client, self.now);
                    if self.client.is_closed() {
                        continue;
                    }
                    if self
                        .peer
                        .start_tls(&mut self.client, &mut self.now, deadline)?
                    {
                        self.client
                            .handle_tls_established(self.now)
                            .map_err(|e| e.to_string())?;
                    }
                }
                Output::Closed => {
                    return Ok(done.or_else(|| self.client.error().cloned().map(Err)));
                }
                Output::Wait(deadline) => {
                    if finished {
                        return Ok(done);
                    }
                    self.peer
                        .respond(&mut self.client, &mut self.now, deadline)?;
                }
                other => return Err(format!("unexpected output {other:?}")),
            }
        }
        Err("error stuck: no end".into())
    }

    /// Gives a queued message as much body as the session takes.
    fn supply(&mut self, message: MessageId, max: usize) -> Result<(), String> {
        let body = self
            .bodies
            .get_mut(&message)
            .ok_or("NeedBody for an unknown message")?;
        if body.sent == body.bytes.len() {
            self.client.end_body().map_err(|e| e.to_string())?;
            return Ok(());
        }
        let end = (body.sent + max).min(body.bytes.len());
        let taken = self
            .client
            .push_body(&body.bytes[body.sent..end])
            .map_err(|e| e.to_string())?;
        body.sent += taken;
        Ok(())
    }

    /// Gives a step-by-step body (after DATA's 354 or `start_bdat`) and
    /// ends it; the id whose completion is the final reply.
    fn step_body(&mut self, body: &[u8]) -> Result<CommandId, Error> {
        let mut rest = body;
        while !rest.is_empty() {
            let n = self.client.push_body(rest)?;
            rest = &rest[n..];
            if n == 0 && self.drive(Until::BodyRoom, None).is_err() {
                return Err(self.client.error().cloned().unwrap_or(Error::Abandoned));
            }
        }
        self.client.end_body()
    }

    /// The outcome form of a drive's result.
    fn outcome(&self, result: Result<Option<Result<Reply, Error>>, String>) -> String {
        match result {
            Ok(Some(Ok(reply))) => corpus::reply_outcome(&reply),
            Ok(Some(Err(e))) => corpus::error_outcome(&e),
            Ok(None) => "error nothing-completed".into(),
            Err(s) => s,
        }
    }

    /// Drives until command `id` completes; its outcome.
    pub(crate) fn command(&mut self, id: CommandId) -> String {
        let r = self.drive(Until::Command(id), None);
        self.outcome(r)
    }

    /// Runs one corpus action; its outcome, a refused call included.
    pub(crate) fn run(&mut self, action: &Action) -> String {
        match self.act(action) {
            Ok(s) => s,
            Err(e) => corpus::error_outcome(&e),
        }
    }

    /// Runs one corpus action with the client's calls; `Err` is a call
    /// the client refused.
    fn act(&mut self, action: &Action) -> Result<String, Error> {
        let host = self.case.options.server_name.clone();
        Ok(match action {
            Action::Connect => {
                self.peer.connect(&mut self.client);
                self.command(CommandId::GREETING)
            }
            Action::Hello(name) => {
                let domain = Domain::new(name.as_str()).map_err(|e| e.for_argument("name"))?;
                let id = self.client.hello(domain)?;
                self.command(id)
            }
            Action::StartTls => {
                let id = self.client.starttls()?;
                match self.drive(Until::Command(id), None) {
                    Ok(Some(Ok(_))) => "ok".into(),
                    other => self.outcome(other),
                }
            }
            Action::Auth {
                mechanism,
                user,
                secret,
            } => {
                let mut mech = corpus::mechanism(mechanism, user, secret, &host);
                let id = self.client.auth()?;
                let r = self.drive(Until::Command(id), Some(&mut *mech));
                self.outcome(r)
            }
            Action::Mail(from, params) => {
                let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
                let params = corpus::mail_params(params).map_err(|_| bad("params"))?;
                self.binary = params.body == BodyType::BinaryMime;
                let id = self.client.mail(from, params)?;
                self.command(id)
            }
            Action::Rcpt(to, params) => {
                let to = Mailbox::new(to.as_str()).map_err(|e| e.for_argument("to"))?;
                let params = corpus::rcpt_params(params).map_err(|_| bad("params"))?;
                let id = self.client.rcpt(to, params)?;
                self.command(id)
            }
            Action::Data(body) | Action::Bdat(body) => {
                if matches!(action, Action::Data(_)) {
                    let id = self.client.data()?;
                    match self.drive(Until::Command(id), None) {
                        Ok(Some(Ok(_))) => {}
                        other => return Ok(self.outcome(other)),
                    }
                } else {
                    self.client.start_bdat()?;
                }
                let end = self.step_body(body)?;
                let r = self.drive(Until::Command(end), None);
                if let Ok(Some(Ok(reply))) = &r
                    && reply.code().get() == 250
                {
                    self.peer.message_delivered(body, self.binary);
                }
                self.outcome(r)
            }
            Action::Send {
                from,
                to,
                body,
                params,
            } => {
                let envelope = corpus::envelope(from, to, params)?;
                self.send_outcomes(vec![(envelope, body.clone())], corpus::report_outcome)?
            }
            Action::Batch {
                count,
                from,
                to,
                body,
            } => {
                let envelope = corpus::envelope(from, to, &[])?;
                let messages = (0..*count)
                    .map(|_| (envelope.clone(), body.clone()))
                    .collect();
                self.send_outcomes(messages, |r| corpus::reply_outcome(&r.reply))?
            }
            Action::Verify(addr) => {
                let id = self.client.verify(addr)?;
                match self.drive(Until::Command(id), None) {
                    Ok(Some(Ok(reply))) => corpus::verify_outcome(Verification::from_reply(&reply)),
                    other => self.outcome(other),
                }
            }
            Action::Noop => {
                let id = self.client.noop()?;
                self.command(id)
            }
            Action::Reset => {
                let id = self.client.rset()?;
                self.command(id)
            }
            Action::Quit => {
                let id = self.client.quit()?;
                self.command(id)
            }
            Action::Extension(name) => {
                if let Some(id) = self.client.ensure_hello()? {
                    match self.drive(Until::Command(id), None) {
                        Ok(Some(Ok(_))) => {}
                        other => return Ok(self.outcome(other)),
                    }
                }
                match self.client.extension(name) {
                    Some(v) => format!("value {v}"),
                    None => "none".into(),
                }
            }
        })
    }

    /// Queues every message and drives until each has its report; the
    /// outcome of each, in order, joined with ` / `.
    fn send_outcomes(
        &mut self,
        messages: Vec<(Envelope, Vec<u8>)>,
        ok: fn(&SendReport) -> String,
    ) -> Result<String, Error> {
        self.bodies.clear();
        self.reports.clear();
        let mut ids = Vec::new();
        for (envelope, bytes) in messages {
            let binary = envelope.params.body == BodyType::BinaryMime;
            match self.client.send(envelope) {
                Ok(id) => {
                    let body = QueuedBody {
                        bytes,
                        sent: 0,
                        binary,
                    };
                    self.bodies.insert(id, body);
                    ids.push(Ok(id));
                }
                Err(e) if ids.is_empty() => return Err(e),
                Err(e) => ids.push(Err(e)),
            }
        }
        if !self.bodies.is_empty()
            && let Err(s) = self.drive(Until::Messages, None)
        {
            return Ok(s);
        }
        let mut outcomes = Vec::new();
        for id in ids {
            outcomes.push(match id.map(|id| (id, self.reports.remove(&id))) {
                Ok((id, Some(Ok(report)))) => {
                    let body = &self.bodies[&id];
                    self.peer.message_delivered(&body.bytes, body.binary);
                    ok(&report)
                }
                Ok((_, Some(Err(e)))) => corpus::send_error_outcome(&e),
                Ok((_, None)) => "error no-report".into(),
                Err(e) => corpus::error_outcome(&e),
            });
        }
        Ok(outcomes.join(" / "))
    }
}
