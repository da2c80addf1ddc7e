//! Our client against our server, in memory, for every case of the client
//! transcript corpus (`tests/corpus/*.smtp`): the case's client operations
//! (`>` lines) run with [`Client`] against [`Server`] (an accept-all
//! application, configured to offer what the case's scripted EHLO offered),
//! instead of against the script.
//!
//! For each case that runs: no protocol error, timeout or lost connection
//! on the client's side, the session ends with QUIT on both sides, and
//! every message the client reports delivered arrives at the server with
//! the body the client put on the wire (after unstuffing, the CRLF-
//! normalised body: [`normalize_line_endings`]). Cases that need a
//! misbehaving server or the clock are skipped, counted and listed.

#[path = "../../tests/src/corpus.rs"]
#[allow(unreachable_pub, missing_docs)]
mod corpus;

use std::collections::HashMap;
use std::sync::Arc;

use corpus::{Action, Case, Item};
use smtp_sansio::server::{
    ConnectionInfo, Credentials, Handler, Response, Server, ServerConfig, ServerMechanism,
    ServerOutput, Transaction,
};
use smtp_sansio::{
    Auth, BodyType, Client, CommandId, Config, Domain, Error, Event, Mailbox, MessageId, Output,
    Reply, ReversePath, Security, SendError, SendReport, Timestamp, normalize_line_endings,
};

const T0: Timestamp = Timestamp::ZERO;

/// Accepts everything, AUTH included; keeps each message's body.
#[derive(Default)]
struct Accept {
    body: Vec<u8>,
    messages: Vec<Vec<u8>>,
}

impl Handler for Accept {
    fn auth(&mut self, _: &Credentials) -> Response {
        Response::accept()
    }
    fn body(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
    }
    fn message(&mut self, _: &Transaction) -> Response {
        self.messages.push(std::mem::take(&mut self.body));
        Response::accept()
    }
    fn reset(&mut self) {
        self.body.clear();
    }
    fn aborted(&mut self, _: smtp_sansio::server::AbortReason) {
        self.body.clear();
    }
}

/// Why a case cannot run against a well-behaved server, if it cannot.
fn skip_reason(case: &Case) -> Option<&'static str> {
    if case.items.iter().any(|i| matches!(i, Item::Wait(_))) {
        return Some("depends on time (wait)");
    }
    if case.items.iter().any(|i| matches!(i, Item::Close)) {
        return Some("the scripted server closes the connection");
    }
    let expects = |prefix: &str| {
        case.items
            .iter()
            .any(|i| matches!(i, Item::Expect(e) if e.starts_with(prefix)))
    };
    for (prefix, why) in [
        (
            "error protocol",
            "expects a protocol error of a hostile server",
        ),
        ("error timeout", "expects a timeout"),
        ("error io", "expects the connection to fail"),
        ("error tls", "expects the TLS handshake to fail"),
        ("error closed", "expects the server to end the session"),
    ] {
        if expects(prefix) {
            return Some(why);
        }
    }
    None
}

