//! Runs the shared transcript corpus (`tests/corpus/*.smtp`) against the
//! core with an in-memory server and a virtual clock, feeding the server's
//! bytes whole, one byte at a time, and split at every offset.
//!
//! The runner is a driver like the adapters: it drains
//! [`Client::poll_output`] and does what it says, so the corpus tests the
//! session's own flows (`send`, the batch window, BDAT chunking, the
//! deadlines), not a copy of them.

#[path = "../../tests/src/corpus.rs"]
#[allow(unreachable_pub, missing_docs)]
mod corpus;

use std::collections::HashMap;
use std::time::Duration;

use corpus::{Action, Case, Item};
use smtp_sansio::{
    Auth, Client, CommandId, Config, Domain, Envelope, Error, Event, Mailbox, MessageId, Output,
    Reply, ReversePath, Security, SendError, SendReport, Timestamp, Verification,
};

#[derive(Debug, Clone, Copy)]
enum Feed {
    Whole,
    Bytewise,
    /// Each server write is delivered in two parts, cut at this offset.
    Split(usize),
}

/// The scripted server.
struct Sim {
    items: Vec<Item>,
    pos: usize,
    /// Pieces of the current server write not yet delivered: they are on
    /// the wire, so the client gets them before it does anything else.
    unsent: Vec<Vec<u8>>,
    /// Bytes the client sent that the script has not matched yet.
    received: Vec<u8>,
    failure: Option<String>,
}

enum Step {
    Feed(Vec<u8>),
    Tls,
    Close,
    Wait(Duration),
    Stuck,
}

impl Sim {
    fn new(case: &Case) -> Self {
        let items = case
            .items
            .iter()
            .filter(|i| !matches!(i, Item::Action(_) | Item::Expect(_)))
            .cloned()
            .collect();
        Self {
            items,
            pos: 0,
            unsent: Vec::new(),
            received: Vec::new(),
            failure: None,
        }
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.received.extend_from_slice(bytes);
        self.match_client();
    }

    fn match_client(&mut self) {
        while let Some(Item::Client(expected)) = self.items.get(self.pos) {
            let n = expected.len().min(self.received.len());
            if self.received[..n] != expected[..n] {
                self.failure.get_or_insert_with(|| {
                    format!(
                        "client sent {:?}, script expects {:?}",
                        String::from_utf8_lossy(&self.received),
                        String::from_utf8_lossy(expected)
                    )
                });
                return;
            }
            if n < expected.len() {
                return;
            }
            self.received.drain(..n);
            self.pos += 1;
        }
    }

    /// The next piece of a server write already under way.
    fn next_piece(&mut self) -> Option<Vec<u8>> {
        if self.unsent.is_empty() {
            None
        } else {
            Some(self.unsent.remove(0))
        }
    }

    /// The server's next move.
    fn step(&mut self, feed: Feed) -> Step {
        if let Some(piece) = self.next_piece() {
            return Step::Feed(piece);
        }
        match self.items.get(self.pos).cloned() {
            Some(Item::Server(bytes)) => {
                self.pos += 1;
                self.unsent = match feed {
                    Feed::Whole => vec![bytes],
                    Feed::Bytewise => bytes.chunks(1).map(<[u8]>::to_vec).collect(),
                    Feed::Split(k) => {
                        let cut = k.min(bytes.len());
                        vec![bytes[..cut].to_vec(), bytes[cut..].to_vec()]
                    }
                };
                self.unsent.retain(|p| !p.is_empty());
                match self.next_piece() {
                    Some(piece) => Step::Feed(piece),
                    None => Step::Stuck,
                }
            }
            Some(Item::Tls) => {
                self.pos += 1;
                Step::Tls
            }
            Some(Item::Close) => {
                self.pos += 1;
                Step::Close
            }
            Some(Item::Wait(d)) => {
                self.pos += 1;
                Step::Wait(d)
            }
            _ => Step::Stuck,
        }
    }

    /// Whether the script played out; once the session has closed, what
    /// the server still meant to do does not matter.
    fn finished(&self, client_closed: bool) -> Result<(), String> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let rest: Vec<&Item> = self.items[self.pos..]
            .iter()
            .filter(|i| match i {
                Item::Client(_) => true,
                Item::Close | Item::Wait(_) => false,
                _ => !client_closed,
            })
            .collect();
        if !rest.is_empty() || !self.unsent.is_empty() {
            return Err(format!(
                "script not finished: {rest:?} unsent {:?}",
                self.unsent
            ));
        }
        if !self.received.is_empty() {
            return Err(format!(
                "client sent unexpected {:?}",
                String::from_utf8_lossy(&self.received)
            ));
        }
        Ok(())
    }
}

/// What a drive waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    Command(CommandId),
    /// Every listed message's report.
    Messages,
    /// The session asks for more of the current step-by-step body.
    BodyRoom,
}

struct Runner<'a> {
    client: Client,
    sim: Sim,
    feed: Feed,
    now: Timestamp,
    case: &'a Case,
    /// Bodies of the messages queued with `send`, and how far each went.
    bodies: HashMap<MessageId, (Vec<u8>, usize)>,
    reports: HashMap<MessageId, Result<SendReport, SendError>>,
}