/// What the case's scripted EHLO (or LHLO) reply offered, as a server
/// configuration.
fn server_config(case: &Case) -> ServerConfig {
    let mut c = ServerConfig::new("mx.example");
    c.lmtp = case.options.lmtp;
    c.accept_unknown_params = true;
    c.auth_without_tls = true;
    let hello = case.items.iter().position(
        |i| matches!(i, Item::Client(b) if b.starts_with(b"EHLO ") || b.starts_with(b"LHLO ")),
    );
    let reply = hello.and_then(|at| {
        case.items[at..].iter().find_map(|i| match i {
            Item::Server(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
    });
    let Some(reply) = reply.filter(|r| r.starts_with("250")) else {
        return c;
    };
    let keywords: Vec<Vec<String>> = reply
        .lines()
        .skip(1)
        .map(|l| {
            l.get(4..)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_ascii_uppercase)
                .collect()
        })
        .collect();
    let has = |k: &str| keywords.iter().any(|w| w.first().is_some_and(|f| f == k));
    c.pipelining = has("PIPELINING");
    c.chunking = has("CHUNKING");
    c.binary_mime = c.chunking && has("BINARYMIME");
    c.eight_bit_mime = has("8BITMIME");
    c.smtputf8 = has("SMTPUTF8");
    c.dsn = has("DSN");
    c.enhanced_status_codes = has("ENHANCEDSTATUSCODES");
    c.starttls = has("STARTTLS");
    c.requiretls = has("REQUIRETLS");
    if let Some(size) = keywords
        .iter()
        .find(|w| w.first().is_some_and(|f| f == "SIZE"))
        .and_then(|w| w.get(1)?.parse::<u64>().ok())
        .filter(|&n| n > 0)
    {
        c.limits.max_message_size = size;
    }
    if keywords.iter().any(|w| {
        w.first()
            .is_some_and(|f| f == "AUTH" || f.starts_with("AUTH="))
    }) {
        c.auth_mechanisms = vec![
            ServerMechanism::Plain,
            ServerMechanism::Login,
            ServerMechanism::CramMd5,
        ];
    }
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    Command(CommandId),
    Messages,
    BodyRoom,
}

struct Runner<'a> {
    client: Client,
    server: Server,
    app: Accept,
    /// The server asked for the handshake.
    server_tls: bool,
    server_closed: bool,
    handshakes: usize,
    case: &'a Case,
    bodies: HashMap<MessageId, (Vec<u8>, usize, bool)>,
    reports: HashMap<MessageId, Result<SendReport, SendError>>,
    /// The bodies the client reports delivered, as they went on the wire.
    delivered: Vec<Vec<u8>>,
    /// MAIL's BODY= of the step-by-step transaction.
    binary: bool,
}

/// The body as the client puts it on the wire, unstuffed: CRLF-normalised,
/// or as given for BINARYMIME.
fn wire_body(body: &[u8], binary: bool) -> Vec<u8> {
    if binary {
        body.to_vec()
    } else {
        normalize_line_endings(body)
    }
}

impl Runner<'_> {
    /// Runs the server until it waits; what it wrote goes to the client.
    fn run_server(&mut self) -> bool {
        let mut wrote = false;
        loop {
            match self.server.poll_output(T0) {
                ServerOutput::Transmit { bytes, .. } => {
                    self.client.handle_input(T0, &bytes);
                    wrote = true;
                }
                ServerOutput::Event(e) => self.server.dispatch(e, &mut self.app),
                ServerOutput::StartTls { .. } => {
                    self.server_tls = true;
                    return wrote;
                }
                ServerOutput::Closed => {
                    if !self.server_closed {
                        self.server_closed = true;
                        self.client.handle_eof(T0);
                        wrote = true;
                    }
                    return wrote;
                }
                _ => return wrote,
            }
        }
    }

    fn drive(
        &mut self,
        until: Until,
        mut auth: Option<&mut (dyn Auth + Send)>,
    ) -> Result<Option<Result<Reply, Error>>, String> {
        let mut done = None;
        let mut finished = false;
        for _ in 0..1_000_000 {
            match self.client.poll_output(T0) {
                Output::Transmit { bytes, .. } => {
                    self.server.handle_input(T0, &bytes);
                }
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
                Output::NeedBody { message, max } => match message {
                    Some(m) => self.supply(m, max)?,
                    None if until == Until::BodyRoom => return Ok(None),
                    None if finished => return Ok(done),
                    None => {
                        if !self.run_server() {
                            return Err("NeedBody for a body nobody gives".into());
                        }
                    }
                },
                Output::StartTls { .. } => {
                    if !self.server_tls {
                        self.run_server();
                    }
                    if !std::mem::take(&mut self.server_tls) {
                        return Err("the client starts TLS, the server does not".into());
                    }
                    self.handshakes += 1;
                    self.server.handle_tls_established(T0);
                    self.client
                        .handle_tls_established(T0)
                        .map_err(|e| e.to_string())?;
                }
                Output::Closed => {
                    return Ok(done.or_else(|| self.client.error().cloned().map(Err)));
                }
                Output::Wait(_) => {
                    if finished {
                        return Ok(done);
                    }
                    if !self.run_server() {
                        return Err("error stuck: both sides wait".into());
                    }
                }
                other => return Err(format!("unexpected output {other:?}")),
            }
        }
        Err("error stuck: no end".into())
    }

    fn supply(&mut self, message: MessageId, max: usize) -> Result<(), String> {
        let (body, pos, _) = self
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

    fn outcome(&self, r: Result<Option<Result<Reply, Error>>, String>) -> String {
        match r {
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

    fn act(&mut self, action: &Action) -> Result<String, Error> {
        let host = self.case.options.server_name.clone();
        Ok(match action {
            Action::Connect => {
                self.run_server();
                self.command(CommandId::GREETING)
            }
            Action::Hello(name) => {
                let domain = Domain::new(name.as_str()).map_err(|e| e.for_argument("name"))?;
                let id = self.client.hello(domain)?;
                self.command(id)
            }
            Action::StartTls => {
                let id = self.client.starttls()?;
                let r = self.drive(Until::Command(id), None);
                match r {
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
                    self.delivered.push(wire_body(body, self.binary));
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
                self.send(vec![(envelope, body.clone())])?
            }
            Action::Batch {
                count,
                from,
                to,
                body,
            } => {
                let envelope = corpus::envelope(from, to, &[])?;
                self.send(
                    (0..*count)
                        .map(|_| (envelope.clone(), body.clone()))
                        .collect(),
                )?
            }
            Action::Verify(addr) => {
                let id = self.client.verify(addr)?;
                self.command(id)
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

    fn send(&mut self, messages: Vec<(smtp_sansio::Envelope, Vec<u8>)>) -> Result<String, Error> {
        self.bodies.clear();
        self.reports.clear();
        let mut ids = Vec::new();
        for (envelope, body) in messages {
            let binary = envelope.params.body == BodyType::BinaryMime;
            match self.client.send(envelope) {
                Ok(id) => {
                    self.bodies.insert(id, (body, 0, binary));
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
                    let (body, _, binary) = &self.bodies[&id];
                    self.delivered.push(wire_body(body, *binary));
                    corpus::report_outcome(&report)
                }
                Ok((_, Some(Err(e)))) => corpus::send_error_outcome(&e),
                Ok((_, None)) => "error no-report".into(),
                Err(e) => corpus::error_outcome(&e),
            });
        }
        Ok(outcomes.join(" / "))
    }
}

fn bad(argument: &'static str) -> Error {
    Error::InvalidInput(smtp_sansio::InvalidInput::new(argument, "unparseable"))
}

/// What a case that ran did: messages delivered, TLS handshakes.
#[derive(Default)]
struct Tally {
    messages: usize,
    handshakes: usize,
}

fn run_case(case: &Case, tally: &mut Tally) -> Result<(), String> {
    let mut config = Config::default();
    config.pipelining = case.options.pipelining;
    config.lmtp = case.options.lmtp;
    config.prefer_chunking = case.options.prefer_chunking;
    config.local_name = Domain::new(case.options.local_name.as_str()).map_err(|e| e.to_string())?;
    let client = Client::new(
        config,
        case.options.server_name.clone(),
        Security::Plaintext,
        T0,
    );
    let server = Server::new(
        Arc::new(server_config(case)),
        ConnectionInfo::new().with_nonce("n0nce"),
        T0,
    );
    let mut r = Runner {
        client,
        server,
        app: Accept::default(),
        server_tls: false,
        server_closed: false,
        handshakes: 0,
        case,
        bodies: HashMap::new(),
        reports: HashMap::new(),
        delivered: Vec::new(),
        binary: false,
    };
    for (action, _) in corpus::actions(case) {
        let outcome = match r.act(&action) {
            Ok(s) => s,
            Err(e) => corpus::error_outcome(&e),
        };
        for bad in [
            "error protocol",
            "error timeout",
            "error io",
            "error stuck",
            "error tls",
            "error nothing-completed",
            "error no-report",
            "error other",
        ] {
            if outcome.starts_with(bad) {
                return Err(format!("{action:?}: {outcome}"));
            }
        }
        // Anything but a command the client itself refused is a failure
        // once the session has closed.
        if r.client.is_closed() && !matches!(action, Action::Quit) {
            return Err(format!("{action:?}: the session closed: {outcome}"));
        }
    }
    if !r.client.is_closed() {
        let id = r.client.quit().map_err(|e| format!("quit: {e}"))?;
        let outcome = r.command(id);
        if !outcome.starts_with("ok 221") {
            return Err(format!("quit: {outcome}"));
        }
    }
    r.run_server();
    if !r.client.is_closed() || !r.server_closed {
        return Err(format!(
            "the session did not end (client closed {}, server closed {})",
            r.client.is_closed(),
            r.server_closed
        ));
    }
    if r.server.close_reason() != Some(smtp_sansio::server::CloseReason::Quit) {
        return Err(format!(
            "the server closed for {:?}",
            r.server.close_reason()
        ));
    }
    if r.delivered != r.app.messages {
        let show = |v: &[Vec<u8>]| {
            v.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>()
        };
        return Err(format!(
            "delivered {:?}, the server received {:?}",
            show(&r.delivered),
            show(&r.app.messages)
        ));
    }
    tally.messages += r.delivered.len();
    tally.handshakes += r.handshakes;
    Ok(())
}

#[test]
fn our_client_against_our_server_for_every_client_corpus_case() {
    let cases = corpus::load_dir(&corpus::corpus_dir(env!("CARGO_MANIFEST_DIR")));
    let mut ran = 0;
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    for case in &cases {
        if let Some(why) = skip_reason(case) {
            skipped.push(format!("{} ({}): {why}", case.name, case.location));
            continue;
        }
        ran += 1;
        match run_case(case, &mut tally) {
            Ok(()) => {}
            Err(e) => failures.push(format!("{} ({}): {e}", case.name, case.location)),
        }
    }
    for s in &skipped {
        println!("skipped: {s}");
    }
    println!(
        "client vs server: ran {ran}, skipped {} of {} cases ({} messages delivered, {} TLS handshakes)",
        skipped.len(),
        cases.len(),
        tally.messages,
        tally.handshakes
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        tally.messages >= 40 && tally.handshakes >= 2,
        "too little ran"
    );
    assert!(
        ran * 100 >= cases.len() * 60,
        "only {ran} of {} cases ran",
        cases.len()
    );
}