impl Runner<'_> {
    /// Delivers the rest of a server write already on the wire.
    fn deliver_unsent(&mut self) {
        while let Some(piece) = self.sim.next_piece() {
            self.client.handle_input(self.now, &piece);
        }
    }

    /// Drains the session's outputs and plays the server until `until`.
    fn drive(
        &mut self,
        until: Until,
        mut auth: Option<&mut (dyn Auth + Send)>,
    ) -> Result<Option<Result<Reply, Error>>, String> {
        let mut done: Option<Result<Reply, Error>> = None;
        let mut finished = false;
        loop {
            if self.sim.failure.is_some() {
                return Err("error script-mismatch".into());
            }
            match self.client.poll_output(self.now) {
                Output::Transmit { bytes, .. } => self.sim.receive(&bytes),
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
                    // Bytes already on the wire arrive before the body goes.
                    self.deliver_unsent();
                    if self.client.is_closed() {
                        continue;
                    }
                    match message {
                        Some(m) => self.supply(m, max)?,
                        None if until == Until::BodyRoom => return Ok(None),
                        None if finished => return Ok(done),
                        None => return Err("NeedBody for a body nobody gives".into()),
                    }
                }
                Output::StartTls { deadline } => {
                    // The handshake: whatever the server already sent goes
                    // to the session first, which refuses it.
                    self.deliver_unsent();
                    if self.client.is_closed() {
                        continue;
                    }
                    match self.sim.step(self.feed) {
                        Step::Tls => {
                            self.client
                                .handle_tls_established(self.now)
                                .map_err(|e| e.to_string())?;
                        }
                        Step::Wait(d) => self.wait(d, Some(deadline)),
                        _ => return Err("error script: expected TLS".into()),
                    }
                }
                Output::Closed => {
                    return Ok(done.or_else(|| self.client.error().cloned().map(Err)));
                }
                Output::Wait(deadline) => {
                    if finished {
                        return Ok(done);
                    }
                    match self.sim.step(self.feed) {
                        Step::Feed(bytes) => self.client.handle_input(self.now, &bytes),
                        Step::Close => self.client.handle_eof(self.now),
                        Step::Wait(d) => self.wait(d, deadline),
                        Step::Tls => {
                            return Err("error script: TLS while a reply is awaited".into());
                        }
                        Step::Stuck => match deadline {
                            // The server stays silent: the clock runs on.
                            Some(at) => {
                                self.now = at;
                                self.client.handle_timeout(self.now);
                            }
                            None => return Err("error stuck: nothing awaited".into()),
                        },
                    }
                }
                other => return Err(format!("unexpected output {other:?}")),
            }
        }
    }

    /// The server waits `d`; the session's deadline may come first.
    fn wait(&mut self, d: Duration, deadline: Option<Timestamp>) {
        let later = self.now.saturating_add(d);
        match deadline {
            Some(at) if at <= later => {
                self.now = at;
                self.client.handle_timeout(self.now);
            }
            _ => self.now = later,
        }
    }

    /// Gives a queued message as much body as the session takes.
    fn supply(&mut self, message: MessageId, max: usize) -> Result<(), String> {
        let (body, pos) = self
            .bodies
            .get_mut(&message)
            .ok_or("NeedBody for an unknown message")?;
        if *pos == body.len() {
            self.client.end_body().map_err(|e| e.to_string())?;
            return Ok(());
        }
        let end = (*pos + max).min(body.len());
        let taken = self
            .client
            .push_body(&body[*pos..end])
            .map_err(|e| e.to_string())?;
        *pos += taken;
        Ok(())
    }

    /// Gives a step-by-step body (after DATA's 354 or `start_bdat`) and
    /// ends it; the id whose completion is the final reply.
    fn step_body(&mut self, body: &[u8]) -> Result<CommandId, Error> {
        let mut rest = body;
        while !rest.is_empty() {
            let n = self.client.push_body(rest)?;
            rest = &rest[n..];
            if n == 0 {
                match self.drive(Until::BodyRoom, None) {
                    Ok(_) => {}
                    Err(_) => return Err(self.client.error().cloned().unwrap_or(Error::Abandoned)),
                }
            }
        }
        self.client.end_body()
    }

    fn outcome(&self, result: Result<Option<Result<Reply, Error>>, String>) -> String {
        match result {
            Ok(Some(Ok(reply))) => corpus::reply_outcome(&reply),
            Ok(Some(Err(e))) => corpus::error_outcome(&e),
            Ok(None) => "error nothing-completed".into(),
            Err(s) => s,
        }
    }

    fn command(&mut self, id: CommandId) -> String {
        let r = self.drive(Until::Command(id), None);
        self.outcome(r)
    }

    fn run(&mut self, action: &Action) -> String {
        match self.act(action) {
            Ok(s) => s,
            Err(e) => corpus::error_outcome(&e),
        }
    }

    fn act(&mut self, action: &Action) -> Result<String, Error> {
        let host = self.case.options.server_name.clone();
        Ok(match action {
            Action::Connect => self.command(CommandId::GREETING),
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
                let id = self.client.mail(from, params)?;
                self.command(id)
            }
            Action::Rcpt(to, params) => {
                let to = Mailbox::new(to.as_str()).map_err(|e| e.for_argument("to"))?;
                let params = corpus::rcpt_params(params).map_err(|_| bad("params"))?;
                let id = self.client.rcpt(to, params)?;
                self.command(id)
            }
            Action::Data(body) => {
                let id = self.client.data()?;
                match self.drive(Until::Command(id), None) {
                    Ok(Some(Ok(_))) => {}
                    other => return Ok(self.outcome(other)),
                }
                let end = self.step_body(body)?;
                self.command(end)
            }
            Action::Bdat(body) => {
                self.client.start_bdat()?;
                let end = self.step_body(body)?;
                self.command(end)
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
        for (envelope, body) in messages {
            match self.client.send(envelope) {
                Ok(id) => {
                    self.bodies.insert(id, (body, 0));
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
        let outcomes: Vec<String> = ids
            .into_iter()
            .map(|id| match id.map(|id| self.reports.remove(&id)) {
                Ok(Some(Ok(report))) => ok(&report),
                Ok(Some(Err(e))) => corpus::send_error_outcome(&e),
                Ok(None) => "error no-report".into(),
                Err(e) => corpus::error_outcome(&e),
            })
            .collect();
        Ok(outcomes.join(" / "))
    }
}

fn bad(argument: &'static str) -> Error {
    Error::InvalidInput(smtp_sansio::InvalidInput::new(argument, "unparseable"))
}

fn run_case(case: &Case, feed: Feed) -> Result<(), String> {
    let mut config = Config::default();
    config.pipelining = case.options.pipelining;
    config.lmtp = case.options.lmtp;
    config.prefer_chunking = case.options.prefer_chunking;
    config.local_name = Domain::new(case.options.local_name.as_str()).map_err(|e| e.to_string())?;
    config.transcript = true;
    let now = Timestamp::ZERO;
    let client = Client::new(
        config,
        case.options.server_name.clone(),
        Security::Plaintext,
        now,
    );
    let mut runner = Runner {
        client,
        sim: Sim::new(case),
        feed,
        now,
        case,
        bodies: HashMap::new(),
        reports: HashMap::new(),
    };
    for (action, expected) in corpus::actions(case) {
        let outcome = runner.run(&action);
        if let Some(f) = &runner.sim.failure {
            return Err(format!("{action:?}: {f}"));
        }
        if !corpus::outcome_matches(&expected, &outcome) {
            return Err(format!(
                "{action:?}: expected `{expected}`, got `{outcome}`"
            ));
        }
    }
    // Whatever the session still has to write goes to the server.
    while let Output::Transmit { bytes, .. } = runner.client.poll_output(runner.now) {
        runner.sim.receive(&bytes);
    }
    let closed = runner.client.is_closed();
    if closed {
        // Whatever the server still had to say goes nowhere.
        runner.sim.unsent.clear();
    }
    runner.sim.finished(closed)
}

fn cases() -> Vec<Case> {
    corpus::load_dir(&corpus::corpus_dir(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn corpus_whole_writes() {
    let mut failures = Vec::new();
    let all = cases();
    for case in &all {
        if let Err(e) = run_case(case, Feed::Whole) {
            failures.push(format!("{} ({}): {e}", case.name, case.location));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_bytewise() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.options.bytewise) {
        if let Err(e) = run_case(case, Feed::Bytewise) {
            failures.push(format!("{} ({}): {e}", case.name, case.location));
        }
    }
    assert!(failures.is_empty(), "bytewise:\n{}", failures.join("\n"));
}

#[test]
fn corpus_split_at_every_offset() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.options.bytewise) {
        let longest = case
            .items
            .iter()
            .filter_map(|i| {
                if let Item::Server(b) = i {
                    Some(b.len())
                } else {
                    None
                }
            })
            .max()
            .unwrap_or(0);
        for k in 1..longest {
            if let Err(e) = run_case(case, Feed::Split(k)) {
                failures.push(format!(
                    "{} ({}) split at {k}: {e}",
                    case.name, case.location
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "split:\n{}", failures.join("\n"));
}

#[test]
fn every_transfer_kind_is_covered() {
    // Guard against the corpus losing whole areas by accident.
    let all = cases();
    let has = |f: &dyn Fn(&Action) -> bool| {
        all.iter()
            .any(|c| c.items.iter().any(|i| matches!(i, Item::Action(a) if f(a))))
    };
    assert!(has(&|a| matches!(a, Action::Send { .. })));
    assert!(has(&|a| matches!(a, Action::Batch { .. })));
    assert!(has(&|a| matches!(a, Action::Bdat(_))));
    assert!(has(&|a| matches!(a, Action::StartTls)));
    assert!(has(&|a| matches!(a, Action::Auth { .. })));
    assert!(all.iter().any(|c| c.options.lmtp));
    assert!(
        all.iter()
            .any(|c| c.items.iter().any(|i| matches!(i, Item::Wait(_)))),
        "time steps"
    );
}
